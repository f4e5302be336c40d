"""Property tests of nnlib.conditioning: the second moment against a Hessian by central
differences (and against Sigma + mu mu^T), gradient descent's closed-form excess loss against
running descent step by step, steps_to_fraction against a brute-force count, and the sign test
against its definition written as a loop."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnlib import Tensor
from nnlib.conditioning import descent_excess, same_sign_rows, second_moment, steps_to_fraction
from nnlib.gradcheck import numerical_grad

FLOATS = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def inputs(draw, max_n: int = 4):
    N = draw(st.integers(1, 7))
    n = draw(st.integers(1, max_n))
    X = draw(hnp.arrays(np.float64, (N, n), elements=FLOATS))
    shift = draw(st.floats(-2.0, 2.0))           # sometimes far from centred
    return X + shift


def squared_error(X: np.ndarray, t: np.ndarray, bias: bool):
    """E(w) = 1/(2N) sum_i (w·x_i (+ b) - t_i)^2 as a function of one Tensor holding (w[, b])."""
    A = np.hstack([X, np.ones((len(X), 1))]) if bias else X

    def E(w: Tensor) -> Tensor:
        r = Tensor(A) @ w - Tensor(t)
        return (r * r).sum() * (0.5 / len(A))
    return E, A.shape[1]


@given(X=inputs(), bias=st.booleans(), data=st.data())
def test_second_moment_is_the_hessian_of_the_squared_error(X, bias, data):
    """Central differences of the autodiff gradient, column by column, give the Hessian."""
    t = data.draw(hnp.arrays(np.float64, (len(X),), elements=FLOATS))
    E, p = squared_error(X, t, bias)
    w0 = data.draw(hnp.arrays(np.float64, (p,), elements=FLOATS))

    def grad(w_values: np.ndarray) -> np.ndarray:
        w = Tensor(w_values.copy(), requires_grad=True)
        E(w).backward()
        return w.grad

    h = 1e-5
    H_num = np.empty((p, p))
    for j in range(p):
        e = np.zeros(p)
        e[j] = h
        H_num[:, j] = (grad(w0 + e) - grad(w0 - e)) / (2 * h)
    H = second_moment(X, bias=bias)
    np.testing.assert_allclose(H, H_num, rtol=1e-7, atol=1e-8)
    assert H.dtype == np.float64 and H.shape == (p, p)
    np.testing.assert_array_equal(H, H.T)


@given(X=inputs())
def test_second_moment_is_covariance_plus_mean_outer_product(X):
    mu = X.mean(axis=0)
    Sigma = (X - mu).T @ (X - mu) / len(X)
    np.testing.assert_allclose(second_moment(X), Sigma + np.outer(mu, mu), rtol=1e-10, atol=1e-12)
    Hb = second_moment(X, bias=True)
    np.testing.assert_allclose(Hb[-1, :-1], mu, rtol=1e-12, atol=1e-14)
    assert Hb[-1, -1] == 1.0


@given(X=inputs())
def test_the_largest_eigenvalue_is_at_least_the_squared_mean(X):
    """Rayleigh quotient along mu: lambda_max >= |mu|^2 + mu^T Sigma mu / |mu|^2 >= |mu|^2."""
    mu = X.mean(axis=0)
    lam = np.linalg.eigvalsh(second_moment(X))
    assert lam[-1] >= mu @ mu * (1 - 1e-10) - 1e-12


def test_the_gradient_matches_a_central_difference_of_the_loss():
    """The docstring's gradient (1/N) sum_i delta_i x_i, against nnlib.gradcheck's central difference."""
    r = np.random.default_rng(0)
    X, t = r.uniform(0, 1, size=(6, 3)), r.normal(size=6)
    w = Tensor(r.normal(size=3), requires_grad=True)
    E, _ = squared_error(X, t, bias=False)
    (num,) = numerical_grad(E, [w])
    delta = X @ w.data - t
    np.testing.assert_allclose(num, (delta[:, None] * X).mean(axis=0), rtol=1e-7, atol=1e-9)


@st.composite
def quadratics(draw):
    X = draw(inputs())
    m = draw(st.integers(1, 3))
    e0 = draw(hnp.arrays(np.float64, (X.shape[1], m), elements=FLOATS))
    if draw(st.booleans()):
        e0 = e0[:, 0]
    return second_moment(X), e0


def run_descent(H: np.ndarray, e0: np.ndarray, lr: float, steps: int) -> np.ndarray:
    """Gradient descent on 1/2 e^T H e, step by step, and its loss at every step."""
    e = e0.copy()
    out = []
    for _ in range(steps + 1):
        out.append(0.5 * float(np.sum(e * (H @ e))))
        e = e - lr * (H @ e)
    return np.array(out)


@given(q=quadratics(), rel_lr=st.floats(0.05, 1.9), steps=st.integers(0, 30))
def test_descent_excess_matches_running_descent(q, rel_lr, steps):
    H, e0 = q
    lam_max = float(np.linalg.eigvalsh(H)[-1])
    lr = rel_lr / max(lam_max, 1e-3)
    got = descent_excess(H, e0, lr, steps)
    want = run_descent(H, e0, lr, steps)
    assert got.shape == (steps + 1,) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10 * max(want[0], 1e-300))


def test_descent_excess_grows_above_the_stability_limit():
    H = np.diag([4.0, 1.0])
    ex = descent_excess(H, np.array([1.0, 1.0]), lr=0.55, steps=20)    # lr * 4 = 2.2 > 2
    assert ex[-1] > ex[0]
    np.testing.assert_allclose(ex, run_descent(H, np.array([1.0, 1.0]), 0.55, 20), rtol=1e-10)


@given(q=quadratics(), rel_lr=st.floats(0.05, 1.9), fraction=st.floats(0.001, 0.9))
def test_steps_to_fraction_is_the_first_step_below_the_target(q, rel_lr, fraction):
    H, e0 = q
    lam_max = float(np.linalg.eigvalsh(H)[-1])
    lr = rel_lr / max(lam_max, 1e-3)
    t = steps_to_fraction(H, e0, lr, fraction, max_steps=3000)
    curve = run_descent(H, e0, lr, 3000)
    target = fraction * curve[0]
    below = np.nonzero(curve <= target)[0]
    if curve[0] <= 1e-300:
        assert t == 0
    elif t is None:
        # not reached within max_steps: every step misses the target (up to rounding at the edge)
        assert below.size == 0 or curve[below[0]] >= target * (1 - 1e-9)
    else:
        assert curve[t] <= target * (1 + 1e-9)
        assert t == 0 or curve[t - 1] >= target * (1 - 1e-9)


def test_steps_to_fraction_known_values_and_divergence():
    # one mode, lambda = 1, lr = 0.5: excess_t = 1/2 * 0.25^t, so 1e-3 is first reached at t = 5
    assert steps_to_fraction(np.array([[1.0]]), np.array([1.0]), 0.5, 1e-3) == 5
    # a huge count is found by bisection, not by iterating: (1 - 1e-6)^(2t) <= 0.5
    t = steps_to_fraction(np.array([[1.0]]), np.array([1.0]), 1e-6, 0.5)
    assert t == int(np.ceil(np.log(0.5) / (2 * np.log1p(-1e-6))))
    # lr * lambda_max >= 2 on a mode that carries error: descent does not converge
    assert steps_to_fraction(np.diag([4.0, 1.0]), np.array([1.0, 1.0]), 0.5, 0.1) is None
    # ... unless that mode carries none of the error
    assert steps_to_fraction(np.diag([4.0, 1.0]), np.array([0.0, 1.0]), 0.5, 0.1) is not None
    # lr * lambda = 1 kills a mode in one step
    assert steps_to_fraction(np.diag([2.0]), np.array([3.0]), 0.5, 1e-6) == 1
    assert steps_to_fraction(np.eye(2), np.zeros(2), 0.1, 0.5) == 0
    assert steps_to_fraction(np.eye(1), np.ones(1), 1e-3, 1e-3, max_steps=10) is None


@given(G=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                    elements=st.sampled_from([-2.0, -0.5, 0.0, 0.0, 1.0, 3.0])))
def test_same_sign_rows_matches_its_definition(G):
    got = same_sign_rows(G)
    assert got.shape == G.shape[:-1] and got.dtype == bool
    for idx in np.ndindex(G.shape[:-1]):
        row = G[idx]
        want = all(a * b >= 0 for a in row for b in row)
        assert bool(got[idx]) == want


@given(X=hnp.arrays(np.float64, (5, 4), elements=st.floats(0.0, 10.0)),
       delta=hnp.arrays(np.float64, (5,), elements=FLOATS))
def test_per_example_gradients_of_non_negative_inputs_always_share_a_sign(X, delta):
    assert same_sign_rows(delta[:, None] * X).all()


@pytest.mark.parametrize("call, message", [
    (lambda: second_moment(np.ones(3)), "second_moment: X must be a 2-D array"),
    (lambda: second_moment(np.ones((0, 3))), "got shape (0, 3)"),
    (lambda: second_moment(np.array([[1.0, np.nan]])), "NaN or inf"),
    (lambda: descent_excess(np.ones((2, 3)), np.ones(2), 0.1, 3), "square (n, n)"),
    (lambda: descent_excess(np.eye(2), np.ones(3), 0.1, 3), "e0 must have shape (2,)"),
    (lambda: descent_excess(np.array([[1.0, 2.0], [0.0, 1.0]]), np.ones(2), 0.1, 3), "symmetric"),
    (lambda: descent_excess(-np.eye(2), np.ones(2), 0.1, 3), "positive semi-definite"),
    (lambda: descent_excess(np.eye(2), np.ones(2), -0.1, 3), "lr must be a positive number"),
    (lambda: descent_excess(np.eye(2), np.ones(2), 0.1, 2.5), "steps must be an integer"),
    (lambda: steps_to_fraction(np.eye(2), np.ones(2), 0.1, 1.5), "fraction must lie strictly"),
    (lambda: same_sign_rows(np.zeros((3, 0))), "same_sign_rows: G must be a numeric array"),
    (lambda: same_sign_rows(np.array([[1.0, np.nan]])), "NaN"),
])
def test_errors_name_the_function_and_the_problem(call, message):
    with pytest.raises(ValueError, match=None) as info:
        call()
    assert message in str(info.value)
