"""MyST Markdown -> plain Markdown, for notebooks read outside the website (JupyterLab, Colab).

The website (Jupyter Book) understands MyST roles and directives; JupyterLab and Colab show them
raw. :func:`to_plain_markdown` rewrites what the course's sources use:

* ``{cite}`a,b``` -> ``([Elhage et al., 2022](url); ...)`` from ``book/references.bib``
  (``{cite:t}`` -> ``Elhage et al. ([2022](url))``), linked to the entry's ``url`` or ``doi``;
* ``{term}`text <Term>``` and ``{term}`Term``` -> the text; other roles (``{ref}``, ``{doc}``,
  ``{numref}``, ...) -> their text;
* ````{name} title``` / ``:::{name} title`` directives -> a quoted block headed by the title
  (``:option:`` lines dropped); ``(label)=`` targets and ``%`` comment lines are dropped;
* links to other chapter pages (``../ch01_x/index.ipynb``) -> the sibling notebook ``ch01_x.ipynb``.

Unknown citation keys raise :class:`MystError`, so a notebook never shows a dangling key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


class MystError(ValueError):
    """Markdown that cannot be converted (e.g. a citation key missing from references.bib)."""


@dataclass(frozen=True)
class BibEntry:
    key: str
    authors: list[str]  # family names
    year: str
    url: str | None

    def short(self) -> str:
        a = self.authors
        who = a[0] if len(a) == 1 else f"{a[0]} and {a[1]}" if len(a) == 2 else f"{a[0]} et al." if a else "?"
        return who


def _fields(body: str) -> dict[str, str]:
    """``name = {value}`` / ``name = "value"`` / ``name = 2022`` fields, braces nested."""
    out: dict[str, str] = {}
    i = 0
    while True:
        m = re.compile(r"\s*,?\s*([A-Za-z_-]+)\s*=\s*").match(body, i)
        if not m:
            return out
        name, i = m.group(1).lower(), m.end()
        if i < len(body) and body[i] in "{\"":
            close = "}" if body[i] == "{" else '"'
            depth, j = 0, i
            while j < len(body):
                if body[j] == "{":
                    depth += 1
                elif body[j] == "}":
                    depth -= 1
                if (close == "}" and depth == 0) or (close == '"' and j > i and body[j] == '"' and depth == 0):
                    break
                j += 1
            out[name], i = body[i + 1: j], j + 1
        else:
            v = re.compile(r"[^,\s}]+").match(body, i)
            if not v:
                return out
            out[name], i = v.group(0), v.end()


def parse_bib(text: str) -> dict[str, BibEntry]:
    """The entries of a BibTeX file: key -> authors' family names, year, link."""
    entries: dict[str, BibEntry] = {}
    for m in re.finditer(r"@\w+\s*\{\s*([^,\s]+)\s*,", text):
        start, depth, j = m.end(), 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        f = _fields(text[start: j - 1])
        authors = [a.split(",")[0].strip() if "," in a else a.strip().split(" ")[-1]
                   for a in re.split(r"\s+and\s+", f.get("author", "")) if a.strip()]
        authors = [re.sub(r"[{}]", "", a) for a in authors]
        url = f.get("url") or (f"https://doi.org/{f['doi']}" if f.get("doi") else None)
        entries[m.group(1)] = BibEntry(m.group(1), authors, re.sub(r"[{}]", "", f.get("year", "n.d.")), url)
    return entries


def _cite(keys: str, role: str, bib: dict[str, BibEntry]) -> str:
    parts = []
    for key in [k.strip() for k in keys.split(",") if k.strip()]:
        if key not in bib:
            raise MystError(f"citation key {key!r} is not in book/references.bib")
        e = bib[key]
        year = f"[{e.year}]({e.url})" if e.url else e.year
        parts.append(f"{e.short()} ({year})" if role == "t" else
                     (f"[{e.short()}, {e.year}]({e.url})" if e.url else f"{e.short()}, {e.year}"))
    return "; ".join(parts) if role == "t" else f"({'; '.join(parts)})"


_ROLE = re.compile(r"\{([a-z][a-z0-9:-]*)\}`([^`]+)`")
_FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[a-z][a-z0-9-]*)\}\s*(?P<arg>.*)$")
_CHAPTER_LINK = re.compile(r"\]\(\.\./((?:ch\d+[b-z]?|app[A-Z])_[A-Za-z0-9_]+)/index\.(?:ipynb|md|py)(#[^)]*)?\)")


def _role(m: re.Match[str], bib: dict[str, BibEntry]) -> str:
    role, content = m.group(1), m.group(2)
    if role.startswith("cite"):
        return _cite(content, role.partition(":")[2], bib)
    if role == "math":
        return f"${content}$"
    text = re.match(r"(.*?)\s*<[^>]*>$", content)
    return text.group(1) if text else content


def to_plain_markdown(text: str, bib: dict[str, BibEntry]) -> str:
    """Rewrite one markdown cell's MyST into Markdown that JupyterLab and Colab render."""
    out: list[str] = []
    stack: list[str] = []  # open directive fences
    for line in text.split("\n"):
        m = _FENCE.match(line.strip())
        if m and m.group("name") != "code-cell":
            stack.append(m.group("fence"))
            name, arg = m.group("name"), m.group("arg").strip()
            if name == "math":
                out.append("$$")
                stack[-1] = "math:" + stack[-1]
            else:
                title = arg or name.replace("-", " ").capitalize()
                out.append(f"> **{_ROLE.sub(lambda r: _role(r, bib), title)}**")
                out.append(">")
            continue
        if stack and line.strip() == stack[-1].removeprefix("math:"):
            out.append("$$" if stack.pop().startswith("math:") else "")
            continue
        if stack and re.match(r"^\s*:[a-z-]+:", line):
            continue  # directive options (:class: tip)
        if not stack and (re.fullmatch(r"\(\s*[\w.:-]+\s*\)=\s*", line) or re.match(r"^%( |$)", line)):
            continue  # MyST targets and comments
        line = _ROLE.sub(lambda r: _role(r, bib), line)
        line = _CHAPTER_LINK.sub(lambda r: f"]({r.group(1)}.ipynb{r.group(2) or ''})", line)
        if stack and not stack[-1].startswith("math:"):
            line = f"> {line}" if line else ">"
        out.append(line)
    if stack:
        raise MystError(f"unclosed directive fence {stack[-1]!r}")
    return "\n".join(out)


def load_bib(root: Path) -> dict[str, BibEntry]:
    path = Path(root) / "book" / "references.bib"
    return parse_bib(path.read_text(encoding="utf-8")) if path.exists() else {}
