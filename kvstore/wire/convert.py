"""Hand-written conversions between kvstore's Python types and the wire types.

Errors cross the wire as ``kv_pb2.Error`` (code, message, leader hint,
definite). :func:`error_to_proto` and :func:`error_from_proto` are inverse for
every class in :mod:`kvstore.errors` whose ``code`` appears in ``ErrorCode``;
other codes travel as their nearest listed ancestor.
"""

from __future__ import annotations

from kvstore import errors
from kvstore.wire import kv_pb2

# kvstore.errors class -> wire code. Order matters only for readability.
_TO_WIRE: dict[type[errors.KVError], int] = {
    errors.InvalidArgument: kv_pb2.INVALID_ARGUMENT,
    errors.KeyTooLargeError: kv_pb2.KEY_TOO_LARGE,
    errors.ValueTooLargeError: kv_pb2.VALUE_TOO_LARGE,
    errors.LimitExceeded: kv_pb2.LIMIT_EXCEEDED,
    errors.NotLeaderError: kv_pb2.NOT_LEADER,
    errors.Unavailable: kv_pb2.UNAVAILABLE,
    errors.ShuttingDown: kv_pb2.SHUTTING_DOWN,
    errors.OutcomeUnknown: kv_pb2.OUTCOME_UNKNOWN,
    errors.CorruptionError: kv_pb2.CORRUPTION,
    errors.StorageError: kv_pb2.STORAGE_ERROR,
}


def _wire_code(exc: errors.KVError) -> int:
    for cls in type(exc).__mro__:
        if cls in _TO_WIRE:
            return _TO_WIRE[cls]
    return kv_pb2.UNAVAILABLE if exc.definite else kv_pb2.OUTCOME_UNKNOWN


def error_to_proto(exc: errors.KVError) -> kv_pb2.Error:
    """Encode a KVError for a response's ``error`` field."""
    hint = exc.leader_hint if isinstance(exc, errors.NotLeaderError) else ""
    return kv_pb2.Error(code=_wire_code(exc), message=str(exc), leader_hint=hint, definite=exc.definite)  # type: ignore[arg-type]


def error_from_proto(err: kv_pb2.Error) -> errors.KVError:
    """Decode a response's ``error`` field back into the matching KVError.

    The server's message is kept verbatim; the class restores ``definite``
    and the typed attributes a caller branches on (``leader_hint``). Attributes
    that only the server knew (a limit's size, a corrupt file's offset) are
    not sent and read as -1.
    """
    msg = err.message or kv_pb2.ErrorCode.Name(err.code)
    if err.code == kv_pb2.NOT_LEADER:
        return errors.NotLeaderError(err.leader_hint, msg)
    for cls, code in _TO_WIRE.items():
        if code == err.code:
            return _rebuild(cls, msg)
    return errors.OutcomeUnknown(f"unknown error code {err.code}: {msg}")


def _rebuild(cls: type[errors.KVError], message: str) -> errors.KVError:
    """An instance of ``cls`` carrying ``message``, bypassing its own __init__."""
    exc = cls.__new__(cls)
    errors.KVError.__init__(exc, message)
    defaults: dict[str, object] = {"what": "", "size": -1, "limit": -1, "path": "(remote)", "offset": -1}
    for name, value in defaults.items():
        if hasattr(cls, "__init__") and name in cls.__init__.__code__.co_varnames:
            setattr(exc, name, value)
    if isinstance(exc, errors.CorruptionError):
        exc.detail = message
    return exc
