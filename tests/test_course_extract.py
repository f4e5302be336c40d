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
