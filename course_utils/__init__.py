"""Utilities for the course *Polysemanticity & Superposition*.

The package mirrors the book: one module per topic (``warmup``, ``polysemanticity``, ``tms``, ...),
plus shared machinery: :mod:`course_utils.device` (device, seeds, the CPU/GPU ``SCALE`` switch),
:mod:`course_utils.plotting` (figures as pure functions, static twins of widgets),
:mod:`course_utils.checks` (exercise checks that diagnose mistakes) and :mod:`course_utils.grade`
(the grading command).
"""

from course_utils.device import SCALE, get_device, get_scale, pick, set_seed

__version__ = "0.1.0"

__all__ = ["SCALE", "get_device", "get_scale", "pick", "set_seed", "__version__"]
