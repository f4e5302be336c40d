"""A class's gradebook: one row per student and chapter, flags for duplicates and copies of a
shipped solution, bad paths in the JSON, and a feedback page per notebook outside the submissions."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox_helpers import FIXTURES, submission

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = FIXTURES / "hidden"


def course(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "course", *args], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("class")
    subs = root / "submitted"
    for who in ("alice", "bob", "carol", "dave"):
        (subs / who).mkdir(parents=True)
    submission(subs / "alice" / "99_fixture.ipynb")                        # solved
    shutil.copy(FIXTURES / "chapters" / "99_fixture.ipynb", subs / "bob" / "99_fixture.ipynb")
    submission(subs / "bob" / "99_fixture-v2.ipynb",                        # a second one
               relu_grad="def relu_grad(x):\n    return <script>alert(1)</script>\n")
    (subs / "bob" / "99_broken.ipynb").write_text("{ not json")
    submission(subs / "carol" / "99_fixture.ipynb", softmax="def softmax(z):\n    return z\n")
    shutil.copy(subs / "carol" / "99_fixture.ipynb", subs / "dave" / "99_fixture.ipynb")
    out = root / "out"
    r = course("grade", str(subs), "--tests", str(HIDDEN), "--csv", str(out / "grades.csv"),
               "--json", str(out / "grades.json"), "--feedback", str(out / "feedback"))
    return {"root": root, "subs": subs, "out": out, "r": r,
            "json": json.loads((out / "grades.json").read_text()),
            "rows": list(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))}


def test_one_row_per_student_and_notebook_with_every_exercise_and_its_maximum(klass: dict) -> None:
    assert klass["r"].returncode == 2            # one path could not be graded
    rows = klass["rows"]
    assert [(r["student"], Path(r["notebook"]).name) for r in rows] == [
        ("alice", "99_fixture.ipynb"), ("bob", "99_broken.ipynb"), ("bob", "99_fixture-v2.ipynb"),
        ("bob", "99_fixture.ipynb"), ("carol", "99_fixture.ipynb"), ("dave", "99_fixture.ipynb")]
    alice = rows[0]
    assert (alice["chapter"], alice["score"], alice["max_score"]) == ("ch99", "7", "7")
    assert (alice["ch99.softmax"], alice["ch99.softmax max"]) == ("3", "3")
    carol = rows[4]
    assert (carol["score"], carol["ch99.softmax"], carol["ch99.softmax max"]) == ("4", "0", "3")


def test_duplicates_and_copies_are_flagged_never_silently_scored(klass: dict) -> None:
    rows = {(r["student"], Path(r["notebook"]).name): r for r in klass["rows"]}
    for name in ("99_fixture.ipynb", "99_fixture-v2.ipynb"):
        assert "2 notebooks of ch99 from student bob" in rows[("bob", name)]["flags"]
    assert "identical to" in rows[("carol", "99_fixture.ipynb")]["flags"]
    assert "identical to" in rows[("dave", "99_fixture.ipynb")]["flags"]
    assert rows[("alice", "99_fixture.ipynb")]["flags"] == ""


def test_a_byte_copy_of_a_shipped_solution_is_flagged(tmp_path: Path) -> None:
    folder = tmp_path / "sub" / "eve"
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / "00_chain_rule.ipynb", folder)
    r = course("grade", str(tmp_path / "sub"), "--json", "-")
    (nb,) = json.loads(r.stdout)
    assert nb["student"] == "eve" and nb["score"] == nb["max_score"]
    assert nb["flags"] == ["a byte-for-byte copy of the shipped solutions/00_chain_rule.ipynb"]


def test_bad_paths_are_in_the_json_with_their_reason(klass: dict) -> None:
    bad = [e for e in klass["json"] if e.get("problem")]
    assert len(bad) == 1 and bad[0]["student"] == "bob" and bad[0]["score"] is None
    assert bad[0]["notebook"].endswith("99_broken.ipynb") and "not valid JSON" in bad[0]["problem"]
    assert Path(klass["rows"][1]["notebook"]).name == "99_broken.ipynb"
    assert "not valid JSON" in klass["rows"][1]["problem"]


def test_feedback_pages_go_to_the_named_folder_escaped(klass: dict) -> None:
    fb = klass["out"] / "feedback"
    pages = sorted(p.relative_to(fb).as_posix() for p in fb.rglob("*.html"))
    assert pages == ["alice/99_fixture.html", "bob/99_fixture-v2.html", "bob/99_fixture.html",
                     "carol/99_fixture.html", "dave/99_fixture.html"]
    text = (fb / "bob" / "99_fixture-v2.html").read_text()
    assert "<script>" not in text and "syntax error" in text and "2 notebooks of ch99" in text
    assert "Score: <strong>" in (fb / "alice" / "99_fixture.html").read_text()
    assert not list(klass["subs"].rglob("*.html"))          # nothing written into submissions


def test_feedback_is_refused_inside_a_graded_folder(klass: dict) -> None:
    r = course("grade", str(klass["subs"]), "--tests", str(HIDDEN), "--feedback",
               str(klass["subs"] / "alice" / "feedback"))
    assert r.returncode == 2 and "never written into the submissions" in r.stderr
    assert not (klass["subs"] / "alice" / "feedback").exists()


def test_merged_reports_keep_flags_and_find_duplicates_across_jobs(klass: dict, tmp_path: Path) -> None:
    reports = []
    for i, nb in enumerate(sorted((klass["subs"] / "bob").glob("99_fixture*.ipynb"))):
        folder = tmp_path / f"job{i}" / "bob"
        folder.mkdir(parents=True)
        shutil.copy(nb, folder)
        out = tmp_path / f"job{i}.json"
        course("grade", str(tmp_path / f"job{i}"), "--tests", str(HIDDEN), "--json", str(out))
        reports.append(str(out))
    r = course("merge", *reports, "--csv", "-")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 2 and all("2 notebooks of ch99 from student bob" in x["flags"] for x in rows)
