"""The two ways a node persists a Ready: fsync on the event loop when quiet, in a worker thread when busy.

An in-process one-node cluster (it elects itself) over the real durable log, with a
storage wrapper that records which thread ran each ``sync()``, so a test can tell the
paths apart; the answers must be the same either way.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kvstore.config import NodeConfig, NodeSection, RaftConfig
from kvstore.raft.core import Ready
from kvstore.raft.messages import Entry, EntryType, HardState
from kvstore.server import runtime
from kvstore.server.raft_log import DurableRaftLog
from kvstore.server.runtime import NodeLogStorage, RaftNode
from kvstore.server.state_machine import Command


class _RecordingLog:
    """A durable log that records the thread of every ``sync()``."""

    def __init__(self, inner: NodeLogStorage) -> None:
        self._inner = inner
        self.sync_threads: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def sync(self) -> None:
        self.sync_threads.append(threading.get_ident())
        self._inner.sync()


def _one_node(tmp_path: Path) -> tuple[RaftNode, list[_RecordingLog]]:
    logs: list[_RecordingLog] = []

    def factory(directory: str) -> NodeLogStorage:
        logs.append(_RecordingLog(DurableRaftLog.open(directory)))
        return logs[-1]

    cfg = NodeConfig(NodeSection("n1", "127.0.0.1:1", str(tmp_path / "n1")), raft=RaftConfig(tick_ms=10))
    return RaftNode(cfg, storage_factory=factory), logs


async def _leader(node: RaftNode) -> None:
    for _ in range(500):
        if node.core is not None and node.core.role.value == "leader":
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the one-node cluster did not elect itself in 5 s")


def _on_leader(tmp_path: Path, writes: Callable[[RaftNode], Awaitable[None]]) -> list[tuple[int, bool]]:
    """Run ``writes`` on a freshly elected one-node cluster; return each fsync it caused
    as (thread id, whether that was the event loop's thread)."""
    synced: list[tuple[int, bool]] = []

    async def run() -> None:
        node, logs = _one_node(tmp_path)
        await node.start()
        try:
            await _leader(node)
            before = len(logs[0].sync_threads)
            await writes(node)
            loop_thread = threading.get_ident()
            synced.extend((t, t == loop_thread) for t in logs[0].sync_threads[before:])
        finally:
            await node.stop(1.0)

    asyncio.run(run())
    return synced


def test_one_write_at_a_time_fsyncs_on_the_event_loop(tmp_path: Path) -> None:
    async def writes(node: RaftNode) -> None:
        for i in range(20):
            previous = await node.propose(Command("put", b"k", b"v%d" % i), timeout_s=5)
            assert previous == (b"v%d" % (i - 1) if i else None)

    synced = _on_leader(tmp_path, writes)
    assert len(synced) >= 20, f"expected an fsync per write, saw {len(synced)}"
    assert all(on_loop for _, on_loop in synced), "a lone write was fsynced off the event loop"


def test_many_writes_at_once_fsync_in_a_worker_thread_and_all_apply(tmp_path: Path) -> None:
    async def writes(node: RaftNode) -> None:
        results = await asyncio.gather(
            *(node.propose(Command("put", b"k%d" % i, b"v"), timeout_s=5) for i in range(64))
        )
        assert results == [None] * 64  # every key was new
        assert node.sm is not None
        assert all(node.sm.get(b"k%d" % i) == b"v" for i in range(64))

    synced = _on_leader(tmp_path, writes)
    assert any(not on_loop for _, on_loop in synced), "64 waiting writes were fsynced on the event loop"


def _ready(entries: int) -> Ready:
    return Ready(
        hard_state=HardState(1, "n1", 0),
        entries=tuple(Entry(1, i + 1, EntryType.NORMAL, b"x") for i in range(entries)),
    )


def test_the_quiet_rule_counts_waiting_writes_on_a_leader_and_entries_on_a_follower(tmp_path: Path) -> None:
    node, _ = _one_node(tmp_path)
    quiet = runtime.QUIET_APPEND_ENTRIES
    assert node._fsync_on_loop(_ready(quiet), leader=False)
    assert not node._fsync_on_loop(_ready(quiet + 1), leader=False)
    assert node._fsync_on_loop(_ready(0), leader=False)  # a vote or a new term alone
    loop = asyncio.new_event_loop()
    try:
        for i in range(runtime.QUIET_WAITING_WRITES):
            node._proposals[i + 1] = runtime._Proposal(1, loop.create_future())
        assert node._fsync_on_loop(_ready(1), leader=True)
        node._proposals[99] = runtime._Proposal(1, loop.create_future())
        assert not node._fsync_on_loop(_ready(1), leader=True)
    finally:
        loop.close()
