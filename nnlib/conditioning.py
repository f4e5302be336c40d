"""nnlib.conditioning: how the statistics of a layer's inputs shape gradient descent.

A linear unit y = w·x with the squared error E(w) = 1/(2N) sum_i (w·x_i - t_i)^2 has the gradient
dE/dw = (1/N) sum_i delta_i x_i (delta_i = w·x_i - t_i) and the Hessian E[x x^T], the inputs'
second moment, whatever w and the targets are. E[x x^T] = Sigma + mu mu^T: inputs whose mean mu is
far from zero add an eigenvalue of at least |mu|^2 to the covariance's spectrum, and gradient
descent's learning rate is capped by the largest eigenvalue (lr < 2 / lambda_max). This module
holds that second moment, the exact behaviour of gradient descent on a quadratic (mode by mode in
the Hessian's eigenbasis), and the sign test of an update (LeCun et al., 1998, "Efficient
BackProp", sections 4.3 and 5).
"""
from __future__ import annotations

import numpy as np

__all__ = ["second_moment", "descent_excess", "steps_to_fraction", "same_sign_rows"]


def _matrix(X, where: str, name: str = "X") -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{where}: {name} must be a 2-D array (N, n) with N >= 1 and n >= 1, "
                         f"got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{where}: {name} has NaN or inf entries")
    return X


def second_moment(X, bias: bool = False) -> np.ndarray:
    """E[x x^T] = (1/N) sum_i x_i x_i^T over the rows x_i of X (N, n), as a float64 (n, n) array.

    It is the Hessian of a linear unit's squared error E(w) = 1/(2N) sum_i (w·x_i - t_i)^2:
    dE/dw = (1/N) sum_i (w·x_i - t_i) x_i, and d2E/dw dw^T = E[x x^T], independent of w and t.
    It equals Sigma + mu mu^T, with mu the mean row and Sigma the covariance (divided by N).
    ``bias=True`` appends the constant input 1 of a bias (as nn.Linear has), giving the
    (n + 1, n + 1) Hessian with respect to (w, b); its last row and column are (mu, 1).
    """
    X = _matrix(X, "second_moment")
    if bias:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    H = X.T @ X / X.shape[0]
    return 0.5 * (H + H.T)          # exactly symmetric, whatever the BLAS kernel rounded


def _spectrum(H, e0, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of H and the squared coordinates of e0 in its eigenbasis (summed over units)."""
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 2 or H.shape[0] != H.shape[1] or H.shape[0] < 1:
        raise ValueError(f"{where}: H must be a square (n, n) matrix, got shape {H.shape}")
    e0 = np.asarray(e0, dtype=np.float64)
    if e0.ndim not in (1, 2) or e0.shape[0] != H.shape[0]:
        raise ValueError(f"{where}: e0 must have shape ({H.shape[0]},) or ({H.shape[0]}, m) to match "
                         f"H of shape {H.shape}, got {e0.shape}")
    if not (np.all(np.isfinite(H)) and np.all(np.isfinite(e0))):
        raise ValueError(f"{where}: H and e0 must be finite")
    scale = max(float(np.max(np.abs(H))), 1e-300)
    if not np.allclose(H, H.T, rtol=0.0, atol=1e-12 * scale):
        raise ValueError(f"{where}: H must be symmetric (a Hessian); it differs from its transpose "
                         f"by up to {float(np.max(np.abs(H - H.T))):.3g}")
    lam, Q = np.linalg.eigh(0.5 * (H + H.T))
    if lam[0] < -1e-10 * max(float(lam[-1]), 1e-300):
        raise ValueError(f"{where}: H must be positive semi-definite (the Hessian of a quadratic with "
                         f"a minimum); its smallest eigenvalue is {lam[0]:.3g}")
    lam = np.maximum(lam, 0.0)
    c2 = Q.T @ e0
    c2 = c2 ** 2 if c2.ndim == 1 else (c2 ** 2).sum(axis=1)
    return lam, c2


def _check_lr(lr: float, where: str) -> float:
    lr = float(lr)
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"{where}: lr must be a positive number, got {lr!r}")
    return lr


def descent_excess(H, e0, lr: float, steps: int) -> np.ndarray:
    """Excess loss E(w_t) - E(w*) of gradient descent on a quadratic, for t = 0, 1, ..., steps.

    E(w) = E(w*) + 1/2 (w - w*)^T H (w - w*) has the gradient H (w - w*), so the step
    w_{t+1} = w_t - lr H (w_t - w*) gives w_t - w* = (I - lr H)^t e0 with e0 = w_0 - w*. In H's
    eigenbasis (H = Q diag(lambda) Q^T, c = Q^T e0) every mode decays on its own:
    excess_t = 1/2 sum_k lambda_k c_k^2 (1 - lr lambda_k)^(2t). Descent converges when
    lr < 2 / lambda_max. ``e0`` is (n,) or (n, m) for m units sharing H (the columns of a linear
    layer's weight.T); their excess losses add. Returns a float64 array of length steps + 1.
    """
    where = "descent_excess"
    lam, c2 = _spectrum(H, e0, where)
    lr = _check_lr(lr, where)
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"{where}: steps must be an integer >= 0, got {steps!r}")
    t = np.arange(int(steps) + 1)
    with np.errstate(over="ignore"):
        decay = (1.0 - lr * lam)[None, :] ** (2 * t[:, None])
    return 0.5 * decay @ (lam * c2)


def steps_to_fraction(H, e0, lr: float, fraction: float, max_steps: int = 10**9) -> int | None:
    """The first step t at which gradient descent's excess loss is <= fraction x its value at t = 0.

    Same quadratic and step as ``descent_excess``. When every mode that carries part of the initial
    excess has 0 < lr lambda_k < 2, the excess decreases monotonically and t is found by bisection
    (exact, however large). Returns None when descent does not converge (a mode with
    lr lambda_k >= 2 carries more than 1e-12 of the initial excess) or when t would exceed
    ``max_steps``. Returns 0 when the initial excess is already zero.
    """
    where = "steps_to_fraction"
    lam, c2 = _spectrum(H, e0, where)
    lr = _check_lr(lr, where)
    fraction = float(fraction)
    if not (0.0 < fraction < 1.0):
        raise ValueError(f"{where}: fraction must lie strictly between 0 and 1, got {fraction!r}")
    if not isinstance(max_steps, (int, np.integer)) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"{where}: max_steps must be an integer >= 1, got {max_steps!r}")
    max_steps = int(max_steps)
    weight = lam * c2
    total = float(weight.sum())
    if total <= 0.0:
        return 0
    if np.any((lr * lam >= 2.0) & (weight > 1e-12 * total)):
        return None
    keep = weight > 0.0
    lam, weight = lam[keep], weight[keep]
    with np.errstate(divide="ignore"):
        log_ratio = 2.0 * np.log(np.abs(1.0 - lr * lam))    # -inf for a mode that lr * lambda = 1 kills

    def excess(t: int) -> float:
        with np.errstate(divide="ignore", under="ignore"):
            return float(np.sum(weight * np.exp(t * log_ratio))) if t > 0 else total

    target = fraction * total
    if excess(max_steps) > target:
        return None
    lo, hi = 0, 1                 # invariant: excess(lo) > target >= excess(hi)
    while excess(hi) > target:
        lo, hi = hi, min(2 * hi, max_steps)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if excess(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def same_sign_rows(G) -> np.ndarray:
    """For each row of G (over its last axis), True when no two entries have opposite signs.

    A row of per-example weight gradients delta * x with x >= 0 always passes: every entry has the
    sign of delta or is zero (a zero entry moves nothing and does not break the test). Returns a
    bool array of shape G.shape[:-1].
    """
    G = np.asarray(G)
    if G.ndim < 1 or G.shape[-1] < 1 or not (np.issubdtype(G.dtype, np.floating)
                                               or np.issubdtype(G.dtype, np.integer)):
        raise ValueError(f"same_sign_rows: G must be a numeric array with at least one entry per row, "
                         f"got shape {G.shape} and dtype {G.dtype}")
    if np.issubdtype(G.dtype, np.floating) and np.isnan(G).any():
        raise ValueError("same_sign_rows: G has NaN entries, whose sign is undefined")
    return ~((G > 0).any(axis=-1) & (G < 0).any(axis=-1))
