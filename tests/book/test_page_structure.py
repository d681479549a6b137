"""Every chapter page ends with a summary and says what to do next (checked on the sources).

Chapters are picked up from _toc.yml, so a chapter is checked once it is in the book (a folder still
being written is not); appendices are reference pages and need neither.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.book.test_references import book_page_sources

ROOT = Path(__file__).resolve().parents[2]


def structure_problems(source: str) -> list[str]:
    headings = re.findall(r"^# (#{2,3}) (.+)$", source, flags=re.M)
    names = [h for _, h in headings]
    out = []
    if "Summary" not in names:
        out.append("no '## Summary' section")
    elif names.index("Summary") < len(names) - 1 and headings[-1][0] == "##":
        out.append(f"'## Summary' is not the last section (then: {names[-1]!r})")
    tail = source[source.rfind("## Summary"):] if "## Summary" in source else ""
    if "**Next:**" not in tail:
        out.append("no '**Next:**' paragraph after the summary (point to the exercises)")
    return out


def test_every_chapter_ends_with_a_summary_and_what_next():
    pages = [p for p in book_page_sources() if re.fullmatch(r"ch\d+[b-z]?_\w+", p.parent.name)]
    assert pages, "no chapter pages found"
    bad = [f"{p.relative_to(ROOT)}: {msg}" for p in pages
           for msg in structure_problems(p.read_text(encoding="utf-8"))]
    assert not bad, "\n".join(bad)


def test_the_structure_check_rejects_missing_parts():
    good = "# ## Intro\n# text\n# ## Summary\n# * a\n#\n# **Next:** the exercises\n"
    assert structure_problems(good) == []
    assert structure_problems("# ## Intro\n# text\n") == [
        "no '## Summary' section", "no '**Next:**' paragraph after the summary (point to the exercises)"]
    assert structure_problems("# ## Summary\n# * a\n# ## Later\n# **Next:** x\n") == [
        "'## Summary' is not the last section (then: 'Later')"]
    assert structure_problems("# ## Summary\n# * a\n") == [
        "no '**Next:**' paragraph after the summary (point to the exercises)"]
