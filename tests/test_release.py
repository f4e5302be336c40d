"""course release: the course as students receive it: no answers in it, and it runs on its own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from course.release import ReleaseError, answers_in, make_release

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("rel") / "course-release"
    make_release(ROOT, dest)
    return dest


def run(release: Path, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    """A command run with the release's own course and nnlib (not this repository's)."""
    env = dict(os.environ, PYTHONPATH=str(release))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=release,
                          env=env, timeout=600, stdin=subprocess.DEVNULL, **kw)


def test_the_release_holds_no_answers(release: Path) -> None:
    names = {p.relative_to(release).parts[0] for p in release.iterdir()}
    assert names == {".gitignore", "LICENSE", "README.md", "RELEASE.json", "chapters", "course",
                     "docs", "environment.yml", "nnlib", "pyproject.toml", "start.py"}
    assert answers_in(release) == []
    assert not any(p.name in ("solutions", "tests", "hidden") for p in release.rglob("*"))
    record = json.loads((release / "chapters" / ".built.json").read_text())
    solutions = sorted(p.name for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(record) == sorted(solutions + ["index.ipynb"])
    assert all("NotImplementedError" in stub or stub.rstrip().endswith("= None")
               for entry in record.values() for stub in entry["stubs"].values())
    readme = (release / "README.md").read_text()
    assert all(f"chapters/{name}" in readme for name in solutions) and "solutions" not in readme


def test_answers_in_finds_what_must_never_ship(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "x.py").write_text("EXERCISES = []\n")
    nb = {"cells": [{"cell_type": "code", "source": "def f():\n    ### BEGIN SOLUTION\n    return 1\n"}]}
    (tmp_path / "01_x.ipynb").write_text(json.dumps(nb))
    leaks = answers_in(tmp_path)
    assert any("tests" in s for s in leaks) and any("x.py" in s for s in leaks)
    assert any("01_x.ipynb: holds a solution region" in s for s in leaks)


def test_release_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ReleaseError, match="not empty"):
        make_release(ROOT, tmp_path)


def test_the_release_runs_its_own_course_tool(release: Path) -> None:
    r = run(release, "-c", "import course, nnlib; print(course.__file__); print(nnlib.__file__)")
    assert all(line.startswith(str(release)) for line in r.stdout.split()), r.stdout
    nb = release / "chapters" / "00_chain_rule.ipynb"
    r = run(release, "-m", "course", "grade", str(nb))
    assert r.returncode == 2 and "no hidden tests" in r.stderr
    r = run(release, "-m", "course", "grade", str(nb), "--tests", str(ROOT / "tests" / "hidden"),
            "--json", "-")
    (report,) = json.loads(r.stdout)
    assert report["score"] == 0 and {e["status"] for e in report["exercises"]} == {"not_attempted"}
    copy = release / "chapters" / "mine.ipynb"
    copy.write_bytes(nb.read_bytes())
    r = run(release, "-m", "course", "reset", str(copy), "ch00.backward_by_hand")
    assert r.returncode == 0, r.stderr
    for p in release.glob("chapters/mine*"):
        p.unlink()


def test_a_chapter_of_the_release_executes(release: Path) -> None:
    r = run(release, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
            "chapters/00_chain_rule.ipynb", "--nbval-cell-timeout", "300")
    assert r.returncode == 0, r.stdout[-3000:]


def test_the_release_builds_as_a_package(release: Path, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                        "-w", str(tmp_path), str(release)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "nnlib/datasets/digits.csv.gz" in names and "course/_harness.py" in names
    assert not any(n.startswith(("tests/", "solutions/")) for n in names)
