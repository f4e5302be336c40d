"""course grade: full marks, zero marks, and every hostile or clumsy submission in tests/fixtures.

The fixture submissions are graded once (module fixture, short timeout) and each test looks at
one of them: its own status, full marks for the other exercises, and no file changed.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

import course.sandbox as sb
from course.grade import grade_paths
from course.sandbox import Limits
from sandbox_helpers import leftover_sandbox_processes

FIXTURES = Path(__file__).parent / "fixtures"
HIDDEN = FIXTURES / "hidden"
REPO = Path(__file__).resolve().parent.parent
EXPECTED: dict[str, dict[str, str]] = json.loads((FIXTURES / "submissions" / "expected.json").read_text())
MAX = {"ch99.mean_squared_error": 2, "ch99.softmax": 3, "ch99.relu_grad": 1, "ch99.cheaper": 1}
TIMEOUT = 2.0
ROOT = os.geteuid() == 0
#: The isolation modes this machine offers (where they differ, every hostile fixture runs in each).
MODES = ([sb.MODE_NAMESPACES] if ROOT and sb.namespaces_available() else []) + (
    [sb.MODE_DROP_ALL if all(sb._world_accessible(p) for p in sb.interpreter_paths())
     else sb.MODE_READ_CAP] if ROOT else [sb.MODE_SAME_USER])


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file under a folder."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", params=MODES, ids=sb.MODE_NAMES.get)
def graded(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict:
    """Grade the solved chapter, the student chapter and every submission in one run, once per
    isolation mode."""
    folder = tmp_path_factory.mktemp("subs")
    shutil.copytree(FIXTURES / "submissions", folder / "submissions")
    shutil.copy(FIXTURES / "solutions" / "99_fixture.ipynb", folder / "solved.ipynb")
    shutil.copy(FIXTURES / "chapters" / "99_fixture.ipynb", folder / "student.ipynb")
    ck = folder / "submissions" / ".ipynb_checkpoints"
    ck.mkdir()
    (ck / "ignored-checkpoint.ipynb").write_text("not even JSON")
    before = snapshot(folder)
    repo_before = snapshot(REPO / "tests" / "fixtures") | snapshot(REPO / "course")
    start = time.monotonic()
    results, bad, mode = grade_paths([folder], HIDDEN, jobs=2, limits=Limits(timeout=TIMEOUT),
                                     mode=request.param)
    seconds = time.monotonic() - start
    return {"by_name": {Path(r.notebook).stem: r for r in results}, "bad": bad, "mode": mode,
            "seconds": seconds, "folder": folder, "before": before, "repo_before": repo_before,
            "after": snapshot(folder), "repo_after": snapshot(REPO / "tests" / "fixtures") | snapshot(REPO / "course")}


def statuses(result) -> dict[str, str]:
    return {e.id: e.status for e in result.exercises}


def test_solved_chapter_gets_full_marks(graded: dict) -> None:
    r = graded["by_name"]["solved"]
    assert statuses(r) == {i: "passed" for i in MAX}
    assert (r.score, r.max_score, r.chapter) == (7, 7, "ch99")
    assert [e.points for e in r.exercises] == list(MAX.values())


def test_student_chapter_gets_zero_not_attempted(graded: dict) -> None:
    r = graded["by_name"]["student"]
    assert statuses(r) == {i: "not_attempted" for i in MAX}
    assert r.score == 0 and r.max_score == 7


def test_checkpoints_are_skipped_and_nothing_is_bad(graded: dict) -> None:
    assert graded["bad"] == []
    assert set(graded["by_name"]) == {"solved", "student", *EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_submission_gets_exact_statuses(graded: dict, name: str) -> None:
    r = graded["by_name"][name]
    assert statuses(r) == EXPECTED[name], [e.message for e in r.exercises]
    for e in r.exercises:
        assert e.max_points == MAX[e.id]
        assert e.points == (MAX[e.id] if e.status == "passed" else 0)
        assert e.message
    assert r.score == sum(MAX[i] for i, s in EXPECTED[name].items() if s == "passed")


@pytest.mark.parametrize("name, exercise, words", [
    ("loop_forever", "ch99.mean_squared_error", f"did not finish within {TIMEOUT:g} s"),
    ("ignore_signals", "ch99.softmax", "did not finish within"),
    ("sys_exit", "ch99.relu_grad", "SystemExit: 0 (in relu_grad, line 4 of cell 9: `sys.exit(0)`)"),
    ("os_exit", "ch99.relu_grad", "exited (code 0) before returning a result"),
    ("kill_self", "ch99.mean_squared_error", "stopped by SIGKILL"),
    ("allocate_50gb", "ch99.softmax", "ran out of memory"),
    ("fork_bomb", "ch99.relu_grad", "BlockingIOError"),
    ("raises", "ch99.relu_grad", "NameError: name 'undefined_name' is not defined (in relu_grad"),
    ("sum_not_mean", "ch99.mean_squared_error",
     "off by a factor of 8, the batch size: a sum where a mean was asked"),
    ("eq_always_true", "ch99.relu_grad", "returned an object of type Anything"),
    ("huge_array", "ch99.softmax", "MiB of data"),
    ("wrong_type", "ch99.relu_grad", "returned an object of type dict"),
    ("missing_cell", "ch99.softmax", "exercise cell of ch99.softmax is not in the notebook"),
    ("renamed_function", "ch99.relu_grad", "`relu_grad` is not defined in your notebook"),
    ("syntax_error", "ch99.mean_squared_error", "cell 5 has a syntax error at line 4"),
    ("unanswered", "ch99.cheaper", "`ANSWER_CHEAPER` is still None"),
    ("monkeypatch", "ch99.softmax", "wrong values"),
    ("fake_report", "ch99.relu_grad", "wrong values"),
])
def test_messages_say_what_happened(graded: dict, name: str, exercise: str, words: str) -> None:
    msg = {e.id: e.message for e in graded["by_name"][name].exercises}[exercise]
    assert words in msg


def test_no_submission_and_no_repository_file_changed(graded: dict) -> None:
    assert graded["after"] == graded["before"]
    assert graded["repo_after"] == graded["repo_before"]


@pytest.mark.skipif(not ROOT, reason="uid isolation needs root")
def test_no_sandbox_process_survives(graded: dict) -> None:
    assert "separate uid" in graded["mode"]
    assert leftover_sandbox_processes() == []


def test_top_level_loops_are_not_run(graded: dict) -> None:
    # training_loop has `while True: pass`, `time.sleep(100)` and a 10**12-step loop at top level
    assert statuses(graded["by_name"]["training_loop"]) == {i: "passed" for i in MAX}
    assert graded["seconds"] < 60


def test_same_content_same_seed(graded: dict, tmp_path: Path) -> None:
    r1 = graded["by_name"]["solved"]
    copy = tmp_path / "renamed.ipynb"
    shutil.copy(FIXTURES / "solutions" / "99_fixture.ipynb", copy)
    (r2,), _, _ = grade_paths([copy], HIDDEN, jobs=2)
    assert r2.seed == r1.seed and statuses(r2) == statuses(r1)
    (r3,), _, _ = grade_paths([copy], HIDDEN, jobs=2, seed=12345)
    assert r3.seed == 12345 and r3.score == 7


@pytest.mark.skipif(not ROOT, reason="the sandbox can only be kept out of files when root")
def test_writing_and_deleting_files_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "canary.txt").write_text("still here")
    nb = json.loads((FIXTURES / "solutions" / "99_fixture.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("course", {}).get("exercise") == "ch99.relu_grad")
    cell["source"] = (
        "def relu_grad(x):\n"
        "    import os, pathlib, nnlib\n"
        "    repo = pathlib.Path(nnlib.__file__).resolve().parent.parent\n"
        f"    targets = [repo / 'HACKED.txt', repo / 'course' / 'HACKED.py', pathlib.Path({str(folder)!r}) / 'HACKED.txt']\n"
        "    for t in targets:\n"
        "        try:\n"
        "            t.write_text('owned')\n"
        "        except OSError:\n"
        "            pass\n"
        f"    for victim in [pathlib.Path({str(folder)!r}) / 'canary.txt', pathlib.Path({str(folder)!r}) / 'submission.ipynb']:\n"
        "        try:\n"
        "            victim.unlink()\n"
        "        except OSError:\n"
        "            pass\n"
        "    open('scratch.txt', 'w').write('my own temporary folder is writable')\n"
        "    return (x > 0).astype(float)\n")
    (folder / "submission.ipynb").write_text(json.dumps(nb))
    before, repo_before = snapshot(folder), snapshot(REPO / "course")
    (r,), bad, _ = grade_paths([folder / "submission.ipynb"], HIDDEN, jobs=2)
    assert bad == [] and statuses(r) == {i: "passed" for i in MAX}
    assert snapshot(folder) == before and snapshot(REPO / "course") == repo_before
    assert not (REPO / "HACKED.txt").exists()


def test_a_list_of_arrays_reaches_the_call_as_a_list_of_arrays(tmp_path: Path) -> None:
    """One weight matrix per layer, as a hidden test would send it."""
    import numpy as np

    from course.grade import encode_cases
    from course.sandbox import Sandbox

    specs, arrays = encode_cases([{"Ws": [np.eye(2), np.ones((2, 3))], "n": 2}])
    assert specs == [{"Ws": {"npz_list": ["c0.0", "c0.1"]}, "n": {"json": 2}}]
    call = ("def call(ns, inp):\n    import numpy as np\n"
            "    return {'shapes': np.array([w.shape for w in inp['Ws']]), 'n': len(inp['Ws'])}\n")
    with Sandbox(1, Limits(timeout=10)) as sandbox:
        run = sandbox.run({"code": [], "needs": [], "cases": specs, "call_source": call,
                           "call_name": "call"}, arrays)
    assert run.outcome == "ok", run.detail
    assert run.result["cases"][0]["outputs"]["n"] == {"json": 2}
    (shapes,) = run.arrays.values()
    assert shapes.tolist() == [[2, 2], [2, 3]]


def test_the_first_case_that_goes_wrong_is_reported_even_if_a_later_one_raises(tmp_path: Path) -> None:
    """A named mistake on case 1 is not hidden by an exception on case 2."""
    from sandbox_helpers import submission

    nb = submission(tmp_path / "s.ipynb", mean_squared_error=(
        "def mean_squared_error(pred, target):\n"
        "    if pred.shape[0] == 1:\n        raise ValueError('one row')\n"
        "    return ((pred - target) ** 2).mean()\n"))
    (r,), _, _ = grade_paths([nb], HIDDEN, jobs=1)
    e = next(e for e in r.exercises if e.id == "ch99.mean_squared_error")
    assert e.status == "failed" and e.message.startswith("case 1 of 3"), e.message
    assert "the mean over every entry instead of the sum over features" in e.message
