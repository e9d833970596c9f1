"""Peer transport batches: merging AppendEntries, and the stream's message encoding."""

from __future__ import annotations

from kvstore.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    InstallSnapshot,
    Message,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
)
from kvstore.server.transport import batch_messages, coalesce, fill_batch
from kvstore.wire import raft_pb2


def _append(prev: int, n: int, *, term: int = 2, commit: int = 0, ctx: bytes = b"", size: int = 1) -> AppendEntries:
    entries = tuple(Entry(term, prev + 1 + i, data=b"x" * size) for i in range(n))
    return AppendEntries(term, "n1", "n2", prev, term if prev else 0, entries, commit, ctx)


def test_consecutive_appends_merge_into_the_append_the_leader_would_have_sent_at_once() -> None:
    """Three appends that continue each other become one: first prev, all entries, highest commit."""
    merged = coalesce([_append(4, 1, commit=3), _append(5, 2, commit=4), _append(7, 1, commit=5)])
    assert len(merged) == 1
    m = merged[0]
    assert isinstance(m, AppendEntries)
    assert (m.prev_log_index, m.prev_log_term, m.leader_commit) == (4, 2, 5)
    assert [e.index for e in m.entries] == [5, 6, 7, 8]


def test_appends_that_do_not_continue_each_other_or_carry_reads_stay_apart() -> None:
    """A gap, a new term, a heartbeat, a read context or another message type stops merging; order is kept."""
    heartbeat = AppendEntries(2, "n1", "n2", 5, 2, (), 5, b"\x00\x01")
    gap = _append(9, 1)
    vote = RequestVote(3, "n3", "n2", 9, 2)
    msgs: list[Message] = [
        _append(4, 1),
        heartbeat,
        _append(5, 1),
        gap,
        _append(10, 1, term=3),
        vote,
        _append(5, 1, ctx=b"r"),
    ]
    assert coalesce(msgs) == msgs


def test_merging_stops_at_the_byte_limit() -> None:
    """Entries beyond max_bytes start a new append, so no merged append outgrows the limit."""
    msgs: list[Message] = [_append(i, 1, size=100) for i in range(10)]
    merged = coalesce(msgs, max_bytes=250)
    assert [len(m.entries) for m in merged if isinstance(m, AppendEntries)] == [2, 2, 2, 2, 2]
    assert [e.index for m in merged if isinstance(m, AppendEntries) for e in m.entries] == list(range(1, 11))


def test_a_batch_round_trips_every_stream_message_and_keeps_snapshots_out() -> None:
    """fill_batch then batch_messages gives back the same messages (responses addressed to the receiver);
    an InstallSnapshot is returned for a call of its own."""
    msgs: list[Message] = [
        _append(4, 2, commit=3, ctx=b"\x00\x07"),
        AppendEntriesResponse(2, "n1", "n2", False, 0, 1, 3, b"\x09"),
        RequestVote(3, "n1", "n2", 9, 2, pre_vote=True, transfer=True),
        RequestVoteResponse(3, "n1", "n2", True, pre_vote=True),
        TimeoutNow(2, "n1", "n2"),
    ]
    snapshot = InstallSnapshot(2, "n1", "n2", Snapshot(SnapshotMeta(5, 2), b"snap-1"))
    batch = raft_pb2.MessageBatch(to="n2")
    rest = fill_batch(batch, [*msgs, snapshot])
    assert rest == [snapshot]
    received, bad = batch_messages(raft_pb2.MessageBatch.FromString(batch.SerializeToString()))
    assert (received, bad) == (msgs, 0)


def test_a_malformed_message_in_a_batch_is_skipped_and_counted() -> None:
    """An entry of unknown type or an empty message is dropped (a lost message), the rest delivered."""
    batch = raft_pb2.MessageBatch(to="n2")
    fill_batch(batch, [_append(4, 1)])
    batch.messages.add().append.entries.add(term=1, index=1, type=99)
    batch.messages.add()  # no body at all
    received, bad = batch_messages(batch)
    assert received == [_append(4, 1)] and bad == 2
