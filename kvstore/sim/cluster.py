"""A deterministic cluster simulator: N Raft cores, a KV state machine each, one seed.

Theory of operation
-------------------
Everything that could vary between runs is owned here and drawn from one
``random.Random(seed)``: the virtual clock, message delays, drops, duplicates
and reordering, partitions, crashes, lost un-fsynced writes, client
operations, and the seeds of each core's own ``random.Random``. So a seed
replays exactly, trace and all.

The simulator is a discrete-event loop over a heap of ``(time, seq, event)``:

* ``tick`` -- one node's clock ticks (each node ticks every 1.0 time unit, at
  its own phase, so ticks interleave);
* ``deliver`` -- a message arrives (dropped if the link is cut at that moment);
* ``client`` / ``reply`` / ``timeout`` -- client operations;
* ``nemesis`` / ``heal`` / ``restart`` -- the fault schedule.

After each event, the node it touched runs its ``Ready`` loop (persist to its
:class:`SimDisk`, fsync, send, apply, serve reads, ``advance``), and the
:class:`ClusterChecker` runs its cluster-wide checks. The first violation
raises :class:`SimViolation`; :func:`run_simulation` turns it into a result
carrying the seed and the last trace events.

Tests can also drive a simulation by hand: ``crash``, ``restart``,
``partition``, ``isolate``, ``heal``, ``propose``, ``campaign``,
``run_until(predicate)``.
"""

from __future__ import annotations

import heapq
import json
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from kvstore.errors import KVError
from kvstore.invariants import InvariantViolation
from kvstore.raft.core import RaftConfig, RaftCore, Ready, Role
from kvstore.raft.messages import Message, describe, sender
from kvstore.raft.storage import persist_ready
from kvstore.sim.checks import ClusterChecker, SimViolation
from kvstore.sim.disk import SimDisk
from kvstore.sim.history import CheckResult, History, HistoryChecker, check_sequential
from kvstore.sim.kv import KVStateMachine, command_id, encode_command
from kvstore.trace import TraceEvent

FAULT_KINDS = ("drop", "delay", "reorder", "duplicate", "partition", "crash", "disk")
PARTITION_SHAPES = ("halves", "isolate_one", "isolate_leader", "bridge", "majorities_ring")

CoreFactory = Callable[..., RaftCore]


def parse_faults(spec: str) -> frozenset[str]:
    """``"all"``, ``"none"``/``""`` or a comma-separated list of FAULT_KINDS.

    Raises:
        ValueError: an unknown fault kind.
    """
    spec = spec.strip()
    if spec == "all":
        return frozenset(FAULT_KINDS)
    if spec in ("", "none"):
        return frozenset()
    kinds = frozenset(k.strip() for k in spec.split(",") if k.strip())
    unknown = kinds - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}; known: {', '.join(FAULT_KINDS)}")
    return kinds


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One simulation's settings. Times are in ticks.

    Attributes:
        nodes: cluster size (ids n1..nN).
        seed: drives everything.
        faults: enabled fault kinds (subset of FAULT_KINDS).
        raft: the cores' tuning.
        clients: concurrent client processes (1 gives a sequential history).
        drop_rate / duplicate_rate: per-message probabilities when enabled.
        min_delay / max_delay: normal message latency range.
        long_delay: extra latency for the "delay" fault (10% of messages).
        nemesis_interval_ticks: mean time between scheduled faults.
        snapshot_every_entries: a node compacts once it has applied this many
            entries past its last snapshot (0: never).
        client_timeout_ticks: a client gives up (info / fail) after this long.
        liveness_ticks: after healing, a leader must commit within this bound.
        check_ready_contract: verify persistence before sends (see checks.py).
        trace_messages: also trace every send / drop (large; for small runs).
    """

    nodes: int = 3
    seed: int = 0
    faults: frozenset[str] = frozenset()
    raft: RaftConfig = field(default_factory=RaftConfig)
    clients: int = 1
    drop_rate: float = 0.05
    duplicate_rate: float = 0.03
    min_delay: float = 0.2
    max_delay: float = 1.0
    long_delay: float = 8.0
    nemesis_interval_ticks: int = 40
    snapshot_every_entries: int = 0
    client_timeout_ticks: int = 60
    liveness_ticks: int = 300
    check_ready_contract: bool = True
    trace_messages: bool = False


@dataclass(slots=True)
class ClientOp:
    """One client operation in flight."""

    op_id: int
    process: int
    f: str
    key: str
    value: Any
    node: str | None = None
    done: bool = False
    outcome: str | None = None
    result: Any = None
    error: str | None = None


@dataclass(slots=True)
class SimNode:
    """One simulated server: a core (None while down), its disk and state machine."""

    id: str
    disk: SimDisk
    core: RaftCore | None = None
    sm: KVStateMachine = field(default_factory=KVStateMachine)
    waiting_writes: dict[int, ClientOp] = field(default_factory=dict)
    waiting_reads: dict[bytes, ClientOp] = field(default_factory=dict)
    confirmed_reads: list[tuple[int, ClientOp]] = field(default_factory=list)
    crash_on_next_persist: bool = False
    entries_since_snapshot: int = 0
    bootstrap_peers: tuple[str, ...] = ()


@dataclass(slots=True)
class SimStats:
    """Counters that prove the faults happened and measure the run."""

    events: int = 0
    ticks: int = 0
    messages_sent: int = 0
    messages_delivered: int = 0
    messages_dropped: int = 0
    messages_duplicated: int = 0
    messages_delayed: int = 0
    partitions: int = 0
    crashes: int = 0
    torn_crashes: int = 0
    writes_lost: int = 0
    snapshots_taken: int = 0
    snapshots_installed: int = 0
    elections_won: int = 0
    client_ok: int = 0
    client_fail: int = 0
    client_info: int = 0
    sent_by_type: dict[str, int] = field(default_factory=dict)


class _Tracer:
    """Keeps the last ``keep`` events (for failure reports), or all of them (``keep=None``)."""

    def __init__(self, keep: int | None) -> None:
        self.events: deque[TraceEvent] = deque(maxlen=keep)

    def emit(self, event: TraceEvent) -> None:
        self.events.append(event)


class Simulation:
    """N cores on a simulated network, disk and clock. See the module docstring."""

    def __init__(
        self,
        config: SimConfig,
        *,
        core_factory: CoreFactory = RaftCore,
        keep_trace: int | None = 2_000,
        history_checker: HistoryChecker | None = None,
        auto_clients: bool = True,
        auto_nemesis: bool = True,
    ) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.now = 0.0
        self.ids = [f"n{i}" for i in range(1, config.nodes + 1)]
        self.tracer = _Tracer(keep_trace)
        self.checker = ClusterChecker()
        self.stats = SimStats()
        self.history = History()
        self.history_checker = history_checker
        self._factory = core_factory
        self._queue: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self._link_clock: dict[tuple[str, str], float] = {}
        self._connected: Callable[[str, str], bool] | None = None
        self._partition_name = ""
        self.nodes: dict[str, SimNode] = {}
        self.faults_on = bool(config.faults)
        self.clients_on = auto_clients
        self.nemesis_on = auto_nemesis and bool(config.faults & {"partition", "crash", "disk"})
        self._op_ids = 0
        self._client_ops: dict[int, ClientOp] = {}
        self._leader_guess: dict[int, str] = {}
        self._next_value = 0
        self.violation: str | None = None
        for node_id in self.ids:
            self.nodes[node_id] = SimNode(node_id, SimDisk(), bootstrap_peers=tuple(self.ids))
            self._start_node(node_id)
            self._push(self.rng.random(), "tick", node_id)
        if auto_clients:
            for p in range(config.clients):
                self._push(1.0 + self.rng.random() * 5, "client", p)
        if self.nemesis_on:
            self._push(float(config.nemesis_interval_ticks), "nemesis", None)

    # ------------------------------------------------------------------
    # Node lifecycle.
    # ------------------------------------------------------------------

    def _start_node(self, node_id: str) -> None:
        node = self.nodes[node_id]
        restore = node.disk.load()
        node.sm = KVStateMachine()
        if restore.snapshot is not None:
            node.sm.restore(restore.snapshot.data)
        node.core = self._factory(
            node_id,
            peers=node.bootstrap_peers,
            rng=random.Random(self.rng.getrandbits(64)),
            config=self.cfg.raft,
            restore=restore,
            tracer=self.tracer,
            clock=lambda: self.now,
        )
        node.entries_since_snapshot = 0
        self.checker.node_restarted(node_id, node.sm.applied_index)

    def crash(self, node_id: str) -> None:
        """Stop a node now: its volatile state and un-fsynced writes are gone."""
        node = self.nodes[node_id]
        if node.core is None:
            return
        lost = node.disk.crash()
        self.stats.crashes += 1
        self.stats.writes_lost += lost
        self._sim_trace(node_id, "crashed", writes_lost=lost)
        self.history.record(time=self.now, process=-1, type="invoke", f="nemesis", key=f"kill {node_id}",
                            value={"writes_lost": lost})
        node.core = None
        node.waiting_writes.clear()
        node.waiting_reads.clear()
        node.confirmed_reads.clear()

    def restart(self, node_id: str) -> None:
        """Start a crashed node again from its durable state."""
        if self.nodes[node_id].core is not None:
            return
        self._sim_trace(node_id, "restarted")
        self.history.record(time=self.now, process=-1, type="ok", f="nemesis", key=f"kill {node_id}", value=None)
        self._start_node(node_id)
        self._process(node_id)

    def add_node(self, node_id: str) -> None:
        """Start a brand-new empty node (to be added with ``add_learner`` on the leader)."""
        self.ids.append(node_id)
        self.nodes[node_id] = SimNode(node_id, SimDisk())
        self._start_node(node_id)
        self._push(self.now + self.rng.random(), "tick", node_id)

    # ------------------------------------------------------------------
    # Network.
    # ------------------------------------------------------------------

    def partition(self, groups: list[list[str]], *, name: str = "partition") -> None:
        """Cut every link between different groups (nodes not listed are isolated)."""
        where = {n: i for i, g in enumerate(groups) for n in g}
        self.set_links(lambda a, b: a in where and b in where and where[a] == where[b], name=name,
                       groups=[sorted(g) for g in groups])

    def isolate(self, node_id: str) -> None:
        """Cut one node off from everyone."""
        self.partition([[node_id], [n for n in self.ids if n != node_id]], name=f"isolate {node_id}")

    def set_links(self, connected: Callable[[str, str], bool], *, name: str, **details: Any) -> None:
        """Install an arbitrary connectivity function (checked when a message arrives)."""
        self._connected = connected
        self._partition_name = name
        self.stats.partitions += 1
        self._sim_trace("sim", "partition", shape=name, **details)
        self.history.record(time=self.now, process=-1, type="invoke", f="nemesis", key=name, value=details or None)

    def heal(self) -> None:
        """Reconnect every link."""
        if self._connected is not None:
            self._sim_trace("sim", "healed", shape=self._partition_name)
            self.history.record(time=self.now, process=-1, type="ok", f="nemesis", key=self._partition_name,
                                value=None)
        self._connected = None

    def connected(self, a: str, b: str) -> bool:
        """Is the link a -> b up right now?"""
        return a == b or self._connected is None or self._connected(a, b)

    def _send(self, msg: Message) -> None:
        src = sender(msg)
        self.stats.messages_sent += 1
        kind = type(msg).__name__
        self.stats.sent_by_type[kind] = self.stats.sent_by_type.get(kind, 0) + 1
        faults = self.cfg.faults if self.faults_on else frozenset()
        if "drop" in faults and self.rng.random() < self.cfg.drop_rate:
            self.stats.messages_dropped += 1
            return
        copies = 1
        if "duplicate" in faults and self.rng.random() < self.cfg.duplicate_rate:
            copies = 2
            self.stats.messages_duplicated += 1
        for _ in range(copies):
            delay = self.cfg.min_delay + self.rng.random() * (self.cfg.max_delay - self.cfg.min_delay)
            if "delay" in faults and self.rng.random() < 0.1:
                delay += self.rng.random() * self.cfg.long_delay
                self.stats.messages_delayed += 1
            at = self.now + delay
            if "reorder" not in faults:
                link = (src, msg.to)
                at = max(at, self._link_clock.get(link, 0.0) + 1e-6)
                self._link_clock[link] = at
            self._push(at, "deliver", msg)

    # ------------------------------------------------------------------
    # The event loop.
    # ------------------------------------------------------------------

    def _push(self, at: float, kind: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, payload))

    def step_event(self) -> None:
        """Run the next event and the checks after it. Raises SimViolation."""
        at, _, kind, payload = heapq.heappop(self._queue)
        self.now = at
        self.stats.events += 1
        try:
            self._dispatch(kind, payload)
        except InvariantViolation as exc:
            raise SimViolation(f"invariant violated: {exc}") from exc

    def _dispatch(self, kind: str, payload: Any) -> None:
        if kind == "tick":
            node = self.nodes[payload]
            self._push(self.now + 1.0, "tick", payload)
            if node.core is not None:
                self.stats.ticks += 1
                node.core.tick()
                self._process(payload)
        elif kind == "deliver":
            self._deliver(payload)
        elif kind == "client":
            self._client_issue(payload)
        elif kind == "arrive":
            self._client_arrive(payload)
        elif kind == "reply":
            self._client_complete(*payload)
        elif kind == "timeout":
            self._client_timeout(payload)
        elif kind == "nemesis":
            self._nemesis()
        elif kind == "heal":
            self.heal()
        elif kind == "restart":
            self.restart(payload)

    def _deliver(self, msg: Message) -> None:
        src = sender(msg)
        node = self.nodes.get(msg.to)
        if node is None or node.core is None or not self.connected(src, msg.to):
            self.stats.messages_dropped += 1
            if self.cfg.trace_messages:
                self._sim_trace(msg.to, "dropped", msg=describe(msg))
            return
        self.stats.messages_delivered += 1
        if self.cfg.trace_messages:
            self._sim_trace(msg.to, "recv", msg=describe(msg))
        node.core.step(msg)
        self._process(msg.to)

    def run_for(self, ticks: float) -> None:
        """Run every event up to ``now + ticks``."""
        end = self.now + ticks
        while self._queue and self._queue[0][0] <= end:
            self.step_event()
        self.now = max(self.now, end)

    def run_until(self, predicate: Callable[[], bool], *, max_ticks: float) -> bool:
        """Run events until ``predicate()`` holds (checked after each event) or time runs out."""
        end = self.now + max_ticks
        while not predicate():
            if not self._queue or self._queue[0][0] > end:
                return False
            self.step_event()
        return True

    # ------------------------------------------------------------------
    # The Ready loop of one node.
    # ------------------------------------------------------------------

    def _process(self, node_id: str) -> None:
        node = self.nodes[node_id]
        while node.core is not None and node.core.has_ready():
            core = node.core
            rd = core.ready()
            persist_ready(_TornDisk(node.disk) if node.crash_on_next_persist else node.disk, rd)
            if node.crash_on_next_persist and (rd.entries or rd.hard_state or rd.snapshot):
                node.crash_on_next_persist = False
                self.stats.torn_crashes += 1
                self._sim_trace(node_id, "crash_before_fsync")
                self.crash(node_id)
                self._push(self.now + 5 + self.rng.random() * 20, "restart", node_id)
                return
            if self.cfg.check_ready_contract:
                self.checker.check_ready(core, rd, node.disk)
            else:
                for e in rd.entries:
                    self.checker._check_entry(core, e)
            for msg in rd.messages:
                if self.cfg.trace_messages:
                    self._sim_trace(node_id, "send", msg=describe(msg))
                self._send(msg)
            self._apply(node, rd)
            core.advance(rd)
        if node.core is not None:
            self.checker.check_node(node.core)
            self._maybe_snapshot(node)

    def _apply(self, node: SimNode, rd: Ready) -> None:
        if rd.snapshot is not None:
            node.sm.restore(rd.snapshot.data)
            self.checker.snapshot_restored(node.id, rd.snapshot.meta.index, rd.snapshot.meta.term)
            self.stats.snapshots_installed += 1
            node.entries_since_snapshot = 0
        for e in rd.committed_entries:
            self.checker.check_apply(node.id, e)
            result = node.sm.apply(e)
            node.entries_since_snapshot += 1
            op_id = command_id(e)
            if op_id is not None and op_id in node.waiting_writes:
                op = node.waiting_writes.pop(op_id)
                value: Any = op.value
                if op.f == "cas" and result is False:
                    value = False
                self._client_reply(op, "ok", value, node.id, None)
        for rs in rd.read_states:
            op_r = node.waiting_reads.pop(rs.context, None)
            if op_r is not None:
                node.confirmed_reads.append((rs.index, op_r))
        for ctx in rd.rejected_reads:
            op_r = node.waiting_reads.pop(ctx, None)
            if op_r is not None:
                self._client_reply(op_r, "fail", None, node.id, "not leader")
        still: list[tuple[int, ClientOp]] = []
        for index, op_r in node.confirmed_reads:
            if node.sm.applied_index >= index:
                self._client_reply(op_r, "ok", node.sm.read(op_r.key), node.id, None)
            else:
                still.append((index, op_r))
        node.confirmed_reads = still

    def _maybe_snapshot(self, node: SimNode) -> None:
        every = self.cfg.snapshot_every_entries
        core = node.core
        if not every or core is None or node.entries_since_snapshot < every:
            return
        if core.log.applied_index <= core.log.snapshot_index:
            return
        snap = core.compact(index=core.log.applied_index, data=node.sm.snapshot())
        node.disk.save_snapshot(snap)
        node.disk.sync()
        node.entries_since_snapshot = 0
        self.stats.snapshots_taken += 1

    # ------------------------------------------------------------------
    # Manual control (scenario tests).
    # ------------------------------------------------------------------

    def core(self, node_id: str) -> RaftCore:
        """The live core of a node (raises KeyError if it is down)."""
        c = self.nodes[node_id].core
        if c is None:
            raise KeyError(f"{node_id} is down")
        return c

    def up(self) -> list[str]:
        """Ids of running nodes."""
        return [n for n in self.ids if self.nodes[n].core is not None]

    def leader(self) -> str | None:
        """The running leader with the highest term, if any."""
        best: tuple[int, str] | None = None
        for n in self.up():
            c = self.core(n)
            if c.role == Role.LEADER and (best is None or c.term > best[0]):
                best = (c.term, n)
        return best[1] if best else None

    def propose(self, node_id: str, data: bytes) -> int:
        """Propose on a node (must be leader) and process its Ready."""
        index = self.core(node_id).propose(data)
        self._process(node_id)
        return index

    def campaign(self, node_id: str, *, force: bool = False) -> None:
        """Make a node start an election now (``force``: as after TimeoutNow, skipping pre-vote and leases)."""
        self.core(node_id).campaign(transfer=force)
        self._process(node_id)

    def do(self, node_id: str, action: Callable[[RaftCore], object]) -> object:
        """Call ``action(core)`` on a node, then process its Ready (for transfer, membership...)."""
        result = action(self.core(node_id))
        self._process(node_id)
        return result

    def applied(self, node_id: str) -> int:
        """Last index a node's state machine applied."""
        return self.nodes[node_id].sm.applied_index

    def all_applied(self, index: int, nodes: Iterable[str] | None = None) -> bool:
        """Have all the given (default: running) nodes applied up to ``index``?"""
        return all(self.applied(n) >= index for n in (nodes if nodes is not None else self.up()))

    # ------------------------------------------------------------------
    # Clients.
    # ------------------------------------------------------------------

    def submit(self, process: int, f: str, key: str, value: Any, *, node: str | None = None) -> ClientOp:
        """Invoke a client operation now (recorded in the history) and send it to ``node``
        (default: the process's guess of the leader)."""
        self._op_ids += 1
        op = ClientOp(self._op_ids, process, f, key, value)
        self._client_ops[op.op_id] = op
        self.history.record(time=self.now, process=process, type="invoke", f=f, key=key,
                            value=None if f == "read" else value)
        target = node or self._leader_guess.get(process) or self.rng.choice(self.ids)
        op.node = target
        self._push(self.now + 0.1 + self.rng.random() * 0.4, "arrive", op.op_id)
        self._push(self.now + self.cfg.client_timeout_ticks, "timeout", op.op_id)
        return op

    def leader_guess(self, process: int) -> str | None:
        """The node a client process will try first (learned from replies and hints)."""
        return self._leader_guess.get(process)

    def _client_issue(self, process: int) -> None:
        if not self.clients_on:
            return
        key = f"k{self.rng.randrange(3)}"
        r = self.rng.random()
        if r < 0.4:
            self.submit(process, "read", key, None)
        elif r < 0.8:
            self._next_value += 1
            self.submit(process, "write", key, self._next_value)
        else:
            self._next_value += 1
            self.submit(process, "cas", key, [self.rng.randrange(max(1, self._next_value)), self._next_value])

    def _client_arrive(self, op_id: int) -> None:
        op = self._client_ops.get(op_id)
        if op is None or op.done or op.node is None:
            return
        node = self.nodes[op.node]
        core = node.core
        if core is None:
            self._client_reply(op, "fail", None, op.node, "unavailable")
            return
        try:
            if op.f == "read":
                ctx = op_id.to_bytes(8, "big")
                node.waiting_reads[ctx] = op
                try:
                    core.read_index(ctx)
                except KVError:
                    node.waiting_reads.pop(ctx, None)
                    raise
            else:
                core.propose(encode_command(op_id, op.f, op.key, op.value))
                node.waiting_writes[op_id] = op
        except KVError as exc:
            hint = getattr(exc, "leader_hint", "")
            if hint:
                self._leader_guess[op.process] = hint
            else:
                self._leader_guess.pop(op.process, None)
            self._client_reply(op, "fail", None, op.node, exc.code.lower())
            return
        self._process(op.node)

    def _client_reply(self, op: ClientOp, type_: str, value: Any, node: str | None, error: str | None) -> None:
        if op.done:
            return
        op.done = True
        self._push(self.now + 0.1 + self.rng.random() * 0.4, "reply", (op.op_id, type_, value, node, error))

    def _client_complete(self, op_id: int, type_: str, value: Any, node: str | None, error: str | None) -> None:
        op = self._client_ops.pop(op_id)
        op.outcome, op.result, op.error = type_, value, error
        if type_ == "ok":
            self.stats.client_ok += 1
            if node:
                self._leader_guess[op.process] = node
        else:
            self.stats.client_fail += 1
        self.history.record(time=self.now, process=op.process, type=type_, f=op.f, key=op.key, value=value,
                            node=node, error=error)
        self._push(self.now + self.rng.random() * 2, "client", op.process)

    def _client_timeout(self, op_id: int) -> None:
        op = self._client_ops.get(op_id)
        if op is None or op.done:
            return
        op.done = True
        self._client_ops.pop(op_id)
        type_ = "fail" if op.f == "read" else "info"
        op.outcome, op.error = type_, "timeout"
        if type_ == "info":
            self.stats.client_info += 1
        else:
            self.stats.client_fail += 1
        self.history.record(time=self.now, process=op.process, type=type_, f=op.f, key=op.key,
                            value=None if op.f == "read" else op.value, node=op.node, error="timeout")
        # Jepsen convention: after an indeterminate outcome the process continues under a new id.
        new_process = op.process + self.cfg.clients if type_ == "info" else op.process
        self._push(self.now + self.rng.random() * 2, "client", new_process)

    # ------------------------------------------------------------------
    # The nemesis (fault schedule).
    # ------------------------------------------------------------------

    def _nemesis(self) -> None:
        if not self.nemesis_on:
            return
        self._push(self.now + self.cfg.nemesis_interval_ticks * (0.5 + self.rng.random()), "nemesis", None)
        actions = [k for k in ("partition", "crash", "disk") if k in self.cfg.faults]
        action = self.rng.choice(actions)
        if action == "partition" and self._connected is None:
            self._random_partition()
            self._push(self.now + 10 + self.rng.random() * 60, "heal", None)
        elif action in ("crash", "disk"):
            down = [n for n in self.ids if self.nodes[n].core is None]
            if len(down) >= (len(self.ids) - 1) // 2:
                return
            victim = self.rng.choice(self.up())
            if action == "crash":
                self.crash(victim)
                self._push(self.now + 5 + self.rng.random() * 40, "restart", victim)
            else:
                self.nodes[victim].crash_on_next_persist = True
                self._sim_trace(victim, "disk_will_fail")

    def _random_partition(self) -> None:
        self.partition_shape(self.rng.choice(PARTITION_SHAPES))

    def partition_shape(self, shape: str) -> None:
        """Cut the network into one of the named PARTITION_SHAPES, over a seeded shuffle of the nodes.

        halves: two groups of n//2 and the rest. isolate_one: a random node alone.
        isolate_leader: the current leader alone. bridge: two halves that cannot
        talk, plus one node that talks to both. majorities_ring: nodes on a ring,
        each seeing only its nearest neighbours, so every node sees a majority
        but no two nodes see the same one.
        """
        if shape not in PARTITION_SHAPES:
            raise ValueError(f"unknown partition shape {shape!r}")
        ids = list(self.ids)
        self.rng.shuffle(ids)
        n = len(ids)
        if shape == "halves" or n < 3:
            self.partition([ids[: n // 2], ids[n // 2 :]], name="halves")
        elif shape == "isolate_one":
            self.partition([ids[:1], ids[1:]], name=f"isolate_one {ids[0]}")
        elif shape == "isolate_leader":
            leader = self.leader() or ids[0]
            self.partition([[leader], [x for x in ids if x != leader]], name=f"isolate_leader {leader}")
        elif shape == "bridge":
            bridge, rest = ids[0], ids[1:]
            left, right = set(rest[: len(rest) // 2]), set(rest[len(rest) // 2 :])
            self.set_links(
                lambda a, b: a == bridge or b == bridge or ({a, b} <= left) or ({a, b} <= right),
                name=f"bridge {bridge}", left=sorted(left), right=sorted(right),
            )
        else:
            pos = {x: i for i, x in enumerate(ids)}
            reach = (n // 2 + 1) // 2 if n > 3 else 1
            self.set_links(
                lambda a, b: min((pos[a] - pos[b]) % n, (pos[b] - pos[a]) % n) <= reach,
                name="majorities_ring", ring=ids,
            )

    # ------------------------------------------------------------------
    # Whole runs.
    # ------------------------------------------------------------------

    def stop_faults(self) -> None:
        """Heal the network, restart every node, stop the nemesis and the clients."""
        self.faults_on = False
        self.nemesis_on = False
        self.clients_on = False
        self.heal()
        for n in self.ids:
            self.nodes[n].crash_on_next_persist = False
            self.restart(n)

    def check_liveness(self) -> None:
        """After faults heal, a leader must be elected and an entry it proposes must be applied on
        every node, all within ``liveness_ticks``. Raises SimViolation otherwise.

        A leader that was cut off may still believe it leads right after healing;
        its proposal can be discarded when it is deposed, so the probe entry is
        proposed again to each new leader until one of them gets it applied.
        """
        start = self.now
        deadline = start + self.cfg.liveness_ticks
        proposed: tuple[str, int, int] | None = None  # (leader, term, index)

        def done() -> bool:
            nonlocal proposed
            leader = self.leader()
            if leader is not None and (proposed is None or proposed[1] != self.core(leader).term):
                term = self.core(leader).term
                proposed = (leader, term, self.propose(leader, encode_command(0, "noop", "", None)))
            if proposed is None:
                return False
            _, term, index = proposed
            entry = self.checker.applied.get(index)
            return entry is not None and entry[0] == term and self.all_applied(index)

        if not self.run_until(done, max_ticks=deadline - self.now):
            what = "no leader" if proposed is None else f"entry {proposed[2]} of term {proposed[1]} not applied"
            raise SimViolation(f"liveness: {what} on every node within {self.cfg.liveness_ticks} ticks of healing")
        leader, _, index = proposed or ("", 0, 0)
        self._sim_trace("sim", "liveness_ok", leader=leader, index=index, ticks=round(self.now - start, 3))

    def check_history(self) -> CheckResult:
        """Run the history checker (the sequential one if none was given and the history is sequential)."""
        if self.history_checker is not None:
            return self.history_checker(self.history.events)
        if self.history.is_sequential():
            return check_sequential(self.history.events)
        return CheckResult(True, "not checked: concurrent history needs the linearizability checker")

    def last_events(self, count: int = 40) -> list[TraceEvent]:
        """The most recent trace events."""
        return list(self.tracer.events)[-count:]

    def _sim_trace(self, node: str, event: str, **fields: Any) -> None:
        core = self.nodes[node].core if node in self.nodes else None
        term = core.term if core else 0
        role = core.role.value if core else ""
        self.tracer.emit(TraceEvent(self.now, node, term, role, event, fields))


class _TornDisk:
    """Wraps a SimDisk so that writes land in its buffer but ``sync`` never happens."""

    def __init__(self, disk: SimDisk) -> None:
        self._disk = disk

    def load(self) -> Any:
        return self._disk.load()

    def append(self, entries: Any) -> None:
        self._disk.append(entries)

    def set_hard_state(self, hard_state: Any) -> None:
        self._disk.set_hard_state(hard_state)

    def save_snapshot(self, snapshot: Any) -> None:
        self._disk.save_snapshot(snapshot)

    def sync(self) -> None:
        """The crash comes first."""


@dataclass(frozen=True, slots=True)
class SimResult:
    """Outcome of :func:`run_simulation`."""

    seed: int
    ok: bool
    violation: str | None
    stats: SimStats
    history_check: CheckResult | None
    last_events: tuple[TraceEvent, ...]
    virtual_ticks: float

    def summary(self) -> str:
        """A few human-readable lines."""
        s = self.stats
        verdict = "OK" if self.ok else f"VIOLATION: {self.violation}"
        lines = [
            f"seed {self.seed}: {verdict}",
            f"  virtual time {self.virtual_ticks:.0f} ticks, {s.events} events, {s.elections_won} elections won",
            f"  messages: {s.messages_sent} sent, {s.messages_dropped} dropped, {s.messages_duplicated} duplicated, "
            f"{s.messages_delayed} delayed",
            f"  faults: {s.partitions} partitions, {s.crashes} crashes ({s.torn_crashes} before fsync, "
            f"{s.writes_lost} writes lost), {s.snapshots_installed} snapshots installed",
            f"  clients: {s.client_ok} ok, {s.client_fail} fail, {s.client_info} info",
        ]
        if self.history_check is not None:
            hc = self.history_check
            lines.append(f"  history: {'valid' if hc.valid else 'INVALID'} ({hc.checked_ops} ops checked) {hc.reason}")
        return "\n".join(lines)


def run_simulation(
    config: SimConfig,
    *,
    ticks: int,
    core_factory: CoreFactory = RaftCore,
    history_checker: HistoryChecker | None = None,
) -> SimResult:
    """Run one seeded simulation: faults for ``ticks``, then heal and check liveness and the history.

    Never raises for a broken rule: the violation is in the result, with the last events.
    """
    sim = Simulation(config, core_factory=core_factory, history_checker=history_checker)
    violation: str | None = None
    hc: CheckResult | None = None
    try:
        sim.run_for(ticks)
        sim.stop_faults()
        sim.check_liveness()
        sim.run_for(config.client_timeout_ticks)
        hc = sim.check_history()
        if not hc.valid:
            violation = f"history: {hc.reason}"
    except SimViolation as exc:
        violation = str(exc)
    sim.stats.elections_won = len(sim.checker.leaders)
    return SimResult(config.seed, violation is None, violation, sim.stats, hc, tuple(sim.last_events()), sim.now)


def default_config(*, nodes: int, seed: int, faults: frozenset[str], **overrides: Any) -> SimConfig:
    """The configuration ``kv sim`` and the sweep use (snapshots on, small append cap)."""
    base = SimConfig(nodes=nodes, seed=seed, faults=faults, snapshot_every_entries=20,
                     raft=RaftConfig(max_append_bytes=512, max_inflight_appends=8))
    return replace(base, **overrides)


def history_jsonl(sim: Simulation) -> str:
    """The client history as JSON lines."""
    return "".join(json.dumps(ev) + "\n" for ev in sim.history.events)
