"""The diagnosis of wrong answers (course.hidden) and the visible check cells (course.checks)."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from course.checks import exercise_check
from course.hidden import InvalidOutput, diagnose_value

FIXTURES = Path(__file__).parent / "fixtures"
W = np.arange(1.0, 7.0).reshape(2, 3)


@pytest.mark.parametrize("got, words", [
    (W.T, "transposed: expected shape (2, 3), got (3, 2)"),
    (W.ravel(), "right values but wrong shape: expected (2, 3), got (6,)"),
    (np.ones(4), "wrong shape: expected (2, 3), got (4,)"),
    (-W, "wrong sign"),
    (2 * W, "off by a constant factor of 2"),
    (W / 3, "off by a constant factor of 1/3"),
    (np.where(W > 4, np.nan, W), "2 of 6 values are NaN"),
    (np.where(W > 5, np.inf, W), "1 of 6 values are inf"),
    (W + 0.5, "wrong values (largest difference 0.5 at index (0, 0): expected 1, got 1.5): expected "
              "[1, 2, 3, 4, 5, 6] (shape (2, 3)), got [1.5, 2.5, 3.5, 4.5, 5.5, 6.5] (shape (2, 3))"),
    (W.astype(np.float32) * (1 + 1e-5), "float32 where float64 was expected"),
])
def test_diagnosis_in_words(got: np.ndarray, words: str) -> None:
    msg = diagnose_value(got, W)
    assert msg is not None and words in msg


def test_integer_dtype_and_exact_match() -> None:
    assert diagnose_value(W.copy(), W) is None
    assert diagnose_value(W.astype(int), W) is None  # same values: the dtype does not matter
    msg = diagnose_value(np.array([0, 1]), np.array([0.4, 1.7]))
    assert msg is not None and "integer dtype (int64)" in msg


def test_batch_size_factor_is_named() -> None:
    msg = diagnose_value(np.float64(8 * 1.5), 1.5, batch=8)
    assert msg is not None and msg.startswith("off by a factor of 8, the batch size: a sum where "
                                              "a mean was asked")
    msg = diagnose_value(1.5 / 4, 1.5, batch=4)
    assert msg is not None and msg.startswith("off by a factor of 1/4, the batch size: a mean "
                                              "where a sum was asked")


def test_exercise_mistakes_and_text() -> None:
    msg = diagnose_value(W * W, W, mistakes={"squaring twice": W * W})
    assert msg is not None and msg.startswith("this looks like squaring twice")
    assert diagnose_value(" Reverse ", "reverse") is None
    assert diagnose_value("forward", "reverse") == "expected 'reverse', got 'forward'"
    assert diagnose_value(True, False) == "expected False, got True"


@pytest.mark.parametrize("got", [None, "text", {"a": 1}, object()])
def test_wrong_kind_is_invalid_output(got: object) -> None:
    with pytest.raises(InvalidOutput):
        diagnose_value(got, W)


def run(cell: str, **ns: object) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(cell, {"exercise_check": exercise_check, "np": np, **ns})
    return out.getvalue()


def test_check_cell_passes_fails_and_explains() -> None:
    out = run('with exercise_check("ch99.x") as c:\n'
              '    c.close(np.ones(3), np.ones(3), "ones")\n'
              '    c.close(np.full(3, 8.0), np.ones(3), "sum vs mean", batch=8)\n'
              '    c.equal("b", "a", "choice")\n'
              '    c.true(False, "is positive", hint="look at the sign")\n')
    assert out.splitlines() == [
        "✓ ones",
        "✗ sum vs mean: off by a factor of 8, the batch size: a sum where a mean was asked: "
        "expected [1, 1, 1] (shape (3,)), got [8, 8, 8] (shape (3,))",
        "✗ choice: expected 'a', got 'b'",
        "✗ is positive: look at the sign",
        "ch99.x: 3 of 4 checks failed"]


def test_check_cell_never_lets_an_exception_out() -> None:
    def stub(x):
        raise NotImplementedError("ch99.x: replace this line with your solution")

    def broken(x):
        return x / 0

    out = run('with exercise_check("ch99.x") as c:\n    c.close(stub(1), 1, "one")\n', stub=stub)
    assert out == "… not attempted yet: ch99.x\n"
    out = run('with exercise_check("ch99.x") as c:\n    c.close(broken(1), 1, "one")\n',
              broken=broken)
    assert out.startswith("✗ ch99.x raised ZeroDivisionError: division by zero (line ")
    assert "in broken: `return x / 0`" in out


def _execute(path: Path) -> str:
    """Run every code cell of a notebook in one namespace (as Jupyter would), return stdout."""
    nb = json.loads(path.read_text())
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                exec("".join(cell["source"]), ns)
    return out.getvalue()


def test_student_chapter_runs_top_to_bottom_and_solution_passes_its_checks() -> None:
    student = _execute(FIXTURES / "chapters" / "99_fixture.ipynb")
    assert student.count("… not attempted yet: ch99.") == 3
    assert "✗ the answer is one of the two choices" in student
    solved = _execute(FIXTURES / "solutions" / "99_fixture.ipynb")
    summaries = [ln for ln in solved.splitlines() if ln.startswith("ch99.")]
    assert "✗" not in solved and len(summaries) == 4
    assert all(ln.endswith(("checks passed", "the check passed")) for ln in summaries), summaries


def test_check_names_the_hidden_tests_mistake_on_its_own_inputs() -> None:
    """One diagnosis for both: the visible check uses the exercise's mistakes from tests/hidden."""
    x, y = np.array([0.5, -1.0, 2.0]), np.array([-1.5, 0.3, 0.1])
    q, r = x + y, x * (x + y)
    s2 = 1 - np.tanh(r) ** 2
    right = s2 * (2 * x + y) + 1.0
    wrong = s2 * q + s2 * x                     # q's gradient overwritten by r's term
    out = run('with exercise_check("ch00.backward_by_hand", {"x": x, "y": y}) as c:\n'
              '    c.close(wrong, right, "dg/dx", key="grad_x")\n', x=x, y=y, wrong=wrong, right=right)
    assert "q's gradient overwritten instead of added" in out, out
    # without the inputs the check falls back to the generic diagnosis
    out = run('with exercise_check("ch00.backward_by_hand") as c:\n'
              '    c.close(wrong, right, "dg/dx", key="grad_x")\n', wrong=wrong, right=right)
    assert "overwritten" not in out and "wrong values" in out


def test_call_passes_copies_so_in_place_updates_cannot_fool_the_check() -> None:
    def updates_in_place(w):
        w -= 1.0
        return w

    out = run('w = np.ones(3)\nwith exercise_check("ch99.x") as c:\n'
              '    got = c.call(f, w)\n'
              '    c.close(got, w - 1.0, "w - 1")\n'
              '    c.equal(w, np.ones(3), "w is unchanged")\n', f=updates_in_place)
    assert out.splitlines()[-1] == "ch99.x: all 2 checks passed", out


@pytest.mark.parametrize("answer, ok", [(" (B) ", True), ("b.", True), ('"B"', True), ("B", True),
                                        ("e", False), ("", False)])
def test_choice_accepts_what_the_grader_accepts_and_never_tells_the_answer(answer, ok) -> None:
    out = run('with exercise_check("ch99.x") as c:\n    c.choice(A, "abcd")\n', A=answer)
    assert out.startswith("✓" if ok else "✗"), out
    assert "right answer" not in out and "expected" not in out


def test_dtype_promise_is_enforced() -> None:
    msg = diagnose_value(np.ones(2, dtype=np.float32), np.ones(2), dtype="float64")
    assert msg is not None and "dtype float32 where the docstring asks for float64" in msg
    assert diagnose_value(np.ones(2), np.ones(2), dtype="float64") is None


def test_a_wrong_scalar_is_not_a_constant_factor_unless_the_factor_means_something() -> None:
    assert diagnose_value(3.147, 3.581) == "expected 3.581, got 3.147"
    assert diagnose_value(np.array([3.147]), np.array([3.581])) == "expected [3.581] (shape (1,)), got [3.147] (shape (1,))"
    assert diagnose_value(7.162, 3.581).startswith("off by a constant factor of 2")
    assert diagnose_value(8 * 3.581, 3.581, batch=8).startswith("off by a factor of 8, the batch size")


def test_the_excerpt_points_at_the_entry_that_differs_most() -> None:
    want = np.array([1.238, 0.6524, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7])
    got = want.copy()
    got[7] = 0.9
    msg = diagnose_value(got, want)
    assert "at index 7: expected 0.7, got 0.9" in msg, msg


def test_an_error_raised_inside_nnlib_names_the_learners_line() -> None:
    from nnlib import Tensor

    def learner_backward(x):
        y = (Tensor(x, requires_grad=True) * 2.0).sum()
        y.backward()
        y.backward()               # the second backward raises inside nnlib
        return x

    out = run('with exercise_check("ch99.x") as c:\n    c.close(f(np.ones(2)), np.ones(2), "x")\n',
              f=learner_backward)
    assert "in learner_backward: `y.backward()" in out and "tensor.py" not in out, out


def test_outputs_compares_a_dict_key_by_key() -> None:
    out = run('with exercise_check("ch99.x") as c:\n'
              '    c.outputs({"a": np.ones(2), "b": 2.0}, {"a": np.ones(2), "b": 3.0}, "result")\n'
              '    c.outputs([1], {"a": 1.0}, "not a dict")\n'
              '    c.outputs({"b": 1.0}, {"a": 1.0}, "missing key")\n')
    lines = out.splitlines()
    assert lines[0] == "✓ result: a" and lines[1] == "✗ result: b: expected 3, got 2"
    assert "expected a dict with the keys ['a']" in lines[2] and "has no key 'a'" in lines[3]


def test_a_per_case_tolerance_replaces_the_exercises_own() -> None:
    from course.hidden import Exercise, compare_outputs

    def call(ns, inp):
        return {}

    want = {"w": np.array([1.0, 2.0])}
    ex = Exercise(id="ch99.tol", points=1, needs=(), call=call, expected=lambda inp: want,
                  rtol=1e-9, atol=0.0, tolerance=lambda inp: (1e-9, inp["bound"]),
                  mistakes={"doubled": lambda inp: {"w": 2 * want["w"]}})
    near = {"w": want["w"] + 1e-5}
    assert compare_outputs(ex, {"bound": 1e-4}, near, want) is None          # within this case's bound
    msg = compare_outputs(ex, {"bound": 1e-7}, near, want)                    # not within a tighter one
    assert msg is not None and msg.startswith("wrong values"), msg
    msg = compare_outputs(ex, {"bound": 1e-4}, {"w": 2 * want["w"] + 1e-5}, want)
    assert msg is not None and msg.startswith("this looks like doubled"), msg   # mistakes at the same bound


@pytest.mark.parametrize("factor, rtol", [(1.0000003, 0.0), (1.0004, 0.0), (1.0004, 1e-6), (0.9997, 1e-6),
                                          (-1.0004, 1e-6), (-0.9996, 0.0)])
def test_a_factor_that_prints_as_one_is_not_called_a_constant_factor(factor: float, rtol: float) -> None:
    # outside the tolerance of +-1, so these are wrong answers, but "off by a constant factor of 1"
    # (or -1) would explain nothing: they get the generic message
    msg = diagnose_value(factor * W, W, rtol=rtol, atol=0.0)
    assert msg is not None and msg.startswith("wrong values (largest difference"), msg
    assert "constant factor" not in msg, msg


def test_a_factor_that_prints_as_itself_is_still_named() -> None:
    msg = diagnose_value(1.002 * W, W)
    assert msg is not None and msg.startswith("off by a constant factor of 1.002"), msg
    msg = diagnose_value(-1.5 * W, W)
    assert msg is not None and msg.startswith("off by a constant factor of -1.5"), msg
