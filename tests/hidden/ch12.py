"""Hidden tests of chapter 12, "Training without backpropagation".

Every reference answer is computed here in plain numpy from the estimators' definitions,
independently of nnlib and of the learner's code. The test functions are defined twice: once
here (the grader's process) and once inside each ``call`` (which runs in the sandbox from its
source text); ``_value`` and the sandbox copies must stay identical.

The inputs avoid ties among function values (continuous functions at random points), so the
ranks of the evolution-strategies exercise are unique.
"""
from __future__ import annotations

import numpy as np

from course.hidden import Exercise, multiple_choice

KINDS = ("quad", "sin", "logsumexp", "cubic")


def _value(kind: str, x: np.ndarray) -> float:
    """The test function ``kind`` at ``x`` (any shape, read as its flattened float64 copy)."""
    v = np.asarray(x, dtype=np.float64).ravel()
    if kind == "quad":
        return float(np.sum((1.0 + np.arange(v.size) % 3) * v**2) + 0.5 * np.sum(v))
    if kind == "sin":
        return float(np.sum(np.sin(v) * v))
    if kind == "logsumexp":
        top = float(np.max(v))
        return top + float(np.log(np.sum(np.exp(v - top))))
    if kind == "cubic":
        return float(np.sum(v**3) / 3.0 - v[0])
    raise ValueError(kind)


# --------------------------------------------------------------------------------------------
# ch12.forward_difference: (f(x + h e_i) - f(x)) / h, and P + 1 evaluations


def _fd_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        {"kind": "quad", "x": rng.normal(size=5), "h": 1e-3},
        {"kind": "sin", "x": rng.normal(size=(3, 2)), "h": 1e-3},  # 2-D: the shape is kept
        {"kind": "logsumexp", "x": rng.normal(size=1), "h": 1e-3},  # one element
        {"kind": "cubic", "x": rng.normal(size=4) * 30.0, "h": 1e-2},  # large values
        {"kind": "sin", "x": rng.normal(size=6).astype(np.float32), "h": 1e-3},  # float32 input
        {"kind": "quad", "x": rng.normal(size=12), "h": 1e-4},
    ]


def _fd_call(ns, inp):
    import numpy as np

    def value(kind, x):
        v = np.asarray(x, dtype=np.float64).ravel()
        if kind == "quad":
            return float(np.sum((1.0 + np.arange(v.size) % 3) * v**2) + 0.5 * np.sum(v))
        if kind == "sin":
            return float(np.sum(np.sin(v) * v))
        if kind == "logsumexp":
            top = float(np.max(v))
            return top + float(np.log(np.sum(np.exp(v - top))))
        return float(np.sum(v**3) / 3.0 - v[0])

    calls = [0]

    def f(x):
        calls[0] += 1
        if np.shape(x) != inp["x"].shape:
            raise ValueError(f"f was called with an array of shape {np.shape(x)}; it takes arrays "
                             f"of the shape of x, {inp['x'].shape}")
        return value(inp["kind"], x)

    x = inp["x"].copy()
    out = ns["forward_difference"](f, x, inp["h"])
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("forward_difference must return a pair (grad, evaluations), got "
                        + (f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list))
                           else f"a {type(out).__name__}"))
    grad, evaluations = out
    return {"x_left_unchanged": bool(np.array_equal(x, inp["x"])), "grad": np.asarray(grad),
            "evaluations": int(evaluations), "calls": int(calls[0])}


def _fd_reference(inp, scheme="forward", dtype=np.float64):
    x = np.array(inp["x"], dtype=dtype)
    h = dtype(inp["h"]) if dtype is np.float32 else inp["h"]
    fx = _value(inp["kind"], x)
    grad = np.empty(x.shape)
    for i in np.ndindex(x.shape):
        up = x.copy()
        up[i] = up[i] + h
        if scheme == "central":
            down = x.copy()
            down[i] = down[i] - h
            grad[i] = (_value(inp["kind"], up) - _value(inp["kind"], down)) / (2 * inp["h"])
        elif scheme == "backward":
            grad[i] = (fx - _value(inp["kind"], up)) / inp["h"]
        else:
            grad[i] = (_value(inp["kind"], up) - fx) / inp["h"]
    return grad


def _fd_expected(inp):
    P = inp["x"].size
    return {"x_left_unchanged": True, "grad": _fd_reference(inp), "evaluations": P + 1,
            "calls": P + 1}


def _fd_central(inp):
    P = inp["x"].size
    return {"grad": _fd_reference(inp, "central"), "evaluations": 2 * P, "calls": 2 * P}


def _fd_sign(inp):
    return {"grad": _fd_reference(inp, "backward")}


def _fd_float32(inp):
    if inp["x"].dtype != np.float32:
        raise ValueError("only for float32 inputs")
    return {"grad": _fd_reference(inp, dtype=np.float32)}


def _fd_two_h(inp):
    return {"grad": _fd_reference(inp) / 2.0}


def _fd_recomputed(inp):
    P = inp["x"].size
    return {"evaluations": 2 * P, "calls": 2 * P}


def _fd_count_P(inp):
    return {"evaluations": inp["x"].size}


# --------------------------------------------------------------------------------------------
# ch12.es_gradient: antithetic pairs, centred ranks, sum_i (r_i+ - r_i-) eps_i / (2 m sigma)


def _es_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        {"kind": "quad", "x": rng.normal(size=5), "eps": rng.normal(size=(4, 5)), "sigma": 0.1},
        {"kind": "sin", "x": rng.normal(size=3), "eps": rng.normal(size=(1, 3)), "sigma": 0.05},  # one pair
        {"kind": "logsumexp", "x": rng.normal(size=8) * 3.0, "eps": rng.normal(size=(10, 8)), "sigma": 1.0},
        {"kind": "cubic", "x": rng.normal(size=2) * 10.0, "eps": rng.normal(size=(6, 2)), "sigma": 0.3},
        {"kind": "quad", "x": rng.normal(size=1), "eps": rng.normal(size=(5, 1)), "sigma": 0.2},  # P = 1
    ]


def _es_call(ns, inp):
    import numpy as np

    def value(kind, x):
        v = np.asarray(x, dtype=np.float64).ravel()
        if kind == "quad":
            return float(np.sum((1.0 + np.arange(v.size) % 3) * v**2) + 0.5 * np.sum(v))
        if kind == "sin":
            return float(np.sum(np.sin(v) * v))
        if kind == "logsumexp":
            top = float(np.max(v))
            return top + float(np.log(np.sum(np.exp(v - top))))
        return float(np.sum(v**3) / 3.0 - v[0])

    calls = [0]

    def f(x):
        calls[0] += 1
        return value(inp["kind"], x)

    out = ns["es_gradient"](f, inp["x"].copy(), inp["eps"].copy(), inp["sigma"])
    return {"grad": np.asarray(out), "calls": int(calls[0])}


def _es_values(inp):
    x, eps, s = inp["x"], inp["eps"], inp["sigma"]
    plus = np.array([_value(inp["kind"], x + s * e) for e in eps])
    minus = np.array([_value(inp["kind"], x - s * e) for e in eps])
    return plus, minus


def _ranks(values):
    r = np.empty(values.size)
    r[np.argsort(values, kind="stable")] = np.arange(values.size)
    return r


def _es_from(inp, weights_plus, weights_minus, divisor):
    return {"grad": (weights_plus - weights_minus) @ inp["eps"] / divisor}


def _es_reference(inp, mode="ranks", divisor=None):
    plus, minus = _es_values(inp)
    m = plus.size
    n = 2 * m
    div = n * inp["sigma"] if divisor is None else divisor
    if mode == "raw":
        return _es_from(inp, plus, minus, div)
    if mode == "unscaled":
        r = _ranks(np.concatenate([plus, minus]))
        return _es_from(inp, r[:m], r[m:], div)
    if mode == "halves":
        if m < 2:
            raise ValueError("one pair: each half has a single rank")
        rp, rm = _ranks(plus) / (m - 1) - 0.5, _ranks(minus) / (m - 1) - 0.5
        return _es_from(inp, rp, rm, div)
    r = _ranks(np.concatenate([plus, minus])) / (n - 1) - 0.5
    return _es_from(inp, r[:m], r[m:], div)


def _es_expected(inp):
    return {"grad": _es_reference(inp)["grad"], "calls": 2 * inp["eps"].shape[0]}


# --------------------------------------------------------------------------------------------
# ch12.spsa_gradient: (f(x + c delta) - f(x - c delta)) / (2 c delta_i)


def _spsa_inputs(rng: np.random.Generator) -> list[dict]:
    def signs(n):
        return rng.choice([-1.0, 1.0], size=n)

    return [
        {"kind": "quad", "x": rng.normal(size=6), "delta": signs(6), "c": 0.01},
        {"kind": "sin", "x": rng.normal(size=4), "delta": signs(4) * rng.choice([0.5, 2.0], size=4), "c": 0.1},
        {"kind": "logsumexp", "x": rng.normal(size=1), "delta": np.array([-0.5]), "c": 0.05},  # one element
        {"kind": "cubic", "x": rng.normal(size=5) * 20.0, "delta": signs(5) * 2.0, "c": 0.2},  # large values
        {"kind": "quad", "x": rng.normal(size=9), "delta": signs(9) * rng.choice([0.5, 1.0, 2.0], size=9), "c": 1e-3},
    ]


def _spsa_call(ns, inp):
    import numpy as np

    def value(kind, x):
        v = np.asarray(x, dtype=np.float64).ravel()
        if kind == "quad":
            return float(np.sum((1.0 + np.arange(v.size) % 3) * v**2) + 0.5 * np.sum(v))
        if kind == "sin":
            return float(np.sum(np.sin(v) * v))
        if kind == "logsumexp":
            top = float(np.max(v))
            return top + float(np.log(np.sum(np.exp(v - top))))
        return float(np.sum(v**3) / 3.0 - v[0])

    calls = [0]

    def f(x):
        calls[0] += 1
        return value(inp["kind"], x)

    out = ns["spsa_gradient"](f, inp["x"].copy(), inp["delta"].copy(), inp["c"])
    return {"grad": np.asarray(out), "calls": int(calls[0])}


def _spsa_diff(inp):
    x, d, c = inp["x"], inp["delta"], inp["c"]
    return _value(inp["kind"], x + c * d) - _value(inp["kind"], x - c * d)


def _spsa_expected(inp):
    return {"grad": _spsa_diff(inp) / (2 * inp["c"] * inp["delta"]), "calls": 2}


def _spsa_times_delta(inp):
    if np.all(np.abs(inp["delta"]) == 1.0):
        raise ValueError("indistinguishable for +-1 perturbations")
    return {"grad": _spsa_diff(inp) / (2 * inp["c"]) * inp["delta"]}


def _spsa_one_sided(inp):
    x, d, c = inp["x"], inp["delta"], inp["c"]
    return {"grad": (_value(inp["kind"], x + c * d) - _value(inp["kind"], x)) / (c * d), "calls": 2}


def _spsa_no_delta(inp):
    return {"grad": np.full(inp["x"].shape, _spsa_diff(inp) / (2 * inp["c"]))}


# --------------------------------------------------------------------------------------------

EXERCISES = [
    Exercise(
        id="ch12.forward_difference", points=2, needs=("forward_difference",),
        inputs=_fd_inputs, call=_fd_call, expected=_fd_expected, rtol=1e-6, atol=1e-8,
        dtype="float64",
        mistakes={
            "the central difference (f(x + h e_i) - f(x - h e_i)) / 2h, which costs 2P "
            "evaluations; the forward difference asked for reuses f(x): P + 1": _fd_central,
            "the difference taken the wrong way round ((f(x) - f(x + h e_i)) / h)": _fd_sign,
            "arithmetic in float32 (the input's dtype): x + h loses digits; work on a float64 "
            "copy of x": _fd_float32,
            "a division by 2h, the central difference's divisor, in the forward difference": _fd_two_h,
            "f(x) evaluated again for every coordinate (2P calls) instead of once and reused (P + 1)": _fd_recomputed,
            "the P probes counted without the one evaluation of f(x) itself": _fd_count_P,
        },
    ),
    Exercise(
        id="ch12.es_gradient", points=3, needs=("es_gradient",),
        inputs=_es_inputs, call=_es_call, expected=_es_expected, rtol=1e-6, atol=1e-10,
        dtype="float64",
        mistakes={
            "the raw differences f(x + sigma eps_i) - f(x - sigma eps_i) where their centred ranks "
            "were asked (fitness shaping)": lambda inp: _es_reference(inp, "raw"),
            "ranks 0 .. 2m - 1 not scaled to [-0.5, 0.5] (divide by 2m - 1, subtract 0.5)":
                lambda inp: _es_reference(inp, "unscaled"),
            "the + and - values ranked separately, instead of all 2m values together":
                lambda inp: _es_reference(inp, "halves"),
            "a division by m, the number of pairs, instead of 2m, the population size":
                lambda inp: _es_reference(inp, divisor=inp["eps"].shape[0] * inp["sigma"]),
            "a forgotten division by sigma": lambda inp: _es_reference(inp, divisor=2 * inp["eps"].shape[0]),
            "a search gradient that points downhill (r_i- - r_i+): the function asks for the "
            "uphill direction, which a descent step subtracts": lambda inp: {"grad": -_es_reference(inp)["grad"]},
        },
    ),
    Exercise(
        id="ch12.spsa_gradient", points=2, needs=("spsa_gradient",),
        inputs=_spsa_inputs, call=_spsa_call, expected=_spsa_expected, rtol=1e-6, atol=1e-8,
        dtype="float64",
        mistakes={
            "the difference multiplied by delta_i instead of divided by it (the two agree only when "
            "every delta_i is +1 or -1)": _spsa_times_delta,
            "a one-sided difference (f(x + c delta) - f(x)) / (c delta_i)": _spsa_one_sided,
            "the same number for every coordinate: the division by delta_i is missing": _spsa_no_delta,
        },
    ),
    multiple_choice(
        "ch12.where_gradient_free_wins", 1, "ANSWER_WHERE_GRADIENT_FREE", "b", "abcd",
        wrong={
            "a": "the cross-entropy of that MLP is differentiable and P = 9,610 is large: backprop's "
                 "gradient costs about 3 evaluations, a gradient-free method learns one number per "
                 "evaluation",
            "c": "changing ReLU for tanh keeps the loss differentiable and P large: the argument for "
                 "backprop is the same as for the chapter's network",
            "d": "saddle points slow gradient descent down, but in high dimension random search meets "
                 "them too, with P times less information per evaluation; nothing in the runs "
                 "suggests a metaheuristic handles them better",
        },
    ),
]
