"""The kv-course command line: listing, releasing, and clear errors with exit status 2."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kvstore.course.cli import main


def test_labs_lists_every_lab_with_its_files_and_handout() -> None:
    """`kv-course labs` prints one block per catalog lab, with its files, public tests and marked regions."""
    result = CliRunner().invoke(main, ["labs"])
    assert result.exit_code == 0, result.output
    assert "ring-routing: KV 2: consistent hashing and routing [3 marked region(s)]" in result.output
    assert "files:        jepsen-lite/checker.py" in result.output
    assert "handout:      docs/labs/lin-checker.md" in result.output


def test_bank_lists_each_variant_with_the_mistake_and_its_catching_tests() -> None:
    """`kv-course bank --lab ring-routing` names each broken solution, the function it patches and its tests."""
    result = CliRunner().invoke(main, ["bank", "--lab", "ring-routing"])
    assert result.exit_code == 0, result.output
    assert "ring-routing/python_hash: Virtual nodes placed with Python's built-in hash()" in result.output
    assert "patches kvstore/client/ring.py: place_virtual_nodes" in result.output


def test_release_writes_a_kit_and_reports_what_it_stubbed(tmp_path: Path) -> None:
    """`kv-course release --labs ring-routing` writes the kit and lists the stubbed functions."""
    out = tmp_path / "kit"
    result = CliRunner().invoke(main, ["release", "--labs", "ring-routing", "--out", str(out), "--include-untracked"])
    assert result.exit_code == 0, result.output
    assert "kvstore/client/ring.py: stubbed ConsistentHashRing.shard_for, RendezvousRing.shard_for" in result.output
    assert 'raise NotImplementedError(' in (out / "kvstore" / "client" / "ring.py").read_text()


def test_unknown_labs_are_usage_errors_with_exit_status_2(tmp_path: Path) -> None:
    """An unknown lab in release, grade or test exits 2 and names the known labs."""
    runner = CliRunner()
    for args in (
        ["release", "--labs", "nope", "--out", str(tmp_path / "k")],
        ["grade", "--submission", str(tmp_path), "--lab", "nope"],
        ["test", "nope"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "unknown lab 'nope'" in result.output and "ring-routing" in result.output
