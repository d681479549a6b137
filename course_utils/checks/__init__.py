"""Exercise checks, one module per chapter topic.

In a notebook::

    from course_utils.checks import warmup as checks
    checks.check_affine(affine)        # prints one line on success, raises CheckFailed with a diagnosis

Every check has tests (``tests/checks/``) that feed it plausible wrong implementations, one or more
of each mistake kind that applies (differentiability, shapes, independence, parameters and
boundaries, dtypes, side effects, randomness, statistics, stated requirements; see CONTRIBUTING.md),
and assert it rejects each with a diagnosis naming the mistake. Hook helpers' side effects are checked
with :mod:`course_utils.checks._hooks`.
"""

from course_utils.checks._core import Case, CheckFailed, Mistake, check_function, compare, passed

__all__ = ["Case", "CheckFailed", "Mistake", "check_function", "compare", "passed"]
