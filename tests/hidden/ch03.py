"""Hidden tests of chapter 03: gradients into the labels (softmax cross-entropy, v1 and v2).

Every reference answer below is computed independently of nnlib's cross_entropy (plain numpy,
from the formulas of the chapter's derivation), so a forward pass and a backward pass that are
wrong in the same way cannot pass.
"""
from __future__ import annotations

import numpy as np

from course.hidden import Exercise, multiple_choice

# --------------------------------------------------------------------------------------------
# reference formulas (grader process only)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def _softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(_log_softmax(z))


def _dirichlet(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    return rng.dirichlet(np.full(c, 0.7), size=n)


# --------------------------------------------------------------------------------------------
# ch03.ce_and_label_grad: (loss, dE/dz, dE/dt) of the mean softmax cross-entropy


def _ce_inputs(rng: np.random.Generator) -> list[dict]:
    cases = []
    # soft labels whose rows sum to one, several shapes (N != C so a transpose shows)
    for n, c in ((5, 4), (3, 7), (8, 2)):
        cases.append({"z": rng.normal(size=(n, c)) * 2.0, "t": _dirichlet(rng, n, c)})
    # a batch of one
    cases.append({"z": rng.normal(size=(1, 5)), "t": _dirichlet(rng, 1, 5)})
    # one-hot labels
    z = rng.normal(size=(6, 3))
    cases.append({"z": z, "t": np.eye(3)[rng.integers(0, 3, size=6)]})
    # large logits: a naive log(softmax(z)) gives log(0) = -inf here
    z = rng.normal(size=(4, 5)) * 400.0
    cases.append({"z": z, "t": _dirichlet(rng, 4, 5)})
    cases.append({"z": rng.normal(size=(3, 4)) * 300.0 + 1000.0, "t": np.eye(4)[[0, 3, 1]]})
    # rows far apart: one maximum for the whole batch instead of one per row underflows to log(0)
    cases.append({"z": rng.normal(size=(3, 4)) + np.array([[0.0], [1000.0], [-1000.0]]), "t": _dirichlet(rng, 3, 4)})
    # label rows that do not sum to one (a label that the label gradient has moved off the simplex)
    n, c = 5, 4
    t = rng.uniform(0.0, 1.0, size=(n, c)) * rng.uniform(0.3, 2.5, size=(n, 1))
    cases.append({"z": rng.normal(size=(n, c)) * 2.0, "t": t})
    return cases


def _ce_call(ns, inp):
    import numpy as np
    loss, dz, dt = ns["ce_and_label_grad"](inp["z"].copy(), inp["t"].copy())
    return {"loss": np.asarray(loss, dtype=np.float64) if np.ndim(loss) == 0 else np.asarray(loss),
            "dz": np.asarray(dz), "dt": np.asarray(dt)}


def _ce_expected(inp):
    z, t = inp["z"], inp["t"]
    n = z.shape[0]
    lo = _log_softmax(z)
    return {"loss": float(-(t * lo).sum() / n),
            "dz": (np.exp(lo) * t.sum(axis=1, keepdims=True) - t) / n,
            "dt": -lo / n}


def _ce_mistake_t_over_o(inp):
    z, t = inp["z"], inp["t"]
    with np.errstate(all="ignore"):
        return {"dt": -t / _softmax(z) / z.shape[0]}


def _ce_mistake_dz_for_dt(inp):
    z, t = inp["z"], inp["t"]
    return {"dt": (_softmax(z) - t) / z.shape[0]}


def _ce_mistake_log_t(inp):
    z, t = inp["z"], inp["t"]
    with np.errstate(all="ignore"):
        return {"dt": -np.log(t) / z.shape[0]}


def _ce_mistake_rows_sum_to_one(inp):
    z, t = inp["z"], inp["t"]
    if np.allclose(t.sum(axis=1), 1.0):
        raise ValueError("indistinguishable on normalised labels")
    return {"dz": (_softmax(z) - t) / z.shape[0]}


def _ce_mistake_dt_one_minus(inp):
    z, t = inp["z"], inp["t"]
    return {"dt": -(1.0 - _softmax(z)) / z.shape[0]}


# --------------------------------------------------------------------------------------------
# ch03.teacher_logit_grad: dE/du when the labels are t = softmax(u) and the gradient flows (v2)


def _tg_inputs(rng: np.random.Generator) -> list[dict]:
    cases = []
    for n, c in ((6, 4), (3, 5), (7, 2)):
        cases.append({"u": rng.normal(size=(n, c)) * 1.5, "z": rng.normal(size=(n, c)) * 1.5})
    cases.append({"u": rng.normal(size=(1, 3)), "z": rng.normal(size=(1, 3))})
    # large student logits (log o must be computed stably) and large teacher logits
    cases.append({"u": rng.normal(size=(4, 3)) * 3.0, "z": rng.normal(size=(4, 3)) * 500.0})
    cases.append({"u": rng.normal(size=(5, 4)) * 300.0 + 800.0, "z": rng.normal(size=(5, 4))})
    # rows far apart, in the student's logits and in the teacher's: a maximum per row, not per batch
    offsets = np.array([[0.0], [1000.0], [-1000.0]])
    cases.append({"u": rng.normal(size=(3, 4)) + offsets, "z": rng.normal(size=(3, 4)) - offsets})
    return cases


def _tg_call(ns, inp):
    import numpy as np
    return {"du": np.asarray(ns["teacher_logit_grad"](inp["u"].copy(), inp["z"].copy()))}


def _tg_parts(inp):
    u, z = inp["u"], inp["z"]
    t = _softmax(u)
    ell = -_log_softmax(z)
    e_i = (t * ell).sum(axis=1, keepdims=True)
    return t, ell, e_i, u.shape[0]


def _tg_expected(inp):
    t, ell, e_i, n = _tg_parts(inp)
    return {"du": t * (ell - e_i) / n}


def _tg_mistake_no_e(inp):
    t, ell, _, n = _tg_parts(inp)
    return {"du": t * ell / n}


def _tg_mistake_no_softmax(inp):
    _, ell, _, n = _tg_parts(inp)
    return {"du": ell / n}


def _tg_mistake_batch_e(inp):
    t, ell, e_i, n = _tg_parts(inp)
    if n == 1:
        raise ValueError("indistinguishable for one example")
    return {"du": t * (ell - e_i.mean()) / n}


def _tg_mistake_o_minus_t(inp):
    u, z = inp["u"], inp["z"]
    return {"du": (_softmax(z) - _softmax(u)) / u.shape[0]}


def _tg_mistake_t_over_o(inp):
    t, ell, _, n = _tg_parts(inp)
    with np.errstate(all="ignore"):
        o = np.exp(-ell)
        g = -t / o                               # dE/do used as if it were dE/dt
        return {"du": t * (g - (t * g).sum(axis=1, keepdims=True)) / n}


# --------------------------------------------------------------------------------------------
# ch03.stop_gradient: a Tensor with the same values, through which no gradient flows


def _sg_inputs(rng: np.random.Generator) -> list[dict]:
    cases = []
    for shape, f32 in (((5,), False), ((3, 4), False), ((1,), False), ((2, 3), True)):
        cases.append({"x": rng.normal(size=shape), "c": rng.normal(size=shape) + 2.0,
                      "d": rng.normal(size=shape) - 1.0, "float32": f32})
    return cases


def _sg_call(ns, inp):
    import numpy as np
    from nnlib import Tensor

    dtype = np.float32 if inp["float32"] else np.float64
    x = Tensor(np.asarray(inp["x"], dtype=dtype), requires_grad=True)
    h = x * 2.0                        # an intermediate: stop_gradient must work inside a graph
    s = ns["stop_gradient"](h)
    is_tensor = isinstance(s, Tensor)
    values = np.asarray(s.data if is_tensor else s)
    loss = (s * Tensor(inp["c"].astype(dtype))).sum() + (h * Tensor(inp["d"].astype(dtype))).sum()
    loss.backward()
    grad = np.zeros(x.shape) if x.grad is None else np.asarray(x.grad, dtype=np.float64)
    return {"values": values.astype(np.float64), "grad_x": grad, "returns_a_Tensor": is_tensor,
            "dtype": str(values.dtype)}


def _sg_expected(inp):
    dtype = np.float32 if inp["float32"] else np.float64
    x = np.asarray(inp["x"], dtype=dtype)
    d = inp["d"].astype(dtype)
    return {"values": (x * dtype(2.0)).astype(np.float64),
            "grad_x": (dtype(2.0) * d).astype(np.float64),
            "returns_a_Tensor": True, "dtype": np.dtype(dtype).name}


def _sg_mistake_passes(inp):
    dtype = np.float32 if inp["float32"] else np.float64
    return {"grad_x": (2.0 * (inp["d"].astype(dtype) + inp["c"].astype(dtype))).astype(np.float64)}


def _sg_mistake_negates(inp):
    dtype = np.float32 if inp["float32"] else np.float64
    return {"grad_x": (2.0 * (inp["d"].astype(dtype) - inp["c"].astype(dtype))).astype(np.float64)}


def _sg_mistake_zeros(inp):
    return {"values": np.zeros(np.shape(inp["x"]))}


# --------------------------------------------------------------------------------------------
# conceptual questions (multiple choice): course.hidden.multiple_choice, whose messages never name
# the right letter and accept the same forms as the visible check (" (B) " is "b")

_ONE_HOT_HINTS = {
    "a": ("not all weights: the logits' gradient o - t does not depend on whether the labels "
          "require grad, and only that gradient reaches the weights (section 4 prints the difference)"),
    "b": ("not the last layer either: every layer's gradient comes from the same logits' gradient "
          "o - t, which v1 and v2 compute identically"),
}
_LABELS_HINTS = {
    "a": ("nothing in the loss knows the true labels: the teacher only sees the student's "
          "predictions; compare its accuracy before and after in the experiment"),
    "b": ("uniform labels have the largest entropy; the cross-entropy H(t, o) = H(t) + KL(t||o) "
          "is lowered by making t certain, not uncertain"),
    "d": ("with the gradient flowing, the teacher's parameters move: the experiment measures "
          "how far"),
}


EXERCISES = [
    Exercise(id="ch03.ce_and_label_grad", points=3, needs=("ce_and_label_grad",),
             inputs=_ce_inputs, call=_ce_call, expected=_ce_expected, rtol=1e-6, atol=1e-9,
             batch_key="z", dtype="float64",
             mistakes={
                 "-t/o, the derivative with respect to the softmax output o, not the label t":
                     _ce_mistake_t_over_o,
                 "(o - t)/N, the logits' gradient, where the labels' gradient -log(o)/N was asked":
                     _ce_mistake_dz_for_dt,
                 "-log(t)/N: the logarithm of the labels instead of the predictions":
                     _ce_mistake_log_t,
                 "-(1 - o)/N, not the label gradient -log(o)/N": _ce_mistake_dt_one_minus,
                 "o - t, which holds only when each row of t sums to one (in general it is o*sum(t) - t)":
                     _ce_mistake_rows_sum_to_one,
             }),
    Exercise(id="ch03.teacher_logit_grad", points=3, needs=("teacher_logit_grad",),
             inputs=_tg_inputs, call=_tg_call, expected=_tg_expected, rtol=1e-6, atol=1e-9,
             batch_key="u", dtype="float64",
             mistakes={
                 "t*(-log o)/N: the softmax Jacobian's second term, -t*E_i, is missing": _tg_mistake_no_e,
                 "-log(o)/N: the label gradient without the chain rule through t = softmax(u)":
                     _tg_mistake_no_softmax,
                 "the whole batch's mean loss used where each example's own loss E_i belongs":
                     _tg_mistake_batch_e,
                 "(o - t)/N, the gradient of the student's logits, not the teacher's": _tg_mistake_o_minus_t,
                 "-t/o (the derivative with respect to o) used as the label gradient": _tg_mistake_t_over_o,
             }),
    Exercise(id="ch03.stop_gradient", points=2, needs=("stop_gradient",),
             inputs=_sg_inputs, call=_sg_call, expected=_sg_expected, rtol=1e-6, atol=1e-6,
             mistakes={
                 "a stop_gradient that still passes the gradient (its input comes back unchanged "
                 "in the graph)": _sg_mistake_passes,
                 "a stop_gradient whose backward sends -g instead of nothing": _sg_mistake_negates,
                 "returning zeros: stop_gradient keeps the values, it only stops the gradient":
                     _sg_mistake_zeros,
             }),
    multiple_choice("ch03.one_hot_v2", 1, "ANSWER_ONE_HOT_V2", "c", "abc", wrong=_ONE_HOT_HINTS),
    multiple_choice("ch03.labels_become", 1, "ANSWER_LABELS_BECOME", "c", "abcd", wrong=_LABELS_HINTS),
]
