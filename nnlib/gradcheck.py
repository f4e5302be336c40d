"""nnlib.gradcheck: compare backprop's gradients with central differences.

The central difference (f(x + h e_i) - f(x - h e_i)) / 2h has error O(h^2); in float64 with
h ~ 1e-6 agreement to about 1e-8 relative is typical, so a relative error above 1e-6 means a bug.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .tensor import Tensor, no_grad


def relative_error(a, b, floor: float = 1e-12) -> float:
    """max |a - b| / max(max|a|, max|b|, floor): one number for how far two arrays are apart."""
    a = np.asarray(a.data if isinstance(a, Tensor) else a, dtype=np.float64)
    b = np.asarray(b.data if isinstance(b, Tensor) else b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes {a.shape} and {b.shape} differ")
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), floor)
    return float(np.max(np.abs(a - b)) / scale)


def bound(value: float, tol: float) -> str:
    """A rounding-level number printed so that every machine prints the same text.

    ``"< 1e-12"`` when ``value < tol``; otherwise the value itself and the bound it broke
    (``"3.2e-09, above the bound 1e-12"``), so a regression shows up as a changed output.
    Two correct computations differ at rounding level by amounts that depend on the CPU and the
    BLAS kernel (4e-15 on one machine, 6e-15 on another): print those through ``bound`` with a
    ``tol`` far above what any machine gives (100x the measured value or more), never as digits.
    """
    value, tol = float(value), float(tol)
    if not tol > 0:
        raise ValueError(f"bound: tol must be positive, got {tol!r}")
    if value < tol:
        return f"< {tol:.0e}"
    return f"{value:.1e}, above the bound {tol:.0e}"


def agree(a, b, tol: float) -> str:
    """``bound(relative_error(a, b), tol)``: how closely two arrays agree, machine-independently."""
    return bound(relative_error(a, b), tol)


def _scalar_objective(fn: Callable[..., Tensor], inputs: Sequence[Tensor], upstream: np.ndarray | None):
    def objective() -> float:
        out = fn(*inputs)
        out_data = out.data if isinstance(out, Tensor) else np.asarray(out)
        if upstream is None:
            return float(np.sum(out_data))
        return float(np.sum(out_data * upstream))
    return objective


def numerical_grad(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
                   upstream: np.ndarray | None = None) -> list[np.ndarray]:
    """Central-difference gradient of sum(upstream * fn(*inputs)) with respect to each input.

    Costs 2 evaluations of fn per input element. ``upstream`` defaults to all ones.
    """
    objective = _scalar_objective(fn, inputs, upstream)
    grads = []
    with no_grad():
        for t in inputs:
            g = np.zeros(t.shape, dtype=np.float64)
            # index t.data itself (perturb in place, then restore): reshape(-1) would silently
            # perturb a copy when the data is not contiguous (e.g. a transposed array)
            for i in np.ndindex(t.shape):
                orig = t.data[i]
                t.data[i] = orig + eps
                f_plus = objective()
                t.data[i] = orig - eps
                f_minus = objective()
                t.data[i] = orig
                g[i] = (f_plus - f_minus) / (2 * eps)
            grads.append(g)
    return grads


def analytic_grad(fn: Callable[..., Tensor], inputs: Sequence[Tensor], upstream: np.ndarray | None = None) -> list[np.ndarray]:
    """Backprop's gradient of sum(upstream * fn(*inputs)) with respect to each input."""
    for t in inputs:
        t.grad = None
    out = fn(*inputs)
    if not out.requires_grad:
        raise RuntimeError("gradcheck: the function's output does not depend on any input with requires_grad=True")
    out.backward(np.ones_like(out.data) if upstream is None else upstream)
    return [np.zeros(t.shape) if t.grad is None else np.array(t.grad, dtype=np.float64) for t in inputs]


@dataclass
class GradcheckResult:
    """Outcome of ``gradcheck``: the worst relative error and where it occurred."""

    max_relative_error: float
    worst_input: int
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    errors: list[float]
    passed: bool

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"gradcheck {verdict}: max relative error {self.max_relative_error:.2e} "
                f"(input {self.worst_input}, index {self.worst_index}: backprop {self.analytic:.6g}, "
                f"central difference {self.numeric:.6g})")


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6, tol: float = 1e-6,
              seed: int = 0, raise_exception: bool = True) -> GradcheckResult:
    """Check backprop against central differences for every input that requires a gradient.

    Non-scalar outputs are contracted with a fixed random upstream gradient (from ``seed``), which
    checks the whole vector-Jacobian product. The relative error of each input is
    ``relative_error(analytic, numeric)``; the check fails if any exceeds ``tol`` (then raises
    AssertionError with the worst entry, unless raise_exception=False).
    """
    inputs = list(inputs)
    for t in inputs:
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: inputs must be Tensors, got {type(t).__name__}")
        if t.data.dtype != np.float64:
            raise TypeError(f"gradcheck: use float64 inputs (got {t.data.dtype}); float32 cannot resolve a central difference")
    probe = fn(*inputs)
    upstream = None if probe.data.size == 1 else np.random.default_rng(seed).normal(size=probe.shape)
    checked = [t for t in inputs if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    ana = analytic_grad(fn, inputs, upstream)
    num = numerical_grad(fn, inputs, eps, upstream)
    errors, worst = [], (-1.0, 0, (), 0.0, 0.0)
    for k, (t, a, n) in enumerate(zip(inputs, ana, num)):
        if not t.requires_grad:
            errors.append(0.0)
            continue
        err = relative_error(a, n)
        errors.append(err)
        if a.size and err > worst[0]:
            idx = np.unravel_index(int(np.argmax(np.abs(a - n))), a.shape)
            worst = (err, k, tuple(int(i) for i in idx), float(a[idx]), float(n[idx]))
    result = GradcheckResult(max(worst[0], 0.0), worst[1], worst[2], worst[3], worst[4], errors, worst[0] <= tol)
    if raise_exception and not result.passed:
        raise AssertionError(str(result))
    return result
