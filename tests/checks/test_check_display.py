"""A failing check shows its diagnosis in a notebook, not the checker's code.

A tiny notebook runs in a real kernel (nbclient): the error output keeps ename ``CheckFailed`` and
evalue = the message (the grader reads both); its traceback starts with the message and shows no
frame or source line of ``course_utils/checks``; when the learner's own code raised, the learner's
frame is still there.
"""

from __future__ import annotations

import nbclient
import nbformat
import pytest

pytestmark = pytest.mark.slow

CELLS = [
    "from course_utils.checks import warmup as checks",
    "def affine(x, W, b):\n    return x @ W.T  # no bias\n\nchecks.check_affine(affine)",
    "def affine(x, W, b):\n    return x @ W  # a shape error raised in the learner's code\n\nchecks.check_affine(affine)",
    "def affine(x, W, b):\n    raise NotImplementedError('Exercise 0.1 (affine)')\n\nchecks.check_affine(affine)",
]
CHECKER_TEXT = ("course_utils/checks", "check_function(", "Mistake(", "call_learner", "compare(")


@pytest.fixture(scope="module")
def outputs() -> list[dict]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    nbclient.NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3").execute()
    errors = []
    for cell in nb.cells[1:]:
        errs = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert len(errs) == 1, cell.outputs
        errors.append(errs[0])
    return errors


def test_diagnosis_first_and_no_checker_source(outputs):
    err = outputs[0]
    assert err["ename"] == "CheckFailed"
    assert err["evalue"].startswith("affine(...) is wrong") and "forgot to add the bias" in err["evalue"]
    assert err["traceback"][0] == f"CheckFailed: {err['evalue']}"
    shown = "\n".join(err["traceback"])
    assert not any(t in shown for t in CHECKER_TEXT), shown
    assert len(err["traceback"]) <= 3, err["traceback"]


def test_learner_frames_kept_when_the_learner_raised(outputs):
    err = outputs[1]
    assert err["ename"] == "CheckFailed" and "affine raised RuntimeError" in err["evalue"]
    assert err["traceback"][0] == f"CheckFailed: {err['evalue']}"
    shown = "\n".join(err["traceback"])
    assert "The error was raised in your code" in shown
    assert "return x @ W  # a shape error raised in the learner's code" in shown
    assert not any(t in shown for t in CHECKER_TEXT), shown


def test_stub_error_unchanged(outputs):
    err = outputs[2]
    assert err["ename"] == "NotImplementedError" and err["evalue"] == "Exercise 0.1 (affine)"
