"""Command line of :mod:`course_utils.saes`: ``python -m course_utils.saes train-course-saes [...]``
(see :func:`course_utils.saes.course.main`)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "train-course-saes":
        print("usage: python -m course_utils.saes train-course-saes [--scale cpu|full] [--device cpu|cuda] "
              "[--out DIR] [--tokens N] [--only NAME ...]", file=sys.stderr)
        return 2
    from course_utils.saes.course import main as train_main

    return train_main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
