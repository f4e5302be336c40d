"""``course book DIR``: every chapter as a static web book that reads offline.

Each chapter becomes one page, ``DIR/NN_slug.html``, made with nbconvert's ``lab`` HTML template
(extended below) from the executed notebook in ``solutions/``, never re-executed:

- every cell's source is the **student version's** (``course.build.student_version``: an exercise
  cell shows the stub ``course build`` writes, never the solution body), and the outputs are the
  solution's, except those of exercise cells and of their check cells (a check's ``✓`` line would
  tell whether a shown answer is right), which are dropped;
- an ipywidgets figure, which needs a kernel to move, is shown as the output its Output widget
  saved, with a line naming its controls and the values it was saved at;
- figures are written beside the page (``NN_slug_files/``); the math is typeset in the browser by
  MathJax 3, copied from the npm package ``mathjax`` (``package.json``, installed with ``npm
  ci``) into ``DIR/_static/mathjax``. Nothing is loaded from elsewhere, at build time or when the
  pages are read;
- the student notebook ``NN_slug.ipynb`` (exactly what ``course build`` writes) is shipped beside
  its page, which says how to open it in JupyterLab.

``DIR/index.html`` is the table of contents: each chapter with its question, what it assumes and
its time (solutions' notebook metadata ``course``). Every page links to the previous and next
chapter and to the contents. docs/book.md says why nbconvert and how the book is tested.
"""
from __future__ import annotations

import copy
import html
import json
import shutil
import time
from pathlib import Path
from typing import Any

from .build import build_text, student_version
from .notebook import FILENAME_RE, NotebookError, cell_source, cell_tags, course_meta, exercise_id

#: What ``course book`` writes first into its folder; a folder holding it may be rebuilt.
MARKER = ".course-book"
STATIC = "_static"
#: The files of the npm package ``mathjax`` (version 3) that the pages load, relative to it:
#: the combined TeX component (every TeX extension included, so nothing is fetched on demand)
#: and the web fonts of its CommonHTML output, found at ``output/chtml/fonts`` beside it.
MATHJAX_FILES = ("es5/tex-chtml-full.js", "es5/output/chtml/fonts/woff-v2")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
BOOK_TITLE = "Backpropagation, question by question"


class BookError(Exception):
    """The book cannot be built; the message says what to do."""


# --------------------------------------------------------------------------------------------
# Which chapters, and what the pages say about them

def chapter_info(solution: Path) -> dict[str, Any]:
    """Number, title, question, prerequisites and time of one chapter, from its solution."""
    nb = json.loads(solution.read_text(encoding="utf-8"))
    meta = course_meta(nb)
    first = cell_source(nb["cells"][0]).splitlines()[0] if nb.get("cells") else solution.stem
    return {"name": solution.name, "stem": solution.stem, "number": solution.name[:2],
            "title": first.lstrip("# ").split("·", 1)[-1].strip(),
            "question": str(meta.get("question", "")), "assumes": str(meta.get("assumes", "")),
            "minutes": meta.get("minutes", "?")}


def open_in_jupyterlab(name: str) -> str:
    """How to open a chapter's notebook, in markdown (the box at the top of its page)."""
    return (f"**Work through it as a notebook:** [{name}]({name}) is this chapter with its "
            "exercises to fill in. In the course's folder, `python3 start.py lab` opens JupyterLab, "
            f"where it is `chapters/{name}`. Elsewhere, download it, drag it into JupyterLab's "
            "file browser (or use its upload button) and double-click it; its check cells need "
            "the course installed in that Python (`pip install -e .` in the course's folder).")


# --------------------------------------------------------------------------------------------
# The notebook a page is made from

def _is_check(cell: dict[str, Any]) -> bool:
    return "check" in cell_tags(cell) or isinstance(course_meta(cell).get("check"), str)


def _is_exercise(cell: dict[str, Any]) -> bool:
    return exercise_id(cell) is not None or "exercise" in cell_tags(cell)


def widget_outputs(view: dict[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
    """What a static page shows for one widget: the outputs its Output widgets saved, then a line
    with its controls at their saved values (no kernel here, so nothing would move)."""
    models = state.get("state", {}) if isinstance(state, dict) else {}
    outputs: list[dict[str, Any]] = []
    controls: list[str] = []
    seen: set[str] = set()

    def walk(model_id: str) -> None:
        if model_id in seen or model_id not in models:
            return
        seen.add(model_id)
        model = models[model_id]
        s = model.get("state", {})
        if model.get("model_name") == "OutputModel":
            outputs.extend(copy.deepcopy(s.get("outputs", [])))
        elif s.get("description") and "value" in s:
            controls.append((str(s["description"]), str(s["value"])))
        elif s.get("description") and isinstance(s.get("index"), int) \
                and 0 <= s["index"] < len(s.get("_options_labels", [])):  # a selection widget
            controls.append((str(s["description"]), str(s["_options_labels"][s["index"]])))
        for child in s.get("children", []):
            if isinstance(child, str):
                walk(child.removeprefix("IPY_MODEL_"))

    walk(str(view.get("model_id", "")))
    if controls:
        said = (f"In the notebook, controls ({', '.join(n for n, _ in controls)}) redraw this "
                "output: open it in JupyterLab to move them. Here it is as it was saved, at "
                + ", ".join(f"{n} = {v}" for n, v in controls) + ".")
    else:
        said = "In the notebook this output is interactive. Here it is as it was saved."
    note = {"output_type": "display_data", "metadata": {},
            "data": {"text/html": f'<p class="book-widget-note">{html.escape(said)}</p>'}}
    return outputs + [note]


def book_notebook(solution_nb: dict[str, Any], name: str) -> dict[str, Any]:
    """The notebook a page shows: the student version's sources, the solution's outputs except
    those of exercise and check cells, widgets as their saved outputs, exercises labelled."""
    student = student_version(solution_nb, name)
    state = solution_nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {})
    for sol, cell in zip(solution_nb.get("cells", []), student.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if _is_exercise(cell):
            ex = exercise_id(cell) or "exercise"
            points = course_meta(cell).get("points")
            cell["metadata"]["book_label"] = (f"Exercise {ex}" + (f" ({points} points)" if points
                                              else "") + ": fill it in in the notebook")
            continue
        if _is_check(cell):
            cell["metadata"]["book_label"] = ("Its check: run it in the notebook to see what "
                                              "your answer gives")
            continue
        outputs = []
        for out in sol.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                outputs += widget_outputs(data[WIDGET_VIEW], state)
            else:
                outputs.append(copy.deepcopy(out))
        cell["outputs"] = outputs
        cell["execution_count"] = sol.get("execution_count")
    return student


# --------------------------------------------------------------------------------------------
# HTML

# nbconvert's lab template, without what it would load from CDNs (require.js, MathJax 2, the
# widget renderer, mermaid), with its CSS in one shared file, MathJax 3 from _static, and the
# book's navigation and labels (nbconvert issue 1770 describes emptying these blocks). The code is
# highlighted by pygments, which escapes it, without the lab template's html sanitizer (bleach):
# the sources are the course's own, and the sanitizer took a third of the build's time.
TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block notebook_css -%}
<link rel="icon" href="data:,">
<link rel="stylesheet" href="_static/jupyterlab.css">
<link rel="stylesheet" href="_static/book.css">
{%- endblock notebook_css -%}
{%- block html_head_js_mathjax -%}
{%- set book = resources.book -%}
{% if book.prev %}<link rel="prev" href="{{ book.prev.href | e }}">{% endif %}
{% if book.next %}<link rel="next" href="{{ book.next.href | e }}">{% endif %}
<script>
window.MathJax = {
  tex: {inlineMath: [['$', '$'], ['\\(', '\\)']], displayMath: [['$$', '$$'], ['\\[', '\\]']],
        processEscapes: true, processEnvironments: true, tags: 'ams'},
  options: {ignoreHtmlClass: 'tex2jax_ignore', processHtmlClass: 'tex2jax_process'},
  startup: {pageReady: function () {
    return MathJax.startup.defaultPageReady().then(function () {
      document.body.setAttribute('data-math', 'typeset');
    });
  }}
};
</script>
<script defer src="_static/mathjax/tex-chtml-full.js"></script>
{%- endblock html_head_js_mathjax -%}
{%- block body_header -%}
{{ super() }}
{{ resources.book.nav_top }}
{{ resources.book.header }}
{%- endblock body_header -%}
{% block body_footer %}
{{ resources.book.nav_bottom }}
{{ super() }}
{% endblock body_footer %}
{% block input %}
<div class="jp-CodeMirrorEditor jp-Editor jp-InputArea-editor" data-type="inline">
<div class="cm-editor cm-s-jupyter">
{{ cell.source | highlight_code(metadata=cell.metadata) }}
</div>
</div>
{%- endblock input %}
{% block codecell %}
{%- if cell.metadata.book_label -%}
<p class="book-label">{{ cell.metadata.book_label | e }}</p>
{%- endif -%}
{{ super() }}
{%- endblock codecell %}
"""

# The lab template's own inline rules (dropped with its inline CSS), then the book's.
BOOK_CSS = """a.anchor-link{display:none}.jp-InputArea{overflow:hidden}.jp-InputArea-editor{overflow:hidden}
.cm-editor.cm-s-jupyter .highlight pre{padding:var(--jp-code-padding) 4px;margin:0;font-family:inherit;
  font-size:inherit;line-height:inherit;color:inherit}
.jp-OutputArea-output pre{line-height:inherit;font-family:inherit}
.jp-RenderedText pre{color:var(--jp-content-font-color1);font-size:var(--jp-code-font-size)}
.jp-Collapser{display:none}
main{max-width:60rem;margin:0 auto;padding:0 1rem 2rem}
.book-nav{display:flex;justify-content:space-between;gap:1rem;align-items:baseline;
  max-width:60rem;margin:0 auto;padding:.8rem 1rem;font-family:system-ui,sans-serif;font-size:.95rem}
.book-nav a{text-decoration:none;color:#1565c0}.book-nav a:hover{text-decoration:underline}
.book-nav span{flex:1}.book-nav .book-next-slot{text-align:right}.book-nav .book-contents-slot{text-align:center}
.book-nav-top{border-bottom:1px solid #ddd}.book-nav-bottom{border-top:1px solid #ddd}
.book-header{max-width:60rem;margin:1rem auto 0;padding:.6rem 1rem;background:#f4f7fb;
  border-left:4px solid #1565c0;font-family:system-ui,sans-serif;line-height:1.45}
.book-header p{margin:.3rem 0}.book-header a{color:#1565c0;font-weight:600}
.book-label{margin:1.2rem 0 .2rem;padding:.3rem .6rem;background:#fff4e5;border-left:4px solid #f59e0b;
  font-family:system-ui,sans-serif;font-weight:600}
.book-widget-note{font-style:italic;color:#555}
.book-contents td,.book-contents th{vertical-align:top}
"""


def _nav(prev: dict[str, Any] | None, nxt: dict[str, Any] | None, where: str) -> str:
    def link(target: dict[str, Any] | None, cls: str, rel: str, fmt: str) -> str:
        if target is None:
            return ""
        label = fmt.format(f"{target['number']} · {target['title']}" if target.get("number")
                           else target["title"])
        return f'<a class="{cls}" rel="{rel}" href="{html.escape(target["href"])}">{html.escape(label)}</a>'
    return (f'<nav class="book-nav book-nav-{where}" aria-label="chapters">'
            f'<span class="book-prev-slot">{link(prev, "book-prev", "prev", "← {}")}</span>'
            f'<span class="book-contents-slot"><a class="book-contents" href="index.html">'
            f'Contents</a></span>'
            f'<span class="book-next-slot">{link(nxt, "book-next", "next", "{} →")}</span></nav>')


def _md(text: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    return markdown2html_mistune(text)


def _header(info: dict[str, Any]) -> str:
    lines = [f"**The question:** {info['question']}" if info["question"] else "",
             f"**Assumes:** {info['assumes']}. **Time:** about {info['minutes']} minutes."
             if info["assumes"] else "",
             open_in_jupyterlab(info["name"])]
    return '<div class="book-header">' + "".join(_md(s) for s in lines if s) + "</div>"


def _exporter():
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import ExtractOutputPreprocessor

    exporter = HTMLExporter(extra_loaders=[DictLoader({"book.html.j2": TEMPLATE})],
                            template_file="book.html.j2", exclude_input_prompt=True,
                            exclude_output_prompt=True)
    exporter.register_preprocessor(ExtractOutputPreprocessor(), enabled=True)
    return exporter


def _lab_css(exporter) -> str:
    """nbconvert's JupyterLab stylesheet and light theme (inlined in every page by default)."""
    parts = []
    for name in ("index.css", "theme-light.css"):
        found = [Path(d) / "static" / name for d in exporter.template_paths if Path(d).name == "lab"]
        found = [f for f in found if f.is_file()]
        if not found:
            raise BookError(f"nbconvert's lab template has no static/{name}: is nbconvert installed?")
        parts.append(found[0].read_text(encoding="utf-8"))
    return "\n".join(parts)


def contents_notebook(chapters: list[dict[str, Any]]) -> dict[str, Any]:
    """The contents page as a notebook of markdown, rendered like the chapters."""
    import nbformat

    def cell(text: str) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")
    rows = "\n".join(
        f"| {c['number']} | [{cell(c['title'])}]({c['stem']}.html) | {cell(c['question'])} | "
        f"{cell(c['assumes'])} | {c['minutes']} min | [{c['name']}]({c['name']}) |"
        for c in chapters)
    text = (f"# {BOOK_TITLE}\n\n"
            "Each chapter takes one question learners ask about backpropagation and answers it with "
            "a derivation, code and a measured experiment. Start with chapter 00 and go in order; "
            "each chapter says what it assumes. The pages show the chapters as they were run, "
            "with every figure and printed number; the exercises are shown as you get them, to be "
            "filled in in the notebook.\n\n"
            "| # | chapter | the question | assumes | time | notebook |\n"
            "| --- | --- | --- | --- | --- | --- |\n" + rows + "\n\n"
            "## Opening a chapter in JupyterLab\n\n"
            "Each chapter's notebook sits beside its page. In the course's folder, "
            "`python3 start.py lab` sets up the course once and opens JupyterLab on the start page "
            "(`chapters/index.ipynb`); the notebooks are the same files as `chapters/NN_slug.ipynb` "
            "there. In a JupyterLab of your own, download a notebook, drag it into the file "
            "browser (or use its upload button) and double-click it; its check cells need the "
            "course installed in that Python (`pip install -e .` in the course's folder). Then "
            "fill in each exercise and run the check cell under it.")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text)]
    nb.cells[0]["id"] = "contents"
    nb.metadata = {"title": BOOK_TITLE, "language_info": {"name": "python"}}
    return nb


def _read(path: Path) -> dict[str, Any]:
    import nbformat

    try:
        return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except Exception as e:  # nbformat raises several validation error types
        raise NotebookError(f"{path}: cannot read as a notebook ({type(e).__name__}: {e})") from None


def _render(exporter, nb: dict[str, Any], stem: str, book: dict[str, Any]) -> tuple[str, dict]:
    import nbformat

    node = nbformat.from_dict(nb)
    resources = {"unique_key": stem, "output_files_dir": f"{stem}_files", "book": book,
                 "metadata": {"name": stem}}
    body, res = exporter.from_notebook_node(node, resources=resources)
    return body, res.get("outputs", {})


# --------------------------------------------------------------------------------------------
# The command

def mathjax_source(root: Path) -> Path:
    """The npm package ``mathjax`` installed at the repository root (``npm ci``), version 3."""
    pkg = root / "node_modules" / "mathjax"
    try:
        version = json.loads((pkg / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        raise BookError(f"{pkg}: MathJax is not installed. The book takes it from the npm package "
                        "named in package.json: run `npm ci` in the course's folder (it needs node "
                        "and npm; `python3 start.py test` does it when they exist)") from None
    if not str(version).startswith("3."):
        raise BookError(f"{pkg} is MathJax {version}; the book needs version 3 (package.json): run "
                        "`npm ci` in the course's folder")
    missing = [f for f in MATHJAX_FILES if not (pkg / f).exists()]
    if missing:
        raise BookError(f"{pkg} lacks {', '.join(missing)}: run `npm ci` in the course's folder")
    return pkg


def _prepare(dest: Path) -> None:
    if dest.exists():
        if not dest.is_dir():
            raise BookError(f"{dest} exists and is not a folder")
        if any(dest.iterdir()):
            if not (dest / MARKER).is_file():
                raise BookError(f"{dest} is not empty and was not written by `course book`: name a "
                                "new or empty folder (or one an earlier `course book` wrote)")
            shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MARKER).write_text("written by `course book`; rebuilding removes this folder\n")


def build_book(solutions: Path, dest: Path, root: Path) -> list[str]:
    """Write the web book of every chapter in ``solutions`` into ``dest``; one line per page."""
    started = time.monotonic()
    names = sorted(f.name for f in solutions.glob("*.ipynb") if FILENAME_RE.match(f.name))
    if not names:
        raise BookError(f"{solutions}: no chapter notebooks NN_slug.ipynb")
    mathjax = mathjax_source(root)
    exporter = _exporter()
    css = _lab_css(exporter)
    _prepare(dest)
    static = dest / STATIC
    for rel in MATHJAX_FILES:
        src, target = mathjax / rel, static / "mathjax" / Path(rel).relative_to("es5")
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target)
        else:
            shutil.copy2(src, target)
    shutil.copy2(mathjax / "LICENSE", static / "mathjax" / "LICENSE")
    (static / "jupyterlab.css").write_text(css, encoding="utf-8")
    (static / "book.css").write_text(BOOK_CSS, encoding="utf-8")

    chapters = [chapter_info(solutions / n) for n in names]
    contents = {"href": "index.html", "title": "Contents"}
    for c in chapters:
        c["href"] = f"{c['stem']}.html"
    pages = [("index", contents_notebook(chapters),
              {"prev": None, "next": chapters[0], "header": ""})]
    for i, c in enumerate(chapters):
        solution_nb = _read(solutions / c["name"])
        nb = book_notebook(solution_nb, str(solutions / c["name"]))
        nb.setdefault("metadata", {})["title"] = f"{c['number']} · {c['title']} · {BOOK_TITLE}"
        pages.append((c["stem"], nb, {"prev": chapters[i - 1] if i else contents,
                                      "next": chapters[i + 1] if i + 1 < len(chapters) else None,
                                      "header": _header(c)}))
        (dest / c["name"]).write_text(build_text(solutions / c["name"]), encoding="utf-8")
    lines = []
    for stem, nb, links in pages:
        book = dict(links, nav_top=_nav(links["prev"], links["next"], "top"),
                    nav_bottom=_nav(links["prev"], links["next"], "bottom"))
        body, files = _render(exporter, nb, stem, book)
        if "### BEGIN SOLUTION" in body or "### END SOLUTION" in body:
            raise BookError(f"{stem}.html would show a solution region: not written")
        (dest / f"{stem}.html").write_text(body, encoding="utf-8")
        for rel, data in files.items():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(data)
        lines.append(f"wrote {dest / (stem + '.html')}" + (f" and {len(files)} figures" if files else ""))
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    lines.append(f"course book: {len(chapters)} chapters in {dest} ({size / 2**20:.1f} MiB, "
                 f"{time.monotonic() - started:.1f} s); open {dest / 'index.html'} in a browser")
    return lines


def main(dest: str) -> int:
    """``course book DIR``."""
    import sys

    from . import paths

    root = paths.repo_root()
    try:
        for line in build_book(root / "solutions", Path(dest), root):
            print(line)
    except (BookError, NotebookError) as e:
        print(f"course book: {e}", file=sys.stderr)
        return 1
    return 0
