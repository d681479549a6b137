"""No page refers to a chapter, appendix or page that the book does not contain.

Reads the sources (no build needed): every page in _toc.yml, and the metadata and exercise source
of every chapter in it (both are rendered on the site). Numbered mentions ("chapter 4", "chapters 2 and 3",
"Appendix B") must name chapters in _toc.yml; relative links must point at files that exist and
are in the book; a chapter mention followed by an italic title, "Chapter 3 (*Incidental
polysemanticity*)", must use that chapter's title or short title (for a chapter in parts, such as
ch04_saes and ch04b_saes_course_model, either part's). New chapters are picked up from _toc.yml and
their folders automatically.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

CHAPTER_MENTION = re.compile(
    r"\b[Cc]hapters?\s+(\d+(?:\s*(?:,|–|-|to|and|or)\s*\d+)*)")
APPENDIX_MENTION = re.compile(r"\bAppendi(?:x|ces)\s+([A-Z](?:\s*(?:,|–|-|to|and|or)\s*[A-Z])*)\b")
TITLED_MENTION = re.compile(r"\b[Cc]hapter\s+(\d+)(?:\]\([^)]*\))?\s*,?\s*\(?\*([^*]+)\*")
LOCAL_LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s]+)\)")


def _toc_docs() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    docs = [toc["root"]]
    for part in toc.get("parts", []):
        for ch in part.get("chapters", []):
            docs.append(ch["file"])
            docs += [s["file"] for s in ch.get("sections", [])]
    return docs


def _book_chapters() -> tuple[dict[int, list[Path]], dict[str, Path]]:
    """Chapter folders in the toc: {number: its parts' folders} (``ch04_saes`` and
    ``ch04b_saes_course_model`` are both chapter 4), {appendix letter: folder}."""
    chapters: dict[int, list[Path]] = {}
    appendices: dict[str, Path] = {}
    for doc in _toc_docs():
        folder = Path(doc).parent
        if m := re.fullmatch(r"ch(\d+)[a-z]?_\w+", folder.name):
            chapters.setdefault(int(m.group(1)), []).append(ROOT / folder)
        elif m := re.fullmatch(r"app([A-Z])_\w+", folder.name):
            appendices[m.group(1)] = ROOT / folder
    return chapters, appendices


def book_page_sources() -> list[Path]:
    """The source of every page in _toc.yml (book/x.md, or book/x/index.py for a chapter)."""
    return [ROOT / f"{doc}{ext}" for doc in _toc_docs() for ext in (".md", ".py")
            if (ROOT / f"{doc}{ext}").exists()]


def _sources() -> list[Path]:
    """Page sources plus the metadata and exercise source of every chapter in the book."""
    out = book_page_sources()
    for page in list(out):
        for extra in ("chapter.yml", "exercises.py"):
            if page.name == "index.py" and (page.parent / extra).exists():
                out.append(page.parent / extra)
    return out


def _numbers(spec: str) -> list[int]:
    parts = [int(x) for x in re.findall(r"\d+", spec)]
    if len(parts) == 2 and re.search(r"–|-|to", spec):
        return list(range(parts[0], parts[1] + 1))
    return parts


def _letters(spec: str) -> list[str]:
    parts = re.findall(r"[A-Z]", spec)
    if len(parts) == 2 and re.search(r"–|-|to", spec):
        return [chr(c) for c in range(ord(parts[0]), ord(parts[1]) + 1)]
    return parts


def _text(path: Path) -> str:
    """The prose of a source, comment markers removed so that wrapped lines join up."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        raw = "\n".join(re.sub(r"^#\s?", "", ln) for ln in raw.splitlines())
    return re.sub(r"\s*\n\s*", " ", raw)


def problems_in(text: str, where: str, chapters: dict[int, list[Path]], appendices: dict[str, Path],
                base: Path, docs: set[str]) -> list[str]:
    out = []
    for m in CHAPTER_MENTION.finditer(text):
        out += [f"{where}: '{m.group(0)}' names chapter {n}, which the book does not contain"
                for n in _numbers(m.group(1)) if n not in chapters]
    for m in APPENDIX_MENTION.finditer(text):
        out += [f"{where}: '{m.group(0)}' names appendix {a}, which the book does not contain"
                for a in _letters(m.group(1)) if a not in appendices]
    for m in TITLED_MENTION.finditer(text):
        n, title = int(m.group(1)), m.group(2).strip().lower()
        if n in chapters:
            metas = [yaml.safe_load((part / "chapter.yml").read_text(encoding="utf-8"))
                     for part in chapters[n]]
            if title not in {t.lower() for meta in metas for t in (meta["title"], meta["short_title"])}:
                names = " or ".join(repr(meta["short_title"]) for meta in metas)
                out.append(f"{where}: chapter {n} is called *{m.group(2)}*, but its title is {names}")
    for m in LOCAL_LINK.finditer(text):
        target = (base / m.group(1).split("#")[0]).resolve()
        if not m.group(1).split("#")[0]:
            continue
        rel = target.relative_to(ROOT).with_suffix("").as_posix() if target.is_relative_to(ROOT) else ""
        if not target.exists() and not any(target.with_suffix(s).exists() for s in (".md", ".py")):
            out.append(f"{where}: link to {m.group(1)}, which does not exist")
        elif target.suffix in (".ipynb", ".md", ".html", "") and rel and rel not in docs:
            out.append(f"{where}: link to {m.group(1)}, a page that is not in _toc.yml")
    return out


def test_no_page_refers_to_a_missing_chapter_or_page():
    chapters, appendices = _book_chapters()
    assert chapters, "no chapter found in _toc.yml"
    docs = set(_toc_docs())
    found = []
    for path in _sources():
        found += problems_in(_text(path), str(path.relative_to(ROOT)), chapters, appendices,
                             path.parent, docs)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("text, n_problems", [
    ("As chapter 9 shows", 1),  # a chapter number the book lacks
    ("chapters 2 and 9", 1),
    ("Chapters 4 to 7 take a model apart", 3),
    ("see Appendix Z", 1),
    ("[Chapter 2](../ch02_superposition/index.ipynb) (*Superposition geometry*)", 1),  # wrong title
    ("[a page](../ch09_missing/index.ipynb)", 1),  # a link to nothing
    ("[Chapter 2](../ch02_superposition/index.ipynb) (*Superposition*)", 0),
    ("chapters 1 to 3; Appendix A", 0),
    ("Chapter 4 (*SAEs on the course model*)", 0),  # the title of chapter 4's second part
    ("Chapter 4 (*Sparse autoencoders*)", 0),
    ("Chapter 4 (*Sparse codes*)", 1),
    ("chapter 5", 1),
])
def test_the_reference_check_catches_what_it_should(text, n_problems):
    # A fixed book (chapters 1-4, chapter 4 in two parts, and appendix A), so that chapters landing
    # later change nothing here.
    book = ROOT / "book"
    chapters = {1: [book / "ch01_polysemanticity"], 2: [book / "ch02_superposition"],
                3: [book / "ch03_incidental"], 4: [book / "ch04_saes", book / "ch04b_saes_course_model"]}
    appendices = {"A": book / "appA_course_model"}
    base = book / "ch01_polysemanticity"
    found = problems_in(text, "text", chapters, appendices, base, set(_toc_docs()))
    assert len(found) == n_problems, found
