"""kvstore: a distributed key-value store written from scratch for teaching.

Start with ``docs/architecture.md``. The public API grows issue by issue; the
error tree (:mod:`kvstore.errors`) and the limits (:mod:`kvstore.limits`) are
shared by every part.
"""

from kvstore.errors import (
    ClosedError,
    ConfigError,
    CorruptionError,
    InvalidArgument,
    KeyTooLargeError,
    KVError,
    LimitExceeded,
    NotLeaderError,
    OutcomeUnknown,
    Unavailable,
    ValueTooLargeError,
)
from kvstore.invariants import InvariantViolation, invariant

__version__ = "0.1.0"

__all__ = [
    "ClosedError",
    "ConfigError",
    "CorruptionError",
    "InvalidArgument",
    "InvariantViolation",
    "KVError",
    "KeyTooLargeError",
    "LimitExceeded",
    "NotLeaderError",
    "OutcomeUnknown",
    "Unavailable",
    "ValueTooLargeError",
    "__version__",
    "invariant",
]
