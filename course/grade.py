"""``course grade``: score submissions against the hidden tests, one sandboxed run per exercise.

The grader's process reads the notebook as JSON, extracts definitions with ``ast``
(course.extract), sends each exercise to the sandbox (course.sandbox) and compares what comes
back with the reference answers of the hidden-test module (course.hidden). Points come only
from the hidden-test module.
"""
from __future__ import annotations

import hashlib
import inspect
import os
import re
import sys
import textwrap
import threading
import time
import types
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .extract import Extracted, SyntaxProblem, defines, extract
from .hidden import Exercise, InvalidOutput, compare_outputs, describe_inputs
from .notebook import NotebookError, chapter_of, load_notebook_json
from .sandbox import Limits, RunResult, Sandbox
from .text import printable

STATUSES = ("passed", "failed", "not_attempted", "missing", "syntax_error", "error", "timeout",
            "memory", "crashed", "invalid_output")


@dataclass
class ExerciseResult:
    id: str
    points: float
    max_points: float
    status: str
    message: str


@dataclass
class NotebookResult:
    notebook: str
    chapter: str
    score: float
    max_score: float
    seed: int
    exercises: list[ExerciseResult] = field(default_factory=list)
    sandbox: str = ""
    student: str = ""
    flags: list[str] = field(default_factory=list)
    sha256: str = ""

    def __post_init__(self) -> None:
        self.notebook = printable(self.notebook, keep_newlines=False)
        self.student = printable(self.student, keep_newlines=False)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BadPath:
    path: str
    reason: str
    student: str = ""

    def __post_init__(self) -> None:
        self.path = printable(self.path, keep_newlines=False)
        self.reason = printable(self.reason, keep_newlines=False)
        self.student = printable(self.student, keep_newlines=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON report's entry of a path that could not be graded."""
        return {"notebook": self.path, "student": self.student, "chapter": None, "score": None,
                "max_score": None, "exercises": [], "problem": self.reason}


# ------------------------------------------------------------------------------------------------
# Hidden-test modules

class HiddenTestError(Exception):
    """A hidden-test module that cannot be used (an instructor's problem, not a learner's)."""


_modules: dict[Path, list[Exercise]] = {}
_modules_lock = threading.Lock()


def load_exercises(tests_dir: Path, chapter: str) -> list[Exercise] | None:
    """The EXERCISES of ``tests_dir/chapter.py``; None if there is no such module.

    The module is compiled from source (no ``__pycache__`` is written into the tests folder).
    """
    path = (tests_dir / f"{chapter}.py").resolve()
    with _modules_lock:
        if path in _modules:
            return _modules[path]
        if not path.is_file():
            return None
        name = f"course_hidden_{chapter}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        mod = types.ModuleType(name)
        mod.__file__ = str(path)
        sys.modules[name] = mod
        try:
            exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), mod.__dict__)
        except Exception as e:
            del sys.modules[name]
            raise HiddenTestError(f"{path}: cannot be loaded ({type(e).__name__}: {e})") from e
        exercises = getattr(mod, "EXERCISES", None)
        if not isinstance(exercises, (list, tuple)) or \
                not all(isinstance(e, Exercise) for e in exercises):
            raise HiddenTestError(f"{path}: EXERCISES must be a list of course.hidden.Exercise")
        for ex in exercises:
            call_source(ex, path)
        _modules[path] = list(exercises)
        return _modules[path]


def call_source(ex: Exercise, path: Path | str = "") -> tuple[str, str]:
    """(source, name) of an exercise's ``call``: a top-level def, sent to the sandbox as text."""
    fn = ex.call
    name = getattr(fn, "__name__", "")
    if not inspect.isfunction(fn) or name == "<lambda>" or fn.__qualname__ != name:
        raise HiddenTestError(f"{path}: {ex.id}: call must be a top-level def (only its source "
                              "text is sent to the sandbox)")
    try:
        return textwrap.dedent(inspect.getsource(fn)), name
    except (OSError, TypeError) as e:
        raise HiddenTestError(f"{path}: {ex.id}: the source of call is unavailable ({e})") from e


# ------------------------------------------------------------------------------------------------
# Inputs and seeds

def default_seed(raw: bytes) -> int:
    """The seed of a submission: from its content, so that regrading gives the same result."""
    return int(hashlib.sha256(raw).hexdigest()[:8], 16)


def make_cases(ex: Exercise, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng([seed, zlib.crc32(ex.id.encode())])
    return [dict(c) for c in ex.inputs(rng)]


def encode_cases(cases: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Cases as JSON specs plus arrays for the sandbox's inputs.npz."""
    specs, arrays = [], {}
    for i, case in enumerate(cases):
        spec = {}
        for k, v in case.items():
            if isinstance(v, np.ndarray):
                name = f"c{i}.{len(arrays)}"
                arrays[name] = v
                spec[k] = {"npz": name}
            elif isinstance(v, np.generic):
                spec[k] = {"json": v.item()}
            elif v is None or isinstance(v, (bool, int, float, str)):
                spec[k] = {"json": v}
            elif isinstance(v, (list, tuple)) and any(isinstance(x, np.ndarray) for x in v):
                names = []
                for x in v:
                    if not isinstance(x, np.ndarray):
                        raise HiddenTestError(f"input {k!r} mixes arrays with other values")
                    names.append(f"c{i}.{len(arrays)}")
                    arrays[names[-1]] = x
                spec[k] = {"npz_list": names}
            elif isinstance(v, (list, tuple)):
                spec[k] = {"json": list(v)}
            else:
                raise HiddenTestError(f"input {k!r} is a {type(v).__name__}; use arrays, numbers, "
                                      "strings, booleans or lists of them")
        specs.append(spec)
    return specs, arrays


def decode_outputs(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    out = {}
    for key, v in spec.items():
        if not isinstance(v, dict):
            raise InvalidOutput("unreadable result")
        if "npz" in v:
            if v["npz"] not in arrays:
                raise InvalidOutput("unreadable result (an array is missing)")
            a = arrays[v["npz"]]
            out[key] = a.item() if a.ndim == 0 and a.dtype.kind == "U" else a
        elif "json" in v:
            val = v["json"]
            if not (val is None or isinstance(val, (bool, int, float, str))):
                raise InvalidOutput("unreadable result")
            out[key] = val
        else:
            raise InvalidOutput("unreadable result")
    return out


# ------------------------------------------------------------------------------------------------
# One exercise

def _short(v: Any, n: int = 160) -> str:
    """A field of the sandbox's result (which learner code could have forged) as bounded text."""
    text = v if isinstance(v, str) else str(v) if isinstance(v, (int, float)) else ""
    return text if len(text) <= n else text[: n - 3] + "..."


def _where(info: dict[str, Any] | None) -> str:
    if not isinstance(info, dict):
        return ""
    code = f": `{_short(info.get('code'))}`" if info.get("code") else ""
    return (f" (in {_short(info.get('function'), 80)}, line {_short(info.get('line'), 12)} of cell "
            f"{_short(info.get('cell'), 12)}{code})")


_SHAPE_ERRORS = ("mismatch in its core dimension", "not aligned", "could not be broadcast",
                 "cannot be broadcast", "shapes", "cannot reshape")


def _exception_text(info: dict[str, Any]) -> str:
    text = _short(info.get("type", "Exception"), 80) or "Exception"
    message = _short(info.get("message") or "", 400)
    if message:
        text += f": {message}"
    text += _where(info.get("where"))
    if info.get("type") == "ValueError" and any(s in message for s in _SHAPE_ERRORS):
        text += (" -- the shapes do not fit together: check each matrix's shape against the "
                 "docstring (is one transposed, or summed over the wrong axis?)")
    return text


_NAME_ERROR = re.compile(r"name '([A-Za-z_][A-Za-z0-9_]*)' is not defined")


def _unrun_note(sub: "Submission", name: str) -> str | None:
    """Why a name the grader needs was never defined: it is bound only inside a top-level block."""
    where = sub.extracted.unrun.get(name)
    if where is None:
        return None
    cell, line, word = where
    return (f"`{name}` is defined inside a `{word}` block (cell {cell + 1}, line {line}), and the "
            "grader does not run top-level blocks, loops or calls: it runs only the imports, "
            "`def`/`class` statements and assignments at the top level of your cells that the "
            f"exercise uses. Define `{name}` at the top level of a cell (not indented)")


@dataclass
class Submission:
    path: str
    chapter: str
    seed: int
    extracted: Extracted
    student: str = ""
    sha256: str = ""


def precheck(ex: Exercise, sub: Submission) -> ExerciseResult | None:
    """Statuses decided without running anything: a syntax error in the exercise's cell."""
    cell = sub.extracted.exercise_cells.get(ex.id)
    problem = sub.extracted.syntax_errors.get(cell) if cell is not None else None
    return None if problem is None else _syntax_result(ex, problem)


def _syntax_result(ex: Exercise, problem: SyntaxProblem) -> ExerciseResult:
    at = f" at line {problem.line}" if problem.line else ""
    return ExerciseResult(ex.id, 0, ex.points, "syntax_error",
                          f"cell {problem.index + 1} has a syntax error{at}: {problem.message}; "
                          "fix it and run the cell again")


def judge(ex: Exercise, sub: Submission, cases: list[dict[str, Any]], run: RunResult) -> ExerciseResult:
    """Turn one sandbox run into a status, points and a message."""
    def res(status: str, message: str) -> ExerciseResult:
        pts = ex.points if status == "passed" else 0
        return ExerciseResult(ex.id, pts, ex.points, status, message)

    if run.outcome == "sandbox_error":
        return res("error", f"the grader's sandbox could not start (not your fault): {run.detail}")
    if run.outcome in ("timeout",):
        return res("timeout", f"{run.detail}: an infinite loop, or a computation far slower than "
                   "needed?")
    if run.outcome != "ok":
        return res(run.outcome, run.detail)
    r = run.result or {}
    # the result comes from the learner's process: take only what the job could have produced
    setup = [e for e in _bounded_list(r.get("setup_errors"), 20) if isinstance(e, dict)]
    missing = [n for n in _bounded_list(r.get("missing"), len(ex.needs)) if n in ex.needs]
    if missing:
        names = ", ".join(f"`{n}`" for n in missing)
        for p in sub.extracted.syntax_errors.values():  # defined in a cell that does not parse
            if any(defines(p.source, n) for n in missing):
                return _syntax_result(ex, p)
        for e in setup:  # the definition itself failed (e.g. a decorator or default raised)
            if any(defines_line(sub, e, n) for n in missing):
                return res("error", f"defining {names} failed: {_exception_text(e)}")
        for n in missing:
            note = _unrun_note(sub, n)
            if note is not None:
                return res("missing", note)
        if ex.id not in sub.extracted.exercise_cells:
            return res("missing", f"{names} is not defined and the exercise cell of {ex.id} is not "
                       "in the notebook: was the cell deleted?")
        return res("missing", f"{names} is not defined in your notebook: was it renamed? The "
                   f"exercise needs {', '.join(f'`{n}`' for n in ex.needs)}")
    none = [n for n in _bounded_list(r.get("none"), len(ex.needs)) if n in ex.needs]
    if none:
        return res("not_attempted", f"{', '.join(f'`{n}`' for n in none)} is still None: not "
                   "attempted yet")
    results = _bounded_list(r.get("cases"), len(cases))
    # case by case, in order: the first case that goes wrong, whether it raised or returned a
    # wrong value, is the one reported (a named mistake on case 1 is not hidden by a crash on 3)
    for i, inp in enumerate(cases):
        label = f"case {i + 1} of {len(cases)}" + (f" ({describe_inputs(inp)})" if inp else "")
        if i >= len(results):
            return res("invalid_output", "the result is incomplete")
        c = results[i]
        if not isinstance(c, dict):
            return res("invalid_output", "unreadable result")
        status = c.get("status")
        if status == "exception":
            if c.get("not_implemented"):
                return res("not_attempted", "not attempted yet (the stub still raises "
                           "NotImplementedError)")
            if c.get("memory"):
                return res("memory", f"ran out of memory on {label}: MemoryError{_where(c.get('where'))}")
            msg = f"{_exception_text(c)} on {label}"
            m = _NAME_ERROR.search(str(c.get("message") or "")) if c.get("type") == "NameError" else None
            note = _unrun_note(sub, m.group(1)) if m else None
            if note is not None:
                return res("error", f"{note} ({_exception_text(c)})")
            if c.get("type") in ("NameError", "ModuleNotFoundError", "ImportError",
                                 "AttributeError") and setup:
                msg += f"; note that cell {setup[0].get('cell')} failed: {_exception_text(setup[0])}"
            return res("error", msg)
        if status == "invalid":
            return res("invalid_output", f"{c.get('message', 'invalid result')} on {label}")
        if status != "ok":
            return res("invalid_output", "unreadable result")
        try:
            got = decode_outputs(c.get("outputs", {}), run.arrays)
            want = ex.expected(inp)
            msg = compare_outputs(ex, inp, got, want)
        except InvalidOutput as e:
            return res("invalid_output", f"{e} on {label}")
        if msg is not None:
            return res("failed", f"{label}: {msg}")
    return res("passed", f"all {len(cases)} hidden cases right" if len(cases) > 1
               else "the hidden case is right")


def _bounded_list(v: Any, n: int) -> list[Any]:
    return v[:n] if isinstance(v, list) else []


def defines_line(sub: Submission, err: dict[str, Any], name: str) -> bool:
    """Whether the statement that raised during setup is the definition of ``name``."""
    try:
        index = int(err.get("cell")) - 1
        line = int(err.get("line"))
    except (TypeError, ValueError):
        return False
    for c in sub.extracted.cells:
        if c.index == index:
            lines = c.source.split("\n")
            return 0 < line <= len(lines) and defines(lines[line - 1], name)
    return False


def grade_exercise(ex: Exercise, sub: Submission, sandbox: Sandbox,
                   deadline: float | None = None) -> ExerciseResult:
    """Grade one exercise; never raises (a grader problem becomes status error). Its message is
    printable text (see course.text) of bounded length."""
    r = _grade_exercise(ex, sub, sandbox, deadline)
    r.message = printable(r.message)
    if len(r.message) > 4000:
        r.message = r.message[:3997] + "..."
    return r


def _grade_exercise(ex: Exercise, sub: Submission, sandbox: Sandbox,
                    deadline: float | None) -> ExerciseResult:
    try:
        pre = precheck(ex, sub)
        if pre is not None:
            return pre
        cases = make_cases(ex, sub.seed)
        specs, arrays = encode_cases(cases)
        src, name = call_source(ex)
        job = {"code": sub.extracted.job_code(ex.needs), "needs": list(ex.needs), "cases": specs,
               "call_source": src, "call_name": name}
        timeout = ex.timeout or sandbox.limits.timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left < 0.5:
                return ExerciseResult(ex.id, 0, ex.points, "timeout", "not run: the grader's time "
                                      f"budget for this notebook ({sandbox.limits.notebook_timeout:g} s) "
                                      "was used up by its other exercises")
            timeout = min(timeout, left)
        run = sandbox.run(job, arrays, timeout)
        return judge(ex, sub, cases, run)
    except Exception as e:  # a bug in the hidden tests or the grader: report, do not crash
        return ExerciseResult(ex.id, 0, ex.points, "error",
                              f"grader error while grading {ex.id} (not your fault): "
                              f"{type(e).__name__}: {e}")


# ------------------------------------------------------------------------------------------------
# Many notebooks

class _Budget:
    """The wall-clock budget of one notebook, counted from when its first exercise starts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._start: float | None = None
        self._lock = threading.Lock()

    def deadline(self) -> float:
        with self._lock:
            if self._start is None:
                self._start = time.monotonic()
            return self._start + self.seconds


def _grade_with_budget(ex: Exercise, sub: Submission, sandbox: Sandbox, budget: _Budget) -> ExerciseResult:
    return grade_exercise(ex, sub, sandbox, budget.deadline())


def find_notebooks(paths: Iterable[str | os.PathLike[str]]
                   ) -> tuple[list[tuple[Path, str]], list[BadPath]]:
    """(notebook, student) for every notebook named or found (recursively) in folders, and the
    paths that are not. The student is the first folder level under the folder named (the layout
    of a class collection, one sub-folder per student), "" for a notebook named directly or
    lying in the folder itself. .ipynb_checkpoints are skipped, and so are symbolic links to
    folders (a submitted folder's links could point anywhere)."""
    found: list[tuple[Path, str]] = []
    bad: list[BadPath] = []
    for p in map(Path, paths):
        if p.is_dir():
            hits = []
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
                for f in sorted(files):
                    if f.endswith(".ipynb"):
                        nb = Path(root) / f
                        parts = nb.relative_to(p).parts
                        hits.append((nb, parts[0] if len(parts) > 1 else ""))
            if not hits:
                bad.append(BadPath(str(p), "folder without any .ipynb notebook"))
            found.extend(hits)
        elif p.exists():
            found.append((p, ""))
        else:
            bad.append(BadPath(str(p), "no such file or folder"))
    return found, bad


def shipped_solutions() -> dict[str, str]:
    """sha256 -> name of the solution notebooks installed with the package (none in a release)."""
    from .paths import PACKAGE_ROOT

    out = {}
    for f in sorted((PACKAGE_ROOT / "solutions").glob("*.ipynb")):
        try:
            out[hashlib.sha256(f.read_bytes()).hexdigest()] = f"solutions/{f.name}"
        except OSError:
            continue
    return out


def flag_submissions(results: list[NotebookResult], hashes: dict[str, str]) -> None:
    """Flags the gradebook must show, never silently scored: several notebooks of one chapter
    from one student, and byte copies of a shipped solution."""
    by_key: dict[tuple[str, str], list[NotebookResult]] = {}
    for r in results:
        by_key.setdefault((r.student, r.chapter), []).append(r)
    for (student, chapter), group in by_key.items():
        if len(group) > 1:
            who = f"student {student}" if student else "these paths"
            for r in group:
                others = ", ".join(g.notebook for g in group if g is not r)
                r.flags.append(f"{len(group)} notebooks of {chapter} from {who} (also {others}): "
                               "each is graded; decide which counts")
    same: dict[str, list[NotebookResult]] = {}
    for r in results:
        copy_of = hashes.get(r.sha256)
        if copy_of:
            r.flags.append(f"a byte-for-byte copy of the shipped {copy_of}")
        elif r.sha256:
            same.setdefault(r.sha256, []).append(r)
    for group in same.values():
        students = {g.student for g in group}
        if len(group) > 1 and len(students) > 1:
            for r in group:
                r.flags.append("byte-for-byte identical to " + ", ".join(
                    g.notebook for g in group if g is not r))


def grade_paths(paths: Sequence[str | os.PathLike[str]], tests_dir: Path, jobs: int = 2,
                seed: int | None = None, limits: Limits = Limits(), mode: str | None = None
                ) -> tuple[list[NotebookResult], list[BadPath], str]:
    """Grade every notebook under ``paths``. Returns (results, bad paths, sandbox mode)."""
    notebooks, bad = find_notebooks(paths)
    named = {os.path.abspath(p) for p in paths}
    subs: list[tuple[Submission, list[Exercise]]] = []
    for nb_path, student in notebooks:
        try:
            nb, raw = load_notebook_json(nb_path, follow_links=os.path.abspath(nb_path) in named)
        except NotebookError as e:
            bad.append(BadPath(str(nb_path), str(e).removeprefix(f"{nb_path}: "), student))
            continue
        chapter = chapter_of(nb, nb_path)
        if chapter is None and nb_path.name == "index.ipynb" \
                and nb.get("metadata", {}).get("course", {}).get("role") == "index":
            continue  # the course's start page, found in a folder of chapters: nothing to grade
        if chapter is None:
            bad.append(BadPath(str(nb_path), "unknown chapter: no metadata course.chapter and the "
                               "file name is not NN_slug.ipynb", student))
            continue
        try:
            exercises = load_exercises(tests_dir, chapter)
        except HiddenTestError as e:
            bad.append(BadPath(str(nb_path), f"hidden tests of {chapter} unusable: {e}", student))
            continue
        if exercises is None:
            bad.append(BadPath(str(nb_path), f"unknown chapter {chapter}: no "
                               f"{tests_dir / (chapter + '.py')}", student))
            continue
        sub = Submission(str(nb_path), chapter, seed if seed is not None else default_seed(raw),
                         extract(nb), student, hashlib.sha256(raw).hexdigest())
        subs.append((sub, exercises))
    results: list[NotebookResult] = []
    if not subs:
        return results, bad, ""
    jobs = max(1, jobs)
    with Sandbox(jobs, limits, hidden=(tests_dir,), mode=mode) as sandbox, \
            ThreadPoolExecutor(max_workers=jobs) as pool:
        futures: list[list[Future[ExerciseResult]]] = []
        for sub, exercises in subs:
            budget = _Budget(limits.notebook_timeout)
            futures.append([pool.submit(_grade_with_budget, ex, sub, sandbox, budget)
                            for ex in exercises])
        for (sub, exercises), futs in zip(subs, futures):
            ex_results = [f.result() for f in futs]
            result = NotebookResult(
                notebook=sub.path, chapter=sub.chapter,
                score=sum(r.points for r in ex_results),
                max_score=sum(r.max_points for r in ex_results),
                seed=sub.seed, exercises=ex_results, sandbox=sandbox.mode, student=sub.student,
                sha256=sub.sha256)
            results.append(result)
        mode = sandbox.mode
    flag_submissions(results, shipped_solutions())
    return results, bad, mode
