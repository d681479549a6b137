"""Rebuild a submitted notebook from its chapter's canonical skeleton before it is executed.

nbgrader's rule: the cells a learner may not change are replaced by the released versions. Here the
skeleton is the manifest's list of code cells (:mod:`course_utils.grading.manifest`), in order:

* ``setup`` and ``code`` cells (imports, data, the cells that use the exercises) come from the manifest;
* ``exercise`` slots take the learner's cells carrying that exercise's metadata (none: *not attempted*);
* ``check`` slots become the grader's own cell (``grader(exercise, token)`` with a fresh random token);
* the learner's other cells (helpers, experiments, edited copies of canonical cells) are kept, placed
  after the slot of the last recognised cell before them; the learner's check and setup cells are
  dropped (their canonical versions run instead).

The first cell is the grader's prelude (:mod:`course_utils.grading.kernel_side`), run before any learner
code. Every executed cell gets ``metadata.grader`` saying where it came from, which the report uses to
attribute errors.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

import course_utils


@dataclass
class Assembled:
    nb: nbformat.NotebookNode
    tokens: dict[str, str]  # exercise -> the token its grader cell prints
    key: str  # the run's signing key (in the prelude only, which removes itself from the history)
    present: set[str]  # exercises with at least one learner cell
    check_cell: dict[str, int] = field(default_factory=dict)  # exercise -> index of its grader cell


def _kernel_source() -> str:
    return (Path(__file__).with_name("kernel_side.py")).read_text(encoding="utf-8")


def prelude_source(grader_name: str, entry: dict[str, Any], key: str) -> str:
    checks = {c["name"]: c["source"] for c in entry["cells"] if c["kind"] == "check"}
    package_parent = str(Path(course_utils.__file__).resolve().parents[1])
    return "\n".join([
        "# The grader's own cell (added by python -m course_utils.grade; not part of the notebook).",
        "def _course_grader_prelude():",
        "    ns = {'__name__': 'course_grader_kernel_side'}",
        f"    exec(compile({_kernel_source()!r}, '<course grader>', 'exec'), ns)",
        "    ip = get_ipython()",
        "    hm = ip.history_manager",
        "    for hist in (hm.input_hist_parsed, hm.input_hist_raw):",
        "        if hist:",
        "            hist[-1] = ''",
        "    hm._i00 = ''",
        "    for k in [k for k, v in ip.user_ns.items() if k.startswith('_i') and isinstance(v, str)",
        "              and '_course_grader_prelude' in v]:",
        "        ip.user_ns[k] = ''",
        "    import linecache",
        "    for k in [k for k, v in linecache.cache.items()",
        "              if len(v) > 2 and '_course_grader_prelude' in ''.join(v[2] or [])]:",
        "        del linecache.cache[k]",
        f"    return ns['install']({package_parent!r}, {entry['check_bindings']!r}, {checks!r}, ip.user_ns, {key!r})",
        "",
        "",
        f"{grader_name} = _course_grader_prelude()",
        "del _course_grader_prelude",
    ])


def _cell(source: str, origin: str, kind: str, exercise: str | None = None,
          learner_cell: int | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["grader"] = {"origin": origin, "kind": kind, "exercise": exercise, "learner_cell": learner_cell}
    return cell


def assemble(learner: nbformat.NotebookNode, entry: dict[str, Any]) -> Assembled:
    """The notebook to execute for a learner's submission of chapter ``entry``."""
    slots = entry["cells"]
    expected = {e["name"] for e in entry["exercises"]}
    code_slot = {}  # stripped canonical source -> slot index (first unconsumed)
    for i, s in enumerate(slots):
        if s["kind"] in ("code", "setup"):
            code_slot.setdefault(s["source"].strip(), []).append(i)
    check_slot = {s["name"]: i for i, s in enumerate(slots) if s["kind"] == "check"}
    exercise_slot = {s["name"]: i for i, s in enumerate(slots) if s["kind"] == "exercise"}
    setup_slot = next((i for i, s in enumerate(slots) if s["kind"] == "setup"), 0)

    attached: dict[int, list[nbformat.NotebookNode]] = {i: [] for i in range(len(slots))}
    in_slot: dict[int, list[nbformat.NotebookNode]] = {i: [] for i in range(len(slots))}
    anchor = setup_slot
    for index, cell in enumerate(learner.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {})
        course = meta.get("course", {}) if isinstance(meta.get("course"), dict) else {}
        name, role = course.get("exercise"), course.get("role")
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if "setup" in (meta.get("tags") or []):
            anchor = setup_slot
        elif role == "check" and name in check_slot:
            anchor = check_slot[name]
        elif role == "exercise" and name in expected:
            anchor = exercise_slot[name]
            in_slot[anchor].append(_cell(source, "learner", "exercise", name, index))
        elif code_slot.get(source.strip()):
            anchor = code_slot[source.strip()].pop(0)
        else:
            attached[anchor].append(_cell(source, "learner", "extra", slots[anchor].get("name"), index))

    grader_name, key = f"_course_grader_{secrets.token_hex(8)}", secrets.token_hex(32)
    cells = [_cell(prelude_source(grader_name, entry, key), "grader", "prelude")]
    tokens: dict[str, str] = {}
    check_cell: dict[str, int] = {}
    present = {c.metadata["grader"]["exercise"] for cells_ in in_slot.values() for c in cells_}
    for i, s in enumerate(slots):
        if s["kind"] in ("setup", "code"):
            cells.append(_cell(s["source"], "canonical", s["kind"]))
        elif s["kind"] == "exercise":
            cells.extend(in_slot[i])
        elif s["kind"] == "check" and s["name"] in present:
            tokens[s["name"]] = secrets.token_hex(16)
            check_cell[s["name"]] = len(cells)
            cells.append(_cell(f"{grader_name}({s['name']!r}, {tokens[s['name']]!r})", "grader", "check", s["name"]))
        cells.extend(attached[i])
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    return Assembled(nb, tokens, key, present, check_cell)
