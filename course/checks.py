"""Visible check cells: ``with exercise_check("ch00.name", inputs) as c: c.close(got, expected, what)``.

The context manager never lets an exception out of the cell, so a chapter runs top to bottom
even when an exercise is unfinished. Wrong answers are explained with the grader's diagnosis:
the same ``diagnose_value``, and, when the hidden tests are installed and the check passes its
``inputs`` in the hidden tests' format, the same list of the exercise's known mistakes.
"""
from __future__ import annotations

import os
import sys
import traceback
from types import TracebackType
from typing import Any

import numpy as np

from .hidden import Exercise, InvalidOutput, diagnose_value, excerpt, normalize_choice

def _library_dirs() -> tuple[str, ...]:
    """Folders whose frames are never "the learner's line": course, numpy and nnlib (an error
    nnlib raises because of the learner's value is reported at the learner's call)."""
    import importlib.util

    dirs = [os.path.dirname(os.path.abspath(__file__)), os.path.dirname(np.__file__)]
    spec = importlib.util.find_spec("nnlib")
    if spec is not None and spec.origin:
        dirs.append(os.path.dirname(os.path.abspath(spec.origin)))
    return tuple(d + os.sep for d in dirs)


_OWN_DIRS = _library_dirs()


def _learner_frame(tb: TracebackType | None) -> str:
    """'line N, in name: `code`' for the deepest frame that is not course's or numpy's code."""
    found = ""
    for fs in traceback.extract_tb(tb):
        if fs.filename.startswith(_OWN_DIRS) or "site-packages" in fs.filename:
            continue
        code = f": `{fs.line.strip()}`" if fs.line else ""
        found = f"line {fs.lineno}, in {fs.name}{code}"
    return found


def _hidden_exercise(exercise_id: str) -> Exercise | None:
    """The installed hidden tests' description of an exercise (for its mistakes), or None."""
    from . import paths
    from .grade import HiddenTestError, load_exercises

    tests = paths.default_tests()
    if tests is None:
        return None
    try:
        exercises = load_exercises(tests, exercise_id.split(".", 1)[0])
    except (HiddenTestError, OSError):
        return None
    return next((e for e in exercises or () if e.id == exercise_id), None)


def _copy(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, (list, tuple)) and any(isinstance(x, np.ndarray) for x in v):
        return type(v)(_copy(x) for x in v)
    return v


class ExerciseCheck:
    """The object bound by ``with exercise_check(id, inputs) as c``; one method per kind of case."""

    def __init__(self, exercise_id: str, inputs: dict[str, Any] | None = None) -> None:
        self.id = exercise_id
        self.inputs = inputs
        self.passed = 0
        self.failed = 0
        self._exercise: Exercise | bool | None = None

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` on copies of the array arguments, so that a function that
        writes into its inputs cannot change the arrays the check compares with afterwards."""
        return fn(*(_copy(a) for a in args), **{k: _copy(v) for k, v in kwargs.items()})

    def mistakes(self, key: str | None, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """What each of the exercise's known mistakes would return for output ``key`` on the
        case's ``inputs`` (default: the block's; the hidden tests' own list of mistakes, empty
        when they are not installed)."""
        inputs = self.inputs if inputs is None else inputs
        if inputs is None:
            return {}
        if self._exercise is None:
            self._exercise = _hidden_exercise(self.id) or False
        models = {}
        for name, fn in (self._exercise.mistakes.items() if self._exercise else ()):
            try:
                out = fn(dict(inputs))
            except Exception:  # a mistake model that does not apply to these inputs
                continue
            if isinstance(out, dict):
                models[name] = out
        found = {}
        for name, out in models.items():
            if key is not None and key in out:
                found[name] = out[key]
            elif key is None and len(out) == 1:
                found[name] = next(iter(out.values()))
        return found

    def _report(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"✓ {what}")
        else:
            self.failed += 1
            print(f"✗ {what}: {detail}" if detail else f"✗ {what}")
        return ok

    def close(self, got: Any, expected: Any, what: str, rtol: float = 1e-6, atol: float = 1e-8,
              batch: int | None = None, key: str | None = None, dtype: Any = None,
              inputs: dict[str, Any] | None = None) -> bool:
        """Numbers or arrays equal up to ``rtol``/``atol`` (numpy.allclose), same shape.

        ``key`` names the output (as the hidden tests' ``call`` returns it) so that a wrong answer
        that matches one of the exercise's known mistakes on the check's inputs is named.
        ``dtype``: the dtype the docstring promises (float64 answers stay float64).
        ``inputs``: this case's inputs, when the check has several cases (else the block's)."""
        got = getattr(got, "data", got) if type(got).__name__ == "Tensor" else got
        expected = getattr(expected, "data", expected) if type(expected).__name__ == "Tensor" else expected
        try:
            msg = diagnose_value(got, expected, rtol, atol, batch, self.mistakes(key, inputs),
                                 None if dtype is None else str(np.dtype(dtype)))
        except InvalidOutput as e:
            msg = str(e)
        except Exception as e:  # a value numpy cannot even compare
            msg = f"could not compare ({type(e).__name__}: {e}); got {excerpt(got)}"
        return self._report(msg is None, what, msg or "")

    def equal(self, got: Any, expected: Any, what: str) -> bool:
        """Exactly equal: text (ignoring case and surrounding spaces), integers, booleans, arrays."""
        if isinstance(expected, (list, tuple, dict)) or isinstance(got, (list, tuple, dict)):
            try:
                ok = bool(got == expected) and type(got) is type(expected)
            except Exception:
                ok = False
            return self._report(ok, what, f"expected {expected!r}, got {got!r}")
        return self.close(got, expected, what, rtol=0.0, atol=0.0)

    def outputs(self, got: Any, expected: dict[str, Any], what: str, **kw: Any) -> bool:
        """A function that returns a dict: the same keys, each value compared as ``close`` does
        (with ``key=`` set to it, so each key's known mistakes are named). One line per key."""
        if not isinstance(got, dict):
            return self._report(False, what, f"expected a dict with the keys {sorted(expected)}, "
                                f"got {excerpt(got)}")
        missing = [k for k in expected if k not in got]
        if missing:
            return self._report(False, what, f"the dict has no key {missing[0]!r} (it has "
                                f"{sorted(map(str, got))})")
        return all([self.close(got[k], v, f"{what}: {k}", key=k, **kw) for k, v in expected.items()])

    def choice(self, answer: Any, options: Any, what: str = "") -> bool:
        """A multiple-choice answer is one of ``options`` (in the form the grader accepts: any
        case, spaces or brackets around it). Never says which option is right; the grader does."""
        if answer is None:
            raise NotImplementedError(self.id)
        opts = [normalize_choice(o) for o in options]
        got = normalize_choice(answer)
        listed = ", ".join(repr(o) for o in opts)
        return self._report(got in opts, what or f"the answer {answer!r} is one of {listed} "
                            "(`course grade` says whether it is right)",
                            f"{answer!r} is not one of {listed}")

    def true(self, condition: Any, what: str, hint: str = "") -> bool:
        """A property that must hold; ``hint`` says what to look at when it does not."""
        try:
            ok = bool(condition)
        except Exception as e:
            return self._report(False, what, f"could not tell ({type(e).__name__}: {e})")
        return self._report(ok, what, hint)


class exercise_check:  # noqa: N801  (used like a function: `with exercise_check(id) as c`)
    """Context manager of a visible check cell; never lets an ``Exception`` out.

    ``inputs``: the check's case in the hidden tests' input format (a dict of arrays and
    numbers), so that ``c.close(..., key=...)`` can name the same mistakes as the grader."""

    def __init__(self, exercise_id: str, inputs: dict[str, Any] | None = None) -> None:
        self.check = ExerciseCheck(exercise_id, inputs)

    def __enter__(self) -> ExerciseCheck:
        return self.check

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        c = self.check
        if exc_type is None:
            total = c.passed + c.failed
            if total and not c.failed:
                print(f"{c.id}: all {total} checks passed" if total > 1 else f"{c.id}: the check passed")
            elif total:
                print(f"{c.id}: {c.failed} of {total} checks failed")
            return False
        if not issubclass(exc_type, Exception):
            return False  # KeyboardInterrupt (the stop button) and SystemExit go through
        if issubclass(exc_type, NotImplementedError):
            print(f"… not attempted yet: {c.id}")
            return True
        where = _learner_frame(tb)
        text = str(exc).splitlines()[0] if str(exc) else ""
        print(f"✗ {c.id} raised {exc_type.__name__}" + (f": {text}" if text else "")
              + (f" ({where})" if where else ""))
        sys.stdout.flush()
        return True
