"""Reading histories in the three formats ``jepsen-lite check`` accepts.

- ``jsonl`` — the run folder's ``history.jsonl`` (grammar in :mod:`jepsen_lite.history`);
  checked with the register model (or the append-string model when every operation is a
  ``get``, ``put`` or ``append``), plus the set checker for ``add``/``read-set`` operations.
- ``jepsen-log`` — Jepsen's log of a single compare-and-set register (the ``etcd/*.log``
  fixtures)::

      INFO  jepsen.util - 3	:invoke	:cas	[1 4]
      INFO  jepsen.util - 3	:fail	:cas	[1 4]

  Fields after ``jepsen.util -``: process, type, operation, value. Other lines are
  ignored. ``:fail :cas`` is a compare-and-set that completed and was *refused*
  (an observation: the register did not hold the expected value); ``:fail :read`` is
  a read whose result is unknown (dropped); ``:info`` leaves the operation open.
  Every event gets its line number as its time. The key is ``"register"``.
- ``edn-kv`` — one EDN map per line (the ``kv/*.txt`` fixtures)::

      {:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}

  with ``:get``, ``:put`` and ``:append`` on string values (every key starts as ``""``);
  checked with :class:`~jepsen_lite.models.KVAppendModel`.

Every reader raises :class:`~jepsen_lite.history.HistoryError` (never anything else)
for a file it cannot read or make sense of, with the line number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from jepsen_lite.history import Event, History, HistoryError, pair_events, parse_jsonl
from jepsen_lite.models import KVAppendModel, Model, RegisterModel

FORMATS: Final = ("jsonl", "jepsen-log", "edn-kv")
JEPSEN_LOG_KEY: Final = "register"
_JEPSEN_LINE = re.compile(r"jepsen\.util\s+-\s+(\S+)\s+(:\S+)\s+(:\S+)\s*(.*?)\s*$")


class Keyword(str):
    """An EDN keyword (``:ok``), kept apart from strings."""

    __slots__ = ()


_EDN_TOKEN = re.compile(r'\s*(?:(,)|([{}\[\]()])|("(?:[^"\\]|\\.)*")|([^\s,{}\[\]()"]+))')


def parse_edn(text: str) -> object:
    """Parse one EDN value: maps, vectors, lists, strings, numbers, keywords, nil, true, false.

    Keywords become :class:`Keyword`, maps ``dict``, vectors and lists ``list``.

    Raises:
        ValueError: the text is not one EDN value of that subset.
    """
    tokens = list(_edn_tokens(text))
    value, end = _edn_value(tokens, 0)
    if end != len(tokens):
        raise ValueError(f"unexpected {tokens[end]!r} after the value")
    return value


def _edn_tokens(text: str) -> Iterable[str]:
    pos = 0
    while True:
        match = _EDN_TOKEN.match(text, pos)
        if match is None:
            if text[pos:].strip():
                raise ValueError(f"cannot read EDN at {text[pos:pos + 20]!r}")
            return
        pos = match.end()
        token = match.group(2) or match.group(3) or match.group(4)
        if token:
            yield token


def _edn_value(tokens: list[str], i: int) -> tuple[object, int]:
    if i >= len(tokens):
        raise ValueError("the value ends early")
    token = tokens[i]
    closers = {"{": "}", "[": "]", "(": ")"}
    if token in closers:
        items: list[object] = []
        i += 1
        while i < len(tokens) and tokens[i] != closers[token]:
            item, i = _edn_value(tokens, i)
            items.append(item)
        if i >= len(tokens):
            raise ValueError(f"{token} is never closed")
        if token != "{":
            return items, i + 1
        if len(items) % 2:
            raise ValueError("a map needs an even number of forms")
        return {_hashable(items[k]): items[k + 1] for k in range(0, len(items), 2)}, i + 1
    if token in ("}", "]", ")"):
        raise ValueError(f"unexpected {token}")
    return _edn_atom(token), i + 1


def _hashable(value: object) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"map keys must be keywords or strings, got {value!r}")


def _edn_atom(token: str) -> object:
    if token.startswith('"'):
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), token[1:-1])
    if token.startswith(":"):
        return Keyword(token[1:])
    if token in ("nil", "true", "false"):
        return {"nil": None, "true": True, "false": False}[token]
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        raise ValueError(f"unknown EDN atom {token!r}") from None


def read_text(path: Path) -> list[str]:
    """The lines of a text file.

    Raises:
        HistoryError: the file cannot be read or is not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise HistoryError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise HistoryError(f"{path} is not UTF-8 text ({exc.reason})") from None


def parse_jepsen_log(lines: Iterable[str]) -> History:
    """Parse a Jepsen register log (see the module docstring).

    Raises:
        HistoryError: no operation lines at all, or a line with a bad value.
    """
    events: list[Event] = []
    for number, line in enumerate(lines, start=1):
        match = _JEPSEN_LINE.search(line)
        if match is None:
            continue
        process_text, kind, f, value_text = match.groups()
        try:
            process = int(process_text)
            value = parse_edn(value_text) if value_text else None
        except ValueError as exc:
            raise HistoryError(f"cannot read this operation line ({exc})", line=number) from None
        kind, f = kind[1:], f[1:]
        if kind not in ("invoke", "ok", "fail", "info"):
            raise HistoryError(f"unknown type :{kind}", line=number)
        if kind == "fail" and f == "cas":
            kind, value = "ok", False  # completed and refused: an observation
        elif kind == "fail" and f == "read":
            kind, value = "info", None  # result unknown; the read is dropped by the model
        if isinstance(value, Keyword):
            value = None  # :timed-out and friends
        events.append(Event(len(events), float(number), process, kind, f, JEPSEN_LOG_KEY, value))
    if not events:
        raise HistoryError("no Jepsen operation lines (INFO jepsen.util - <process> :<type> :<f> <value>) found")
    return pair_events(events)


def parse_edn_kv(lines: Iterable[str]) -> History:
    """Parse one EDN map per line (see the module docstring).

    Raises:
        HistoryError: a line is not such a map.
    """
    events: list[Event] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = parse_edn(line)
        except ValueError as exc:
            raise HistoryError(f"not an EDN map ({exc})", line=number) from None
        if not isinstance(obj, dict) or not {"process", "type", "f"} <= obj.keys():
            raise HistoryError("expected a map with :process, :type and :f", line=number)
        process, kind, f = obj["process"], obj["type"], obj["f"]
        if not isinstance(process, int) or kind not in ("invoke", "ok", "fail", "info") or not isinstance(f, str):
            raise HistoryError(f"bad :process {process!r}, :type {kind!r} or :f {f!r}", line=number)
        key = obj.get("key")
        value = obj.get("value")
        events.append(
            Event(len(events), float(number), process, str(kind), str(f), "" if key is None else str(key), value)
        )
    if not events:
        raise HistoryError("the file holds no operations")
    return pair_events(events)


def model_for(history: History) -> Model:
    """The append-string model if every non-set operation is a get, put or append; else the register."""
    kinds = {op.f for op in history.operations if op.f not in ("add", "read-set")}
    return KVAppendModel() if kinds and kinds <= {"get", "put", "append"} else RegisterModel()


def load(path: Path, fmt: str) -> tuple[History, Model]:
    """Read a history file in one of :data:`FORMATS` and the model to check it with.

    Raises:
        HistoryError: unreadable or malformed file, or an unknown format.
    """
    if fmt == "jsonl":
        history = pair_events(parse_jsonl(read_text(path)))
        return history, model_for(history)
    if fmt == "jepsen-log":
        return parse_jepsen_log(read_text(path)), RegisterModel()
    if fmt == "edn-kv":
        return parse_edn_kv(read_text(path)), KVAppendModel()
    raise HistoryError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
