"""Unit tests of RaftCore driven by hand: feed inputs, read the Ready, no simulator."""

from __future__ import annotations

import random

import pytest

from kvstore.errors import InvalidArgument, NotLeaderError, Unavailable
from kvstore.invariants import InvariantViolation
from kvstore.raft import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryType,
    HardState,
    Message,
    ProgressState,
    RaftConfig,
    RaftCore,
    Ready,
    RequestVote,
    RequestVoteResponse,
    RestoreState,
    Role,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
)
from kvstore.raft.messages import Configuration
from kvstore.trace import MemoryTracer

PEERS = ("n1", "n2", "n3")


def make(node: str = "n1", *, peers: tuple[str, ...] = PEERS, restore: RestoreState | None = None,
         **cfg: object) -> RaftCore:
    core = RaftCore(node, peers=peers, rng=random.Random(7), config=RaftConfig(**cfg),  # type: ignore[arg-type]
                    restore=restore)
    drain(core)
    return core


def drain(core: RaftCore) -> Ready:
    """Take the Ready and acknowledge it (as a runtime would after doing it)."""
    rd = core.ready()
    core.advance(rd)
    core.check_invariants()
    return rd


def msgs(rd: Ready, kind: type[Message]) -> list[Message]:
    return [m for m in rd.messages if isinstance(m, kind)]


def elect(core: RaftCore) -> Ready:
    """Make ``core`` leader of a 3-node cluster with one vote from n2; return the Ready with its first appends."""
    core.campaign(transfer=True)
    rd = drain(core)
    votes = msgs(rd, RequestVote)
    assert votes
    core.step(RequestVoteResponse(core.term, "n2", core.id, granted=True))
    assert core.role == Role.LEADER
    return drain(core)


def test_follower_rejects_append_with_stale_term() -> None:
    """An append from an older term is refused and answered with the current term (Figure 2, receiver 1)."""
    core = make(restore=RestoreState(hard_state=HardState(term=3)))
    core.step(AppendEntries(2, "n2", "n1", 0, 0, (Entry(2, 1),), 0))
    rd = drain(core)
    (reply,) = msgs(rd, AppendEntriesResponse)
    assert isinstance(reply, AppendEntriesResponse)
    assert not reply.success and reply.term == 3
    assert core.log.last_index() == 0


def test_vote_is_granted_at_most_once_per_term() -> None:
    """A node votes for one candidate per term, and says yes again to the same candidate (§5.2)."""
    core = make()
    core.step(RequestVote(1, "n2", "n1", 0, 0))
    core.step(RequestVote(1, "n3", "n1", 0, 0))
    core.step(RequestVote(1, "n2", "n1", 0, 0))
    replies = [m for m in drain(core).messages if isinstance(m, RequestVoteResponse)]
    assert [(m.to, m.granted) for m in replies] == [("n2", True), ("n3", False), ("n2", True)]
    assert core.voted_for == "n2"


def test_voter_refuses_a_candidate_whose_log_is_less_up_to_date() -> None:
    """Election restriction (§5.4.1): a longer log of the same last term, or a later last term, wins."""
    core = make(restore=RestoreState(hard_state=HardState(term=2), entries=(Entry(1, 1), Entry(2, 2))))
    core.step(RequestVote(3, "n2", "n1", 5, 1))  # longer, but older last term
    core.step(RequestVote(4, "n3", "n1", 2, 2))  # same last entry: up to date
    replies = [m for m in drain(core).messages if isinstance(m, RequestVoteResponse)]
    assert [(m.to, m.granted) for m in replies] == [("n2", False), ("n3", True)]


def test_granted_vote_leaves_in_the_same_ready_as_the_hard_state_that_records_it() -> None:
    """Persistence rule: the Ready carrying a granted vote also carries term and voted_for to persist first."""
    core = make()
    core.step(RequestVote(1, "n2", "n1", 0, 0))
    rd = drain(core)
    assert rd.hard_state is not None and rd.hard_state.voted_for == "n2" and rd.hard_state.term == 1
    assert any(isinstance(m, RequestVoteResponse) and m.granted for m in rd.messages)


def test_pre_vote_changes_no_terms() -> None:
    """A pre-vote round (thesis §9.6) leaves both the pre-candidate's and the voter's term alone."""
    a, b = make("n1"), make("n2")
    a.campaign()
    assert a.role == Role.PRE_CANDIDATE and a.term == 0
    (req, _) = msgs(drain(a), RequestVote)
    assert isinstance(req, RequestVote) and req.pre_vote and req.term == 1
    b.step(RequestVote(req.term, req.candidate_id, "n2", req.last_log_index, req.last_log_term, pre_vote=True))
    (reply,) = msgs(drain(b), RequestVoteResponse)
    assert isinstance(reply, RequestVoteResponse) and reply.granted and reply.pre_vote
    assert b.term == 0 and b.voted_for is None
    a.step(reply)
    assert a.role == Role.CANDIDATE and a.term == 1


def test_follower_in_lease_ignores_vote_requests_from_a_higher_term() -> None:
    """Check-quorum lease: a follower that just heard from its leader neither votes nor changes term."""
    core = make("n2")
    core.step(AppendEntries(1, "n1", "n2", 0, 0, (), 0))
    drain(core)
    core.step(RequestVote(5, "n3", "n2", 10, 5))
    rd = drain(core)
    assert core.term == 1 and msgs(rd, RequestVoteResponse) == []
    core.step(RequestVote(5, "n3", "n2", 10, 5, transfer=True))
    assert core.term == 5 and core.voted_for == "n3"


def test_single_node_commits_only_after_its_own_entry_is_persisted() -> None:
    """A one-voter cluster counts its own copy only after advance() (entries durable before counted)."""
    core = make(peers=("n1",))
    core.campaign()
    assert core.role == Role.LEADER
    rd = core.ready()
    assert [e.type for e in rd.entries] == [EntryType.NOOP] and rd.committed_entries == ()
    core.advance(rd)
    assert core.commit_index == 1
    assert [e.index for e in drain(core).committed_entries] == [1]


def test_new_leader_appends_a_noop_of_its_term() -> None:
    """§5.4.2 / §8: a new leader's first entry is an empty entry of its own term."""
    core = make()
    rd = elect(core)
    assert [(e.type, e.term) for e in rd.entries] == [(EntryType.NOOP, core.term)]
    apps = msgs(rd, AppendEntries)
    assert {m.to for m in apps} == {"n2", "n3"}


def test_leader_does_not_commit_an_old_term_entry_by_counting_replicas() -> None:
    """Figure 8: index 2 (term 1) on a majority is not committed until the term-2 no-op is."""
    core = make(restore=RestoreState(hard_state=HardState(term=1), entries=(Entry(1, 1), Entry(1, 2))))
    elect(core)
    assert core.term == 2 and core.log.last_index() == 3
    core.step(AppendEntriesResponse(2, "n2", "n1", True, match_index=2))
    assert core.commit_index == 0
    core.step(AppendEntriesResponse(2, "n2", "n1", True, match_index=3))
    assert core.commit_index == 3


def test_conflict_hint_lets_the_leader_skip_a_whole_term_in_one_step() -> None:
    """Fast back-off: a follower's (conflict_term, conflict_index) moves next_index past a whole term."""
    leader_log = tuple(Entry(1, i) for i in range(1, 4)) + tuple(Entry(4, i) for i in range(4, 9))
    core = make(restore=RestoreState(hard_state=HardState(term=4), entries=leader_log))
    elect(core)
    pr = core.progress["n3"]
    # n3 holds entries 4..20 of term 3, which the leader never had.
    core.step(AppendEntriesResponse(5, "n3", "n1", False, conflict_term=3, conflict_index=4))
    assert pr.state == ProgressState.PROBE and pr.next_index == 4
    follower = RaftCore("n3", peers=PEERS, rng=random.Random(1),
                        restore=RestoreState(hard_state=HardState(term=3),
                                             entries=tuple(Entry(1, i) for i in range(1, 4))
                                             + tuple(Entry(3, i) for i in range(4, 21))))
    assert follower.log.find_conflict_hint(9) == (3, 4)
    assert follower.log.find_conflict_hint(30) == (0, 21)


def test_maybe_append_truncates_only_from_the_first_conflicting_entry() -> None:
    """Figure 2, receiver 3-4: matching entries stay, the conflicting one and all after it go."""
    core = make(restore=RestoreState(hard_state=HardState(term=2),
                                     entries=(Entry(1, 1), Entry(1, 2), Entry(2, 3), Entry(2, 4))))
    core.step(AppendEntries(3, "n2", "n1", 1, 1, (Entry(1, 2), Entry(3, 3)), 0))
    rd = drain(core)
    assert [(e.index, e.term) for e in core.log.entries] == [(1, 1), (2, 1), (3, 3)]
    assert [(e.index, e.term) for e in rd.entries] == [(3, 3)]
    (reply,) = msgs(rd, AppendEntriesResponse)
    assert isinstance(reply, AppendEntriesResponse) and reply.success and reply.match_index == 3


def test_append_ack_leaves_in_the_same_ready_as_the_entries_it_acknowledges() -> None:
    """Persistence rule: entries are in the Ready that carries their acknowledgement (persist, then send)."""
    core = make("n2")
    core.step(AppendEntries(1, "n1", "n2", 0, 0, (Entry(1, 1), Entry(1, 2)), 0))
    rd = drain(core)
    assert [e.index for e in rd.entries] == [1, 2]
    assert any(isinstance(m, AppendEntriesResponse) and m.match_index == 2 for m in rd.messages)


def test_input_between_ready_and_advance_is_refused() -> None:
    """The Ready contract: no tick/step/propose until the last Ready is advanced."""
    core = make()
    core.campaign()
    core.ready()
    with pytest.raises(InvariantViolation):
        core.tick()


def test_propose_on_a_follower_raises_not_leader_with_a_hint() -> None:
    """A follower refuses proposals and names the leader it knows."""
    core = make("n2")
    core.step(AppendEntries(1, "n1", "n2", 0, 0, (), 0))
    drain(core)
    with pytest.raises(NotLeaderError) as info:
        core.propose(b"x")
    assert info.value.leader_hint == "n1"


def test_flow_control_caps_bytes_per_append_and_appends_in_flight() -> None:
    """REPLICATE state: at most max_inflight_appends messages in flight, each under max_append_bytes."""
    core = make(max_append_bytes=100, max_inflight_appends=3)
    elect(core)
    core.step(AppendEntriesResponse(1, "n2", "n1", True, match_index=1))
    drain(core)
    for i in range(20):
        core.propose(bytes(60) + bytes([i]))
    rd = drain(core)
    to_n2 = [m for m in msgs(rd, AppendEntries) if m.to == "n2"]
    assert isinstance(to_n2[0], AppendEntries)
    assert len(to_n2) == 3
    assert all(isinstance(m, AppendEntries) and len(m.entries) == 1 for m in to_n2)
    assert len(core.progress["n2"].inflight) == 3


def test_read_index_waits_for_one_quorum_round_shared_by_a_batch_of_reads() -> None:
    """ReadIndex: reads are served only after a quorum heartbeat round; reads queued meanwhile share the next."""
    core = make()
    elect(core)
    core.step(AppendEntriesResponse(1, "n2", "n1", True, match_index=1))
    drain(core)
    assert core.commit_index == 1
    core.read_index(b"r1")
    rd = drain(core)
    heartbeats = [m for m in msgs(rd, AppendEntries) if isinstance(m, AppendEntries) and m.read_context]
    assert len(heartbeats) == 2 and rd.read_states == ()
    core.read_index(b"r2")
    core.read_index(b"r3")
    assert drain(core).messages == ()  # batched behind the round in flight
    ctx = heartbeats[0].read_context if isinstance(heartbeats[0], AppendEntries) else b""
    core.step(AppendEntriesResponse(1, "n3", "n1", True, match_index=1, read_context=ctx))
    rd = drain(core)
    assert [r.context for r in rd.read_states] == [b"r1"]
    second = [m for m in msgs(rd, AppendEntries) if isinstance(m, AppendEntries) and m.read_context]
    assert len(second) == 2
    assert isinstance(second[0], AppendEntries)
    core.step(AppendEntriesResponse(1, "n2", "n1", True, match_index=1, read_context=second[0].read_context))
    assert [r.context for r in drain(core).read_states] == [b"r2", b"r3"]


def test_reads_pending_on_a_leader_that_steps_down_are_rejected() -> None:
    """A leader that learns of a higher term hands back its unconfirmed reads as rejected."""
    core = make()
    elect(core)
    core.step(AppendEntriesResponse(1, "n2", "n1", True, match_index=1))
    drain(core)
    core.read_index(b"r1")
    drain(core)
    core.step(AppendEntries(5, "n2", "n1", 1, 1, (), 1))
    rd = drain(core)
    assert rd.rejected_reads == (b"r1",) and rd.read_states == ()
    with pytest.raises(NotLeaderError):
        core.read_index(b"r2")


def test_transfer_sends_timeout_now_once_the_target_is_caught_up_and_blocks_proposals() -> None:
    """Leadership transfer: proposals are refused meanwhile; TimeoutNow goes out when the target matches."""
    core = make()
    elect(core)
    core.transfer_leadership("n2")
    with pytest.raises(Unavailable):
        core.propose(b"x")
    assert msgs(drain(core), TimeoutNow) == []
    core.step(AppendEntriesResponse(1, "n2", "n1", True, match_index=1))
    assert [m.to for m in msgs(drain(core), TimeoutNow)] == ["n2"]
    with pytest.raises(InvalidArgument):
        core.transfer_leadership("n9")


def test_a_second_configuration_change_waits_for_the_first_to_commit() -> None:
    """Single-server changes: one uncommitted configuration at a time, only after the leader's no-op commits."""
    core = make()
    elect(core)
    with pytest.raises(Unavailable):
        core.add_learner("n4")  # the no-op of this term is not committed yet
    core.step(AppendEntriesResponse(1, "n2", "n1", True, match_index=1))
    drain(core)
    index = core.add_learner("n4")
    assert core.configuration == Configuration(frozenset(PEERS), frozenset({"n4"}))
    assert core.log.entry(index).type == EntryType.CONFIG_CHANGE
    with pytest.raises(Unavailable):
        core.remove_member("n3")
    with pytest.raises(Unavailable):
        core.promote_learner("n4")  # not caught up either


def test_restart_from_a_snapshot_plus_log_tail_keeps_term_vote_and_log() -> None:
    """Restart: hard state, snapshot point and log tail come back; the snapshot's configuration is used."""
    snap = Snapshot(SnapshotMeta(5, 2, Configuration(frozenset({"n1", "n2", "n3", "n4"}))), b"state")
    core = make(peers=(), restore=RestoreState(HardState(3, "n2", 6), snap, (Entry(2, 6), Entry(3, 7))))
    assert (core.term, core.voted_for) == (3, "n2")
    assert core.log.snapshot_index == 5 and core.log.last_index() == 7 and core.commit_index == 6
    assert core.log.term(5) == 2 and core.log.term(4) is None
    assert core.configuration.voters == {"n1", "n2", "n3", "n4"}


def test_trace_event_is_emitted_for_each_role_transition() -> None:
    """Every state transition is traced: pre-candidate, candidate, leader."""
    tracer = MemoryTracer()
    core = RaftCore("n1", peers=("n1",), rng=random.Random(1), tracer=tracer)
    core.campaign()
    events = [e.event for e in tracer.events]
    assert events[:4] == ["started", "became_pre_candidate", "became_candidate", "became_leader"]
    assert tracer.events[-1].role == "leader" and tracer.events[-1].term == 1


def test_transfer_to_an_unresponsive_target_is_aborted_after_an_election_timeout() -> None:
    """A transfer that cannot finish stops blocking proposals after election_timeout_ticks."""
    core = make()
    elect(core)
    core.step(AppendEntriesResponse(1, "n3", "n1", True, match_index=1))
    drain(core)
    core.transfer_leadership("n2")
    for _ in range(core.cfg.election_timeout_ticks):
        core.tick()
        drain(core)
        core.step(AppendEntriesResponse(1, "n3", "n1", True, match_index=1))  # n3 keeps the quorum alive
        drain(core)
    assert core.role == Role.LEADER and core.transferee is None
    assert core.propose(b"x") == 2
