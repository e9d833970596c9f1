"""Sequential specifications: what one key may do, one operation at a time.

Theory of operation. Linearizability asks whether the concurrent operations on
a key can be put in *some* order, consistent with real time, in which a
sequential object would have given exactly the observed results. The
:class:`Model` is that sequential object. The checker calls
:meth:`Model.prepare` once per operation (to turn it into a small hashable
tuple) and then :meth:`Model.step` many times during its search, so ``step``
must be pure and cheap, and states must be hashable (the checker memoizes on
``(set of linearized operations, state)``).

Two models ship:

- :class:`RegisterModel` — a register per key with ``read``, ``write`` and
  ``cas`` (compare-and-set); the initial value is ``None`` (absent).
- :class:`KVAppendModel` — a string per key with ``get``, ``put`` and ``append``;
  the initial value is ``""`` (the Porcupine/Knossos "kv" fixtures).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final, Protocol, cast

from jepsen_lite.history import HistoryError, Operation

State = Hashable
Prepared = tuple[int, Hashable, Hashable]
"""A prepared operation: (opcode, input, output), all hashable."""


def freeze(value: object) -> Hashable:
    """Turn a JSON value into an equal-comparing hashable one (lists -> tuples, dicts -> sorted tuples)."""
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


class Model(Protocol):
    """A sequential specification of one key.

    Contract:
        - ``init()`` is the state of a key nobody has touched.
        - ``prepare(op)`` is called once per operation that the checker keeps
          (status ``ok`` or ``info``); for ``info`` the output is unknown and must
          not constrain the step.
        - ``step(state, prepared)`` returns ``(True, next_state)`` if the operation
          may take effect in ``state`` with the observed result, else
          ``(False, state)``. It is pure: same inputs, same answer.
        - ``relevant(op)`` says whether an operation matters at all (an ``info``
          read constrains nothing and may be dropped).
        - ``read_only(prepared)`` is True only for operations that never change
          the state (an ``ok`` read, a refused cas); the checker linearizes those
          greedily. Returning False is always safe, just slower.
        - ``blind(prepared)`` is True only for operations that are always legal and
          set the state regardless of it (a write, a put); the checker never places
          one right after an open blind one. Returning False is always safe.
    """

    name: str

    def init(self) -> State:
        """The initial state."""
        ...

    def prepare(self, op: Operation) -> Prepared:
        """The operation as a hashable (opcode, input, output) tuple."""
        ...

    def step(self, state: State, op: Prepared) -> tuple[bool, State]:
        """Apply one prepared operation to a state."""
        ...

    def relevant(self, op: Operation) -> bool:
        """False for operations that can be dropped without changing the verdict."""
        ...

    def read_only(self, op: Prepared) -> bool:
        """True only if ``step`` never changes the state for this operation, whatever the state."""
        ...

    def blind(self, op: Prepared) -> bool:
        """True only if ``step`` always accepts this operation and its next state does not depend on the state."""
        ...

    def describe(self, state: State) -> str:
        """A state, for people."""
        ...


_UNKNOWN: Final = ("<unknown>",)  # output of an info operation; never equal to a real value

READ, WRITE, CAS = 0, 1, 2  # register opcodes (in-memory only)


class RegisterModel:
    """A read/write/compare-and-set register; the initial value is ``None`` (absent).

    - read: legal iff the observed value equals the state.
    - write v: always legal; the state becomes v.
    - delete: always legal; the state becomes absent (a blind write of ``None``).
    - cas [e, n]: if it completed ``ok`` with output ``False`` it was *refused*:
      legal iff the state is not e, and nothing changes. Otherwise (it swapped,
      or its outcome is unknown): legal iff the state is e; the state becomes n.
    """

    name = "register"
    _OPCODES: Final = {"read": READ, "write": WRITE, "delete": WRITE, "cas": CAS}

    def init(self) -> State:
        return None

    def relevant(self, op: Operation) -> bool:
        return op.status != "fail" and not (op.status == "info" and op.f == "read")

    def prepare(self, op: Operation) -> Prepared:
        code = self._OPCODES.get(op.f)
        if code is None:
            raise HistoryError(f"the register model has no operation {op.f!r} (operation {op.id})")
        output = freeze(op.output) if op.status == "ok" else _UNKNOWN
        if code == CAS:
            if not (isinstance(op.value, (list, tuple)) and len(op.value) == 2):
                raise HistoryError(f"cas needs [expected, new], got {op.value!r} (operation {op.id})")
            return (CAS, (freeze(op.value[0]), freeze(op.value[1])), output is False)
        return (code, None if op.f == "delete" else freeze(op.value), output)

    def step(self, state: State, op: Prepared) -> tuple[bool, State]:
        code, arg, out = op
        if code == READ:
            return (out == state and type(out) is type(state)), state
        if code == WRITE:
            return True, arg
        expected, new = cast(tuple[Hashable, Hashable], arg)  # prepare() builds the pair
        same = expected == state and type(expected) is type(state)
        if out:  # refused
            return not same, state
        return (True, new) if same else (False, state)

    def read_only(self, op: Prepared) -> bool:
        code, _, out = op
        return code == READ or (code == CAS and out is True)

    def blind(self, op: Prepared) -> bool:
        return op[0] == WRITE

    def describe(self, state: State) -> str:
        return "absent" if state is None else repr(state)



GET, PUT, APPEND = 0, 1, 2  # kv opcodes (in-memory only)


class KVAppendModel:
    """A string per key with get, put and append; every key starts as ``""``."""

    name = "kv-append"
    _OPCODES: Final = {"get": GET, "put": PUT, "append": APPEND}

    def init(self) -> State:
        return ""

    def relevant(self, op: Operation) -> bool:
        return op.status != "fail" and not (op.status == "info" and op.f == "get")

    def prepare(self, op: Operation) -> Prepared:
        code = self._OPCODES.get(op.f)
        if code is None:
            raise HistoryError(f"the kv model has no operation {op.f!r} (operation {op.id})")
        output = freeze(op.output) if op.status == "ok" else _UNKNOWN
        return (code, "" if op.value is None else str(op.value), output)

    def step(self, state: State, op: Prepared) -> tuple[bool, State]:
        code, arg, out = op
        if code == GET:
            return out == state, state
        if code == PUT:
            return True, arg
        return True, f"{state}{arg}"

    def read_only(self, op: Prepared) -> bool:
        return op[0] == GET

    def blind(self, op: Prepared) -> bool:
        return op[0] == PUT

    def describe(self, state: State) -> str:
        return repr(state)
