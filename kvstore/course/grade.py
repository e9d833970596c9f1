"""The grader: one lab of one submission, scored by public and hidden tests in isolation.

Theory of operation.

1. **Workspace.** Copy the reference repository (tests, hidden tests and
   harness included) into a fresh folder, so nothing but the student's lab files
   can differ from the reference.
2. **Test list from the reference.** Collect the lab's public and hidden tests
   in the workspace *before* the student's files go in: the set of graded items,
   and their points, never depend on what the submission does (a submission
   that breaks imports scores 0 on those items instead of making them vanish).
3. **Isolation.** Copy in only the lab's whitelisted files (catalog ``files``).
   A file shared with other labs (``kvstore/raft/core.py`` holds three) gets the
   reference definitions of the functions that belong to *other* labs spliced in
   by name (:func:`kvstore.course.splice.replace_functions`): a broken earlier
   lab cannot sink a later grade. A whitelisted file missing from the
   submission is the release's stub, never the reference.
4. **Run.** One pytest process (:mod:`kvstore.course._grade_plugin`) that imports
   the workspace only (:mod:`kvstore.course.isolate`), with fixed seeds
   (``PYTHONHASHSEED=0``, ``--hypothesis-seed=0``) and per-test time and memory
   limits. A test that hangs beyond the alarm's reach gets the process killed
   by the watchdog here; the remaining tests run in a new process.
5. **Score.** Items are test *functions*: the parametrized cases of one function
   (seeds, fixture files...) form one item scored by the fraction that pass.
   Public items share ``points * public_share``, hidden items the rest, each in
   proportion to its catalog weight (default 1).
6. **Report.** A Gradescope ``results.json`` (hidden items are
   ``after_published`` and show only the failure's last line) and a summary.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kvstore.course.catalog import Catalog, Lab, load_catalog
from kvstore.course.isolate import copy_files, isolated_env, link_siblings, python, repo_files, write_bootstrap
from kvstore.course.release import CATALOG_PATH, marked_regions
from kvstore.course.splice import SpliceError, replace_functions, stub_regions
from kvstore.errors import InvalidArgument

PLUGIN_SOURCE = Path(__file__).with_name("_grade_plugin.py")
PLUGIN_NAME = "_kvcourse_plugin"
WATCHDOG_GRACE_S = 15.0  # beyond the alarm: time for pytest's own reporting, and for a loaded machine
WATCHDOG_POLL_S = 0.1  # how often the watchdog reads the results file
MAX_RERUNS = 20  # a submission that hangs in C code in every test cannot hold the grader forever
# The test ids of a lab, per (reference, lab, file list), collected once per process: grading many
# submissions against one reference (the bank checks) need not collect the same tests again.
_COLLECTED: dict[tuple[str, str, tuple[str, ...] | None], tuple[list[str], list[str]]] = {}
HIDDEN_OUTPUT_CHARS = 300  # hidden tests show the failure's last line, never their code
PUBLIC_OUTPUT_CHARS = 4000


@dataclass(slots=True)
class CaseResult:
    """One collected test case (a node id) after the run."""

    nodeid: str
    passed: bool = False
    ran: bool = False
    kind: str = ""  # "", "time", "memory", "killed", "missing"
    output: str = ""


@dataclass(slots=True)
class Item:
    """One graded item: a test function and its parametrized cases."""

    name: str  # node id without the parameters
    visibility: str  # "visible" (public) or "after_published" (hidden)
    max_score: float
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed_fraction(self) -> float:
        """The fraction of cases that passed (0 for an item with no cases)."""
        return sum(c.passed for c in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def score(self) -> float:
        """max_score times the fraction of cases passed."""
        return self.max_score * self.passed_fraction

    @property
    def full_marks(self) -> bool:
        """Whether every case passed."""
        return bool(self.cases) and all(c.passed for c in self.cases)


@dataclass(slots=True)
class GradeResult:
    """The outcome of grading one lab."""

    lab: str
    items: list[Item]
    notes: list[str]
    execution_time_s: float

    @property
    def score(self) -> float:
        """The total score."""
        return round(sum(i.score for i in self.items), 4)

    @property
    def max_score(self) -> float:
        """The total available."""
        return round(sum(i.max_score for i in self.items), 4)

    def failed_items(self) -> list[Item]:
        """Items below their max score."""
        return [i for i in self.items if not i.full_marks]

    def to_gradescope(self) -> dict[str, Any]:
        """The Gradescope ``results.json`` document."""
        tests = []
        for item in self.items:
            limit = HIDDEN_OUTPUT_CHARS if item.visibility != "visible" else PUBLIC_OUTPUT_CHARS
            failed = [c for c in item.cases if not c.passed]
            lines = [f"{len(item.cases) - len(failed)}/{len(item.cases)} cases passed"]
            for case in failed[:5]:
                text = case.output if item.visibility == "visible" else case.output.strip().splitlines()[-1:]
                shown = text if isinstance(text, str) else "".join(text)
                lines.append(f"- {case.nodeid}: {shown[:limit]}")
            tests.append(
                {
                    "name": item.name,
                    "score": round(item.score, 4),
                    "max_score": round(item.max_score, 4),
                    "status": "passed" if item.full_marks else "failed",
                    "output": "\n".join(lines),
                    "visibility": item.visibility,
                }
            )
        return {
            "score": self.score,
            "execution_time": round(self.execution_time_s, 2),
            "output": self.summary(),
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": tests,
        }

    def summary(self) -> str:
        """A readable summary: the total, then one line per item."""
        lines = [f"lab {self.lab}: {self.score:g} / {self.max_score:g} points ({self.execution_time_s:.1f} s)"]
        lines += [f"note: {n}" for n in self.notes]
        for item in self.items:
            mark = "ok  " if item.full_marks else "FAIL"
            tag = "public" if item.visibility == "visible" else "hidden"
            frac = f"{sum(c.passed for c in item.cases)}/{len(item.cases)}"
            lines.append(f"{mark} {item.score:7.2f}/{item.max_score:6.2f}  {tag}  {frac:>7}  {item.name}")
            for case in [c for c in item.cases if not c.passed][:2]:
                last = (case.output.strip().splitlines() or ["(no output)"])[-1]
                lines.append(f"       {last[:160]}")
        return "\n".join(lines)


def _item_name(nodeid: str) -> str:
    return re.sub(r"\[.*\]$", "", nodeid)


def _function_name(item_name: str) -> str:
    return item_name.rsplit("::", 1)[-1]


def build_workspace(
    reference: Path, dest: Path, catalog: Catalog, *, include_untracked: bool = False, files: list[str] | None = None
) -> Path:
    """Copy the reference into ``dest/repo`` (with the folders beside it that tests read); return it.

    ``files`` (relative paths) replaces the ``git ls-files`` listing when given.
    """
    repo = dest / "repo"
    listed = files if files is not None else repo_files(reference, include_untracked=include_untracked)
    copy_files(reference, repo, listed)
    link_siblings(reference, repo, catalog.sibling_dirs)
    return repo


def install_submission(workspace: Path, submission: Path, lab: Lab, labs: set[str]) -> list[str]:
    """Copy the lab's whitelisted files from ``submission`` into ``workspace``; return notes.

    See the module docstring, step 3. ``labs`` is the set of known lab ids.
    """
    notes: list[str] = []
    regions = marked_regions(workspace, list(lab.files))
    for rel in lab.files:
        reference_text = (workspace / rel).read_text(encoding="utf-8")
        file_regions = regions.get(rel, [])
        own = {r.function for r in file_regions if r.lab == lab.id}
        others = sorted({r.function for r in file_regions if r.lab != lab.id} - own)
        source = submission / rel
        if not source.is_file():
            mine = [r for r in file_regions if r.lab == lab.id]
            (workspace / rel).write_text(stub_regions(reference_text, mine), encoding="utf-8")
            notes.append(f"{rel} is missing from the submission: graded as the unimplemented stub")
            continue
        text = source.read_text(encoding="utf-8", errors="replace")
        if others:
            try:
                text = replace_functions(text, reference_text, others)
            except SpliceError as exc:
                notes.append(f"{rel}: could not put the reference code of other labs back ({exc}); graded as is")
        (workspace / rel).write_text(text, encoding="utf-8")
    return notes


@dataclass(slots=True)
class _Runner:
    """Runs node ids in the workspace under the plugin, with the watchdog and reruns."""

    workspace: Path
    boot: Path
    lab: Lab
    log: Path
    watchdog_grace_s: float = WATCHDOG_GRACE_S
    fail_fast: bool = False  # stop at the first failing case (pytest -x); the rest count as not run

    def env(self, results: Path) -> dict[str, str]:
        return isolated_env(
            self.workspace,
            self.boot,
            extra={
                "KVCOURSE_RESULTS": str(results),
                "KVCOURSE_TIME_LIMIT_S": f"{self.lab.time_limit_s:g}",
                "KVCOURSE_MEMORY_LIMIT_MB": str(self.lab.memory_limit_mb),
            },
        )

    def command(self, args: list[str]) -> list[str]:
        return [
            python(),
            "-m",
            "pytest",
            "-p",
            PLUGIN_NAME,
            "-p",
            "no:cacheprovider",
            "--hypothesis-seed=0",
            "--tb=short",  # a long traceback reprs the failing frame's arguments: a huge history takes minutes
            "-q",
            "--rootdir",
            str(self.workspace),
            *args,
        ]

    def collect(self, paths: list[str]) -> list[str]:
        results = self.log.with_name("collect.jsonl")
        results.unlink(missing_ok=True)
        proc = subprocess.run(
            self.command(["--collect-only", *paths]),
            cwd=self.workspace,
            env=self.env(results),
            capture_output=True,
            text=True,
            timeout=600,
        )
        for record in _read_records(results):
            if record.get("event") == "collected":
                return [str(n) for n in record["nodeids"]]
        raise InvalidArgument(f"collecting the tests of {self.lab.id} failed in the reference:\n{proc.stdout[-3000:]}")

    def run(self, nodeids: list[str]) -> dict[str, CaseResult]:
        cases = {n: CaseResult(n) for n in nodeids}
        pending = list(nodeids)
        for attempt in range(MAX_RERUNS):
            if not pending:
                break
            results = self.log.with_name(f"run{attempt}.jsonl")
            results.unlink(missing_ok=True)
            hung = self._run_once(pending, results)
            started: set[str] = set()
            for record in _read_records(results):
                _apply_record(cases, record, started)
            if hung is not None and hung in cases:
                case = cases[hung]
                case.ran, case.passed, case.kind = True, False, "killed"
                killed_after = self.lab.time_limit_s + self.watchdog_grace_s
                case.output = f"time limit exceeded: the test hung and was killed after {killed_after:g} s"
            if hung is None or (self.fail_fast and any(c.ran and not c.passed for c in cases.values())):
                pending = [n for n in pending if n not in started and n in cases and not cases[n].ran]
                break
            pending = [n for n in pending if n not in started and not cases[n].ran]
        stopped = self.fail_fast and any(c.ran and not c.passed for c in cases.values())
        for case in cases.values():
            if not case.ran and not case.output:
                case.kind = "missing"
                case.output = (
                    "not run: grading stopped at the first failure (fail_fast)"
                    if stopped
                    else "did not run (the test module failed to import, or the run crashed):\n" + self._tail()
                )
        return cases

    def _tail(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
        except OSError:
            return ""

    def _run_once(self, nodeids: list[str], results: Path) -> str | None:
        """Run ``nodeids``; return the node id the watchdog killed, or None."""
        with open(self.log, "w", encoding="utf-8") as out:
            proc = subprocess.Popen(
                self.command(["-x", *nodeids] if self.fail_fast else nodeids),
                cwd=self.workspace,
                env=self.env(results),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            current: tuple[str, float] | None = None
            offset = 0
            progress_at = time.monotonic()  # when the results file last grew
            limit_s = self.lab.time_limit_s + self.watchdog_grace_s
            while proc.poll() is None:
                time.sleep(WATCHDOG_POLL_S)
                new_offset, current = _latest_start(results, offset, current)
                now = time.monotonic()
                if new_offset != offset:
                    offset, progress_at = new_offset, now
                if current and now - current[1] > limit_s:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return current[0]
                if current is None and now - progress_at > limit_s:
                    # Stuck outside any test: importing a test module, or at exit behind a thread that never
                    # ends. Tests that finished keep their results; the others are reported as not run.
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    out.write(f"\n[kv-course] killed: no test started or finished for {limit_s:g} s "
                              "(stuck collecting, or at exit waiting for a thread)\n")
                    return None
        return None


_Running = tuple[str, float] | None  # (node id, monotonic time it started) of the test in progress


def _latest_start(results: Path, offset: int, current: _Running) -> tuple[int, _Running]:
    """Read new records from ``offset``; track the test that started last and is not finished."""
    try:
        with open(results, encoding="utf-8") as fh:
            fh.seek(offset)
            chunk = fh.read()
    except OSError:
        return offset, current
    complete = chunk[: chunk.rfind("\n") + 1]
    for line in complete.splitlines():
        record = json.loads(line)
        if record.get("event") == "start":
            current = (str(record["nodeid"]), time.monotonic())
        elif record.get("event") == "report" and record.get("when") == "teardown":
            current = None
    return offset + len(complete.encode("utf-8")), current


def _read_records(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line from a killed process
    return records


def _apply_record(cases: dict[str, CaseResult], record: dict[str, Any], started: set[str]) -> None:
    """Fold one plugin record into the cases: a case passes iff its call passed and no phase failed."""
    nodeid = str(record.get("nodeid", ""))
    if record.get("event") == "start":
        started.add(nodeid)
        return
    if record.get("event") != "report" or nodeid not in cases:
        return
    case = cases[nodeid]
    outcome, when = str(record["outcome"]), str(record["when"])
    case.ran = True
    if outcome == "passed":
        if when == "call":
            case.passed = not case.output
        return
    case.passed = False
    case.kind = case.kind or str(record.get("kind", ""))
    text = str(record.get("crash") or "") if record.get("kind") or outcome == "skipped" else ""
    text = text or str(record.get("longrepr") or record.get("crash") or outcome)
    case.output = f"{case.output}\n{text}".strip()


def _items(lab: Lab, public: list[str], hidden: list[str], cases: dict[str, CaseResult]) -> list[Item]:
    items: list[Item] = []
    for group, visibility, share in (
        (public, "visible", lab.public_share if hidden else 1.0),
        (hidden, "after_published", 1.0 - lab.public_share if public else 1.0),
    ):
        by_name: dict[str, list[CaseResult]] = {}
        for nodeid in group:
            by_name.setdefault(_item_name(nodeid), []).append(cases[nodeid])
        total = sum(lab.weight_of(_function_name(n)) for n in by_name)
        for name, item_cases in by_name.items():
            points = lab.points * share * lab.weight_of(_function_name(name)) / total
            items.append(Item(name=name, visibility=visibility, max_score=points, cases=item_cases))
    return items


def run_limited(
    tree: Path,
    paths: list[str],
    *,
    time_limit_s: float,
    memory_limit_mb: int = 1024,
    watchdog_grace_s: float = WATCHDOG_GRACE_S,
    work_dir: Path,
) -> dict[str, CaseResult]:
    """Collect and run the tests at ``paths`` inside ``tree`` under the grader's per-test limits.

    The same machinery as :func:`grade` (one pytest process importing only ``tree``, the
    plugin's alarm and memory cap, the watchdog that kills a test hanging where the alarm
    cannot reach and reruns the rest), without a submission or scoring. Used to run a
    starter kit's public tests with every step bounded in time: a test waiting forever on a
    stub that raised in another thread fails with ``kind == "time"`` or ``"killed"``.

    Returns:
        node id -> its result, for every collected test.
    Raises:
        InvalidArgument: collection failed.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    boot = write_bootstrap(tree, work_dir / "boot")
    (boot / f"{PLUGIN_NAME}.py").write_text(PLUGIN_SOURCE.read_text(encoding="utf-8"), encoding="utf-8")
    lab = Lab(id="(tests)", title="", files=(), time_limit_s=time_limit_s, memory_limit_mb=memory_limit_mb)
    runner = _Runner(tree, boot, lab, work_dir / "pytest.log", watchdog_grace_s)
    return runner.run(runner.collect(paths))


def grade(
    reference: Path,
    submission: Path,
    lab_id: str,
    *,
    work_dir: Path | None = None,
    include_untracked: bool = False,
    only: list[str] | None = None,
    time_limit_s: float | None = None,
    memory_limit_mb: int | None = None,
    watchdog_grace_s: float = WATCHDOG_GRACE_S,
    files: list[str] | None = None,
    fail_fast: bool = False,
) -> GradeResult:
    """Grade one lab of a submission; see the module docstring.

    Args:
        reference: the reference repository (a git working tree).
        submission: a student's repository (only the lab's whitelisted files are read).
        lab_id: the lab.
        work_dir: where to build the workspace (default: a temporary folder, removed after).
        include_untracked: copy untracked, non-ignored reference files too (work in progress).
        only: grade only the items whose test function name is in this list (used to check
            the broken-solutions bank quickly); the scores then cover those items only.
        time_limit_s, memory_limit_mb: override the catalog's per-test limits.
        watchdog_grace_s: how long past the time limit a hung test process is given before it is killed.
        files: the reference files to copy (relative paths), instead of ``git ls-files``.
        fail_fast: stop at the first failing case (the rest score 0 as not run): enough to prove a score
            below full marks cheaply (the broken-solutions bank check in CI).

    Raises:
        InvalidArgument: unknown lab, a lab with no tests, or collection failing in the reference.
    """
    started = time.monotonic()
    catalog = load_catalog(reference / CATALOG_PATH)
    lab = catalog.lab(lab_id)
    lab = replace(
        lab,
        time_limit_s=time_limit_s or lab.time_limit_s,
        memory_limit_mb=memory_limit_mb or lab.memory_limit_mb,
    )
    if not lab.public_tests and not lab.hidden_tests:
        raise InvalidArgument(f"lab {lab_id} lists no public or hidden tests in the catalog")
    with tempfile.TemporaryDirectory(prefix="kv-course-grade-") as tmp:
        base = work_dir or Path(tmp)
        workspace = build_workspace(reference, base, catalog, include_untracked=include_untracked, files=files)
        boot = write_bootstrap(workspace, base / "boot")
        (boot / f"{PLUGIN_NAME}.py").write_text(PLUGIN_SOURCE.read_text(encoding="utf-8"), encoding="utf-8")
        runner = _Runner(workspace, boot, lab, base / "pytest.log", watchdog_grace_s, fail_fast)
        key = (str(reference.resolve()), lab.id, tuple(files) if files is not None else None)
        if key not in _COLLECTED:
            _COLLECTED[key] = (
                runner.collect(list(lab.public_tests)) if lab.public_tests else [],
                runner.collect(list(lab.hidden_tests)) if lab.hidden_tests else [],
            )
        public, hidden = (list(ids) for ids in _COLLECTED[key])
        if only is not None:
            public = [n for n in public if _function_name(_item_name(n)) in only]
            hidden = [n for n in hidden if _function_name(_item_name(n)) in only]
        notes = install_submission(workspace, submission, lab, set(catalog.ids()))
        cases = runner.run(public + hidden)
    items = _items(lab, public, hidden, cases)
    return GradeResult(lab=lab_id, items=items, notes=notes, execution_time_s=time.monotonic() - started)
