"""Tests of nnlib.gradfree: convergence on known minima, honest budgets, reproducibility.

Budgets and tolerances were chosen from what each method measurably does (its spread over
seeds 0-9 at the given budget, with margin), not by searching for a seed that passes. The
runs below use seed 0 throughout.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlib import gradfree as G

CENTRE = np.array([1.0, -2.0, 0.5])
WEIGHTS = np.array([1.0, 3.0, 0.5])


def quadratic(x: np.ndarray) -> float:
    """A 3-D ill-conditioned (1 : 6) quadratic bowl with its minimum 0 at CENTRE."""
    return float(np.sum(WEIGHTS * (x - CENTRE) ** 2))


def rosenbrock(x: np.ndarray) -> float:
    """2-D Rosenbrock, minimum 0 at (1, 1)."""
    return float((1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2)


ROSEN_START = np.array([-1.2, 1.0])
START = np.zeros(3)  # for the quadratic

# method name -> (options, budget, tolerance on |x - x*|) for the 3-D quadratic from x0 = 0
QUADRATIC_CASES = {
    "nelder_mead": ({}, 2_000, 1e-8),
    "simulated_annealing": ({}, 2_000, 0.05),
    "genetic_algorithm": ({}, 2_000, 0.06),
    "evolution_strategies": ({"population_size": 10, "learning_rate": 0.05}, 2_000, 0.01),
    # first step sized to about a quarter of the distance to go
    "spsa": ({"initial_step": 0.5}, 2_000, 1e-4),
    "finite_difference_descent": ({"learning_rate": 0.1}, 2_000, 1e-8),
}

# the same for 2-D Rosenbrock from (-1.2, 1): its curved valley is slow for most of them
ROSENBROCK_CASES = {
    "nelder_mead": ({}, 1_000, 1e-6),
    # T0 = 1: accept uphill moves of about f's size near the valley floor at first
    "simulated_annealing": ({"initial_temperature": 1.0}, 20_000, 0.02),
    "genetic_algorithm": ({}, 20_000, 0.05),
    "evolution_strategies": (
        {"population_size": 10, "learning_rate": 0.05, "sigma": 0.05}, 20_000, 0.05,
    ),
    # SPSA's one-sample gradient is poor along the valley: it needs a large budget
    "spsa": ({"c": 0.01, "initial_step": 0.2}, 100_000, 0.02),
    "finite_difference_descent": ({"learning_rate": 1e-3, "momentum": 0.9}, 10_000, 1e-3),
}

STOCHASTIC = ["simulated_annealing", "genetic_algorithm", "evolution_strategies", "spsa"]


class Counted:
    """Wraps f and counts its calls, independently of the optimiser's own count."""

    def __init__(self, f):
        self.f = f
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return self.f(x)


def check_result(result: G.OptimizeResult, f, name: str) -> None:
    assert result.method == name
    assert result.x.dtype == np.float64
    assert result.fun == f(result.x)  # fun is a value f really returned, for x
    h = result.history
    assert h.ndim == 2 and h.shape[1] == 3 and len(h) >= 2
    assert np.all(np.diff(h[:, 0]) >= 0)  # evaluations
    assert np.all(np.diff(h[:, 1]) >= 0)  # seconds
    assert np.all(np.diff(h[:, 2]) <= 0)  # best so far
    assert h[-1, 0] == result.evaluations
    assert h[-1, 2] == result.fun


@pytest.mark.parametrize("name", list(QUADRATIC_CASES))
def test_reaches_minimum_of_quadratic(name):
    options, budget, tol = QUADRATIC_CASES[name]
    f = Counted(quadratic)
    result = G.METHODS[name](f, np.zeros(3), budget=budget, seed=0, **options)
    assert f.calls == result.evaluations <= budget
    distance = np.linalg.norm(result.x - CENTRE)
    assert distance < tol, f"{name}: |x - x*| = {distance:.3g} after {result.evaluations} evaluations"
    check_result(result, quadratic, name)


@pytest.mark.parametrize("name", list(ROSENBROCK_CASES))
def test_gets_close_on_rosenbrock(name):
    options, budget, tol = ROSENBROCK_CASES[name]
    f = Counted(rosenbrock)
    result = G.METHODS[name](f, ROSEN_START, budget=budget, seed=0, **options)
    assert f.calls == result.evaluations <= budget
    distance = np.linalg.norm(result.x - 1.0)
    assert distance < tol, f"{name}: |x - (1, 1)| = {distance:.3g} after {result.evaluations} evaluations"
    check_result(result, rosenbrock, name)


@pytest.mark.parametrize("name", list(G.METHODS))
@settings(max_examples=15, deadline=None)
@given(budget=st.integers(1, 120), dim=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_budget_is_never_exceeded(name, budget, dim, seed):
    f = Counted(lambda x: float(np.sum(x**2)))
    options = {"population_size": 6, "truncation": 3} if name == "genetic_algorithm" else {}
    if name == "evolution_strategies":
        options = {"population_size": 4}
    result = G.METHODS[name](f, np.ones(dim), budget=budget, seed=seed, **options)
    assert f.calls == result.evaluations <= budget
    assert result.fun == float(np.sum(result.x**2))


@pytest.mark.parametrize("name", list(G.METHODS))
def test_budget_is_spent(name):
    """A method that does not converge uses the budget (all of it, or up to one partial step)."""
    f = Counted(quadratic)
    result = G.METHODS[name](f, START, budget=30, seed=0)
    assert result.message == "budget"
    assert 25 <= f.calls <= 30


@pytest.mark.parametrize("name", list(G.METHODS))
def test_time_budget_stops_early(name):
    def slow(x):
        time.sleep(0.002)
        return quadratic(x)

    f = Counted(slow)
    result = G.METHODS[name](f, START, budget=10**6, seed=0, time_budget=0.1)
    assert result.message == "time_budget"
    assert f.calls == result.evaluations
    assert 1 <= result.evaluations < 100  # 0.1 s at >= 2 ms per call
    assert result.seconds < 0.1 + 0.1  # no call starts after the limit (slack for a busy machine)
    assert result.history[-1, 1] == result.seconds


@pytest.mark.parametrize("name", list(G.METHODS))
def test_same_seed_same_result(name):
    a = G.METHODS[name](quadratic, START, budget=500, seed=7)
    b = G.METHODS[name](quadratic, START, budget=500, seed=7)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.fun == b.fun and a.evaluations == b.evaluations
    np.testing.assert_array_equal(a.history[:, [0, 2]], b.history[:, [0, 2]])
    c = G.METHODS[name](quadratic, START, budget=500, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(a.x, c.x)  # an int seed and a Generator from it agree


@pytest.mark.parametrize("name", STOCHASTIC)
def test_different_seed_different_result(name):
    a = G.METHODS[name](quadratic, START, budget=500, seed=1)
    b = G.METHODS[name](quadratic, START, budget=500, seed=2)
    assert not np.array_equal(a.x, b.x)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_methods_need_a_seed(name):
    with pytest.raises(TypeError, match=name):
        G.METHODS[name](quadratic, START, budget=10, seed=None)


@pytest.mark.parametrize("name", list(G.METHODS))
def test_callback_sees_progress_and_can_stop(name):
    seen = []

    def callback(p: G.Progress):
        seen.append((p.iteration, p.evaluations, p.fun))
        return p.iteration >= 3

    result = G.METHODS[name](quadratic, START, budget=10_000, seed=0, callback=callback)
    assert result.message == "callback"
    assert [s[0] for s in seen] == [1, 2, 3]
    assert result.iterations == 3
    assert all(np.isfinite(s[2]) for s in seen)


def test_nelder_mead_initial_simplex_costs_p_plus_one():
    f = Counted(quadratic)
    seen = []
    G.nelder_mead(f, np.zeros(3), budget=100, callback=lambda p: seen.append(p.evaluations) or True)
    assert seen == [4]  # P + 1 = 4 evaluations before the first iteration


def test_nelder_mead_adaptive_coefficients_in_high_dimension():
    """Gao & Han's coefficients make progress on a 20-D quadratic where they matter."""
    f = lambda x: float(np.sum(np.arange(1, 21) * (x - 1.0) ** 2))
    adaptive = G.nelder_mead(f, np.zeros(20), budget=20_000, adaptive=True)
    classic = G.nelder_mead(f, np.zeros(20), budget=20_000, adaptive=False)
    assert adaptive.fun < 1e-6  # measured: ~3e-20, converged after ~16,000 evaluations
    assert classic.fun > 1.0  # measured: ~90, the classical coefficients stall in 20-D


def test_nan_counts_as_worst():
    f = lambda x: float("nan") if x[0] > 0.5 else float(np.sum((x + 1.0) ** 2))
    result = G.nelder_mead(f, np.zeros(2), budget=300, initial_step=1.0)
    assert np.isfinite(result.fun) and result.fun < 1e-6


def test_errors_name_the_method_and_say_what_is_valid():
    with pytest.raises(ValueError, match=r"spsa: x0 must be a non-empty 1-D .*shape \(2, 2\)"):
        G.spsa(rosenbrock, np.zeros((2, 2)), budget=10, seed=0)
    with pytest.raises(ValueError, match=r"nelder_mead: budget .* integer >= 1, got 0"):
        G.nelder_mead(rosenbrock, ROSEN_START, budget=0)
    with pytest.raises(ValueError, match=r"evolution_strategies: population_size .* even, got 5"):
        G.evolution_strategies(rosenbrock, ROSEN_START, budget=10, seed=0, population_size=5)
    with pytest.raises(TypeError, match="genetic_algorithm: f must return a scalar"):
        G.genetic_algorithm(lambda x: x, ROSEN_START, budget=10, seed=0)


# ---- finite differences -------------------------------------------------------------------


def smooth(x: np.ndarray) -> float:
    return float(np.sum(np.sin(x) * x**2) + np.prod(np.cos(x[:2])))


def smooth_grad(x: np.ndarray) -> np.ndarray:
    g = np.cos(x) * x**2 + 2 * x * np.sin(x)
    g[0] += -np.sin(x[0]) * np.cos(x[1])
    g[1] += -np.cos(x[0]) * np.sin(x[1])
    return g


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-2.0, 2.0), min_size=2, max_size=8))
def test_fd_gradient_central_matches_analytic(values):
    x = np.array(values)
    grad, evaluations = G.fd_gradient(smooth, x, h=1e-5, method="central")
    assert evaluations == 2 * x.size
    np.testing.assert_allclose(grad, smooth_grad(x), rtol=0, atol=1e-7)


def test_fd_gradient_forward_is_first_order():
    f = lambda x: float(np.exp(x[0]))
    x = np.array([0.5])
    errors = []
    for h in (1e-2, 1e-3, 1e-4):
        grad, evaluations = G.fd_gradient(f, x, h=h, method="forward")
        assert evaluations == 2  # P + 1
        errors.append(abs(grad[0] - np.exp(0.5)))
        # leading error term of the forward difference: f''(x) h / 2
        assert errors[-1] == pytest.approx(np.exp(0.5) * h / 2, rel=0.02)
    assert 9 < errors[0] / errors[1] < 11 and 9 < errors[1] / errors[2] < 11  # O(h)
    central, _ = G.fd_gradient(f, x, h=1e-2, method="central")
    assert abs(central[0] - np.exp(0.5)) < errors[0] / 100  # O(h^2) is far smaller


def test_fd_gradient_forward_reuses_fx_and_keeps_shape():
    calls = Counted(lambda x: float(np.sum(x**2)))
    x = np.arange(6.0).reshape(2, 3)
    grad, evaluations = G.fd_gradient(calls, x, method="forward", fx=float(np.sum(x**2)))
    assert grad.shape == (2, 3) and evaluations == calls.calls == 6
    np.testing.assert_allclose(grad, 2 * x, atol=1e-4)
    with pytest.raises(ValueError, match="fd_gradient: method must be 'central' or 'forward'"):
        G.fd_gradient(calls, x, method="backward")


def test_finite_difference_descent_stops_when_it_diverges():
    # learning rate 0.01 is far too large for Rosenbrock's gradient (~200) at the start
    result = G.finite_difference_descent(rosenbrock, ROSEN_START, budget=10_000, learning_rate=0.01)
    assert result.message == "diverged"
    assert result.evaluations < 10_000 and np.isfinite(result.fun)


def test_finite_difference_descent_cost_per_step():
    for method, per_step in (("central", 2 * 3 + 1), ("forward", 3 + 1)):
        seen = []
        G.finite_difference_descent(
            quadratic, np.zeros(3), budget=1000, method=method,
            callback=lambda p: seen.append(p.evaluations) or len(seen) == 4,
        )
        assert np.all(np.diff(seen) == per_step)


# ---- parameters <-> vector -----------------------------------------------------------------


class Param:
    def __init__(self, data: np.ndarray):
        self.data = data


shapes = st.lists(st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple), min_size=1, max_size=5)


@settings(max_examples=30, deadline=None)
@given(shapes, st.integers(0, 1000))
def test_parameters_vector_round_trip(param_shapes, seed):
    rng = np.random.default_rng(seed)
    params = [Param(rng.standard_normal(s)) for s in param_shapes]
    originals = [p.data for p in params]
    vec = G.parameters_to_vector(params)
    assert vec.shape == (sum(int(np.prod(s)) for s in param_shapes),)
    new = rng.standard_normal(vec.size)
    G.vector_to_parameters(new, params)
    assert all(p.data is o for p, o in zip(params, originals))  # written in place
    np.testing.assert_array_equal(G.parameters_to_vector(params), new)
    for p, s in zip(params, param_shapes):
        assert p.data.shape == s


def test_vector_to_parameters_checks_length():
    params = [Param(np.zeros((2, 3))), Param(np.zeros(3))]
    with pytest.raises(ValueError, match=r"9 elements .*\(2, 3\), \(3,\).* got shape \(8,\)"):
        G.vector_to_parameters(np.zeros(8), params)
    with pytest.raises(TypeError, match="parameter 0 has no numpy array .data"):
        G.parameters_to_vector([np.zeros(3)])


def test_make_objective_trains_a_linear_model():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    w_true = np.array([1.0, -2.0, 0.5])
    y = X @ w_true
    w = Param(np.zeros(3))

    class Model:
        def parameters(self):
            return [w]

    loss = lambda: float(np.mean((X @ w.data - y) ** 2))
    f = G.make_objective(Model(), loss)
    x0 = G.parameters_to_vector(Model().parameters())
    result = G.nelder_mead(f, x0, budget=2_000)
    G.vector_to_parameters(result.x, Model().parameters())
    np.testing.assert_allclose(w.data, w_true, atol=1e-4)


# ---- vectorized evaluation (one call per population) ----------------------------------------


class CountedRows:
    """A vectorized f: takes (k, P), returns k values; records the size of every call."""

    def __init__(self, f_row):
        self.f_row = f_row
        self.sizes: list[int] = []

    def __call__(self, X):
        assert X.ndim == 2
        self.sizes.append(X.shape[0])
        return np.array([self.f_row(row) for row in X])

    @property
    def rows(self) -> int:
        return sum(self.sizes)


def small_options(name: str) -> dict:
    if name == "genetic_algorithm":
        return {"population_size": 6, "truncation": 3}
    if name == "evolution_strategies":
        return {"population_size": 4}
    return {}


@pytest.mark.parametrize("name", list(G.METHODS))
@settings(max_examples=10, deadline=None)
@given(budget=st.integers(1, 150), dim=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_vectorized_run_is_the_same_run(name, budget, dim, seed):
    """The same points in the same order, the same accounting: an identical result."""
    start = np.linspace(-1.0, 1.5, dim)
    options = small_options(name)
    plain = G.METHODS[name](quadratic_nd, start, budget=budget, seed=seed, **options)
    f = CountedRows(quadratic_nd)
    vec = G.METHODS[name](f, start, budget=budget, seed=seed, vectorized=True, **options)
    np.testing.assert_array_equal(vec.x, plain.x)
    assert vec.fun == plain.fun and vec.evaluations == plain.evaluations == f.rows <= budget
    assert vec.message == plain.message and vec.iterations == plain.iterations
    np.testing.assert_array_equal(vec.history[:, [0, 2]], plain.history[:, [0, 2]])


def quadratic_nd(x: np.ndarray) -> float:
    return float(np.sum(np.arange(1, x.size + 1) * (x - 0.5) ** 2))


def test_vectorized_populations_are_one_call_each():
    f = CountedRows(quadratic_nd)
    G.genetic_algorithm(f, np.zeros(4), budget=50 + 3 * 49, seed=0, vectorized=True)
    assert f.sizes == [50, 49, 49, 49]  # generation 0, then population - elitism
    f = CountedRows(quadratic_nd)
    G.evolution_strategies(f, np.zeros(4), budget=3 * 51 + 1, seed=0, vectorized=True)
    assert f.sizes == [1, 50, 1, 50, 1, 50, 1]  # the mean, the population, ..., the final mean
    f = CountedRows(quadratic_nd)
    G.spsa(f, np.zeros(4), budget=25, seed=0, vectorized=True, eval_every=0)
    assert f.sizes == [2] * 12 + [1]  # one call per pair, then the final iterate


def test_vectorized_blocks_of_the_simplex_and_of_the_probes():
    P = 600
    f = CountedRows(lambda x: float(np.sum(x**2)))
    G.nelder_mead(f, np.ones(P), budget=P + 1, vectorized=True)
    assert f.sizes == [256, 256, 89]  # P + 1 = 601 vertices, BLOCK_ROWS at a time
    assert G.BLOCK_ROWS == 256
    f = CountedRows(lambda x: float(np.sum(x**2)))
    result = G.finite_difference_descent(f, np.ones(P), budget=2 * P + 2, vectorized=True)
    assert f.sizes == [1, 256, 256, 256, 256, 176, 1]  # f(x), 2P probes, the final iterate
    assert result.iterations == 1


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=300), st.sampled_from(["central", "forward"]))
def test_fd_gradient_vectorized_is_the_same(values, method):
    x = np.array(values)
    plain, n_plain = G.fd_gradient(smooth_any, x, method=method)
    f = CountedRows(smooth_any)
    vec, n_vec = G.fd_gradient(f, x, method=method, vectorized=True)
    np.testing.assert_array_equal(vec, plain)
    assert n_vec == n_plain == f.rows
    assert max(f.sizes) <= G.BLOCK_ROWS


def smooth_any(x: np.ndarray) -> float:
    return float(np.sum(np.sin(x) * x**2) + np.cos(x[0]))


def test_fd_gradient_vectorized_keeps_shape():
    x = np.arange(6.0).reshape(2, 3)
    f = lambda X: np.sum(X**2, axis=(1, 2))  # X: (k, 2, 3)
    grad, evaluations = G.fd_gradient(f, x, vectorized=True)
    assert grad.shape == (2, 3) and evaluations == 12
    np.testing.assert_allclose(grad, 2 * x, atol=1e-8)
    with pytest.raises(ValueError, match=r"fd_gradient: a vectorized f must return one value per point"):
        G.fd_gradient(lambda X: np.sum(X), x, vectorized=True)


def test_vectorized_f_must_return_one_value_per_row():
    with pytest.raises(ValueError, match=r"genetic_algorithm: a vectorized f must return one value per "
                                         r"row: called with an array of shape \(50, 3\), it returned shape \(\)"):
        G.genetic_algorithm(lambda X: float(np.sum(X)), np.zeros(3), budget=100, seed=0, vectorized=True)
    with pytest.raises(TypeError, match="spsa: vectorized must be True or False"):
        G.spsa(quadratic, START, budget=10, seed=0, vectorized="yes")


@pytest.mark.parametrize("name", list(G.METHODS))
@settings(max_examples=10, deadline=None)
@given(budget=st.integers(1, 120), dim=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_vectorized_budget_is_never_exceeded(name, budget, dim, seed):
    f = CountedRows(lambda x: float(np.sum(x**2)))
    result = G.METHODS[name](f, np.ones(dim), budget=budget, seed=seed, vectorized=True,
                             **small_options(name))
    assert f.rows == result.evaluations <= budget
    assert result.fun == float(np.sum(result.x**2))


def test_nelder_mead_stores_only_the_vertices_the_budget_can_evaluate():
    import tracemalloc

    P = 20_000  # a full simplex would be (P + 1) * P floats = 3.2 GB
    tracemalloc.start()
    result = G.nelder_mead(lambda x: float(x[0] ** 2), np.ones(P), budget=10)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.evaluations == 10 and result.iterations == 0 and result.message == "budget"
    assert peak < 20 * P * 8 + 10_000_000  # a few P-vectors, never the simplex
    # the best vertex: x0 with one coordinate moved by 5 %; vertex 1 moves x[0] to 1.05
    assert result.fun == 1.0


def test_progress_best_x_is_the_best_point_so_far():
    seen = []
    G.simulated_annealing(quadratic, START, budget=300, seed=0,
                          callback=lambda p: seen.append((p.fun, p.best_x)))
    assert all(quadratic(bx) == fun for fun, bx in seen)
    assert [fun for fun, _ in seen] == sorted((fun for fun, _ in seen), reverse=True)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=2, max_size=30))
def test_centered_ranks_share_ties(values):
    v = np.array(values, dtype=np.float64)
    r = G._centered_ranks(v)
    n = v.size
    assert r.min() >= -0.5 and r.max() <= 0.5
    np.testing.assert_allclose(r.sum(), 0.0, atol=1e-12)  # ranks 0..n-1, centred
    for a in range(n):
        for b in range(n):
            if v[a] == v[b]:
                assert r[a] == r[b]
            elif v[a] < v[b]:
                assert r[a] < r[b]
    # without ties: exactly the ranks 0..n-1 scaled to [-0.5, 0.5]
    distinct = v + np.arange(n) * 1e-3
    np.testing.assert_allclose(np.sort(G._centered_ranks(distinct)), np.arange(n) / (n - 1) - 0.5)


def test_evolution_strategies_does_not_move_on_a_plateau():
    result = G.evolution_strategies(lambda x: 1.0, np.array([0.3, -0.2]), budget=200, seed=0,
                                    optimizer="sgd")
    np.testing.assert_array_equal(result.x, [0.3, -0.2])  # every pair ties: a zero search gradient


# ---- MLPObjective ---------------------------------------------------------------------------


def mlp_reference(sizes, vec, X, y, activation, loss):
    """The same loss from nnlib's own MLP and F.cross_entropy (an independent implementation)."""
    from nnlib import Tensor, nn, no_grad
    from nnlib import functional as F

    model = nn.MLP(sizes, activation=activation, rng=0)
    G.vector_to_parameters(vec, model)
    with no_grad():
        z = model(Tensor(X))
        if loss == "error_rate":
            return float(np.mean(np.argmax(z.data, axis=1) != y))
        return float(F.cross_entropy(z, y).data)


@st.composite
def mlp_case(draw):
    sizes = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    sizes[-1] = max(sizes[-1], 2)
    n = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0]))
    y = rng.integers(0, sizes[-1], size=n)
    return sizes, X, y, rng


@settings(max_examples=40, deadline=None)
@given(mlp_case(), st.sampled_from(["relu", "tanh", "sigmoid"]), st.sampled_from(["cross_entropy", "error_rate"]))
def test_mlp_objective_matches_nnlib_mlp(case, activation, loss):
    sizes, X, y, rng = case
    f = G.MLPObjective(sizes, X, y, activation=activation, loss=loss)
    vecs = rng.normal(size=(5, f.n_params)) * 2.0
    want = np.array([mlp_reference(sizes, v, X, y, activation, loss) for v in vecs])
    got = f(vecs)
    assert got.shape == (5,) and f.evaluations == 5
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for v, w in zip(vecs, want):  # one vector at a time: a float
        value = f(v)
        assert isinstance(value, float)
        np.testing.assert_allclose(value, w, rtol=1e-12, atol=1e-12)
    assert f.n_params == G.parameters_to_vector(__import__("nnlib").nn.MLP(sizes, rng=0)).size


@settings(max_examples=30, deadline=None)
@given(mlp_case(), st.integers(1, 64))
def test_mlp_objective_chunks_do_not_change_values(case, max_floats):
    sizes, X, y, rng = case
    big = G.MLPObjective(sizes, X, y, activation="tanh")
    small = G.MLPObjective(sizes, X, y, activation="tanh", max_floats=max_floats)
    vecs = rng.normal(size=(7, big.n_params))
    np.testing.assert_allclose(small(vecs), big(vecs), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(small.accuracy(vecs), big.accuracy(vecs))


def test_mlp_objective_step_activation_and_accuracy():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 4, size=40)
    f = G.MLPObjective([3, 5, 4], X, y, activation="step", loss="error_rate")
    v = rng.normal(size=f.n_params)
    (W1, b1), (W2, b2) = f.unflatten(v)
    assert W1.shape == (5, 3) and b1.shape == (5,) and W2.shape == (4, 5) and b2.shape == (4,)
    h = (X @ W1.T + b1 > 0).astype(float)
    pred = np.argmax(h @ W2.T + b2, axis=1)
    assert f(v) == np.mean(pred != y)
    assert f.accuracy(v) == np.mean(pred == y) == 1.0 - f(v)
    X2, y2 = rng.normal(size=(9, 3)), rng.integers(0, 4, size=9)
    h2 = (X2 @ W1.T + b1 > 0).astype(float)
    assert f.accuracy(v, X2, y2) == np.mean(np.argmax(h2 @ W2.T + b2, axis=1) == y2)
    np.testing.assert_array_equal(f.logits(v, X2), h2 @ W2.T + b2)
    # a small move changes no unit's sign: the error rate is flat, its gradient zero
    assert f(v + 1e-9 * rng.normal(size=v.size)) == f(v)
    assert f.macs_per_example == 3 * 5 + 5 * 4


def test_mlp_objective_layout_is_parameters_to_vector():
    from nnlib import nn

    model = nn.MLP([4, 3, 2], rng=1)
    f = G.MLPObjective([4, 3, 2], np.zeros((1, 4)), np.array([0]))
    pairs = f.unflatten(G.parameters_to_vector(model))
    params = model.parameters()
    for (W, b), Wp, bp in zip(pairs, params[0::2], params[1::2]):
        np.testing.assert_array_equal(W, Wp.data)
        np.testing.assert_array_equal(b, bp.data)


def test_mlp_objective_errors_name_shapes_and_values():
    X, y = np.zeros((5, 3)), np.zeros(5, dtype=int)
    with pytest.raises(ValueError, match=r"MLPObjective: X must have shape \(N, 4\) for sizes \[4, 2\], got \(5, 3\)"):
        G.MLPObjective([4, 2], X, y)
    with pytest.raises(ValueError, match=r"labels must lie in 0..1, got values from 0 to 2"):
        G.MLPObjective([3, 2], X, np.array([0, 1, 2, 0, 0]))
    with pytest.raises(ValueError, match=r"y must hold 5 integer labels"):
        G.MLPObjective([3, 2], X, np.zeros(5))
    with pytest.raises(ValueError, match="activation must be one of"):
        G.MLPObjective([3, 2], X, y, activation="gelu")
    f = G.MLPObjective([3, 2], X, y)
    with pytest.raises(ValueError, match=r"MLPObjective.__call__: expected a parameter vector of shape "
                                         r"\(8,\) or a population of shape \(k, 8\) .* got shape \(7,\)"):
        f(np.zeros(7))


def test_evolution_strategies_evaluates_antithetic_pairs_in_turn():
    """x + sigma eps_i is followed by x - sigma eps_i, so a budget that ends inside a population
    leaves complete pairs (and the order the original loop used)."""
    seen = []
    x0 = np.array([0.25, -1.0, 2.0])
    G.evolution_strategies(lambda x: seen.append(x) or quadratic(x), x0, budget=1 + 6, seed=0,
                           population_size=6, sigma=0.1)
    np.testing.assert_array_equal(seen[0], x0)  # the mean first
    for plus, minus in zip(seen[1::2], seen[2::2]):
        np.testing.assert_allclose((plus + minus) / 2, x0, rtol=0, atol=1e-15)
        assert not np.allclose(plus, minus)
