"""nnlib.monitor: what each layer of a network is doing, as numbers a chapter can print.

Per-layer activation statistics (mean, spread, fraction saturated; Glorot and Bengio, 2010, watch
these over training), the gradient that reaches each layer's pre-activation (the backward signal
delta_l = dE/da_l, a_l = W_l h_{l-1} + b_l), and the norm of each layer's weight gradient
dE/dW_l = sum over the batch of delta_l h_{l-1}^T. Everything works on an ``nn.Sequential`` whose
``nn.Linear`` layers are the "layers" counted here (input side first), as ``nn.MLP`` builds it.
Nothing here changes a model's parameters or their ``.grad``, except ``backward_signal``, which
runs a backward pass and leaves the parameters' gradients of that pass in ``.grad``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .nn import Linear, Module, Sequential
from .tensor import Tensor, no_grad

__all__ = ["SATURATION_MARGIN", "LayerStats", "layer_outputs", "hidden_activations", "activation_stats",
           "backward_signal", "weight_grad_norms", "linear_layers"]


#: (1 - sqrt(0.9)) / 2 = 0.02566: within this fraction of its range from a bound, the derivative of
#: an activation k tanh(c a) + m is below a tenth of its maximum (see activation_stats)
SATURATION_MARGIN = (1.0 - math.sqrt(0.9)) / 2.0


def _sequential(model, where: str) -> Sequential:
    if not isinstance(model, Sequential):
        raise TypeError(f"{where}: needs an nn.Sequential (as nn.MLP builds), got {type(model).__name__}")
    if not any(isinstance(layer, Linear) for layer in model):
        raise ValueError(f"{where}: the Sequential of {len(model)} layers has no nn.Linear layer")
    return model


def linear_layers(model: Module) -> list[Linear]:
    """The ``nn.Linear`` layers of a model, in the order ``model.modules()`` visits them."""
    found = [m for m in model.modules() if isinstance(m, Linear)]
    if not found:
        raise ValueError(f"linear_layers: {type(model).__name__} has no nn.Linear layer")
    return found


def layer_outputs(model: Sequential, x) -> list[np.ndarray]:
    """The output of every layer of ``model`` on input ``x`` (``len(model)`` arrays, in order).

    Computed under ``no_grad()``: no graph is recorded and no ``.grad`` changes. The last array is
    the model's output.
    """
    model = _sequential(model, "layer_outputs")
    h = x if isinstance(x, Tensor) else Tensor(x)
    outs = []
    with no_grad():
        for layer in model:
            h = layer(h)
            outs.append(np.array(h.data))
    return outs


def hidden_activations(model: Sequential, x) -> list[np.ndarray]:
    """The outputs of the activation layers, input side first: every layer that directly follows
    an ``nn.Linear`` and is not itself one (for ``nn.MLP([n0, n1, n2, n3])``, ``[h1, h2]``).
    A final activation (``nn.MLP(..., final_activation=...)``) is included."""
    model = _sequential(model, "hidden_activations")
    outs = layer_outputs(model, x)
    layers = list(model)
    return [outs[i] for i in range(1, len(layers))
            if isinstance(layers[i - 1], Linear) and not isinstance(layers[i], Linear)]


@dataclass(frozen=True)
class LayerStats:
    """Statistics of one layer's activations over a batch (all units and examples pooled)."""

    mean: float
    std: float
    saturated: float  #: fraction of values within ``margin * (high - low)`` of a bound (nan if no bounds)


def activation_stats(h, bounds: tuple[float, float] | None = None,
                     margin: float = SATURATION_MARGIN) -> LayerStats:
    """Mean and standard deviation of the activations ``h`` (any shape, every entry pooled), and
    the fraction of entries that are saturated: closer than ``margin * (high - low)`` to the lower
    or upper bound of the activation's range ``bounds = (low, high)``.

    The default margin is ``SATURATION_MARGIN = (1 - sqrt(0.9)) / 2 = 0.02566``: for every
    activation of the form ``k tanh(c a) + m`` (tanh, the logistic sigmoid, their shifted versions)
    the derivative is ``c k (1 - ((h - m) / k)^2)``, so it is below a tenth of its maximum exactly
    when ``h`` is within that fraction of the range ``2k`` from a bound. Without ``bounds`` the
    fraction is nan.
    """
    h = np.asarray(h, dtype=np.float64)
    if h.size == 0:
        raise ValueError(f"activation_stats: the activations are empty (shape {h.shape})")
    saturated = float("nan")
    if bounds is not None:
        low, high = (float(b) for b in bounds)
        if not high > low:
            raise ValueError(f"activation_stats: bounds must be (low, high) with low < high, got {bounds!r}")
        if not 0.0 <= margin < 0.5:
            raise ValueError(f"activation_stats: margin must lie in [0, 0.5), got {margin!r}")
        width = margin * (high - low)
        saturated = float(np.mean((h < low + width) | (h > high - width)))
    return LayerStats(float(np.mean(h)), float(np.std(h)), saturated)


def backward_signal(model: Sequential, x, loss_fn: Callable[[Tensor], Tensor]) -> list[np.ndarray]:
    """The backward signal of every ``nn.Linear`` layer: ``dE/da_l`` for its output ``a_l`` (the
    pre-activation), with ``E = loss_fn(model(x))``, input side first, one array of ``a_l``'s shape
    per layer. (Backprop's delta: for the mean loss over a batch of N it includes the 1/N.)

    Runs one forward and one backward pass; the parameters' ``.grad`` are cleared first and hold
    this pass's gradients afterwards.
    """
    model = _sequential(model, "backward_signal")
    for p in model.parameters():
        p.grad = None
    h = x if isinstance(x, Tensor) else Tensor(x)
    pre = []
    for layer in model:
        h = layer(h)
        if isinstance(layer, Linear):
            pre.append(h.retain_grad())
    loss = loss_fn(h)
    if not isinstance(loss, Tensor) or loss.data.size != 1:
        raise ValueError("backward_signal: loss_fn must return a scalar Tensor, got "
                         + (f"shape {loss.shape}" if isinstance(loss, Tensor) else type(loss).__name__))
    loss.backward()
    return [np.zeros(a.shape) if a.grad is None else np.array(a.grad, dtype=np.float64) for a in pre]


def weight_grad_norms(model: Module) -> np.ndarray:
    """The Frobenius norm ``||dE/dW_l||`` of every ``nn.Linear`` weight's ``.grad``, input side
    first, as a float64 array (call after ``backward()``). Raises if a weight has no gradient."""
    norms = []
    for i, layer in enumerate(linear_layers(model)):
        g = layer.weight.grad
        if g is None:
            raise RuntimeError(f"weight_grad_norms: the weight of Linear layer {i} "
                               f"({layer.in_features} -> {layer.out_features}) has no .grad; "
                               "call backward() on a loss first")
        norms.append(float(np.sqrt(np.sum(np.square(g, dtype=np.float64)))))
    return np.array(norms)
