"""Every chapter's solution passes its hidden tests whatever the seed of the hidden inputs.

The grader draws each submission's inputs from a seed derived from its content, so a hidden test
that fails a correct answer on one seed in a hundred fails one student in a hundred. Here each
exercise's solution (the solution notebook's own definitions, trusted code, run in this process)
meets the cases of many seeds through the grader's own comparison, and each deliberately wrong
exercise of tests/fixtures/chNN_wrong.ipynb fails on every seed with the message its
expected.json names (test_chapters.py grades the fixture at one seed only). COURSE_SEEDS sets how many
(default 25 per exercise; run with COURSE_SEEDS=2000 after changing a hidden test).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from course.extract import extract
from course.grade import load_exercises, make_cases
from course.hidden import compare_outputs

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
SEEDS = int(os.environ.get("COURSE_SEEDS", "25"))


def _namespace(path: Path, needs: tuple[str, ...]) -> dict:
    ex = extract(json.loads(path.read_text()))
    ns: dict = {"__name__": "__main__"}
    for cell in ex.job_code(needs):
        tree = ex.trees[cell["cell"]]
        for k in cell["keep"]:
            import ast
            exec(compile(ast.Module([tree.body[k]], []), f"<cell {cell['cell'] + 1}>", "exec"), ns)
    return ns


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name[:2])
def test_the_solution_passes_every_seed(path: Path) -> None:
    failures = []
    for ex in load_exercises(ROOT / "tests" / "hidden", "ch" + path.name[:2]):
        ns = _namespace(path, ex.needs)
        cg = {"np": np, "__name__": "course_call"}
        import inspect
        import textwrap
        exec(textwrap.dedent(inspect.getsource(ex.call)), cg)
        call = cg[ex.call.__name__]
        for seed in range(SEEDS):
            for i, inp in enumerate(make_cases(ex, seed)):
                got = call(ns, {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inp.items()})
                got = {k: (np.asarray(v) if not isinstance(v, (str, bool, int, float, type(None))) else v)
                       for k, v in got.items()}
                msg = compare_outputs(ex, inp, got, ex.expected(inp))
                if msg is not None:
                    failures.append(f"{ex.id} seed {seed} case {i + 1}: {msg[:300]}")
                    break
    assert not failures, "\n".join(failures[:10])


WRONG = sorted((ROOT / "tests" / "fixtures").glob("ch[0-9][0-9]_wrong.ipynb"))


@pytest.mark.parametrize("path", WRONG, ids=lambda p: p.name[2:4] + "_wrong")
def test_the_wrong_fixture_fails_every_seed(path: Path) -> None:
    """Each deliberately wrong exercise of tests/fixtures/chNN_wrong.ipynb fails on every seed, with
    the message its expected.json names in the first case that fails (the one the grader shows):
    a mistake caught only by some seeds' inputs, or named only on some, is a flaky hidden test."""
    import inspect
    import textwrap

    expected = json.loads(path.with_suffix(".expected.json").read_text())
    failures = []
    for ex in load_exercises(ROOT / "tests" / "hidden", "ch" + path.name[2:4]):
        want = expected.get(ex.id)
        if want is None or want["status"] != "failed":
            continue
        ns = _namespace(path, ex.needs)
        cg = {"np": np, "__name__": "course_call"}
        exec(textwrap.dedent(inspect.getsource(ex.call)), cg)
        call = cg[ex.call.__name__]
        for seed in range(SEEDS):
            msg = None
            for inp in make_cases(ex, seed):
                try:
                    got = call(ns, {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inp.items()})
                    got = {k: (np.asarray(v) if not isinstance(v, (str, bool, int, float, type(None))) else v)
                           for k, v in got.items()}
                    msg = compare_outputs(ex, inp, got, ex.expected(inp))
                except Exception as e:  # an error or invalid output is not the status "failed"
                    msg = f"raised {type(e).__name__}: {e}"
                    failures.append(f"{ex.id} seed {seed}: {msg[:300]}")
                    break
                if msg is not None:
                    if want.get("message_contains", "") not in msg:
                        failures.append(f"{ex.id} seed {seed}: the first failing case says {msg[:300]!r}, "
                                        f"not {want['message_contains']!r}")
                    break
            if msg is None:
                failures.append(f"{ex.id} seed {seed}: the wrong answer passes every case")
    assert not failures, "\n".join(failures[:10])
