"""Where the course's folders are.

``course build`` and ``course check`` (maintainer commands that only read and write notebooks)
work on the repository found from the current directory. ``course grade`` never looks there: its
default hidden tests are those of the installed package (``tests/hidden`` beside ``course/`` in a
source checkout or editable install), because the grader executes the hidden-test modules as
trusted code, and a folder an instructor happens to be in (a student's, say) may hold anything.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _is_root(p: Path) -> bool:
    return (p / "pyproject.toml").is_file() and (p / "course").is_dir() and (p / "nnlib").is_dir()


def repo_root() -> Path:
    """The course repository for build/check: the first ancestor of the current directory that
    holds pyproject.toml, course/ and nnlib/; else the folder above this package."""
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if _is_root(p):
            return p
    return PACKAGE_ROOT


def default_solutions() -> Path:
    return repo_root() / "solutions"


def default_chapters() -> Path:
    return repo_root() / "chapters"


def default_tests() -> Path | None:
    """The hidden tests installed with this package, or None (a student release has none)."""
    p = PACKAGE_ROOT / "tests" / "hidden"
    return p if p.is_dir() else None
