"""Running one exercise of untrusted learner code in a fresh, limited interpreter.

Each run is ``python -I -B course/_harness.py JOBDIR`` in a new session, in a fresh temporary
folder, with stdin from /dev/null, stdout discarded, a wall-clock timeout and RLIMIT_CPU, _AS,
_FSIZE, _NPROC and _CORE. When the grader runs as root the harness switches to a uid of its own
(one per parallel slot, 61000 and up, no passwd entry needed) before any learner code runs, and
afterwards every process of that uid is killed, even one that left the session. See
docs/grading.md for what this does and does not protect against.
"""
from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import queue
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

HARNESS = Path(__file__).with_name("_harness.py")
SETUP_FAILED = 97
UID_BASE = 61000
UID_RANGE = 1000
UID_LOCK_DIR = "/tmp/.course-sandbox-uids"
ALLOWED_KINDS = "biufcU"

MODE_DROP_ALL = "separate uid, no capabilities"
MODE_READ_CAP = "separate uid, CAP_DAC_READ_SEARCH kept (can read any file, write none)"
MODE_SAME_USER = "same user (not root: no uid change; process-group kill only)"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one exercise run."""
    timeout: float = 10.0           # wall clock, seconds
    memory_mb: int = 2048           # RLIMIT_AS
    file_mb: int = 64               # RLIMIT_FSIZE
    nproc: int = 64                 # RLIMIT_NPROC (processes of the sandbox uid)
    output_mb: int = 16             # largest result read back


@dataclass
class RunResult:
    """What came back from one sandbox run, before comparison."""
    outcome: str                    # ok, timeout, crashed, memory, invalid_output, sandbox_error
    detail: str = ""
    result: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0


# ------------------------------------------------------------------------------------------------
# Privileges

def _world_accessible(path: str) -> bool:
    """Every directory on the way to ``path`` is o+x, and ``path`` itself is o+r (o+x if a dir)."""
    p = Path(os.path.realpath(path))
    try:
        for parent in reversed(p.parents):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        st = os.stat(p)
    except OSError:
        return False
    need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else 0)
    return st.st_mode & need == need


def interpreter_paths() -> list[str]:
    """What an unprivileged sandbox must be able to read to run Python, numpy and nnlib."""
    paths = [os.path.realpath(sys.executable), sys.prefix, sys.base_prefix, str(HARNESS.parent),
             os.path.dirname(np.__file__)]
    try:
        import importlib.util
        spec = importlib.util.find_spec("nnlib")
        if spec and spec.submodule_search_locations:
            paths.extend(spec.submodule_search_locations)
    except (ImportError, ValueError):
        pass
    return paths


def choose_mode() -> str:
    if os.geteuid() != 0:
        return MODE_SAME_USER
    if all(_world_accessible(p) for p in interpreter_paths()):
        return MODE_DROP_ALL
    return MODE_READ_CAP


def _processes(uid: int) -> Iterator[tuple[int, bytes, int]]:
    """(pid, state, parent pid) of every process whose effective uid is ``uid``, zombies included.

    One stat() per process (a /proc/PID folder belongs to the process's effective uid); only the
    few that match have their state read.
    """
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            yield int(name), fields[0], int(fields[1])
        except (OSError, IndexError, ValueError):
            continue


def processes_of(uid: int) -> list[int]:
    """Pids of the live (non-zombie) processes of ``uid``."""
    return [pid for pid, state, _ in _processes(uid) if state not in (b"Z", b"X")]


def _reap_orphans(uid: int) -> None:
    """Collect zombies of ``uid`` that were reparented to this (subreaper) process."""
    me = os.getpid()
    for pid, state, parent in _processes(uid):
        if state == b"Z" and parent == me:
            try:
                os.waitpid(pid, os.WNOHANG)
            except OSError:
                continue


def _any_process_of(uid: int) -> bool:
    """Whether any process, zombies included, still has ``uid``."""
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid:
                return True
        except OSError:
            continue
    return False


def kill_uid(uid: int, gid: int, patience: float = 5.0) -> bool:
    """Kill every process of ``uid``, whatever its session or parent: a forked killer becomes
    that uid and sends SIGKILL to -1 (every process it may signal, i.e. those of the same uid),
    until no live process of the uid is left. Returns False if some survived ``patience`` s."""
    if not processes_of(uid):
        return True
    deadline = time.monotonic() + patience
    while True:
        pid = os.fork()
        if pid == 0:  # the killer: only system calls, then _exit
            code = 1
            try:
                os.setgroups([])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
                me = os.getpid()
                for _ in range(200):
                    os.kill(-1, signal.SIGKILL)   # never kills the caller itself
                    if processes_of(uid) in ([], [me]):
                        code = 0
                        break
            except BaseException:
                pass
            os._exit(code)
        os.waitpid(pid, 0)
        _reap_orphans(uid)
        left = processes_of(uid)
        if not left or time.monotonic() > deadline:
            return not left
        time.sleep(0.01)


def _set_subreaper() -> None:
    """Orphans of the sandbox become our children, so their zombies can be reaped."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, ctypes.c_ulong(1), ctypes.c_ulong(0),
                                                 ctypes.c_ulong(0), ctypes.c_ulong(0))
    except (OSError, AttributeError):
        pass


# ------------------------------------------------------------------------------------------------
# Reading results safely

def _read_capped(path: str, limit: int) -> bytes | None:
    """The bytes of a regular file (no symlink followed), or None if absent; ValueError if too big."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ValueError("the result file was replaced by a link") from None
        raise ValueError(f"the result file could not be opened ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError("the result file is not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"the result is larger than {limit // 2**20} MiB")
    return data


def load_npz_safely(data: bytes, limit: int, max_members: int = 10_000) -> dict[str, np.ndarray]:
    """Arrays of an .npz produced by untrusted code: stored (uncompressed) members only, plain
    numeric/bool/unicode dtypes, declared sizes that fit in the file, no pickle."""
    fmt = np.lib.format
    out: dict[str, np.ndarray] = {}
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
        if len(infos) > max_members:
            raise ValueError("too many arrays")
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > limit \
                    or not info.filename.endswith(".npy"):
                raise ValueError("unexpected member in the result archive")
            with zf.open(info) as f:
                version = fmt.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = fmt.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = fmt.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unexpected .npy version {version}")
                if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None \
                        or dtype.kind not in ALLOWED_KINDS:
                    raise ValueError(f"arrays of dtype {dtype} are not accepted")
                if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
                    raise ValueError("an array's declared size does not match its data")
            with zf.open(info) as f:
                out[info.filename[:-4]] = fmt.read_array(f, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, TypeError, SyntaxError,
            OverflowError, KeyError) as e:
        raise ValueError(f"unreadable result ({type(e).__name__}: {str(e)[:120]})") from None
    return out


# ------------------------------------------------------------------------------------------------
# The sandbox

class Sandbox:
    """A pool of ``slots`` run slots (each with its own uid when root). Use as a context manager."""

    def __init__(self, slots: int, limits: Limits = Limits()) -> None:
        self.limits = limits
        self.mode = choose_mode()
        self.root = self.mode != MODE_SAME_USER
        self._slots: queue.Queue[tuple[int, int]] = queue.Queue()
        self._locks: list[int] = []
        self.uids: list[int] = []
        if self.root:
            _set_subreaper()
            self.uids = self._reserve_uids(slots)
            for uid in self.uids:
                kill_uid(uid, uid)          # leftovers of a grader that was killed
        for slot in range(slots):
            self._slots.put((slot, self.uids[slot] if self.root else -1))

    def _reserve_uids(self, n: int) -> list[int]:
        """Unused uids, each held with a lock file so that concurrent graders never share one."""
        import pwd

        lockdir = Path(UID_LOCK_DIR)           # fixed, whatever TMPDIR says: shared by all graders
        try:
            lockdir.mkdir(mode=0o700)
        except FileExistsError:
            pass
        st = os.lstat(lockdir)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0:
            raise RuntimeError(f"{lockdir} is not a directory owned by root; remove it")
        uids = []
        for uid in range(UID_BASE, UID_BASE + UID_RANGE):
            try:
                pwd.getpwuid(uid)
                continue                    # a real account: never use it
            except KeyError:
                pass
            fd = os.open(lockdir / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._locks.append(fd)
            uids.append(uid)
            if len(uids) == n:
                return uids
        raise RuntimeError("no free sandbox uid (all of 61000-61999 are in use)")

    def close(self) -> None:
        for uid in self.uids:
            kill_uid(uid, uid)
            for _ in range(50):              # zombies of killed orphans reach us a moment later
                _reap_orphans(uid)
                if not _any_process_of(uid):
                    break
                time.sleep(0.01)
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _slot(self) -> Iterator[tuple[int, int]]:
        slot = self._slots.get()
        try:
            yield slot
        finally:
            self._slots.put(slot)

    def _env(self, workdir: str) -> dict[str, str]:
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
                "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": workdir, "XDG_CACHE_HOME": workdir,
                "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def run(self, job: dict[str, Any], arrays: dict[str, np.ndarray],
            timeout: float | None = None) -> RunResult:
        """Run one exercise job (see course/_harness.py for its fields) and read back its result."""
        lim = self.limits
        timeout = timeout or lim.timeout
        with self._slot() as (_, uid):
            work = tempfile.mkdtemp(prefix="course-grade-")
            try:
                return self._run_in(work, uid, job, arrays, timeout)
            finally:
                if self.root:
                    kill_uid(uid, uid)
                    self._clean_shared_tmp(uid)
                shutil.rmtree(work, ignore_errors=True)

    def _clean_shared_tmp(self, uid: int) -> None:
        """Remove what the sandbox uid left in world-writable temporary folders."""
        for d in ("/tmp", "/var/tmp", "/dev/shm"):
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                try:
                    if e.stat(follow_symlinks=False).st_uid != uid:
                        continue
                    if e.is_dir(follow_symlinks=False):
                        shutil.rmtree(e.path, ignore_errors=True)
                    else:
                        os.unlink(e.path)
                except OSError:
                    pass

    def _run_in(self, work: str, uid: int, job: dict[str, Any], arrays: dict[str, np.ndarray],
                timeout: float) -> RunResult:
        lim = self.limits
        job = dict(job)
        job["limits"] = {"cpu": int(timeout) + 2, "as": lim.memory_mb * 2**20,
                         "fsize": lim.file_mb * 2**20,
                         "nproc": lim.nproc if self.root else _same_user_nproc(lim.nproc)}
        job["drop"] = ({"uid": uid, "gid": uid, "keep_read_cap": self.mode == MODE_READ_CAP}
                       if self.root else None)
        job["has_arrays"] = bool(arrays)
        job["max_output_bytes"] = lim.output_mb * 2**20
        with open(os.path.join(work, "job.json"), "w", encoding="utf-8") as f:
            json.dump(job, f)
        if arrays:
            np.savez(os.path.join(work, "inputs.npz"), **arrays)
        if self.root:
            os.chown(work, uid, uid)
        os.chmod(work, 0o700)
        errpath = os.path.join(work, "stderr.txt")
        start = time.monotonic()
        with open(errpath, "wb") as err:
            if self.root:
                os.chown(errpath, uid, uid)
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", str(HARNESS), work], cwd=work, env=self._env(work),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                start_new_session=True, close_fds=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        _killpg(proc.pid)
        if timed_out:
            proc.wait()
        if self.root:
            kill_uid(uid, uid)  # before reading: no leftover process can rewrite the result
        seconds = time.monotonic() - start
        rc = proc.returncode
        stderr_tail = _tail(errpath)
        if timed_out or rc == -signal.SIGXCPU:
            return RunResult("timeout", f"did not finish within {timeout:g} s", seconds=seconds)
        if rc == SETUP_FAILED:
            return RunResult("sandbox_error", stderr_tail, seconds=seconds)
        try:
            raw = _read_capped(os.path.join(work, "out", "result.json"), 4 * 2**20)
            if raw is None:
                return self._died(rc, stderr_tail, seconds)
            result = json.loads(raw.decode("utf-8"))
            if not isinstance(result, dict) or not isinstance(result.get("cases"), list):
                raise ValueError("the result has the wrong structure")
            npz = _read_capped(os.path.join(work, "out", "outputs.npz"), lim.output_mb * 2**20 + 2**20)
            arrs = load_npz_safely(npz, lim.output_mb * 2**20) if npz else {}
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            return RunResult("invalid_output", str(e), seconds=seconds)
        return RunResult("ok", "", result, arrs, seconds)

    def _died(self, rc: int | None, stderr_tail: str, seconds: float) -> RunResult:
        if "MemoryError" in stderr_tail or "bad_alloc" in stderr_tail \
                or "Cannot allocate memory" in stderr_tail:
            return RunResult("memory", "ran out of memory", seconds=seconds)
        if rc is not None and rc == -signal.SIGXFSZ:
            return RunResult("invalid_output", "wrote a file larger than the sandbox allows",
                             seconds=seconds)
        if rc is not None and rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            what = {"SIGSEGV": " (a segmentation fault)", "SIGKILL": " (killed)",
                    "SIGABRT": " (aborted)"}.get(name, "")
            return RunResult("crashed", f"the Python process was stopped by {name}{what} before "
                             "returning a result", seconds=seconds)
        return RunResult("crashed", f"the Python process exited (code {rc}) before returning a "
                         "result: does your code call os._exit() or exit the interpreter?",
                         seconds=seconds)


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: str, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _same_user_nproc(extra: int) -> int | None:
    """Best-effort RLIMIT_NPROC when not root: the user's current process count plus ``extra``."""
    uid = os.getuid()
    try:
        current = sum(1 for _ in _processes(uid))  # zombies count against RLIMIT_NPROC too
    except OSError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    want = current + extra
    if hard != -1 and want > hard:
        return None
    return want
