"""Shared fixtures for the engine tests."""

from __future__ import annotations

import os

import pytest

from kvstore.fs import SimFileSystem


@pytest.fixture
def sim_fs() -> SimFileSystem:
    """A fresh simulated disk."""
    return SimFileSystem(seed=0)


@pytest.fixture
def seed() -> int:
    """The seed of a randomized test: KVSTORE_SEED if set, else a fixed default (printed)."""
    value = int(os.environ.get("KVSTORE_SEED", "20261127"))
    print(f"seed={value} (replay with KVSTORE_SEED={value})")
    return value
