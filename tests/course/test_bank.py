"""The broken-solutions bank: every variant is well-formed, and the grader scores each below full marks.

The default run checks every variant against the graded tests it names (CAUGHT_BY), which is
enough to prove a score below full marks; the soak run grades every variant on its whole lab and
checks that each graded test catches at least one variant or is listed as a sanity test.
"""

from __future__ import annotations

import ast
import tempfile
from pathlib import Path

import pytest

from kvstore.course.bank import Variant, apply_variant, load_bank, write_submission
from kvstore.course.catalog import load_catalog
from kvstore.course.grade import grade

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


def test_the_bank_has_several_variants_for_each_lab_with_hidden_tests() -> None:
    """ring-routing and lin-checker each have at least four realistic broken solutions."""
    for lab_id in ("ring-routing", "lin-checker"):
        assert len([v for v in BANK if v.lab == lab_id]) >= 4, lab_id


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


def _check_caught(variant: Variant, snapshot: tuple[Path, list[str]]) -> None:
    root, files = snapshot
    with tempfile.TemporaryDirectory() as tmp:
        submission = write_submission(root, variant, Path(tmp))
        result = grade(root, submission, variant.lab, files=files, only=list(variant.caught_by))
    assert result.items, "the named tests were collected"
    assert result.score < result.max_score, result.summary()


# In the default run, one variant for each lab with hidden tests (grading costs two pytest
# processes); every variant of every lab in soak.
DEFAULT_VARIANTS = [
    min((v for v in BANK if v.lab == lab), key=lambda v: v.name)
    for lab in LABS_WITH_BANK
    if CATALOG.lab(lab).hidden_tests
]


@pytest.mark.parametrize("variant", DEFAULT_VARIANTS, ids=lambda v: f"{v.lab}/{v.name}")
def test_a_variant_of_each_lab_fails_the_graded_tests_it_names(
    variant: Variant, snapshot: tuple[Path, list[str]]
) -> None:
    """Graded on the tests in CAUGHT_BY, the variant scores below full marks (so it does on the whole lab)."""
    _check_caught(variant, snapshot)


@pytest.mark.soak
@pytest.mark.parametrize("variant", BANK, ids=lambda v: f"{v.lab}/{v.name}")
def test_every_variant_fails_the_graded_tests_it_names(variant: Variant, snapshot: tuple[Path, list[str]]) -> None:
    """Every variant of the bank, graded on the tests in CAUGHT_BY, scores below full marks."""
    _check_caught(variant, snapshot)


@pytest.mark.soak
@pytest.mark.parametrize("lab_id", ["ring-routing", "lin-checker"])
def test_every_graded_test_catches_a_variant_or_is_a_sanity_test(lab_id: str, snapshot: tuple[Path, list[str]]) -> None:
    """Full grading of every variant: each scores below 100, and each graded item fails for at least one variant
    unless the catalog lists it as a sanity test."""
    root, files = snapshot
    lab = CATALOG.lab(lab_id)
    caught: set[str] = set()
    graded: set[str] = set()  # the items the grader ran (soak-marked tests are not graded)
    for variant in [v for v in BANK if v.lab == lab_id]:
        with tempfile.TemporaryDirectory() as tmp:
            result = grade(root, write_submission(root, variant, Path(tmp)), lab_id, files=files)
        print(f"{variant.name}: {result.score:g} / {result.max_score:g}")
        assert result.score < result.max_score, variant.name
        caught |= {i.name.rsplit("::", 1)[1] for i in result.failed_items()}
        graded |= {i.name.rsplit("::", 1)[1] for i in result.items}
    assert graded
    uncaught = graded - caught - set(lab.sanity_tests)
    assert not uncaught, f"graded tests that catch no broken solution; add a variant or list as sanity: {uncaught}"


@pytest.mark.parametrize("lab_id", LABS_WITH_BANK)
def test_every_sanity_test_in_the_catalog_is_a_graded_test_of_its_lab(lab_id: str) -> None:
    """A sanity_tests entry that names no graded test (a typo, a renamed test) would hide an uncaught test."""
    assert set(CATALOG.lab(lab_id).sanity_tests) <= graded_test_functions(lab_id)
