"""Transcript tests: scenarios a reader can follow line by line (tests/sim/testdata/*.txt)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvstore.sim.transcript import SEPARATOR, run_transcript, split_transcript

DATA = Path(__file__).parent / "testdata"
FILES = sorted(DATA.glob("*.txt"))


def test_there_are_transcripts_to_run() -> None:
    """The testdata folder holds the transcripts (a wrong path must not pass vacuously)."""
    assert len(FILES) >= 4


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_transcript_produces_its_expected_trace(path: Path, rewrite: bool) -> None:
    """Running the commands gives exactly the recorded trace (`pytest tests/sim --rewrite` regenerates it)."""
    commands, expected = split_transcript(path.read_text(encoding="utf-8"))
    actual = run_transcript(commands)
    if rewrite:
        path.write_text("\n".join(commands) + "\n" + SEPARATOR + "\n" + actual, encoding="utf-8")
        return
    assert expected, f"{path.name} has no expected output yet: run pytest tests/sim --rewrite"
    assert actual == expected


def test_transcript_runner_rejects_an_unknown_command() -> None:
    """A typo in a transcript is an error naming the line, not a silent pass."""
    with pytest.raises(ValueError, match="line 2"):
        run_transcript(["nodes 3", "campain n1"])
