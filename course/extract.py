"""What the grader takes from a submission: imports, definitions and assignments, found with ``ast``.

Nothing here executes learner code. The top-level statements kept are imports, ``def`` and
``class`` statements, and assignments (``EPS = 1e-6``, ``EYE = np.eye(3)``,
``lsm = lambda a: a - logsumexp(a)``, ``W[0] = 1.0``, ``lr *= 0.5``); everything else at the top
level (calls such as a training loop or a plot, ``for``/``while``/``if``/``with``/``try``
blocks) is dropped. Each exercise then runs only the kept statements its names depend on,
followed transitively through the module-level names each statement reads
(``Extracted.needed_statements``; a function's own local variables are not followed, so a
helper that happens to use a local ``W`` does not pull in a top-level ``W = train(...)``). A
name that is bound only where the grader does not run (inside a top-level block) is recorded
so that the message can say so. IPython magics and shell lines are dropped before parsing.
"""
from __future__ import annotations

import ast
import re
import symtable
from dataclasses import dataclass, field
from typing import Any, Iterable

from .notebook import cell_source, exercise_id

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
    #: names bound only inside top-level statements the grader does not run:
    #: name -> (cell index, line, what kind of statement, e.g. "for")
    unrun: dict[str, tuple[int, int, str]] = field(default_factory=dict)

    def job_code(self, needs: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The JSON-able description of the code sent to the sandbox: every kept statement, or,
        given the names an exercise needs, only the statements those names depend on."""
        keep = {c.index: c.keep for c in self.cells} if needs is None else self.needed_statements(needs)
        return [{"cell": c.index, "source": c.source, "keep": keep[c.index]}
                for c in self.cells if keep.get(c.index)]

    def needed_statements(self, needs: Iterable[str]) -> dict[int, list[int]]:
        """Cell index -> kept statements that bind ``needs`` and, transitively, every module-level
        name they read (in bodies, defaults, annotations, decorators), in notebook order.

        An exercise thus runs only what it needs: a plotting helper's ``import matplotlib``
        costs it nothing, and a broken import elsewhere does not touch it."""
        stmts = [(c.index, k, self.trees[c.index].body[k]) for c in self.cells for k in c.keep]
        binders: dict[str, list[int]] = {}
        reads: list[set[str]] = []
        chosen: set[int] = set()
        for i, (_, _, stmt) in enumerate(stmts):
            names = _binds(stmt)
            if names is None:
                chosen.add(i)
            for name in names or ():
                binders.setdefault(name, []).append(i)
            reads.append(module_names_read(stmt))
        todo, seen = list(needs), set()
        for i in chosen:
            todo.extend(reads[i])
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for i in binders.get(name, ()):
                if i not in chosen:
                    chosen.add(i)
                    todo.extend(reads[i])
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


def _target_ok(target: ast.expr) -> bool:
    """A name, a tuple/list of names, or an item/attribute of a name (``W[0]``, ``cfg.lr``)."""
    if _names(target):
        return True
    while isinstance(target, (ast.Subscript, ast.Attribute)):
        target = target.value
    return isinstance(target, ast.Name)


def keep_statement(stmt: ast.stmt, in_exercise_cell: bool = False) -> bool:
    """Whether a top-level statement is part of what an exercise may depend on (the same in
    every cell; ``in_exercise_cell`` is kept for callers of the old signature)."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                         ast.ClassDef)):
        return True
    if isinstance(stmt, ast.Assign):
        return all(_target_ok(t) for t in stmt.targets)
    if isinstance(stmt, ast.AnnAssign):
        return stmt.value is not None and _target_ok(stmt.target)
    if isinstance(stmt, ast.AugAssign):
        return _target_ok(stmt.target)
    return False


_BLOCK_WORDS = {ast.For: "for", ast.AsyncFor: "for", ast.While: "while", ast.If: "if",
                ast.With: "with", ast.AsyncWith: "with", ast.Try: "try"}


def _bound_inside(stmt: ast.stmt) -> Iterable[tuple[str, int]]:
    """(name, line) of every name a dropped top-level block binds in its own scope (the locals
    of functions defined inside it are theirs, not the notebook's)."""
    todo: list[ast.AST] = list(ast.iter_child_nodes(stmt))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name, node.lineno
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            yield node.id, node.lineno
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    yield (alias.asname or alias.name.split(".")[0]), node.lineno
        todo.extend(ast.iter_child_nodes(node))


def module_names_read(stmt: ast.stmt) -> set[str]:
    """Module-level names a top-level statement reads when it runs or when what it defines is
    called: names read at the top level (right-hand sides, decorators, defaults, annotations,
    base classes) and the free (global) names of every function, lambda and class body inside
    it, as Python's own symbol table resolves them (a function's locals are not included)."""
    names: set[str] = set()
    try:
        table = symtable.symtable(ast.unparse(ast.Module([stmt], [])), "<statement>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    stack = [table]
    while stack:
        t = stack.pop()
        for sym in t.get_symbols():
            if t.get_type() == "module":
                if sym.is_referenced():
                    names.add(sym.get_name())
            elif sym.is_global() and (sym.is_referenced() or sym.is_assigned()):
                names.add(sym.get_name())
        stack.extend(t.get_children())
    if isinstance(stmt, (ast.AugAssign,)) or (isinstance(stmt, (ast.Assign, ast.AnnAssign)) and
                                              not all(_names(t) for t in _targets(stmt))):
        names.update(_binds(stmt) or ())  # W[0] = 1 and lr *= 2 read what they change
    return names


def _targets(stmt: ast.stmt) -> list[ast.expr]:
    if isinstance(stmt, ast.Assign):
        return list(stmt.targets)
    target = getattr(stmt, "target", None)
    return [target] if target is not None else []


#: Code the grader parses: per cell and per notebook (characters).
MAX_CELL_CODE = 50_000
MAX_NOTEBOOK_CODE = 250_000


def extract(nb: dict[str, Any]) -> Extracted:
    """Parse every code cell of a notebook (a dict) and pick the statements to keep."""
    out = Extracted()
    total_code = 0
    for i, cell in enumerate(nb.get("cells", [])):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        ex = exercise_id(cell)
        if ex is not None and ex not in out.exercise_cells:
            out.exercise_cells[ex] = i
        src = strip_magics(cell_source(cell))
        if src is None:
            continue
        total_code += len(src)
        if len(src) > MAX_CELL_CODE or total_code > MAX_NOTEBOOK_CODE:
            # ast.parse needs hundreds of bytes of memory per byte of some sources: never parse
            # more than a course notebook can hold (its cells are a few KB each)
            out.syntax_errors[i] = SyntaxProblem(
                i, None, f"the cell holds {len(src):,} characters of code, more than the grader "
                f"reads ({MAX_CELL_CODE:,} per cell, {MAX_NOTEBOOK_CODE:,} per notebook)", src[:2000])
            continue
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
            line = getattr(e, "lineno", None)
            msg = getattr(e, "msg", None) or str(e)
            out.syntax_errors[i] = SyntaxProblem(i, line, msg, src)
            continue
        keep = []
        for k, stmt in enumerate(tree.body):
            if keep_statement(stmt):
                keep.append(k)
                continue
            word = next((w for t, w in _BLOCK_WORDS.items() if isinstance(stmt, t)), None)
            if word is None and type(stmt).__name__ == "TryStar":
                word = "try"
            if word is not None:
                for name, line in _bound_inside(stmt):
                    out.unrun.setdefault(name, (i, line, word))
        out.cells.append(CellCode(i, src, keep))
        out.trees[i] = tree
    for c in out.cells:  # a name also bound at the top level somewhere is not "only" in a block
        for k in c.keep:
            for name in _binds(out.trees[c.index].body[k]) or ():
                out.unrun.pop(name, None)
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
    names = []
    for t in _targets(stmt):
        if _names(t):
            names.extend(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
            continue
        while isinstance(t, (ast.Subscript, ast.Attribute)):
            t = t.value
        if isinstance(t, ast.Name):
            names.append(t.id)
    return names


def defines(source: str, name: str) -> bool:
    """Whether a (possibly unparsable) source seems to define ``name`` (def, class or assignment)."""
    # [ \t] rather than \s: \s also matches newlines, and a cell of a million empty lines
    # would then be scanned from every line start to its end (quadratic time)
    pat = rf"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+{re.escape(name)}\b|^{re.escape(name)}[ \t]*[:=]"
    return re.search(pat, source, re.M) is not None
