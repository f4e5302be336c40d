"""A learner's work is never lost and the first hour is guided: build refuses to overwrite edits,
reset puts one exercise back, the start page, the total over chapters, JupyterLab's address."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from course.build import EDITED_ADVICE, EditsWouldBeLost, MANIFEST, build, check
from course.reset import reset_exercise
from sandbox_helpers import FIXTURES, SOLVED

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    sol, ch = tmp_path / "solutions", tmp_path / "chapters"
    sol.mkdir()
    shutil.copy(SOLVED, sol / SOLVED.name)
    build(sol, ch)
    return sol, ch


def _answer(ch: Path) -> Path:
    """The learner answers an exercise in chapters/ and saves."""
    target = ch / SOLVED.name
    nb = json.loads(target.read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("course", {}).get("exercise") == "ch99.relu_grad")
    cell["source"] = "def relu_grad(x):\n    return (x > 0) * 1.0   # my answer\n"
    target.write_text(json.dumps(nb, indent=1))
    return target


def test_build_never_overwrites_a_learners_edits(built: tuple[Path, Path]) -> None:
    sol, ch = built
    target = _answer(ch)
    mine = target.read_bytes()
    # the solution changes (a maintainer's edit): the chapter is stale and edited
    nb = json.loads((sol / SOLVED.name).read_text())
    nb["cells"][0]["source"] = "# Chapter 99, revised\n"
    (sol / SOLVED.name).write_text(json.dumps(nb))
    with pytest.raises(EditsWouldBeLost) as e:
        build(sol, ch)
    assert e.value.paths == [target] and target.read_bytes() == mine
    problems = [p for p in check(sol, ch) if "index.ipynb" not in p]   # the start page changed too
    assert problems == [f"{target}: {EDITED_ADVICE}"]
    assert "run `course build`" not in problems[0]
    r = subprocess.run([sys.executable, "-m", "course", "build", "--solutions", str(sol), "--chapters", str(ch)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "nothing was written" in r.stderr and "--save-edits" in r.stderr
    assert target.read_bytes() == mine
    lines = build(sol, ch, save_edits=True)
    copies = sorted(ch.glob("99_fixture.mine-*.ipynb"))
    assert len(copies) == 1 and copies[0].read_bytes() == mine
    assert any("saved your copy" in ln for ln in lines) and b"revised" in target.read_bytes()
    assert check(sol, ch) == []


def test_a_chapter_untouched_by_the_learner_is_rebuilt_and_removed_as_before(built: tuple[Path, Path]) -> None:
    sol, ch = built
    nb = json.loads((sol / SOLVED.name).read_text())
    nb["cells"][0]["source"] = "# Chapter 99, revised\n"
    (sol / SOLVED.name).write_text(json.dumps(nb))
    assert check(sol, ch) == [f"{ch / name}: out of date with solutions/ (maintainers: run `course build`)"
                              for name in (SOLVED.name, "index.ipynb")]
    assert f"wrote {ch / SOLVED.name}" in build(sol, ch)
    (sol / SOLVED.name).unlink()
    shutil.copy(SOLVED, sol / "98_other.ipynb")
    lines = build(sol, ch)
    assert f"removed {ch / SOLVED.name} (no solutions/{SOLVED.name})" in lines


def test_the_test_command_says_edits_are_yours(built: tuple[Path, Path]) -> None:
    sol, ch = built
    _answer(ch)
    r = subprocess.run([sys.executable, "-m", "course", "check", "--solutions", str(sol), "--chapters", str(ch)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "they are yours" in r.stdout and "--save-edits" in r.stdout


def test_reset_puts_one_exercise_back_and_keeps_a_copy(built: tuple[Path, Path]) -> None:
    sol, ch = built
    target = _answer(ch)
    nb = json.loads(target.read_text())
    other = next(c for c in nb["cells"] if c["metadata"].get("course", {}).get("exercise") == "ch99.softmax")
    other["source"] = "def softmax(z):\n    return z  # my other answer\n"
    target.write_text(json.dumps(nb, indent=1))
    before = json.loads(target.read_text())
    _, keep = reset_exercise(target, "ch99.relu_grad")
    after = json.loads(target.read_text())
    assert keep.read_text() == "def relu_grad(x):\n    return (x > 0) * 1.0   # my answer\n"
    stub = json.loads((ch / MANIFEST).read_text())[SOLVED.name]["stubs"]["ch99.relu_grad"]
    assert "raise NotImplementedError" in stub
    src = lambda c: "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    for b, a in zip(before["cells"], after["cells"]):
        if b["metadata"].get("course", {}).get("exercise") == "ch99.relu_grad":
            assert src(a) == stub and a["outputs"] == []
        else:
            assert src(a) == src(b) and a["metadata"] == b["metadata"]   # untouched
    r = subprocess.run([sys.executable, "-m", "course", "reset", str(target), "ch99.nope"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no exercise cell 'ch99.nope'" in r.stderr and "ch99.relu_grad" in r.stderr


def test_the_start_page_lists_every_chapter_with_its_question_and_shows_scores() -> None:
    index = json.loads((ROOT / "chapters" / "index.ipynb").read_text())
    text = "".join(index["cells"][0]["source"])
    for sol in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")):
        meta = json.loads(sol.read_text())["metadata"]["course"]
        row = next(ln for ln in text.splitlines() if f"]({sol.name})" in ln)
        assert meta["question"] in row and meta["assumes"] in row and f"{meta['minutes']} min" in row
    code = "".join(index["cells"][-1]["source"])
    assert "show_progress()" in code


def _points(chapter: str) -> int:
    """A chapter's maximum, from its hidden tests (the sum of its exercises' points)."""
    from course.grade import load_exercises

    return sum(ex.points for ex in load_exercises(ROOT / "tests" / "hidden", chapter))


def test_show_progress_prints_each_chapter_and_the_total(tmp_path: Path, capsys) -> None:
    from course.progress import show_progress

    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("00_chain_rule.ipynb", "01_hidden_layer_error.ipynb"):
        shutil.copy(ROOT / ("solutions" if name.startswith("00") else "chapters") / name, folder / name)
    shutil.copy(ROOT / "chapters" / "index.ipynb", folder / "index.ipynb")
    show_progress(folder)
    out = capsys.readouterr().out.splitlines()
    p0, p1 = _points("ch00"), _points("ch01")
    assert re.match(rf"00_chain_rule.ipynb\s+{p0}/{p0}  all done", out[1]), out
    assert re.match(rf"01_hidden_layer_error.ipynb\s+0/{p1}  to do: hidden_delta, weight_grad", out[2]), out
    assert out[3] == f"total: {p0}/{p0 + p1} points over 2 chapters"


def test_grade_of_a_learners_chapters_prints_the_total_and_what_remains(tmp_path: Path) -> None:
    folder = tmp_path / "chapters"
    shutil.copytree(ROOT / "chapters", folder)
    shutil.copy(ROOT / "solutions" / "00_chain_rule.ipynb", folder)
    r = subprocess.run([sys.executable, "-m", "course", "grade", str(folder)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr          # the start page is not a submission
    n = len(list((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")))
    total = next(ln for ln in r.stdout.splitlines() if ln.startswith("total: "))
    assert total.startswith(f"total: {_points('ch00')}/") and total.endswith(f"points over {n} chapters")
    assert "00_chain_rule.ipynb:" not in r.stdout.split("to do:")[-1]
    assert "01_hidden_layer_error.ipynb: ch01.hidden_delta" in r.stdout
    assert "sandbox:" not in r.stdout + r.stderr          # instructors ask for it with -v
    assert not re.search(r"\bpassed\s+passed\b", r.stdout)
    r = subprocess.run([sys.executable, "-m", "course", "grade", "-v", str(folder / "00_chain_rule.ipynb")],
                       capture_output=True, text=True)
    assert "sandbox: " in r.stderr and "total:" not in r.stdout


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "jupyter").exists(), reason="needs the course's .venv")
def test_headless_lab_listens_on_localhost_and_prints_the_address_last(tmp_path: Path) -> None:
    port = 8987
    proc = subprocess.Popen([sys.executable, str(ROOT / "start.py"), "lab", "--headless", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True, env=dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path)))
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("Stop it with Ctrl-C"):
                break
        text = "\n".join(lines)
        url = next(ln.strip() for ln in lines if ln.strip().startswith("http://127.0.0.1:"))
        assert "/lab/tree/chapters/index.ipynb?token=" in url
        assert f"ssh -N -L {port}:localhost:{port} " in text
        assert lines.index("JupyterLab is ready. Open this address in your browser:") < len(lines) - 1
        with urllib.request.urlopen(url.replace("/lab/tree/chapters/index.ipynb", "/api/status"), timeout=10) as r:
            assert r.status == 200
        listening = Path("/proc/net/tcp").read_text()
        assert f"0100007F:{port:04X}" in listening and f"00000000:{port:04X}" not in listening
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
