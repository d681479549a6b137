"""The grading manifest shipped in the package: complete, in step with the sources, checked by `authoring check`."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from course_utils.authoring import chapter_dirs, parse_source, render
from course_utils.grading import assemble, manifest

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_lists_every_chapters_exercises_in_order_with_their_numbers():
    entries = manifest.chapters()
    with_exercises = [d for d in chapter_dirs(ROOT) if (d / "exercises.py").exists()]
    assert list(entries) == [d.name for d in with_exercises]
    for d in with_exercises:
        names = [c.attrs["exercise"] for c in parse_source(d / "exercises.py") if "exercise" in c.attrs]
        entry = entries[d.name]
        assert [e["name"] for e in entry["exercises"]] == names
        assert [e["number"] for e in entry["exercises"]] == [f"{entry['number']}.{i}" for i in range(1, len(names) + 1)]
        assert {c["name"] for c in entry["cells"] if c["kind"] == "check"} == set(names)
        assert entry["check_bindings"] == {"checks": f"course_utils.checks.{entry['check_bindings']['checks'].split('.')[-1]}"}
        assert sum(c["kind"] == "setup" for c in entry["cells"]) == 1


def test_shipped_manifest_is_what_the_sources_generate():
    assert manifest.out_of_sync(ROOT) == []


def test_authoring_check_catches_a_stale_or_missing_manifest(tmp_path):
    stale = tmp_path / "exercises.json"
    data = json.loads(manifest.MANIFEST_PATH.read_text(encoding="utf-8"))
    data["chapters"][0]["exercises"].pop()
    stale.write_text(manifest.dumps(data), encoding="utf-8")
    assert "differs from what book/*/exercises.py generates" in manifest.out_of_sync(ROOT, stale)[0]
    assert "is missing" in manifest.out_of_sync(ROOT, tmp_path / "nothing.json")[0]


def test_assembled_notebook_restores_canonical_cells_and_keeps_the_learners():
    entry = manifest.chapters()["ch00_warmup"]
    nb = render(ROOT / "book" / "ch00_warmup" / "exercises.py", "exercises", ROOT)
    nb.cells.insert(3, nbformat.v4.new_code_cell("checks = None  # my own cell"))
    for c in nb.cells:
        if c.metadata.get("course", {}).get("role") == "check" or "setup" in c.metadata.get("tags", []):
            c.source = "pass"
    out = assemble.assemble(nb, entry)
    kinds = [(c.metadata["grader"]["origin"], c.metadata["grader"]["kind"]) for c in out.nb.cells]
    assert kinds[0] == ("grader", "prelude") and kinds[1] == ("canonical", "setup")
    assert out.nb.cells[1].source == entry["cells"][0]["source"]
    assert ("learner", "extra") in kinds and sum(k == ("grader", "check") for k in kinds) == 5
    assert not any(c.source == "pass" for c in out.nb.cells)
    assert len(set(out.tokens.values())) == 5
    again = assemble.assemble(nb, entry)
    assert set(again.tokens.values()).isdisjoint(out.tokens.values())  # a fresh token every run
