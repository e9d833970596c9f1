"""latency.png and rate.png: valid PNG files whose pixels show the operations and the shaded faults."""

from __future__ import annotations

import struct
import zlib

from jepsen_lite.history import History, pair_events
from jepsen_lite.plots import (
    HEIGHT_PX,
    NEMESIS,
    STATUS_COLOURS,
    WIDTH_PX,
    Canvas,
    _Frame,
    _time_range,
    latency_png,
    rate_png,
)
from jepsen_lite.synthetic import simulate_register


def _decode(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB PNG written by Canvas.to_png (checking every CRC)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF, kind
        chunks[kind] = data
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour_type) == (8, 2) and chunks[b"IEND"] == b""
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + 3 * width
    rows = [raw[y * stride : (y + 1) * stride] for y in range(height)]
    assert all(row[0] == 0 for row in rows), "filter byte 0 on every row"
    return width, height, [row[1:] for row in rows]


def _pixel(rows: list[bytes], x: int, y: int) -> tuple[int, int, int]:
    return (rows[y][3 * x], rows[y][3 * x + 1], rows[y][3 * x + 2])


def _history() -> History:
    return pair_events(simulate_register(seed=11, ops=600, keys=3, faults=2, info_ratio=0.05, fail_ratio=0.05).events)


def test_latency_png_is_valid_and_shows_every_outcome_and_the_faults() -> None:
    """The PNG decodes; dots of all three outcome colours appear; the middle of a fault interval is shaded."""
    history = _history()
    width, height, rows = _decode(latency_png(history))
    assert (width, height) == (WIDTH_PX, HEIGHT_PX)
    colours = {_pixel(rows, x, y) for y in range(height) for x in range(width)}
    assert set(STATUS_COLOURS.values()) <= colours
    span = history.nemesis[0]
    frame = _Frame(*_time_range(history), y_max=1.0)
    x = int(frame.x((span.start_time + min(span.end_time, history.end_time)) / 2))
    column = {_pixel(rows, x, y) for y in range(40, height - 45)}
    assert NEMESIS in column


def test_rate_png_is_valid_and_draws_the_ok_line() -> None:
    """The PNG decodes and the ok series is drawn."""
    width, height, rows = _decode(rate_png(_history()))
    assert (width, height) == (WIDTH_PX, HEIGHT_PX)
    assert any(_pixel(rows, x, y) == STATUS_COLOURS["ok"] for y in range(height) for x in range(width))


def test_charts_of_an_empty_history_still_render() -> None:
    """No operations, no events: both charts are still valid PNGs."""
    for png in (latency_png(pair_events([])), rate_png(pair_events([]))):
        assert _decode(png)[:2] == (WIDTH_PX, HEIGHT_PX)


def test_canvas_clips_drawing_outside_its_edges() -> None:
    """Rectangles, lines and text partly or wholly outside the canvas change only pixels inside it."""
    canvas = Canvas(10, 5)
    canvas.rect(-5, -5, 3, 2, (1, 2, 3))
    canvas.line(-20, 4, 30, 4, (4, 5, 6))
    canvas.text(8, -8, "WXYZ")
    canvas.text(100, 100, "0")
    canvas.check_invariants()
    assert canvas.get(0, 0) == (1, 2, 3) and canvas.get(2, 1) == (1, 2, 3) and canvas.get(3, 0) == (255, 255, 255)
    assert all(canvas.get(x, 4) == (4, 5, 6) for x in range(10))
    assert _decode(canvas.to_png())[:2] == (10, 5)
