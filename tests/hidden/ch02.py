"""Hidden tests of chapter 02, softmax and cross-entropy (see docs/authoring.md).

Reference answers are computed here, in the grader's process, in float64 (from the exact values
of float32 inputs) with the max-shifted formulas; tolerances follow the input's dtype and the
size of its logits, since a float32 answer cannot be more accurate than eps32 * max|z|.
softmax_ce_grad and log_softmax promise z's dtype, so a float32 case also checks the result's dtype.
Every failure that shifting by the maximum must prevent has at least one case that triggers it
whatever the seed (logits offset by hundreds), not only large random draws.
"""
from __future__ import annotations

import math

import numpy as np

from course.hidden import Exercise, InvalidOutput, diagnose_value


# --- shared helpers (grader process only) ---------------------------------------------------------
def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _tolerances(z: np.ndarray) -> tuple[float, float]:
    """(rtol, atol) fit for an answer computed in z's dtype from logits as large as z's."""
    scale = max(1.0, float(np.max(np.abs(z)))) if z.size else 1.0
    if z.dtype == np.float32:
        return 1e-5, 2e-6 * scale
    return 1e-7, 1e-11 * scale


def _comparer(key: str, input_key: str, mistakes: dict, batched: bool = False,
              keep_dtype: bool = False):
    """A check(inp, got, want) using the grader's diagnosis with dtype-aware tolerances.

    keep_dtype: the answer must have the dtype of the float32 input (the docstring promises it).
    """
    def check(inp, got, want):
        if key not in got:
            raise InvalidOutput(f"the result has no {key!r}")
        z = inp[input_key]
        rtol, atol = _tolerances(z)
        wrong = {}
        for name, fn in mistakes.items():
            try:
                wrong[name] = fn(inp)[key]
            except Exception:  # a mistake model that does not apply to this case
                continue
        batch = int(z.shape[0]) if batched and z.ndim >= 1 else None
        message = diagnose_value(got[key], want[key], rtol, atol, batch, wrong)
        if message is None and keep_dtype and z.dtype == np.float32:
            dtype = np.asarray(got[key]).dtype
            if dtype != np.float32:
                return (f"right values, but float32 logits gave a {dtype} result; the docstring asks "
                        "for z's dtype (a float64 constant or an astype promoted it?)")
        return message
    return check


# --- ch02.softmax_jacobian ---------------------------------------------------------------------
def _jac_inputs(rng):
    return [
        {"z": rng.normal(size=(5,))},
        {"z": rng.normal(size=(2,)) * 3},
        {"z": rng.normal(size=(1,))},                          # one class: J = [[0]]
        {"z": rng.normal(size=(4, 3))},                        # a batch
        {"z": rng.normal(size=(1, 6))},                        # a batch of one
        {"z": rng.normal(size=(4,)) * 1e3},                    # exp overflows unless shifted
        {"z": rng.normal(size=(3, 4)) * 500},
        {"z": np.full((6,), 7.0)},                             # ties: uniform probabilities
        {"z": rng.normal(size=(3,)) + 1e3},                    # exp overflows unless shifted, any seed
        {"z": rng.normal(size=(2, 4)) + np.array([[800.0], [-800.0]])},  # shift each row by its own max
    ]


def _jac_call(ns, inp):
    import numpy as np
    return {"J": np.asarray(ns["softmax_jacobian"](inp["z"]))}


def _jac_expected(inp):
    o = _softmax(inp["z"])
    C = o.shape[-1]
    return {"J": o[..., :, None] * (np.eye(C) - o[..., None, :])}


def _jac_diagonal_only(inp):
    o = _softmax(inp["z"])
    return {"J": (o * (1 - o))[..., :, None] * np.eye(o.shape[-1])}


def _jac_no_diagonal(inp):
    o = _softmax(inp["z"])
    return {"J": -o[..., :, None] * o[..., None, :]}


def _jac_log_softmax(inp):
    o = _softmax(inp["z"])
    return {"J": np.eye(o.shape[-1]) - o[..., None, :]}


_JAC_MISTAKES = {
    "only the diagonal o_j (1 - o_j): the off-diagonal terms -o_j o_k are missing": _jac_diagonal_only,
    "-o_j o_k everywhere: the [j == k] o_j term on the diagonal is missing": _jac_no_diagonal,
    "[j == k] - o_k, which is the Jacobian of log-softmax (the factor o_j is missing)": _jac_log_softmax,
}


# --- ch02.softmax_ce_grad ----------------------------------------------------------------------
def _ce_inputs(rng):
    def onehot(n, c, dtype=np.float64):
        return np.eye(c, dtype=dtype)[rng.integers(0, c, size=n)]
    zero_row = rng.uniform(0, 1, size=(3, 3))
    zero_row[1] = 0.0
    return [
        {"z": rng.normal(size=(5, 4)), "t": rng.dirichlet(np.ones(4), size=5)},     # soft, sums to 1
        {"z": rng.normal(size=(6, 3)) * 2, "t": onehot(6, 3)},                      # one-hot
        {"z": rng.normal(size=(4, 5)), "t": rng.uniform(0, 1, size=(4, 5))},        # rows sum to ~2.5
        {"z": rng.normal(size=(1, 4)), "t": np.array([[1.0, 1.0, 1.0, 0.0]])},      # batch of one, multi-label
        {"z": rng.normal(size=(3, 4)) * 1e3, "t": rng.dirichlet(np.ones(4), size=3)},  # exp overflows unless shifted
        {"z": (rng.normal(size=(5, 6)) * 60).astype(np.float32),                    # float32, exp(>88.7) overflows
         "t": onehot(5, 6, np.float32)},
        {"z": rng.normal(size=(3, 3)), "t": zero_row},                              # a row of zeros: no gradient
        {"z": rng.normal(size=(2, 4)) + np.array([[800.0], [-800.0]]),             # overflow whatever the
         "t": rng.dirichlet(np.ones(4), size=2)},                                   # seed; a max per row
    ]


def _ce_call(ns, inp):
    import numpy as np
    return {"grad": np.asarray(ns["softmax_ce_grad"](inp["z"], inp["t"]))}


def _ce_expected(inp):
    z, t = inp["z"], np.asarray(inp["t"], dtype=np.float64)
    return {"grad": (_softmax(z) * t.sum(axis=1, keepdims=True) - t) / z.shape[0]}


def _ce_o_minus_t(inp):
    z, t = inp["z"], np.asarray(inp["t"], dtype=np.float64)
    return {"grad": (_softmax(z) - t) / z.shape[0]}


def _ce_no_mean(inp):
    z, t = inp["z"], np.asarray(inp["t"], dtype=np.float64)
    return {"grad": _softmax(z) * t.sum(axis=1, keepdims=True) - t}


def _ce_o_minus_t_no_mean(inp):
    z, t = inp["z"], np.asarray(inp["t"], dtype=np.float64)
    return {"grad": _softmax(z) - t}


def _ce_batch_axis(inp):
    z, t = inp["z"], np.asarray(inp["t"], dtype=np.float64)
    return {"grad": (_softmax(z) * t.sum(axis=0, keepdims=True) - t) / z.shape[0]}


def _ce_flipped(inp):
    return {"grad": -_ce_expected(inp)["grad"]}


_CE_MISTAKES = {
    "(o - t) / N, which is right only when every row of t sums to one; use o * sum(t) - t":
        _ce_o_minus_t,
    "the gradient of the sum over the batch: the 1/N of the mean is missing": _ce_no_mean,
    "o - t with no 1/N: it assumes rows summing to one and forgets the mean": _ce_o_minus_t_no_mean,
    "sum(t) taken over the batch (axis 0) instead of over the classes (axis 1)": _ce_batch_axis,
    "t - o: the sign is flipped (the loss is -sum t log o)": _ce_flipped,
}


# --- ch02.log_softmax --------------------------------------------------------------------------
def _ls_inputs(rng):
    return [
        {"z": rng.normal(size=(4, 5))},
        {"z": rng.normal(size=(7,))},                                  # one vector
        {"z": rng.normal(size=(1, 3))},                                # a batch of one
        {"z": rng.normal(size=(2, 3, 4))},                             # leading axes
        {"z": rng.normal(size=(3, 5)) * 500},                          # exp overflows, and log(softmax) = -inf
        {"z": (rng.normal(size=(2, 6)) * 100).astype(np.float32)},     # float32: exp(>88.7) overflows
        {"z": rng.normal(size=(3, 4)) - 1e3},                          # all very negative: exp underflows to 0
        {"z": np.full((2, 4), 1e4)},                                   # ties at a huge value
        {"z": rng.normal(size=(3, 1))},                                # one class: log 1 = 0
        {"z": rng.normal(size=(3, 4)) + np.array([[0.0], [1e3], [-1e3]])},  # a max per row, not one for all
        {"z": rng.normal(size=(2, 4)) - np.array([1e3, 0.0, 0.0, 0.0])},   # far apart: log(softmax) = -inf
    ]


def _ls_call(ns, inp):
    import numpy as np
    return {"logp": np.asarray(ns["log_softmax"](inp["z"]))}


def _ls_expected(inp):
    return {"logp": _log_softmax(inp["z"])}


def _ls_no_lse(inp):
    z = np.asarray(inp["z"], dtype=np.float64)
    return {"logp": z - z.max(axis=-1, keepdims=True)}


def _ls_first_axis(inp):
    z = np.asarray(inp["z"], dtype=np.float64)
    if z.ndim < 2:
        raise ValueError("same as the right answer for one vector")
    s = z - z.max(axis=0, keepdims=True)
    return {"logp": s - np.log(np.exp(s).sum(axis=0, keepdims=True))}


def _ls_no_max_in_log(inp):
    z = np.asarray(inp["z"], dtype=np.float64)
    m = z.max(axis=-1, keepdims=True)
    return {"logp": z - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))}


_LS_MISTAKES = {
    "z - max(z): the log of the sum of exp(z - max) is missing": _ls_no_lse,
    "normalised over the first axis instead of the last (the classes)": _ls_first_axis,
    "z - log(sum(exp(z - max))): the max was subtracted inside the log but not added back "
    "(logsumexp = max + log(sum(exp(z - max))))": _ls_no_max_in_log,
}


# --- ch02.breaking_scales -----------------------------------------------------------------------
# The shifted exp-normalise-log loss of z = s * u, target y, fails (section 3.5) when
#   loss: o_y underflows to 0, i.e. the gap s * (max u - u_y) reaches d* = ln 2 - ln(smallest subnormal);
#   gradient: 1/o_y overflows (the gap s * (max u - u_y) reaches ln(largest float)), or some o_k is 0
#   (the gap s * (max u - min u) reaches d*: 0/0 in log's backward), whichever comes first.
# The inputs keep a clear margin between the largest logit and the others, so that the sum of the
# shifted exponentials is 1 to within far less than the tolerance at the failing scale.
def _thresholds(dtype) -> tuple[float, float]:
    fi = np.finfo(np.dtype(dtype))
    return math.log(float(fi.max)), math.log(2.0) - math.log(float(fi.smallest_subnormal))


def _direction(rng, n: int) -> np.ndarray:
    """n logit directions in [-1, 1] with the largest at least 0.3 above the second largest."""
    u = rng.uniform(-1.0, 0.6, size=n)
    u[rng.integers(0, n)] = 1.0
    return u


def _break_inputs(rng):
    cases = []
    for dtype in ("float32", "float64"):
        u = _direction(rng, 6)
        order = np.argsort(u)
        cases += [{"u": u, "y": int(order[0]), "dtype": dtype},     # the lowest logit: confidently wrong
                  {"u": u, "y": int(order[-1]), "dtype": dtype},    # the highest: confidently right
                  {"u": u, "y": int(order[2]), "dtype": dtype}]     # one in between
    u = _direction(rng, 3) * 3.0                                      # another scale of u, three classes
    cases.append({"u": u, "y": int(np.argsort(u)[1]), "dtype": "float32"})
    u = _direction(rng, 4) * 0.3                                      # all gaps below 1
    cases.append({"u": u, "y": int(np.argmin(u)), "dtype": "float32"})
    u = _direction(rng, 10)
    u[rng.integers(0, 10)] = u.min()                                  # a tie at the lowest logit
    cases.append({"u": u, "y": int(np.argmin(u)), "dtype": "float64"})
    return cases


def _break_call(ns, inp):
    import numpy as np
    dtype = {"float32": np.float32, "float64": np.float64}[inp["dtype"]]
    out = ns["breaking_scales"](np.array(inp["u"]), int(inp["y"]), dtype)
    if not isinstance(out, dict):
        raise TypeError(f'breaking_scales must return a dict with keys "loss" and "grad", got a {type(out).__name__}')
    return {"loss": np.asarray(out["loss"], dtype=np.float64), "grad": np.asarray(out["grad"], dtype=np.float64)}


def _break_formula(inp, ln_max=None, d_star=None, overflow=True, zero=True, loss_gap="target",
                   as_gap=False, dtype=None):
    lm, ds = _thresholds(dtype or inp["dtype"])
    lm = lm if ln_max is None else ln_max
    ds = ds if d_star is None else d_star
    u = np.asarray(inp["u"], dtype=np.float64)
    gap_y = float(u.max() - u[inp["y"]])
    spread = float(u.max() - u.min())
    gap_loss = gap_y if loss_gap == "target" else spread

    def scale(threshold, gap):
        if as_gap:
            return threshold if gap > 0 else math.inf
        return threshold / gap if gap > 0 else math.inf
    s_loss = scale(ds, gap_loss)
    s_grad = min(scale(lm, gap_y) if overflow else math.inf, scale(ds, spread) if zero else math.inf)
    return {"loss": np.float64(s_loss), "grad": np.float64(s_grad)}


def _break_expected(inp):
    return _break_formula(inp)


_BREAK_MISTAKES = {
    "the two thresholds swapped: the loss turns infinite when o_y underflows to 0 (d*), the "
    "gradient first when 1/o_y overflows (ln of the largest float)":
        lambda inp: _break_formula(inp, ln_max=_thresholds(inp["dtype"])[1], d_star=_thresholds(inp["dtype"])[0]),
    "d* = -ln(smallest subnormal) without the ln 2: exp(-d) rounds to 0 already from half the "
    "smallest subnormal on":
        lambda inp: _break_formula(inp, d_star=_thresholds(inp["dtype"])[1] - math.log(2.0)),
    "-ln of the smallest normal float: subnormal numbers reach further before exp(-d) is 0":
        lambda inp: _break_formula(inp, d_star=-math.log(float(np.finfo(np.dtype(inp["dtype"])).tiny))),
    "the thresholds of the other format (use np.finfo of the dtype you are given)":
        lambda inp: _break_formula(inp, dtype="float64" if inp["dtype"] == "float32" else "float32"),
    "a gradient that fails only when 1/o_y overflows: it also fails once any o_k underflows to 0 "
    "(0/0 in log's backward), even for the class with the largest logit":
        lambda inp: _break_formula(inp, zero=False),
    "a gradient that fails only when some o_k underflows to 0: 1/o_y overflows first when the "
    "target's logit is the lowest":
        lambda inp: _break_formula(inp, overflow=False),
    "the loss's gap taken from the lowest logit: it is the target's probability that must "
    "underflow, so the gap is max(u) - u[y]":
        lambda inp: _break_formula(inp, loss_gap="spread"),
    "the gaps themselves, not the scales: the logits are s * u, so the scale is the threshold "
    "divided by the gap in u":
        lambda inp: _break_formula(inp, as_gap=True),
}


EXERCISES = [
    Exercise(id="ch02.softmax_jacobian", points=2, needs=("softmax_jacobian",),
             inputs=_jac_inputs, call=_jac_call, expected=_jac_expected,
             mistakes=_JAC_MISTAKES, check=_comparer("J", "z", _JAC_MISTAKES)),
    Exercise(id="ch02.softmax_ce_grad", points=3, needs=("softmax_ce_grad",),
             inputs=_ce_inputs, call=_ce_call, expected=_ce_expected, batch_key="z",
             mistakes=_CE_MISTAKES, check=_comparer("grad", "z", _CE_MISTAKES, batched=True, keep_dtype=True)),
    Exercise(id="ch02.log_softmax", points=2, needs=("log_softmax",),
             inputs=_ls_inputs, call=_ls_call, expected=_ls_expected,
             mistakes=_LS_MISTAKES, check=_comparer("logp", "z", _LS_MISTAKES, keep_dtype=True)),
    Exercise(id="ch02.breaking_scales", points=2, needs=("breaking_scales",),
             inputs=_break_inputs, call=_break_call, expected=_break_expected, rtol=1e-6, atol=0.0,
             mistakes=_BREAK_MISTAKES),
]
