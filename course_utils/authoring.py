"""One source per notebook: build chapter pages, exercise notebooks and answer keys from it.

Sources are Python files in the *percent* format, one cell per ``# %%`` header::

    # %% [markdown]
    # ## Exercise: cosine similarities
    # Write `cosine_similarity_matrix` ...

    # %% exercise="cosine_similarity_matrix"
    def cosine_similarity_matrix(W):
        ### BEGIN SOLUTION
        W_hat = W / W.norm(dim=-1, keepdim=True)
        return W_hat @ W_hat.T
        ### END SOLUTION

    # %% check="cosine_similarity_matrix"
    checks.check_cosine_similarity_matrix(cosine_similarity_matrix)

Header attributes (JSON values): ``tags=[...]`` (cell tags), ``exercise="name"`` (a cell holding one
``### BEGIN SOLUTION`` / ``### END SOLUTION`` region; exercises get a stub raising
``NotImplementedError`` naming the exercise), ``check="name"`` (the cell that checks it; the grader
reads it), ``only="exercises"`` or ``only="solutions"`` (a cell that appears in one output only),
``figure="name"`` on a page's markdown cell (the numbered caption of the figure shown by the cell
before it, referred to as ``{fig}`name```; :mod:`course_utils.captions`).

Per chapter folder ``book/<chapter>/``:

* ``index.py``     → ``book/<chapter>/index.ipynb`` (the website page; title and header from
  ``chapter.yml``);
* ``exercises.py`` → ``exercises/<chapter>.ipynb`` (stubs) and ``solutions/<chapter>.ipynb``.

Generated notebooks carry no outputs and deterministic cell ids, so ``check`` can compare bytes.
Run ``python -m course_utils.authoring build`` to regenerate, ``... check`` to verify sync.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jupytext
import nbformat
import yaml

from course_utils import captions, launch, mystmd
from course_utils.launch import release

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_HEADER = re.compile(r"^# %%(?P<rest>.*)$")
_ATTR = re.compile(r'\s*(?P<key>[A-Za-z_][A-Za-z0-9_-]*)=(?P<val>"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\S+)')
_KNOWN_ATTRS = {"tags", "exercise", "check", "only", "figure"}

Kind = Literal["page", "notebook", "exercises", "solutions"]


class SourceError(ValueError):
    """A malformed notebook source; the message names the file, the cell and the line."""


@dataclass
class SourceCell:
    cell_type: Literal["markdown", "code"]
    lines: list[str]
    line_no: int  # 1-based line of the header
    index: int  # 1-based cell number
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def tags(self) -> list[str]:
        return list(self.attrs.get("tags", []))


def _where(path: Path, cell: SourceCell) -> str:
    return f"{path}: cell {cell.index} (line {cell.line_no})"


def _headers(path: Path, lines: list[str]) -> list[tuple[int, str, str]]:
    """(line number, cell kind, attribute text) of each ``# %%`` header; checks what jupytext tolerates."""
    headers: list[tuple[int, str, str]] = []
    for no, line in enumerate(lines, start=1):
        m = _HEADER.match(line)
        if not m:
            if not headers and line.strip():
                raise SourceError(f"{path}: line {no}: text before the first '# %%' cell header")
            continue
        rest = m.group("rest").strip()
        kind = "code"
        if rest.startswith("[markdown]"):
            kind, rest = "markdown", rest[len("[markdown]"):].strip()
        elif rest.startswith("["):
            raise SourceError(f"{path}: line {no}: unknown cell kind {rest.split(']')[0]}]; "
                              "use '# %%' or '# %% [markdown]'")
        headers.append((no, kind, rest))
    return headers


def parse_source(path: Path, text: str | None = None) -> list[SourceCell]:
    """Split a percent-format source into cells (read by jupytext) and validate markers and attributes.

    jupytext reads the cells, uncomments the markdown and parses the header attributes into cell
    metadata; this function adds what jupytext leaves open: only the course's attributes are allowed,
    their values must be JSON, markdown lines must be comments, and the solution markers must pair up.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    raw = text.splitlines()
    headers = _headers(path, raw)
    nb = jupytext.reads(text, fmt="py:percent") if headers else nbformat.v4.new_notebook()
    if len(nb.cells) != len(headers):
        raise SourceError(f"{path}: jupytext read {len(nb.cells)} cells but the file has {len(headers)} "
                          "'# %%' headers; is a header inside a string or docstring?")
    cells: list[SourceCell] = []
    for i, ((no, kind, rest), jcell) in enumerate(zip(headers, nb.cells), start=1):
        if jcell.cell_type != kind:
            raise SourceError(f"{path}: line {no}: jupytext read a {jcell.cell_type} cell, expected {kind}")
        attrs = _attrs_from_metadata(path, no, rest, dict(jcell.metadata))
        lines = jcell.source.split("\n") if jcell.source else []
        cell = SourceCell(kind, lines, no, i, attrs)
        if kind == "markdown":
            end = headers[i][0] - 1 if i < len(headers) else len(raw)
            for ln in raw[no:end]:
                _check_comment(path, cell, ln)
        _strip_blank_edges(cell.lines)
        _validate(path, cell)
        cells.append(cell)
    names = [c.attrs["exercise"] for c in cells if "exercise" in c.attrs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SourceError(f"{path}: exercise names must be unique, repeated: {sorted(dupes)}")
    for c in cells:
        if "check" in c.attrs and c.attrs["check"] not in names:
            raise SourceError(f"{_where(path, c)}: check={c.attrs['check']!r} names no exercise in this file")
    return cells


# metadata jupytext adds by itself (blank-line bookkeeping), not written by authors
_JUPYTEXT_KEYS = {"lines_to_next_cell", "lines_to_end_of_cell_marker"}


def _attrs_from_metadata(path: Path, no: int, rest: str, meta: dict[str, Any]) -> dict[str, Any]:
    for key in _JUPYTEXT_KEYS:
        meta.pop(key, None)
    if "incorrectly_encoded_metadata" in meta:
        _parse_attrs(path, no, rest)  # names the offending attribute
        raise SourceError(f"{path}: line {no}: cell attributes {rest!r} are not valid JSON "
                          '(expected key=JSON, e.g. tags=["hide-input"] exercise="name")')
    for key, val in meta.items():
        if key not in _KNOWN_ATTRS:
            if val is None:
                raise SourceError(f"{path}: line {no}: cannot read cell attributes {key!r} "
                                  '(expected key=JSON, e.g. tags=["hide-input"] exercise="name")')
            raise SourceError(f"{path}: line {no}: unknown cell attribute {key!r}; known: {sorted(_KNOWN_ATTRS)}")
    return meta


def _parse_attrs(path: Path, no: int, rest: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    pos = 0
    while pos < len(rest):
        m = _ATTR.match(rest, pos)
        if not m:
            raise SourceError(f"{path}: line {no}: cannot read cell attributes {rest[pos:]!r} "
                              '(expected key=JSON, e.g. tags=["hide-input"] exercise="name")')
        key, raw = m.group("key"), m.group("val")
        if key not in _KNOWN_ATTRS:
            raise SourceError(f"{path}: line {no}: unknown cell attribute {key!r}; known: {sorted(_KNOWN_ATTRS)}")
        try:
            attrs[key] = json.loads(raw)
        except json.JSONDecodeError as err:
            raise SourceError(f"{path}: line {no}: attribute {key}={raw} is not valid JSON ({err.msg})") from None
        pos = m.end()
    return attrs


def _strip_blank_edges(lines: list[str]) -> None:
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()


def _check_comment(path: Path, cell: SourceCell, line: str) -> None:
    if line.strip() and line != "#" and not line.startswith("# "):
        raise SourceError(f"{_where(path, cell)}: markdown lines must start with '# ', got {line!r}")


def _validate(path: Path, cell: SourceCell) -> None:
    where = _where(path, cell)
    tags = cell.attrs.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SourceError(f"{where}: tags must be a JSON list of strings")
    if "figure" in cell.attrs and (cell.cell_type != "markdown" or not isinstance(cell.attrs["figure"], str)):
        raise SourceError(f"{where}: figure=\"name\" marks the markdown cell that captions the figure "
                          "shown by the cell before it (not the code cell)")
    only = cell.attrs.get("only")
    if only is not None and only not in ("exercises", "solutions"):
        raise SourceError(f"{where}: only= must be 'exercises' or 'solutions', got {only!r}")
    markers = [(i, ln.strip()) for i, ln in enumerate(cell.lines) if ln.strip() in (BEGIN, END)]
    if cell.cell_type == "markdown":
        if markers or any(BEGIN in ln or END in ln for ln in cell.lines):
            raise SourceError(f"{where}: solution marker in a markdown cell; markers belong in code cells "
                              "with exercise=\"name\"")
        if "exercise" in cell.attrs or "check" in cell.attrs:
            raise SourceError(f"{where}: exercise= and check= belong on code cells")
        return
    for ln in cell.lines:
        if (BEGIN in ln or END in ln) and ln.strip() not in (BEGIN, END):
            raise SourceError(f"{where}: a solution marker must stand alone on its line, got {ln.strip()!r}")
    if markers and "exercise" not in cell.attrs:
        raise SourceError(f'{where}: solution markers in a cell without exercise="name"')
    if "exercise" in cell.attrs:
        name = cell.attrs["exercise"]
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
            raise SourceError(f"{where}: exercise= must be an identifier-like string, got {name!r}")
        if not markers:
            raise SourceError(f"{where}: exercise {name!r} has no '{BEGIN}' / '{END}' region")
        expect = BEGIN
        for i, m in markers:
            if m != expect:
                problem = "nested or repeated BEGIN" if m == BEGIN else "END without BEGIN"
                raise SourceError(f"{where}: {problem} at line {cell.line_no + 1 + i}")
            expect = END if m == BEGIN else BEGIN
        if expect == END:
            raise SourceError(f"{where}: unclosed '{BEGIN}' (no matching '{END}')")


# ----------------------------------------------------------------------------------------------
# Rendering


def colab_url(root: Path, rel_path: str) -> str:
    """Open a repository file in Colab at the release tag (see :mod:`course_utils.launch`)."""
    return release(root).colab_url(rel_path)


def setup_cell_source(root: Path, extras: list[str] | None = None) -> str:
    return launch.setup_cell_source(root, extras)


def _stub_lines(lines: list[str], name: str, number: str) -> list[str]:
    out: list[str] = []
    inside = False
    for ln in lines:
        s = ln.strip()
        if s == BEGIN:
            inside = True
            indent = ln[: len(ln) - len(ln.lstrip())]
            out.append(f'{indent}raise NotImplementedError("Exercise {number} ({name}): '
                       'replace this line with your implementation")')
        elif s == END:
            inside = False
        elif not inside:
            out.append(ln)
    return out


def _solution_lines(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.strip() not in (BEGIN, END)]


def _cell_id(key: str, i: int) -> str:
    return hashlib.sha1(f"{key}:{i}".encode()).hexdigest()[:12]


def chapter_number(chapter: str) -> str:
    """'ch01_topic' -> '1'; a chapter's second part 'ch04b_topic' -> '4b'; appendices 'appA_topic' -> 'A'."""
    m = re.match(r"(?:ch(\d+)([b-z]?)|app([A-Z]))_", chapter)
    if not m:
        raise SourceError(f"chapter folder names look like 'ch01_topic' (or 'ch04b_topic' for a second part, "
                          f"'appA_topic' for an appendix), got {chapter!r}")
    return str(int(m.group(1))) + m.group(2) if m.group(1) else m.group(3)


def notebook_path(chapter: str) -> str:
    """Repository path of a page's notebook version (plain Markdown, for JupyterLab and Colab)."""
    return f"notebooks/{chapter}.ipynb"


def colab_target(docname: str) -> str | None:
    """The notebook that a website page's Colab launch button opens (repository-relative), or None.

    A chapter page ``book/<chapter>/index`` opens its plain-Markdown notebook version
    (:func:`notebook_path`, which reads well in Colab), not the MyST ``index.ipynb`` the site is
    built from; an exercise sub-page ``exercises/<chapter>`` opens that exercise notebook."""
    if not isinstance(docname, str):
        raise TypeError(f"docname must be a Sphinx document name such as 'book/ch01_x/index', got {docname!r}")
    m = re.fullmatch(r"book/((?:ch\d+[b-z]?|app[A-Z])_[A-Za-z0-9_]+)/index", docname)
    if m:
        return notebook_path(m.group(1))
    m = re.fullmatch(r"exercises/((?:ch\d+[b-z]?|app[A-Z])_[A-Za-z0-9_]+)", docname)
    return f"exercises/{m.group(1)}.ipynb" if m else None


def _minutes(n: int) -> str:
    return f"{n // 60} h {n % 60:02d} min" if n >= 60 else f"{n} min"


def _plain_header(meta: dict[str, Any], root: Path) -> str:
    """The chapter header of the website (``chapter-header`` directive) in plain Markdown."""
    rel, chapter = release(root), meta["chapter"]
    lines = [rel.badge(notebook_path(chapter)), "", f"# {meta['title']}", "",
             f"*The notebook version of this chapter's page, release {rel.version}. Generated from "
             f"`book/{chapter}/index.py`: do not edit by hand.*", "",
             f"**Reading** {_minutes(meta['reading_minutes'])} · **Exercises** "
             f"{_minutes(meta['exercise_minutes'])} ({meta['n_exercises']} exercises) · **Run time** CPU: "
             f"{meta['cpu_runtime']}; GPU: {meta['gpu_runtime']}", "", "**After this chapter you can**", ""]
    lines += [f"- {o}" for o in meta["objectives"]]
    lines += ["", "**Prerequisites**: " + "; ".join(meta["prerequisites"])]
    if meta["has_exercises"]:
        ex = f"exercises/{chapter}.ipynb"
        lines += ["", f"**Exercises**: {rel.badge(ex)} or, in JupyterLab (`make lab`), `{ex}`."]
    return "\n".join(lines)


def grading_commands(chapter: str) -> tuple[str, str]:
    """The grading line as a learner types it: in a notebook cell (Python in the kernel: it grades the
    saved file in the kernel's folder, or on Colab, where a notebook opened from GitHub has no file in
    the runtime, the notebook open in the browser; ``course_utils.grade.grade_here``), and in a
    terminal in the repository folder (JupyterLab's terminal after ``make lab`` has the course's
    Python first)."""
    nb = f"{chapter}.ipynb"
    return (f'from course_utils.grade import grade_here; grade_here("{nb}")',
            f"python -m course_utils.grade exercises/{nb}")


def _grading_note(chapter: str) -> str:
    cell, terminal = grading_commands(chapter)
    return (f"Grade this notebook at any time: in a cell, `{cell}` (in JupyterLab save the notebook first; "
            f"on Colab it grades the notebook open in this tab); in a terminal in the repository folder "
            f"(JupyterLab's terminal after `make lab`), `{terminal}` or `course-grade exercises/{chapter}.ipynb`.")


def _header_cells(path: Path, kind: Kind, root: Path) -> list[nbformat.NotebookNode]:
    chapter = path.parent.name
    has_meta = (path.parent / "chapter.yml").exists()
    meta = load_chapter_meta(path.parent) if has_meta or kind in ("page", "notebook") else {}
    rel = release(root)
    if kind == "page":  # a text link: the website loads nothing from outside (no badge image)
        header = nbformat.v4.new_markdown_cell(
            f"# {meta['title']}\n\n[Open this page as a notebook in Colab]({rel.colab_url(notebook_path(chapter))})"
            f"\n\n```{{chapter-header}} {chapter}\n```")
    elif kind == "notebook":
        header = nbformat.v4.new_markdown_cell(_plain_header(meta, root))
    else:
        which = "exercises" if kind == "exercises" else "solutions (answer key)"
        header = nbformat.v4.new_markdown_cell(
            f"{rel.badge(f'{kind}/{chapter}.ipynb')}\n\n*Chapter {chapter_number(chapter)} {which}, release "
            f"{rel.version}. Generated from `book/{chapter}/exercises.py`: do not edit by hand.*\n\n"
            f"{_grading_note(chapter)}")
    setup = nbformat.v4.new_code_cell(setup_cell_source(root, meta.get("pip_extras")))
    setup.metadata.update(launch.setup_cell_metadata())
    if kind == "page":
        setup.metadata = {"tags": ["remove-cell"]}
    return [header, setup]


def render(path: Path, kind: Kind, root: Path) -> nbformat.NotebookNode:
    """Build one notebook (page, its notebook version, exercises or solutions) from its source file.

    ``page`` keeps MyST for the website; the other kinds are read in JupyterLab and Colab, so their
    markdown is plain (:mod:`course_utils.mystmd`) and ``hide-input`` code starts collapsed.
    """
    path = Path(path)
    chapter = path.parent.name
    number = chapter_number(chapter)
    cells = parse_source(path)
    if kind in ("page", "notebook") and any("exercise" in c.attrs or "check" in c.attrs for c in cells):
        raise SourceError(f"{path}: pages hold no exercises; put them in exercises.py")
    bib = mystmd.load_bib(root) if kind != "page" else {}
    figures = _figure_numbers(path, cells, kind, number)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    out = _header_cells(path, kind, root)
    n_ex = 0
    for cell in cells:
        only = cell.attrs.get("only")
        if only is not None and (kind in ("page", "notebook") or only != kind):
            continue
        meta_course: dict[str, Any] = {}
        if cell.cell_type == "markdown":
            try:
                text = captions.resolve_references("\n".join(cell.lines), figures, chapter)
            except captions.CaptionError as err:
                raise SourceError(f"{_where(path, cell)}: {err}") from None
            if kind != "page":
                try:
                    text = mystmd.to_plain_markdown(text, bib)
                except mystmd.MystError as err:
                    raise SourceError(f"{_where(path, cell)}: {err}") from None
            if "figure" in cell.attrs:
                name = cell.attrs["figure"]
                text = captions.caption_markdown(text, figures[name], captions.label(chapter, name), kind == "page")
                meta_course = {"figure": name, "number": figures[name], "role": "caption"}
            nb_cell = nbformat.v4.new_markdown_cell(text)
        else:
            lines = cell.lines
            if "exercise" in cell.attrs:
                n_ex += 1
                ex_number = f"{number}.{n_ex}"
                name = cell.attrs["exercise"]
                lines = _stub_lines(lines, name, ex_number) if kind == "exercises" else _solution_lines(lines)
                meta_course = {"exercise": name, "number": ex_number, "role": "exercise"}
            if "check" in cell.attrs:
                meta_course = {"exercise": cell.attrs["check"], "role": "check"}
            nb_cell = nbformat.v4.new_code_cell("\n".join(lines))
            if kind != "page" and {"hide-input", "remove-cell", "remove-input"} & set(cell.tags):
                nb_cell.metadata["jupyter"] = {"source_hidden": True}  # collapsed, one click away
        if cell.tags:
            nb_cell.metadata["tags"] = cell.tags
        if meta_course:
            nb_cell.metadata["course"] = meta_course
        out.append(nb_cell)
    for i, c in enumerate(out):
        c.id = _cell_id(f"{chapter}/{kind}", i)
    nb.cells = out
    return nb


def _figure_numbers(path: Path, cells: list[SourceCell], kind: Kind, number: str) -> dict[str, str]:
    """Number a page's captions (:mod:`course_utils.captions`); each must follow a code cell."""
    named = [(i, c) for i, c in enumerate(cells) if "figure" in c.attrs]
    if named and kind not in ("page", "notebook"):
        raise SourceError(f"{_where(path, named[0][1])}: figure captions are numbered on chapter pages "
                          "(index.py), not in exercise notebooks")
    for i, c in named:
        if i == 0 or cells[i - 1].cell_type != "code" or cells[i - 1].attrs.get("only") is not None:
            raise SourceError(f"{_where(path, c)}: a caption (figure=) must come right after the code cell "
                              "that shows its figure")
    try:
        return captions.number_figures([c.attrs["figure"] for _, c in named], number)
    except captions.CaptionError as err:
        raise SourceError(f"{path}: {err}") from None


def dumps(nb: nbformat.NotebookNode) -> str:
    """The notebook as jupytext (and Jupyter) write it: sorted keys, one-space indent, source as lines."""
    return jupytext.writes(nb, fmt="ipynb") + "\n"


# ----------------------------------------------------------------------------------------------
# Chapters


def load_chapter_meta(chapter_dir: Path) -> dict[str, Any]:
    """Read and validate ``book/<chapter>/chapter.yml``; add ``n_exercises`` counted from the source."""
    path = Path(chapter_dir) / "chapter.yml"
    if not path.exists():
        raise SourceError(f"{path} is missing: every chapter declares its metadata there")
    meta = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    required = {"title": str, "short_title": str, "objectives": list, "prerequisites": list,
                "reading_minutes": int, "exercise_minutes": int, "cpu_runtime": str, "gpu_runtime": str}
    for key, typ in required.items():
        if key not in meta:
            raise SourceError(f"{path}: missing required field {key!r}")
        if not isinstance(meta[key], typ):
            raise SourceError(f"{path}: field {key!r} must be a {typ.__name__}, got {type(meta[key]).__name__}")
        if typ is list and not all(isinstance(item, str) for item in meta[key]):
            bad = next(item for item in meta[key] if not isinstance(item, str))
            raise SourceError(f"{path}: every item of {key!r} must be a string; {bad!r} is not (quote items "
                              "that contain ': ')")
    if not isinstance(meta.setdefault("figure_captions", False), bool):
        raise SourceError(f"{path}: figure_captions must be true or false (true: every figure on the page "
                          f"has a numbered caption), got {meta['figure_captions']!r}")
    meta["chapter"] = Path(chapter_dir).name
    meta["number"] = chapter_number(meta["chapter"])
    ex = Path(chapter_dir) / "exercises.py"
    meta["n_exercises"] = sum(1 for c in parse_source(ex) if "exercise" in c.attrs) if ex.exists() else 0
    meta["has_exercises"] = ex.exists()
    return meta


def chapter_dirs(root: Path) -> list[Path]:
    """Chapter folders in reading order: chapters by number, then appendices by letter."""
    book = Path(root) / "book"
    dirs = [p.parent for p in book.glob("ch*_*/chapter.yml")] + [p.parent for p in book.glob("app*_*/chapter.yml")]
    return sorted(dirs, key=lambda d: (d.name.startswith("app"), d.name))


def targets(root: Path) -> list[tuple[Path, Kind, Path]]:
    """Every (source, kind, generated path) triple in the repository."""
    root = Path(root)
    out: list[tuple[Path, Kind, Path]] = []
    for d in chapter_dirs(root):
        if (d / "index.py").exists():
            out.append((d / "index.py", "page", d / "index.ipynb"))
            out.append((d / "index.py", "notebook", root / notebook_path(d.name)))
        if (d / "exercises.py").exists():
            out.append((d / "exercises.py", "exercises", root / "exercises" / f"{d.name}.ipynb"))
            out.append((d / "exercises.py", "solutions", root / "solutions" / f"{d.name}.ipynb"))
    return out


def build(root: Path) -> list[Path]:
    written = []
    for src, kind, dst in targets(root):
        text = dumps(render(src, kind, root))
        if not dst.exists() or dst.read_text(encoding="utf-8") != text:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(text, encoding="utf-8")
            written.append(dst)
    from course_utils.grading import manifest  # the grader's list of exercises, from the same sources

    return written + manifest.write(root)


def out_of_sync(root: Path) -> list[str]:
    """Generated notebooks that differ from what their sources produce (or are missing / orphaned)."""
    root = Path(root)
    problems = []
    expected = set()
    for src, kind, dst in targets(root):
        expected.add(dst.resolve())
        if not dst.exists():
            problems.append(f"{dst.relative_to(root)} is missing (generate it from {src.relative_to(root)})")
        elif dst.read_text(encoding="utf-8") != dumps(render(src, kind, root)):
            problems.append(f"{dst.relative_to(root)} differs from what {src.relative_to(root)} generates")
    for folder in ("exercises", "solutions", "notebooks"):
        for nb in (root / folder).glob("*.ipynb"):
            if nb.resolve() not in expected:
                problems.append(f"{nb.relative_to(root)} has no source in book/")
    from course_utils.grading import manifest

    return problems + manifest.out_of_sync(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.authoring", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "check"])
    parser.add_argument("--root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            for p in build(args.root):
                print(f"wrote {p.relative_to(args.root)}")
            return 0
        problems = out_of_sync(args.root)
    except SourceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print("run `make notebooks` to regenerate", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
