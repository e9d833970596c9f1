"""``latency.png`` and ``rate.png``: two charts of a history, drawn without any plotting library.

Theory of operation. A tiny raster :class:`Canvas` (RGB bytes, rectangles,
lines, points and a 3x5 pixel font scaled up) is enough for two honest charts,
and keeps the report free of heavy dependencies. PNG encoding is the minimal
valid file: signature, IHDR (8-bit RGB), one zlib-compressed IDAT with filter
byte 0 on every row, IEND; each chunk with its CRC-32.

- ``latency.png``: one dot per completed operation at (completion time,
  latency), coloured ok green / fail grey / info amber (an ``info`` has no real
  latency: it is drawn at its timeout); nemesis intervals shaded red.
- ``rate.png``: completions per second in time buckets, one line per outcome,
  nemesis intervals shaded red.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from jepsen_lite.history import History, Operation

from kvstore.invariants import invariant

Colour = tuple[int, int, int]
WHITE: Final = (255, 255, 255)
BLACK: Final = (34, 34, 34)
GRID: Final = (230, 230, 230)
NEMESIS: Final = (250, 218, 218)
STATUS_COLOURS: Final[dict[str, Colour]] = {"ok": (60, 154, 74), "fail": (140, 140, 140), "info": (224, 165, 38)}
WIDTH_PX: Final = 1000  # wide enough for a minute of history at 1 px per 60 ms
HEIGHT_PX: Final = 420
MARGIN_LEFT_PX: Final = 70
MARGIN_BOTTOM_PX: Final = 40
MARGIN_TOP_PX: Final = 30
MARGIN_RIGHT_PX: Final = 20
FONT_SCALE: Final = 2  # 3x5 glyphs drawn as 6x10 pixels
MAX_RATE_BUCKETS: Final = 200  # one bucket per 4 px at most; more is noise

_GLYPHS: Final[dict[str, tuple[str, ...]]] = {
    "0": ("111", "101", "101", "101", "111"), "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"), "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"), "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"), "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"), "9": ("111", "101", "111", "001", "111"),
    ".": ("000", "000", "000", "000", "010"), "-": ("000", "000", "111", "000", "000"),
    "/": ("001", "001", "010", "100", "100"), " ": ("000", "000", "000", "000", "000"),
    "A": ("010", "101", "111", "101", "101"), "B": ("110", "101", "110", "101", "110"),
    "C": ("011", "100", "100", "100", "011"), "D": ("110", "101", "101", "101", "110"),
    "E": ("111", "100", "110", "100", "111"), "F": ("111", "100", "110", "100", "100"),
    "G": ("011", "100", "101", "101", "011"), "H": ("101", "101", "111", "101", "101"),
    "I": ("111", "010", "010", "010", "111"), "J": ("001", "001", "001", "101", "010"),
    "K": ("101", "101", "110", "101", "101"), "L": ("100", "100", "100", "100", "111"),
    "M": ("101", "111", "111", "101", "101"), "N": ("110", "101", "101", "101", "101"),
    "O": ("010", "101", "101", "101", "010"), "P": ("110", "101", "110", "100", "100"),
    "Q": ("010", "101", "101", "110", "011"), "R": ("110", "101", "110", "101", "101"),
    "S": ("011", "100", "010", "001", "110"), "T": ("111", "010", "010", "010", "010"),
    "U": ("101", "101", "101", "101", "111"), "V": ("101", "101", "101", "101", "010"),
    "W": ("101", "101", "111", "111", "101"), "X": ("101", "101", "010", "101", "101"),
    "Y": ("101", "101", "010", "010", "010"), "Z": ("111", "001", "010", "100", "111"),
}


@dataclass(slots=True)
class Canvas:
    """An RGB raster; (0, 0) is the top-left pixel. Drawing outside the canvas is clipped."""

    width: int
    height: int
    pixels: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if not self.pixels:
            self.pixels = bytearray(WHITE * (self.width * self.height))
        self.check_invariants()

    def check_invariants(self) -> None:
        """The buffer holds exactly 3 bytes per pixel."""
        invariant(len(self.pixels) == 3 * self.width * self.height, "3 bytes per pixel")

    def get(self, x: int, y: int) -> Colour:
        """The colour at (x, y)."""
        i = 3 * (y * self.width + x)
        return (self.pixels[i], self.pixels[i + 1], self.pixels[i + 2])

    def rect(self, x0: float, y0: float, x1: float, y1: float, colour: Colour) -> None:
        """Fill the rectangle [x0, x1) x [y0, y1) (coordinates in any order)."""
        lo_x, hi_x = sorted((x0, x1))
        lo_y, hi_y = sorted((y0, y1))
        left, right = max(0, int(lo_x)), min(self.width, math.ceil(hi_x))
        top, bottom = max(0, int(lo_y)), min(self.height, math.ceil(hi_y))
        if left >= right or top >= bottom:
            return
        row = bytes(colour) * (right - left)
        for y in range(top, bottom):
            i = 3 * (y * self.width + left)
            self.pixels[i : i + len(row)] = row

    def line(self, x0: float, y0: float, x1: float, y1: float, colour: Colour) -> None:
        """A 1-pixel line (sampled once per pixel along the longer axis)."""
        steps = max(1, int(max(abs(x1 - x0), abs(y1 - y0))))
        for k in range(steps + 1):
            x, y = x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps
            self.rect(x, y, x + 1, y + 1, colour)

    def text(self, x: float, y: float, text: str, colour: Colour = BLACK) -> None:
        """Draw ``text`` (upper-cased; unknown characters as spaces) with its top-left at (x, y)."""
        for n, char in enumerate(text.upper()):
            glyph = _GLYPHS.get(char, _GLYPHS[" "])
            left = x + n * 4 * FONT_SCALE
            for gy, bits in enumerate(glyph):
                for gx, bit in enumerate(bits):
                    if bit == "1":
                        px, py = left + gx * FONT_SCALE, y + gy * FONT_SCALE
                        self.rect(px, py, px + FONT_SCALE, py + FONT_SCALE, colour)

    def to_png(self) -> bytes:
        """The canvas as a PNG file (8-bit RGB, no interlace)."""
        stride = 3 * self.width
        raw = b"".join(b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height))
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # big-endian, as PNG requires
        return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(
            b"IEND", b""
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class _Frame:
    """Maps data coordinates to pixels inside the plot area."""

    t0: float
    t1: float
    y_max: float

    def x(self, t: float) -> float:
        span = (self.t1 - self.t0) or 1.0
        return MARGIN_LEFT_PX + (min(t, self.t1) - self.t0) / span * (WIDTH_PX - MARGIN_LEFT_PX - MARGIN_RIGHT_PX)

    def y(self, value: float) -> float:
        inner = HEIGHT_PX - MARGIN_TOP_PX - MARGIN_BOTTOM_PX
        return HEIGHT_PX - MARGIN_BOTTOM_PX - min(value, self.y_max) / (self.y_max or 1.0) * inner


def _axes(canvas: Canvas, history: History, frame: _Frame, *, title: str, y_label: str) -> None:
    """Nemesis shading, grid, tick labels, title and legend."""
    bottom = HEIGHT_PX - MARGIN_BOTTOM_PX
    for span in history.nemesis:
        x0 = frame.x(span.start_time)
        canvas.rect(x0, MARGIN_TOP_PX, max(x0 + 2, frame.x(span.end_time)), bottom, NEMESIS)
    for k in range(5):
        value = frame.y_max * k / 4
        y = frame.y(value)
        canvas.line(MARGIN_LEFT_PX, y, WIDTH_PX - MARGIN_RIGHT_PX, y, GRID)
        canvas.text(4, y - 5, _number(value))
    for k in range(6):
        t = frame.t0 + (frame.t1 - frame.t0) * k / 5
        label = _number(t - frame.t0)
        width = len(label) * 4 * FONT_SCALE
        canvas.text(min(frame.x(t) - width / 2, WIDTH_PX - width), bottom + 8, label)
    canvas.line(MARGIN_LEFT_PX, MARGIN_TOP_PX, MARGIN_LEFT_PX, bottom, BLACK)
    canvas.line(MARGIN_LEFT_PX, bottom, WIDTH_PX - MARGIN_RIGHT_PX, bottom, BLACK)
    canvas.text(MARGIN_LEFT_PX, 8, f"{title}   Y {y_label}   X TIME S")
    legend_x = WIDTH_PX - 330
    for n, (status, colour) in enumerate([*STATUS_COLOURS.items(), ("nemesis", NEMESIS)]):
        canvas.rect(legend_x + n * 80, 8, legend_x + n * 80 + 10, 18, colour)
        canvas.text(legend_x + n * 80 + 14, 8, status)


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def _completed(history: History) -> list[tuple[Operation, float]]:
    """(operation, completion time) for every operation that completed, info ones at their info event."""
    info_time = {e.index: e.time for e in history.events if e.type == "info"}
    done = []
    for op in history.operations:
        if op.status != "info":
            done.append((op, op.return_time))
        elif op.return_index is not None and op.return_index in info_time:
            done.append((op, info_time[op.return_index]))
    return done


def _time_range(history: History) -> tuple[float, float]:
    times = [e.time for e in history.events]
    t0, t1 = min(times, default=0.0), max(times, default=1.0)
    return t0, (t1 if t1 > t0 else t0 + 1.0)


def latency_png(history: History) -> bytes:
    """``latency.png``: latency in ms of each completed operation against its completion time."""
    done = _completed(history)
    latencies = sorted((end - op.call_time) * 1000 for op, end in done)
    y_max = latencies[min(len(latencies) - 1, int(0.999 * len(latencies)))] * 1.1 if latencies else 1.0
    frame = _Frame(*_time_range(history), y_max=max(y_max, 1e-3))
    canvas = Canvas(WIDTH_PX, HEIGHT_PX)
    _axes(canvas, history, frame, title="LATENCY", y_label="MS")
    for op, end in done:
        x, y = frame.x(end), frame.y((end - op.call_time) * 1000)
        canvas.rect(x - 1, y - 1, x + 2, y + 2, STATUS_COLOURS[op.status])
    return canvas.to_png()


def rate_png(history: History) -> bytes:
    """``rate.png``: completions per second, per outcome, in equal time buckets."""
    t0, t1 = _time_range(history)
    buckets = max(1, min(MAX_RATE_BUCKETS, len(history.operations) // 10))
    width_s = (t1 - t0) / buckets
    counts: dict[str, list[int]] = {status: [0] * buckets for status in STATUS_COLOURS}
    for op, end in _completed(history):
        counts[op.status][min(buckets - 1, int((end - t0) / width_s))] += 1
    y_max = max((c / width_s for series in counts.values() for c in series), default=1.0) * 1.1
    frame = _Frame(t0, t1, y_max=max(y_max, 1e-3))
    canvas = Canvas(WIDTH_PX, HEIGHT_PX)
    _axes(canvas, history, frame, title="THROUGHPUT", y_label="OPS/S")
    for status, series in counts.items():
        _polyline(canvas, [(frame.x(t0 + (i + 0.5) * width_s), frame.y(c / width_s)) for i, c in enumerate(series)],
                  STATUS_COLOURS[status])
    return canvas.to_png()


def _polyline(canvas: Canvas, points: Sequence[tuple[float, float]], colour: Colour) -> None:
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        canvas.line(x0, y0, x1, y1, colour)
        canvas.line(x0, y0 + 1, x1, y1 + 1, colour)
