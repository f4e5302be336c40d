"""``course build`` / ``course check``: generate chapters/ (student notebooks) from solutions/.

A solution region, markers included, becomes one ``raise NotImplementedError(...)`` line at the
markers' indentation; ``NAME = value  ### SOLUTION`` becomes ``NAME = None``; outputs and
execution counts are cleared; everything else (cell ids, metadata, prose) is kept. The output is
deterministic, so rebuilding gives identical bytes.
"""
from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .notebook import (EXERCISE_ID_RE, FILENAME_RE, NotebookError, cell_label, cell_source,
                       cell_tags, dumps, exercise_id)

BEGIN_RE = re.compile(r"^([ \t]*)### BEGIN SOLUTION[ \t]*$")
END_RE = re.compile(r"^([ \t]*)### END SOLUTION[ \t]*$")
ONE_LINE_RE = re.compile(r"^(?P<lhs>[ \t]*[A-Za-z_][A-Za-z0-9_]*(?:[ \t]*:[^=]+?)?)[ \t]*=(?!=).*###[ \t]*SOLUTION[ \t]*$")
ONE_LINE_MARK_RE = re.compile(r"###[ \t]*SOLUTION[ \t]*$")


def stub_line(indent: str, ex_id: str) -> str:
    return f'{indent}raise NotImplementedError("{ex_id}: replace this line with your solution")'


def strip_source(source: str, ex_id: str | None, where: str) -> str:
    """Replace the solution regions of one cell's source. ``where`` names notebook and cell."""
    out: list[str] = []
    begin: tuple[int, str] | None = None
    lines = source.split("\n")
    for n, line in enumerate(lines, 1):
        b, e = BEGIN_RE.match(line), END_RE.match(line)
        if b:
            if begin is not None:
                raise NotebookError(f"{where}: line {n}: '### BEGIN SOLUTION' inside another "
                                    f"solution region (opened on line {begin[0]})")
            if ex_id is None:
                raise NotebookError(f"{where}: line {n}: solution markers in a cell that is not an "
                                    "exercise cell (metadata course.exercise is missing)")
            begin = (n, b.group(1))
        elif e:
            if begin is None:
                raise NotebookError(f"{where}: line {n}: '### END SOLUTION' without a "
                                    "'### BEGIN SOLUTION' before it")
            if e.group(1) != begin[1]:
                raise NotebookError(f"{where}: line {n}: '### END SOLUTION' is not indented like "
                                    f"its '### BEGIN SOLUTION' on line {begin[0]}")
            out.append(stub_line(begin[1], ex_id or ""))
            begin = None
        elif begin is not None:
            continue
        elif ONE_LINE_MARK_RE.search(line) and not line.lstrip().startswith("#"):
            m = ONE_LINE_RE.match(line)
            if m is None:
                raise NotebookError(f"{where}: line {n}: a '### SOLUTION' line must read "
                                    "'NAME = value  ### SOLUTION'")
            if ex_id is None:
                raise NotebookError(f"{where}: line {n}: '### SOLUTION' in a cell that is not an "
                                    "exercise cell (metadata course.exercise is missing)")
            out.append(f"{m.group('lhs').rstrip()} = None")
        else:
            out.append(line)
    if begin is not None:
        raise NotebookError(f"{where}: '### BEGIN SOLUTION' on line {begin[0]} is never closed "
                            "by '### END SOLUTION'")
    return "\n".join(out)


def student_version(nb: dict[str, Any], name: str) -> dict[str, Any]:
    """The student notebook made from a solution notebook (a dict in nbformat 4 layout)."""
    nb = copy.deepcopy(nb)
    seen: dict[str, int] = {}
    for i, cell in enumerate(nb.get("cells", [])):
        where = f"{name}: {cell_label(i, cell)}"
        ex = exercise_id(cell)
        if cell.get("cell_type") == "code" and "exercise" in cell_tags(cell) and ex is None:
            raise NotebookError(f"{where}: tagged 'exercise' but has no metadata "
                                '{"course": {"exercise": "chNN.name", "points": N}}')
        if ex is not None:
            if not EXERCISE_ID_RE.match(ex):
                raise NotebookError(f"{where}: exercise id {ex!r} is not of the form chNN.snake_case")
            if ex in seen:
                raise NotebookError(f"{where}: duplicate exercise id {ex!r} (also cell {seen[ex] + 1})")
            seen[ex] = i
        if cell.get("cell_type") == "code":
            cell["source"] = strip_source(cell_source(cell), ex, where)
            cell["outputs"] = []
            cell["execution_count"] = None
        if nb.get("nbformat", 4) >= 4 and nb.get("nbformat_minor", 0) >= 5 and not cell.get("id"):
            cell["id"] = hashlib.sha1(f"{name}:{i}".encode()).hexdigest()[:12]
    return nb


def build_text(solution: Path) -> str:
    """The exact text of the chapter notebook generated from ``solution``."""
    import nbformat

    try:
        raw = solution.read_text(encoding="utf-8")
        nb = nbformat.reads(raw, as_version=4)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise NotebookError(f"{solution}: cannot read as a notebook ({e})") from None
    except Exception as e:  # nbformat raises several validation error types
        raise NotebookError(f"{solution}: invalid notebook ({type(e).__name__}: {e})") from None
    return dumps(nbformat.from_dict(student_version(nb, str(solution))))


@dataclass
class BuildPlan:
    """What ``build`` would write and what ``check`` reports."""
    outputs: dict[Path, str] = field(default_factory=dict)   # chapter path -> text
    stale: list[Path] = field(default_factory=list)          # differs from what it should be
    missing: list[Path] = field(default_factory=list)        # should exist, does not
    extra: list[Path] = field(default_factory=list)          # chapter without a solution


def plan(solutions: Path, chapters: Path) -> BuildPlan:
    if not solutions.is_dir():
        raise NotebookError(f"{solutions}: no such folder of solution notebooks")
    p = BuildPlan()
    names = sorted(f.name for f in solutions.glob("*.ipynb") if FILENAME_RE.match(f.name))
    for name in names:
        target = chapters / name
        text = build_text(solutions / name)
        p.outputs[target] = text
        if not target.exists():
            p.missing.append(target)
        elif target.read_bytes() != text.encode("utf-8"):
            p.stale.append(target)
    if chapters.is_dir():
        p.extra = sorted(f for f in chapters.glob("*.ipynb")
                         if FILENAME_RE.match(f.name) and f.name not in names)
    return p


def build(solutions: Path, chapters: Path) -> list[str]:
    """Write every chapter; remove chapters without a solution. Returns one line per change."""
    p = plan(solutions, chapters)
    chapters.mkdir(parents=True, exist_ok=True)
    lines = []
    for target, text in p.outputs.items():
        if target in p.stale or target in p.missing:
            target.write_bytes(text.encode("utf-8"))
            lines.append(f"wrote {target}")
    for f in p.extra:
        f.unlink()
        lines.append(f"removed {f} (no solutions/{f.name})")
    return lines


def check(solutions: Path, chapters: Path) -> list[str]:
    """One line per problem; empty when chapters/ is exactly what ``build`` would write."""
    p = plan(solutions, chapters)
    return ([f"{f}: out of date (run `course build`)" for f in p.stale]
            + [f"{f}: missing (run `course build`)" for f in p.missing]
            + [f"{f}: has no solutions/{f.name} (remove it or run `course build`)" for f in p.extra])
