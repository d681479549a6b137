"""Grade exercise notebooks: ``python -m course_utils.grade PATH... [--json] [--csv FILE] [--jobs N]``.

What counts comes from the course, not from the submission (nbgrader's approach):

1. The submission is matched to its chapter (``--chapter``, else the exercise metadata in its cells,
   else its file name) and rebuilt from that chapter's canonical skeleton, shipped in the package
   (:mod:`course_utils.grading.manifest`, so a wheel install grades too): the learner's exercise cells
   and own extra cells are kept; every check cell, setup cell and other canonical code cell (imports,
   the cells that use the exercises) is restored (:mod:`course_utils.grading.assemble`). An exercise whose
   cell is missing, renamed or stripped of its metadata is **not attempted**.
2. The rebuilt notebook runs headless in a fresh kernel (:mod:`course_utils.grading.runner`). Its first
   cell, run before any learner code, loads a private copy of the chapter's checks from the installed
   files; each check cell calls it with a random token and it prints one result line, signed with a
   per-run key (:mod:`course_utils.grading.kernel_side`). The grade is read only from those lines, each
   in its own cell's output, with that cell's token and a valid signature, from a cell that ran to the
   end: printed fake results, edited
   or deleted check cells, a redefined ``checks`` or a patched ``course_utils`` change nothing; a
   replaced builtin / torch function / ``sys.stdout`` fails the check; a forged result line (an unknown
   or repeated token, a bad signature: e.g. printed by an input transformer that rewrote the grader's
   cell) fails the whole notebook.
3. An exercise **passes** when its check passed and the canonical cells after it that use it ran
   without error; an error in one of those is reported against the exercise it traces back to (or all
   the exercises the cell uses); an error in a learner's own cell is reported as a note. After a
   timeout or a dead kernel the results printed so far still count; the kernel's whole process group is
   killed.

Not defended (the learner's code runs in the grader's kernel): code that reads the grader's own
objects (``gc``, frames, closures: the signing key and the private modules live there) to forge a
result or patch the private checks, that replaces torch internals not snapshotted (``torch._C``, a
submodule other than ``torch.nn.functional``), tensors subclassed to fool the comparisons, or a kernel
that is not really IPython. Grade untrusted submissions in a sandbox as well.

Exit status: 0 when every exercise of every notebook passed, 1 when something failed or was not
attempted, 2 for a usage error or a notebook that could not be graded (missing, not a notebook,
unknown chapter, two of one chapter for one learner, timed out, dead kernel).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
MARK = "COURSE-GRADER-RESULT"  # == course_utils.grading.kernel_side.MARK (not imported: keep the CLI light)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_IN = re.compile(r"Cell In\[(\d+)\]")


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
    chapter: str = ""
    learner: str = ""
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def all_passed(self) -> bool:
        return self.status == "graded" and bool(self.exercises) and all(e.status == PASSED for e in self.exercises)

    @property
    def score(self) -> int:
        return sum(e.status == PASSED for e in self.exercises)

    @property
    def max_score(self) -> int:
        return len(self.exercises)

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "score": self.score, "max_score": self.max_score, "all_passed": self.all_passed}


# ----------------------------------------------------------------------------------------------
# Reading and matching submissions


def _chapters() -> dict[str, dict[str, Any]]:
    from course_utils.grading import manifest

    return manifest.chapters()


def resolve_chapter(name: str) -> str:
    """'ch00_warmup', 'ch00' or '0' -> 'ch00_warmup'; ValueError naming the known chapters otherwise."""
    chapters = _chapters()
    for ch, entry in chapters.items():
        if name in (ch, ch.split("_")[0], entry["number"]):
            return ch
    raise ValueError(f"unknown chapter {name!r}; chapters with exercises: {', '.join(chapters)}")


def read_notebook(path: Path) -> tuple[Any, str]:
    """(notebook, "") or (None, a one-line reason)."""
    if not path.exists():
        return None, f"no such file: {path}"
    if path.is_dir():
        return None, f"{path} is a folder; pass notebook files (e.g. {path}/*.ipynb)"
    if path.suffix != ".ipynb":
        return None, f"{path} is not a notebook (.ipynb)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return None, f"{path} is not a valid notebook: invalid JSON ({err})"
    import nbformat

    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001 - any schema failure is reported, not raised
        return None, f"{path} is not a valid notebook: {type(err).__name__}: {str(err).splitlines()[0]}"
    return nb, ""


def _exercise_names(nb: Any) -> set[str]:
    return {c.get("metadata", {}).get("course", {}).get("exercise") for c in nb.cells
            if isinstance(c.get("metadata", {}).get("course"), dict)} - {None}


def identify_chapter(nb: Any, path: Path) -> str:
    """The chapter a submission belongs to: from its exercise metadata, else its file or folder name."""
    chapters = _chapters()
    names = _exercise_names(nb)
    hits = [ch for ch, e in chapters.items() if names & {x["name"] for x in e["exercises"]}]
    if len(hits) == 1:
        return hits[0]
    by_name = [ch for ch in chapters if ch in path.stem or ch in path.parent.name]
    if len(by_name) == 1:
        return by_name[0]
    why = (f"its exercises belong to several chapters ({', '.join(hits)})" if hits
           else "it has no course exercises and its name names no chapter")
    raise ValueError(f"cannot tell which chapter {path} is from: {why}; pass --chapter (one of: "
                     f"{', '.join(chapters)})")


def learner_id(path: Path, pattern: re.Pattern[str] | None) -> str:
    """The file stem, or what ``--id-pattern`` captures from the path (group 'id', else group 1)."""
    if pattern is None:
        return path.stem
    m = pattern.search(path.as_posix())
    if not m:
        raise ValueError(f"--id-pattern {pattern.pattern!r} does not match {path.as_posix()}")
    if "id" in pattern.groupindex:
        return m.group("id")
    return m.group(1) if pattern.groups else m.group(0)


# ----------------------------------------------------------------------------------------------
# Executing


@dataclass
class Execution:
    nb: Any  # the executed notebook (None if the runner never wrote it)
    done: set[int]
    stopped_at: int | None  # cell index where a timeout / dead kernel stopped it
    error: str  # "" when it ran to the end


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def execute(nb: Any, workdir: Path, timeout: float) -> Execution:
    """Run ``nb`` in a child process with its own session; kill it and the kernel's group on timeout."""
    import nbformat

    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        src, dst, progress = Path(tmp) / "in.ipynb", Path(tmp) / "out.ipynb", Path(tmp) / "progress"
        nbformat.write(nb, src)
        progress.touch()
        env = dict(os.environ)
        pkg_parent = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([pkg_parent, *filter(None, [env.get("PYTHONPATH")])])
        # output to a file, not a pipe: processes the notebook started may hold it open after we are done
        with (Path(tmp) / "stderr").open("w+", encoding="utf-8") as err_file:
            proc = subprocess.Popen([sys.executable, "-m", "course_utils.grading.runner", str(src), str(dst),
                                     str(workdir), str(progress)], stdout=subprocess.DEVNULL, stderr=err_file,
                                    text=True, start_new_session=True, env=env)
            timed_out = False
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                proc.wait()
            events = progress.read_text(encoding="utf-8").split()
            pairs = list(zip(events[::2], events[1::2], strict=False))
            for kind, value in pairs:
                if kind == "kernel":
                    _kill_group(int(value))  # the kernel and anything the notebook started
            err_file.seek(0)
            stderr = err_file.read()
        done = {int(v) for k, v in pairs if k == "done"}
        started = [int(v) for k, v in pairs if k == "start"]
        dead = [int(v) for k, v in pairs if k == "dead"]
        crash = [int(v) for k, v in pairs if k == "crash"]
        last = ([ln for ln in (stderr or "").strip().splitlines() if ln.strip()][-1:] or ["unknown error"])[0]
        executed = nbformat.read(dst, as_version=4) if dst.exists() else None
        if timed_out:
            at = started[-1] if started else 0
            return Execution(executed, done, at, f"timed out after {timeout:g} s (an infinite loop, or a run too "
                                                 "large for this machine?)")
        if dead:
            return Execution(executed, done, dead[-1], "the kernel died (os._exit, exit(), out of memory, "
                                                       "or a crash in native code?)")
        if crash and executed is not None:
            return Execution(executed, done, crash[-1], f"the run stopped at a cell: {last}")
        if proc.returncode != 0 or executed is None:
            return Execution(None, done, None, f"could not execute the notebook: {last}")
        return Execution(executed, done, None, "")


# ----------------------------------------------------------------------------------------------
# Reading results


def _error_of(cell: Any) -> dict[str, Any] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return out
    return None


def _records(cell: Any, key: str) -> list[tuple[str, dict[str, Any] | None]]:
    """(token, record) of every result line in a cell's output; the record is None unless the line is
    well formed and signed with the run's key."""
    from course_utils.grading.kernel_side import sign

    out: list[tuple[str, dict[str, Any] | None]] = []
    text = "".join(str(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    for line in text.splitlines():
        if line.startswith(MARK + " "):
            _, token, mac, payload = (line.split(" ", 3) + ["", "", ""])[:4]
            rec = None
            if hmac.compare_digest(mac, sign(key, token, payload)):
                with contextlib.suppress(json.JSONDecodeError):
                    rec = json.loads(payload)
            out.append((token, rec if isinstance(rec, dict) else None))
    return out


def _blamed(err: dict[str, Any], cells: list[Any], uses: list[str]) -> list[str]:
    """Exercises (among ``uses``) whose learner cells appear in the traceback; all of ``uses`` if none."""
    by_count = {c.get("execution_count"): c.metadata.get("grader", {}) for c in cells}
    frames = {int(n) for line in err.get("traceback", []) for n in _CELL_IN.findall(_ANSI.sub("", line))}
    hit = [by_count[n]["exercise"] for n in frames if n in by_count and by_count[n].get("kind") == "exercise"]
    return [u for u in uses if u in hit] or list(uses)


def _first_line(source: str, names: list[str]) -> str:
    lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    line = next((ln for ln in lines if any(n in ln for n in names)), lines[0] if lines else "")
    return line if len(line) <= 70 else line[:67] + "..."


def interpret(entry: dict[str, Any], assembled: Any, run: Execution) -> tuple[list[ExerciseResult], list[str]]:
    """Per-exercise results (in the chapter's order) and notes from an executed assembled notebook."""
    results = {e["name"]: ExerciseResult(e["name"], e["number"], NOT_ATTEMPTED) for e in entry["exercises"]}
    notes: list[str] = []
    for name, res in results.items():
        if name not in assembled.present:
            res.message = (f"no cell for Exercise {res.number} ({name}) in the notebook: deleted, renamed, or its "
                           "metadata stripped")
    cells = run.nb.cells if run.nb is not None else []
    # 1. the grader's result lines: right token, right cell, once, from a cell that finished
    forged = []
    seen: dict[str, list[dict[str, Any]]] = {}
    for i, cell in enumerate(cells):
        for token, rec in _records(cell, assembled.key):
            owner = next((n for n, t in assembled.tokens.items() if t == token), None)
            if owner is None or rec is None or assembled.check_cell.get(owner) != i:
                forged.append(i)
            else:
                seen.setdefault(owner, []).append(rec)
    for name, idx in assembled.check_cell.items():
        res, recs = results[name], seen.get(name, [])
        if len(recs) > 1:
            forged.append(idx)
        elif idx not in run.done or not recs:
            res.status = FAILED
            res.message = ("not reached: " + run.error if run.stopped_at is not None and run.stopped_at <= idx
                           else "the check did not report a result (its cell was stopped before the end)")
        else:
            res.status, res.message = recs[0].get("status", FAILED), recs[0].get("message", "")
            if res.status not in (PASSED, FAILED, NOT_ATTEMPTED):
                forged.append(idx)
    if forged:
        for res in results.values():
            res.status, res.message = FAILED, "the notebook printed forged grader results; nothing in it counts"
        return list(results.values()), ["result lines the grader did not print (forged, or its check cell rewritten)"]
    # 2. errors in the learner's exercise cells, in canonical cells that use the exercises, in extra cells
    for cell in cells:
        g, err = cell.metadata.get("grader", {}), _error_of(cell)
        if err is None or g.get("origin") == "grader":
            continue
        what = f"{err.get('ename', '')}: {err.get('evalue', '')}"
        if g["kind"] == "exercise" and results[g["exercise"]].status == FAILED:
            results[g["exercise"]].message = f"the exercise cell itself raised {what}"
        elif g["kind"] == "code":
            uses = next((s["uses"] for s in entry["cells"] if s["kind"] == "code" and s["source"] == cell.source), [])
            blamed = [u for u in _blamed(err, cells, uses) if results[u].status == PASSED]
            for name in blamed:
                results[name].status = FAILED
                results[name].message = (f"passed its check, but a later cell that uses it raised {what} "
                                         f"(in `{_first_line(cell.source, uses)}`)")
            if not uses:
                notes.append(f"a course cell raised {what} (in `{_first_line(cell.source, [])}`)")
        elif g["kind"] == "extra":
            where = f"cell {g['learner_cell']} of the notebook"
            notes.append(f"{where} (your own code) raised {what}")
    return list(results.values()), notes


def grade_notebook(path: Path | str, timeout: float = 600, chapter: str | None = None,
                   learner: str | None = None) -> NotebookReport:
    """Grade one notebook (see the module docstring); never raises for a bad notebook."""
    t0 = time.perf_counter()
    path = Path(path)
    rep = NotebookReport(str(path), "error", learner=learner if learner is not None else path.stem)
    nb, err = read_notebook(path)
    if nb is None:
        rep.error = err
        return rep
    try:
        rep.chapter = resolve_chapter(chapter) if chapter else identify_chapter(nb, path)
    except ValueError as e:
        rep.error = str(e)
        return rep
    entry = _chapters()[rep.chapter]
    found = _exercise_names(nb)
    other = [ch for ch, e in _chapters().items() if ch != rep.chapter and found & {x["name"] for x in e["exercises"]}]
    if other and not found & {x["name"] for x in entry["exercises"]}:
        rep.notes.append(f"this notebook's exercises are those of {', '.join(other)}, not {rep.chapter}")
    from course_utils.grading.assemble import assemble

    assembled = assemble(nb, entry)
    run = execute(assembled.nb, path.parent.resolve(), timeout)
    prelude_error = _error_of(run.nb.cells[0]) if run.nb is not None and run.nb.cells else None
    if run.nb is None and run.stopped_at is None:
        rep.error = run.error
    elif prelude_error is not None:
        rep.error = (f"the grader could not load the checks ({prelude_error.get('ename')}: "
                     f"{prelude_error.get('evalue')}); is course_utils installed completely?")
    else:
        rep.exercises, notes = interpret(entry, assembled, run)
        rep.notes += notes
        rep.status, rep.error = ("error", run.error) if run.error else ("graded", "")
    rep.duration_s = round(time.perf_counter() - t0, 2)
    return rep


# ----------------------------------------------------------------------------------------------
# Reports and the command line


def format_report(rep: NotebookReport) -> str:
    head = rep.path + (f"  [{rep.chapter}, learner {rep.learner}]" if rep.chapter else "")
    lines = [head]
    if rep.status == "error":
        lines.append(f"  ERROR: {rep.error}")
        if not rep.exercises:
            return "\n".join(lines)
    marks = {PASSED: "\u2714 passed", FAILED: "\u2718 failed", NOT_ATTEMPTED: "\u2022 not attempted"}
    for e in rep.exercises:
        lines.append(f"  Exercise {e.number} {e.name}: {marks.get(e.status, e.status)}")
        if e.message and (e.status == FAILED or e.message.startswith("no cell for")):
            lines.append(f"      {e.message}")
    for note in rep.notes:
        lines.append(f"  note: {note}")
    lines.append(f"  {rep.score}/{rep.max_score} passed")
    return "\n".join(lines)


def write_csv(reports: list[NotebookReport], path: Path) -> None:
    """One row per notebook: learner, chapter, score, status, then one column per exercise number."""
    numbers: list[str] = []
    for r in reports:
        numbers += [f"{e.number} {e.name}" for e in r.exercises if f"{e.number} {e.name}" not in numbers]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["learner", "chapter", "score", "max_score", "status", "duration_s", "path", "error", *numbers])
        for r in reports:
            by = {f"{e.number} {e.name}": e.status for e in r.exercises}
            w.writerow([r.learner, r.chapter, r.score, r.max_score, r.status, r.duration_s, r.path, r.error,
                        *(by.get(n, "") for n in numbers)])


def _duplicates(reports: list[NotebookReport], items: list[tuple[Path, str, str]]) -> None:
    """Mark every notebook that shares (learner, chapter) with another one as an error."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (_, learner, chapter) in enumerate(items):
        if chapter:
            groups.setdefault((learner, chapter), []).append(i)
    for (learner, chapter), idx in groups.items():
        if len(idx) > 1:
            paths = ", ".join(str(items[i][0]) for i in idx)
            for i in idx:
                reports[i] = NotebookReport(str(items[i][0]), "error", learner=learner, chapter=chapter, error=(
                    f"{len(idx)} notebooks of {chapter} for learner {learner!r} ({paths}); pass one, or "
                    "--id-pattern to tell the learners apart"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.grade",
                                     description="Grade exercise notebooks: passed / failed / not attempted.")
    parser.add_argument("paths", nargs="+", type=Path, help="exercise notebooks (.ipynb)")
    parser.add_argument("--json", action="store_true", help="print one JSON document with every result")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="also write a gradebook summary (one row each)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per notebook (default 600)")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="notebooks graded at once (default 1)")
    parser.add_argument("--chapter", help="the chapter every notebook must be (e.g. ch00_warmup or 0)")
    parser.add_argument("--id-pattern", metavar="REGEX",
                        help="learner id from the path: group 'id' (or group 1), e.g. 'submissions/(?P<id>[^/]+)/'")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout must be positive, got {args.timeout}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    pattern = None
    if args.id_pattern is not None:
        try:
            pattern = re.compile(args.id_pattern)
        except re.error as err:
            parser.error(f"--id-pattern is not a valid regular expression: {err}")
    if args.chapter is not None:
        try:
            args.chapter = resolve_chapter(args.chapter)
        except ValueError as err:
            parser.error(str(err))

    reports: list[NotebookReport | None] = [None] * len(args.paths)
    items: list[tuple[Path, str, str]] = []
    for i, p in enumerate(args.paths):
        try:
            learner = learner_id(p, pattern)
        except ValueError as err:
            reports[i] = NotebookReport(str(p), "error", error=str(err))
            items.append((p, "", ""))
            continue
        nb, err = read_notebook(p)
        chapter = ""
        if nb is None:
            reports[i] = NotebookReport(str(p), "error", error=err, learner=learner)
        else:
            try:
                chapter = args.chapter or identify_chapter(nb, p)
            except ValueError as e:
                reports[i] = NotebookReport(str(p), "error", error=str(e), learner=learner)
        items.append((p, learner, chapter))
    _duplicates(reports, items)  # type: ignore[arg-type]
    todo = [i for i, r in enumerate(reports) if r is None]

    def one(i: int) -> NotebookReport:
        p, learner, chapter = items[i]
        return grade_notebook(p, timeout=args.timeout, chapter=chapter, learner=learner)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # each job is a child process
        for i, rep in zip(todo, pool.map(one, todo), strict=True):
            reports[i] = rep
    done: list[NotebookReport] = [r for r in reports if r is not None]
    if args.json:
        print(json.dumps([r.record() for r in done], indent=2))
    else:
        print("\n\n".join(format_report(r) for r in done))
    if args.csv is not None:
        write_csv(done, args.csv)
    if any(r.status == "error" for r in done):
        return 2
    return 0 if all(r.all_passed for r in done) else 1


# ----------------------------------------------------------------------------------------------
# The grading line's cell form: grade the notebook this kernel runs, wherever its file is


class NotebookNotFound(Exception):
    """The cell form could not find the notebook to grade; the message says what to do."""

    def _render_traceback_(self) -> list[str]:  # IPython: the message, not a traceback
        return [str(self)]


def _colab_notebook(timeout_s: float = 30) -> tuple[dict[str, Any] | None, str]:
    """(the notebook open in Colab's browser tab, "") or (None, why not). Colab keeps a notebook
    opened from GitHub in the browser (and Drive), not in the runtime's working folder; its kernel
    can ask the page for the notebook (``google.colab._message``, Colab's own, undocumented channel)."""
    try:
        from google.colab import _message  # type: ignore[import-not-found]

        reply = _message.blocking_request("get_ipynb", request="", timeout_sec=timeout_s)
    except Exception as err:  # noqa: BLE001 - any failure of the channel becomes the reason shown
        return None, f"{type(err).__name__}: {err}"
    ipynb = reply.get("ipynb") if isinstance(reply, dict) else None
    if not isinstance(ipynb, dict) or "cells" not in ipynb:
        why = reply.get("error") if isinstance(reply, dict) and reply.get("error") else "no notebook in the reply"
        return None, str(why)
    return ipynb, ""


def _write_fetched(ipynb: dict[str, Any], name: str) -> Path:
    """Write the notebook Colab sent to a fresh folder, under the name the course gave it."""
    from nbformat.validator import normalize

    # Colab's own files say nbformat 4.0, but cell ids (kept from the course's 4.5 file) need 4.5
    ipynb = {**ipynb, "nbformat": 4, "nbformat_minor": max(5, int(ipynb.get("nbformat_minor", 0)))}
    with warnings.catch_warnings():  # cells without an id get one (nbformat warns that it does so)
        warnings.simplefilter("ignore")
        _, ipynb = normalize(ipynb)
    path = Path(tempfile.mkdtemp(prefix="course-grade-colab-")) / name
    path.write_text(json.dumps(ipynb), encoding="utf-8")
    return path


def locate_notebook(name: str, cwd: Path | str | None = None) -> Path:
    """The notebook file the cell form grades: on Colab the notebook open in the browser (fetched from
    the page, as it is now, saved or not); elsewhere ``name`` in the kernel's working folder (where
    JupyterLab starts a notebook's kernel) or in its ``exercises/`` folder. Raises
    :class:`NotebookNotFound` with what to do when there is none."""
    if not isinstance(name, str) or not name.endswith(".ipynb") or Path(name).name != name:
        raise ValueError(f"expected a notebook file name such as 'ch00_warmup.ipynb', got {name!r}")
    here = Path.cwd() if cwd is None else Path(cwd)
    why_not_colab = ""
    if "google.colab" in sys.modules:
        ipynb, why_not_colab = _colab_notebook()
        if ipynb is not None:
            return _write_fetched(ipynb, name)
    for path in (here / name, here / "exercises" / name):
        if path.is_file():
            return path
    if why_not_colab:
        raise NotebookNotFound(
            f"Could not read this notebook from Colab ({why_not_colab}), and there is no {name} in the "
            f"working folder {here}. Download it (File > Download > Download .ipynb), upload it to the "
            f"Files pane (folder {here}), then run this cell again.")
    raise NotebookNotFound(
        f"There is no {name} in the working folder {here} (nor in {here / 'exercises'}). Save the notebook "
        f"under that name (File > Save) in the folder its kernel runs in, or grade it in a terminal: "
        f"python -m course_utils.grade PATH/TO/{name}")


def grade_here(name: str, timeout: float = 600) -> None:
    """The cell form of the grading line: find the notebook (:func:`locate_notebook`), grade it as
    the command line does and print the report."""
    print(format_report(grade_notebook(locate_notebook(name), timeout=timeout)))


if __name__ == "__main__":
    raise SystemExit(main())
