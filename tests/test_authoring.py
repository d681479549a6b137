"""One source per notebook: generated notebooks are in sync, and malformed sources get clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_utils import authoring
from course_utils.authoring import SourceError, parse_source, render

ROOT = Path(__file__).resolve().parents[1]


def test_generated_notebooks_are_in_sync_with_their_sources():
    problems = authoring.out_of_sync(ROOT)
    assert not problems, "\n".join(problems) + "\nrun `make notebooks`"


def test_every_chapter_has_a_page_and_metadata():
    dirs = authoring.chapter_dirs(ROOT)
    assert dirs, "no chapter under book/"
    for d in dirs:
        assert (d / "index.py").exists(), f"{d.name}: missing index.py"
        meta = authoring.load_chapter_meta(d)
        assert meta["objectives"] and meta["reading_minutes"] > 0


def _generated(kind: str) -> list[Path]:
    return [dst for _, k, dst in authoring.targets(ROOT) if k == kind]


@pytest.mark.parametrize("nb_path", _generated("exercises") + _generated("solutions") + _generated("page"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_notebooks_have_no_outputs(nb_path):
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("nb_path", _generated("exercises") + _generated("solutions"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_exercise_notebooks_start_with_colab_badge_and_setup_cell(nb_path):
    nb = json.loads(nb_path.read_text())
    badge, setup = "".join(nb["cells"][0]["source"]), "".join(nb["cells"][1]["source"])
    rel = nb_path.relative_to(ROOT).as_posix()
    assert "colab-badge.svg" in badge and f"blob/main/{rel}" in badge
    assert '"google.colab" in sys.modules' in setup and "pip" in setup and "get_device()" in setup
    assert "torch" not in setup.split("pip")[1].split("\n")[0], "the Colab install must not reinstall torch"


def test_stubs_replace_solutions_and_name_the_exercise():
    nb = render(ROOT / "book" / "ch00_warmup" / "exercises.py", "exercises", ROOT)
    cells = [c for c in nb.cells if c.metadata.get("course", {}).get("role") == "exercise"]
    assert cells
    for c in cells:
        meta = c.metadata["course"]
        assert f'NotImplementedError("Exercise {meta["number"]} ({meta["exercise"]})' in c.source
        assert "BEGIN SOLUTION" not in c.source and "END SOLUTION" not in c.source
        assert "def " in c.source and '"""' in c.source, "signature and docstring must survive"
    sol = render(ROOT / "book" / "ch00_warmup" / "exercises.py", "solutions", ROOT)
    assert not any("NotImplementedError" in c.source for c in sol.cells if c.cell_type == "code")


def _write(tmp_path: Path, text: str) -> Path:
    chapter = tmp_path / "book" / "ch09_test"
    chapter.mkdir(parents=True)
    p = chapter / "exercises.py"
    p.write_text(text)
    return p


@pytest.mark.parametrize("source, message", [
    ('# %% exercise="f"\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n', r"cell 1 \(line 1\): unclosed"),
    ('# %% [markdown]\n# ### BEGIN SOLUTION\n# text\n# ### END SOLUTION\n', r"cell 1 .*markdown cell"),
    ('# %%\nx = 1\n# %%\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n', r"cell 2 \(line 3\).*without exercise"),
    ('# %% exercise="f"\n### END SOLUTION\n', r"END without BEGIN"),
    ('# %% exercise="f"\n### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n', r"nested or repeated"),
    ('# %% exercise="f"\nx = 1\n', r"no '### BEGIN SOLUTION'"),
    ('# %% check="g"\ng()\n', r"names no exercise"),
    ('# %% colour="red"\nx = 1\n', r"unknown cell attribute 'colour'"),
    ('# %% tags=[hide-input]\nx = 1\n', r"not valid JSON"),
    ('x = 1\n# %%\ny = 2\n', r"before the first"),
    ('# %% exercise="f"\nx = 1  ### BEGIN SOLUTION\n### END SOLUTION\n', r"stand alone"),
])
def test_malformed_sources_are_reported_with_file_and_cell(tmp_path, source, message):
    path = _write(tmp_path, source)
    with pytest.raises(SourceError, match=message) as info:
        parse_source(path)
    assert str(path) in str(info.value)


def test_only_attribute_and_tags_are_honoured(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/o/r\n")
    path = _write(tmp_path, '# %% [markdown] only="solutions"\n# answer\n\n# %% tags=["hide-input"]\nx = 1\n')
    ex = render(path, "exercises", tmp_path)
    sol = render(path, "solutions", tmp_path)
    assert not any(c.source == "answer" for c in ex.cells) and any(c.source == "answer" for c in sol.cells)
    assert ex.cells[-1].metadata["tags"] == ["hide-input"]


def test_cli_check_reports_drift(tmp_path, capsys):
    import shutil

    for name in ("_config.yml",):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book" / "ch00_warmup", tmp_path / "book" / "ch00_warmup")
    assert authoring.main(["build", "--root", str(tmp_path)]) == 0
    assert authoring.main(["check", "--root", str(tmp_path)]) == 0
    nb = tmp_path / "exercises" / "ch00_warmup.ipynb"
    nb.write_text(nb.read_text().replace("Exercise 0.1", "Exercise 0.9"))
    assert authoring.main(["check", "--root", str(tmp_path)]) == 1
    assert "exercises/ch00_warmup.ipynb differs" in capsys.readouterr().err


def test_chapter_metadata_items_must_be_strings(tmp_path):
    d = tmp_path / "ch09_test"
    d.mkdir()
    (d / "chapter.yml").write_text(
        "title: T\nshort_title: T\nobjectives: [a]\nprerequisites:\n  - Linear algebra: dot products\n"
        "reading_minutes: 1\nexercise_minutes: 1\ncpu_runtime: x\ngpu_runtime: y\n")
    with pytest.raises(SourceError, match="quote items"):
        authoring.load_chapter_meta(d)
    (d / "chapter.yml").write_text("title: T\n")
    with pytest.raises(SourceError, match="missing required field 'short_title'"):
        authoring.load_chapter_meta(d)
