"""Always-on invariant checks.

Python's ``assert`` disappears under ``python -O``; the checks that guard the
correctness of Raft and the storage engine must not. :func:`invariant` is the
project's one helper for programmer errors: a broken invariant means the code
(or a student's implementation) is wrong, and the only safe reaction is to stop
loudly, before a wrong answer reaches a user or a disk.

:class:`InvariantViolation` is *not* a :class:`kvstore.errors.KVError`: callers
must not catch it as an operating error.
"""

from __future__ import annotations

from typing import NoReturn


class InvariantViolation(AssertionError):
    """A condition the code promised to keep was broken. Always a bug."""


def invariant(condition: object, message: str) -> None:
    """Raise :class:`InvariantViolation` with ``message`` if ``condition`` is false.

    Args:
        condition: anything truthy or falsy; evaluated once.
        message: what should have held, phrased as the rule
            (``"commit_index never decreases"``), so the failure reads as the
            broken promise.

    Complexity: O(1). Build expensive messages lazily by checking first:
    ``if not ok: invariant_failed(f"...")``.
    """
    if not condition:
        raise InvariantViolation(message)


def invariant_failed(message: str) -> NoReturn:
    """Raise :class:`InvariantViolation` unconditionally (for unreachable branches)."""
    raise InvariantViolation(message)
