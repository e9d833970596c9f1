"""Summarize a py-spy ``--format raw`` profile of a kvstore node into where its time goes.

Usage (after ``node_bench.py --py-spy DIR``, which records with ``--gil``, so only
samples where the node's Python holds the GIL count, i.e. CPU, not waiting)::

    .venv/bin/python bench/_node_profile.py DIR/kvstore-put64-leader.txt

Each sample (one stack) is given to the first category, in the order below,
whose marker occurs anywhere in the stack; samples of the event loop itself
(uvloop and gRPC's C core running callbacks, with no Python frame of ours on
top) are "event loop + gRPC C core".
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("state machine apply (engine write, sessions)", ("KVStateMachine.apply",)),
    ("Raft log append + fsync", ("persist_ready", "DurableRaftLog.")),
    # A node's only outgoing gRPC calls are to its peers: one long-lived stream each (plus snapshot calls).
    ("peer stream out (batches written)", ("PeerTransport._call", "PeerTransport._sender", "grpc/aio/_ca")),
    ("peer stream in (RaftService)", ("RaftService.", "PeerTransport.receive")),
    (
        "client RPCs (KVService, PipelineStream, ReplicatedBackend)",
        ("KVService.", "PipelineStream.", "ReplicatedBackend."),
    ),
    ("Raft core", ("RaftCore.",)),
    ("node loop glue (inbox, Ready cycle)", ("RaftNode.",)),
    ("engine background (flush, compaction)", ("Engine._background_loop",)),
    ("tracing", ("JsonLinesTracer.", "TraceEvent.")),
    ("thread-pool hand-offs", ("concurrent/futures/thread.py", "Thread._bootstrap")),
    ("event loop + gRPC C core", ("Runner.run",)),
)


def summarize(path: Path) -> list[tuple[str, float]]:
    """(category, share of samples) for one raw profile, largest first."""
    counts: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        total += int(n)
        counts[_category(stack)] += int(n)
    return [(name, count / total) for name, count in counts.most_common()] if total else []


def _category(stack: str) -> str:
    for name, markers in CATEGORIES:
        if any(m in stack for m in markers):
            return name
    return "other"


def main(argv: list[str]) -> int:
    for arg in argv:
        print(arg)
        for name, share in summarize(Path(arg)):
            print(f"  {share * 100:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
