"""Hidden tests of chapter 04: equal initial weights (symmetry).

Reference answers are plain numpy written from the chapter's definitions (3.2, 3.6 and the
docstrings), independent of nnlib. ``init_weights`` returns random numbers, so its test is a
statistical check (shape, mean, variance against 2 / fan_in, tails of a normal distribution,
reproducibility from the seed, distinct rows) with tolerances of at least six standard errors;
it names the usual wrong scales (fan_out, no square root, 1 / fan_in, Glorot, a uniform draw).
"""
from __future__ import annotations

import math

import numpy as np

from course.hidden import Exercise

# --------------------------------------------------------------------------------------------
# ch04.duplicated_units: group[i] = smallest j with max_k |W[i, k] - W[j, k]| <= tol


def _groups(W: np.ndarray, tol: float, dist: str = "max") -> np.ndarray:
    n = W.shape[0]
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        for j in range(n):
            d = W[i] - W[j]
            if dist == "max":
                v = np.max(np.abs(d)) if d.size else 0.0
            elif dist == "l1":
                v = np.sum(np.abs(d))
            else:
                v = math.sqrt(float(np.sum(d * d)))
            if v <= tol:
                out[i] = j
                break
    return out


def _from_prototypes(rng: np.random.Generator, n_units: int, n_inputs: int, n_groups: int,
                     scale: float = 1.0) -> np.ndarray:
    protos = rng.normal(size=(n_groups, n_inputs)) * scale
    # a labelling whose first-index groups differ from consecutive numbering (0, 1, 0, 3, ...)
    which = rng.integers(0, n_groups, size=n_units)
    which[:2] = [0, 1] if n_groups > 1 else [0, 0]
    return protos[which]


def _dup_inputs(rng: np.random.Generator) -> list[dict]:
    cases = []
    # exact duplicates, several groups, tol = 0 (non-square: columns-for-rows changes the shape)
    cases.append({"W": _from_prototypes(rng, 9, 4, 3), "tol": 0.0})
    cases.append({"W": _from_prototypes(rng, 12, 5, 5), "tol": 0.0})
    # square: comparing columns instead of rows gives the right shape but wrong groups
    W = _from_prototypes(rng, 6, 6, 2)
    cases.append({"W": W, "tol": 0.0})
    # near duplicates (rounding-sized noise) with a tolerance
    W = _from_prototypes(rng, 10, 3, 4) + rng.normal(size=(10, 3)) * 1e-10
    cases.append({"W": W, "tol": 1e-6})
    # difference exactly equal to tol: <= counts it (exactly representable numbers)
    cases.append({"W": np.array([[0.0, 1.0], [0.25, 1.0], [0.5, 1.0], [0.25, 1.25]]), "tol": 0.25})
    # largest entry, not a sum or a norm: differences of 0.4 in each of 3 inputs, tol 0.5
    # (max: all three are duplicates of unit 0; a sum of |differences|: none; a Euclidean norm: unit 2 only)
    base = rng.normal(size=(1, 3))
    cases.append({"W": np.vstack([base, base + 0.4, base + [0.3, 0.3, 0.0]]), "tol": 0.5})
    cases.append({"W": np.vstack([base, base + 0.4, base - 0.4, base + [0.4, 0.0, 0.0]]), "tol": 0.5})
    # all units equal (the constant start), large values
    cases.append({"W": np.full((7, 3), 0.5), "tol": 0.0})
    cases.append({"W": _from_prototypes(rng, 8, 3, 3, scale=1e6), "tol": 0.0})
    # weights near 1000 that differ by 1e-3 are different units at tol = 0 (np.allclose's default
    # rtol = 1e-5 would call them equal: 1e-5 * 1000 = 1e-2)
    base = 1000.0 + rng.uniform(size=(1, 3))
    d1, d2 = np.array([[1e-3, 0.0, 0.0]]), np.array([[0.0, 0.0, -2e-3]])
    cases.append({"W": np.vstack([base, base + d1, base, base + d2, base + d1]), "tol": 0.0})
    # a single unit; a single input; all units different
    cases.append({"W": rng.normal(size=(1, 4)), "tol": 0.0})
    cases.append({"W": np.array([[1.0], [2.0], [1.0], [3.0], [2.0]]), "tol": 0.0})
    cases.append({"W": rng.normal(size=(5, 3)), "tol": 1e-3})
    return cases


def _dup_call(ns, inp):
    import numpy as np
    return {"group": np.asarray(ns["duplicated_units"](inp["W"].copy(), float(inp["tol"])))}


def _dup_expected(inp):
    return {"group": _groups(inp["W"], inp["tol"])}


def _dup_columns(inp):
    return {"group": _groups(inp["W"].T, inp["tol"])}


def _dup_strict(inp):
    W, tol = inp["W"], inp["tol"]
    n = W.shape[0]
    out = np.arange(n, dtype=np.int64)
    for i in range(n):
        for j in range(i):
            if np.max(np.abs(W[i] - W[j])) < tol:
                out[i] = j
                break
    return {"group": out}


def _dup_consecutive(inp):
    g = _groups(inp["W"], inp["tol"])
    _, inverse = np.unique(g, return_inverse=True)
    return {"group": inverse.astype(np.int64)}


def _dup_last(inp):
    W, tol = inp["W"], inp["tol"]
    n = W.shape[0]
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = max(j for j in range(n) if np.max(np.abs(W[i] - W[j])) <= tol)
    return {"group": out}


def _dup_allclose(inp):
    W, tol = inp["W"], inp["tol"]
    n = W.shape[0]
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = next(j for j in range(n) if np.allclose(W[i], W[j], atol=tol))
    return {"group": out}


def _dup_first_only(inp):
    W, tol = inp["W"], inp["tol"]
    same = np.max(np.abs(W - W[:1]), axis=1) <= tol
    return {"group": np.where(same, 0, np.arange(W.shape[0])).astype(np.int64)}


# --------------------------------------------------------------------------------------------
# ch04.init_weights: He normal, std sqrt(2 / fan_in), fan_in = shape[1]

_BIG_SHAPES = [(400, 250), (128, 512), (2000, 50), (60, 1000)]
_SMALL_SHAPES = [(3, 2), (1, 7), (7, 1), (2, 2)]


def _init_inputs(rng: np.random.Generator) -> list[dict]:
    cases = []
    for shape in _BIG_SHAPES + _SMALL_SHAPES:
        cases.append({"out_features": shape[0], "in_features": shape[1],
                      "seed": int(rng.integers(0, 2**31 - 1))})
    return cases


def _init_call(ns, inp):
    import numpy as np
    shape = (int(inp["out_features"]), int(inp["in_features"]))
    f = ns["init_weights"]
    first = np.asarray(f(shape, np.random.default_rng(int(inp["seed"]))))
    again = np.asarray(f(shape, np.random.default_rng(int(inp["seed"]))))
    other = np.asarray(f(shape, np.random.default_rng(int(inp["seed"]) + 1)))
    return {"W": first, "same_seed": again, "other_seed": other}


def _init_expected(inp):
    # one valid answer (the draws are random; ``_init_check`` accepts any He-normal sample)
    shape = (inp["out_features"], inp["in_features"])
    return {"W": np.random.default_rng(inp["seed"]).normal(0.0, math.sqrt(2.0 / shape[1]), size=shape)}


def _init_mistake_ratios(fan_in: int, fan_out: int) -> dict[str, float]:
    """Variance that each plausible mistake gives, divided by the correct 2 / fan_in."""
    v = 2.0 / fan_in
    return {
        "fan_out where fan_in belongs (variance 2 / fan_out = 2 / shape[0])": (2.0 / fan_out) / v,
        "a missing square root (standard deviation 2 / fan_in instead of sqrt(2 / fan_in))": (v * v) / v,
        "variance 1 / fan_in (LeCun's scale, missing the factor 2 of He initialisation)": (1.0 / fan_in) / v,
        "Glorot's variance 2 / (fan_in + fan_out) instead of He's 2 / fan_in": (2.0 / (fan_in + fan_out)) / v,
        "a uniform draw on [-std, std], whose variance is std^2 / 3, not std^2": 1.0 / 3.0,
        "standard deviation 2 / sqrt(fan_in) (the 2 inside the square root belongs there)": 4.0 / 2.0,
    }


def _init_check(inp, got, want) -> str | None:
    out_f, in_f = int(inp["out_features"]), int(inp["in_features"])
    shape = (out_f, in_f)
    W = np.asarray(got["W"])
    if W.shape != shape:
        if W.shape == shape[::-1]:
            return (f"transposed: expected shape (out_features, in_features) = {shape}, got {W.shape}; "
                    "nn.Linear's weight has one row per unit (output)")
        return f"wrong shape: expected {shape}, got {W.shape}"
    if W.dtype.kind != "f":
        return f"expected floating-point weights, got dtype {W.dtype}"
    if W.dtype != np.float64:
        return (f"your weights have dtype {W.dtype} where the docstring asks for float64 "
                "(rng.normal returns float64 unless you convert it)")
    if not np.all(np.isfinite(W)):
        return "some weights are NaN or inf"
    if not np.array_equal(np.asarray(got["same_seed"]), W):
        return ("not reproducible: two calls with generators made from the same seed gave different "
                "weights; draw only from the rng argument (not np.random.* global functions)")
    if out_f > 1 and len(np.unique(W, axis=0)) < out_f:
        return ("some units (rows) have identical weights: that is exactly the symmetry an "
                "initialiser must break; draw every entry independently")
    if W.size >= 4 and np.array_equal(np.asarray(got["other_seed"]), W):
        return "a different seed gave the same weights: are you ignoring the rng argument?"
    n = W.size
    if n < 10_000:
        return None
    var_true = 2.0 / in_f
    mean = float(W.mean())
    var = float(np.mean((W - mean) ** 2))
    if abs(mean) > 6.0 * math.sqrt(var / n):
        return f"the mean of the weights is {mean:.4g}, expected 0 (entries drawn with mean 0)"
    ratio = var / var_true
    tol = 6.0 * math.sqrt(2.0 / n) + 0.005
    if abs(ratio - 1.0) > tol:
        for name, r in _init_mistake_ratios(in_f, out_f).items():
            if abs(r - 1.0) > 2 * tol and abs(ratio - r) <= max(tol, 0.05 * r):
                return (f"this looks like {name}: for shape {shape} the variance should be "
                        f"2 / {in_f} = {var_true:.4g}, got {var:.4g}")
        return (f"wrong scale: for shape {shape} the variance should be 2 / fan_in = 2 / {in_f} = "
                f"{var_true:.4g}, got {var:.4g} ({ratio:.3g} times too {'large' if ratio > 1 else 'small'})")
    # tails: a normal puts 4.55% of its mass beyond 2 standard deviations, a uniform none
    beyond = float(np.mean(np.abs(W - mean) > 2.0 * math.sqrt(var)))
    p = 0.0455
    if abs(beyond - p) > 6.0 * math.sqrt(p * (1 - p) / n) + 0.002:
        return (f"the variance is right but the distribution is not normal: {beyond:.2%} of the weights "
                f"lie beyond 2 standard deviations, a normal distribution puts 4.55% there "
                "(use rng.normal, not rng.uniform)")
    return None


# --------------------------------------------------------------------------------------------
# ch04.collapse_to_one_unit


def _sym_net(rng: np.random.Generator, d: int, H: int, C: int, scale: float = 1.0) -> dict:
    return {"W1": np.tile(rng.normal(size=(1, d)) * scale, (H, 1)),
            "b1": np.full(H, rng.normal() * scale),
            "W2": np.tile(rng.normal(size=(C, 1)) * scale, (1, H)),
            "b2": rng.normal(size=C) * scale}


def _col_inputs(rng: np.random.Generator) -> list[dict]:
    cases = [_sym_net(rng, 2, 32, 3), _sym_net(rng, 5, 3, 4), _sym_net(rng, 3, 7, 7),
             _sym_net(rng, 4, 1, 2),            # H = 1: already one unit
             _sym_net(rng, 1, 6, 1),            # one input, one output
             _sym_net(rng, 3, 50, 2, scale=1e3)]  # large values
    return cases


def _col_call(ns, inp):
    import numpy as np
    w, b, v, c = ns["collapse_to_one_unit"](inp["W1"].copy(), inp["b1"].copy(), inp["W2"].copy(),
                                            inp["b2"].copy())
    return {"w": np.asarray(w), "b": np.asarray(b), "v": np.asarray(v), "c": np.asarray(c)}


def _col_expected(inp):
    return {"w": inp["W1"][:1].copy(), "b": inp["b1"][:1].copy(),
            "v": inp["W2"].sum(axis=1, keepdims=True), "c": inp["b2"].copy()}


def _col_no_factor(inp):
    e = _col_expected(inp)
    e["v"] = inp["W2"][:, :1].copy()
    return e


def _col_w_summed(inp):
    e = _col_expected(inp)
    e["w"] = inp["W1"].sum(axis=0, keepdims=True)
    return e


def _col_b_summed(inp):
    e = _col_expected(inp)
    e["b"] = np.array([inp["b1"].sum()])
    return e


def _col_c_summed(inp):
    e = _col_expected(inp)
    e["c"] = inp["b2"] * inp["W1"].shape[0]
    return e


# --------------------------------------------------------------------------------------------
# ch04.distinct_rows: (distinct rows of W1, distinct rows of W2) after 100 SGD steps from the
# constant start with W2[5, 0] = 0.6. The nudge breaks (R) for unit 5 of layer 2 (its incoming row)
# and (C) for unit 0 of layer 1 (its outgoing column): unit 5 of layer 2 gets its own activation and
# delta, unit 0 of layer 1 its own delta (sum_j W2[j, 0] delta2_j differs from the other columns'
# sums), so each layer has two kinds of unit: (2, 2).


def _rows_call(ns, inp):
    import numpy as np
    return {"answer": np.asarray(ns["DISTINCT_ROWS"])}


def _rows_expected(inp):
    return {"answer": np.array([2, 2])}


EXERCISES = [
    Exercise(id="ch04.duplicated_units", points=2, needs=("duplicated_units",),
             inputs=_dup_inputs, call=_dup_call, expected=_dup_expected, rtol=0.0, atol=0.0, dtype="int64",
             mistakes={
                 "comparing columns (inputs) instead of rows (units): nn.Linear.weight has one row per unit": _dup_columns,
                 "a strict < tol where <= tol was asked (with tol = 0 no duplicate is ever found)": _dup_strict,
                 "group numbers 0, 1, 2, ... instead of the index of the group's first unit": _dup_consecutive,
                 "the largest index of a duplicate instead of the smallest": _dup_last,
                 "comparing every unit with unit 0 only": _dup_first_only,
                 "np.allclose / np.isclose with their default relative tolerance rtol=1e-5 (pass rtol=0: only tol counts)": _dup_allclose,
                 "a sum of absolute differences instead of the largest one": lambda inp: {"group": _groups(inp["W"], inp["tol"], "l1")},
                 "a Euclidean distance instead of the largest absolute difference": lambda inp: {"group": _groups(inp["W"], inp["tol"], "l2")},
             }),
    Exercise(id="ch04.init_weights", points=2, needs=("init_weights",),
             inputs=_init_inputs, call=_init_call, expected=_init_expected, check=_init_check),
    Exercise(id="ch04.collapse_to_one_unit", points=2, needs=("collapse_to_one_unit",),
             inputs=_col_inputs, call=_col_call, expected=_col_expected, rtol=1e-9, atol=1e-9, dtype="float64",
             mistakes={
                 "a missing factor H: the one unit's outgoing weight is the sum of the H equal weights, not one of them": _col_no_factor,
                 "summed incoming weights: the one unit's incoming weights are one row of W1, not their sum": _col_w_summed,
                 "a summed bias: the one unit's bias is b1[0], not the sum of the H equal biases": _col_b_summed,
                 "an output bias multiplied by H: b2 is added once per output, whatever H is": _col_c_summed,
             }),
    Exercise(id="ch04.distinct_rows", points=1, needs=("DISTINCT_ROWS",),
             call=_rows_call, expected=_rows_expected, rtol=0.0, atol=0.0,
             mistakes={
                 "the network still being fully symmetric: the nudge makes unit 5 of layer 2 differ from the other units, for good": lambda inp: {"answer": np.array([1, 1])},
                 "layer 1 staying symmetric: W2[5, 0] is also an outgoing weight of unit 0 of layer 1, so that unit's delta differs from the others' once layer 2's deltas do": lambda inp: {"answer": np.array([1, 2])},
                 "the nudge in layer 1 only: W2[5, 0] is an incoming weight of unit 5 of layer 2, whose row differs from the start": lambda inp: {"answer": np.array([2, 1])},
                 "every unit becoming different: the un-nudged units stay copies of each other (31 in each layer)": lambda inp: {"answer": np.array([32, 32])},
                 "every unit of layer 1 becoming different: only unit 0 feeds the nudged weight; the other 31 stay copies": lambda inp: {"answer": np.array([32, 2])},
                 "every unit of layer 2 becoming different: its units other than 5 keep equal rows and equal deltas": lambda inp: {"answer": np.array([2, 32])},
             }),
]
