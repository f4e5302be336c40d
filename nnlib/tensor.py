"""Tensor: a numpy array that remembers how it was computed, and reverse-mode autodiff.

Every operation below computes its output and, right beside it, says how the gradient flows
back (a small ``backward`` closure returning one gradient per input). ``Tensor.backward`` orders
the graph topologically with an explicit stack (no recursion, so graphs 100,000 ops deep work)
and walks it in reverse, adding gradients where a value fans out.

Names follow PyTorch: ``requires_grad``, ``.grad``, ``backward()``, ``no_grad()``, ``detach()``,
``retain_grad()``. Deliberate differences are stated where they occur:
- a Tensor always holds floating point numbers (float64 unless float32 is asked for);
- ``max`` over an axis splits the gradient evenly between tied maxima (like ``torch.amax``).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Sequence

import numpy as np

_grad_enabled = True
_anomaly_enabled = False
_private_grad = False  # set by the engine while a backward runs whose incoming gradient nobody else holds

ArrayLike = Any
Backward = Callable[[np.ndarray], Sequence["np.ndarray | None"]]


class no_grad:
    """Context manager (and decorator) in which operations record no graph, as in PyTorch."""

    def __enter__(self) -> None:
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._prev

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper


def is_grad_enabled() -> bool:
    return _grad_enabled


class detect_anomaly:
    """Opt-in NaN/inf detector: inside it, an op whose output (or a gradient it computes in the
    backward pass) is not finite raises FloatingPointError naming the op and its input shapes.
    Like ``torch.autograd.detect_anomaly``; it costs one ``isfinite`` check per op."""

    def __enter__(self) -> None:
        global _anomaly_enabled
        self._prev = _anomaly_enabled
        _anomaly_enabled = True

    def __exit__(self, *exc: object) -> None:
        global _anomaly_enabled
        _anomaly_enabled = self._prev


def _as_float_array(data: ArrayLike, dtype: Any = None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    arr = np.asarray(data, dtype=dtype)
    if dtype is None and arr.dtype not in (np.float32, np.float64):
        if arr.dtype == object:
            raise TypeError(f"Tensor: cannot hold {type(data).__name__} data of mixed or non-numeric type")
        arr = arr.astype(np.float64)
    elif arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"Tensor: dtype must be float32 or float64, got {arr.dtype}")
    return arr


def _describe(tensors: Iterable["Tensor"]) -> str:
    return ", ".join(f"{t.shape}" for t in tensors)


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient back to the shape of an input that numpy broadcast (the adjoint of broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


class Tensor:
    """A float array with an optional gradient.

    ``Tensor(data, requires_grad=False, dtype=None)``: data is anything numpy accepts; integer
    and boolean data become float64; pass ``dtype=np.float32`` for single precision.
    """

    __slots__ = ("data", "requires_grad", "grad", "name", "_parents", "_backward", "_op",
                 "_retain", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None) -> None:
        self.data = _as_float_array(data, dtype)
        self.requires_grad = bool(requires_grad)
        self.grad: np.ndarray | None = None
        self.name = name
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Backward | None = None
        self._op = "leaf"
        self._retain = False

    @classmethod
    def _make(cls, data: np.ndarray, parents: tuple["Tensor", ...], backward: Backward, op: str) -> "Tensor":
        """Wrap an op's output; record the graph only when some input needs a gradient.

        ``backward(g)`` returns one gradient per parent (None where not needed). It must return
        new arrays, views of ``g``, or ``g`` itself, never an array it keeps elsewhere: the engine
        may later add into, or overwrite, a new array it was given."""
        out = object.__new__(Tensor)
        out.data = data if type(data) is np.ndarray else np.asarray(data)  # 0-d ops give numpy scalars
        out.grad = None
        out.name = None
        out._op = op
        out._retain = False
        needs_grad = False
        if _grad_enabled:
            for p in parents:
                if p.requires_grad:
                    needs_grad = True
                    break
        if needs_grad:
            out.requires_grad = True
            out._parents = parents
            out._backward = backward
        else:
            out.requires_grad = False
            out._parents = ()
            out._backward = None
        if _anomaly_enabled and not np.all(np.isfinite(data)):
            raise FloatingPointError(
                f"{op}: the forward pass produced NaN or inf (inputs of shapes {_describe(parents)}, "
                f"input ranges {[(float(np.nanmin(p.data)), float(np.nanmax(p.data))) for p in parents if p.data.size]})")
        return out

    # ----------------------------------------------------------------- basic properties
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return not self._parents

    @property
    def op(self) -> str:
        """Name of the operation that produced this tensor ('leaf' for inputs and parameters)."""
        return self._op

    @property
    def parents(self) -> tuple["Tensor", ...]:
        """The tensors this one was computed from (empty for leaves and outside the graph)."""
        return self._parents

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", prefix="Tensor(")
        extra = ""
        if self.data.dtype != np.float64:
            extra += f", dtype={self.data.dtype}"
        if self._parents:
            extra += f", op={self._op}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item: only a tensor with one element can be converted to a number, this one has shape {self.shape}")
        return float(self.data.reshape(()))

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied). Unlike PyTorch, allowed when requires_grad."""
        return self.data

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data but cut from the graph: no gradient flows through it."""
        return Tensor._make(self.data, (), _no_backward, "detach")

    def retain_grad(self) -> "Tensor":
        """Keep this intermediate's gradient in ``.grad`` after backward (leaves always keep theirs)."""
        self._retain = True
        return self

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if self._parents:
            raise RuntimeError("requires_grad_: only a leaf tensor's flag can be changed; use detach() first")
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # ----------------------------------------------------------------- autodiff engine
    def backward(self, gradient: ArrayLike | None = None, retain_graph: bool = False) -> None:
        """Add d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires a gradient.

        ``gradient`` is the upstream gradient dL/d(self); it may be omitted only when self has a
        single element (then it is 1). Gradients *accumulate*: a leaf's ``.grad`` is added to,
        so clear it (``optimizer.zero_grad()``) between steps. As in PyTorch, the graph's saved
        values are freed afterwards: calling backward a second time through the same graph
        raises RuntimeError, unless the first call passed ``retain_graph=True``, in which case
        the second call adds the same gradients again (doubling ``.grad``).
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no graph: create the inputs with "
                "requires_grad=True (and not inside no_grad()) before computing it")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: called without a gradient on a tensor of shape {self.shape}; backward() "
                    f"needs a scalar (one element). Reduce it first (.sum() or .mean()) or pass "
                    f"gradient= an array of shape {self.shape}")
            g = np.ones_like(self.data)
        else:
            # a copy: the caller's array must not become (and later alias) some leaf's .grad
            g = np.array(_as_float_array(gradient, self.data.dtype), copy=True)
            if g.shape != self.shape:
                raise ValueError(f"backward: gradient has shape {g.shape} but the tensor has shape {self.shape}")
        global _private_grad
        # dL/d(node) by node id, with whether the array is private: held by nothing but this
        # dict, so the node's backward may overwrite it (relu does) and a fan-out may add into it
        grads: dict[int, tuple[np.ndarray, bool]] = {id(self): (g, True)}
        pop, get = grads.pop, grads.get
        ndarray = np.ndarray
        for node in reversed(_topological_order(self)):
            entry = pop(id(node), None)
            if entry is None:
                continue
            g, private = entry
            parents = node._parents
            if not parents:
                node._store_grad(g, private)
                continue
            if node._retain:
                node._store_grad(g, private)
                private = False  # now node.grad may be this very array
            backward = node._backward
            if backward is None:
                raise RuntimeError(
                    f"backward: trying to backward through the graph a second time (at op '{node._op}'); "
                    "its saved values were freed by the first call. Pass retain_graph=True to the first "
                    "backward() if you really mean to (the gradients then add up), or recompute the forward pass")
            _private_grad = private
            try:
                parent_grads = backward(g)
            finally:
                _private_grad = False
            shared = False  # an array handed to two inputs (an add node passes g to both) is private to neither
            if len(parent_grads) > 1:
                ids = [id(pg) for pg in parent_grads if pg is not None]
                shared = len(ids) != len(set(ids))
            for parent, pg in zip(parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                if _anomaly_enabled and not np.all(np.isfinite(pg)):
                    raise FloatingPointError(
                        f"{node._op}: the backward pass produced NaN or inf for an input of shape {parent.shape}")
                # private: a new array of the op's own (base None: not a view, so writeable), or g
                # itself if g was private; never one given to two inputs
                if shared:
                    fresh = False
                elif pg is g:
                    fresh = private
                else:
                    fresh = type(pg) is ndarray and pg.base is None
                key = id(parent)
                prev = get(key)
                if prev is None:
                    grads[key] = (pg, fresh)
                elif prev[1] and prev[0].shape == np.shape(pg) and prev[0].dtype == np.result_type(prev[0], pg):
                    prev[0].__iadd__(pg)
                else:
                    total = prev[0] + pg
                    grads[key] = (total, isinstance(total, ndarray))  # 0-d sums are numpy scalars
            if not retain_graph:
                node._backward = None  # frees the saved values; a second backward here raises

    def _store_grad(self, g: np.ndarray, private: bool) -> None:
        if type(g) is not np.ndarray or g.dtype != self.data.dtype:
            # a full reduction (e.g. the adjoint of broadcasting a 0-d tensor) yields a numpy
            # scalar, which is read-only: .grad is always a writeable ndarray of the leaf's shape
            g, private = np.asarray(g, dtype=self.data.dtype), True
        if self.grad is None:
            # never share one array between two .grad attributes, or a view of someone's data
            self.grad = g if private and g.base is None else g.copy()
        else:
            self.grad = self.grad + g

    # ----------------------------------------------------------------- arithmetic
    def __add__(self, other: ArrayLike) -> "Tensor":
        """d(a+b)/da = 1, d(a+b)/db = 1 (summed back over broadcast axes)."""
        a, b = self, _lift(other, self)

        def backward(g: np.ndarray):
            return (_unbroadcast(g, a.shape) if a.requires_grad else None,
                    _unbroadcast(g, b.shape) if b.requires_grad else None)
        return Tensor._make(_broadcasting("add", np.add, a, b), (a, b), backward, "add")

    def __radd__(self, other: ArrayLike) -> "Tensor":
        return _lift(other, self).__add__(self)

    def __sub__(self, other: ArrayLike) -> "Tensor":
        """d(a-b)/da = 1, d(a-b)/db = -1."""
        a, b = self, _lift(other, self)

        def backward(g: np.ndarray):
            return (_unbroadcast(g, a.shape) if a.requires_grad else None,
                    -_unbroadcast(g, b.shape) if b.requires_grad else None)
        return Tensor._make(_broadcasting("sub", np.subtract, a, b), (a, b), backward, "sub")

    def __rsub__(self, other: ArrayLike) -> "Tensor":
        return _lift(other, self).__sub__(self)

    def __mul__(self, other: ArrayLike) -> "Tensor":
        """d(ab)/da = b, d(ab)/db = a."""
        a, b = self, _lift(other, self)
        if a is b:  # a square: the two gradients g*a are equal, so send their sum, exactly 2(g*a), once
            def backward_square(g: np.ndarray):
                ga = g * a.data
                if type(ga) is np.ndarray:
                    np.add(ga, ga, out=ga)
                else:  # 0-d: a numpy scalar
                    ga = ga + ga
                return (ga, None)
            return Tensor._make(np.multiply(a.data, a.data), (a, a), backward_square, "mul")

        def backward(g: np.ndarray):
            return (_unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                    _unbroadcast(g * a.data, b.shape) if b.requires_grad else None)
        return Tensor._make(_broadcasting("mul", np.multiply, a, b), (a, b), backward, "mul")

    def __rmul__(self, other: ArrayLike) -> "Tensor":
        return _lift(other, self).__mul__(self)

    def __truediv__(self, other: ArrayLike) -> "Tensor":
        """d(a/b)/da = 1/b, d(a/b)/db = -a/b^2."""
        a, b = self, _lift(other, self)

        def backward(g: np.ndarray):
            return (_unbroadcast(g / b.data, a.shape) if a.requires_grad else None,
                    _unbroadcast(-g * a.data / (b.data * b.data), b.shape) if b.requires_grad else None)
        return Tensor._make(_broadcasting("div", np.divide, a, b), (a, b), backward, "div")

    def __rtruediv__(self, other: ArrayLike) -> "Tensor":
        return _lift(other, self).__truediv__(self)

    def __pow__(self, exponent: ArrayLike) -> "Tensor":
        """d(a^p)/da = p a^(p-1); for a tensor exponent, d(a^p)/dp = a^p log a."""
        a = self
        if isinstance(exponent, Tensor):
            p = exponent
            out = _broadcasting("pow", np.power, a, p)

            def backward_t(g: np.ndarray):
                ga = _unbroadcast(g * p.data * a.data ** (p.data - 1), a.shape) if a.requires_grad else None
                gp = _unbroadcast(g * out * np.log(a.data), p.shape) if p.requires_grad else None
                return ga, gp
            return Tensor._make(out, (a, p), backward_t, "pow")
        if not np.isscalar(exponent):
            return self.__pow__(_lift(exponent, self))
        p_val = exponent

        def backward(g: np.ndarray):
            return (g * (p_val * a.data ** (p_val - 1)),)
        return Tensor._make(a.data ** p_val, (a,), backward, f"pow{p_val:g}")

    def __rpow__(self, base: ArrayLike) -> "Tensor":
        return _lift(base, self).__pow__(self)

    def __neg__(self) -> "Tensor":
        """d(-a)/da = -1."""
        return Tensor._make(-self.data, (self,), lambda g: (-g,), "neg")

    def __matmul__(self, other: ArrayLike) -> "Tensor":
        """d(AB)/dA: G B^T; d(AB)/dB: A^T G (numpy matmul rules, batch dims broadcast)."""
        a, b = self, _lift(other, self)
        A, B = a.data, b.data
        if A.ndim == 0 or B.ndim == 0:
            raise ValueError(f"matmul: both operands need at least one dimension, got shapes {A.shape} and {B.shape}; use * for scalars")
        ka = A.shape[-1]
        kb = B.shape[0] if B.ndim == 1 else B.shape[-2]
        if ka != kb:
            raise ValueError(
                f"matmul: shapes {A.shape} and {B.shape} are not aligned: the last dimension of the "
                f"first ({ka}) must equal the {'only' if B.ndim == 1 else 'second-to-last'} dimension of the second ({kb})")
        out = A @ B
        if A.ndim == 2 and B.ndim == 2:
            def backward2(g: np.ndarray):
                return (g @ B.T if a.requires_grad else None, A.T @ g if b.requires_grad else None)
            return Tensor._make(out, (a, b), backward2, "matmul")

        def backward(g: np.ndarray):
            A2 = A[None, :] if A.ndim == 1 else A
            B2 = B[:, None] if B.ndim == 1 else B
            G2 = g  # restore the dims matmul dropped for 1-D operands (both: g is 0-d, G2 is (1, 1))
            if B.ndim == 1:
                G2 = G2[..., None]
            if A.ndim == 1:
                G2 = G2[..., None, :]
            ga = gb = None
            if a.requires_grad:
                ga = _unbroadcast(G2 @ np.swapaxes(B2, -1, -2), A2.shape).reshape(A.shape)
            if b.requires_grad:
                gb = _unbroadcast(np.swapaxes(A2, -1, -2) @ G2, B2.shape).reshape(B.shape)
            return ga, gb
        return Tensor._make(out, (a, b), backward, "matmul")

    def __rmatmul__(self, other: ArrayLike) -> "Tensor":
        return _lift(other, self).__matmul__(self)

    __hash__ = object.__hash__

    # ----------------------------------------------------------------- reductions
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> "Tensor":
        """d(sum a)/da = 1 for every element summed."""
        a = self
        axes = _normalise_axes(axis, a.ndim, "sum")

        def backward(g: np.ndarray):
            if not keepdims and axes:
                g = np.expand_dims(g, axes)
            return (np.broadcast_to(g, a.shape),)
        return Tensor._make(np.sum(a.data, axis=axes, keepdims=keepdims), (a,), backward, "sum")

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> "Tensor":
        """d(mean a)/da = 1/n for each of the n elements averaged."""
        a = self
        axes = _normalise_axes(axis, a.ndim, "mean")
        n = int(np.prod([a.shape[i] for i in axes])) if axes is not None else a.size

        def backward(g: np.ndarray):
            if not keepdims and axes:
                g = np.expand_dims(g, axes)
            return (np.broadcast_to(g / n, a.shape),)
        return Tensor._make(np.mean(a.data, axis=axes, keepdims=keepdims), (a,), backward, "mean")

    def max(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> "Tensor":
        """d(max a)/da = 1 at the maximum, 0 elsewhere (split evenly between ties)."""
        a = self
        axes = _normalise_axes(axis, a.ndim, "max")
        m = np.max(a.data, axis=axes, keepdims=True)

        def backward(g: np.ndarray):
            if not keepdims and axes:
                g = np.expand_dims(g, axes)
            mask = (a.data == m)
            count = mask.sum(axis=axes, keepdims=True).astype(a.data.dtype)  # int64 would upcast float32
            return (mask * (g / count),)
        out = m if keepdims else np.squeeze(m, axis=axes)
        return Tensor._make(out, (a,), backward, "max")

    # ----------------------------------------------------------------- elementwise functions
    def exp(self) -> "Tensor":
        """d(e^a)/da = e^a."""
        out = np.exp(self.data)
        return Tensor._make(out, (self,), lambda g: (g * out,), "exp")

    def log(self) -> "Tensor":
        """d(log a)/da = 1/a."""
        a = self
        return Tensor._make(np.log(a.data), (a,), lambda g: (g / a.data,), "log")

    def tanh(self) -> "Tensor":
        """d(tanh a)/da = 1 - tanh(a)^2."""
        out = np.tanh(self.data)
        return Tensor._make(out, (self,), lambda g: (g * (1.0 - out * out),), "tanh")

    def sigmoid(self) -> "Tensor":
        """d(s(a))/da = s(a)(1 - s(a)); computed without overflow for large |a|."""
        out = _stable_sigmoid(self.data)
        return Tensor._make(out, (self,), lambda g: (g * out * (1.0 - out),), "sigmoid")

    def relu(self) -> "Tensor":
        """d(max(a, 0))/da = 1 where a > 0, else 0 (0 at a = 0, as in PyTorch)."""
        a = self

        def backward(g: np.ndarray):
            if _private_grad:  # nobody else holds g: mask it in place, saving an array
                np.multiply(g, a.data > 0, out=g)
                return (g,)
            return (g * (a.data > 0),)
        return Tensor._make(np.maximum(a.data, 0), (a,), backward, "relu")

    def abs(self) -> "Tensor":
        """d|a|/da = sign(a) (0 at a = 0)."""
        a = self
        return Tensor._make(np.abs(a.data), (a,), lambda g: (g * np.sign(a.data),), "abs")

    def sqrt(self) -> "Tensor":
        """d(sqrt a)/da = 1 / (2 sqrt a)."""
        out = np.sqrt(self.data)
        return Tensor._make(out, (self,), lambda g: (g / (2.0 * out),), "sqrt")

    # ----------------------------------------------------------------- shape
    def reshape(self, *shape: int | Sequence[int]) -> "Tensor":
        """Reshape; the gradient is reshaped back."""
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        a = self
        try:
            out = a.data.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} ({a.size} elements) into {tuple(shape)}") from None
        return Tensor._make(out, (a,), lambda g: (g.reshape(a.shape),), "reshape")

    def transpose(self, *axes: int) -> "Tensor":
        """Permute axes (all reversed when none are given, like numpy); the gradient is permuted back.
        PyTorch's transpose(d0, d1) swaps two axes: pass both as ``swapaxes(d0, d1)`` here."""
        if len(axes) == 1 and not isinstance(axes[0], int):
            axes = tuple(axes[0])
        perm = tuple(range(self.ndim))[::-1] if not axes else tuple(axes)
        inverse = tuple(np.argsort(perm))
        return Tensor._make(np.transpose(self.data, perm), (self,), lambda g: (np.transpose(g, inverse),), "transpose")

    def swapaxes(self, axis1: int, axis2: int) -> "Tensor":
        perm = list(range(self.ndim))
        perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
        return self.transpose(*perm)

    @property
    def T(self) -> "Tensor":
        return self.transpose()

    def __getitem__(self, index: Any) -> "Tensor":
        """Indexing and slicing; d(a[i])/da scatters the gradient back into a zero array
        (adding where an index repeats, e.g. a gather of one column per row)."""
        a = self
        if isinstance(index, Tensor):
            index = index.data.astype(np.int64)
        elif isinstance(index, tuple):
            index = tuple(i.data.astype(np.int64) if isinstance(i, Tensor) else i for i in index)
        try:
            out = a.data[index]
        except IndexError as e:
            raise IndexError(f"getitem: index {_short(index)} is invalid for a tensor of shape {a.shape}: {e}") from None
        advanced = _has_advanced(index)

        def backward(g: np.ndarray):
            full = np.zeros_like(a.data)
            if advanced:
                np.add.at(full, index, g)
            else:
                full[index] = g
            return (full,)
        # a view would change under later in-place updates of ``a`` (e.g. an optimiser step)
        out = np.array(out, copy=True) if isinstance(out, np.ndarray) and out.base is not None else np.asarray(out)
        return Tensor._make(out, (a,), backward, "getitem")


# --------------------------------------------------------------------- helpers and free functions
def _no_backward(g: np.ndarray):  # pragma: no cover - detach never records a graph
    return ()


def _grad_is_private() -> bool:
    """Inside an op's backward: whether nothing but the engine holds the incoming gradient, so the
    op may overwrite it (for ops defined outside this module, which cannot read the global)."""
    return _private_grad


def _lift(x: ArrayLike, like: Tensor) -> Tensor:
    """Turn a number or array into a constant Tensor; a Python number takes ``like``'s dtype."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float, np.number)) and not isinstance(x, bool):
        return Tensor(np.asarray(x, dtype=like.data.dtype))
    return Tensor(x)


def _broadcasting(op: str, ufunc: np.ufunc, a: Tensor, b: Tensor) -> np.ndarray:
    """``ufunc(a, b)`` on the data, with an error naming the op and both shapes when they cannot
    be broadcast together."""
    try:
        return ufunc(a.data, b.data)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together: aligned from the right, "
            "each pair of sizes must be equal or one of them 1 (a transposed operand, or a missing "
            "reshape such as b.reshape(-1, 1)?)") from None


def _normalise_axes(axis: Any, ndim: int, op: str) -> tuple[int, ...] | None:
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for ax in axes:
        if not -ndim <= ax < max(ndim, 1):
            raise ValueError(f"{op}: axis {ax} is out of range for a tensor with {ndim} dimensions")
        out.append(int(ax) % max(ndim, 1))
    return tuple(sorted(out))


def _has_advanced(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (list, np.ndarray)) for i in items)


def _short(index: Any) -> str:
    text = repr(index)
    return text if len(text) < 80 else text[:77] + "..."


def _stable_sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _topological_order(root: Tensor, include_constants: bool = False) -> list[Tensor]:
    """The nodes ``root`` depends on, each after all of its parents (iterative depth-first walk;
    parents are finished in the order the op received them). By default only nodes that need a
    gradient; ``include_constants`` adds the inputs that don't (for drawing the whole graph)."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    push = stack.append
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        push((node, True))
        for parent in reversed(node._parents):
            if (include_constants or parent.requires_grad) and id(parent) not in visited:
                push((parent, False))
    return order


def tensor(data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Like ``torch.tensor``: a new leaf Tensor."""
    return Tensor(np.array(_as_float_array(data, dtype), copy=True), requires_grad=requires_grad)


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join along an existing axis (``torch.cat``); the gradient is split back into the pieces."""
    ts = tuple(_lift(t, tensors[0]) if not isinstance(t, Tensor) else t for t in tensors)
    try:
        out = np.concatenate([t.data for t in ts], axis=axis)
    except ValueError as e:
        raise ValueError(f"concatenate: shapes {[t.shape for t in ts]} cannot be joined along axis {axis}: {e}") from None
    bounds = np.cumsum([t.shape[axis] for t in ts])[:-1]

    def backward(g: np.ndarray):
        return tuple(np.split(g, bounds, axis=axis))
    return Tensor._make(out, ts, backward, "concatenate")


cat = concatenate


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join along a new axis; the gradient is unstacked back into the pieces."""
    ts = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)
    try:
        out = np.stack([t.data for t in ts], axis=axis)
    except ValueError as e:
        raise ValueError(f"stack: shapes {[t.shape for t in ts]} must all be equal: {e}") from None

    def backward(g: np.ndarray):
        return tuple(np.moveaxis(g, axis, 0))
    return Tensor._make(out, ts, backward, "stack")


def where(condition: ArrayLike, a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise choice; the gradient goes to ``a`` where the condition holds, else to ``b``."""
    cond = np.asarray(condition.data if isinstance(condition, Tensor) else condition, dtype=bool)
    ta = a if isinstance(a, Tensor) else Tensor(a)
    tb = _lift(b, ta)

    def backward(g: np.ndarray):
        return (_unbroadcast(np.where(cond, g, 0), ta.shape) if ta.requires_grad else None,
                _unbroadcast(np.where(cond, 0, g), tb.shape) if tb.requires_grad else None)
    return Tensor._make(np.where(cond, ta.data, tb.data), (ta, tb), backward, "where")
