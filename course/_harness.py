"""The program that runs inside the sandbox, one fresh interpreter per exercise.

Started as ``python -I -B _harness.py JOBDIR`` by course.sandbox. It sets its resource limits,
reads the job (the extracted notebook code, the exercise's ``call`` source and the inputs),
drops privileges, runs the learner's definitions and the call on every case, and writes
``out/result.json`` and ``out/outputs.npz``. It imports nothing from the course package.
Exit codes other than 0 and signals are interpreted by the grader; they never earn points.
"""
import ast
import builtins
import json
import linecache
import os
import resource
import sys
import traceback

SETUP_FAILED = 97


def set_limits(lim):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu"], lim["cpu"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (lim["as"], lim["as"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim["fsize"], lim["fsize"]))
    if lim.get("nproc"):
        resource.setrlimit(resource.RLIMIT_NPROC, (lim["nproc"], lim["nproc"]))


def drop_privileges(drop):
    """setgroups([]), setgid, setuid; keep only CAP_DAC_READ_SEARCH when asked."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def prctl(*args):
        if libc.prctl(*[ctypes.c_ulong(a) for a in args]) != 0:
            raise OSError(ctypes.get_errno(), f"prctl{args} failed")

    keep = drop["keep_read_cap"]
    cap_dac_read_search = 2
    try:
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
    except OSError:
        last = 40
    for cap in range(last + 1):            # shrink the bounding set (needs CAP_SETPCAP: still root)
        if not (keep and cap == cap_dac_read_search):
            try:
                prctl(24, cap, 0, 0, 0)     # PR_CAPBSET_DROP; best effort: NO_NEW_PRIVS below
            except OSError:                 # is what keeps setuid programs harmless
                pass
    if keep:
        prctl(8, 1, 0, 0, 0)                # PR_SET_KEEPCAPS
    os.setgroups([])
    os.setresgid(drop["gid"], drop["gid"], drop["gid"])
    os.setresuid(drop["uid"], drop["uid"], drop["uid"])
    if keep:
        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                        ("inheritable", ctypes.c_uint32)]
        hdr = Header(0x20080522, 0)         # _LINUX_CAPABILITY_VERSION_3
        data = (Data * 2)()
        bit = 1 << cap_dac_read_search
        data[0].effective = data[0].permitted = data[0].inheritable = bit
        if libc.capset(ctypes.byref(hdr), data) != 0:
            raise OSError(ctypes.get_errno(), "capset failed")
        prctl(47, 2, cap_dac_read_search, 0, 0)   # PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE
        prctl(8, 0, 0, 0, 0)
    prctl(38, 1, 0, 0, 0)                   # PR_SET_NO_NEW_PRIVS: no setuid binaries
    if os.getuid() != drop["uid"] or os.geteuid() != drop["uid"]:
        raise OSError("uid did not change")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise OSError("could regain root")


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
    except Exception:
        text = "(the exception's message could not be printed)"
    return {"type": type(e).__name__, "message": text, "where": learner_frame(e.__traceback__),
            "memory": isinstance(e, MemoryError),
            "not_implemented": isinstance(e, NotImplementedError)}


def main():
    np_savez = None
    jobdir = sys.argv[1]
    os.chdir(jobdir)
    with open("job.json", encoding="utf-8") as f:
        job = json.load(f)
    try:
        set_limits(job["limits"])
        import numpy as np
        np_savez = np.savez
        arrays = dict(np.load("inputs.npz", allow_pickle=False)) if job["has_arrays"] else {}
        if job.get("drop"):
            drop_privileges(job["drop"])
    except BaseException as e:  # the sandbox itself could not start: not the learner's fault
        sys.stderr.write(f"course sandbox setup failed: {type(e).__name__}: {e}\n")
        os._exit(SETUP_FAILED)

    def decode(spec):
        return arrays[spec["npz"]] if "npz" in spec else spec["json"]

    cases = [{k: decode(v) for k, v in case.items()} for case in job["cases"]]
    out_dir = os.path.join(jobdir, "out")
    os.mkdir(out_dir, 0o700)
    json_dumps, open_ = json.dumps, builtins.open
    max_bytes = job["max_output_bytes"]
    result = {"setup_errors": [], "missing": [], "none": [], "cases": []}
    out_arrays = {}

    def finish():
        data = json_dumps(result, allow_nan=True)
        np_savez(os.path.join(out_dir, "outputs.npz"), **out_arrays)
        with open_(os.path.join(out_dir, "result.json"), "w", encoding="utf-8") as f:
            f.write(data)
        sys.stdout.flush()
        os._exit(0)

    # 1. the learner's imports, definitions and constants, statement by statement
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


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(98)
