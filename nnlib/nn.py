"""nnlib.nn: modules with parameters, as in ``torch.nn``.

A Module finds its parameters by looking at its attributes (Parameters, sub-Modules, and lists or
tuples of them), in the order they were assigned. ``parameters()`` returns a list (PyTorch returns
a generator; a list can be reused and measured).
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, Sequence

import numpy as np

from . import functional as F
from . import init
from .tensor import Tensor, _grad_is_private, _unbroadcast, stack


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimiser updates (requires_grad=True by default)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None, name: str | None = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, name=name)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class: subclasses set Parameters and sub-Modules as attributes and define forward."""

    training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _children(self) -> Iterator[tuple[str, object]]:
        for name, value in vars(self).items():
            if isinstance(value, (Parameter, Module)):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, (Parameter, Module)):
                        yield f"{name}.{i}" if name != "_layers" else str(i), item

    def named_parameters(self, prefix: str = "") -> list[tuple[str, Parameter]]:
        out: list[tuple[str, Parameter]] = []
        seen: set[int] = set()
        for name, p in self._walk(prefix):
            if id(p) not in seen:
                seen.add(id(p))
                out.append((name, p))
        return out

    def _walk(self, prefix: str) -> Iterator[tuple[str, Parameter]]:
        for name, value in self._children():
            if isinstance(value, Parameter):
                yield prefix + name, value
            else:
                yield from value._walk(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def modules(self) -> list["Module"]:
        out: list[Module] = [self]
        for _, value in self._children():
            if isinstance(value, Module):
                out.extend(value.modules())
        return out

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter's values, by name."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        params = dict(self.named_parameters())
        missing = set(params) - set(state)
        unexpected = set(state) - set(params)
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise ValueError(f"load_state_dict: {name} has shape {p.shape}, the state has {value.shape}")
            p.data[...] = value

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def __repr__(self) -> str:
        inner = [f"  ({name}): {value!r}".replace("\n", "\n  ")
                 for name, value in self._children() if isinstance(value, Module)]
        extra = self.extra_repr()
        if not inner:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}({extra}\n" + "\n".join(inner) + "\n)"

    def extra_repr(self) -> str:
        return ""


# ------------------------------------------------------------------------- layers
WeightInit = "str | Callable[[Tensor, np.random.Generator], object] | None"

_INITS: dict[str, Callable] = {
    "xavier_uniform": lambda w, rng: init.xavier_uniform_(w, rng=rng),
    "xavier_normal": lambda w, rng: init.xavier_normal_(w, rng=rng),
    "glorot": lambda w, rng: init.xavier_uniform_(w, rng=rng),
    "kaiming_uniform": lambda w, rng: init.kaiming_uniform_(w, rng=rng),
    "kaiming_normal": lambda w, rng: init.kaiming_normal_(w, rng=rng),
    "he": lambda w, rng: init.kaiming_normal_(w, rng=rng),
    "zeros": lambda w, rng: init.zeros_(w),
}


class Linear(Module):
    """y = x W^T + b with W of shape (out_features, in_features), as ``torch.nn.Linear``.

    Default initialisation as PyTorch's: W and b ~ U(-1/sqrt(in), 1/sqrt(in)). ``weight_init``
    picks another for W ('xavier_uniform', 'xavier_normal', 'kaiming_uniform', 'kaiming_normal'
    (= 'he'), 'zeros', or a function (weight, rng)); biases then start at zero.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, rng=None,
                 weight_init=None, dtype=np.float64) -> None:
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear: in_features and out_features must be positive, got {in_features}, {out_features}")
        g = init.as_generator(rng)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype), name="weight")
        self.bias = Parameter(np.zeros(out_features, dtype=dtype), name="bias") if bias else None
        bound = 1.0 / math.sqrt(in_features)
        if weight_init is None:
            init.uniform_(self.weight, -bound, bound, g)
            if self.bias is not None:
                init.uniform_(self.bias, -bound, bound, g)
        else:
            fn = _INITS.get(weight_init) if isinstance(weight_init, str) else weight_init
            if fn is None:
                raise ValueError(f"Linear: unknown weight_init {weight_init!r}; choose from {sorted(_INITS)} or pass a function")
            fn(self.weight, g)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """Modules applied in order; ``model[i]`` is the i-th, ``len(model)`` their number."""

    def __init__(self, *layers: Module) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self._layers = list(layers)

    def forward(self, x):
        for layer in self._layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return self._layers[i]

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self):
        return iter(self._layers)


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


_ACTIVATIONS: dict[str, type[Module]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "identity": Identity, "linear": Identity}


def get_activation(name: str) -> Module:
    """An activation module by name: 'relu', 'tanh', 'sigmoid' or 'identity'."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def MLP(sizes: Sequence[int], activation: str = "relu", *, rng=None, weight_init=None,
        dtype=np.float64, final_activation: str | None = None) -> Sequential:
    """A multilayer perceptron: Linear(sizes[0], sizes[1]), act, ..., Linear(sizes[-2], sizes[-1]).
    No activation after the last layer (logits) unless ``final_activation`` names one."""
    if len(sizes) < 2:
        raise ValueError(f"MLP: sizes needs at least an input and an output size, got {list(sizes)}")
    g = init.as_generator(rng)
    layers: list[Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(n_in, n_out, rng=g, weight_init=weight_init, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(get_activation(activation))
    if final_activation is not None:
        layers.append(get_activation(final_activation))
    return Sequential(*layers)


class ResidualBlock(Module):
    """y = x + f(x) with f = Linear(dim, hidden) -> activation -> Linear(hidden, dim).

    The add node passes dL/dy unchanged to x and into f: dL/dx = dL/dy (I + df/dx).
    """

    def __init__(self, dim: int, hidden: int | None = None, activation: str = "relu", *, rng=None,
                 weight_init=None, dtype=np.float64) -> None:
        g = init.as_generator(rng)
        hidden = hidden or dim
        self.f = Sequential(Linear(dim, hidden, rng=g, weight_init=weight_init, dtype=dtype),
                            get_activation(activation),
                            Linear(hidden, dim, rng=g, weight_init=weight_init, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)


class RNNCell(Module):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), as ``torch.nn.RNNCell`` (same names, same
    default init U(-1/sqrt(hidden), 1/sqrt(hidden)))."""

    def __init__(self, input_size: int, hidden_size: int, *, rng=None, dtype=np.float64) -> None:
        g = init.as_generator(rng)
        k = 1.0 / math.sqrt(hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = init.uniform_(Parameter(np.empty((hidden_size, input_size), dtype=dtype), name="weight_ih"), -k, k, g)
        self.weight_hh = init.uniform_(Parameter(np.empty((hidden_size, hidden_size), dtype=dtype), name="weight_hh"), -k, k, g)
        self.bias_ih = init.uniform_(Parameter(np.empty(hidden_size, dtype=dtype), name="bias_ih"), -k, k, g)
        self.bias_hh = init.uniform_(Parameter(np.empty(hidden_size, dtype=dtype), name="bias_hh"), -k, k, g)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x, dtype=self.weight_ih.dtype)
        pre = F.linear(x, self.weight_ih, self.bias_ih)
        if h is not None:
            pre = pre + F.linear(h, self.weight_hh, self.bias_hh)
        else:
            pre = pre + self.bias_hh
        return pre.tanh()

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNN(Module):
    """A tanh RNN unrolled over a sequence, with optional truncated backpropagation through time.

    ``forward(x, h0=None, truncate=None)`` takes x of shape (T, N, input) — or (N, T, input) with
    ``batch_first=True`` — and returns (outputs, h_T) with outputs of shape (T, N, hidden) (or
    batch first). ``truncate=k`` detaches the hidden state every k steps, counted back from the
    last step, so the gradient of a loss at step t flows back through at most k cell applications
    (exactly k for the last step, between 1 and k for earlier ones); ``truncate=1`` is the
    "update after every step" scheme. ``None`` is full BPTT.

    The whole sequence is one node of the graph (op ``rnn_tanh``, see ``_rnn_tanh``): it computes
    what unrolling ``self.cell`` step by step computes (the graph chapter 11 draws), with the input
    projection of all steps in one matrix product and the weight gradients of all steps in one
    product each. A cell whose ``forward`` is not ``RNNCell.forward`` (a subclass) is unrolled.
    """

    def __init__(self, input_size: int, hidden_size: int, *, batch_first: bool = False, rng=None,
                 dtype=np.float64) -> None:
        self.cell = RNNCell(input_size, hidden_size, rng=rng, dtype=dtype)
        self.batch_first = batch_first

    def forward(self, x, h0: Tensor | None = None, truncate: int | None = None) -> tuple[Tensor, Tensor]:
        if truncate is not None and truncate < 1:
            raise ValueError(f"RNN: truncate must be a positive number of steps or None, got {truncate}")
        X = x.data if isinstance(x, Tensor) else np.asarray(x, dtype=self.cell.weight_ih.dtype)
        if X.ndim != 3 or X.shape[2] != self.cell.input_size:
            layout = "(N, T, input)" if self.batch_first else "(T, N, input)"
            raise ValueError(f"RNN: expected input of shape {layout} with input={self.cell.input_size}, got {X.shape}")
        h = h0 if h0 is None or isinstance(h0, Tensor) else Tensor(h0, dtype=self.cell.weight_ih.dtype)
        if type(self.cell).forward is RNNCell.forward:
            x = x if isinstance(x, Tensor) else Tensor(X)
            outputs = _rnn_tanh(x, h, self.cell, truncate, self.batch_first)
            return outputs, (outputs[:, -1] if self.batch_first else outputs[-1])
        return self._unrolled(x, X, h, truncate)

    def _unrolled(self, x, X: np.ndarray, h: Tensor | None, truncate: int | None) -> tuple[Tensor, Tensor]:
        """The step-by-step graph: one cell application (about ten nodes) per step."""
        steps = X.shape[1] if self.batch_first else X.shape[0]
        x_needs_grad = isinstance(x, Tensor) and x.requires_grad
        hs = []
        for t in range(steps):
            if truncate is not None and h is not None and (steps - t) % truncate == 0:
                h = h.detach()
            if x_needs_grad:
                xt = x[:, t] if self.batch_first else x[t]
            else:
                xt = Tensor(X[:, t] if self.batch_first else X[t])
            h = self.cell(xt, h)
            hs.append(h)
        return stack(hs, axis=1 if self.batch_first else 0), h


def _rnn_tanh(x: Tensor, h0: Tensor | None, cell: RNNCell, truncate, batch_first: bool) -> Tensor:
    """All steps of h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) as one node.

    Forward: the input projection of every step in one product, then the recurrence in numpy
    (each h_t overwrites its step's projection: one array of the outputs' size in all).
    Backward, once back through time: dA_t = (dL/dh_t + dA_{t+1} W_hh) * (1 - h_t^2), where the
    term from step t+1 is left out where truncation detached h_t (as ``h.detach()`` in the
    unrolled loop does); then dL/dW_ih = dA^T X, dL/dW_hh = sum_t dA_t^T h_{t-1} (one product over
    the stacked steps), dL/db_ih = dL/db_hh = dA summed over steps and batch, dL/dx_t = dA_t W_ih,
    dL/dh0 = dA_1 W_hh (unless detached). dA overwrites the incoming gradient when nothing else
    holds it (as relu's backward does)."""
    W_ih, W_hh, b_ih, b_hh = cell.weight_ih.data, cell.weight_hh.data, cell.bias_ih.data, cell.bias_hh.data
    X = x.data
    if batch_first:
        X = np.ascontiguousarray(X.swapaxes(0, 1))      # time-major inside
    T, N, I = X.shape
    H = W_hh.shape[0]
    if T == 0:
        raise ValueError(f"RNN: the input of shape {x.shape} has no time steps; need at least one")
    H0 = None
    if h0 is not None:
        H0 = h0.data
        try:
            fits = np.broadcast_shapes(H0.shape, (N, H)) == (N, H)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"RNN: h0 of shape {H0.shape} does not fit the hidden state of shape (N, hidden) = {(N, H)}")
    # the dtype the unrolled cells produce (W_hh only enters when some step has a previous state)
    dtype = np.result_type(X, W_ih, b_ih, b_hh, *((W_hh,) if T > 1 or H0 is not None else ()),
                           *((H0,) if H0 is not None else ()))
    cut = [truncate is not None and (T - t) % truncate == 0 for t in range(T)]  # h_{t-1} detached at step t
    Y = np.empty((T, N, H), dtype=dtype)
    np.matmul(X.reshape(T * N, I), W_ih.T, out=Y.reshape(T * N, H))
    Y += b_ih + b_hh
    Whh_T, tanh = W_hh.T, np.tanh
    if H0 is not None:
        Y[0] += H0 @ Whh_T            # h0 may be one row for the whole batch
    tanh(Y[0], out=Y[0])
    for t in range(1, T):
        a = Y[t - 1] @ Whh_T
        a += Y[t]
        tanh(a, out=Y[t])
    h0_grad = H0 is not None and h0.requires_grad and not cut[0]
    parents = (x, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh) + ((h0,) if H0 is not None else ())

    def backward(g: np.ndarray):
        G = g.swapaxes(0, 1) if batch_first else g
        mul, sub = np.multiply, np.subtract
        if (_grad_is_private() and not batch_first and type(g) is np.ndarray and g.dtype == Y.dtype
                and g.flags.c_contiguous and g.flags.writeable):
            dA, D = g, None           # nobody else holds g: dA overwrites it step by step
        else:
            # 1 - h_t^2 for all steps, overwritten step by step with dA
            dA = D = np.multiply(Y, Y, dtype=np.result_type(g.dtype, Y.dtype))
            sub(1, D, out=D)
        carry = None                  # dL/dh_t through step t+1
        for t in range(T - 1, -1, -1):
            if D is None:
                d = Y[t] * Y[t]
                sub(1, d, out=d)
            else:
                d = D[t]
            if carry is None:
                mul(G[t], d, out=dA[t])
            else:
                carry += G[t]
                mul(carry, d, out=dA[t])
            carry = dA[t] @ W_hh if t and not cut[t] else None
        dA2 = dA.reshape(T * N, H)
        gx = gwih = gwhh = gb = None
        if x.requires_grad:
            gx = np.empty((T, N, I), dtype=np.result_type(dA, W_ih))
            np.matmul(dA2, W_ih, out=gx.reshape(T * N, I))
            if batch_first:
                gx = gx.swapaxes(0, 1)
        if cell.weight_ih.requires_grad:
            gwih = dA2.T @ X.reshape(T * N, I)
        if cell.weight_hh.requires_grad and (T > 1 or H0 is not None):  # else W_hh was never used
            gwhh = dA[1:].reshape(-1, H).T @ Y[:-1].reshape(-1, H) if T > 1 else None
            if H0 is not None:
                g0 = dA[0].T @ np.broadcast_to(H0, (N, H))
                gwhh = g0 if gwhh is None else gwhh.__iadd__(g0)
        if cell.bias_ih.requires_grad or cell.bias_hh.requires_grad:
            gb = dA2.sum(axis=0)
        grads = (gx, gwih, gwhh, gb, None if gb is None else gb.copy())
        if H0 is None:
            return grads
        return grads + (_unbroadcast(dA[0] @ W_hh, H0.shape) if h0_grad else None,)

    out = Y.swapaxes(0, 1).copy() if batch_first else Y
    return Tensor._make(out, parents, backward, "rnn_tanh")
