"""Tests of nnlib.monitor: activations against a forward pass written out in numpy, the backward
signal dE/da_l and the weight-gradient norms against central differences (float64), over random
small MLPs; and the errors for what the functions cannot measure."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnlib.functional as F
from nnlib import Tensor, nn
from nnlib.gradcheck import numerical_grad, relative_error
from nnlib.monitor import (activation_stats, backward_signal, hidden_activations, layer_outputs,
                           linear_layers, weight_grad_norms)

ACTS = {"tanh": np.tanh, "sigmoid": lambda a: 0.5 * (1 + np.tanh(0.5 * a)),
        "relu": lambda a: np.maximum(a, 0)}


@st.composite
def mlps(draw):
    """A random small MLP (1 to 3 hidden layers), its activation's name, a batch and labels."""
    sizes = draw(st.lists(st.integers(1, 4), min_size=3, max_size=5))
    act = draw(st.sampled_from(sorted(ACTS)))
    seed = draw(st.integers(0, 2**16))
    n = draw(st.integers(1, 4))
    rng = np.random.default_rng(seed)
    model = nn.MLP(sizes, act, rng=seed)
    return model, act, rng.normal(size=(n, sizes[0])), rng.integers(0, sizes[-1], size=n)


def numpy_forward(model, act, x):
    """Pre-activations and activations of the MLP, written out in numpy."""
    pre, hid, h = [], [], x
    lins = linear_layers(model)
    for i, lin in enumerate(lins):
        a = h @ lin.weight.data.T + lin.bias.data
        pre.append(a)
        h = ACTS[act](a) if i < len(lins) - 1 else a
        if i < len(lins) - 1:
            hid.append(h)
    return pre, hid, h


@given(case=mlps())
def test_outputs_and_hidden_activations_equal_a_numpy_forward(case):
    model, act, x, _ = case
    pre, hid, out = numpy_forward(model, act, x)
    outs = layer_outputs(model, x)
    assert len(outs) == len(model)
    np.testing.assert_allclose(outs[-1], out, rtol=1e-12, atol=1e-12)
    got = hidden_activations(model, x)
    assert len(got) == len(hid)
    for g, h in zip(got, hid):
        np.testing.assert_allclose(g, h, rtol=1e-12, atol=1e-12)
    assert all(p.grad is None for p in model.parameters())  # nothing recorded, nothing changed


def _loss_with_offset(model, x, y, layer: int, offset: Tensor) -> Tensor:
    """The mean cross-entropy with `offset` added to the output of Linear layer `layer`."""
    h, k = Tensor(x), 0
    for m in model:
        h = m(h)
        if isinstance(m, nn.Linear):
            if k == layer:
                h = h + offset
            k += 1
    return F.cross_entropy(h, y)


@given(case=mlps())
def test_backward_signal_is_the_gradient_with_respect_to_each_pre_activation(case):
    model, act, x, y = case
    deltas = backward_signal(model, x, lambda z: F.cross_entropy(z, y))
    lins = linear_layers(model)
    assert len(deltas) == len(lins)
    for layer, delta in enumerate(deltas):
        offset = Tensor(np.zeros((x.shape[0], lins[layer].out_features)), requires_grad=True)
        (num,) = numerical_grad(lambda o: _loss_with_offset(model, x, y, layer, o), [offset])
        assert delta.shape == num.shape
        assert relative_error(delta, num, floor=1e-2) < 1e-6


@given(case=mlps())
def test_weight_grad_norms_are_the_norms_of_the_central_difference_gradients(case):
    model, act, x, y = case

    def loss(*params):
        return F.cross_entropy(model(Tensor(x)), y)

    backward_signal(model, x, lambda z: F.cross_entropy(z, y))   # leaves this pass's .grad
    norms = weight_grad_norms(model)
    weights = [lin.weight for lin in linear_layers(model)]
    numeric = numerical_grad(loss, weights)
    want = np.array([np.linalg.norm(g) for g in numeric])
    assert norms.dtype == np.float64 and norms.shape == (len(weights),)
    np.testing.assert_allclose(norms, want, rtol=1e-5, atol=1e-9)


def test_weight_grad_norms_after_an_ordinary_backward_and_batch_mean_scaling():
    model = nn.MLP([3, 4, 2], "sigmoid", rng=0)
    x, y = np.random.default_rng(1).normal(size=(6, 3)), np.array([0, 1, 1, 0, 1, 0])
    F.cross_entropy(model(Tensor(x)), y, reduction="sum").backward()
    summed = weight_grad_norms(model)
    model.zero_grad()
    F.cross_entropy(model(Tensor(x)), y).backward()
    np.testing.assert_allclose(summed, 6 * weight_grad_norms(model), rtol=1e-12)


@given(st.integers(0, 2**16), st.floats(0.0, 0.49))
def test_activation_stats_against_the_definition(seed, margin):
    h = np.random.default_rng(seed).uniform(-1, 1, size=(7, 5))
    s = activation_stats(h, bounds=(-1, 1), margin=margin)
    assert s.mean == pytest.approx(h.mean(), abs=1e-15) and s.std == pytest.approx(h.std(), abs=1e-15)
    assert s.saturated == np.mean(np.abs(h) > 1 - 2 * margin)


def test_the_default_margin_marks_a_derivative_below_a_tenth_of_its_maximum():
    a = np.linspace(-8, 8, 20001)
    for k, c, m in [(1.0, 1.0, 0.0), (0.5, 0.5, 0.5), (0.5, 0.5, 0.0), (1.0, 1.0, 0.5)]:
        h = k * np.tanh(c * a) + m
        small = (1 - np.tanh(c * a) ** 2) < 0.1          # derivative / its maximum c k
        got = activation_stats(h, bounds=(m - k, m + k)).saturated
        assert abs(got - small.mean()) <= 2 / a.size      # equal up to the grid points at the edge


def test_errors_name_the_function_and_what_is_wrong():
    with pytest.raises(TypeError, match="layer_outputs: needs an nn.Sequential"):
        layer_outputs(nn.Linear(2, 3, rng=0), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="no nn.Linear layer"):
        hidden_activations(nn.Sequential(nn.Tanh()), np.zeros((1, 2)))
    with pytest.raises(RuntimeError, match="Linear layer 0 \\(2 -> 3\\) has no .grad"):
        weight_grad_norms(nn.MLP([2, 3, 1], "tanh", rng=0))
    with pytest.raises(ValueError, match="low < high"):
        activation_stats(np.zeros(3), bounds=(1, 0))
    with pytest.raises(ValueError, match="empty"):
        activation_stats(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="scalar Tensor"):
        backward_signal(nn.MLP([2, 3, 1], "tanh", rng=0), np.zeros((4, 2)), lambda z: z)
    assert np.isnan(activation_stats(np.zeros(3)).saturated)
