"""Hidden tests of chapter 11: backpropagation through time, and truncation.

Every reference answer is computed here in plain numpy, independently of nnlib and of the
chapter's solutions: the cell's backward with einsum, example by example; full and truncated BPTT
by enumerating, for every example, every pair (loss at step t, step s <= t) and multiplying out
the chain dl_t/dh_t D_t W_hh D_(t-1) ... W_hh D_s of chapter 11's 3.4, keeping a pair when no cut
lies between s and t. The mistakes are modelled by a backward recursion with knobs.
"""
from __future__ import annotations

import numpy as np

from course.hidden import Exercise, multiple_choice

# --------------------------------------------------------------------------------------------
# ch11.rnn_cell_backward: h = tanh(x W_ih^T + h_prev W_hh^T + b)


def _cell_case(rng: np.random.Generator, n: int, i: int, h: int, scale: float = 1.0, g_scale: float = 1.0) -> dict:
    W_ih, W_hh, b = rng.normal(size=(h, i)) * scale, rng.normal(size=(h, h)) * scale, rng.normal(size=h)
    x, h_prev = rng.normal(size=(n, i)), np.tanh(rng.normal(size=(n, h)))
    out = np.tanh(np.einsum("ni,hi->nh", x, W_ih) + np.einsum("nk,hk->nh", h_prev, W_hh) + b)
    return {"x": x, "h_prev": h_prev, "h": out, "W_ih": W_ih, "W_hh": W_hh,
            "grad_h": rng.normal(size=(n, h)) * g_scale}


def _cell_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        _cell_case(rng, 5, 3, 4),                 # input != hidden: a transpose fails on shape
        _cell_case(rng, 6, 4, 4),                 # square: a transpose gives wrong values
        _cell_case(rng, 1, 2, 3),                 # a batch of one
        _cell_case(rng, 4, 5, 2, scale=0.3),      # small weights: tanh nearly linear
        _cell_case(rng, 3, 3, 5, scale=1.5),      # large weights: saturated units
        _cell_case(rng, 7, 2, 3, g_scale=1e3),    # large gradients
    ]


def _cell_call(ns, inp):
    import numpy as np
    args = {k: np.array(v, copy=True) for k, v in inp.items()}
    out = ns["rnn_cell_backward"](args["x"], args["h_prev"], args["h"], args["W_ih"], args["W_hh"], args["grad_h"])
    if not isinstance(out, dict):
        raise TypeError(f"rnn_cell_backward must return a dict with keys x, h_prev, W_ih, W_hh, b, "
                        f"got a {type(out).__name__}")
    return {str(k): np.asarray(v) for k, v in out.items()}


def _cell_reference(inp, *, factor: str = "h", w_hh_from: str = "h_prev", transpose: bool = False,
                    through_w: bool = True, mean: bool = False) -> dict:
    x, hp, h, W_ih, W_hh, g = (inp[k] for k in ("x", "h_prev", "h", "W_ih", "W_hh", "grad_h"))
    d = {"h": g * (1.0 - h ** 2), "none": g, "h_prev": g * (1.0 - hp ** 2)}[factor]
    A, B = (W_ih.T, W_hh.T) if transpose else (W_ih, W_hh)
    out = {"x": np.einsum("nh,hi->ni", d, A) if A.shape[0] == d.shape[1] else None,
           "h_prev": np.einsum("nh,hk->nk", d, B) if through_w else d,
           "W_ih": np.einsum("nh,ni->hi", d, x), "W_hh": np.einsum("nh,nk->hk", d, hp if w_hh_from == "h_prev" else h),
           "b": d.sum(axis=0)}
    if out["x"] is None:
        raise ValueError("shapes do not allow it")
    if mean:
        for k in ("W_ih", "W_hh", "b"):
            out[k] = out[k] / x.shape[0]
    return out


def _cell_transposed(inp):
    if inp["W_ih"].shape[0] != inp["W_ih"].shape[1]:
        raise ValueError("shapes do not allow it")
    return _cell_reference(inp, transpose=True)


def _cell_mean(inp):
    if inp["x"].shape[0] == 1:
        raise ValueError("a batch of one: sum and mean agree")
    return _cell_reference(inp, mean=True)


# --------------------------------------------------------------------------------------------
# ch11.bptt and ch11.truncated_bptt


def _seq_case(rng: np.random.Generator, T: int, n: int, i: int, h: int, w_scale: float = 0.6,
              sparse_loss: bool = False, g_scale: float = 1.0, k: int | None = None) -> dict:
    case = {"x": rng.normal(size=(T, n, i)), "h0": np.tanh(rng.normal(size=(n, h))),
            "W_ih": rng.normal(size=(h, i)), "W_hh": rng.normal(size=(h, h)) * w_scale, "b": rng.normal(size=h),
            "grad_h": rng.normal(size=(T, n, h)) * g_scale}
    if sparse_loss:                           # a loss on the last step only
        case["grad_h"][:-1] = 0.0
    if k is not None:
        case["k"] = k
    return case


def _forward(inp) -> np.ndarray:
    x, h0, W_ih, W_hh, b = (inp[k] for k in ("x", "h0", "W_ih", "W_hh", "b"))
    hs = [h0]
    for t in range(x.shape[0]):
        hs.append(np.tanh(np.einsum("ni,hi->nh", x[t], W_ih) + np.einsum("nk,hk->nh", hs[-1], W_hh) + b))
    return np.array(hs)


def _enumerate(inp, cut_before) -> dict:
    """Sum over examples n, losses t and steps s <= t of the chain of 3.4, stopping at a cut.
    cut_before(s) is True when the state h_(s-1) is detached before step s (s = 1 .. T)."""
    x, W_hh, g = inp["x"], inp["W_hh"], inp["grad_h"]
    hs = _forward(inp)
    T, N = x.shape[0], x.shape[1]
    out = {"W_ih": np.zeros_like(inp["W_ih"], dtype=float), "W_hh": np.zeros_like(W_hh, dtype=float),
           "b": np.zeros_like(inp["b"], dtype=float), "h0": np.zeros_like(inp["h0"], dtype=float)}
    for n in range(N):
        for t in range(1, T + 1):
            row = g[t - 1, n] * (1.0 - hs[t, n] ** 2)            # d l_t / d a_t
            for s in range(t, 0, -1):                            # row = d l_t / d a_s
                out["W_ih"] += np.outer(row, x[s - 1, n])
                out["W_hh"] += np.outer(row, hs[s - 1, n])
                out["b"] += row
                if cut_before(s):
                    break
                if s == 1:
                    out["h0"][n] += row @ W_hh
                else:
                    row = (row @ W_hh) * (1.0 - hs[s - 1, n] ** 2)
    return out


def _recursion(inp, *, cut_before=lambda s: False, through_w: bool = True, factor_on_carry: bool = True,
               factor: bool = True, w_hh_from: str = "prev", accumulate: bool = True, h0_delta: bool = False,
               transpose_w: bool = False, h0_before_cut: bool = False) -> dict:
    """Backward in time with knobs for the plausible mistakes (defaults: the right answer)."""
    x, W_hh, gh = inp["x"], inp["W_hh"], inp["grad_h"]
    hs = _forward(inp)
    T = x.shape[0]
    out = {"W_ih": np.zeros_like(inp["W_ih"], dtype=float), "W_hh": np.zeros_like(W_hh, dtype=float),
           "b": np.zeros_like(inp["b"], dtype=float)}
    carry = np.zeros_like(inp["h0"], dtype=float)
    W = W_hh.T if transpose_w else W_hh
    for t in range(T, 0, -1):
        dt = (1.0 - hs[t] ** 2) if factor else 1.0
        delta = (carry + gh[t - 1]) * dt if factor_on_carry else carry + gh[t - 1] * dt
        parts = {"W_ih": delta.T @ x[t - 1], "W_hh": delta.T @ (hs[t - 1] if w_hh_from == "prev" else hs[t]),
                 "b": delta.sum(axis=0)}
        for key, v in parts.items():
            out[key] = out[key] + v if accumulate else v
        before = delta @ W if through_w else np.zeros_like(carry)
        carry = np.zeros_like(before) if cut_before(t) else before
    out["h0"] = delta if h0_delta else (before if h0_before_cut else carry)
    return out


def _seq_call(ns, inp):
    import numpy as np
    args = {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for k, v in inp.items()}
    if "k" in args:
        out = ns["truncated_bptt"](args["x"], args["h0"], args["W_ih"], args["W_hh"], args["b"], args["grad_h"], args["k"])
        name = "truncated_bptt"
    else:
        out = ns["bptt"](args["x"], args["h0"], args["W_ih"], args["W_hh"], args["b"], args["grad_h"])
        name = "bptt"
    if not isinstance(out, dict):
        raise TypeError(f"{name} must return a dict with keys W_ih, W_hh, b, h0, got a {type(out).__name__}")
    return {str(k): np.asarray(v) for k, v in out.items()}


def _bptt_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        _seq_case(rng, 6, 3, 2, 3),
        _seq_case(rng, 5, 2, 3, 4, w_scale=1.2),         # larger recurrent weights: long terms matter
        _seq_case(rng, 1, 2, 2, 3),                      # one step: no recurrence at all
        _seq_case(rng, 4, 1, 3, 2),                      # a batch of one
        _seq_case(rng, 7, 2, 2, 3, sparse_loss=True),    # a loss on the last step only
        _seq_case(rng, 5, 2, 2, 2, g_scale=1e3),         # large gradients
    ]


def _bptt_expected(inp):
    return _enumerate(inp, lambda s: False)


def _chunk_cut(inp):
    T, k = inp["x"].shape[0], inp["k"]
    return lambda s: (T - s + 1) % k == 0


def _trunc_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        _seq_case(rng, 7, 2, 2, 3, k=3),                  # k does not divide T: a short first chunk
        _seq_case(rng, 6, 2, 2, 3, k=2),                  # k divides T: the cut falls before step 1
        _seq_case(rng, 5, 1, 3, 2, k=1),                  # k = 1, a batch of one
        _seq_case(rng, 4, 2, 2, 3, k=4),                  # k = T: full BPTT
        _seq_case(rng, 3, 2, 2, 2, k=5),                  # k > T: full BPTT
        _seq_case(rng, 8, 2, 2, 3, k=3, sparse_loss=True, w_scale=1.2),   # last-step loss: lags < k
        _seq_case(rng, 9, 2, 2, 3, k=4, w_scale=1.0),
        _seq_case(rng, 6, 2, 2, 2, k=4, g_scale=1e3),
    ]


def _trunc_expected(inp):
    return _enumerate(inp, _chunk_cut(inp))


def _trunc_from_start(inp):
    k = inp["k"]
    return _recursion(inp, cut_before=lambda s: (s - 1) % k == 0)


def _trunc_shifted(inp):
    T, k = inp["x"].shape[0], inp["k"]
    return _recursion(inp, cut_before=lambda s: (T - s) % k == 0)


def _trunc_wider(inp):
    T, k = inp["x"].shape[0], inp["k"] + 1
    return _recursion(inp, cut_before=lambda s: (T - s + 1) % k == 0)


def _trunc_sliding(inp):
    T, k = inp["x"].shape[0], inp["k"]
    x, W_hh, g = inp["x"], inp["W_hh"], inp["grad_h"]
    hs = _forward(inp)
    out = {"W_ih": np.zeros_like(inp["W_ih"], dtype=float), "W_hh": np.zeros_like(W_hh, dtype=float),
           "b": np.zeros_like(inp["b"], dtype=float), "h0": np.zeros_like(inp["h0"], dtype=float)}
    for t in range(1, T + 1):                            # every loss backpropagated k steps exactly
        row = g[t - 1] * (1.0 - hs[t] ** 2)
        for s in range(t, max(t - k, 0), -1):
            out["W_ih"] += row.T @ x[s - 1]
            out["W_hh"] += row.T @ hs[s - 1]
            out["b"] += row.sum(axis=0)
            if s == 1 and t - k < 0:
                out["h0"] += row @ W_hh
            row = (row @ W_hh) * (1.0 - hs[s - 1] ** 2)
    return out


def _trunc_h0_not_cut(inp):
    if inp["x"].shape[0] % inp["k"] != 0:
        raise ValueError("the cut does not fall before step 1")
    return _recursion(inp, cut_before=_chunk_cut(inp), h0_before_cut=True)


def _with_cut(inp, **kw):
    return _recursion(inp, cut_before=_chunk_cut(inp) if "k" in inp else (lambda s: False), **kw)


_SEQ_MISTAKES = {
    "no gradient passed back through W_hh from one step to the previous (each step only gets its own "
    "loss's gradient: that is truncation at k = 1, not BPTT)": lambda inp: _with_cut(inp, through_w=False),
    "the parameters' gradients overwritten at every step instead of accumulated over time (W_hh is "
    "shared by all steps, so its gradient is the sum of every step's part)": lambda inp: _with_cut(inp, accumulate=False),
    "dW_hh built from h_t instead of h_(t-1): the recurrent weights act on the previous state":
        lambda inp: _with_cut(inp, w_hh_from="cur"),
    "the tanh derivative (1 - h_t^2) applied to the step's own loss gradient but not to the gradient "
    "coming from the next step (it multiplies their sum)": lambda inp: _with_cut(inp, factor_on_carry=False),
    "a forgotten tanh derivative (1 - h_t^2)": lambda inp: _with_cut(inp, factor=False),
    "dL/dh0 returned as delta_1 = dL/da_1, not yet multiplied by W_hh": lambda inp: _with_cut(inp, h0_delta=True),
    "the gradient passed to the previous state through W_hh^T where W_hh is needed (delta @ W_hh, "
    "since a_t = h_(t-1) W_hh^T + ...)": lambda inp: _with_cut(inp, transpose_w=True),
}


# --------------------------------------------------------------------------------------------

EXERCISES = [
    Exercise(
        id="ch11.rnn_cell_backward", points=3, needs=("rnn_cell_backward",),
        inputs=_cell_inputs, call=_cell_call, expected=_cell_reference, rtol=1e-6, atol=1e-8,
        batch_key="x",
        mistakes={
            "a forgotten tanh derivative: delta = grad_h where delta = grad_h * (1 - h^2)":
                lambda inp: _cell_reference(inp, factor="none"),
            "the tanh derivative taken at h_prev (1 - h_prev^2) instead of at the cell's output h":
                lambda inp: _cell_reference(inp, factor="h_prev"),
            "dW_hh built from h (the state the cell produced) instead of h_prev (the state W_hh acts on)":
                lambda inp: _cell_reference(inp, w_hh_from="h"),
            "dL/dh_prev = delta, without the product with W_hh": lambda inp: _cell_reference(inp, through_w=False),
            "transposed weights in the backward pass (delta @ W.T) where delta @ W is needed": _cell_transposed,
            "the parameters' gradients averaged over the batch where sums were asked": _cell_mean,
        },
    ),
    Exercise(
        id="ch11.bptt", points=3, needs=("bptt",),
        inputs=_bptt_inputs, call=_seq_call, expected=_bptt_expected, rtol=1e-6, atol=1e-8,
        mistakes=dict(_SEQ_MISTAKES),
    ),
    Exercise(
        id="ch11.truncated_bptt", points=3, needs=("truncated_bptt",),
        inputs=_trunc_inputs, call=_seq_call, expected=_trunc_expected, rtol=1e-6, atol=1e-8,
        mistakes={
            "k ignored: full BPTT (the gradient must be cut every k steps)": lambda inp: _recursion(inp),
            "the chunks of k steps counted from the first step; nn.RNN counts them back from the last "
            "step, so that the last step's loss always reaches back exactly k cells": _trunc_from_start,
            "the cut one step off: before step t when (T - t) % k == 0, where nn.RNN cuts when "
            "(T - t + 1) % k == 0": _trunc_shifted,
            "chunks of k + 1 steps (an off-by-one in the cut)": _trunc_wider,
            "every loss backpropagated exactly k steps (a sliding window); nn.RNN cuts the state at "
            "fixed chunk boundaries, so a loss early in its chunk reaches back fewer steps": _trunc_sliding,
            "dL/dh0 not zeroed when the cut falls before step 1 (T a multiple of k)": _trunc_h0_not_cut,
            **_SEQ_MISTAKES,
        },
    ),
    multiple_choice(
        "ch11.context_without_credit", 1, "ANSWER_CONTEXT", "b", "abcd",
        wrong={
            "a": "truncation cuts only the gradient: the forward pass still carries the state, so the "
                 "prediction uses whatever of the earlier character the state still holds",
            "c": "carrying the detached state keeps its value; resetting to zero throws the context away "
                 "(4.2 compares the two)",
            "d": "a detached state passes its value but no gradient: the loss's gradient stops after "
                 "one cell",
        },
    ),
]
