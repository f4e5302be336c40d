"""nnlib.bptt against nn.RNN's autodiff (full and truncated) and against central differences."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlib import Tensor, nn
from nnlib.bptt import lag_terms, rnn_backward, rnn_forward, state_gradients


def _autodiff(T, N, I, H, seed, truncate, last_only=False):
    r = np.random.default_rng(seed)
    rnn = nn.RNN(I, H, rng=r)
    x, h0 = r.normal(size=(T, N, I)), r.normal(size=(N, H))
    C = r.normal(size=(T, N, H))
    if last_only:
        C[:-1] = 0.0
    xt, h0t = Tensor(x, requires_grad=True), Tensor(h0, requires_grad=True)
    out, _ = rnn(xt, h0t, truncate=truncate)
    (out * Tensor(C)).sum().backward()
    c = rnn.cell
    return (x, h0, c.weight_ih.data, c.weight_hh.data, c.bias_ih.data + c.bias_hh.data, C, out.data,
            {"W_ih": c.weight_ih.grad, "W_hh": c.weight_hh.grad, "b": c.bias_ih.grad, "x": xt.grad,
             "h0": np.zeros((N, H)) if h0t.grad is None else h0t.grad})


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 9), N=st.integers(1, 3), I=st.integers(1, 3), H=st.integers(1, 4),
       truncate=st.one_of(st.none(), st.integers(1, 10)), seed=st.integers(0, 10**6))
def test_backward_is_nn_rnn_autodiff_full_and_truncated(T, N, I, H, truncate, seed):
    x, h0, W_ih, W_hh, b, C, out, want = _autodiff(T, N, I, H, seed, truncate)
    hs = rnn_forward(x, W_ih, W_hh, b, h0)
    np.testing.assert_allclose(hs[1:], out, rtol=1e-12, atol=1e-12)
    got = rnn_backward(x, hs, W_ih, W_hh, C, truncate=truncate)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-12, err_msg=key)


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 9), N=st.integers(1, 3), H=st.integers(1, 4), seed=st.integers(0, 10**6))
def test_lag_terms_add_up_and_truncation_keeps_the_short_lags(T, N, H, seed):
    x, h0, W_ih, W_hh, b, C, _, want = _autodiff(T, N, 2, H, seed, None)
    hs = rnn_forward(x, W_ih, W_hh, b, h0)
    terms = lag_terms(hs, W_hh, C)
    assert terms.shape == (T, H, H)
    np.testing.assert_allclose(terms.sum(axis=0), want["W_hh"], rtol=1e-9, atol=1e-12)
    for k in range(1, T + 1):            # a loss on the last step: truncation k keeps lags 0 .. k-1
        *_, cut = _autodiff(T, N, 2, H, seed, k, last_only=True)
        x, h0, W_ih, W_hh, b, C_last, _, _ = _autodiff(T, N, 2, H, seed, None, last_only=True)
        hs = rnn_forward(x, W_ih, W_hh, b, h0)
        np.testing.assert_allclose(lag_terms(hs, W_hh, C_last)[:k].sum(axis=0), cut["W_hh"], rtol=1e-9, atol=1e-12)


def test_state_gradients_against_central_differences():
    r = np.random.default_rng(0)
    T, N, I, H = 6, 2, 3, 4
    W_ih, W_hh, b = r.normal(size=(H, I)), r.normal(size=(H, H)) * 0.7, r.normal(size=H)
    x, h0, c = r.normal(size=(T, N, I)), r.normal(size=(N, H)), r.normal(size=(N, H))
    hs = rnn_forward(x, W_ih, W_hh, b, h0)
    g = state_gradients(hs, W_hh, c)
    assert g.shape == (T + 1, N, H)
    np.testing.assert_array_equal(g[T], c)
    eps = 1e-6
    for t in (0, 2, 5):                  # perturb h_t and run the rest of the sequence forward
        num = np.zeros((N, H))
        for n in range(N):
            for j in range(H):
                vals = []
                for sgn in (1, -1):
                    h = hs[t].copy()
                    h[n, j] += sgn * eps
                    rest = rnn_forward(x[t:], W_ih, W_hh, b, h)
                    vals.append(np.sum(rest[-1] * c))
                num[n, j] = (vals[0] - vals[1]) / (2 * eps)
        np.testing.assert_allclose(g[t], num, rtol=1e-6, atol=1e-8)


def test_errors_name_the_function_and_the_shapes():
    W_ih, W_hh, b = np.zeros((4, 3)), np.zeros((4, 4)), np.zeros(4)
    with pytest.raises(ValueError, match=r"rnn_forward: x must have shape \(T, N, input\), got \(5, 3\)"):
        rnn_forward(np.zeros((5, 3)), W_ih, W_hh, b)
    with pytest.raises(ValueError, match=r"rnn_forward: W_ih must have shape \(hidden, input\) = \(4, 2\)"):
        rnn_forward(np.zeros((5, 1, 2)), W_ih, W_hh, b)
    with pytest.raises(ValueError, match=r"rnn_backward: truncate must be a positive number of steps or None, got 0"):
        rnn_backward(np.zeros((5, 1, 3)), np.zeros((6, 1, 4)), W_ih, W_hh, np.zeros((5, 1, 4)), truncate=0)
    with pytest.raises(ValueError, match=r"rnn_backward: .* hs must have shape \(6, 1, 4\) and grad_h \(5, 1, 4\)"):
        rnn_backward(np.zeros((5, 1, 3)), np.zeros((5, 1, 4)), W_ih, W_hh, np.zeros((5, 1, 4)))
    with pytest.raises(ValueError, match=r"lag_terms: hs must be"):
        lag_terms(np.zeros((5, 1, 4)), W_hh, np.zeros((5, 1, 4)))
