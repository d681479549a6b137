"""The grading manifest: what every chapter's exercise notebook must contain, shipped in the package.

The grader cannot trust a submitted notebook to say which exercises it has or what its checks are
(cells can be deleted, edited or stripped of their metadata), and a wheel install has no ``book/``
sources to ask. So the authoring build writes ``course_utils/data/exercises.json`` from the sources
(``book/<chapter>/exercises.py``, rendered as the exercise notebook) and ``authoring check`` fails when
it is stale. Per chapter it lists the canonical code cells in order::

    {"kind": "setup", "source": ...}                       # the generated setup cell
    {"kind": "code", "source": ..., "uses": ["affine"]}    # context/usage cell (exercise names it uses)
    {"kind": "exercise", "name": "affine", "number": "0.1"}
    {"kind": "check", "name": "affine", "source": "checks.check_affine(affine)"}

plus ``check_bindings``: the names the check cells use that the chapter's imports bind to a checks
module (``{"checks": "course_utils.checks.warmup"}``); the grader binds them to private copies.
"""

from __future__ import annotations

import ast
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA = 1
MANIFEST_PATH = Path(__file__).resolve().parents[1] / "data" / "exercises.json"


def _names_loaded(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _checks_imports(source: str) -> dict[str, str]:
    """Names bound to ``course_utils.checks.*`` modules by the import statements of one cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("course_utils.checks"):
            for alias in node.names:
                out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("course_utils.checks.") and alias.asname:
                    out[alias.asname] = alias.name
    return out


def chapter_entry(chapter: str, nb: Any) -> dict[str, Any]:
    """The manifest entry of one chapter from its rendered *exercises* notebook."""
    cells: list[dict[str, Any]] = []
    bindings: dict[str, str] = {}
    exercise_names = [c.metadata["course"]["exercise"] for c in nb.cells
                      if c.cell_type == "code" and c.metadata.get("course", {}).get("role") == "exercise"]
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        course = cell.metadata.get("course", {})
        if "setup" in cell.metadata.get("tags", []):
            cells.append({"kind": "setup", "source": cell.source})
        elif course.get("role") == "exercise":
            cells.append({"kind": "exercise", "name": course["exercise"], "number": course["number"]})
        elif course.get("role") == "check":
            cells.append({"kind": "check", "name": course["exercise"], "source": cell.source})
        else:
            uses = sorted(_names_loaded(cell.source) & set(exercise_names))
            cells.append({"kind": "code", "source": cell.source, "uses": uses})
            bindings.update(_checks_imports(cell.source))
    check_names: set[str] = set()
    for c in cells:
        if c["kind"] == "check":
            check_names |= _names_loaded(c["source"])
    numbers = {c["name"]: c["number"] for c in cells if c["kind"] == "exercise"}
    return {
        "chapter": chapter,
        "number": next(iter(numbers.values()), "").split(".")[0],
        "notebook": f"{chapter}.ipynb",
        "exercises": [{"name": n, "number": numbers[n]} for n in exercise_names],
        "check_bindings": {k: v for k, v in sorted(bindings.items()) if k in check_names},
        "cells": cells,
    }


def build_manifest(root: Path) -> dict[str, Any]:
    """Every chapter with exercises, in reading order, from the sources under ``root/book``."""
    from course_utils.authoring import chapter_dirs, render

    chapters = []
    for d in chapter_dirs(Path(root)):
        src = d / "exercises.py"
        if src.exists():
            chapters.append(chapter_entry(d.name, render(src, "exercises", Path(root))))
    return {"schema": SCHEMA, "generated_from": "book/*/exercises.py by `python -m course_utils.authoring build`",
            "chapters": chapters}


def dumps(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def manifest_path(root: Path) -> Path:
    """Where the build under ``root`` keeps it: ``root/course_utils/data/exercises.json`` (for the
    repository, the shipped file; a test's temporary tree gets its own)."""
    return Path(root).resolve() / "course_utils" / "data" / "exercises.json"


def write(root: Path, path: Path | None = None) -> list[Path]:
    """(Re)write the manifest if it changed; returns the paths written (for ``authoring build``)."""
    path = manifest_path(root) if path is None else path
    text = dumps(build_manifest(root))
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    load.cache_clear()
    return [path]


def out_of_sync(root: Path, path: Path | None = None) -> list[str]:
    """Problems for ``authoring check``: the manifest is missing or differs from the sources."""
    path = manifest_path(root) if path is None else path
    rel = path.relative_to(Path(root).resolve()) if path.is_relative_to(Path(root).resolve()) else path
    if not path.exists():
        return [f"{rel} is missing (generate it with `python -m course_utils.authoring build`)"]
    if path.read_text(encoding="utf-8") != dumps(build_manifest(root)):
        return [f"{rel} differs from what book/*/exercises.py generates"]
    return []


@lru_cache(maxsize=1)
def load(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    """The shipped manifest (works from a wheel install: no ``book/`` needed)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: grading manifest schema {data.get('schema')!r}, expected {SCHEMA}; "
                         "regenerate it with `python -m course_utils.authoring build`")
    return data


def chapters() -> dict[str, dict[str, Any]]:
    """Chapter folder name -> manifest entry."""
    return {c["chapter"]: c for c in load()["chapters"]}
