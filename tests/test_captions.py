"""Numbered figure captions (course_utils.captions, applied by course_utils.authoring)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils import captions
from course_utils.authoring import SourceError, load_chapter_meta, render

ROOT = Path(__file__).resolve().parents[1]
META = ("title: T\nshort_title: T\nobjectives: [a]\nprerequisites: [b]\nreading_minutes: 1\n"
        "exercise_minutes: 1\ncpu_runtime: x\ngpu_runtime: y\n")
PAGE = '''# %% [markdown]
# As {fig}`second` shows, and {fig}`first` before it.

# %% tags=["hide-input"]
fig_a

# %% [markdown] figure="first"
# The first figure, $x$ {cite}`elhage2022toy`.

# %%
fig_b

# %% [markdown] figure="second"
# The second.
'''


def _chapter(tmp_path: Path, page: str, name: str = "ch07_test", exercises: str | None = None) -> Path:
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "book").mkdir(exist_ok=True)
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book" / "references.bib")
    d = tmp_path / "book" / name
    d.mkdir()
    (d / "chapter.yml").write_text(META)
    (d / "index.py").write_text(page)
    if exercises is not None:
        (d / "exercises.py").write_text(exercises)
    return d


def test_captions_are_numbered_in_page_order_and_references_link_to_them(tmp_path):
    d = _chapter(tmp_path, PAGE)
    page = render(d / "index.py", "page", tmp_path)
    text = [c.source for c in page.cells]
    assert "As [Figure 7.2](#fig-ch07_test-second) shows, and [Figure 7.1](#fig-ch07_test-first)" in text[2]
    first = next(c for c in page.cells if c.metadata.get("course", {}).get("figure") == "first")
    assert first.source.startswith("(fig-ch07_test-first)=\n:::{container} course-figure-caption\n")
    assert "**Figure 7.1.** The first figure, $x$ {cite}`elhage2022toy`." in first.source  # MyST kept
    assert first.metadata["course"] == {"figure": "first", "number": "7.1", "role": "caption"}
    nb = render(d / "index.py", "notebook", tmp_path)
    cap = next(c for c in nb.cells if c.metadata.get("course", {}).get("figure") == "second")
    assert cap.source == '<a id="fig-ch07_test-second" name="fig-ch07_test-second"></a>**Figure 7.2.** The second.'
    linked = next(c for c in nb.cells if "[Figure 7.2]" in c.source)
    assert "(#fig-ch07_test-second)" in linked.source and "{fig}" not in linked.source
    assert "{cite}" not in "".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_appendix_figures_are_numbered_with_its_letter(tmp_path):
    d = _chapter(tmp_path, PAGE, name="appB_test")
    page = render(d / "index.py", "page", tmp_path)
    assert any("**Figure B.1.**" in c.source for c in page.cells)


@pytest.mark.parametrize("page, message", [
    ('# %% [markdown]\n# See {fig}`nope`.\n\n# %%\nf\n\n# %% [markdown] figure="a"\n# A.\n',
     r"cell 1 \(line 1\): \{fig\}`nope` names no caption on this page \(figure= names: a\)"),
    ('# %% [markdown]\n# text\n\n# %% [markdown] figure="a"\n# A.\n', r"must come right after the code cell"),
    ('# %% [markdown] figure="a"\n# A.\n', r"must come right after the code cell"),
    ('# %%\nf\n\n# %% [markdown] figure="a"\n# A.\n\n# %%\ng\n\n# %% [markdown] figure="a"\n# B.\n',
     r"two captions are named figure='a'"),
    ('# %%\nf\n\n# %% [markdown] figure="Big Name"\n# A.\n', r"lower-case words joined by '-'"),
    ('# %% figure="a"\nf\n', r"marks the markdown cell that captions"),
])
def test_caption_mistakes_name_the_cell_or_the_name(tmp_path, page, message):
    d = _chapter(tmp_path, page)
    with pytest.raises(SourceError, match=message):
        render(d / "index.py", "page", tmp_path)


def test_captions_belong_to_pages_not_exercise_notebooks(tmp_path):
    d = _chapter(tmp_path, "# %%\nx = 1\n", exercises='# %%\nf\n\n# %% [markdown] figure="a"\n# A.\n')
    with pytest.raises(SourceError, match="numbered on chapter pages"):
        render(d / "exercises.py", "exercises", tmp_path)


def test_figure_captions_opt_in_is_a_boolean(tmp_path):
    d = _chapter(tmp_path, "# %%\nx = 1\n")
    assert load_chapter_meta(d)["figure_captions"] is False
    (d / "chapter.yml").write_text(META + "figure_captions: true\n")
    assert load_chapter_meta(d)["figure_captions"] is True
    (d / "chapter.yml").write_text(META + "figure_captions: yes please\n")
    with pytest.raises(SourceError, match="figure_captions must be true or false"):
        load_chapter_meta(d)


def _executed(cells: list[tuple[str, dict]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for kind, extra in cells:
        if kind == "fig":
            c = nbformat.v4.new_code_cell("poly.xy_figure(model)")
            c.outputs = [nbformat.v4.new_output("display_data", data={
                "text/html": '<div class="plotly-graph-div"></div><script>Plotly.newPlot("x")</script>'})]
        elif kind == "print":
            c = nbformat.v4.new_code_cell("print(1)")
            c.outputs = [nbformat.v4.new_output("stream", text="1\n")]
        else:
            c = nbformat.v4.new_markdown_cell("text")
        c.metadata.update(extra)
        nb.cells.append(c)
    return nb


CAPTION = {"course": {"role": "caption", "figure": "a", "number": "1.1"}}


def test_caption_problems_finds_uncaptioned_figures_and_stray_captions():
    good = _executed([("print", {}), ("fig", {}), ("md", CAPTION), ("md", {})])
    assert captions.caption_problems(good, "p") == []
    missing = captions.caption_problems(_executed([("fig", {}), ("md", {})]), "p")
    assert len(missing) == 1 and "cell 0 shows a figure without a caption" in missing[0]
    assert "xy_figure" in missing[0]
    last = captions.caption_problems(_executed([("md", {}), ("fig", {})]), "p")
    assert len(last) == 1 and "cell 1" in last[0]
    stray = captions.caption_problems(_executed([("print", {}), ("md", CAPTION)]), "p")
    assert stray == ["p: caption cell 1 does not follow a cell that shows a figure"]
    widget = _executed([("fig", {})])
    widget.cells[0].outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "m"}})]
    assert captions.caption_problems(widget, "p"), "a widget is a figure too"
