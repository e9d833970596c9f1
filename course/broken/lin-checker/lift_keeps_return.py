# ruff: noqa: E501  (a patch fragment: names come from the file it patches)
"""lift() unlinks the call entry but leaves its return entry in the list: later ops see a stale deadline."""

FILE = "jepsen-lite/checker.py"
CAUGHT_BY = ["test_lift_and_unlift_restore_the_entry_list", "test_checker_agrees_with_brute_force_on_random_small_histories"]


def lift(entry):
    if entry.prev is not None:
        entry.prev.next = entry.next
    if entry.next is not None:
        entry.next.prev = entry.prev


def unlift(entry):
    if entry.prev is not None:
        entry.prev.next = entry
    if entry.next is not None:
        entry.next.prev = entry
