"""Hidden tests of chapter 05: closed-form least squares, finite-difference Hessians, classifying
critical points, and the weight-space symmetries of a tanh MLP.

Reference answers are plain numpy written from the exercises' docstrings, independent of nnlib:
least squares by ``lstsq`` on the stacked system [X; sqrt(N rho) I] w = [y; 0] (another
algorithm than the normal equations the learner solves), Hessians by the docstring's own central
difference with the same step (so that a forward difference, a missing symmetrisation or a wrong
factor is told apart from rounding), the classification from ``eigvalsh`` and the docstring's
rules, the count from the formula prod_l H_l! 2^H_l.
"""
from __future__ import annotations

import math

import numpy as np

from course.hidden import Exercise

# --------------------------------------------------------------------------------------------
# ch05.least_squares: (X^T X / N + rho I) w = X^T y / N


def _ridge(X: np.ndarray, y: np.ndarray, rho: float) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    N, P = X.shape
    Xa = np.vstack([X, math.sqrt(N * rho) * np.eye(P)])
    ya = np.concatenate([y, np.zeros((P,) + y.shape[1:])])
    return np.linalg.lstsq(Xa, ya, rcond=None)[0]


def _solve(X, y, diag):
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    N, P = X.shape
    return np.linalg.solve(X.T @ X / N + diag * np.eye(P), X.T @ y / N)


def _unit_roundoff(*arrays) -> float:
    """The unit roundoff of the least precise floating-point input (float64 for integers)."""
    return max(np.finfo(a.dtype if a.dtype.kind == "f" else np.float64).eps / 2
               for a in map(np.asarray, arrays))


def _ls_error_bound(X, y, rho: float, w: np.ndarray) -> float:
    """A bound on ||w_computed - w||_2 for any backward-stable solve of the normal equations in
    the inputs' own precision u (float32 inputs may be solved in float32).

    Forming A = X^T X / N + rho I and b = X^T y / N perturbs them by at most n u |X|^T |X| / N and
    n u |X|^T |y| / N (|.| entrywise), and a solve by LU adds a backward error of about
    3 P u |A|; n = N + 3P covers both (the gamma_n of Higham, Accuracy and Stability of
    Numerical Algorithms, 3.5 and 9.4). A perturbation dA, db of A w = b moves w by at most
    ||A^{-1}|| (||dA|| ||w|| + ||db||), with ||A^{-1}|| = 1 / (sigma_min(X)^2 / N + rho): the
    cond(X)^2 of the normal equations. The reference (lstsq on the stacked system, in float64)
    is more accurate than that."""
    u = _unit_roundoff(X, y)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)
    N, P = X.shape
    s = np.linalg.svd(X, compute_uv=False)
    s_min = s[-1] if len(s) == P else 0.0
    inv_norm = 1.0 / (s_min ** 2 / N + rho)
    AX = np.linalg.norm(np.abs(X).T @ np.abs(X), 2) / N
    Ay = np.linalg.norm(np.abs(X).T @ np.abs(y)) / N
    bound = (N + 3 * P) * u * inv_norm * ((AX + rho) * np.linalg.norm(w) + Ay)
    if not np.isfinite(bound):
        raise ValueError("no unique solution (rho = 0 and rank(X) < P): not a valid case")
    return float(bound)


def _ls_tolerance(inp):
    """The exercise's rtol 1e-6 for answers computed at full precision, plus the error bound of
    this case's normal equations (it matters for float32 inputs and ill-conditioned X)."""
    w = _ridge(inp["X"], inp["y"], float(inp["rho"]))
    return 1e-6, max(1e-9, _ls_error_bound(inp["X"], inp["y"], float(inp["rho"]), w))


def _with_condition_number(rng: np.random.Generator, n: int, cond: float) -> np.ndarray:
    """A random n x n matrix with singular values spread geometrically from 3 to 3 / cond."""
    U, _, Vt = np.linalg.svd(rng.normal(size=(n, n)))
    return (U * np.geomspace(3.0, 3.0 / cond, n)) @ Vt


def _ls_inputs(rng: np.random.Generator) -> list[dict]:
    cases = [
        {"X": rng.normal(size=(40, 5)), "y": rng.normal(size=40), "rho": 0.0},         # tall, no decay
        {"X": rng.normal(size=(25, 4)), "y": rng.normal(size=25), "rho": 0.3},         # with decay
        {"X": rng.normal(size=(30, 4)), "y": rng.normal(size=(30, 3)), "rho": 0.2},    # three targets
        {"X": rng.normal(size=(20, 3)), "y": rng.normal(size=(20, 1)), "rho": 0.05},   # y as a column
        {"X": rng.normal(size=(3, 8)), "y": rng.normal(size=3), "rho": 0.7},           # N < P: only rho decides
        # square, without decay: a random square X has an unbounded condition number (above
        # 1e4 for about one seed in a thousand), so it is drawn with cond(X) = 100
        {"X": _with_condition_number(rng, 6, 100.0), "y": rng.normal(size=6), "rho": 0.0},
        {"X": np.array([[2.5]]), "y": np.array([-1.5]), "rho": 0.0},                   # one example, one weight
        {"X": rng.normal(size=(1, 4)), "y": rng.normal(size=1), "rho": 1.0},           # one example, ridge
        {"X": rng.normal(size=(50, 3)) * 1e3, "y": rng.normal(size=50) * 1e3, "rho": 1e4},   # large values
    ]
    X = rng.normal(size=(30, 4)).astype(np.float32)                                    # float32 inputs
    cases.append({"X": X, "y": rng.normal(size=30).astype(np.float32), "rho": 0.1})
    # a column of ones (a bias) and correlated features
    Z = rng.normal(size=(60, 3))
    Z[:, 2] = Z[:, 0] + 0.1 * Z[:, 2]
    cases.append({"X": np.hstack([Z, np.ones((60, 1))]), "y": rng.normal(size=60), "rho": 0.01})
    return cases


def _ls_call(ns, inp):
    import numpy as np
    out = ns["least_squares"](inp["X"].copy(), inp["y"].copy(), float(inp["rho"]))
    return {"w": np.asarray(out)}


def _ls_expected(inp):
    return {"w": _ridge(inp["X"], inp["y"], float(inp["rho"]))}


def _ls_mistake(diag_of):
    def mistake(inp):
        X, rho = np.asarray(inp["X"]), float(inp["rho"])
        if rho == 0.0:
            raise ValueError("indistinguishable without weight decay")
        return {"w": _solve(X, inp["y"], diag_of(rho, X.shape[0]))}
    return mistake


def _ls_no_decay(inp):
    if float(inp["rho"]) == 0.0:
        raise ValueError("indistinguishable without weight decay")
    return {"w": np.linalg.lstsq(np.asarray(inp["X"], dtype=np.float64), np.asarray(inp["y"], dtype=np.float64),
                                 rcond=None)[0]}


# --------------------------------------------------------------------------------------------
# ch05.fd_hessian: central differences of a gradient, symmetrised


def _fdh_inputs(rng: np.random.Generator) -> list[dict]:
    cases = [
        {"kind": "rosenbrock", "x": rng.uniform(-1.5, 1.5, size=4), "eps": 1e-5},
        {"kind": "rosenbrock", "x": rng.uniform(-1.5, 1.5, size=2), "eps": 1e-4},
        {"kind": "linear_field", "A": rng.normal(size=(4, 4)), "x": rng.normal(size=4), "eps": 1e-5},
        {"kind": "logsumexp", "x": rng.normal(size=5) * 2.0, "eps": 1e-4},
        {"kind": "tanh_ridges", "A": rng.normal(size=(3, 5)), "c": rng.normal(size=3), "x": rng.normal(size=5),
         "eps": 1e-4},
        {"kind": "cubic", "x": rng.normal(size=1), "eps": 1e-3},                        # one variable
        {"kind": "cubic", "x": rng.normal(size=3) * 5.0, "eps": 1e-3},                  # diagonal Hessian
        # far from the origin, where the Hessian oscillates: x must be used at full precision
        # (rounded to float32, x moves by about 3e-5 and the Hessian by more than the tolerance)
        {"kind": "waves", "x": 500.0 + rng.uniform(0, 10, size=3), "eps": 1e-4},
    ]
    M = rng.normal(size=(6, 6))
    cases.append({"kind": "quadratic", "A": (M + M.T) * 1e3, "b": rng.normal(size=6) * 1e3,
                  "x": rng.normal(size=6) * 1e3, "eps": 1e-2})                          # large values
    X = rng.uniform(-2, 2, size=20)
    cases.append({"kind": "network", "X": X, "y": np.sin(2 * X), "H": 2, "x": rng.normal(size=7), "eps": 1e-5})
    return cases


def _fdh_call(ns, inp):
    import numpy as np
    kind = inp["kind"]                    # the gradient of each kind of case, defined here only
    if kind == "rosenbrock":
        def grad(z):
            g = np.zeros_like(z)
            g[:-1] += -400.0 * z[:-1] * (z[1:] - z[:-1] ** 2) - 2.0 * (1.0 - z[:-1])
            g[1:] += 200.0 * (z[1:] - z[:-1] ** 2)
            return g
    elif kind == "linear_field":
        A = inp["A"]
        grad = lambda z: A @ z
    elif kind == "quadratic":
        A, b = inp["A"], inp["b"]
        grad = lambda z: A @ z + b
    elif kind == "logsumexp":
        def grad(z):
            e = np.exp(z - z.max())
            return e / e.sum()
    elif kind == "tanh_ridges":
        A, c = inp["A"], inp["c"]
        grad = lambda z: A.T @ (c * (1.0 - np.tanh(A @ z) ** 2))
    elif kind == "cubic":
        grad = lambda z: 3.0 * z ** 2 + np.cos(z)
    elif kind == "waves":
        grad = lambda z: np.cos(z) + 0.5 * np.sin(z[::-1])
    else:
        X, y, H = inp["X"], inp["y"], int(inp["H"])

        def grad(z):
            w, b, v, c = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H]
            h = np.tanh(np.outer(X, w) + b)
            r = h @ v + c - y
            d = (r[:, None] * v) * (1.0 - h ** 2) / len(X)
            return np.concatenate([d.T @ X, d.sum(axis=0), h.T @ r / len(X), [r.mean()]])
    x = np.array(inp["x"], dtype=np.float64)
    given = x.copy()
    H = ns["fd_hessian"](grad, given, float(inp["eps"]))
    return {"x_unchanged": bool(np.array_equal(given, x)), "H": np.asarray(H)}


def _central(grad, x, eps, forward: bool = False) -> np.ndarray:
    """The raw difference quotients: column j is d grad / d x_j (central, or forward)."""
    x = np.asarray(x, dtype=np.float64)
    P = x.size
    H = np.empty((P, P))
    g0 = grad(x)
    for j in range(P):
        e = np.zeros(P)
        e[j] = eps
        H[:, j] = (grad(x + e) - g0) / eps if forward else (grad(x + e) - grad(x - e)) / (2 * eps)
    return H


def _as_answer(impl):
    """What _fdh_call returns when `impl` plays the learner's fd_hessian: the gradient functions of
    the cases are defined once, in _fdh_call (which is shipped to the sandbox by its source alone),
    and the reference and the mistakes run it here, in the grader's process, on trusted code."""
    return lambda inp: _fdh_call({"fd_hessian": impl}, inp)


def _symmetrised(grad, x, eps):
    H = _central(grad, x, eps)
    return 0.5 * (H + H.T)


def _forward_symmetrised(grad, x, eps):
    H = _central(grad, x, eps, forward=True)
    return 0.5 * (H + H.T)


def _upper_mirrored(grad, x, eps):
    H = _central(grad, x, eps)
    return np.triu(H) + np.triu(H, 1).T


def _only_linear_field(fn):
    def mistake(inp):
        if inp["kind"] != "linear_field":
            raise ValueError("symmetric anyway: indistinguishable")
        return fn(inp)
    return mistake


_fdh_expected = _as_answer(_symmetrised)
_fdh_not_symmetrised = _only_linear_field(_as_answer(_central))
_fdh_forward = _as_answer(_forward_symmetrised)
_fdh_upper = _only_linear_field(_as_answer(_upper_mirrored))


# --------------------------------------------------------------------------------------------
# ch05.classify_critical_point


def _kind(lam: np.ndarray, tol: float) -> str:
    neg, pos = int(np.sum(lam < -tol)), int(np.sum(lam > tol))
    if neg and pos:
        return "saddle"
    if pos == lam.size:
        return "minimum"
    if neg == lam.size:
        return "maximum"
    return "degenerate"


def _rotated(rng: np.random.Generator, eigenvalues) -> np.ndarray:
    lam = np.asarray(eigenvalues, dtype=np.float64)
    Q, _ = np.linalg.qr(rng.normal(size=(lam.size, lam.size)))
    H = (Q * lam) @ Q.T
    return 0.5 * (H + H.T)


def _cls_inputs(rng: np.random.Generator) -> list[dict]:
    cases = [
        # positive diagonal, one negative eigenvalue (the diagonal is the wrong test)
        {"H": np.array([[1.0, 2.0], [2.0, 1.0]]), "tol": 1e-8},
        {"H": np.array([[2.0, 1.5, 1.5], [1.5, 2.0, 1.5], [1.5, 1.5, 0.5]]), "tol": 1e-8},
        {"H": _rotated(rng, [3.0, 1.0, 0.5, 2.0]), "tol": 1e-8},                          # minimum
        {"H": _rotated(rng, [-3.0, -1.0, -0.5]), "tol": 1e-8},                            # maximum
        {"H": _rotated(rng, [-2.0, 1.0, 4.0, -0.5, 3.0]), "tol": 1e-8},                   # saddle, index 2
        # two negative eigenvalues: det > 0 and trace > 0, as at a 2-D minimum
        {"H": _rotated(rng, [-1.0, -2.0, 6.0]), "tol": 1e-8},
        {"H": np.diag([-1.0, 0.0, 2.0]), "tol": 1e-8},                                    # saddle with a zero
        {"H": np.diag([1e-12, 2.0, 5.0]), "tol": 1e-8},                                   # degenerate (zero + positive)
        {"H": np.diag([-4.0, -1e-10]), "tol": 1e-8},                                      # degenerate (zero + negative)
        {"H": np.diag([0.5, 2.0]), "tol": 0.5},                                           # |lambda| = tol counts as zero
        {"H": np.diag([-0.25, -2.0]), "tol": 0.25},
        {"H": np.zeros((3, 3)), "tol": 1e-8},                                             # all zero
        {"H": np.array([[2.0]]), "tol": 1e-8},                                            # one variable
        {"H": np.array([[-3.0]]), "tol": 1e-8},
        {"H": _rotated(rng, [2e6, -3e5, 1e6]), "tol": 1.0},                               # large values
        {"H": _rotated(rng, [2e-3, 1e-3, 5.0]), "tol": 1e-2},                             # small ones are zero here
    ]
    return cases


def _cls_call(ns, inp):
    import numpy as np
    out = ns["classify_critical_point"](np.array(inp["H"], dtype=np.float64), float(inp["tol"]))
    return {"kind": str(out) if isinstance(out, (str, np.str_)) else out}


def _cls_expected(inp):
    return {"kind": _kind(np.linalg.eigvalsh(inp["H"]), float(inp["tol"]))}


def _cls_diagonal(inp):
    return {"kind": _kind(np.diag(inp["H"]), float(inp["tol"]))}


def _cls_strict(inp):
    lam, tol = np.linalg.eigvalsh(inp["H"]), float(inp["tol"])
    neg, pos = int(np.sum(lam <= -tol)), int(np.sum(lam >= tol))
    if neg and pos:
        return {"kind": "saddle"}
    return {"kind": "minimum" if pos == lam.size else "maximum" if neg == lam.size else "degenerate"}


def _cls_zero_spoils_saddle(inp):
    lam, tol = np.linalg.eigvalsh(inp["H"]), float(inp["tol"])
    if np.any(np.abs(lam) <= tol):
        return {"kind": "degenerate"}
    return {"kind": _kind(lam, tol)}


def _cls_no_tol(inp):
    lam = np.linalg.eigvalsh(inp["H"])
    return {"kind": _kind(lam, 0.0)}


def _cls_determinant(inp):
    H = inp["H"]
    det, tr = np.linalg.det(H), np.trace(H)
    if abs(det) <= float(inp["tol"]):
        return {"kind": "degenerate"}
    if det < 0:
        return {"kind": "saddle"}
    return {"kind": "minimum" if tr > 0 else "maximum"}


def _cls_min_only(inp):
    """Only the smallest eigenvalue looked at: negative means maximum."""
    lam, tol = np.linalg.eigvalsh(inp["H"]), float(inp["tol"])
    return {"kind": "minimum" if lam[0] > tol else "maximum" if lam[0] < -tol else "degenerate"}


# --------------------------------------------------------------------------------------------
# ch05.symmetric_copies: prod_l H_l! 2^H_l

_SIZES = [[3], [1], [], [2, 2], [4, 3], [5], [1, 1, 1], [10], [6, 2, 4], [2]]


def _sym_inputs(rng: np.random.Generator) -> list[dict]:
    order = rng.permutation(len(_SIZES))
    return [{"hidden_sizes": list(_SIZES[i])} for i in order]


def _sym_call(ns, inp):
    out = ns["symmetric_copies"](list(inp["hidden_sizes"]))
    try:
        return {"count": int(out)}
    except (TypeError, ValueError):
        return {"count": out}


def _sym_expected(inp):
    return {"count": math.prod(math.factorial(h) * 2 ** h for h in inp["hidden_sizes"])}


def _sym_only(fn):
    return lambda inp: {"count": math.prod(fn(h) for h in inp["hidden_sizes"])}


def _sym_pooled(inp):
    total = sum(inp["hidden_sizes"])
    return {"count": math.factorial(total) * 2 ** total}


def _sym_sum(inp):
    if len(inp["hidden_sizes"]) < 2:
        raise ValueError("a single layer: sum and product agree")
    return {"count": sum(math.factorial(h) * 2 ** h for h in inp["hidden_sizes"])}


EXERCISES = [
    Exercise(id="ch05.least_squares", points=2, needs=("least_squares",),
             inputs=_ls_inputs, call=_ls_call, expected=_ls_expected, rtol=1e-6, atol=1e-9, dtype="float64",
             tolerance=_ls_tolerance,
             mistakes={
                 "weight decay without the factor N: (X^T X + rho I) w = X^T y solves the problem for "
                 "the sum of squared errors, not the mean (divide X^T X and X^T y by N, or use N rho)":
                     _ls_mistake(lambda rho, N: rho / N),
                 "rho / 2 in the normal equations: the gradient of (rho/2) |w|^2 is rho w":
                     _ls_mistake(lambda rho, N: rho / 2),
                 "2 rho in the normal equations: the gradient of (rho/2) |w|^2 is rho w, not 2 rho w":
                     _ls_mistake(lambda rho, N: 2 * rho),
                 "a minus sign: the weight decay adds + rho I to X^T X / N":
                     _ls_mistake(lambda rho, N: -rho),
                 "the weight decay left out (plain least squares)": _ls_no_decay,
             }),
    Exercise(id="ch05.fd_hessian", points=2, needs=("fd_hessian",),
             inputs=_fdh_inputs, call=_fdh_call, expected=_fdh_expected, rtol=1e-6, atol=1e-8, dtype="float64",
             mistakes={
                 "the raw difference quotients, not symmetrised: return (H + H^T) / 2":
                     _fdh_not_symmetrised,
                 "a forward difference (grad(x + eps e_j) - grad(x)) / eps instead of the central "
                 "difference (error O(eps) instead of O(eps^2))": _fdh_forward,
                 "the upper triangle mirrored instead of the symmetric part (H + H^T) / 2": _fdh_upper,
             }),
    Exercise(id="ch05.classify_critical_point", points=2, needs=("classify_critical_point",),
             inputs=_cls_inputs, call=_cls_call, expected=_cls_expected,
             mistakes={
                 "the signs of the diagonal entries instead of the eigenvalues: a Hessian with a positive "
                 "diagonal can still have a negative eigenvalue (3.4)": _cls_diagonal,
                 "zero eigenvalues turning a saddle into 'degenerate': one negative and one positive "
                 "eigenvalue already make a saddle, whatever the others are": _cls_zero_spoils_saddle,
                 "a strict tolerance: an eigenvalue with |lambda| equal to tol counts as zero": _cls_strict,
                 "the tolerance ignored: eigenvalues within tol of zero count as zero": _cls_no_tol,
                 "the 2-D determinant test (det > 0 and trace > 0 means minimum), which does not hold in "
                 "more than two dimensions": _cls_determinant,
                 "only the smallest eigenvalue looked at: a negative smallest eigenvalue with positive "
                 "ones is a saddle, not a maximum": _cls_min_only,
             }),
    Exercise(id="ch05.symmetric_copies", points=1, needs=("symmetric_copies",),
             inputs=_sym_inputs, call=_sym_call, expected=_sym_expected, rtol=0.0, atol=0.0,
             mistakes={
                 "the permutations alone (H!): each unit's sign can be flipped too, 2^H more":
                     _sym_only(math.factorial),
                 "the sign flips alone (2^H): the units of a layer can also be permuted, H! more":
                     _sym_only(lambda h: 2 ** h),
                 "one sign flip for a whole layer (H! 2): every unit can be flipped on its own":
                     _sym_only(lambda h: math.factorial(h) * 2),
                 "all hidden units pooled, as if units could move between layers: permutations only "
                 "act within a layer": _sym_pooled,
                 "a sum over the layers: the choices in different layers are independent, so their "
                 "numbers multiply": _sym_sum,
             }),
]
