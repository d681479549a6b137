"""The grading line every exercise notebook prints works exactly as printed: the cell form from the
notebook's own folder (with the kernel's Python, as IPython expands ``{sys.executable}``), and the
terminal form from the repository folder with the course's Python first on PATH (what ``make lab``
gives its terminals; tests/lab/test_jupyterlab.py checks that a JupyterLab terminal really does)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.authoring import grading_commands

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = "ch00_warmup"  # the smallest exercise notebook: its stubs grade in seconds


def printed_commands(nb_path: Path) -> tuple[str, str]:
    """The two commands in the notebook's header, as a learner reads them."""
    header = "".join(json.loads(nb_path.read_text(encoding="utf-8"))["cells"][0]["source"])
    shown = re.findall(r"`([^`]*course_utils\.grade[^`]*)`", header)
    cell = [c for c in shown if c.startswith("!")]
    terminal = [c for c in shown if c.startswith("python ")]
    assert len(cell) == len(terminal) == 1, f"{nb_path.name}: no grading line in the header:\n{header}"
    return cell[0], terminal[0]


@pytest.mark.parametrize("nb_path", sorted((ROOT / "exercises").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_exercise_notebook_prints_both_forms_for_its_own_file(nb_path):
    cell, terminal = printed_commands(nb_path)
    assert (cell, terminal) == grading_commands(nb_path.stem)
    assert cell.startswith("!{sys.executable} -m course_utils.grade ") and cell.endswith(f" {nb_path.name}")
    assert terminal == f"python -m course_utils.grade exercises/{nb_path.name}"


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_printed_lines_grade_the_notebook_from_a_cell_and_from_a_terminal():
    nb = ROOT / "exercises" / f"{CHAPTER}.ipynb"
    cell, terminal = printed_commands(nb)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # a notebook cell: IPython replaces {sys.executable} and runs `!...` in the notebook's folder, where
    # `python` on PATH may be another interpreter: put one without the course first to make sure
    env["PATH"] = "/usr/bin:/bin"
    from_cell = _run(cell[1:].replace("{sys.executable}", sys.executable), nb.parent, env)
    # a terminal in the repository folder, the course's Python first on PATH (make lab)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"
    from_terminal = _run(terminal, ROOT, env)
    for name, run in (("cell", from_cell), ("terminal", from_terminal)):
        out = run.stdout + run.stderr
        # exit status 1: graded, not every exercise passed (stubs); 2 would be an error reading it
        assert run.returncode == 1, f"the {name} form failed:\n{out[-3000:]}"
        assert "Exercise 0.1" in out and "not attempted" in out, out[-3000:]
        assert re.search(r"\b0/\d+ passed", out), out[-3000:]
