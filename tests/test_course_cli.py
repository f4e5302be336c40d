"""The `course grade` and `course merge` command lines: exit codes, JSON schema, CSV, --tests."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
HIDDEN = FIXTURES / "hidden"
SOLVED = FIXTURES / "solutions" / "99_fixture.ipynb"
STUDENT = FIXTURES / "chapters" / "99_fixture.ipynb"
STATUSES = {"passed", "failed", "not_attempted", "missing", "syntax_error", "error", "timeout",
            "memory", "crashed", "invalid_output"}


def course(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "course", *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def check_schema(report: object) -> None:
    assert isinstance(report, list)
    for nb in report:
        if nb.get("problem"):   # a path that could not be graded: its reason, no score
            assert nb["score"] is None and nb["exercises"] == [] and isinstance(nb["problem"], str)
            continue
        assert {"notebook", "chapter", "score", "max_score", "seed", "exercises", "student",
                "flags"} <= nb.keys()
        assert nb["score"] == sum(e["points"] for e in nb["exercises"])
        assert nb["max_score"] == sum(e["max_points"] for e in nb["exercises"])
        for e in nb["exercises"]:
            assert set(e) == {"id", "points", "max_points", "status", "message"}
            assert e["status"] in STATUSES and isinstance(e["message"], str)


def test_exit_0_json_to_stdout_and_table_to_stderr() -> None:
    r = course("grade", "-v", str(SOLVED), str(STUDENT), "--tests", str(HIDDEN), "--json", "-")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    check_schema(report)
    assert [(nb["score"], nb["max_score"]) for nb in report] == [(7, 7), (0, 7)]
    assert "score 7/7" in r.stderr and "sandbox: " in r.stderr


def test_exit_2_names_each_bad_path_and_grades_the_rest(tmp_path: Path) -> None:
    out_csv, out_json = tmp_path / "grades.csv", tmp_path / "grades.json"
    r = course("grade", str(SOLVED), str(FIXTURES / "bad"), str(tmp_path / "nope.ipynb"),
               str(FIXTURES / "submissions" / "fake_report.ipynb"), "--tests", str(HIDDEN),
               "--csv", str(out_csv), "--json", str(out_json))
    assert r.returncode == 2
    reasons = [ln for ln in r.stderr.splitlines() if ln.startswith("course grade: ")]
    assert len(reasons) == 4
    assert any("not_json.ipynb: not valid JSON" in ln for ln in reasons)
    assert any("not_a_notebook.ipynb: JSON but not a Jupyter notebook" in ln for ln in reasons)
    assert any("unknown_chapter.ipynb: unknown chapter ch98" in ln for ln in reasons)
    assert any("nope.ipynb: no such file or folder" in ln for ln in reasons)
    assert "score 7/7" in r.stdout and "score 6/7" in r.stdout   # the fake report printed nothing
    report = json.loads(out_json.read_text())
    check_schema(report)
    assert len(report) == 6 and len([nb for nb in report if nb.get("problem")]) == 4
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert len(rows) == 6                      # one per submission, graded or not
    graded = sorted((row for row in rows if not row["problem"]), key=lambda row: row["score"])
    assert [(row["score"], row["ch99.softmax"], row["ch99.relu_grad"]) for row in graded] == \
        [("6", "3", "0"), ("7", "3", "1")]
    assert sum(1 for row in rows if row["problem"]) == 4


def test_tests_dir_swaps_the_hidden_tests(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    src = (HIDDEN / "ch99.py").read_text()
    src = src.replace('Exercise(id="ch99.relu_grad", points=1,', 'Exercise(id="ch99.relu_grad", points=10,')
    (private / "ch99.py").write_text(src + "\nEXERCISES = [e for e in EXERCISES if e.id == 'ch99.relu_grad']\n")
    r = course("grade", str(SOLVED), "--tests", str(private), "--json", "-", "--seed", "7")
    assert r.returncode == 0, r.stderr
    (nb,) = json.loads(r.stdout)
    assert (nb["score"], nb["max_score"], nb["seed"]) == (10, 10, 7)
    assert [e["id"] for e in nb["exercises"]] == ["ch99.relu_grad"]
    assert not (private / "__pycache__").exists()
    r = course("grade", str(SOLVED), "--tests", str(tmp_path / "absent"))
    assert r.returncode == 2 and "no such folder of hidden tests" in r.stderr


def test_merge_joins_per_submission_reports(tmp_path: Path) -> None:
    for name, path in (("a", SOLVED), ("b", STUDENT)):
        r = course("grade", str(path), "--tests", str(HIDDEN), "--json", str(tmp_path / f"{name}.json"))
        assert r.returncode == 0, r.stderr
    r = course("merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--csv", "-")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert {Path(row["notebook"]).parent.name: row["score"] for row in rows} == {"solutions": "7", "chapters": "0"}
    (tmp_path / "junk.json").write_text('{"x": 1}')
    r = course("merge", str(tmp_path / "junk.json"))
    assert r.returncode == 2 and "not a report" in r.stderr
