"""The trace pretty-printers: one line per event, or one column per node."""

from __future__ import annotations

from kvstore.sim.pretty import format_columns, format_line
from kvstore.trace import TraceEvent


def test_column_view_puts_each_event_in_its_nodes_lane() -> None:
    """n2's event sits in the second column; simulator events span the row; long text is cut to the width."""
    events = [
        TraceEvent(1.0, "n1", 1, "leader", "became_leader", {"votes": ["n1", "n2"]}),
        TraceEvent(1.5, "n2", 1, "follower", "vote_granted", {"candidate": "n1"}),
        TraceEvent(2.0, "sim", 0, "", "partition", {"shape": "halves"}),
        TraceEvent(2.5, "n3", 1, "follower", "a_very_long_event_name_that_overflows", {"x": 1}),
    ]
    text = format_columns(events, ["n1", "n2", "n3"], width=20).splitlines()
    header, rows = text[0], text[2:]
    assert header.split("|")[1].strip() == "n1" and header.split("|")[3].strip() == "n3"
    assert rows[0].split("|")[1].strip().startswith("t1 became_leader")
    assert rows[1].split("|")[1].strip() == "" and rows[1].split("|")[2].strip().startswith("t1 vote_granted")
    assert "** sim: partition shape=halves" in rows[2]
    assert rows[3].split("|")[3].strip().endswith("…") and len(rows[3].split("|")[3].strip()) == 20


def test_line_view_shows_time_node_term_role_event_and_fields() -> None:
    """One event renders as one aligned line with its fields as key=value."""
    line = format_line(TraceEvent(12.4, "n1", 3, "leader", "became_leader", {"votes": ["n1", "n2"]}))
    assert line == "  12.40 n1   t3   leader        became_leader votes=[n1,n2]"
