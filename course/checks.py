"""Visible check cells: ``with exercise_check("ch00.name") as c: c.close(got, expected, what)``.

The context manager never lets an exception out of the cell, so a chapter runs top to bottom
even when an exercise is unfinished. Wrong answers are explained with the grader's diagnosis.
"""
from __future__ import annotations

import os
import sys
import traceback
from types import TracebackType
from typing import Any

import numpy as np

from .hidden import InvalidOutput, diagnose_value, excerpt

_OWN_DIRS = (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(np.__file__))


def _learner_frame(tb: TracebackType | None) -> str:
    """'line N, in name: `code`' for the deepest frame that is not course's or numpy's code."""
    found = ""
    for fs in traceback.extract_tb(tb):
        if fs.filename.startswith(_OWN_DIRS) or "site-packages" in fs.filename:
            continue
        code = f": `{fs.line.strip()}`" if fs.line else ""
        found = f"line {fs.lineno}, in {fs.name}{code}"
    return found


class ExerciseCheck:
    """The object bound by ``with exercise_check(id) as c``; one method per kind of case."""

    def __init__(self, exercise_id: str) -> None:
        self.id = exercise_id
        self.passed = 0
        self.failed = 0

    def _report(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"✓ {what}")
        else:
            self.failed += 1
            print(f"✗ {what}: {detail}" if detail else f"✗ {what}")
        return ok

    def close(self, got: Any, expected: Any, what: str, rtol: float = 1e-6, atol: float = 1e-8,
              batch: int | None = None) -> bool:
        """Numbers or arrays equal up to ``rtol``/``atol`` (numpy.allclose), same shape."""
        got = getattr(got, "data", got) if type(got).__name__ == "Tensor" else got
        try:
            msg = diagnose_value(got, expected, rtol, atol, batch)
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

    def true(self, condition: Any, what: str, hint: str = "") -> bool:
        """A property that must hold; ``hint`` says what to look at when it does not."""
        try:
            ok = bool(condition)
        except Exception as e:
            return self._report(False, what, f"could not tell ({type(e).__name__}: {e})")
        return self._report(ok, what, hint)


class exercise_check:  # noqa: N801  (used like a function: `with exercise_check(id) as c`)
    """Context manager of a visible check cell; never lets an ``Exception`` out."""

    def __init__(self, exercise_id: str) -> None:
        self.check = ExerciseCheck(exercise_id)

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
