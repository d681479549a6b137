"""The built website: zero warnings, every page present, figures in the HTML, nothing from a CDN."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from course_utils.authoring import chapter_dirs, load_chapter_meta

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.book


def _build_book_module():
    spec = importlib.util.spec_from_file_location("course_build_book", ROOT / "tools" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toc_files() -> list[str]:
    """Every page of the website: _toc.yml plus the exercise sub-pages the build adds."""
    return _build_book_module().toc_files(ROOT)


def page_html(site, doc: str) -> str:
    return (site.html / f"{doc}.html").read_text(encoding="utf-8")


def test_build_succeeds_with_zero_warnings(site):
    assert site.returncode == 0, f"book build failed:\n{site.log[-6000:]}"
    warnings = [ln for ln in site.log.splitlines() if "WARNING:" in ln and "[IPKernelApp]" not in ln]
    assert not warnings, "Sphinx warnings:\n" + "\n".join(warnings)


def test_every_toc_page_is_built(site):
    missing = [f for f in toc_files() if not (site.html / f"{f}.html").exists()]
    assert not missing, f"pages in _toc.yml without HTML: {missing}"


def test_every_chapter_is_in_the_toc():
    files = set(toc_files())
    chapters = [d.name for d in chapter_dirs(ROOT) if (d / "index.py").exists()]
    assert chapters, "no chapter found under book/"
    absent = [c for c in chapters if f"book/{c}/index" not in files]
    assert not absent, f"chapters missing from _toc.yml: {absent}"


def test_no_page_executed_with_errors(site):
    reports = list((site.html / "reports").glob("*.err.log")) if (site.html / "reports").exists() else []
    assert not reports, "notebook errors: " + ", ".join(r.name for r in reports)


def _executed_plotly_outputs(site, doc: str) -> int:
    """Figures in the page's executed outputs, read from the build's execution cache."""
    from jupyter_cache import get_cache

    source = ROOT / f"{doc}.ipynb"
    if not source.exists() or doc.startswith("exercises/"):  # exercise sub-pages are not executed
        return 0
    _, nb = get_cache(site.build / ".jupyter_cache").merge_match_into_file(source)
    n = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            html = "".join(data.get("text/html", []))
            if "application/vnd.plotly.v1+json" in data or "Plotly.newPlot" in html:
                n += 1
    return n


def test_chapters_that_opt_in_caption_every_figure(site):
    """Chapters with ``figure_captions: true`` in chapter.yml: every cell that shows a figure on the
    executed page is followed by its numbered caption (course_utils.captions), and the caption is on
    the website."""
    from jupyter_cache import get_cache

    from course_utils.captions import CAPTION_CLASS, caption_problems

    opted = [d for d in _book_chapter_dirs() if load_chapter_meta(d)["figure_captions"]]
    assert opted, "no chapter opts in to numbered captions: the check would be vacuous"
    problems = []
    for d in opted:
        try:
            _, nb = get_cache(site.build / ".jupyter_cache").merge_match_into_file(d / "index.ipynb")
        except KeyError:  # the page changed since this build executed it
            problems.append(f"{d.name}: no executed page in the build's cache (rebuild the site)")
            continue
        problems += caption_problems(nb, d.name)
        n = sum(c.get("metadata", {}).get("course", {}).get("role") == "caption" for c in nb.cells)
        assert page_html(site, f"book/{d.name}/index").count(CAPTION_CLASS) == n, f"{d.name}: captions lost"
    assert not problems, "\n".join(problems)


def test_every_plotly_figure_is_in_the_html(site):
    """Headless execution alone emits plotly JSON that myst-nb drops; the build's renderer must turn
    every figure into HTML, and the page must contain each one."""
    checked = 0
    for doc in toc_files():
        expected = _executed_plotly_outputs(site, doc)
        html = page_html(site, doc)
        assert html.count("Plotly.newPlot(") >= expected, f"{doc}: {expected} figures executed, fewer in the HTML"
        checked += expected
    assert checked > 0, "no plotly figure anywhere in the book: the check would be vacuous"


def test_plotly_js_loaded_once_per_page_with_figures_never_inlined(site):
    for doc in toc_files():
        html = page_html(site, doc)
        n_scripts = len(re.findall(r'<script[^>]+vendor/plotly\.min\.js', html))
        assert n_scripts == (1 if "plotly-graph-div" in html else 0), f"{doc}: {n_scripts} plotly.js"
        # plotly.js inlined would carry its licence banner and weigh megabytes
        assert "plotly.js v" not in html and len(html) < 3_000_000, f"{doc}: plotly.js seems inlined"


def test_no_script_or_stylesheet_from_the_network(site):
    for doc in toc_files():
        html = page_html(site, doc)
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
        remote = [u for u in remote if not u.endswith((".ipynb",)) and "colab.research" not in u]
        assert not remote, f"{doc} loads from the network: {remote}"
        if "mathjax" in html.lower() and 'class="math' in html:
            assert "_static/vendor/mathjax/tex-chtml.js" in html, f"{doc}: MathJax is not the vendored copy"


def test_widget_state_is_embedded(site):
    html = page_html(site, "book/ch00_warmup/index")
    assert "application/vnd.jupyter.widget-state+json" in html
    assert "vendor/embed-amd.js" in html and "vendor/require.min.js" in html


def _text(html: str) -> str:
    """Visible text of a page: tags stripped, entities and Sphinx's smart quotes undone, spaces collapsed."""
    import html as html_lib

    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", html))
    for a, b in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u2013", "--"),
                 ("\u2014", "---")):
        text = text.replace(a, b)
    return re.sub(r"\s+", " ", text)


def _book_chapter_dirs() -> list[Path]:
    """Chapter folders that are in the book (a folder still being written is not)."""
    files = set(toc_files())
    return [d for d in chapter_dirs(ROOT) if f"book/{d.name}/index" in files]


def test_chapter_headers_and_syllabus_come_from_metadata(site):
    syllabus = _text(page_html(site, "book/instructors"))
    for d in _book_chapter_dirs():
        meta = load_chapter_meta(d)
        page = _text(page_html(site, f"book/{d.name}/index"))
        first = re.split(r"[`$*]", meta["objectives"][0])[0][:40].strip()
        assert first in page, f"{d.name}: objectives missing from the chapter header"
        assert f"({meta['n_exercises']} exercises)" in page
        assert meta["short_title"] in syllabus and first in syllabus, f"{d.name} missing from the syllabus"


def test_notebook_pages_have_colab_launch_and_ipynb_download(site):
    """The Colab button opens the chapter's plain-Markdown notebook version at the release tag (the
    page's own MyST ``index.ipynb`` reads badly in Colab); the download button still offers it."""
    from course_utils.authoring import colab_url, notebook_path

    for d in _book_chapter_dirs():
        html = page_html(site, f"book/{d.name}/index")
        launch = colab_url(ROOT, notebook_path(d.name))
        assert launch in html, f"{d.name}: no Colab launch of {notebook_path(d.name)} at the release tag"
        wrong = re.findall(r'colab\.research\.google\.com/github/[^"]*/book/[^"]*index\.ipynb', html)
        assert not wrong, f"{d.name}: Colab links to the MyST source notebook: {wrong}"
        assert re.search(r'href="[^"]*\.ipynb"', html), f"{d.name}: no .ipynb download link"


def test_every_exercise_notebook_is_a_sub_page_without_answers(site):
    """Each chapter's exercise notebook is on the site under its chapter: instructions, hints,
    stubs and the grading line, not executed, and nothing from the answer key."""
    chapters = [d for d in _book_chapter_dirs() if (ROOT / "exercises" / f"{d.name}.ipynb").exists()]
    assert chapters, "no chapter with an exercise notebook: the check would be vacuous"
    for d in chapters:
        doc = f"exercises/{d.name}"
        assert doc in toc_files(), f"{d.name}: exercises are not a sub-page"
        html = page_html(site, doc)
        text = _text(html)
        assert "NotImplementedError" in text and "course_utils.grade" in text, f"{doc}: stubs or grading line missing"
        assert "BEGIN SOLUTION" not in text, f"{doc}: solution markers on the site"
        assert 'class="cell_output' not in html, f"{doc}: the exercise page was executed"
        chapter_html = page_html(site, f"book/{d.name}/index")
        assert f"exercises/{d.name}.html" in chapter_html or f"{d.name}.html" in chapter_html, (
            f"{d.name}: the chapter page does not link its exercise page")
    assert not list(site.html.glob("solutions/*.html")), "answer keys were rendered on the site"
