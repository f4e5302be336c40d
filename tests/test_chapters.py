"""The real chapters against the grading contract of COURSE.md.

Grading every solution notebook scores full marks; grading every (generated) chapter notebook
scores zero with every exercise not_attempted; the deliberately wrong submissions in
tests/fixtures/chNN_wrong.ipynb get the statuses (and named mistakes) their expected.json says.
Also: every chapter follows the skeleton, its exercise metadata agrees with its hidden tests,
and every exercise is followed by its visible check.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from course.build import check as chapters_out_of_date
from course.grade import grade_paths, load_exercises
from course.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
WRONG = sorted((ROOT / "tests" / "fixtures").glob("ch[0-9][0-9]_wrong.ipynb"))
HIDDEN = ROOT / "tests" / "hidden"
SECTIONS = ["## 1. The question", "## 2. The short answer", "## 3. Derivation", "## 4. From scratch",
            "## 5. Experiment", "## 6. Exercises", "## 7. Takeaways and further reading"]


def chapter_id(path: Path) -> str:
    return "ch" + path.name[:2]


@pytest.fixture(scope="module")
def graded() -> dict[str, dict]:
    """Grade every solution, chapter and wrong fixture once (in parallel), keyed by path."""
    results, bad, _ = grade_paths([*SOLUTIONS, *CHAPTERS, *WRONG], HIDDEN, jobs=2, limits=Limits())
    assert not bad, [f"{b.path}: {b.reason}" for b in bad]
    return {str(Path(r.notebook).resolve()): r.to_json() for r in results}


def test_there_are_chapters_and_each_has_hidden_tests():
    assert SOLUTIONS, "no solution notebooks"
    assert [p.name for p in CHAPTERS] == [p.name for p in SOLUTIONS]
    for path in SOLUTIONS:
        assert (HIDDEN / f"{chapter_id(path)}.py").exists(), f"{path.name} has no hidden tests"
        assert (ROOT / "tests" / "fixtures" / f"{chapter_id(path)}_wrong.ipynb").exists(), f"{path.name} has no wrong fixture"


def test_student_notebooks_are_generated_from_the_solutions():
    assert chapters_out_of_date(ROOT / "solutions", ROOT / "chapters") == []


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_scores_full_marks(graded, path):
    report = graded[str(path.resolve())]
    assert report["max_score"] > 0
    failures = [(e["id"], e["status"], e["message"]) for e in report["exercises"] if e["status"] != "passed"]
    assert not failures
    assert report["score"] == report["max_score"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_student_version_scores_zero_not_attempted(graded, path):
    report = graded[str(path.resolve())]
    assert report["score"] == 0
    assert {e["status"] for e in report["exercises"]} == {"not_attempted"}


@pytest.mark.parametrize("path", WRONG, ids=lambda p: p.name)
def test_wrong_submission_gets_the_statuses_it_deserves(graded, path):
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    report = graded[str(path.resolve())]
    got = {e["id"]: e for e in report["exercises"]}
    assert set(expected) <= set(got)
    for ex_id, want in expected.items():
        assert got[ex_id]["status"] == want["status"], (ex_id, got[ex_id]["message"])
        if "message_contains" in want:
            assert want["message_contains"] in got[ex_id]["message"], (ex_id, got[ex_id]["message"])
        if want["status"] != "passed":
            assert got[ex_id]["points"] == 0


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]

@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_is_committed_executed_in_order(path):
    """nbval compares the committed outputs, and the book shows them: a solution saved without
    its outputs would pass the one and empty the other."""
    counts = [c.get("execution_count") for c in _cells(path) if c["cell_type"] == "code"
              and "".join(c["source"]).strip()]
    assert None not in counts, f"{path.name}: {counts.count(None)} code cells were never run; " \
                               "execute the notebook from a clean kernel and commit it"
    assert counts == list(range(1, len(counts) + 1)), \
        f"{path.name}: cells were not run once each, top to bottom, from a fresh kernel: {counts}"



@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_chapter_follows_the_skeleton(path):
    markdown = [("".join(c["source"]) if isinstance(c["source"], list) else c["source"])
                for c in _cells(path) if c["cell_type"] == "markdown"]
    assert re.match(rf"# {path.name[:2]} · ", markdown[0]), "the first cell is the title '# NN · ...'"
    headings = [line for text in markdown for line in text.splitlines() if line.startswith("## ")]
    positions = []
    for section in SECTIONS:
        found = [i for i, h in enumerate(headings) if h.startswith(section)]
        assert found, f"{path.name} lacks the section '{section}'"
        positions.append(found[0])
    assert positions == sorted(positions), f"{path.name}: sections out of order"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_exercises_agree_with_hidden_tests_and_have_checks(path):
    cells = _cells(path)
    declared: dict[str, float] = {}
    for i, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("course", {})
        if "exercise" in meta:
            declared[meta["exercise"]] = meta["points"]
            following = cells[i + 1]["metadata"].get("course", {}) if i + 1 < len(cells) else {}
            assert following.get("check") == meta["exercise"], f"{meta['exercise']} is not followed by its check cell"
    hidden = {ex.id: ex.points for ex in load_exercises(HIDDEN, chapter_id(path))}
    assert declared == hidden
    assert len(hidden) >= 3, f"{path.name} has fewer than three exercises"
