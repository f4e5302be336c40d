"""Hidden tests of chapter 01: the error of a hidden layer (MLP backprop by hand).

Every reference answer is computed here in plain numpy from the chapter's formulas, independently
of nnlib and of the learner's code, and every input layout is one example per row with weights
(out, in), as the exercises' docstrings say. Shapes are chosen so that a missing transpose either
fails on shape or (with square layers) gives different values that the mistakes below recognise.
"""
from __future__ import annotations

import numpy as np

from course.hidden import Exercise, multiple_choice

# --------------------------------------------------------------------------------------------
# helpers (grader process only)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _tanh_prime(z: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(z) ** 2


# --------------------------------------------------------------------------------------------
# ch01.hidden_delta: (delta_next @ W_next) * tanh'(z)


def _hd_inputs(rng: np.random.Generator) -> list[dict]:
    cases = []
    # non-square shapes: a missing transpose fails on shape
    for n_batch, n_next, n in ((5, 3, 4), (7, 2, 6)):
        cases.append({"delta_next": rng.normal(size=(n_batch, n_next)),
                      "W_next": rng.normal(size=(n_next, n)),
                      "z": rng.normal(size=(n_batch, n)) * 1.5})
    # square layers: delta_next @ W_next.T has the right shape and wrong values
    cases.append({"delta_next": rng.normal(size=(4, 4)), "W_next": rng.normal(size=(4, 4)),
                  "z": rng.normal(size=(4, 4)) * 1.5})
    # a batch of one
    cases.append({"delta_next": rng.normal(size=(1, 3)), "W_next": rng.normal(size=(3, 5)),
                  "z": rng.normal(size=(1, 5))})
    # large values: saturated units (tanh' ~ 0) next to unsaturated ones, large deltas
    z = rng.normal(size=(6, 3)) * 8.0
    z[0] = rng.normal(size=3) * 0.3
    cases.append({"delta_next": rng.normal(size=(6, 2)) * 1e3, "W_next": rng.normal(size=(2, 3)),
                  "z": z})
    return cases


def _hd_call(ns, inp):
    import numpy as np
    out = ns["hidden_delta"](inp["delta_next"].copy(), inp["W_next"].copy(), inp["z"].copy())
    return {"delta": np.asarray(out)}


def _hd_expected(inp):
    return {"delta": (inp["delta_next"] @ inp["W_next"]) * _tanh_prime(inp["z"])}


def _hd_back(inp):
    return inp["delta_next"] @ inp["W_next"]


def _hd_at_output(inp):
    return {"delta": _hd_back(inp) * (1.0 - inp["z"] ** 2)}


def _hd_sigmoid(inp):
    s = _sigmoid(inp["z"])
    return {"delta": _hd_back(inp) * s * (1.0 - s)}


def _hd_no_transpose(inp):
    d, W = inp["delta_next"], inp["W_next"]
    if W.shape[0] != W.shape[1]:
        raise ValueError("shapes do not allow it")
    return {"delta": (d @ W.T) * _tanh_prime(inp["z"])}


def _hd_no_derivative(inp):
    return {"delta": _hd_back(inp)}


def _hd_tanh_not_derivative(inp):
    return {"delta": _hd_back(inp) * np.tanh(inp["z"])}


def _hd_square_missing(inp):
    return {"delta": _hd_back(inp) * (1.0 - np.tanh(inp["z"]))}


def _hd_over_batch(inp):
    return {"delta": _hd_expected(inp)["delta"] / inp["delta_next"].shape[0]}


# --------------------------------------------------------------------------------------------
# ch01.weight_grad: (delta^T a_prev / N, mean of delta's rows)


def _wg_inputs(rng: np.random.Generator) -> list[dict]:
    cases = []
    for n_batch, n_out, n_in in ((5, 3, 2), (9, 2, 5)):
        cases.append({"delta": rng.normal(size=(n_batch, n_out)), "a_prev": rng.normal(size=(n_batch, n_in))})
    # square weight: a_prev.T @ delta has the right shape and the transposed values
    cases.append({"delta": rng.normal(size=(6, 4)), "a_prev": rng.normal(size=(6, 4))})
    # a batch of one (sum and mean agree: the outer product itself)
    cases.append({"delta": rng.normal(size=(1, 4)), "a_prev": rng.normal(size=(1, 3))})
    # large values
    cases.append({"delta": rng.normal(size=(8, 3)) * 1e4, "a_prev": rng.normal(size=(8, 2)) * 50.0})
    return cases


def _wg_call(ns, inp):
    import numpy as np
    out = ns["weight_grad"](inp["delta"].copy(), inp["a_prev"].copy())
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("weight_grad must return a pair (dW, db), got "
                        + (f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list))
                           else f"a {type(out).__name__}"))
    return {"dW": np.asarray(out[0]), "db": np.asarray(out[1])}


def _wg_expected(inp):
    d, a = inp["delta"], inp["a_prev"]
    n = d.shape[0]
    return {"dW": d.T @ a / n, "db": d.mean(axis=0)}


def _wg_transposed_square(inp):
    d, a = inp["delta"], inp["a_prev"]
    if d.shape[1] != a.shape[1]:
        raise ValueError("shapes do not allow it")
    return {"dW": a.T @ d / d.shape[0]}


def _wg_bias_zero(inp):
    return {"dW": _wg_expected(inp)["dW"], "db": np.zeros(inp["delta"].shape[1])}


def _wg_bias_sum(inp):
    return {"dW": _wg_expected(inp)["dW"], "db": inp["delta"].sum(axis=0)}


def _wg_first_example(inp):
    d, a = inp["delta"], inp["a_prev"]
    return {"dW": np.outer(d[0], a[0]), "db": d[0]}


def _wg_last_example(inp):
    d, a = inp["delta"], inp["a_prev"]
    return {"dW": np.outer(d[-1], a[-1]), "db": d[-1]}


# --------------------------------------------------------------------------------------------
# ch01.mlp_backward_mse: the six gradients of E = mean_i 1/2 ||d_i - y_i||^2

_KEYS = ("W1", "b1", "W2", "b2", "W3", "b3")


def _mlp_case(rng: np.random.Generator, n_batch: int, sizes: tuple[int, ...], w_scale: float = 1.0,
              x_scale: float = 1.0, d_scale: float = 1.0) -> dict:
    case = {"X": rng.normal(size=(n_batch, sizes[0])) * x_scale,
            "D": rng.normal(size=(n_batch, sizes[3])) * d_scale}
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        case[f"W{l}"] = rng.normal(size=(n_out, n_in)) * w_scale / np.sqrt(n_in)
        case[f"b{l}"] = rng.normal(size=n_out) * 0.5
    return case


def _mlp_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        _mlp_case(rng, 6, (2, 5, 4, 3), w_scale=2.0),
        _mlp_case(rng, 8, (3, 6, 2, 3), w_scale=2.0),
        # every layer square: a missing transpose has the right shape and wrong values
        _mlp_case(rng, 5, (3, 3, 3, 3), w_scale=2.0),
        # a batch of one
        _mlp_case(rng, 1, (2, 4, 5, 3), w_scale=2.0),
        # large values: saturated tanh units, large targets
        _mlp_case(rng, 7, (4, 6, 5, 3), w_scale=6.0, x_scale=3.0, d_scale=100.0),
    ]


def _mlp_call(ns, inp):
    import numpy as np
    args = {k: v.copy() for k, v in inp.items()}
    out = ns["mlp_backward_mse"](args["X"], args["D"], args["W1"], args["b1"], args["W2"],
                                 args["b2"], args["W3"], args["b3"])
    if not isinstance(out, dict):
        raise TypeError(f"mlp_backward_mse must return a dict with keys W1, b1, W2, b2, W3, b3, "
                        f"got a {type(out).__name__}")
    result = {str(k): np.asarray(v) for k, v in out.items()}
    # the caller's weights as they are after the call: the grader compares them with the inputs
    result.update({f"{k}_after": args[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")})
    return result


def _mlp_reference(inp, *, fprime="tanh", out_scale=1.0, sign=1.0, transpose=False,
                   zero_bias=False, per_grad_scale=1.0):
    """The gradients with knobs that model the plausible mistakes (defaults: the right answer).

    fprime: "tanh" (1 - A^2), "at_z" (1 - Z^2), "sigmoid" (s(Z)(1 - s(Z))) or "none".
    out_scale multiplies the output delta; per_grad_scale multiplies every gradient."""
    X, D = inp["X"], inp["D"]
    W1, b1, W2, b2, W3, b3 = (inp[k] for k in _KEYS)
    n = X.shape[0]
    Z1 = X @ W1.T + b1
    A1 = np.tanh(Z1)
    Z2 = A1 @ W2.T + b2
    A2 = np.tanh(Z2)
    Y = A2 @ W3.T + b3

    def fp(Z, A):
        if fprime == "tanh":
            return 1.0 - A ** 2
        if fprime == "at_z":
            return 1.0 - Z ** 2
        if fprime == "sigmoid":
            s = _sigmoid(Z)
            return s * (1.0 - s)
        return np.ones_like(Z)

    def back(Dn, W):
        return Dn @ (W.T if transpose else W)

    D3 = sign * out_scale * (Y - D)
    D2 = back(D3, W3) * fp(Z2, A2)
    D1 = back(D2, W2) * fp(Z1, A1)
    c = per_grad_scale / n
    g = {"W1": c * D1.T @ X, "b1": c * D1.sum(axis=0),
         "W2": c * D2.T @ A1, "b2": c * D2.sum(axis=0),
         "W3": c * D3.T @ A2, "b3": c * D3.sum(axis=0)}
    if zero_bias:
        for k in ("b1", "b2", "b3"):
            g[k] = np.zeros_like(g[k])
    return g


def _mlp_expected(inp):
    # the weights must come back unchanged (checked first: an in-place update is the "pointers" idea)
    return {f"{k}_after": inp[k] for k in _KEYS} | _mlp_reference(inp)


_MLP_EXACT = {f"{k}_after": (f"mlp_backward_mse changed its argument {k} in place: a backward pass reads "
                             "the weights the forward pass used and updates nothing (the update, if "
                             "any, comes after every gradient is known)")
              for k in _KEYS}


def _mlp_square_only(inp):
    if len({inp["W2"].shape[0], inp["W2"].shape[1], inp["W3"].shape[0]}) != 1:
        raise ValueError("shapes do not allow it")
    return _mlp_reference(inp, transpose=True)


def _mlp_double_mean(inp):
    if inp["X"].shape[0] == 1:
        raise ValueError("indistinguishable for a batch of one")
    return _mlp_reference(inp, out_scale=1.0 / inp["X"].shape[0])


def _mlp_torch_mse(inp):
    # F.mse_loss(Y, D) averages over all N * n3 entries and has no 1/2: dE/dY = 2 (Y - D) / (N n3)
    n3 = inp["D"].shape[1]
    if n3 == 2:
        raise ValueError("indistinguishable when n3 = 2")
    return _mlp_reference(inp, out_scale=2.0 / n3)


# --------------------------------------------------------------------------------------------
# ch01.hidden_error_meaning: a multiple choice (course.hidden.multiple_choice: the messages never
# name the right letter)

_MC_WRONG = {
    "a": "a hidden layer has no cost of its own and no desired response: its delta is a "
         "derivative of the network's one cost E",
    "c": "the output error is not copied unchanged: it is carried back through the transposed "
         "weights and multiplied by f'(z) at each layer",
    "d": "the backward pass needs only values saved from the forward pass; no in-place "
         "pointer updates are involved (section 3 measures what an early update does)",
}


# --------------------------------------------------------------------------------------------

EXERCISES = [
    Exercise(
        id="ch01.hidden_delta", points=2, needs=("hidden_delta",),
        inputs=_hd_inputs, call=_hd_call, expected=_hd_expected, rtol=1e-6, atol=1e-8,
        batch_key="delta_next",
        mistakes={
            "tanh's derivative evaluated at the wrong place (1 - z**2; z is the pre-activation, "
            "so tanh'(z) = 1 - tanh(z)**2)": _hd_at_output,
            "sigmoid's derivative s(z)(1 - s(z)) where tanh's 1 - tanh(z)**2 was needed": _hd_sigmoid,
            "a missing transpose in the row layout (delta_next @ W_next.T; the rows of W^T delta "
            "are delta @ W)": _hd_no_transpose,
            "a forgotten activation derivative (delta_next @ W_next alone)": _hd_no_derivative,
            "tanh(z) used where its derivative 1 - tanh(z)**2 was needed": _hd_tanh_not_derivative,
            "1 - tanh(z) without the square": _hd_square_missing,
            "the per-example delta divided by the batch size N (that is autodiff's Z.grad when E is "
            "the batch mean; the per-example delta asked for has no 1/N)": _hd_over_batch,
        },
    ),
    Exercise(
        id="ch01.weight_grad", points=2, needs=("weight_grad",),
        inputs=_wg_inputs, call=_wg_call, expected=_wg_expected, rtol=1e-6, atol=1e-8,
        batch_key="delta",
        mistakes={
            "a transposed weight gradient (a_prev.T @ delta; nn.Linear's weight is (out, in), "
            "so dW = delta.T @ a_prev / N)": _wg_transposed_square,
            "a forgotten bias gradient (db is zero; db is the mean of delta's rows)": _wg_bias_zero,
            "a bias gradient summed over the batch where the mean was asked": _wg_bias_sum,
            "the gradient of the first example only, not the batch mean": _wg_first_example,
            "the gradient of the last example only, not the batch mean": _wg_last_example,
        },
    ),
    Exercise(
        id="ch01.mlp_backward_mse", points=4, needs=("mlp_backward_mse",),
        inputs=_mlp_inputs, call=_mlp_call, expected=_mlp_expected, rtol=1e-6, atol=1e-8,
        batch_key="X", exact=_MLP_EXACT,
        mistakes={
            "tanh's derivative evaluated at the pre-activation as if it were the output "
            "(1 - Z**2 instead of 1 - A**2 = 1 - tanh(Z)**2)": lambda inp: _mlp_reference(inp, fprime="at_z"),
            "sigmoid's derivative where tanh's was needed": lambda inp: _mlp_reference(inp, fprime="sigmoid"),
            "a forgotten activation derivative in the hidden deltas": lambda inp: _mlp_reference(inp, fprime="none"),
            "a missing transpose when carrying the deltas back (Delta @ W.T instead of Delta @ W)": _mlp_square_only,
            "forgotten bias gradients (zeros)": lambda inp: _mlp_reference(inp, zero_bias=True),
            "the output delta e = d - y instead of dE/dy = y - d (the sign)": lambda inp: _mlp_reference(inp, sign=-1.0),
            "the gradient of ||d - y||^2 without the 1/2 (twice the asked value)": lambda inp: _mlp_reference(inp, out_scale=2.0),
            "the 1/N applied twice (in the output delta and again in the gradients)": _mlp_double_mean,
            "F.mse_loss's convention (mean over all N*n3 entries, no 1/2) instead of the asked "
            "mean over examples of 1/2 ||d - y||^2": _mlp_torch_mse,
        },
    ),
    multiple_choice("ch01.hidden_error_meaning", 1, "ANSWER_HIDDEN_ERROR", "b", "abcd", wrong=_MC_WRONG),
]
