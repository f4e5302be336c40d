"""Grade a generated class of submissions and check every row of the gradebook.

    .venv/bin/python bench/bench_class.py [--students 100] [--jobs 2] [--out /tmp/class]

Each student hands in every chapter that has a wrong-answers fixture (chapters 00-12 with
tests/fixtures/chNN_wrong.ipynb); for each exercise the student's notebook holds, at random
(seeded), the solution's cell, the stub (not attempted) or the fixture's wrong cell. What each
cell must earn is known beforehand (full points, 0 not_attempted, or the fixture's expected
status), so every row of the CSV that `course grade` writes is checked against it. Prints the
wall time and how many rows and exercises were right. Timings depend on the machine: run it
idle. Nothing is asserted by the test suite from here.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def exercise_cells(nb: dict) -> dict[str, int]:
    return {c["metadata"]["course"]["exercise"]: i for i, c in enumerate(nb["cells"])
            if c.get("metadata", {}).get("course", {}).get("exercise")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="/tmp/course-class")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    subs = out / "submitted"
    chapters = []
    for wrong in sorted((ROOT / "tests" / "fixtures").glob("ch[0-9][0-9]_wrong.ipynb")):
        nn = wrong.name[2:4]
        (sol,) = (ROOT / "solutions").glob(f"{nn}_*.ipynb")
        (stu,) = (ROOT / "chapters").glob(f"{nn}_*.ipynb")
        expected = json.loads(wrong.with_suffix(".expected.json").read_text())
        chapters.append((sol.name, json.loads(sol.read_text()), json.loads(stu.read_text()),
                         json.loads(wrong.read_text()), expected))
    from course.grade import load_exercises
    points = {e.id: e.points for nb in chapters
              for e in load_exercises(ROOT / "tests" / "hidden", "ch" + nb[0][:2])}
    want: dict[tuple[str, str], dict[str, tuple[str, float]]] = {}
    for s in range(args.students):
        student = f"student{s:03d}"
        for name, sol, stu, wrong, expected in chapters:
            nb = json.loads(json.dumps(sol))
            cells_sol, cells_stu, cells_wrong = exercise_cells(sol), exercise_cells(stu), exercise_cells(wrong)
            row = {}
            for ex, i in cells_sol.items():
                pick = rng.choice(["solution", "stub", "wrong"] if ex in expected else ["solution", "stub"])
                if pick == "stub":
                    nb["cells"][i]["source"] = stu["cells"][cells_stu[ex]]["source"]
                    row[ex] = ("not_attempted", 0)
                elif pick == "wrong":
                    nb["cells"][i]["source"] = wrong["cells"][cells_wrong[ex]]["source"]
                    status = expected[ex]["status"]
                    row[ex] = (status, points[ex] if status == "passed" else 0)
                else:
                    row[ex] = ("passed", points[ex])
                nb["cells"][i]["outputs"] = []
            folder = subs / student
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(json.dumps(nb))
            want[(student, name)] = row
    n = len(want)
    print(f"{n} notebooks ({args.students} students x {len(chapters)} chapters), --jobs {args.jobs}")
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "course", "grade", str(subs), "--jobs", str(args.jobs),
                        "--csv", str(out / "grades.csv"), "--json", str(out / "grades.json")],
                       capture_output=True, text=True)
    seconds = time.perf_counter() - start
    print(f"course grade: exit {r.returncode}, {seconds:.0f} s wall ({seconds / n:.2f} s per notebook)")
    report = {(e["student"], Path(e["notebook"]).name): e for e in json.loads((out / "grades.json").read_text())}
    rows = list(csv.DictReader((out / "grades.csv").open()))
    bad_rows, bad_ex = [], 0
    for row in rows:
        key = (row["student"], Path(row["notebook"]).name)
        expect = want[key]
        got = {e["id"]: (e["status"], e["points"]) for e in report[key]["exercises"]}
        wrong = {ex: (got.get(ex), exp) for ex, exp in expect.items() if got.get(ex) != exp}
        csv_ok = all(float(row[ex] or "nan") == exp[1] for ex, exp in expect.items()) and \
            float(row["score"]) == sum(exp[1] for exp in expect.values())
        if wrong or not csv_ok:
            bad_rows.append((key, wrong))
            bad_ex += len(wrong)
    print(f"rows: {len(rows)} of {n}; rows right: {len(rows) - len(bad_rows)}; exercises wrong: {bad_ex}")
    for key, wrong in bad_rows[:10]:
        print("  ", key, wrong)
    return 0 if len(rows) == n and not bad_rows else 1


if __name__ == "__main__":
    sys.exit(main())
