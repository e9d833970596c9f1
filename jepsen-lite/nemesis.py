"""Nemeses: the faults a run injects into a local cluster, on a seeded schedule.

Theory of operation. A :class:`Nemesis` drives one :class:`~kvstore.server.local_cluster.LocalCluster`.
Its schedule (:meth:`Nemesis.run_schedule`) alternates a fault interval and a
healthy interval until the run's stop time; each fault is chosen with the run's
seeded ``random.Random`` from the enabled kinds, started, recorded in the
history (process -1, ``f = "nemesis"``, ``type = "invoke"``), held for
``fault_s``, healed, and recorded again (``type = "ok"``, same key). Only one
fault is active at a time, so each heal undoes exactly one thing.

Kinds (``--nemesis`` names):

- ``partition`` (a random shape) or one shape: ``partition-halves``,
  ``partition-random-halves``, ``partition-isolate-one``, ``partition-isolate-leader``,
  ``partition-bridge``, ``partition-majorities-ring``. A shape is computed as a
  per-node ``isolate_from`` set (:func:`partition_plan`, pure) and applied
  through each node's ``InjectFaults`` admin RPC (the transport fault seam; no
  root needed), on both sides. Effect: Raft messages dropped (the nodes'
  ``dropped_messages`` counters, read at the start and at the heal).
- ``kill`` / ``kill-leader``: SIGKILL a random node (or the leader), restart it at
  the heal. Effect: pids killed.
- ``pause`` / ``pause-leader``: SIGSTOP a random node (or the leader), SIGCONT at
  the heal. Effect: pids stopped (checked in ``/proc``).
- ``power-loss`` / ``power-loss-all``: SIGKILL one node (or every node at once),
  drop every byte it had not fsynced (``LocalCluster.power_loss``), restart at
  the heal. Effect: bytes dropped.
- ``clock-skew``: give each node its own tick rate (``InjectFaults.tick_scale``,
  one of 0.5x, 2x, 4x), reset at the heal. Effect: nodes whose clock was skewed.
- ``bitflip``: SIGKILL a random node, flip one bit of one of its engine data
  files (largest first: SSTables), start it again; an instant event. Effect:
  bits flipped, and what the node did (refused to start, with its last log line,
  or serves). Not in any default: the node should refuse to start, and then the
  run continues with one node fewer. Measured: a flipped bit in an SSTable makes
  the node exit at start-up with ``corruption in .../000003.sst at offset 0:
  block checksum mismatch``.

- ``kill-voter`` (3 nodes, run with ``check_quorum = false``): stop the leader, let
  one candidate win the next term with delayed messages, SIGKILL the voter between
  its vote and the winner's first append, cut the winner off, and restart the old
  leader so it asks the restarted voter for a vote in that same term
  (:meth:`Nemesis._start_kill_voter`). Effect: voters killed right after voting.
  A node that forgets its vote elects a second leader of the term.
- ``deposed-leader`` (run with ``check_quorum = false``): cut the leader off so it
  piles up entries it cannot commit, let the majority elect and commit, then kill
  the new leader and reconnect the old one at once, so the next leader is elected
  with the stale log connected (:meth:`Nemesis._start_deposed_leader`). Effect:
  leaders elected with the deposed leader connected. A follower that skips the
  previous-entry term check keeps its stale entries.

Every blocking cluster call runs in a worker thread, so clients keep running
while a node restarts. :meth:`Nemesis.heal_all` undoes whatever is active and is
safe to call from a ``finally`` (it also SIGCONTs paused nodes, so that
``LocalCluster.down`` can stop them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import grpc
from jepsen_lite.history import HistoryRecorder

from kvstore import errors
from kvstore.server.local_cluster import LocalCluster
from kvstore.wire import kv_pb2, kv_pb2_grpc

PARTITION_SHAPES: Final = ("halves", "random-halves", "isolate-one", "isolate-leader", "bridge", "majorities-ring")
KINDS: Final = (
    "partition",
    *(f"partition-{s}" for s in PARTITION_SHAPES),
    "kill",
    "kill-leader",
    "pause",
    "pause-leader",
    "power-loss",
    "power-loss-all",
    "bitflip",
    "clock-skew",
    "kill-voter",
    "deposed-leader",
)
# Tick-interval multipliers the clock-skew nemesis chooses from (> 1: a slow clock, < 1: a fast one).
SKEW_SCALES: Final = (0.5, 2.0, 4.0)
ADMIN_TIMEOUT_S: Final = 1.0  # a paused node never answers; an admin call must not wait longer than this
RESTART_TIMEOUT_S: Final = 30.0  # a node replays its Raft log on restart; 2-core CI machines are slow
# kill-voter: every Raft message of the electing nodes waits this long, so a vote and the new leader's
# first append reach the voter this far apart -- the window in which the nemesis kills the voter. The
# harness sees the vote by polling Status every VOTE_POLL_S (a few ms on loopback), well inside it.
VOTE_DELAY_MS: Final = 300
VOTE_POLL_S: Final = 0.005
# kill-voter: the candidate's clock runs this much slower than normal, so one election round (a pre-vote and
# a vote, each delayed VOTE_DELAY_MS) fits in its election timeout; the voter's clock runs much slower still,
# so it never campaigns itself (no split vote) before the candidate has won.
CANDIDATE_TICK_SCALE: Final = 2.0
VOTER_TICK_SCALE: Final = 8.0
ELECTION_WAIT_S: Final = 10.0  # the longest a nemesis waits for an election it provoked
# deposed-leader: how long the first new leader commits writes before it is killed.
CHURN_WRITES_S: Final = 1.0


def parse_kinds(spec: str) -> tuple[str, ...]:
    """Split ``"partition,kill"`` into kinds.

    Raises:
        InvalidArgument: an unknown kind (the message lists the known ones).
    """
    kinds = tuple(k.strip() for k in spec.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise errors.InvalidArgument(f"unknown nemesis {', '.join(unknown) or '(none)'}; known: {', '.join(KINDS)}")
    return kinds


def partition_plan(
    shape: str, nodes: Sequence[str], rng: random.Random, *, leader: str | None = None
) -> dict[str, set[str]]:
    """Each node's ``isolate_from`` set for a partition shape (pure; symmetric by construction).

    Args:
        shape: one of PARTITION_SHAPES.
        nodes: the node ids, at least 2.
        rng: picks the random members (random-halves, isolate-one, bridge).
        leader: the node to cut off for ``isolate-leader`` (a random node when None).

    Returns:
        node -> the peers it must not exchange messages with; ``b in plan[a]`` iff ``a in plan[b]``.

    Shapes: ``halves`` splits the sorted ids into a smaller and a larger half;
    ``random-halves`` the same after a shuffle; ``isolate-one`` / ``isolate-leader``
    cut one node from the rest; ``bridge`` makes two halves that share one node
    (only that node talks to both); ``majorities-ring`` places the nodes on a
    shuffled ring where each talks only to its nearest neighbours, a majority
    counting itself, so every node sees a majority but no two see the same one
    (with 3 nodes everyone still sees everyone).
    """
    order = sorted(nodes)
    if shape != "halves":
        rng.shuffle(order)
    n = len(order)
    connected: set[frozenset[str]] = set()
    if shape in ("halves", "random-halves"):
        groups = [order[: n // 2], order[n // 2 :]]
    elif shape in ("isolate-one", "isolate-leader"):
        lone = leader if shape == "isolate-leader" and leader in order else order[0]
        groups = [[lone], [x for x in order if x != lone]]
    elif shape == "bridge":
        groups = [order[: n // 2 + 1], order[n // 2 :]]
    elif shape == "majorities-ring":
        reach = (n // 2 + 1) // 2  # neighbours on each side: 2 * reach + 1 >= a majority
        groups = [[order[i], order[(i + d) % n]] for i in range(n) for d in range(-reach, reach + 1)]
    else:
        raise errors.InvalidArgument(f"unknown partition shape {shape!r}; known: {', '.join(PARTITION_SHAPES)}")
    for group in groups:
        connected.update(frozenset((a, b)) for a in group for b in group)
    return {a: {b for b in order if b != a and frozenset((a, b)) not in connected} for a in order}


@dataclass
class FaultCounts:
    """How many faults of one kind were started, and what they measurably did."""

    started: int = 0
    effect: int = 0
    unit: str = ""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"started": self.started, "effect": self.effect, "unit": self.unit, "notes": self.notes[:20]}


@dataclass
class _Active:
    """The fault in effect: its history key and what its heal must undo."""

    kind: str
    name: str
    nodes: list[str]
    before: dict[str, int] = field(default_factory=dict)  # partition: dropped_messages at the start


class Nemesis:
    """Applies and heals faults on a local cluster, recording each in the history (see the module docstring).

    Call rules: ``start`` and ``heal`` alternate (one fault at a time); ``heal_all``
    may be called at any moment, repeatedly. Not thread-safe: one asyncio task drives it.
    """

    def __init__(
        self,
        cluster: LocalCluster,
        recorder: HistoryRecorder,
        *,
        kinds: Sequence[str],
        rng: random.Random,
        seed: int,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.recorder = recorder
        self.kinds = tuple(kinds)
        self.rng = rng
        self.seed = seed
        self.log = log or (lambda _m: None)
        self.counts: dict[str, FaultCounts] = {}
        self.active: _Active | None = None
        self.paused_pids: dict[str, int] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}

    # ------------------------------------------------------------ schedule

    async def run_schedule(self, *, stop_at: float, fault_s: float, heal_s: float, first_delay_s: float) -> None:
        """Alternate healthy and faulty intervals until ``stop_at`` (loop time); heal before returning."""
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(min(first_delay_s, max(0.0, stop_at - loop.time())))
            while loop.time() + fault_s / 2 < stop_at:
                await self.start(self.rng.choice(self.kinds))
                await asyncio.sleep(max(0.0, min(fault_s, stop_at - loop.time())))
                await self.heal()
                await asyncio.sleep(max(0.0, min(heal_s, stop_at - loop.time())))
        finally:
            await self.heal_all()

    async def start(self, kind: str) -> None:
        """Start one fault of ``kind`` (a KINDS name) and record it."""
        await self.heal()  # one fault at a time
        if kind.startswith("partition"):
            shape = self.rng.choice(PARTITION_SHAPES) if kind == "partition" else kind.removeprefix("partition-")
            await self._start_partition(shape)
        elif kind in ("kill", "kill-leader"):
            await self._start_kill(await self._target(leader=kind == "kill-leader"))
        elif kind in ("pause", "pause-leader"):
            await self._start_pause(await self._target(leader=kind == "pause-leader"))
        elif kind in ("power-loss", "power-loss-all"):
            await self._start_power_loss(every_node=kind == "power-loss-all")
        elif kind == "bitflip":
            await self._bitflip()
        elif kind == "clock-skew":
            await self._start_clock_skew()
        elif kind == "kill-voter":
            await self._start_kill_voter()
        elif kind == "deposed-leader":
            await self._start_deposed_leader()
        else:
            raise errors.InvalidArgument(f"unknown nemesis {kind!r}")

    async def heal(self) -> None:
        """Undo the active fault (if any) and record the heal."""
        active, self.active = self.active, None
        if active is None:
            return
        if active.kind == "partition":
            after = await self._inject_all({})
            dropped = sum(max(0, after.get(n, 0) - active.before.get(n, 0)) for n in active.nodes)
            self._count("partition", effect=dropped, unit="raft messages dropped")
            self.recorder.nemesis(active.name, "ok", {"dropped_messages": dropped})
        elif active.kind == "kill-voter":
            await self._restart([n for n in active.nodes if not self.cluster.is_running(n)])
            await self._inject_all({})
            self.recorder.nemesis(active.name, "ok", None)
        elif active.kind == "clock-skew":
            await self._inject_all({})
            self.recorder.nemesis(active.name, "ok", None)
        elif active.kind == "pause":
            for node in active.nodes:
                pid = self.paused_pids.pop(node, None)
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
            self.recorder.nemesis(active.name, "ok", None)
        else:  # kill, power-loss: restart the nodes
            outcome = await self._restart(active.nodes)
            self.recorder.nemesis(active.name, "ok", outcome)
        self.log(f"healed {active.name}")

    async def heal_all(self) -> None:
        """Heal the active fault, resume every paused node and clear every node's fault settings (best effort)."""
        for node, pid in list(self.paused_pids.items()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
            self.paused_pids.pop(node, None)
        await self.heal()
        await self._inject_all({})

    async def close(self) -> None:
        """Close the admin channels."""
        channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            await ch.close(None)

    def summary(self) -> dict[str, dict[str, object]]:
        """Per kind: faults started, and their measured effect (with its unit)."""
        return {kind: counts.to_json() for kind, counts in sorted(self.counts.items())}

    def check_invariants(self) -> None:
        """Paused nodes belong to the active pause; effects are never negative."""
        from kvstore.invariants import invariant

        invariant(all(c.effect >= 0 and c.started >= 0 for c in self.counts.values()), "counts are non-negative")
        if self.paused_pids:
            invariant(self.active is not None and self.active.kind == "pause", "a paused node belongs to the pause")

    # ------------------------------------------------------------ faults

    async def _start_partition(self, shape: str) -> None:
        nodes = list(self.cluster.nodes)
        leader = await self.leader() if shape == "isolate-leader" else None
        plan = partition_plan(shape, nodes, self.rng, leader=leader)
        name = f"partition {shape}"
        self.recorder.nemesis(name, "invoke", {n: sorted(p) for n, p in plan.items()})
        before = await self._inject_all(plan)
        self.active = _Active("partition", name, nodes, before)
        self._count("partition", started=1, unit="raft messages dropped")
        self.log(f"started {name}: {', '.join(f'{n}x{sorted(p)}' for n, p in plan.items() if p)}")

    async def _start_clock_skew(self) -> None:
        """Give every node its own tick rate (per-node clock skew through InjectFaults.tick_scale)."""
        scales = {n: self.rng.choice(SKEW_SCALES) for n in self.cluster.nodes}
        name = "clock-skew " + " ".join(f"{n}x{scale:g}" for n, scale in sorted(scales.items()))
        self.recorder.nemesis(name, "invoke", {n: scale for n, scale in scales.items()})
        skewed = 0
        for node_id, node in self.cluster.nodes.items():
            req = kv_pb2.InjectFaultsRequest(seed=self.seed, tick_scale=scales[node_id])
            try:
                r = await kv_pb2_grpc.KVStub(self._channel(node.spec.address)).InjectFaults(
                    req, timeout=ADMIN_TIMEOUT_S
                )
            except grpc.RpcError:
                continue  # down or paused: it keeps its normal clock
            if r.HasField("error"):
                raise errors.ConfigError(f"node {node_id} refused InjectFaults: {r.error.message}")
            skewed += scales[node_id] != 1.0
        self._count("clock-skew", started=1, effect=skewed, unit="nodes with a skewed clock")
        self.active = _Active("clock-skew", name, list(self.cluster.nodes))
        self.log(f"started {name}")

    async def _current_leader(self) -> tuple[str, int] | None:
        """(leader, term) of the highest term any node reports leading, or None."""
        found = [(int(st.term), n) for n, st in (await self._statuses(list(self.cluster.nodes))).items()
                 if st.role == "leader"]
        return (max(found)[1], max(found)[0]) if found else None

    async def _start_kill_voter(self) -> None:
        """Kill a node between its vote and the new leader's first append, then let it meet another candidate.

        The story (3 nodes; run it with ``check_quorum = false``, so no leader lease
        makes a voter ignore the candidate): stop the leader L of term T (gracefully, so
        its log keeps every entry it sent and stays at least as up to date as V's). Of the two
        others, the candidate C gets a fast clock and every Raft message it sends waits
        VOTE_DELAY_MS; the voter V gets a slow clock, so C alone campaigns and wins
        T + 1 with V's vote, and C's first append reaches V only VOTE_DELAY_MS later.
        The nemesis polls until C leads T + 1 and SIGKILLs V at once. Then C is cut off
        from both, V restarts with a slow clock and then L (term T, a log at least as
        long as V's) with a fast one: L campaigns for T + 1 and asks V. A node that
        persisted its vote refuses (it voted for C in T + 1); one that forgot it votes
        again, and T + 1 has two leaders (the election-safety check reads it in the
        traces). Healed like a partition. Effect: voters killed after granting their
        vote (read back from the voter's trace file), i.e. the second vote was asked
        of a node that had already voted.
        """
        nodes = list(self.cluster.nodes)
        unit = "voters killed after voting"
        current = await self._current_leader()
        if current is None or len(nodes) != 3:
            self._count("kill-voter", started=1, unit=unit, note="no leader (or not 3 nodes)")
            self.recorder.nemesis("kill-voter", "info", {"skipped": "no leader or not 3 nodes"})
            return
        old, term = current
        candidate, voter = self.rng.sample([n for n in nodes if n != old], 2)
        name = f"kill-voter {old}"
        self.recorder.nemesis(name, "invoke", {"leader": old, "term": term, "candidate": candidate, "voter": voter})
        self.active = _Active("kill-voter", name, nodes)
        await self._inject(candidate, set(), delay_ms=VOTE_DELAY_MS, tick_scale=CANDIDATE_TICK_SCALE)
        await self._inject(voter, set(), tick_scale=VOTER_TICK_SCALE)
        # Stop it gracefully (a SIGKILL could cost it its unsynced last entries), in the background: draining
        # its in-flight requests can take seconds, while the election and the kill below take milliseconds.
        stopping = asyncio.create_task(asyncio.to_thread(self.cluster.stop, old))
        try:
            won = await self._wait_leader([candidate, voter], above_term=term, timeout_s=ELECTION_WAIT_S,
                                          poll_s=VOTE_POLL_S)
            if won is not None and won[1] == term + 1:
                if won[0] != candidate:  # the slow one won after all: the roles swap (its append is not delayed)
                    candidate, voter = voter, candidate
                with contextlib.suppress(errors.KVError):
                    await asyncio.to_thread(self.cluster.kill, voter)
        finally:
            with contextlib.suppress(errors.KVError):
                await stopping
        if won is None or won[1] != term + 1:
            self._count("kill-voter", started=1, unit=unit, note=f"no leader of term {term + 1}: {won}")
            return
        await self._inject(candidate, {old, voter})
        vote = voted_after(self.cluster.node(voter).folder / "data" / "trace.jsonl", above_term=term)
        # The voter first: the old leader then starts with fresh connections and reaches it at once (a node
        # that started while its peer was down waits out gRPC's reconnect back-off before it can reach it).
        # The voter stays cut off from the old leader until both clocks are set: until its slow clock is in
        # place it campaigns at the normal rate, and the old leader, just started, would grant its pre-vote.
        outcome = await self._restart([voter])
        await self._inject(voter, {candidate, old}, tick_scale=VOTER_TICK_SCALE)
        outcome.update(await self._restart([old]))
        await self._inject(old, {candidate}, tick_scale=CANDIDATE_TICK_SCALE / VOTER_TICK_SCALE)
        await self._inject(voter, {candidate}, tick_scale=VOTER_TICK_SCALE)
        ending = await self._wait_second_election(old, voter, term=term + 1)
        note = (f"{voter} voted for {vote} in term {term + 1} and was killed; {candidate} cut off; "
                f"{old} asks {voter} again; {outcome}; {ending}")
        self._count("kill-voter", started=1, effect=int(vote == candidate), unit=unit, note=note)
        self.recorder.nemesis(name, "info", {"voter": voter, "vote": vote, "candidate": candidate})
        self.log(f"started {name}: {note}")

    async def _wait_second_election(self, old: str, voter: str, *, term: int) -> str:
        """Hold the kill-voter story until it ends: ``old`` leads, or a term above ``term`` starts, or time runs out.

        The story must not be cut short by the schedule's heal (restarts on a slow machine can
        take most of the fault interval); this is what the nemesis waits for before returning.
        """
        deadline = time.monotonic() + ELECTION_WAIT_S
        while time.monotonic() < deadline:
            statuses = await self._statuses([old, voter])
            if (st := statuses.get(old)) is not None and st.role == "leader":
                return f"{old} leads term {st.term}"
            if any(st.term > term for st in statuses.values()):
                return f"a term above {term} started"
            await asyncio.sleep(0.05)
        return f"no new leader within {ELECTION_WAIT_S:g} s"

    async def _start_deposed_leader(self) -> None:
        """Cut the leader off, let a new leader commit, then kill that one and reconnect the old one at once.

        With ``check_quorum = false`` the cut-off leader L keeps accepting writes it can
        never commit, so its log grows a stale suffix past its commit index. The other
        two elect W and commit writes for CHURN_WRITES_S. Then W is SIGKILLed and L's
        partition healed in the same moment: the survivor S (its log is newer than L's)
        is elected with L connected, and S's first append to L probes an index inside
        L's stale suffix. Only the previous-entry term check makes L reject it and back
        off to the real match point; a follower without it keeps its stale entries
        under S's (Log Matching broken, replicas apply different commands). W restarts
        at the heal. Effect: new leaders elected with the deposed leader connected.
        """
        nodes = list(self.cluster.nodes)
        unit = "leaders elected with the deposed leader connected"
        current = await self._current_leader()
        old, term = current if current else (self.rng.choice(nodes), 0)
        plan = partition_plan("isolate-leader", nodes, self.rng, leader=old)
        name = f"deposed-leader {old}"
        self.recorder.nemesis(name, "invoke", {n: sorted(p) for n, p in plan.items()})
        before = await self._inject_all(plan)
        self.active = _Active("partition", name, nodes, before)
        self._count("partition", started=1, unit="raft messages dropped")
        others = [n for n in nodes if n != old]
        first = await self._wait_leader(others, above_term=term, timeout_s=ELECTION_WAIT_S)
        if first is None:
            self._count("deposed-leader", started=1, unit=unit, note=f"no new leader after {old} was cut off")
            return
        await asyncio.sleep(CHURN_WRITES_S)
        with contextlib.suppress(errors.KVError):
            await asyncio.to_thread(self.cluster.kill, first[0])
        after = await self._inject_all({})
        dropped = sum(max(0, after.get(n, 0) - before.get(n, 0)) for n in nodes)
        self._count("partition", effect=dropped)
        self.active = _Active("kill", name, [first[0]])
        rest = [n for n in nodes if n != first[0]]
        second = await self._wait_leader(rest, above_term=first[1], timeout_s=ELECTION_WAIT_S)
        elected = second is not None and second[0] != old
        note = f"{old} cut off in term {term}; {first[0]} led term {first[1]} and was killed; then {second}"
        self._count("deposed-leader", started=1, effect=int(elected), unit=unit, note=note)
        self.log(f"started {name}: {note}")

    async def _target(self, *, leader: bool) -> str:
        """The leader (when asked for and known), else a random running node."""
        chosen = await self.leader() if leader else None
        return chosen or self.rng.choice(self._running())

    async def _start_kill(self, node: str) -> None:
        self.recorder.nemesis(f"kill {node}", "invoke", {"node": node})
        try:
            pid = await asyncio.to_thread(self.cluster.kill, node)
        except errors.KVError as exc:
            self._count("kill", started=1, unit="processes killed", note=f"{node}: {exc}")
        else:
            self._count("kill", started=1, effect=1, unit="processes killed", note=f"{node} pid {pid}")
        self.active = _Active("kill", f"kill {node}", [node])
        self.log(f"killed {node}")

    async def _start_pause(self, node: str) -> None:
        pid = self.cluster.node(node).running_pid()
        self.recorder.nemesis(f"pause {node}", "invoke", {"node": node, "pid": pid})
        stopped = False
        if pid is not None:
            os.kill(pid, signal.SIGSTOP)
            self.paused_pids[node] = pid
            stopped = await _wait_stopped(pid, timeout_s=2.0)
        self._count("pause", started=1, effect=int(stopped), unit="processes stopped", note=f"{node} pid {pid}")
        self.active = _Active("pause", f"pause {node}", [node])
        self.log(f"paused {node}")

    async def _start_power_loss(self, *, every_node: bool) -> None:
        nodes = self._running() if every_node else [self.rng.choice(self._running())]
        kind = "power-loss-all" if every_node else "power-loss"
        name = f"{kind} {','.join(nodes)}"
        self.recorder.nemesis(name, "invoke", {"nodes": nodes})
        dropped = 0
        for node in nodes:  # SIGKILL all first, so no node outlives the others' power cut
            with contextlib.suppress(errors.KVError):
                await asyncio.to_thread(self.cluster.kill, node)
        for node in nodes:
            try:
                report = await asyncio.to_thread(self.cluster.power_loss, node)
            except errors.KVError as exc:
                self._count(kind, note=f"{node}: {exc}")
                continue
            dropped += report.bytes_dropped
        self._count(kind, started=1, effect=dropped, unit="unsynced bytes dropped")
        self.active = _Active(kind, name, nodes)
        self.log(f"power loss on {', '.join(nodes)}: {dropped} unsynced bytes dropped")

    async def _bitflip(self) -> None:
        node = self.rng.choice(self._running())
        with contextlib.suppress(errors.KVError):
            await asyncio.to_thread(self.cluster.kill, node)
        files = data_files(self.cluster.node(node).folder / "data")
        name = f"bitflip {node}"
        if not files:
            self._count("bitflip", started=1, unit="bits flipped", note=f"{node}: no engine data file to flip")
            self.recorder.nemesis(name, "info", {"node": node, "file": None})
            await self._restart([node])
            return
        path = self.rng.choice(files)
        offset = flip_bit(path, self.rng)
        outcome = {node: await self._start_and_watch(node)}
        note = f"{node}: flipped a bit of {path.name} at byte {offset}; on restart: {outcome[node]}"
        self._count("bitflip", started=1, effect=1, unit="bits flipped", note=note)
        self.recorder.nemesis(name, "info", {"node": node, "file": path.name, "offset": offset, **outcome})
        self.log(note)

    async def _restart(self, nodes: Sequence[str]) -> dict[str, str]:
        outcome: dict[str, str] = {}
        for node in nodes:
            try:
                await asyncio.to_thread(self.cluster.restart, node, timeout_s=RESTART_TIMEOUT_S)
                outcome[node] = "restarted"
            except errors.KVError as exc:
                outcome[node] = f"did not restart: {str(exc)[-300:]}"
                self._count("restart-failures", started=1, effect=1, unit="nodes that did not restart", note=str(exc))
        return outcome

    async def _start_and_watch(self, node: str) -> str:
        """Start a node after a bit flip; say whether it serves or exits (bounded; a refusal is expected)."""
        self.cluster.start(node)
        address = self.cluster.node(node).spec.address
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.cluster.is_running(node):
                tail = self.cluster.node(node).process().log_tail(1)
                self.cluster.stop(node)  # reap it and forget its pid file
                return f"refused to start: {tail[-300:]}"
            with contextlib.suppress(grpc.RpcError):
                await kv_pb2_grpc.KVStub(self._channel(address)).Status(kv_pb2.StatusRequest(), timeout=0.5)
                return "restarted and serving"
            await asyncio.sleep(0.1)
        return f"neither serving nor exited after {RESTART_TIMEOUT_S:.0f} s"

    # ------------------------------------------------------------ admin RPCs

    async def leader(self) -> str | None:
        """The node that reports itself leader in the highest term, or None."""
        best: tuple[int, str] | None = None
        for node_id, node in self.cluster.nodes.items():
            try:
                r = await kv_pb2_grpc.KVStub(self._channel(node.spec.address)).Status(
                    kv_pb2.StatusRequest(), timeout=ADMIN_TIMEOUT_S
                )
            except grpc.RpcError:
                continue
            if r.role == "leader" and (best is None or r.term > best[0]):
                best = (r.term, node_id)
        return best[1] if best else None

    async def _inject_all(
        self,
        plan: dict[str, set[str]],
        *,
        delay_ms: dict[str, int] | None = None,
        tick_scale: dict[str, float] | None = None,
    ) -> dict[str, int]:
        """Send each node its isolate_from set, delay and tick rate (absent = none); return node -> dropped so far.

        InjectFaults replaces a node's settings as a whole, so an empty plan heals everything.
        """
        dropped: dict[str, int] = {}
        for node_id in self.cluster.nodes:
            count = await self._inject(
                node_id, plan.get(node_id, set()), delay_ms=(delay_ms or {}).get(node_id, 0),
                tick_scale=(tick_scale or {}).get(node_id, 0.0),
            )
            if count is not None:
                dropped[node_id] = count
        return dropped

    async def _inject(
        self, node_id: str, isolate_from: set[str], *, delay_ms: int = 0, tick_scale: float = 0.0
    ) -> int | None:
        """Replace one node's fault settings; its dropped_messages, or None when it does not answer (down, paused)."""
        req = kv_pb2.InjectFaultsRequest(
            isolate_from=sorted(isolate_from), seed=self.seed, delay_ms=delay_ms, tick_scale=tick_scale
        )
        address = self.cluster.node(node_id).spec.address
        try:
            r = await kv_pb2_grpc.KVStub(self._channel(address)).InjectFaults(req, timeout=ADMIN_TIMEOUT_S)
        except grpc.RpcError:
            return None  # down or paused: it comes back with no faults set
        if r.HasField("error"):
            raise errors.ConfigError(f"node {node_id} refused InjectFaults: {r.error.message}")
        return int(r.dropped_messages)

    async def _statuses(self, nodes: Sequence[str]) -> dict[str, kv_pb2.StatusResponse]:
        """Status of each node that answers within ADMIN_TIMEOUT_S."""
        out: dict[str, kv_pb2.StatusResponse] = {}
        for node_id in nodes:
            address = self.cluster.node(node_id).spec.address
            with contextlib.suppress(grpc.RpcError):
                out[node_id] = await kv_pb2_grpc.KVStub(self._channel(address)).Status(
                    kv_pb2.StatusRequest(), timeout=ADMIN_TIMEOUT_S
                )
        return out

    async def _wait_leader(
        self, nodes: Sequence[str], *, above_term: int, timeout_s: float, poll_s: float = 0.05
    ) -> tuple[str, int] | None:
        """The first of ``nodes`` to report itself leader in a term above ``above_term``: (node, term), or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node_id, st in (await self._statuses(nodes)).items():
                if st.role == "leader" and st.term > above_term:
                    return node_id, int(st.term)
            await asyncio.sleep(poll_s)
        return None

    def _channel(self, address: str) -> grpc.aio.Channel:
        ch = self._channels.get(address)
        if ch is None:
            ch = self._channels[address] = grpc.aio.insecure_channel(address)
        return ch

    def _running(self) -> list[str]:
        return [n for n in self.cluster.nodes if self.cluster.is_running(n)] or list(self.cluster.nodes)

    def _count(self, kind: str, *, started: int = 0, effect: int = 0, unit: str = "", note: str = "") -> None:
        counts = self.counts.setdefault(kind, FaultCounts(unit=unit))
        counts.started += started
        counts.effect += effect
        counts.unit = unit or counts.unit
        if note:
            counts.notes.append(note)


def data_files(data_dir: Path) -> list[Path]:
    """The engine's files under a node's data folder that a bit flip may hit: SSTables first, largest first.

    Without an SSTable yet (nothing flushed), the engine's manifest and log files are
    the candidates. Raft log segments, the trace and the power-loss journal are left out:
    the bit flip aims at the engine's stored data.
    """
    skip = ("trace", "journal", "raft", "lock", "tmp", "snapshot")
    found = [
        p
        for p in data_dir.rglob("*")
        if p.is_file() and p.stat().st_size >= 16 and not any(s in str(p.relative_to(data_dir)) for s in skip)
    ]
    tables = [p for p in found if p.suffix == ".sst"]
    return sorted(tables or found, key=lambda p: (-p.stat().st_size, str(p)))


def voted_after(trace: Path, *, above_term: int) -> str | None:
    """The candidate a node's trace says it granted a (real, not pre-) vote to in a term above ``above_term``."""
    found: str | None = None
    with contextlib.suppress(OSError), open(trace, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            with contextlib.suppress(ValueError, AttributeError):
                e = json.loads(line)
                fields = e.get("fields") or {}
                if e.get("event") == "vote_granted" and e.get("term", 0) > above_term and not fields.get("pre_vote"):
                    found = str(fields.get("candidate"))
    return found


def flip_bit(path: Path, rng: random.Random) -> int:
    """Flip one random bit of ``path`` in place; return the byte offset."""
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        offset = rng.randrange(size)
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ (1 << rng.randrange(8))]))
        fh.flush()
        os.fsync(fh.fileno())
    return offset


async def _wait_stopped(pid: int, *, timeout_s: float) -> bool:
    """Wait until ``/proc`` shows the process stopped (state T); False if it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        if state in ("T", "t"):
            return True
        await asyncio.sleep(0.01)
    return False
