"""Utilities for the course *Polysemanticity & Superposition*.

The package mirrors the book: one module per topic (``warmup``, ``polysemanticity``, ``tms``, ...),
plus shared machinery: :mod:`course_utils.device` (device, seeds, the CPU/GPU ``SCALE`` switch),
:mod:`course_utils.plotting` (figures as pure functions, static twins of widgets),
:mod:`course_utils.checks` (exercise checks that diagnose mistakes) and :mod:`course_utils.grade`
(the grading command).
"""

import os as _os

# The release: the one place that names it. pyproject.toml reads it (setuptools dynamic version) and
# the notebooks' setup cells and Colab links are generated from it (course_utils.authoring).
__version__ = "0.1.0"

if _os.environ.get("COURSE_SKIP_VERSION_CHECK") != "1":
    from course_utils._optional import check_versions as _check_versions

    _check_versions()  # too old: UnsupportedVersion naming the package and range; too new: a warning

from course_utils.device import SCALE, get_device, get_scale, pick, set_seed  # noqa: E402

__all__ = ["SCALE", "get_device", "get_scale", "pick", "set_seed", "__version__"]
