"""The grader: full marks for the reference, isolation of one lab, per-test limits, partial credit, results.json."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from kvstore.course.catalog import Lab, load_catalog
from kvstore.course.grade import GradeResult, grade, install_submission, run_limited

CATALOG_FILE = Path(__file__).resolve().parents[2] / "kvstore" / "course" / "labs.toml"
RING = "kvstore/client/ring.py"
SHARD_FOR_TEST = "test_a_key_hashing_onto_the_last_point_or_past_it_wraps_correctly"  # one call, no fixtures
HASH_TEST = "test_hash64_matches_the_documented_known_answers"


@pytest.fixture(scope="module")
def ring_reference_grade(snapshot: tuple[Path, list[str]]) -> GradeResult:
    """The reference graded on ring-routing (the snapshot is both the reference and the submission)."""
    root, files = snapshot
    return grade(root, root, "ring-routing", files=files)


def with_shard_for(snapshot: tuple[Path, list[str]], dest: Path, body: str) -> Path:
    """A submission whose ConsistentHashRing.shard_for body is ``body`` (everything else the reference)."""
    root, _ = snapshot
    text = (root / RING).read_text()
    start = text.index("        # BEGIN SOLUTION ring-routing\n        index = bisect.bisect_left")
    end = text.index("        # END SOLUTION\n", start)
    patched = text[:start] + textwrap.indent(textwrap.dedent(body), " " * 8) + text[end:]
    (dest / RING).parent.mkdir(parents=True)
    (dest / RING).write_text(patched)
    return dest


def test_the_reference_scores_full_marks_on_ring_routing(ring_reference_grade: GradeResult) -> None:
    """Every public and hidden ring-routing item passes for the reference: 100 of 100."""
    result = ring_reference_grade
    assert result.failed_items() == [], result.summary()
    assert result.score == result.max_score == 100
    assert any(i.visibility == "after_published" for i in result.items)
    assert any(i.visibility == "visible" for i in result.items)


def test_the_reference_scores_full_marks_on_lin_checker(snapshot: tuple[Path, list[str]]) -> None:
    """Every public and hidden lin-checker item passes for the reference: 100 of 100."""
    root, files = snapshot
    result = grade(root, root, "lin-checker", files=files)
    assert result.failed_items() == [], result.summary()
    assert result.score == result.max_score == 100


@pytest.mark.soak
@pytest.mark.parametrize("lab_id", [lab.id for lab in load_catalog(CATALOG_FILE).labs])
def test_the_reference_scores_full_marks_on_every_lab(lab_id: str, snapshot: tuple[Path, list[str]]) -> None:
    """Graded as a submission, the reference earns every point of every lab, public and hidden tests alike."""
    root, files = snapshot
    result = grade(root, root, lab_id, files=files)
    assert result.items and any(i.visibility != "visible" for i in result.items), "hidden tests were graded"
    assert result.score == result.max_score == 100, result.summary()


def test_results_json_has_the_gradescope_shape(ring_reference_grade: GradeResult) -> None:
    """score, execution_time and tests[name, score, max_score, output, visibility]; the scores add up."""
    doc = json.loads(json.dumps(ring_reference_grade.to_gradescope()))
    assert set(doc) >= {"score", "execution_time", "output", "tests"}
    for test in doc["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
        assert test["visibility"] in ("visible", "after_published")
    assert abs(sum(t["score"] for t in doc["tests"]) - doc["score"]) < 0.01
    public = sum(t["max_score"] for t in doc["tests"] if t["visibility"] == "visible")
    assert abs(public - 40) < 0.01  # public_share 0.4 of 100 points
    assert "lab ring-routing: 100 / 100 points" in doc["output"]


def test_a_missing_student_file_is_graded_as_the_stub_not_the_reference(
    snapshot: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """An empty submission scores 0 on the items that need the lab's code, and the summary says why."""
    root, files = snapshot
    result = grade(root, tmp_path, "ring-routing", files=files, only=[SHARD_FOR_TEST])
    assert result.score == 0 and result.items
    assert any("missing from the submission" in n for n in result.notes)
    assert "NotImplementedError" in result.items[0].cases[0].output


def test_a_parametrized_item_scores_by_the_fraction_of_cases_passed(
    snapshot: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """A ring using bisect_right passes 2 of the 3 exact-hit cases: the item earns two thirds of its points."""
    root, files = snapshot
    submission = with_shard_for(
        snapshot,
        tmp_path,
        """\
        index = bisect.bisect_right(self._points, key_point(key))
        if index == len(self._points):
            index = 0
        return self._owners[index]
        """,
    )
    name = "test_a_key_exactly_on_a_virtual_node_belongs_to_that_node"
    result = grade(root, submission, "ring-routing", files=files, only=[name])
    (item,) = result.items
    assert [c.passed for c in item.cases].count(True) == 2 and len(item.cases) == 3
    assert abs(item.score - item.max_score * 2 / 3) < 1e-6 and not item.full_marks


def test_an_endless_loop_fails_with_a_time_limit_message(snapshot: tuple[Path, list[str]], tmp_path: Path) -> None:
    """A test that runs past its limit fails with "time limit exceeded"; the other tests still score."""
    root, files = snapshot
    submission = with_shard_for(snapshot, tmp_path, "while True:\n    key = key + b''\n")
    result = grade(root, submission, "ring-routing", files=files, only=[SHARD_FOR_TEST, HASH_TEST], time_limit_s=4)
    by_name = {i.name.rsplit("::", 1)[1]: i for i in result.items}
    assert by_name[HASH_TEST].full_marks
    (loop,) = by_name[SHARD_FOR_TEST].cases
    assert not loop.passed and loop.kind == "time" and "time limit exceeded" in loop.output, loop


def test_a_hang_the_alarm_cannot_break_is_killed_and_the_rest_run(
    snapshot: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """The code under test ignores the alarm: the watchdog kills the process, marks the test, reruns the rest."""
    root, files = snapshot
    body = "import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(600)\n"
    submission = with_shard_for(snapshot, tmp_path, body)
    result = grade(
        root,
        submission,
        "ring-routing",
        files=files,
        only=[SHARD_FOR_TEST, HASH_TEST, "test_bad_virtual_node_counts_are_refused"],
        time_limit_s=4.0,
        watchdog_grace_s=2.0,
    )
    by_name = {i.name.rsplit("::", 1)[1]: i for i in result.items}
    (hung,) = by_name[SHARD_FOR_TEST].cases
    assert hung.kind == "killed" and "killed after 6 s" in hung.output, hung
    assert by_name["test_bad_virtual_node_counts_are_refused"].full_marks and by_name[HASH_TEST].full_marks


def test_a_memory_hog_fails_with_a_memory_limit_message(snapshot: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Allocating far beyond the per-test memory limit fails that test with "memory limit exceeded"."""
    root, files = snapshot
    submission = with_shard_for(snapshot, tmp_path, "hog = bytearray(4 * 1024**3)\nreturn str(len(hog))\n")
    result = grade(root, submission, "ring-routing", files=files, only=[SHARD_FOR_TEST], memory_limit_mb=256)
    (hog,) = result.items[0].cases
    assert not hog.passed and hog.kind == "memory" and "memory limit exceeded" in hog.output, hog


def test_a_shared_file_gets_the_reference_code_of_the_other_labs(tmp_path: Path) -> None:
    """Grading lab a: the student's a-function and helpers stay, the b-function is the reference's."""
    workspace, submission = tmp_path / "ws", tmp_path / "sub"
    (workspace / "kvstore" / "course").mkdir(parents=True)
    (workspace / "kvstore" / "course" / "labs.toml").write_text('[[lab]]\nid = "a-lab"\n[[lab]]\nid = "b-lab"\n')
    reference = textwrap.dedent('''
        def fa():
            """A."""
            # BEGIN SOLUTION a-lab
            return "reference a"
            # END SOLUTION


        def fb():
            """B."""
            # BEGIN SOLUTION b-lab
            return "reference b"
            # END SOLUTION
    ''')
    (workspace / "m.py").write_text(reference)
    submission.mkdir()
    student = reference.replace('return "reference a"', "return helper()").replace(
        'return "reference b"', 'raise NotImplementedError("b-lab")'
    )
    (submission / "m.py").write_text(student + "\n\ndef helper():\n    return 'student a'\n")
    notes = install_submission(workspace, submission, Lab(id="a-lab", title="A", files=("m.py",)), {"a-lab", "b-lab"})
    namespace: dict[str, object] = {}
    exec((workspace / "m.py").read_text(), namespace)
    assert notes == []
    assert namespace["fa"]() == "student a"  # type: ignore[operator]
    assert namespace["fb"]() == "reference b"  # type: ignore[operator]


def test_a_run_stuck_after_its_tests_behind_a_thread_is_killed_and_keeps_its_results(tmp_path: Path) -> None:
    """run_limited: a test module leaves a non-daemon thread that never ends, so the process cannot exit; the
    watchdog kills it once nothing progresses, and the results of the tests that ran are kept."""
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pyproject.toml").write_text('[tool.setuptools]\npackages = ["pkg"]\n')
    (tree / "test_stuck.py").write_text(
        "import threading\n\n"
        "def test_passes():\n    assert True\n\n"
        "def test_fails_and_leaves_a_thread_behind():\n"
        "    threading.Thread(target=threading.Event().wait).start()\n"
        "    raise NotImplementedError('a stub')\n"
    )
    started = time.monotonic()
    cases = run_limited(tree, ["test_stuck.py"], time_limit_s=1.0, watchdog_grace_s=1.0, work_dir=tmp_path / "w")
    assert time.monotonic() - started < 60, "the run ended although the process could not exit by itself"
    by_name = {n.rsplit("::", 1)[1]: c for n, c in cases.items()}
    assert by_name["test_passes"].passed
    failed = by_name["test_fails_and_leaves_a_thread_behind"]
    assert failed.ran and not failed.passed and "NotImplementedError" in failed.output
    assert "[kv-course] killed: no test started or finished" in (tmp_path / "w" / "pytest.log").read_text()
