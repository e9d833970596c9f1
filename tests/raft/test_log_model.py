"""RaftLog checked against a dumb list model (Figure 2, AppendEntries receiver steps 2-4)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore.raft import Entry
from kvstore.raft.log import RaftLog


def _nondecreasing_terms(max_len: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(1, 4), max_size=max_len).map(sorted)


def _model_append(ours: list[int], prev: int, prev_term: int, new: list[int]) -> list[int] | None:
    """The rule as plain list operations: None when the consistency check fails."""
    if prev > len(ours) or (prev > 0 and ours[prev - 1] != prev_term):
        return None
    result = list(ours)
    for offset, term in enumerate(new):
        pos = prev + offset
        if pos < len(result) and result[pos] == term:
            continue
        return result[:pos] + new[offset:]
    return result


@settings(max_examples=200, deadline=None)
@given(ours=_nondecreasing_terms(8), leader=_nondecreasing_terms(10), data=st.data())
def test_maybe_append_matches_the_list_model(ours: list[int], leader: list[int], data: st.DataObject) -> None:
    """For any follower log and any slice of any leader log, maybe_append does what Figure 2 says."""
    prev = data.draw(st.integers(0, len(leader)), label="prev")
    count = data.draw(st.integers(0, len(leader) - prev), label="count")
    prev_term = leader[prev - 1] if prev else 0
    new = leader[prev : prev + count]
    log = RaftLog(entries=[Entry(t, i + 1) for i, t in enumerate(ours)])
    expected = _model_append(ours, prev, prev_term, new)
    got = log.maybe_append(prev, prev_term, tuple(Entry(t, prev + 1 + i) for i, t in enumerate(new)))
    log.check_invariants()
    if expected is None:
        assert got is None and [e.term for e in log.entries] == ours
    else:
        assert got == prev + count
        assert [e.term for e in log.entries] == expected


@settings(max_examples=200, deadline=None)
@given(terms=_nondecreasing_terms(12), data=st.data())
def test_conflict_hint_points_at_the_first_index_of_the_conflicting_term(terms: list[int], data: st.DataObject
                                                                          ) -> None:
    """find_conflict_hint returns the term at prev and the first index holding it, or (0, last+1) if too short."""
    log = RaftLog(entries=[Entry(t, i + 1) for i, t in enumerate(terms)])
    prev = data.draw(st.integers(1, len(terms) + 3))
    term, index = log.find_conflict_hint(prev)
    if prev > len(terms):
        assert (term, index) == (0, len(terms) + 1)
    else:
        assert term == terms[prev - 1]
        assert index == terms.index(term) + 1
