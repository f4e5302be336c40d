"""The program that runs one exercise of untrusted learner code. It imports nothing from course.

Started by course.sandbox as ``python -I -B _harness.py`` (as root when the grader is root), with

- fd 0: an unlinked file only the grader and this process hold: an 8-byte length, the job as
  JSON (the kept notebook code, the exercise's ``call`` source, the cases, the limits, the
  isolation mode and the uid to run as), then the inputs as an .npz;
- fd 1: a pipe to the grader, on which only the supervisor (never learner code) writes one
  JSON line: how the learner's process ended;
- fd 2: an unlinked file for the learner's stderr; fds 3 and 4: unlinked files for the result
  (JSON) and the output arrays (.npz), which the grader reads back, bounded, through its own
  descriptors after every process of the run is gone.

Three processes (two with the ``namespaces`` mode):

``launcher`` (this process, root): reads the job, then, in the ``namespaces`` mode, unshares the
PID, mount, IPC, network and UTS namespaces and forks the supervisor, which becomes PID 1 of
the new PID namespace; it waits for it and exits. In the other modes it is the supervisor.

``supervisor`` (root, trusted): in the ``namespaces`` mode builds a private file-system view (a
read-only tmpfs root holding only the interpreter, the libraries and nnlib, a fresh /proc that
shows only the run's processes, private /tmp, /dev/shm, /run/lock) and pivots into it. It forks
the learner process, waits for it with the wall-clock timeout, reaps orphans, kills everything
left (``kill(-1)`` from PID 1 of the namespace; the kernel then kills whatever remains when PID 1
exits, whatever /proc says about it) and writes the status line.

``learner``: sets the resource limits, drops to the sandbox uid (``setgroups([])``,
``setresgid``, ``setresuid``; only ``CAP_DAC_READ_SEARCH`` kept in the fallback mode that needs
it), sets ``PR_SET_NO_NEW_PRIVS``, installs a seccomp filter (no new namespaces, no
``open_by_handle_at``, no ptrace, keyrings, bpf, perf or io_uring), and only then imports numpy,
decodes the inputs and runs the learner's statements and the exercise's call on every case.
"""
import ast
import builtins
import ctypes
import errno
import io
import json
import linecache
import os
import platform
import resource
import signal
import struct
import sys
import time
import traceback

SETUP_FAILED = 97
NOT_DONE = 98

# ------------------------------------------------------------------------------------------------
# libc

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.syscall.restype = ctypes.c_long

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
CLONE_NEWCGROUP = 0x02000000
NAMESPACE_FLAGS = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID \
    | CLONE_NEWNET | CLONE_NEWCGROUP
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2


def _check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(source, target, fstype, flags, data=None):
    enc = (lambda s: None if s is None else s.encode())
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def prctl(*args):
    if _libc.prctl(*[ctypes.c_ulong(a) for a in args]) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl{args}: {os.strerror(e)}")


# Syscall numbers of the architectures the seccomp filter knows (others run without it).
_ARCH = {
    "x86_64": {"audit": 0xC000003E, "pivot_root": 155, "clone": 56, "clone3": 435, "unshare": 272,
               "setns": 308, "blocked": [304, 101, 248, 249, 250, 321, 298, 323, 425, 426, 427,
                                         165, 166, 155, 161, 310, 311, 428, 429, 430, 431, 432, 433]},
    "aarch64": {"audit": 0xC00000B7, "pivot_root": 41, "clone": 220, "clone3": 435, "unshare": 97,
                "setns": 268, "blocked": [265, 117, 217, 218, 219, 280, 241, 282, 425, 426, 427,
                                          40, 39, 41, 51, 270, 271, 428, 429, 430, 431, 432, 433]},
}
# blocked (EPERM): open_by_handle_at, ptrace, add_key, request_key, keyctl, bpf, perf_event_open,
# userfaultfd, io_uring_setup/enter/register, mount, umount2, pivot_root, chroot,
# process_vm_readv/writev, open_tree, move_mount, fsopen, fsconfig, fsmount, fspick


def seccomp_filter():
    """Install the learner's seccomp filter; returns False where the architecture is unknown."""
    arch = _ARCH.get(platform.machine())
    if arch is None:
        return False
    LD, JEQ, JSET, RET = 0x20, 0x15, 0x45, 0x06     # BPF_LD|W|ABS, BPF_JMP|JEQ|K, JSET|K, RET|K
    JGE = 0x35
    ALLOW, KILL = 0x7FFF0000, 0x80000000
    EPERM, ENOSYS = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    prog = [(LD, 0, 0, 4), (JEQ, 1, 0, arch["audit"]), (RET, 0, 0, KILL), (LD, 0, 0, 0)]
    if platform.machine() == "x86_64":
        prog += [(JGE, 0, 1, 0x40000000), (RET, 0, 0, EPERM)]        # the x32 ABI
    prog += [(JEQ, 0, 1, arch["clone3"]), (RET, 0, 0, ENOSYS)]       # glibc falls back to clone
    for nr in [arch["unshare"], arch["setns"], *arch["blocked"]]:
        prog += [(JEQ, 0, 1, nr), (RET, 0, 0, EPERM)]
    prog += [(JEQ, 0, 3, arch["clone"]), (LD, 0, 0, 16), (JSET, 0, 1, NAMESPACE_FLAGS),
             (RET, 0, 0, EPERM), (RET, 0, 0, ALLOW)]

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    filt = (SockFilter * len(prog))(*[SockFilter(*ins) for ins in prog])
    fprog = SockFprog(len(prog), filt)
    if _libc.prctl(ctypes.c_int(22), ctypes.c_ulong(2), ctypes.byref(fprog), ctypes.c_ulong(0),
                   ctypes.c_ulong(0)) != 0:          # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        e = ctypes.get_errno()
        raise OSError(e, f"seccomp: {os.strerror(e)}")
    return True


# ------------------------------------------------------------------------------------------------
# The private file-system view (namespaces mode, supervisor, root)

def _mkdirs(path):
    parts = path.strip("/").split("/")
    cur = ""
    for part in parts:
        cur += "/" + part
        try:
            os.mkdir(cur, 0o755)
        except FileExistsError:
            pass


def build_root(root, binds, uid):
    """Mount a private, read-only view under ``root`` and pivot into it."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,nr_inodes=4096,mode=755")
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + top
        if os.path.islink(host):
            os.symlink(os.readlink(host), root + host)
        elif os.path.isdir(host):
            binds = [host] + list(binds)
    # the private scratch folders first: a course installed under /tmp (a clone in /tmp, say) is
    # then bound on top of its private /tmp instead of being hidden by it
    for d in ("/tmp", "/var/tmp", "/run/lock"):
        _mkdirs(root + d)
        mount("tmpfs", root + d, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,nr_inodes=16384,mode=1777")
    done = []
    for src in sorted(set(["/usr"] + list(binds)), key=len):
        if not os.path.exists(src) or any(src == d or src.startswith(d.rstrip("/") + "/") for d in done):
            continue
        dst = root + src
        if os.path.isdir(src):
            _mkdirs(dst)
        else:
            _mkdirs(os.path.dirname(dst))
            open(dst, "a").close()
        mount(src, dst, None, MS_BIND | MS_REC)
        mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        done.append(src)
    _mkdirs(root + "/etc")
    for name in ("ld.so.cache", "localtime"):
        if os.path.isfile("/etc/" + name):
            open(f"{root}/etc/{name}", "a").close()
            mount("/etc/" + name, f"{root}/etc/{name}", None, MS_BIND)
            mount(None, f"{root}/etc/{name}", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    with open(root + "/etc/passwd", "w") as f:
        f.write(f"root:x:0:0::/:/bin/false\nsandbox:x:{uid}:{uid}::/tmp:/bin/false\n")
    with open(root + "/etc/group", "w") as f:
        f.write(f"root:x:0:\nsandbox:x:{uid}:\n")
    _mkdirs(root + "/dev")
    mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for dev in ("null", "zero", "full", "random", "urandom"):
        open(f"{root}/dev/{dev}", "a").close()
        mount("/dev/" + dev, f"{root}/dev/{dev}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    for d in ("/dev/shm", "/dev/mqueue"):
        _mkdirs(root + d)
        if d == "/dev/mqueue":
            try:
                mount("mqueue", root + d, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            except OSError:
                pass
            continue
        mount("tmpfs", root + d, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,nr_inodes=16384,mode=1777")
    _mkdirs(root + "/proc")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(root)
    nr = _ARCH.get(platform.machine(), {}).get("pivot_root")
    if nr is None:
        os.chroot(".")
    else:
        if _libc.syscall(ctypes.c_long(nr), b".", b".") != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"pivot_root: {os.strerror(e)}")
        _check(_libc.umount2(b".", MNT_DETACH), "umount the old root")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


# ------------------------------------------------------------------------------------------------
# Privileges (learner process)

def set_limits(lim):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu"], lim["cpu"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (lim["as"], lim["as"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim["fsize"], lim["fsize"]))
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))
    if lim.get("nproc"):
        resource.setrlimit(resource.RLIMIT_NPROC, (lim["nproc"], lim["nproc"]))


def drop_privileges(uid, keep_read_cap):
    """setgroups([]), setresgid, setresuid; keep only CAP_DAC_READ_SEARCH when asked."""
    cap_dac_read_search = 2
    try:
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
    except (OSError, ValueError):
        last = 40
    for cap in range(last + 1):            # shrink the bounding set (needs CAP_SETPCAP: still root)
        if not (keep_read_cap and cap == cap_dac_read_search):
            try:
                prctl(24, cap, 0, 0, 0)     # PR_CAPBSET_DROP
            except OSError:
                pass
    if keep_read_cap:
        prctl(8, 1, 0, 0, 0)                # PR_SET_KEEPCAPS
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if keep_read_cap:
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                        ("inheritable", ctypes.c_uint32)]
        hdr = Header(0x20080522, 0)         # _LINUX_CAPABILITY_VERSION_3
        data = (Data * 2)()
        bit = 1 << cap_dac_read_search
        data[0].effective = data[0].permitted = data[0].inheritable = bit
        _check(_libc.capset(ctypes.byref(hdr), data), "capset")
        prctl(47, 2, cap_dac_read_search, 0, 0)   # PR_CAP_AMBIENT_RAISE
        prctl(8, 0, 0, 0, 0)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("uid did not change")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise OSError("could regain root")


# ------------------------------------------------------------------------------------------------
# Running the learner's code (learner process, unprivileged)

def learner_frame(tb):
    """(cell, line, function, code) of the deepest traceback frame in the learner's cells."""
    found = None
    for fs in traceback.extract_tb(tb):
        if fs.filename.startswith("<cell "):
            found = {"cell": fs.filename[6:-1], "line": fs.lineno, "function": fs.name,
                     "code": (fs.line or "").strip()[:160]}
    return found


def describe_exception(e):
    text = ""
    try:
        text = str(e).splitlines()[0][:300] if str(e) else ""
    except BaseException:
        text = "(the exception's message could not be printed)"
    return {"type": type(e).__name__[:100], "message": text, "where": learner_frame(e.__traceback__),
            "memory": isinstance(e, MemoryError),
            "not_implemented": isinstance(e, NotImplementedError)}


def run_learner(job, npz_bytes, result_fd, outputs_fd):
    import numpy as np
    np_savez = np.savez
    arrays = dict(np.load(io.BytesIO(npz_bytes), allow_pickle=False)) if npz_bytes else {}

    def decode(spec):
        if "npz_list" in spec:
            return [arrays[name] for name in spec["npz_list"]]
        return arrays[spec["npz"]] if "npz" in spec else spec["json"]

    cases = [{k: decode(v) for k, v in case.items()} for case in job["cases"]]
    json_dumps, write, ftruncate, lseek = json.dumps, os.write, os.ftruncate, os.lseek
    max_bytes = job["max_output_bytes"]
    result = {"setup_errors": [], "missing": [], "none": [], "cases": []}
    out_arrays = {}

    def put(fd, data):
        ftruncate(fd, 0)
        lseek(fd, 0, 0)
        view = memoryview(data)
        while view:
            view = view[write(fd, view):]

    def finish():
        buf = io.BytesIO()
        np_savez(buf, **out_arrays)
        put(outputs_fd, buf.getvalue())
        put(result_fd, json_dumps(result, allow_nan=True).encode("utf-8", "backslashreplace"))
        sys.stdout.flush()
        os._exit(0)

    # 1. the learner's imports, definitions and assignments, statement by statement
    ns = {"__name__": "__main__", "__builtins__": builtins}
    for cell in job["code"]:
        name = f"<cell {cell['cell'] + 1}>"
        lines = cell["source"].splitlines(True)
        linecache.cache[name] = (len(cell["source"]), None, lines, name)
        try:
            tree = ast.parse(cell["source"], name)
        except BaseException:
            continue
        for k in cell["keep"]:
            stmt = tree.body[k]
            try:
                exec(compile(ast.Module([stmt], []), name, "exec"), ns)
            except BaseException as e:
                info = describe_exception(e)
                info["cell"], info["line"] = cell["cell"] + 1, stmt.lineno
                result["setup_errors"].append(info)
    # 2. the names the exercise needs
    for n in job["needs"]:
        if n not in ns:
            result["missing"].append(n)
        elif ns[n] is None:
            result["none"].append(n)
    if result["missing"] or result["none"]:
        finish()
    # 3. the exercise's call, once per case
    cg = {"__builtins__": builtins, "np": np, "__name__": "course_call"}
    exec(compile(job["call_source"], "<hidden test call>", "exec"), cg)
    call = cg[job["call_name"]]
    total = 0
    for i, inp in enumerate(cases):
        try:
            got = call(ns, inp)
        except BaseException as e:
            result["cases"].append({"status": "exception", **describe_exception(e)})
            break
        entry = {"status": "ok", "outputs": {}}
        if not isinstance(got, dict):
            result["cases"].append({"status": "invalid", "message":
                                    f"the test's call returned {type(got).__name__}, not a dict"})
            break
        try:
            for key, v in got.items():
                key = str(key)[:100]
                if v is None or isinstance(v, (bool, str)) or type(v) in (int, float):
                    if isinstance(v, str) and len(v) > 100_000:
                        raise ValueError(f"returned a string of {len(v)} characters")
                    if type(v) is int and abs(v) > 2 ** 63:
                        v = float(v)
                    entry["outputs"][key] = {"json": v}
                    continue
                arr = np.asarray(v)
                if arr.dtype.kind not in "biufcU" or arr.dtype.fields is not None:
                    raise ValueError(f"returned an object of type {type(v).__name__}"
                                     + (f" (numpy dtype {arr.dtype})" if isinstance(v, np.ndarray)
                                        else "") + ", not numbers, booleans or text")
                total += arr.nbytes
                if total > max_bytes:
                    raise ValueError(f"returned {arr.nbytes / 2**20:.0f} MiB of data (shape "
                                     f"{arr.shape}), far more than the answer needs")
                name = f"c{i}.{len(out_arrays)}"
                out_arrays[name] = arr
                entry["outputs"][key] = {"npz": name}
        except BaseException as e:
            msg = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
            result["cases"].append({"status": "invalid", "message": msg[:300]})
            break
        result["cases"].append(entry)
    finish()


def learner(job, npz_bytes, box, status_w, ready_r, ready_w):
    """The learner's process: limits, privileges, seccomp, then the learner's code. Once set up
    it says so on the ready pipe, so that what it does afterwards (exit code 97 included) can
    never pass for a failure of the sandbox."""
    try:
        import fcntl

        # the result file, the arrays file and the ready pipe go to fds 3, 4 and 5; their numbers
        # in this process are whatever the grader's were, so first move all three above any fd
        # they will land on (a ready pipe that had taken the result file's number once made the
        # result go into the pipe: ftruncate failed with EINVAL, and a right answer "crashed")
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100)
                for fd in (box["result_fd"], box["outputs_fd"], ready_w)]
        devnull = os.open("/dev/null", os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        for target, fd in zip((3, 4, 5), high):
            os.dup2(fd, target)
        ready_w = 5
        os.closerange(6, 1 << 16)           # status_w, ready_r and the originals go too
        os.chdir(box["workdir"])
        set_limits(box["limits"])
        if box["uid"] is not None:
            drop_privileges(box["uid"], box["keep_read_cap"])
        prctl(38, 1, 0, 0, 0)               # PR_SET_NO_NEW_PRIVS: no setuid binaries
        if box["seccomp"]:
            seccomp_filter()
        os.write(ready_w, b"1")
        os.close(ready_w)
        if box.get("probe"):                # the sandbox's self-test: set up, then stop
            os._exit(0)
    except BaseException as e:  # the sandbox itself could not start: not the learner's fault
        sys.stderr.write(f"course sandbox setup failed: {type(e).__name__}: {e}\n")
        sys.stderr.flush()
        os._exit(SETUP_FAILED)
    try:
        run_learner(job, npz_bytes, 3, 4)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
    os._exit(NOT_DONE)


# ------------------------------------------------------------------------------------------------
# Supervisor and launcher (root, trusted)

def report(fd, **status):
    data = (json.dumps(status) + "\n").encode()
    try:
        os.write(fd, data)
    except OSError:
        pass


def supervise(job, npz_bytes, box, in_namespace):
    """Start the learner, wait for it (wall-clock timeout), kill what is left, report on fd 1."""
    status_fd = os.dup(1)
    for sig in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    try:
        if in_namespace:
            build_root(box["root"], box["binds"], box["uid"])
            try:
                _libc.sethostname(b"sandbox", 7)
            except OSError:
                pass
    except BaseException as e:
        sys.stderr.write(f"course sandbox setup failed: {type(e).__name__}: {e}\n")
        report(status_fd, status="setup_failed", detail=f"{type(e).__name__}: {e}"[:500])
        os._exit(SETUP_FAILED)
    start = time.monotonic()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        learner(job, npz_bytes, box, status_fd, ready_r, ready_w)
    os.close(ready_w)
    os.set_blocking(ready_r, False)
    deadline = start + box["timeout"]
    status = None
    while status is None:
        try:
            got, wstatus, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if got == pid:
            cpu = usage.ru_utime + usage.ru_stime
            if os.WIFEXITED(wstatus):
                status = {"status": "exited", "code": os.WEXITSTATUS(wstatus), "cpu": cpu}
            else:
                status = {"status": "signaled", "signal": os.WTERMSIG(wstatus), "cpu": cpu}
            break
        if got == 0:
            if time.monotonic() > deadline:
                status = {"status": "timeout"}
                break
            time.sleep(0.002)
    status["seconds"] = time.monotonic() - start
    try:
        status["ready"] = os.read(ready_r, 1) == b"1"
    except OSError:
        status["ready"] = False
    if in_namespace:
        try:
            os.kill(-1, signal.SIGKILL)    # PID 1 of the namespace: every other process in it
        except OSError:
            pass
    else:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    report(status_fd, **status)
    os._exit(0)


def main():
    raw = b""
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        raw += chunk
    (n,) = struct.unpack("<Q", raw[:8])
    job = json.loads(raw[8:8 + n].decode("utf-8"))
    npz_bytes = raw[8 + n:]
    box = job.pop("sandbox")
    if box["mode"] == "namespaces":
        try:
            _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET
                                 | CLONE_NEWUTS), "unshare")
        except OSError as e:
            report(1, status="setup_failed", detail=str(e))
            os._exit(SETUP_FAILED)
        pid = os.fork()
        if pid == 0:
            supervise(job, npz_bytes, box, True)
        for sig in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue
        os._exit(0)
    supervise(job, npz_bytes, box, False)


if __name__ == "__main__":
    try:
        main()
    except BaseException as e:
        report(1, status="setup_failed", detail=f"{type(e).__name__}: {e}"[:500])
        os._exit(SETUP_FAILED)
