"""Gradient-free optimisers, all with one interface and an honest count of function evaluations.

Every method minimises ``f(x)`` over a flat float64 parameter vector ``x``::

    result = method(f, x0, *, budget, seed, time_budget=None, callback=None, **options)

- ``budget`` is the maximum number of calls of ``f``. It is never exceeded: every call, made
  for any purpose (a simplex vertex, a perturbed copy, a finite-difference probe, the final
  iterate), goes through one counter that refuses to make call number ``budget + 1``.
- ``time_budget`` (seconds of wall-clock time, optional): no new call of ``f`` starts once it
  has passed (the first call, of ``x0`` or a first sample, always happens).
- ``seed`` (an ``int`` or ``np.random.Generator``) is the only source of randomness; the
  deterministic methods (Nelder-Mead, finite-difference descent) accept and ignore it.
- ``callback(progress)`` is called once per iteration with a :class:`Progress`; returning
  ``True`` stops the run.
- ``vectorized=True`` says that ``f`` takes a 2-D array of points, one per row (shape
  ``(k, P)``), and returns their ``k`` values. The methods then evaluate every set of points
  they know in advance in one call: a generation of the genetic algorithm, a population of
  evolution strategies, SPSA's pair, the initial simplex and a shrink of Nelder-Mead, the
  probes of a finite-difference gradient (in blocks of at most ``BLOCK_ROWS`` rows).
  Simulated annealing and Nelder-Mead's reflections need one point at a time: they call
  ``f`` with a single row. The points, their order and the budget accounting are exactly
  those of ``vectorized=False`` (when the budget ends inside a batch, only the rows that fit
  are evaluated), so both give the same run when ``f`` gives the same values. (SciPy's
  ``differential_evolution(vectorized=True)`` passes the points as columns; nnlib, as
  everywhere, as rows.)

Each returns an :class:`OptimizeResult`: ``x`` is the best point that was *evaluated* and
``fun`` its value, so ``fun`` is always a number ``f`` really returned. ``history`` has one row
``(evaluations, seconds, best f so far)`` per improvement plus a last row at the end, for
plotting against either budget.

Cost per step, in evaluations of ``f``, for a problem with ``P`` parameters (this is what
chapter 12 compares with backprop's small constant number of passes per gradient):

==============================  ==========================================================
method                          evaluations
==============================  ==========================================================
nelder_mead                     P + 1 for the initial simplex; then 1-2 per iteration
                                (reflection, plus expansion or contraction), P more when the
                                simplex shrinks. Stores P + 1 points: (P + 1) * P floats.
simulated_annealing             1 per step (one Gaussian proposal)
genetic_algorithm               population_size in generation 0, then
                                population_size - elitism per generation
evolution_strategies            population_size per step (antithetic pairs), + 1 every
                                ``eval_every`` steps to evaluate the mean
spsa                            2 per step (whatever P is), + 1 every ``eval_every`` steps
finite_difference_descent       2P + 1 per step (central) or P + 1 (forward)
==============================  ==========================================================

The methods that move a point they never evaluate (evolution strategies, SPSA and
finite-difference descent) keep one evaluation of the budget back to evaluate their final
iterate, so that it can be returned if it is the best.

Also here: :func:`fd_gradient`, and :func:`parameters_to_vector` /
:func:`vector_to_parameters` / :func:`make_objective` to train an ``nnlib`` module with any
of these methods, and :class:`MLPObjective`, the loss of a multilayer perceptron on a data set
as a function of its flat parameter vector, for one vector or a whole population in one
batched computation (``vectorized=True``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnlib.data import _check_int as _count
from nnlib.data import seeded_generator

__all__ = [
    "OptimizeResult",
    "Progress",
    "nelder_mead",
    "simulated_annealing",
    "genetic_algorithm",
    "evolution_strategies",
    "spsa",
    "finite_difference_descent",
    "fd_gradient",
    "parameters_to_vector",
    "vector_to_parameters",
    "make_objective",
    "MLPObjective",
    "METHODS",
    "BLOCK_ROWS",
]

Objective = Callable[[np.ndarray], float]
Seed = int | np.random.Generator

BLOCK_ROWS = 256
"""The most rows a vectorized ``f`` receives in one call for Nelder-Mead's simplex and the
finite-difference probes (their number grows with ``P``); populations are passed whole."""


@dataclass
class Progress:
    """What a callback sees once per iteration.

    ``x`` is a copy of the method's current point (the best vertex for Nelder-Mead, the
    current state for simulated annealing, the best individual for the genetic algorithm,
    the current iterate for the others, which may not have been evaluated); ``fun`` is the
    best value evaluated so far and ``best_x`` (a copy) the point that gave it, what the run
    would return if it stopped now.
    """

    method: str
    iteration: int
    x: np.ndarray
    fun: float
    evaluations: int
    seconds: float
    best_x: np.ndarray | None = None


@dataclass
class OptimizeResult:
    """The outcome of a gradient-free run.

    Attributes:
        x: the best point evaluated (float64, shape of ``x0``).
        fun: ``f(x)``, the best value evaluated (NaN values count as +inf).
        evaluations: calls of ``f`` made (at most the budget).
        history: float64 array of shape (k, 3), rows ``(evaluations, seconds, best f so
            far)``, one per improvement and one at the end.
        method: the method's name.
        seconds: wall-clock time of the run.
        iterations: iterations (steps, generations) completed.
        message: why it stopped: ``"budget"``, ``"time_budget"``, ``"converged"``
            (Nelder-Mead's simplex collapsed), ``"callback"`` or ``"diverged"``
            (finite-difference descent met a non-finite gradient).
    """

    x: np.ndarray
    fun: float
    evaluations: int
    history: np.ndarray
    method: str
    seconds: float = 0.0
    iterations: int = 0
    message: str = ""

    @property
    def history_evaluations(self) -> np.ndarray:
        """Column 0 of ``history``: evaluations used at each record."""
        return self.history[:, 0]

    @property
    def history_seconds(self) -> np.ndarray:
        """Column 1 of ``history``: seconds elapsed at each record."""
        return self.history[:, 1]

    @property
    def history_fun(self) -> np.ndarray:
        """Column 2 of ``history``: best value so far at each record."""
        return self.history[:, 2]


def _scalar(value: Any) -> float:
    """A Python float from a number, a 0-d / size-1 array, or an object with such a ``.data``."""
    if type(value) is float:
        return value
    if not isinstance(value, (int, float, np.generic, np.ndarray)):
        value = getattr(value, "data", value)
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise ValueError(f"expected a scalar, got shape {array.shape}")
    return float(array.reshape(()))


class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Counter:
    """Wraps ``f``: counts calls, enforces both budgets, tracks the best point and history."""

    f: Objective
    method: str
    budget: int
    time_budget: float | None
    callback: Callable[[Progress], Any] | None
    reserve: int = 0
    vectorized: bool = False
    evaluations: int = 0
    iterations: int = 0
    best_x: np.ndarray | None = None
    best_f: float = np.inf
    history: list[tuple[float, float, float]] = field(default_factory=list)
    iterate: np.ndarray | None = None
    iterate_evaluated: bool = True

    def __post_init__(self) -> None:
        self.start = time.perf_counter()
        self.limit = self.budget - self.reserve

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def _may_start(self) -> None:
        if self.evaluations >= self.limit:
            raise _Stop("budget")
        if (
            self.time_budget is not None
            and self.evaluations > 0
            and self.seconds() >= self.time_budget
        ):
            raise _Stop("time_budget")

    def _record(self, x: np.ndarray, fx: float) -> float:
        if np.isnan(fx):
            fx = np.inf
        if self.best_x is None or fx < self.best_f:
            self.best_x = np.array(x, dtype=np.float64)
            self.best_f = fx
            self.history.append((float(self.evaluations), self.seconds(), fx))
        return fx

    def __call__(self, x: np.ndarray) -> float:
        if self.vectorized:
            return float(self.many(np.asarray(x, dtype=np.float64)[None, :])[0])
        self._may_start()
        value = self.f(np.array(x, dtype=np.float64))  # a copy: f may keep or modify it
        self.evaluations += 1
        try:
            fx = _scalar(value)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"{self.method}: f must return a scalar number, got {type(value).__name__} ({err})"
            ) from None
        return self._record(x, fx)

    def many(self, points: np.ndarray) -> np.ndarray:
        """The values of the rows of ``points``, evaluated in order: one call of a vectorized
        ``f``, one call per row otherwise. When the budget ends inside the batch, the rows
        that fit are evaluated (and recorded) and the run stops."""
        if not self.vectorized:
            values = np.empty(points.shape[0])
            for i in range(points.shape[0]):
                values[i] = self(points[i])
            return values
        self._may_start()
        take = min(points.shape[0], self.limit - self.evaluations)
        block = np.array(points[:take], dtype=np.float64)  # a copy: f may keep or modify it
        raw = self.f(block)
        try:
            values = np.asarray(getattr(raw, "data", raw) if not isinstance(raw, np.ndarray) else raw,
                                dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"{self.method}: a vectorized f must return an array of {take} numbers (one per "
                f"row), got {type(raw).__name__} ({err})"
            ) from None
        if values.shape != (take,):
            raise ValueError(
                f"{self.method}: a vectorized f must return one value per row: called with an "
                f"array of shape {block.shape}, it returned shape {values.shape}, expected ({take},)"
            )
        out = np.empty(take)
        for i in range(take):
            self.evaluations += 1
            out[i] = self._record(block[i], float(values[i]))
        if take < points.shape[0]:
            raise _Stop("budget")
        return out

    def set_iterate(self, x: np.ndarray) -> None:
        """Record the method's current point, which has not been evaluated yet."""
        self.iterate = x
        self.iterate_evaluated = False

    def eval_iterate(self) -> float:
        assert self.iterate is not None
        fx = self(self.iterate)
        self.iterate_evaluated = True
        return fx

    def report(self, x: np.ndarray) -> None:
        """End of one iteration: count it and call the callback (which may stop the run)."""
        self.iterations += 1
        if self.callback is not None:
            progress = Progress(
                self.method, self.iterations, np.array(x, dtype=np.float64), self.best_f,
                self.evaluations, self.seconds(),
                None if self.best_x is None else self.best_x.copy(),
            )
            if self.callback(progress) is True:
                raise _Stop("callback")


def _check_common(
    method: str, x0: np.ndarray, budget: int, time_budget: float | None
) -> np.ndarray:
    x = np.array(x0, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(
            f"{method}: x0 must be a non-empty 1-D parameter vector, got shape {x.shape}; "
            f"flatten it (x0.ravel(), or parameters_to_vector(module.parameters()))"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{method}: x0 must be finite, got non-finite entries at {np.flatnonzero(~np.isfinite(x))[:5].tolist()}")
    _count(budget, "budget (the maximum number of evaluations of f)", method, 1)
    if time_budget is not None and not (float(time_budget) >= 0):
        raise ValueError(f"{method}: time_budget must be None or a number of seconds >= 0, got {time_budget!r}")
    return x


def _run(
    method: str,
    f: Objective,
    x0: np.ndarray,
    budget: int,
    time_budget: float | None,
    callback: Callable[[Progress], Any] | None,
    body: Callable[[_Counter, np.ndarray], str],
    reserve: int = 0,
    vectorized: bool = False,
) -> OptimizeResult:
    """Run ``body(counter, x0)``; whatever stops it, evaluate a pending iterate if allowed."""
    x = _check_common(method, x0, budget, time_budget)
    if not isinstance(vectorized, (bool, np.bool_)):
        raise TypeError(f"{method}: vectorized must be True or False, got {vectorized!r}")
    counter = _Counter(f, method, int(budget), time_budget, callback, reserve=reserve,
                       vectorized=bool(vectorized))
    try:
        message = body(counter, x)
    except _Stop as stop:
        message = stop.reason
    if counter.iterate is not None and not counter.iterate_evaluated:
        counter.limit = counter.budget  # release the evaluation kept back for this
        try:
            counter.eval_iterate()
        except _Stop as stop:
            if stop.reason == "time_budget":
                message = "time_budget"
    if counter.best_x is None:  # unreachable: the first evaluation is always allowed
        raise RuntimeError(f"{method}: no evaluation of f was made")
    last = (float(counter.evaluations), counter.seconds(), counter.best_f)
    counter.history.append(last)
    return OptimizeResult(
        x=counter.best_x,
        fun=counter.best_f,
        evaluations=counter.evaluations,
        history=np.array(counter.history, dtype=np.float64).reshape(-1, 3),
        method=method,
        seconds=last[1],
        iterations=counter.iterations,
        message=message,
    )


def _positive(value: float, name: str, where: str, allow_zero: bool = False) -> float:
    value = float(value)
    ok = value >= 0 if allow_zero else value > 0
    if not (ok and np.isfinite(value)):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{where}: {name} must be a finite number {bound}, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# Nelder-Mead
# --------------------------------------------------------------------------------------------


def nelder_mead(
    f: Objective,
    x0: np.ndarray,
    *,
    budget: int,
    seed: Seed | None = None,
    time_budget: float | None = None,
    callback: Callable[[Progress], Any] | None = None,
    vectorized: bool = False,
    adaptive: bool = True,
    initial_step: float | None = None,
    initial_simplex: np.ndarray | None = None,
    xatol: float = 1e-10,
    fatol: float = 1e-12,
) -> OptimizeResult:
    """Nelder-Mead simplex search, with Gao & Han's (2012) parameters for high dimension.

    Keeps ``P + 1`` points (a simplex) and replaces the worst by reflecting it through the
    centroid of the others, expanding, contracting, or shrinking the whole simplex towards
    the best point. With ``adaptive=True`` the coefficients depend on the dimension ``n = P``:
    reflection 1, expansion ``1 + 2/n``, contraction ``0.75 - 1/(2n)``, shrink ``1 - 1/n``
    (for ``n = 2`` these are the classical 1, 2, 0.5, 0.5, used when ``adaptive=False``).

    Cost: ``P + 1`` evaluations for the initial simplex before the first step, then 1 or 2
    per iteration, and ``P`` more for a shrink. Memory: ``(P + 1) * P`` floats (740 MB for
    ``P = 9,610``); when the budget is below ``P + 1``, only the ``budget`` vertices it can
    evaluate are built, and the run ends before the first step. With ``vectorized=True`` the
    initial simplex and a shrink are evaluated in blocks of ``BLOCK_ROWS`` vertices.

    Options:
        initial_step: the initial simplex is ``x0`` plus ``initial_step`` along each axis.
            ``None`` uses SciPy's rule: 5 % of each nonzero coordinate, 0.00025 for zeros.
        initial_simplex: a ``(P + 1, P)`` array to start from instead.
        xatol, fatol: stop (``message="converged"``) when every vertex is within ``xatol``
            of the best in every coordinate and every value within ``fatol`` of the best.
    ``seed`` is accepted for the common interface and not used (the method is deterministic).
    """
    name = "nelder_mead"

    def body(fc: _Counter, x: np.ndarray) -> str:
        n = x.size
        if adaptive:
            rho, chi, psi, sigma = 1.0, 1.0 + 2.0 / n, 0.75 - 1.0 / (2.0 * n), 1.0 - 1.0 / n
        else:
            rho, chi, psi, sigma = 1.0, 2.0, 0.5, 0.5
        if n == 1:  # 1 - 1/n would be a zero shrink
            sigma = 0.5
        fsim = np.full(n + 1, np.inf)
        if initial_simplex is not None:
            sim = np.array(initial_simplex, dtype=np.float64)
            if sim.shape != (n + 1, n):
                raise ValueError(
                    f"{name}: initial_simplex must have shape (P + 1, P) = {(n + 1, n)}, got {sim.shape}"
                )
            for start in range(0, n + 1, BLOCK_ROWS):
                stop = min(start + BLOCK_ROWS, n + 1)
                fsim[start:stop] = fc.many(sim[start:stop])
        else:
            if initial_step is None:
                steps = np.where(x != 0.0, 0.05 * x, 0.00025)
            else:
                steps = np.full(n, _positive(initial_step, "initial_step", name))
            # only the vertices the budget can evaluate are stored: P + 1 rows of P floats
            # would be 740 MB for P = 9,610, spent for nothing when the budget is smaller
            rows = min(n + 1, fc.limit)
            sim = np.empty((rows, n))
            for start in range(0, n + 1, BLOCK_ROWS):
                if start >= rows:
                    raise _Stop("budget")
                stop = min(start + BLOCK_ROWS, rows)
                block = np.repeat(x[None, :], stop - start, axis=0)
                axes = np.arange(max(start, 1), stop) - 1  # vertex i moves along axis i - 1
                block[axes + 1 - start, axes] += steps[axes]
                sim[start:stop] = block
                fsim[start:stop] = fc.many(block)
            if rows < n + 1:  # the budget ended inside the initial simplex
                raise _Stop("budget")
        total = sim.sum(axis=0)  # running sum of the vertices: the centroid costs O(P), not O(P^2)
        replaced = 0

        def replace(i: int, point: np.ndarray, value: float) -> None:
            nonlocal total, replaced
            total += point - sim[i]
            sim[i] = point
            fsim[i] = value
            replaced += 1
            if replaced % (n + 1) == 0:  # refresh the running sum against rounding drift
                total = sim.sum(axis=0)

        while True:
            order = np.argsort(fsim, kind="stable")
            best, worst, second = order[0], order[-1], order[-2]
            fc.report(sim[best])
            with np.errstate(invalid="ignore"):  # inf - inf while every vertex is +inf
                f_spread = np.max(np.abs(fsim - fsim[best]))
            # the f test first: the x test costs O(P^2)
            if f_spread <= fatol and np.max(np.abs(sim - sim[best])) <= xatol:
                return "converged"
            centroid = (total - sim[worst]) / n
            xr = centroid + rho * (centroid - sim[worst])
            fr = fc(xr)
            if fr < fsim[best]:
                xe = centroid + chi * (xr - centroid)
                fe = fc(xe)
                if fe < fr:
                    replace(worst, xe, fe)
                else:
                    replace(worst, xr, fr)
                continue
            if fr < fsim[second]:
                replace(worst, xr, fr)
                continue
            if fr < fsim[worst]:  # outside contraction
                xc = centroid + psi * (xr - centroid)
                fcon = fc(xc)
                if fcon <= fr:
                    replace(worst, xc, fcon)
                    continue
            else:  # inside contraction
                xc = centroid + psi * (sim[worst] - centroid)
                fcon = fc(xc)
                if fcon < fsim[worst]:
                    replace(worst, xc, fcon)
                    continue
            # shrink every vertex towards the best one
            for i in order[1:]:
                sim[i] = sim[best] + sigma * (sim[i] - sim[best])
                fsim[i] = np.inf  # an unevaluated vertex must never look good
            total = sim.sum(axis=0)
            rest = order[1:]
            for start in range(0, n, BLOCK_ROWS):
                idx = rest[start : start + BLOCK_ROWS]
                fsim[idx] = fc.many(sim[idx])

    return _run(name, f, x0, budget, time_budget, callback, body, vectorized=vectorized)


# --------------------------------------------------------------------------------------------
# Simulated annealing
# --------------------------------------------------------------------------------------------


def simulated_annealing(
    f: Objective,
    x0: np.ndarray,
    *,
    budget: int,
    seed: Seed,
    time_budget: float | None = None,
    callback: Callable[[Progress], Any] | None = None,
    vectorized: bool = False,
    step_size: float = 0.1,
    initial_temperature: float | None = None,
    final_temperature_ratio: float = 1e-3,
    cooling: float | None = None,
    adapt_step: bool = True,
    adapt_every: int = 50,
    n_probe: int = 20,
    acceptance: tuple[float, float] = (0.4, 0.6),
) -> OptimizeResult:
    """Simulated annealing with Gaussian proposals and geometric cooling (Kirkpatrick et al., 1983).

    Each step proposes ``x' = x + step_size * N(0, I)`` (every coordinate moves) and accepts
    it with the Metropolis rule: always if ``f(x') <= f(x)``, otherwise with probability
    ``exp(-(f(x') - f(x)) / T)``. The temperature falls geometrically, ``T_k = T_0 *
    cooling**k`` at step ``k``.

    Cost: 1 evaluation per step (plus 1 for ``x0``).

    Options:
        step_size: initial standard deviation of the proposals (in units of ``x``).
        initial_temperature: ``T_0``. ``None`` estimates it from the first ``n_probe``
            steps, which are run greedily (only downhill moves accepted): ``T_0`` is set so
            that an uphill move of the mean size seen would be accepted with probability 0.8
            (Kirkpatrick's rule of thumb). These steps count against the budget like all others.
        cooling: the factor per step. ``None`` chooses it so that the temperature reaches
            ``final_temperature_ratio * T_0`` at the last evaluation of the budget.
        adapt_step: every ``adapt_every`` steps, scale the step so that 40-60 % of proposals
            are accepted (Corana et al., 1987, with one step size for all coordinates):
            a higher acceptance widens it, a lower one narrows it.
    """
    name = "simulated_annealing"
    rng = seeded_generator(seed, name)
    step = _positive(step_size, "step_size", name)
    ratio = _positive(final_temperature_ratio, "final_temperature_ratio", name)
    adapt_every = _count(adapt_every, "adapt_every", name, 1)
    n_probe = _count(n_probe, "n_probe", name, 1)
    if cooling is not None and not 0.0 < float(cooling) <= 1.0:
        raise ValueError(f"{name}: cooling must lie in (0, 1] (a factor per step), got {cooling!r}")
    if initial_temperature is not None:
        _positive(initial_temperature, "initial_temperature", name)
    low, high = (float(v) for v in acceptance)
    if not 0.0 < low <= high < 1.0:
        raise ValueError(
            f"{name}: acceptance must be a band (low, high) with 0 < low <= high < 1, got {acceptance!r}"
        )

    def body(fc: _Counter, x: np.ndarray) -> str:
        nonlocal step
        fx = fc(x)
        temperature = None if initial_temperature is None else float(initial_temperature)
        factor = None if cooling is None else float(cooling)
        uphill: list[float] = []
        accepted_in_window = 0
        k = 0
        while True:
            proposal = x + step * rng.standard_normal(x.size)
            fp = fc(proposal)
            k += 1
            delta = fp - fx
            if temperature is None:  # probing: greedy, collecting uphill differences
                accept = delta <= 0
                if np.isfinite(delta) and delta > 0:
                    uphill.append(delta)
                if k >= n_probe:
                    mean_up = float(np.mean(uphill)) if uphill else max(abs(fx), 1.0) * 1e-3
                    temperature = -mean_up / np.log(0.8)
            else:
                accept = delta <= 0 or rng.random() < np.exp(-delta / temperature)
            if accept:
                x, fx = proposal, fp
                accepted_in_window += 1
            if temperature is not None and (k > n_probe or initial_temperature is not None):
                if factor is None:
                    remaining = max(fc.budget - fc.evaluations, 1)
                    factor = ratio ** (1.0 / remaining)
                temperature *= factor
            if adapt_step and k % adapt_every == 0:
                rate = accepted_in_window / adapt_every
                if rate > high:
                    step *= 1.0 + 2.0 * (rate - high) / (1.0 - high)
                elif rate < low:
                    step /= 1.0 + 2.0 * (low - rate) / low
                accepted_in_window = 0
            fc.report(x)

    return _run(name, f, x0, budget, time_budget, callback, body, vectorized=vectorized)


# --------------------------------------------------------------------------------------------
# Genetic algorithm
# --------------------------------------------------------------------------------------------


def genetic_algorithm(
    f: Objective,
    x0: np.ndarray,
    *,
    budget: int,
    seed: Seed,
    time_budget: float | None = None,
    callback: Callable[[Progress], Any] | None = None,
    vectorized: bool = False,
    population_size: int = 50,
    truncation: int = 10,
    mutation_std: float = 0.1,
    elitism: int = 1,
    crossover: float = 0.0,
    init_std: float | None = None,
) -> OptimizeResult:
    """A genetic algorithm in the style of Such et al. (2017), "Deep Neuroevolution".

    Generation 0 is ``x0`` and ``population_size - 1`` copies of it plus Gaussian noise of
    standard deviation ``init_std`` (default ``mutation_std``). Each later generation keeps the
    ``elitism`` best individuals unchanged (the elite) and fills the rest with children: a
    parent drawn uniformly from the ``truncation`` best (truncation selection) plus Gaussian
    mutation ``mutation_std * N(0, I)``. With ``crossover > 0``, each child is, with that
    probability, first made by uniform crossover of two different parents (each coordinate
    from either, with equal chance); Such et al. used no crossover.

    Such et al. re-evaluate elite candidates because their fitness (an RL return) is noisy;
    here ``f`` is deterministic, so elites keep their value and cost nothing.

    Cost: ``population_size`` evaluations in generation 0, then ``population_size - elitism``
    per generation (one call of a vectorized ``f`` per generation).
    """
    name = "genetic_algorithm"
    rng = seeded_generator(seed, name)
    pop_n = _count(population_size, "population_size", name, 2)
    truncation = _count(truncation, "truncation", name, 1)
    elitism = _count(elitism, "elitism", name, 0)
    if truncation > pop_n or elitism >= pop_n:
        raise ValueError(
            f"{name}: need truncation <= population_size and elitism < population_size, got "
            f"truncation={truncation}, elitism={elitism}, population_size={pop_n}"
        )
    sigma = _positive(mutation_std, "mutation_std", name)
    sigma0 = sigma if init_std is None else _positive(init_std, "init_std", name, allow_zero=True)
    if not 0.0 <= float(crossover) <= 1.0:
        raise ValueError(f"{name}: crossover is a probability in [0, 1], got {crossover!r}")
    if crossover > 0 and truncation < 2:
        raise ValueError(f"{name}: crossover needs truncation >= 2 parents, got truncation={truncation}")

    def body(fc: _Counter, x: np.ndarray) -> str:
        P = x.size
        pop = x[None, :] + sigma0 * rng.standard_normal((pop_n, P))
        pop[0] = x
        fit = fc.many(pop)
        while True:
            order = np.argsort(fit, kind="stable")
            fc.report(pop[order[0]])
            parents = pop[order[:truncation]]
            new_pop = np.empty_like(pop)
            new_fit = np.full(pop_n, np.inf)
            new_pop[:elitism] = pop[order[:elitism]]
            new_fit[:elitism] = fit[order[:elitism]]
            n_children = pop_n - elitism
            picks = rng.integers(0, truncation, size=n_children)
            children = parents[picks]
            if crossover > 0:
                cross = rng.random(n_children) < crossover
                for c in np.flatnonzero(cross):
                    mate = (picks[c] + rng.integers(1, truncation)) % truncation  # a different parent
                    mask = rng.random(P) < 0.5
                    children[c] = np.where(mask, parents[picks[c]], parents[mate])
            children += sigma * rng.standard_normal((n_children, P))
            new_pop[elitism:] = children
            new_fit[elitism:] = fc.many(new_pop[elitism:])
            pop, fit = new_pop, new_fit

    return _run(name, f, x0, budget, time_budget, callback, body, vectorized=vectorized)


# --------------------------------------------------------------------------------------------
# Evolution strategies
# --------------------------------------------------------------------------------------------


def _centered_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5] (lowest value -0.5), Salimans et al.'s fitness shaping.

    Tied values share the mean of their ranks, so a pair of equal values (common when ``f``
    is piecewise constant, e.g. an error rate) contributes nothing to the search gradient,
    instead of a push decided by which of the two came first.
    """
    n = values.size
    order = np.argsort(values, kind="stable")
    ranked = values[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    ends = np.r_[starts[1:], n]
    ranks = np.empty(n)
    ranks[order] = np.repeat((starts + ends - 1) / 2.0, ends - starts)
    return ranks / (n - 1) - 0.5


def evolution_strategies(
    f: Objective,
    x0: np.ndarray,
    *,
    budget: int,
    seed: Seed,
    time_budget: float | None = None,
    callback: Callable[[Progress], Any] | None = None,
    vectorized: bool = False,
    population_size: int = 50,
    sigma: float = 0.1,
    learning_rate: float = 0.01,
    optimizer: str = "adam",
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    eval_every: int = 1,
) -> OptimizeResult:
    """Evolution strategies as in Salimans et al. (2017), "Evolution Strategies as a Scalable
    Alternative to Reinforcement Learning".

    Each step draws ``population_size / 2`` directions ``eps_i ~ N(0, I)`` and evaluates the
    antithetic pairs ``f(x + sigma eps_i)`` and ``f(x - sigma eps_i)``. The values are
    replaced by their centred ranks in [-0.5, 0.5] (fitness shaping: only the order matters,
    so outliers and the scale of ``f`` do not; tied values share their mean rank), and the
    search gradient is estimated as
    ``g = sum_i (r_i+ - r_i-) eps_i / (population_size * sigma)``. The mean moves by Adam
    (as in the paper) or SGD with momentum on ``g + weight_decay * x``.

    Cost: ``population_size`` evaluations per step (one call of a vectorized ``f``), plus 1
    every ``eval_every`` steps to evaluate the mean itself (so that progress shows in
    ``history``; 0 turns this off, and then only the final mean is evaluated). One evaluation
    is kept back for the final mean.

    Options: ``population_size`` (even, >= 2), ``sigma`` (perturbation scale),
    ``learning_rate``, ``optimizer`` ("adam" or "sgd"), ``momentum`` (SGD), ``betas`` (Adam),
    ``weight_decay`` (the paper's L2 coefficient).
    """
    name = "evolution_strategies"
    rng = seeded_generator(seed, name)
    pop_n = _count(population_size, "population_size", name, 2)
    if pop_n % 2:
        raise ValueError(
            f"{name}: population_size counts antithetic pairs twice and must be even, got {pop_n}"
        )
    sigma = _positive(sigma, "sigma", name)
    lr = _positive(learning_rate, "learning_rate", name)
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"{name}: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    eval_every = _count(eval_every, "eval_every", name, 0)
    wd = _positive(weight_decay, "weight_decay", name, allow_zero=True)
    beta1, beta2 = betas

    def body(fc: _Counter, x: np.ndarray) -> str:
        pairs = pop_n // 2
        m = np.zeros_like(x)
        v = np.zeros_like(x)
        step = 0
        fc.set_iterate(x)
        while True:
            if eval_every and step % eval_every == 0:
                fc.eval_iterate()
            eps = rng.standard_normal((pairs, x.size))
            points = np.empty((2 * pairs, x.size))
            points[0::2] = x + sigma * eps  # evaluated in the order +eps_0, -eps_0, +eps_1, ...
            points[1::2] = x - sigma * eps
            evaluated = fc.many(points)
            values = np.concatenate([evaluated[0::2], evaluated[1::2]])
            ranks = _centered_ranks(values)
            g = (ranks[:pairs] - ranks[pairs:]) @ eps / (pop_n * sigma) + wd * x
            step += 1
            if optimizer == "adam":
                m = beta1 * m + (1 - beta1) * g
                v = beta2 * v + (1 - beta2) * g * g
                m_hat = m / (1 - beta1**step)
                v_hat = v / (1 - beta2**step)
                x = x - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
            else:
                m = momentum * m + g
                x = x - lr * m
            fc.set_iterate(x)
            fc.report(x)

    return _run(name, f, x0, budget, time_budget, callback, body, reserve=1, vectorized=vectorized)


# --------------------------------------------------------------------------------------------
# SPSA
# --------------------------------------------------------------------------------------------


def spsa(
    f: Objective,
    x0: np.ndarray,
    *,
    budget: int,
    seed: Seed,
    time_budget: float | None = None,
    callback: Callable[[Progress], Any] | None = None,
    vectorized: bool = False,
    a: float | None = None,
    c: float = 0.1,
    A: float | None = None,
    alpha: float = 0.602,
    gamma: float = 0.101,
    initial_step: float = 0.1,
    eval_every: int = 10,
) -> OptimizeResult:
    """Simultaneous perturbation stochastic approximation (Spall, 1992).

    Step ``k = 0, 1, ...`` draws a random sign vector ``Delta`` (each entry +1 or -1) and
    estimates the whole gradient from two evaluations, whatever the dimension::

        g_k = (f(x + c_k Delta) - f(x - c_k Delta)) / (2 c_k) * Delta
        x  <- x - a_k g_k,   a_k = a / (k + 1 + A)**alpha,   c_k = c / (k + 1)**gamma

    with Spall's standard exponents ``alpha = 0.602``, ``gamma = 0.101`` (Spall, 1998,
    "Implementation of the simultaneous perturbation algorithm").

    Options:
        c: perturbation size (about the noise level of ``f``; for a noise-free ``f`` small).
        A: stability constant; ``None`` uses Spall's guideline, 10 % of the number of steps
            the budget allows.
        a: gain; ``None`` calibrates it from the first gradient estimate (no extra cost) so
            that the first step moves each coordinate by ``initial_step`` on average.
        eval_every: evaluate the iterate every ``eval_every`` steps (0: only at the end).

    Cost: 2 evaluations per step, plus 1 every ``eval_every`` steps; one is kept back for
    the final iterate.
    """
    name = "spsa"
    rng = seeded_generator(seed, name)
    c = _positive(c, "c", name)
    initial_step = _positive(initial_step, "initial_step", name)
    eval_every = _count(eval_every, "eval_every", name, 0)
    if a is not None:
        _positive(a, "a", name)
    if A is not None:
        _positive(A, "A", name, allow_zero=True)

    def body(fc: _Counter, x: np.ndarray) -> str:
        per_step = 2.0 + (1.0 / eval_every if eval_every else 0.0)
        stability = 0.1 * max(fc.budget - 1, 1) / per_step if A is None else float(A)
        gain = a
        k = 0
        fc.set_iterate(x)
        while True:
            if eval_every and k % eval_every == 0:
                fc.eval_iterate()
            ck = c / (k + 1) ** gamma
            delta = 2.0 * rng.integers(0, 2, size=x.size) - 1.0
            pair = fc.many(np.stack([x + ck * delta, x - ck * delta]))
            diff = pair[0] - pair[1]
            g = diff / (2.0 * ck) * delta
            if gain is None and np.isfinite(diff) and diff != 0.0:
                gain = initial_step * (stability + 1.0) ** alpha / float(np.mean(np.abs(g)))
            if gain is not None and np.isfinite(diff):
                x = x - gain / (k + 1 + stability) ** alpha * g
            k += 1
            fc.set_iterate(x)
            fc.report(x)

    return _run(name, f, x0, budget, time_budget, callback, body, reserve=1, vectorized=vectorized)


# --------------------------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------------------------


def _fd(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float, method: str, fx: float | None
) -> np.ndarray:
    """The finite-difference gradient of ``f`` at ``x`` (1-D float64), one coordinate at a time."""
    work = np.array(x, dtype=np.float64)
    grad = np.empty_like(work)
    if method == "forward" and fx is None:
        fx = float(f(work.copy()))
    for i in range(work.size):
        xi = work[i]
        work[i] = xi + h
        up = work[i]  # the step actually taken, after rounding: (xi + h) - xi may differ from h
        f_up = float(f(work.copy()))
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: the caller checks
            if method == "central":
                work[i] = xi - h
                down = work[i]
                f_down = float(f(work.copy()))
                grad[i] = (f_up - f_down) / (up - down)
            else:
                grad[i] = (f_up - fx) / (up - xi)
        work[i] = xi
    return grad


def _fd_rows(
    rows: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float, method: str,
    fx: float | None,
) -> np.ndarray:
    """The same gradient as :func:`_fd`, from the same probes in the same order, evaluated
    ``BLOCK_ROWS`` at a time by ``rows`` (a function of a ``(k, P)`` array of points)."""
    x = np.array(x, dtype=np.float64)
    n = x.size
    grad = np.empty_like(x)
    if method == "forward" and fx is None:
        fx = float(rows(x[None, :])[0])
    up = x + h  # the steps actually taken, after rounding, as in _fd
    down = x - h
    per_block = BLOCK_ROWS // 2 if method == "central" else BLOCK_ROWS
    for start in range(0, n, per_block):
        idx = np.arange(start, min(start + per_block, n))
        k = idx.size
        if method == "central":
            block = np.repeat(x[None, :], 2 * k, axis=0)
            block[2 * np.arange(k), idx] = up[idx]  # rows +h e_i, -h e_i, +h e_(i+1), ...
            block[2 * np.arange(k) + 1, idx] = down[idx]
            values = rows(block)
            with np.errstate(invalid="ignore", over="ignore"):
                grad[idx] = (values[0::2] - values[1::2]) / (up[idx] - down[idx])
        else:
            block = np.repeat(x[None, :], k, axis=0)
            block[np.arange(k), idx] = up[idx]
            values = rows(block)
            with np.errstate(invalid="ignore", over="ignore"):
                grad[idx] = (values - fx) / (up[idx] - x[idx])
    return grad


def fd_gradient(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    h: float = 1e-5,
    method: str = "central",
    fx: float | None = None,
    vectorized: bool = False,
) -> tuple[np.ndarray, int]:
    """Finite-difference gradient of a scalar ``f`` at ``x``; returns ``(grad, evaluations)``.

    ``central``: ``(f(x + h e_i) - f(x - h e_i)) / 2h``, error O(h^2), ``2P`` evaluations.
    ``forward``: ``(f(x + h e_i) - f(x)) / h``, error O(h), ``P + 1`` evaluations (``P`` when
    ``fx = f(x)`` is passed in). ``x`` may have any shape; ``grad`` has the same shape, and
    ``f`` is called with arrays of that shape (fresh copies). The divisor is the step
    actually taken after floating-point rounding, which makes the result slightly more accurate.

    ``vectorized=True``: ``f`` takes a stack of points of shape ``(k, *x.shape)`` and returns
    their ``k`` values; the probes are passed ``BLOCK_ROWS`` at a time, and ``evaluations``
    still counts points (the gradient and the count are those of ``vectorized=False``).
    """
    if method not in ("central", "forward"):
        raise ValueError(f"fd_gradient: method must be 'central' or 'forward', got {method!r}")
    h = _positive(h, "h", "fd_gradient")
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape
    calls = 0

    if vectorized:
        def rows(block: np.ndarray) -> np.ndarray:
            nonlocal calls
            calls += block.shape[0]
            out = np.asarray(f(block.reshape((block.shape[0], *shape))), dtype=np.float64)
            if out.shape != (block.shape[0],):
                raise ValueError(
                    f"fd_gradient: a vectorized f must return one value per point: called with "
                    f"{block.shape[0]} points of shape {shape}, it returned shape {out.shape}"
                )
            return out

        grad = _fd_rows(rows, x.ravel(), h, method, fx)
        return grad.reshape(shape), calls

    def flat_f(v: np.ndarray) -> float:
        nonlocal calls
        calls += 1
        return _scalar(f(v.reshape(shape)))

    grad = _fd(flat_f, x.ravel(), h, method, fx)
    return grad.reshape(shape), calls


def finite_difference_descent(
    f: Objective,
    x0: np.ndarray,
    *,
    budget: int,
    seed: Seed | None = None,
    time_budget: float | None = None,
    callback: Callable[[Progress], Any] | None = None,
    vectorized: bool = False,
    learning_rate: float = 0.01,
    h: float = 1e-5,
    method: str = "central",
    momentum: float = 0.0,
) -> OptimizeResult:
    """Gradient descent on a finite-difference gradient (see :func:`fd_gradient`).

    Each step evaluates ``f(x)`` (recorded in ``history``, and reused by the forward
    difference), estimates the gradient, and moves ``x <- x - learning_rate * v`` with
    ``v <- momentum * v + grad`` (plain gradient descent for ``momentum = 0``).

    Cost: ``2P + 1`` evaluations per step for ``method="central"``, ``P + 1`` for
    ``"forward"`` (with ``vectorized=True``, the probes go to ``f`` ``BLOCK_ROWS`` at a
    time); one evaluation is kept back for the final iterate. A step cut short by
    the budget is not taken (its evaluations still count). A non-finite gradient (the
    iterate ran off to where ``f`` overflows: the learning rate is too large) stops the run
    with ``message="diverged"``. ``seed`` is accepted for the common interface and not used.
    """
    name = "finite_difference_descent"
    if method not in ("central", "forward"):
        raise ValueError(f"{name}: method must be 'central' or 'forward', got {method!r}")
    lr = _positive(learning_rate, "learning_rate", name)
    h = _positive(h, "h", name)
    mu = _positive(momentum, "momentum", name, allow_zero=True)

    def body(fc: _Counter, x: np.ndarray) -> str:
        velocity = np.zeros_like(x)
        fc.set_iterate(x)
        while True:
            fx = fc.eval_iterate()
            grad = _fd_rows(fc.many, x, h, method, fx) if fc.vectorized else _fd(fc, x, h, method, fx)
            if not np.all(np.isfinite(grad)):
                return "diverged"
            velocity = mu * velocity + grad
            x = x - lr * velocity
            fc.set_iterate(x)
            fc.report(x)

    return _run(name, f, x0, budget, time_budget, callback, body, reserve=1, vectorized=vectorized)


METHODS: dict[str, Callable[..., OptimizeResult]] = {
    "nelder_mead": nelder_mead,
    "simulated_annealing": simulated_annealing,
    "genetic_algorithm": genetic_algorithm,
    "evolution_strategies": evolution_strategies,
    "spsa": spsa,
    "finite_difference_descent": finite_difference_descent,
}
"""Every method by name, for loops that compare them under one budget."""


# --------------------------------------------------------------------------------------------
# Between modules and flat vectors
# --------------------------------------------------------------------------------------------


def _param_list(params: Iterable[Any], where: str) -> list[Any]:
    if callable(getattr(params, "parameters", None)):
        params = params.parameters()
    out = list(params)
    for i, p in enumerate(out):
        if not isinstance(getattr(p, "data", None), np.ndarray):
            raise TypeError(
                f"{where}: parameter {i} has no numpy array .data (got {type(p).__name__}); "
                f"pass objects such as module.parameters() whose .data is an np.ndarray"
            )
    return out


def parameters_to_vector(params: Iterable[Any]) -> np.ndarray:
    """Concatenate the ``.data`` arrays of ``params`` (flattened, in order) into one float64 vector.

    As ``torch.nn.utils.parameters_to_vector``. ``params`` is an iterable of objects with a
    numpy ``.data`` array, e.g. ``module.parameters()`` (a module itself is accepted too).
    The vector is a copy: changing it does not change the parameters.
    """
    plist = _param_list(params, "parameters_to_vector")
    if not plist:
        return np.zeros(0, dtype=np.float64)
    return np.concatenate([np.asarray(p.data, dtype=np.float64).ravel() for p in plist])


def vector_to_parameters(vec: np.ndarray, params: Iterable[Any]) -> None:
    """Write the 1-D ``vec`` into the ``.data`` arrays of ``params``, in order, in place.

    The inverse of :func:`parameters_to_vector`. Unlike torch, which rebinds ``param.data``,
    this writes into the existing arrays, so anything holding them (an optimiser) sees the
    new values. ``vec`` must have exactly as many elements as the parameters hold.
    """
    plist = _param_list(params, "vector_to_parameters")
    vec = np.asarray(vec)
    expected = sum(p.data.size for p in plist)
    if vec.ndim != 1 or vec.size != expected:
        shapes = [tuple(p.data.shape) for p in plist]
        raise ValueError(
            f"vector_to_parameters: vec must be 1-D with {expected} elements (the parameters "
            f"have shapes {shapes}), got shape {vec.shape}"
        )
    start = 0
    for p in plist:
        n = p.data.size
        p.data[...] = vec[start : start + n].reshape(p.data.shape)
        start += n


def make_objective(params: Iterable[Any], loss_fn: Callable[[], Any]) -> Objective:
    """Turn a model into ``f(vec) -> float`` for the methods here.

    ``params`` is ``module.parameters()`` (or the module); ``loss_fn()`` takes no arguments
    and returns the loss computed with the current parameter values (a number, a 0-d array
    or anything with a scalar ``.data``, e.g. an nnlib Tensor). ``f(vec)`` writes ``vec``
    into the parameters and returns ``float(loss_fn())``. Start from
    ``x0 = parameters_to_vector(params)``; after a run, ``vector_to_parameters(result.x,
    params)`` loads the best point into the model. Build the loss without recording a graph
    (e.g. inside ``no_grad()``) when no backward pass is needed: it is faster.
    """
    plist = _param_list(params, "make_objective")

    def objective(vec: np.ndarray) -> float:
        vector_to_parameters(vec, plist)
        return _scalar(loss_fn())

    return objective


# --------------------------------------------------------------------------------------------
# A batched objective: an MLP's loss for a whole population of parameter vectors
# --------------------------------------------------------------------------------------------

_MLP_ACTIVATIONS = ("relu", "tanh", "sigmoid", "step")
_SINGLE_THREAD_MNK = 2**18
_MLP_LOSSES = ("cross_entropy", "error_rate")


class MLPObjective:
    """The loss of a multilayer perceptron on a fixed data set, as a function of its flat
    parameter vector: for one vector, or for a population of them in one batched computation.

    The network is ``nnlib.nn.MLP(sizes, activation)``: ``Linear(sizes[0], sizes[1])``, the
    activation, ..., ``Linear(sizes[-2], sizes[-1])`` giving logits. A parameter vector is laid
    out as ``parameters_to_vector(nn.MLP(sizes).parameters())``: ``W1`` (out, in) row by row,
    ``b1``, ``W2``, ``b2``, ... So ``f(parameters_to_vector(model))`` is the loss of ``model``.

    ``f(v)`` with ``v`` of shape ``(P,)`` returns a float; with ``v`` of shape ``(k, P)`` (one
    point per row, as ``vectorized=True`` passes them) it returns the ``k`` losses, computed
    together: each layer is one stacked matmul ``(k, N, in) @ (k, in, out)``, in chunks of at
    most ``max_floats`` activations (``k * N * width``; the default, 1 MB of float64, keeps a
    chunk in cache, which measured faster than larger chunks). A row's loss does not depend on
    the other rows.

    Args:
        sizes: layer widths, e.g. ``[64, 128, 10]`` (P = 64*128 + 128 + 128*10 + 10 = 9,610).
        X: ``(N, sizes[0])`` inputs; y: ``(N,)`` integer labels in ``0 .. sizes[-1] - 1``.
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"``, or ``"step"`` (Heaviside: 1 where
            ``z > 0``, else 0; its derivative is 0 wherever it exists, so backprop through it
            gives no gradient, which is why nnlib has no such op).
        loss: ``"cross_entropy"`` (the batch mean of softmax cross-entropy, as
            ``F.cross_entropy``) or ``"error_rate"`` (the fraction of examples whose largest
            logit is not the label, first index on ties as ``np.argmax``: a piecewise-constant
            function of the parameters, whose gradient is 0 almost everywhere).

    Attributes: ``n_params`` (P), ``macs_per_example`` (multiply-adds of one forward pass per
    example, ``sum(in * out)``), ``evaluations`` (points evaluated so far: an independent
    count of a run's cost).
    """

    def __init__(self, sizes, X: np.ndarray, y: np.ndarray, activation: str = "relu",
                 loss: str = "cross_entropy", max_floats: int = 2**17) -> None:
        where = "MLPObjective"
        self.sizes = [int(_count(s, "every layer size", where, 1)) for s in sizes]
        if len(self.sizes) < 2:
            raise ValueError(f"{where}: sizes needs an input and an output size, got {list(sizes)}")
        if activation not in _MLP_ACTIVATIONS:
            raise ValueError(f"{where}: activation must be one of {_MLP_ACTIVATIONS}, got {activation!r}")
        if loss not in _MLP_LOSSES:
            raise ValueError(f"{where}: loss must be one of {_MLP_LOSSES}, got {loss!r}")
        self.X, self.y = self._check_data(X, y, where)
        self.activation, self.loss = activation, loss
        self.max_floats = _count(max_floats, "max_floats", where, 1)
        self._layers: list[tuple[int, int, int, int]] = []  # (weight offset, bias offset, in, out)
        offset = 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            self._layers.append((offset, offset + n_in * n_out, n_in, n_out))
            offset += n_in * n_out + n_out
        self.n_params = offset
        self.macs_per_example = sum(n_in * n_out for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]))
        self.evaluations = 0

    def _check_data(self, X, y, where: str) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"{where}: X must have shape (N, {self.sizes[0]}) for sizes "
                             f"{self.sizes}, got {X.shape}")
        if y.shape != (X.shape[0],) or y.dtype.kind not in "iu":
            raise ValueError(f"{where}: y must hold {X.shape[0]} integer labels (shape "
                             f"({X.shape[0]},)), got shape {y.shape} and dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= self.sizes[-1]):
            raise ValueError(f"{where}: labels must lie in 0..{self.sizes[-1] - 1}, got "
                             f"values from {y.min()} to {y.max()}")
        return X, y.astype(np.int64)

    def _points(self, v, where: str) -> tuple[np.ndarray, bool]:
        V = np.asarray(v, dtype=np.float64)
        single = V.ndim == 1
        if single:
            V = V[None, :]
        if V.ndim != 2 or V.shape[1] != self.n_params:
            raise ValueError(
                f"MLPObjective.{where}: expected a parameter vector of shape ({self.n_params},) "
                f"or a population of shape (k, {self.n_params}) for sizes {self.sizes}, got "
                f"shape {np.shape(v)}"
            )
        return V, single

    def unflatten(self, v: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(W1, b1), (W2, b2), ...]`` of one vector (views): ``W`` is (out, in) as nn.Linear."""
        V, single = self._points(v, "unflatten")
        if not single:
            raise ValueError("MLPObjective.unflatten: takes one parameter vector, got a population")
        return [(V[0, w : w + n_in * n_out].reshape(n_out, n_in), V[0, b : b + n_out])
                for w, b, n_in, n_out in self._layers]

    def _act(self, Z: np.ndarray) -> np.ndarray:
        if self.activation == "relu":
            return np.maximum(Z, 0.0)
        if self.activation == "tanh":
            return np.tanh(Z)
        if self.activation == "sigmoid":
            return 0.5 * (1.0 + np.tanh(0.5 * Z))  # never overflows
        return (Z > 0.0).astype(np.float64)

    def _logits(self, V: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(k, N, C) logits of the k rows of V on X.

        The examples are split into blocks small enough that every matrix product stays
        below OpenBLAS's threshold for using several threads (m * n * k <= 2**18): the
        population already supplies independent work, and threads started inside each small
        product mostly spin, which multiplies the CPU time (by 5 and more on a busy machine)
        for little gain in wall time."""
        k, n = V.shape[0], X.shape[0]
        rows = max(1, _SINGLE_THREAD_MNK // max(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:])))
        blocks = -(-n // rows)
        if blocks > 1:  # (blocks, rows, in), zero rows padding the last block
            padded = np.zeros((blocks * rows, X.shape[1]))
            padded[:n] = X
            H = padded.reshape(blocks, rows, X.shape[1])
        else:
            H = X[None]
        for i, (w, b, n_in, n_out) in enumerate(self._layers):
            W = V[:, w : w + n_in * n_out].reshape(k, 1, n_out, n_in)
            Z = H @ W.transpose(0, 1, 3, 2) + V[:, None, None, b : b + n_out]
            H = self._act(Z) if i < len(self._layers) - 1 else Z
        return H.reshape(k, -1, H.shape[-1])[:, :n]

    def _chunks(self, k: int, n: int):
        rows = max(1, self.max_floats // max(1, n * max(self.sizes[1:])))
        return [(s, min(s + rows, k)) for s in range(0, k, rows)]

    def logits(self, v: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """The logits on ``X`` (default: the objective's own inputs): ``(N, C)`` for one
        vector, ``(k, N, C)`` for a population."""
        V, single = self._points(v, "logits")
        X = self.X if X is None else np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"MLPObjective.logits: X must have shape (N, {self.sizes[0]}), got {X.shape}")
        out = np.concatenate([self._logits(V[s:e], X) for s, e in self._chunks(V.shape[0], X.shape[0])])
        return out[0] if single else out

    def accuracy(self, v: np.ndarray, X: np.ndarray | None = None, y: np.ndarray | None = None):
        """Fraction of examples whose largest logit is the label (on the objective's own data
        by default); a float for one vector, a ``(k,)`` array for a population."""
        if (X is None) != (y is None):
            raise ValueError("MLPObjective.accuracy: pass both X and y, or neither")
        X, y = (self.X, self.y) if X is None else self._check_data(X, y, "MLPObjective.accuracy")
        V, single = self._points(v, "accuracy")
        acc = np.concatenate([np.mean(np.argmax(self._logits(V[s:e], X), axis=-1) == y, axis=-1)
                              for s, e in self._chunks(V.shape[0], X.shape[0])])
        return float(acc[0]) if single else acc

    def _loss(self, V: np.ndarray) -> np.ndarray:
        Z = self._logits(V, self.X)
        if self.loss == "error_rate":
            return np.mean(np.argmax(Z, axis=-1) != self.y, axis=-1)
        top = Z.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(Z - top).sum(axis=-1)) + top[..., 0]
        picked = np.take_along_axis(Z, self.y[None, :, None], axis=-1)[..., 0]
        return np.mean(lse - picked, axis=-1)

    def __call__(self, v: np.ndarray):
        V, single = self._points(v, "__call__")
        self.evaluations += V.shape[0]
        values = np.concatenate([self._loss(V[s:e]) for s, e in self._chunks(V.shape[0], self.X.shape[0])])
        return float(values[0]) if single else values

    def __repr__(self) -> str:
        return (f"MLPObjective(sizes={self.sizes}, activation={self.activation!r}, "
                f"loss={self.loss!r}, N={self.X.shape[0]}, P={self.n_params})")
