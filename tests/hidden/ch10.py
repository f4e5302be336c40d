"""Hidden tests of chapter 10: gradients through residual connections.

Every reference answer is computed here in plain numpy, independently of nnlib and of the
chapter's own solutions: the add node's backward by counting, with np.bincount, which output
entries each input entry was copied to; the block's backward with einsum, example by example; the
path terms by enumerating every set of blocks. Shapes are chosen so that a missing transpose fails
on shape or, with square weights, gives different values that the mistakes below recognise.
"""
from __future__ import annotations

from itertools import combinations
from math import factorial, prod

import numpy as np

from course.hidden import Exercise, multiple_choice

# --------------------------------------------------------------------------------------------
# ch10.add_backward


def _ab_case(rng: np.random.Generator, a_shape: tuple, b_shape: tuple, scale: float = 1.0,
             dtype=np.float64) -> dict:
    out_shape = np.broadcast_shapes(a_shape, b_shape)
    return {"grad_out": (rng.normal(size=out_shape) * scale).astype(dtype),
            "a_shape": list(a_shape), "b_shape": list(b_shape)}


def _ab_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        _ab_case(rng, (5, 3), (5, 3)),            # no broadcasting: both get grad_out
        _ab_case(rng, (6, 4), (4,)),              # a bias added to every row
        _ab_case(rng, (1, 4), (4,)),              # a batch of one
        _ab_case(rng, (4, 1), (1, 3)),            # both inputs broadcast
        _ab_case(rng, (2, 3, 4), (3, 1)),         # a missing leading axis and a 1 inside
        _ab_case(rng, (), (3, 2)),                # a number plus an array
        _ab_case(rng, (3, 4), (1, 1)),            # keepdims matters: the answer has shape (1, 1)
        _ab_case(rng, (5, 3), (1, 3), scale=1e8),  # large values
        _ab_case(rng, (3, 4), (4,), dtype=np.float32),  # another dtype
    ]


def _ab_call(ns, inp):
    import numpy as np
    out = ns["add_backward"](inp["grad_out"].copy(), tuple(inp["a_shape"]), tuple(inp["b_shape"]))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("add_backward must return a pair (grad_a, grad_b), got "
                        + (f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list))
                           else f"a {type(out).__name__}"))
    return {"grad_a": np.asarray(out[0]), "grad_b": np.asarray(out[1])}


def _copies(shape: tuple, out_shape: tuple) -> np.ndarray:
    """For each entry of out, the flat index of the input entry that was copied into it."""
    size = prod(shape)
    return np.broadcast_to(np.arange(size).reshape(shape), out_shape).ravel()


def _ab_reduce(g: np.ndarray, shape: tuple, how: str = "sum") -> np.ndarray:
    shape = tuple(shape)
    idx = _copies(shape, g.shape)
    total = np.bincount(idx, weights=g.astype(np.float64).ravel(), minlength=prod(shape))
    if how == "mean":
        total = total / np.bincount(idx, minlength=prod(shape))
    return total.reshape(shape)


def _ab_expected(inp):
    g = inp["grad_out"]
    return {"grad_a": _ab_reduce(g, inp["a_shape"]), "grad_b": _ab_reduce(g, inp["b_shape"])}


def _ab_split(inp):
    want = _ab_expected(inp)
    return {k: v / 2 for k, v in want.items()}


def _ab_mean(inp):
    g = inp["grad_out"]
    if all(tuple(s) == g.shape for s in (inp["a_shape"], inp["b_shape"])):
        raise ValueError("no broadcasting: a mean and a sum agree")
    return {"grad_a": _ab_reduce(g, inp["a_shape"], "mean"), "grad_b": _ab_reduce(g, inp["b_shape"], "mean")}


# --------------------------------------------------------------------------------------------
# ch10.residual_block_backward: y = x + relu(x W1^T + b1) W2^T + b2

_BLOCK_KEYS = ("x", "W1", "b1", "W2", "b2")


def _rb_case(rng: np.random.Generator, n: int, d: int, m: int, x_scale: float = 1.0,
             g_scale: float = 1.0, b1_shift: float = 0.0) -> dict:
    return {"x": rng.normal(size=(n, d)) * x_scale, "W1": rng.normal(size=(m, d)),
            "b1": rng.normal(size=m) + b1_shift, "W2": rng.normal(size=(d, m)),
            "b2": rng.normal(size=d), "grad_y": rng.normal(size=(n, d)) * g_scale}


def _rb_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        _rb_case(rng, 5, 3, 4),                    # d != m: a transposed weight fails on shape
        _rb_case(rng, 6, 4, 4),                    # square weights: a transpose gives wrong values
        _rb_case(rng, 1, 3, 5),                    # a batch of one
        _rb_case(rng, 4, 5, 2),                    # fewer hidden units than inputs
        _rb_case(rng, 7, 2, 6, b1_shift=-1.5),     # many hidden units off: the mask matters
        _rb_case(rng, 5, 3, 3, x_scale=100.0, g_scale=1e3),   # large values
    ]


def _rb_call(ns, inp):
    import numpy as np
    args = {k: np.array(v, copy=True) for k, v in inp.items()}
    out = ns["residual_block_backward"](args["x"], args["W1"], args["b1"], args["W2"], args["b2"],
                                         args["grad_y"])
    if not isinstance(out, dict):
        raise TypeError(f"residual_block_backward must return a dict with keys x, W1, b1, W2, b2, "
                        f"got a {type(out).__name__}")
    return {str(k): np.asarray(v) for k, v in out.items()}


def _rb_reference(inp, *, skip: bool = True, branch: bool = True, mask: str = "u", split: bool = False,
                  w2_from: str = "h", transpose: bool = False, batch_mean: bool = False) -> dict:
    """The gradients example by example with einsum, with knobs for the plausible mistakes
    (defaults: the right answer). mask: "u" (u > 0), "none" (no ReLU derivative) or "no_bias"
    (x W1^T > 0, the bias left out)."""
    x, W1, b1, W2, b2, g = (inp[k] for k in ("x", "W1", "b1", "W2", "b2", "grad_y"))
    if split:
        g = g / 2
    pre = np.einsum("nd,md->nm", x, W1)
    u = pre + b1
    h = np.maximum(u, 0.0)
    on = {"u": u > 0, "none": np.ones_like(u, dtype=bool), "no_bias": pre > 0}[mask]
    g_h = np.einsum("ni,im->nm", g, W2.T if transpose else W2)
    g_u = g_h * on
    g_x = np.zeros_like(x)
    if skip:
        g_x = g_x + g
    if branch:
        g_x = g_x + np.einsum("nm,md->nd", g_u, W1.T if transpose else W1)
    second = h if w2_from == "h" else u
    out = {"x": g_x,
           "W1": np.einsum("nm,nd->md", g_u, x) if not transpose else np.einsum("nm,nd->dm", g_u, x),
           "b1": g_u.sum(axis=0),
           "W2": np.einsum("ni,nm->im", g, second) if not transpose else np.einsum("ni,nm->mi", g, second),
           "b2": g.sum(axis=0)}
    if batch_mean:
        for k in ("W1", "b1", "W2", "b2"):
            out[k] = out[k] / x.shape[0]
    return out


def _rb_expected(inp):
    return _rb_reference(inp)


def _rb_square_only(inp):
    if inp["W1"].shape[0] != inp["W1"].shape[1]:
        raise ValueError("shapes do not allow it")
    return _rb_reference(inp, transpose=True)


def _rb_batch_mean(inp):
    if inp["x"].shape[0] == 1:
        raise ValueError("a batch of one: sum and mean agree")
    return _rb_reference(inp, batch_mean=True)


# --------------------------------------------------------------------------------------------
# ch10.path_terms: T_k = sum over l_1 < ... < l_k of J_{l_k} ... J_{l_1}


def _pt_inputs(rng: np.random.Generator) -> list[dict]:
    return [{"jacobians": rng.normal(size=(3, 2, 2))},
            {"jacobians": rng.normal(size=(1, 3, 3))},          # one block: T = [I, J_0]
            {"jacobians": rng.normal(size=(5, 1, 1))},          # scalars: the order cannot matter
            {"jacobians": rng.normal(size=(4, 3, 3))},          # non-commuting blocks
            {"jacobians": rng.normal(size=(2, 4, 4))},
            {"jacobians": rng.normal(size=(6, 2, 2)) * 10.0}]   # large values


def _pt_call(ns, inp):
    import numpy as np
    return {"terms": np.asarray(ns["path_length_terms"](np.array(inp["jacobians"], copy=True)))}


def _pt_enumerate(js: np.ndarray, reverse: bool = False) -> np.ndarray:
    n, d = js.shape[0], js.shape[1]
    terms = np.zeros((n + 1, d, d))
    for k in range(n + 1):
        for subset in combinations(range(n), k):
            p = np.eye(d)
            for l in subset:
                p = p @ js[l] if reverse else js[l] @ p
            terms[k] += p
    return terms


def _pt_expected(inp):
    return {"terms": _pt_enumerate(inp["jacobians"])}


def _pt_reversed(inp):
    return {"terms": _pt_enumerate(inp["jacobians"], reverse=True)}


def _pt_no_identity(inp):
    terms = _pt_enumerate(inp["jacobians"])
    terms[0] = 0.0
    return {"terms": terms}


def _pt_powers(inp, divide: bool = False):
    js = inp["jacobians"]
    total, d = js.sum(axis=0), js.shape[1]
    terms = [np.linalg.matrix_power(total, k) / (factorial(k) if divide else 1) for k in range(js.shape[0] + 1)]
    return {"terms": np.array(terms).reshape(js.shape[0] + 1, d, d)}


def _pt_chain(inp):
    js = inp["jacobians"]
    d = js.shape[1]
    terms, p = [np.eye(d)], np.eye(d)
    for j in js:
        p = j @ p
        terms.append(p)
    return {"terms": np.array(terms)}


def _pt_recursion(inp, how: str):
    """The recursion T_k <- T_k + J_m T_(k-1) done wrong: "ascending" updates T in place from k = 1
    up, so T_(k-1) already holds block m when T_k reads it; "elementwise" multiplies entry by entry."""
    js = inp["jacobians"]
    n, d = js.shape[0], js.shape[1]
    terms = np.zeros((n + 1, d, d))
    terms[0] = np.eye(d)
    for m in range(n):
        if how == "ascending":
            for k in range(1, m + 2):
                terms[k] = terms[k] + js[m] @ terms[k - 1]
        else:
            terms[1:m + 2] = terms[1:m + 2] + js[m] * terms[0:m + 1]
    return {"terms": terms}


# --------------------------------------------------------------------------------------------

EXERCISES = [
    Exercise(
        id="ch10.add_backward", points=2, needs=("add_backward",),
        inputs=_ab_inputs, call=_ab_call, expected=_ab_expected, rtol=1e-6, atol=1e-6,
        mistakes={
            "the gradient shared out between the two inputs (half each): the add node's derivative "
            "with respect to each input is the identity, so each receives the whole of grad_out": _ab_split,
            "a mean over the broadcast copies where their sum was needed (an input used n times "
            "receives the sum of its n gradients)": _ab_mean,
        },
    ),
    Exercise(
        id="ch10.residual_block_backward", points=3, needs=("residual_block_backward",),
        inputs=_rb_inputs, call=_rb_call, expected=_rb_expected, rtol=1e-6, atol=1e-8,
        batch_key="x",
        mistakes={
            "dL/dx without the skip's copy of grad_y (x feeds both the skip and the branch, so "
            "dL/dx = grad_y + the branch's part)": lambda inp: _rb_reference(inp, skip=False),
            "dL/dx = grad_y alone: the branch's contribution to the input is missing": lambda inp: _rb_reference(inp, branch=False),
            "the add node's gradient split in half between the skip and the branch (it copies the "
            "whole gradient to both)": lambda inp: _rb_reference(inp, split=True),
            "a forgotten ReLU derivative (the mask u > 0)": lambda inp: _rb_reference(inp, mask="none"),
            "the ReLU mask computed from x W1^T without the bias b1": lambda inp: _rb_reference(inp, mask="no_bias"),
            "dL/dW2 built from the pre-activation u instead of h = relu(u)": lambda inp: _rb_reference(inp, w2_from="u"),
            "transposed weights in the backward pass (grad_y @ W2.T, grad_u @ W1.T) and transposed "
            "weight gradients": _rb_square_only,
            "the parameters' gradients averaged over the batch where sums were asked": _rb_batch_mean,
        },
    ),
    Exercise(
        id="ch10.path_terms", points=3, needs=("path_length_terms",),
        inputs=_pt_inputs, call=_pt_call, expected=_pt_expected, rtol=1e-6, atol=1e-8,
        mistakes={
            "the products taken in the forward order, J_{l_1} ... J_{l_k}: the chain rule puts a "
            "later block on the left, J_{l_k} ... J_{l_1}": _pt_reversed,
            "T_0 left at zero: the term that goes through no branch is the identity": _pt_no_identity,
            "powers of the sum of the Jacobians, (J_0 + ... + J_{n-1})^k, which count each path k! "
            "times and include paths through the same block twice": _pt_powers,
            "(J_0 + ... + J_{n-1})^k / k!, which still includes paths through the same block twice": lambda inp: _pt_powers(inp, divide=True),
            "only the chain of the first k blocks, J_{k-1} ... J_0, for T_k (one path of each "
            "length instead of all C(n, k) of them)": _pt_chain,
            "the recursion T_k <- T_k + J_m T_(k-1) updated in place from k = 1 upward: T_(k-1) then "
            "already contains block m, and paths through block m twice creep in (update k from the "
            "top down, or from a copy)": lambda inp: _pt_recursion(inp, "ascending"),
            "an entrywise product J * T where the matrix product J @ T is needed":
                lambda inp: _pt_recursion(inp, "elementwise"),
        },
    ),
    multiple_choice(
        "ch10.zero_branch", 1, "ANSWER_ZERO_BRANCH", "b", "abcd",
        wrong={
            "a": "the add node copies the gradient into every branch, even a branch whose output is "
                 "zero; there dL/dW2 = delta^T h, which is not zero as long as some hidden unit is active",
            "c": "with W2 = 0 the gradient that reaches the hidden units, delta W2, is zero, so W1 and "
                 "b1 get no gradient at the first step",
            "d": "the skips carry the gradient from the top to every block undiminished, so every "
                 "block's W2 and b2 get one",
        },
    ),
]
