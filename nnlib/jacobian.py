"""nnlib.jacobian: whole Jacobians by reverse mode, and the path expansion of a residual stack.

``jacobian(fn, x)`` builds the matrix d fn(x) / dx one row at a time: row i is the gradient of
output i, i.e. one backward pass with the upstream gradient e_i. Backprop never needs the matrix
(it multiplies by it); chapters that study the matrices themselves (residual blocks, recurrent
cells) do.

A stack of residual blocks x_{l+1} = x_l + F_l(x_l) has the input-output Jacobian
(I + J_{n-1}) ... (I + J_1)(I + J_0), with J_l = dF_l/dx_l at the block's input. Multiplying the
brackets out gives one product per set of blocks, the blocks whose branch the path goes through
(the others contribute their identity): ``path_terms`` adds these products up by the number of
branches in them, the "paths of length k" of Veit et al. (2016).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .tensor import Tensor


def jacobian(fn: Callable[[Tensor], Tensor], x) -> np.ndarray:
    """The Jacobian J[i..., j...] = d fn(x)[i...] / d x[j...], of shape fn(x).shape + x.shape.

    ``fn`` maps a Tensor to a Tensor with nnlib's operations; ``x`` is an array (float64 is used).
    Computed by reverse mode, one backward pass per output entry (the graph is built once and
    kept with ``retain_graph=True``): row i is the vector-Jacobian product e_i^T J.
    """
    xt = Tensor(np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64), requires_grad=True)
    out = fn(xt)
    if not isinstance(out, Tensor):
        raise TypeError(f"jacobian: fn must return a Tensor, got {type(out).__name__}")
    rows = np.zeros((out.data.size,) + xt.shape, dtype=np.float64)
    if not out.requires_grad:  # the output does not depend on x: the Jacobian is zero
        return rows.reshape(out.shape + xt.shape)
    for i in range(out.data.size):
        upstream = np.zeros(out.data.size, dtype=np.float64)
        upstream[i] = 1.0
        xt.grad = None
        out.backward(upstream.reshape(out.shape), retain_graph=True)
        if xt.grad is not None:
            rows[i] = xt.grad
    return rows.reshape(out.shape + xt.shape)


def _stack_of_squares(jacobians, where: str) -> np.ndarray:
    js = [np.asarray(j, dtype=np.float64) for j in jacobians]
    if not js:
        raise ValueError(f"{where}: needs at least one Jacobian (a stack of n >= 1 blocks)")
    d = js[0].shape[-1] if js[0].ndim == 2 else None
    for l, j in enumerate(js):
        if j.ndim != 2 or j.shape[0] != j.shape[1] or j.shape[0] != d:
            shapes = [tuple(a.shape) for a in js]
            raise ValueError(f"{where}: every Jacobian must be square and of the same size (d, d), "
                             f"the blocks map R^d to R^d; got shapes {shapes} (block {l} is {tuple(j.shape)})")
    return np.stack(js)


def path_terms(jacobians: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """The product (I + J_{n-1}) ... (I + J_0) split by the number of residual branches per term.

    ``jacobians``: J_0, ..., J_{n-1} (a sequence of (d, d) arrays or one (n, d, d) array), block 0
    on the input side. Returns T of shape (n + 1, d, d) where T[k] is the sum, over every set of
    k blocks l_1 < ... < l_k, of the ordered product J_{l_k} ... J_{l_2} J_{l_1} (a later block on
    the left, as the chain rule multiplies them). T[0] = I, and T.sum(axis=0) is the whole
    product, so a row gradient g at the top reaches the bottom as g @ T.sum(axis=0) = g + g T[1] +
    .... There are C(n, k) terms in T[k]; the recursion T_k <- T_k + J_m T_{k-1} (one block at a
    time, input side first) costs O(n^2) matrix products instead of 2^n.
    """
    js = _stack_of_squares(jacobians, "path_terms")
    n, d = js.shape[0], js.shape[1]
    terms = np.zeros((n + 1, d, d), dtype=np.float64)
    terms[0] = np.eye(d)
    for m in range(n):
        # block m comes after every block already counted, so it multiplies them from the left;
        # the right-hand side is evaluated in full before the assignment, so T_{k-1} is the old one
        terms[1:m + 2] = terms[1:m + 2] + js[m] @ terms[0:m + 1]
    return terms
