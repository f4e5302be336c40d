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
