"""Reading and writing notebooks, and the few metadata conventions of docs/authoring.md.

Grading reads notebooks with the standard ``json`` module only (fast, and nothing in a
submission is ever executed here); building uses :mod:`nbformat` for validation and its
deterministic JSON layout.
"""
from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

CHAPTER_RE = re.compile(r"^ch\d\d$")
FILENAME_RE = re.compile(r"^(\d\d)_[A-Za-z0-9_\-]+\.ipynb$")
EXERCISE_ID_RE = re.compile(r"^ch\d\d\.[a-z_][a-z0-9_]*$")

#: Notebooks larger than this are refused by the grader (a course notebook with its outputs is
#: well under 1 MB; a learner's, with figures and widgets, a few MB).
MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024


class NotebookError(Exception):
    """A notebook that cannot be used; the message names the file (and cell)."""


def cell_source(cell: dict[str, Any]) -> str:
    """The source of a cell as one string (notebooks may store it as a list of lines)."""
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def course_meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return {}
    course = meta.get("course")
    return course if isinstance(course, dict) else {}


def cell_tags(cell: dict[str, Any]) -> list[str]:
    meta = cell.get("metadata")
    tags = meta.get("tags", []) if isinstance(meta, dict) else []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def exercise_id(cell: dict[str, Any]) -> str | None:
    """The exercise id of an exercise cell (metadata ``course.exercise``), else None."""
    if cell.get("cell_type") != "code":
        return None
    ex = course_meta(cell).get("exercise")
    return ex if isinstance(ex, str) else None


def is_exercise_cell(cell: dict[str, Any]) -> bool:
    return cell.get("cell_type") == "code" and (
        "exercise" in cell_tags(cell) or exercise_id(cell) is not None)


def chapter_of(nb: dict[str, Any], path: str | os.PathLike[str]) -> str | None:
    """The chapter id (``ch00``): from the notebook metadata, else from the file name ``NN_slug``."""
    ch = course_meta(nb).get("chapter")
    if isinstance(ch, str) and CHAPTER_RE.match(ch):
        return ch
    m = FILENAME_RE.match(Path(path).name)
    return f"ch{m.group(1)}" if m else None


def read_bytes_readonly(path: str | os.PathLike[str], limit: int = MAX_NOTEBOOK_BYTES,
                        follow_links: bool = True) -> bytes:
    """Read a regular file opened read-only (no atime update where allowed, never blocking on a
    FIFO or a device), at most ``limit`` bytes. ``follow_links=False`` refuses a symbolic link
    (files found by walking a folder a student controls)."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOATIME", 0))
    except PermissionError:  # O_NOATIME needs ownership
        fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotebookError(f"{path}: not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise NotebookError(f"{path}: larger than {limit // 2**20} MiB, not a course notebook")
    return data


def load_notebook_json(path: str | os.PathLike[str], follow_links: bool = True
                       ) -> tuple[dict[str, Any], bytes]:
    """Parse a notebook with plain json; return (notebook, raw bytes). Raises NotebookError."""
    try:
        raw = read_bytes_readonly(path, follow_links=follow_links)
    except OSError as e:
        if e.errno == getattr(errno, "ELOOP", -1):
            raise NotebookError(f"{path}: a symbolic link inside a submitted folder (not "
                                "followed: it could point anywhere)") from None
        raise NotebookError(f"{path}: not readable ({e.strerror or e})") from None
    try:
        nb = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise NotebookError(f"{path}: not valid JSON ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) \
            or not all(isinstance(c, dict) for c in nb["cells"]):
        raise NotebookError(f"{path}: JSON but not a Jupyter notebook (no list of cells)")
    return nb, raw


def dumps(nb: Any) -> str:
    """Deterministic notebook JSON exactly as Jupyter/nbformat write it, with a trailing newline."""
    import nbformat

    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def cell_label(index: int, cell: dict[str, Any]) -> str:
    """How messages name a cell: its 1-based position, plus its exercise id when it has one."""
    ex = exercise_id(cell)
    return f"cell {index + 1}" + (f" ({ex})" if ex else "")
