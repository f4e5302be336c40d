#!/usr/bin/env python3
"""Set up the course in a local virtual environment and open it, or run every test.

    python3 start.py lab [--headless]   set up .venv (first time only) and open JupyterLab on chapters/
    python3 start.py test               set up .venv (first time only) and run the whole test suite

Both are idempotent: the environment is rebuilt only when pyproject.toml changes. Needs only
Python 3.10+ with its standard venv module (on Debian/Ubuntu: apt install python3-venv).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".course-installed"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def say(msg: str) -> None:
    print(f"[start.py] {msg}", flush=True)


def run(*cmd: str | Path, **kw) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kw)


def ensure_environment(extras: str) -> None:
    """Create .venv and install the course (with the given extras) unless already done."""
    if sys.version_info < (3, 10):
        sys.exit(f"start.py: Python 3.10 or newer is needed, this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if PY.exists() and STAMP.exists() and wanted in STAMP.read_text().split():
        return
    if not PY.exists():
        say(f"creating the virtual environment {VENV}")
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    say("installing the course and its dependencies (a few minutes, once)")
    target = f".[{extras}]" if extras else "."
    if run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--editable", target) != 0:
        sys.exit("start.py: pip install failed (see above); fix the cause and run the same command again")
    previous = STAMP.read_text().split() if STAMP.exists() else []
    STAMP.write_text("\n".join(previous + [wanted]) + "\n")


def lab(headless: bool) -> int:
    ensure_environment("test")
    args = [BIN / "jupyter", "lab", "--notebook-dir", ROOT, "--LabApp.default_url=/lab/tree/chapters"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # containers and cloud machines often run as root
        say("running as root: JupyterLab is started with --allow-root")
    if headless:
        args += ["--no-browser", "--ip", "0.0.0.0"]
        say("headless: open the http://...:8888/lab?token=... address printed below from your own browser")
    return run(*args)


def test() -> int:
    ensure_environment("test")
    # no MPLBACKEND here: the notebooks' kernels must keep Jupyter's inline backend, or their
    # figures vanish from the outputs that nbval compares (headless matplotlib picks Agg itself)
    env = dict(os.environ, HYPOTHESIS_PROFILE=os.environ.get("HYPOTHESIS_PROFILE", "ci"),
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MPLBACKEND", None)
    steps = [
        ("the student notebooks are up to date with solutions/", [BIN / "course", "check"]),
        ("unit, property, grader and packaging tests", [PY, "-m", "pytest", "tests", "-q"]),
        ("solution notebooks, outputs compared", [PY, "-m", "pytest", "-q", "--nbval", "solutions",
                                                  "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
                                                  "--nbval-cell-timeout", "300"]),
        ("student notebooks, executed without error", [PY, "-m", "pytest", "-q", "--nbval-lax", "chapters",
                                                       "--nbval-cell-timeout", "300"]),
    ]
    failed = []
    for title, cmd in steps:
        say(f"== {title}")
        if run(*cmd, env=env) != 0:
            failed.append(title)
    if failed:
        say("FAILED: " + "; ".join(failed))
        return 1
    say("all checks passed")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in ("lab", "test"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    if argv[0] == "lab":
        return lab(headless="--headless" in argv[1:])
    return test()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
