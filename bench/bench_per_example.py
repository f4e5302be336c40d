"""What do per-example gradients cost? nnlib.per_example against a loop and against one batch gradient.

For an MLP 64-32-10 (tanh, softmax cross-entropy) on N digits, times
  batch       one backward pass of the mean loss (autodiff): the batch gradient only;
  vectorised  per_example_grads: one backward pass and N outer products per layer;
  norms       per_example_sq_norms: one backward pass, |delta_i|^2 (|a_i|^2 + 1), no outer products;
  loop        per_example_grads_loop: N backward passes of one example each;
and prints each as a multiple of the batch gradient's time. The vectorised and looped results are
first checked to agree. Samples of the four alternate and the medians are reported; timings are
printed, never asserted.

    python bench/bench_per_example.py            # N = 64, 256, 1024 (about half a minute)
    python bench/bench_per_example.py --quick    # fewer samples
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))  # a checkout, uninstalled
import nnlib.functional as F  # noqa: E402
from nnlib import Tensor, nn  # noqa: E402
from nnlib.data import Standardiser, load_digits  # noqa: E402
from nnlib.gradcheck import relative_error  # noqa: E402
from nnlib.per_example import (flatten, per_example_grads, per_example_grads_loop,  # noqa: E402
                               per_example_sq_norms)


def sample(fn, min_seconds: float = 0.02) -> float:
    """Seconds per call of fn, repeating it until a sample lasts at least min_seconds."""
    reps, elapsed = 0, 0.0
    start = time.perf_counter()
    while elapsed < min_seconds:
        fn()
        reps += 1
        elapsed = time.perf_counter() - start
    return elapsed / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 samples per entry instead of 15")
    args = parser.parse_args()
    rounds = 5 if args.quick else 15
    X, y = load_digits()
    X = Standardiser().fit_transform(X)
    model = nn.MLP([64, 32, 10], "tanh", rng=0)

    def batch(xb, yb):
        model.zero_grad()
        F.cross_entropy(model(Tensor(xb)), yb).backward()

    print(f"MLP 64-32-10 on N digits, {rounds} samples per entry, median seconds (x: multiple of the batch gradient)")
    print(f"{'N':>6}  {'batch':>10}  {'vectorised':>16}  {'norms':>16}  {'loop':>18}")
    for n in (64, 256, 1024):
        xb, yb = X[:n], y[:n]
        fast, slow = per_example_grads(model, xb, yb), per_example_grads_loop(model, xb, yb)
        err = relative_error(flatten(fast), flatten(slow))
        assert err < 1e-12, f"vectorised and looped per-example gradients differ: {err:.1e}"
        entries = {"batch": lambda: batch(xb, yb), "vectorised": lambda: per_example_grads(model, xb, yb),
                   "norms": lambda: per_example_sq_norms(model, xb, yb),
                   "loop": lambda: per_example_grads_loop(model, xb, yb)}
        times = {k: [] for k in entries}
        for r in range(rounds):
            order = list(entries) if r % 2 == 0 else list(entries)[::-1]   # drifting load hits all alike
            for k in order:
                times[k].append(sample(entries[k]))
        med = {k: statistics.median(v) for k, v in times.items()}
        base = med["batch"]
        print(f"{n:6d}  {base:10.2e}  " + "  ".join(
            f"{med[k]:9.2e} ({med[k] / base:5.1f}x)" for k in ("vectorised", "norms", "loop")))


if __name__ == "__main__":
    main()
