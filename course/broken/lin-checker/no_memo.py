# ruff: noqa: F821  (a patch fragment: names come from the file it patches)
"""Wing & Gong without Lowe's memo: correct verdicts, but exponential on wide histories (runs out of budget)."""

FILE = "jepsen-lite/checker.py"
CAUGHT_BY = ["test_wide_linearizable_histories_are_decided_within_the_budget"]


def search(head, prepared, model, *, deadline):
    must = sum(1 for entry in _iter_entries(head) if not entry.is_call)
    state = model.init()
    linearized = 0
    stack = []
    best = ()
    entry = head.next
    steps = 0
    while must > 0:
        steps += 1
        if steps % _DEADLINE_CHECK_EVERY == 0 and time.monotonic() > deadline:
            order = tuple(e.op for e, _ in stack)
            return SearchOutcome(UNKNOWN, order if len(order) > len(best) else best, steps)
        if entry is not None and entry.is_call:
            ok, new_state = model.step(state, prepared[entry.op])
            if ok:
                stack.append((entry, state))
                state, linearized = new_state, linearized | (1 << entry.op)
                if entry.match is not None:
                    must -= 1
                lift(entry)
                entry = head.next
                continue
            entry = entry.next
            continue
        if not stack:
            return SearchOutcome(NOT_LINEARIZABLE, best, steps)
        if len(stack) > len(best):
            best = tuple(e.op for e, _ in stack)
        top, state = stack.pop()
        linearized &= ~(1 << top.op)
        if top.match is not None:
            must += 1
        unlift(top)
        entry = top.next
    return SearchOutcome(LINEARIZABLE, tuple(e.op for e, _ in stack), steps)
