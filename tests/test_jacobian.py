"""Tests of nnlib.jacobian: whole Jacobians against central differences (float64, random shapes),
and the path expansion of (I + J_{n-1}) ... (I + J_0) against the product itself and against a
brute-force sum over every set of blocks."""
from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnlib import Tensor, nn
from nnlib.gradcheck import numerical_grad, relative_error
from nnlib.jacobian import jacobian, path_terms

SEEDS = st.integers(0, 2**16)


def central_jacobian(fn, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Column j is (fn(x + eps e_j) - fn(x - eps e_j)) / 2 eps: the independent oracle."""
    out_shape = fn(Tensor(x)).shape
    cols = np.zeros(out_shape + x.shape)
    for j in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[j] += eps
        xm[j] -= eps
        cols[(...,) + j] = (fn(Tensor(xp)).data - fn(Tensor(xm)).data) / (2 * eps)
    return cols


# ===================================================================== jacobian
@given(d_in=st.integers(1, 5), d_out=st.integers(1, 5), seed=SEEDS)
def test_jacobian_of_a_smooth_map_matches_central_differences(d_in, d_out, seed):
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(d_out, d_in)) / np.sqrt(d_in), rng.normal(size=d_out)
    fn = lambda t: ((t @ Tensor(W.T)) + Tensor(b)).tanh() * 2.0
    x = rng.normal(size=d_in)
    J = jacobian(fn, x)
    assert J.shape == (d_out, d_in)
    # floor 1e-2 as in conftest.gradient_check: where tanh saturates, the entries are tiny and a
    # central difference's rounding noise (about 1e-16 |f| / eps) dominates a purely relative error
    assert relative_error(J, central_jacobian(fn, x), floor=1e-2) < 1e-7


@given(dim=st.integers(1, 4), hidden=st.integers(1, 4), seed=SEEDS)
def test_jacobian_of_a_residual_block_is_identity_plus_the_branch(dim, hidden, seed):
    block = nn.ResidualBlock(dim, hidden, activation="tanh", rng=seed)
    x = np.random.default_rng(seed + 1).normal(size=dim)
    J_block, J_branch = jacobian(block, x), jacobian(block.f, x)
    assert relative_error(J_block, np.eye(dim) + J_branch) < 1e-12
    assert relative_error(J_block, central_jacobian(block, x), floor=1e-2) < 1e-7


@given(shape=st.sampled_from([(3,), (2, 3), (1, 4)]), seed=SEEDS)
def test_jacobian_shapes_follow_output_then_input(shape, seed):
    x = np.random.default_rng(seed).normal(size=shape)
    J = jacobian(lambda t: (t * t).sum(axis=-1), x)          # output shape: shape[:-1]
    assert J.shape == shape[:-1] + shape
    # each row is one vector-Jacobian product: compare with nnlib's own numerical_grad of row i
    for i in np.ndindex(shape[:-1]):
        up = np.zeros(shape[:-1])
        up[i] = 1.0
        (num,) = numerical_grad(lambda t: (t * t).sum(axis=-1), [Tensor(x)], upstream=up)
        assert relative_error(J[i], num, floor=1e-2) < 1e-7


def test_jacobian_of_a_scalar_function_and_of_a_constant():
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(jacobian(lambda t: (t ** 2).sum(), x), 2 * x, rtol=1e-12)
    assert np.array_equal(jacobian(lambda t: Tensor(np.ones(2)), x), np.zeros((2, 3)))


def test_jacobian_rejects_a_function_that_returns_no_tensor():
    with pytest.raises(TypeError, match="jacobian: fn must return a Tensor"):
        jacobian(lambda t: t.data * 2, np.ones(2))


# ===================================================================== path_terms
def product(js: np.ndarray) -> np.ndarray:
    out = np.eye(js.shape[1])
    for j in js:                       # block 0 first, later blocks multiply from the left
        out = (np.eye(js.shape[1]) + j) @ out
    return out


def brute_force_terms(js: np.ndarray) -> np.ndarray:
    n, d = js.shape[:2]
    terms = np.zeros((n + 1, d, d))
    for k in range(n + 1):
        for subset in combinations(range(n), k):
            p = np.eye(d)
            for l in subset:           # increasing l: each later block on the left
                p = js[l] @ p
            terms[k] += p
    return terms


@given(n=st.integers(1, 6), d=st.integers(1, 4), scale=st.sampled_from([0.3, 1.0, 3.0]), seed=SEEDS)
def test_path_terms_add_up_to_the_product_and_equal_the_sum_over_subsets(n, d, scale, seed):
    js = np.random.default_rng(seed).normal(size=(n, d, d)) * scale
    terms = path_terms(js)
    assert terms.shape == (n + 1, d, d)
    np.testing.assert_array_equal(terms[0], np.eye(d))
    assert relative_error(terms.sum(axis=0), product(js)) < 1e-12
    assert relative_error(terms, brute_force_terms(js)) < 1e-12


@given(n=st.integers(1, 7), seed=SEEDS)
def test_path_terms_of_scalars_are_elementary_symmetric_polynomials(n, seed):
    j = np.random.default_rng(seed).normal(size=n)
    coeffs = np.poly(-j)             # prod_l (t + j_l) = sum_k e_k t^(n-k): highest power first
    terms = path_terms(j.reshape(n, 1, 1))[:, 0, 0]
    np.testing.assert_allclose(terms, coeffs, rtol=1e-10, atol=1e-12)
    # with every j_l = 1 the k-th term counts the paths through k branches: C(n, k)
    ones = path_terms(np.ones((n, 1, 1)))[:, 0, 0]
    assert ones.tolist() == [comb(n, k) for k in range(n + 1)]


def test_path_terms_keep_the_order_of_non_commuting_blocks():
    a = np.array([[0.0, 1.0], [0.0, 0.0]])
    b = np.array([[0.0, 0.0], [1.0, 0.0]])
    terms = path_terms([a, b])              # block 0 = a, block 1 = b: the length-2 term is b @ a
    np.testing.assert_array_equal(terms[2], b @ a)
    assert not np.array_equal(terms[2], a @ b)


def test_path_terms_errors_name_the_shapes():
    with pytest.raises(ValueError, match="path_terms: needs at least one Jacobian"):
        path_terms([])
    with pytest.raises(ValueError, match=r"path_terms: .*\(2, 3\)"):
        path_terms([np.eye(2), np.ones((2, 3))])
    with pytest.raises(ValueError, match=r"same size"):
        path_terms([np.eye(2), np.eye(3)])
