"""Page code fits the website's content column, checked on the sources (no build needed).

The browser pass (test_browser.py) measures the rendered page; this test catches the usual cause,
a code line longer than 88 characters, in every chapter page and exercise source, and names it.
Pages are picked up from _toc.yml: a chapter is checked once it is in the book.
"""

from __future__ import annotations

from pathlib import Path

from tests.book.test_references import book_page_sources

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 88  # characters of monospace text that fit the content column at the default font size


def long_code_lines(source: str, width: int = WIDTH) -> list[tuple[int, str]]:
    """(line number, line) of code lines wider than ``width`` in a percent-format source;
    markdown cells are prose and wrap, so they are not counted."""
    out, in_code = [], True
    for number, line in enumerate(source.splitlines(), 1):
        if line.startswith("# %%"):
            in_code = "[markdown]" not in line
            continue
        if in_code and len(line) > width:
            out.append((number, line))
    return out


def test_every_page_code_line_fits_the_column():
    sources = [p for p in book_page_sources() if p.suffix == ".py"]
    assert sources, "no page sources found"
    bad = [f"{p.relative_to(ROOT)}:{n}: {len(line)} characters: {line.strip()[:60]}"
           for p in sources for n, line in long_code_lines(p.read_text(encoding="utf-8"))]
    assert not bad, f"code lines wider than {WIDTH} characters:\n" + "\n".join(bad)


def test_the_width_check_counts_code_and_skips_prose():
    src = "\n".join(["# %% [markdown]", "# " + "word " * 40, "# %%", "x = 1", "y = " + "1 + " * 30 + "1",
                     '# %% tags=["hide-input"]', "z = " + "2" * 90])
    assert [n for n, _ in long_code_lines(src)] == [5, 7]
