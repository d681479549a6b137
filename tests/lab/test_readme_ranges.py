"""The README's table of accepted versions is the one pyproject.toml declares (no drift)."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_readme_states_every_declared_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    readme = (ROOT / "README.md").read_text()
    declared = project["dependencies"] + project["optional-dependencies"]["lm"]
    for req in declared:
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", req).groups()
        parts = ", ".join(sorted(spec.split(","), key=lambda s: not s.startswith(">")))
        row = re.search(rf"\| {re.escape(name)}(?: `\[lm\]`)? \| ([^|]+) \|", readme)
        assert row, f"README's version table lacks {name}"
        assert row.group(1).strip().startswith(parts), f"README says {name} {row.group(1).strip()}, pyproject {parts}"
