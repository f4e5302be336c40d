"""Feedback a student can read: one HTML page per graded notebook (nbgrader's generate_feedback
is the model), written into a folder the instructor names, never into a submission."""
from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Sequence

from .report import graded

_STYLE = """body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;
line-height:1.45;color:#222}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px
solid #ddd;padding:.4rem .5rem;text-align:left;vertical-align:top}.passed{color:#1a7f37}
.failed,.error,.crashed,.timeout,.memory,.invalid_output,.missing,.syntax_error{color:#b42318}
.not_attempted{color:#777}.flag{background:#fff4e5;padding:.5rem;border-left:4px solid #f59e0b}"""


def feedback_html(r: dict[str, Any]) -> str:
    """The page of one graded notebook: its score, each exercise's status, points and message."""
    esc = html.escape
    rows = "\n".join(
        f'<tr><td><code>{esc(e["id"])}</code></td><td class="{esc(e["status"])}">'
        f'{esc(e["status"].replace("_", " "))}</td><td>{e["points"]:g} / {e["max_points"]:g}</td>'
        f'<td>{esc(e["message"])}</td></tr>' for e in r["exercises"])
    flags = "".join(f'<p class="flag">{esc(f)}</p>' for f in r.get("flags", []))
    who = f" · {esc(r['student'])}" if r.get("student") else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Feedback: '
            f'{esc(r["chapter"])}{who}</title><style>{_STYLE}</style></head><body>\n'
            f'<h1>Feedback on {esc(Path(r["notebook"]).name)}</h1>\n'
            f'<p>Chapter {esc(r["chapter"])}{who}. Score: <strong>{r["score"]:g} / '
            f'{r["max_score"]:g}</strong>. Graded from the hidden tests with seed {r["seed"]}.</p>\n'
            f'{flags}<table><tr><th>exercise</th><th>status</th><th>points</th><th>what the '
            f'grader saw</th></tr>\n{rows}\n</table>\n</body></html>\n')


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "_"


def write_feedback(data: Sequence[dict[str, Any]], folder: Path) -> list[str]:
    """Write ``folder/STUDENT/NOTEBOOK.html`` for every graded entry; returns one line each."""
    lines = []
    for r in graded(data):
        target = folder / _safe(r.get("student") or "") if r.get("student") else folder
        target.mkdir(parents=True, exist_ok=True)
        page = target / f"{_safe(Path(r['notebook']).stem)}.html"
        page.write_text(feedback_html(r), encoding="utf-8")
        lines.append(f"feedback: {page}")
    return lines
