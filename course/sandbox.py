"""Running one exercise of untrusted learner code in a fresh, limited interpreter.

Each run is ``python -I -B course/_harness.py`` (see its docstring for the three processes it
becomes) with the job on an unlinked file as stdin, a pipe on which the harness's trusted
supervisor reports how the learner's process ended, and unlinked files for the learner's stderr,
result and output arrays, all created here and read back through these descriptors, bounded.
When the grader runs as root and the kernel allows it (``namespaces`` mode), the learner runs
in its own PID, mount, IPC, network and UTS namespaces, sees a read-only file system holding
only the interpreter, its libraries and nnlib, runs as a uid of its own (one per parallel slot,
61000 and up, no passwd entry needed) without capabilities and under a seccomp filter, and every
process of the run dies with the namespace. Where namespaces are not available the fallbacks
are a separate uid with a forked killer, or (not root) the same user. See docs/grading.md for
what each mode guarantees.
"""
from __future__ import annotations

import ctypes
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
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

HARNESS = Path(__file__).with_name("_harness.py")
SETUP_FAILED = 97
NOT_DONE = 98       # the harness's own code failed after the learner's code ran (see its stderr)
UID_BASE = 61000
UID_RANGE = 1000
UID_LOCK_DIR = "/tmp/.course-sandbox-uids"
ALLOWED_KINDS = "biufcU"

MODE_NAMESPACES = ("separate uid, no capabilities, own namespaces (private read-only files, "
                   "processes, IPC and network), seccomp")
MODE_DROP_ALL = "separate uid, no capabilities (no namespaces: sees world-readable files)"
MODE_READ_CAP = ("separate uid, CAP_DAC_READ_SEARCH kept (no namespaces: can read any file, "
                 "write none)")
MODE_SAME_USER = "same user (not root: no uid change; process-group kill only)"
#: Short names of the modes (``course grade --sandbox``, test ids).
MODE_NAMES = {MODE_NAMESPACES: "namespaces", MODE_DROP_ALL: "uid", MODE_READ_CAP: "uid-read-cap",
              MODE_SAME_USER: "user"}


@dataclass(frozen=True)
class Limits:
    """Resource limits of one exercise run."""
    timeout: float = 10.0           # wall clock, seconds
    memory_mb: int = 2048           # RLIMIT_AS
    file_mb: int = 64               # RLIMIT_FSIZE
    nproc: int = 64                 # RLIMIT_NPROC (processes of the sandbox uid)
    output_mb: int = 16             # largest result read back
    notebook_timeout: float = 120.0  # wall clock for all the exercises of one notebook


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
    """What an unprivileged sandbox must be able to read to run Python, numpy and nnlib: the
    interpreter, the installation prefixes, the standard library and site-packages folders, and
    the nnlib and course package folders. Never a folder of sys.path in general (under pytest it
    holds tests/, whose hidden tests the learner must not see)."""
    paths = [os.path.dirname(os.path.realpath(sys.executable)), sys.prefix, sys.base_prefix,
             sys.exec_prefix, sys.base_exec_prefix, str(HARNESS.parent),
             os.path.dirname(os.path.dirname(np.__file__))]
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            paths.append(sysconfig.get_paths()[key])
        except KeyError:
            pass
    try:
        import importlib.util
        spec = importlib.util.find_spec("nnlib")
        if spec and spec.submodule_search_locations:
            paths.extend(spec.submodule_search_locations)
    except (ImportError, ValueError):
        pass
    out: list[str] = []
    for p in paths:
        r = os.path.realpath(p)
        if os.path.isdir(r) and r not in out:
            out.append(r)
    return out


def _bind_paths(hidden: list[Path]) -> list[str]:
    """The folders bound read-only into the namespace sandbox: ``interpreter_paths`` minus any
    folder that contains one of ``hidden`` (the hidden tests in use, the package's tests)."""
    hidden_real = [os.path.realpath(h) for h in hidden]
    binds = []
    for p in interpreter_paths():
        if any(h == p or h.startswith(p.rstrip("/") + "/") for h in hidden_real):
            continue
        binds.append(p)
    return binds


_namespace_probe: dict[str, bool] = {}
_namespace_lock = threading.Lock()


def namespaces_available() -> bool:
    """Whether the namespace sandbox works here (root, unshare, mounts, pivot_root, seccomp):
    tried once per process with a run that sets everything up and stops before learner code."""
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return False
    with _namespace_lock:
        if "ok" not in _namespace_probe:
            root = tempfile.mkdtemp(prefix="course-sandbox-probe-")
            try:
                status, _ = _launch({"code": [], "needs": [], "cases": []}, {}, {
                    "mode": "namespaces", "uid": UID_BASE + UID_RANGE - 1, "keep_read_cap": False,
                    "seccomp": True, "timeout": 10.0, "probe": True, "root": root,
                    "binds": _bind_paths([]), "workdir": "/tmp",
                    "limits": {"cpu": 10, "as": 2**31, "fsize": 2**20, "nproc": 0}}, 20.0)[:2]
                _namespace_probe["ok"] = status.get("status") == "exited" and status.get("code") == 0
            except OSError:
                _namespace_probe["ok"] = False
            finally:
                shutil.rmtree(root, ignore_errors=True)
        return _namespace_probe["ok"]


def choose_mode() -> str:
    if os.geteuid() != 0:
        return MODE_SAME_USER
    if namespaces_available():
        return MODE_NAMESPACES
    if all(_world_accessible(p) for p in interpreter_paths()):
        return MODE_DROP_ALL
    return MODE_READ_CAP


def _processes(uid: int) -> Iterator[tuple[int, bytes, int]]:
    """(pid, state, parent pid) of every process whose effective uid is ``uid``, zombies included.

    The state is the liveliest of its threads': a process whose main thread exited while another
    thread runs shows its leader as a zombie in /proc/PID/stat, but it is alive, and counts as
    such here (``b"R"``)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            state = fields[0]
            if state in (b"Z", b"X"):
                for task in os.listdir(f"/proc/{name}/task"):
                    try:
                        with open(f"/proc/{name}/task/{task}/stat", "rb") as f:
                            if f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X"):
                                state = b"R"
                                break
                    except (OSError, IndexError):
                        continue
            yield int(name), state, int(fields[1])
        except (OSError, IndexError, ValueError):
            continue


def processes_of(uid: int) -> list[int]:
    """Pids of the live processes of ``uid`` (a zombie leader with a live thread is live)."""
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


def _signal_if_uid(pid: int, uid: int, sig: int) -> None:
    """Send ``sig`` to ``pid`` only while it is a process of ``uid``: through a pidfd where the
    kernel has them, so that a pid reused by another process in between is never signalled."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        if os.stat(f"/proc/{pid}").st_uid != uid:
            return
        if fd is not None:
            signal.pidfd_send_signal(fd, sig)
        else:
            os.kill(pid, sig)
    except OSError:
        pass
    finally:
        if fd is not None:
            os.close(fd)


def kill_uid(uid: int, gid: int = -1, patience: float = 5.0) -> bool:
    """Kill every process of ``uid``, whatever its session, parent or state in /proc (a zombie
    leader with a live thread included), from this (root) process: each round stops every
    process found (a stopped process cannot fork), then kills them all, until none is left.
    There is no helper process of that uid that the sandbox could stop or kill. Returns False
    if some survived ``patience`` seconds. (Not needed in the namespaces mode, where the kernel
    kills the whole PID namespace.)"""
    deadline = time.monotonic() + patience
    while True:
        pids = processes_of(uid)
        if not pids:
            _reap_orphans(uid)
            return True
        for pid in pids:
            _signal_if_uid(pid, uid, signal.SIGSTOP)
        for pid in processes_of(uid):
            _signal_if_uid(pid, uid, signal.SIGKILL)
        _reap_orphans(uid)
        if time.monotonic() > deadline:
            return not processes_of(uid)
        time.sleep(0.001)


_IPC_RMID = 0


def remove_ipc_of(uid: int) -> int:
    """Remove the System V shared memory, semaphores and message queues owned or created by
    ``uid`` (they outlive processes); returns how many. Not needed with namespaces (the IPC
    namespace takes them along)."""
    libc = ctypes.CDLL(None, use_errno=True)
    removed = 0
    for kind, fn, nargs in (("shm", "shmctl", 3), ("sem", "semctl", 4), ("msg", "msgctl", 3)):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        header = open(f"/proc/sysvipc/{kind}").readline().split()
        try:
            i_id, i_uid, i_cuid = header.index(f"{kind}id" if kind != "msg" else "msqid"), \
                header.index("uid"), header.index("cuid")
        except ValueError:
            continue
        for row in rows:
            cols = row.split()
            try:
                if int(cols[i_uid]) != uid and int(cols[i_cuid]) != uid:
                    continue
                ident = int(cols[i_id])
            except (IndexError, ValueError):
                continue
            args = [ctypes.c_int(ident)] + ([ctypes.c_int(0)] if nargs == 4 else []) \
                + [ctypes.c_int(_IPC_RMID), ctypes.c_void_p(None)]
            if getattr(libc, fn)(*args) == 0:
                removed += 1
    return removed


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
        return _read_fd(f.fileno(), limit)


def _read_fd(fd: int, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file from its start, through a descriptor the grader
    created (the sandbox cannot swap it for a link, a FIFO or /dev/zero); ValueError if larger."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise ValueError("the result file is not a regular file")
    chunks, size = [], 0
    while size <= limit:
        chunk = os.pread(fd, min(1 << 20, limit + 1 - size), size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    if len(data) > limit:
        raise ValueError(f"the result is larger than {limit // 2**20} MiB")
    return data


def _tail_fd(fd: int, n: int = 4000) -> str:
    """The last ``n`` bytes of a file the grader created, as text (undecodable bytes replaced)."""
    try:
        size = os.fstat(fd).st_size
        return os.pread(fd, n, max(0, size - n)).decode("utf-8", "replace")
    except OSError:
        return ""


def _unlinked_file() -> io.BufferedRandom:
    """A read-write temporary file without a name (nothing else can open it by path)."""
    return tempfile.TemporaryFile(prefix="course-grade-")


def _launch(job: dict[str, Any], arrays: dict[str, np.ndarray], box: dict[str, Any],
            backstop: float, env: dict[str, str] | None = None, cwd: str = "/",
            limits: Limits | None = None) -> tuple[dict[str, Any], str, bytes | None, bytes | None, str]:
    """Run the harness once. Returns (status, stderr tail, result JSON bytes or None, outputs
    bytes or None, a problem reading them or ""). The status is the supervisor's line, or
    {"status": "backstop"} when the whole harness had to be killed."""
    lim = limits or Limits()
    buf = io.BytesIO()
    if arrays:
        np.savez(buf, **arrays)
    with _unlinked_file() as jobf, _unlinked_file() as errf, _unlinked_file() as resf, \
            _unlinked_file() as outf:
        box = {**box, "result_fd": resf.fileno(), "outputs_fd": outf.fileno()}
        header = json.dumps({**job, "sandbox": box}).encode("utf-8")
        jobf.write(struct.pack("<Q", len(header)) + header + buf.getvalue())
        jobf.flush()
        jobf.seek(0)
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", str(HARNESS)], cwd=cwd, env=env or _base_env("/tmp"),
            stdin=jobf, stdout=subprocess.PIPE, stderr=errf, pass_fds=(resf.fileno(), outf.fileno()),
            start_new_session=True, close_fds=True)
        try:
            out, _ = proc.communicate(timeout=backstop)
        except subprocess.TimeoutExpired:
            _killpg(proc.pid)
            out, _ = proc.communicate()
            out = b'{"status": "backstop"}\n'
        _killpg(proc.pid)
        status: dict[str, Any] = {"status": "lost"}
        for line in out[:65536].splitlines():
            try:
                parsed = json.loads(line.decode("utf-8", "replace"))
            except ValueError:
                continue
            if isinstance(parsed, dict) and isinstance(parsed.get("status"), str):
                status = parsed
                break
        stderr_tail = _tail_fd(errf.fileno())
        problem, result, outputs = "", None, None
        try:
            result = _read_fd(resf.fileno(), 4 * 2**20) or None
            outputs = _read_fd(outf.fileno(), lim.output_mb * 2**20 + 2**20) or None
        except (ValueError, OSError) as e:
            problem = str(e)
        return status, stderr_tail, result, outputs, problem


def _base_env(workdir: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": workdir, "XDG_CACHE_HOME": workdir,
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


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
        # members whose data overlap would let a small archive expand into many copies of the
        # same bytes (older Pythons' zipfile does not check): every member's bytes must be its
        # own, so together they fit in the archive and in the limit
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                raise ValueError("unexpected member in the result archive")
        if sum(i.file_size for i in infos) > min(len(data), limit):
            raise ValueError("the arrays' declared sizes exceed the archive")
        spans = sorted((i.header_offset, i.header_offset + 30 + len(i.filename.encode())
                        + i.compress_size) for i in infos)
        if any(b[0] < a[1] for a, b in zip(spans, spans[1:])):
            raise ValueError("archive members overlap")
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
    """A pool of ``slots`` run slots (each with its own uid when root). Use as a context manager.

    ``hidden``: folders the learner must not see (the hidden tests in use); in the namespaces
    mode no folder that contains one of them is bound into the sandbox's view."""

    def __init__(self, slots: int, limits: Limits = Limits(), hidden: tuple[Path, ...] = (),
                 mode: str | None = None) -> None:
        self.limits = limits
        self.mode = mode or choose_mode()
        self.root = self.mode != MODE_SAME_USER
        self._slots: queue.Queue[tuple[int, int]] = queue.Queue()
        self._locks: list[int] = []
        self.uids: list[int] = []
        self._view = ""
        self._binds: list[str] = []
        if self.mode == MODE_NAMESPACES:
            from .paths import PACKAGE_ROOT
            self._view = tempfile.mkdtemp(prefix="course-sandbox-view-")
            self._binds = _bind_paths([*hidden, PACKAGE_ROOT / "tests", PACKAGE_ROOT / "solutions"])
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
        for uid in range(UID_BASE, UID_BASE + UID_RANGE - 1):  # the last one is the probe's
            try:
                pwd.getpwuid(uid)
                continue                    # a real account: never use it
            except KeyError:
                pass
            fd = os.open(lockdir / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._locks.append(fd)
            uids.append(uid)
            if len(uids) == n:
                return uids
        raise RuntimeError("no free sandbox uid (all of 61000-61998 are in use)")

    def close(self) -> None:
        for uid in self.uids:
            kill_uid(uid, uid)
            for _ in range(50):              # zombies of killed orphans reach us a moment later
                _reap_orphans(uid)
                if not _any_process_of(uid):
                    break
                time.sleep(0.01)
            if self.mode != MODE_NAMESPACES:
                remove_ipc_of(uid)
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()
        if self._view:
            try:
                os.rmdir(self._view)
            except OSError:
                pass
            self._view = ""

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

    def run(self, job: dict[str, Any], arrays: dict[str, np.ndarray],
            timeout: float | None = None) -> RunResult:
        """Run one exercise job (see course/_harness.py for its fields) and read back its result."""
        timeout = timeout or self.limits.timeout
        with self._slot() as (_, uid):
            work = ""
            try:
                if self.mode == MODE_NAMESPACES:
                    workdir = "/tmp"
                else:
                    work = tempfile.mkdtemp(prefix="course-grade-")
                    if self.root:
                        os.chown(work, uid, uid)
                    os.chmod(work, 0o700)
                    workdir = work
                return self._run_in(workdir, uid, job, arrays, timeout)
            finally:
                if self.root and self.mode != MODE_NAMESPACES:
                    kill_uid(uid, uid)
                    self._clean_shared_places(uid)
                    remove_ipc_of(uid)
                if work:
                    shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def _clean_shared_places(uid: int) -> None:
        """Remove what the sandbox uid left in world-writable places (no namespaces only)."""
        for d in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/dev/mqueue"):
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

    def _run_in(self, workdir: str, uid: int, job: dict[str, Any], arrays: dict[str, np.ndarray],
                timeout: float) -> RunResult:
        lim = self.limits
        job = dict(job)
        job["max_output_bytes"] = lim.output_mb * 2**20
        box = {"mode": "namespaces" if self.mode == MODE_NAMESPACES else "plain",
               "uid": uid if self.root else None, "keep_read_cap": self.mode == MODE_READ_CAP,
               "seccomp": True, "timeout": timeout, "root": self._view, "binds": self._binds,
               "workdir": workdir,
               "limits": {"cpu": int(timeout) + 2, "as": lim.memory_mb * 2**20,
                          "fsize": lim.file_mb * 2**20,
                          "nproc": lim.nproc if self.root else _same_user_nproc(lim.nproc)}}
        start = time.monotonic()
        status, stderr_tail, raw, npz, problem = _launch(
            job, arrays, box, backstop=timeout + 15.0, env=_base_env(workdir), limits=lim)
        if self.root and self.mode != MODE_NAMESPACES:
            kill_uid(uid, uid)  # before judging: no leftover process can run on
        seconds = time.monotonic() - start
        kind = status.get("status")
        if kind == "setup_failed" or (kind in ("exited", "signaled") and not status.get("ready")):
            return RunResult("sandbox_error", str(status.get("detail") or stderr_tail)[-2000:],
                             seconds=seconds)
        if kind in ("timeout", "backstop") or (kind == "signaled"
                                                and status.get("signal") == signal.SIGXCPU):
            return RunResult("timeout", f"did not finish within {timeout:g} s", seconds=seconds)
        if kind == "lost":
            return RunResult("crashed", "the sandbox's supervisor stopped without a report (was "
                             "it killed?)", seconds=seconds)
        if problem:
            return RunResult("invalid_output", problem, seconds=seconds)
        try:
            if raw is None:
                return self._died(status, stderr_tail, seconds)
            result = json.loads(raw.decode("utf-8", "replace"))
            if not isinstance(result, dict) or not isinstance(result.get("cases"), list):
                raise ValueError("the result has the wrong structure")
            arrs = load_npz_safely(npz, lim.output_mb * 2**20) if npz else {}
        except (ValueError, RecursionError) as e:
            return RunResult("invalid_output", str(e)[:300], seconds=seconds)
        return RunResult("ok", "", result, arrs, seconds)

    def _died(self, status: dict[str, Any], stderr_tail: str, seconds: float) -> RunResult:
        if "MemoryError" in stderr_tail or "bad_alloc" in stderr_tail \
                or "Cannot allocate memory" in stderr_tail:
            return RunResult("memory", "ran out of memory", seconds=seconds)
        if status.get("status") == "signaled":
            sig = status.get("signal")
            if sig == signal.SIGXFSZ:
                return RunResult("invalid_output", "wrote a file larger than the sandbox allows",
                                 seconds=seconds)
            try:
                name = signal.Signals(int(sig)).name
            except (ValueError, TypeError):
                name = f"signal {sig}"
            what = {"SIGSEGV": " (a segmentation fault)", "SIGKILL": " (killed)",
                    "SIGABRT": " (aborted)", "SIGSYS": " (a forbidden system call)"}.get(name, "")
            return RunResult("crashed", f"the Python process was stopped by {name}{what} before "
                             "returning a result", seconds=seconds)
        if status.get("code") == NOT_DONE and "Traceback" in stderr_tail:
            last = [ln for ln in stderr_tail.strip().splitlines() if ln.strip()][-1:]
            return RunResult("crashed", "the Python process stopped with an error outside your code "
                             f"({last[0].strip()[:300] if last else 'no message'}) before returning "
                             "a result: does your code call os._exit(), close files it did not "
                             "open, or change numpy?", seconds=seconds)
        return RunResult("crashed", f"the Python process exited (code {status.get('code')}) before "
                         "returning a result: does your code call os._exit() or exit the "
                         "interpreter?", seconds=seconds)


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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
