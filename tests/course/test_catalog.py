"""The lab catalog: it loads, it agrees with the marked code and the test tree, and bad input is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvstore.course.catalog import dump_student_catalog, load_catalog
from kvstore.course.markers import scan_tree
from kvstore.errors import InvalidArgument

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(ROOT / "kvstore" / "course" / "labs.toml")


def test_every_file_holding_a_labs_region_is_in_that_labs_whitelist() -> None:
    """The grader copies only whitelisted files, so a region outside the whitelist could never be graded."""
    regions, problems = scan_tree(ROOT)
    assert not problems
    for region in regions:
        rel = region.path.relative_to(ROOT).as_posix()
        assert rel in CATALOG.lab(region.lab).files, f"{rel} holds {region.lab} code but is not in its files"


def test_labs_with_code_name_test_paths_that_exist() -> None:
    """Every public and hidden test path of a lab with marked code exists, and ring/lin labs have hidden tests."""
    regions, _ = scan_tree(ROOT)
    with_code = {r.lab for r in regions}
    for lab in CATALOG.labs:
        if lab.id not in with_code:
            continue
        for path in (*lab.public_tests, *lab.hidden_tests):
            assert (ROOT / path).exists(), f"{lab.id}: {path} does not exist"
        assert all(p.startswith("tests/hidden/") for p in lab.hidden_tests)
        assert not any(p.startswith("tests/hidden/") for p in lab.public_tests)
    assert CATALOG.lab("ring-routing").hidden_tests and CATALOG.lab("lin-checker").hidden_tests


def test_labs_with_code_have_a_handout_that_names_every_function_to_write() -> None:
    """Each lab with marked code has docs/labs/<id>.md, and the handout names each function the student writes."""
    regions, _ = scan_tree(ROOT)
    for lab_id in sorted({r.lab for r in regions}):
        handout = CATALOG.lab(lab_id).handout
        assert handout == f"docs/labs/{lab_id}.md" and (ROOT / handout).is_file(), lab_id
        text = (ROOT / handout).read_text()
        for region in (r for r in regions if r.lab == lab_id):
            assert region.function.rsplit(".", 1)[-1] in text, (lab_id, region.function)


def test_instructor_only_paths_cover_hidden_tests_bank_and_grader() -> None:
    """The release drops hidden tests, the bank and the grading tooling, and keeps the markers checker."""
    for path in ("tests/hidden/ring_routing/x.py", "course/broken/ring-routing/a.py", "kvstore/course/grade.py"):
        assert CATALOG.is_instructor_only(path), path
    for path in ("kvstore/course/markers.py", "kvstore/course/catalog.py", "tests/client/test_ring.py"):
        assert not CATALOG.is_instructor_only(path), path


def test_the_student_catalog_keeps_public_facts_and_drops_hidden_ones(tmp_path: Path) -> None:
    """A dumped student catalog reloads with the same ids, files and public tests, no hidden tests, stub flags set."""
    path = tmp_path / "labs.toml"
    path.write_text(dump_student_catalog(CATALOG, stubbed={"ring-routing"}))
    student = load_catalog(path)
    assert student.ids() == CATALOG.ids()
    for mine, theirs in zip(student.labs, CATALOG.labs, strict=True):
        assert (mine.files, mine.public_tests, mine.points) == (theirs.files, theirs.public_tests, theirs.points)
        assert mine.hidden_tests == () and mine.weights == {} and mine.stubbed == (mine.id == "ring-routing")
    assert "tests/hidden" not in path.read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[lab]]\ntitle = "x"\n', "string id"),
        ('[[lab]]\nid = "a"\n[[lab]]\nid = "a"\n', "duplicate"),
        ('[[lab]]\nid = "a"\nfiles = "x.py"\n', "list of strings"),
        ('[[lab]]\nid = "a"\npublic_share = 1.5\n', "public_share"),
        ('[[lab]]\nid = "a"\npoints = -1\n', "positive"),
        ("[[lab]\n", "cannot read"),
    ],
)
def test_a_malformed_catalog_is_refused_with_a_clear_message(tmp_path: Path, text: str, message: str) -> None:
    """Missing id, duplicate id, wrong types, out-of-range share, bad TOML: InvalidArgument naming the problem."""
    path = tmp_path / "labs.toml"
    path.write_text(text)
    with pytest.raises(InvalidArgument, match=message):
        load_catalog(path)


def test_an_unknown_lab_id_lists_the_known_ones() -> None:
    """Asking for a lab that does not exist says which ones do."""
    with pytest.raises(InvalidArgument, match="ring-routing"):
        CATALOG.lab("no-such-lab")
