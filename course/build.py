"""``course build`` / ``course check``: generate chapters/ (student notebooks) from solutions/.

A solution region, markers included, becomes one ``raise NotImplementedError(...)`` line at the
markers' indentation; ``NAME = value  ### SOLUTION`` becomes ``NAME = None``; outputs and
execution counts are cleared; everything else (cell ids, metadata, prose) is kept. The output is
deterministic, so rebuilding gives identical bytes.

``chapters/.built.json`` records what build wrote (each notebook's sha256, and each exercise's
stub for ``course reset``). A chapter notebook that differs from its record has a learner's
edits: build never overwrites or removes it, unless asked with ``--save-edits``, which first
copies it beside itself.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import time
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
    """The student notebook made from a solution notebook (a dict in nbformat 4 layout). The
    saved widget state goes too: it belongs to the outputs, which are cleared."""
    nb = copy.deepcopy(nb)
    if isinstance(nb.get("metadata"), dict):
        nb["metadata"].pop("widgets", None)
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


MANIFEST = ".built.json"
INDEX = "index.ipynb"


def chapter_table(notebooks: list[Path], link_prefix: str = "") -> str:
    """The Markdown table of chapters (number, title with a link, question, what it assumes, time),
    from each notebook's metadata ``course`` and title line: the start page, the README and the
    release's README all show this same table."""
    rows = ["| # | chapter | the question | assumes | time |", "| --- | --- | --- | --- | --- |"]
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        meta = nb.get("metadata", {}).get("course", {})
        title = cell_source(nb["cells"][0]).splitlines()[0].lstrip("# ").split("·", 1)[-1].strip()
        rows.append(f"| {path.name[:2]} | [{title}]({link_prefix}{path.name}) | "
                    f"{meta.get('question', '')} | {meta.get('assumes', '')} | "
                    f"{meta.get('minutes', '?')} min |")
    return "\n".join(rows)


def index_text(solutions: Path, names: list[str]) -> str:
    """The start page: every chapter with its question, what it assumes and roughly how long it
    takes (from each solution's metadata ``course``), and a cell that shows the learner's scores."""
    import nbformat

    intro = (
        "# Backpropagation, question by question: start here\n\n"
        "Each chapter takes one question learners ask about backpropagation and answers it with a "
        "derivation, code and a measured experiment. Start with chapter 00 and go in order; each "
        "chapter says what it assumes. In each chapter, fill in the exercises between the markers, "
        "run the check cell under each one, and see your score from the hidden tests below (or "
        "with `.venv/bin/course grade chapters/` in a terminal).\n\n"
        "Your edits are yours: no course command overwrites them. To start one exercise again, "
        "`.venv/bin/course reset chapters/NN_slug.ipynb chNN.exercise_name` puts that one cell "
        "back to its stub and keeps a copy of what it held.\n\n"
        + chapter_table([solutions / n for n in names]))
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                  "name": "python3"},
                   "language_info": {"name": "python"}, "course": {"role": "index"}}
    nb.cells = [nbformat.v4.new_markdown_cell(intro),
                nbformat.v4.new_markdown_cell("## Your scores\n\nRun the cell below (Shift-Enter) to "
                                              "grade every chapter in this folder as it is saved "
                                              "now (save your notebooks first)."),
                nbformat.v4.new_code_cell("from course.progress import show_progress\n\nshow_progress()")]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"index-{i}"
    return dumps(nb)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(chapters: Path) -> dict[str, Any]:
    """The record of what ``course build`` last wrote into ``chapters`` (empty if none)."""
    try:
        data = json.loads((chapters / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def exercise_stubs(text: str) -> dict[str, str]:
    """Exercise id -> the source of its cell in a generated chapter notebook."""
    nb = json.loads(text)
    return {ex: cell_source(c) for c in nb.get("cells", []) if (ex := exercise_id(c)) is not None}


@dataclass
class BuildPlan:
    """What ``build`` would write and what ``check`` reports."""
    outputs: dict[Path, str] = field(default_factory=dict)   # chapter path -> text
    stale: list[Path] = field(default_factory=list)          # differs from what it should be
    missing: list[Path] = field(default_factory=list)        # should exist, does not
    extra: list[Path] = field(default_factory=list)          # chapter without a solution
    edited: list[Path] = field(default_factory=list)         # differs from what build wrote


def plan(solutions: Path, chapters: Path) -> BuildPlan:
    if not solutions.is_dir():
        raise NotebookError(f"{solutions}: no such folder of solution notebooks")
    p = BuildPlan()
    record = read_manifest(chapters)
    names = sorted(f.name for f in solutions.glob("*.ipynb") if FILENAME_RE.match(f.name))
    texts = {name: build_text(solutions / name) for name in names}
    if names:
        texts[INDEX] = index_text(solutions, names)
    for name, text in texts.items():
        target = chapters / name
        p.outputs[target] = text
        if not target.exists():
            p.missing.append(target)
            continue
        have = target.read_bytes()
        if have != text.encode("utf-8"):
            p.stale.append(target)
            if sha256(have) != record.get(name, {}).get("sha256"):
                p.edited.append(target)
    if chapters.is_dir():
        p.extra = sorted(f for f in chapters.glob("*.ipynb")
                         if FILENAME_RE.match(f.name) and f.name not in names)
        p.edited += [f for f in p.extra
                     if sha256(f.read_bytes()) != record.get(f.name, {}).get("sha256")]
    return p


class EditsWouldBeLost(Exception):
    """build would overwrite or remove chapter notebooks that hold a learner's edits."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        super().__init__(", ".join(map(str, paths)))


def build(solutions: Path, chapters: Path, save_edits: bool = False) -> list[str]:
    """Write every chapter; remove chapters without a solution. Returns one line per change.

    Raises EditsWouldBeLost, writing nothing, when a chapter to be rewritten or removed differs
    from what build last wrote, unless ``save_edits``: then each such notebook is first copied to
    ``NN_slug.mine-YYYYmmdd-HHMMSS.ipynb`` beside it."""
    p = plan(solutions, chapters)
    if p.edited and not save_edits:
        raise EditsWouldBeLost(p.edited)
    chapters.mkdir(parents=True, exist_ok=True)
    lines = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for f in p.edited:
        copy_to = f.with_name(f"{f.stem}.mine-{stamp}.ipynb")
        copy_to.write_bytes(f.read_bytes())
        lines.append(f"saved your copy of {f.name} as {copy_to}")
    for target, text in p.outputs.items():
        if target in p.stale or target in p.missing:
            target.write_bytes(text.encode("utf-8"))
            lines.append(f"wrote {target}")
    for f in p.extra:
        f.unlink()
        lines.append(f"removed {f} (no solutions/{f.name})")
    record = {t.name: {"sha256": sha256(text.encode("utf-8")), "stubs": exercise_stubs(text)}
              for t, text in p.outputs.items()}
    manifest = json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if (chapters / MANIFEST).exists() and (chapters / MANIFEST).read_text(encoding="utf-8") == manifest:
        return lines
    (chapters / MANIFEST).write_text(manifest, encoding="utf-8")
    lines.append(f"wrote {chapters / MANIFEST}")
    return lines


EDITED_ADVICE = ("has edits of yours (it differs from what `course build` wrote): they are yours, "
                 "and no course command overwrites them. Maintainers who regenerate chapters/ run "
                 "`course build --save-edits`, which keeps a copy of each edited notebook beside it")


def check(solutions: Path, chapters: Path) -> list[str]:
    """One line per problem; empty when chapters/ is exactly what ``build`` would write."""
    p = plan(solutions, chapters)
    problems = ([f"{f}: {EDITED_ADVICE}" for f in p.edited]
                + [f"{f}: out of date with solutions/ (maintainers: run `course build`)"
                   for f in p.stale if f not in p.edited]
                + [f"{f}: missing (run `course build`)" for f in p.missing]
                + [f"{f}: has no solutions/{f.name} (maintainers: remove it or run `course build`)"
                   for f in p.extra if f not in p.edited])
    if not problems:
        want = {t.name: sha256(text.encode("utf-8")) for t, text in p.outputs.items()}
        have = {k: v.get("sha256") for k, v in read_manifest(chapters).items() if isinstance(v, dict)}
        if want != have:
            problems.append(f"{chapters / MANIFEST}: does not record the chapters as built "
                            "(run `course build`)")
    return problems
