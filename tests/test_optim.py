"""Known results for nnlib.optim: first (and second) steps worked out by hand on a tiny quadratic.

Throughout: p0 = [1, -2] and L(p) = sum(p^2), so the gradient is g = 2p (g0 = [2, -4]).
The update rules are PyTorch's (torch.optim.SGD and torch.optim.Adam).
"""
from __future__ import annotations

import numpy as np
import pytest

from nnlib import Tensor, nn, optim


def run(make_optimizer, steps: int) -> list[np.ndarray]:
    """p after each of `steps` steps of the optimizer on L = sum(p^2) from p0 = [1, -2]."""
    p = Tensor([1.0, -2.0], requires_grad=True)
    opt = make_optimizer([p])
    out = []
    for _ in range(steps):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
        out.append(p.data.copy())
    return out


def test_sgd_plain():
    # p1 = p0 - 0.1 * [2, -4] = [0.8, -1.6];  p2 = p1 - 0.1 * [1.6, -3.2] = [0.64, -1.28]
    p1, p2 = run(lambda ps: optim.SGD(ps, lr=0.1), 2)
    np.testing.assert_allclose(p1, [0.8, -1.6], rtol=1e-15)
    np.testing.assert_allclose(p2, [0.64, -1.28], rtol=1e-15)


def test_sgd_momentum():
    # step 1: b = g0 = [2, -4] (no dampening at the first step); p1 = [0.8, -1.6]
    # step 2: g1 = [1.6, -3.2]; b = 0.9 * [2, -4] + g1 = [3.4, -6.8]; p2 = p1 - 0.1 b = [0.46, -0.92]
    p1, p2 = run(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), 2)
    np.testing.assert_allclose(p1, [0.8, -1.6], rtol=1e-15)
    np.testing.assert_allclose(p2, [0.46, -0.92], rtol=1e-14)


def test_sgd_momentum_with_dampening():
    # step 1 as above (the first buffer is g0 itself); step 2: b = 0.9 * [2, -4] + 0.5 * [1.6, -3.2]
    # = [2.6, -5.2]; p2 = [0.8 - 0.26, -1.6 + 0.52] = [0.54, -1.08]
    p1, p2 = run(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.5), 2)
    np.testing.assert_allclose(p1, [0.8, -1.6], rtol=1e-15)
    np.testing.assert_allclose(p2, [0.54, -1.08], rtol=1e-14)


def test_sgd_nesterov():
    # step 1: b = g0 = [2, -4]; step direction g0 + 0.9 b = [3.8, -7.6]; p1 = [0.62, -1.24]
    # step 2: g1 = [1.24, -2.48]; b = 0.9 * [2, -4] + g1 = [3.04, -6.08];
    #         direction g1 + 0.9 b = [3.976, -7.952]; p2 = [0.62 - 0.3976, -1.24 + 0.7952] = [0.2224, -0.4448]
    p1, p2 = run(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), 2)
    np.testing.assert_allclose(p1, [0.62, -1.24], rtol=1e-14)
    np.testing.assert_allclose(p2, [0.2224, -0.4448], rtol=1e-13)


def test_sgd_weight_decay():
    # g = g0 + 0.1 * p0 = [2.1, -4.2]; p1 = [1 - 0.21, -2 + 0.42] = [0.79, -1.58]
    (p1,) = run(lambda ps: optim.SGD(ps, lr=0.1, weight_decay=0.1), 1)
    np.testing.assert_allclose(p1, [0.79, -1.58], rtol=1e-15)


def test_adam_first_two_steps():
    # lr = 0.1, betas = (0.9, 0.999), eps = 1e-8.
    # step 1: m = 0.1 g0 = [0.2, -0.4], v = 0.001 g0^2 = [0.004, 0.016]; m_hat = g0, v_hat = g0^2,
    #         so the step is lr * g0 / (|g0| + eps): p1 = [1 - 0.1 * 2 / (2 + 1e-8), -2 + 0.1 * 4 / (4 + 1e-8)]
    #         = [0.9000000005, -1.90000000025]  (Adam's first step has length lr in every coordinate)
    # step 2: g1 = 2 p1 ~ [1.8, -3.8]; m = 0.9 m + 0.1 g1 = [0.36, -0.74]; v = 0.999 v + 0.001 g1^2
    #         = [0.007236, 0.030424]; m_hat = m / 0.19, v_hat = v / 0.001999;
    #         p2 = p1 - 0.1 * m_hat / (sqrt(v_hat) + 1e-8) = [0.80041222869, -1.80016648612]
    p1, p2 = run(lambda ps: optim.Adam(ps, lr=0.1), 2)
    np.testing.assert_allclose(p1, [0.9000000005, -1.90000000025], rtol=1e-14)
    np.testing.assert_allclose(p2, [0.8004122286917928, -1.8001664861157012], rtol=1e-12)


def test_adam_weight_decay_is_l2_added_to_the_gradient():
    # as torch.optim.Adam (not AdamW): g = g0 + 0.5 p0 = [2.5, -5]; the first step is still lr * sign
    # (up to eps): p1 = [1 - 0.1 * 2.5 / (2.5 + 1e-8), -2 + 0.1 * 5 / (5 + 1e-8)]
    (p1,) = run(lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.5), 1)
    np.testing.assert_allclose(p1, [0.9000000004, -1.9000000002], rtol=1e-14)


def test_adam_is_invariant_to_the_scale_of_the_loss():
    """The reason chapter 06 gives for Adam's insensitivity to sum versus mean (up to eps)."""
    def make(scale):
        p = Tensor([1.0, -2.0], requires_grad=True)
        opt = optim.Adam([p], lr=0.1, eps=1e-12)
        for _ in range(3):
            opt.zero_grad()
            ((p * p).sum() * scale).backward()
            opt.step()
        return p.data
    np.testing.assert_allclose(make(1.0), make(1000.0), rtol=1e-9)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.Adam(ps)], ids=["SGD", "Adam"])
def test_optimizer_without_parameters_raises(make):
    with pytest.raises(ValueError, match="no parameters"):
        make([])
    with pytest.raises(ValueError, match="no parameters"):
        make(p for p in [])                                  # an exhausted generator is empty too
    with pytest.raises(TypeError, match="single Tensor"):
        make(Tensor([1.0], requires_grad=True))


def test_optimizer_rejects_bad_arguments():
    p = Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([p], lr=0.0)
    with pytest.raises(ValueError, match="requires_grad"):
        optim.SGD([Tensor([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.999))


def test_zero_grad_and_parameters_without_gradient():
    model = nn.Linear(3, 2, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(np.ones((1, 3))).sum().backward()
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model(np.ones((1, 3))).sum().backward()
    opt.zero_grad(set_to_none=False)
    for p in model.parameters():
        assert p.grad.shape == p.shape and not np.any(p.grad)
    before = [p.data.copy() for p in model.parameters()]
    opt.zero_grad()
    opt.step()                                              # no gradients: nothing moves
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)


def test_step_updates_parameters_in_place():
    """Modules and optimisers share the same arrays: a step is visible through the model."""
    model = nn.Linear(2, 1, rng=0)
    weight_array = model.weight.data
    opt = optim.Adam(model.parameters(), lr=0.1)
    model(np.ones((1, 2))).sum().backward()
    opt.step()
    assert model.weight.data is weight_array


# ---------------------------------------------------------------- clip_grad_norm_ (chapter 06)
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


def _params_with_grads(grads: list[np.ndarray]) -> list[Tensor]:
    params = []
    for g in grads:
        p = Tensor(np.zeros(g.shape), requires_grad=True)
        p.grad = g.copy()
        params.append(p)
    return params


grad_lists = st.lists(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=4),
                                 elements=st.floats(-10, 10, allow_subnormal=False)), min_size=1, max_size=3)


@given(grads=grad_lists, max_norm=st.floats(0.0, 20.0), norm_type=st.sampled_from([1.0, 2.0, 3.0, np.inf]))
def test_clip_grad_norm_is_torchs_formula(grads, max_norm, norm_type):
    """total = the norm of all gradients as one vector; each is scaled by min(1, max_norm / (total + 1e-6))."""
    flat = np.concatenate([g.ravel() for g in grads])
    total = np.max(np.abs(flat)) if norm_type == np.inf else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    params = _params_with_grads(grads)
    got = optim.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    np.testing.assert_allclose(got, total, rtol=1e-12, atol=1e-300)
    coef = min(1.0, max_norm / (total + 1e-6))
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad, g * coef, rtol=1e-12, atol=1e-300)
    clipped = np.concatenate([p.grad.ravel() for p in params])
    new_total = np.max(np.abs(clipped)) if norm_type == np.inf else np.sum(np.abs(clipped) ** norm_type) ** (1 / norm_type)
    assert new_total <= max(max_norm, total) * (1 + 1e-12)        # never longer, never past the threshold


@given(grads=grad_lists, c=st.floats(0.1, 100.0))
def test_clip_grad_norm_threshold_scales_with_the_loss(grads, c):
    """Clipping c * g at c * max_norm is c times clipping g at max_norm, up to the 1e-6 in the formula."""
    a, b = _params_with_grads(grads), _params_with_grads([c * g for g in grads])
    optim.clip_grad_norm_(a, 1.0)
    optim.clip_grad_norm_(b, c * 1.0)
    scale = max(1.0, max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads))
    for pa, pb in zip(a, b):
        np.testing.assert_allclose(pb.grad, c * pa.grad, rtol=1e-5, atol=1e-5 * c * scale)


def test_clip_grad_norm_edge_cases():
    p = Tensor([3.0, 4.0], requires_grad=True)
    assert optim.clip_grad_norm_(p, 1.0) == 0.0                    # a single Tensor, no gradient yet
    p.grad = np.array([3.0, 4.0])
    assert optim.clip_grad_norm_(p, 10.0) == 5.0
    np.testing.assert_array_equal(p.grad, [3.0, 4.0])              # below the threshold: untouched
    p.grad = np.array([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="cannot be clipped"):
        optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm must be a non-negative number"):
        optim.clip_grad_norm_([p], -1.0)
    with pytest.raises(ValueError, match="norm_type"):
        optim.clip_grad_norm_([p], 1.0, norm_type=0)
    with pytest.raises(TypeError, match="parameter 0 is a ndarray"):
        optim.clip_grad_norm_([np.ones(2)], 1.0)
    q = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    q.grad = np.full(2, 10.0, dtype=np.float32)
    optim.clip_grad_norm_([q], 1.0)
    assert q.grad.dtype == np.float32
