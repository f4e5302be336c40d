"""Hidden tests of chapter 06, "Sum or mean of the gradients in a mini-batch".

Every reference answer is computed here in plain numpy from the chapter's formulas (sections 3.1,
3.3 and 3.4), independently of nnlib and of the learner's code. The mistakes are the wrong
answers the chapter warns about: a sum where the mean was asked, PyTorch's mean over elements,
a learning rate converted without its weight decay or clipping threshold, and the mean of the
micro-batch means.
"""
from __future__ import annotations

import numpy as np

from course.hidden import Exercise, multiple_choice


# ------------------------------------------------------------------ ch06.mean_batch_gradient
def _mbg_case(rng: np.random.Generator, B: int, D: int, K: int, scale: float = 1.0) -> dict:
    return {"X": rng.normal(size=(B, D)) * scale, "Y": rng.normal(size=(B, K)) * scale,
            "W": rng.normal(size=(K, D))}


def _mbg_inputs(rng: np.random.Generator) -> list[dict]:
    cases = [_mbg_case(rng, 6, 4, 3), _mbg_case(rng, 9, 2, 5)]      # non-square: a transpose fails on shape
    cases.append(_mbg_case(rng, 5, 3, 3))                            # square W: X^T R has the right shape
    cases.append(_mbg_case(rng, 1, 4, 2))                            # a batch of one: sum and mean agree
    cases.append(_mbg_case(rng, 7, 5, 1))                            # one output
    cases.append(_mbg_case(rng, 8, 3, 4, scale=1e3))                 # large values
    ints = _mbg_case(rng, 4, 3, 2)                                   # integer inputs (pixel counts, say)
    ints["X"] = rng.integers(0, 17, size=(4, 3))
    cases.append(ints)
    return cases


def _mbg_call(ns, inp):
    import numpy as np
    out = ns["mean_batch_gradient"](inp["X"].copy(), inp["Y"].copy(), inp["W"].copy())
    return {"grad": np.asarray(out)}


def _mbg_grad(inp, per_example_scale=1.0):
    X = np.asarray(inp["X"], dtype=np.float64)
    R = X @ inp["W"].T - inp["Y"]
    return per_example_scale * (R.T @ X) / X.shape[0]


def _mbg_expected(inp):
    return {"grad": _mbg_grad(inp)}


def _mbg_over_elements(inp):
    K = inp["W"].shape[0]
    if K == 1:
        raise ValueError("indistinguishable for one output")
    return {"grad": _mbg_grad(inp) / K}


def _mbg_torch_mse(inp):
    K = inp["W"].shape[0]
    if K in (1, 2):
        raise ValueError("indistinguishable from other answers")
    return {"grad": 2.0 * _mbg_grad(inp) / K}


def _mbg_no_half(inp):
    return {"grad": 2.0 * _mbg_grad(inp)}


def _mbg_twice_divided(inp):
    if inp["X"].shape[0] == 1:
        raise ValueError("indistinguishable for a batch of one")
    return {"grad": _mbg_grad(inp) / inp["X"].shape[0]}


def _mbg_first_example(inp):
    X = np.asarray(inp["X"], dtype=np.float64)
    r = X[0] @ inp["W"].T - inp["Y"][0]
    return {"grad": np.outer(r, X[0])}


def _mbg_square_transposed(inp):
    K, D = inp["W"].shape
    if K != D:
        raise ValueError("shapes do not allow it")
    return {"grad": _mbg_grad(inp).T}


# ------------------------------------------------------------------ ch06.convert_sgd_settings
def _conv_inputs(rng: np.random.Generator) -> list[dict]:
    cases = [
        {"lr": 0.1, "weight_decay": 5e-4, "max_norm": 1.0, "batch_size": 32, "to": "sum"},
        {"lr": 0.003, "weight_decay": 0.02, "max_norm": 40.0, "batch_size": 20, "to": "mean"},
        {"lr": 0.5, "weight_decay": 1e-4, "max_norm": 2.5, "batch_size": 1, "to": "sum"},     # B = 1: nothing changes
        {"lr": 0.05, "weight_decay": 0.0, "max_norm": float("inf"), "batch_size": 256, "to": "sum"},  # no decay, no clipping
        {"lr": 1e-5, "weight_decay": 3.0, "max_norm": 512.0, "batch_size": 256, "to": "mean"},
    ]
    for to in ("sum", "mean"):                                        # random recipes, odd batch sizes
        cases.append({"lr": float(10 ** rng.uniform(-4, 0)), "weight_decay": float(10 ** rng.uniform(-5, -1)),
                      "max_norm": float(10 ** rng.uniform(-1, 2)), "batch_size": int(rng.integers(2, 500)),
                      "to": to})
    return cases


def _conv_call(ns, inp):
    import numpy as np
    out = ns["convert_sgd_settings"](inp["lr"], inp["weight_decay"], inp["max_norm"], inp["batch_size"], inp["to"])
    if not isinstance(out, dict):
        raise TypeError(f"convert_sgd_settings must return a dict, it returned {type(out).__name__}")
    result = {}
    for key in ("lr", "weight_decay", "max_norm"):
        if key not in out:
            raise KeyError(f"convert_sgd_settings must return a dict with the key {key!r}")
        result[key] = np.asarray(out[key], dtype=np.float64)
    return result


def _conv(inp, lr_factor=None, wd_factor=None, clip_factor=None):
    """The right conversion (section 3.3), with knobs that model the mistakes: each factor is the
    power of B it applies when converting to the sum (its inverse for the mean)."""
    B = float(inp["batch_size"])
    sign = 1.0 if inp["to"] == "sum" else -1.0
    lf = -1.0 if lr_factor is None else lr_factor
    wf = 1.0 if wd_factor is None else wd_factor
    cf = 1.0 if clip_factor is None else clip_factor
    return {"lr": inp["lr"] * B ** (sign * lf), "weight_decay": inp["weight_decay"] * B ** (sign * wf),
            "max_norm": inp["max_norm"] * B ** (sign * cf)}


def _conv_expected(inp):
    return _conv(inp)


def _conv_check_b(inp):
    if inp["batch_size"] == 1:
        raise ValueError("every conversion is the identity for a batch of one")


def _conv_wd_kept(inp):
    _conv_check_b(inp)
    return _conv(inp, wd_factor=0.0)


def _conv_clip_kept(inp):
    _conv_check_b(inp)
    return _conv(inp, clip_factor=0.0)


def _conv_lr_wrong_way(inp):
    _conv_check_b(inp)
    return _conv(inp, lr_factor=1.0)


def _conv_all_like_lr(inp):
    _conv_check_b(inp)
    return _conv(inp, wd_factor=-1.0, clip_factor=-1.0)


def _conv_wd_like_lr(inp):
    _conv_check_b(inp)
    return _conv(inp, wd_factor=-1.0)


# ------------------------------------------------------------------ ch06.accumulate_token_means
def _acc_case(rng: np.random.Generator, tokens, P: int, scale: float = 1.0) -> dict:
    n = np.asarray(tokens, dtype=np.int64)
    losses = rng.uniform(0.5, 4.0, size=len(n)) * scale
    grads = rng.normal(size=(len(n), P)) * scale
    losses = np.where(n > 0, losses, np.nan)          # the mean over no token is 0/0
    grads[n == 0] = 0.0
    return {"mean_losses": losses, "mean_grads": grads, "n_tokens": n}


def _acc_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        _acc_case(rng, [12, 40, 3], 5),
        _acc_case(rng, rng.integers(1, 300, size=8), 7),                 # eight micro-batches, random lengths
        _acc_case(rng, [37], 4),                                         # one micro-batch: its mean is the answer
        _acc_case(rng, [20, 0, 15, 9], 6),                               # an all-padding micro-batch
        _acc_case(rng, [50, 50, 50], 3),                                 # equal sizes: the mean of means is right here
        _acc_case(rng, [1, 2000], 5, scale=1e4),                         # very unequal, large values
        _acc_case(rng, [0, 7], 2),                                       # the empty one first
    ]


def _acc_call(ns, inp):
    import numpy as np
    out = ns["accumulate_token_means"](inp["mean_losses"].copy(), inp["mean_grads"].copy(), inp["n_tokens"].copy())
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError("accumulate_token_means must return a pair (loss, grad), got "
                        + (f"a {type(out).__name__} of length {len(out)}" if isinstance(out, (tuple, list))
                           else f"a {type(out).__name__}"))
    return {"loss": np.asarray(out[0], dtype=np.float64), "grad": np.asarray(out[1])}


def _acc_weighted(inp, weights):
    has = inp["n_tokens"] > 0
    w = np.where(has, weights, 0.0)
    w = w / w.sum()
    return {"loss": np.asarray(np.sum(w[has] * inp["mean_losses"][has])),
            "grad": w[has] @ inp["mean_grads"][has]}


def _acc_expected(inp):
    return _acc_weighted(inp, inp["n_tokens"].astype(np.float64))


def _acc_unequal(inp):
    n = inp["n_tokens"][inp["n_tokens"] > 0]
    if len(n) < 2 or np.all(n == n[0]):
        raise ValueError("the mistake gives the right answer when every micro-batch has the same size")


def _acc_mean_of_means(inp):
    _acc_unequal(inp)
    return _acc_weighted(inp, np.ones(len(inp["n_tokens"])))


def _acc_mean_of_means_all(inp):
    _acc_unequal(inp)
    K = len(inp["n_tokens"])
    return {"loss": np.asarray(np.nansum(inp["mean_losses"]) / K), "grad": inp["mean_grads"].sum(axis=0) / K}


def _acc_inverse(inp):
    _acc_unequal(inp)
    n = inp["n_tokens"].astype(np.float64)
    return _acc_weighted(inp, np.where(n > 0, 1.0 / np.maximum(n, 1.0), 0.0))


def _acc_sum_of_means(inp):
    if len(inp["n_tokens"]) == 1:
        raise ValueError("indistinguishable with one micro-batch")
    has = inp["n_tokens"] > 0
    return {"loss": np.asarray(np.sum(inp["mean_losses"][has])), "grad": inp["mean_grads"].sum(axis=0)}


def _acc_token_sum(inp):
    n = inp["n_tokens"].astype(np.float64)
    has = n > 0
    return {"loss": np.asarray(np.sum(n[has] * inp["mean_losses"][has])), "grad": n @ inp["mean_grads"]}


# ------------------------------------------------------------------ the exercises
EXERCISES = [
    Exercise(
        id="ch06.mean_batch_gradient", points=2, needs=("mean_batch_gradient",),
        inputs=_mbg_inputs, call=_mbg_call, expected=_mbg_expected, rtol=1e-7, atol=1e-9, batch_key="X",
        mistakes={
            "the mean over all B*K elements, as PyTorch's mse_loss divides (the asked mean is over the B "
            "examples only)": _mbg_over_elements,
            "the gradient of PyTorch's mse_loss (mean over the B*K elements and no 1/2, so 2/K times the "
            "asked value)": _mbg_torch_mse,
            "a missing 1/2: the gradient of ||W x - y||^2 is twice the asked one": _mbg_no_half,
            "the sum divided by the batch size twice (1/B^2 instead of 1/B)": _mbg_twice_divided,
            "the gradient of the first example only, not the mean over the batch": _mbg_first_example,
            "a transposed gradient (X^T R instead of R^T X; W has shape (K, D))": _mbg_square_transposed,
        },
    ),
    Exercise(
        id="ch06.convert_sgd_settings", points=2, needs=("convert_sgd_settings",),
        inputs=_conv_inputs, call=_conv_call, expected=_conv_expected, rtol=1e-9, atol=0.0,
        mistakes={
            "weight decay left unchanged: the data gradient scales with B but the decay term does not, so "
            "it must be multiplied by B for the sum (Goyal et al.'s Remark 1)": _conv_wd_kept,
            "the clipping threshold left unchanged: the sum's gradient norm is B times the mean's": _conv_clip_kept,
            "the learning rate converted the wrong way (the sum's gradient is B times larger, so its "
            "learning rate is B times smaller; `to` is the convention you train with: to='sum' means "
            "the recipe was tuned for the mean, to='mean' that it was tuned for the sum)": _conv_lr_wrong_way,
            "every setting divided by B like the learning rate (weight decay and max_norm scale the other "
            "way)": _conv_all_like_lr,
            "the weight decay converted like the learning rate": _conv_wd_like_lr,
        },
    ),
    Exercise(
        id="ch06.accumulate_token_means", points=3, needs=("accumulate_token_means",),
        inputs=_acc_inputs, call=_acc_call, expected=_acc_expected, rtol=1e-9, atol=1e-12,
        mistakes={
            "the mean of the micro-batch means: every micro-batch weighted 1/K whatever its number of "
            "tokens (weight each by its share T_k / T)": _acc_mean_of_means,
            "the mean of the micro-batch means, empty micro-batches counted in K": _acc_mean_of_means_all,
            "micro-batches weighted by 1/T_k (the weight must grow with the number of tokens)": _acc_inverse,
            "the sum of the micro-batch means, not weighted by their tokens": _acc_sum_of_means,
            "the token sum, not divided by the total number of tokens T": _acc_token_sum,
        },
    ),
    multiple_choice(
        "ch06.adam_sum_or_mean", 1, "ANSWER_ADAM", "c", "abcd",
        wrong={
            "a": "only without eps: Adam's step is m / (sqrt(v) + eps), and scaling the gradient by B is "
                 "dividing eps by B, which shows where sqrt(v) is of the order of eps",
            "b": "Adam divides m by sqrt(v), which grows by the same factor B, so the steps do not grow "
                 "with the loss (section 3.3 d)",
            "d": "the learning rate must stay: multiplying it by 256 would make the steps 256 times "
                 "larger; only eps scales with the loss",
        },
    ),
]
