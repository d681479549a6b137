"""The grading command: passed / failed (with the diagnosis) / not attempted, exit codes, JSON, errors."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from course_utils import grade
from course_utils.authoring import render

ROOT = Path(__file__).resolve().parents[1]
WARMUP = ROOT / "book" / "ch00_warmup" / "exercises.py"


def _cell(nb, name):
    return next(c for c in nb.cells if c.metadata.get("course", {}) == {**c.metadata.get("course", {}),
                                                                         "exercise": name, "role": "exercise"})


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade, in one command: the answer key, and a learner's notebook with one wrong answer, one right
    answer and three untouched stubs."""
    tmp = tmp_path_factory.mktemp("grade")
    solved = tmp / "solved.ipynb"
    nbformat.write(render(WARMUP, "solutions", ROOT), solved)
    partial_nb = render(WARMUP, "exercises", ROOT)
    _cell(partial_nb, "affine").source = "def affine(x, W, b):\n    return x @ W.T\n"  # forgot the bias
    _cell(partial_nb, "cosine_similarity_matrix").source = _cell(render(WARMUP, "solutions", ROOT),
                                                                 "cosine_similarity_matrix").source
    partial = tmp / "partial.ipynb"
    nbformat.write(partial_nb, partial)
    return {"solved": solved, "partial": partial, "tmp": tmp}


@pytest.fixture(scope="module")
def json_run(graded):
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = grade.main([str(graded["solved"]), str(graded["partial"]), "--json"])
    return code, json.loads(buf.getvalue())


def test_solved_notebook_passes_everything(json_run):
    _, reports = json_run
    solved = reports[0]
    assert solved["status"] == "graded" and solved["all_passed"]
    assert [e["status"] for e in solved["exercises"]] == ["passed"] * 5


def test_partial_notebook_reports_each_status_with_the_diagnosis(json_run):
    _, reports = json_run
    ex = {e["name"]: e for e in reports[1]["exercises"]}
    assert ex["affine"]["status"] == "failed"
    assert "forgot to add the bias" in ex["affine"]["message"]
    assert ex["cosine_similarity_matrix"]["status"] == "passed"
    for name in ("top_k_examples", "mean_activation_by_class", "record_activations"):
        assert ex[name]["status"] == "not attempted"
        assert name in ex[name]["message"]


def test_exit_status_is_nonzero_when_anything_failed(json_run):
    code, _ = json_run
    assert code == 1


def test_human_report(graded, capsys):
    rep = grade.NotebookReport(str(graded["partial"]), "graded", exercises=[
        grade.ExerciseResult("affine", "0.1", grade.FAILED, "Likely mistake: you forgot to add the bias b"),
        grade.ExerciseResult("top_k_examples", "0.3", grade.NOT_ATTEMPTED)])
    text = grade.format_report(rep)
    assert "Exercise 0.1 affine: \u2718 failed" in text and "forgot to add the bias" in text
    assert "not attempted" in text and "0/2 passed" in text


def test_unsolved_notebook_is_not_attempted(tmp_path):
    unsolved = tmp_path / "unsolved.ipynb"
    nbformat.write(render(WARMUP, "exercises", ROOT), unsolved)
    rep = grade.grade_notebook(unsolved, timeout=300)
    assert rep.status == "graded"
    assert [e.status for e in rep.exercises] == ["not attempted"] * 5
    assert not rep.all_passed


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.ipynb", "no such file"),
    (lambda d: (d / "notes.txt").write_text("hi") and d / "notes.txt", "not a notebook"),
    (lambda d: (d / "broken.ipynb").write_text("{not json") and d / "broken.ipynb", "not a valid notebook"),
    (lambda d: d, "is a folder"),
])
def test_bad_paths_get_clear_errors_and_exit_2(tmp_path, capsys, make, message):
    path = make(tmp_path)
    assert grade.main([str(path)]) == 2
    out = capsys.readouterr().out
    assert "ERROR" in out and message in out and "Traceback" not in out


def test_notebook_without_exercises_is_an_error(tmp_path):
    p = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), p)
    rep = grade.grade_notebook(p)
    assert rep.status == "error" and "no course exercises" in rep.error


def test_hanging_notebook_times_out(tmp_path):
    nb = render(WARMUP, "solutions", ROOT)
    nb.cells.insert(2, nbformat.v4.new_code_cell("import time\nwhile True:\n    time.sleep(0.1)"))
    p = tmp_path / "hangs.ipynb"
    nbformat.write(nb, p)
    rep = grade.grade_notebook(p, timeout=8)
    assert rep.status == "error" and "timed out after 8 s" in rep.error


def test_timeout_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        grade.main(["x.ipynb", "--timeout", "0"])
    assert "--timeout must be positive" in capsys.readouterr().err
