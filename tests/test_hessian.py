"""Property tests of nnlib.hessian: Hessians from differenced gradients against analytic Hessians of
known functions, against second differences of the function itself (an oracle that never sees
the gradient), and against the closed form of a linear model's Hessian; plus the bookkeeping
(vectorised calls, stacks of points, symmetrisation, parameters restored) and the errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnlib.functional as F
from nnlib import Tensor, nn
from nnlib.gradcheck import analytic_grad, relative_error
from nnlib.gradfree import parameters_to_vector, vector_to_parameters
from nnlib.hessian import gradient_function, hessian, hvp, inertia


def vectors(n: int, lo: float = -2.0, hi: float = 2.0):
    return hnp.arrays(np.float64, (n,), elements=st.floats(lo, hi, allow_nan=False, allow_subnormal=False))


def sizes():
    return st.integers(1, 6)


# ------------------------------------------------------------------ known functions, known Hessians
@given(n=sizes(), data=st.data())
def test_quadratic(n, data):
    """E = x^T A x / 2 + b^T x: g = A x + b is linear, so the difference is exact up to rounding."""
    M = data.draw(hnp.arrays(np.float64, (n, n), elements=st.floats(-3, 3, allow_subnormal=False)))
    A = M + M.T
    b = data.draw(vectors(n))
    x = data.draw(vectors(n))
    H = hessian(lambda z: A @ z + b, x)
    np.testing.assert_allclose(H, A, atol=1e-9 * max(1.0, np.abs(A).max()))
    assert np.array_equal(H, H.T)


def rosenbrock_grad(x: np.ndarray) -> np.ndarray:
    """Gradient of sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2."""
    g = np.zeros_like(x)
    d = x[1:] - x[:-1] ** 2
    g[:-1] += -400.0 * x[:-1] * d - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * d
    return g


def rosenbrock_hessian(x: np.ndarray) -> np.ndarray:
    n = x.size
    H = np.zeros((n, n))
    for i in range(n - 1):
        H[i, i] += 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        H[i + 1, i + 1] += 200.0
        H[i, i + 1] -= 400.0 * x[i]
        H[i + 1, i] -= 400.0 * x[i]
    return H


@given(n=st.integers(2, 6), data=st.data())
def test_rosenbrock(n, data):
    x = data.draw(vectors(n))
    want = rosenbrock_hessian(x)
    assert relative_error(hessian(rosenbrock_grad, x), want) < 1e-8


@given(n=sizes(), data=st.data())
def test_logsumexp(n, data):
    """E = log sum exp(x): g = softmax(x), H = diag(p) - p p^T (singular along the ones vector)."""
    x = data.draw(vectors(n, -4.0, 4.0))
    softmax = lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    p = softmax(x)
    H = hessian(softmax, x)
    np.testing.assert_allclose(H, np.diag(p) - np.outer(p, p), atol=1e-9)
    np.testing.assert_allclose(H @ np.ones(n), 0.0, atol=1e-9)


@given(n=sizes(), k=st.integers(1, 4), data=st.data())
def test_sum_of_tanh_ridges(n, k, data):
    """E = sum_j c_j tanh(a_j . x): H = sum_j c_j tanh''(a_j . x) a_j a_j^T, tanh'' = -2 tanh sech^2."""
    A = data.draw(hnp.arrays(np.float64, (k, n), elements=st.floats(-1.5, 1.5, allow_subnormal=False)))
    c = data.draw(vectors(k))
    x = data.draw(vectors(n))
    grad = lambda z: A.T @ (c * (1.0 - np.tanh(A @ z) ** 2))
    u = np.tanh(A @ x)
    want = (A.T * (c * -2.0 * u * (1.0 - u ** 2))) @ A
    np.testing.assert_allclose(hessian(grad, x), want, atol=1e-8)


# ------------------------------------------------------------------ backprop gradients
def second_differences(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """d2f/dx_i dx_j from values of f alone (no gradient): the four-point stencil, error O(h^2)."""
    n = x.size
    H = np.zeros((n, n))
    e = np.eye(n) * h
    for i in range(n):
        for j in range(n):
            H[i, j] = (f(x + e[i] + e[j]) - f(x + e[i] - e[j]) - f(x - e[i] + e[j]) + f(x - e[i] - e[j])) / (4 * h * h)
    return H


@given(d=st.integers(1, 3), hidden=st.integers(1, 3), data=st.data())
def test_backprop_hessian_of_a_tanh_network_matches_second_differences(d, hidden, data):
    """A tiny MLP's cost, its gradient by nnlib's backprop: the Hessian from differenced gradients
    agrees with the Hessian from differenced values of the cost."""
    seed = data.draw(st.integers(0, 10_000))
    model = nn.MLP([d, hidden, 1], "tanh", rng=seed)
    r = np.random.default_rng(seed)
    X, y = r.normal(size=(5, d)), r.normal(size=(5, 1))
    loss_fn = lambda: F.mse_loss(model(Tensor(X)), y)
    grad = gradient_function(model.parameters(), loss_fn)
    theta = parameters_to_vector(model.parameters())
    f = lambda vec: _value_at(model, vec, loss_fn)
    H = hessian(grad, theta)
    oracle = second_differences(f, theta)
    assert relative_error(H, oracle, floor=1.0) < 1e-6
    np.testing.assert_array_equal(parameters_to_vector(model.parameters()), theta)   # restored


def _value_at(model, vec, loss_fn) -> float:
    """The loss at the flat parameter vector vec, the model's parameters put back afterwards."""
    saved = parameters_to_vector(model.parameters())
    vector_to_parameters(vec, model.parameters())
    try:
        return float(loss_fn().data)
    finally:
        vector_to_parameters(saved, model.parameters())


@given(n=st.integers(1, 8), d=st.integers(1, 4), data=st.data())
def test_linear_model_has_the_closed_form_hessian(n, d, data):
    """mse_loss of nn.Linear(d, 1): E = mean((X w + b - y)^2), H = (2/N) [X 1]^T [X 1]."""
    X = data.draw(hnp.arrays(np.float64, (n, d), elements=st.floats(-2, 2, allow_subnormal=False)))
    y = data.draw(hnp.arrays(np.float64, (n, 1), elements=st.floats(-2, 2, allow_subnormal=False)))
    lin = nn.Linear(d, 1, rng=0)
    grad = gradient_function(lin.parameters(), lambda: F.mse_loss(lin(Tensor(X)), y))
    Z = np.hstack([X, np.ones((n, 1))])
    want = 2.0 / n * Z.T @ Z
    np.testing.assert_allclose(hessian(grad, parameters_to_vector(lin.parameters())), want, atol=1e-8)


# ------------------------------------------------------------------ hvp
@given(n=st.integers(2, 6), data=st.data())
def test_hvp_is_the_hessian_times_v(n, data):
    x, v = data.draw(vectors(n)), data.draw(vectors(n, -3.0, 3.0))
    want = rosenbrock_hessian(x) @ v
    assert relative_error(hvp(rosenbrock_grad, x, v), want, floor=np.abs(v).max() + 1e-300) < 1e-7


def test_hvp_scales_with_v_and_is_zero_for_zero():
    x = np.array([0.3, -0.7, 1.1])
    v = np.array([1.0, 2.0, -0.5])
    g = lambda z: np.array([np.sin(z[0]) * z[1], z[0] * z[2] ** 2, np.exp(z[1])])
    np.testing.assert_allclose(hvp(g, x, 1e3 * v), 1e3 * hvp(g, x, v), rtol=1e-7)
    calls = []
    assert np.array_equal(hvp(lambda z: calls.append(1) or z, x, np.zeros(3)), np.zeros(3)) and not calls


# ------------------------------------------------------------------ bookkeeping
@given(n=sizes(), m=st.integers(1, 3), data=st.data())
def test_vectorized_and_stacked_points(n, m, data):
    A = data.draw(hnp.arrays(np.float64, (n, n), elements=st.floats(-1, 1, allow_subnormal=False)))
    one = lambda z: np.tanh(A @ z) + z ** 3            # a field that is not a gradient, on purpose
    many = lambda Z: np.tanh(Z @ A.T) + Z ** 3          # the same, on a stack of points (K, n)
    xs = np.stack([data.draw(vectors(n)) for _ in range(m)])
    H1 = hessian(one, xs[0])
    np.testing.assert_allclose(hessian(many, xs[0], vectorized=True), H1, rtol=1e-9, atol=1e-9)   # rounding / eps
    stack = hessian(many, xs, vectorized=True)
    assert stack.shape == (m, n, n)
    for k in range(m):
        np.testing.assert_allclose(stack[k], hessian(one, xs[k]), rtol=1e-9, atol=1e-9)   # rounding / eps


def test_symmetrize_projects_a_non_symmetric_jacobian():
    """For g(x) = A x (not the gradient of anything when A is not symmetric) the raw result is the
    Jacobian A, the default its symmetric part (A + A^T) / 2."""
    A = np.array([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0], [4.0, 0.0, -2.0]])
    x = np.array([0.2, -0.4, 0.9])
    np.testing.assert_allclose(hessian(lambda z: A @ z, x, symmetrize=False), A, atol=1e-10)
    np.testing.assert_allclose(hessian(lambda z: A @ z, x), (A + A.T) / 2, atol=1e-10)


def test_gradient_function_is_backprop_and_leaves_the_model_alone():
    model = nn.MLP([2, 3, 1], "tanh", rng=1)
    X, y = np.random.default_rng(2).normal(size=(4, 2)), np.random.default_rng(3).normal(size=(4, 1))
    loss_fn = lambda: F.mse_loss(model(Tensor(X)), y)
    params = model.parameters()
    theta = parameters_to_vector(params)
    want = np.concatenate([g.ravel() for g in analytic_grad(lambda *ps: loss_fn(), params)])
    for p in params:
        p.grad = np.full(p.shape, 7.0)
    grad = gradient_function(model, loss_fn)
    elsewhere = theta + 0.1
    g_elsewhere = grad(elsewhere)
    np.testing.assert_allclose(grad(theta), want, rtol=1e-12, atol=1e-15)
    assert not np.allclose(g_elsewhere, want)
    np.testing.assert_array_equal(parameters_to_vector(params), theta)
    assert all(np.array_equal(p.grad, np.full(p.shape, 7.0)) for p in params)


@given(data=st.data())
def test_inertia_counts(data):
    lam = data.draw(hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(-5, 5, allow_subnormal=False)))
    tol = data.draw(st.floats(0, 2))
    neg, zero, pos = inertia(lam, tol)
    assert neg + zero + pos == lam.size
    assert neg == sum(v < -tol for v in lam) and pos == sum(v > tol for v in lam)


def test_inertia_of_known_matrices():
    H = np.array([[1.0, 2.0], [2.0, 1.0]])             # positive diagonal, eigenvalues 3 and -1
    assert inertia(np.linalg.eigvalsh(H), 1e-9) == (1, 0, 1)
    assert inertia(np.array([-1e-7, 2.0, 3.0]), 1e-6) == (0, 1, 2)
    assert inertia(np.array([-1e-6, 1e-6]), 1e-6) == (0, 2, 0)   # the tolerance is inclusive


# ------------------------------------------------------------------ errors name the operation and shapes
def test_errors():
    g = lambda z: z
    with pytest.raises(ValueError, match=r"hessian: x must be .*\(2, 2, 2\)"):
        hessian(g, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"hessian: eps must be a positive number, got -1"):
        hessian(g, np.zeros(3), eps=-1.0)
    with pytest.raises(ValueError, match=r"hessian: grad returned shape \(2,\) for points of shape \(3,\)"):
        hessian(lambda z: z[:2], np.zeros(3))
    with pytest.raises(ValueError, match=r"hessian: grad returned shape \(6,\) for points of shape \(6, 3\)"):
        hessian(lambda Z: Z.sum(axis=1), np.zeros(3), vectorized=True)
    with pytest.raises(ValueError, match=r"hvp: v has shape \(2,\) but x has shape \(3,\)"):
        hvp(g, np.zeros(3), np.ones(2))
    with pytest.raises(ValueError, match=r"hvp: x must be a 1-D vector \(P,\), got shape \(2, 3\)"):
        hvp(g, np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"hessian: x must hold numbers"):
        hessian(g, np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"inertia: pass the eigenvalues as a 1-D array"):
        inertia(np.eye(2), 1e-6)
    with pytest.raises(ValueError, match=r"inertia: tol must be a finite number >= 0, got -1"):
        inertia(np.ones(2), -1.0)
    lin = nn.Linear(2, 1, rng=0)
    grad = gradient_function(lin, lambda: F.mse_loss(lin(Tensor(np.ones((3, 2)))), np.zeros((3, 1))))
    with pytest.raises(ValueError, match=r"gradient_function: the point must have shape \(3,\) for parameters of shapes \[\(1, 2\), \(1,\)\], got \(4,\)"):
        grad(np.zeros(4))
    bad = gradient_function(lin, lambda: lin(Tensor(np.ones((3, 2)))))
    with pytest.raises(TypeError, match=r"gradient_function: loss_fn must return a scalar Tensor, got Tensor of shape \(3, 1\)"):
        bad(np.zeros(3))
