"""Test-suite wide setup: no network, deterministic kernels.

Every connection outside the loopback raises ``NetworkBlocked`` in this process, and in every kernel
the suite starts (nbval, the grader, the book build) through the IPython startup file that
``COURSE_OFFLINE_GUARD=1`` switches on.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    os.environ["COURSE_OFFLINE_GUARD"] = "1"
    os.environ["IPYTHONDIR"] = str(ROOT / "book" / "_ipython")
    os.environ.setdefault("COURSE_SCALE", "cpu")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    from course_utils.offline import block_network

    block_network()


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
