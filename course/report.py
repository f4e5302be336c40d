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
    for r in results:
        out.append(f"{printable(r['notebook'], False)}  [{printable(r['chapter'], False)}, seed "
                   f"{r['seed']}]  score {_num(r['score'])}/{_num(r['max_score'])}")
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
    chapters = [r["chapter"] for r in results]
    if len(results) < 2 or len(set(chapters)) != len(chapters):
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


def to_json(results: Iterable[NotebookResult]) -> list[dict[str, Any]]:
    return [r.to_json() for r in results]


def dumps_json(results: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(results), indent=1, ensure_ascii=False) + "\n"


def to_csv(results: Sequence[dict[str, Any]], bad: Sequence[BadPath] = ()) -> str:
    """One row per submission: notebook, chapter, seed, score, max_score, one column per exercise
    (its points), and ``problem`` (why a submission could not be graded)."""
    ex_ids: list[str] = []
    for r in results:
        for e in r["exercises"]:
            if e["id"] not in ex_ids:
                ex_ids.append(e["id"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["notebook", "chapter", "seed", "score", "max_score", *ex_ids, "problem"])
    for r in results:
        pts = {e["id"]: _num(e["points"]) for e in r["exercises"]}
        w.writerow([r["notebook"], r["chapter"], r["seed"], _num(r["score"]), _num(r["max_score"]),
                    *(pts.get(i, "") for i in ex_ids), ""])
    for b in bad:
        w.writerow([b.path, "", "", "", "", *("" for _ in ex_ids), b.reason])
    return buf.getvalue()


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
    return merged
