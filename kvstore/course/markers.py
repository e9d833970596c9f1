"""Solution markers: the regions of reference code a student release stubs out.

Theory of operation. A function body that a student may be asked to write is
wrapped like this (see ``docs/solution-markers.md``)::

    def become_candidate(self) -> None:
        \"\"\"Docstring complete enough to implement from.\"\"\"
        # BEGIN SOLUTION raft-election
        ...reference code...
        # END SOLUTION

The release tool replaces everything between the two marker lines with
``raise NotImplementedError("raft-election: ...")``. For that to leave valid
Python, every pair must be *well-formed*:

1. every BEGIN has a matching END, and pairs do not nest;
2. the lab id is one of the catalog's ids (``kvstore/course/labs.toml``);
3. both markers sit inside one and the same function body, at the
   indentation of that body's statements, after the docstring, and the region
   holds at least one statement.

:func:`scan_tree` finds every violation in a tree; the test suite runs it on
this repository.
"""

from __future__ import annotations

import ast
import io
import re
import threading
import tokenize
import tomllib
from dataclasses import dataclass
from pathlib import Path

# CPython 3.11 keeps the AST constructor's recursion counter per interpreter, not per
# thread: two threads parsing at once can fail with "SystemError: AST constructor
# recursion depth mismatch" (python/cpython#106905). The grader parses in threads.
_PARSE_LOCK = threading.Lock()


def parse_python(text: str) -> ast.Module:
    """``ast.parse(text)``, one thread at a time (see ``_PARSE_LOCK``). Raises SyntaxError."""
    with _PARSE_LOCK:
        return ast.parse(text)


BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?P<rest>.*)$")
END_RE = re.compile(r"^(?P<indent>[ \t]*)# END SOLUTION\s*$")
MARKERISH_RE = re.compile(r"#\s*(BEGIN|END)\s*SOLUTION", re.IGNORECASE)
LAB_ID_RE = re.compile(r"^[a-z][a-z0-9-]*$")
SKIP_DIRS = {".venv", ".git", "__pycache__", "build", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
CATALOG = Path(__file__).with_name("labs.toml")


@dataclass(frozen=True, slots=True)
class MarkedRegion:
    """One well-formed BEGIN/END pair."""

    path: Path
    lab: str
    begin_line: int  # 1-based line of "# BEGIN SOLUTION"
    end_line: int  # 1-based line of "# END SOLUTION"
    function: str  # qualified name of the enclosing function
    indent: str


@dataclass(frozen=True, slots=True)
class MarkerProblem:
    """One violation, with where it is."""

    path: Path
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


def known_labs(catalog: Path = CATALOG) -> set[str]:
    """The lab ids listed in the catalog."""
    with open(catalog, "rb") as fh:
        data = tomllib.load(fh)
    return {str(lab["id"]) for lab in data.get("lab", [])}


def _comment_lines(text: str) -> list[tuple[int, str]]:
    """(line number, whole line) for each line whose only token is a comment.

    Tokenizing (rather than matching raw lines) ignores marker-like text inside
    strings and docstrings, such as the example at the top of this module.
    """
    lines = text.splitlines()
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT and not lines[tok.start[0] - 1][: tok.start[1]].strip():
            found.append((tok.start[0], lines[tok.start[0] - 1]))
    return found


def _functions(tree: ast.AST) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function in the module with its qualified name, outermost first."""
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                found.append((name, child))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _innermost_function(
    funcs: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]], line: int, indent: int
) -> tuple[str, ast.FunctionDef | ast.AsyncFunctionDef] | None:
    """The deepest function whose body could hold a comment at ``line`` indented by ``indent``."""
    best = None
    for name, fn in funcs:
        end = fn.end_lineno or fn.lineno
        if fn.lineno < line <= end + 1 and indent > fn.col_offset and (best is None or fn.lineno >= best[1].lineno):
            best = (name, fn)
    return best


def check_source(path: Path, text: str, labs: set[str]) -> tuple[list[MarkedRegion], list[MarkerProblem]]:
    """Check one file's markers; return the good regions and the problems."""
    regions: list[MarkedRegion] = []
    problems: list[MarkerProblem] = []
    if "SOLUTION" not in text:
        return regions, problems
    lines = text.splitlines()
    try:
        funcs = _functions(parse_python(text))
    except SyntaxError as exc:
        return regions, [MarkerProblem(path, exc.lineno or 0, f"cannot parse: {exc.msg}")]
    open_at: tuple[int, str, str] | None = None  # (line, lab, indent)
    for number, line in _comment_lines(text):
        begin = BEGIN_RE.match(line)
        end = END_RE.match(line)
        if begin:
            lab = begin.group("rest").strip()
            if open_at is not None:
                problems.append(MarkerProblem(path, number, f"BEGIN inside the region opened at line {open_at[0]}"))
                continue
            if not LAB_ID_RE.match(lab):
                problems.append(MarkerProblem(path, number, f"BEGIN SOLUTION needs a lab id, got {lab!r}"))
            elif lab not in labs:
                problems.append(MarkerProblem(path, number, f"unknown lab id {lab!r} (not in labs.toml)"))
            open_at = (number, lab, begin.group("indent"))
        elif end:
            if open_at is None:
                problems.append(MarkerProblem(path, number, "END SOLUTION without a BEGIN"))
                continue
            begin_line, lab, indent = open_at
            open_at = None
            problem = _region_problem(funcs, lines, begin_line, number, indent, end.group("indent"))
            if problem:
                problems.append(MarkerProblem(path, begin_line, problem))
            elif lab in labs:
                fn = _innermost_function(funcs, begin_line, len(indent))
                if fn is not None:
                    regions.append(MarkedRegion(path, lab, begin_line, number, fn[0], indent))
        elif MARKERISH_RE.search(line):
            problems.append(MarkerProblem(path, number, f"malformed marker line: {line.strip()!r}"))
    if open_at is not None:
        problems.append(MarkerProblem(path, open_at[0], "BEGIN SOLUTION is never closed"))
    return regions, problems


def _region_problem(
    funcs: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]],
    lines: list[str],
    begin: int,
    end: int,
    begin_indent: str,
    end_indent: str,
) -> str | None:
    """Why the region [begin, end] is not a valid stub-able body part, or None."""
    fn = _innermost_function(funcs, begin, len(begin_indent))
    if fn is None:
        return "region is not inside a function body"
    name, node = fn
    body = node.body
    if begin_indent != end_indent:
        return "BEGIN and END are indented differently"
    if len(begin_indent) != body[0].col_offset:
        return "markers must be at the indentation of the function body"
    for text in lines[begin : end - 1]:
        if text.strip() and len(text) - len(text.lstrip()) < len(begin_indent):
            return f"region starts in {name}() but ends outside it"
    first = body[0]
    has_doc = (
        isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    )
    if has_doc and begin <= (first.end_lineno or first.lineno):
        return "region must start after the docstring"
    if not [s for s in body if begin < s.lineno < end]:
        return "region holds no statement of the function body"
    for s in body:
        last = s.end_lineno or s.lineno
        if s.lineno < begin < last or s.lineno < end < last:
            return "a marker splits a statement"
    return None


def scan_tree(root: Path, labs: set[str] | None = None) -> tuple[list[MarkedRegion], list[MarkerProblem]]:
    """Check every ``.py`` file under ``root`` (skipping virtualenvs and caches)."""
    labs = known_labs() if labs is None else labs
    regions: list[MarkedRegion] = []
    problems: list[MarkerProblem] = []
    for path in sorted(root.rglob("*.py")):
        if SKIP_DIRS.intersection(path.relative_to(root).parts):
            continue
        r, p = check_source(path, path.read_text(encoding="utf-8"), labs)
        regions.extend(r)
        problems.extend(p)
    return regions, problems
