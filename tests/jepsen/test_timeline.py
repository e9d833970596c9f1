"""timeline.html: lanes per process, colours by outcome, shaded faults, the first violation highlighted."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser

from jepsen_lite.checker import check_operations
from jepsen_lite.history import History, pair_events
from jepsen_lite.models import RegisterModel
from jepsen_lite.sets import check_sets
from jepsen_lite.synthetic import simulate_register
from jepsen_lite.testing import HistoryBuilder
from jepsen_lite.timeline import COLOURS, render_timeline


class _Tags(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def _tags(page: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def _with_violation_and_fault() -> History:
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1)
    b.ok(0)
    b.fault("partition", "invoke", value={"isolated": "n1"})
    b.invoke(1, "write", "x", 2)
    b.ok(1)
    b.invoke(2, "write", "x", 3)
    b.fail(2)
    b.invoke(3, "write", "x", 4)
    b.info(3)
    b.fault("partition", "ok")
    b.invoke(4, "read", "x")
    b.ok(4, 1)
    return b.history()


def test_one_lane_per_process_plus_the_nemesis_lane() -> None:
    """Five client processes give six lanes, the nemesis (-1) first."""
    page = render_timeline(_with_violation_and_fault())
    lanes = [a["data-process"] for tag, a in _tags(page) if a.get("class") == "lane"]
    assert lanes == ["-1", "0", "1", "2", "3", "4"]


def test_operations_are_coloured_by_outcome() -> None:
    """Each operation bar's colour is the colour of its status: ok, fail and info all appear."""
    ops = [a for tag, a in _tags(render_timeline(_with_violation_and_fault())) if "op" in a.get("class", "").split()]
    assert {a["data-status"] for a in ops} == {"ok", "fail", "info"}
    assert all(a["fill"] == COLOURS[a["data-status"]] for a in ops)
    assert len(ops) == 5


def test_nemesis_intervals_are_shaded_over_the_operations_they_overlap() -> None:
    """The partition is one shaded band that starts at its start event and spans the writes made during it."""
    history = _with_violation_and_fault()
    tags = _tags(render_timeline(history))
    (band,) = [a for tag, a in tags if a.get("class") == "fault"]
    assert band["data-fault"] == "partition" and float(band["data-start"]) == 2.0
    bars = {a["data-op"]: a for tag, a in tags if "data-op" in a}
    left, right = float(band["x"]), float(band["x"]) + float(band["width"])
    assert left < float(bars["1"]["x"]) < right  # the write of 2 happened during the partition
    assert float(bars["4"]["x"]) > right  # the read came after the heal


def test_the_first_non_linearizable_operation_is_highlighted_and_explained() -> None:
    """The stale read is the one bar marked as the violation, the page explains it and links to it."""
    history = _with_violation_and_fault()
    result = check_operations(history.operations, RegisterModel())
    assert result.first_violation is not None
    page = render_timeline(history, linearizability=result)
    marked = [a for tag, a in _tags(page) if a.get("class") == "op violation"]
    assert [a["data-op"] for a in marked] == [str(result.first_violation.failing.id)] == ["4"]
    assert "first non-linearizable operation" in page
    assert 'href="#op-4"' in page and 'id="op-4"' in page
    assert "not-linearizable" in page


def test_without_a_violation_nothing_is_highlighted() -> None:
    """A linearizable history has no violation mark (the legend still explains what one would look like)."""
    synthetic = simulate_register(seed=3, ops=200, keys=2, faults=2)
    history = pair_events(synthetic.events)
    result = check_operations(history.operations, RegisterModel())
    page = render_timeline(history, linearizability=result, sets=check_sets(history.operations))
    assert result.verdict == "linearizable"
    assert not [a for tag, a in _tags(page) if a.get("class") == "op violation"]
    assert len([a for tag, a in _tags(page) if a.get("class") == "fault"]) == 2


def test_the_page_is_self_contained() -> None:
    """No scripts, stylesheets, images or fonts are fetched: only in-page links and the SVG namespace."""
    history = _with_violation_and_fault()
    result = check_operations(history.operations, RegisterModel())
    page = render_timeline(history, linearizability=result, title="<script>alert(1)</script>")
    assert "<script" not in page
    assert not re.search(r"\b(src|@import|url\()", page)
    links = re.findall(r'href="([^"]*)"', page)
    assert links and all(link.startswith("#") for link in links)
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"]


def test_an_empty_history_still_renders() -> None:
    """A history with no events gives a page with just the nemesis lane."""
    page = render_timeline(pair_events([]))
    assert [a["data-process"] for tag, a in _tags(page) if a.get("class") == "lane"] == ["-1"]


def test_the_time_axis_counts_from_the_first_event_in_round_steps() -> None:
    """Tick labels start at 0 at the first event and go up in equal round steps, in the unit of the step."""
    b = HistoryBuilder()
    b.invoke(0, "write", "x", 1, time=100.0)
    b.ok(0, time=100.05)
    b.invoke(0, "read", "x", time=100.06)
    b.ok(0, 1, time=100.1)
    labels = re.findall(r'text-anchor="middle">([^<]*)<', render_timeline(b.history()))
    assert labels[0] == "0 ms" and len(labels) >= 5
    steps = {int(b_.split()[0]) - int(a.split()[0]) for a, b_ in itertools.pairwise(labels)}
    assert len(steps) == 1 and steps.pop() in (1, 2, 5, 10, 20, 50)
