"""The website's Colab launch button opens, for each page, the notebook a learner should use: a
chapter's plain-Markdown notebook version (``notebooks/<chapter>.ipynb``) or the exercise notebook,
at the release tag. Checked on the extension's handler (fast) and, with the built site, in test_site."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from course_utils import __version__, authoring
from tests.book.test_site import toc_files

ROOT = Path(__file__).resolve().parents[2]


def _coursebook():
    spec = importlib.util.spec_from_file_location("coursebook_ext", ROOT / "book" / "_ext" / "coursebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _theme_context(pagename: str) -> dict:
    """Header buttons as sphinx-book-theme builds them: the page's own source at the branch."""
    wrong = f"https://colab.research.google.com/github/org/repo/blob/main/{pagename}.ipynb"
    return {"header_buttons": [
        {"type": "group", "label": "download-buttons", "buttons": [{"text": ".ipynb", "url": "x.ipynb"}]},
        {"type": "group", "label": "launch-buttons", "buttons": [{"text": "Colab", "url": wrong}]}]}


def expected_colab_url(pagename: str) -> str | None:
    target = authoring.colab_target(pagename)
    return None if target is None else authoring.colab_url(ROOT, target)


@pytest.mark.parametrize("pagename,target", [
    ("book/ch01_polysemanticity/index", "notebooks/ch01_polysemanticity.ipynb"),
    ("book/ch04b_topic/index", "notebooks/ch04b_topic.ipynb"),
    ("book/appA_course_model/index", "notebooks/appA_course_model.ipynb"),
    ("exercises/ch02_superposition", "exercises/ch02_superposition.ipynb"),
    ("book/intro", None), ("book/ch01_polysemanticity/other", None), ("solutions/ch01_x", None)])
def test_colab_target_maps_pages_to_learner_notebooks(pagename, target):
    assert authoring.colab_target(pagename) == target
    with pytest.raises(TypeError, match="Sphinx document name"):
        authoring.colab_target(None)


def test_every_chapter_page_in_the_book_launches_its_notebook_version_at_the_release_tag():
    handler = _coursebook()._colab_launch_opens_notebook_version
    chapters = [doc for doc in toc_files() if doc.startswith(("book/ch", "book/app", "exercises/"))]
    assert chapters, "no chapter page in the toc: the check would be vacuous"
    for doc in chapters:
        context = _theme_context(doc)
        handler(None, doc, "page.html", context, None)
        launch = next(g for g in context["header_buttons"] if g["label"] == "launch-buttons")
        url = launch["buttons"][0]["url"]
        rel = authoring.colab_target(doc)
        assert (ROOT / rel).exists(), f"{doc}: the Colab button opens {rel}, which is not in the repository"
        assert url == expected_colab_url(doc), f"{doc}: Colab opens {url}"
        assert url.endswith(f"/blob/v{__version__}/{rel}") and "/index.ipynb" not in url, url


def test_pages_without_a_learner_notebook_lose_the_colab_button():
    context = _theme_context("book/glossary")
    _coursebook()._colab_launch_opens_notebook_version(None, "book/glossary", "page.html", context, None)
    assert [g["label"] for g in context["header_buttons"]] == ["download-buttons"]
