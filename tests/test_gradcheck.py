"""nnlib.gradcheck checks every other gradient, so it is checked here against known derivatives
and must catch a deliberately wrong backward."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnlib import Tensor
from nnlib.gradcheck import analytic_grad, gradcheck, numerical_grad, relative_error


def wrong_square(x: Tensor) -> Tensor:
    """x^2 with a backward that forgets the factor 2 (the mistake gradcheck exists to catch)."""
    return Tensor._make(x.data ** 2, (x,), lambda g: (g * x.data,), "wrong_square")


def wrong_in_one_place(x: Tensor) -> Tensor:
    """3x whose backward is wrong only for the last element."""
    def backward(g):
        d = np.full(x.shape, 3.0)
        d.reshape(-1)[-1] = 3.001
        return (g * d,)
    return Tensor._make(3.0 * x.data, (x,), backward, "wrong_in_one_place")


@given(values=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                         elements=st.floats(-2, 2, allow_subnormal=False)))
def test_numerical_grad_matches_a_known_derivative(values):
    """d/dx sum(x^3) = 3x^2, to the central difference's O(h^2) accuracy."""
    x = Tensor(values.copy(), requires_grad=True)
    (g,) = numerical_grad(lambda t: (t * t * t).sum(), [x])
    np.testing.assert_allclose(g, 3 * values ** 2, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(x.data, values)                 # the input is restored exactly


def test_numerical_grad_uses_the_upstream_gradient():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    up = np.array([1.0, -1.0, 0.5])
    (g,) = numerical_grad(lambda t: t * t, [x], upstream=up)
    np.testing.assert_allclose(g, 2 * x.data * up, rtol=1e-8)


def test_numerical_grad_of_a_non_contiguous_input():
    """A transposed array: perturbing a flattened copy would see a zero gradient."""
    base = np.arange(1.0, 7.0).reshape(3, 2)
    x = Tensor(base.T, requires_grad=True)
    assert not x.data.flags.c_contiguous
    (g,) = numerical_grad(lambda t: (t * t).sum(), [x])
    np.testing.assert_allclose(g, 2 * base.T, rtol=1e-8)
    assert gradcheck(lambda t: (t * t * Tensor(np.arange(6.0).reshape(2, 3))).sum(), [x]).passed


def test_gradcheck_passes_a_correct_backward_and_reports_it():
    x = Tensor(np.random.default_rng(0).normal(size=(3, 4)), requires_grad=True)
    w = Tensor(np.random.default_rng(1).normal(size=(4, 2)), requires_grad=True)
    result = gradcheck(lambda a, b: (a @ b).tanh(), [x, w])
    assert result.passed and result.max_relative_error < 1e-8 and len(result.errors) == 2
    assert "passed" in str(result)


@pytest.mark.parametrize("shape", [(), (1,), (3,), (2, 3)])
def test_gradcheck_catches_a_wrong_backward(shape):
    x = Tensor(np.random.default_rng(0).uniform(0.5, 2.0, size=shape), requires_grad=True)
    with pytest.raises(AssertionError, match="FAILED"):
        gradcheck(wrong_square, [x])
    result = gradcheck(wrong_square, [x], raise_exception=False)
    assert not result.passed and result.max_relative_error > 0.4
    assert "backprop" in str(result) and "central difference" in str(result)


def test_gradcheck_catches_an_error_in_a_single_element_and_locates_it():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    result = gradcheck(lambda t: wrong_in_one_place(t).sum(), [x], raise_exception=False)
    assert not result.passed and result.worst_input == 0 and result.worst_index == (1, 2)
    assert result.max_relative_error == pytest.approx(0.001 / 3.001, rel=1e-3)


def test_gradcheck_catches_a_missing_fan_out_contribution():
    """An engine that kept only the last contribution of a reused tensor would give 1, not 2x."""
    def overwrite(x: Tensor) -> Tensor:
        return Tensor._make(x.data * x.data, (x,), lambda g: (g * x.data,), "overwrite")
    x = Tensor([1.5, -0.5], requires_grad=True)
    assert not gradcheck(overwrite, [x], raise_exception=False).passed


def test_gradcheck_checks_only_inputs_that_require_grad():
    a = Tensor([1.0, 2.0], requires_grad=True)
    c = Tensor([3.0, 4.0])                               # a constant: skipped, error 0
    result = gradcheck(lambda x, y: x * y, [a, c])
    assert result.passed and result.errors[1] == 0.0
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda y: y * 2.0, [c])


def test_gradcheck_refuses_float32():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * t, [x])


def test_analytic_grad_clears_old_gradients():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.grad = np.array([100.0, 100.0])
    (g,) = analytic_grad(lambda t: (t * t).sum(), [x])
    np.testing.assert_array_equal(g, [2.0, 4.0])


def test_relative_error():
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) == pytest.approx(0.2 / 2.2)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0
    assert relative_error(Tensor([1.0]), np.array([1.5])) == pytest.approx(0.5 / 1.5)
    with pytest.raises(ValueError, match="shapes"):
        relative_error(np.zeros(2), np.zeros(3))


def test_bound_prints_the_same_text_for_any_rounding_level_value_and_can_fail() -> None:
    from nnlib.gradcheck import agree, bound

    assert bound(4e-15, 1e-12) == bound(6e-15, 1e-12) == bound(0.0, 1e-12) == "< 1e-12"
    assert bound(3.2e-9, 1e-12) == "3.2e-09, above the bound 1e-12"
    assert agree(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-14]), 1e-12) == "< 1e-12"
    assert agree(np.array([1.0]), np.array([1.1]), 1e-12).endswith("above the bound 1e-12")
    with pytest.raises(ValueError, match="tol must be positive"):
        bound(1.0, 0.0)
