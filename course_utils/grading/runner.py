"""Execute one assembled notebook (child process of the grader; ``python -m course_utils.grading.runner``).

``runner IN.ipynb OUT.ipynb WORKDIR PROGRESS``: runs every cell of IN in a fresh ``python3`` kernel
started in WORKDIR (errors do not stop it), writes the executed notebook to OUT after every cell (so
it survives a timeout) and at the end even when the kernel dies, and appends to PROGRESS one line per event, flushed at once so that the grader can read it after
killing this process on a timeout::

    kernel <pgid>     the kernel's process group (the grader kills it whole)
    start <i>         cell i started
    done <i>          cell i finished (with or without an error)
    dead <i>          the kernel died while cell i ran
    crash <i>         the run stopped at cell i for another reason (the last stderr line says why)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def run(src: Path, dst: Path, workdir: Path, progress: Path) -> int:
    import nbclient
    import nbformat
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.read(src, as_version=4)
    log = progress.open("a", encoding="utf-8", buffering=1)

    client: nbclient.NotebookClient

    def on_start(**_: object) -> None:
        provisioner = getattr(client.km, "provisioner", None)
        pgid = getattr(provisioner, "pgid", None) or getattr(provisioner, "pid", None)
        if pgid:
            log.write(f"kernel {pgid}\n")

    def save() -> None:  # atomically: this process may be killed at any moment
        nbformat.write(nb, dst.with_suffix(".tmp"))
        os.replace(dst.with_suffix(".tmp"), dst)

    def done(cell_index: int) -> None:
        save()  # so that a later timeout (this process killed) keeps the outputs so far
        log.write(f"done {cell_index}\n")

    client = nbclient.NotebookClient(
        nb, timeout=None, allow_errors=True, kernel_name="python3", resources={"metadata": {"path": str(workdir)}},
        extra_arguments=["--HistoryManager.enabled=False"],
        on_notebook_start=on_start,
        on_cell_start=lambda cell, cell_index, **_: log.write(f"start {cell_index}\n"),
        on_cell_executed=lambda cell, cell_index, **_: done(cell_index))
    def current() -> int:
        lines = progress.read_text(encoding="utf-8").split()
        starts = [int(v) for k, v in zip(lines[::2], lines[1::2], strict=False) if k == "start"]
        return starts[-1] if starts else 0

    try:
        client.execute()
    except DeadKernelError:
        log.write(f"dead {current()}\n")
    except Exception as err:  # noqa: BLE001 - reported to the grader, which keeps the results so far
        log.write(f"crash {current()}\n")
        print(f"{type(err).__name__}: {err}".splitlines()[0], file=sys.stderr)
    finally:
        save()
        log.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__.split("\n")[2], file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(run(*(Path(a) for a in sys.argv[1:])))
