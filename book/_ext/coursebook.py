"""Sphinx extension for the course website.

* ``{chapter-header} <chapter>``: the box at the top of every chapter page (objectives, prerequisites,
  times, exercise links), generated from ``book/<chapter>/chapter.yml``.
* ``{syllabus}``: the instructors' table over all chapters, generated from the same files.
* Sets up the kernels the build starts: ``COURSE_BOOK_BUILD=1`` and the IPython profile that turns
  plotly figures into HTML (``book/_ipython``); loads the vendored plotly.js once on each page that
  has a figure, and on no other page; MathJax only where there is math.
* Page weight and header: font-awesome's 1.5 MB script cut to the icons the site uses (after the
  build), one search field (the sidebar's), and the theme's Colab launch button pointed at the
  learner's notebook (a chapter's notebook version, or the exercises) at the release tag.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course_utils.authoring import (  # noqa: E402
    chapter_dirs,
    colab_target,
    colab_url,
    grading_commands,
    load_chapter_meta,
)

_ARXIV = re.compile(r"arXiv(?: preprint)?:?\s*(\d{4}\.\d{4,5})", re.I)


def _author_year(entry: Any) -> str:
    """'Elhage et al. 2022', 'Johnson and Lindenstrauss 1984', 'Welch 1974': the in-text style."""
    people = entry.persons.get("author", []) or entry.persons.get("editor", [])
    last = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in people]
    if not last:
        name = entry.fields.get("author", entry.fields.get("title", "?")).strip("{}")
    elif len(last) == 1:
        name = last[0]
    elif len(last) == 2:
        name = f"{last[0]} and {last[1]}"
    else:
        name = f"{last[0]} et al."
    return f"{name} {entry.fields.get('year', 'n.d.')}"


def _register_bibliography_style() -> None:
    """A pybtex style 'course': unsrt entries labelled author-year (as cited in the text), with an
    arXiv link for every entry that names an arXiv identifier (DOIs and URLs are linked by unsrt)."""
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.unsrt import Style as Unsrt
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries: Any) -> Any:
            labels = [_author_year(entry) for entry in sorted_entries]
            counts = {label: labels.count(label) for label in labels}
            seen: dict[str, int] = {}
            for label in labels:  # the same authors and year twice: 2024a, 2024b
                if counts[label] > 1:
                    seen[label] = seen.get(label, 0) + 1
                    label += "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
                yield label

    class CourseStyle(Unsrt):
        default_label_style = AuthorYearLabels

        def format_entry(self, label: str, entry: Any, bib_data: Any = None) -> Any:
            if "eprint" not in entry.fields:
                for key in ("note", "journal"):
                    found = _ARXIV.search(entry.fields.get(key, ""))
                    if found:
                        entry.fields["eprint"] = found.group(1)
                        if _ARXIV.fullmatch(entry.fields[key].strip()):
                            del entry.fields[key]  # the link says it
                        break
            return super().format_entry(label, entry, bib_data=bib_data)

    register_plugin("pybtex.style.formatting", "course", CourseStyle, force=True)


def _minutes(m: int) -> str:
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def _reader_runtime(meta: dict) -> str:
    """The run time a reader needs: the page's and the solutions' seconds on a CPU. The benchmark
    notes (machine, busy-machine bounds, GPU estimates) stay in the instructors' syllabus."""
    found = re.search(r"page (\d+ s)(?:, solutions (\d+ s))?", meta["cpu_runtime"])
    if not found:
        return f"on a laptop CPU: {meta['cpu_runtime']}"
    text = f"on a laptop CPU: about {found.group(1)} for the page"
    return text + (f", {found.group(2)} for the solved exercises" if found.group(2) else "")


def _parse(directive: SphinxDirective, text: str) -> list[nodes.Node]:
    container = nodes.container()
    directive.state.nested_parse(StringList(text.splitlines(), source=directive.get_source_info()[0]),
                                 directive.content_offset, container)
    return container.children


class ChapterHeader(SphinxDirective):
    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        chapter = self.arguments[0]
        meta = load_chapter_meta(ROOT / "book" / chapter)
        self.env.note_dependency(str(ROOT / "book" / chapter / "chapter.yml"))
        lines = [":::{admonition} About this chapter", ":class: tip", ""]
        lines.append(f"**Reading** {_minutes(meta['reading_minutes'])} · "
                     f"**Exercises** {_minutes(meta['exercise_minutes'])} "
                     f"({meta['n_exercises']} exercises) · **Run time** {_reader_runtime(meta)}")
        lines += ["", "**After this chapter you can**", ""] + [f"- {o}" for o in meta["objectives"]]
        lines += ["", "**Prerequisites**: " + "; ".join(meta["prerequisites"])]
        if meta["has_exercises"]:
            ex = f"exercises/{chapter}.ipynb"
            lines += ["", f"**Exercises**: [read them here](/exercises/{chapter}) · "
                      f"[open in Colab]({colab_url(ROOT, ex)}) · "
                      f"{{download}}`download the notebook </{ex}>` · run locally with `make lab`; "
                      f"grade it in a notebook cell with `{grading_commands(chapter)[0]}` or in a "
                      f"terminal with `{grading_commands(chapter)[1]}`. The answer key is "
                      f"`solutions/{chapter}.ipynb` (see [For instructors](/book/instructors))."]
        lines.append(":::")
        return _parse(self, "\n".join(lines))


class Syllabus(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        rows, objectives = [], []
        total_read = total_ex = n_ex = 0
        for d in chapter_dirs(ROOT):
            if f"book/{d.name}/index" not in self.env.found_docs:  # only chapters the book contains
                continue
            self.env.note_dependency(str(d / "chapter.yml"))
            m = load_chapter_meta(d)
            total_read += m["reading_minutes"]
            total_ex += m["exercise_minutes"]
            n_ex += m["n_exercises"]
            link = f"[{m['number']}. {m['short_title']}](/book/{m['chapter']}/index)"
            rows.append([link, _minutes(m["reading_minutes"]),
                         f"{_minutes(m['exercise_minutes'])} ({m['n_exercises']} exercises)",
                         m["cpu_runtime"], m["gpu_runtime"], "; ".join(m["prerequisites"])])
            objectives += [f"**{link}**", ""] + [f"- {o}" for o in m["objectives"]] + [""]
        head = ["Chapter", "Reading", "Exercises", "CPU run time", "GPU run time", "Prerequisites"]

        def row(cells: list[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        table = [row(head), row(["---"] * len(head))] + [row(r) for r in rows]
        summary = (f"In total: {len(rows)} chapters, {_minutes(total_read)} of reading and "
                   f"{_minutes(total_ex)} of exercises ({n_ex} exercises).")
        text = "\n".join(table) + "\n\n" + summary + "\n\n**Learning objectives**\n\n" + "\n".join(objectives)
        return _parse(self, text)


def _dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    """Drop repeated <script> entries: sphinx-thebe's inline configuration is otherwise added twice and
    the second copy throws "Identifier 'THEBE_JS_URL' has already been declared" in every page."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for js in context.get("script_files", []):
        key = (str(getattr(js, "filename", js) or ""), str(getattr(js, "attributes", {}).get("body", "")))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"][:] = unique


def _plotly_where_needed(app: Sphinx, pagename: str, templatename: str, context: dict,
                         doctree: object) -> None:
    """Load the vendored plotly.js on this page only if its body holds a plotly figure. Called during
    html-page-context, ``add_js_file`` affects this page alone. plotly.js goes before require.js
    (priority < 500): loaded after it, plotly registers as an anonymous AMD module and never
    defines window.Plotly."""
    if "plotly-graph-div" in context.get("body", ""):
        app.add_js_file("vendor/plotly.min.js", priority=200)
    if pagename.startswith("exercises/"):  # exercise sub-pages: long notebook lines wrap
        app.add_css_file("course-exercises.css")


def _colab_launch_opens_notebook_version(app: Sphinx, pagename: str, templatename: str, context: dict,
                                         doctree: object) -> None:
    """Point the theme's Colab launch button (built from ``launch_buttons`` at priority 501: the
    page's source at the branch) at the notebook a learner should open: a chapter's plain-Markdown
    notebook version or the exercise notebook, at the release tag (:func:`colab_target`). Pages
    without one lose the Colab entry."""
    target = colab_target(pagename)
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        buttons = group.get("buttons", [])
        for button in list(buttons):
            if button.get("text") == "Colab":
                if target is None:
                    buttons.remove(button)
                else:
                    button["url"] = colab_url(ROOT, target)
    context["header_buttons"][:] = [g for g in context.get("header_buttons", [])
                                    if g.get("label") != "launch-buttons" or g.get("buttons")]


_REMOTE_IMG = re.compile(r"""<img\b[^>]*\bsrc=["']https?://[^"']*["'][^>]*>""", re.I)
_ALT = re.compile(r"""\balt=["']([^"']*)["']""", re.I)


def _no_remote_images(app: Sphinx, pagename: str, templatename: str, context: dict,
                      doctree: object) -> None:
    """Replace images fetched from the network (the Colab badge of the exercise notebooks) by their
    alt text: the site renders offline, and a link keeps working without its picture."""
    body = context.get("body", "")
    if "<img" in body:
        context["body"] = _REMOTE_IMG.sub(
            lambda m: (_ALT.search(m.group(0)) or re.match("(.*)", "image")).group(1), body)


def _mathjax_where_needed(app: Sphinx, pagename: str, templatename: str, context: dict,
                          doctree: object) -> None:
    """Drop MathJax (1.1 MB) and its configuration from pages without math (runs after the
    extensions that add it)."""
    if 'class="math' in context.get("body", ""):
        return

    def is_mathjax(js: object) -> bool:
        name = str(getattr(js, "filename", js) or "")
        body = str(getattr(js, "attributes", {}).get("body", ""))
        return "mathjax" in name.lower() or "window.MathJax" in body

    context["script_files"][:] = [js for js in context.get("script_files", []) if not is_mathjax(js)]


# One icon definition in font-awesome's SVG+JS bundle: name: [width, height, [aliases], "unicode", path(s)].
_FA_ICON = (r'(?:"[a-z0-9-]+"|[A-Za-z_$][A-Za-z0-9_$]*|\d+):\[\d+,\d+,\[[^\]]*\],"[0-9a-f]+",'
            r'(?:"[^"]*"|\[(?:"[^"]*",?)*\])\]')
_FA_RUN = re.compile(f"{_FA_ICON}(?:,{_FA_ICON})*")
_FA_ENTRY = re.compile(r'("?)([A-Za-z0-9_$-]+)\1:\[\d+,\d+,\[([^\]]*)\]')
_FA_USED = re.compile(r"\bfa-([a-z0-9]+(?:-[a-z0-9]+)*)")


def subset_fontawesome(js: str, used: set[str]) -> str:
    """font-awesome's SVG+JS bundle (the theme's 1.5 MB ``fontawesome.js``) with only the icons named
    in ``used`` (names or aliases, without ``fa-``); its runtime, which turns ``<i class="fa-...">``
    into inline SVG, is kept as it is."""
    def keep(entry: re.Match) -> bool:
        names = {entry.group(2)} | set(re.findall(r'"([a-z0-9-]+)"', entry.group(3)))
        return bool(names & used)

    def shrink(run: re.Match) -> str:
        text = run.group(0)
        kept, start = [], 0
        for m in re.finditer(_FA_ICON, text):
            if m.start() != start:
                raise ValueError(f"unexpected text in an icon table: {text[start:m.start()][:40]!r}")
            head = _FA_ENTRY.match(m.group(0))
            if head is None or keep(head):
                kept.append(m.group(0))
            start = m.end() + 1  # the comma
        return ",".join(kept)

    return _FA_RUN.sub(shrink, js)


def icons_used(outdir: Path) -> set[str]:
    """Every ``fa-<name>`` named in the built pages and in the theme's scripts (which add some icons
    from JavaScript). The vendored widget bundle (``_static/vendor``) is not read: it draws its
    icons with its own font-awesome 4 font and lists every icon name."""
    used: set[str] = set()
    for path in list(outdir.rglob("*.html")) + list((outdir / "_static").rglob("*.js")):
        if path.name != "fontawesome.js" and "vendor" not in path.relative_to(outdir).parts:
            used |= set(_FA_USED.findall(path.read_text(encoding="utf-8", errors="replace")))
    return used


def _subset_fontawesome_in_build(app: Sphinx, exception: Exception | None) -> None:
    """After an HTML build, replace the copied ``_static/scripts/fontawesome.js`` by the subset of the
    icons the site uses (1.5 MB -> well under 0.1 MB on every page)."""
    if exception is not None or app.builder.format != "html":
        return
    path = Path(app.outdir) / "_static" / "scripts" / "fontawesome.js"
    if path.exists():
        path.write_text(subset_fontawesome(path.read_text(encoding="utf-8"), icons_used(Path(app.outdir))),
                        encoding="utf-8")


def _one_search_field(app: Sphinx, config: Any) -> None:
    """The book theme has its search field in the sidebar; pydata-sphinx-theme (0.17) adds a second
    one in a header bar of its own unless ``navbar_persistent`` is set. Set it empty: one search field,
    no empty header bar."""
    config.html_theme_options.setdefault("navbar_persistent", [])


def setup(app: Sphinx) -> dict[str, object]:
    _register_bibliography_style()
    # Kernels started by the build inherit these: figures render as HTML, widgets explore statically.
    os.environ["COURSE_BOOK_BUILD"] = "1"
    os.environ["IPYTHONDIR"] = str(ROOT / "book" / "_ipython")
    os.environ.setdefault("COURSE_SCALE", "cpu")
    app.add_directive("chapter-header", ChapterHeader)
    app.add_directive("syllabus", Syllabus)
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    # plotly.js (4.7 MB) only on pages that draw a figure (_plotly_where_needed); myst-nb already adds
    # the widget bundle only to pages whose notebook holds widget state.
    app.add_css_file("course.css")  # code and output at a size where 88 columns fit
    app.connect("html-page-context", _plotly_where_needed, priority=50)
    app.connect("html-page-context", _colab_launch_opens_notebook_version, priority=502)
    app.connect("html-page-context", _mathjax_where_needed, priority=900)
    app.connect("html-page-context", _no_remote_images, priority=40)
    app.connect("build-finished", _subset_fontawesome_in_build)
    app.connect("config-inited", _one_search_field)
    # The widget manager resolves its icon fonts against require.js's baseUrl (by default the page's
    # folder). A global `require` defined before require.js loads is read as its configuration:
    # point baseUrl at the vendored copy, computed from the page's depth (works under any URL prefix).
    app.add_js_file(None, priority=201, body=(
        "var require = {baseUrl: new URL((document.documentElement.dataset.content_root || '')"
        " + '_static/vendor/', document.baseURI).href};"))
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
