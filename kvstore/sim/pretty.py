"""Render trace events for people: one line per event, or one column per node.

The column view is what a learner wants when a seed fails: time runs down the
page and each node's events stay in its own lane, so "n3 became leader while n1
still thought it led" is visible at a glance::

      time | n1                   | n2                   | n3
    -------+----------------------+----------------------+---------------------
     10.41 | t1 became_pre_candi… |                      |
     10.93 |                      | t0 vote_granted ca…  |
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kvstore.trace import TraceEvent


def _fields(fields: dict[str, Any]) -> str:
    parts = []
    for k, v in fields.items():
        if isinstance(v, (list, tuple)):
            v = "[" + ",".join(str(x) for x in v) + "]"
        parts.append(f"{k}={v}")
    return " ".join(parts)


def format_line(ev: TraceEvent) -> str:
    """``  12.40 n1 t3 leader        became_leader votes=[n1,n2]``."""
    text = f"{ev.time:7.2f} {ev.node:<4} t{ev.term:<3} {ev.role or '-':<13} {ev.event}"
    extra = _fields(ev.fields)
    return f"{text} {extra}".rstrip()


def format_lines(events: Iterable[TraceEvent]) -> str:
    """One line per event."""
    return "\n".join(format_line(ev) for ev in events)


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_columns(events: Iterable[TraceEvent], nodes: Sequence[str], *, width: int = 26) -> str:
    """One column per node; events of other sources (the simulator) span the row.

    Args:
        events: trace events in time order.
        nodes: the column order.
        width: characters per column (longer texts are cut with an ellipsis).
    """
    col = {n: i for i, n in enumerate(nodes)}
    header = "   time | " + " | ".join(f"{n:<{width}}" for n in nodes)
    rule = "-" * 8 + "+" + "+".join("-" * (width + 2) for _ in nodes)
    lines = [header.rstrip(), rule]
    for ev in events:
        text = f"t{ev.term} {ev.event} {_fields(ev.fields)}".rstrip()
        if ev.node in col:
            cells = [" " * width] * len(nodes)
            cells[col[ev.node]] = f"{_cell(text, width):<{width}}"
            lines.append((f"{ev.time:7.2f} | " + " | ".join(cells)).rstrip())
        else:
            lines.append(f"{ev.time:7.2f} | ** {ev.node}: {ev.event} {_fields(ev.fields)}".rstrip())
    return "\n".join(lines)
