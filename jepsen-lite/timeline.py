"""``timeline.html``: a history drawn so a person can see what each client did and when faults hit.

Theory of operation. One self-contained HTML page (inline CSS and SVG, no
script, no external resource, so it opens from a run folder or a CI artifact
anywhere). Time runs left to right; each client process has one horizontal
lane, with the nemesis lane on top. Every operation is a bar from its call to
its completion, coloured by outcome: ``ok`` green, ``fail`` grey (it did not
happen), ``info`` amber with a faint tail to the end of the history (it may
take effect any time). Nemesis intervals are shaded across all lanes. When the
checker found a violation, the failing operation of the first one is outlined
in red and labelled, the other operations pending at that point are outlined
dashed, and the explanation is printed above the chart with a link to it.
Hovering a bar shows the operation (SVG ``<title>``).

Every SVG element carries ``data-*`` attributes (``data-process``, ``data-op``,
``data-status``, ``data-fault``) so tests (and people with devtools) can find
things without parsing pixels.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from jepsen_lite.checker import CheckResult, Violation
from jepsen_lite.history import NEMESIS_PROCESS, History, Operation
from jepsen_lite.sets import SetResult

LANE_HEIGHT_PX: Final = 20  # tall enough for a 11 px label inside a bar
LEFT_MARGIN_PX: Final = 90  # room for the lane names
TOP_MARGIN_PX: Final = 34  # room for the time axis labels
MIN_WIDTH_PX: Final = 1200  # a laptop screen
MAX_WIDTH_PX: Final = 24000  # beyond this browsers get slow; bars simply get thinner
PX_PER_OP_IN_BUSIEST_LANE: Final = 26  # so a short bar still shows its colour and, often, its label
COLOURS: Final = {"ok": "#3c9a4a", "fail": "#9e9e9e", "info": "#e0a526"}
_CSS: Final = """
body { font-family: system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; margin: 0 0 8px 0; }
.verdict { font-weight: bold; padding: 2px 8px; border-radius: 4px; color: white; }
.verdict.ok { background: #3c9a4a; } .verdict.bad { background: #c62828; } .verdict.unknown { background: #e0a526; }
pre.explain { background: #fff3f3; border-left: 4px solid #c62828; padding: 8px; white-space: pre-wrap; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 14px; height: 10px; margin-right: 4px; vertical-align: middle; }
.chart { overflow: auto; border: 1px solid #ccc; max-height: 80vh; }
svg text { font-size: 11px; font-family: ui-monospace, monospace; }
.op:hover { stroke: #000; stroke-width: 1.5; }
"""


@dataclass(frozen=True, slots=True)
class _Scale:
    t0: float
    t1: float
    width_px: float

    def x(self, t: float) -> float:
        span = self.t1 - self.t0 or 1.0
        return LEFT_MARGIN_PX + (min(t, self.t1) - self.t0) / span * self.width_px


def render_timeline(
    history: History,
    *,
    linearizability: CheckResult | None = None,
    sets: SetResult | None = None,
    title: str = "jepsen-lite timeline",
) -> str:
    """The whole ``timeline.html`` page as a string.

    Args:
        history: the paired history to draw.
        linearizability: the checker's result, to show the verdict and highlight the first violation.
        sets: the set checker's result, shown in the summary.
        title: the page title.
    """
    lanes = sorted({op.process for op in history.operations})
    scale = _scale(history, lanes)
    violation = linearizability.first_violation if linearizability is not None else None
    height = TOP_MARGIN_PX + (len(lanes) + 1) * LANE_HEIGHT_PX + 10
    width = LEFT_MARGIN_PX + scale.width_px + 40
    svg: list[str] = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}">']
    svg.extend(_axis(scale, height))
    svg.extend(_lane_labels(lanes, _lane_names(history, lanes), width))
    svg.extend(_nemesis(history, scale, height))
    svg.extend(_operations(history, lanes, scale, violation))
    svg.append("</svg>")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            *_summary(history, linearizability, sets, violation),
            '<div class="chart">',
            *svg,
            "</div></body></html>",
        ]
    )


def _scale(history: History, lanes: Sequence[int]) -> _Scale:
    finite = [e.time for e in history.events] + [n.start_time for n in history.nemesis]
    t0 = min(finite, default=0.0)
    t1 = max(finite, default=1.0)
    per_lane: dict[int, int] = {}
    for op in history.operations:
        per_lane[op.process] = per_lane.get(op.process, 0) + 1
    busiest = max(per_lane.values(), default=1)
    width = max(MIN_WIDTH_PX, min(MAX_WIDTH_PX, busiest * PX_PER_OP_IN_BUSIEST_LANE))
    return _Scale(t0, t1 if t1 > t0 else t0 + 1.0, float(width))


def _lane_y(lane: int) -> float:
    """Top of lane ``lane`` (0 = the nemesis lane)."""
    return TOP_MARGIN_PX + lane * LANE_HEIGHT_PX


def _axis(scale: _Scale, height: int) -> list[str]:
    step = _nice_step((scale.t1 - scale.t0) / max(1.0, scale.width_px / 120))
    out = ['<g class="axis">']
    ticks = int((scale.t1 - scale.t0) / step + 1e-9) + 1  # at 0, step, 2*step... after the first event
    for k in range(ticks):
        x = scale.x(scale.t0 + k * step)
        out.append(f'<line x1="{x:.1f}" y1="{TOP_MARGIN_PX - 6}" x2="{x:.1f}" y2="{height}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP_MARGIN_PX - 10}" text-anchor="middle">{_seconds(k * step, step)}</text>')
    out.append("</g>")
    return out


def _nice_step(raw: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``raw``."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def _seconds(t: float, step: float) -> str:
    """A tick label with as many decimals as the step needs (ms below a one-second step)."""
    if step >= 1:
        return f"{t:.0f} s"
    if step >= 0.001:
        return f"{t * 1000:.0f} ms"
    return f"{t * 1000:.3f} ms"


def _lane_names(history: History, lanes: Sequence[int]) -> list[str]:
    """``p3`` — or ``p3 k0`` when the process only ever touched key ``k0``."""
    keys: dict[int, set[str]] = {}
    for op in history.operations:
        keys.setdefault(op.process, set()).add(op.key)
    return [f"p{p} {next(iter(keys[p]))}"[:12] if len(keys[p]) == 1 else f"p{p}" for p in lanes]


def _lane_labels(lanes: Sequence[int], names: Sequence[str], width: float) -> list[str]:
    out = ['<g class="lanes">']
    for row, name in enumerate(["nemesis", *names]):
        y = _lane_y(row)
        fill = "#f7f7f7" if row % 2 else "#ffffff"
        process = NEMESIS_PROCESS if row == 0 else lanes[row - 1]
        out.append(
            f'<rect class="lane" data-process="{process}" x="0" y="{y}" width="{width:.0f}" '
            f'height="{LANE_HEIGHT_PX}" fill="{fill}"/>'
        )
        out.append(f'<text x="6" y="{y + 14}">{html.escape(name)}</text>')
    out.append("</g>")
    return out


def _nemesis(history: History, scale: _Scale, height: int) -> list[str]:
    out = ['<g class="nemesis">']
    for span in history.nemesis:
        x0 = scale.x(span.start_time)
        x1 = max(x0 + 2, scale.x(span.end_time))
        end = "never healed" if math.isinf(span.end_time) else f"{span.end_time - scale.t0:.3f} s"
        tip = f"{span.name}: {span.start_time - scale.t0:.3f} s -> {end}; {json.dumps(span.value)}"
        attrs = f'class="fault" data-fault="{html.escape(span.name)}" data-start="{span.start_time}"'
        out.append(
            f'<rect {attrs} x="{x0:.1f}" y="{TOP_MARGIN_PX}" width="{x1 - x0:.1f}" '
            f'height="{height - TOP_MARGIN_PX}" fill="#d32f2f" fill-opacity="0.10">'
            f"<title>{html.escape(tip)}</title></rect>"
        )
        out.append(
            f'<rect x="{x0:.1f}" y="{_lane_y(0) + 3}" width="{x1 - x0:.1f}" height="{LANE_HEIGHT_PX - 6}" '
            f'fill="#d32f2f" fill-opacity="0.6"><title>{html.escape(tip)}</title></rect>'
        )
        out.append(f'<text x="{x0 + 3:.1f}" y="{_lane_y(0) + 14}" fill="#fff">{html.escape(span.name)}</text>')
    out.append("</g>")
    return out


def _operations(history: History, lanes: Sequence[int], scale: _Scale, violation: Violation | None) -> list[str]:
    row_of = {p: i + 1 for i, p in enumerate(lanes)}
    info_time = {e.index: e.time for e in history.events if e.type == "info"}
    pending = {op.id for op in violation.candidates} if violation else set()
    failing = violation.failing.id if violation else None
    out = ['<g class="ops">']
    for op in history.operations:
        y = _lane_y(row_of[op.process]) + 3
        x0 = scale.x(op.call_time)
        shown_end = op.return_time if op.status != "info" else info_time.get(op.return_index or -1, scale.t1)
        x1 = max(x0 + 3, scale.x(shown_end))
        if op.status == "info":
            out.append(
                f'<rect x="{x1:.1f}" y="{y + 5}" width="{max(0.0, scale.x(scale.t1) - x1):.1f}" height="4" '
                f'fill="{COLOURS["info"]}" fill-opacity="0.25"/>'
            )
        stroke = ""
        if op.id == failing:
            stroke = ' stroke="#c62828" stroke-width="3"'
        elif op.id in pending:
            stroke = ' stroke="#c62828" stroke-width="1.5" stroke-dasharray="3,2"'
        cls = "op violation" if op.id == failing else "op"
        out.append(
            f'<rect id="op-{op.id}" class="{cls}" data-op="{op.id}" data-process="{op.process}" '
            f'data-status="{op.status}" x="{x0:.1f}" y="{y}" width="{x1 - x0:.1f}" height="{LANE_HEIGHT_PX - 6}" '
            f'rx="2" fill="{COLOURS.get(op.status, "#555")}"{stroke}><title>{html.escape(_tooltip(op))}</title></rect>'
        )
        label = _label(op)
        if x1 - x0 > 7.5 * len(label) + 4:
            out.append(f'<text x="{x0 + 2:.1f}" y="{y + 11}" fill="#fff">{html.escape(label)}</text>')
    if violation is not None:
        out.extend(_violation_marker(violation.failing, row_of[violation.failing.process], scale))
    out.append("</g>")
    return out


def _violation_marker(op: Operation, row: int, scale: _Scale) -> list[str]:
    """A red band across the failing operation's lane and a haloed label, drawn over every bar."""
    x1 = max(scale.x(op.call_time) + 3, scale.x(op.return_time))
    y = _lane_y(row)
    label = html.escape(f"\u2190 first non-linearizable operation: op {op.id}, {op.describe()}")
    return [
        f'<rect x="{LEFT_MARGIN_PX}" y="{y}" width="{scale.width_px:.0f}" height="{LANE_HEIGHT_PX}" '
        'fill="#c62828" fill-opacity="0.08" pointer-events="none"/>',
        f'<line x1="{x1:.1f}" y1="{TOP_MARGIN_PX}" x2="{x1:.1f}" y2="{y + LANE_HEIGHT_PX}" stroke="#c62828" '
        'stroke-dasharray="4,3" pointer-events="none"/>',
        f'<rect x="{x1 + 2:.1f}" y="{y - 14}" width="{7.4 * len(label) + 8:.0f}" height="16" rx="3" fill="#fff" '
        'stroke="#c62828" pointer-events="none"/>',
        f'<text class="violation-label" x="{x1 + 6:.1f}" y="{y - 2}" fill="#c62828" font-weight="bold" '
        f'pointer-events="none">{label}</text>',
    ]


def _label(op: Operation) -> str:
    if op.f in ("read", "get", "read-set"):
        return f"r {json.dumps(op.output)}" if op.status == "ok" else "r ?"
    if op.f == "cas" and isinstance(op.value, list) and len(op.value) == 2:
        refused = "\u2717" if op.output is False else ""
        return f"cas {json.dumps(op.value[0])}\u2192{json.dumps(op.value[1])}{refused}"
    return f"{op.f[0]} {json.dumps(op.value)}"


def _tooltip(op: Operation) -> str:
    end = "open (may take effect any time)" if math.isinf(op.return_time) else f"{op.return_time:.6f}"
    parts = [f"op {op.id}: {op.describe()}", f"call {op.call_time:.6f}, return {end}"]
    if op.node:
        parts.append(f"node {op.node}")
    if op.error:
        parts.append(f"error {op.error}")
    return "\n".join(parts)


def _summary(
    history: History, lin: CheckResult | None, sets: SetResult | None, violation: Violation | None
) -> list[str]:
    counts = {s: sum(1 for op in history.operations if op.status == s) for s in ("ok", "fail", "info")}
    out = [
        f"<p>{len(history.operations)} operations by {len({op.process for op in history.operations})} processes "
        f"on {len(history.keys())} keys: {counts['ok']} ok, {counts['fail']} fail, {counts['info']} info; "
        f"{len(history.nemesis)} nemesis interval(s).</p>",
        '<p class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{s}</span>' for s, c in COLOURS.items())
        + '<span><i style="background:#d32f2f;opacity:.3"></i>nemesis</span>'
        + '<span><i style="border:2px solid #c62828"></i>first non-linearizable operation</span></p>',
    ]
    for name, verdict in (("linearizability", lin.verdict if lin else None), ("sets", sets.verdict if sets else None)):
        if verdict is not None:
            css = {"linearizable": "ok", "valid": "ok", "unknown": "unknown"}.get(verdict, "bad")
            out.append(f'<p>{name}: <span class="verdict {css}">{html.escape(verdict)}</span></p>')
    if violation is not None:
        out.append(f'<pre class="explain">{html.escape(violation.explain())}</pre>')
        out.append(f'<p><a href="#op-{violation.failing.id}">jump to operation {violation.failing.id}</a></p>')
    return out
