"""The web book (`course book DIR`, docs/book.md): built once per session from solutions/, read
as files (no solution in it, no outputs of exercises or checks, nothing from another host), then
served on 127.0.0.1 and opened page by page in headless Chromium (Debian's package, driven by
Playwright), which checks that the math is typeset, the figures load and the links lead where
they say.

What it needs beyond pip, `python3 start.py test` installs (`ensure_book_tools`): MathJax from npm
(`npm ci`) and /usr/bin/chromium (apt-get, as root). Where it cannot, these tests are skipped and
say why; under CI on a machine that could have installed them, they fail instead.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from course.book import MARKER, BookError, _is_check, _is_exercise, build_book, chapter_info
from course.build import BEGIN_RE, END_RE, ONE_LINE_MARK_RE
from course.notebook import cell_source

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
NAMES = sorted(p.name for p in SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium as root in a closed network: no sandbox (root), no GPU, and none of its own
# background connections (refused here, and they would make the test depend on the network).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TYPESET_TIMEOUT_MS = 120_000  # MathJax on a loaded 2-core machine


def _could_install() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None \
        and shutil.which("npm") is not None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") and _could_install():
        pytest.fail(f"{reason}, although this machine could install it: `python3 start.py test` "
                    "(ensure_book_tools) should have")
    pytest.skip(reason)


def _solution(name: str) -> dict:
    return json.loads((SOLUTIONS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Path:
    if not (ROOT / "node_modules" / "mathjax" / "package.json").is_file():
        _unavailable("the web book needs MathJax from npm, which is not installed (`npm ci` in the "
                     "course's folder; `python3 start.py test` runs it where npm exists)")
    out = tmp_path_factory.mktemp("book") / "book"
    build_book(SOLUTIONS, out, ROOT)
    return out


@functools.lru_cache(maxsize=None)
def _soup(path: Path):
    """The parsed page, once per session (read only: the tests never change it)."""
    from bs4 import BeautifulSoup  # installed with nbconvert
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _cell(soup, cell: dict):
    return soup.find(id=f"cell-id={cell['id']}")


# ---------------------------------------------------------------------------------------------
# The files

def test_every_chapter_has_a_page_and_its_student_notebook(book):
    assert NAMES, "no chapters in solutions/"
    for name in NAMES:
        stem = name[:-len(".ipynb")]
        assert (book / f"{stem}.html").is_file()
        assert (book / name).read_bytes() == (ROOT / "chapters" / name).read_bytes(), \
            f"{name} beside its page is not chapters/{name}"
    assert (book / "index.html").is_file() and (book / MARKER).is_file()


def _solution_lines(cell: dict) -> list[str]:
    """The lines only the solution has: inside the markers, and `NAME = value` of one-liners."""
    lines, inside = [], False
    for line in cell_source(cell).split("\n"):
        if BEGIN_RE.match(line) or END_RE.match(line):
            inside = BEGIN_RE.match(line) is not None
        elif inside and len(line.strip()) >= 6:
            lines.append(line.strip())
        elif ONE_LINE_MARK_RE.search(line):
            lines.append(ONE_LINE_MARK_RE.sub("", line).strip())
    return lines


def test_exercises_show_the_stub_never_the_solution_and_no_check_output(book):
    checked = 0
    for name in NAMES:
        nb = _solution(name)
        page = _soup(book / f"{name[:-6]}.html")
        student_text = (book / name).read_text(encoding="utf-8")
        assert "### BEGIN SOLUTION" not in page.get_text() and "### SOLUTION" not in page.get_text()
        for cell in nb["cells"]:
            if cell["cell_type"] != "code" or not (_is_exercise(cell) or _is_check(cell)):
                continue
            div = _cell(page, cell)
            assert div is not None, f"{name}: cell {cell['id']} is not on its page"
            assert not div.select(".jp-OutputArea-output"), f"{name}: {cell['id']} shows outputs"
            if _is_exercise(cell):
                text = div.get_text()
                assert "NotImplementedError" in text or "= None" in text, text[:300]
                for line in _solution_lines(cell):
                    if json.dumps(line)[1:-1] not in student_text:  # lines the stub also has may show
                        assert line not in text and line not in page.get_text(), \
                            f"{name}: the page shows the solution line {line!r}"
                        checked += 1
            prev = div.find_previous_sibling()
            assert prev is not None and "book-label" in prev.get("class", []), \
                f"{name}: {cell['id']} is not labelled as an exercise or a check"
    assert checked > 50, f"only {checked} solution lines were looked for"


def test_other_cells_show_the_solutions_executed_outputs(book):
    for name in NAMES:
        nb = _solution(name)
        page = _soup(book / f"{name[:-6]}.html")
        state = nb.get("metadata", {}).get("widgets", {}).get(
            "application/vnd.jupyter.widget-state+json", {}).get("state", {})
        images = sum("image/png" in out.get("data", {}) for model in state.values()
                     if model.get("model_name") == "OutputModel"
                     for out in model.get("state", {}).get("outputs", []))
        for cell in nb["cells"]:
            if cell["cell_type"] != "code" or _is_exercise(cell) or _is_check(cell):
                continue
            div = _cell(page, cell)
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if "image/png" in data:
                    images += 1
                if out.get("output_type") == "stream":
                    first = next((ln for ln in "".join(out["text"]).splitlines() if ln.strip()), "")
                    assert " ".join(first.split()) in " ".join(div.get_text().split()), \
                        f"{name}: {cell['id']} lost its printed output {first!r}"
                if "application/vnd.jupyter.widget-view+json" in data:
                    assert div.select(".book-widget-note"), f"{name}: {cell['id']} widget"
        assert len(page.select("img")) == images, name
        assert page.select("h1"), name


def _local_target(page: Path, ref: str, book: Path) -> Path | None:
    if ref.startswith(("data:", "#")):
        return None
    assert not re.match(r"^([a-z][a-z0-9+.-]*:|//)", ref, re.I), f"{page.name}: loads {ref}"
    target = (page.parent / ref.split("#")[0].split("?")[0]).resolve()
    assert book.resolve() in target.parents, f"{page.name}: {ref} is outside the book"
    assert target.exists(), f"{page.name}: {ref} does not exist"
    return target


def test_every_script_style_font_and_image_is_in_the_book(book):
    """No CDN: scripts, stylesheets, icons and images point into the book, and so do the CSS files'
    url(...)s (fonts, pictures). (The browser test also records every request a page makes.)"""
    for page in sorted(book.glob("*.html")):
        soup = _soup(page)
        for tag, attr in (("script", "src"), ("link", "href"), ("img", "src"), ("source", "src"),
                          ("iframe", "src"), ("embed", "src"), ("object", "data")):
            for el in soup.find_all(tag):
                if el.get(attr):
                    _local_target(page, el[attr], book)
        for el in soup.find_all(["style", "script"]):
            assert not re.search(r"https?://|@import", el.get_text()), f"{page.name}: {el.get_text()[:200]}"
    for css in sorted(book.rglob("*.css")):
        text = css.read_text(encoding="utf-8")
        assert "@import" not in text, css
        for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", text):
            _local_target(css, ref, book)


def test_the_book_refuses_a_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    if (ROOT / "node_modules" / "mathjax").is_dir():
        with pytest.raises(BookError, match="not written by `course book`"):
            build_book(SOLUTIONS, mine, ROOT)
        assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    with pytest.raises(BookError, match="npm ci"):  # a root without MathJax
        build_book(SOLUTIONS, tmp_path / "out", tmp_path)


def test_a_widget_is_shown_as_its_saved_output_and_its_controls_values():
    from course.book import widget_outputs
    png = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBOR"}}
    state = {"state": {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_x", "IPY_MODEL_s",
                                                                  "IPY_MODEL_out"]}},
        "x": {"model_name": "FloatSliderModel", "state": {"description": "x", "value": 0.5}},
        "s": {"model_name": "SelectionSliderModel",
              "state": {"description": "step", "index": 2, "_options_labels": ["0", "5", "20"]}},
        "out": {"model_name": "OutputModel", "state": {"outputs": [png]}},
        "other": {"model_name": "OutputModel", "state": {"outputs": [png, png]}}}}
    outs = widget_outputs({"model_id": "box"}, state)
    assert outs[:-1] == [png]  # only the outputs of this widget's own Output
    note = outs[-1]["data"]["text/html"]
    assert "controls (x, step)" in note and "at x = 0.5, step = 20." in note, note
    assert widget_outputs({"model_id": "gone"}, state)[:-1] == []


def test_course_book_is_a_subcommand():
    from course.cli import parser
    assert parser().parse_args(["book", "site"]).dest == "site"


# ---------------------------------------------------------------------------------------------
# In the browser

@pytest.fixture(scope="session")
def site(book):
    handler = functools.partial(_QuietHandler, directory=str(book))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(10)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        _unavailable(f"no {CHROMIUM} (Debian's chromium package: `python3 start.py test` "
                     "installs it as root with apt-get)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (the test extras of pyproject.toml)")
    with sync_playwright() as p:
        # launch() gives each run a fresh temporary profile (user-data dir)
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


_PAGE_FACTS = """() => {
  const text = [...document.querySelectorAll('.jp-RenderedMarkdown')].map(el => {
    const c = el.cloneNode(true);
    c.querySelectorAll('code, pre, mjx-container, script').forEach(x => x.remove());
    return c.textContent;
  }).join('\\n');
  const link = s => { const a = document.querySelector(s); return a ? a.href : null; };
  return {
    h1: (document.querySelector('h1') || {}).textContent || '',
    math: document.querySelectorAll('mjx-container').length,
    mathErrors: document.querySelectorAll('mjx-merror').length,
    markdownText: text,
    images: [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
    next: link('nav.book-nav-top a.book-next'), prev: link('nav.book-nav-top a.book-prev'),
    contents: link('nav.book-nav-top a.book-contents'),
    bottom: [link('nav.book-nav-bottom a.book-prev'), link('nav.book-nav-bottom a.book-next')],
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    rows: [...document.querySelectorAll('table tr')].map(tr => tr.innerText),
  };
}"""


@pytest.fixture(scope="session")
def walk(browser, site, tmp_path_factory):
    """Open the contents, follow 'next' through every chapter by clicking it, then 'previous' all
    the way back; record what each page shows and every request the pages make."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    requests, failures, errors = [], [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failures.append(f"{r.url}: {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and failures.append(f"{r.url}: {r.status}"))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))

    def facts() -> dict:
        page.wait_for_selector("body[data-math=typeset]", state="attached", timeout=TYPESET_TIMEOUT_MS)
        return dict(page.evaluate(_PAGE_FACTS), url=page.url)

    page.goto(site + "index.html")
    forward = [facts()]
    shot = tmp_path_factory.getbasetemp() / "book-screenshot.png"
    while forward[-1]["next"]:
        with page.expect_navigation():
            page.click("nav.book-nav-top a.book-next")
        forward.append(facts())
        if len(forward) == 3:  # chapter 01: its derivation (math) and a figure, as a reader sees it
            page.locator("img").first.scroll_into_view_if_needed()
            page.mouse.wheel(0, -250)
            page.screenshot(path=str(shot))
        assert len(forward) <= len(NAMES) + 1, "the 'next' links go round in a circle"
    # back again by 'previous', where only the links matter: MathJax, checked on the way there,
    # is served empty so that the pages are not typeset a second time
    page.route("**/_static/mathjax/*.js", lambda route: route.fulfill(
        status=200, content_type="text/javascript", body=""))
    backward = [page.url]
    while page.locator("nav.book-nav-top a.book-prev").count():
        with page.expect_navigation():
            page.click("nav.book-nav-top a.book-prev")
        backward.append(page.url)
        assert len(backward) <= len(NAMES) + 1, "the 'previous' links go round in a circle"
    notebooks = {n: page.request.get(site + n) for n in NAMES}
    notebooks = {n: (r.status, r.body()) for n, r in notebooks.items()}
    page.close()
    return {"forward": forward, "backward": backward, "requests": requests, "failures": failures,
            "errors": errors, "site": site, "screenshot": shot, "notebooks": notebooks}


def test_next_and_previous_lead_through_every_chapter_in_order(walk):
    site = walk["site"]
    expected = [site + "index.html"] + [site + n[:-6] + ".html" for n in NAMES]
    assert [f["url"] for f in walk["forward"]] == expected
    assert walk["backward"] == expected[::-1]
    for f, name in zip(walk["forward"][1:], NAMES):
        info = chapter_info(SOLUTIONS / name)
        assert f["h1"].startswith(f"{info['number']} · "), (f["url"], f["h1"])
        assert f["contents"] == site + "index.html", f["url"]
        assert f["bottom"] == [f["prev"], f["next"]], f["url"]


def test_contents_links_every_chapter_and_its_notebook_with_its_question(walk):
    index, site = walk["forward"][0], walk["site"]
    rows = [" ".join(r.split()) for r in index["rows"]]
    for name in NAMES:
        assert site + name[:-6] + ".html" in index["links"], name
        assert site + name in index["links"], name
        info = chapter_info(SOLUTIONS / name)
        row = next((r for r in rows if r.startswith(info["number"] + " ")), "")
        for part in ("title", "question", "assumes"):
            assert " ".join(info[part].replace("`", "").split()) in row, (part, row)
        assert f"{info['minutes']} min" in row, row


def test_every_page_typesets_its_math_and_leaves_no_raw_dollars(walk):
    for f in walk["forward"][1:]:
        assert f["math"] > 10, f"{f['url']}: {f['math']} formulas typeset"
        assert f["mathErrors"] == 0, f"{f['url']}: {f['mathErrors']} formulas MathJax could not parse"
        raw = re.findall(r"\$\$|\$[^$\n]{1,80}\$|\\\(|\\\[", f["markdownText"])
        assert not raw, f"{f['url']}: TeX left as text: {raw[:3]}"


def test_every_figure_loads(walk):
    for f in walk["forward"]:
        broken = [i["src"] for i in f["images"] if not i["ok"]]
        assert not broken, f"{f['url']}: images that did not load: {broken}"
    assert sum(len(f["images"]) for f in walk["forward"]) >= len(NAMES)


def test_pages_load_nothing_from_elsewhere_and_nothing_fails(walk):
    site = walk["site"]
    foreign = sorted({u for u in walk["requests"] if not u.startswith((site, "data:"))})
    assert not foreign, f"requests to other hosts: {foreign[:5]}"
    assert any("/_static/mathjax/" in u for u in walk["requests"]), "MathJax was never loaded"
    assert not walk["failures"], walk["failures"][:5]
    assert not walk["errors"], walk["errors"][:5]


def test_each_chapter_page_links_its_notebook_which_downloads(walk):
    site = walk["site"]
    for f, name in zip(walk["forward"][1:], NAMES):
        assert site + name in f["links"], f"{f['url']} does not link {name}"
        status, body = walk["notebooks"][name]
        assert status == 200 and body == (ROOT / "chapters" / name).read_bytes(), name


def test_a_screenshot_of_a_page_was_taken(walk):
    shot = walk["screenshot"]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, shot
    print(f"screenshot of {NAMES[1] if len(NAMES) > 1 else NAMES[0]}: {shot}")
