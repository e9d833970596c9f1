"""``kv-course``: the course kit's command line.

Student commands (present in the reference and in every starter kit):

* ``kv-course labs`` — the labs, their files and public tests, which are left to write;
* ``kv-course test LAB`` — run one lab's public tests.

Instructor commands (registered only where the instructor modules exist, so a
starter kit, which drops them, has just the student commands):

* ``kv-course release --labs L1,L2|all --out DIR`` — write a starter kit;
* ``kv-course restore --release DIR`` — put the reference bodies back into a kit;
* ``kv-course grade --submission DIR --lab L [--out results.json]`` — grade one lab;
* ``kv-course bank [--lab L]`` — list the broken solutions.

Exit status: 0 on success (a grade is a success whatever the score), 1 when
``kv-course test`` has failing tests, 2 on a usage or input error.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import click

from kvstore.course.catalog import load_catalog
from kvstore.course.markers import CATALOG, scan_tree
from kvstore.errors import KVError

REPO_ROOT = CATALOG.parents[2]


def _fail(exc: KVError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


@click.group(help="kvstore's course kit: labs, the student release, and the grader.")
def main() -> None:
    """The ``kv-course`` command group."""


@main.command(help="List the labs: files to edit, public tests, and whether the lab is left for you.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=REPO_ROOT, show_default=True)
def labs(root: Path) -> None:
    """Print one block per lab."""
    try:
        catalog = load_catalog(root / "kvstore" / "course" / "labs.toml")
    except KVError as exc:
        _fail(exc)
        return
    regions, _ = scan_tree(root)
    for lab in catalog.labs:
        count = sum(1 for r in regions if r.lab == lab.id)
        state = "left for you" if lab.stubbed else (f"{count} marked region(s)" if count else "no code yet")
        click.echo(f"{lab.id}: {lab.title} [{state}]")
        click.echo(f"  files:        {', '.join(lab.files)}")
        click.echo(f"  public tests: {', '.join(lab.public_tests) or '-'}")
        if lab.handout:
            click.echo(f"  handout:      {lab.handout}")


@main.command(
    context_settings={"ignore_unknown_options": True},
    help="Run one lab's public tests (extra arguments go to pytest).",
)
@click.argument("lab_id")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=REPO_ROOT, show_default=True)
def test(lab_id: str, pytest_args: tuple[str, ...], root: Path) -> None:
    """Run ``python -m pytest <the lab's public tests>`` in the repository."""
    try:
        lab = load_catalog(root / "kvstore" / "course" / "labs.toml").lab(lab_id)
    except KVError as exc:
        _fail(exc)
        return
    if not lab.public_tests:
        click.echo(f"lab {lab_id} has no public tests yet", err=True)
        sys.exit(2)
    code = subprocess.call([sys.executable, "-m", "pytest", *lab.public_tests, *pytest_args], cwd=root)
    sys.exit(1 if code else 0)


def _register_instructor_commands() -> None:
    if importlib.util.find_spec("kvstore.course.grade") is None:
        return  # a starter kit: the instructor tooling was removed

    @main.command(help="Write a student starter kit with the chosen labs stubbed out.")
    @click.option("--labs", "labs_spec", required=True, help="comma-separated lab ids, or 'all' (every lab with code)")
    @click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
    @click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=REPO_ROOT, show_default=True)
    @click.option("--include-untracked", is_flag=True, help="also copy untracked, non-ignored files (work in progress)")
    def release(labs_spec: str, out: Path, root: Path, include_untracked: bool) -> None:
        from kvstore.course.release import make_release, resolve_labs

        try:
            chosen = resolve_labs(root, labs_spec, include_untracked=include_untracked)
            report = make_release(root, out, chosen, include_untracked=include_untracked)
        except KVError as exc:
            _fail(exc)
            return
        click.echo(f"starter kit written to {out}: labs {', '.join(report.labs)}")
        for rel, names in sorted(report.stubbed.items()):
            click.echo(f"  {rel}: stubbed {', '.join(names)}")
        click.echo(f"  left out (instructor-only): {len(report.dropped)} file(s)")

    @main.command(help="Put the reference bodies back into a starter kit (parity check).")
    @click.option("--release", "release_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
    @click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=REPO_ROOT, show_default=True)
    def restore(release_dir: Path, root: Path) -> None:
        from kvstore.course.release import restore_release

        try:
            restored = restore_release(release_dir, root)
        except KVError as exc:
            _fail(exc)
            return
        for rel, names in sorted(restored.items()):
            click.echo(f"{rel}: restored {', '.join(names)}")

    @main.command(help="Grade one lab of a submission; write Gradescope results.json.")
    @click.option("--submission", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
    @click.option("--lab", "lab_id", required=True)
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="results.json path")
    @click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=REPO_ROOT, show_default=True)
    @click.option("--include-untracked", is_flag=True, help="also copy untracked reference files (work in progress)")
    def grade(submission: Path, lab_id: str, out: Path | None, root: Path, include_untracked: bool) -> None:
        from kvstore.course.grade import grade as run_grade

        try:
            result = run_grade(root, submission, lab_id, include_untracked=include_untracked)
        except KVError as exc:
            _fail(exc)
            return
        if out is not None:
            out.write_text(json.dumps(result.to_gradescope(), indent=2) + "\n", encoding="utf-8")
        click.echo(result.summary())

    @main.command(help="List the broken solutions of the bank (course/broken/).")
    @click.option("--lab", "lab_id", default=None)
    @click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=REPO_ROOT, show_default=True)
    def bank(lab_id: str | None, root: Path) -> None:
        from kvstore.course.bank import load_bank

        try:
            variants = load_bank(root, lab_id)
        except KVError as exc:
            _fail(exc)
            return
        for v in variants:
            click.echo(f"{v.lab}/{v.name}: {v.summary}")
            click.echo(f"  patches {v.file}: {', '.join(v.functions)}; caught by {', '.join(v.caught_by)}")


_register_instructor_commands()
