"""Property tests of nnlib.per_example: the vectorised per-example gradients against a loop of
autodiff passes and against central differences (float64), their mean against the batch
gradient, the norm shortcut and the noise scale against plain numpy on the (N, P) matrix, and the
two-batch estimator against exact expectations."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnlib.functional as F
from nnlib import Tensor, nn
from nnlib.gradcheck import numerical_grad, relative_error
from nnlib.per_example import (flatten, noise_scale, per_example_grads, per_example_grads_loop,
                               per_example_sq_norms, two_batch_noise_scale)

SIZES = st.integers(1, 5)
ACTIVATIONS = st.sampled_from(["tanh", "relu", "sigmoid", "identity"])


def problem(sizes, n, seed, loss_name):
    """A random MLP, inputs and targets for the cross-entropy (labels) or the squared error."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, sizes[0])) * 1.5
    if loss_name == "cross_entropy":
        return x, rng.integers(0, sizes[-1], size=n), F.cross_entropy
    return x, rng.normal(size=(n, sizes[-1])), F.mse_loss


@given(sizes=st.lists(SIZES, min_size=2, max_size=4), n=st.integers(1, 6), act=ACTIVATIONS,
       loss_name=st.sampled_from(["cross_entropy", "mse"]), seed=st.integers(0, 2**16))
def test_vectorised_equals_a_loop_of_backward_passes(sizes, n, act, loss_name, seed):
    model = nn.MLP(sizes, act, rng=seed)
    x, t, loss = problem(sizes, n, seed, loss_name)
    fast = per_example_grads(model, x, t, loss)
    slow = per_example_grads_loop(model, x, t, loss)
    assert [g.shape for g in fast] == [(n, *p.shape) for p in model.parameters()]
    for a, b in zip(fast, slow):
        assert relative_error(a, b) < 1e-12


@given(sizes=st.lists(SIZES, min_size=2, max_size=3), n=st.integers(1, 4), act=ACTIVATIONS,
       loss_name=st.sampled_from(["cross_entropy", "mse"]), seed=st.integers(0, 2**16))
@settings(max_examples=15)
def test_each_example_against_central_differences(sizes, n, act, loss_name, seed):
    model = nn.MLP(sizes, act, rng=seed)
    x, t, loss = problem(sizes, n, seed, loss_name)
    grads = per_example_grads(model, x, t, loss)
    params = model.parameters()
    for i in range(n):
        numeric = numerical_grad(lambda *ps: loss(model(Tensor(x[i:i + 1])), t[i:i + 1]), params)
        for g, num in zip(grads, numeric):
            # relative to max(|g|, 1e-2), as conftest.gradient_check: ReLU kinks and tiny entries
            assert relative_error(g[i], num, floor=1e-2) < 1e-6


@given(sizes=st.lists(SIZES, min_size=2, max_size=4), n=st.integers(1, 6), act=ACTIVATIONS,
       seed=st.integers(0, 2**16))
def test_mean_of_per_example_gradients_is_the_batch_gradient(sizes, n, act, seed):
    model = nn.MLP(sizes, act, rng=seed)
    x, t, loss = problem(sizes, n, seed, "cross_entropy")
    grads = per_example_grads(model, x, t, loss)
    assert all(p.grad is None for p in model.parameters()), "the parameters' .grad must stay untouched"
    loss(model(Tensor(x)), t).backward()
    for g, p in zip(grads, model.parameters()):
        assert relative_error(g.mean(axis=0), p.grad) < 1e-12


@given(sizes=st.lists(SIZES, min_size=2, max_size=4), n=st.integers(1, 6), act=ACTIVATIONS,
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_squared_norms_without_outer_products(sizes, n, act, bias, seed):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, bias=bias or i == 0, rng=rng))
        layers.append(nn.get_activation(act))
    model = nn.Sequential(*layers[:-1])
    x, t, loss = problem(sizes, n, seed, "mse")
    want = (flatten(per_example_grads_loop(model, x, t, loss)) ** 2).sum(axis=1)
    assert relative_error(per_example_sq_norms(model, x, t, loss), want) < 1e-12


@given(sizes=st.lists(SIZES, min_size=2, max_size=4), n=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_noise_scale_against_the_matrix_of_per_example_gradients(sizes, n, seed):
    model = nn.MLP(sizes, "tanh", rng=seed)
    x, t, loss = problem(sizes, n, seed, "cross_entropy")
    g = flatten(per_example_grads_loop(model, x, t, loss))
    G = g.mean(axis=0)
    trace = float(((g - G) ** 2).sum(axis=1).mean())      # population covariance: 1/N
    ns = noise_scale(model, x, t, loss)
    assert ns.n == n
    assert abs(ns.grad_sq_norm - float(G @ G)) <= 1e-12 * max(1.0, float(G @ G))
    assert abs(ns.trace_sigma - trace) <= 1e-10 * max(1.0, float((g * g).sum(axis=1).mean()))
    if n == 1:
        assert abs(ns.trace_sigma) <= 1e-12 * max(1.0, float(G @ G))   # one example: no spread
    elif float(G @ G) > 1e-8:
        assert ns.b_simple == pytest.approx(trace / float(G @ G), rel=1e-8, abs=1e-8)


def test_a_layer_applied_twice_and_positions_inside_an_example():
    rng = np.random.default_rng(3)
    shared = nn.Linear(4, 4, rng=1)
    model = nn.Sequential(shared, nn.Tanh(), shared, nn.Tanh(), nn.Linear(4, 3, rng=2))
    x, t = rng.normal(size=(5, 4)), rng.integers(0, 3, size=5)
    for a, b in zip(per_example_grads(model, x, t), per_example_grads_loop(model, x, t)):
        assert relative_error(a, b) < 1e-12
    assert relative_error(per_example_sq_norms(model, x, t),
                          (flatten(per_example_grads_loop(model, x, t)) ** 2).sum(axis=1)) < 1e-12
    # (N, T, features): the T positions of one example share the weights, their gradients add
    seq = nn.MLP([4, 6, 2], "tanh", rng=4)
    xs, ys = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 5, 2))
    for a, b in zip(per_example_grads(seq, xs, ys, F.mse_loss), per_example_grads_loop(seq, xs, ys, F.mse_loss)):
        assert relative_error(a, b) < 1e-12


def test_float32_model_and_a_single_linear():
    rng = np.random.default_rng(5)
    model = nn.MLP([3, 4, 2], "relu", rng=0, dtype=np.float32)
    x, t = rng.normal(size=(4, 3)), rng.integers(0, 2, size=4)
    grads = per_example_grads(model, x, t)
    assert all(g.dtype == np.float32 for g in grads)
    for a, b in zip(grads, per_example_grads_loop(model, x, t)):
        assert relative_error(a, b) < 1e-5
    layer = nn.Linear(3, 2, rng=1)
    gw, gb = per_example_grads(layer, x, rng.normal(size=(4, 2)), F.mse_loss)
    assert gw.shape == (4, 2, 3) and gb.shape == (4, 2)


def test_errors_name_the_function_and_the_shapes():
    model = nn.MLP([3, 4, 2], "tanh", rng=0)
    x, t = np.zeros((5, 3)), np.zeros(5, dtype=np.int64)
    with pytest.raises(TypeError, match=r"per_example_grads: layer 0 \(ResidualBlock\) has parameters"):
        per_example_grads(nn.Sequential(nn.ResidualBlock(3, rng=0), nn.Linear(3, 2, rng=0)), x, t)
    with pytest.raises(TypeError, match=r"per_example_grads: expects an nn.Sequential.*got RNN"):
        per_example_grads(nn.RNN(3, 2, rng=0), x, t)
    with pytest.raises(ValueError, match=r"per_example_grads: x of shape \(5, 4\) has 4 features.*expects 3"):
        per_example_grads(model, np.zeros((5, 4)), t)
    with pytest.raises(ValueError, match=r"per_example_grads: x has 5 examples but target has shape \(4,\)"):
        per_example_grads(model, x, t[:4])
    with pytest.raises(ValueError, match=r"per_example_grads: x must have an example axis.*\(3,\)"):
        per_example_grads(model, np.zeros(3), t[:1])
    with pytest.raises(ValueError, match=r"noise_scale: the loss must return one number.*\(5,\)"):
        noise_scale(model, x, t, lambda z, y: F.cross_entropy(z, y, reduction="none"))
    with pytest.raises(ValueError, match=r"flatten: .*array 1 has shape \(4, 2\)"):
        flatten([np.zeros((5, 2)), np.zeros((4, 2))])


@given(n=st.integers(2, 40), p=st.integers(1, 6), b_small=st.integers(1, 8), extra=st.integers(1, 64),
       seed=st.integers(0, 2**16))
def test_two_batch_estimates_are_unbiased(n, p, b_small, extra, seed):
    # the expectations of |G_B|^2 for draws with replacement are exact averages over all n^B
    # batches; E|G_B|^2 = |G|^2 + tr(Sigma)/B, computed here from the matrix, makes the estimator exact
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, p)) + rng.normal(size=p)
    G = g.mean(axis=0)
    trace = float(((g - G) ** 2).sum(axis=1).mean())
    b_big = b_small + extra
    est = two_batch_noise_scale(float(G @ G) + trace / b_small, float(G @ G) + trace / b_big, b_small, b_big)
    assert est.grad_sq_norm == pytest.approx(float(G @ G), rel=1e-9, abs=1e-9 * trace)
    assert est.trace_sigma == pytest.approx(trace, rel=1e-9, abs=1e-12)
    assert est.n == 1


def test_two_batch_estimate_from_sampled_batches_and_its_errors():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(500, 3)) * 2.0 + np.array([0.5, -0.2, 0.1])
    G = g.mean(axis=0)
    exact = float(((g - G) ** 2).sum(axis=1).mean()) / float(G @ G)
    draw = lambda b: float((g[rng.integers(0, 500, b)].mean(axis=0) ** 2).sum())
    sq_small = [draw(4) for _ in range(4000)]
    sq_big = [draw(64) for _ in range(1000)]
    est = two_batch_noise_scale(sq_small, sq_big, 4, 64)
    assert est.n == 1000
    assert est.b_simple == pytest.approx(exact, rel=0.15)   # a statistical check: 4000 pairs
    with pytest.raises(ValueError, match=r"two_batch_noise_scale: needs 0 < b_small < b_big.*b_small=8, b_big=8"):
        two_batch_noise_scale([1.0], [1.0], 8, 8)
    with pytest.raises(ValueError, match=r"two_batch_noise_scale: .*shapes \(0,\) and \(2, 2\)"):
        two_batch_noise_scale([], [[1.0, 2.0], [3.0, 4.0]], 4, 8)
