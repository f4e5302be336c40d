"""``course release DIR``: the course as students receive it, with no answers in it.

The folder holds chapters/ (the student notebooks, the start page and the build record with the
exercise stubs), nnlib/, the course tool (course/), start.py, pyproject.toml, environment.yml,
LICENSE, docs/nnlib.md and a README for learners. It holds no solutions/, no tests/ (the hidden
tests and their multiple-choice answers, the fixtures), no bench/ and no history. It installs and
runs on its own: ``python3 start.py lab`` opens it, the chapters execute, ``course reset`` works,
and ``course grade`` says that grading is the instructor's (``--tests DIR`` grades with a folder
of tests, for an instructor trying the release).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from .build import INDEX, MANIFEST, chapter_table, check
from .notebook import FILENAME_RE

TOP_FILES = ("start.py", "pyproject.toml", "environment.yml", "LICENSE")
PACKAGES = ("nnlib", "course")
#: Never shipped, wherever they would turn up.
_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*$|###[ \t]*SOLUTION[ \t]*$", re.M)
FORBIDDEN_PARTS = {"solutions", "tests", "bench", ".git", ".venv", "__pycache__", ".ipynb_checkpoints"}


class ReleaseError(Exception):
    pass


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in FORBIDDEN_PARTS or n.endswith((".pyc", ".egg-info"))}


def readme(root: Path) -> str:
    table = chapter_table(sorted((root / "chapters").glob("[0-9][0-9]_*.ipynb")), "chapters/")
    return f"""# Backpropagation, question by question

A Jupyter textbook that takes the questions learners actually ask about backpropagation and
answers each with a derivation, code, and a measured experiment you can re-run. Every chapter
runs on **nnlib**, a small numpy library whose names follow PyTorch.

## Start

On a machine with Python 3.10 or newer:

```bash
python3 start.py lab              # sets up .venv once (a few minutes), then opens JupyterLab
python3 start.py lab --headless   # on a server: prints the address and the ssh tunnel line
```

JupyterLab opens on `chapters/index.ipynb`, the start page: begin with chapter 00 and go in
order. In each chapter, fill in the exercises between the markers and run the check cell under
each one: it says what was expected and what came back.

Your notebooks are yours: no course command overwrites them. To start one exercise again:
`.venv/bin/course reset chapters/NN_slug.ipynb chNN.exercise_name` (it keeps a copy of what the
cell held). Your instructor collects the notebooks in `chapters/` and grades them with hidden
tests that are not in this folder.

{table}

`docs/nnlib.md` describes the library for PyTorch users. Code and text: MIT; the data sets in
`nnlib/datasets/` keep their own licences (see the README there).
"""


def make_release(root: Path, dest: Path) -> list[str]:
    """Write the student release of the repository at ``root`` into ``dest`` (new or empty)."""
    if dest.exists() and any(dest.iterdir()):
        raise ReleaseError(f"{dest} exists and is not empty: name a new folder")
    problems = check(root / "solutions", root / "chapters")
    if problems:
        raise ReleaseError("chapters/ is not what `course build` writes from solutions/ "
                           f"({problems[0]}): rebuild before releasing")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "chapters").mkdir()
    for nb in sorted((root / "chapters").iterdir()):
        if FILENAME_RE.match(nb.name) or nb.name in (INDEX, MANIFEST):
            shutil.copy2(nb, dest / "chapters" / nb.name)
    for pkg in PACKAGES:
        shutil.copytree(root / pkg, dest / pkg, ignore=_ignore)
    for name in TOP_FILES:
        shutil.copy2(root / name, dest / name)
    (dest / "docs").mkdir()
    shutil.copy2(root / "docs" / "nnlib.md", dest / "docs" / "nnlib.md")
    (dest / "README.md").write_text(readme(root), encoding="utf-8")
    (dest / ".gitignore").write_text(".venv/\n__pycache__/\n*.egg-info/\n.ipynb_checkpoints/\n")
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except OSError:
        commit = ""
    (dest / "RELEASE.json").write_text(json.dumps({"from_commit": commit}, indent=1) + "\n")
    leaks = answers_in(dest)
    if leaks:
        shutil.rmtree(dest)
        raise ReleaseError("the release would contain answers: " + "; ".join(leaks[:5]))
    return [f"wrote {dest} ({sum(1 for _ in dest.rglob('*') if _.is_file())} files)"]


def answers_in(folder: Path) -> list[str]:
    """What in ``folder`` looks like an answer: solution markers, hidden tests, solutions."""
    leaks = []
    for f in sorted(folder.rglob("*")):
        rel = f.relative_to(folder)
        if FORBIDDEN_PARTS & set(rel.parts):
            leaks.append(f"{rel}: a folder that is never released")
            continue
        if not f.is_file() or f.suffix not in (".ipynb", ".py", ".json", ".md"):
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        if f.suffix == ".ipynb":
            try:
                text = "\n".join("".join(c.get("source", "")) for c in json.loads(text).get("cells", []))
            except (ValueError, AttributeError):
                pass
        if _MARKER.search(text):
            leaks.append(f"{rel}: holds a solution region")
        if f.suffix == ".py" and re.search(r"^EXERCISES\s*=", text, re.M):
            leaks.append(f"{rel}: looks like a hidden-test module")
    return leaks
