# ruff: noqa: F821  (a patch fragment: names come from the file it patches)
"""A search that never backtracks to a verdict: every history is reported linearizable."""

FILE = "jepsen-lite/checker.py"
CAUGHT_BY = [
    "test_read_of_an_overwritten_value_after_both_writes_is_not_linearizable",
    "test_checker_agrees_with_brute_force_on_random_small_histories",
]


def search(head, prepared, model, *, deadline):
    return SearchOutcome(LINEARIZABLE, (), 0)
