"""The bank of deliberately broken solutions, and how to turn one into a submission.

Theory of operation. A broken variant is a small Python file under
``course/broken/<lab-id>/<name>.py`` (outside the packages: it is data, not
importable code). Its module docstring says, in its first line, the realistic
mistake it makes; two module-level constants say where it applies::

    \"\"\"A ring that hashes with Python's hash(): routing differs between processes.\"\"\"
    FILE = "kvstore/client/ring.py"      # a student-owned file of the lab
    CAUGHT_BY = ["test_x", "test_y"]      # graded test functions expected to fail

Every other top-level definition *replaces the same-named function* in
``FILE``: a ``def`` replaces a module function, a ``class C:`` holding a
``def m`` replaces method ``C.m`` (the class line itself is only an address).
Imports at the top of a variant are not copied: a variant uses only what
``FILE`` already imports. :func:`apply_variant` makes the patched file text;
:func:`write_submission` writes a submission folder holding every file the
lab's student owns: the reference's copy of each, except the patched ``FILE``
(a lab with several files, such as ``lsm-memtable-wal``, would otherwise have
its other files graded as unimplemented stubs, and every variant would fail
every test for a reason that is not its mistake). The grader takes it
exactly like a student's.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from kvstore.course.catalog import load_catalog
from kvstore.course.markers import parse_python
from kvstore.course.release import CATALOG_PATH
from kvstore.course.splice import function_spans, replace_functions
from kvstore.errors import InvalidArgument

BANK_DIR = "course/broken"


@dataclass(frozen=True, slots=True)
class Variant:
    """One broken solution."""

    lab: str
    name: str
    path: Path
    file: str  # the student-owned file it patches
    summary: str  # the mistake, in one line
    caught_by: tuple[str, ...]  # graded test functions expected to fail
    functions: tuple[str, ...]  # qualified names it replaces


def _constant(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def load_variant(path: Path, lab: str) -> Variant:
    """Read one variant file.

    Raises:
        InvalidArgument: no docstring, no ``FILE``, ``CAUGHT_BY`` not a list of names, or no function.
    """
    text = path.read_text(encoding="utf-8")
    tree = parse_python(text)
    doc = (ast.get_docstring(tree) or "").strip()
    target = _constant(tree, "FILE")
    caught = _constant(tree, "CAUGHT_BY") or []
    if not doc or not isinstance(target, str):
        raise InvalidArgument(f"{path}: a variant needs a docstring and FILE = '<student file>'")
    if not isinstance(caught, list) or not all(isinstance(c, str) for c in caught):
        raise InvalidArgument(f"{path}: CAUGHT_BY must be a list of test function names")
    functions = tuple(function_spans(text))
    top = tuple(n for n in functions if not any(n.startswith(o + ".") for o in functions if o != n))
    if not top:
        raise InvalidArgument(f"{path}: a variant must define at least one function to replace")
    return Variant(lab, path.stem, path, target, doc.splitlines()[0], tuple(caught), top)


def load_bank(root: Path, lab: str | None = None) -> list[Variant]:
    """Every variant under ``root/course/broken`` (of one lab, if given), sorted by lab and name."""
    base = root / BANK_DIR
    found = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        if lab is not None and folder.name != lab:
            continue
        found += [load_variant(p, folder.name) for p in sorted(folder.glob("*.py"))]
    return found


def apply_variant(reference_text: str, variant: Variant) -> str:
    """The reference file with the variant's functions swapped in.

    Raises:
        SpliceError: a function of the variant is not in the file.
    """
    return replace_functions(reference_text, variant.path.read_text(encoding="utf-8"), variant.functions)


def write_submission(reference: Path, variant: Variant, dest: Path) -> Path:
    """Write a submission folder: the lab's student-owned files from ``reference``, with the variant's
    file patched; return ``dest``.

    Raises:
        InvalidArgument: the variant's lab is not in the reference's catalog.
        SpliceError: a function of the variant is not in its file.
    """
    lab = load_catalog(reference / CATALOG_PATH).lab(variant.lab)
    for rel in {*lab.files, variant.file}:
        source = reference / rel
        if not source.is_file():
            continue
        text = source.read_text(encoding="utf-8")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(apply_variant(text, variant) if rel == variant.file else text, encoding="utf-8")
    return dest
