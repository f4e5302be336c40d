"""How much does nnlib's autodiff cost over hand-written numpy? Times one training step side by side.

1. MLP 64-128-64-10, ReLU, softmax cross-entropy (mean), plain SGD: a full step (forward, backward,
   update) at batch 32, 256 and 4096, in float32 and float64.
2. tanh RNN (input 64, hidden 128, 50 steps, batch 32): forward and full BPTT of mean(outputs^2).

Each is run by nnlib and by a hand-written numpy forward/backward (below, written as one would
by hand: fused softmax-cross-entropy gradient, in-place updates, the RNN's input projection done
for all time steps in one matrix product), from the same weights and data; the two are first
checked to compute the same numbers. Samples of the two alternate (the order swapped every round,
so drifting machine load hits both alike), each sample runs enough steps to last >= 20 ms, and the
table reports medians. PyTorch CPU, when importable, is measured in a separate process with
torch.set_num_threads set to the number of BLAS threads numpy uses. BLAS threading is left as it is.

    python bench/bench_step.py              # full run (about a minute)
    python bench/bench_step.py --quick      # fewer samples, for a smoke test
    python bench/bench_step.py --profile    # plus cProfile of nnlib's MLP step at batch 32 and 256
    python bench/bench_step.py --json out.json

Never run inside tests: timings are reported, not asserted (see bench/README.md for the goals).
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))  # a checkout, uninstalled
import nnlib  # noqa: E402
import nnlib.functional as F  # noqa: E402
from nnlib import Tensor, nn, optim  # noqa: E402

MLP_SIZES = (64, 128, 64, 10)
MLP_BATCHES = (32, 256, 4096)
DTYPES = ("float32", "float64")
RNN_SHAPE = dict(input_size=64, hidden_size=128, steps=50, batch=32)
LR = 1e-3
GOALS = {32: 1.30, 256: 1.15, 4096: 1.00}   # nnlib / numpy at most this, per MLP batch size


# ===================================================================== environment
def blas_info() -> dict:
    """Which BLAS numpy uses and how many threads it runs (threadpoolctl if installed, else ask
    OpenBLAS directly through ctypes, else say we do not know)."""
    info: dict = {"numpy": np.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
                  "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                          if k in os.environ}}
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{deps.get('name')} {deps.get('version')}"
    except Exception:  # older numpy: no dict mode
        info["blas"] = "unknown"
    try:
        import threadpoolctl
        pools = threadpoolctl.threadpool_info()
        info["threads"] = max((p["num_threads"] for p in pools if p.get("user_api") == "blas"), default=None)
        info["threads_from"] = "threadpoolctl"
        return info
    except ImportError:
        pass
    info["threads"], info["threads_from"] = _openblas_threads(), "OpenBLAS via ctypes"
    if info["threads"] is None:
        info["threads_from"] = "unknown (install threadpoolctl to see it)"
    return info


def _openblas_threads() -> int | None:
    candidates = []
    try:
        with open("/proc/self/maps") as f:
            candidates = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})
    except OSError:
        candidates = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*"))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            fn = getattr(lib, symbol, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                return int(fn())
    return None


# ===================================================================== timing
def interleaved_samples(fns: dict[str, Callable[[], object]], rounds: int, min_sample: float = 0.02) -> dict:
    """Seconds per call of each function, one sample per round. Each sample repeats a function
    enough times to last min_sample seconds; samples of different functions alternate, the order
    swapped each round, so that a change in machine load hits all of them alike."""
    reps = {}
    for name, fn in fns.items():          # warm up and calibrate
        fn()
        n = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            elapsed = time.perf_counter() - t0
            if elapsed >= min_sample:
                break
            n = max(n * 2, int(n * min_sample / max(elapsed, 1e-9) * 1.2))
        reps[name] = n
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn, n = fns[name], reps[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return samples


def compare(samples: dict[str, list[float]], a: str = "nnlib", b: str = "numpy") -> dict:
    """Median times, and the ratio a/b as the median of the per-round ratios (paired samples, taken
    back to back, so slow drifts in load cancel) with its interquartile range."""
    ratios = [x / y for x, y in zip(samples[a], samples[b])]
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
    return {f"{a}_ms": 1e3 * statistics.median(samples[a]), f"{b}_ms": 1e3 * statistics.median(samples[b]),
            f"{a}_min_ms": 1e3 * min(samples[a]), f"{b}_min_ms": 1e3 * min(samples[b]),
            "ratio": statistics.median(ratios), "ratio_iqr": [q[0], q[2]],
            "min_ratio": min(samples[a]) / min(samples[b])}


# ===================================================================== MLP: nnlib
def mlp_data(batch: int, dtype: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, MLP_SIZES[0])).astype(dtype), rng.integers(0, MLP_SIZES[-1], size=batch)


def nnlib_mlp(dtype: str):
    model = nn.MLP(MLP_SIZES, activation="relu", rng=0, dtype=np.dtype(dtype))
    opt = optim.SGD(model.parameters(), lr=LR)

    def step(x: np.ndarray, y: np.ndarray) -> float:
        opt.zero_grad()
        loss = F.cross_entropy(model(Tensor(x)), y)
        loss.backward()
        opt.step()
        return float(loss.data)
    return model, step


# ===================================================================== MLP: hand-written numpy
def numpy_mlp(params: list[np.ndarray]):
    """The same step by hand. params: W1, b1, W2, b2, W3, b3 with W of shape (out, in); updated in place."""
    W1, b1, W2, b2, W3, b3 = params

    def step(x: np.ndarray, y: np.ndarray) -> float:
        n = x.shape[0]
        rows = np.arange(n)
        a1 = x @ W1.T
        a1 += b1
        np.maximum(a1, 0, out=a1)
        a2 = a1 @ W2.T
        a2 += b2
        np.maximum(a2, 0, out=a2)
        z = a2 @ W3.T
        z += b3
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        s = p.sum(axis=1, keepdims=True)
        loss = float(np.log(s).mean() - z[rows, y].mean())
        p /= s                             # softmax; dL/dz = (p - onehot) / n
        p[rows, y] -= 1.0
        p /= n
        gW3, gb3 = p.T @ a2, p.sum(axis=0)
        d2 = p @ W3
        d2 *= a2 > 0
        gW2, gb2 = d2.T @ a1, d2.sum(axis=0)
        d1 = d2 @ W2
        d1 *= a1 > 0
        gW1, gb1 = d1.T @ x, d1.sum(axis=0)
        for param, grad in ((W1, gW1), (b1, gb1), (W2, gW2), (b2, gb2), (W3, gW3), (b3, gb3)):
            param -= LR * grad
        return loss
    return step


def check_mlp_agree(dtype: str) -> None:
    x, y = mlp_data(64, dtype, seed=1)
    model, step = nnlib_mlp(dtype)
    params = [p.data.copy() for p in model.parameters()]
    hand = numpy_mlp(params)
    rtol = 1e-4 if dtype == "float32" else 1e-10
    for _ in range(2):
        l1, l2 = step(x, y), hand(x, y)
        np.testing.assert_allclose(l1, l2, rtol=rtol)
    for p, q in zip(model.parameters(), params):
        assert p.dtype == q.dtype == np.dtype(dtype)
        np.testing.assert_allclose(p.data, q, rtol=rtol, atol=rtol * 1e-2)


# ===================================================================== RNN: nnlib and numpy
def rnn_data(dtype: str, seed: int = 0) -> np.ndarray:
    s = RNN_SHAPE
    return np.random.default_rng(seed).normal(size=(s["steps"], s["batch"], s["input_size"])).astype(dtype)


def nnlib_rnn(dtype: str):
    rnn = nn.RNN(RNN_SHAPE["input_size"], RNN_SHAPE["hidden_size"], rng=0, dtype=np.dtype(dtype))

    def fwd_bwd(x: np.ndarray) -> list[np.ndarray]:
        rnn.zero_grad()
        outputs, _ = rnn(x)
        (outputs * outputs).mean().backward()
        return [p.grad for p in rnn.parameters()]
    return rnn, fwd_bwd


def numpy_rnn(params: list[np.ndarray]):
    """h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), h_0 = 0; loss = mean(h^2) over all steps."""
    W_ih, W_hh, b_ih, b_hh = params

    def fwd_bwd(x: np.ndarray) -> list[np.ndarray]:
        T, N, I = x.shape
        H = W_hh.shape[0]
        hs = np.empty((T + 1, N, H), dtype=x.dtype)
        hs[0] = 0.0
        pre = (x.reshape(T * N, I) @ W_ih.T).reshape(T, N, H)   # every step's input projection at once
        pre += b_ih + b_hh
        for t in range(T):
            a = pre[t] + hs[t] @ W_hh.T if t else pre[t]
            np.tanh(a, out=hs[t + 1])
        out = hs[1:]
        dA = np.empty_like(out)
        dh = np.zeros((N, H), dtype=x.dtype)
        scale = x.dtype.type(2.0 / out.size)
        for t in range(T - 1, -1, -1):
            dh += out[t] * scale
            da = dh * (1.0 - out[t] * out[t])
            dA[t] = da
            if t:
                dh = da @ W_hh
        dA2 = dA.reshape(T * N, H)
        g_ih = dA2.T @ x.reshape(T * N, I)
        g_hh = dA[1:].reshape(-1, H).T @ hs[1:T].reshape(-1, H)
        g_b = dA2.sum(axis=0)
        return [g_ih, g_hh, g_b, g_b]
    return fwd_bwd


def check_rnn_agree(dtype: str) -> None:
    x = rnn_data(dtype, seed=1)[:7, :4]
    rnn, fwd_bwd = nnlib_rnn(dtype)
    hand = numpy_rnn([p.data for p in rnn.parameters()])
    rtol = 1e-3 if dtype == "float32" else 1e-10
    for g1, g2 in zip(fwd_bwd(x), hand(x)):
        assert g1.dtype == g2.dtype == np.dtype(dtype), (g1.dtype, g2.dtype)
        np.testing.assert_allclose(g1, g2, rtol=rtol, atol=rtol * np.abs(g2).max())


# ===================================================================== PyTorch, in its own process
TORCH_WORKER = r"""
import json, sys, time, statistics
import numpy as np
try:
    import torch
except ImportError:
    print(json.dumps({"skipped": "PyTorch is not installed"})); sys.exit(0)
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
def median_time(fn, rounds, min_sample=0.02):
    fn(); n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n): fn()
        el = time.perf_counter() - t0
        if el >= min_sample: break
        n = max(n * 2, int(n * min_sample / max(el, 1e-9) * 1.2))
    s = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n): fn()
        s.append((time.perf_counter() - t0) / n)
    return statistics.median(s)
out = {"version": torch.__version__, "threads": torch.get_num_threads(), "mlp": {}, "rnn": {}}
for dtype in cfg["dtypes"]:
    tdt = getattr(torch, dtype)
    torch.manual_seed(0)
    for batch in cfg["batches"]:
        sizes = cfg["sizes"]
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers).to(tdt)
        opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.normal(size=(batch, sizes[0])).astype(dtype))
        y = torch.from_numpy(rng.integers(0, sizes[-1], size=batch))
        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        out["mlp"][f"{dtype}/{batch}"] = median_time(step, cfg["rounds"])
    r = cfg["rnn"]
    rnn = torch.nn.RNN(r["input_size"], r["hidden_size"], nonlinearity="tanh").to(tdt)
    xr = torch.from_numpy(np.random.default_rng(0).normal(size=(r["steps"], r["batch"], r["input_size"])).astype(dtype))
    def fwd_bwd():
        rnn.zero_grad()
        o, _ = rnn(xr)
        (o * o).mean().backward()
    out["rnn"][dtype] = median_time(fwd_bwd, cfg["rounds"])
print(json.dumps(out))
"""


def run_torch(threads: int, rounds: int) -> dict:
    cfg = {"threads": threads, "rounds": rounds, "dtypes": list(DTYPES), "batches": list(MLP_BATCHES),
           "sizes": list(MLP_SIZES), "lr": LR, "rnn": RNN_SHAPE}
    try:
        proc = subprocess.run([sys.executable, "-c", TORCH_WORKER, json.dumps(cfg)], capture_output=True,
                              text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return {"skipped": "the PyTorch run timed out"}
    if proc.returncode != 0:
        return {"skipped": f"the PyTorch run failed: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ===================================================================== profile
def profile_nnlib_step(batch: int, dtype: str = "float32", top: int = 12, seconds: float = 1.0) -> str:
    import cProfile
    import io
    import pstats
    _, step = nnlib_mlp(dtype)
    x, y = mlp_data(batch, dtype)
    step(x, y)
    calls, t0 = 0, time.perf_counter()
    prof = cProfile.Profile()
    prof.enable()
    while time.perf_counter() - t0 < seconds:
        step(x, y)
        calls += 1
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    lines = [line for line in buf.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    head = f"cProfile of nnlib's MLP step, batch {batch}, {dtype}: {calls} steps, sorted by own time (tottime)"
    return "\n".join([head] + lines[start:])


# ===================================================================== main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="7 samples per entry instead of 21")
    ap.add_argument("--rounds", type=int, default=None, help="samples per entry (default 21, --quick 7)")
    ap.add_argument("--only", choices=["mlp", "rnn"], default=None)
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    ap.add_argument("--profile", action="store_true", help="also print cProfile of nnlib's step at batch 32 and 256")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)
    rounds = args.rounds or (7 if args.quick else 21)

    env = blas_info()
    threads = env["threads"] or os.cpu_count() or 1
    print(f"nnlib {nnlib.__version__}, numpy {env['numpy']}, Python {env['python']}, {platform.machine()}, "
          f"{env['cpu_count']} CPUs")
    print(f"BLAS: {env['blas']}, threads: {env['threads']} ({env['threads_from']}); "
          f"thread env vars: {env['env'] or 'none set'} (threading left as it is)")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"{rounds} interleaved samples per entry, each >= 20 ms of repeated calls"
          + (f"; load average before the run {load[0]:.2f} (other processes add noise)" if load else "") + "\n")

    torch_res = {"skipped": "--no-torch"} if args.no_torch else run_torch(threads, rounds)
    has_torch = "skipped" not in torch_res
    results: dict = {"env": env, "rounds": rounds, "mlp": [], "rnn": [], "torch": torch_res}

    if args.only in (None, "mlp"):
        print("MLP 64-128-64-10, ReLU, softmax cross-entropy (mean), SGD: "
              "one training step (forward, backward, update)")
        head = (f"{'dtype':8} {'batch':>5}  {'nnlib ms':>9} {'numpy ms':>9}  {'nnlib/numpy':>11}  {'IQR':^11}  "
                f"{'of mins':>9}  {'goal':>6} {'':>4}")
        if has_torch:
            head += f"  {'torch ms':>9} {'nnlib/torch':>11}"
        print(head)
        print("-" * len(head))
        for dtype in DTYPES:
            check_mlp_agree(dtype)
            for batch in MLP_BATCHES:
                x, y = mlp_data(batch, dtype)
                model, nn_step = nnlib_mlp(dtype)
                np_step = numpy_mlp([p.data.copy() for p in model.parameters()])
                row = {"dtype": dtype, "batch": batch, **compare(interleaved_samples(
                    {"nnlib": lambda: nn_step(x, y), "numpy": lambda: np_step(x, y)}, rounds))}
                goal = GOALS[batch]
                row.update(goal=goal, met=row["ratio"] <= goal)
                lo, hi = row["ratio_iqr"]
                line = (f"{dtype:8} {batch:>5}  {row['nnlib_ms']:9.3f} {row['numpy_ms']:9.3f}  {row['ratio']:10.2f}x  "
                        f"{lo:5.2f}-{hi:<5.2f}  {row['min_ratio']:8.2f}x  "
                        f"{'<=' + format(goal, '.2f'):>6} {'ok' if row['met'] else 'MISS':>4}")
                if has_torch:
                    t = torch_res["mlp"][f"{dtype}/{batch}"]
                    line += f"  {t * 1e3:9.3f} {row['nnlib_ms'] / (t * 1e3):10.2f}x"
                    row["torch_ms"] = t * 1e3
                print(line)
                results["mlp"].append(row)
        print("times: medians; nnlib/numpy: median of the per-round ratios (the goal applies to it), IQR: their\n"
              "interquartile range; of mins: ratio of the fastest samples (least disturbed by other processes)\n")

    if args.only in (None, "rnn"):
        s = RNN_SHAPE
        print(f"tanh RNN, input {s['input_size']}, hidden {s['hidden_size']}, {s['steps']} steps, batch {s['batch']}: "
              "forward + full BPTT of mean(outputs^2)")
        head = f"{'dtype':8}  {'nnlib ms':>9} {'numpy ms':>9}  {'nnlib/numpy':>11}  {'IQR':^11}  {'of mins':>9}"
        if has_torch:
            head += f"  {'torch ms':>9} {'nnlib/torch':>11}"
        print(head)
        print("-" * len(head))
        for dtype in DTYPES:
            check_rnn_agree(dtype)
            x = rnn_data(dtype)
            rnn, nn_fb = nnlib_rnn(dtype)
            np_fb = numpy_rnn([p.data.copy() for p in rnn.parameters()])
            row = {"dtype": dtype, **compare(interleaved_samples(
                {"nnlib": lambda: nn_fb(x), "numpy": lambda: np_fb(x)}, rounds))}
            lo, hi = row["ratio_iqr"]
            line = (f"{dtype:8}  {row['nnlib_ms']:9.3f} {row['numpy_ms']:9.3f}  {row['ratio']:10.2f}x  "
                    f"{lo:5.2f}-{hi:<5.2f}  {row['min_ratio']:8.2f}x")
            if has_torch:
                t = torch_res["rnn"][dtype]
                line += f"  {t * 1e3:9.3f} {row['nnlib_ms'] / (t * 1e3):10.2f}x"
                row["torch_ms"] = t * 1e3
            print(line)
            results["rnn"].append(row)
        print()

    if has_torch:
        print(f"PyTorch {torch_res['version']} CPU, {torch_res['threads']} threads, measured in a separate process")
    else:
        print(f"PyTorch comparison skipped: {torch_res['skipped']}")

    if args.profile:
        for batch in (32, 256):
            print()
            print(profile_nnlib_step(batch))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
