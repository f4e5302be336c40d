"""The learner's progress: every chapter notebook in a folder graded, one line per chapter.

Called from the start page (chapters/index.ipynb): ``show_progress()``. It runs the same grader
as ``course grade chapters/`` (so the same sandbox and the same hidden tests), in the learner's
own kernel process, which never imports the learner's code.
"""
from __future__ import annotations

from pathlib import Path

from . import paths


def progress(folder: str | Path = ".") -> list[dict]:
    """The JSON report of every ``NN_slug.ipynb`` notebook in ``folder`` (not its subfolders)."""
    from .grade import grade_paths
    from .report import to_json

    tests = paths.default_tests()
    if tests is None:
        raise FileNotFoundError("this copy of the course has no hidden tests (a student release?): "
                                "your instructor grades your notebooks")
    notebooks = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    results, _, _ = grade_paths(notebooks, tests, jobs=2)
    return to_json(results)


def show_progress(folder: str | Path = ".") -> None:
    """Print each chapter's score and what remains to do, then the total."""
    from .report import summary
    from .text import printable

    print(f"grading the chapters in {Path(folder).resolve()} (about a second each)...", flush=True)
    try:
        report = progress(folder)
    except FileNotFoundError as e:
        print(e)
        return
    width = max((len(Path(r["notebook"]).name) for r in report), default=10)
    for r in report:
        todo = [e["id"].split(".", 1)[1] for e in r["exercises"] if e["status"] != "passed"]
        state = "all done" if not todo else "to do: " + ", ".join(todo)
        score = f"{r['score']:g}/{r['max_score']:g}"
        print(f"{printable(Path(r['notebook']).name):<{width}}  {score:>5}  {state}")
    total = summary(report)
    if total:
        print(total.splitlines()[0])
