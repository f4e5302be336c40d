"""Shared test configuration: hypothesis profiles.

Pick one with the HYPOTHESIS_PROFILE environment variable:
- ``dev`` (default): random examples each run, so repeated local runs explore new inputs;
  failures are remembered in hypothesis' local example database and replayed first.
- ``ci``: derandomized (the same examples on every run, so CI is reproducible), no database.
- ``thorough``: many more examples, for a slow hunt after changing nnlib's core
  (``HYPOTHESIS_PROFILE=thorough pytest tests/test_tensor.py``).

Every profile has ``deadline=None``: timings on a shared 2-core machine are noisy, and speed is
measured by bench/, never asserted in tests.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from nnlib import Tensor
from nnlib.gradcheck import analytic_grad, numerical_grad, relative_error

settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def gradient_check(fn, *values, tol: float = 1e-6, floor: float = 1e-2, seed: int = 0) -> list:
    """Assert that backprop's gradient of fn equals the central difference, for every input.

    ``values`` are arrays (turned into float64 leaves that require grad) or Tensors (used as they
    are, e.g. a module's parameters). A non-scalar output is contracted with a fixed random upstream
    gradient, so the whole vector-Jacobian product is checked. The error is nnlib's
    ``relative_error`` with a floor of 1e-2 on the scale: a relative error where gradients are
    larger than 1e-2, an absolute error of tol * 1e-2 where every gradient is tinier, since there a
    central difference's rounding noise (about 1e-16 |f| / h) dominates a purely relative measure.
    Returns the inputs (their .grad holds backprop's gradient).
    """
    inputs = [v if isinstance(v, Tensor) else Tensor(np.array(v, dtype=np.float64), requires_grad=True)
              for v in values]
    out = fn(*inputs)
    upstream = None if out.data.size == 1 else np.random.default_rng(seed).normal(size=out.shape)
    analytic = analytic_grad(fn, inputs, upstream)
    numeric = numerical_grad(fn, inputs, upstream=upstream)
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        err = relative_error(a, n, floor=floor)
        assert err <= tol, (f"input {i} of shape {a.shape}: relative error {err:.3g}\n"
                            f"backprop:\n{a}\ncentral difference:\n{n}")
    return inputs


@pytest.fixture(scope="session")
def check():
    """The gradient checker above, as a fixture (session-scoped, so hypothesis accepts it)."""
    return gradient_check
