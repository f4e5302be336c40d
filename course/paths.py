"""Where the repository's folders are: found from the current directory, else from the package."""
from __future__ import annotations

from pathlib import Path


def _is_root(p: Path) -> bool:
    return (p / "pyproject.toml").is_file() and (p / "course").is_dir() and (p / "nnlib").is_dir()


def repo_root() -> Path:
    """The course repository: the first ancestor of the current directory that holds
    pyproject.toml, course/ and nnlib/; else the folder above this package."""
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if _is_root(p):
            return p
    return Path(__file__).resolve().parent.parent


def default_solutions() -> Path:
    return repo_root() / "solutions"


def default_chapters() -> Path:
    return repo_root() / "chapters"


def default_tests() -> Path:
    return repo_root() / "tests" / "hidden"
