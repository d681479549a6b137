"""Grade exercise notebooks: ``python -m course_utils.grade PATH... [--json] [--timeout S]``.

Each notebook runs headless in a fresh kernel (errors do not stop it; a per-notebook time limit
does). Every exercise is then reported from its check cell:

* **passed**: the check cell ran without error;
* **not attempted**: the check (or the exercise cell) raised the stub's ``NotImplementedError``;
* **failed**: anything else went wrong, with the check's diagnosis as the message.

Exit status: 0 when every exercise of every notebook passed, 1 when something failed or was not
attempted, 2 when a path is missing, is not a notebook, has no exercises or timed out.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"


@dataclass
class ExerciseResult:
    name: str
    number: str
    status: str
    message: str = ""


@dataclass
class NotebookReport:
    path: str
    status: str  # "graded" or "error"
    error: str = ""
    exercises: list[ExerciseResult] = field(default_factory=list)

    @property
    def all_passed(self) -> bool:
        return self.status == "graded" and all(e.status == PASSED for e in self.exercises)


def _error_of(cell: Any) -> dict[str, str] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return {"ename": out.get("ename", ""), "evalue": out.get("evalue", "")}
    return None


def grade_executed(nb: nbformat.NotebookNode) -> list[ExerciseResult]:
    """Read per-exercise results from an executed notebook's outputs and cell metadata."""
    exercises: dict[str, ExerciseResult] = {}
    exercise_errors: dict[str, dict[str, str] | None] = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("course", {})
        name = meta.get("exercise")
        if not name or cell.cell_type != "code":
            continue
        if meta.get("role") == "exercise":
            exercises[name] = ExerciseResult(name=name, number=meta.get("number", "?"), status=NOT_ATTEMPTED)
            exercise_errors[name] = _error_of(cell)
        elif meta.get("role") == "check" and name in exercises:
            res = exercises[name]
            err = exercise_errors.get(name) or _error_of(cell)
            ran = bool(cell.get("outputs")) or cell.get("execution_count") is not None
            if err is None and ran:
                res.status = PASSED
            elif err is None:
                res.status, res.message = FAILED, "the check cell did not run (an earlier cell stopped the notebook)"
            elif err["ename"] == "NotImplementedError":
                res.status, res.message = NOT_ATTEMPTED, err["evalue"]
            else:
                res.status = FAILED
                res.message = err["evalue"] if err["ename"] == "CheckFailed" else f"{err['ename']}: {err['evalue']}"
    return list(exercises.values())


def _execute_in_subprocess(path: Path, timeout: float) -> tuple[nbformat.NotebookNode | None, str]:
    """Run the notebook in a child process (its own session, so a hung kernel can be killed whole)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "executed.ipynb"
        code = ("import sys, nbformat, nbclient\n"
                "nb = nbformat.read(sys.argv[1], as_version=4)\n"
                "nbclient.NotebookClient(nb, timeout=None, allow_errors=True, kernel_name='python3',\n"
                "    resources={'metadata': {'path': sys.argv[3]}}).execute()\n"
                "nbformat.write(nb, sys.argv[2])\n")
        proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(out), str(path.parent.resolve())],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return None, f"timed out after {timeout:g} s (an infinite loop, or a run too large for this machine?)"
        if proc.returncode != 0 or not out.exists():
            last = (stderr or "").strip().splitlines()[-1:] or ["unknown error"]
            return None, f"could not execute the notebook: {last[0]}"
        return nbformat.read(out, as_version=4), ""


def grade_notebook(path: Path | str, timeout: float = 600) -> NotebookReport:
    path = Path(path)
    if not path.exists():
        return NotebookReport(str(path), "error", f"no such file: {path}")
    if path.is_dir():
        return NotebookReport(str(path), "error", f"{path} is a folder; pass notebook files (e.g. {path}/*.ipynb)")
    if path.suffix != ".ipynb":
        return NotebookReport(str(path), "error", f"{path} is not a notebook (.ipynb)")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - any parse failure is reported, not raised
        return NotebookReport(str(path), "error", f"{path} is not a valid notebook: {type(err).__name__}: {err}")
    if not any(c.get("metadata", {}).get("course", {}).get("role") == "exercise" for c in nb.cells):
        return NotebookReport(str(path), "error", f"{path} has no course exercises (is it a generated exercise "
                                                  "notebook from exercises/?)")
    executed, err = _execute_in_subprocess(path, timeout)
    if executed is None:
        return NotebookReport(str(path), "error", err)
    return NotebookReport(str(path), "graded", exercises=grade_executed(executed))


def format_report(rep: NotebookReport) -> str:
    lines = [rep.path]
    if rep.status == "error":
        return f"{rep.path}\n  ERROR: {rep.error}"
    marks = {PASSED: "\u2714 passed", FAILED: "\u2718 failed", NOT_ATTEMPTED: "\u2022 not attempted"}
    for e in rep.exercises:
        lines.append(f"  Exercise {e.number} {e.name}: {marks[e.status]}")
        if e.status == FAILED and e.message:
            lines.append(f"      {e.message}")
    n_pass = sum(e.status == PASSED for e in rep.exercises)
    lines.append(f"  {n_pass}/{len(rep.exercises)} passed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.grade",
                                     description="Grade exercise notebooks: passed / failed / not attempted.")
    parser.add_argument("paths", nargs="+", type=Path, help="exercise notebooks (.ipynb)")
    parser.add_argument("--json", action="store_true", help="print one JSON document with every result")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per notebook (default 600)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout must be positive, got {args.timeout}")
    reports = [grade_notebook(p, timeout=args.timeout) for p in args.paths]
    if args.json:
        print(json.dumps([{**asdict(r), "all_passed": r.all_passed} for r in reports], indent=2))
    else:
        print("\n\n".join(format_report(r) for r in reports))
    if any(r.status == "error" for r in reports):
        return 2
    return 0 if all(r.all_passed for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
