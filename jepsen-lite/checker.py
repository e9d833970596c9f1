"""The linearizability checker (the ``lin-checker`` lab).

Theory of operation. A history is linearizable if every operation can be given
one instant inside its interval [call, return] — its *linearization point* — so
that, taken in the order of those instants, the operations are a legal run of
the sequential :class:`~jepsen_lite.models.Model`. ``fail`` operations are
dropped (they did not happen); ``info`` operations have no return (they may
take effect at any moment after their call, or never).

1. **Split by key** (P-compositionality, Herlihy & Wing): a history is
   linearizable iff the sub-history of every key is, so each key is searched
   alone, with its own time budget (:func:`check_operations`).
2. **Entries in a doubly-linked list** (:func:`make_entries`): each operation
   gives a *call* entry at its call time and (unless it is open) a *return*
   entry at its return time, sorted by time; at equal times calls come first,
   so touching intervals count as concurrent (the cautious reading).
3. **Wing & Gong search with Lowe's memoization** (:func:`search`): walk the
   list from the front. At a call entry, try to linearize that operation now:
   if the model accepts it, and the pair (set of linearized operations, new
   state) was never reached before, push it on a stack, *lift* its entries out
   of the list (:func:`lift`) and start again from the front. Reaching a return
   entry means its operation had to be linearized already: backtrack — pop the
   last choice, put its entries back (:func:`unlift`) and try the next call
   after it. Success when every ``ok`` operation is linearized; failure when
   there is nothing left to pop. The cache of (bitset, state) pairs makes the
   search visit each configuration once (Lowe, "Testing for linearizability",
   2017; the same algorithm as Porcupine).
   One pruning on top: a *read-only* operation (one that never changes the
   state, such as an ok read) that is legal now may as well be linearized now —
   any linearization that places it later still works with it moved here, since
   it was invoked before every pending return and changes no state. So the
   search first looks for such an operation and places it without branching;
   only when none fits does it branch on the others. Backtracking over a
   read-only operation backtracks again, and finding its configuration already
   in the cache (so it failed) means the current one has failed too. On
   read-heavy histories with many concurrent clients this cuts the configurations
   visited about threefold.
   A second pruning: a *blind* operation (one always legal whose result does not
   depend on the state, such as a write) placed right after an open (``info``)
   blind operation makes that open one pointless — the pair leaves the same
   state as the second alone, and skipping the open one keeps it available for
   later. So the search never tries a blind operation directly after an open
   blind one; the configuration without the open one is explored anyway. This
   keeps histories with many timed-out writes from exploding.
4. **Explaining a failure**: the deepest stack the search built is the longest
   linearizable prefix; the operation with the earliest return among those not
   in it is the one that could not be placed (the *failing* operation), and the
   operations invoked before it returned are the candidates that were tried.
5. **A budget, never a false pass**: when a key's time budget runs out the key
   is ``unknown``, and any ``unknown`` key makes the whole history ``unknown``
   unless another key is already a violation.

Complexity: exponential in the worst case (the problem is NP-complete), but
bounded by the number of distinct (bitset, state) pairs, which for real
histories is small because few operations overlap at any moment.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from jepsen_lite.history import Operation
from jepsen_lite.models import Model, Prepared, State

from kvstore.invariants import invariant

LINEARIZABLE: Final = "linearizable"
NOT_LINEARIZABLE: Final = "not-linearizable"
UNKNOWN: Final = "unknown"
_DEADLINE_CHECK_EVERY: Final = 256  # search steps between looks at the clock (a look costs ~50 ns)


@dataclass(slots=True, eq=False)
class Entry:
    """One node of the search's doubly-linked list of call and return entries.

    Attributes:
        op: index of the operation in the key's operation list (-1 for the head sentinel).
        is_call: True for a call entry, False for a return entry.
        match: for a call, its return entry (None when the operation is open);
            for a return, its call entry.
        prev, next: neighbours in the list (the head has no prev; the last has no next).
    """

    op: int
    is_call: bool
    match: Entry | None = None
    prev: Entry | None = None
    next: Entry | None = None


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """What :func:`search` found for one key.

    Attributes:
        verdict: LINEARIZABLE, NOT_LINEARIZABLE or UNKNOWN (budget ran out).
        order: LINEARIZABLE: a linearization (operation indices in order);
            otherwise the longest linearizable prefix the search built.
        configurations: how many distinct (linearized set, state) pairs it visited.
    """

    verdict: str
    order: tuple[int, ...]
    configurations: int


@dataclass(frozen=True, slots=True)
class Violation:
    """Why one key is not linearizable, for people.

    Attributes:
        key: the key.
        prefix: the longest linearizable prefix, in linearization order.
        state_after_prefix: the model state after it, described.
        failing: the operation with the earliest return that could not be linearized after the prefix.
        candidates: the operations not in the prefix that were invoked before ``failing`` returned
            (the ones the search tried to place next), ``failing`` included.
    """

    key: str
    prefix: tuple[Operation, ...]
    state_after_prefix: str
    failing: Operation
    candidates: tuple[Operation, ...]

    def explain(self) -> str:
        """A few lines saying what went wrong."""
        lines = [
            f"key {self.key!r}: after a linearizable prefix of {len(self.prefix)} operation(s) "
            f"the state is {self.state_after_prefix}; no order of the pending operations explains "
            f"op {self.failing.id}: {self.failing.describe()}",
        ]
        lines.extend(f"  pending op {op.id}: {op.describe()}" for op in self.candidates if op is not self.failing)
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        """The violation as JSON (operations by id and description)."""
        return {
            "key": self.key,
            "prefix": [op.id for op in self.prefix],
            "state_after_prefix": self.state_after_prefix,
            "failing": self.failing.to_json(),
            "candidates": [op.to_json() for op in self.candidates],
        }


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The verdict for one key."""

    key: str
    verdict: str
    operations: int
    configurations: int
    elapsed_s: float
    violation: Violation | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "verdict": self.verdict,
            "operations": self.operations,
            "configurations": self.configurations,
            "elapsed_s": round(self.elapsed_s, 6),
            "violation": None if self.violation is None else self.violation.to_json(),
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict for a whole history, with one :class:`KeyResult` per key (sorted by key)."""

    verdict: str
    keys: tuple[KeyResult, ...] = field(default=())
    model: str = ""

    @property
    def violations(self) -> list[Violation]:
        """Every key's violation, earliest failing operation first."""
        found = [k.violation for k in self.keys if k.violation is not None]
        return sorted(found, key=lambda v: (v.failing.return_time, v.failing.id))

    @property
    def first_violation(self) -> Violation | None:
        """The violation whose failing operation returned first, if any."""
        found = self.violations
        return found[0] if found else None

    def to_json(self) -> dict[str, object]:
        first = self.first_violation
        return {
            "checker": "linearizability",
            "model": self.model,
            "verdict": self.verdict,
            "keys": len(self.keys),
            "not_linearizable_keys": [k.key for k in self.keys if k.verdict == NOT_LINEARIZABLE],
            "unknown_keys": [k.key for k in self.keys if k.verdict == UNKNOWN],
            "first_failing_op": None if first is None else first.failing.id,
            "results": [k.to_json() for k in self.keys],
        }


def combine(verdicts: Iterable[str]) -> str:
    """One verdict from many: any violation wins, then any unknown, else linearizable."""
    seen = set(verdicts)
    if NOT_LINEARIZABLE in seen:
        return NOT_LINEARIZABLE
    return UNKNOWN if UNKNOWN in seen else LINEARIZABLE


def check_entry_list(head: Entry, ops: Sequence[Operation]) -> None:
    """The list's invariants: links agree both ways, times never decrease, calls and returns match.

    Raises:
        InvariantViolation: the list is broken (a bug in :func:`lift`/:func:`unlift` or their callers).

    Complexity: O(n).
    """
    invariant(head.op == -1 and head.prev is None, "the head is the sentinel")
    last_time, entry = -math.inf, head.next
    while entry is not None:
        invariant(entry.prev is not None and entry.prev.next is entry, f"entry of op {entry.op}: prev.next is it")
        op = ops[entry.op]
        when = op.call_time if entry.is_call else op.return_time
        invariant(when >= last_time, f"entry of op {entry.op}: times never decrease along the list")
        invariant(entry.match is None or entry.match.match is entry, f"entry of op {entry.op}: matches pair up")
        invariant(entry.is_call or entry.match is not None, f"return entry of op {entry.op} has its call")
        last_time, entry = when, entry.next


def make_entries(ops: Sequence[Operation]) -> Entry:
    """Build the time-sorted doubly-linked list of call and return entries.

    Args:
        ops: the operations of one key; ``ops[i]`` gets entries with ``op == i``.
            Operations with an infinite ``return_time`` (``info``) get no return entry.

    Returns:
        the head sentinel (``op == -1``); the entries follow it.

    Complexity: O(n log n).
    """
    events: list[tuple[float, int, int]] = []  # (time, 0 = call / 1 = return, op index)
    for i, op in enumerate(ops):
        events.append((op.call_time, 0, i))
        if op.return_time != float("inf"):
            events.append((op.return_time, 1, i))
    events.sort()
    head = Entry(op=-1, is_call=False)
    calls: dict[int, Entry] = {}
    last = head
    for _, kind, i in events:
        entry = Entry(op=i, is_call=kind == 0, prev=last)
        if kind == 0:
            calls[i] = entry
        else:
            entry.match = calls[i]
            calls[i].match = entry
        last.next = entry
        last = entry
    return head


def lift(entry: Entry) -> None:
    """Take a call entry and its return entry (if any) out of the list.

    Both entries keep their own ``prev``/``next`` pointers, so :func:`unlift`
    can put them back. Requires: ``entry`` is a call entry currently in the list
    (it always has a ``prev``: at least the head).
    """
    # BEGIN SOLUTION lin-checker
    if entry.prev is not None:
        entry.prev.next = entry.next
    if entry.next is not None:
        entry.next.prev = entry.prev
    ret = entry.match
    if ret is not None:
        if ret.prev is not None:
            ret.prev.next = ret.next
        if ret.next is not None:
            ret.next.prev = ret.prev
    # END SOLUTION


def unlift(entry: Entry) -> None:
    """Undo :func:`lift` for ``entry``: put its return entry back, then the call entry.

    Requires: the list is exactly as :func:`lift` left it (lifts and unlifts
    are done in stack order), so the saved neighbours are the right ones.
    """
    # BEGIN SOLUTION lin-checker
    ret = entry.match
    if ret is not None:
        if ret.prev is not None:
            ret.prev.next = ret
        if ret.next is not None:
            ret.next.prev = ret
    if entry.prev is not None:
        entry.prev.next = entry
    if entry.next is not None:
        entry.next.prev = entry
    # END SOLUTION


def search(head: Entry, prepared: Sequence[Prepared], model: Model, *, deadline: float) -> SearchOutcome:
    """Search for a linearization of one key's operations (Wing & Gong with Lowe's cache).

    Args:
        head: the list from :func:`make_entries` (restored to its original shape on return
            only when the search succeeds or fails; an UNKNOWN return may leave it lifted).
        prepared: ``prepared[i]`` is ``model.prepare(ops[i])``.
        model: the sequential specification.
        deadline: a ``time.monotonic()`` instant; past it, give up with UNKNOWN.

    Returns:
        LINEARIZABLE with a linearization of at least every operation that has a return
        entry; or NOT_LINEARIZABLE with the longest linearizable prefix found; or UNKNOWN
        with the longest prefix found so far.

    Optional prunings (the reference has them; a plain Wing & Gong search with the cache is
    correct without them): each configuration is scanned twice from the front of the list,
    first for a legal read-only operation (``model.read_only``), which is placed without
    branching — if its configuration is already cached, the current one has failed — then
    for the other operations, which are branched on; backtracking over a read-only
    operation backtracks again. And a blind operation (``model.blind``) is not tried right
    after an open blind one: that pair is the same as the second alone, with the open one
    kept for later. (The module docstring says why neither rule loses a linearization.)

    Invariants (at the top of the loop): the entries of the operations on the stack are
    lifted out of the list; ``linearized`` has exactly their bits set; ``state`` is the
    model state after applying them in stack order; ``(linearized, state)`` of every
    stack prefix is in the cache.
    """
    # BEGIN SOLUTION lin-checker
    has_return = {e.op for e in _iter_entries(head) if not e.is_call}
    must = len(has_return)  # operations that must be linearized (the open ones may be left out)
    read_only = [model.read_only(op) for op in prepared]
    blind = [model.blind(op) for op in prepared]
    open_blind = [b and i not in has_return for i, b in enumerate(blind)]
    state: State = model.init()
    linearized = 0
    cache: set[tuple[int, State]] = set()
    stack: list[tuple[Entry, State]] = []  # (lifted call entry, state before it)
    best: tuple[int, ...] = ()
    entry, reads_first = head.next, True  # reads_first: this scan looks only at read-only operations
    steps = 0
    while must > 0:
        steps += 1
        if steps % _DEADLINE_CHECK_EVERY == 0 and time.monotonic() > deadline:
            order = tuple(e.op for e, _ in stack)
            return SearchOutcome(UNKNOWN, order if len(order) > len(best) else best, len(cache))
        failed = False
        if entry is None or not entry.is_call:  # end of the operations that may go next
            if reads_first:
                entry, reads_first = head.next, False  # no read-only one fits: try the others
                continue
            failed = True
        elif read_only[entry.op] != reads_first or (blind[entry.op] and stack and open_blind[stack[-1][0].op]):
            entry = entry.next  # not this scan's kind; or a blind write right after an open one (pointless)
            continue
        else:
            ok, new_state = model.step(state, prepared[entry.op])
            config = (linearized | (1 << entry.op), new_state) if ok else None
            if config is not None and config not in cache:
                cache.add(config)
                stack.append((entry, state))
                linearized, state = config
                must -= entry.match is not None
                lift(entry)
                entry, reads_first = head.next, True
                continue
            failed = ok and reads_first  # a legal read-only op whose configuration already failed
            entry = entry.next
        if not failed:
            continue
        if len(stack) > len(best):
            best = tuple(e.op for e, _ in stack)
        while True:  # backtrack; past a read-only operation, keep going (it was placed without loss)
            if not stack:
                return SearchOutcome(NOT_LINEARIZABLE, best, len(cache))
            top, state = stack.pop()
            linearized &= ~(1 << top.op)
            must += top.match is not None
            unlift(top)
            if not read_only[top.op]:
                break
        entry, reads_first = top.next, False
    return SearchOutcome(LINEARIZABLE, tuple(e.op for e, _ in stack), len(cache))
    # END SOLUTION


def _iter_entries(head: Entry) -> Iterable[Entry]:
    entry = head.next
    while entry is not None:
        yield entry
        entry = entry.next


def check_key(key: str, ops: Sequence[Operation], model: Model, *, time_limit_s: float) -> KeyResult:
    """Check the operations of one key.

    Args:
        key: the key (for the report).
        ops: the key's operations in any order; ``fail`` ones and others the model
            calls irrelevant are dropped here.
        model: the sequential specification.
        time_limit_s: the budget; when it runs out the verdict is UNKNOWN.

    Raises:
        HistoryError: an operation the model does not know.
    """
    started = time.monotonic()
    kept = sorted((op for op in ops if model.relevant(op)), key=lambda op: (op.call_time, op.id))
    prepared = [model.prepare(op) for op in kept]
    outcome = search(make_entries(kept), prepared, model, deadline=started + time_limit_s)
    violation = None
    if outcome.verdict == NOT_LINEARIZABLE:
        violation = explain(key, kept, prepared, model, outcome.order)
    return KeyResult(
        key=key,
        verdict=outcome.verdict,
        operations=len(kept),
        configurations=outcome.configurations,
        elapsed_s=time.monotonic() - started,
        violation=violation,
    )


def explain(
    key: str, ops: Sequence[Operation], prepared: Sequence[Prepared], model: Model, prefix: Sequence[int]
) -> Violation:
    """Build the :class:`Violation` for a prefix the search could not extend.

    Requires: some operation with a return is not in ``prefix`` (else the key was linearizable).
    """
    state = model.init()
    for i in prefix:
        _, state = model.step(state, prepared[i])
    placed = set(prefix)
    rest = [op for i, op in enumerate(ops) if i not in placed]
    failing = min((op for op in rest if op.return_time != float("inf")), key=lambda op: (op.return_time, op.id))
    candidates = tuple(op for op in rest if op.call_time <= failing.return_time)
    return Violation(
        key=key,
        prefix=tuple(ops[i] for i in prefix),
        state_after_prefix=model.describe(state),
        failing=failing,
        candidates=candidates,
    )


def check_operations(ops: Iterable[Operation], model: Model, *, time_limit_s_per_key: float = 10.0) -> CheckResult:
    """Check a whole history, key by key.

    Args:
        ops: the operations (any status; ``fail`` ones are dropped).
        model: the sequential specification of one key.
        time_limit_s_per_key: each key's budget; expiry makes that key UNKNOWN.

    Returns:
        the combined verdict (see :func:`combine`) and each key's result.

    Raises:
        HistoryError: an operation the model does not know.
    """
    by_key: dict[str, list[Operation]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    results = tuple(
        check_key(key, by_key[key], model, time_limit_s=time_limit_s_per_key) for key in sorted(by_key)
    )
    return CheckResult(verdict=combine(r.verdict for r in results), keys=results, model=model.name)
