"""Property tests of nnlib.tensor: every op's gradient against central differences, and the engine.

The standard (minitorch's): for random small shapes (0 to 3 dimensions, sides 1 to 4) and values in
a safe domain for the op, backprop's vector-Jacobian product equals the central difference in
float64 to a relative error of 1e-6 (the ``check`` fixture of conftest.py, built on nnlib.gradcheck,
which test_gradcheck.py tests in turn).
Broadcasting gets random broadcast-compatible shape pairs; fan-out gets a tensor used several times.
The second half tests the engine: deep graphs, accumulation, retain_graph, no_grad, dtypes.
"""
from __future__ import annotations

import gc
import operator
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnlib
import nnlib.functional as F
from nnlib import Tensor

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
NONSCALAR = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4)
TRIPLES = hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, min_side=1, max_side=4)


def floats(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def arrays(shape, lo: float = -2.0, hi: float = 2.0):
    return hnp.arrays(np.float64, shape, elements=floats(lo, hi))


def nonzero(shape, lo: float = 0.1, hi: float = 2.0):
    """Magnitudes in [lo, hi] with random signs: away from a kink (relu, abs) or a pole (1/b)."""
    return st.tuples(arrays(shape, lo, hi), hnp.arrays(np.bool_, shape)).map(
        lambda mag_sign: np.where(mag_sign[1], -mag_sign[0], mag_sign[0]))


def distinct(shape):
    """Values 0.25 apart in a random order: no ties within a central difference's step (for max)."""
    n = int(np.prod(shape, dtype=int))
    return st.permutations(range(n)).map(lambda p: np.asarray(p, dtype=np.float64).reshape(shape) * 0.25 - 1.0)


def leaf(value, dtype=np.float64) -> Tensor:
    return Tensor(np.array(value, dtype=dtype), requires_grad=True)


# ===================================================================== elementwise arithmetic
@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul], ids=["add", "sub", "mul"])
@given(shapes=PAIRS, data=st.data())
def test_add_sub_mul_broadcast(op, shapes, data, check):
    sa, sb = shapes.input_shapes
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    np.testing.assert_allclose(op(Tensor(a), Tensor(b)).data, op(a, b))
    check(op, a, b)


@given(shapes=PAIRS, data=st.data())
def test_div_broadcast(shapes, data, check):
    sa, sb = shapes.input_shapes
    a, b = data.draw(arrays(sa)), data.draw(nonzero(sb, 0.5, 2.0))
    np.testing.assert_allclose((Tensor(a) / Tensor(b)).data, a / b)
    check(operator.truediv, a, b)


@given(shape=SHAPES, p=st.sampled_from([0.0, 1.0, 2.0, 3.0, 0.5, -1.0, -2.5, 1.7]), data=st.data())
def test_pow_scalar_exponent(shape, p, data, check):
    a = data.draw(arrays(shape, 0.5, 2.0))
    np.testing.assert_allclose((Tensor(a) ** p).data, a ** p)
    check(lambda t: t ** p, a)


@given(shape=SHAPES, p=st.sampled_from([2, 3]), data=st.data())
def test_pow_integer_exponent_of_negative_base(shape, p, data, check):
    check(lambda t: t ** p, data.draw(nonzero(shape)))


@given(shapes=PAIRS, data=st.data())
def test_pow_tensor_exponent_broadcast(shapes, data, check):
    sa, sp = shapes.input_shapes
    a, p = data.draw(arrays(sa, 0.5, 2.0)), data.draw(arrays(sp, -2.0, 2.0))
    np.testing.assert_allclose((Tensor(a) ** Tensor(p)).data, a ** p)
    check(operator.pow, a, p)


@given(shape=SHAPES, data=st.data())
def test_pow_array_exponent_and_scalar_base(shape, data, check):
    a = data.draw(arrays(shape, 0.5, 2.0))
    p = data.draw(arrays(shape, -2.0, 2.0))
    check(lambda t: t ** p, a)            # a constant array exponent
    check(lambda t: 2.0 ** t, p)          # __rpow__: d(2^t)/dt = 2^t log 2
    t = leaf(p)
    (2.0 ** t).sum().backward()
    np.testing.assert_allclose(t.grad, 2.0 ** p * np.log(2.0))


@given(shape=SHAPES, data=st.data())
def test_neg(shape, data, check):
    a = data.draw(arrays(shape))
    np.testing.assert_array_equal((-Tensor(a)).data, -a)
    check(operator.neg, a)


@given(shapes=PAIRS, data=st.data())
def test_constants_on_either_side(shapes, data, check):
    """Numbers and numpy arrays mix with Tensors on both sides (reflected operators)."""
    sa, sc = shapes.input_shapes
    a = data.draw(arrays(sa))
    c = data.draw(nonzero(sc, 0.5, 2.0))
    for fn in (lambda t: 3.0 - t, lambda t: 2.0 / (t * t + 1.0), lambda t: c * t + 1,
               lambda t: c - t, lambda t: t / c, lambda t: c / (t * t + 1.0)):
        out = fn(Tensor(a))
        assert isinstance(out, Tensor)
        check(fn, a)


@given(shape=SHAPES, data=st.data())
def test_fan_out_same_tensor_used_two_and_three_times(shape, data, check):
    a = data.draw(arrays(shape))
    check(lambda t: t * t, a)
    check(lambda t: t * t * t + t, a)
    check(lambda t: (t + 1.0).tanh() * t - t.exp() / (1.0 + t * t), a)
    check(lambda t: t.sum() * t, a)       # fan-out through a reduction and a broadcast
    x = leaf(a)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * a)


@given(shapes=PAIRS, data=st.data())
def test_fan_out_with_broadcasting(shapes, data, check):
    sa, sb = shapes.input_shapes
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    check(lambda x, y: x * y + x / (1.0 + y * y) - y, a, b)


# ===================================================================== matmul
def _matmul_shapes(case: str, n: int, k: int, m: int, b: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return {
        "1x1": ((k,), (k,)), "1x2": ((k,), (k, m)), "2x1": ((n, k), (k,)), "2x2": ((n, k), (k, m)),
        "3x3": ((b, n, k), (b, k, m)), "3x3 b1": ((b, n, k), (1, k, m)), "3x3 1b": ((1, n, k), (b, k, m)),
        "3x2": ((b, n, k), (k, m)), "2x3": ((n, k), (b, k, m)), "3x1": ((b, n, k), (k,)),
        "1x3": ((k,), (b, k, m)), "4x3": ((2, 1, n, k), (b, k, m)),
    }[case]


MATMUL_CASES = ["1x1", "1x2", "2x1", "2x2", "3x3", "3x3 b1", "3x3 1b", "3x2", "2x3", "3x1", "1x3", "4x3"]


@pytest.mark.parametrize("case", MATMUL_CASES)
@given(dims=st.tuples(*[st.integers(1, 4)] * 4), data=st.data())
def test_matmul(case, dims, data, check):
    sa, sb = _matmul_shapes(case, *dims)
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b)
    check(operator.matmul, a, b)


@given(dims=st.tuples(*[st.integers(1, 4)] * 3), data=st.data())
def test_matmul_with_constant_and_fan_out(dims, data, check):
    n, k, m = dims
    a, c = data.draw(arrays((n, k))), data.draw(arrays((k, m)))
    check(lambda t: t @ c, a)
    check(lambda t: c.T @ t.T, a)         # ndarray @ Tensor uses __rmatmul__
    s = data.draw(arrays((k, k)))
    check(lambda t: t @ t @ t, s)         # the same matrix three times


# ===================================================================== reductions
@st.composite
def shape_axis_keepdims(draw, min_dims=0):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=4))
    nd = len(shape)
    options = [st.none()]
    if nd:
        options.append(st.integers(-nd, nd - 1))
        options.append(st.lists(st.tuples(st.integers(0, nd - 1), st.booleans()), min_size=1, max_size=nd,
                                unique_by=lambda ax_neg: ax_neg[0])
                       .map(lambda axes: tuple(ax - nd if neg else ax for ax, neg in axes)))
    return shape, draw(st.one_of(options)), draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean"])
@given(sak=shape_axis_keepdims(), data=st.data())
def test_sum_mean(name, sak, data, check):
    shape, axis, keepdims = sak
    a = data.draw(arrays(shape))
    out = getattr(Tensor(a), name)(axis=axis, keepdims=keepdims)
    want = getattr(np, name)(a, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(want)
    np.testing.assert_allclose(out.data, want)
    check(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), a)


@given(shape=SHAPES, data=st.data())
def test_mean_over_everything_is_sum_over_n(shape, data):
    a = data.draw(arrays(shape))
    x = leaf(a)
    x.mean().backward()
    np.testing.assert_allclose(x.grad, np.full(shape, 1.0 / a.size))


@given(sak=shape_axis_keepdims(), data=st.data())
def test_max_distinct_values(sak, data, check):
    shape, axis, keepdims = sak
    a = data.draw(distinct(shape))
    out = Tensor(a).max(axis=axis, keepdims=keepdims)
    want = np.max(a, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(want)
    np.testing.assert_array_equal(out.data, want)
    check(lambda t: t.max(axis=axis, keepdims=keepdims), a)


def test_max_splits_gradient_between_ties():
    x = leaf([1.0, 3.0, 3.0, 2.0])
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5, 0.0])
    y = leaf([[1.0, 1.0, 1.0], [0.0, 5.0, 2.0]])
    (y.max(axis=1) * Tensor([3.0, 1.0])).sum().backward()
    np.testing.assert_allclose(y.grad, [[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])


# ===================================================================== elementwise functions
UNARY = {
    "exp": (lambda t: t.exp(), np.exp, lambda s: arrays(s, -2.0, 2.0)),
    "log": (lambda t: t.log(), np.log, lambda s: arrays(s, 0.1, 3.0)),
    "tanh": (lambda t: t.tanh(), np.tanh, lambda s: arrays(s, -3.0, 3.0)),
    "sigmoid": (lambda t: t.sigmoid(), lambda v: 1 / (1 + np.exp(-v)), lambda s: arrays(s, -4.0, 4.0)),
    "relu": (lambda t: t.relu(), lambda v: np.maximum(v, 0), lambda s: nonzero(s)),
    "abs": (lambda t: t.abs(), np.abs, lambda s: nonzero(s)),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, lambda s: arrays(s, 0.1, 3.0)),
    "F.relu": (F.relu, lambda v: np.maximum(v, 0), lambda s: nonzero(s)),
    "F.tanh": (F.tanh, np.tanh, lambda s: arrays(s, -3.0, 3.0)),
    "F.sigmoid": (F.sigmoid, lambda v: 1 / (1 + np.exp(-v)), lambda s: arrays(s, -4.0, 4.0)),
}


@pytest.mark.parametrize("name", list(UNARY))
@given(shape=SHAPES, data=st.data())
def test_unary(name, shape, data, check):
    fn, reference, domain = UNARY[name]
    a = data.draw(domain(shape))
    np.testing.assert_allclose(fn(Tensor(a)).data, reference(a), rtol=1e-12, atol=1e-15)
    check(fn, a)


def test_relu_and_abs_have_zero_gradient_at_zero():
    x = leaf([-1.0, 0.0, 2.0])
    (x.relu() + x.abs()).sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 2.0])


def test_sigmoid_is_stable_for_huge_inputs():
    x = leaf([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # exp(-1000) may underflow to 0
        y = x.sigmoid()
        y.sum().backward()
    assert np.all((y.data >= 0) & (y.data <= 1)) and y.data[2] == 0.5
    assert np.all(np.isfinite(x.grad)) and x.grad[2] == 0.25


# ===================================================================== shape ops
@st.composite
def shape_and_reshape(draw):
    shape = draw(SHAPES)
    size = int(np.prod(shape, dtype=int))
    target = draw(st.sampled_from([(size,), (-1,), (1, size), (size, 1, 1), tuple(reversed(shape)), shape + (1,),
                                   (1,) + shape, (-1, 1)]))
    return shape, target


@given(st_=shape_and_reshape(), data=st.data())
def test_reshape(st_, data, check):
    shape, target = st_
    a = data.draw(arrays(shape))
    assert Tensor(a).reshape(target).shape == a.reshape(target).shape
    assert Tensor(a).reshape(*target).shape == a.reshape(target).shape
    check(lambda t: t.reshape(target), a)


@st.composite
def shape_and_permutation(draw):
    shape = draw(SHAPES)
    return shape, tuple(draw(st.permutations(range(len(shape)))))


@given(sp=shape_and_permutation(), data=st.data())
def test_transpose(sp, data, check):
    shape, perm = sp
    a = data.draw(arrays(shape))
    np.testing.assert_array_equal(Tensor(a).transpose(*perm).data, np.transpose(a, perm))
    np.testing.assert_array_equal(Tensor(a).transpose(perm).data, np.transpose(a, perm))
    np.testing.assert_array_equal(Tensor(a).T.data, a.T)
    check(lambda t: t.transpose(*perm), a)
    check(lambda t: t.T, a)


@given(shape=NONSCALAR, data=st.data())
def test_swapaxes(shape, data, check):
    nd = len(shape)
    i, j = data.draw(st.integers(-nd, nd - 1)), data.draw(st.integers(-nd, nd - 1))
    a = data.draw(arrays(shape))
    np.testing.assert_array_equal(Tensor(a).swapaxes(i, j).data, np.swapaxes(a, i, j))
    check(lambda t: t.swapaxes(i, j), a)


@given(shape=SHAPES, data=st.data())
def test_basic_indexing_and_slicing(shape, data, check):
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    a = data.draw(arrays(shape))
    out = Tensor(a)[index]
    np.testing.assert_array_equal(out.data, a[index])
    check(lambda t: t[index], a)


@given(n=st.integers(1, 5), c=st.integers(1, 4), data=st.data())
def test_gather_one_column_per_row(n, c, data, check):
    """x[arange(N), labels]: the gather cross-entropy uses; labels repeat, gradients must not collide."""
    labels = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    a = data.draw(arrays((n, c)))
    rows = np.arange(n)
    np.testing.assert_array_equal(Tensor(a)[rows, labels].data, a[rows, labels])
    check(lambda t: t[rows, labels], a)


@given(shape=NONSCALAR, data=st.data())
def test_integer_array_indexing_with_repeats(shape, data, check):
    a = data.draw(arrays(shape))
    idx = np.array(data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6)))
    check(lambda t: t[idx], a)                                   # rows, repeated
    check(lambda t: t[idx.reshape(-1, 1)], a)                    # a 2-D index array
    check(lambda t: t[Tensor(idx % shape[0])], a)                # a Tensor as index
    if len(shape) >= 2:
        cols = np.array(data.draw(st.lists(st.integers(0, shape[1] - 1), min_size=1, max_size=5)))
        check(lambda t: t[:, cols], a)                           # a slice and an index array
    x = leaf(a)
    x[np.zeros(3, dtype=int)].sum().backward()                   # the first row, three times
    want = np.zeros(shape)
    want[0] = 3.0
    np.testing.assert_array_equal(x.grad, want)


@given(shape=SHAPES, data=st.data())
def test_boolean_mask_indexing(shape, data, check):
    a = data.draw(arrays(shape))
    mask = data.draw(hnp.arrays(np.bool_, shape))
    check(lambda t: t[mask] * 2.0, a)


@st.composite
def pieces_for_concatenate(draw):
    base = list(draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)))
    nd = len(base)
    axis = draw(st.integers(-nd, nd - 1))
    shapes = []
    for _ in range(draw(st.integers(1, 3))):
        s = list(base)
        s[axis] = draw(st.integers(1, 3))
        shapes.append(tuple(s))
    return shapes, axis


@given(sa=pieces_for_concatenate(), data=st.data())
def test_concatenate(sa, data, check):
    shapes, axis = sa
    values = [data.draw(arrays(s)) for s in shapes]
    np.testing.assert_array_equal(nnlib.concatenate([Tensor(v) for v in values], axis=axis).data,
                                  np.concatenate(values, axis=axis))
    check(lambda *ts: nnlib.concatenate(ts, axis=axis), *values)
    check(lambda *ts: nnlib.cat(list(ts) + [ts[0]], axis=axis), *values)    # with fan-out


@given(shape=SHAPES, k=st.integers(1, 3), data=st.data())
def test_stack(shape, k, data, check):
    axis = data.draw(st.integers(-(len(shape) + 1), len(shape)))
    values = [data.draw(arrays(shape)) for _ in range(k)]
    np.testing.assert_array_equal(nnlib.stack([Tensor(v) for v in values], axis=axis).data,
                                  np.stack(values, axis=axis))
    check(lambda *ts: nnlib.stack(ts, axis=axis), *values)
    check(lambda *ts: nnlib.stack([ts[0] * ts[-1], ts[0]], axis=axis), *values)


@given(shapes=TRIPLES, data=st.data())
def test_where_broadcast(shapes, data, check):
    sc, sa, sb = shapes.input_shapes
    cond = data.draw(hnp.arrays(np.bool_, sc))
    a, b = data.draw(arrays(sa)), data.draw(arrays(sb))
    np.testing.assert_array_equal(nnlib.where(cond, Tensor(a), Tensor(b)).data, np.where(cond, a, b))
    check(lambda x, y: nnlib.where(cond, x, y), a, b)
    check(lambda x: nnlib.where(Tensor(cond), x, 0.0), a)               # a Tensor condition, a constant
    check(lambda x, y: nnlib.where(cond, x * y, x), a, b)                # fan-out through both branches


@given(shape=SHAPES, data=st.data())
def test_detach_cuts_the_graph(shape, data):
    a = data.draw(arrays(shape))
    x = leaf(a)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf and np.shares_memory(d.data, x.data)
    (d * x).sum().backward()              # only the second factor is differentiated
    np.testing.assert_array_equal(x.grad, a)
    y = leaf(a)
    z = (y.detach() * 3.0).exp()
    assert not z.requires_grad and z.parents == ()


# ===================================================================== the engine
def test_graph_100000_ops_deep_backpropagates_and_is_collected():
    x = leaf(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.backward()                     # an iterative topological sort: no RecursionError
    np.testing.assert_allclose(x.grad, 1.00001 ** 100_000, rtol=1e-9)
    first = weakref.ref(y.parents[0])
    del y                            # freeing a 100,000-long chain of parents must not overflow the C stack
    gc.collect()
    assert first() is None


@given(values=hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                         elements=st.floats(-3, 3, allow_subnormal=False)),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_square_sends_one_gradient_equal_to_the_two_of_a_product(values, dtype):
    """x * x records one gradient, 2 (g x), instead of g x for each operand: the same bits as
    the sum the engine formed before (doubling is exact), and the same as x * y with y = x."""
    x = leaf(values, dtype)
    upstream = np.random.default_rng(0).normal(size=values.shape).astype(dtype)
    (x * x).backward(upstream)
    y = leaf(values, dtype)
    y2 = leaf(values, dtype)
    (y * y2).backward(upstream)
    assert x.grad.dtype == dtype
    np.testing.assert_array_equal(x.grad, y.grad + y2.grad)
    np.testing.assert_array_equal((x * x).data, values.astype(dtype) ** 2)


def test_fan_out_accumulates_in_reverse_topological_order():
    # x -> a, b -> c uses both; x gets every path's contribution exactly once
    x = leaf(2.0)
    a = x * 3.0
    b = x * x
    c = a * b + a            # dc/dx = 3 * x^2 + 3x * 2x + 3 = 9x^2 + 3 = 39
    c.backward()
    np.testing.assert_allclose(x.grad, 39.0)
    y = leaf(1.5)
    z = y
    for _ in range(10):
        z = z + z            # 2^10 paths to y
    z.backward()
    np.testing.assert_allclose(y.grad, 1024.0)


def test_gradients_accumulate_across_two_backward_passes():
    x = leaf([1.0, -2.0])
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, -8.0])
    x.zero_grad()
    assert x.grad is None


def test_second_backward_raises_unless_graph_retained():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])     # unchanged by the failed call
    x2 = leaf([1.0, 2.0])
    y2 = (x2 * x2).sum()
    y2.backward(retain_graph=True)
    y2.backward()
    np.testing.assert_array_equal(x2.grad, [4.0, 8.0])    # doubled


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = leaf(np.ones((2, 3)))
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))
    y.backward(np.full((2, 3), 0.5))
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))


def test_backward_on_a_tensor_without_graph_raises():
    with pytest.raises(RuntimeError, match="requires_grad"):
        (Tensor([1.0]) * 2.0).sum().backward()


def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    assert nnlib.is_grad_enabled()
    with nnlib.no_grad():
        assert not nnlib.is_grad_enabled()
        y = (x * x).exp().sum()
        with nnlib.no_grad():
            pass
        assert not nnlib.is_grad_enabled()          # nested exit restores the outer state
    assert nnlib.is_grad_enabled()
    assert not y.requires_grad and y.parents == () and y.is_leaf

    @nnlib.no_grad()
    def f(t):
        return t * 2.0
    assert not f(x).requires_grad and nnlib.is_grad_enabled()


def test_retain_grad_keeps_intermediate_gradients():
    x = leaf([1.0, 2.0, 3.0])
    y = (x * 2.0).retain_grad()
    h = y * 1.0                          # not retained
    z = (h * h).sum()
    z.backward()
    np.testing.assert_array_equal(y.grad, 2 * y.data)
    np.testing.assert_array_equal(x.grad, 4 * y.data)
    assert h.grad is None
    assert not np.shares_memory(y.grad, x.grad)


def test_leaf_grads_are_never_shared_and_are_writeable():
    a, b = leaf(np.ones((2, 3))), leaf(np.ones((2, 3)))
    s0 = leaf(2.0)                                   # 0-d leaf: the adjoint of broadcasting is a full sum
    r = leaf(np.ones((1, 3)))
    out = a + b                                      # add hands the same upstream array to both inputs
    out = out + s0 + r + a.reshape(3, 2).T.T.reshape(2, 3)
    out.sum().backward()
    grads = [t.grad for t in (a, b, s0, r)]
    for i, g in enumerate(grads):
        assert isinstance(g, np.ndarray) and g.flags.writeable, i
        for other in grads[i + 1:]:
            assert not np.shares_memory(g, other)
    assert s0.grad.shape == () and float(s0.grad) == 6.0
    g = np.ones((2, 3))
    c = leaf(np.zeros((2, 3)))
    (c + 0.0).backward(g)                            # the caller's array is not adopted as .grad
    g[...] = 7.0
    np.testing.assert_array_equal(c.grad, np.ones((2, 3)))
    d = leaf(np.zeros((2, 3)))
    (d + 0.0).backward(c.grad)                       # nor is another tensor's .grad
    assert not np.shares_memory(c.grad, d.grad)
    for t in (a, b, s0, r, c, d):
        t.grad += 1.0                                # writeable in place


def _float32_losses(h: Tensor, labels: np.ndarray, target: np.ndarray) -> list[Tensor]:
    """One of each op and loss, applied to float32 logits h, with float64 constants mixed in."""
    return [F.cross_entropy(h, labels), F.cross_entropy(h, target), F.mse_loss(F.softmax(h), target),
            F.binary_cross_entropy_with_logits(h, target), F.logsumexp(h).mean(),
            F.log_softmax(h).max(axis=1).sum(), (h ** 2).mean(), (2.0 ** h).sum(), (h / 3.0 - 1).sum(),
            nnlib.where(h.data > 0, h, 0.0).sum(), h[np.arange(h.shape[0]), labels].sum(),
            nnlib.stack([h, h]).sum(), nnlib.cat([h, h], axis=1).abs().sum(), h.sigmoid().sum(),
            (h.T @ h).relu().sum(), h.reshape(-1).exp().sum(), F.nll_loss(F.log_softmax(h), labels)]


def test_float32_stays_float32_through_forward_backward_and_step():
    f32 = np.float32
    rng = np.random.default_rng(0)
    model = nnlib.nn.MLP([3, 5, 4], activation="tanh", rng=0, dtype=f32)
    x = Tensor(rng.normal(size=(6, 3)).astype(f32))
    labels = rng.integers(0, 4, size=6)
    target = np.full((6, 4), 0.25)                  # float64 constants must not upcast the graph
    for opt in (nnlib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True),
                nnlib.optim.Adam(model.parameters(), lr=0.01)):
        opt.zero_grad()
        loss = sum(_float32_losses(model(x), labels, target), Tensor(np.zeros((), dtype=f32)))
        # every node of the graph: its value, and what its backward hands its inputs (leaves cast
        # what they receive, so an upcast inside the backward pass would not show in .grad)
        stack, seen = [loss], set()
        while stack:
            node = stack.pop()
            if id(node) in seen or node.is_leaf:
                continue
            seen.add(id(node))
            assert node.dtype == f32, node.op
            for g in node._backward(np.ones_like(node.data)):
                assert g is None or np.asarray(g).dtype == f32, node.op
            stack.extend(node.parents)
        loss.backward()
        opt.step()
        for p in model.parameters():
            assert p.dtype == f32 and p.grad.dtype == f32
        for state in opt.state:
            assert all(v.dtype == f32 for v in state.values())


def test_in_place_backward_never_touches_a_gradient_someone_else_holds():
    """relu's backward masks its incoming gradient in place only when nothing else holds it:
    not when an add node hands the same array to two inputs, not when it is kept by retain_grad."""
    rng = np.random.default_rng(3)
    x = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    y = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    r = x.relu()
    out = r + y  # add passes one array to both r and y
    out.retain_grad()
    out.backward(np.ones((4, 3)))
    np.testing.assert_array_equal(y.grad, np.ones((4, 3)))
    np.testing.assert_array_equal(out.grad, np.ones((4, 3)))
    np.testing.assert_array_equal(x.grad, (x.data > 0).astype(float))

    x.grad = None
    h = x * 2.0
    a = h.relu()
    a.retain_grad()
    w = rng.normal(size=(4, 3))
    (a * w).sum().backward()
    np.testing.assert_array_equal(a.grad, w)  # the retained gradient is not masked
    np.testing.assert_allclose(x.grad, 2.0 * w * (h.data > 0))

    x.grad = None
    z = x * 1.0
    (z.relu() + z.relu() * 3.0).sum().backward()  # fan-out into one node through two relus
    np.testing.assert_allclose(x.grad, 4.0 * (x.data > 0))
