"""Tests of nnlib.nn: every module's gradients (all parameters and the input) against central
differences, RNN truncation semantics, and the Module bookkeeping chapters rely on."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnlib
import nnlib.functional as F
from nnlib import Tensor, nn

SIZES = st.integers(1, 4)


def inputs(rng: np.random.Generator, *shape: int) -> Tensor:
    return Tensor(rng.normal(size=shape), requires_grad=True)


# ===================================================================== Linear, MLP, ResidualBlock
@given(n_in=SIZES, n_out=SIZES, lead=st.sampled_from([(), (3,), (2, 3)]), bias=st.booleans(),
       seed=st.integers(0, 2**16))
def test_linear_gradients(n_in, n_out, lead, bias, seed, check):
    layer = nn.Linear(n_in, n_out, bias=bias, rng=seed)
    x = np.random.default_rng(seed).normal(size=lead + (n_in,))
    check(lambda t, *params: layer(t), x, *layer.parameters())


def test_linear_layout_and_default_init_as_pytorch():
    layer = nn.Linear(16, 3, rng=0)
    assert layer.weight.shape == (3, 16) and layer.bias.shape == (3,)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    bound = 1 / math.sqrt(16)
    assert np.all(np.abs(layer.weight.data) <= bound) and np.all(np.abs(layer.bias.data) <= bound)
    x = np.random.default_rng(1).normal(size=(5, 16))
    np.testing.assert_allclose(layer(Tensor(x)).data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-12)
    assert nn.Linear(16, 3, bias=False, rng=0).parameters()[0].shape == (3, 16)
    assert len(nn.Linear(16, 3, bias=False, rng=0).parameters()) == 1
    np.testing.assert_array_equal(nn.Linear(16, 3, rng=7).weight.data, nn.Linear(16, 3, rng=7).weight.data)


@pytest.mark.parametrize("weight_init", ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
                                         "he", "glorot", "zeros"])
def test_linear_weight_init_names(weight_init):
    layer = nn.Linear(8, 4, rng=0, weight_init=weight_init)
    assert np.all(layer.bias.data == 0)
    assert np.all(layer.weight.data == 0) == (weight_init == "zeros")
    custom = nn.Linear(8, 4, rng=0, weight_init=lambda w, rng: nnlib.init.constant_(w, 0.5))
    assert np.all(custom.weight.data == 0.5)
    with pytest.raises(ValueError, match="weight_init"):
        nn.Linear(8, 4, weight_init="nonsense")


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@given(sizes=st.lists(SIZES, min_size=2, max_size=4), seed=st.integers(0, 2**16))
@settings(max_examples=10)
def test_mlp_gradients_of_all_parameters(activation, sizes, seed, check):
    model = nn.MLP(sizes, activation=activation, rng=seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, sizes[0]))
    labels = rng.integers(0, sizes[-1], size=3)
    check(lambda t, *params: F.cross_entropy(model(t), labels), x, *model.parameters())
    check(lambda *params: model(x), *model.parameters())          # the whole output, not just a loss


def test_mlp_structure():
    model = nn.MLP([4, 8, 6, 3], activation="tanh", rng=0)
    assert len(model) == 5
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert [name for name, _ in model.named_parameters()] == [
        "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert model.num_parameters() == 4 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3
    assert isinstance(nn.MLP([2, 3], final_activation="sigmoid", rng=0)[-1], nn.Sigmoid)
    same = nn.MLP([4, 8, 6, 3], activation="tanh", rng=0)
    for p, q in zip(model.parameters(), same.parameters()):
        np.testing.assert_array_equal(p.data, q.data)               # a seed fixes every weight


@given(dim=SIZES, hidden=SIZES, seed=st.integers(0, 2**16))
@settings(max_examples=15)
def test_residual_block_gradients(dim, hidden, seed, check):
    block = nn.ResidualBlock(dim, hidden, activation="tanh", rng=seed)
    x = np.random.default_rng(seed).normal(size=(3, dim))
    check(lambda t, *params: block(t), x, *block.parameters())
    np.testing.assert_allclose(block(Tensor(x)).data, x + block.f(Tensor(x)).data)


def test_residual_block_passes_the_gradient_straight_through():
    """With f's last layer zero, df/dx = 0 and dL/dx = dL/dy exactly (the identity path)."""
    block = nn.ResidualBlock(3, 5, rng=0)
    nnlib.init.zeros_(block.f[2].weight)
    x = Tensor(np.random.default_rng(0).normal(size=(2, 3)), requires_grad=True)
    upstream = np.arange(6.0).reshape(2, 3)
    block(x).backward(upstream)
    np.testing.assert_array_equal(x.grad, upstream)
    assert np.any(block.f[2].weight.grad != 0)                       # the weights still get theirs


# ===================================================================== RNNCell, RNN
@given(n_in=SIZES, hidden=SIZES, with_h=st.booleans(), seed=st.integers(0, 2**16))
@settings(max_examples=15)
def test_rnn_cell_gradients(n_in, hidden, with_h, seed, check):
    cell = nn.RNNCell(n_in, hidden, rng=seed)
    rng = np.random.default_rng(seed)
    x, h = rng.normal(size=(2, n_in)), rng.normal(size=(2, hidden))
    if with_h:
        check(lambda xt, ht, *params: cell(xt, ht), x, h, *cell.parameters())
    else:
        check(lambda xt, *params: cell(xt), x, *cell.parameters())
    recurrent = h @ cell.weight_hh.data.T if with_h else 0.0
    want = np.tanh(x @ cell.weight_ih.data.T + cell.bias_ih.data + recurrent + cell.bias_hh.data)
    np.testing.assert_allclose(cell(Tensor(x), Tensor(h) if with_h else None).data, want, rtol=1e-12)


@given(steps=st.integers(1, 4), n_in=st.integers(1, 3), hidden=st.integers(1, 3), batch_first=st.booleans(),
       seed=st.integers(0, 2**16))
@settings(max_examples=10)
def test_rnn_full_bptt_gradients_of_all_parameters(steps, n_in, hidden, batch_first, seed, check):
    rnn = nn.RNN(n_in, hidden, batch_first=batch_first, rng=seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, steps, n_in) if batch_first else (steps, 2, n_in))
    h0 = rng.normal(size=(2, hidden))

    def loss(xs, h_init, *params):
        outputs, h_last = rnn(xs, h_init)
        return (outputs * outputs).sum() + h_last.sum()
    check(loss, x, h0, *rnn.parameters())
    check(lambda *params: rnn(x)[0], *rnn.parameters())              # every output, constant input
    outputs, h_last = rnn(x)
    assert outputs.shape == ((2, steps, hidden) if batch_first else (steps, 2, hidden))
    np.testing.assert_array_equal(h_last.data, outputs.data[:, -1] if batch_first else outputs.data[-1])


@pytest.mark.parametrize("k", [1, 2, 3, 5, 6, 8])
def test_rnn_truncation_cuts_the_gradient_exactly_k_steps_back(k):
    """With truncate=k, d h_T / d x_t is exactly zero for t < T-k and nonzero for t >= T-k."""
    steps = 6
    rnn = nn.RNN(3, 4, rng=0)
    x = Tensor(np.random.default_rng(1).normal(size=(steps, 2, 3)), requires_grad=True)
    _, h_last = rnn(x, truncate=k)
    h_last.sum().backward()
    for t in range(steps):
        reached = np.any(x.grad[t] != 0)
        assert reached == (t >= steps - k), (t, x.grad[t])


@pytest.mark.parametrize("batch_first", [False, True])
def test_rnn_truncate_none_or_at_least_T_is_full_bptt(batch_first):
    steps = 5
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, steps, 3) if batch_first else (steps, 2, 3))
    grads = {}
    for k in (None, steps, steps + 3):
        rnn = nn.RNN(3, 4, batch_first=batch_first, rng=0)
        xt = Tensor(x, requires_grad=True)
        outputs, h_last = rnn(xt, truncate=k)
        ((outputs ** 2).sum() + h_last.sum()).backward()
        grads[k] = [p.grad for p in rnn.parameters()] + [xt.grad]
    for k in (steps, steps + 3):
        for g_full, g_k in zip(grads[None], grads[k]):
            np.testing.assert_array_equal(g_full, g_k)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_rnn_truncated_gradient_is_full_bptt_from_a_constant_state(k):
    """Truncation at k for the last state = full BPTT over the last k steps, starting from h_{T-k}
    held constant (computed by the same weights, but not differentiated)."""
    steps = 7
    x = np.random.default_rng(3).normal(size=(steps, 2, 3))
    rnn_a, rnn_b = nn.RNN(3, 4, rng=0), nn.RNN(3, 4, rng=0)
    rnn_a(x, truncate=k)[1].sum().backward()
    with nnlib.no_grad():
        _, h_const = rnn_b(x[:steps - k])
    rnn_b(x[steps - k:], h0=Tensor(h_const.data))[1].sum().backward()
    for p, q in zip(rnn_a.parameters(), rnn_b.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-12, atol=1e-15)


def test_rnn_accepts_a_numpy_initial_state():
    rnn = nn.RNN(2, 3, rng=0)
    x, h0 = np.ones((4, 1, 2)), np.full((1, 3), 0.5)
    for k in (None, 1, 2):                 # detaching an ndarray state used to raise AttributeError
        np.testing.assert_array_equal(rnn(x, h0=h0, truncate=k)[1].data, rnn(x, h0=Tensor(h0))[1].data)


def test_rnn_truncate_must_be_positive():
    with pytest.raises(ValueError, match="truncate"):
        nn.RNN(2, 3, rng=0)(np.zeros((4, 1, 2)), truncate=0)


# ===================================================================== Module bookkeeping
def test_zero_grad_state_dict_and_train_eval():
    model = nn.MLP([3, 4, 2], rng=0)
    F.cross_entropy(model(np.ones((2, 3))), np.array([0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    state = model.state_dict()
    other = nn.MLP([3, 4, 2], rng=1)
    other.load_state_dict(state)
    for p, q in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    state["0.weight"][...] = 99.0                              # state_dict returns copies
    assert not np.any(model[0].weight.data == 99.0)
    with pytest.raises(KeyError, match="missing"):
        other.load_state_dict({"0.weight": state["0.weight"]})
    assert model.eval() is model and not any(m.training for m in model.modules())
    assert all(m.training for m in model.train().modules())
    assert "Linear(in_features=3, out_features=4, bias=True)" in repr(model)


def test_shared_parameter_is_listed_once():
    layer = nn.Linear(3, 3, rng=0)
    model = nn.Sequential(layer, nn.Tanh(), layer)
    assert len(model.parameters()) == 2
