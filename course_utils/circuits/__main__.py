"""Command line of :mod:`course_utils.circuits`: ``python -m course_utils.circuits
train-course-transcoders [...]`` (see :func:`course_utils.circuits.course.main`)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "train-course-transcoders":
        print("usage: python -m course_utils.circuits train-course-transcoders [--out DIR] [--tokens N] "
              "[--only NAME ...]", file=sys.stderr)
        return 2
    from course_utils.circuits.course import main as train_main

    return train_main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
