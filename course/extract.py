"""What the grader takes from a submission: imports, definitions and constants, found with ``ast``.

Nothing here executes learner code. Top-level statements other than imports, ``def``/``class``
and literal constants (``EPS = 1e-6``) are dropped, so a training loop or a ``time.sleep``
left in a cell costs nothing; in exercise cells, assignments to names are kept too (the
answers to conceptual questions). Each exercise then runs only the kept statements its names
depend on (``Extracted.needed_statements``). IPython magics and shell lines are dropped before
parsing.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from .notebook import cell_source, exercise_id, is_exercise_cell

#: Cell magics whose body is Python: the magic line is dropped and the rest kept.
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "memit", "debug"}
_MAGIC_LINE = re.compile(r"^\s*(%|!)")
_HELP_LINE = re.compile(r"^\s*[\w.]+\?{1,2}\s*$")


@dataclass
class CellCode:
    index: int                 # position of the cell in the notebook (0-based)
    source: str                # magics blanked out, same line numbers as the cell
    keep: list[int]            # indices of the top-level statements to run


@dataclass
class SyntaxProblem:
    index: int
    line: int | None
    message: str
    source: str


@dataclass
class Extracted:
    cells: list[CellCode] = field(default_factory=list)
    syntax_errors: dict[int, SyntaxProblem] = field(default_factory=dict)
    exercise_cells: dict[str, int] = field(default_factory=dict)   # exercise id -> cell index
    trees: dict[int, ast.Module] = field(default_factory=dict, repr=False)  # cell index -> parsed

    def job_code(self, needs: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The JSON-able description of the code sent to the sandbox: every kept statement, or,
        given the names an exercise needs, only the statements those names depend on."""
        keep = {c.index: c.keep for c in self.cells} if needs is None else self.needed_statements(needs)
        return [{"cell": c.index, "source": c.source, "keep": keep[c.index]}
                for c in self.cells if keep.get(c.index)]

    def needed_statements(self, needs: Iterable[str]) -> dict[int, list[int]]:
        """Cell index -> kept statements that define ``needs`` and, transitively, every top-level
        name they refer to (in bodies, defaults, annotations, decorators), in notebook order.

        An exercise thus runs only what it needs: a plotting helper's ``import matplotlib``
        costs it nothing, and a broken import elsewhere does not touch it."""
        stmts = [(c.index, k, self.trees[c.index].body[k]) for c in self.cells for k in c.keep]
        binders: dict[str, list[int]] = {}
        chosen: set[int] = set()
        for i, (_, _, stmt) in enumerate(stmts):
            names = _binds(stmt)
            if names is None:
                chosen.add(i)
            for name in names or ():
                binders.setdefault(name, []).append(i)
        todo, seen = list(needs), set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for i in binders.get(name, ()):
                if i not in chosen:
                    chosen.add(i)
                    todo.extend(n.id for n in ast.walk(stmts[i][2]) if isinstance(n, ast.Name))
        keep: dict[int, list[int]] = {}
        for i in sorted(chosen):
            keep.setdefault(stmts[i][0], []).append(stmts[i][1])
        return keep


def strip_magics(source: str) -> str | None:
    """Blank out IPython-only lines (keeping line numbers); None for a non-Python cell magic."""
    lines = source.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        name = lines[0].lstrip()[2:].split(maxsplit=1)[0] if lines[0].strip() != "%%" else ""
        if name not in PYTHON_CELL_MAGICS:
            return None
        lines[0] = ""
    return "\n".join("" if _MAGIC_LINE.match(ln) or _HELP_LINE.match(ln) else ln for ln in lines)


def _names(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return True
    if isinstance(target, (ast.Tuple, ast.List)):
        return all(_names(t) for t in target.elts)
    return False


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def keep_statement(stmt: ast.stmt, in_exercise_cell: bool) -> bool:
    """Whether a top-level statement is part of what an exercise may depend on."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                         ast.ClassDef)):
        return True
    if isinstance(stmt, ast.Assign):
        if not all(_names(t) for t in stmt.targets):
            return False
        return in_exercise_cell or _is_literal(stmt.value)
    if isinstance(stmt, ast.AnnAssign):
        if stmt.value is None or not isinstance(stmt.target, ast.Name):
            return False
        return in_exercise_cell or _is_literal(stmt.value)
    if isinstance(stmt, ast.AugAssign):
        return in_exercise_cell and isinstance(stmt.target, ast.Name)
    return False


def extract(nb: dict[str, Any]) -> Extracted:
    """Parse every code cell of a notebook (a dict) and pick the statements to keep."""
    out = Extracted()
    for i, cell in enumerate(nb.get("cells", [])):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        ex = exercise_id(cell)
        if ex is not None and ex not in out.exercise_cells:
            out.exercise_cells[ex] = i
        src = strip_magics(cell_source(cell))
        if src is None:
            continue
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
            line = getattr(e, "lineno", None)
            msg = getattr(e, "msg", None) or str(e)
            out.syntax_errors[i] = SyntaxProblem(i, line, msg, src)
            continue
        ex_cell = is_exercise_cell(cell)
        keep = [k for k, stmt in enumerate(tree.body) if keep_statement(stmt, ex_cell)]
        out.cells.append(CellCode(i, src, keep))
        out.trees[i] = tree
    return out


def _binds(stmt: ast.stmt) -> list[str] | None:
    """Top-level names a kept statement binds; None when it must always run (``from m import *``,
    ``from __future__``), since what it binds is unknown or it changes how later code compiles."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            return None
        if any(alias.name == "*" for alias in stmt.names):
            return None
        return [alias.asname or alias.name.split(".")[0] for alias in stmt.names]
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return [n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)]


def defines(source: str, name: str) -> bool:
    """Whether a (possibly unparsable) source seems to define ``name`` (def, class or assignment)."""
    pat = rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*[:=]"
    return re.search(pat, source, re.M) is not None
