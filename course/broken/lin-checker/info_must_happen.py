# ruff: noqa: F821  (a patch fragment: names come from the file it patches)
"""Info operations counted as must-take-effect: an indeterminate cas that could never have succeeded is a violation."""

FILE = "jepsen-lite/checker.py"
CAUGHT_BY = ["test_checker_agrees_with_brute_force_on_random_small_histories", "test_fixture_verdict_matches_porcupine"]


def search(head, prepared, model, *, deadline):
    must = sum(1 for entry in _iter_entries(head) if entry.is_call)  # BUG: counts info operations too
    state = model.init()
    linearized = 0
    cache = set()
    stack = []
    best = ()
    entry = head.next
    steps = 0
    while must > 0:
        steps += 1
        if steps % _DEADLINE_CHECK_EVERY == 0 and time.monotonic() > deadline:
            order = tuple(e.op for e, _ in stack)
            return SearchOutcome(UNKNOWN, order if len(order) > len(best) else best, len(cache))
        if entry is not None and entry.is_call:
            ok, new_state = model.step(state, prepared[entry.op])
            if ok:
                bits = linearized | (1 << entry.op)
                if (bits, new_state) not in cache:
                    cache.add((bits, new_state))
                    stack.append((entry, state))
                    state, linearized = new_state, bits
                    must -= 1
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
            continue
        if not stack:
            return SearchOutcome(NOT_LINEARIZABLE, best, len(cache))
        if len(stack) > len(best):
            best = tuple(e.op for e, _ in stack)
        top, state = stack.pop()
        linearized &= ~(1 << top.op)
        must += 1
        unlift(top)
        entry = top.next
    return SearchOutcome(LINEARIZABLE, tuple(e.op for e, _ in stack), len(cache))
