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
