"""Load a Jupyter notebook as a namespace of its definitions, without running its demos.

A code cell contributes its definitions: ``import`` and ``from ... import`` statements,
``def`` and ``class`` statements, functions made by assignment (``f = lambda ...``,
``f = partial(...)``), assignments of inert values (literals, names, attributes,
``load_notebook(...)``, and for UPPER_CASE names of two or more characters, ``MAX_LEN`` not
``X``, arithmetic on those), and assignments to the names the caller asks for (``keep``).

One more rule keeps what the learner's definitions need: a name that a definition in an
nbgrader solution cell (or a kept name) reads as a global (``NEG_INF`` in
``scores.masked_fill(~mask, NEG_INF)``) has its assignments loaded too, in notebook order,
whatever their value (``NEG_INF = float("-inf")``, ``TABLE = build(100)``), and so on
transitively through the definitions and assignments it reaches, including ``if``/``try``/``with``
statements at the top level that bind it. Nothing else runs: loops, plots, prints, visible
checks, and demo data that only demo helpers read are skipped, so loading is fast and has no
side effects beyond those of the definitions themselves. Why a name was skipped is kept (``why_not_loaded``), so that a
NameError can say which cell assigned the name and why it did not run.

A broken notebook loads as far as it can: a cell with a syntax error keeps the statements
around the broken one, and a statement that raises is reported and skipped. Each problem
records its cell and that cell's nbgrader ``grade_id``, so a grader can say which exercise
it belongs to.

This module uses only the standard library: the student release ships a copy of it
(course/notebook_loader.py) so that a later chapter can import a learner's earlier work:

    from notebook_loader import load_notebook
    MultiHeadAttention = load_notebook("02_multi_head_attention.ipynb").MultiHeadAttention
"""

from __future__ import annotations

import ast
import builtins
import itertools
import json
import linecache
import re
import symtable
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["load_notebook", "LoadedNotebook", "Problem", "Skipped"]

_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# Statements that may bind a name a definition needs; loops and bare expressions never run.
_BINDINGS = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.If, ast.Try, ast.With)
# Calls whose result is a function: ``attend = partial(scaled_dot_product_attention, mask=None)``.
_FUNCTION_MAKERS = {"partial", "partialmethod"}
# PEP 8 constants; a single capital (X, Q, K, V) is a variable in math-style code, not a constant.
_CONSTANT_NAME = re.compile(r"^_?[A-Z][A-Z0-9_]*[A-Z0-9]$")
# A line at column 0 that continues the statement above it rather than starting a new one.
_CONTINUATION = re.compile(r"^(\)|\]|\}|else\b|elif\b|except\b|finally\b|case\b)")
_module_counter = itertools.count()
_loading: list[Path] = []  # folders of the notebooks being loaded, innermost last


@dataclass
class Problem:
    """Something in the notebook that could not be loaded."""

    kind: str  # "not_a_notebook", "syntax_error" or "exception"
    message: str
    cell: int | None = None  # index in the notebook's list of cells
    grade_id: str | None = None  # the cell's nbgrader grade_id, when it has one
    line: int | None = None  # line within the cell, 1-based

    def __str__(self) -> str:
        where = "notebook" if self.cell is None else f"cell {self.cell}"
        if self.grade_id:
            where += f" ({self.grade_id})"
        if self.line:
            where += f", line {self.line}"
        return f"{where}: {self.message}"


@dataclass
class Skipped:
    """A statement that binds a name but did not run when loading, and why."""

    reason: str
    cell: int
    grade_id: str | None
    line: int

    def __str__(self) -> str:
        where = f"cell {self.cell}" + (f" ({self.grade_id})" if self.grade_id else "") + f", line {self.line}"
        return f"{where} assigns it, but {self.reason}"


@dataclass
class LoadedNotebook:
    """The definitions of one notebook: ``nb.name`` or ``nb["name"]``, plus what failed."""

    path: Path
    names: dict = field(repr=False)
    problems: list[Problem] = field(default_factory=list)
    # name -> (cell index, grade_id) of the cell that defined it last
    defined_in: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    # name -> the statements that bind it but did not run
    skipped: dict[str, list[Skipped]] = field(default_factory=dict)

    def __getattr__(self, name: str):
        names = self.__dict__.get("names", {})
        if name in names:
            return names[name]
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(self.explain_missing(name))

    def __getitem__(self, name: str):
        return getattr(self, name)

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def explain_missing(self, name: str) -> str:
        message = f"{self.path.name} does not define {name!r}"
        why = self.why_not_loaded(name)
        if why:
            message += f"; {why}"
        if self.problems:
            message += "; problems while loading it: " + "; ".join(map(str, self.problems))
        return message

    def why_not_loaded(self, name: str) -> str | None:
        """Where the notebook assigns ``name`` without the loader running it, and why; None when
        it assigns it nowhere (or it was loaded)."""
        if name in self.names or name not in self.skipped:
            return None
        return f"{name!r} is not loaded: " + "; ".join(map(str, self.skipped[name]))


def load_notebook(path: str | Path, catch_interrupts: bool = False, after_statement=None,
                  keep=()) -> LoadedNotebook:
    """Load the definitions of the notebook at ``path``. Never raises for a broken notebook.

    ``keep`` names the caller needs however the notebook assigns them (a grader's graded names):
    their assignments load like definitions.

    A relative path is relative to the notebook being loaded when one loads another, else to
    the current directory (a notebook's kernel starts in the notebook's folder); a bare file
    name not found there is also looked for in nbgrader's layout, ``../<stem>/<name>``. The result's ``problems`` list what failed, cell by cell.
    """
    path = _locate(Path(path))
    # A chapter imports earlier ones with `from notebook_loader import load_notebook` and a path
    # relative to its own folder: both work wherever the notebook itself is loaded from. While it
    # loads, that import is this module, whose stack of folders knows where the notebook is, even
    # in a kernel that imported another copy (the release's notebook_loader.py) under that name.
    previous = sys.modules.get("notebook_loader")
    sys.modules["notebook_loader"] = sys.modules[__name__]
    _loading.append(path.resolve().parent)
    try:
        return _load(path, catch_interrupts, after_statement, frozenset(keep))
    finally:
        _loading.pop()
        if previous is not None:
            sys.modules["notebook_loader"] = previous


def _load(path: Path, catch_interrupts: bool, after_statement, keep: frozenset) -> LoadedNotebook:
    module = types.ModuleType(f"notebook_{_identifier(path.stem)}_{next(_module_counter)}")
    module.__file__ = str(path)
    module.__dict__["__builtins__"] = builtins
    # Registered so that dataclasses, pickling and typing can find the module by name.
    sys.modules[module.__name__] = module
    loaded = LoadedNotebook(path=path, names=module.__dict__)

    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cells = notebook["cells"]
        if not isinstance(cells, list):
            raise TypeError("'cells' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as error:
        loaded.problems.append(Problem("not_a_notebook", f"cannot read {path.name} as a notebook: {error}"))
        return loaded

    statements = []  # (cell index, grade_id, file name, node), in notebook order
    solution_flags = []  # whether each statement is in an nbgrader solution cell
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        grade_id = _grade_id(cell)
        source = _cell_source(cell)
        filename = f"<{path.name} cell {index}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        for node in _parse_salvaging(source, filename, loaded.problems, index, grade_id):
            statements.append((index, grade_id, filename, node))
            solution_flags.append(_is_solution_cell(cell))

    nodes = [node for *_, node in statements]
    roots = [(solution and _is_definition(node)) or (isinstance(node, _BINDINGS) and bool(set(_bound_names(node)) & keep))
             for node, solution in zip(nodes, solution_flags)]
    runs = _statements_to_run(nodes, roots)
    for (index, grade_id, filename, node), reason in zip(statements, runs):
        if reason is not None:
            for name in _bound_names(node):
                loaded.skipped.setdefault(name, []).append(Skipped(reason, index, grade_id, node.lineno))
            continue
        try:
            exec(compile(ast.Module(body=[node], type_ignores=[]), filename, "exec"), module.__dict__)
        except BaseException as error:  # a learner's cell may raise anything, SystemExit included
            if isinstance(error, KeyboardInterrupt) and not catch_interrupts:
                raise
            loaded.problems.append(
                Problem("exception", f"{type(error).__name__}: {error}", index, grade_id, node.lineno)
            )
            for name in _bound_names(node):
                loaded.skipped.setdefault(name, []).append(
                    Skipped(f"running it raised {type(error).__name__}", index, grade_id, node.lineno))
            continue
        finally:
            if after_statement is not None:
                after_statement()
        for name in _bound_names(node):
            loaded.defined_in[name] = (index, grade_id)
    return loaded


def _statements_to_run(nodes: list[ast.stmt], roots: list[bool]) -> list[str | None]:
    """For each statement, None when it runs at load time, else why it does not.

    Definitions run. So do the statements that bind a name the roots (the names the caller
    keeps, the solution cells' definitions) read as a global, and, transitively, those that bind
    what those statements and definitions read. A demo's helper function reading demo data is
    not a root, so the demo data stays unloaded."""
    reasons: list[str | None] = [None if _is_definition(n) or root else _why_skipped(n)
                                 for n, root in zip(nodes, roots)]
    binders: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in _bound_names(node):
            binders.setdefault(name, []).append(i)
    pending = [i for i, root in enumerate(roots) if root]
    followed = set()
    while pending:
        i = pending.pop()
        if i in followed or (reasons[i] is not None and not isinstance(nodes[i], _BINDINGS)):
            continue
        followed.add(i)
        reasons[i] = None
        pending += [j for name in _global_reads(nodes[i]) for j in binders.get(name, ())]
    return reasons


def _why_skipped(node: ast.stmt) -> str:
    if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
        return "it is bound by a loop, and loops are demos that the loader never runs (assign it instead)"
    if isinstance(node, _BINDINGS):
        return "that statement is not a definition and no solution cell's definition reads the name"
    return "that statement is not a definition, so the loader does not run it"


def _global_reads(node: ast.stmt) -> set[str]:
    """The global names a statement reads, now or when its functions run (not their locals)."""
    try:
        table = symtable.symtable(ast.unparse(node), "<statement>", "exec")
    except (SyntaxError, ValueError, RecursionError):
        return set()
    reads, tables = set(), [table]
    while tables:
        table = tables.pop()
        module_level = table.get_type() == "module"
        reads.update(s.get_name() for s in table.get_symbols()
                     if s.is_referenced() and (module_level or s.is_global()))
        tables += table.get_children()
    return reads


def _locate(path: Path) -> Path:
    """Where a notebook path points: relative to the notebook being loaded, if any (a chapter
    importing an earlier one), else to the current directory; for a bare name found in neither,
    nbgrader's layout of one folder per assignment, ``../<stem>/<name>``."""
    if path.is_absolute():
        return path
    bases = [_loading[-1], Path(".")] if _loading else [Path(".")]
    candidates = [base / path for base in bases]
    if len(path.parts) == 1:
        candidates += [base / ".." / path.stem / path.name for base in bases]
    return next((c for c in candidates if c.exists()), path)


def _identifier(text: str) -> str:
    return re.sub(r"\W", "_", text)


def _grade_id(cell: dict) -> str | None:
    metadata = cell.get("metadata")
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _is_solution_cell(cell: dict) -> bool:
    metadata = cell.get("metadata")
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return isinstance(nbgrader, dict) and nbgrader.get("solution") is True


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    if not isinstance(source, str):
        return ""
    # IPython magics and shell escapes are not Python; blank them, keeping line numbers.
    return "".join(
        "\n" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines(True)
    )


def _parse_salvaging(source, filename, problems, cell, grade_id, line_offset=0, report=True):
    """Parse a cell; on a syntax error keep the statements before and after the broken one."""
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as error:
        bad = max((error.lineno or 1) - 1, 0)
        if report:
            problems.append(
                Problem("syntax_error", f"SyntaxError: {error.msg}", cell, grade_id, bad + 1 + line_offset)
            )
        lines = source.splitlines(True)
        starts = [i for i, line in enumerate(lines) if _starts_statement(line)]
        before = max((i for i in starts if i <= bad), default=0)
        after = min((i for i in starts if i > bad), default=len(lines))
        nodes = []
        if before > 0:
            nodes += _parse_salvaging("".join(lines[:before]), filename, problems, cell, grade_id,
                                      line_offset, report=False)
        if after < len(lines):
            nodes += _parse_salvaging("".join(lines[after:]), filename, problems, cell, grade_id,
                                      line_offset + after, report=True)
        return nodes
    if line_offset:
        ast.increment_lineno(tree, line_offset)
    return tree.body


def _starts_statement(line: str) -> bool:
    return bool(line.strip()) and not line[0].isspace() and not line.startswith("#") \
        and not _CONTINUATION.match(line)


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, _DEFINITIONS):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not all(_target_names(t) for t in targets):
            return False  # assignments to attributes or items are side effects, not definitions
        names = [n for t in targets for n in _target_names(t)]
        return node.value is not None and (_makes_function(node.value) or _is_inert(
            node.value, constant=all(_CONSTANT_NAME.match(n) for n in names)))
    return False


def _makes_function(expr: ast.expr) -> bool:
    """A lambda, or ``partial(f, ...)``: a function definition written as an assignment."""
    if isinstance(expr, ast.Lambda):
        return True
    if isinstance(expr, ast.Call):
        func = expr.func
        return (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) in _FUNCTION_MAKERS
    return False


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple) and all(isinstance(e, ast.Name) for e in target.elts):
        return [e.id for e in target.elts]
    return []


def _is_inert(expr: ast.expr, constant: bool = False) -> bool:
    """A value that costs nothing and needs no demo: a literal (containers of literals included),
    a name, an attribute, loading another notebook; for an UPPER_CASE constant also containers of
    and arithmetic on those (``2 * MAX_LEN``)."""
    if isinstance(expr, (ast.Constant, ast.Name)):
        return True
    if isinstance(expr, ast.Attribute):
        return _is_inert(expr.value)
    if isinstance(expr, (ast.Tuple, ast.List, ast.Set)):  # of literals: a list of names is demo data
        return all(_is_literal(e) or (constant and _is_inert(e, constant)) for e in expr.elts)
    if isinstance(expr, ast.Dict):
        return all(_is_literal(e) or (constant and _is_inert(e, constant))
                   for e in expr.keys + expr.values if e is not None)
    if isinstance(expr, ast.UnaryOp):
        return isinstance(expr.operand, ast.Constant) or (constant and _is_inert(expr.operand, constant))
    if isinstance(expr, ast.BinOp):
        return constant and _is_inert(expr.left, constant) and _is_inert(expr.right, constant)
    if isinstance(expr, ast.Call):
        func = expr.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        return called == "load_notebook" and all(_is_inert(a) for a in expr.args)
    return False


def _is_literal(expr: ast.expr) -> bool:
    try:
        ast.literal_eval(expr)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _bound_names(node: ast.stmt) -> list[str]:
    """The names a top-level statement binds in the module (not inside its functions or classes)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*"]
    names, stack = [], [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (ast.Lambda, ast.comprehension, ast.GeneratorExp, ast.ListComp, ast.SetComp,
                                ast.DictComp)):
            continue  # their own scopes
        if current is not node and isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                                        ast.Import, ast.ImportFrom)):
            names += _bound_names(current)
            continue
        if isinstance(current, ast.Name) and isinstance(current.ctx, ast.Store):
            names.append(current.id)
        elif isinstance(current, ast.ExceptHandler) and current.name:
            names.append(current.name)
        stack.extend(ast.iter_child_nodes(current))
    return list(dict.fromkeys(names))
