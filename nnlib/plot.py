"""nnlib.plot: the few plots that several chapters draw, so notebooks stay short.

Each function draws on a given matplotlib Axes (or a new figure) and returns the Axes.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np


def _axes(ax=None, figsize=(5.5, 3.8)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _decorate(ax, xlabel: str, ylabel: str, logy: bool, title: str | None):
    """Labels, optional log scale, title, a light grid and a legend: the finish of every line plot."""
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return ax


def loss_curves(curves: Mapping[str, Sequence[float]], ax=None, *, x: Sequence[float] | None = None,
                xlabel: str = "step", ylabel: str = "loss", logy: bool = True, title: str | None = None):
    """One line per named curve (e.g. {"sigmoid": losses_a, "tanh": losses_b})."""
    ax = _axes(ax)
    for label, ys in curves.items():
        ys = np.asarray(ys, dtype=float)
        xs = np.arange(len(ys)) if x is None else np.asarray(x)[: len(ys)]
        ax.plot(xs, ys, label=label, lw=1.6)
    return _decorate(ax, xlabel, ylabel, logy, title)


def decision_boundary(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray, ax=None, *,
                      resolution: int = 200, margin: float = 0.3, title: str | None = None):
    """Colour the plane by ``predict`` (points (M, 2) -> class labels (M,)) and scatter the data."""
    ax = _axes(ax, figsize=(4.2, 4.2))
    x0, x1 = X[:, 0].min() - margin, X[:, 0].max() + margin
    y0, y1 = X[:, 1].min() - margin, X[:, 1].max() + margin
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    zz = np.asarray(predict(grid)).reshape(gx.shape)
    n_classes = int(max(zz.max(), np.max(y)) + 1)
    cmap = plt.get_cmap("tab10")
    ax.contourf(gx, gy, zz, levels=np.arange(n_classes + 1) - 0.5,
                colors=[cmap(i) for i in range(n_classes)], alpha=0.25)
    ax.scatter(X[:, 0], X[:, 1], c=[cmap(int(c)) for c in y], s=10, edgecolors="k", linewidths=0.2)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def grad_norms(norms: Mapping[str, Sequence[float]], ax=None, *, xlabel: str = "layer (input side = 1)",
               ylabel: str = "gradient norm", logy: bool = True, title: str | None = None):
    """Per-layer gradient norms, one line per named setting (e.g. {"plain": [...], "residual": [...]})."""
    ax = _axes(ax)
    for label, ys in norms.items():
        ys = np.asarray(ys, dtype=float)
        ax.plot(np.arange(1, len(ys) + 1), ys, marker="o", ms=3, label=label)
    return _decorate(ax, xlabel, ylabel, logy, title)


def layer_grad_norms(model, kind: str = "weight") -> list[float]:
    """Frobenius norm of each Linear layer's weight (or bias) gradient, input side first."""
    from .nn import Linear
    out = []
    for m in model.modules():
        if isinstance(m, Linear):
            p = m.weight if kind == "weight" else m.bias
            out.append(float(np.linalg.norm(p.grad)) if p is not None and p.grad is not None else float("nan"))
    return out
