"""Property tests of nnlib.functional: values against plain numpy formulas, gradients against
central differences (the ``check`` fixture of conftest.py), over random small shapes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnlib.functional as F
from nnlib import Tensor

REDUCTIONS = ["mean", "sum", "none"]
NONSCALAR = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def arrays(shape, lo: float = -3.0, hi: float = 3.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False, allow_infinity=False,
                                                            allow_subnormal=False))


def np_log_softmax(z: np.ndarray, axis=-1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def reduce(per_example: np.ndarray, reduction: str):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](per_example)


@st.composite
def shape_and_axis(draw):
    shape = draw(NONSCALAR)
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


@st.composite
def probabilities(draw, shape):
    """Rows (last axis) that sum to one: a softmax of random logits, sometimes with exact zeros."""
    p = np.exp(np_log_softmax(draw(arrays(shape, -4.0, 4.0))))
    if draw(st.booleans()) and shape[-1] > 1:          # a one-hot row: zero probabilities are legal
        p[..., :] = 0.0
        p[..., 0] = 1.0
    return p


# ===================================================================== softmax family
@given(sa=shape_and_axis(), data=st.data())
def test_softmax(sa, data, check):
    shape, axis = sa
    z = data.draw(arrays(shape))
    out = F.softmax(Tensor(z), axis=axis).data
    np.testing.assert_allclose(out, np.exp(z) / np.exp(z).sum(axis=axis, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(out.sum(axis=axis), 1.0)
    check(lambda t: F.softmax(t, axis=axis), z)


@given(sa=shape_and_axis(), data=st.data())
def test_log_softmax(sa, data, check):
    shape, axis = sa
    z = data.draw(arrays(shape))
    np.testing.assert_allclose(F.log_softmax(Tensor(z), axis=axis).data, np_log_softmax(z, axis), atol=1e-12)
    check(lambda t: F.log_softmax(t, axis=axis), z)


@st.composite
def shape_and_axes(draw):
    shape = draw(NONSCALAR)
    nd = len(shape)
    axis = draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                          st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True).map(tuple)))
    return shape, axis, draw(st.booleans())


@given(sak=shape_and_axes(), data=st.data())
def test_logsumexp(sak, data, check):
    shape, axis, keepdims = sak
    z = data.draw(arrays(shape))
    out = F.logsumexp(Tensor(z), axis=axis, keepdims=keepdims)
    want = np.log(np.sum(np.exp(z), axis=axis, keepdims=keepdims))
    assert out.shape == want.shape
    np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-12)
    check(lambda t: F.logsumexp(t, axis=axis, keepdims=keepdims), z)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_is_stable_for_huge_logits(dtype):
    z = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4 + 1.0], [0.0, 0.0, 0.0]], dtype=dtype)
    shift = z - z.max(axis=1, keepdims=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        x = Tensor(z, requires_grad=True)
        lse = F.logsumexp(x, axis=1)
        (lse.sum() + F.log_softmax(x).sum() + F.softmax(x)[:, 0].sum()).backward()
    assert lse.dtype == dtype and np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(lse.data, z.max(axis=1) + np.log(np.exp(shift).sum(axis=1)), rtol=1e-6)
    np.testing.assert_allclose(F.softmax(Tensor(z)).data, np.exp(shift) / np.exp(shift).sum(1, keepdims=True),
                               rtol=1e-6)


# ===================================================================== cross-entropy
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(n=st.integers(1, 5), c=st.integers(1, 5), data=st.data())
def test_cross_entropy_class_indices(reduction, n, c, data, check):
    z = data.draw(arrays((n, c)))
    labels = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    want = reduce(-np_log_softmax(z)[np.arange(n), labels], reduction)
    np.testing.assert_allclose(F.cross_entropy(Tensor(z), labels, reduction=reduction).data, want, rtol=1e-12)
    check(lambda t: F.cross_entropy(t, labels, reduction=reduction), z)
    assert F.cross_entropy(Tensor(z), labels).shape == ()
    assert F.cross_entropy(Tensor(z), labels, reduction="none").shape == (n,)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(c=st.integers(1, 5), data=st.data())
def test_cross_entropy_single_example(reduction, c, data, check):
    """(C,) logits with one class index (an int or a 0-d array), as in PyTorch."""
    z = data.draw(arrays((c,)))
    label = data.draw(st.integers(0, c - 1))
    for target in (label, np.array(label)):
        loss = F.cross_entropy(Tensor(z), target, reduction=reduction)
        assert loss.shape == ()
        np.testing.assert_allclose(loss.data, -np_log_softmax(z)[label], rtol=1e-12)
    check(lambda t: F.cross_entropy(t, label, reduction=reduction), z)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=st.one_of(st.tuples(st.integers(1, 5)), st.tuples(st.integers(1, 4), st.integers(1, 5))),
       data=st.data())
def test_cross_entropy_probability_targets(reduction, shape, data, check):
    z = data.draw(arrays(shape))
    t = data.draw(probabilities(shape))
    want = reduce(-(t * np_log_softmax(z)).sum(axis=-1), reduction)
    np.testing.assert_allclose(F.cross_entropy(Tensor(z), t, reduction=reduction).data, want, rtol=1e-12, atol=1e-15)
    check(lambda logits: F.cross_entropy(logits, t, reduction=reduction), z)
    # v2: a target that requires grad receives d loss / d t = -log softmax(z) (times the reduction's factor)
    check(lambda logits, target: F.cross_entropy(logits, target, reduction=reduction), z, t)
    target = Tensor(t, requires_grad=True)
    F.cross_entropy(Tensor(z), target, reduction="sum").backward()
    np.testing.assert_allclose(target.grad, -np_log_softmax(z), rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(n=st.integers(1, 4), c=st.integers(1, 5), data=st.data())
def test_cross_entropy_targets_that_do_not_sum_to_one(reduction, n, c, data, check):
    """Rows of any non-negative mass (multi-label, class-weighted): accepted as in PyTorch; the
    gradient is o * sum(t) - t per row (not o - t), the label gradient still -log o."""
    z = data.draw(arrays((n, c)))
    t = data.draw(arrays((n, c), 0.0, 2.0))
    want = reduce(-(t * np_log_softmax(z)).sum(axis=-1), reduction)
    np.testing.assert_allclose(F.cross_entropy(Tensor(z), t, reduction=reduction).data, want, rtol=1e-12, atol=1e-15)
    check(lambda logits, target: F.cross_entropy(logits, target, reduction=reduction), z, t)
    logits = Tensor(z, requires_grad=True)
    F.cross_entropy(logits, t, reduction="sum").backward()
    o = np.exp(np_log_softmax(z))
    np.testing.assert_allclose(logits.grad, o * t.sum(axis=1, keepdims=True) - t, rtol=1e-10, atol=1e-14)


@given(n=st.integers(1, 4), c=st.integers(2, 5), data=st.data())
def test_cross_entropy_label_gradient_reaches_a_teacher(n, c, data, check):
    """Labels computed by a teacher (softmax of its logits u): v2 moves u too; detach() stops it (v1)."""
    z, u = data.draw(arrays((n, c))), data.draw(arrays((n, c)))
    check(lambda s, teacher: F.cross_entropy(s, F.softmax(teacher)), z, u)
    s, teacher = Tensor(z, requires_grad=True), Tensor(u, requires_grad=True)
    F.cross_entropy(s, F.softmax(teacher).detach()).backward()
    assert teacher.grad is None and s.grad is not None


@given(n=st.integers(1, 4), c=st.integers(1, 5), data=st.data())
def test_cross_entropy_one_hot_equals_class_indices(n, c, data):
    z = data.draw(arrays((n, c)))
    labels = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    a, b = Tensor(z, requires_grad=True), Tensor(z, requires_grad=True)
    la, lb = F.cross_entropy(a, labels), F.cross_entropy(b, np.eye(c)[labels])
    np.testing.assert_allclose(la.data, lb.data, rtol=1e-12)
    la.backward()
    lb.backward()
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-12, atol=1e-15)
    # the fused gradient is (softmax - one_hot) / N
    np.testing.assert_allclose(a.grad, (np.exp(np_log_softmax(z)) - np.eye(c)[labels]) / n, atol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(n=st.integers(1, 5), c=st.integers(1, 5), data=st.data())
def test_nll_loss(reduction, n, c, data, check):
    z = data.draw(arrays((n, c)))
    labels = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    lp = F.log_softmax(Tensor(z))
    np.testing.assert_allclose(F.nll_loss(lp, labels, reduction=reduction).data,
                               F.cross_entropy(Tensor(z), labels, reduction=reduction).data, rtol=1e-12)
    check(lambda t: F.nll_loss(t, labels, reduction=reduction), z)
    check(lambda t: F.nll_loss(F.log_softmax(t), labels, reduction=reduction), z)


# ===================================================================== mse, linear, bce
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4), data=st.data())
def test_mse_loss(reduction, shape, data, check):
    x, y = data.draw(arrays(shape)), data.draw(arrays(shape))
    np.testing.assert_allclose(F.mse_loss(Tensor(x), y, reduction=reduction).data, reduce((x - y) ** 2, reduction),
                               rtol=1e-12)
    check(lambda a, b: F.mse_loss(a, b, reduction=reduction), x, y)
    check(lambda a: F.mse_loss(a, y, reduction=reduction), x)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@given(lead=st.sampled_from([(), (3,), (2, 3)]), n_in=st.integers(1, 4), n_out=st.integers(1, 4), data=st.data())
def test_linear(bias, lead, n_in, n_out, data, check):
    """1-D, 2-D and 3-D inputs; weight (out, in) as in PyTorch."""
    x = data.draw(arrays(lead + (n_in,)))
    w = data.draw(arrays((n_out, n_in)))
    b = data.draw(arrays((n_out,)))
    out = F.linear(Tensor(x), Tensor(w), Tensor(b) if bias else None)
    np.testing.assert_allclose(out.data, x @ w.T + (b if bias else 0), rtol=1e-12, atol=1e-14)
    if bias:
        check(F.linear, x, w, b)
    else:
        check(F.linear, x, w)
    check(lambda weight: F.linear(x, weight), w)              # a constant input


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4), data=st.data())
def test_binary_cross_entropy_with_logits(reduction, shape, data, check):
    z = data.draw(arrays(shape, -5.0, 5.0))
    t = data.draw(arrays(shape, 0.0, 1.0))                   # soft targets are allowed
    s = 1 / (1 + np.exp(-z))
    want = reduce(-(t * np.log(s) + (1 - t) * np.log(1 - s)), reduction)
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(Tensor(z), t, reduction=reduction).data, want,
                               rtol=1e-10)
    check(lambda a: F.binary_cross_entropy_with_logits(a, t, reduction=reduction), z)


def test_binary_cross_entropy_with_logits_is_stable():
    z = Tensor([-800.0, -40.0, 0.0, 40.0, 800.0], requires_grad=True)
    t = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.binary_cross_entropy_with_logits(z, t, reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.data, [0.0, 40.0, np.log(2.0), 40.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(z.grad, [0.0, -1.0, -0.5, 1.0, 0.0], atol=1e-12)


# ===================================================================== weights and ignore_index (chapter 06)
def np_weighted_ce(z: np.ndarray, labels: np.ndarray, w: np.ndarray | None, ignore: int, reduction: str):
    """PyTorch's documented formula: l_n = -w[y_n] log softmax(z_n)[y_n] * 1{y_n != ignore};
    mean = sum_n l_n / sum_n w[y_n] 1{y_n != ignore}."""
    keep = labels != ignore
    safe = np.where(keep, labels, 0)
    wy = (np.ones(len(labels)) if w is None else w[safe]) * keep
    per = -np_log_softmax(z)[np.arange(len(labels)), safe] * wy
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return per.sum() / wy.sum()


@st.composite
def weighted_labels(draw, n, c):
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    ignored = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if ignored.all():
        ignored[0] = False                              # the all-ignored case has its own test
    labels = np.where(ignored, -100, labels)
    w = draw(st.one_of(st.none(), arrays((c,), 0.1, 3.0)))
    return labels, w


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(n=st.integers(1, 5), c=st.integers(1, 5), data=st.data())
def test_cross_entropy_weight_and_ignore_index(reduction, n, c, data, check):
    z = data.draw(arrays((n, c)))
    labels, w = data.draw(weighted_labels(n, c))
    want = np_weighted_ce(z, labels, w, -100, reduction)
    got = F.cross_entropy(Tensor(z), labels, reduction=reduction, weight=w, ignore_index=-100)
    np.testing.assert_allclose(got.data, want, rtol=1e-12, atol=1e-15)
    check(lambda t: F.cross_entropy(t, labels, reduction=reduction, weight=w), z)
    # nll_loss of log_softmax is the same loss, with the same gradient
    got_nll = F.nll_loss(F.log_softmax(Tensor(z)), labels, reduction=reduction, weight=w)
    np.testing.assert_allclose(got_nll.data, want, rtol=1e-12, atol=1e-15)
    check(lambda t: F.nll_loss(t, labels, reduction=reduction, weight=w), z)
    check(lambda t: F.nll_loss(F.log_softmax(t), labels, reduction=reduction, weight=w), z)


@given(n=st.integers(1, 5), c=st.integers(2, 5), data=st.data())
def test_weighted_mean_divides_by_the_sum_of_the_weights(n, c, data):
    """mean = sum / sum_i w[y_i]: multiplying every weight by a constant changes nothing, and unit
    weights are the unweighted mean; an ignored example changes neither numerator nor denominator."""
    z = data.draw(arrays((n, c)))
    labels, w = data.draw(weighted_labels(n, c))
    w = np.ones(c) if w is None else w
    base = F.cross_entropy(Tensor(z), labels, weight=w).data
    np.testing.assert_allclose(F.cross_entropy(Tensor(z), labels, weight=7.5 * w).data, base, rtol=1e-12)
    kept = labels != -100
    np.testing.assert_allclose(F.cross_entropy(Tensor(z[kept]), labels[kept], weight=w).data, base, rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(Tensor(z), labels, weight=np.ones(c)).data,
                               F.cross_entropy(Tensor(z[kept]), labels[kept]).data, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(n=st.integers(1, 4), c=st.integers(1, 5), data=st.data())
def test_cross_entropy_probability_targets_with_weight(reduction, n, c, data, check):
    """Probability targets: l_n = -sum_c w_c t_nc log softmax(z_n)_c, and the mean divides by N."""
    z = data.draw(arrays((n, c)))
    t = data.draw(probabilities((n, c)))
    w = data.draw(arrays((c,), 0.1, 3.0))
    want = reduce(-(w * t * np_log_softmax(z)).sum(axis=1), reduction)
    np.testing.assert_allclose(F.cross_entropy(Tensor(z), t, reduction=reduction, weight=w).data, want,
                               rtol=1e-12, atol=1e-15)
    check(lambda a, b: F.cross_entropy(a, b, reduction=reduction, weight=w), z, t)


def test_cross_entropy_single_example_ignored_and_all_ignored():
    """Every target ignored: the mean is 0/0 = NaN and the gradient is zero, as in PyTorch; the sum is 0."""
    z = Tensor(np.array([[1.0, -2.0, 0.5], [0.0, 0.3, 0.1]]), requires_grad=True)
    labels = np.array([-100, -100])
    loss = F.cross_entropy(z, labels)
    assert np.isnan(loss.data)
    loss.backward()
    np.testing.assert_array_equal(z.grad, 0.0)
    assert F.cross_entropy(z, labels, reduction="sum").data == 0.0
    np.testing.assert_array_equal(F.cross_entropy(z, labels, reduction="none").data, [0.0, 0.0])
    one = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    F.cross_entropy(one, 1, reduction="sum", weight=np.array([1.0, 3.0])).backward()
    np.testing.assert_allclose(one.grad, 3.0 * (np.exp(np_log_softmax(one.data)) - [0.0, 1.0]), rtol=1e-12)


def test_ignore_index_may_be_a_class_and_other_labels_are_still_checked():
    z = np.array([[1.0, -2.0, 0.5], [0.0, 0.3, 0.1], [2.0, 0.0, -1.0]])
    np.testing.assert_allclose(F.cross_entropy(Tensor(z), np.array([0, 1, 2]), ignore_index=0).data,
                               F.cross_entropy(Tensor(z[1:]), np.array([1, 2])).data, rtol=1e-12)
    with pytest.raises(IndexError, match="out of range for 3 classes"):
        F.cross_entropy(Tensor(z), np.array([-100, 3, 0]))
    with pytest.raises(IndexError, match="out of range"):
        F.nll_loss(Tensor(z), np.array([-1, 0, 0]))
    with pytest.raises(ValueError, match=r"weight must have one entry per class, shape \(3,\), got shape \(2,\)"):
        F.cross_entropy(Tensor(z), np.array([0, 1, 2]), weight=np.ones(2))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4), data=st.data())
def test_binary_cross_entropy_with_logits_weight(reduction, shape, data, check):
    """PyTorch's BCE weight multiplies each element's loss; its mean still divides by the number
    of elements (not by the sum of the weights)."""
    z = data.draw(arrays(shape, -5.0, 5.0))
    t = data.draw(arrays(shape, 0.0, 1.0))
    w = data.draw(arrays(shape[-1:], 0.0, 3.0))          # broadcast along the last axis
    s = 1 / (1 + np.exp(-z))
    want = reduce(-w * (t * np.log(s) + (1 - t) * np.log(1 - s)), reduction)
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(Tensor(z), t, reduction=reduction, weight=w).data,
                               want, rtol=1e-10, atol=1e-14)
    check(lambda a: F.binary_cross_entropy_with_logits(a, t, reduction=reduction, weight=w), z)
    with pytest.raises(ValueError, match="does not broadcast"):
        F.binary_cross_entropy_with_logits(Tensor(z), t, weight=np.ones(shape[-1] + 1))
