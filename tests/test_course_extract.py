"""What the grader runs for an exercise: only the statements the exercise's names depend on."""
from __future__ import annotations

import ast
import json
from pathlib import Path

from course.extract import extract
from course.grade import grade_paths
from course.sandbox import Limits

FIXTURES = Path(__file__).parent / "fixtures"


def _code_cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}


def _kept_sources(nb: dict, needs: list[str]) -> list[str]:
    ex = extract(nb)
    keep = ex.needed_statements(needs)
    return [ast.unparse(ex.trees[i].body[k]) for i in sorted(keep) for k in keep[i]]


def test_needed_statements_follow_references_transitively_and_skip_the_rest():
    nb = {"cells": [
        _code_cell("import numpy as np\nimport matplotlib.pyplot as plt\nfrom math import *"),
        _code_cell("SCALE = 2.0\nUNUSED = 3\ndef helper(x):\n    return np.tanh(x) * SCALE"),
        _code_cell("def show(x):\n    plt.plot(x)\nfor i in range(10**9):\n    pass"),
        _code_cell("def answer(x: np.ndarray) -> np.ndarray:\n    return helper(x) + 1"),
    ]}
    kept = _kept_sources(nb, ["answer"])
    assert kept == ["import numpy as np", "from math import *", "SCALE = 2.0",
                    "def helper(x):\n    return np.tanh(x) * SCALE",
                    "def answer(x: np.ndarray) -> np.ndarray:\n    return helper(x) + 1"]


def test_an_import_that_only_a_plotting_helper_uses_cannot_hurt_an_exercise(tmp_path):
    """A broken import used only by code no exercise needs costs nothing: full marks."""
    nb = json.loads((FIXTURES / "solutions" / "99_fixture.ipynb").read_text())
    nb["cells"].insert(1, _code_cell("import this_module_does_not_exist as plotting\n\n"
                                     "def show(values):\n    plotting.draw(values)\n"))
    path = tmp_path / "99_fixture.ipynb"
    path.write_text(json.dumps(nb))
    results, bad, _ = grade_paths([path], FIXTURES / "hidden", jobs=2, limits=Limits(timeout=10))
    assert not bad
    assert results[0].score == results[0].max_score, [(e.id, e.status, e.message) for e in results[0].exercises]


def test_a_learners_helpers_are_kept_whatever_their_right_hand_side():
    """lsm = lambda ..., EPS = np.finfo(...).eps, EYE = np.eye(3): kept when an exercise uses them;
    a top-level W = train() that only a function's local W shadows is not."""
    nb = {"cells": [
        _code_cell("import numpy as np\ndef logsumexp(a):\n    return np.log(np.exp(a).sum())"),
        _code_cell("W = train_for_an_hour()\nlsm = lambda a: a - logsumexp(a)\n"
                   "EPS = np.finfo(float).eps\nEYE = np.eye(3)\nEYE[0, 0] = 2.0"),
        _code_cell("def answer(a):\n    W = EYE * EPS\n    return lsm(a) + W.sum()"),
    ]}
    kept = _kept_sources(nb, ["answer"])
    assert kept == ["import numpy as np", "def logsumexp(a):\n    return np.log(np.exp(a).sum())",
                    "lsm = lambda a: a - logsumexp(a)", "EPS = np.finfo(float).eps", "EYE = np.eye(3)",
                    "EYE[0, 0] = 2.0", "def answer(a):\n    W = EYE * EPS\n    return lsm(a) + W.sum()"]


def test_a_helper_bound_only_inside_a_block_gets_a_message_that_says_so(tmp_path):
    nb = json.loads((FIXTURES / "solutions" / "99_fixture.ipynb").read_text())
    cells = nb["cells"]
    ex = next(i for i, c in enumerate(cells) if c.get("metadata", {}).get("course", {}).get("exercise"))
    src = "".join(cells[ex]["source"])
    name = src.split("def ", 1)[1].split("(", 1)[0]
    cells[ex]["source"] = f"for _ in range(1):\n    def {name}(*args, **kwargs):\n        return 0\n"
    path = tmp_path / "99_fixture.ipynb"
    path.write_text(json.dumps(nb))
    (r,), bad, _ = grade_paths([path], FIXTURES / "hidden", jobs=2)
    e = next(e for e in r.exercises if e.status == "missing")
    assert f"`{name}` is defined inside a `for` block" in e.message and "top level" in e.message
