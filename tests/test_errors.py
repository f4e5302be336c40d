"""Every bad input gets an error that names the operation and the shapes or values involved
(STYLE.md: "Errors name the operation and the shapes or values involved, and say what would be
valid"). Each test asserts the message's content, not only the exception type."""
from __future__ import annotations

import re

import numpy as np
import pytest

import nnlib
import nnlib.functional as F
from nnlib import Tensor, nn, optim


def message_of(excinfo) -> str:
    return str(excinfo.value)


def test_matmul_of_misaligned_shapes_names_both():
    a, b = Tensor(np.ones((3, 4))), Tensor(np.ones((5, 2)))
    with pytest.raises(ValueError) as e:
        a @ b
    msg = message_of(e)
    assert "matmul" in msg and "(3, 4)" in msg and "(5, 2)" in msg
    assert "4" in msg and "5" in msg                      # the two dimensions that should agree
    with pytest.raises(ValueError, match=r"matmul.*\(4,\).*\(3,\)"):
        Tensor(np.ones(4)) @ Tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"matmul.*\(\).*\(3,\)"):
        Tensor(2.0) @ Tensor(np.ones(3))


def test_linear_with_the_wrong_number_of_features():
    layer = nn.Linear(4, 2, rng=0)
    with pytest.raises(ValueError) as e:
        layer(Tensor(np.ones((8, 3))))
    msg = message_of(e)
    assert "linear" in msg and "(8, 3)" in msg and "(2, 4)" in msg and "expects 4" in msg
    with pytest.raises(ValueError, match=r"linear.*\(5,\)"):
        F.linear(Tensor(np.ones(5)), layer.weight)


def test_backward_on_a_non_scalar_names_the_shape():
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2.0
    with pytest.raises(RuntimeError) as e:
        y.backward()
    msg = message_of(e)
    assert "backward" in msg and "(2, 3)" in msg and ".sum()" in msg


def test_cross_entropy_with_a_label_out_of_range():
    logits = Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError) as e:
        F.cross_entropy(logits, np.array([0, 3]))
    msg = message_of(e)
    assert "cross_entropy" in msg and "3" in msg and "0..2" in msg
    with pytest.raises(IndexError, match=r"cross_entropy: target class -1 .*0\.\.2"):
        F.cross_entropy(logits, np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"cross_entropy.*\(3,\).*\(2, 3\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))       # one label too many
    with pytest.raises(IndexError, match="nll_loss"):
        F.nll_loss(logits, np.array([0, 5]))


def test_cross_entropy_probability_targets_of_the_wrong_shape():
    # rows that do not sum to one are accepted, as in PyTorch (tests/test_functional.py);
    # a target of another shape is not
    logits = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"cross_entropy.*\(2, 2\).*\(2, 3\)"):
        F.cross_entropy(logits, np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match=r"cross_entropy.*\(2, 2, 3\)"):
        F.cross_entropy(Tensor(np.zeros((2, 2, 3))), np.zeros((2, 2), dtype=int))


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_optimizer_given_no_parameters(cls):
    with pytest.raises(ValueError) as e:
        cls([], lr=0.1)
    msg = message_of(e)
    assert cls.__name__ in msg and "no parameters" in msg and "model.parameters()" in msg


def test_detect_anomaly_names_the_op_that_produced_nan():
    x = Tensor([1.0, -1.0], requires_grad=True)
    with np.errstate(invalid="ignore"):
        with pytest.raises(FloatingPointError) as e:
            with nnlib.detect_anomaly():
                (x * 2.0).log()
        assert "log" in message_of(e) and "(2,)" in message_of(e) and "-2" in message_of(e)
        assert np.isnan(x.log().data[1])                 # outside the context: NaN, silently


def test_detect_anomaly_in_the_backward_pass():
    x = Tensor([0.0, 4.0], requires_grad=True)
    y = x.sqrt().sum()                                     # forward finite, d sqrt/dx = inf at 0
    with np.errstate(divide="ignore"):
        with pytest.raises(FloatingPointError, match=r"sqrt: the backward pass.*\(2,\)"):
            with nnlib.detect_anomaly():
                y.backward()


def test_detect_anomaly_is_restored_after_an_error():
    with pytest.raises(FloatingPointError):
        with nnlib.detect_anomaly(), np.errstate(divide="ignore"):
            Tensor([0.0]).log()
    Tensor([np.inf]) * 2.0                                 # no longer checked


def test_reshape_to_an_impossible_shape():
    with pytest.raises(ValueError) as e:
        Tensor(np.ones((2, 3))).reshape(4, 2)
    msg = message_of(e)
    assert "reshape" in msg and "(2, 3)" in msg and "6 elements" in msg and "(4, 2)" in msg


def test_mse_loss_with_mismatched_shapes():
    with pytest.raises(ValueError) as e:
        F.mse_loss(Tensor(np.ones((4, 1))), np.ones(4))
    msg = message_of(e)
    assert "mse_loss" in msg and "(4, 1)" in msg and "(4,)" in msg
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits.*\(3,\).*\(3, 1\)"):
        F.binary_cross_entropy_with_logits(Tensor(np.ones((3, 1))), np.ones(3))


def test_bad_reduction_names_the_valid_ones():
    for fn, args in [(F.cross_entropy, (Tensor(np.zeros((1, 2))), np.array([0]))),
                     (F.mse_loss, (Tensor(np.zeros(2)), np.zeros(2))),
                     (F.nll_loss, (Tensor(np.zeros((1, 2))), np.array([0])))]:
        with pytest.raises(ValueError, match=re.escape(fn.__name__) + r".*'mean', 'sum' or 'none'.*'avg'"):
            fn(*args, reduction="avg")


def test_shape_op_errors():
    t = Tensor(np.ones((2, 3)))
    with pytest.raises(IndexError, match=r"getitem.*\(2, 3\)"):
        t[5]
    with pytest.raises(ValueError, match=r"sum: axis 2 .*2 dimensions"):
        t.sum(axis=2)
    with pytest.raises(ValueError, match=r"concatenate.*\[\(2, 3\), \(2, 2\)\].*axis 0"):
        nnlib.concatenate([t, Tensor(np.ones((2, 2)))])
    with pytest.raises(ValueError, match=r"stack.*\[\(2, 3\), \(3, 2\)\]"):
        nnlib.stack([t, Tensor(np.ones((3, 2)))])
    with pytest.raises(ValueError, match=r"item.*\(2, 3\)"):
        t.item()


def test_tensor_construction_errors():
    with pytest.raises(TypeError, match="float32 or float64"):
        Tensor([1, 2], dtype=np.int32)
    with pytest.raises(TypeError, match="Tensor"):
        Tensor([None, 1.0])
    with pytest.raises(RuntimeError, match="leaf"):
        (Tensor([1.0], requires_grad=True) * 2.0).requires_grad_(False)


def test_module_errors():
    with pytest.raises(ValueError, match=r"RNN: expected input of shape \(T, N, input\) with input=3, got \(4, 2\)"):
        nn.RNN(3, 5, rng=0)(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        nn.MLP([2, 3, 1], activation="gelu")
    with pytest.raises(ValueError, match=r"MLP.*\[4\]"):
        nn.MLP([4])
    layer = nn.Linear(2, 3, rng=0)
    with pytest.raises(ValueError, match=r"weight has shape \(3, 2\).*\(2, 3\)"):
        layer.load_state_dict({"weight": np.zeros((2, 3)), "bias": np.zeros(3)})


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_elementwise_ops_name_themselves_and_both_shapes_when_they_cannot_broadcast(op):
    a = Tensor(np.ones((3, 4)), requires_grad=True)
    b = Tensor(np.ones((3,)) * 2.0, requires_grad=True)
    do = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b,
          "pow": lambda: a ** b}[op]
    with pytest.raises(ValueError, match=rf"^{op}: shapes \(3, 4\) and \(3,\) cannot be broadcast"):
        do()
