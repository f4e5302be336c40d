#!/usr/bin/env python3
"""Set up the course in a local virtual environment and open it, or run every test.

    python3 start.py lab                set up .venv (first time only) and open JupyterLab on the
                                        course's start page (chapters/index.ipynb)
    python3 start.py lab --headless     the same on a server: no browser, listening on localhost
                                        only (add --all-interfaces to listen on every interface),
                                        and the ssh line that forwards the port to your computer
    python3 start.py test               set up .venv (first time only) and run the whole test suite
                                        (for maintainers and CI); the web book's browser test also
                                        gets MathJax (npm ci) and Debian's chromium (as root)

Both are idempotent: the environment is rebuilt only when pyproject.toml changes. Needs only
Python 3.10+ with its standard venv module (on Debian/Ubuntu: apt install python3-venv).
"""
from __future__ import annotations

import getpass
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
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
        say(f"step 1 of 2: creating the virtual environment {VENV} (a few seconds)")
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    say("step 2 of 2: installing the course and its dependencies with pip, once (a few minutes: "
        "pip prints each package as it goes)")
    target = f".[{extras}]" if extras else "."
    if run(PY, "-m", "pip", "install", "--disable-pip-version-check", "--editable", target) != 0:
        sys.exit("start.py: pip install failed (see above); fix the cause and run the same command again")
    previous = STAMP.read_text().split() if STAMP.exists() else []
    STAMP.write_text("\n".join(previous + [wanted]) + "\n")


def free_port(start: int = 8888) -> int:
    """The first port from ``start`` on which nothing listens on localhost."""
    for port in range(start, start + 100):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("start.py: no free port between 8888 and 8987")


def wait_until_ready(proc: subprocess.Popen, port: int, token: str, patience: float = 120.0) -> bool:
    """Poll JupyterLab's status API until it answers (or the process ends)."""
    deadline = time.monotonic() + patience
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.25)
    return False


def lab(headless: bool, all_interfaces: bool = False, port: int | None = None) -> int:
    ensure_environment("test")
    port = port or free_port()
    token = secrets.token_hex(16)
    start_page = "lab/tree/chapters/index.ipynb"
    args = [BIN / "jupyter", "lab", "--notebook-dir", ROOT, f"--LabApp.default_url=/{start_page}",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            "--ServerApp.ip=" + ("0.0.0.0" if all_interfaces else "127.0.0.1")]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # containers and cloud machines often run as root
        say("running as root: JupyterLab is started with --allow-root")
    if headless:
        args.append("--no-browser")
    say("starting JupyterLab (its own log follows; the address to open comes last)")
    proc = subprocess.Popen([str(a) for a in args], cwd=ROOT)
    try:
        if not wait_until_ready(proc, port, token):
            proc.terminate()
            say("JupyterLab did not start: see its messages above")
            return 1
        url = f"http://127.0.0.1:{port}/{start_page}?token={token}"
        lines = ["", "JupyterLab is ready. Open this address in your browser:", "", f"    {url}", ""]
        if headless:
            host = socket.getfqdn() or "THIS-SERVER"
            lines += ["On a remote server, first forward the port from your own computer:", "",
                      f"    ssh -N -L {port}:localhost:{port} {getpass.getuser()}@{host}", "",
                      "then open the address above there."]
            if all_interfaces:
                lines += [f"(Listening on every interface: http://{host}:{port}/{start_page}?token="
                          f"{token} also works, if the port is reachable.)"]
            lines.append("")
        lines.append("Stop it with Ctrl-C.")
        print("\n".join(lines), flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return 1


def ensure_book_tools() -> None:
    """What the web book's test (tests/test_book.py) needs beyond pip: the npm packages of
    package.json (MathJax, copied into the book) with `npm ci`, when npm exists; and Debian's
    chromium for its headless browser, with apt-get, when it is missing and this is root on Debian.
    Whatever cannot be installed here is said, and that test is skipped with the reason."""
    lock = ROOT / "package-lock.json"
    stamp = ROOT / "node_modules" / ".course-installed"
    wanted = hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else ""
    if wanted and not (stamp.exists() and stamp.read_text().strip() == wanted):
        if shutil.which("npm") is None:
            say("no npm here: the web book (course book) cannot get MathJax; its test is skipped")
        else:
            say("installing the web book's MathJax from npm (npm ci, once: a few seconds)")
            if run("npm", "ci", "--no-audit", "--no-fund") == 0:
                stamp.write_text(wanted + "\n")
    if Path("/usr/bin/chromium").exists():
        return
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")):
        say("no /usr/bin/chromium, and installing it needs root and apt-get: the web book's "
            "browser test is skipped")
        return
    say("installing Debian's chromium for the web book's browser test (apt-get, once: a minute or two)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if run("apt-get", "update", "-q", env=env) != 0 or \
            run("apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium", env=env) != 0:
        say("apt-get could not install chromium (see above): the web book's browser test is skipped")


def test() -> int:
    """Every check, in lanes that run side by side (the unit tests; the solution notebooks; the
    student notebooks), each with one BLAS thread: on two cores that halves the wall time, and
    the committed outputs hold under any number of threads (docs/authoring.md)."""
    ensure_environment("test")
    ensure_book_tools()
    # no MPLBACKEND here: the notebooks' kernels must keep Jupyter's inline backend, or their
    # figures vanish from the outputs that nbval compares (headless matplotlib picks Agg itself)
    env = dict(os.environ, HYPOTHESIS_PROFILE=os.environ.get("HYPOTHESIS_PROFILE", "ci"),
               PYDEVD_DISABLE_FILE_VALIDATION="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    env.pop("MPLBACKEND", None)
    lanes: list[list[tuple[str, list]]] = []
    if (ROOT / "solutions").is_dir():
        say("== the student notebooks are up to date with solutions/")
        if run(BIN / "course", "check", env=env) != 0:
            say("FAILED: chapters/ is not what `course build` writes (see above)")
            return 1
        lanes.append([("solution notebooks, outputs compared",
                       [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "solutions",
                        "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", "--nbval-cell-timeout", "300"])])
    if (ROOT / "tests").is_dir():
        lanes.append([("unit, property, grader and packaging tests", [PY, "-m", "pytest", "tests", "-q"])])
    lanes.append([("student notebooks, executed without error",
                   [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "chapters",
                    "--nbval-cell-timeout", "300"])])
    failed = run_lanes(lanes, env)
    if failed:
        say("FAILED: " + "; ".join(failed))
        return 1
    say("all checks passed")
    return 0


def run_lanes(lanes: list[list[tuple[str, list]]], env: dict[str, str]) -> list[str]:
    """Run each lane's steps in order, the lanes at the same time; print each step's output when
    it ends (whole, not interleaved). Returns the titles of the steps that failed."""
    import tempfile
    import threading

    failed: list[str] = []
    lock = threading.Lock()

    def lane(steps: list[tuple[str, list]]) -> None:
        for title, cmd in steps:
            with lock:
                say(f"== started: {title}")
            start = time.monotonic()
            with tempfile.TemporaryFile() as log:
                rc = subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                log.seek(0)
                out = log.read().decode("utf-8", "replace")
            with lock:
                verdict = "passed" if rc == 0 else "FAILED"
                say(f"== {verdict} after {time.monotonic() - start:.0f} s: {title}")
                print(out, end="" if out.endswith("\n") else "\n", flush=True)
                if rc != 0:
                    failed.append(title)

    threads = [threading.Thread(target=lane, args=(steps,)) for steps in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failed


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in ("lab", "test"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    if argv[0] == "lab":
        rest = argv[1:]
        port = None
        if "--port" in rest:
            i = rest.index("--port")
            port = int(rest[i + 1])
            del rest[i:i + 2]
        unknown = [a for a in rest if a not in ("--headless", "--all-interfaces")]
        if unknown:
            print(f"start.py lab: unknown option {unknown[0]}\n{__doc__}")
            return 2
        return lab(headless="--headless" in rest, all_interfaces="--all-interfaces" in rest, port=port)
    return test()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
