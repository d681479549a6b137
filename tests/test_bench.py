"""`make bench`: the registry validates names, and the runner writes its figures to a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_utils import bench

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_names_are_validated():
    with pytest.raises(ValueError, match="look like 'ch02/tms_speed'"):
        bench.benchmark("no_slash")


def test_duplicate_registration_is_an_error():
    bench.benchmark("test/dup")(lambda: {"x": 1})
    with pytest.raises(ValueError, match="registered twice"):
        bench.benchmark("test/dup")(lambda: {"x": 2})


@pytest.mark.slow
def test_runner_times_notebooks_and_writes_results(tmp_path):
    assert bench.main(["-k", "ch00_warmup/*", "--root", str(ROOT), "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "results.json").read_text())
    res = data["results"]
    assert set(res) == {"ch00_warmup/page_seconds", "ch00_warmup/solutions_seconds"}
    assert all(r["seconds"] > 0 for r in res.values())
    assert "ch00_warmup/page_seconds" in (tmp_path / "results.md").read_text()


def test_loading_benchmarks_twice_is_harmless():
    bench.load_benchmarks(ROOT)
    n = len(bench.registered())
    bench.load_benchmarks(ROOT)
    assert len(bench.registered()) == n > 0


def test_runner_reports_no_match(tmp_path, capsys):
    assert bench.main(["-k", "nothing/*", "--root", str(ROOT), "--out", str(tmp_path)]) == 1
    assert "no benchmark matches" in capsys.readouterr().err


def test_command_line_entry_point_sees_registered_benchmarks():
    """`python -m course_utils.bench` must see what benchmarks/*.py register (running as __main__ once
    gave it a registry of its own, and every chapter benchmark went missing)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "course_utils.bench", "--list", "--root", str(ROOT)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    names = out.stdout.split()
    assert out.returncode == 0, out.stderr
    assert any(n.startswith("ch03/") for n in names), names
    assert "ch00_warmup/page_seconds" in names
