"""nnlib.graph: look at the computational graph behind a Tensor.

``graph_nodes(root)`` lists every node that ``root`` was computed from, each after all of its
inputs (a topological order, the order of the forward pass). ``retain_all_grads(root)`` asks every
intermediate node to keep its gradient, so that after ``root.backward()`` each node's ``.grad``
holds d(root)/d(node). ``draw_graph(root)`` draws the graph with matplotlib alone: one box per
node (its op or name, its value and its gradient), inputs on the left, the output on the right.

Only ``draw_graph`` needs matplotlib, and imports it when called.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .tensor import Tensor, _topological_order

# box colours: an input that needs a gradient, a constant, an operation, the output
_COLOURS = {"input": "#dbe9f6", "constant": "#eeeeee", "op": "#fdf3d0", "output": "#d9f0d3"}


def graph_nodes(root: Tensor) -> list[Tensor]:
    """Every node ``root`` was computed from, ``root`` included, each after all of its parents.

    The walk is iterative (no recursion limit) and deterministic: parents are visited in the
    order the op received them. Constants that entered an op (``x * 2``) are included; they are
    leaves with ``requires_grad=False``. A node reached along two paths appears once.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"graph_nodes: expected a Tensor, got {type(root).__name__}")
    return _topological_order(root, include_constants=True)


def retain_all_grads(root: Tensor) -> Tensor:
    """Call ``retain_grad()`` on every node of the graph that requires a gradient; return ``root``.

    After ``root.backward()``, every such node's ``.grad`` is d(root)/d(node) (leaves keep theirs
    anyway; intermediates normally do not, as in PyTorch).
    """
    for node in graph_nodes(root):
        if node.requires_grad:
            node.retain_grad()
    return root


def graph_layers(root: Tensor) -> list[list[Tensor]]:
    """The nodes grouped by depth, inputs first: an op sits one layer to the right of its deepest
    input and a leaf one layer to the left of its first use, so every edge points to the right."""
    nodes = graph_nodes(root)
    depth: dict[int, int] = {}
    for node in nodes:  # topological order: parents' depths are known
        depth[id(node)] = 1 + max((depth[id(p)] for p in node.parents), default=-1)
    # a leaf used only late in the graph (a constant, a bias) sits just left of its first use
    first_use: dict[int, int] = {}
    for node in nodes:
        for p in node.parents:
            first_use[id(p)] = min(first_use.get(id(p), depth[id(node)]), depth[id(node)])
    for node in nodes:
        if not node.parents and id(node) in first_use:
            depth[id(node)] = first_use[id(node)] - 1
    layers: list[list[Tensor]] = [[] for _ in range(max(depth.values()) + 1)]
    for node in nodes:
        layers[depth[id(node)]].append(node)
    return layers


def _format_number(x: float, precision: int) -> str:
    if float(x).is_integer() and abs(x) < 10 ** precision:
        return str(int(x))
    return f"{x:#.{precision}g}"  # '#' keeps trailing zeros: 0.460 beside -0.635, not 0.46


def format_array(a: np.ndarray | None, precision: int = 3, max_items: int = 4) -> str:
    """A compact rendering for a node label: ``0.25``, ``[1, -2, 0.5]`` or ``(3, 4) mean 0.12``."""
    if a is None:
        return "-"
    a = np.asarray(a)
    if a.size == 1:
        return _format_number(float(a.reshape(())), precision)
    if a.ndim == 1 and a.size <= max_items:
        return "[" + ", ".join(_format_number(float(v), precision) for v in a) + "]"
    shape = "(" + ", ".join(str(n) for n in a.shape) + (",)" if a.ndim == 1 else ")")
    return f"{shape} mean {_format_number(float(a.mean()), precision)}" if a.size else f"{shape} empty"


def _label(node: Tensor, root: Tensor, show_value: bool, show_grad: bool, precision: int) -> str:
    if node.parents:
        title = f"{node.name} = {node.op}" if node.name else node.op
    elif node.name:
        title = node.name
    else:
        title = "input" if node.requires_grad else "const"
    lines = [title]
    if show_value:
        lines.append(f"value {format_array(node.data, precision)}")
    if show_grad and node.requires_grad:
        lines.append(f"grad {format_array(node.grad, precision)}")
    return "\n".join(lines)


def _kind(node: Tensor, root: Tensor) -> str:
    if node is root:
        return "output"
    if node.parents:
        return "op"
    return "input" if node.requires_grad else "constant"


def _order_layers(layers: list[list[Tensor]], sweeps: int = 2) -> dict[int, float]:
    """Order each layer to keep edges short (a few barycentre sweeps, the classic heuristic for
    layered graphs); return each node's rank in its layer, centred on 0."""
    rank: dict[int, float] = {}
    for layer in layers:
        for i, node in enumerate(layer):
            rank[id(node)] = i - (len(layer) - 1) / 2
    children: dict[int, list[Tensor]] = {}
    for layer in layers:
        for node in layer:
            for p in node.parents:
                children.setdefault(id(p), []).append(node)

    def reorder(layer: list[Tensor], neighbours) -> list[Tensor]:
        def key(item: tuple[int, Tensor]) -> tuple[float, int]:
            i, node = item
            ys = [rank[id(n)] for n in neighbours(node)]
            return (float(np.mean(ys)) if ys else rank[id(node)], i)
        new = [node for _, node in sorted(enumerate(layer), key=key)]
        for i, node in enumerate(new):
            rank[id(node)] = i - (len(new) - 1) / 2
        return new

    for _ in range(sweeps):
        for k in range(1, len(layers)):
            layers[k] = reorder(layers[k], lambda n: n.parents)
        for k in range(len(layers) - 2, -1, -1):
            layers[k] = reorder(layers[k], lambda n: children.get(id(n), []))
    return rank


def draw_graph(root: Tensor, ax: Any = None, *, show_grad: bool = True, show_value: bool = True,
               precision: int = 3, fontsize: float = 9, title: str | None = None) -> Any:
    """Draw the computational graph that produced ``root``; return the matplotlib Axes.

    Inputs are on the left, ``root`` on the right, each node one column to the right of its
    deepest input. A box shows the node's op (or its ``name``), its value and, for nodes that
    require a gradient, its ``.grad`` ("-" until backward has filled it; call
    ``retain_all_grads(root)`` before ``root.backward()`` to see the intermediates' gradients).
    Colours: blue inputs, grey constants, yellow operations, green output. An arrow goes from
    each input of an op to the op, landing spread down its left edge; a value used twice (by two
    ops, or twice by one, as in ``x * x``) has two arrows leaving it. Without
    ``ax``, the figure is sized to fit the labels (readable up to about 20 nodes).
    """
    import matplotlib.pyplot as plt

    layers = graph_layers(root)
    rank = _order_layers(layers)
    labels = {id(n): _label(n, root, show_value, show_grad, precision) for layer in layers for n in layer}
    # lay out in inches: a monospace character is about 0.6 em wide, a line about 1.25 em high
    em = fontsize / 72
    widths = [max(len(line) for n in layer for line in labels[id(n)].split("\n")) * 0.6 * em + 1.0 * em
              for layer in layers]
    row = max(len(labels[id(n)].split("\n")) for layer in layers for n in layer) * 1.25 * em + 0.8 * em
    gap_x, gap_y = 0.45 + 0.1 * max(len(layer) for layer in layers), 0.3
    xs = np.cumsum([0.0] + [w / 2 + gap_x + w_next / 2 for w, w_next in zip(widths, widths[1:])])
    column = {id(n): k for k, layer in enumerate(layers) for n in layer}
    pos = {id(n): (float(xs[k]), -rank[id(n)] * (row + gap_y)) for k, layer in enumerate(layers) for n in layer}
    top = max(len(layer) for layer in layers) * (row + gap_y) / 2
    edges = []  # (parent, child, bend of the arc, where on the child's left edge the arrow lands)
    for layer in layers:
        for node in layer:
            # one arrow per input, x * x included (two arrows: the value is used twice); the
            # arrows land spread down the left edge, the topmost input highest
            ins = sorted(enumerate(node.parents), key=lambda item: (-pos[id(item[1])][1], item[0]))
            for slot, (_, p) in enumerate(ins):
                land = 0.5 if len(ins) == 1 else 0.8 - 0.6 * slot / (len(ins) - 1)
                k0, k1 = column[id(p)], column[id(node)]
                bend = 0.0
                if k1 - k0 > 1:  # skips a column: arc around the boxes in between
                    (x0, y0), (x1, y1) = pos[id(p)], pos[id(node)]
                    span = x1 - x0 - (widths[k0] + widths[k1]) / 2
                    up = y0 + y1 > 0  # upper half bows up, the rest bows down
                    bend = min((row + 0.25) / span, 0.6) * (-1 if up else 1)
                    top = max(top, abs(y0 + y1) / 2 + abs(bend) * span / 2 + 0.1)
                elif sum(q is p for q in node.parents) > 1:  # the same input twice: two arcs
                    bend = 0.25 if land > 0.5 else -0.25
                edges.append((p, node, bend, land))
    x_lim = (-widths[0] / 2 - 0.08, float(xs[-1]) + widths[-1] / 2 + 0.08)
    if ax is None:
        head = 0.35 if title else 0.0
        fig = plt.figure(figsize=(x_lim[1] - x_lim[0], 2 * top + head))
        ax = fig.add_axes((0.0, 0.0, 1.0, 2 * top / (2 * top + head)))
    boxes: dict[int, Any] = {}
    for layer in layers:
        for node in layer:
            x, y = pos[id(node)]
            boxes[id(node)] = ax.text(
                x, y, labels[id(node)], ha="center", va="center", fontsize=fontsize, family="monospace",
                zorder=3, bbox=dict(boxstyle="round,pad=0.4", fc=_COLOURS[_kind(node, root)], ec="#555555", lw=0.8))
    for p, node, bend, land in edges:
        ax.annotate("", xy=(0.0, land), xycoords=boxes[id(node)], xytext=(1.0, 0.5),
                    textcoords=boxes[id(p)], zorder=2,
                    arrowprops=dict(arrowstyle="-|>", color="#555555", lw=0.9, shrinkA=1, shrinkB=1,
                                    mutation_scale=12, connectionstyle=f"arc3,rad={bend:.3f}"))
    ax.set_xlim(*x_lim)
    ax.set_ylim(-top, top)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=fontsize + 1)
    return ax
