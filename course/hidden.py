"""Hidden tests: the ``Exercise`` description and the comparison that explains wrong answers.

This module runs in the grader's process (and in the learner's kernel, for the visible check
cells). It never runs learner code itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Mapping, Sequence

import numpy as np

Case = dict[str, Any]
Outputs = dict[str, Any]


def _one_case(rng: np.random.Generator) -> list[Case]:
    return [{}]


@dataclass(frozen=True)
class Exercise:
    """One graded exercise of a chapter (see docs/authoring.md).

    ``call(ns, inp)`` runs in the sandbox (only its source text is sent, so it must be a
    top-level ``def`` that imports what it needs). ``inputs(rng)``, ``expected(inp)``,
    ``mistakes`` and ``check`` run only in the grader's process.

    ``batch_key`` names the input that gives the batch size (its first dimension if it is an
    array, its value if it is a number), so an answer off by exactly that factor is explained
    as a sum where a mean was asked (or the other way round).

    ``dtype`` (e.g. ``"float64"``): the dtype every array output must have, as the exercise's
    docstring promises; right values of another dtype fail, and the message says so.

    ``exact`` maps an output key to the message shown when it is not exactly (bit for bit) the
    expected value: for data the call returns so that the grader can check a property itself,
    e.g. the caller's input as it is after the learner's function ran ("x was modified").
    Never compute such a property inside ``call``: learner code runs in that process and can
    forge anything computed there (patch ``np.array_equal`` from a default argument, say).

    ``tolerance(inp) -> (rtol, atol)`` (optional) replaces ``rtol``/``atol`` for one case, for
    answers whose attainable accuracy depends on the inputs (the conditioning of a linear
    system, the precision of float32 inputs). It runs in the grader's process, derives the bound
    from the inputs (never from the learner's output), and the exercise's mistakes are matched
    at the same tolerance, so it must stay well below the difference a mistake makes.
    """
    id: str
    points: float
    needs: tuple[str, ...]
    call: Callable[[dict[str, Any], Case], Outputs]
    expected: Callable[[Case], Outputs]
    inputs: Callable[[np.random.Generator], Sequence[Case]] = _one_case
    rtol: float = 1e-6
    atol: float = 1e-8
    mistakes: Mapping[str, Callable[[Case], Outputs]] = field(default_factory=dict)
    check: Callable[[Case, Outputs, Outputs], str | None] | None = None
    batch_key: str | None = None
    timeout: float | None = None
    dtype: str | None = None
    exact: Mapping[str, str] = field(default_factory=dict)
    tolerance: Callable[[Case], tuple[float, float]] | None = None

    def tolerances(self, inp: Case) -> tuple[float, float]:
        """The (rtol, atol) of one case: ``tolerance(inp)`` when given, else ``rtol``, ``atol``."""
        if self.tolerance is None:
            return self.rtol, self.atol
        rtol, atol = self.tolerance(inp)
        return float(rtol), float(atol)

    def batch_size(self, inp: Case) -> int | None:
        if self.batch_key is None or self.batch_key not in inp:
            return None
        v = inp[self.batch_key]
        if isinstance(v, np.ndarray):
            return int(v.shape[0]) if v.ndim >= 1 else None
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return int(v)
        return None


# --------------------------------------------------------------------------------------------
# Describing values in words

def excerpt(v: Any, limit: int = 6) -> str:
    """A short, readable rendering of a value: at most ``limit`` numbers, with the shape."""
    if isinstance(v, (str, np.str_)):
        s = str(v)
        return repr(s if len(s) <= 60 else s[:57] + "...")
    if v is None:
        return "None"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    arr = np.asarray(v)
    if arr.dtype.kind not in "biufc":
        return f"a {type(v).__name__}"
    if arr.ndim == 0:
        return _fmt(arr.item())
    flat = arr.ravel()
    body = ", ".join(_fmt(x) for x in flat[:limit].tolist())
    more = ", ..." if flat.size > limit else ""
    return f"[{body}{more}] (shape {tuple(arr.shape)})"


def _fmt(x: Any) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, complex):
        return f"{x:.4g}"
    return f"{x:.4g}"


def describe_inputs(inp: Case) -> str:
    parts = []
    for k, v in inp.items():
        if isinstance(v, np.ndarray) and v.ndim > 0:
            parts.append(f"{k} of shape {tuple(v.shape)}")
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, np.ndarray) for x in v):
            parts.append(f"{k}: {len(v)} arrays of shapes {', '.join(str(tuple(x.shape)) for x in v[:6])}"
                         + (", ..." if len(v) > 6 else ""))
        elif isinstance(v, (list, tuple)):
            text = repr(list(v))
            parts.append(f"{k}={text if len(text) <= 60 else text[:57] + '...'}")
        else:
            parts.append(f"{k}={excerpt(v)}")
    return ", ".join(parts)


def _factor_words(c: float) -> str:
    fr = Fraction(c).limit_denominator(1000)
    if fr.denominator == 1:
        return f"{fr.numerator}"
    if fr.numerator == 1:
        return f"1/{fr.denominator}"
    return f"{c:.4g}"


# --------------------------------------------------------------------------------------------
# Comparison

class InvalidOutput(Exception):
    """The learner's result is of the wrong kind (a string for a number, ...)."""


def _is_textual(v: Any) -> bool:
    return isinstance(v, (str, np.str_)) or (isinstance(v, np.ndarray) and v.dtype.kind == "U")


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    try:
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))
    except (TypeError, ValueError):
        return False


def dtype_problem(got: Any, dtype: str | None) -> str | None:
    """A message when ``got`` is an array of another dtype than the one an exercise promises."""
    if dtype is None or not isinstance(got, (np.ndarray, np.generic)):
        return None
    if np.dtype(got.dtype) == np.dtype(dtype):
        return None
    return (f"your result has dtype {got.dtype} where the docstring asks for {np.dtype(dtype)}"
            + (" (work on a float64 copy: np.asarray(x, dtype=np.float64))"
               if np.dtype(dtype) == np.float64 and got.dtype.kind == "f" else ""))


def diagnose_value(got: Any, want: Any, rtol: float = 1e-6, atol: float = 1e-8,
                   batch: int | None = None,
                   mistakes: Mapping[str, Any] | None = None,
                   dtype: str | None = None) -> str | None:
    """None when ``got`` matches ``want``; otherwise a message in words saying how it differs.

    ``dtype``: the dtype ``got`` must have (right values of another dtype are wrong).
    Raises InvalidOutput when ``got`` is not even the right kind of value.
    """
    mistakes = mistakes or {}
    if got is None and want is not None:
        raise InvalidOutput("returned None: did you forget the `return` statement?")
    # text and choices
    if _is_textual(want):
        if not _is_textual(got):
            raise InvalidOutput(f"expected text like {excerpt(want)}, got {excerpt(got)}")
        if str(got).strip().casefold() == str(want).strip().casefold():
            return None
        for name, m in mistakes.items():
            if _is_textual(m) and str(got).strip().casefold() == str(m).strip().casefold():
                return f"{name}: expected {excerpt(want)}, got {excerpt(got)}"
        return f"expected {excerpt(want)}, got {excerpt(got)}"
    if _is_textual(got):
        raise InvalidOutput(f"expected a number or array, got text {excerpt(got)}")
    if isinstance(want, (bool, np.bool_)):
        g = np.asarray(got)
        if g.shape != () or g.dtype.kind not in "biu":
            raise InvalidOutput(f"expected True or False, got {excerpt(got)}")
        return None if bool(g) == bool(want) else f"expected {bool(want)}, got {bool(g)}"
    w = np.asarray(want)
    g = np.asarray(got)
    if g.dtype.kind not in "biufc":
        raise InvalidOutput(f"expected numbers, got {type(got).__name__}")
    wf = w.astype(np.complex128 if w.dtype.kind == "c" else np.float64)
    gf = g.astype(np.complex128 if g.dtype.kind == "c" else np.float64)
    # shape
    if g.shape != w.shape:
        if g.ndim == 2 and g.shape == w.shape[::-1] and _close(gf.T, wf, rtol, atol):
            return (f"transposed: expected shape {tuple(w.shape)}, got {tuple(g.shape)} with the "
                    "right values in the transposed layout")
        if g.size == w.size and _close(gf.reshape(w.shape), wf, rtol, atol):
            return (f"right values but wrong shape: expected {tuple(w.shape)}, got "
                    f"{tuple(g.shape)} (a missing reshape, keepdims or squeeze?)")
        if batch and w.ndim >= 1 and g.shape == w.shape[1:] and g.ndim < w.ndim:
            return (f"wrong shape: expected {tuple(w.shape)} (one row per example of the batch "
                    f"of {batch}), got {tuple(g.shape)}: did you sum or average over the batch?")
        if batch and g.ndim == w.ndim + 1 and g.shape[1:] == w.shape and g.shape[0] == batch:
            return (f"wrong shape: expected {tuple(w.shape)}, got {tuple(g.shape)}: one value per "
                    "example where the batch should have been reduced (sum or mean)")
        return f"wrong shape: expected {tuple(w.shape)}, got {tuple(g.shape)}"
    # NaN / inf
    bad_g, bad_w = ~np.isfinite(gf), ~np.isfinite(wf)
    if (bad_g & ~bad_w).any():
        n = int((bad_g & ~bad_w).sum())
        kind = "NaN" if np.isnan(gf[bad_g & ~bad_w]).any() else "inf"
        return (f"{n} of {g.size} values are {kind} where finite numbers were expected "
                "(an overflow, e.g. exp of a large number, or a division by zero?)")
    if _close(gf, wf, rtol, atol):
        return dtype_problem(got, dtype)
    diff = f"expected {excerpt(w)}, got {excerpt(g)}"
    # the exercise's own plausible mistakes
    for name, m in mistakes.items():
        try:
            mv = np.asarray(m, dtype=wf.dtype)
        except (TypeError, ValueError):
            continue
        if _close(gf, mv, rtol, atol):
            return f"this looks like {name}: {diff}"
    if w.dtype.kind in "fc" and g.dtype.kind in "biu" and _close(gf, np.trunc(wf.real), 0, 1e-12):
        return (f"your result has integer dtype ({g.dtype}) where floats were expected: the "
                f"values were truncated: {diff}")
    if g.dtype == np.float32 and w.dtype == np.float64 and _close(gf, wf, 1e-4, 1e-6):
        return f"close, but your result is float32 where float64 was expected: {diff}"
    if np.any(wf != 0) and _close(gf, -wf, rtol, atol):
        return f"wrong sign: you returned the negative of the expected values: {diff}"
    scale = _constant_factor(gf, wf, rtol, atol)
    if scale is not None:
        if batch and batch > 1 and math.isclose(scale, batch, rel_tol=1e-6):
            return (f"off by a factor of {batch}, the batch size: a sum where a mean was asked: "
                    f"{diff}")
        if batch and batch > 1 and math.isclose(scale, 1 / batch, rel_tol=1e-6):
            return (f"off by a factor of 1/{batch}, the batch size: a mean where a sum was "
                    f"asked: {diff}")
        # any one number is a constant times another: a factor only means something for an
        # array, or when it is one of the factors that mistakes produce
        # a factor just outside the tolerance of +-1 (1.0000003, -0.9996) would print as "1" or
        # "-1", which explains nothing: those answers get the generic message below
        words = _factor_words(scale)
        if words not in ("1", "-1") and (
                w.size > 1 or any(math.isclose(scale, f, rel_tol=1e-6) for f in _MEANINGFUL_FACTORS)):
            return f"off by a constant factor of {words}: {diff}"
    if w.size == 1:
        if w.ndim == 0 and g.ndim == 0 and w.dtype.kind in "biuf" and g.dtype.kind in "biuf":
            a, b = _distinct(w.item(), g.item())
            return f"expected {a}, got {b}"
        return f"expected {excerpt(w)}, got {excerpt(g)}"
    where = _largest_difference(gf, wf)
    if g.dtype.kind in "fc" and w.dtype.kind in "fc":
        err = float(np.nanmax(np.abs(gf - wf)))
        return f"wrong values (largest difference {err:.3g}{where}): {diff}"
    return f"wrong values{where}: {diff}"


#: Factors between a wrong scalar and the right one that a mistake explains (a forgotten or
#: extra 2 or 1/2 from a square, a mean over two entries).
_MEANINGFUL_FACTORS = (2.0, 0.5, 4.0, 0.25)


def _largest_difference(g: np.ndarray, w: np.ndarray) -> str:
    """' at index (i, j): expected a, got b' for the entry that differs most (NaN counts most)."""
    if g.shape != w.shape or g.size == 0:
        return ""
    d = np.abs(g - w).astype(np.float64) if g.dtype.kind != "c" else np.abs(g - w)
    d = np.where(np.isnan(d), np.inf, d)
    flat = int(np.argmax(d))
    idx = tuple(int(i) for i in np.unravel_index(flat, w.shape))
    shown = idx[0] if len(idx) == 1 else idx
    a, b = _distinct(w.ravel()[flat].item(), g.ravel()[flat].item())
    return f" at index {shown}: expected {a}, got {b}"


def _distinct(a: Any, b: Any) -> tuple[str, str]:
    """Two numbers with as few significant digits (4 at least) as it takes to tell them apart."""
    if isinstance(a, complex) or isinstance(b, complex) or isinstance(a, bool) or isinstance(b, bool):
        return _fmt(a), _fmt(b)
    for digits in range(4, 18):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb:
            return sa, sb
    return repr(a), repr(b)


def _constant_factor(g: np.ndarray, w: np.ndarray, rtol: float, atol: float) -> float | None:
    if w.size == 0 or not np.all(np.isfinite(w)) or not np.all(np.isfinite(g)):
        return None
    if w.dtype.kind == "c" or g.dtype.kind == "c":
        return None
    denom = float(np.vdot(w, w))
    if denom == 0.0:
        return None
    c = float(np.vdot(w, g)) / denom
    # a factor within the tolerance of +-1 is no factor: those are "wrong values" or "wrong sign"
    if c == 0.0 or math.isclose(abs(c), 1.0, rel_tol=max(rtol, 1e-9)):
        return None
    return c if _close(g, c * w, max(rtol, 1e-9), atol * abs(c) + atol) else None


# --------------------------------------------------------------------------------------------
# Multiple choice

_CHOICE_STRIP = " \t\n\r\"'`()[]{}.,;:"


def normalize_choice(value: Any) -> Any:
    """The form in which a multiple-choice answer is compared, by the visible check and the
    grader alike: text without case, surrounding spaces, quotes or brackets (" (B) " -> "b"); a
    list, tuple or array as a tuple of such texts; anything else as its text."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return tuple(normalize_choice(v) for v in value)
    if isinstance(value, np.ndarray):
        value = value.item()
    return str(value).strip(_CHOICE_STRIP).strip().casefold()


def _choice_call(ns, inp):
    value = ns[inp["name"]]
    if isinstance(value, (list, tuple)):
        return {"answer": [str(v) for v in value][:100]}
    return {"answer": str(value)[:1000]}


def multiple_choice(id: str, points: float, name: str, answer: str, options: Sequence[str],
                    wrong: Mapping[str, str] | None = None) -> Exercise:
    """An exercise whose answer is one of ``options``, bound to ``name`` in an exercise cell.

    ``wrong`` maps a wrong option to why it is wrong (shown to the learner who chose it). The
    message of a wrong answer never names the right option."""
    options = [normalize_choice(o) for o in options]
    answer = normalize_choice(answer)
    wrong = {normalize_choice(k): v for k, v in (wrong or {}).items()}
    if answer not in options or not set(wrong) <= set(options) - {answer}:
        raise ValueError(f"{id}: the answer and the explained wrong options must be among {options}")
    listed = ", ".join(repr(o) for o in options)

    def check(inp: Case, got: Outputs, want: Outputs) -> str | None:
        g = normalize_choice(got.get("answer"))
        if g == answer:
            return None
        if g not in options:
            return f"`{name}` = {got.get('answer')!r} is not one of {listed}"
        why = wrong.get(g)
        return f"{g!r} is not the right answer" + (f": {why}" if why else "")

    return Exercise(id=id, points=points, needs=(name,), call=_choice_call,
                    expected=lambda inp: {"answer": answer}, inputs=lambda rng: [{"name": name}],
                    check=check)


def _exact_problem(got: Any, want: Any, message: str) -> str | None:
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape:
        return f"{message} (its shape changed from {w.shape} to {g.shape})"
    if g.dtype.kind not in "biufc" or w.dtype.kind not in "biufc":
        return None if np.array_equal(g, w) else message
    if np.array_equal(g, w, equal_nan=True):
        return None
    diff = np.abs(g.astype(np.complex128) - w.astype(np.complex128))
    diff[np.isnan(diff)] = np.inf
    idx = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    where = f" at index {tuple(int(i) for i in idx)}" if diff.ndim else ""
    return (f"{message} (largest change {float(diff.max()):.3g}{where}: "
            f"{_fmt(w[idx].item())} became {_fmt(g[idx].item())})")


def compare_outputs(ex: Exercise, inp: Case, got: Outputs, want: Outputs) -> str | None:
    """None when every output of one case is right, else a message. Raises InvalidOutput."""
    if ex.check is not None:
        return ex.check(inp, got, want)
    batch = ex.batch_size(inp)
    rtol, atol = ex.tolerances(inp)
    wrong_by_mistake: dict[str, dict[str, Any]] = {}
    for name, fn in ex.mistakes.items():
        try:
            wrong_by_mistake[name] = fn(inp)
        except Exception:  # a mistake model that does not apply to this case
            continue
    for key, w in want.items():
        if key not in got:
            raise InvalidOutput(f"the result has no {key!r}")
        if key in ex.exact:
            msg = _exact_problem(got[key], w, ex.exact[key])
            if msg is not None:
                return msg
            continue
        mist = {name: m[key] for name, m in wrong_by_mistake.items()
                if isinstance(m, dict) and key in m}
        msg = diagnose_value(got[key], w, rtol, atol, batch, mist, ex.dtype)
        if msg is not None:
            return msg if len(want) == 1 else f"{key}: {msg}"
    return None
