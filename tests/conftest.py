"""Fixtures shared by the course-model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def lm():
    """The shipped course model and tokenizer, on one CPU thread (deterministic numbers)."""
    from course_utils.course_lm import load_course_lm

    torch.set_num_threads(1)
    return load_course_lm()
