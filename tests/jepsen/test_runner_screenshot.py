"""timeline.html in a real browser: headless Chromium renders it to a PNG that shows bars and fault shading.

Soak only: it needs Debian's ``chromium`` package (``apt-get install chromium``),
which CI does not install; the test installs nothing and fails, with that hint,
when the browser is missing.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from jepsen_lite.checker import check_operations
from jepsen_lite.history import pair_events
from jepsen_lite.models import RegisterModel
from jepsen_lite.synthetic import simulate_register
from jepsen_lite.timeline import render_timeline

OK_GREEN = (0x3C, 0x9A, 0x4A)  # timeline.COLOURS["ok"]


def _reddish(p: tuple[int, int, int]) -> bool:
    """The nemesis lane's bars (#d32f2f at 60 % opacity over white) and the violation outline."""
    return p[0] > 180 and p[0] - p[1] > 60 and p[0] - p[2] > 60


def _png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes) into (width, height, pixels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, prev = zlib.decompress(idat), width * channels, bytearray(width * channels)
    pixels: list[tuple[int, int, int]] = []
    for row in range(height):
        start = row * (stride + 1)
        ftype, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        pixels.extend(tuple(line[i : i + 3]) for i in range(0, stride, channels))  # type: ignore[misc]
        prev = line
    return width, height, pixels


@pytest.mark.soak
def test_headless_chromium_renders_the_timeline_with_bars_and_fault_shading(tmp_path: Path) -> None:
    """Chromium screenshots timeline.html: a real image with green ok bars and red nemesis bars in it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is not installed (Debian: apt-get install chromium); this soak test needs it",
                    pytrace=False)
    synthetic = simulate_register(seed=3, ops=300, keys=3, processes_per_key=3, violations=1, faults=2)
    history = pair_events(synthetic.events)
    page = render_timeline(history, linearizability=check_operations(list(history.operations), RegisterModel()))
    (tmp_path / "timeline.html").write_text(page, encoding="utf-8")
    shot = tmp_path / "timeline.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={shot}",
         "--window-size=1400,900", (tmp_path / "timeline.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1400, 900)
    colours = set(pixels)
    assert len(colours) > 50, "the page is not blank"
    assert sum(p == OK_GREEN for p in pixels) > 500, "ok bars are visible"
    assert sum(_reddish(p) for p in pixels) > 50, "fault intervals are visible"
