"""The broken-solutions bank: every variant is well-formed, and the grader scores each below full marks.

The default run grades every variant on the first test its CAUGHT_BY names, stopping at the first
failing case: enough to prove `kv-course grade` scores it below full marks, at a bounded cost. The
soak run checks that every test in CAUGHT_BY fails, grades every variant on its whole lab, and checks
that each graded test catches at least one variant or is listed as a sanity test (and that no sanity
test does catch one).
"""

from __future__ import annotations

import ast
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kvstore.course.bank import Variant, apply_variant, load_bank, write_submission
from kvstore.course.catalog import load_catalog
from kvstore.course.grade import GradeResult, grade

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(ROOT / "kvstore" / "course" / "labs.toml")
BANK = load_bank(ROOT)
LABS_WITH_BANK = sorted({v.lab for v in BANK})


def graded_test_functions(lab_id: str, root: Path = ROOT) -> set[str]:
    """The names of the test functions in a lab's public and hidden test paths (read from the source)."""
    lab = CATALOG.lab(lab_id)
    names: set[str] = set()
    for rel in (*lab.public_tests, *lab.hidden_tests):
        path = root / rel
        for file in [path] if path.is_file() else sorted(path.rglob("test_*.py")):
            tree = ast.parse(file.read_text())
            names |= {
                n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
            }
    return names


def test_every_lab_has_hidden_tests_and_several_broken_solutions() -> None:
    """Each lab with marked code has hidden tests and at least three realistic broken solutions in the bank."""
    for lab in CATALOG.labs:
        assert lab.hidden_tests, lab.id
        assert len([v for v in BANK if v.lab == lab.id]) >= 3, lab.id


@pytest.mark.parametrize("variant", BANK, ids=lambda v: f"{v.lab}/{v.name}")
def test_each_variant_patches_a_student_file_of_its_lab_and_names_real_tests(variant: Variant) -> None:
    """A variant targets a whitelisted file, applies cleanly to it, changes it, and names existing graded tests."""
    lab = CATALOG.lab(variant.lab)
    assert variant.file in lab.files
    reference = (ROOT / variant.file).read_text()
    patched = apply_variant(reference, variant)
    assert patched != reference
    compile(patched, variant.file, "exec")
    assert variant.caught_by and set(variant.caught_by) <= graded_test_functions(variant.lab), variant.caught_by


def _grade_variant(variant: Variant, snapshot: tuple[Path, list[str]], *, only: list[str] | None,
                   fail_fast: bool) -> GradeResult:
    root, files = snapshot
    with tempfile.TemporaryDirectory() as tmp:
        submission = write_submission(root, variant, Path(tmp) / "submission")
        return grade(root, submission, variant.lab, files=files, only=only, fail_fast=fail_fast)


# Grading runs one pytest process per variant; two at a time keep a 2-core machine busy without
# oversubscribing it (the processes mostly wait on their own start-up and on small tests).
PARALLEL_GRADES = 2


@pytest.mark.parametrize("lab_id", LABS_WITH_BANK)
def test_each_variant_scores_below_full_marks_on_the_first_test_it_names(
    lab_id: str, snapshot: tuple[Path, list[str]]
) -> None:
    """`kv-course grade` gives every variant of the lab less than full marks: graded on the first test of its
    CAUGHT_BY, stopping at the first failing case (a bounded cost that still proves the point)."""
    variants = [v for v in BANK if v.lab == lab_id]
    with ThreadPoolExecutor(max_workers=PARALLEL_GRADES) as pool:
        results = list(pool.map(lambda v: _grade_variant(v, snapshot, only=[v.caught_by[0]], fail_fast=True),
                                 variants))
    for variant, result in zip(variants, results, strict=True):
        assert result.items, f"{variant.name}: the named test was collected"
        assert result.score < result.max_score, f"{variant.name} not caught:\n{result.summary()}"
        failed = [c for i in result.items for c in i.cases if c.ran and not c.passed]
        assert failed and all(c.kind not in ("time", "killed") for c in failed), f"{variant.name}: {result.summary()}"


@pytest.mark.soak
@pytest.mark.parametrize("variant", BANK, ids=lambda v: f"{v.lab}/{v.name}")
def test_every_variant_fails_every_graded_test_it_names(variant: Variant, snapshot: tuple[Path, list[str]]) -> None:
    """Every variant of the bank, graded on all the tests in CAUGHT_BY, fails each of them."""
    result = _grade_variant(variant, snapshot, only=list(variant.caught_by), fail_fast=False)
    failed = {i.name.rsplit("::", 1)[1] for i in result.failed_items()}
    assert set(variant.caught_by) <= failed, result.summary()


@pytest.mark.soak
@pytest.mark.parametrize("lab_id", LABS_WITH_BANK)
def test_every_graded_test_catches_a_variant_or_is_a_sanity_test(lab_id: str, snapshot: tuple[Path, list[str]]) -> None:
    """Full grading of every variant: each scores below 100, and each graded item fails for at least one variant
    unless the catalog lists it as a sanity test."""
    lab = CATALOG.lab(lab_id)
    caught: set[str] = set()
    graded: set[str] = set()  # the items the grader ran (soak-marked tests are not graded)
    for variant in [v for v in BANK if v.lab == lab_id]:
        result = _grade_variant(variant, snapshot, only=None, fail_fast=False)
        print(f"{variant.name}: {result.score:g} / {result.max_score:g}")
        assert result.score < result.max_score, variant.name
        caught |= {i.name.rsplit("::", 1)[1] for i in result.failed_items()}
        graded |= {i.name.rsplit("::", 1)[1] for i in result.items}
    assert graded
    uncaught = graded - caught - set(lab.sanity_tests)
    assert not uncaught, f"graded tests that catch no broken solution; add a variant or list as sanity: {uncaught}"
    assert not set(lab.sanity_tests) & caught, f"sanity tests that do catch a variant: {set(lab.sanity_tests) & caught}"


@pytest.mark.parametrize("lab_id", LABS_WITH_BANK)
def test_every_sanity_test_in_the_catalog_is_a_graded_test_of_its_lab(lab_id: str) -> None:
    """A sanity_tests entry that names no graded test (a typo, a renamed test) would hide an uncaught test."""
    assert set(CATALOG.lab(lab_id).sanity_tests) <= graded_test_functions(lab_id)
