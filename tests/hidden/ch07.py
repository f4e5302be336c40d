"""Hidden tests of chapter 07: how big should the mini-batch be?

Reference answers are computed here in plain numpy, independently of nnlib and of the learner's
code: the per-example gradients by a loop over examples (one forward and backward pass per
example), the noise scale from the explicit outer products (except for the one case too large
for them), the estimators and the batch-size rule from the chapter's unsimplified formulas.
"""
from __future__ import annotations

import hashlib

import numpy as np

from course.hidden import Exercise

_KEYS = ("W1", "b1", "W2", "b2", "W3", "b3")


# --------------------------------------------------------------------------------------------
# ch07.per_example_grads_2layer


def _net_case(rng: np.random.Generator, n: int, sizes: tuple[int, int, int, int], w_scale: float = 1.5,
              x_scale: float = 1.0, label_dtype=np.int64) -> dict:
    case = {"X": rng.normal(size=(n, sizes[0])) * x_scale,
            "y": rng.integers(0, sizes[3], size=n).astype(label_dtype)}
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        case[f"W{l}"] = rng.normal(size=(n_out, n_in)) * w_scale / np.sqrt(n_in)
        case[f"b{l}"] = rng.normal(size=n_out) * 0.5
    return case


def _peg_inputs(rng: np.random.Generator) -> list[dict]:
    cases = [_net_case(rng, 6, (4, 7, 5, 3)),
             _net_case(rng, 9, (2, 6, 4, 5), label_dtype=np.int32),
             # every layer square: a transposed weight gradient or W.T in the backward pass has the
             # right shape and wrong values
             _net_case(rng, 8, (3, 3, 3, 3), w_scale=2.0),
             # a batch of one
             _net_case(rng, 1, (5, 4, 6, 2))]
    # large values: saturated tanh units, and logits of +-800 (a softmax without the max
    # subtracted overflows)
    big = _net_case(rng, 5, (4, 6, 5, 3), w_scale=6.0, x_scale=3.0)
    big["b3"] = np.array([800.0, 0.0, -800.0])
    cases.append(big)
    return cases


def _peg_call(ns, inp):
    import numpy as np
    args = [np.array(inp[k], copy=True) for k in ("X", "y", "W1", "b1", "W2", "b2", "W3", "b3")]
    out = ns["per_example_grads_2layer"](*args)
    if not isinstance(out, dict):
        raise TypeError("per_example_grads_2layer must return a dict with keys W1, b1, W2, b2, W3, b3, "
                        f"got a {type(out).__name__}")
    return {str(k): np.asarray(v) for k, v in out.items()}


def _one_example(x, label, W1, b1, W2, b2, W3, b3, *, fprime="tanh", target_sign=1.0, forget_target=False,
                 transpose_back=False):
    """Gradients of one example's cross-entropy, with knobs that model plausible mistakes."""
    z1 = W1 @ x + b1
    a1 = np.tanh(z1)
    z2 = W2 @ a1 + b2
    a2 = np.tanh(z2)
    z3 = W3 @ a2 + b3
    p = np.exp(z3 - z3.max())
    p /= p.sum()
    t = np.zeros_like(p)
    t[label] = 1.0
    d3 = p if forget_target else target_sign * (p - t)

    def fp(z, a):
        return 1.0 - a * a if fprime == "tanh" else (1.0 - z * z if fprime == "at_z" else np.ones_like(z))

    back = (lambda d, W: W @ d) if transpose_back else (lambda d, W: W.T @ d)
    d2 = back(d3, W3) * fp(z2, a2)
    d1 = back(d2, W2) * fp(z1, a1)
    return {"W1": np.outer(d1, x), "b1": d1, "W2": np.outer(d2, a1), "b2": d2, "W3": np.outer(d3, a2), "b3": d3}


def _peg_reference(inp, **knobs):
    per = [_one_example(inp["X"][i], int(inp["y"][i]), *(inp[k] for k in _KEYS), **knobs)
           for i in range(inp["X"].shape[0])]
    return {k: np.stack([g[k] for g in per]) for k in _KEYS}


def _peg_expected(inp):
    return _peg_reference(inp)


def _peg_over_n(inp):
    n = inp["X"].shape[0]
    if n == 1:
        raise ValueError("indistinguishable for a batch of one")
    return {k: v / n for k, v in _peg_reference(inp).items()}


def _peg_transposed(inp):
    if len({inp["W1"].shape[0], inp["W1"].shape[1], inp["W2"].shape[0], inp["W3"].shape[0]}) != 1:
        raise ValueError("shapes do not allow it")
    ref = _peg_reference(inp)
    return {k: (np.swapaxes(v, 1, 2) if k.startswith("W") else v) for k, v in ref.items()}


def _peg_square_back(inp):
    if len({inp["W1"].shape[0], inp["W2"].shape[0], inp["W3"].shape[0], inp["W2"].shape[1]}) != 1:
        raise ValueError("shapes do not allow it")
    return _peg_reference(inp, transpose_back=True)


# --------------------------------------------------------------------------------------------
# ch07.layer_noise_scale


def _lns_inputs(rng: np.random.Generator) -> list[dict]:
    cases = [{"delta": rng.normal(size=(12, 3)), "a": rng.normal(size=(12, 5))},
             {"delta": rng.normal(size=(7, 4)) + 0.8, "a": rng.normal(size=(7, 4)) + 0.3},
             # a batch of one: no spread, tr(Sigma) = 0
             {"delta": rng.normal(size=(1, 3)), "a": rng.normal(size=(1, 2))},
             # two examples (N - 1 = 1: dividing by N - 1 doubles the trace)
             {"delta": rng.normal(size=(2, 3)), "a": rng.normal(size=(2, 3))},
             # large values
             {"delta": rng.normal(size=(20, 6)) * 1e4 + 3e3, "a": rng.normal(size=(20, 8)) * 30.0}]
    # a layer of 500 x 1000 weights and 1000 examples: its outer products would need 4 GB
    cases.append({"delta": rng.normal(size=(1000, 500)) * 0.1 + 0.02, "a": rng.normal(size=(1000, 1000))})
    return cases


def _lns_call(ns, inp):
    import numpy as np
    out = ns["layer_noise_scale"](np.array(inp["delta"], copy=True), np.array(inp["a"], copy=True))
    if not isinstance(out, dict):
        raise TypeError(f"layer_noise_scale must return a dict with keys grad_sq_norm, trace_sigma, "
                        f"b_simple, got a {type(out).__name__}")
    # a 0-d array keeps the number's dtype: a float32 answer is then diagnosed as float32
    return {str(k): (np.asarray(v).reshape(()) if np.asarray(v).dtype.kind in "biuf" and np.asarray(v).size == 1
                     else float(v)) for k, v in out.items()}


def _lns_matrix(inp, bias: bool = True) -> np.ndarray:
    d, a = inp["delta"], inp["a"]
    if d.shape[0] * d.shape[1] * a.shape[1] > 5e7:
        raise ValueError("too large for the explicit outer products")
    parts = [(d[:, :, None] * a[:, None, :]).reshape(d.shape[0], -1)] + ([d] if bias else [])
    return np.concatenate(parts, axis=1)


_MOMENTS: dict = {}


def _lns_key(d: np.ndarray, a: np.ndarray, bias: bool) -> tuple:
    """A cache key from the arrays' contents: an id() can be reused by the next notebook's inputs
    once these are freed, which would hand one submission another's reference values."""
    digest = hashlib.sha256()
    for arr in (d, a):
        digest.update(str((arr.dtype.str, arr.shape)).encode())
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest(), bias


def _lns_moments(inp, bias: bool) -> tuple[float, float]:
    """|G|^2 and (1/N) sum_i |g_i|^2, computed once per case (the large case costs 5e8 multiply-adds)."""
    d, a = inp["delta"], inp["a"]
    key = _lns_key(d, a, bias)
    if len(_MOMENTS) > 64:                                  # a grader process may grade many notebooks
        _MOMENTS.clear()
    if key not in _MOMENTS:
        try:
            g = _lns_matrix(inp, bias)
            mean = g.mean(axis=0)
            _MOMENTS[key] = (float(mean @ mean), float((g * g).sum(axis=1).mean()))
        except ValueError:  # the large case: the norm identity (checked against the matrix on the others)
            gw = d.T @ a / d.shape[0]
            gb = d.mean(axis=0)
            _MOMENTS[key] = (float((gw * gw).sum() + (gb * gb).sum() * bias),
                             float(((d * d).sum(axis=1) * ((a * a).sum(axis=1) + float(bias))).mean()))
    return _MOMENTS[key]


def _lns_stats(inp, *, ddof: int = 0, bias: bool = True, center: bool = True):
    n = inp["delta"].shape[0]
    g2, second = _lns_moments(inp, bias)
    trace = second - g2 if center else second
    if ddof:
        if n == 1:
            raise ValueError("undefined for one example")
        trace *= n / (n - ddof)
    return {"grad_sq_norm": g2, "trace_sigma": trace, "b_simple": trace / g2}


def _lns_expected(inp):
    return _lns_stats(inp)


def _lns_inverted(inp):
    s = _lns_stats(inp)
    return {**s, "b_simple": s["grad_sq_norm"] / s["trace_sigma"]} if s["trace_sigma"] else {}


def _lns_sum(inp):
    s = _lns_stats(inp)
    n = inp["delta"].shape[0]
    return {**s, "trace_sigma": s["trace_sigma"] * n, "b_simple": s["b_simple"] * n}


# --------------------------------------------------------------------------------------------
# ch07.estimate_noise_scale


def _ens_inputs(rng: np.random.Generator) -> list[dict]:
    cases = []
    # exact expectations E|G_B|^2 = |G|^2 + tr(Sigma)/B: the estimates must be exact
    for g2, tr, bs, bb in ((0.7, 17.5, 8, 256), (2e-3, 4.1, 1, 1024), (5e5, 3e6, 32, 64)):
        cases.append({"sq_small": np.array([g2 + tr / bs]), "sq_big": np.array([g2 + tr / bb]),
                      "b_small": bs, "b_big": bb})
    # noisy measurements, as many at each size: the ratio of averages differs from the
    # average of the ratios
    g2, tr = 0.05, 40.0
    cases.append({"sq_small": g2 + tr / 16 + rng.normal(size=30) * 0.8,
                  "sq_big": g2 + tr / 512 + rng.normal(size=30) * 0.02, "b_small": 16, "b_big": 512})
    # different lengths (every big batch the mean of 64 small ones)
    cases.append({"sq_small": 1.0 + 20.0 / 4 + rng.normal(size=64) * 0.5,
                  "sq_big": 1.0 + 20.0 / 256 + rng.normal(size=4) * 0.01, "b_small": 4, "b_big": 256})
    return cases


def _ens_call(ns, inp):
    import numpy as np
    out = ns["estimate_noise_scale"](np.array(inp["sq_small"], copy=True), np.array(inp["sq_big"], copy=True),
                                     inp["b_small"], inp["b_big"])
    if not isinstance(out, dict):
        raise TypeError(f"estimate_noise_scale must return a dict with keys grad_sq_norm, trace_sigma, "
                        f"b_simple, got a {type(out).__name__}")
    # a 0-d array keeps the number's dtype: a float32 answer is then diagnosed as float32
    return {str(k): (np.asarray(v).reshape(()) if np.asarray(v).dtype.kind in "biuf" and np.asarray(v).size == 1
                     else float(v)) for k, v in out.items()}


def _ens_solve(s: float, b: float, bs: float, bb: float) -> dict:
    # the two equations s = g2 + tr/bs, b = g2 + tr/bb, solved by Cramer's rule
    det = 1.0 / bb - 1.0 / bs
    g2 = (s / bb - b / bs) / det
    tr = (b - s) / det
    return {"grad_sq_norm": g2, "trace_sigma": tr, "b_simple": tr / g2}


def _ens_expected(inp):
    return _ens_solve(float(np.mean(inp["sq_small"])), float(np.mean(inp["sq_big"])), inp["b_small"], inp["b_big"])


def _ens_mean_of_ratios(inp):
    s, b = inp["sq_small"], inp["sq_big"]
    if s.shape != b.shape or s.size < 2:
        raise ValueError("needs pairs")
    per = [_ens_solve(float(u), float(v), inp["b_small"], inp["b_big"]) for u, v in zip(s, b)]
    out = _ens_expected(inp)
    return {**out, "b_simple": float(np.mean([p["b_simple"] for p in per]))}


def _ens_swapped(inp):
    return _ens_solve(float(np.mean(inp["sq_small"])), float(np.mean(inp["sq_big"])), inp["b_big"], inp["b_small"])


def _ens_big_only(inp):
    out = _ens_expected(inp)
    g2 = float(np.mean(inp["sq_big"]))
    return {**out, "grad_sq_norm": g2, "b_simple": out["trace_sigma"] / g2}


def _ens_inverted(inp):
    out = _ens_expected(inp)
    return {**out, "b_simple": out["grad_sq_norm"] / out["trace_sigma"]}


# --------------------------------------------------------------------------------------------
# ch07.sgd_batch_change


def _sbc_inputs(rng: np.random.Generator) -> list[dict]:
    cases = [{"lr": 0.1, "b_old": 64.0, "b_new": 1024.0, "b_noise": 300.0},
             {"lr": 2.0, "b_old": 512.0, "b_new": 16.0, "b_noise": 80.0},     # a smaller batch
             {"lr": 0.05, "b_old": 1.0, "b_new": 8.0, "b_noise": 1e9},        # all noise: linear
             {"lr": 4.0, "b_old": 128.0, "b_new": 4096.0, "b_noise": 1e-9},   # no noise: nothing changes
             {"lr": 0.3, "b_old": 200.0, "b_new": 200.0, "b_noise": 50.0}]    # no change at all
    for _ in range(2):
        b_old, b_new = 2.0 ** rng.integers(0, 12, size=2)
        cases.append({"lr": float(rng.uniform(0.01, 3.0)), "b_old": float(b_old), "b_new": float(b_new),
                      "b_noise": float(rng.uniform(5.0, 5000.0))})
    return cases


def _sbc_call(ns, inp):
    import numpy as np
    out = ns["sgd_batch_change"](inp["lr"], inp["b_old"], inp["b_new"], inp["b_noise"])
    if not isinstance(out, dict):
        raise TypeError(f"sgd_batch_change must return a dict with keys lr, steps_ratio, examples_ratio, "
                        f"got a {type(out).__name__}")
    # a 0-d array keeps the number's dtype: a float32 answer is then diagnosed as float32
    return {str(k): (np.asarray(v).reshape(()) if np.asarray(v).dtype.kind in "biuf" and np.asarray(v).size == 1
                     else float(v)) for k, v in out.items()}


def _sbc_expected(inp):
    # section 3.2's unsimplified formulas with |G|^2 = 1, G^T H G = 1 and tr(H Sigma) = b_noise
    eps = lambda b: 1.0 / (1.0 + inp["b_noise"] / b)
    gain = lambda b: 1.0 / (2.0 * (1.0 + inp["b_noise"] / b))
    steps = gain(inp["b_old"]) / gain(inp["b_new"])
    return {"lr": inp["lr"] * eps(inp["b_new"]) / eps(inp["b_old"]), "steps_ratio": steps,
            "examples_ratio": steps * inp["b_new"] / inp["b_old"]}


def _sbc_linear(inp):
    out = _sbc_expected(inp)
    return {**out, "lr": inp["lr"] * inp["b_new"] / inp["b_old"], "steps_ratio": inp["b_old"] / inp["b_new"],
            "examples_ratio": 1.0}


def _sbc_sqrt(inp):
    return {**_sbc_expected(inp), "lr": inp["lr"] * np.sqrt(inp["b_new"] / inp["b_old"])}


def _sbc_inverted(inp):
    out = _sbc_expected(inp)
    return {"lr": inp["lr"] * out["steps_ratio"], "steps_ratio": 1.0 / out["steps_ratio"],
            "examples_ratio": inp["b_new"] / inp["b_old"] / out["steps_ratio"]}


def _sbc_examples_as_steps(inp):
    out = _sbc_expected(inp)
    return {**out, "examples_ratio": out["steps_ratio"]}


# --------------------------------------------------------------------------------------------

EXERCISES = [
    Exercise(
        id="ch07.per_example_grads_2layer", points=4, needs=("per_example_grads_2layer",),
        inputs=_peg_inputs, call=_peg_call, expected=_peg_expected, rtol=1e-6, atol=1e-9,
        batch_key="X", dtype="float64",
        mistakes={
            "the gradient of the batch mean divided among the examples (each row divided by N; an "
            "example's own gradient has no 1/N)": _peg_over_n,
            "tanh's derivative taken as 1 - z**2 at the pre-activation (it is 1 - tanh(z)**2 = 1 - a**2)":
                lambda inp: _peg_reference(inp, fprime="at_z"),
            "a forgotten activation derivative in the hidden deltas":
                lambda inp: _peg_reference(inp, fprime="none"),
            "a transposed weight gradient (a_i delta_i^T; nn.Linear's weight is (out, in), so it is "
            "delta_i a_i^T)": _peg_transposed,
            "the deltas carried back with W.T (in the row layout the rows of W^T delta are delta @ W)":
                _peg_square_back,
            "the output delta t - p instead of dl/dz = p - t (the sign)":
                lambda inp: _peg_reference(inp, target_sign=-1.0),
            "the softmax p used as the output delta without subtracting the one-hot target":
                lambda inp: _peg_reference(inp, forget_target=True),
        },
    ),
    Exercise(
        id="ch07.layer_noise_scale", points=3, needs=("layer_noise_scale",),
        inputs=_lns_inputs, call=_lns_call, expected=_lns_expected, rtol=1e-7, atol=1e-9,
        batch_key="delta", timeout=30.0,
        mistakes={
            "the covariance divided by N - 1 (the sample covariance); tr(Sigma) here is the "
            "spread over the N examples themselves, divided by N": lambda inp: _lns_stats(inp, ddof=1),
            "the mean squared norm (1/N) sum |g_i|^2 without subtracting |G|^2 (that is "
            "tr(Sigma) + |G|^2)": lambda inp: _lns_stats(inp, center=False),
            "the bias forgotten (its gradient delta_i is part of g_i: |g_i|^2 = |delta_i|^2 "
            "(|a_i|^2 + 1))": lambda inp: _lns_stats(inp, bias=False),
            "B_simple inverted (|G|^2 / tr(Sigma))": _lns_inverted,
            "a sum over the examples where the mean was asked": _lns_sum,
        },
    ),
    Exercise(
        id="ch07.estimate_noise_scale", points=3, needs=("estimate_noise_scale",),
        inputs=_ens_inputs, call=_ens_call, expected=_ens_expected, rtol=1e-7, atol=1e-10,
        mistakes={
            "the average of one B_simple per measurement (a ratio of noisy numbers is biased: "
            "average the two estimates first, then divide)": _ens_mean_of_ratios,
            "b_small and b_big swapped": _ens_swapped,
            "|G|^2 taken as the big batch's mean squared norm (that still holds tr(Sigma)/b_big of "
            "noise)": _ens_big_only,
            "B_simple inverted (|G|^2 / tr(Sigma))": _ens_inverted,
        },
    ),
    Exercise(
        id="ch07.sgd_batch_change", points=2, needs=("sgd_batch_change",),
        inputs=_sbc_inputs, call=_sbc_call, expected=_sbc_expected, rtol=1e-7, atol=1e-12,
        mistakes={
            "the linear scaling rule at every batch size (lr times b_new/b_old, steps divided by "
            "the same factor), which holds only for batches far below the noise scale": _sbc_linear,
            "the square-root rule, which is Adam's, not SGD's": _sbc_sqrt,
            "the ratios inverted (S(b_old)/S(b_new) instead of S(b_new)/S(b_old))": _sbc_inverted,
            "the examples ratio equal to the steps ratio (E = B S: multiply by b_new/b_old)":
                _sbc_examples_as_steps,
        },
    ),
]
