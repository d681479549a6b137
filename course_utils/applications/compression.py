"""Polysemanticity as compression, measured.

Toy models (Elhage et al., 2022, "Toy models of superposition"): features ``x_i`` are 0 with
probability ``S`` and uniform on [0, 1] otherwise, with importances ``I_i``; the loss is
``mean_i I_i E[(x_i - x_hat_i)^2]`` (:func:`course_utils.tms.importance_weighted_loss`).

A **monosemantic** model with ``k`` hidden dimensions gives each of its dimensions one feature. Its
best choice keeps the ``k`` most important features exactly (one-hot rows of ``W``, bias 0) and
outputs the constant ``E[x_i] = p_i / 2`` (its bias) for every other feature, whose loss is then
the variance ``p_i / 3 - p_i^2 / 4`` (``p_i = 1 - S_i``)::

    L_mono(k) = (1 / n) * sum_{i not in top k} I_i (p_i / 3 - p_i^2 / 4)

Against a trained superposed model with ``m`` dimensions and loss ``L_sup``:

* ``k*`` = the smallest ``k`` with ``L_mono(k) <= L_sup``: the monosemantic width that matches it;
  **dimensions saved** = ``k* - m``;
* **interference cost** = ``L_sup - L_mono(r)`` with ``r`` the number of features the superposed
  model represents (norm > 0.5): what packing those ``r`` features into ``m < r`` dimensions costs
  compared with giving each its own dimension.

On the course model the forced-monosemantic replacement is an SAE's reconstruction with the error
term dropped: the loss it gives up is ``CE(with x_hat spliced in) - CE(clean)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


def _check_vector(v: object, name: str) -> torch.Tensor:
    if not isinstance(v, torch.Tensor) or v.ndim != 1 or v.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-d tensor [n_feat]")
    return v


def monosemantic_loss(importance: torch.Tensor, feature_probability: torch.Tensor, k: int) -> torch.Tensor:
    """``L_mono(k)``: the loss of the best monosemantic model with ``k`` dimensions (a scalar tensor)."""
    importance = _check_vector(importance, "importance")
    p = _check_vector(feature_probability, "feature_probability")
    if p.shape != importance.shape:
        raise ValueError(f"importance {list(importance.shape)} and feature_probability {list(p.shape)} differ")
    n = importance.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"k must be an int in [0, {n}], got {k!r}")
    per_feature = importance * (p / 3 - p**2 / 4)  # [n_feat]
    order = importance.argsort(descending=True, stable=True)
    return per_feature[order[k:]].sum() / n


def matching_width(importance: torch.Tensor, feature_probability: torch.Tensor, loss: float) -> int:
    """The smallest ``k`` with ``L_mono(k) <= loss`` (at most ``n_feat``: ``L_mono(n_feat) = 0``)."""
    n = _check_vector(importance, "importance").shape[0]
    for k in range(n + 1):
        if float(monosemantic_loss(importance, feature_probability, k)) <= loss:
            return k
    return n


@dataclass
class Savings:
    """Per sparsity level: superposed loss, features represented, matching monosemantic width,
    dimensions saved and the interference cost."""

    sparsity: list[float]
    d_hidden: int
    loss: list[float]
    represented: list[int]
    matching_width: list[int]
    saved: list[int]
    interference_cost: list[float]


def superposition_savings(sweep: Any) -> Savings:
    """:class:`Savings` of a :func:`course_utils.tms.sparsity_sweep` result."""
    from course_utils.tms import n_represented

    d_hidden = sweep.W.shape[1]
    loss, rep, width, saved, cost = [], [], [], [], []
    for i, s in enumerate(sweep.sparsity):
        p = torch.full_like(sweep.importance, 1.0 - s)
        L = float(sweep.loss[i])
        r = int(n_represented(sweep.W[i:i + 1])[0])
        k = matching_width(sweep.importance, p, L)
        loss.append(L)
        rep.append(r)
        width.append(k)
        saved.append(k - d_hidden)
        cost.append(L - float(monosemantic_loss(sweep.importance, p, r)))
    return Savings(list(sweep.sparsity), d_hidden, loss, rep, width, saved, cost)


@torch.no_grad()
def spliced_loss(model: Any, windows: torch.Tensor, hook_name: str, sae: Any | None = None,
                 mode: str = "sae") -> float:
    """Next-token loss (nats) on ``windows: [n, pos]`` with the activation at ``hook_name`` replaced:
    ``"sae"`` its SAE reconstruction (error term dropped), ``"zero"`` zeros, ``"clean"`` unchanged."""
    if mode not in ("sae", "zero", "clean"):
        raise ValueError(f"mode must be 'sae', 'zero' or 'clean', got {mode!r}")
    if mode == "sae" and sae is None:
        raise ValueError("mode='sae' needs an sae")
    if hook_name not in model.hook_dict:
        raise ValueError(f"unknown hook name {hook_name!r}")

    def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
        if mode == "zero":
            return torch.zeros_like(act)
        return sae(act.to(sae.W_dec.dtype)).to(act.dtype)

    hooks = [] if mode == "clean" else [(hook_name, hook)]
    with model.hooks(fwd_hooks=hooks):
        return float(model(windows, return_type="loss"))
