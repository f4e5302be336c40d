"""The grader's sandbox against a hostile student, one test per class of the security review.

Each test grades a submission (the ch99 fixture with one or two exercise cells replaced by an
attack) through `python -m course grade`, as an instructor would, in each isolation mode this
machine offers (``--sandbox namespaces`` and ``--sandbox uid`` when the grader is root). The
attacks are written so that a *successful* attack earns the points of the exercise it sits in:
an exercise that passes means the sandbox failed.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import course.sandbox as sb
from course.extract import MAX_CELL_CODE, extract
from course.paths import PACKAGE_ROOT
from sandbox_helpers import FIXTURES, grade_cli, leftover_sandbox_processes, statuses, submission

HIDDEN = FIXTURES / "hidden"
ROOT = os.geteuid() == 0
MODES = []
if ROOT and sb.namespaces_available():
    MODES.append("namespaces")
if ROOT:
    MODES.append("uid")
if not MODES:
    MODES.append("user")
RIGHT = "    return (x > 0).astype(float)\n"
WRONG = "    return -(x > 0).astype(float)\n"


def grade(nb: Path, mode: str, *extra: str, tests: Path = HIDDEN, timeout: float = 120.0,
          cwd: Path | None = None) -> tuple[list[dict], str]:
    r = grade_cli(str(nb), "--tests", str(tests), "--json", "-", "--sandbox", mode, *extra,
                  timeout=timeout, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr


def message(report: list[dict], name: str) -> str:
    return next(e["message"] for e in report[0]["exercises"] if e["id"] == f"ch99.{name}")


needs_root = pytest.mark.skipif(not ROOT, reason="uid isolation needs root")


# --- 1. surviving processes ------------------------------------------------------------------

SURVIVOR = '''def mean_squared_error(pred, target):
    import ctypes, glob, json, os, threading, time
    if os.fork() == 0:
        os.setsid()
        def attack():                  # rewrite any job description of the next run
            end = time.time() + 6
            while time.time() < end:
                with open("/tmp/course-survivor-MARK", "a") as f:
                    f.write(".")
                for d in glob.glob("/tmp/course-grade-*"):
                    try:
                        job = json.load(open(d + "/job.json"))
                        job["drop"] = None
                        json.dump(job, open(d + "/x.json", "w"))
                        os.replace(d + "/x.json", d + "/job.json")
                    except Exception:
                        pass
                time.sleep(0.001)
        threading.Thread(target=attack).start()
        ctypes.CDLL(None).pthread_exit(None)   # main thread gone: /proc shows a zombie
    time.sleep(0.5)
    return ((pred - target) ** 2).sum(axis=1).mean()
'''


@needs_root
@pytest.mark.parametrize("mode", MODES)
def test_a_process_that_outlives_its_run_cannot_touch_the_next_one(tmp_path: Path, mode: str) -> None:
    mark = tmp_path.name
    nb = submission(tmp_path / "s.ipynb", mean_squared_error=SURVIVOR.replace("MARK", mark),
                    relu_grad="def relu_grad(x):\n    import os\n"
                              "    if os.geteuid() == 0:\n" + RIGHT.replace("    ", "        ") + WRONG)
    report, _ = grade(nb, mode, "--jobs", "1")
    st = statuses(report)
    assert st["mean_squared_error"] == "passed", report
    assert st["relu_grad"] == "failed", "the next exercise ran as root"
    assert leftover_sandbox_processes() == []
    marker = Path(f"/tmp/course-survivor-{mark}")
    if marker.exists():                 # only without namespaces can it reach the real /tmp
        size = marker.stat().st_size
        time.sleep(0.3)
        assert marker.stat().st_size == size, "the survivor still runs"
        marker.unlink()


def test_processes_of_uid_counts_a_zombie_leader_with_a_live_thread() -> None:
    """The /proc bookkeeping of the fallback killer: such a process is alive."""
    import ctypes
    import threading

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        threading.Thread(target=lambda: (os.write(w, b"1"), time.sleep(30))).start()
        ctypes.CDLL(None).pthread_exit(None)
    os.close(w)
    try:
        assert os.read(r, 1) == b"1"
        for _ in range(200):           # until the leader shows as a zombie
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.01)
        assert pid in sb.processes_of(os.geteuid())
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


# --- 2. tests found from the current folder ----------------------------------------------------

def test_hidden_tests_and_modules_are_never_taken_from_the_current_folder(tmp_path: Path) -> None:
    student = tmp_path / "student"
    (student / "tests" / "hidden").mkdir(parents=True)
    (student / "course").mkdir()
    (student / "nnlib").mkdir()
    (student / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    marker = tmp_path / "executed"
    evil = f"open({str(marker)!r}, 'a').write('ran ')\n"
    (student / "tests" / "hidden" / "ch99.py").write_text(evil + "EXERCISES = []\n")
    for module in ("numpy.py", "textwrap.py", "json.py"):
        (student / module).write_text(evil)
    nb = submission(student / "99_fixture.ipynb")
    r = grade_cli(str(nb), "--json", "-", cwd=student)
    assert not marker.exists(), "the student's files were executed by the grader"
    assert r.returncode == 2 and "ch99" in r.stderr   # the installed package has no ch99 tests


# --- 3. reading the tests ------------------------------------------------------------------------

READER = '''def relu_grad(x):
    import glob, os, pathlib
    found = []
    for cmd in glob.glob("/proc/[0-9]*/cmdline"):      # the grader's command line
        try:
            args = open(cmd, "rb").read().split(b"\\0")
        except OSError:
            continue
        if any(b"--tests" in a or b"pytest" in a for a in args):
            found.append(cmd)
    for path in [PRIVATE + "/ch99.py", PACKAGE + "/tests/hidden/ch00.py",
                 PACKAGE + "/solutions/00_chain_rule.ipynb", PACKAGE + "/tests/fixtures/hidden/ch99.py"]:
        try:
            open(path).read(10)
            found.append(path)
        except OSError:
            pass
    if found:
        raise ValueError("FOUND " + " ".join(found))
RETURN'''


@needs_root
@pytest.mark.parametrize("mode", MODES)
def test_learner_code_cannot_read_the_tests_nor_see_the_grader(tmp_path: Path, mode: str) -> None:
    private = tmp_path / "private-tests"
    shutil.copytree(HIDDEN, private)
    os.chmod(private, 0o700)            # as docs/grading.md asks: root-owned, mode 700
    src = READER.replace("PRIVATE", repr(str(private))).replace("PACKAGE", repr(str(PACKAGE_ROOT)))
    nb = submission(tmp_path / "s.ipynb", relu_grad=src.replace("RETURN", RIGHT))
    report, stderr = grade(nb, mode, tests=private)
    found = message(report, "relu_grad")
    if mode == "namespaces":
        assert statuses(report)["relu_grad"] == "passed", found
    else:   # what docs/grading.md says of the fallbacks: the command line and the repository show
        assert statuses(report)["relu_grad"] == "error" and "FOUND" in found
        if sb.MODE_READ_CAP in stderr:  # CAP_DAC_READ_SEARCH: even the private tests
            assert "private-tests/ch99.py" in found


# --- 4. the grader reads files the sandbox controls --------------------------------------------

@needs_root
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("swap", ["symlink", "fifo", "zero"])
def test_the_grader_reads_only_descriptors_it_created(tmp_path: Path, mode: str, swap: str) -> None:
    secret_dir = tmp_path / "root-only"
    secret_dir.mkdir(mode=0o700)
    secret = secret_dir / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    secret.chmod(0o600)
    make = {"symlink": f"os.symlink({str(secret)!r}, p)", "fifo": "os.mkfifo(p)",
            "zero": "os.symlink('/dev/zero', p)"}[swap]
    src = ("def relu_grad(x):\n    import os, sys\n"
           "    os.makedirs('out', exist_ok=True)\n"
           "    for p in ('stderr.txt', 'out/result.json', 'out/outputs.npz'):\n"
           "        try:\n            os.remove(p)\n        except OSError:\n            pass\n"
           f"        {make}\n"
           "    sys.stderr.write('my own words\\n'); sys.stderr.flush()\n"
           "    os._exit(97)\n")
    nb = submission(tmp_path / "s.ipynb", relu_grad=src)
    start = time.monotonic()
    report, _ = grade(nb, mode, timeout=60)
    assert time.monotonic() - start < 30
    msg = message(report, "relu_grad")
    assert "TOP-SECRET" not in json.dumps(report)
    assert statuses(report)["relu_grad"] == "crashed" and "exited (code 97)" in msg, msg


# --- 5. properties measured in the learner's process --------------------------------------------

def test_a_property_measured_in_the_learners_interpreter_cannot_be_forged(tmp_path: Path) -> None:
    nb = json.loads((PACKAGE_ROOT / "solutions" / "00_chain_rule.ipynb").read_text())
    cell = next(c for c in nb["cells"]
                if c.get("metadata", {}).get("course", {}).get("exercise") == "ch00.central_difference")
    cell["source"] = (
        "def central_difference(f, x, h=1e-5, _=setattr(np, 'array_equal', lambda a, b: True)):\n"
        "    x64 = np.array(x, dtype=np.float64)\n"
        "    grad = np.zeros_like(x64)\n"
        "    for i in np.ndindex(x64.shape):\n"
        "        p, m = x64.copy(), x64.copy()\n"
        "        p[i] += h\n"
        "        m[i] -= h\n"
        "        grad[i] = (f(p) - f(m)) / (2 * h)\n"
        "    x[...] = 0          # destroys the caller's input\n"
        "    return grad\n")
    path = tmp_path / "00_chain_rule.ipynb"
    path.write_text(json.dumps(nb))
    r = grade_cli(str(path), "--tests", str(PACKAGE_ROOT / "tests" / "hidden"), "--json", "-")
    report = json.loads(r.stdout)
    e = next(e for e in report[0]["exercises"] if e["id"] == "ch00.central_difference")
    assert e["status"] == "failed" and "changed the caller's x" in e["message"], e


# --- 6. one submission stops the class ----------------------------------------------------------

def test_undecodable_text_and_names_do_not_stop_the_report(tmp_path: Path) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    submission(folder / "surrogate.ipynb",
               relu_grad="def relu_grad(x):\n    raise ValueError('broken \\udcff text \\ud800')\n")
    odd = submission(folder / "plain.ipynb")
    os.rename(odd, os.path.join(os.fsencode(folder), b"name-\xff\xfe.ipynb"))
    out_csv = tmp_path / "grades.csv"
    r = grade_cli(str(folder), "--tests", str(HIDDEN), "--json", "-", "--csv", str(out_csv))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert len(report) == 2 and len(out_csv.read_text(encoding="utf-8").splitlines()) == 3
    assert any("\\udcff" in e["message"] for nb in report for e in nb["exercises"])
    assert any("\\udcff" in nb["notebook"] or "\\xff" in nb["notebook"] for nb in report)


STOPPER = '''def mean_squared_error(pred, target):
    import os, signal, time
    parent = os.getpid()
    if os.fork() == 0:
        os.setsid()
        while os.getppid() == parent:  # wait until the exercise's process is gone, then
            time.sleep(0.001)
        for _ in range(20):            # twenty processes stop every other process of this uid
            if os.fork() == 0:         # (a killer too) and wake each other up again
                break
        end = time.time() + 8
        while time.time() < end:
            for sig in (signal.SIGSTOP, signal.SIGTSTP):
                try:
                    os.kill(-1, sig)
                except OSError:
                    pass
            try:
                os.killpg(os.getpgrp(), signal.SIGCONT)
            except OSError:
                pass
        os._exit(0)
    return ((pred - target) ** 2).sum(axis=1).mean()
'''


@needs_root
@pytest.mark.parametrize("mode", MODES)
def test_stopping_the_killer_does_not_hang_the_grader(tmp_path: Path, mode: str) -> None:
    nb = submission(tmp_path / "s.ipynb", mean_squared_error=STOPPER)
    start = time.monotonic()
    report, _ = grade(nb, mode, "--jobs", "1", timeout=90)
    assert time.monotonic() - start < 60
    assert statuses(report)["mean_squared_error"] == "passed"
    assert leftover_sandbox_processes() == []


def test_a_million_empty_lines_take_no_time(tmp_path: Path) -> None:
    """A cell that does not parse, of a million empty lines, searched for a missing name."""
    nb = json.loads(submission(tmp_path / "a.ipynb", relu_grad="RELU = 1\n").read_text())
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                        "source": "\n" * 1_000_000 + "x = ("})
    path = tmp_path / "s.ipynb"
    path.write_text(json.dumps(nb))
    start = time.monotonic()
    report, _ = grade(path, MODES[0], timeout=60)
    assert time.monotonic() - start < 30
    assert statuses(report)["relu_grad"] == "missing"


FORGER = '''def relu_grad(x):
    import json, os
    junk = {"setup_errors": [{"type": "E", "message": "m", "cell": 1, "line": 1}] * 20000,
            "missing": [f"n{i}" for i in range(40000)], "none": [],
            "cases": [{"status": "exception", "type": "T" * 1000, "message": "M" * 10000}] * 20}
    data = json.dumps(junk).encode()
    for fd in (3,):
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError:
            pass
    os.makedirs("out", exist_ok=True)
    open("out/result.json", "wb").write(data)
    os._exit(0)
'''


def test_a_forged_result_with_huge_lists_is_read_in_bounded_time(tmp_path: Path) -> None:
    nb = json.loads(submission(tmp_path / "a.ipynb", relu_grad=FORGER).read_text())
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                        "source": "x = ("})     # a cell that does not parse: searched for names
    nb_path = tmp_path / "s.ipynb"
    nb_path.write_text(json.dumps(nb))
    nb = nb_path
    start = time.monotonic()
    report, _ = grade(nb, MODES[0], timeout=60)
    assert time.monotonic() - start < 30
    assert statuses(report)["relu_grad"] != "passed"
    assert len(message(report, "relu_grad")) < 4100


def _quoted_overlap_zip(n: int, tail: int) -> bytes:
    """A stored zip of ``n`` .npy members whose data overlap (each member's data holds the next
    member's local header and data: the "quoted overlap" of Fifield's zip bomb). Every member
    is a valid uint8 array covering everything after it, so ``n`` members of about ``tail``
    bytes each come out of a file of about ``tail`` bytes."""
    import struct
    import zlib

    def npy_header(nbytes: int) -> bytes:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buf, {"descr": "|u1", "fortran_order": False, "shape": (nbytes,)})
        return buf.getvalue()

    def local(name: bytes, data: bytes) -> bytes:
        return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, zlib.crc32(data),
                           len(data), len(data), len(name), 0) + name

    names = [f"m{i}.npy".encode() for i in range(n)]
    rest = b"\0" * tail
    datas = []
    for i in reversed(range(n)):
        data = npy_header(len(rest)) + rest
        datas.append(data)
        rest = local(names[i], data) + data
    datas.reverse()
    body, offsets, pos = rest, [], 0
    for i in range(n):    # member i's header sits where member i-1's data begins its quote
        offsets.append(pos)
        inner = len(datas[i + 1]) + 30 + len(names[i + 1]) if i + 1 < n else 0
        pos += 30 + len(names[i]) + len(datas[i]) - inner
    central = b"".join(
        struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, zlib.crc32(d), len(d),
                    len(d), len(nm), 0, 0, 0, 0, 0, o) + nm
        for nm, d, o in zip(names, datas, offsets))
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), len(body), 0)
    return body + central + eocd


def test_overlapping_archive_members_are_refused() -> None:
    """60 members of 1 MiB each from a 1 MiB archive: refused, whatever zipfile itself checks."""
    forged = _quoted_overlap_zip(60, 2**20)
    assert len(forged) < 2**20 + 20_000
    with pytest.raises(ValueError, match="declared sizes exceed|overlap"):
        sb.load_npz_safely(forged, 64 * 2**20)


def test_a_huge_cell_is_not_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import course.extract as ce

    sizes: list[int] = []
    real = ce.ast.parse
    monkeypatch.setattr(ce.ast, "parse", lambda src, *a, **k: (sizes.append(len(src)), real(src, *a, **k))[1])
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "source": "x = " + "1+" * 2_000_000 + "1"}
    ex = extract({"cells": [cell]})
    assert max(sizes, default=0) <= MAX_CELL_CODE and 0 in ex.syntax_errors
    assert "more than the grader reads" in ex.syntax_errors[0].message


def test_the_whole_notebook_has_a_time_budget(tmp_path: Path) -> None:
    loop = "    while True:\n        pass\n"
    nb = submission(tmp_path / "s.ipynb", mean_squared_error="def mean_squared_error(p, t):\n" + loop,
                    softmax="def softmax(z):\n" + loop, relu_grad="def relu_grad(x):\n" + loop)
    start = time.monotonic()
    report, _ = grade(nb, MODES[0], "--jobs", "1", "--timeout", "2", "--notebook-timeout", "3")
    assert time.monotonic() - start < 15
    st = statuses(report)
    assert st == {"mean_squared_error": "timeout", "softmax": "timeout", "relu_grad": "timeout",
                  "cheaper": "timeout"}
    assert "time budget for this notebook" in message(report, "relu_grad")


# --- 7. leftovers ---------------------------------------------------------------------------------

LITTER = '''def mean_squared_error(pred, target):
    import ctypes, os
    libc = ctypes.CDLL(None)
    libc.shmget(0, 64 * 2**20, 0o1600)                 # IPC_PRIVATE, IPC_CREAT | 0600
    libc.semget(0, 4, 0o1600)
    libc.msgget(0, 0o1600)
    for d in ("/run/lock", "/dev/shm", "/var/tmp", "/tmp"):
        try:
            open(d + "/course-litter-MARK", "w").write("left behind")
        except OSError:
            pass
    return ((pred - target) ** 2).sum(axis=1).mean()
'''


def _ipc_of_sandbox_uids() -> list[str]:
    rows = []
    for kind in ("shm", "sem", "msg"):
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        head = lines[0].split()
        for line in lines[1:]:
            cols = dict(zip(head, line.split()))
            if sb.UID_BASE <= int(cols["uid"]) < sb.UID_BASE + sb.UID_RANGE:
                rows.append(f"{kind} {line}")
    return rows


@needs_root
@pytest.mark.parametrize("mode", MODES)
def test_no_ipc_object_or_file_outlives_the_run(tmp_path: Path, mode: str) -> None:
    mark = tmp_path.name
    nb = submission(tmp_path / "s.ipynb", mean_squared_error=LITTER.replace("MARK", mark))
    report, _ = grade(nb, mode)
    assert statuses(report)["mean_squared_error"] == "passed"
    assert _ipc_of_sandbox_uids() == []
    for d in ("/run/lock", "/dev/shm", "/var/tmp", "/tmp"):
        assert not Path(f"{d}/course-litter-{mark}").exists(), d


@needs_root
@pytest.mark.parametrize("mode", MODES)
def test_no_user_namespace_inside_the_sandbox(tmp_path: Path, mode: str) -> None:
    src = ("def relu_grad(x):\n    import ctypes\n"
           "    if ctypes.CDLL(None).unshare(0x10000000) == 0:      # CLONE_NEWUSER\n"
           + RIGHT.replace("    ", "        ") + WRONG)
    nb = submission(tmp_path / "s.ipynb", relu_grad=src)
    report, _ = grade(nb, mode)
    assert statuses(report)["relu_grad"] == "failed"


# --- 8. terminal escapes ------------------------------------------------------------------------

def test_escape_sequences_in_messages_are_printed_escaped(tmp_path: Path) -> None:
    nb = submission(tmp_path / "s.ipynb", relu_grad=(
        "def relu_grad(x):\n    raise ValueError('\\x1b[2K\\r  \\u2713 ch99.relu_grad 1/1 passed \\x9b2J\\u202e')\n"))
    r = grade_cli(str(nb), "--tests", str(HIDDEN))
    out = r.stdout + r.stderr
    assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out and "\r" not in out
    assert "\\x1b[2K" in out
