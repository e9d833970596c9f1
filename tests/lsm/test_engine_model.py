"""Model-based test: the engine behaves like a dict through flushes, compactions, reopens and crashes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kvstore.fs import SimFileSystem, SimulatedCrash
from kvstore.lsm import Engine, WriteBatch
from kvstore.lsm.testing import TINY_OPTIONS

KEYS = st.one_of(st.sampled_from([b"k%02d" % i for i in range(40)]), st.binary(min_size=1, max_size=3))
VALUES = st.binary(max_size=40)


class EngineMachine(RuleBasedStateMachine):
    """Every step is mirrored on a dict; reads must agree; invariants are checked after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.fs = SimFileSystem(seed=0)
        self.db = Engine.open("/db", fs=self.fs, **TINY_OPTIONS)
        self.model: dict[bytes, bytes] = {}
        self.crashes = 0

    @rule(key=KEYS, value=VALUES)
    def put(self, key: bytes, value: bytes) -> None:
        self.db.put(key, value)
        self.model[key] = value

    @rule(key=KEYS)
    def delete(self, key: bytes) -> None:
        self.db.delete(key)
        self.model.pop(key, None)

    @rule(ops=st.lists(st.tuples(KEYS, st.one_of(st.none(), VALUES)), max_size=10))
    def write_batch(self, ops: list[tuple[bytes, bytes | None]]) -> None:
        batch = WriteBatch()
        for k, v in ops:
            if v is None:
                batch.delete(k)
                self.model.pop(k, None)
            else:
                batch.put(k, v)
                self.model[k] = v
        self.db.write(batch)

    @rule(first=st.integers(0, 10_000), count=st.integers(10, 80))
    def fill(self, first: int, count: int) -> None:
        """Many writes at once, to push data through flushes and compactions."""
        for i in range(first, first + count):
            k, v = b"f%05d" % (i % 300), b"v%d" % i
            self.db.put(k, v)
            self.model[k] = v

    @rule(key=KEYS)
    def get(self, key: bytes) -> None:
        assert self.db.get(key) == self.model.get(key)

    @rule(
        start=st.one_of(st.none(), KEYS),
        end=st.one_of(st.none(), KEYS),
        reverse=st.booleans(),
        limit=st.one_of(st.none(), st.integers(0, 20)),
    )
    def scan(self, start: bytes | None, end: bytes | None, reverse: bool, limit: int | None) -> None:
        want = sorted(
            ((k, v) for k, v in self.model.items() if (start is None or k >= start) and (end is None or k < end)),
            reverse=reverse,
        )
        if limit is not None:
            want = want[:limit]
        assert list(self.db.scan(start, end, reverse=reverse, limit=limit)) == want

    @rule()
    def flush(self) -> None:
        self.db.flush()

    @rule()
    def compact(self) -> None:
        self.db.compact()

    @rule()
    def close_and_reopen(self) -> None:
        self.db.close()
        self.db = Engine.open("/db", fs=self.fs, **TINY_OPTIONS)

    @precondition(lambda self: self.crashes < 4)
    @rule(tear=st.booleans())
    def crash_and_reopen(self, tear: bool) -> None:
        """Power loss: every acknowledged (synced) write must survive."""
        self.fs.crash_now()
        with contextlib.suppress(SimulatedCrash):
            self.db.close()
        self.fs.reboot(tear=tear)
        self.crashes += 1
        self.db = Engine.open("/db", fs=self.fs, **TINY_OPTIONS)
        assert dict(self.db.scan()) == self.model

    @invariant()
    def structure_is_sound(self) -> None:
        self.db.check_invariants()
        self.fs.check_invariants()

    def teardown(self) -> None:
        self.db.close()


EngineMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_engine_behaves_like_a_dict = EngineMachine.TestCase


class LongEngineMachine(EngineMachine):
    """The same machine with many more and longer runs (soak only)."""


LongEngineMachine.TestCase.settings = settings(max_examples=1000, stateful_step_count=100, deadline=None)
test_soak_engine_behaves_like_a_dict = pytest.mark.soak(LongEngineMachine.TestCase)
