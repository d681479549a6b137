"""One source per notebook: generated notebooks are in sync, and malformed sources get clear errors."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import sys
from pathlib import Path

import jupytext
import pytest

from course_utils import __version__, authoring, launch, mystmd
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


@pytest.mark.parametrize("nb_path", _generated("exercises") + _generated("solutions") + _generated("notebook"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_learner_notebooks_start_with_colab_badge_and_setup_cell(nb_path):
    nb = json.loads(nb_path.read_text())
    badge, setup = "".join(nb["cells"][0]["source"]), "".join(nb["cells"][1]["source"])
    rel = nb_path.relative_to(ROOT).as_posix()
    assert "colab-badge.svg" in badge and f"blob/v{__version__}/{rel})" in badge, "the badge opens this notebook"
    assert '"google.colab" in sys.modules' in setup and "get_device()" in setup
    assert nb["cells"][1]["metadata"]["tags"] == ["setup"]


@pytest.mark.parametrize("nb_path", [dst for _, _, dst in authoring.targets(ROOT)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_install_target_and_links_match_the_package_version(nb_path):
    """The setup cell installs, and the Colab links open, the release that the package declares."""
    nb = json.loads(nb_path.read_text())
    rel = launch.release(ROOT)
    assert rel.version == __version__ == importlib.metadata.version("polysemanticity-course"), \
        "reinstall the package (make) after changing course_utils.__version__"
    problems = launch.release_problems(nb, nb_path.relative_to(ROOT).as_posix(), rel)
    assert not problems, "\n".join(problems) + "\nrun `make notebooks`"
    chapter = nb_path.stem if nb_path.stem != "index" else nb_path.parent.name
    extras = authoring.load_chapter_meta(ROOT / "book" / chapter).get("pip_extras") or []
    _, specs = launch.install_targets(next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"))
    assert all((f"[{','.join(extras)}]" in s) == bool(extras) for s in specs), f"{chapter} needs extras {extras}"


def test_release_check_catches_a_notebook_of_another_release(tmp_path):
    """The check above can fail: a notebook generated for 0.0.9 is reported against 0.1.0."""
    old = launch.release(ROOT, version="0.0.9")
    cell = launch.setup_cell_source(ROOT).replace(f'"{__version__}"', '"0.0.9"').replace(
        f"=={__version__}", "==0.0.9").replace(f"@v{__version__}", "@v0.0.9")
    nb = {"cells": [{"cell_type": "markdown", "source": old.badge("exercises/x.ipynb")},
                    {"cell_type": "code", "source": cell}]}
    problems = launch.release_problems(nb, "exercises/x.ipynb", launch.release(ROOT))
    assert len(problems) == 4, problems  # RELEASE, two specs, one link
    assert "setup cell is for release 0.0.9" in problems[0] and "not at the release tag v0.1.0" in problems[-1]


class _Run:
    def __init__(self, returncode: int, stderr: str = ""):
        self.returncode, self.stderr, self.stdout = returncode, stderr, ""


def _exec_setup(monkeypatch, colab: bool, results: list[_Run] | None = None, extras=None,
                source: str | None = None) -> list[list[str]]:
    """Run a generated setup cell as a notebook would, with pip replaced by a recorder."""
    import subprocess
    import types

    calls: list[list[str]] = []
    answers = iter(results or [])

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return next(answers)

    monkeypatch.setattr(subprocess, "run", fake_run)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    source = source or launch.setup_cell_source(ROOT, extras)
    exec(compile(source, "setup-cell", "exec"), {"__name__": "__main__"})
    return calls


def test_setup_cell_on_colab_installs_the_release_from_the_index_first(monkeypatch, capsys):
    calls = _exec_setup(monkeypatch, colab=True, results=[_Run(0)], extras=["lm"])
    assert len(calls) == 1 and calls[0][:4] == [sys.executable, "-m", "pip", "install"]
    assert calls[0][-1] == f"polysemanticity-course[lm]=={__version__}"
    assert not any("torch" in part for part in calls[0]), "Colab's torch must be kept"
    assert "device: cpu" in capsys.readouterr().out


def test_setup_cell_falls_back_to_the_git_tag(monkeypatch):
    calls = _exec_setup(monkeypatch, colab=True, results=[_Run(1, "ERROR: No matching distribution"), _Run(0)])
    assert calls[1][-1].endswith(f"@ git+{launch.release(ROOT).url}@v{__version__}")


def test_setup_cell_failure_says_why_and_the_manual_command(monkeypatch):
    """Bad input: neither the index nor the git host reachable."""
    with pytest.raises(Exception) as info:
        _exec_setup(monkeypatch, colab=True, results=[
            _Run(1, "WARNING: Retrying...\nERROR: Could not find a version that satisfies the requirement"),
            _Run(128, "fatal: unable to access 'https://github.com/...': Could not resolve host: github.com")])
    err = info.value
    assert type(err).__name__ == "SetupError"
    msg = str(err)
    assert "failed: ERROR: Could not find a version" in msg and "Could not resolve host" in msg
    assert f'%pip install "polysemanticity-course=={__version__}"' in msg
    assert f"@v{__version__}" in msg and "not published yet" in msg
    assert err._render_traceback_() == [msg], "IPython shows the message alone, no traceback"


def test_setup_cell_outside_colab_installs_nothing_and_explains_a_missing_package(monkeypatch):
    assert _exec_setup(monkeypatch, colab=False) == []
    source = launch.setup_cell_source(ROOT)

    class NoCourse:  # a kernel whose Python lacks the package
        def find_spec(self, name, path=None, target=None):
            if name == "course_utils":
                raise ModuleNotFoundError("No module named 'course_utils'", name=name)

    monkeypatch.delitem(sys.modules, "course_utils")
    monkeypatch.setattr(sys, "meta_path", [NoCourse(), *sys.meta_path])
    with pytest.raises(Exception, match=r"(?s)not installed in this kernel.s Python .*make lab") as info:
        _exec_setup(monkeypatch, colab=False, source=source)
    assert type(info.value).__name__ == "SetupError"


def test_setup_cell_rejects_bad_extras():
    with pytest.raises(launch.LaunchConfigError, match="pip_extras must be a list"):
        launch.setup_cell_source(ROOT, "lm")


def test_repository_url_must_be_github(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://gitlab.com/o/r\n")
    with pytest.raises(launch.LaunchConfigError, match="must be a GitHub URL"):
        launch.release(tmp_path)


_MYST = re.compile(r"\{[a-z][a-z0-9:-]*\}`|^\s*(```|:::)\{", re.M)


@pytest.mark.parametrize("nb_path", _generated("notebook") + _generated("exercises"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_learner_notebooks_have_plain_markdown_and_working_links(nb_path):
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            assert not _MYST.search(src), f"MyST left in a notebook read outside the website:\n{src[:300]}"
            for link in re.findall(r"\]\(([^)#]+\.ipynb)\)", src):
                if not link.startswith("http"):
                    assert (nb_path.parent / link).exists(), f"broken link {link}"
        elif "hide-input" in cell["metadata"].get("tags", []):
            assert cell["metadata"]["jupyter"]["source_hidden"] is True


def test_myst_roles_and_directives_become_plain_markdown():
    bib = mystmd.parse_bib("@article{a2020x,\n author = {Smith, Ann and Jones, Bo and Li, Cy},\n"
                           " year = {2020},\n doi = {10.1/x}\n}\n@misc{b,\n author = {Ng, A.},\n year = 2021\n}")
    md = ("See {cite}`a2020x,b` and {cite:t}`a2020x`; a {term}`neuron <Neuron>`, a {term}`Feature`.\n"
          "(sec-x)=\n% a comment\n:::{note} Careful\n:class: tip\nText {term}`x`.\n:::\n"
          "[next](../ch02_superposition/index.ipynb)")
    out = mystmd.to_plain_markdown(md, bib)
    assert out.split("\n")[0] == ("See ([Smith et al., 2020](https://doi.org/10.1/x); Ng, 2021) and Smith et al. "
                                   "([2020](https://doi.org/10.1/x)); a neuron, a Feature.")
    assert out.split("\n")[1:] == ["> **Careful**", ">", "> Text x.", "", "[next](ch02_superposition.ipynb)"]
    with pytest.raises(mystmd.MystError, match="'nope' is not in book/references.bib"):
        mystmd.to_plain_markdown("{cite}`nope`", bib)
    with pytest.raises(mystmd.MystError, match="unclosed directive"):
        mystmd.to_plain_markdown("```{note}\ntext", bib)


def test_an_unknown_citation_in_a_source_names_the_cell(tmp_path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    path = _write(tmp_path, '# %% [markdown]\n# fine\n\n# %% [markdown]\n# As {cite}`nobody2099` says.\n')
    with pytest.raises(SourceError, match=r"cell 2 \(line 4\): citation key 'nobody2099'"):
        render(path, "exercises", tmp_path)


@pytest.mark.parametrize("src", [s for s in sorted({s for s, _, _ in authoring.targets(ROOT)})],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_jupytext_writes_the_sources_back_with_the_course_attributes(src):
    """jupytext carries exercise/check/only/tags as cell metadata: writing a source back reads the same."""
    text = src.read_text(encoding="utf-8")
    again = jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="py:percent")
    body = again.split("# %%", 1)[1]  # jupytext may add a header of its own settings before the first cell
    a, b = parse_source(src), parse_source(src, "# %%" + body)
    assert [(c.cell_type, c.lines, c.attrs) for c in a] == [(c.cell_type, c.lines, c.attrs) for c in b]


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
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(ROOT / "book" / "ch00_warmup", tmp_path / "book" / "ch00_warmup")
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book" / "references.bib")
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


def test_jupytext_config_keeps_every_course_cell_attribute():
    """Saving a source from JupyterLab (jupytext) must not drop an attribute the build reads."""
    import tomllib

    config = tomllib.loads((ROOT / "jupytext.toml").read_text(encoding="utf-8"))
    kept = {k for k in config["cell_metadata_filter"].split(",") if not k.startswith("-")}
    assert kept == authoring._KNOWN_ATTRS, f"jupytext.toml keeps {sorted(kept)}, the build reads {sorted(authoring._KNOWN_ATTRS)}"
