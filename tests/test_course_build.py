"""course build / course check: stripping solutions, determinism, staleness, error messages."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course.build import EDITED_ADVICE, build, build_text, check, strip_source, student_version
from course.notebook import NotebookError

FIXTURES = Path(__file__).parent / "fixtures"
SOLUTION = FIXTURES / "solutions" / "99_fixture.ipynb"


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    sol, ch = tmp_path / "solutions", tmp_path / "chapters"
    sol.mkdir()
    shutil.copy(SOLUTION, sol / SOLUTION.name)
    return sol, ch


def test_strip_region_keeps_indentation_and_id() -> None:
    src = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    y = x\n    return y\n    ### END SOLUTION\n"
    out = strip_source(src, "ch01.f", "nb: cell 1")
    assert out == ("def f(x):\n    '''doc'''\n    raise NotImplementedError(\"ch01.f: replace this "
                   "line with your solution\")\n")


def test_one_line_solution_becomes_none() -> None:
    src = 'ANSWER: str = "reverse"  ### SOLUTION\nOTHER = 3'
    assert strip_source(src, "ch01.a", "w") == "ANSWER: str = None\nOTHER = 3"


@pytest.mark.parametrize("src, words", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without a '### BEGIN SOLUTION'"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
    ("def f():\n    ### BEGIN SOLUTION\n    pass\n### END SOLUTION\n", "not indented like"),
    ("x[0] = 1  ### SOLUTION\n", "must read"),
])
def test_unbalanced_markers_name_notebook_and_cell(src: str, words: str) -> None:
    with pytest.raises(NotebookError) as e:
        strip_source(src, "ch01.f", "solutions/01_x.ipynb: cell 4 (ch01.f)")
    assert "solutions/01_x.ipynb: cell 4 (ch01.f)" in str(e.value) and words in str(e.value)


def _nb(*cells: dict) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _ex(ex_id: str | None, src: str = "x = 1  ### SOLUTION") -> dict:
    meta = {"tags": ["exercise"]}
    if ex_id:
        meta["course"] = {"exercise": ex_id, "points": 1}
    return {"cell_type": "code", "id": "a", "metadata": meta, "outputs": [], "execution_count": 3,
            "source": src}


def test_exercise_without_id_and_duplicate_id_are_errors() -> None:
    with pytest.raises(NotebookError, match=r"nb\.ipynb: cell 2: tagged 'exercise' but has no"):
        student_version(_nb(_ex("ch01.a"), _ex(None)), "nb.ipynb")
    with pytest.raises(NotebookError, match=r"nb\.ipynb: cell 2 \(ch01\.a\): duplicate exercise "
                       r"id 'ch01\.a' \(also cell 1\)"):
        student_version(_nb(_ex("ch01.a"), _ex("ch01.a")), "nb.ipynb")


def test_student_version_clears_outputs_keeps_the_rest() -> None:
    sol = json.loads(SOLUTION.read_text())
    stu = student_version(sol, "x")
    assert [c["id"] for c in stu["cells"]] == [c["id"] for c in sol["cells"]]
    assert [c["metadata"] for c in stu["cells"]] == [c["metadata"] for c in sol["cells"]]
    assert stu["metadata"] == sol["metadata"]
    code = [c for c in stu["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    text = "".join(c["source"] for c in code)
    assert "BEGIN SOLUTION" not in text and "### SOLUTION" not in text
    assert text.count("raise NotImplementedError(") == 3 and "ANSWER_CHEAPER = None" in text
    md = [c["source"] for c in stu["cells"] if c["cell_type"] == "markdown"]
    assert md == [c["source"] for c in sol["cells"] if c["cell_type"] == "markdown"]


def test_build_then_check_round_trip_is_byte_identical(dirs: tuple[Path, Path]) -> None:
    sol, ch = dirs
    assert check(sol, ch) == [f"{ch / SOLUTION.name}: missing (run `course build`)",
                              f"{ch / 'index.ipynb'}: missing (run `course build`)"]
    assert build(sol, ch) == [f"wrote {ch / SOLUTION.name}", f"wrote {ch / 'index.ipynb'}",
                              f"wrote {ch / '.built.json'}"]
    first = (ch / SOLUTION.name).read_bytes()
    assert first.endswith(b"}\n")
    assert check(sol, ch) == []
    assert build(sol, ch) == []            # nothing to rewrite
    (ch / SOLUTION.name).unlink()
    assert build(sol, ch) == [f"wrote {ch / SOLUTION.name}"]   # the record is the same
    assert (ch / SOLUTION.name).read_bytes() == first


def test_check_reports_stale_and_extra_and_never_writes(dirs: tuple[Path, Path]) -> None:
    sol, ch = dirs
    build(sol, ch)
    target = ch / SOLUTION.name
    nb = json.loads((sol / SOLUTION.name).read_text())       # a maintainer edits the solution
    nb["cells"][2]["source"] = "x = np.linspace(-2, 2, 7)\nprint(x)"
    (sol / SOLUTION.name).write_text(json.dumps(nb))
    (ch / "98_extra.ipynb").write_text("{}")                  # an edited (unrecorded) notebook
    before = {p: p.read_bytes() for p in ch.iterdir()}
    problems = check(sol, ch)
    assert problems == [f"{ch / '98_extra.ipynb'}: {EDITED_ADVICE}",
                        f"{target}: out of date with solutions/ (maintainers: run `course build`)"]
    assert {p: p.read_bytes() for p in ch.iterdir()} == before
    build(sol, ch, save_edits=True)
    assert check(sol, ch) == [] and not (ch / "98_extra.ipynb").exists()
    assert len(list(ch.glob("98_extra.mine-*.ipynb"))) == 1


def test_cli_check_exit_codes(dirs: tuple[Path, Path]) -> None:
    sol, ch = dirs
    cmd = [sys.executable, "-m", "course", "check", "--solutions", str(sol), "--chapters", str(ch)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 1 and "99_fixture.ipynb: missing" in r.stdout
    b = subprocess.run([*cmd[:3], "build", *cmd[4:]], capture_output=True, text=True)
    assert b.returncode == 0, b.stderr
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.count("\n") == 1 and "OK" in r.stdout


def test_cli_build_error_names_notebook_and_cell(dirs: tuple[Path, Path]) -> None:
    sol, ch = dirs
    nb = json.loads((sol / SOLUTION.name).read_text())
    nb["cells"][4]["source"] = nb["cells"][4]["source"].replace("    ### END SOLUTION", "")
    (sol / SOLUTION.name).write_text(json.dumps(nb))
    r = subprocess.run([sys.executable, "-m", "course", "build", "--solutions", str(sol),
                        "--chapters", str(ch)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "99_fixture.ipynb: cell 5 (ch99.mean_squared_error): '### BEGIN SOLUTION' on line 3 " \
           "is never closed" in r.stderr
    assert not ch.exists()


def test_committed_fixture_chapter_is_up_to_date() -> None:
    assert (FIXTURES / "chapters" / SOLUTION.name).read_text() == build_text(SOLUTION)


def test_committed_fixture_files_are_what_the_generator_writes() -> None:
    path = FIXTURES / "make_fixtures.py"  # exec'd from source: no __pycache__ in fixtures/
    ns: dict = {"__name__": "make_fixtures", "__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    stale = [str(rel) for rel, text in ns["files"]().items()
             if not (FIXTURES / rel).is_file() or (FIXTURES / rel).read_text() != text]
    assert stale == [], "run: python tests/fixtures/make_fixtures.py"


def test_the_student_version_drops_the_saved_widget_state() -> None:
    sol = json.loads(SOLUTION.read_text())
    sol["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": 1}}}
    assert "widgets" not in student_version(sol, "x")["metadata"]
    assert "widgets" in sol["metadata"]                  # the solution itself is not changed
