"""Exercise checks, one module per chapter topic.

In a notebook::

    from course_utils.checks import warmup as checks
    checks.check_affine(affine)        # prints one line on success, raises CheckFailed with a diagnosis

Every check has tests (``tests/checks/``) that feed it plausible wrong implementations and assert it
rejects each with the right diagnosis.
"""

from course_utils.checks._core import Case, CheckFailed, Mistake, check_function, compare, passed

__all__ = ["Case", "CheckFailed", "Mistake", "check_function", "compare", "passed"]
