"""Run the engine benchmark workload against one store; print one JSON line per phase.

Usage: python bench/_engine_worker.py STORE KEYS DIR [--phases fill_batch,reads,...] [--profile FILE]

Phases (in order): fill_batch (random keys, batches of 1,000), read_hit, read_miss, scan,
compact + read_after_compact, fill_single (a fresh store, one put at a time), size. Each line:
``{"phase": ..., "ops": n, "seconds": t, ...}``. Printing as it goes lets the parent keep the
phases that finished when a slow store hits the time limit.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contextlib

from _engine_stores import STORES

VALUE_BYTES = 100
KEY_BYTES = 16
BATCH = 1000
READS_MAX = 200_000  # point reads per read phase (all keys when fewer)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def dir_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, f))
    return total


def timed(phase: str, ops: int, fn: Any, **extra: Any) -> None:
    t0 = time.perf_counter()
    c0 = time.process_time()
    result = fn()
    emit(phase=phase, ops=ops, seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0, **extra,
         **({"check": result} if isinstance(result, int) else {}))


def main() -> None:
    store_name, n, base = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    profile = sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else None
    rng = random.Random(12345)
    keys = [rng.randbytes(KEY_BYTES) for _ in range(n)]
    pool = [rng.randbytes(VALUE_BYTES) for _ in range(1024)]
    values = [pool[i & 1023] for i in range(n)]
    present = set(keys)
    reads = min(n, READS_MAX)
    hits = rng.sample(keys, reads)
    misses = []
    while len(misses) < reads:
        k = rng.randbytes(KEY_BYTES)
        if k not in present:
            misses.append(k)
    factory = STORES[store_name]
    path = os.path.join(base, store_name)
    shutil.rmtree(path, ignore_errors=True)
    # cProfile sees one thread: when profiling, run our flushes and compactions inline.
    inline = {"background": False} if profile and store_name == "kvstore" else {}
    store = factory(path, **inline)

    def fill_batch() -> None:
        for i in range(0, n, BATCH):
            store.put_batch(list(zip(keys[i : i + BATCH], values[i : i + BATCH], strict=True)))

    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.runcall(fill_batch)
        store.idle()
        prof.dump_stats(profile)
        prof = cProfile.Profile()  # the reads on their own: where the time of one get() goes
        prof.runcall(lambda: [store.get(k) for k in hits[:50_000]])
        prof.dump_stats(profile + ".reads")
        emit(phase="profile", ops=n, seconds=0.0)
        store.close()
        return
    timed("fill_batch", n, fill_batch)
    t0 = time.perf_counter()
    store.idle()
    emit(phase="settle", ops=0, seconds=time.perf_counter() - t0)

    def read_hits() -> int:
        return sum(store.get(k) is not None for k in hits)

    def read_misses() -> int:
        return sum(store.get(k) is None for k in misses)

    timed("read_hit", reads, read_hits)
    timed("read_miss", reads, read_misses)
    timed("scan", n, store.scan_count)
    user_bytes = n * (KEY_BYTES + VALUE_BYTES)
    emit(phase="size_before_compact", ops=0, seconds=0.0, bytes=dir_bytes(path), user_bytes=user_bytes, **store.extra())
    timed("compact", 0, store.compact)
    timed("read_after_compact", reads, read_hits)
    emit(phase="size", ops=0, seconds=0.0, bytes=dir_bytes(path), user_bytes=user_bytes, **store.extra())
    store.close()
    shutil.rmtree(path, ignore_errors=True)
    store = factory(path)

    def fill_single() -> None:
        for k, v in zip(keys, values, strict=True):
            store.put(k, v)

    timed("fill_single", n, fill_single)
    store.close()
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
