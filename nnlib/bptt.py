"""nnlib.bptt: backpropagation through time for a tanh RNN, in plain numpy (chapter 11).

The RNN is ``nn.RNN``'s: ``h_t = tanh(x_t W_ih^T + h_{t-1} W_hh^T + b)`` for ``t = 1 .. T`` (with
``b = bias_ih + bias_hh``), one example per row. Arrays are time-major like ``nn.RNN``: ``x`` of
shape ``(T, N, input)``, hidden states ``hs`` of shape ``(T + 1, N, hidden)`` with ``hs[0] = h_0``.

``rnn_backward`` is what ``nn.RNN``'s autodiff computes, written out as one loop backwards in
time (and about five times cheaper per character for the small networks of chapter 11, which is
why its experiments train with it); ``truncate=k`` cuts the gradient exactly where
``nn.RNN.forward(..., truncate=k)`` detaches the state. ``lag_terms`` splits the recurrent
weights' gradient into its terms by time lag, and ``state_gradients`` gives dL/dh_t at every
step, for the gradient-against-lag measurements of Bengio, Simard and Frasconi (1994).
"""
from __future__ import annotations

import numpy as np

__all__ = ["rnn_forward", "rnn_backward", "lag_terms", "state_gradients"]


def _shapes(x: np.ndarray, W_ih: np.ndarray, W_hh: np.ndarray, where: str) -> tuple[int, int, int, int]:
    x, W_ih, W_hh = np.asarray(x), np.asarray(W_ih), np.asarray(W_hh)
    if x.ndim != 3:
        raise ValueError(f"{where}: x must have shape (T, N, input), got {x.shape}")
    T, N, I = x.shape
    if W_hh.ndim != 2 or W_hh.shape[0] != W_hh.shape[1]:
        raise ValueError(f"{where}: W_hh must be square (hidden, hidden), got {W_hh.shape}")
    H = W_hh.shape[0]
    if W_ih.shape != (H, I):
        raise ValueError(f"{where}: W_ih must have shape (hidden, input) = {(H, I)} for x of shape "
                         f"{x.shape} and W_hh of shape {W_hh.shape}, got {W_ih.shape}")
    return T, N, I, H


def _check_truncate(truncate: int | None, where: str) -> int | None:
    if truncate is None:
        return None
    if isinstance(truncate, bool) or not isinstance(truncate, (int, np.integer)) or truncate < 1:
        raise ValueError(f"{where}: truncate must be a positive number of steps or None, got {truncate!r}")
    return int(truncate)


def rnn_forward(x: np.ndarray, W_ih: np.ndarray, W_hh: np.ndarray, b: np.ndarray,
                h0: np.ndarray | None = None) -> np.ndarray:
    """All hidden states ``hs`` (T + 1, N, hidden): ``hs[0] = h0`` (zeros when None) and
    ``hs[t] = tanh(x[t-1] W_ih^T + hs[t-1] W_hh^T + b)``. Storing them is the O(T) memory that
    backpropagation through time needs."""
    T, N, _, H = _shapes(x, W_ih, W_hh, "rnn_forward")
    hs = np.empty((T + 1, N, H), dtype=np.result_type(x, W_hh, np.float64))
    hs[0] = 0.0 if h0 is None else h0
    a = np.asarray(x) @ np.asarray(W_ih).T + b          # the input part of every step at once
    for t in range(T):
        hs[t + 1] = np.tanh(a[t] + hs[t] @ W_hh.T)
    return hs


def rnn_backward(x: np.ndarray, hs: np.ndarray, W_ih: np.ndarray, W_hh: np.ndarray,
                 grad_h: np.ndarray, truncate: int | None = None) -> dict[str, np.ndarray]:
    """Gradients of L from ``grad_h[t-1] = ∂L/∂h_t`` (the loss's direct gradient at each step,
    shape (T, N, hidden)), by one pass backwards in time.

    At step t the total gradient is ``g_t = grad_h[t-1] + (g_{t+1} ⊙ (1 - h_{t+1}²)) W_hh``; then
    ``δ_t = g_t ⊙ (1 - h_t²)`` gives ``dW_hh += δ_tᵀ h_{t-1}``, ``dW_ih += δ_tᵀ x_t``, ``db += Σ_n δ_t``.
    ``truncate=k`` drops the part passed from step t to h_{t-1} wherever ``nn.RNN.forward(...,
    truncate=k)`` detaches h_{t-1}: when ``(T - t + 1) % k == 0``, that is at the start of each
    chunk of k steps counted back from the last one.

    Returns ``{"W_ih", "W_hh", "b", "x", "h0"}``: the parameters' gradients (sums over the N
    rows), ∂L/∂x (T, N, input) and ∂L/∂h_0 (N, hidden; zero when the cut falls on h_0).
    """
    T, N, I, H = _shapes(x, W_ih, W_hh, "rnn_backward")
    k = _check_truncate(truncate, "rnn_backward")
    hs, grad_h = np.asarray(hs), np.asarray(grad_h)
    if hs.shape != (T + 1, N, H) or grad_h.shape != (T, N, H):
        raise ValueError(f"rnn_backward: for x of shape {np.shape(x)} and hidden = {H}, hs must have shape "
                         f"{(T + 1, N, H)} and grad_h {(T, N, H)}; got {hs.shape} and {grad_h.shape}")
    deltas = 1.0 - hs[1:] ** 2                           # tanh'(a_t), then δ_t in place
    g = np.zeros((N, H), dtype=deltas.dtype)
    for t in range(T, 0, -1):
        d = deltas[t - 1]
        d *= g + grad_h[t - 1]
        if k is not None and (T - t + 1) % k == 0:
            g = np.zeros_like(g)                         # h_{t-1} was detached here
        else:
            g = d @ W_hh
    flat = deltas.reshape(T * N, H)
    return {"W_ih": flat.T @ np.asarray(x).reshape(T * N, I), "W_hh": flat.T @ hs[:-1].reshape(T * N, H),
            "b": flat.sum(axis=0), "x": deltas @ W_ih, "h0": g}


def state_gradients(hs: np.ndarray, W_hh: np.ndarray, grad_last: np.ndarray) -> np.ndarray:
    """∂L/∂h_t for t = 0 .. T (shape (T + 1, N, hidden)) for a loss on the last state only,
    ``grad_last = ∂L/∂h_T``: ``∂L/∂h_{t-1} = (∂L/∂h_t ⊙ (1 - h_t²)) W_hh``. Row ``T - lag`` is the
    gradient that reaches the state ``lag`` steps before the loss."""
    hs = np.asarray(hs)
    if hs.ndim != 3 or np.shape(grad_last) != hs.shape[1:]:
        raise ValueError(f"state_gradients: hs must be (T + 1, N, hidden) and grad_last (N, hidden), got "
                         f"{hs.shape} and {np.shape(grad_last)}")
    T = hs.shape[0] - 1
    out = np.empty_like(hs, dtype=np.result_type(hs, grad_last, np.float64))
    out[T] = grad_last
    for t in range(T, 0, -1):
        out[t - 1] = (out[t] * (1.0 - hs[t] ** 2)) @ W_hh
    return out


def lag_terms(hs: np.ndarray, W_hh: np.ndarray, grad_h: np.ndarray) -> np.ndarray:
    """The recurrent weights' gradient split by time lag: ``terms[tau]`` (shape (T, hidden, hidden)).

    With ``δ_{t,s} = ∂ℓ_t/∂a_s`` the part of the loss at step t that reaches the pre-activation
    of step s (``a_s = x_s W_ih^T + h_{s-1} W_hh^T + b``), ``terms[tau] = Σ_t δ_{t,t-tau}ᵀ
    h_{t-tau-1}``, summed over the rows: what W_hh learns from losses ``tau`` steps after the
    step where it acts. ``terms.sum(axis=0)`` is the full gradient ``rnn_backward(...)["W_hh"]``,
    and, for a loss on the last step only, ``terms[:k].sum(axis=0)`` is the gradient truncated
    to k steps. All lags at once: ``δ_{t,t-tau-1} = (δ_{t,t-tau} W_hh) ⊙ (1 - h_{t-tau-1}²)`` for
    every t in one product per lag.
    """
    hs, grad_h = np.asarray(hs), np.asarray(grad_h)
    if hs.ndim != 3 or grad_h.shape != (hs.shape[0] - 1,) + hs.shape[1:]:
        raise ValueError(f"lag_terms: hs must be (T + 1, N, hidden) and grad_h (T, N, hidden), got "
                         f"{hs.shape} and {grad_h.shape}")
    T, H = grad_h.shape[0], grad_h.shape[2]
    terms = np.zeros((T, H, H), dtype=np.result_type(hs, grad_h, np.float64))
    delta = grad_h * (1.0 - hs[1:] ** 2)                 # delta[j] = δ_{t,t-tau} for t = tau + 1 + j
    for tau in range(T):
        terms[tau] = np.einsum("jnh,jnk->hk", delta, hs[: T - tau])
        if tau + 1 < T:
            delta = (delta[1:] @ W_hh) * (1.0 - hs[1: T - tau] ** 2)
    return terms
