"""Hidden tests of chapter 00, "Computational graphs and the chain rule".

Every expected value is computed here from a closed-form formula, independently of the
chapter's code; the mistakes are the wrong answers learners plausibly give, so the grader can
name them.
"""
from __future__ import annotations

import math

import numpy as np

from course.hidden import Exercise, multiple_choice


def _sech2(r: np.ndarray) -> np.ndarray:
    """sech(r)^2 = d tanh(r)/dr, from exp(-|r|) so that it never overflows."""
    e = np.exp(-2.0 * np.abs(r))
    return 4.0 * e / (1.0 + e) ** 2


# ------------------------------------------------------------------ ch00.local_derivatives
def _nonzero(rng: np.random.Generator, shape) -> np.ndarray:
    """Values of either sign kept away from zero (b is a divisor)."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 3.0, size=shape)


def _local_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        {"a": rng.normal(size=6), "b": _nonzero(rng, 6)},
        {"a": rng.normal(size=(2, 3)), "b": _nonzero(rng, (2, 3))},             # 2-D
        {"a": rng.normal(size=1), "b": _nonzero(rng, 1)},                       # one element
        {"a": rng.normal(size=4) * 30.0, "b": _nonzero(rng, 4) * 50.0},         # large: tanh saturates
    ]


def _local_call(ns, inp):
    import numpy as np

    def _as_float_array(v):
        a = np.asarray(v)  # a float32 answer stays float32, so the grader can say so
        return a if a.dtype.kind in "fc" else np.asarray(v, dtype=np.float64)
    out = ns["local_derivatives"](inp["a"].copy(), inp["b"].copy())
    if not isinstance(out, dict):
        raise TypeError(f"local_derivatives must return a dict, it returned {type(out).__name__}")
    result = {}
    for key in ("mul_a", "mul_b", "div_a", "div_b", "tanh"):
        if key not in out:
            raise KeyError(f"local_derivatives must return a dict with the key {key!r}")
        result[key] = _as_float_array(out[key])
    return result


def _local_expected(inp):
    a, b = inp["a"], inp["b"]
    return {"mul_a": b, "mul_b": a, "div_a": 1.0 / b, "div_b": -a / b**2, "tanh": _sech2(a)}


def _local_mistake(**changes):
    def wrong(inp):
        out = _local_expected(inp)
        for key, fn in changes.items():
            out[key] = fn(inp["a"], inp["b"])
        return out
    return wrong


# ------------------------------------------------------------------ ch00.backward_by_hand
def _bbh_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        {"x": rng.normal(size=5), "y": rng.normal(size=5)},
        {"x": rng.normal(size=(3, 2)), "y": rng.normal(size=(3, 2))},           # 2-D
        {"x": rng.normal(size=1), "y": rng.normal(size=1)},                     # one element
        {"x": rng.uniform(-0.6, 0.6, size=8), "y": rng.uniform(-0.6, 0.6, size=8)},  # tanh far from saturation
        {"x": rng.normal(size=3) * 20.0, "y": rng.normal(size=3) * 20.0},       # large: tanh saturates
    ]


def _bbh_call(ns, inp):
    import numpy as np

    def _as_float_array(v):
        a = np.asarray(v)  # a float32 answer stays float32, so the grader can say so
        return a if a.dtype.kind in "fc" else np.asarray(v, dtype=np.float64)
    out = ns["backward_by_hand"](inp["x"].copy(), inp["y"].copy())
    if not isinstance(out, dict):
        raise TypeError(f"backward_by_hand must return a dict, it returned {type(out).__name__}")
    result = {}
    for key in ("g", "grad_q", "grad_x", "grad_y"):
        if key not in out:
            raise KeyError(f"backward_by_hand must return a dict with the key {key!r}")
        result[key] = _as_float_array(out[key])
    return result


def _bbh_parts(inp):
    """q, r, and dg/dr = sech(r)^2 (not the way a learner writes it)."""
    x, y = inp["x"], inp["y"]
    q = x + y
    r = x * q
    return x, y, q, r, _sech2(r)


def _bbh_expected(inp):
    # g = tanh(x^2 + xy) + x + y, differentiated symbolically:
    #   dg/dx = sech^2(r) (2x + y) + 1,  dg/dy = sech^2(r) x + 1,  dg/dq = 1 + sech^2(r) x
    x, y, q, r, s2 = _bbh_parts(inp)
    return {"g": np.tanh(x * x + x * y) + x + y, "grad_q": 1.0 + s2 * x,
            "grad_x": s2 * (2 * x + y) + 1.0, "grad_y": s2 * x + 1.0}


def _bbh_wrong_order(inp):
    # q passes its gradient (only the direct term 1) to x and y before r has added s2 * x
    x, y, q, r, s2 = _bbh_parts(inp)
    return {**_bbh_expected(inp), "grad_x": s2 * q + 1.0, "grad_y": np.ones_like(x)}


def _bbh_q_overwritten_by_r(inp):
    x, y, q, r, s2 = _bbh_parts(inp)
    gq = s2 * x
    return {**_bbh_expected(inp), "grad_q": gq, "grad_x": s2 * q + gq, "grad_y": gq}


def _bbh_q_only_direct(inp):
    x, y, q, r, s2 = _bbh_parts(inp)
    gq = np.ones_like(x)
    return {**_bbh_expected(inp), "grad_q": gq, "grad_x": s2 * q + gq, "grad_y": gq}


def _bbh_x_only_through_q(inp):
    return {**_bbh_expected(inp), "grad_x": _bbh_expected(inp)["grad_q"]}


def _bbh_x_only_through_r(inp):
    x, y, q, r, s2 = _bbh_parts(inp)
    return {**_bbh_expected(inp), "grad_x": s2 * q}


def _bbh_tanh_of_input(inp):
    # d tanh(r)/dr written as 1 - r^2
    x, y, q, r, _ = _bbh_parts(inp)
    d = 1.0 - r**2
    return {"g": np.tanh(r) + q, "grad_q": 1.0 + d * x, "grad_x": d * q + 1.0 + d * x, "grad_y": 1.0 + d * x}


# ------------------------------------------------------------------ ch00.central_difference
# The test functions, by name. The same lambdas appear in _cd_call, which runs in the sandbox and
# sees only its own source: keep the two copies identical.
_CD_FUNCTIONS = {
    "sin_x": lambda v: float(np.sum(np.sin(v) * v)),
    "coupled": lambda v: float(np.sum(v**2) * np.sum(np.cos(v))),
    "cubic": lambda v: float(np.sum(v**3) / 3.0 + v.ravel()[0] * v.ravel()[-1]),
    "fast_sin": lambda v: float(np.sum(np.sin(300.0 * v)) / 300.0),
}


def _cd_gradient(name: str, x: np.ndarray) -> np.ndarray:
    """The exact gradient of each test function."""
    if name == "sin_x":
        return np.sin(x) + x * np.cos(x)
    if name == "coupled":
        return 2 * x * np.sum(np.cos(x)) - np.sum(x**2) * np.sin(x)
    if name == "cubic":
        g = x**2
        flat = g.reshape(-1)
        flat[0] += x.ravel()[-1]
        flat[-1] += x.ravel()[0]
        return g
    raise KeyError(name)


def _cd_inputs(rng: np.random.Generator) -> list[dict]:
    return [
        {"fn": "sin_x", "x": rng.normal(size=4), "h": 1e-5, "pass_h": False},             # default h
        {"fn": "coupled", "x": rng.normal(size=(2, 3)), "h": 1e-5, "pass_h": False},      # 2-D, coupled
        {"fn": "cubic", "x": rng.normal(size=1) + 1.0, "h": 1e-5, "pass_h": False},        # one element
        {"fn": "coupled", "x": rng.normal(size=5), "h": 0.1, "pass_h": True},            # h honoured
        {"fn": "sin_x", "x": rng.normal(size=5).astype(np.float32), "h": 1e-5, "pass_h": False},  # float32
        {"fn": "cubic", "x": rng.normal(size=(3, 2)), "h": 1e-5, "pass_h": False},        # 2-D, first and last coupled
        # large values, with a function whose |f| stays moderate: the rounding error of the
        # difference, about eps * |f| / h, must stay well below atol (a cubic of 30s does not)
        {"fn": "sin_x", "x": rng.normal(size=(3, 2)) * 30.0, "h": 1e-5, "pass_h": False},
        # the third derivative is 300^2 times the first here, so the truncation error of the
        # default h = 1e-5 (1.5e-6 relative) is resolved: the answer is the formula at h = 1e-5,
        # not the derivative, and another default step (1e-6, 2e-5) differs by more than the tolerance
        {"fn": "fast_sin", "x": rng.uniform(-1.0, 1.0, size=4), "h": 1e-5, "pass_h": False, "formula": True},
    ]


def _cd_call(ns, inp):
    import numpy as np
    functions = {
        "sin_x": lambda v: float(np.sum(np.sin(v) * v)),
        "coupled": lambda v: float(np.sum(v**2) * np.sum(np.cos(v))),
        "cubic": lambda v: float(np.sum(v**3) / 3.0 + v.ravel()[0] * v.ravel()[-1]),
        "fast_sin": lambda v: float(np.sum(np.sin(300.0 * v)) / 300.0),
    }
    x = np.array(inp["x"])  # keeps float32 when the case is float32
    if inp["pass_h"]:
        grad = ns["central_difference"](functions[inp["fn"]], x, h=float(inp["h"]))
    else:
        grad = ns["central_difference"](functions[inp["fn"]], x)
    # x as it is after the call: the grader compares it with the input itself (a property measured
    # here, in the learner's process, could be forged)
    return {"grad": np.asarray(grad), "x_after": x}


def _cd_exact_difference(name: str, x: np.ndarray, h: float, dtype=np.float64, forward=False,
                         two_h=True) -> np.ndarray:
    """The finite-difference formula evaluated exactly as written (for h = 0.1 and the mistakes)."""
    f = _CD_FUNCTIONS[name]
    x = np.array(x, dtype=dtype)
    g = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += dtype(h)
        if forward:
            g[i] = (f(plus) - f(x)) / h
            continue
        minus[i] -= dtype(h)
        g[i] = (f(plus) - f(minus)) / ((2 if two_h else 1) * h)
    return g


def _cd_expected(inp):
    x64 = np.asarray(inp["x"], dtype=np.float64)
    if inp["h"] >= 1e-3 or inp.get("formula"):  # the answer is the formula itself, not the derivative
        grad = _cd_exact_difference(inp["fn"], x64, inp["h"])
    else:
        grad = _cd_gradient(inp["fn"], x64)
    return {"grad": grad, "x_after": inp["x"]}


def _cd_all_at_once(inp):
    f, x, h = _CD_FUNCTIONS[inp["fn"]], np.asarray(inp["x"], dtype=np.float64), inp["h"]
    return {"grad": np.full(x.shape, (f(x + h) - f(x - h)) / (2 * h))}


def _cd_default_h(inp):
    return {"grad": _cd_exact_difference(inp["fn"], inp["x"], 1e-5)} if inp["pass_h"] else {}


def _cd_other_default(inp):
    return {"grad": _cd_exact_difference(inp["fn"], inp["x"], 1e-6)} if inp.get("formula") else {}


# ------------------------------------------------------------------ ch00.backward
# A graph is given as data: leaves, then one node per op ("add", "mul" or "tanh") applied to the
# nodes a[k] and b[k] (b is unused by tanh); the root is the last node. The sandbox builds it from
# a Value class of its own with the chapter's interface (.data, .grad, ._prev, ._backward, ._op) and
# returns every node's .grad after the learner's backward(root). The grader rebuilds the graph
# here to compute the reference and the plausible wrong walks.


class _Node:
    def __init__(self, data, prev=(), op=""):
        self.data, self.grad, self._prev, self._op = float(data), 0.0, tuple(prev), op
        self._backward = lambda: None


def _make(op, p, q):
    if op == "add":
        out = _Node(p.data + q.data, (p, q), "+")

        def backward():
            p.grad += out.grad
            q.grad += out.grad
    elif op == "mul":
        out = _Node(p.data * q.data, (p, q), "*")

        def backward():
            p.grad += q.data * out.grad
            q.grad += p.data * out.grad
    else:
        t = math.tanh(p.data)
        out = _Node(t, (p,), "tanh")

        def backward():
            p.grad += (1.0 - t * t) * out.grad
    out._backward = backward
    return out


def _build(inp) -> list:
    nodes = [_Node(v) for v in inp["leaves"]]
    for op, i, j in zip(inp["ops"], inp["a"], inp["b"]):
        nodes.append(_make(str(op), nodes[int(i)], nodes[int(j)]))
    return nodes


def _grads(nodes) -> dict:
    return {"grad": np.array([n.grad for n in nodes], dtype=np.float64)}


def _topological(root) -> list:
    """Every node once, after all of its inputs (iterative depth-first)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            stack.extend((p, False) for p in node._prev if p not in seen)
    return order


_WALK_LIMIT = 200_000   # a wrong walk that revisits nodes per path can take exponentially long


def _bw_expected(inp):
    nodes = _build(inp)
    nodes[-1].grad = 1.0
    for node in reversed(nodes):     # creation order is a topological order
        node._backward()
    return {"raised": ""} | _grads(nodes)


_BW_EXACT = {"raised": "your backward hit Python's recursion limit on a graph 3,000 operations deep: "
                       "find the order with an explicit stack (a list you append to and pop from), "
                       "not with recursion"}


def _bw_recursive(inp):
    nodes = _build(inp)
    nodes[-1].grad = 1.0
    calls = [0]

    def rec(node):
        calls[0] += 1
        if calls[0] > _WALK_LIMIT:
            raise RuntimeError("too many paths")
        node._backward()
        for p in node._prev:
            rec(p)
    rec(nodes[-1])                   # RecursionError on the deep graph: the model then does not apply
    return _grads(nodes)


def _bw_post_order(inp):
    nodes = _build(inp)
    nodes[-1].grad = 1.0
    for node in _topological(nodes[-1]):
        node._backward()
    return _grads(nodes)


def _bw_breadth_first(inp):
    nodes = _build(inp)
    nodes[-1].grad = 1.0
    seen, queue = {nodes[-1]}, [nodes[-1]]
    while queue:
        node = queue.pop(0)
        node._backward()
        for p in node._prev:
            if p not in seen:
                seen.add(p)
                queue.append(p)
    return _grads(nodes)


def _bw_no_seed(inp):
    nodes = _build(inp)
    for node in reversed(_topological(nodes[-1])):
        node._backward()
    return _grads(nodes)


def _bw_once_per_path(inp):
    """A topological sort without a visited set: a node appears once per path to it."""
    nodes = _build(inp)
    order, stack = [], [(nodes[-1], False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            if len(order) > _WALK_LIMIT:
                raise RuntimeError("too many paths")
            continue
        stack.append((node, True))
        stack.extend((p, False) for p in node._prev)
    nodes[-1].grad = 1.0
    for node in reversed(order):
        node._backward()
    return _grads(nodes)


def _spec(leaves, ops) -> dict:
    """ops: (name, i, j) triples over the node indices (leaves first)."""
    return {"leaves": np.asarray(leaves, dtype=np.float64), "ops": np.array([o[0] for o in ops]),
            "a": np.array([o[1] for o in ops], dtype=np.int64), "b": np.array([o[2] for o in ops], dtype=np.int64)}


def _random_dag(rng, n_leaves: int, n_ops: int, window: int) -> dict:
    """Each op takes its inputs among the last `window` nodes, so that values fan out and paths
    cross; the last op joins the two newest nodes, so the root depends on most of the graph. The
    sizes keep the number of paths in the thousands (a walk that follows every path, as a
    recursive backward does, must end well within the time limit and be named, not time out)."""
    ops, n = [], n_leaves
    for _ in range(n_ops - 1):
        name = str(rng.choice(["add", "mul", "tanh"], p=[0.4, 0.35, 0.25]))
        lo = max(0, n - window)
        ops.append((name, int(rng.integers(lo, n)), int(rng.integers(lo, n))))
        n += 1
    ops.append(("mul", n - 1, n - 2))
    return _spec(rng.uniform(-1.0, 1.0, size=n_leaves), ops)


def _chain(rng, steps: int) -> dict:
    ops, prev = [], 0
    for k in range(steps):
        ops += [("tanh", prev, 0), ("add", 2 + 2 * k, 1)]
        prev = 3 + 2 * k
    return _spec([rng.uniform(-1, 1), rng.uniform(0.2, 0.8)], ops)


def _bw_inputs(rng):
    x, y = rng.uniform(-1.5, 1.5, size=2)
    return [
        # the chapter's graph at another point: x, y, a = x*y, b = tanh a, c = x + b, f = b*c
        _spec([x, y], [("mul", 0, 1), ("tanh", 2, 0), ("add", 0, 3), ("mul", 3, 4)]),
        # one value used twice by one op (micrograd PR #64): b = a + a, c = b + b, then c * c
        _spec([rng.uniform(0.5, 2.0)], [("add", 0, 0), ("add", 1, 1), ("mul", 2, 2)]),
        # a node the root does not depend on (its gradient stays 0), and a fan-out of a leaf
        _spec(rng.uniform(-1, 1, size=3), [("mul", 0, 1), ("tanh", 2, 0), ("add", 3, 0), ("mul", 5, 0)]),
        _random_dag(rng, 3, 25, window=4),
        _random_dag(rng, 4, 50, window=15),
        # 3,000 operations deep: deeper than Python's recursion limit
        _chain(rng, 1500),
    ]


def _bw_call(ns, inp):
    import math
    import numpy as np

    class Value:
        def __init__(self, data, _prev=(), op=""):
            self.data, self.grad, self._prev, self._op = float(data), 0.0, tuple(_prev), op
            self._backward = lambda: None

    def make(op, p, q):
        if op == "add":
            out = Value(p.data + q.data, (p, q), "+")

            def backward():
                p.grad += out.grad
                q.grad += out.grad
        elif op == "mul":
            out = Value(p.data * q.data, (p, q), "*")

            def backward():
                p.grad += q.data * out.grad
                q.grad += p.data * out.grad
        else:
            t = math.tanh(p.data)
            out = Value(t, (p,), "tanh")

            def backward():
                p.grad += (1.0 - t * t) * out.grad
        out._backward = backward
        return out

    nodes = [Value(v) for v in inp["leaves"]]
    for op, i, j in zip(inp["ops"], inp["a"], inp["b"]):
        nodes.append(make(str(op), nodes[int(i)], nodes[int(j)]))
    try:
        ns["backward"](nodes[-1])
        raised = ""
    except RecursionError:           # reported by name (the grader compares "raised" itself)
        raised = "RecursionError"
    return {"raised": raised, "grad": np.array([float(n.grad) for n in nodes], dtype=np.float64)}


_BW_MISTAKES = {
    "a recursive backward (each node runs _backward, then backward on its inputs, as in micrograd "
    "issues #21 and #91): a node reached along two paths passes its gradient on twice, the first "
    "time before all of its consumers have added theirs": _bw_recursive,
    "a post-order walk (each node's _backward after its inputs', micrograd issue #96): that is a "
    "topological order, not reversed, so every node passes its gradient on before its consumers "
    "have sent it anything": _bw_post_order,
    "a breadth-first walk from the output: a node can pass its gradient on before a consumer "
    "further from the output has added its term": _bw_breadth_first,
    "root.grad never set to 1.0: every gradient stays 0": _bw_no_seed,
    "a node visited once per path instead of once (a topological sort without a visited set): "
    "each repeated _backward adds its contribution again": _bw_once_per_path,
}


EXERCISES = [
    Exercise(
        id="ch00.local_derivatives", points=2, needs=("local_derivatives",),
        inputs=_local_inputs, call=_local_call, expected=_local_expected, rtol=1e-7, atol=1e-10, dtype="float64",
        mistakes={
            "the two partial derivatives of a*b swapped (d(ab)/da is b, not a)":
                _local_mistake(mul_a=lambda a, b: a, mul_b=lambda a, b: b),
            "d(a/b)/da = -1/b² (the derivative with respect to b, or a sign slip)":
                _local_mistake(div_a=lambda a, b: -1.0 / b**2),
            "d(a/b)/db without its minus sign: it is -a/b²":
                _local_mistake(div_b=lambda a, b: a / b**2),
            "d(a/b)/db = -1/b², forgetting the factor a: it is -a/b²":
                _local_mistake(div_b=lambda a, b: -1.0 / b**2),
            "d(a/b)/db = -a/b, dividing by b once instead of b²":
                _local_mistake(div_b=lambda a, b: -a / b),
            "d(tanh a)/da = 1 - a², squaring a instead of tanh(a)":
                _local_mistake(tanh=lambda a, b: 1.0 - a**2),
            "d(tanh a)/da = 1 - tanh(a), forgetting the square":
                _local_mistake(tanh=lambda a, b: 1.0 - np.tanh(a)),
            "d(tanh a)/da = tanh(a)² (the square without 1 -)":
                _local_mistake(tanh=lambda a, b: np.tanh(a) ** 2),
        }),
    Exercise(
        id="ch00.backward_by_hand", points=3, needs=("backward_by_hand",),
        inputs=_bbh_inputs, call=_bbh_call, expected=_bbh_expected, rtol=1e-7, atol=1e-10, dtype="float64",
        mistakes={
            "a wrong order: q passed on its gradient before r had added its term to it":
                _bbh_wrong_order,
            "q's gradient overwritten instead of added: only the term from r = x*q was kept":
                _bbh_q_overwritten_by_r,
            "q's gradient overwritten instead of added: only the direct term from g = t + q was kept":
                _bbh_q_only_direct,
            "x's gradient overwritten instead of added: only the path through q was kept":
                _bbh_x_only_through_q,
            "x's gradient overwritten instead of added: only the path through r = x*q was kept":
                _bbh_x_only_through_r,
            "the tanh derivative taken as 1 - r² instead of 1 - tanh(r)²":
                _bbh_tanh_of_input,
        }),
    Exercise(
        id="ch00.central_difference", points=2, needs=("central_difference",),
        inputs=_cd_inputs, call=_cd_call, expected=_cd_expected, rtol=1e-6, atol=1e-7, dtype="float64",
        mistakes={
            "the forward difference (f(x + h) - f(x)) / h instead of the central one":
                lambda inp: {"grad": _cd_exact_difference(inp["fn"], inp["x"], inp["h"], forward=True)},
            "dividing by h instead of 2h":
                lambda inp: {"grad": _cd_exact_difference(inp["fn"], inp["x"], inp["h"], two_h=False)},
            "perturbing every element at once instead of one at a time":
                _cd_all_at_once,
            "arithmetic done in float32: convert x to float64 first":
                lambda inp: ({"grad": _cd_exact_difference(inp["fn"], inp["x"], inp["h"], dtype=np.float32)}
                             if np.asarray(inp["x"]).dtype == np.float32 else {}),
            "ignoring the h argument (always using the default step)":
                _cd_default_h,
            "a default step of 1e-6 where the signature says h=1e-5":
                _cd_other_default,
        },
        exact={"x_after": "central_difference changed the caller's x (even x[i] += h then "
                          "x[i] -= h can leave it off in the last digit): work on a float64 copy, "
                          "np.array(x, dtype=np.float64)"}),
    Exercise(
        id="ch00.backward", points=3, needs=("backward",),
        inputs=_bw_inputs, call=_bw_call, expected=_bw_expected, rtol=1e-9, atol=1e-12,
        mistakes=_BW_MISTAKES, exact=_BW_EXACT),
    multiple_choice(
        "ch00.answer_order", 1, "ANSWER_ORDER", "b", "abcd",
        wrong={"a": "(a) is what the forward pass guarantees, not the reverse pass",
               "c": "(c) leaves are reached last, but most nodes are not leaves",
               "d": "(d) following every path separately is what the order avoids (exponentially many paths)"}),
]
