"""nnlib.per_example: the gradient of every example's own loss, for an MLP, in one backward pass.

A mini-batch gradient is the mean of N per-example gradients g_i = d l_i / d theta, where l_i is
the loss of example i alone. Autodiff of the batch loss returns only their mean; the spread of the
g_i (how noisy a mini-batch gradient is, chapter 07) needs each of them. A loop of N backward
passes gives them at N times the cost. For a network built of ``Linear`` layers one pass is enough:

- example i reaches the loss only through its own rows z_i = W a_i + b, so
  d l_i / d W = delta_i a_i^T and d l_i / d b = delta_i, with delta_i = d l_i / d z_i;
- z_i feeds only l_i, so row i of the gradient of the *summed* loss with respect to the matrix Z
  (examples in rows) is exactly delta_i. One backward pass of the batch loss gives every delta_i,
  and the per-example gradients are batched outer products (Goodfellow, 2015).

The squared norm of one example's weight gradient needs no outer product at all:
|delta_i a_i^T|^2 = |delta_i|^2 |a_i|^2, so ``per_example_sq_norms`` costs about one backward pass
and O(N) memory whatever the number of parameters.

"Per-example loss" means what the loss function gives on a batch of that one example with its
default reduction='mean': ``loss(model(x[i:i+1]), target[i:i+1])``. The loss must be a mean over
examples of such terms (every nnlib loss with reduction='mean' is); then the batch mean's gradient
is N times smaller than the summed loss's, and this module multiplies back by N.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import functional as F
from .nn import Linear, Module, Sequential
from .tensor import Tensor

Loss = Callable[..., Tensor]

__all__ = ["per_example_grads", "per_example_grads_loop", "per_example_sq_norms", "flatten",
           "NoiseScale", "noise_scale", "two_batch_noise_scale"]


def _layers(model: Module, where: str) -> list[Module]:
    if isinstance(model, Linear):
        return [model]
    if not isinstance(model, Sequential):
        raise TypeError(f"{where}: expects an nn.Sequential of Linear layers and parameter-free "
                        f"layers (such as nn.MLP builds) or a single nn.Linear, got {type(model).__name__}")
    layers = list(model)
    for i, layer in enumerate(layers):
        if not isinstance(layer, Linear) and layer.parameters():
            raise TypeError(f"{where}: layer {i} ({type(layer).__name__}) has parameters but is not a "
                            "Linear; only Linear layers and parameter-free layers (activations) are supported")
    return layers


def _check_batch(x: np.ndarray, target, first: Linear, where: str) -> tuple[np.ndarray, object]:
    x = np.asarray(x.data if isinstance(x, Tensor) else x)
    if x.ndim < 2:
        raise ValueError(f"{where}: x must have an example axis first, shape (N, features), got shape {x.shape}")
    if x.shape[0] < 1:
        raise ValueError(f"{where}: needs at least one example, got x of shape {x.shape}")
    if x.shape[-1] != first.in_features:
        raise ValueError(f"{where}: x of shape {x.shape} has {x.shape[-1]} features but the first "
                         f"Linear expects {first.in_features}")
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.ndim == 0 or t.shape[0] != x.shape[0]:
        raise ValueError(f"{where}: x has {x.shape[0]} examples but target has shape {t.shape}; "
                         "they need the same first (example) axis")
    return x, t


def _forward_deltas(model: Module, x, target, loss: Loss, where: str):
    """One forward and one backward pass: for each Linear application, (layer, input a, delta).

    The parameters enter as constants (their .grad is never touched); the input x is a leaf that
    requires grad, so that the graph is recorded and every pre-activation z can keep its gradient."""
    layers = _layers(model, where)
    linears = [layer for layer in layers if isinstance(layer, Linear)]
    if not linears:
        raise TypeError(f"{where}: the model has no Linear layer, so no parameters")
    x, t = _check_batch(x, target, linears[0], where)
    dtype = linears[0].weight.dtype
    a = Tensor(x, requires_grad=True, dtype=dtype)
    saved = []
    for layer in layers:
        if isinstance(layer, Linear):
            w = Tensor(layer.weight.data)
            b = None if layer.bias is None else Tensor(layer.bias.data)
            z = F.linear(a, w, b).retain_grad()
            saved.append((layer, a.data, z))
            a = z
        else:
            a = layer(a)
    out = loss(a, t)
    if out.data.size != 1:
        raise ValueError(f"{where}: the loss must return one number (a mean over the examples), got "
                         f"shape {out.shape}; use reduction='mean'")
    out.backward()
    n = x.shape[0]
    return [(layer, inp, np.zeros_like(z.data) if z.grad is None else z.grad * n)
            for layer, inp, z in saved], n


def per_example_grads(model: Module, x, target, loss: Loss = F.cross_entropy) -> list[np.ndarray]:
    """The gradient of each example's loss with respect to each parameter, without a loop.

    ``model``: an ``nn.Sequential`` of ``Linear`` and parameter-free layers (``nn.MLP``) or one
    ``Linear``; ``x``: (N, in_features) (extra middle axes are shared positions of one example);
    ``target``: what ``loss`` expects, N along its first axis. Returns one array per parameter, in
    the order of ``model.parameters()``, of shape (N, *parameter.shape): element i is
    d loss(model(x[i:i+1]), target[i:i+1]) / d parameter. Their mean over i is the batch gradient.

    Derivative used: d l_i/dW = delta_i a_i^T and d l_i/db = delta_i for z_i = W a_i + b, with
    delta_i row i of N * dL/dZ of the batch-mean loss L. The model's .grad are left untouched.
    """
    saved, n = _forward_deltas(model, x, target, loss, "per_example_grads")
    return _grads_from(model, saved, n)


def _grads_from(model: Module, saved, n: int) -> list[np.ndarray]:
    grads: dict[int, np.ndarray] = {}
    for layer, a, delta in saved:
        if a.ndim == 2:
            gw = delta[:, :, None] * a[:, None, :]
            gb = delta
        else:  # positions inside one example share the layer: their outer products add
            a2 = a.reshape(n, -1, a.shape[-1])
            d2 = delta.reshape(n, -1, delta.shape[-1])
            gw = np.einsum("npo,npi->noi", d2, a2)
            gb = d2.sum(axis=1)
        for p, g in ((layer.weight, gw), (layer.bias, gb)):
            if p is not None:  # a layer applied twice receives both contributions
                grads[id(p)] = grads[id(p)] + g if id(p) in grads else g
    return [grads[id(p)] if id(p) in grads else np.zeros((n, *p.shape), dtype=p.dtype)
            for p in model.parameters()]


def per_example_grads_loop(model: Module, x, target, loss: Loss = F.cross_entropy) -> list[np.ndarray]:
    """The same as ``per_example_grads`` by brute force: one autodiff backward pass per example.

    Works for any model (it only calls ``model`` and ``loss`` on batches of one); N times the cost.
    The reference the vectorised version is tested against. Leaves the parameters' .grad as it found them."""
    x = np.asarray(x.data if isinstance(x, Tensor) else x)
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if x.ndim < 2 or t.ndim == 0 or t.shape[0] != x.shape[0]:
        raise ValueError(f"per_example_grads_loop: x (N, features) and target need the same first axis, "
                         f"got shapes {x.shape} and {t.shape}")
    params = model.parameters()
    before = [p.grad for p in params]
    out = [np.empty((x.shape[0], *p.shape), dtype=p.dtype) for p in params]
    try:
        for i in range(x.shape[0]):
            for p in params:
                p.grad = None
            loss(model(Tensor(x[i:i + 1], dtype=params[0].dtype)), t[i:i + 1]).backward()
            for k, p in enumerate(params):
                out[k][i] = 0.0 if p.grad is None else p.grad
    finally:
        for p, g in zip(params, before):
            p.grad = g
    return out


def per_example_sq_norms(model: Module, x, target, loss: Loss = F.cross_entropy) -> np.ndarray:
    """|g_i|^2, the squared norm of each example's whole gradient (all parameters), shape (N,).

    Uses |delta_i a_i^T|^2 + |delta_i|^2 = |delta_i|^2 (|a_i|^2 + 1) per layer (the 1 is the bias),
    so no (N, parameters) array is formed. Falls back to the outer products when a layer is
    applied twice or an example has several positions (then cross terms appear)."""
    saved, n = _forward_deltas(model, x, target, loss, "per_example_sq_norms")
    return _sq_norms_from(model, saved, n)


def _sq_norms_from(model: Module, saved, n: int) -> np.ndarray:
    layers = [layer for layer, _, _ in saved]
    if len({id(layer) for layer in layers}) < len(layers) or any(a.ndim != 2 for _, a, _ in saved):
        return (flatten(_grads_from(model, saved, n)) ** 2).sum(axis=1)
    total = np.zeros(n)
    for layer, a, delta in saved:
        bias = 0.0 if layer.bias is None else 1.0
        total += (delta * delta).sum(axis=1) * ((a * a).sum(axis=1) + bias)
    return total


def flatten(grads: list[np.ndarray]) -> np.ndarray:
    """Per-example gradients (one (N, ...) array per parameter) as one (N, P) matrix, row i = g_i."""
    if not grads:
        raise ValueError("flatten: got an empty list of gradients")
    n = grads[0].shape[0]
    for k, g in enumerate(grads):
        if g.ndim < 1 or g.shape[0] != n:
            raise ValueError(f"flatten: every array needs the same first (example) axis; array 0 has "
                             f"{n} rows, array {k} has shape {g.shape}")
    return np.concatenate([g.reshape(n, -1) for g in grads], axis=1)


@dataclass(frozen=True)
class NoiseScale:
    """The gradient noise statistics of a data set at one point of parameter space.

    ``grad_sq_norm`` = |G|^2 with G = (1/N) sum_i g_i the full-batch gradient; ``trace_sigma`` =
    tr(Sigma) = (1/N) sum_i |g_i - G|^2 (the per-example covariance over the N examples);
    ``b_simple`` = tr(Sigma) / |G|^2, the simple noise scale of McCandlish et al. (2018)."""

    trace_sigma: float
    grad_sq_norm: float
    b_simple: float
    n: int


def noise_scale(model: Module, x, target, loss: Loss = F.cross_entropy) -> NoiseScale:
    """B_simple = tr(Sigma) / |G|^2 over the examples (x, target), exactly, in one backward pass.

    tr(Sigma) = (1/N) sum_i |g_i - G|^2 = (1/N) sum_i |g_i|^2 - |G|^2: the mean squared norm comes
    from ``per_example_sq_norms``, G from the batch gradient, so memory stays O(N + parameters)."""
    saved, n = _forward_deltas(model, x, target, loss, "noise_scale")
    sq = _sq_norms_from(model, saved, n)
    batch: dict[int, np.ndarray] = {}
    for layer, a, delta in saved:
        a2, d2 = a.reshape(-1, a.shape[-1]), delta.reshape(-1, delta.shape[-1])
        for p, g in ((layer.weight, d2.T @ a2 / n), (layer.bias, d2.sum(axis=0) / n)):
            if p is not None:
                batch[id(p)] = batch[id(p)] + g if id(p) in batch else g
    g2 = float(sum(float((g * g).sum()) for g in batch.values()))
    tr = float(sq.mean()) - g2
    return NoiseScale(trace_sigma=tr, grad_sq_norm=g2, b_simple=tr / g2 if g2 > 0 else float("inf"), n=n)


def two_batch_noise_scale(sq_small, sq_big, b_small: int, b_big: int) -> NoiseScale:
    """B_simple without per-example gradients, from squared norms of mini-batch gradients at two sizes.

    For a mean of B independent draws, E|G_B|^2 = |G|^2 + tr(Sigma)/B. Measured at B_small < B_big
    (McCandlish et al., 2018, appendix A.1), the two equations give unbiased estimates
    |G|^2 ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small) and
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big). ``sq_small``, ``sq_big``: the
    measured squared norms (numbers or 1-D arrays, not necessarily of the same length: in
    data-parallel training each big batch is the mean of several small ones). Each is averaged
    before the estimates are formed, and B_simple is the ratio of the two estimates (a ratio of
    averages: an average of ratios would be biased). ``n`` is the number of big-batch measurements."""
    small = np.atleast_1d(np.asarray(sq_small, dtype=np.float64))
    big = np.atleast_1d(np.asarray(sq_big, dtype=np.float64))
    if small.ndim != 1 or big.ndim != 1 or small.size == 0 or big.size == 0:
        raise ValueError(f"two_batch_noise_scale: sq_small and sq_big must be numbers or non-empty 1-D "
                         f"arrays, got shapes {small.shape} and {big.shape}")
    if not 0 < b_small < b_big:
        raise ValueError(f"two_batch_noise_scale: needs 0 < b_small < b_big, got b_small={b_small}, b_big={b_big}")
    s_mean, b_mean = float(small.mean()), float(big.mean())
    g2 = (b_big * b_mean - b_small * s_mean) / (b_big - b_small)
    tr = (s_mean - b_mean) / (1.0 / b_small - 1.0 / b_big)
    return NoiseScale(trace_sigma=tr, grad_sq_norm=g2, b_simple=tr / g2 if g2 > 0 else float("inf"),
                      n=int(big.size))
