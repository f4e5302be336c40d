"""nnlib.init: weight initialisers, named as in ``torch.nn.init`` (trailing _ = in place).

Every function takes ``rng``: a seed (int), a ``np.random.Generator``, or None for fresh entropy.
fan_in and fan_out of a weight of shape (out, in) are in and out, as in PyTorch.
"""
from __future__ import annotations

import math

import numpy as np

from .tensor import Tensor

RngLike = "int | np.random.Generator | None"


def as_generator(rng: "int | np.random.Generator | None", where: str = "rng",
                 allow_none: bool = True) -> np.random.Generator:
    """A Generator from a seed, a Generator (returned as is, so its stream continues) or, when
    ``allow_none``, None (fresh entropy: a different result each run). Never numpy's global
    state. ``where`` names the caller in the error message."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    if rng is None and allow_none:
        return np.random.default_rng()
    kinds = "an int or a np.random.Generator" + (" or None" if allow_none else "")
    raise TypeError(f"{where}: seed must be {kinds}, got {rng!r} (randomness never comes from numpy's global state)")


def _fans(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"fan in/out need a weight with at least 2 dimensions, got shape {t.shape}")
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def calculate_gain(nonlinearity: str) -> float:
    """The gain PyTorch uses: 1 for linear/sigmoid, 5/3 for tanh, sqrt(2) for relu."""
    gains = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0)}
    if nonlinearity not in gains:
        raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; choose from {sorted(gains)}")
    return gains[nonlinearity]


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    t.data[...] = values.astype(t.data.dtype, copy=False)
    return t


def constant_(t: Tensor, value: float) -> Tensor:
    t.data[...] = value
    return t


def zeros_(t: Tensor) -> Tensor:
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    return constant_(t, 1.0)


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, rng=None) -> Tensor:
    return _fill(t, as_generator(rng).uniform(a, b, size=t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, rng=None) -> Tensor:
    return _fill(t, as_generator(rng).normal(mean, std, size=t.shape))


def xavier_uniform_(t: Tensor, gain: float = 1.0, rng=None) -> Tensor:
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a, rng)


def xavier_normal_(t: Tensor, gain: float = 1.0, rng=None) -> Tensor:
    """Glorot & Bengio (2010): N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def kaiming_uniform_(t: Tensor, nonlinearity: str = "relu", rng=None) -> Tensor:
    """He et al. (2015): U(-b, b) with b = gain * sqrt(3 / fan_in)."""
    fan_in, _ = _fans(t)
    b = calculate_gain(nonlinearity) * math.sqrt(3.0 / fan_in)
    return uniform_(t, -b, b, rng)


def kaiming_normal_(t: Tensor, nonlinearity: str = "relu", rng=None) -> Tensor:
    """He et al. (2015): N(0, std^2) with std = gain / sqrt(fan_in)."""
    fan_in, _ = _fans(t)
    return normal_(t, 0.0, calculate_gain(nonlinearity) / math.sqrt(fan_in), rng)


he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
