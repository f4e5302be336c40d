"""How long `course grade` takes per notebook and per exercise, in each sandbox mode available.

    .venv/bin/python bench/bench_grade.py [--repeats 5] [--jobs 2]

Grades every solution notebook (full marks expected) ``repeats`` times in one process per run,
as an instructor's `course grade` would, and prints the median wall time per notebook and per
exercise. Timings depend on the machine and its load: run it on an idle machine. Nothing here is
asserted; the tests assert what the grader decides, never how fast.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import course.sandbox as sb  # noqa: E402
from course.grade import grade_paths  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    notebooks = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    modes = [sb.choose_mode()]
    if modes[0] == sb.MODE_NAMESPACES:
        modes.append(sb.MODE_DROP_ALL if all(sb._world_accessible(p) for p in sb.interpreter_paths())
                     else sb.MODE_READ_CAP)
    print(f"{len(notebooks)} notebooks, {args.repeats} repeats, --jobs {args.jobs}")
    print(f"{'mode':<14} {'notebook':<34} {'exercises':>9} {'median s':>9} {'s/exercise':>11}")
    for mode in modes:
        for nb in notebooks:
            times, n_ex = [], 0
            for _ in range(args.repeats):
                start = time.perf_counter()
                (r,), bad, _ = grade_paths([nb], ROOT / "tests" / "hidden", jobs=args.jobs, mode=mode)
                times.append(time.perf_counter() - start)
                assert not bad and r.score == r.max_score, [e.message for e in r.exercises]
                n_ex = len(r.exercises)
            med = statistics.median(times)
            print(f"{sb.MODE_NAMES[mode]:<14} {nb.name:<34} {n_ex:>9} {med:>9.2f} {med / n_ex:>11.3f}")


if __name__ == "__main__":
    main()
