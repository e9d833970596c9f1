"""Source surgery for the course kit: stub marked regions, move whole functions between files.

Theory of operation. Two operations, both on source text and both line-based
(so everything outside the touched lines stays byte-for-byte identical):

* :func:`stub_regions` replaces the body of each marked region (the lines
  between BEGIN and END) by one ``raise NotImplementedError("<lab>: <what to
  do>")`` at the region's indentation. The what-to-do text is the first line of
  the enclosing function's docstring. The marker lines stay, showing the
  student where to write (and keeping the tree valid for the marker checker
  and for tests that re-stub a file); signature, docstring and unmarked code
  around the region stay too.
* :func:`replace_functions` replaces whole function definitions (decorators
  included), found by qualified name (``Class.method``), in a *target* text by
  the same-named definitions of a *donor* text, re-indented. Finding functions
  by name rather than by marker lines means a student who deleted the marker
  comments is still graded correctly: the grader puts the reference versions of
  *other* labs' functions into the student's file, and ``kv-course restore``
  puts reference bodies back into a release.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from kvstore.course.markers import MarkedRegion, parse_python
from kvstore.errors import InvalidArgument

MAX_LINE = 120  # the project's line length (ruff); stubs wrap their message to stay within it


class SpliceError(InvalidArgument):
    """A function to replace is missing, or a text does not parse."""

    code = "SPLICE_ERROR"


@dataclass(frozen=True, slots=True)
class FunctionSpan:
    """Where one function definition sits in a text (1-based, inclusive lines)."""

    name: str  # qualified name, e.g. "RaftCore.become_candidate"
    first_line: int  # the first decorator, or the def line
    last_line: int
    col: int  # indentation of the def
    doc_first_line: str  # first non-empty line of the docstring, or ""


def function_spans(text: str) -> dict[str, FunctionSpan]:
    """Every function and method of a module by qualified name (the outermost wins on a repeat).

    Raises:
        SpliceError: the text does not parse.
    """
    try:
        tree = parse_python(text)
    except SyntaxError as exc:
        raise SpliceError(f"cannot parse: {exc.msg} (line {exc.lineno})") from exc
    spans: dict[str, FunctionSpan] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                doc = ((ast.get_docstring(child) or "").strip().splitlines() or [""])[0]
                last = child.end_lineno or child.lineno
                spans.setdefault(name, FunctionSpan(name, first, last, child.col_offset, doc))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    lines = text.splitlines()
    return {name: _with_trailing_comments(span, lines) for name, span in spans.items()}


def _with_trailing_comments(span: FunctionSpan, lines: list[str]) -> FunctionSpan:
    """Extend a span over the comment lines that close its body (such as ``# END SOLUTION``).

    The AST ends a function at its last statement; a comment after it, indented deeper
    than the ``def``, still belongs to the body.
    """
    last = span.last_line
    for number in range(span.last_line + 1, len(lines) + 1):
        line = lines[number - 1]
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if line.lstrip().startswith("#") and indent > span.col:
            last = number
            continue
        break
    if last == span.last_line:
        return span
    return FunctionSpan(span.name, span.first_line, last, span.col, span.doc_first_line)


def _py_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stub_statement(lab: str, todo: str, indent: str) -> list[str]:
    """The line(s) of ``raise NotImplementedError("<lab>: <todo>")`` at ``indent``, wrapped to MAX_LINE."""
    message = f"{lab}: {todo}".strip()
    one = f"{indent}raise NotImplementedError({_py_str(message)})"
    if len(one) <= MAX_LINE:
        return [one]
    inner = indent + "    "
    width = MAX_LINE - len(inner) - 3
    chunks = textwrap.wrap(message, width=width, drop_whitespace=False)
    return [f"{indent}raise NotImplementedError(", *(inner + _py_str(c) for c in chunks), f"{indent})"]


def stub_regions(text: str, regions: Iterable[MarkedRegion]) -> str:
    """Replace the inside of each region by a NotImplementedError stub; see the module docstring.

    Args:
        text: a module's source.
        regions: well-formed regions of this text (from :func:`kvstore.course.markers.check_source`).

    Returns:
        the stubbed text; it parses (checked).

    Raises:
        SpliceError: the text or the result does not parse.
    """
    spans = function_spans(text)
    lines = text.splitlines(keepends=True)
    for region in sorted(regions, key=lambda r: r.begin_line, reverse=True):
        span = spans.get(region.function)
        todo = span.doc_first_line if span and span.doc_first_line else f"implement {region.function}()"
        stub = [line + "\n" for line in stub_statement(region.lab, todo, region.indent)]
        lines[region.begin_line : region.end_line - 1] = stub  # the marker lines stay
    result = "".join(lines)
    function_spans(result)  # must still parse
    return result


def _reindent(lines: list[str], from_col: int, to_col: int) -> list[str]:
    if from_col == to_col:
        return lines
    out = []
    for line in lines:
        if not line.strip():
            out.append(line)
        elif to_col > from_col:
            out.append(" " * (to_col - from_col) + line)
        else:
            cut = from_col - to_col
            out.append(line[cut:] if line[:cut].strip() == "" else line.lstrip())
    return out


def replace_functions(target: str, donor: str, names: Iterable[str]) -> str:
    """Replace the definitions of ``names`` in ``target`` by those of ``donor``.

    Args:
        target: the text to change (for example a student's file).
        donor: the text that supplies the definitions (for example the reference file).
        names: qualified function names present in both texts.

    Returns:
        ``target`` with each named definition (decorators included) swapped for the donor's,
        re-indented to the target's indentation. Lines outside those definitions are unchanged.

    Raises:
        SpliceError: a name is missing from either text, or either text does not parse.
    """
    t_spans, d_spans = function_spans(target), function_spans(donor)
    d_lines = donor.splitlines(keepends=True)
    t_lines = target.splitlines(keepends=True)
    if t_lines and not t_lines[-1].endswith("\n"):
        t_lines[-1] += "\n"
    wanted = sorted(set(names))
    for name in wanted:
        if name not in t_spans:
            raise SpliceError(f"function {name}() is missing from the file it should be in")
        if name not in d_spans:
            raise SpliceError(f"function {name}() is missing from the reference")
    # Replace outer definitions only (a nested one moves with its parent), bottom-up.
    outer = [n for n in wanted if not any(n.startswith(o + ".") for o in wanted if o != n)]
    for name in sorted(outer, key=lambda n: t_spans[n].first_line, reverse=True):
        t, d = t_spans[name], d_spans[name]
        block = d_lines[d.first_line - 1 : d.last_line]
        if block and not block[-1].endswith("\n"):
            block[-1] += "\n"
        t_lines[t.first_line - 1 : t.last_line] = _reindent(block, d.col, t.col)
    result = "".join(t_lines)
    function_spans(result)
    return result
