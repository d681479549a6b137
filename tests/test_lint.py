"""The linter is part of the test suite: `ruff check` over the repository (rules in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_ruff_clean(root: Path) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    out = subprocess.run([str(ruff), "check", "--no-cache", str(root)], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
