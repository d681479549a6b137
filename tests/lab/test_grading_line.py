"""The grading line every exercise notebook prints works exactly as printed: the cell form (Python run
in the kernel) from the notebook's own folder and, as on Colab, from a working folder that does not
hold the notebook (Colab keeps a notebook opened from GitHub in the browser; the cell form asks the
page for it, simulated here with a stand-in for ``google.colab._message``), and the terminal form from
the repository folder with the course's Python first on PATH (what ``make lab`` gives its terminals;
tests/lab/test_jupyterlab.py checks that a JupyterLab terminal really does).

Not tried here (no Colab): the real ``google.colab._message.blocking_request("get_ipynb")`` reply, and
whether Colab keeps the cells' ``course`` metadata that the grader matches exercises by."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import grade
from course_utils.authoring import grading_commands

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = "ch00_warmup"  # the smallest exercise notebook: its stubs grade in seconds


def printed_commands(nb_path: Path) -> tuple[str, str]:
    """The two commands in the notebook's header, as a learner reads them."""
    header = "".join(json.loads(nb_path.read_text(encoding="utf-8"))["cells"][0]["source"])
    shown = re.findall(r"`([^`]*course_utils\.grade[^`]*)`", header)
    cell = [c for c in shown if c.startswith("from course_utils.grade import")]
    terminal = [c for c in shown if c.startswith("python ")]
    assert len(cell) == len(terminal) == 1, f"{nb_path.name}: no grading line in the header:\n{header}"
    return cell[0], terminal[0]


@pytest.mark.parametrize("nb_path", sorted((ROOT / "exercises").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_exercise_notebook_prints_both_forms_for_its_own_file(nb_path):
    cell, terminal = printed_commands(nb_path)
    assert (cell, terminal) == grading_commands(nb_path.stem)
    assert cell == f'from course_utils.grade import grade_here; grade_here("{nb_path.name}")'
    assert terminal == f"python -m course_utils.grade exercises/{nb_path.name}"


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_printed_lines_grade_the_notebook_from_a_cell_and_from_a_terminal():
    nb = ROOT / "exercises" / f"{CHAPTER}.ipynb"
    cell, terminal = printed_commands(nb)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # a notebook cell: Python in the kernel (the course's interpreter), started in the notebook's folder;
    # `python` on PATH may be another interpreter: put one without the course first to make sure
    env["PATH"] = "/usr/bin:/bin"
    from_cell = subprocess.run([sys.executable, "-c", cell], cwd=nb.parent, env=env, capture_output=True,
                               text=True, timeout=600)
    # a terminal in the repository folder, the course's Python first on PATH (make lab)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"
    from_terminal = _run(terminal, ROOT, env)
    for name, run in (("cell", from_cell), ("terminal", from_terminal)):
        out = run.stdout + run.stderr
        # terminal: exit status 1, graded, not every exercise passed (stubs); 2 would be an error reading
        # it. The cell form prints the same report and returns (a kernel must not exit)
        assert run.returncode == (1 if name == "terminal" else 0), f"the {name} form failed:\n{out[-3000:]}"
        assert "Exercise 0.1" in out and "not attempted" in out, out[-3000:]
        assert re.search(r"\b0/\d+ passed", out), out[-3000:]


# --- the cell form on Colab: the notebook is in the browser, not in the working folder

FAKE_COLAB = """
import json, os
def blocking_request(kind, request="", timeout_sec=None):
    assert kind == "get_ipynb", kind
    if os.environ.get("FAKE_COLAB_FAIL"):
        raise TimeoutError("no reply from the page")
    with open(os.environ["FAKE_COLAB_NOTEBOOK"], encoding="utf-8") as fh:
        ipynb = json.load(fh)
    ipynb["nbformat_minor"] = 0  # as Colab's own files say; the cells keep the course's ids
    return {"ipynb": ipynb}
"""


def _fake_colab(tmp_path: Path) -> Path:
    """A package folder with a stand-in google.colab whose _message answers get_ipynb from a file."""
    pkg = tmp_path / "fake_site" / "google" / "colab"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "_message.py").write_text(FAKE_COLAB)
    return pkg.parents[1]


@pytest.mark.slow
def test_the_cell_form_grades_the_notebook_open_in_colab_without_a_file_in_the_working_folder(tmp_path):
    """The browser holds the answer key (every exercise solved), the working folder holds nothing: all
    pass, so the notebook graded is the one the page sent, not a file."""
    cell, _ = printed_commands(ROOT / "exercises" / f"{CHAPTER}.ipynb")
    content = tmp_path / "content"  # Colab's working folder, without the notebook
    content.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", FAKE_COLAB_NOTEBOOK=str(ROOT / "solutions" / f"{CHAPTER}.ipynb"))
    env["PYTHONPATH"] = os.pathsep.join([str(_fake_colab(tmp_path)), *filter(None, [env.get("PYTHONPATH")])])
    run = subprocess.run([sys.executable, "-c", "import google.colab\n" + cell], cwd=content, env=env,
                         capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    n = re.search(r"\b(\d+)/(\d+) passed", out)
    assert n and n.group(1) == n.group(2) and int(n.group(2)) > 0, out[-3000:]
    assert list(content.iterdir()) == [], "the cell form must not write into the learner's folder"


def _colab(monkeypatch, reply=None, error: Exception | None = None) -> list[str]:
    """Pretend to run on Colab: google.colab._message answers get_ipynb with ``reply`` or raises."""
    import types

    calls: list[str] = []

    def blocking_request(kind, request="", timeout_sec=None):
        calls.append(kind)
        if error is not None:
            raise error
        return reply

    message = types.SimpleNamespace(blocking_request=blocking_request)
    colab = types.ModuleType("google.colab")
    colab._message = message
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab._message", message)
    return calls


def _exercises_json() -> dict:
    return json.loads((ROOT / "exercises" / f"{CHAPTER}.ipynb").read_text(encoding="utf-8"))


def test_the_cell_form_outside_colab_finds_the_saved_notebook_or_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    name = f"{CHAPTER}.ipynb"
    with pytest.raises(grade.NotebookNotFound) as err:
        grade.locate_notebook(name, tmp_path)
    msg = str(err.value)
    assert f"no {name} in the working folder {tmp_path}" in msg and "File > Save" in msg
    assert f"python -m course_utils.grade PATH/TO/{name}" in msg
    assert err.value._render_traceback_() == [msg]  # a notebook shows the message, not a traceback
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / name).write_text("{}")  # a kernel started in the repository folder
    assert grade.locate_notebook(name, tmp_path) == tmp_path / "exercises" / name
    (tmp_path / name).write_text("{}")  # JupyterLab: the kernel runs in the notebook's folder
    assert grade.locate_notebook(name, tmp_path) == tmp_path / name


def test_the_cell_form_on_colab_prefers_the_open_notebook_to_a_stale_file(tmp_path, monkeypatch):
    name = f"{CHAPTER}.ipynb"
    (tmp_path / name).write_text("{}")  # an old upload
    calls = _colab(monkeypatch, reply={"ipynb": _exercises_json()})
    path = grade.locate_notebook(name, tmp_path)
    assert calls == ["get_ipynb"] and path.name == name and path.parent != tmp_path
    nb, why = grade.read_notebook(path)
    assert why == "" and grade.identify_chapter(nb, path) == CHAPTER


@pytest.mark.parametrize("reply, error, reason", [
    (None, TimeoutError("no reply"), "TimeoutError: no reply"),
    ({"error": "not allowed"}, None, "not allowed"),
    ({"ipynb": None}, None, "no notebook in the reply"),
])
def test_the_cell_form_on_colab_says_what_to_do_when_the_page_does_not_send_the_notebook(
        tmp_path, monkeypatch, reply, error, reason):
    name = f"{CHAPTER}.ipynb"
    _colab(monkeypatch, reply=reply, error=error)
    with pytest.raises(grade.NotebookNotFound) as err:
        grade.locate_notebook(name, tmp_path)
    msg = str(err.value)
    assert f"Could not read this notebook from Colab ({reason})" in msg
    assert "File > Download > Download .ipynb" in msg and f"Files pane (folder {tmp_path})" in msg
    (tmp_path / name).write_text("{}")  # after the learner uploads it
    assert grade.locate_notebook(name, tmp_path) == tmp_path / name


@pytest.mark.parametrize("bad", ["ch00_warmup", "exercises/ch00_warmup.ipynb", 3])
def test_the_cell_form_wants_a_notebook_file_name(bad):
    with pytest.raises(ValueError, match="notebook file name such as 'ch00_warmup.ipynb'"):
        grade.locate_notebook(bad)


@pytest.mark.slow
def test_the_cell_form_runs_in_a_kernel_started_in_the_notebooks_folder():
    """As in JupyterLab: the printed line in a cell of an IPython kernel whose working folder is the
    notebook's; the report is the cell's output (the grader starts its own kernel meanwhile)."""
    import nbformat
    from nbclient import NotebookClient

    nb_path = ROOT / "exercises" / f"{CHAPTER}.ipynb"
    cell, _ = printed_commands(nb_path)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(nb_path.parent)}}).execute()
    out = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.get("output_type") == "stream")
    assert f"{nb_path}  [{CHAPTER}" in out, out[-3000:]  # it graded the file in the kernel's folder
    assert "Exercise 0.1" in out and "not attempted" in out and re.search(r"\b0/\d+ passed", out), out[-3000:]
