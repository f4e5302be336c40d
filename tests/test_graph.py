"""nnlib.graph: the topological order, the layout layers, retained gradients and the drawing."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nnlib import Tensor  # noqa: E402
from nnlib.graph import draw_graph, format_array, graph_layers, graph_nodes, retain_all_grads  # noqa: E402


def fan_out_graph(x0: float = 0.5, y0: float = -1.5):
    """f = b * c with a = x*y, b = tanh(a), c = x + b: x and b are each used twice."""
    x = Tensor(x0, requires_grad=True, name="x")
    y = Tensor(y0, requires_grad=True, name="y")
    a = x * y
    b = a.tanh()
    c = x + b
    f = b * c
    for t, n in ((a, "a"), (b, "b"), (c, "c"), (f, "f")):
        t.name = n
    return x, y, a, b, c, f


def test_graph_nodes_is_a_topological_order():
    x, y, a, b, c, f = fan_out_graph()
    order = graph_nodes(f)
    assert [n.name for n in order] == ["x", "y", "a", "b", "c", "f"]
    where = {id(n): i for i, n in enumerate(order)}
    for n in order:
        for p in n.parents:
            assert where[id(p)] < where[id(n)]
    assert order[-1] is f and len(order) == len({id(n) for n in order})


def test_graph_nodes_includes_constants_and_handles_deep_graphs():
    x = Tensor(1.0, requires_grad=True)
    out = x * 2.0
    nodes = graph_nodes(out)
    assert len(nodes) == 3 and sum(not n.requires_grad for n in nodes) == 1
    deep = x
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = deep + 1.0
    assert len(graph_nodes(deep)) == 1 + 2 * 5000


def test_graph_layers_point_every_edge_to_the_right():
    x, y, a, b, c, f = fan_out_graph()
    layers = graph_layers(f)
    names = [[n.name for n in layer] for layer in layers]
    assert names == [["x", "y"], ["a"], ["b"], ["c"], ["f"]]
    const = Tensor(3.0)
    g = (f * const).tanh()
    depth = {id(n): k for k, layer in enumerate(graph_layers(g)) for n in layer}
    assert depth[id(const)] == depth[id(f)]  # a constant sits just left of its first use
    for n in graph_nodes(g):
        for p in n.parents:
            assert depth[id(p)] < depth[id(n)]


def test_retain_all_grads_gives_every_node_its_hand_computed_gradient():
    x, y, a, b, c, f = fan_out_graph(0.5, -1.5)
    retain_all_grads(f)
    f.backward()
    tb = np.tanh(0.5 * -1.5)
    cv = 0.5 + tb
    want = {"f": 1.0, "c": tb, "b": cv + tb}          # b feeds f directly and through c
    want["a"] = want["b"] * (1 - tb ** 2)
    want["x"] = want["a"] * -1.5 + want["c"]            # x feeds a and c
    want["y"] = want["a"] * 0.5
    for node in (x, y, a, b, c, f):
        assert node.grad is not None, node.name
        np.testing.assert_allclose(node.grad, want[node.name], rtol=1e-12, err_msg=node.name)


def test_draw_graph_returns_axes_with_one_box_per_node():
    x, y, a, b, c, f = fan_out_graph()
    retain_all_grads(f)
    f.backward()
    ax = draw_graph(f, title="fan-out")
    assert isinstance(ax, matplotlib.axes.Axes)
    texts = [t.get_text() for t in ax.texts if t.get_text()]
    assert len(texts) == 6
    assert any(t.startswith("b = tanh") and "grad" in t for t in texts)
    ax.figure.canvas.draw()  # arrows anchored to the boxes must lay out without error
    plt.close(ax.figure)


def test_draw_graph_on_a_given_axes_with_arrays_and_no_grad_yet():
    rng = np.random.default_rng(0)
    W = Tensor(rng.normal(size=(3, 4)), requires_grad=True, name="W")
    v = Tensor(rng.normal(size=4), requires_grad=True, name="v")
    h = (W @ v).tanh()
    loss = (h * h).sum() + (h * 2.0).mean()
    fig, ax = plt.subplots()
    assert draw_graph(loss, ax, show_grad=True) is ax
    texts = [t.get_text() for t in ax.texts if t.get_text()]
    assert any("(3, 4) mean" in t for t in texts) and any("grad -" in t for t in texts)
    fig.canvas.draw()
    plt.close(fig)


@pytest.mark.parametrize("value, text", [(0.25, "0.250"), (-0.46, "-0.460"), (-0.0, "0"), (np.array([1.0, -2.0]), "[1, -2]"),
                                         (np.zeros((3, 4)), "(3, 4) mean 0"), (None, "-")])
def test_format_array(value, text):
    assert format_array(value) == text


def test_draw_graph_of_a_single_leaf_and_of_a_twenty_node_graph():
    leaf = Tensor([1.0, 2.0], requires_grad=True, name="w")
    ax = draw_graph(leaf)
    assert [t.get_text() for t in ax.texts if t.get_text()] == ["w\nvalue [1, 2]\ngrad -"]
    plt.close(ax.figure)
    u = Tensor(0.3, requires_grad=True, name="u")
    out = u
    for _ in range(6):
        out = (out * u).tanh() + out  # three new nodes per step, u fans out to every step
    retain_all_grads(out)
    out.backward()
    assert len(graph_nodes(out)) == 19
    ax = draw_graph(out)
    ax.figure.canvas.draw()
    plt.close(ax.figure)
