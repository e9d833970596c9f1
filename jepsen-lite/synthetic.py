"""Seeded synthetic histories from a simulated register, for tests and benchmarks.

Theory of operation. Every key is an ideal atomic register. Each of a few
logical clients per key issues operations one after another; an operation has
an interval [call, return] and, if it takes effect, a linearization point drawn
inside it. Applying the effective operations in the order of their points gives
every read its value and every compare-and-set its outcome — so the history is
linearizable by construction. Some operations fail (``fail``: not applied) and
some time out (``info``: applied or not, by a coin flip; the client continues
under a new process id).

A *planted* violation then rewrites one ``ok`` read to return a stale value: the
value of a write W1 such that another write W2 began after W1 returned and
returned before the read began. Written values are unique per key, so no
linearization can explain that read — the history is certainly not
linearizable, and the checker must say so for exactly the planted keys.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from jepsen_lite.history import NEMESIS_PROCESS, Event


@dataclass(slots=True)
class _SimOp:
    process: int
    key: str
    f: str
    call: float
    ret: float
    point: float | None  # linearization point; None = never takes effect
    status: str
    value: object = None
    output: object = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SyntheticHistory:
    """The events of a synthetic run and where violations were planted.

    Attributes:
        events: the history, in index order.
        planted_keys: keys in which one read was corrupted (empty for a linearizable history).
    """

    events: tuple[Event, ...]
    planted_keys: tuple[str, ...] = field(default=())


def simulate_register(
    *,
    seed: int,
    ops: int,
    keys: int,
    processes_per_key: int = 5,
    read_ratio: float = 0.45,
    cas_ratio: float = 0.2,
    fail_ratio: float = 0.03,
    info_ratio: float = 0.01,
    violations: int = 0,
    faults: int = 0,
) -> SyntheticHistory:
    """Generate a register history over ``keys`` keys with ``ops`` client operations in all.

    Args:
        seed: everything is derived from ``random.Random(seed)``; same arguments, same history.
        ops: total number of operations (spread evenly over the keys).
        keys: number of keys (named ``k0``, ``k1``...).
        processes_per_key: concurrent logical clients per key (the per-key concurrency).
        read_ratio, cas_ratio: shares of reads and compare-and-sets (the rest are writes).
        fail_ratio, info_ratio: shares of operations that fail definitely / time out.
        violations: how many distinct keys get one planted stale read (at most ``keys``).
        faults: how many cosmetic nemesis intervals to add (for timeline demos).

    Returns:
        the events and the planted keys.
    """
    rng = random.Random(seed)
    sim_ops: list[_SimOp] = []
    next_process = 0
    for k in range(keys):
        count = ops // keys + (1 if k < ops % keys else 0)
        key_ops, next_process = _key_schedule(
            rng, f"k{k}", count, processes_per_key, next_process, read_ratio, cas_ratio, fail_ratio, info_ratio
        )
        _apply_in_point_order(rng, key_ops)
        sim_ops.extend(key_ops)
    planted = _plant(rng, sim_ops, min(violations, keys))
    events = _to_events(sim_ops, _faults(rng, faults, sim_ops))
    return SyntheticHistory(events=tuple(events), planted_keys=tuple(sorted(planted)))


def _key_schedule(
    rng: random.Random,
    key: str,
    count: int,
    width: int,
    next_process: int,
    read_ratio: float,
    cas_ratio: float,
    fail_ratio: float,
    info_ratio: float,
) -> tuple[list[_SimOp], int]:
    """Intervals, kinds and outcomes of one key's operations (values come later)."""
    ready: list[tuple[float, int]] = []  # (time the client is free, process id)
    for _ in range(width):
        ready.append((rng.uniform(0.0, 0.01), next_process))
        next_process += 1
    heapq.heapify(ready)
    result: list[_SimOp] = []
    for _ in range(count):
        free_at, process = heapq.heappop(ready)
        call = free_at + rng.expovariate(1000.0)
        ret = call + rng.expovariate(200.0)
        roll = rng.random()
        f = "read" if roll < read_ratio else "cas" if roll < read_ratio + cas_ratio else "write"
        outcome = rng.random()
        status = "fail" if outcome < fail_ratio else "info" if outcome < fail_ratio + info_ratio else "ok"
        point: float | None = rng.uniform(call, ret)
        if status == "fail" or (status == "info" and rng.random() < 0.5):
            point = None
        error = {"fail": "unavailable", "info": "timeout"}.get(status)
        result.append(_SimOp(process, key, f, call, ret, point, status, error=error))
        if status == "info":
            process = next_process
            next_process += 1
        heapq.heappush(ready, (ret, process))
    return result, next_process


def _apply_in_point_order(rng: random.Random, key_ops: list[_SimOp]) -> None:
    """Give values: run the effective operations on one register in linearization-point order."""
    state: object = None
    written = 0
    for op in key_ops:
        if op.f == "write":
            written += 1
            op.value = written
    for op in sorted((o for o in key_ops if o.point is not None), key=lambda o: o.point or 0.0):
        if op.f == "read":
            op.output = state
        elif op.f == "write":
            state = op.value
            op.output = op.value
        else:
            written += 1
            expected = state if rng.random() < 0.6 else rng.choice([None, written + 1000])
            op.value = [expected, written]
            if expected == state:
                state = written
                op.output = op.value
            else:
                op.output = False
    for op in key_ops:
        if op.point is None and op.f == "cas":
            written += 1
            op.value = [written + 1000, written]


def _plant(rng: random.Random, sim_ops: list[_SimOp], count: int) -> set[str]:
    """Corrupt one ``ok`` read in each of ``count`` random keys (see the module docstring)."""
    by_key: dict[str, list[_SimOp]] = {}
    for op in sim_ops:
        by_key.setdefault(op.key, []).append(op)
    planted: set[str] = set()
    for key in rng.sample(sorted(by_key), len(by_key)):
        if len(planted) >= count:
            break
        reads = [op for op in by_key[key] if op.f == "read" and op.status == "ok"]
        writes = sorted((op for op in by_key[key] if op.f == "write" and op.status == "ok"), key=lambda o: o.ret)
        for read in rng.sample(reads, len(reads)):
            stale = _stale_value(writes, read)
            if stale is not None:
                read.output = stale
                planted.add(key)
                break
    return planted


def _stale_value(writes: list[_SimOp], read: _SimOp) -> object:
    """The value of a write W1 overwritten (by W2, W1 < W2 < read in real time) before ``read``; else None."""
    for w2 in writes:
        if w2.ret >= read.call:
            break
        for w1 in writes:
            if w1.ret < w2.call and w1.value != read.output:
                return w1.value
    return None


def _faults(rng: random.Random, count: int, sim_ops: list[_SimOp]) -> list[tuple[float, float, str]]:
    end = max((op.ret for op in sim_ops), default=1.0)
    spans = []
    for i in range(count):
        start = rng.uniform(0.0, end)
        name = ("partition", "kill n2", "pause n3")[i % 3]
        spans.append((start, min(end, start + rng.uniform(0.02, 0.2) * end), name))
    return spans


def _to_events(sim_ops: list[_SimOp], faults: list[tuple[float, float, str]]) -> list[Event]:
    """Lay the operations and faults out as events, in time order, indexed from 0."""
    raw: list[tuple[float, int, Event]] = []
    for seq, op in enumerate(sim_ops):
        raw.append((op.call, seq, Event(0, op.call, op.process, "invoke", op.f, op.key, _invoke_value(op))))
        done_value = op.output if op.status == "ok" else None
        if op.status != "ok" and op.f in ("write", "cas"):
            done_value = op.value
        raw.append((op.ret, seq, Event(0, op.ret, op.process, op.status, op.f, op.key, done_value, "n1", op.error)))
    for start, stop, name in faults:
        raw.append((start, -1, Event(0, start, NEMESIS_PROCESS, "invoke", "nemesis", name, {"fault": name})))
        raw.append((stop, -1, Event(0, stop, NEMESIS_PROCESS, "ok", "nemesis", name, None)))
    raw.sort(key=lambda item: (item[0], item[1]))
    return [
        Event(i, round(t, 9), e.process, e.type, e.f, e.key, e.value, e.node, e.error)
        for i, (t, _, e) in enumerate(raw)
    ]


def _invoke_value(op: _SimOp) -> object:
    return None if op.f == "read" else op.value
