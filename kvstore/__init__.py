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

_LAZY = {"Client", "AsyncClient", "ClientOptions"}


def __getattr__(name: str) -> object:
    """``kvstore.Client`` and ``kvstore.AsyncClient``, imported on first use.

    Lazy so that ``import kvstore.lsm`` (an embedded engine user) does not pay
    for importing gRPC.
    """
    if name in _LAZY:
        from kvstore.client import client

        return getattr(client, name)
    raise AttributeError(f"module 'kvstore' has no attribute {name!r}")

__all__ = [
    "AsyncClient",
    "Client",
    "ClientOptions",
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
