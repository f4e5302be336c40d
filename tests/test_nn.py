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


# ===================================================================== RNN: the fused sequence node
# nn.RNN runs the whole sequence as one node (op "rnn_tanh"). These tests hold it to the graph it
# replaces, nn.RNNCell unrolled step by step with detach (the reference below), and to central
# differences, in every configuration: T from 1, truncate None / 1 / 2 / T / > T, batch first or
# not, h0 absent, constant or requiring grad, x requiring grad.

def unrolled_reference(rnn: nn.RNN, x: Tensor, h0, truncate):
    """What nn.RNN computed before the fused node: the cell applied step by step, the hidden state
    detached every `truncate` steps counted back from the last."""
    steps = x.shape[1] if rnn.batch_first else x.shape[0]
    h, hs = (h0 if h0 is None or isinstance(h0, Tensor) else Tensor(h0)), []
    for t in range(steps):
        if truncate is not None and h is not None and (steps - t) % truncate == 0:
            h = h.detach()
        h = rnn.cell(x[:, t] if rnn.batch_first else x[t], h)
        hs.append(h)
    return nnlib.stack(hs, axis=1 if rnn.batch_first else 0), h


def truncation_of(steps: int, choice: str) -> int | None:
    return {"none": None, "1": 1, "2": 2, "T": steps, "T+2": steps + 2}[choice]


def rnn_loss(outputs: Tensor, h_last: Tensor, kind: str, rng: np.random.Generator) -> Tensor:
    """Losses that reach the node's backward with different kinds of incoming gradient: a private
    array it may overwrite ("weighted", "square_mean", "last_only"), a read-only broadcast ("sum"),
    and two consumers of the outputs ("both")."""
    w = rng.normal(size=outputs.shape)
    v = rng.normal(size=h_last.shape)
    if kind == "weighted":
        return (outputs * w).sum() + (h_last * v).sum()
    if kind == "square_mean":
        return (outputs * outputs).mean()
    if kind == "last_only":
        return (h_last * v).sum()
    if kind == "sum":
        return outputs.sum()
    return (outputs * w).sum() + outputs.sum() + (h_last * h_last).sum()


RNN_CASES = dict(steps=st.integers(1, 5), batch=st.integers(1, 3), n_in=st.integers(1, 3),
                 hidden=st.integers(1, 3), batch_first=st.booleans(),
                 trunc=st.sampled_from(["none", "1", "2", "T", "T+2"]),
                 h0_kind=st.sampled_from(["none", "grad", "const", "numpy", "row"]),
                 loss_kind=st.sampled_from(["weighted", "square_mean", "last_only", "sum", "both"]),
                 seed=st.integers(0, 2**16))


def _rnn_case(steps, batch, n_in, hidden, batch_first, h0_kind, seed):
    rnn = nn.RNN(n_in, hidden, batch_first=batch_first, rng=seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, steps, n_in) if batch_first else (steps, batch, n_in))
    h0 = rng.normal(size=(1, hidden) if h0_kind == "row" else (batch, hidden))
    return rnn, rng, x, h0


def _h0_for(h0_kind: str, h0: np.ndarray):
    if h0_kind == "none":
        return None
    if h0_kind == "numpy":
        return h0.copy()
    return Tensor(h0, requires_grad=h0_kind in ("grad", "row"))


@given(**RNN_CASES)
@settings(max_examples=60)
def test_fused_rnn_equals_the_unrolled_cells(steps, batch, n_in, hidden, batch_first, trunc, h0_kind,
                                            loss_kind, seed):
    """Outputs, h_T and the gradients of all four parameters, x and h0 agree with unrolling
    nn.RNNCell by hand (to rounding: the fused node adds the same terms in another order)."""
    rnn, rng, x_np, h0_np = _rnn_case(steps, batch, n_in, hidden, batch_first, h0_kind, seed)
    k = truncation_of(steps, trunc)
    results = []
    for run in (rnn, lambda x, h, truncate: unrolled_reference(rnn, x, h, truncate)):
        rnn.zero_grad()
        x = Tensor(x_np, requires_grad=True)
        h0 = _h0_for(h0_kind, h0_np)
        outputs, h_last = run(x, h0, truncate=k)
        rnn_loss(outputs, h_last, loss_kind, np.random.default_rng(seed + 1)).backward()
        h0_grad = h0.grad if isinstance(h0, Tensor) else None
        results.append([outputs.data, h_last.data, x.grad, h0_grad] + [p.grad for p in rnn.parameters()])
    fused, reference = results
    assert fused[0].shape == ((batch, steps, hidden) if batch_first else (steps, batch, hidden))
    names = ["outputs", "h_last", "x.grad", "h0.grad"] + [n for n, _ in rnn.named_parameters()]
    for name, a, b in zip(names, fused, reference):
        if b is None:                          # no gradient reached it (h0 detached, W_hh unused at T=1)
            assert a is None, name
            continue
        assert a is not None and a.shape == b.shape and a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)


def truncated_surrogate(rnn: nn.RNN, x0: np.ndarray, h0_0: np.ndarray | None, k: int | None):
    """A function whose true derivative is what truncated BPTT computes: the sequence cut where
    truncation detaches the state, each piece run from its start state held constant at the value
    the unperturbed inputs give (full BPTT within a piece). Central differences of it check the
    truncated gradient (central differences of the RNN itself give the full-BPTT gradient)."""
    bf = rnn.batch_first
    steps = x0.shape[1] if bf else x0.shape[0]
    h0_0 = None if h0_0 is None else h0_0.copy()   # the caller's array may be perturbed in place
    cuts = [t for t in range(steps) if k is not None and (steps - t) % k == 0]
    with nnlib.no_grad():
        states, _ = rnn(x0, None if h0_0 is None else Tensor(h0_0))
    states = states.data
    bounds = sorted(set([0] + [t for t in cuts if t > 0] + [steps]))

    def fn(x, *rest):
        h0 = rest[0] if h0_0 is not None else None
        pieces = []
        for s, e in zip(bounds[:-1], bounds[1:]):
            if s in cuts:                     # detached here: a constant start state
                start = None if s == 0 and h0 is None else Tensor(
                    h0_0 if s == 0 else (states[:, s - 1] if bf else states[s - 1]))
            else:
                start = h0                    # s == 0, not detached
            piece, _ = rnn(x[:, s:e] if bf else x[s:e], start)
            pieces.append(piece)
        return nnlib.concatenate(pieces, axis=1 if bf else 0)
    return fn


@given(**{k: v for k, v in RNN_CASES.items() if k != "loss_kind"})
@settings(max_examples=40)
def test_fused_rnn_gradients_match_central_differences(steps, batch, n_in, hidden, batch_first, trunc,
                                                      h0_kind, seed):
    """Backprop through rnn(x, h0, truncate=k) against central differences in float64, for every
    output (contracted with a random upstream gradient) and the last state: with respect to x, h0
    and all four parameters. For truncate=k the finite differences are taken of the surrogate
    above, whose derivative is by definition the truncated gradient."""
    from nnlib.gradcheck import numerical_grad, relative_error
    rnn, rng, x_np, h0_np = _rnn_case(steps, batch, n_in, hidden, batch_first, h0_kind, seed)
    k = truncation_of(steps, trunc)
    with_h0 = h0_kind in ("grad", "row")
    x = Tensor(x_np, requires_grad=True)
    h0 = Tensor(h0_np, requires_grad=True) if with_h0 else (None if h0_kind == "none" else Tensor(h0_np))
    upstream = rng.normal(size=(batch, steps, hidden) if batch_first else (steps, batch, hidden))
    outputs, h_last = rnn(x, h0, truncate=k)
    v = rng.normal(size=h_last.shape)
    ((outputs * upstream).sum() + (h_last * v).sum()).backward()
    inputs = [x] + ([h0] if with_h0 else []) + rnn.parameters()
    analytic = [t.grad if t.grad is not None else np.zeros(t.shape) for t in inputs]

    surrogate = truncated_surrogate(rnn, x_np, None if h0 is None else h0_np, k)
    if with_h0:
        fn = lambda xt, ht, *params: surrogate(xt, ht)                       # noqa: E731
    else:
        fn = lambda xt, *params: surrogate(xt, *(() if h0 is None else (h0,)))  # noqa: E731
    up = upstream.copy()
    last = (slice(None), -1) if batch_first else (-1,)
    up[last] += v                                                          # h_T is the last output
    numeric = numerical_grad(fn, inputs, upstream=up)
    names = ["x"] + (["h0"] if with_h0 else []) + [n for n, _ in rnn.named_parameters()]
    for name, a, n in zip(names, analytic, numeric):
        assert relative_error(a, n, floor=1e-2) <= 1e-6, (name, a, n)


@pytest.mark.parametrize("batch_first", [False, True])
def test_fused_rnn_keeps_float32(batch_first):
    f32 = np.float32
    rnn = nn.RNN(3, 4, batch_first=batch_first, rng=0, dtype=f32)
    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(2, 5, 3) if batch_first else (5, 2, 3)), dtype=f32, requires_grad=True)
    h0 = Tensor(rng.normal(size=(2, 4)), dtype=f32, requires_grad=True)
    for k in (None, 2):
        rnn.zero_grad()
        x.zero_grad(), h0.zero_grad()
        outputs, h_last = rnn(x, h0, truncate=k)
        assert outputs.dtype == h_last.dtype == f32
        ((outputs * outputs).mean() + h_last.sum()).backward()
        for t in [x, h0] + rnn.parameters():
            assert t.grad is not None and t.grad.dtype == f32
        reference = nn.RNN(3, 4, batch_first=batch_first, rng=0, dtype=f32)
        ref_out, _ = unrolled_reference(reference, Tensor(x.data), Tensor(h0.data), k)
        np.testing.assert_allclose(outputs.data, ref_out.data, rtol=1e-5, atol=1e-6)
    # numpy input and a numpy state take the parameters' dtype, as before
    outputs, h_last = rnn(x.data.astype(np.float64), h0=h0.data.astype(np.float64))
    assert outputs.dtype == h_last.dtype == f32


def test_fused_rnn_is_one_node_and_records_nothing_without_grad():
    rnn = nn.RNN(2, 3, rng=0)
    x = np.ones((4, 1, 2))
    outputs, h_last = rnn(x)
    assert outputs.op == "rnn_tanh" and len(outputs.parents) == 5     # x, W_ih, W_hh, b_ih, b_hh
    with nnlib.no_grad():
        outputs, h_last = rnn(x)
    assert not outputs.requires_grad and not h_last.requires_grad
    for p in rnn.parameters():
        p.requires_grad_(False)
    assert not rnn(x)[0].requires_grad                               # nothing needs a gradient


def test_fused_rnn_backward_leaves_outputs_alone_and_retain_graph_doubles():
    rnn = nn.RNN(2, 3, rng=0)
    x = Tensor(np.random.default_rng(0).normal(size=(4, 2, 2)), requires_grad=True)
    outputs, _ = rnn(x)
    before = outputs.data.copy()
    loss = (outputs * outputs).mean()                                  # the node may overwrite its g
    loss.backward(retain_graph=True)
    first = [p.grad.copy() for p in rnn.parameters()] + [x.grad.copy()]
    loss.backward()
    np.testing.assert_array_equal(outputs.data, before)
    for g1, g2 in zip(first, [p.grad for p in rnn.parameters()] + [x.grad]):
        np.testing.assert_allclose(g2, 2 * g1, rtol=1e-15)


def test_rnn_with_a_custom_cell_is_unrolled():
    class DoubledCell(nn.RNNCell):
        def forward(self, x, h=None):
            return super().forward(x, h) * 2.0
    rnn = nn.RNN(2, 3, rng=0)
    rnn.cell = DoubledCell(2, 3, rng=0)
    x = np.random.default_rng(1).normal(size=(3, 2, 2))
    outputs, h_last = rnn(x)
    reference, _ = unrolled_reference(rnn, Tensor(x), None, None)
    np.testing.assert_array_equal(outputs.data, reference.data)
    assert outputs.op == "stack"


def test_rnn_bad_state_or_empty_sequence_is_named():
    rnn = nn.RNN(2, 3, rng=0)
    with pytest.raises(ValueError, match=r"RNN: h0 of shape \(2, 4\) does not fit the hidden state of shape \(N, hidden\) = \(2, 3\)"):
        rnn(np.zeros((4, 2, 2)), h0=np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"RNN: h0 of shape \(3, 3\) does not fit .* = \(2, 3\)"):
        rnn(np.zeros((4, 2, 2)), h0=Tensor(np.zeros((3, 3))))
    with pytest.raises(ValueError, match=r"RNN: the input of shape \(0, 2, 2\) has no time steps"):
        rnn(np.zeros((0, 2, 2)))
    with pytest.raises(ValueError, match=r"RNN: expected input of shape \(N, T, input\) with input=2, got \(2, 4, 3\)"):
        nn.RNN(2, 3, batch_first=True, rng=0)(np.zeros((2, 4, 3)))


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
