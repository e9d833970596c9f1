"""Fixtures for the course-kit tests: one starter kit per session, built from the working tree."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvstore.course.catalog import load_catalog
from kvstore.course.isolate import copy_files, link_siblings, repo_files
from kvstore.course.release import CATALOG_PATH, ReleaseReport, make_release, resolve_labs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """A frozen copy of the working tree (tracked and untracked files) and its file list.

    Other engineers edit the tree while tests run; comparing a release with a snapshot taken
    once, rather than with the live tree, keeps the parity checks exact.
    """
    base = tmp_path_factory.mktemp("snapshot")
    files = repo_files(ROOT, include_untracked=True)
    copy_files(ROOT, base / "ref", files)
    link_siblings(ROOT, base / "ref", load_catalog(ROOT / CATALOG_PATH).sibling_dirs)
    yield base / "ref", files
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def release_all(snapshot: tuple[Path, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReleaseReport]:
    """A starter kit, made from the snapshot, with every lab that has marked code stubbed."""
    root, files = snapshot
    out = tmp_path_factory.mktemp("release") / "kit"
    labs = resolve_labs(root, "all", files=files)
    report = make_release(root, out, labs, files=files)
    yield report
    shutil.rmtree(out, ignore_errors=True)
