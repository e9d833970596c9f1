"""Source surgery: stubbing regions keeps everything but the region; functions move between files by name."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from kvstore.course.markers import check_source
from kvstore.course.splice import SpliceError, function_spans, replace_functions, stub_regions

LABS = {"raft-election", "ring-routing"}

SOURCE = textwrap.dedent('''
    import bisect


    class Ring:
        """A ring."""

        @property
        def size(self) -> int:
            """How big."""
            # BEGIN SOLUTION ring-routing
            return 3
            # END SOLUTION

        def shard_for(self, key: bytes) -> str:
            """Return the owner of the first point at or after the key's point, wrapping past the top.

            More text.
            """
            key = bytes(key)
            # BEGIN SOLUTION ring-routing
            index = bisect.bisect_left([1, 2], len(key))
            return "s%d" % index
            # END SOLUTION

        def other(self) -> int:
            """Another lab's code."""
            # BEGIN SOLUTION raft-election
            return 7
            # END SOLUTION
''').lstrip()


def regions_of(text: str, lab: str) -> list:  # type: ignore[type-arg]
    regions, problems = check_source(Path("x.py"), text, LABS)
    assert not problems
    return [r for r in regions if r.lab == lab]


def test_a_stubbed_region_becomes_one_raise_with_the_docstrings_first_line() -> None:
    """The region's body becomes raise NotImplementedError("<lab>: <doc line>"); markers and the rest stay."""
    stubbed = stub_regions(SOURCE, regions_of(SOURCE, "ring-routing"))
    assert 'raise NotImplementedError("ring-routing: How big.")' in stubbed
    assert "ring-routing: Return the owner of the first point" in stubbed
    assert "bisect_left" not in stubbed and "return 3" not in stubbed
    assert "key = bytes(key)" in stubbed and "@property" in stubbed and "More text." in stubbed
    assert "# BEGIN SOLUTION raft-election" in stubbed and "return 7" in stubbed
    assert stubbed.count("BEGIN SOLUTION") == 3 and stubbed.count("END SOLUTION") == 3
    assert check_source(Path("x.py"), stubbed, LABS)[1] == []
    ast.parse(stubbed)


def test_long_stub_messages_wrap_within_the_line_length() -> None:
    """A long docstring line is split into implicitly concatenated strings; no line exceeds 120 columns."""
    text = SOURCE.replace("Return the owner", "Return the owner " + "very " * 30)
    stubbed = stub_regions(text, regions_of(text, "ring-routing"))
    new_lines = [line for line in stubbed.splitlines() if line not in text.splitlines()]
    assert len(new_lines) > 2 and max(len(line) for line in new_lines) <= 120
    ast.parse(stubbed)


def test_the_stub_raises_when_called() -> None:
    """Executing the stubbed module and calling the method raises NotImplementedError naming the lab."""
    stubbed = stub_regions(SOURCE, regions_of(SOURCE, "ring-routing"))
    namespace: dict[str, object] = {}
    exec(compile(stubbed, "x.py", "exec"), namespace)
    ring = namespace["Ring"]()  # type: ignore[operator]
    with pytest.raises(NotImplementedError, match="ring-routing"):
        ring.shard_for(b"k")
    assert ring.other() == 7


def test_replacing_functions_restores_the_original_text_exactly() -> None:
    """Putting the reference definitions back into a stubbed text gives the reference byte for byte."""
    stubbed = stub_regions(SOURCE, regions_of(SOURCE, "ring-routing"))
    assert replace_functions(stubbed, SOURCE, ["Ring.size", "Ring.shard_for"]) == SOURCE


def test_a_function_span_includes_decorators_and_the_closing_marker() -> None:
    """The span of a method starts at its decorator and ends after its trailing END SOLUTION comment."""
    spans = function_spans(SOURCE)
    lines = SOURCE.splitlines()
    size = spans["Ring.size"]
    assert lines[size.first_line - 1].strip() == "@property"
    assert lines[size.last_line - 1].strip() == "# END SOLUTION"


def test_replacing_a_function_reindents_the_donor() -> None:
    """A donor method written at another depth is re-indented to the target's."""
    donor = "class Ring:\n        def other(self) -> int:\n            return 8\n"
    result = replace_functions(SOURCE, donor, ["Ring.other"])
    assert "    def other(self) -> int:\n        return 8\n" in result
    ast.parse(result)


def test_a_missing_function_is_a_splice_error() -> None:
    """Replacing a function the target does not have fails loudly, naming it."""
    with pytest.raises(SpliceError, match=r"Ring\.gone"):
        replace_functions(SOURCE, SOURCE, ["Ring.gone"])
    with pytest.raises(SpliceError, match="cannot parse"):
        function_spans("def broken(:\n")
