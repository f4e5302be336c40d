"""Helpers shared by the grader's tests: leftover sandbox processes, hostile submissions."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

from course.sandbox import UID_BASE, UID_LOCK_DIR, UID_RANGE

FIXTURES = Path(__file__).parent / "fixtures"
SOLVED = FIXTURES / "solutions" / "99_fixture.ipynb"


def leftover_sandbox_processes() -> list[int]:
    """Processes (zombies included) of sandbox uids that no running grader holds.

    A grader holds an flock on /tmp/.course-sandbox-uids/UID while it uses UID, so processes
    of a locked uid belong to another grader running right now (another test run, CI).
    """
    lockdir = Path(UID_LOCK_DIR)
    leftovers = []
    for name in os.listdir("/proc"):
        try:
            uid = os.stat(f"/proc/{name}").st_uid if name.isdigit() else -1
        except OSError:
            continue
        if not UID_BASE <= uid < UID_BASE + UID_RANGE:
            continue
        try:
            fd = os.open(lockdir / str(uid), os.O_RDONLY)
        except OSError:
            leftovers.append(int(name))
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            leftovers.append(int(name))      # nobody holds this uid: the process is a leftover
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
    return leftovers


def submission(path: Path, **sources: str) -> Path:
    """The solved ch99 fixture with the exercise cells ``sources`` (by exercise name, e.g.
    ``relu_grad``) replaced; written to ``path``."""
    nb = json.loads(SOLVED.read_text())
    nb.setdefault("metadata", {})["course"] = {"chapter": "ch99"}
    for cell in nb["cells"]:
        ex = cell.get("metadata", {}).get("course", {}).get("exercise", "")
        name = ex.split(".", 1)[-1]
        if name in sources:
            cell["source"] = sources.pop(name)
    assert not sources, f"no exercise cells named {sorted(sources)}"
    path.write_text(json.dumps(nb))
    return path


def grade_cli(*args: str, cwd: Path | None = None, timeout: float = 120.0,
              python_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """``python -m course grade ARGS`` in a fresh process (what an instructor runs)."""
    return subprocess.run([sys.executable, *python_args, "-m", "course", "grade", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          stdin=subprocess.DEVNULL, errors="backslashreplace")


def statuses(report: list[dict]) -> dict[str, str]:
    (nb,) = report
    return {e["id"].split(".", 1)[1]: e["status"] for e in nb["exercises"]}
