"""Numbered figure captions on chapter pages, so that the text can refer to a figure by number.

In a chapter's ``index.py`` the markdown cell right after a cell that shows a figure is its caption
when its header says ``figure="name"``; the text refers to it with ``{fig}`name```::

    # %% tags=["hide-input"]
    poly.xy_figure(xy.model)

    # %% [markdown] figure="xy-function"
    # The network's function next to the target $xy$, and the network along the two diagonals.

    # %% [markdown]
    # Along each diagonal the network is a piecewise-linear stand-in for $\\pm t^2$ ({fig}`xy-function`).

The build numbers captions in page order, ``Figure <chapter>.<k>`` (Figure 1.3, Figure A.1), and
writes each reference as a link to its caption, ``[Figure 1.3](#fig-<chapter>-xy-function)``: on the
website a MyST target on the caption; in the notebook versions an HTML anchor. A chapter opts in to
the rule that *every* figure has a caption with ``figure_captions: true`` in ``chapter.yml``
(:func:`caption_problems`, checked on the executed pages by ``tests/book/test_site.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
FIG_ROLE = re.compile(r"\{fig\}`([^`]*)`")
CAPTION_CLASS = "course-figure-caption"


class CaptionError(ValueError):
    """A caption or a figure reference that the build cannot number or resolve."""


def label(chapter: str, name: str) -> str:
    """The anchor of a caption: ``fig-<chapter folder>-<name>`` (unique across the book)."""
    return f"fig-{chapter}-{name}"


def number_figures(names: Sequence[str], chapter_number: str) -> dict[str, str]:
    """``{name: "1.3"}`` for the captions of one page, numbered in page order."""
    numbers: dict[str, str] = {}
    for k, name in enumerate(names, start=1):
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise CaptionError(f"figure names are lower-case words joined by '-', such as "
                               f"'xy-function'; got {name!r}")
        if name in numbers:
            raise CaptionError(f"two captions are named figure={name!r}; figure names are unique on a page")
        numbers[name] = f"{chapter_number}.{k}"
    return numbers


def resolve_references(text: str, numbers: dict[str, str], chapter: str) -> str:
    """Replace every ``{fig}`name``` by ``[Figure N.k](#label)``; an unknown name is an error."""
    def link(m: re.Match) -> str:
        name = m.group(1)
        if name not in numbers:
            known = ", ".join(sorted(numbers)) or "none on this page"
            raise CaptionError(f"{{fig}}`{name}` names no caption on this page (figure= names: {known})")
        return f"[Figure {numbers[name]}](#{label(chapter, name)})"

    return FIG_ROLE.sub(link, text)


def caption_markdown(text: str, number: str, anchor: str, page: bool) -> str:
    """The caption cell: a MyST target and a styled container on the website, an HTML anchor in the
    notebooks (``id`` for JupyterLab, ``name`` for Colab), both starting with the bold figure number."""
    body = f"**Figure {number}.** {text.strip()}"
    if page:
        return f"({anchor})=\n:::{{container}} {CAPTION_CLASS}\n{body}\n:::"
    return f'<a id="{anchor}" name="{anchor}"></a>{body}'


def _shows_figure(cell: Any) -> bool:
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        html = "".join(data.get("text/html", []))
        if ("application/vnd.plotly.v1+json" in data or "Plotly.newPlot" in html
                or "application/vnd.jupyter.widget-view+json" in data or "image/png" in data):
            return True
    return False


def caption_problems(nb: Any, where: str) -> list[str]:
    """Cells of an *executed* page notebook that show a figure (plotly, a widget, an image) and are not
    followed by a caption cell, and caption cells that follow no figure."""
    cells = list(nb["cells"]) if isinstance(nb, dict) else list(nb.cells)
    problems = []
    for i, cell in enumerate(cells):
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        is_caption = lambda c: c is not None and c.get("metadata", {}).get("course", {}).get("role") == "caption"  # noqa: E731
        if cell.get("cell_type") == "code" and _shows_figure(cell) and not is_caption(nxt):
            first = "".join(cell.get("source", "")).strip().splitlines()[:1]
            problems.append(f"{where}: cell {i} shows a figure without a caption after it: "
                            f"{first[0][:60] if first else ''!r} (add a markdown cell with figure=\"name\")")
        if is_caption(cell) and (i == 0 or not _shows_figure(cells[i - 1])):
            problems.append(f"{where}: caption cell {i} does not follow a cell that shows a figure")
    return problems
