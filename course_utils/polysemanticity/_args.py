"""Argument checks shared by the chapter 1 modules (ValueError / TypeError naming what was expected)."""

from __future__ import annotations

import numpy as np
import torch

from course_utils._validate import check_int as _check_int
from course_utils._validate import check_tensor as _check_tensor

# ----------------------------------------------------------------------------------------------
# Argument checking


def _check_acts(acts: object, name: str = "acts") -> torch.Tensor:
    acts = _check_tensor(acts, name, 2, "[n_examples, n_units]")
    if not acts.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {acts.dtype}")
    if acts.shape[0] == 0 or acts.shape[1] == 0:
        raise ValueError(f"{name} must have at least one example and one unit, got shape {list(acts.shape)}")
    return acts


def _check_labels(labels: object, n: int, n_classes: int) -> torch.Tensor:
    labels = _check_tensor(labels, "labels", 1, "[n_examples]")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if labels.shape[0] != n:
        raise ValueError(f"labels must have one entry per example: expected {n} (the rows of acts), "
                         f"got {labels.shape[0]}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in range(n_classes={n_classes}), got values from "
                         f"{labels.min().item()} to {labels.max().item()}")
    return labels


def _check_k(k: object, n: int, what: str = "examples") -> int:
    k = _check_int(k, "k")
    if k > n:
        raise ValueError(f"k={k} is larger than the number of {what} ({n}): expected 1 <= k <= {n}")
    return k


def _check_unit_index(i: object, n: int, name: str = "neuron") -> int:
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise TypeError(f"{name} must be an int index, got {type(i).__name__}")
    if not 0 <= int(i) < n:
        raise ValueError(f"{name}={i} is out of range: this layer has {n} units, expected 0 <= {name} < {n}")
    return int(i)
