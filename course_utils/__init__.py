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

__all__ = ["SCALE", "get_device", "get_scale", "pick", "set_seed", "__version__"]


def __getattr__(name: str):  # noqa: ANN202 - PEP 562 module attribute hook
    """Import ``course_utils.device`` (and torch) only when one of its names is first used, so that
    ``python -m course_utils.grade`` answers a usage error without importing torch."""
    if name in ("SCALE", "get_device", "get_scale", "pick", "set_seed"):
        from course_utils import device

        return getattr(device, name)
    raise AttributeError(f"module 'course_utils' has no attribute {name!r}")
