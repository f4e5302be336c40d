"""nnlib.functional: activations and losses as functions of Tensors (``torch.nn.functional``).

The fused ops here (log_softmax, logsumexp, cross_entropy, linear) are single graph nodes with a
hand-derived backward: cheaper than composing primitives, and numerically stable.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from .tensor import Tensor, _lift, _normalise_axes, _stable_sigmoid

Reduction = Literal["mean", "sum", "none"]


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(per_example: np.ndarray, reduction: str) -> tuple[np.ndarray, float]:
    """The reduced loss and the factor d(reduced)/d(per-example) (1/N for a mean)."""
    if reduction == "none":
        return per_example, 1.0
    total = np.add.reduce(per_example, axis=None)  # ndarray.mean() costs microseconds of Python
    if reduction == "sum":
        return np.asarray(total), 1.0
    n = max(per_example.size, 1)
    return np.asarray(total / n, dtype=per_example.dtype), 1.0 / n


def relu(x: Tensor) -> Tensor:
    return _tensor(x).relu()


def tanh(x: Tensor) -> Tensor:
    return _tensor(x).tanh()


def sigmoid(x: Tensor) -> Tensor:
    return _tensor(x).sigmoid()


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b as one node (``torch.nn.functional.linear``; weight has shape (out, in)).
    dy/dx: G W;  dy/dW: G^T x;  dy/db: G summed over the batch."""
    x = _tensor(x)
    X, W = x.data, weight.data
    if X.shape[-1] != W.shape[1]:
        raise ValueError(
            f"linear: input of shape {X.shape} has {X.shape[-1]} features but the weight of shape "
            f"{W.shape} expects {W.shape[1]} (weight is (out_features, in_features))")
    out = X @ W.T
    if bias is not None:
        out += bias.data
    parents = (x, weight) if bias is None else (x, weight, bias)

    def backward(g: np.ndarray):
        gx = g @ W if x.requires_grad else None
        if X.ndim == 2:
            gw = g.T @ X if weight.requires_grad else None
            gb = g.sum(axis=0) if bias is not None and bias.requires_grad else None
        else:  # leading batch dims: flatten them
            g2, x2 = g.reshape(-1, g.shape[-1]), X.reshape(-1, X.shape[-1])
            gw = g2.T @ x2 if weight.requires_grad else None
            gb = g2.sum(axis=0) if bias is not None and bias.requires_grad else None
        return (gx, gw) if bias is None else (gx, gw, gb)
    return Tensor._make(out, parents, backward, "linear")


def logsumexp(x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    """log sum_j exp(x_j), computed as m + log sum exp(x - m) with m = max x (no overflow).
    d/dx_j = softmax(x)_j."""
    x = _tensor(x)
    ax = _normalise_axes(axis, x.ndim, "logsumexp")
    m = np.max(x.data, axis=ax, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(x.data - m)
    s = e.sum(axis=ax, keepdims=True)
    out = np.log(s) + m

    def backward(g: np.ndarray):
        if not keepdims and ax is not None:  # axis=None: g is 0-d and broadcasts as it is
            g = np.expand_dims(g, ax)
        return (g * (e / s),)
    return Tensor._make(out if keepdims else np.squeeze(out, axis=ax), (x,), backward, "logsumexp")


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log softmax(x)_j = x_j - logsumexp(x). d/dx: g - softmax(x) * sum(g)."""
    x = _tensor(x)
    ax = _normalise_axes(axis, x.ndim, "log_softmax")
    shifted = x.data - np.max(x.data, axis=ax, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=ax, keepdims=True))

    def backward(g: np.ndarray):
        return (g - np.exp(out) * g.sum(axis=ax, keepdims=True),)
    return Tensor._make(out, (x,), backward, "log_softmax")


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """softmax(x)_j = exp(x_j - max x) / sum_k exp(x_k - max x).
    Jacobian: d o_j / d x_k = o_j (delta_jk - o_k), so d/dx = o * (g - sum(g * o))."""
    x = _tensor(x)
    ax = _normalise_axes(axis, x.ndim, "softmax")
    e = np.exp(x.data - np.max(x.data, axis=ax, keepdims=True))
    out = e / e.sum(axis=ax, keepdims=True)

    def backward(g: np.ndarray):
        return (out * (g - (g * out).sum(axis=ax, keepdims=True)),)
    return Tensor._make(out, (x,), backward, "softmax")


def mse_loss(input: Tensor, target, reduction: Reduction = "mean") -> Tensor:
    """(input - target)^2, reduced. d/d input = 2 (input - target) (/ N for the mean)."""
    _check_reduction(reduction, "mse_loss")
    x = _tensor(input)
    # a constant target takes the input's dtype (as in cross_entropy and bce), so float32 stays float32
    t = target if isinstance(target, Tensor) else Tensor(np.asarray(target), dtype=x.dtype)
    if x.shape != t.shape:
        raise ValueError(f"mse_loss: input shape {x.shape} and target shape {t.shape} must be equal "
                         "(broadcasting them is almost always a bug)")
    diff = x - t
    sq = diff * diff
    return sq if reduction == "none" else (sq.sum() if reduction == "sum" else sq.mean())


def _class_weights(weight, C: int, dtype, op: str) -> np.ndarray | None:
    """A per-class weight as an array of shape (C,) in the logits' dtype (no gradient flows into it)."""
    if weight is None:
        return None
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=dtype)
    if w.shape != (C,):
        raise ValueError(f"{op}: weight must have one entry per class, shape ({C},), got shape {w.shape}")
    return w


def _label_weights(labels: np.ndarray, C: int, w: np.ndarray | None, ignore_index: int, dtype, op: str):
    """Check class-index labels; return (labels safe to index with, per-example weights or None).

    The per-example weight is w[y_i] (1 without a class weight) and 0 where y_i == ignore_index;
    None means every example counts with weight 1 (the fast path)."""
    ignored = labels == ignore_index if labels.size else np.zeros(0, dtype=bool)
    any_ignored = bool(ignored.any())
    valid = labels[~ignored] if any_ignored else labels
    # one reduction checks both ends: seen as unsigned, a negative label is huge
    if valid.size and valid.view(valid.dtype.str.replace("i", "u")).max() >= C:
        bad = valid[(valid < 0) | (valid >= C)]
        raise IndexError(f"{op}: target class {int(bad[0])} is out of range for {C} classes "
                         f"(valid labels are 0..{C - 1}, or ignore_index={ignore_index})")
    if not any_ignored and w is None:
        return labels, None
    safe = np.where(ignored, 0, labels) if any_ignored else labels
    per = w[safe] if w is not None else np.ones(labels.shape, dtype=dtype)
    if any_ignored:
        per = np.where(ignored, 0.0, per).astype(dtype, copy=False)
    return safe, per


def _weighted_reduce(per_example: np.ndarray, reduction: str, weights: np.ndarray | None):
    """Like _reduce, but a mean divides by the sum of the per-example weights (PyTorch's weighted
    mean). A mean over a total weight of zero is NaN, and its gradient is zero, as in PyTorch."""
    if weights is None or reduction != "mean":
        return _reduce(per_example, reduction)
    total_w = float(np.add.reduce(weights, axis=None))
    with np.errstate(invalid="ignore", divide="ignore"):
        loss = np.asarray(np.add.reduce(per_example, axis=None) / total_w, dtype=per_example.dtype)
    return loss, (1.0 / total_w if total_w != 0 else 0.0)


def cross_entropy(logits: Tensor, target, reduction: Reduction = "mean", *, weight=None,
                  ignore_index: int = -100) -> Tensor:
    """Softmax cross-entropy from logits, as ``torch.nn.functional.cross_entropy``.

    logits: (N, C) or (C,). target: class indices (ints, shape (N,) or ()) or probabilities
    (floats, same shape as logits). With o = softmax(logits):
    loss_i = -sum_j t_ij log o_ij;  d loss_i / d logits_i = o_i sum_j t_ij - t_i (o_i - t_i for a row
    that sums to one);  d loss_i / d t_ij = -log o_ij. As in PyTorch, a row of probabilities need not
    sum to one (multi-label rows, class-weighted rows): the gradient above is then still exact.
    A probability target that is a Tensor with requires_grad receives that label gradient (the
    behaviour of TensorFlow's softmax_cross_entropy_with_logits_v2); detach it to stop it (v1).

    ``weight`` (shape (C,), a constant: no gradient reaches it) and ``ignore_index`` follow
    PyTorch exactly. Class indices: loss_i = w[y_i] * (-log o_i,y_i), 0 where y_i == ignore_index,
    and ``reduction="mean"`` divides the sum by sum_i w[y_i] over the examples not ignored (the
    number of examples not ignored without a weight; NaN when that is 0). Probability targets:
    loss_i = -sum_j w_j t_ij log o_ij, and the mean divides by N whatever the weights.
    ``weight`` and ``ignore_index`` are keyword-only here (PyTorch also accepts weight third).
    """
    _check_reduction(reduction, "cross_entropy")
    z = _tensor(logits)
    if z.ndim not in (1, 2):
        raise ValueError(f"cross_entropy: logits must have shape (N, C) or (C,), got {z.shape}")
    C = z.shape[-1]
    Z = z.data if z.ndim == 2 else z.data[None, :]
    shifted = Z - Z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    log_s = np.log(s)  # log softmax = shifted - log_s
    squeeze = z.ndim == 1
    w = _class_weights(weight, C, Z.dtype, "cross_entropy")

    t_tensor = target if isinstance(target, Tensor) else None
    t_arr = target.data if t_tensor is not None else np.asarray(target)
    if t_tensor is None and t_arr.dtype.kind in "iu":
        labels = t_arr.reshape(-1)
        if labels.shape[0] != Z.shape[0] or t_arr.ndim != (0 if squeeze else 1):
            raise ValueError(f"cross_entropy: class-index target of shape {t_arr.shape} does not match logits "
                             f"of shape {z.shape} (expected shape {(Z.shape[0],) if not squeeze else ()})")
        labels, wl = _label_weights(labels, C, w, ignore_index, Z.dtype, "cross_entropy")
        rows = np.arange(Z.shape[0])
        per_ex = log_s[:, 0] - shifted[rows, labels]
        if wl is not None:
            per_ex = per_ex * wl
        loss, scale = _weighted_reduce(per_ex if not squeeze else per_ex.reshape(()), reduction,
                                       wl if not squeeze or wl is None else wl.reshape(()))

        def backward_idx(g: np.ndarray):
            grad = e / s  # softmax, from the forward pass's exponentials
            grad[rows, labels] -= 1.0
            if wl is not None:
                grad *= wl[:, None]
            grad *= (g.reshape(-1, 1) if reduction == "none" else g) * scale
            return (grad if not squeeze else grad[0],)
        return Tensor._make(loss, (z,), backward_idx, "cross_entropy")

    t = t_tensor if t_tensor is not None else Tensor(t_arr.astype(Z.dtype))
    T = t.data if t.ndim == 2 else t.data[None, :]
    if t.shape != z.shape:
        raise ValueError(f"cross_entropy: probability target of shape {t.shape} must have the logits' shape {z.shape}")
    logp = shifted - log_s
    A = T if w is None else T * w  # the weighted targets w_j t_ij
    per_ex = -(A * logp).sum(axis=1)
    loss, scale = _reduce(per_ex if not squeeze else per_ex.reshape(()), reduction)
    parents = (z, t)

    def backward_prob(g: np.ndarray):
        gs = (g.reshape(-1, 1) if reduction == "none" else g) * scale
        gz = ((e / s) * A.sum(axis=1, keepdims=True) - A) * gs if z.requires_grad else None
        gt = -(logp if w is None else logp * w) * gs if t.requires_grad else None
        if squeeze:
            gz = None if gz is None else gz[0]
            gt = None if gt is None else gt[0]
        return gz, gt
    return Tensor._make(loss, parents, backward_prob, "cross_entropy")


def nll_loss(log_probs: Tensor, target, reduction: Reduction = "mean", *, weight=None,
             ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood of class indices given log-probabilities (N, C), as
    ``torch.nn.functional.nll_loss``: loss_i = -w[y_i] log_probs[i, y_i] (0 where y_i == ignore_index);
    d loss_i / d log_probs[i, y_i] = -w[y_i]. ``reduction="mean"`` divides by sum_i w[y_i] over the
    examples not ignored, like cross_entropy. ``weight`` and ``ignore_index`` are keyword-only."""
    _check_reduction(reduction, "nll_loss")
    lp = _tensor(log_probs)
    labels = np.asarray(target).astype(np.int64)
    if lp.ndim != 2 or labels.shape != (lp.shape[0],):
        raise ValueError(f"nll_loss: expected log_probs (N, C) and target (N,), got {lp.shape} and {labels.shape}")
    w = _class_weights(weight, lp.shape[1], lp.dtype, "nll_loss")
    labels, wl = _label_weights(labels, lp.shape[1], w, ignore_index, lp.dtype, "nll_loss")
    rows = np.arange(lp.shape[0])
    per_ex = -lp.data[rows, labels]
    if wl is not None:
        per_ex = per_ex * wl
    loss, scale = _weighted_reduce(per_ex, reduction, wl)

    def backward(g: np.ndarray):
        grad = np.zeros_like(lp.data)
        coef = (g if reduction == "none" else np.full(rows.shape, g)) * scale
        grad[rows, labels] = -(coef if wl is None else coef * wl)
        return (grad,)
    return Tensor._make(loss, (lp,), backward, "nll_loss")


def binary_cross_entropy_with_logits(logits: Tensor, target, reduction: Reduction = "mean", *,
                                     weight=None) -> Tensor:
    """-[t log s(z) + (1-t) log(1-s(z))] computed stably from logits z. d/dz = s(z) - t.

    ``weight`` (keyword-only, a constant broadcast to the logits' shape) multiplies each element's
    loss, as in PyTorch; ``reduction="mean"`` still divides by the number of elements, not by the
    sum of the weights (PyTorch's BCE convention, unlike its weighted cross-entropy)."""
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    z = _tensor(logits)
    t = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=z.dtype)
    if t.shape != z.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target shape {t.shape} must equal logits shape {z.shape}")
    w = None
    if weight is not None:
        w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=z.dtype)
        try:
            w = np.broadcast_to(w, z.shape)
        except ValueError:
            raise ValueError(f"binary_cross_entropy_with_logits: weight of shape {w.shape} does not broadcast "
                             f"to the logits' shape {z.shape}") from None
    Z = z.data
    per = np.maximum(Z, 0) - Z * t + np.log1p(np.exp(-np.abs(Z)))
    if w is not None:
        per = per * w
    loss, scale = _reduce(per, reduction)

    def backward(g: np.ndarray):
        d = (_stable_sigmoid(Z) - t) * g * scale
        return (d if w is None else d * w,)
    return Tensor._make(loss, (z,), backward, "bce_with_logits")
