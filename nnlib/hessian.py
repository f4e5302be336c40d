"""nnlib.hessian: second derivatives from backprop's gradient, by central differences.

Backprop gives the gradient g(x) = ∇E(x) for the cost of a few forward passes. The Hessian
H(x) = ∇²E(x) is the Jacobian of g, so one column of it, or its product with any vector v, is
a directional derivative of g, which a central difference of two gradients approximates:

    H v ≈ (g(x + t v) - g(x - t v)) / (2 t),    error O(t² |v|³ |∇⁴E|) + O(ε |g| / t)

(the second term is rounding, ε ≈ 1.1e-16 in float64). The default probe length ``eps = 1e-5``
(t = eps / |v|) sits near the optimum ε^(1/3) of the two errors and gives about 9 correct
digits for smooth costs. The whole Hessian takes P such products along the unit vectors:
2P gradient evaluations, P² numbers. Pearlmutter (1994) gives the exact product H v for the
same price, by differentiating the backward pass itself; nnlib does not need it.

- :func:`hvp`: one Hessian-vector product.
- :func:`hessian`: the full, symmetrised Hessian at one point or at a stack of points; with
  ``vectorized=True`` the gradient function receives all 2P probe points at once.
- :func:`gradient_function`: backprop's gradient of a module's loss as a function of the flat
  parameter vector (the ``grad`` the two functions above take).
- :func:`inertia`: how many eigenvalues of a symmetric matrix are negative, zero (within a
  tolerance) and positive: the numbers that classify a critical point.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from .gradfree import _param_list, parameters_to_vector, vector_to_parameters
from .tensor import Tensor

Gradient = Callable[[np.ndarray], np.ndarray]


def _point(x: Any, where: str, batch_ok: bool = False) -> np.ndarray:
    arr = np.asarray(x.data if isinstance(x, Tensor) else x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{where}: x must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim == 1 or (batch_ok and arr.ndim == 2):
        if arr.shape[-1] == 0:
            raise ValueError(f"{where}: x has no entries (shape {arr.shape})")
        return arr
    wanted = "a 1-D vector (P,) or a stack of points (M, P)" if batch_ok else "a 1-D vector (P,)"
    raise ValueError(f"{where}: x must be {wanted}, got shape {arr.shape}; flatten the parameters "
                     "first (nnlib.gradfree.parameters_to_vector)")


def _eps(eps: float, where: str) -> float:
    eps = float(eps)
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"{where}: eps must be a positive number, got {eps!r}")
    return eps


def _call(grad: Gradient, pts: np.ndarray, where: str) -> np.ndarray:
    out = grad(pts)
    out = np.asarray(out.data if isinstance(out, Tensor) else out, dtype=np.float64)
    if out.shape != pts.shape:
        raise ValueError(f"{where}: grad returned shape {out.shape} for points of shape {pts.shape}; "
                         "a gradient has the shape of the point it is taken at")
    return out


def hvp(grad: Gradient, x: Any, v: Any, eps: float = 1e-5) -> np.ndarray:
    """The Hessian-vector product H(x) v, by a central difference of ``grad`` along v.

    ``grad(x) -> ∇E(x)`` takes and returns 1-D float arrays of length P. Returns
    ``(grad(x + t v) - grad(x - t v)) / (2 t)`` with ``t = eps / |v|``, so that the two probe
    points lie ``eps`` away from x whatever the length of v (H v is linear in v: the result
    scales with |v|). Its error is O(eps²) from the third and fourth derivatives of E plus
    rounding of order 1e-16 |g| / eps. ``v = 0`` gives zeros without calling ``grad``.
    """
    where = "hvp"
    x = _point(x, where)
    v = np.asarray(v.data if isinstance(v, Tensor) else v, dtype=np.float64)
    if v.shape != x.shape:
        raise ValueError(f"hvp: v has shape {v.shape} but x has shape {x.shape}; they must be equal")
    eps = _eps(eps, where)
    if not np.all(np.isfinite(v)):
        raise ValueError("hvp: v has a NaN or infinite entry")
    scale = float(np.max(np.abs(v)))
    if scale == 0.0:
        return np.zeros_like(x)
    u = v / scale                                  # H v = scale * H u; |u| >= 1 never under/overflows
    t = eps / float(np.linalg.norm(u))
    plus = _call(grad, x + t * u, where)
    minus = _call(grad, x - t * u, where)
    return scale * ((plus - minus) / (2.0 * t))


def hessian(grad: Gradient, x: Any, eps: float = 1e-5, vectorized: bool = False,
            symmetrize: bool = True) -> np.ndarray:
    """The Hessian of E at x, column by column from central differences of its gradient.

    Column j is ``(grad(x + eps e_j) - grad(x - eps e_j)) / (2 eps)``, which is ∂g/∂x_j, i.e.
    ∂²E/∂x_i∂x_j for every i; 2P evaluations of ``grad`` for P = len(x). A true Hessian is
    symmetric; the differences are not exactly (they carry O(eps²) and rounding errors), so by
    default the result is ``(H + H.T) / 2``, which is never farther from the true Hessian (in
    the Frobenius norm) than H is.

    ``x``: a point (P,), or a stack of points (M, P), which gives an (M, P, P) array.
    ``vectorized=False``: ``grad`` takes one point (P,) and returns its gradient (P,).
    ``vectorized=True``: ``grad`` takes a stack of points (K, P) and returns their gradients
    (K, P); it is then called once, on all 2P probes of every point of x together (K = 2P M
    for M points: batched backprop is far faster than 2P M separate calls).
    """
    where = "hessian"
    x = _point(x, where, batch_ok=True)
    eps = _eps(eps, where)
    n = x.shape[-1]
    steps = eps * np.eye(n)
    if x.ndim == 2 and not vectorized:
        return np.stack([hessian(grad, xi, eps, False, symmetrize) for xi in x]) \
            if len(x) else np.zeros((0, n, n))
    if vectorized:
        pts = x.reshape(-1, 1, n)                                          # (M, 1, P)
        probes = np.concatenate([pts + steps, pts - steps], axis=1)       # (M, 2P, P)
        g = _call(grad, probes.reshape(-1, n), where).reshape(probes.shape)
        plus, minus = g[:, :n], g[:, n:]
    else:
        plus = np.stack([_call(grad, x + s, where) for s in steps])[None]
        minus = np.stack([_call(grad, x - s, where) for s in steps])[None]
    H = np.swapaxes((plus - minus) / (2.0 * eps), 1, 2)                   # column j: d g / d x_j
    if symmetrize:
        H = 0.5 * (H + np.swapaxes(H, 1, 2))
    return H if x.ndim == 2 else H[0]


def gradient_function(params: Iterable[Any], loss_fn: Callable[[], Tensor]) -> Gradient:
    """Backprop's gradient of a model's loss as a function of its flat parameter vector.

    ``params`` is ``module.parameters()`` (or the module); ``loss_fn()`` takes no arguments and
    returns the scalar loss Tensor built from the current parameters. The returned ``grad(vec)``
    writes ``vec`` into the parameters (in ``parameters()`` order, flattened as
    ``nnlib.gradfree.parameters_to_vector``), runs one backward pass, puts the parameters back
    as they were, and returns the gradient as a 1-D float64 array (zeros for a parameter the
    loss does not use). The parameters' ``.grad`` are left as they were found.
    """
    plist = _param_list(params, "gradient_function")
    if not plist:
        raise ValueError("gradient_function: no parameters were given")
    size = sum(p.data.size for p in plist)

    def grad(vec: np.ndarray) -> np.ndarray:
        vec = np.asarray(vec, dtype=np.float64)
        if vec.shape != (size,):
            shapes = [tuple(p.data.shape) for p in plist]
            raise ValueError(f"gradient_function: the point must have shape ({size},) for parameters of "
                             f"shapes {shapes}, got {vec.shape}")
        saved = parameters_to_vector(plist)
        saved_grads = [p.grad for p in plist]
        try:
            vector_to_parameters(vec, plist)
            for p in plist:
                p.grad = None
            loss = loss_fn()
            if not isinstance(loss, Tensor) or loss.data.size != 1:
                raise TypeError("gradient_function: loss_fn must return a scalar Tensor, got "
                                f"{type(loss).__name__}" + (f" of shape {loss.shape}" if isinstance(loss, Tensor) else ""))
            loss.backward()
            return np.concatenate([np.zeros(p.data.size) if p.grad is None
                                   else np.asarray(p.grad, dtype=np.float64).ravel() for p in plist])
        finally:
            vector_to_parameters(saved, plist)
            for p, g in zip(plist, saved_grads):
                p.grad = g

    return grad


def inertia(eigenvalues: Any, tol: float) -> tuple[int, int, int]:
    """(negative, zero, positive): how many eigenvalues are < -tol, within [-tol, tol], > tol.

    Sylvester's inertia of a symmetric matrix, with a tolerance for the zeros that rounding
    and finite differences make of exact zeros. At a critical point, (0, 0, P) is a strict local
    minimum, (P, 0, 0) a strict local maximum, a negative *and* a positive count a saddle, and
    anything else (zeros, the rest of one sign) is undecided by second derivatives. The index
    of the critical point is the negative count (Dauphin et al. (2014) plot it divided by P).
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1:
        raise ValueError(f"inertia: pass the eigenvalues as a 1-D array (np.linalg.eigvalsh(H)), "
                         f"got shape {lam.shape}")
    tol = float(tol)
    if not (tol >= 0 and np.isfinite(tol)):
        raise ValueError(f"inertia: tol must be a finite number >= 0, got {tol!r}")
    if np.isnan(lam).any():
        raise ValueError("inertia: an eigenvalue is NaN")
    neg = int(np.sum(lam < -tol))
    pos = int(np.sum(lam > tol))
    return neg, lam.size - neg - pos, pos
