"""The website, built once per test session (offline, executing every page) into a temporary folder.

Set COURSE_BUILT_SITE=/path/to/_build/html to inspect an existing build instead (faster iteration);
CI never sets it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Site:
    html: Path  # _build/html
    build: Path  # _build
    log: str
    returncode: int


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    existing = os.environ.get("COURSE_BUILT_SITE")
    if existing:
        html = Path(existing)
        return Site(html=html, build=html.parent, log="", returncode=0)
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build_book.py"), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=2400)
    return Site(html=out / "_build" / "html", build=out / "_build", log=proc.stdout + proc.stderr,
                returncode=proc.returncode)
