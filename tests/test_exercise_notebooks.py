"""Every shipped exercise notebook fails at each exercise with NotImplementedError, and nowhere earlier.

One kernel walks the notebook in order. At each exercise it runs the stub and its check, which must
raise the NotImplementedError naming that exercise (and no cell before may fail); then it runs the
reference solution in the stub's place, whose check must pass, and moves on.
"""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

from course_utils import authoring

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

PAIRS = [(dst, authoring.render(src, "solutions", ROOT))
         for src, kind, dst in authoring.targets(ROOT) if kind == "exercises"]


def _error(outputs: list) -> tuple[str, str] | None:
    for out in outputs:
        if out.get("output_type") == "error":
            return out["ename"], out["evalue"]
    return None


@pytest.mark.parametrize("exercise_nb, solution_nb", PAIRS, ids=[p.stem for p, _ in PAIRS])
def test_each_stub_fails_at_its_own_exercise_and_nowhere_earlier(exercise_nb: Path, solution_nb):
    nb = nbformat.read(exercise_nb, as_version=4)
    solutions = {c.metadata["course"]["exercise"]: c for c in solution_nb.cells
                 if c.metadata.get("course", {}).get("role") == "exercise"}
    assert solutions, f"{exercise_nb.name} has no exercises"
    client = nbclient.NotebookClient(nb, timeout=600, allow_errors=True, kernel_name="python3",
                                     resources={"metadata": {"path": str(exercise_nb.parent)}})
    seen_stub_failures = []
    with client.setup_kernel():
        pending: str | None = None  # exercise whose stub is in place but not yet checked
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            meta = cell.metadata.get("course", {})
            client.execute_cell(cell, index)
            err = _error(cell.outputs)
            where = f"{exercise_nb.name} cell {index} ({meta or 'plain cell'})"
            if meta.get("role") == "exercise":
                assert err is None, f"{where}: the stub's definition itself failed: {err}"
                pending = meta["exercise"]
                number = meta["number"]
                continue
            if meta.get("role") == "check":
                name = meta["exercise"]
                assert name == pending, f"{where}: check for {name!r} does not follow its exercise"
                assert err is not None and err[0] == "NotImplementedError", (
                    f"{where}: with the stub in place the check should raise NotImplementedError, got {err}")
                assert f"Exercise {number} ({name})" in err[1], f"{where}: the error does not name the exercise: {err}"
                seen_stub_failures.append(name)
                # put the reference solution in place and check again: now it must pass
                sol = nbformat.v4.new_code_cell(solutions[name].source)
                client.execute_cell(sol, index)
                assert _error(sol.outputs) is None, f"{where}: solution failed: {_error(sol.outputs)}"
                cell.outputs = []
                client.execute_cell(cell, index)
                assert _error(cell.outputs) is None, f"{where}: check failed on the solution: {_error(cell.outputs)}"
                pending = None
                continue
            assert err is None, f"{where}: failed before reaching the next exercise: {err}"
    assert seen_stub_failures == list(solutions), "every exercise must be reached, in order"
