"""Test helpers for the engine: tiny-engine options, seeded workloads and the crash harness.

Used by ``tests/lsm`` and available to the simulator and to graders. Nothing here is used by
the engine itself.

The crash harness (:func:`run_crash_point`) runs a seeded workload on a
:class:`~kvstore.fs.SimFileSystem` that crashes at the N-th mutating file operation, power-cycles
the disk (optionally tearing the last write), reopens the engine and checks the recovered
contents against a model of what was *acknowledged*: with ``sync="always"`` the recovered map
must equal the acknowledged map, or the acknowledged map plus the one operation that was in
flight when the machine stopped (it may or may not have reached the disk, but never half).
"""

from __future__ import annotations

import contextlib
import random
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kvstore.fs import RebootReport, SimFileSystem, SimulatedCrash
from kvstore.lsm.engine import Engine, WriteBatch

DB_PATH = "/db"

# An engine small enough that a few hundred writes go through many flushes, several
# compactions across three levels and many manifest edits.
TINY_OPTIONS: dict[str, Any] = {
    "memtable_bytes": 2048,
    "table_target_bytes": 1024,
    "block_size_bytes": 256,
    "level1_target_bytes": 3072,
    "level_size_ratio": 2,
    "l0_compaction_trigger_files": 2,
    "l0_stall_files": 6,
    "block_cache_bytes": 16 * 1024,
    "background": False,
    "sync": "always",
}

Op = tuple[Any, ...]  # ("put", k, v) | ("delete", k) | ("batch", [(k, v|None), ...]) | ("flush",) | ("compact",)


def make_workload(seed: int, n_ops: int, *, key_space: int = 60) -> list[Op]:
    """A deterministic mix of puts, deletes, batches, flushes and full compactions."""
    rng = random.Random(seed)
    ops: list[Op] = []

    def key() -> bytes:
        return b"key%04d" % rng.randrange(key_space)

    def value() -> bytes:
        return rng.randbytes(rng.randrange(0, 40))

    for _ in range(n_ops):
        r = rng.random()
        if r < 0.55:
            ops.append(("put", key(), value()))
        elif r < 0.75:
            ops.append(("delete", key()))
        elif r < 0.93:
            size = rng.randrange(1, 8)
            ops.append(("batch", [(key(), value() if rng.random() < 0.7 else None) for _ in range(size)]))
        elif r < 0.98:
            ops.append(("flush",))
        else:
            ops.append(("compact",))
    return ops


def apply_to_model(model: dict[bytes, bytes], op: Op) -> None:
    """Apply one workload operation to a dict model."""
    if op[0] == "put":
        model[op[1]] = op[2]
    elif op[0] == "delete":
        model.pop(op[1], None)
    elif op[0] == "batch":
        for k, v in op[1]:
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v


def apply_to_engine(db: Engine, op: Op) -> None:
    """Apply one workload operation to an engine."""
    if op[0] == "put":
        db.put(op[1], op[2])
    elif op[0] == "delete":
        db.delete(op[1])
    elif op[0] == "batch":
        batch = WriteBatch()
        for k, v in op[1]:
            if v is None:
                batch.delete(k)
            else:
                batch.put(k, v)
        db.write(batch)
    elif op[0] == "flush":
        db.flush()
    elif op[0] == "compact":
        db.compact()


# Which engine activity a crash interrupted: the innermost frame that names one.
_BY_FILE = {"wal.py": "wal", "manifest.py": "manifest", "compaction.py": "compaction"}
_BY_FUNCTION = {
    "write_file_durably": "manifest",
    "_log_and_apply": "manifest",
    "_switch_memtable": "wal",
    "_write_one": "wal",
    "write": "wal",
    "_run_compaction": "compaction",
    "_flush_oldest": "flush",
    "_replay_wals": "recovery",
    "_recover": "recovery",
}


def classify_crash(exc: BaseException) -> str:
    """Name the engine activity (wal, flush, compaction, manifest, recovery) ``exc`` interrupted."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        name = frame.filename.rsplit("/", 1)[-1]
        if name in _BY_FILE:
            return _BY_FILE[name]
        if name == "engine.py" or name == "fs.py":
            activity = _BY_FUNCTION.get(frame.name)
            if activity is not None:
                return activity
    return "other"


@dataclass(frozen=True, slots=True)
class CrashOutcome:
    """What one crash point did and what recovery found."""

    crash_point: int
    crashed: bool
    activity: str
    report: RebootReport | None
    recovered: dict[bytes, bytes]
    acknowledged: dict[bytes, bytes]
    in_flight: Op | None


def count_mutating_ops(ops: list[Op], *, seed: int = 0, options: dict[str, Any] | None = None) -> int:
    """How many mutating file operations opening the engine, running ``ops`` and closing it takes."""
    fs = SimFileSystem(seed=seed)
    with Engine.open(DB_PATH, fs=fs, **(options or TINY_OPTIONS)) as db:
        for op in ops:
            apply_to_engine(db, op)
    return fs.op_count


def run_crash_point(
    ops: list[Op], crash_point: int, *, seed: int, tear: bool, options: dict[str, Any] | None = None
) -> CrashOutcome:
    """Run ``ops`` crashing at mutating operation ``crash_point``; reboot, reopen and read everything."""
    opts = options or TINY_OPTIONS
    fs = SimFileSystem(seed=seed)
    fs.schedule_crash(crash_point)
    acknowledged: dict[bytes, bytes] = {}
    in_flight: Op | None = None
    activity = "none"
    db: Engine | None = None
    try:
        db = Engine.open(DB_PATH, fs=fs, **opts)
        for op in ops:
            in_flight = op
            apply_to_engine(db, op)
            apply_to_model(acknowledged, op)
            in_flight = None
        db.close()
    except SimulatedCrash as e:
        activity = classify_crash(e)
        if db is not None:
            with contextlib.suppress(SimulatedCrash):
                db.close()
    crashed = fs.crashed
    report = fs.reboot(tear=tear) if crashed else None
    fs.schedule_crash(None)
    with Engine.open(DB_PATH, fs=fs, **opts) as db2:
        recovered = dict(db2.scan())
        db2.check_invariants()
        for k in set(acknowledged) | set(recovered):
            invariant_get = db2.get(k)
            if invariant_get != recovered.get(k):
                raise AssertionError(f"get({k!r}) = {invariant_get!r} disagrees with scan {recovered.get(k)!r}")
    return CrashOutcome(crash_point, crashed, activity, report, recovered, dict(acknowledged), in_flight)


def acceptable_states(outcome: CrashOutcome) -> Iterator[dict[bytes, bytes]]:
    """The states recovery may legally produce: acknowledged, or acknowledged + the in-flight op."""
    yield outcome.acknowledged
    if outcome.in_flight is not None:
        after = dict(outcome.acknowledged)
        apply_to_model(after, outcome.in_flight)
        yield after
