"""The one error tree of kvstore.

Every operating error that crosses a public API is a :class:`KVError`. Any other
exception escaping a public API is a bug (a broken invariant raises
:class:`kvstore.invariants.InvariantViolation`, which is deliberately *not* a
``KVError``: it means the code is wrong, not the world).

Each error says whether the operation it interrupted **certainly did not happen**
(``definite = True``) or **may have happened** (``definite = False``). A client
may retry a definite failure freely; after an indeterminate one it must either
retry with the *same* client id and sequence number (so the cluster applies the
command at most once) or report :class:`OutcomeUnknown` to its caller.

Each class also carries a stable ``code`` string. The wire protocol
(``proto/kv.proto``, ``ErrorCode``) and the ``kv`` CLI's exit codes are derived
from it, so an error keeps its meaning across a process boundary.
"""

from __future__ import annotations

from typing import ClassVar


class KVError(Exception):
    """Base of every operating error in kvstore.

    Attributes:
        code: a stable, upper-case name for the error kind (used on the wire).
        definite: True when the operation certainly did not take effect.
    """

    code: ClassVar[str] = "UNKNOWN"
    definite: ClassVar[bool] = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------
# Bad input: the request was refused before anything happened.
# --------------------------------------------------------------------------


class InvalidArgument(KVError):
    """A request is malformed (wrong type, missing field, bad encoding)."""

    code = "INVALID_ARGUMENT"


class LimitExceeded(InvalidArgument):
    """A request is over one of the named limits in :mod:`kvstore.limits`.

    Attributes:
        what: which limit (for example ``"key size"``).
        size: the offending size.
        limit: the limit it exceeded.
    """

    code = "LIMIT_EXCEEDED"

    def __init__(self, what: str, size: int, limit: int, unit: str = "bytes") -> None:
        super().__init__(f"{what} is {size} {unit}, over the limit of {limit} {unit}")
        self.what = what
        self.size = size
        self.limit = limit


class KeyTooLargeError(LimitExceeded):
    """A key is longer than ``limits.MAX_KEY_BYTES``."""

    code = "KEY_TOO_LARGE"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__("key size", size, limit)


class ValueTooLargeError(LimitExceeded):
    """A value is longer than ``limits.MAX_VALUE_BYTES``."""

    code = "VALUE_TOO_LARGE"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__("value size", size, limit)


class BatchTooLargeError(LimitExceeded):
    """A write batch has too many operations or too many bytes."""

    code = "BATCH_TOO_LARGE"


class ConfigError(KVError):
    """A configuration or cluster file is missing, unreadable or invalid.

    The message names the file and, where known, the field.
    """

    code = "CONFIG_ERROR"


# --------------------------------------------------------------------------
# Cluster state: the request reached the wrong place or no place.
# --------------------------------------------------------------------------


class NotLeaderError(KVError):
    """This node is not the leader of its Raft group; nothing was done.

    Attributes:
        leader_hint: the address (or id) of the node believed to lead, or ``""``.
    """

    code = "NOT_LEADER"

    def __init__(self, leader_hint: str = "", message: str | None = None) -> None:
        hint = f"; try {leader_hint}" if leader_hint else ""
        super().__init__(message or f"not the leader{hint}")
        self.leader_hint = leader_hint


class Unavailable(KVError):
    """The service could not be reached or is not serving; nothing was done.

    Used when a connection is refused, a node is shutting down and refuses new
    work, or a write stall refuses a write. It is definite: the request was not
    accepted.
    """

    code = "UNAVAILABLE"


class ShuttingDown(Unavailable):
    """The node is shutting down and refuses new work."""

    code = "SHUTTING_DOWN"


class OutcomeUnknown(KVError):
    """The operation may or may not have taken effect (timeout, lost reply).

    The only honest answer after a request was sent and no reply came back.
    """

    code = "OUTCOME_UNKNOWN"
    definite = False


class DeadlineExceeded(OutcomeUnknown):
    """A deadline passed before a reply arrived; the outcome is unknown."""

    code = "DEADLINE_EXCEEDED"


# --------------------------------------------------------------------------
# Storage.
# --------------------------------------------------------------------------


class StorageError(KVError):
    """A storage operation failed (I/O error, full disk).

    Indeterminate by default: a failed fsync, for instance, leaves it unknown
    whether the bytes reached the disk.
    """

    code = "STORAGE_ERROR"
    definite = False


class CorruptionError(StorageError):
    """Stored data failed a check (checksum, magic number, length, ordering).

    Never a wrong answer: the engine refuses to serve what it cannot trust.

    Attributes:
        path: the file that is damaged.
        offset: byte offset of the damage within the file, or -1 if unknown.
    """

    code = "CORRUPTION"

    def __init__(self, path: str, offset: int, detail: str) -> None:
        where = f"{path} at offset {offset}" if offset >= 0 else path
        super().__init__(f"corruption in {where}: {detail}")
        self.path = path
        self.offset = offset
        self.detail = detail


class LogCompactedError(KVError):
    """The requested Raft log index was discarded by a snapshot."""

    code = "LOG_COMPACTED"


class ClosedError(KVError):
    """The object (engine, client, node) was used after ``close()``."""

    code = "CLOSED"


class CompareFailed(KVError):
    """A compare-and-set did not match; nothing was written.

    Not raised by the client API (``cas`` returns a result instead); used where
    a typed refusal must travel through a layer that only speaks errors.
    """

    code = "COMPARE_FAILED"


def all_error_classes() -> list[type[KVError]]:
    """Every class in the tree, base first (used to map wire codes back)."""
    seen: list[type[KVError]] = []
    stack: list[type[KVError]] = [KVError]
    while stack:
        cls = stack.pop(0)
        if cls not in seen:
            seen.append(cls)
            stack.extend(cls.__subclasses__())
    return seen
