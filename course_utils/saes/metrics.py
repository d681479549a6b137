"""Metrics for dictionaries: MMCS against known features (Sharkey et al. 2022), FVU, L0, dead fraction,
firing frequencies, and the shrinkage ratio ‖x̂‖/‖x‖ (Wright & Sharkey 2024; Rajamanoharan et al. 2024)."""

from __future__ import annotations

import torch

from course_utils._validate import check_tensor


def mmcs(W_dec: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Mean max cosine similarity: for each true feature, the largest cosine with any decoder row,
    averaged over the true features. W_dec: [d_sae, d], features: [n_features, d] -> scalar."""
    check_tensor(W_dec, "W_dec", 2, "[d_sae, d]")
    check_tensor(features, "features", 2, "[n_features, d]")
    if W_dec.shape[1] != features.shape[1]:
        raise ValueError(f"W_dec has width {W_dec.shape[1]} but features have width {features.shape[1]}")
    return max_cosines(W_dec, features).mean()


def max_cosines(W_dec: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """[n_features]: each true feature's best cosine with a decoder row."""
    a = W_dec / W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (b @ a.T).max(dim=1).values


def fvu(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Fraction of variance unexplained: Σ‖x − x̂‖² / Σ‖x − x̄‖² over a batch x: [batch, d]."""
    check_tensor(x, "x", 2, "[batch, d]")
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat has shape {list(x_hat.shape)}, expected {list(x.shape)}")
    return (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()


def l0(acts: torch.Tensor) -> torch.Tensor:
    """Mean number of active latents per example. acts: [batch, d_sae]."""
    check_tensor(acts, "acts", 2, "[batch, d_sae]")
    return (acts != 0).sum(-1).to(torch.get_default_dtype()).mean()


def firing_frequencies(acts: torch.Tensor) -> torch.Tensor:
    """Fraction of examples on which each latent is non-zero: [d_sae]."""
    check_tensor(acts, "acts", 2, "[batch, d_sae]")
    return (acts != 0).to(_float_dtype(acts)).mean(0)


def dead_fraction(acts: torch.Tensor) -> torch.Tensor:
    """Fraction of latents that never fire on the batch acts: [batch, d_sae]."""
    return (firing_frequencies(acts) == 0).to(_float_dtype(acts)).mean()


def _float_dtype(t: torch.Tensor) -> torch.dtype:
    return t.dtype if t.is_floating_point() else torch.get_default_dtype()


def norm_ratio(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean over examples of ‖x̂‖/‖x‖ (examples with x = 0 skipped): < 1 means shrinkage."""
    n = x.norm(dim=-1)
    keep = n > 0
    return (x_hat.norm(dim=-1)[keep] / n[keep]).mean()


def prefix_max_cosines(W_dec: torch.Tensor, features: torch.Tensor, prefixes: list[int] | tuple[int, ...]
                       ) -> torch.Tensor:
    """[n_prefixes, n_features]: each true feature's best cosine with the first m decoder rows, for each
    prefix size m (a Matryoshka SAE's nested dictionaries). W_dec: [d_sae, d], features: [n_features, d]."""
    check_tensor(W_dec, "W_dec", 2, "[d_sae, d]")
    if not prefixes or any(not isinstance(m, int) or isinstance(m, bool) or not 1 <= m <= W_dec.shape[0]
                           for m in prefixes):
        raise ValueError(f"prefixes must be ints in [1, d_sae={W_dec.shape[0]}], got {prefixes!r}")
    return torch.stack([max_cosines(W_dec[:m], features) for m in prefixes])


def child_parent_cosines(W_dec: torch.Tensor, features: torch.Tensor, parent_of: torch.Tensor) -> torch.Tensor:
    """Feature absorption on a hierarchical toy, read from the decoder: for each child feature, the
    cosine between the decoder row that best matches the child and the child's *parent* direction
    [n_children]. A clean child latent scores about the true child–parent cosine (≈ 0 for random
    directions); one that has absorbed its parent (its row ≈ parent + child) scores much higher.

    features: [n_parents + n_children, d], parents first; parent_of: [n_children] long."""
    check_tensor(W_dec, "W_dec", 2, "[d_sae, d]")
    check_tensor(features, "features", 2, "[n_parents + n_children, d]")
    n_children = parent_of.shape[0]
    n_parents = features.shape[0] - n_children
    if n_parents < 1 or int(parent_of.max()) >= n_parents:
        raise ValueError(f"features must hold the parents first: {features.shape[0]} features, "
                         f"{n_children} children, parent ids up to {int(parent_of.max())}")
    a = W_dec / W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
    best = (b[n_parents:] @ a.T).argmax(dim=1)  # [n_children]: each child's latent
    return (a[best] * b[parent_of]).sum(-1)


def matched_counts(W_dec: torch.Tensor, features: torch.Tensor, alive: torch.Tensor | None = None,
                   threshold: float = 0.9) -> dict[str, int]:
    """How a dictionary covers the true features at cosine ``threshold``: ``found`` true features with a
    matching decoder row, ``missed`` (merged into other rows or lost), ``duplicates`` (matching rows
    beyond one per feature: a feature split over several latents) and ``other`` alive rows that match
    no feature. ``alive``: bool [d_sae] (default: all rows)."""
    a = W_dec / W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = b @ a.T  # [n_features, d_sae]
    alive = torch.ones(W_dec.shape[0], dtype=torch.bool) if alive is None else alive
    cos = cos[:, alive]
    found = int((cos.max(dim=1).values >= threshold).sum()) if cos.shape[1] else 0
    row_best = cos.max(dim=0).values if cos.shape[1] else cos.new_zeros(0)
    matching = int((row_best >= threshold).sum())
    return dict(found=found, missed=features.shape[0] - found, duplicates=matching - found,
                other=int(alive.sum()) - matching)
