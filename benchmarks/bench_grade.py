"""The grading command: N chapter-0 answer keys graded one after another vs ``--jobs 2``.

Run with ``python -m course_utils.bench -k 'grading/*'``. Each notebook is executed in its own kernel
(started fresh, torch imported, the tiny MLP trained), so on a 2-core machine two jobs at most halve
the wall time; the figure says how close a real run comes.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import nbformat

from course_utils import grade
from course_utils.authoring import render
from course_utils.bench import benchmark

ROOT = Path(__file__).resolve().parents[1]
N = 4


def _grade_seconds(paths: list[Path], jobs: int) -> float:
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = grade.main([*map(str, paths), "--jobs", str(jobs)])
    if code != 0:
        raise RuntimeError(f"grading the answer keys gave exit status {code}, expected 0")
    return time.perf_counter() - t0


@benchmark("grading/ch00_notebooks_serial_vs_jobs2")
def serial_vs_jobs() -> dict[str, float]:
    nb = render(ROOT / "book" / "ch00_warmup" / "exercises.py", "solutions", ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"learner{i}.ipynb" for i in range(N)]
        for p in paths:
            nbformat.write(nb, p)
        serial = _grade_seconds(paths, jobs=1)
        parallel = _grade_seconds(paths, jobs=2)
    return {"notebooks": N, "serial_s_per_notebook": round(serial / N, 2),
            "jobs2_s_per_notebook": round(parallel / N, 2), "speedup": round(serial / parallel, 2)}
