"""Should the engine keep its own WAL when Raft drives it? Measure the apply path both ways.

The node's state machine writes each applied command as one engine batch with
``sync=False`` (the Raft log is the durable WAL). With the engine's WAL on, a
process crash loses nothing the engine was given (the OS still holds the bytes)
and a restart replays only the Raft entries after the engine's applied index;
with it off, a crash loses the whole memtable, so a restart replays up to a
memtable's worth of entries (and the Raft log must keep them). This script times
applying N put commands with the WAL on and off, alternating, and prints the
median ratio.

    .venv/bin/python bench/wal_choice_bench.py --entries 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time

from kvstore.raft.messages import Entry, EntryType
from kvstore.server.state_machine import Command, KVStateMachine, encode_command


def one_run(entries: int, *, wal: bool) -> float:
    """Seconds to apply ``entries`` puts (16-byte keys, 100-byte values) and close."""
    folder = tempfile.mkdtemp(prefix="walchoice-")
    try:
        sm = KVStateMachine.open(folder, wal_enabled=wal)
        cmds = [
            Entry(1, i + 1, EntryType.NORMAL, encode_command(Command("put", b"%016d" % i, b"v" * 100, None, 1, i + 1)))
            for i in range(entries)
        ]
        started = time.perf_counter()
        for e in cmds:
            sm.apply(e)
        elapsed = time.perf_counter() - started
        sm.close()
        return elapsed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """Alternate WAL on / off, print each run and the median ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    on: list[float] = []
    off: list[float] = []
    for _ in range(args.rounds):
        on.append(one_run(args.entries, wal=True))
        off.append(one_run(args.entries, wal=False))
    for label, runs in (("engine WAL on ", on), ("engine WAL off", off)):
        rate = args.entries / statistics.median(runs)
        print(f"{label}: median {statistics.median(runs):.2f}s for {args.entries} applies ({rate:,.0f}/s)")
    print(f"ratio on/off (median): {statistics.median(on) / statistics.median(off):.2f}")


if __name__ == "__main__":
    main()
