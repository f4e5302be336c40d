"""Gradebook output: the table on stdout, the JSON list and the CSV (one row per submission)."""
from __future__ import annotations

import csv
import io
import json
import textwrap
from typing import Any, Iterable, Sequence

from .grade import BadPath, NotebookResult
from .text import printable

SYMBOL = {"passed": "✓", "failed": "✗", "not_attempted": "…"}

def _num(x: float) -> str:
    return f"{x:g}"


def table(results: Sequence[dict[str, Any]], width: int = 110) -> str:
    """A plain-text report: one block per notebook, one line per exercise."""
    out = []
    for r in graded(results):
        who = f"{printable(r['student'], False)}: " if r.get("student") else ""
        out.append(f"{who}{printable(r['notebook'], False)}  [{printable(r['chapter'], False)}, seed "
                   f"{r['seed']}]  score {_num(r['score'])}/{_num(r['max_score'])}")
        for flag in r.get("flags", []):
            out.append(f"  ! {printable(flag, False)}")
        idw = max((len(e["id"]) for e in r["exercises"]), default=10)
        for e in r["exercises"]:
            msg = printable(e["message"], False)
            head = (f"  {SYMBOL.get(e['status'], '!')} {e['id']:<{idw}}  "
                    f"{_num(e['points']):>3}/{_num(e['max_points']):<3} {e['status']:<14}")
            if len(head) + 1 + len(msg) <= width:
                out.append(f"{head} {msg}")
            else:  # the whole message, wrapped under the line: it names the mistake, so keep all of it
                out.append(head.rstrip())
                out.extend(textwrap.wrap(msg, width=width, initial_indent="      ", subsequent_indent="      ",
                                         break_on_hyphens=False))
    return "\n".join(out)


def summary(results: Sequence[dict[str, Any]]) -> str:
    """For one learner's chapters (several notebooks, no chapter twice): the total and what
    remains to do. Empty otherwise (a class's gradebook has no meaningful total)."""
    results = graded(results)
    chapters = [r["chapter"] for r in results]
    if len(results) < 2 or len(set(chapters)) != len(chapters) or any(r.get("student") for r in results):
        return ""
    score = sum(r["score"] for r in results)
    top = sum(r["max_score"] for r in results)
    lines = [f"total: {_num(score)}/{_num(top)} points over {len(results)} chapters"]
    todo = [(r, e) for r in sorted(results, key=lambda r: r["chapter"]) for e in r["exercises"]
            if e["status"] != "passed"]
    if not todo:
        lines.append("every exercise passed")
        return "\n".join(lines)
    lines.append(f"{len(todo)} exercise{'s' if len(todo) > 1 else ''} to do:")
    by_notebook: dict[str, list[str]] = {}
    for r, e in todo:
        word = "" if e["status"] == "not_attempted" else f" ({e['status'].replace('_', ' ')})"
        by_notebook.setdefault(r["notebook"], []).append(printable(e["id"], False) + word)
    for nb, items in by_notebook.items():
        lines.append(f"  {printable(nb, False)}: {', '.join(items)}")
    return "\n".join(lines)


def to_json(results: Iterable[NotebookResult], bad: Iterable[BadPath] = ()) -> list[dict[str, Any]]:
    """The JSON report: one object per graded notebook, then one per path that could not be
    graded (``problem`` says why; its score is null)."""
    return [r.to_json() for r in results] + [b.to_json() for b in bad]


def graded(data: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of a report that were graded (not the bad paths)."""
    return [r for r in data if not r.get("problem")]


def dumps_json(results: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(results), indent=1, ensure_ascii=False) + "\n"


def to_csv(data: Sequence[dict[str, Any]]) -> str:
    """The gradebook: one row per student and notebook (so per chapter, unless a student handed
    in one chapter twice, which the flags say), sorted by student and chapter. Columns: student,
    chapter, notebook, score, max_score, each exercise's points and its maximum (``<id>`` and
    ``<id> max``), flags (duplicates, copies of a shipped solution), problem (why a path could
    not be graded: those rows have no score), seed."""
    ex_ids: list[str] = []
    for r in data:
        for e in r["exercises"]:
            if e["id"] not in ex_ids:
                ex_ids.append(e["id"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "chapter", "notebook", "score", "max_score",
                *(c for i in ex_ids for c in (i, f"{i} max")), "flags", "problem", "seed"])
    rows = sorted(data, key=lambda r: (r.get("student") or "", r.get("chapter") or "", r["notebook"]))
    for r in rows:
        pts = {e["id"]: (_num(e["points"]), _num(e["max_points"])) for e in r["exercises"]}
        num = (lambda v: "" if v is None else _num(v))
        w.writerow([r.get("student", ""), r.get("chapter") or "", r["notebook"], num(r.get("score")),
                    num(r.get("max_score")), *(c for i in ex_ids for c in pts.get(i, ("", ""))),
                    "; ".join(r.get("flags", [])), r.get("problem") or "", r.get("seed", "")])
    return buf.getvalue()


def _cross_report_flags(data: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Duplicates that only show once separate reports are merged (one job per submission)."""
    out: list[list[str]] = [[] for _ in data]
    by_key: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(data):
        if not r.get("problem"):
            by_key.setdefault((r.get("student", ""), r.get("chapter", "")), []).append(i)
    for (student, chapter), idx in by_key.items():
        if len(idx) > 1 and student:
            for i in idx:
                others = ", ".join(data[j]["notebook"] for j in idx if j != i)
                out[i].append(f"{len(idx)} notebooks of {chapter} from student {student} (also "
                              f"{others}): each is graded; decide which counts")
    return out


def load_reports(paths: Iterable[str]) -> list[dict[str, Any]]:
    """Read JSON reports written by ``course grade --json FILE`` (a list, or one object each)."""
    merged: list[dict[str, Any]] = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, dict) or not {"notebook", "exercises", "score"} <= item.keys():
                raise ValueError(f"{p}: not a report written by `course grade --json`")
            merged.append(item)
    flags = _cross_report_flags(merged)
    for item, extra in zip(merged, flags):
        item["flags"] = list(dict.fromkeys(item.get("flags", []) + extra))
    return merged
