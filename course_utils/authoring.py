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
reads it), ``only="exercises"`` or ``only="solutions"`` (a cell that appears in one output only).

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

import nbformat
import yaml

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_HEADER = re.compile(r"^# %%(?P<rest>.*)$")
_ATTR = re.compile(r'\s*(?P<key>[A-Za-z_][A-Za-z0-9_-]*)=(?P<val>"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\S+)')
_KNOWN_ATTRS = {"tags", "exercise", "check", "only"}

Kind = Literal["page", "exercises", "solutions"]


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


def parse_source(path: Path, text: str | None = None) -> list[SourceCell]:
    """Split a percent-format source into cells and validate its markers and attributes."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    cells: list[SourceCell] = []
    current: SourceCell | None = None
    for no, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m:
            rest = m.group("rest").strip()
            cell_type: Literal["markdown", "code"] = "code"
            if rest.startswith("[markdown]"):
                cell_type, rest = "markdown", rest[len("[markdown]"):].strip()
            elif rest.startswith("["):
                raise SourceError(f"{path}: line {no}: unknown cell kind {rest.split(']')[0]}]; "
                                  "use '# %%' or '# %% [markdown]'")
            current = SourceCell(cell_type, [], no, len(cells) + 1, _parse_attrs(path, no, rest))
            cells.append(current)
            continue
        if current is None:
            if line.strip():
                raise SourceError(f"{path}: line {no}: text before the first '# %%' cell header")
            continue
        current.lines.append(line)
    for cell in cells:
        _strip_blank_edges(cell.lines)
        if cell.cell_type == "markdown":
            cell.lines = [_uncomment(path, cell, ln) for ln in cell.lines]
        _validate(path, cell)
    names = [c.attrs["exercise"] for c in cells if "exercise" in c.attrs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SourceError(f"{path}: exercise names must be unique, repeated: {sorted(dupes)}")
    for c in cells:
        if "check" in c.attrs and c.attrs["check"] not in names:
            raise SourceError(f"{_where(path, c)}: check={c.attrs['check']!r} names no exercise in this file")
    return cells


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


def _uncomment(path: Path, cell: SourceCell, line: str) -> str:
    if line == "#":
        return ""
    if line.startswith("# "):
        return line[2:]
    if not line.strip():
        return ""
    raise SourceError(f"{_where(path, cell)}: markdown lines must start with '# ', got {line!r}")


def _validate(path: Path, cell: SourceCell) -> None:
    where = _where(path, cell)
    tags = cell.attrs.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SourceError(f"{where}: tags must be a JSON list of strings")
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


def _repo_settings(root: Path) -> dict[str, str]:
    cfg = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = cfg.get("repository", {})
    url = repo.get("url", "").rstrip("/")
    m = re.match(r"https://github\.com/([^/]+)/([^/]+)$", url)
    if not m:
        raise SourceError(f"{root / '_config.yml'}: repository.url must be a GitHub URL, got {url!r}")
    from course_utils import __version__

    return {"url": url, "org": m.group(1), "repo": m.group(2), "branch": repo.get("branch", "main"),
            "version": __version__}


def colab_url(root: Path, rel_path: str) -> str:
    s = _repo_settings(root)
    return f"https://colab.research.google.com/github/{s['org']}/{s['repo']}/blob/{s['branch']}/{rel_path}"


def setup_cell_source(root: Path, extras: list[str] | None = None) -> str:
    s = _repo_settings(root)
    name = "polysemanticity-course" + (f"[{','.join(extras)}]" if extras else "")
    spec = f"{name} @ git+{s['url']}@v{s['version']}"
    return "\n".join([
        "# Setup: works in JupyterLab and on Colab. On Colab it installs only the course package",
        "# (pinned to this release) and keeps Colab's own torch.",
        "import sys",
        "",
        'if "google.colab" in sys.modules:',
        "    import subprocess",
        "",
        f'    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "{spec}"], check=True)',
        "",
        "from course_utils import SCALE, get_device, set_seed",
        "",
        "DEVICE = get_device()  # CUDA if present (Colab: Runtime > Change runtime type > GPU), else CPU",
        "set_seed(0)",
        'print(f"device: {DEVICE}, run size: {SCALE}")',
    ])


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
    """'ch01_topic' -> '1'; appendices 'appA_topic' -> 'A'."""
    m = re.match(r"(?:ch(\d+)|app([A-Z]))_", chapter)
    if not m:
        raise SourceError(f"chapter folder names look like 'ch01_topic' (or 'appA_topic' for an appendix), "
                          f"got {chapter!r}")
    return str(int(m.group(1))) if m.group(1) else m.group(2)


def render(path: Path, kind: Kind, root: Path) -> nbformat.NotebookNode:
    """Build one notebook (page, exercises or solutions) from its source file."""
    path = Path(path)
    chapter = path.parent.name
    number = chapter_number(chapter)
    cells = parse_source(path)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    out: list[nbformat.NotebookNode] = []
    if kind == "page":
        meta = load_chapter_meta(path.parent)
        if any("exercise" in c.attrs or "check" in c.attrs for c in cells):
            raise SourceError(f"{path}: pages hold no exercises; put them in exercises.py")
        out.append(nbformat.v4.new_markdown_cell(
            f"# {meta['title']}\n\n```{{chapter-header}} {chapter}\n```"))
        setup = nbformat.v4.new_code_cell(setup_cell_source(root, meta.get("pip_extras")))
        setup.metadata["tags"] = ["remove-cell"]
        out.append(setup)
    else:
        rel = f"{kind}/{chapter}.ipynb"
        badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                 f"({colab_url(root, rel)})")
        which = "exercises" if kind == "exercises" else "solutions (answer key)"
        out.append(nbformat.v4.new_markdown_cell(
            f"{badge}\n\n*Chapter {number} {which}. Generated from `book/{chapter}/exercises.py`: "
            "do not edit by hand.*"))
        extras = load_chapter_meta(path.parent).get("pip_extras") if (path.parent / "chapter.yml").exists() else None
        setup = nbformat.v4.new_code_cell(setup_cell_source(root, extras))
        setup.metadata["tags"] = ["setup"]
        out.append(setup)
    n_ex = 0
    for cell in cells:
        only = cell.attrs.get("only")
        if only is not None and (kind == "page" or only != kind):
            continue
        meta_course: dict[str, Any] = {}
        if cell.cell_type == "markdown":
            nb_cell = nbformat.v4.new_markdown_cell("\n".join(cell.lines))
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
        if cell.tags:
            nb_cell.metadata["tags"] = cell.tags
        if meta_course:
            nb_cell.metadata["course"] = meta_course
        out.append(nb_cell)
    for i, c in enumerate(out):
        c.id = _cell_id(f"{chapter}/{kind}", i)
    nb.cells = out
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


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
    return written


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
    for folder in ("exercises", "solutions"):
        for nb in (root / folder).glob("*.ipynb"):
            if nb.resolve() not in expected:
                problems.append(f"{nb.relative_to(root)} has no source in book/")
    return problems


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
