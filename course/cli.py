"""The ``course`` command: build, check, grade, merge (see docs/grading.md and docs/authoring.md)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from . import paths


def _write(dest: str, text: str) -> None:
    if dest == "-":
        sys.stdout.write(text)
    else:
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_text(text, encoding="utf-8")


def cmd_build(args: argparse.Namespace) -> int:
    from .build import EditsWouldBeLost, build
    from .notebook import NotebookError

    try:
        lines = build(Path(args.solutions), Path(args.chapters), save_edits=args.save_edits)
    except NotebookError as e:
        print(f"course build: {e}", file=sys.stderr)
        return 1
    except EditsWouldBeLost as e:
        for path in e.paths:
            print(f"course build: {path} differs from what `course build` wrote: it holds "
                  "someone's edits", file=sys.stderr)
        print("course build: nothing was written. These edits are kept unless you ask: "
              "`course build --save-edits` first copies each of these notebooks to "
              "NN_slug.mine-DATE-TIME.ipynb beside it, then regenerates it.", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    print(f"course build: {args.chapters} is up to date" + (f" ({len(lines)} changed)" if lines else ""))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .build import check
    from .notebook import NotebookError

    try:
        problems = check(Path(args.solutions), Path(args.chapters))
    except NotebookError as e:
        print(f"course check: {e}", file=sys.stderr)
        return 1
    for p in problems:
        print(p)
    if problems:
        return 1
    print(f"course check: OK, {args.chapters} matches {args.solutions}")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from .grade import grade_paths
    from .report import dumps_json, summary, table, to_csv, to_json
    from .sandbox import Limits

    if args.tests is None:
        print("course grade: this copy of the course has no hidden tests (a student release?): "
              "pass the folder of tests with --tests DIR", file=sys.stderr)
        return 2
    tests = Path(args.tests)
    if not tests.is_dir():
        print(f"course grade: {tests}: no such folder of hidden tests", file=sys.stderr)
        return 2
    if args.feedback:
        fb = Path(args.feedback).resolve()
        for p in args.paths:
            folder = Path(p).resolve()
            if folder.is_dir() and (fb == folder or folder in fb.parents):
                print(f"course grade: --feedback {args.feedback} is inside the graded folder {p}: "
                      "feedback is never written into the submissions; name a folder outside it",
                      file=sys.stderr)
                return 2
    limits = Limits(timeout=args.timeout, memory_mb=args.memory,
                    notebook_timeout=args.notebook_timeout)
    mode = None
    if args.sandbox != "auto":
        mode = _forced_mode(args.sandbox)
        if isinstance(mode, int):
            return mode
    try:
        results, bad, mode = grade_paths(args.paths, tests, jobs=args.jobs, seed=args.seed,
                                         limits=limits, mode=mode)
    except (RuntimeError, OSError) as e:  # the sandbox itself cannot be set up
        print(f"course grade: cannot start the sandbox: {e}", file=sys.stderr)
        return 2
    data = to_json(results, bad)
    table_out = sys.stderr if "-" in (args.json, args.csv) else sys.stdout
    if results:
        print(table(data), file=table_out)
        total = summary(data)
        if total:
            print(total, file=table_out)
        if args.verbose:
            print(f"sandbox: {mode}", file=sys.stderr)
    if args.json:
        _write(args.json, dumps_json(data))
    if args.csv:
        _write(args.csv, to_csv(data))
    if args.feedback:
        from .feedback import write_feedback
        for line in write_feedback(data, Path(args.feedback)):
            print(line, file=sys.stderr)
    for b in bad:
        print(f"course grade: {b.path}: {b.reason}", file=sys.stderr)
    return 2 if bad else 0


def _forced_mode(name: str) -> str | int:
    """The sandbox mode asked for with --sandbox, or exit status 2 when it cannot work here."""
    from . import sandbox as sb

    if name == "user":
        return sb.MODE_SAME_USER
    if os.geteuid() != 0:
        print(f"course grade: --sandbox {name} needs root", file=sys.stderr)
        return 2
    if name == "namespaces":
        if not sb.namespaces_available():
            print("course grade: --sandbox namespaces: the kernel refused the namespaces or "
                  "mounts it needs here (a container without CAP_SYS_ADMIN?); see docs/grading.md",
                  file=sys.stderr)
            return 2
        return sb.MODE_NAMESPACES
    if all(sb._world_accessible(p) for p in sb.interpreter_paths()):
        return sb.MODE_DROP_ALL
    return sb.MODE_READ_CAP


def cmd_merge(args: argparse.Namespace) -> int:
    from .report import dumps_json, load_reports, table, to_csv

    try:
        data = load_reports(args.reports)
    except (OSError, ValueError) as e:
        print(f"course merge: {e}", file=sys.stderr)
        return 2
    print(table(data), file=sys.stderr if "-" in (args.json, args.csv) else sys.stdout)
    if args.json:
        _write(args.json, dumps_json(data))
    if args.csv:
        _write(args.csv, to_csv(data))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="course", description="Build, check, grade and reset the "
                                "course notebooks.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (("build", "regenerate chapters/ from solutions/"),
                        ("check", "fail (exit 1) when chapters/ is not what build would write")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--solutions", default=None, help="solution notebooks (default: solutions/)")
        s.add_argument("--chapters", default=None, help="student notebooks (default: chapters/)")
        if name == "build":
            s.add_argument("--save-edits", action="store_true", help="regenerate chapter notebooks "
                           "that hold edits too, after copying each to NN_slug.mine-DATE-TIME.ipynb")
    g = sub.add_parser("grade", help="grade notebooks (files or folders) against the hidden tests")
    g.add_argument("paths", nargs="+", metavar="PATH")
    g.add_argument("--tests", default=None, help="folder of hidden tests chNN.py "
                   "(default: the tests/hidden/ installed with this package, never one found "
                   "from the current folder)")
    g.add_argument("--json", metavar="FILE|-", help="write the JSON report (- for stdout)")
    g.add_argument("--csv", metavar="FILE|-", help="write the CSV gradebook (one row per student "
                   "and chapter)")
    g.add_argument("--feedback", metavar="DIR", help="write one feedback page per graded notebook "
                   "into DIR/STUDENT/ (never into a graded folder)")
    g.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="exercises run in parallel (default: number of cores)")
    g.add_argument("--seed", type=int, default=None,
                   help="seed of the hidden inputs (default: from each submission's content)")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds per exercise (default 10)")
    g.add_argument("--memory", type=int, default=2048, help="MiB of address space per exercise "
                   "(default 2048)")
    g.add_argument("--notebook-timeout", type=float, default=120.0, help="seconds for all the "
                   "exercises of one notebook (default 120)")
    g.add_argument("-v", "--verbose", action="store_true", help="also print the isolation mode "
                   "used (for instructors)")
    g.add_argument("--sandbox", choices=("auto", "namespaces", "uid", "user"), default="auto",
                   help="isolation: auto (the strongest that works here), namespaces, uid (a "
                   "separate uid without namespaces) or user (no isolation); see docs/grading.md")
    sub.add_parser("book", help="build the static web book of every chapter into DIR "
                   "(docs/book.md)").add_argument("dest", metavar="DIR")
    rel = sub.add_parser("release", help="write the course as students receive it (no solutions, "
                         "no hidden tests) into a new folder")
    rel.add_argument("dest", metavar="DIR")
    r = sub.add_parser("reset", help="put one exercise cell of a notebook back to its stub "
                       "(what it held is saved beside the notebook)")
    r.add_argument("notebook", metavar="NOTEBOOK")
    r.add_argument("exercise", metavar="EXERCISE_ID", help="e.g. ch00.backward_by_hand")
    m = sub.add_parser("merge", help="merge JSON reports of separate `course grade` runs")
    m.add_argument("reports", nargs="+", metavar="REPORT.json")
    m.add_argument("--json", metavar="FILE|-")
    m.add_argument("--csv", metavar="FILE|-")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in ("build", "check"):
        try:
            import nbformat  # noqa: F401  (build and check read and write notebooks with it)
        except ModuleNotFoundError:
            print(f"course {args.command}: this Python has no nbformat (it comes with jupyterlab); use the "
                  "course's own environment (.venv/bin/course, set up by `python3 start.py test`) or "
                  "`pip install -e .`", file=sys.stderr)
            return 2
        args.solutions = args.solutions or str(paths.default_solutions())
        args.chapters = args.chapters or str(paths.default_chapters())
        return cmd_build(args) if args.command == "build" else cmd_check(args)
    if args.command == "release":
        from .release import ReleaseError, make_release
        try:
            for line in make_release(paths.repo_root(), Path(args.dest)):
                print(line)
        except ReleaseError as e:
            print(f"course release: {e}", file=sys.stderr)
            return 1
        return 0
    if args.command == "book":
        from .book import main as book_main
        return book_main(args.dest)
    if args.command == "reset":
        from .reset import main as reset_main
        return reset_main(args.notebook, args.exercise)
    if args.command == "grade":
        if args.tests is None and paths.default_tests() is not None:
            args.tests = str(paths.default_tests())
        return cmd_grade(args)
    return cmd_merge(args)
