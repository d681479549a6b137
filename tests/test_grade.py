"""The grading command: passed / failed (with the diagnosis) / not attempted, cheating, exit codes, JSON, CSV.

Every notebook graded here is generated in the test from the chapter sources (nothing committed). One
``grade --jobs 2`` call grades the honest notebooks and all the cheating ones at once (ch00 and ch03,
the two cheapest chapters to execute) to keep the run time modest.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course_utils import grade
from course_utils.authoring import render

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"ch00": ROOT / "book" / "ch00_warmup" / "exercises.py", "ch03": ROOT / "book" / "ch03_incidental" / "exercises.py"}


def _nb(ch: str, kind: str) -> nbformat.NotebookNode:
    return render(SOURCES[ch], kind, ROOT)


def _role(cell, role: str) -> str | None:
    course = cell.metadata.get("course", {})
    return course.get("exercise") if course.get("role") == role else None


def _cell(nb, name, role="exercise"):
    return next(c for c in nb.cells if _role(c, role) == name)


def _solve(nb, ch: str, names) -> None:
    sol = _nb(ch, "solutions")
    for name in names:
        _cell(nb, name).source = _cell(sol, name).source


def _index_after_imports(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "as checks" in c.source) + 1


# --- cheating notebooks: each starts from the stubs (or a partly solved notebook) and tries to pass more

def cheat_redefine_checks(ch: str) -> nbformat.NotebookNode:
    """Redefine `checks`, patch course_utils.checks._core and sys.modules; every stub left in place."""
    nb = _nb(ch, "exercises")
    nb.cells.insert(_index_after_imports(nb), nbformat.v4.new_code_cell(
        "import sys\nimport course_utils.checks._core as core\n"
        "class _Pass:\n    def __getattr__(self, name):\n        return lambda *a, **k: print(name, 'passed')\n"
        "checks = _Pass()\ncore.check_function = lambda *a, **k: 1\ncore.compare = lambda *a, **k: None\n"
        "for k in [k for k in sys.modules if k.startswith('course_utils.checks.')]:\n"
        "    sys.modules[k] = checks"))
    return nb


def cheat_edit_checks(ch: str) -> nbformat.NotebookNode:
    """Check cells edited to `pass` (odd ones) or wrapped in try/except (even ones)."""
    nb = _nb(ch, "exercises")
    for i, c in enumerate(c for c in nb.cells if _role(c, "check")):
        c.source = "pass" if i % 2 else "try:\n    " + c.source + "\nexcept BaseException:\n    pass"
    return nb


def _partly_solved(ch: str) -> tuple[nbformat.NotebookNode, list[str], list[str]]:
    nb = _nb(ch, "exercises")
    names = [_role(c, "exercise") for c in nb.cells if _role(c, "exercise")]
    solved, unsolved = names[:2], names[2:]
    _solve(nb, ch, solved)
    return nb, solved, unsolved


def cheat_delete_cells(ch: str) -> nbformat.NotebookNode:
    """Two exercises solved, the cells (exercise and check) of the unsolved ones deleted."""
    nb, _, unsolved = _partly_solved(ch)
    nb.cells = [c for c in nb.cells if not (_role(c, "exercise") in unsolved or _role(c, "check") in unsolved)]
    return nb


def cheat_strip_metadata(ch: str) -> nbformat.NotebookNode:
    """Two exercises solved, the metadata of every other exercise and check cell stripped."""
    nb, _, unsolved = _partly_solved(ch)
    for c in nb.cells:
        if _role(c, "exercise") in unsolved or _role(c, "check") in unsolved:
            c.metadata.pop("course")
    return nb


def cheat_forged_output(ch: str) -> nbformat.NotebookNode:
    """Print lines that look like the grader's results (and like passing checks)."""
    nb = _nb(ch, "exercises")
    fake = json.dumps({"status": "passed", "message": "", "exercise": "affine"})
    nb.cells.append(nbformat.v4.new_code_cell(f"print('{grade.MARK} 0123456789abcdef {fake}')\n"
                                              "print('\u2714 affine passed')"))
    return nb


def cheat_input_transformer(ch: str) -> nbformat.NotebookNode:
    """An IPython input transformer that rewrites the grader's own cells into printed 'passed' lines."""
    nb = _nb(ch, "exercises")
    nb.cells.insert(_index_after_imports(nb), nbformat.v4.new_code_cell(
        "import json, re\n"
        "def _rewrite(lines):\n"
        "    out = []\n"
        "    for line in lines:\n"
        "        m = re.match(r\"_course_grader_\\w+\\('(\\w+)', '(\\w+)'\\)\", line)\n"
        "        if m:\n"
        "            rec = json.dumps({'status': 'passed', 'message': '', 'exercise': m.group(1)})\n"
        f"            line = f\"print('{grade.MARK} {{m.group(2)}} {{'0' * 64}} {{rec}}')\\n\"\n"
        "        out.append(line)\n"
        "    return out\n"
        "get_ipython().input_transformers_cleanup.append(_rewrite)"))
    return nb


def cheat_patch_torch(ch: str) -> nbformat.NotebookNode:
    """A wrong affine (no bias) plus torch.allclose patched to always agree."""
    nb = _nb(ch, "exercises")
    _cell(nb, "affine").source = "import torch\ntorch.allclose = lambda *a, **k: True\n" \
                                 "def affine(x, W, b):\n    return x @ W.T\n"
    return nb


def hostile_exit(ch: str) -> nbformat.NotebookNode:
    """Solved, but the kernel is killed by os._exit after Exercise 0.2's check."""
    nb = _nb(ch, "solutions")
    at = nb.cells.index(_cell(nb, "cosine_similarity_matrix", "check")) + 1
    nb.cells.insert(at, nbformat.v4.new_code_cell("raise SystemExit(0)"))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell("import os\nos._exit(0)"))
    return nb


def used_later_breaks(ch: str) -> nbformat.NotebookNode:
    """top_k_examples passes its check but raises on the 512 examples of the last cell; an own cell fails."""
    nb = _nb(ch, "solutions")
    _cell(nb, "top_k_examples").source = (
        "def top_k_examples(acts, k):\n    if acts.shape[0] == 512:\n        raise RuntimeError('boom')\n"
        "    return acts.topk(k, dim=0)\n")
    nb.cells.append(nbformat.v4.new_code_cell("undefined_name_in_my_own_cell"))
    return nb


def hangs(ch: str) -> nbformat.NotebookNode:
    """Exercise 0.1 solved and checked, then an endless loop (and a child process that would outlive it)."""
    nb = _nb(ch, "solutions")
    at = nb.cells.index(_cell(nb, "affine", "check")) + 1
    nb.cells.insert(at, nbformat.v4.new_code_cell(
        "import os, subprocess, time\nopen('hang_pids', 'w').write(f'{os.getpid()} '"
        " + str(subprocess.Popen(['sleep', '600']).pid))\nwhile True:\n    time.sleep(0.1)"))
    return nb


CHEATS = {"redefine_checks": cheat_redefine_checks, "edit_checks": cheat_edit_checks,
          "delete_cells": cheat_delete_cells, "strip_metadata": cheat_strip_metadata}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade every notebook of this module in one `grade --json --csv --jobs 2` call."""
    tmp = tmp_path_factory.mktemp("grade")
    nbs = {"solved00": _nb("ch00", "solutions"), "solved03": _nb("ch03", "solutions"),
           "cheat_input_transformer": cheat_input_transformer("ch03")}
    partial = _nb("ch00", "exercises")
    _cell(partial, "affine").source = "def affine(x, W, b):\n    return x @ W.T\n"  # forgot the bias
    _solve(partial, "ch00", ["cosine_similarity_matrix"])
    nbs["partial00"] = partial
    for ch in ("ch00", "ch03"):
        for kind, make in CHEATS.items():
            nbs[f"{kind}_{ch}"] = make(ch)
    for make in (cheat_forged_output, cheat_patch_torch, hostile_exit, used_later_breaks):  # chapter 0 only
        nbs[make.__name__] = make("ch00")
    paths = []
    for name, nb in nbs.items():
        nbformat.write(nb, tmp / f"{name}.ipynb")
        paths.append(str(tmp / f"{name}.ipynb"))
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        code = grade.main([*paths, "--json", "--jobs", "2", "--timeout", "600", "--csv", str(tmp / "book.csv")])
    seconds = time.perf_counter() - t0
    records = {Path(r["path"]).stem: r for r in json.loads(buf.getvalue())}
    return {"code": code, "records": records, "tmp": tmp, "seconds": seconds, "n": len(paths)}


def _statuses(rec):
    return [e["status"] for e in rec["exercises"]]


def test_solved_notebooks_pass_everything(batch):
    for name, n in (("solved00", 5), ("solved03", 6)):
        rec = batch["records"][name]
        assert rec["status"] == "graded" and rec["all_passed"], rec
        assert _statuses(rec) == ["passed"] * n and rec["score"] == rec["max_score"] == n
        assert rec["notes"] == []


def test_partial_notebook_reports_each_status_with_the_diagnosis(batch):
    ex = {e["name"]: e for e in batch["records"]["partial00"]["exercises"]}
    assert ex["affine"]["status"] == "failed"
    assert "forgot to add the bias" in ex["affine"]["message"]
    assert ex["cosine_similarity_matrix"]["status"] == "passed"
    for name in ("top_k_examples", "mean_activation_by_class", "record_activations"):
        assert ex[name]["status"] == "not attempted"
        assert name in ex[name]["message"]


def test_input_transformer_rewriting_the_grader_cells_fails_the_notebook(batch):
    rec = batch["records"]["cheat_input_transformer"]
    assert rec["score"] == 0 and set(_statuses(rec)) == {"failed"}
    assert "forged grader results" in rec["exercises"][0]["message"]


@pytest.mark.parametrize("ch", ["ch00", "ch03"])
@pytest.mark.parametrize("kind", ["redefine_checks", "edit_checks"])
def test_cheating_on_the_checks_changes_nothing(batch, kind, ch):
    """The stubs stay stubs (graded as an untouched exercise notebook): a redefined/patched checks module
    or edited check cells pass nothing."""
    rec = batch["records"][f"{kind}_{ch}"]
    assert rec["status"] == "graded" and rec["score"] == 0 and not rec["all_passed"]
    assert set(_statuses(rec)) == {"not attempted"}, rec
    assert rec["max_score"] == (5 if ch == "ch00" else 6)


@pytest.mark.parametrize("ch", ["ch00", "ch03"])
@pytest.mark.parametrize("kind", ["delete_cells", "strip_metadata"])
def test_missing_exercises_are_not_attempted_not_dropped(batch, kind, ch):
    rec = batch["records"][f"{kind}_{ch}"]
    n = 5 if ch == "ch00" else 6
    assert rec["max_score"] == n and rec["score"] == 2 and not rec["all_passed"]
    assert _statuses(rec) == ["passed"] * 2 + ["not attempted"] * (n - 2)
    assert all("no cell for Exercise" in e["message"] for e in rec["exercises"][2:])


def test_forged_result_lines_fail_the_notebook(batch):
    rec = batch["records"]["cheat_forged_output"]
    assert rec["score"] == 0 and set(_statuses(rec)) == {"failed"}
    assert "forged grader results" in rec["exercises"][0]["message"]


def test_patched_torch_fails_the_check(batch):
    ex = batch["records"]["cheat_patch_torch"]["exercises"][0]
    assert ex["status"] == "failed" and "torch.allclose" in ex["message"]


def test_dead_kernel_keeps_what_passed_before(batch):
    rec = batch["records"]["hostile_exit"]
    assert rec["status"] == "error" and "kernel died" in rec["error"]
    assert _statuses(rec) == ["passed"] * 2 + ["failed"] * 3
    assert all(e["message"].startswith("not reached") for e in rec["exercises"][2:])


def test_an_exercise_passes_only_if_the_cells_that_use_it_run(batch):
    rec = batch["records"]["used_later_breaks"]
    ex = {e["name"]: e for e in rec["exercises"]}
    assert ex["top_k_examples"]["status"] == "failed"
    assert "later cell that uses it raised RuntimeError: boom" in ex["top_k_examples"]["message"]
    # the traceback runs through top_k_examples only: the other exercises that cell uses still pass
    assert ex["record_activations"]["status"] == ex["mean_activation_by_class"]["status"] == "passed"
    assert any("your own code" in n and "NameError" in n for n in rec["notes"])


def test_exit_status_json_fields_and_csv(batch):
    assert batch["code"] == 2  # the dead kernel is an error; everything else graded
    rec = batch["records"]["solved03"]
    assert rec["chapter"] == "ch03_incidental" and rec["learner"] == "solved03" and rec["duration_s"] > 0
    rows = list(csv.DictReader((batch["tmp"] / "book.csv").open(encoding="utf-8")))
    assert len(rows) == batch["n"]
    row = next(r for r in rows if r["learner"] == "partial00")
    assert (row["chapter"], row["score"], row["max_score"]) == ("ch00_warmup", "1", "5")
    assert row["0.1 affine"] == "failed" and row["0.2 cosine_similarity_matrix"] == "passed"
    print(f"graded {batch['n']} notebooks with --jobs 2 in {batch['seconds']:.0f} s")


def test_human_report(tmp_path):
    rep = grade.NotebookReport(str(tmp_path / "partial.ipynb"), "graded", chapter="ch00_warmup", learner="x",
                               exercises=[
        grade.ExerciseResult("affine", "0.1", grade.FAILED, "Likely mistake: you forgot to add the bias b"),
        grade.ExerciseResult("top_k_examples", "0.3", grade.NOT_ATTEMPTED, "Exercise 0.3 (top_k_examples): replace"),
        grade.ExerciseResult("record_activations", "0.5", grade.NOT_ATTEMPTED, "no cell for Exercise 0.5 ...")])
    text = grade.format_report(rep)
    assert "Exercise 0.1 affine: \u2718 failed" in text and "forgot to add the bias" in text
    assert "not attempted" in text and "0/3 passed" in text and "[ch00_warmup, learner x]" in text
    assert "no cell for Exercise 0.5" in text and "replace" not in text  # a missing cell is said; a stub is not


def test_another_chapters_notebook_under_chapter_gets_nothing(tmp_path, capsys):
    p = tmp_path / "ch00_warmup.ipynb"  # chapter 3's answer key under chapter 0's name
    nbformat.write(_nb("ch03", "solutions"), p)
    assert grade.main([str(p), "--chapter", "0", "--json"]) == 1
    rec = json.loads(capsys.readouterr().out)[0]
    assert rec["chapter"] == "ch00_warmup" and rec["score"] == 0 and rec["max_score"] == 5
    assert "those of ch03_incidental" in rec["notes"][0]


def _plain(d: Path, name: str) -> Path:
    p = d / name
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), p)
    return p


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.ipynb", "no such file"),
    (lambda d: (d / "notes.txt").write_text("hi") and d / "notes.txt", "not a notebook"),
    (lambda d: (d / "broken.ipynb").write_text("{not json") and d / "broken.ipynb", "invalid JSON"),
    (lambda d: (d / "list.ipynb").write_text("[1, 2]") and d / "list.ipynb", "not a valid notebook"),
    (lambda d: d, "is a folder"),
    (lambda d: _plain(d, "plain.ipynb"), "cannot tell which chapter"),
])
def test_bad_paths_get_clear_errors_and_exit_2(tmp_path, capsys, make, message):
    path = make(tmp_path)
    assert grade.main([str(path)]) == 2
    out = capsys.readouterr().out
    assert "ERROR" in out and message in out and "Traceback" not in out


def test_two_notebooks_of_one_chapter_for_one_learner(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        nbformat.write(_nb("ch00", "exercises"), tmp_path / d / "alice.ipynb")
    paths = [str(tmp_path / "a" / "alice.ipynb"), str(tmp_path / "b" / "alice.ipynb")]
    assert grade.main(paths) == 2
    out = capsys.readouterr().out
    assert out.count("2 notebooks of ch00_warmup for learner 'alice'") == 2 and "--id-pattern" in out


@pytest.mark.parametrize("args, message", [
    (["x.ipynb", "--timeout", "0"], "--timeout must be positive"),
    (["x.ipynb", "--jobs", "0"], "--jobs must be at least 1"),
    (["x.ipynb", "--chapter", "ch99"], "unknown chapter 'ch99'"),
    (["x.ipynb", "--id-pattern", "("], "--id-pattern is not a valid regular expression"),
])
def test_usage_errors(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        grade.main(args)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_learner_ids():
    pat = grade.re.compile(r"submissions/(?P<id>[^/]+)/")
    assert grade.learner_id(Path("submissions/bob/ch00_warmup.ipynb"), pat) == "bob"
    assert grade.learner_id(Path("x/carol.ipynb"), None) == "carol"
    with pytest.raises(ValueError, match="does not match"):
        grade.learner_id(Path("elsewhere/x.ipynb"), pat)


def test_usage_error_is_fast_and_imports_neither_torch_nor_nbformat(tmp_path):
    """From another folder, a missing file is answered without importing the heavy packages."""
    code = ("import sys, time; t = time.perf_counter(); from course_utils import grade\n"
            "rc = grade.main(['missing.ipynb'])\n"
            "print(rc, 'torch' in sys.modules, 'nbformat' in sys.modules, round(time.perf_counter() - t, 3))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    rc, torch_loaded, nbformat_loaded, seconds = out.stdout.split()[-4:]
    assert (rc, torch_loaded, nbformat_loaded) == ("2", "False", "False"), out.stdout
    print(f"usage error answered in {seconds} s after interpreter start")


def test_hanging_notebook_times_out_keeps_earlier_results_and_kills_the_kernel(tmp_path):
    p = tmp_path / "hangs.ipynb"
    nbformat.write(hangs("ch00"), p)
    for timeout in (30, 60, 120):  # a limit long enough to reach the hang on this machine's current load
        rep = grade.grade_notebook(p, timeout=timeout)
        assert rep.status == "error" and f"timed out after {timeout} s" in rep.error
        if rep.exercises[0].status == "passed":
            break
    assert [e.status for e in rep.exercises] == ["passed"] + ["failed"] * 4, rep
    assert all(e.message.startswith("not reached: timed out") for e in rep.exercises[1:])
    kernel, child = (int(x) for x in (tmp_path / "hang_pids").read_text().split())
    for pid in (kernel, child):  # the kernel and what it started: gone, or a zombie waiting for its reaper
        assert _dies_within(pid, seconds=10), f"process {pid} survived the timeout"


def _dies_within(pid: int, seconds: float) -> bool:
    """SIGKILL is asynchronous: poll /proc until the process is gone or a zombie."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            if stat.read_text().split(")")[-1].split()[0] != "Z":
                time.sleep(0.1)
                continue
        return True
    return False
