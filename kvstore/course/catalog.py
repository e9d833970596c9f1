"""The lab catalog (``kvstore/course/labs.toml``), loaded into typed values.

Theory of operation. One data file describes every lab: its solution-marker id,
the files a student owns (the grader's whitelist), its public tests (shipped in
the starter kit) and hidden tests (kept under ``tests/hidden/``, never shipped),
its points, and the per-test limits the grader enforces. A ``[course]`` table
holds what is common to all labs: the instructor-only paths the release drops,
the default limits, and the folders beside the repository that tests read.

The release writes a *student* catalog (:func:`dump_student_catalog`) that keeps
only what a student may see; :func:`load_catalog` reads both forms, so the same
``kv-course labs`` command works in the reference and in a starter kit.

Schema (every key but ``id``, ``title`` and ``files`` is optional)::

    [course]
    instructor_only = ["tests/hidden", ...]   # paths (files or folders) the release drops
    sibling_dirs = ["shared"]                  # folders beside the repo that tests read
    time_limit_s = 60.0                        # default per-test limits of the grader
    memory_limit_mb = 1024

    [[lab]]
    id = "ring-routing"                        # the solution-marker id
    title = "..."
    files = ["kvstore/client/ring.py"]         # student-owned files: the grader's whitelist
    points = 100
    public_tests = ["tests/client/test_ring.py"]
    hidden_tests = ["tests/hidden/ring_routing"]
    public_share = 0.4                          # fraction of points earned by public tests
    handout = "docs/labs/ring-routing.md"
    sanity_tests = ["test_x"]                   # graded tests no broken variant is expected to fail
    time_limit_s = 60.0                         # overrides [course]
    memory_limit_mb = 1024
    [lab.weights]                               # relative weight of a test function (default 1)
    test_x = 2.0
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvstore.course.markers import CATALOG
from kvstore.errors import InvalidArgument

DEFAULT_TIME_LIMIT_S = 60.0  # per test: the slowest reference test takes ~3 s on a loaded 2-core machine
DEFAULT_MEMORY_LIMIT_MB = 1024  # per test, above the process's size when the test starts
DEFAULT_PUBLIC_SHARE = 0.4  # public tests are the students' own feedback; most points come from hidden ones


@dataclass(frozen=True, slots=True)
class Lab:
    """One lab of the catalog.

    Invariants: ``0 <= public_share <= 1``; ``points > 0``; limits positive;
    paths are POSIX, relative to the repository root.
    """

    id: str
    title: str
    files: tuple[str, ...]
    points: float = 100.0
    public_tests: tuple[str, ...] = ()
    hidden_tests: tuple[str, ...] = ()
    public_share: float = DEFAULT_PUBLIC_SHARE
    handout: str = ""
    sanity_tests: tuple[str, ...] = ()
    weights: dict[str, float] = field(default_factory=dict)
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB
    stubbed: bool = False  # only in a starter kit's catalog: this kit left the lab for the student

    @property
    def hidden_dir_name(self) -> str:
        """The conventional folder name of this lab's hidden tests (``ring-routing`` -> ``ring_routing``)."""
        return self.id.replace("-", "_")

    def weight_of(self, test_function: str) -> float:
        """The relative weight of a test function (by bare name), 1.0 unless the catalog says otherwise."""
        return float(self.weights.get(test_function, 1.0))


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every lab plus the course-wide settings."""

    labs: tuple[Lab, ...]
    instructor_only: tuple[str, ...] = ()
    sibling_dirs: tuple[str, ...] = ()
    path: Path = CATALOG

    def lab(self, lab_id: str) -> Lab:
        """The lab with this id.

        Raises:
            InvalidArgument: no such lab (the message lists the known ids).
        """
        for lab in self.labs:
            if lab.id == lab_id:
                return lab
        raise InvalidArgument(f"unknown lab {lab_id!r}; known labs: {', '.join(self.ids())}")

    def ids(self) -> list[str]:
        """The lab ids, in catalog order."""
        return [lab.id for lab in self.labs]

    def is_instructor_only(self, rel_path: str) -> bool:
        """Whether the release drops this repository path (it is, or lies under, an instructor-only path)."""
        return any(rel_path == p or rel_path.startswith(p.rstrip("/") + "/") for p in self.instructor_only)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{where} must be a list of strings")
    return tuple(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidArgument(f"{where} must be a positive number")
    return float(value)


def _lab(raw: dict[str, Any], course: dict[str, Any]) -> Lab:
    lab_id = raw.get("id")
    if not isinstance(lab_id, str) or not lab_id:
        raise InvalidArgument("every [[lab]] needs a string id")
    where = f"lab {lab_id}"
    share = raw.get("public_share", DEFAULT_PUBLIC_SHARE)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise InvalidArgument(f"{where}: public_share must be between 0 and 1")
    weights = raw.get("weights", {})
    if not isinstance(weights, dict):
        raise InvalidArgument(f"{where}: weights must be a table")
    return Lab(
        id=lab_id,
        title=str(raw.get("title", lab_id)),
        files=_strings(raw.get("files", []), f"{where}: files"),
        points=_number(raw.get("points", 100), f"{where}: points"),
        public_tests=_strings(raw.get("public_tests", []), f"{where}: public_tests"),
        hidden_tests=_strings(raw.get("hidden_tests", []), f"{where}: hidden_tests"),
        public_share=float(share),
        handout=str(raw.get("handout", "")),
        sanity_tests=_strings(raw.get("sanity_tests", []), f"{where}: sanity_tests"),
        weights={str(k): _number(v, f"{where}: weights.{k}") for k, v in weights.items()},
        time_limit_s=_number(raw.get("time_limit_s", course.get("time_limit_s", DEFAULT_TIME_LIMIT_S)), where),
        memory_limit_mb=int(
            _number(raw.get("memory_limit_mb", course.get("memory_limit_mb", DEFAULT_MEMORY_LIMIT_MB)), where)
        ),
        stubbed=bool(raw.get("stubbed", False)),
    )


def load_catalog(path: Path = CATALOG) -> Catalog:
    """Read and validate a catalog file.

    Raises:
        InvalidArgument: a malformed file, a missing or duplicate id, a value of the wrong type.
    """
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument(f"cannot read the lab catalog {path}: {exc}") from exc
    course = data.get("course", {})
    labs = tuple(_lab(raw, course) for raw in data.get("lab", []))
    ids = [lab.id for lab in labs]
    if len(ids) != len(set(ids)):
        raise InvalidArgument(f"duplicate lab ids in {path}")
    return Catalog(
        labs=labs,
        instructor_only=_strings(course.get("instructor_only", []), "course.instructor_only"),
        sibling_dirs=_strings(course.get("sibling_dirs", []), "course.sibling_dirs"),
        path=path,
    )


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def dump_student_catalog(catalog: Catalog, *, stubbed: set[str]) -> str:
    """The catalog a starter kit ships: no hidden tests, weights or instructor-only paths.

    Args:
        catalog: the reference catalog.
        stubbed: the ids of the labs this release stubs out (recorded as ``stubbed = true``).
    """
    out = [
        "# The lab catalog of this starter kit (generated by `kv-course release` from the reference).",
        "#",
        "# `id` is the solution-marker id; `files` are the files you edit for the lab; `public_tests`",
        "# are the tests you can run (`kv-course test <id>`); the graders add tests you do not see.",
        "# `stubbed = true` marks the labs whose functions this kit left for you to write.",
        "",
        "[course]",
        f"sibling_dirs = {_toml_list(catalog.sibling_dirs)}",
    ]
    for lab in catalog.labs:
        out += [
            "",
            "[[lab]]",
            f"id = {_toml_str(lab.id)}",
            f"title = {_toml_str(lab.title)}",
            f"files = {_toml_list(lab.files)}",
            f"points = {lab.points:g}",
            f"public_tests = {_toml_list(lab.public_tests)}",
            f"handout = {_toml_str(lab.handout)}",
            f"time_limit_s = {lab.time_limit_s:g}",
            f"memory_limit_mb = {lab.memory_limit_mb}",
            f"stubbed = {'true' if lab.id in stubbed else 'false'}",
        ]
    return "\n".join(out) + "\n"
