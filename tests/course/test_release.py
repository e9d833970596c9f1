"""Parity of the student release with the reference: contents, stubs, imports, signatures, restore, test failures."""

from __future__ import annotations

import ast
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from kvstore.course.catalog import load_catalog
from kvstore.course.grade import run_limited
from kvstore.course.isolate import isolated_env, link_siblings, package_map, python, write_bootstrap
from kvstore.course.markers import check_source, known_labs
from kvstore.course.parity import api_of, module_name
from kvstore.course.release import CATALOG_PATH, ReleaseReport, make_release, marked_regions, restore_release
from kvstore.errors import InvalidArgument

GENERATED = {"README.md", "conftest.py", CATALOG_PATH}  # files the release writes rather than copies


def test_the_release_leaves_out_hidden_tests_the_bank_and_the_grader(release_all: ReleaseReport) -> None:
    """No hidden test, broken solution or instructor module is in the kit; the markers checker and catalog are."""
    kit = release_all.out
    assert release_all.dropped, "the reference has instructor-only files to drop"
    for rel in release_all.dropped:
        assert not (kit / rel).exists(), rel
    assert not (kit / "tests" / "hidden").exists() and not (kit / "course" / "broken").exists()
    assert not (kit / "kvstore" / "course" / "grade.py").exists()
    assert (kit / "kvstore" / "course" / "markers.py").is_file() and (kit / CATALOG_PATH).is_file()


def test_the_readme_and_the_catalog_say_this_is_a_starter_kit(release_all: ReleaseReport) -> None:
    """README opens with the starter-kit notice naming the labs; the catalog flags them and lists no hidden tests."""
    readme = (release_all.out / "README.md").read_text()
    assert readme.startswith("# kvstore — student starter kit")
    assert all(f"`{lab}`" in readme for lab in release_all.labs)
    assert "make test" in readme and "## Two commands" in readme
    catalog = load_catalog(release_all.out / CATALOG_PATH)
    assert {lab.id for lab in catalog.labs if lab.stubbed} == set(release_all.labs)
    assert all(not lab.hidden_tests for lab in catalog.labs)


def test_every_marked_region_of_a_released_lab_is_a_single_raise_naming_its_lab(release_all: ReleaseReport) -> None:
    """Inside each region of a chosen lab there is exactly `raise NotImplementedError("<lab>: ...")`."""
    kit = release_all.out
    seen = 0
    for rel in release_all.stubbed:
        text = (kit / rel).read_text()
        regions, problems = check_source(Path(rel), text, known_labs(kit / CATALOG_PATH))
        assert not problems, problems
        lines = text.splitlines()
        for region in regions:
            if region.lab not in release_all.labs:
                continue
            body = "\n".join(lines[region.begin_line : region.end_line - 1]).strip()
            node = ast.parse(body).body
            assert len(node) == 1 and isinstance(node[0], ast.Raise), (rel, region.function)
            call = node[0].exc
            assert isinstance(call, ast.Call) and ast.unparse(call.func) == "NotImplementedError"
            message = ast.literal_eval(call.args[0])
            assert message.startswith(f"{region.lab}: ") and len(message) > len(region.lab) + 5
            seen += 1
    assert seen == release_all.region_count() > 0


def test_the_release_imports_from_itself_with_every_public_signature_unchanged(
    release_all: ReleaseReport, snapshot: tuple[Path, list[str]]
) -> None:
    """Each module holding marked code imports in the kit, from the kit, with the reference's public API."""
    reference_root = snapshot[0]
    packages = package_map(reference_root)
    modules = sorted({module_name(rel, packages) for rel in release_all.stubbed})
    modules += ["kvstore", "kvstore_cli", "jepsen_lite", "kvstore.course.cli"]
    kit = api_of(release_all.out, modules)
    reference = api_of(reference_root, modules)
    for name in modules:
        assert Path(str(kit[name]["file"])).resolve().is_relative_to(release_all.out.resolve()), name
        assert Path(str(reference[name]["file"])).resolve().is_relative_to(reference_root.resolve()), name
        assert kit[name]["api"] == reference[name]["api"], name
    assert any(len(kit[m]["api"]) > 3 for m in modules)  # type: ignore[arg-type]


def test_restoring_the_reference_bodies_gives_back_the_reference_and_its_tests_pass(
    release_all: ReleaseReport, snapshot: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """After `restore`, every copied .py file equals the reference byte for byte, and the ring tests pass in it."""
    reference_root, files = snapshot
    restored = tmp_path / "restored"
    shutil.copytree(release_all.out, restored)
    done = restore_release(restored, reference_root)
    assert set(done) == set(release_all.stubbed)
    for rel in files:
        if rel.endswith(".py") and rel not in GENERATED and (restored / rel).exists():
            assert (restored / rel).read_bytes() == (reference_root / rel).read_bytes(), rel
    result = _pytest_in(restored, ["tests/client/test_ring.py", "tests/jepsen/test_checker.py"], tmp_path)
    assert result.failures == [] and result.passed > 20, result.output[-3000:]


def test_public_tests_of_released_labs_fail_only_with_not_implemented_error(
    release_all: ReleaseReport, tmp_path: Path
) -> None:
    """In the kit, the ring and checker labs' public tests fail, every failure is NotImplementedError, and the
    banner says so."""
    paths = ["tests/client/test_ring.py", "tests/jepsen/test_checker.py"]
    result = _pytest_in(release_all.out, paths, tmp_path)
    assert len(result.failures) > 10, result.output[-3000:]
    others = [(name, text[:300]) for name, text in result.failures if "NotImplementedError" not in text]
    assert not others, others
    assert "kvstore starter kit: labs left for you" in result.output
    assert "failures are NotImplementedError from labs not written yet (expected)" in result.output


@pytest.mark.soak
def test_every_released_labs_public_tests_fail_only_with_not_implemented_error(
    release_all: ReleaseReport, snapshot: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """The same check as above over the public tests of every lab in the kit (LSM, Raft, KV too), each test
    under the grader's per-test time limit: a test that hangs on a stub fails here by name instead of
    holding the run."""
    catalog = load_catalog(release_all.out / CATALOG_PATH)
    link_siblings(snapshot[0], release_all.out, catalog.sibling_dirs)  # tests/jepsen reads ../shared/fixtures
    stubbed = [lab for lab in catalog.labs if lab.stubbed]
    paths = sorted({p for lab in stubbed for p in lab.public_tests})
    limit_s = max(lab.time_limit_s for lab in stubbed)
    cases = run_limited(release_all.out, paths, time_limit_s=limit_s, work_dir=tmp_path / "run")
    failed = {n: c for n, c in cases.items() if not c.passed and not c.output.startswith("skipped")}
    assert len(failed) > 100, f"{len(failed)} of {len(cases)} failed"
    others = [(n, c.kind, c.output[-300:]) for n, c in failed.items() if "NotImplementedError" not in c.output]
    assert not others, others


def test_the_kit_has_the_student_commands_only(release_all: ReleaseReport, tmp_path: Path) -> None:
    """`kv-course labs` works in the kit and shows the labs left to write; the grader commands are absent."""
    code = "import sys; from kvstore.course.cli import main; sys.argv = ['kv-course', *sys.argv[1:]]; main()"
    env = isolated_env(release_all.out, write_bootstrap(release_all.out, tmp_path / "boot"))
    labs = subprocess.run([python(), "-c", code, "labs"], cwd=release_all.out, env=env, capture_output=True, text=True)
    assert labs.returncode == 0, labs.stderr
    assert "ring-routing: KV 2" in labs.stdout and "[left for you]" in labs.stdout
    helped = subprocess.run(
        [python(), "-c", code, "--help"], cwd=release_all.out, env=env, capture_output=True, text=True
    )
    commands = {line.split()[0] for line in helped.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert commands == {"labs", "test"}, helped.stdout


def test_the_kit_builds_a_wheel_with_its_packages_and_without_instructor_code(
    release_all: ReleaseReport, tmp_path: Path
) -> None:
    """`pip install` of the kit works offline as far as packaging goes: the wheel builds and holds the right files."""
    kit = tmp_path / "kit"
    shutil.copytree(release_all.out, kit)  # the build writes build/ and *.egg-info into the source folder
    proc = subprocess.run(
        [python(), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=kit,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("kvstore-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"kvstore/course/markers.py", "kvstore/course/labs.toml", "jepsen_lite/checker.py"} <= names
    assert "kvstore_cli/__init__.py" in names
    assert not {n for n in names if n.endswith(("course/grade.py", "course/release.py", "course/bank.py"))}


def test_a_release_refuses_a_non_empty_folder_and_an_unknown_lab(tmp_path: Path) -> None:
    """The release never writes over existing files and names the unknown lab."""
    reference_root = Path(__file__).resolve().parents[2]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(InvalidArgument, match="not empty"):
        make_release(reference_root, tmp_path / "busy", ["ring-routing"])
    with pytest.raises(InvalidArgument, match="no-such-lab"):
        make_release(reference_root, tmp_path / "new", ["no-such-lab"])


def test_marked_regions_refuses_a_tree_with_a_broken_marker(tmp_path: Path) -> None:
    """A release from a tree with an unclosed marker would not be valid Python, so it is refused."""
    (tmp_path / "kvstore" / "course").mkdir(parents=True)
    (tmp_path / CATALOG_PATH).write_text('[[lab]]\nid = "ring-routing"\n')
    (tmp_path / "m.py").write_text("def f():\n    # BEGIN SOLUTION ring-routing\n    return 1\n")
    with pytest.raises(InvalidArgument, match="never closed"):
        marked_regions(tmp_path, ["m.py"])


class _Run:
    def __init__(self, output: str, failures: list[tuple[str, str]], passed: int) -> None:
        self.output, self.failures, self.passed = output, failures, passed


def _pytest_in(tree: Path, paths: list[str], tmp: Path, *, timeout_s: float = 600) -> _Run:
    """Run pytest on ``paths`` inside ``tree`` (importing only from it); collect failures from JUnit XML."""
    junit = tmp / f"junit-{tree.name}.xml"
    env = isolated_env(tree, write_bootstrap(tree, tmp / f"boot-{tree.name}"))
    proc = subprocess.run(
        [python(), "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={junit}", *paths],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    failures: list[tuple[str, str]] = []
    passed = 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        problems = [c for c in case if c.tag in ("failure", "error")]
        if problems:
            text = " ".join((p.get("message") or "") + (p.text or "") for p in problems)
            failures.append((case.get("name", ""), text))
        elif not any(c.tag == "skipped" for c in case):
            passed += 1
    return _Run(proc.stdout + proc.stderr, failures, passed)
