"""How well a decomposition recovers the target's weights, as the SPD authors' code measures it.

MMCS and ML2R (Braun et al. 2025, eqs. for MMCS and ML2R; spd repo, ``TMSAnalyzer``): for every
input feature j, the j-th column of each subcomponent's rank-one matrix, ``V[j, c] U[c, :]``, is
compared with the j-th column of W. MMCS is the mean over features of the largest cosine
similarity (signed, not absolute); ML2R is the mean over features of the norm of that best-matching
column divided by the norm of W's column. Norms in the cosine get ``+ 1e-12`` as in the authors' code.
"""

from __future__ import annotations

import torch


def _check(W: torch.Tensor, V: torch.Tensor, U: torch.Tensor) -> None:
    for name, t in (("W", W), ("V", V), ("U", U)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2:
            raise ValueError(f"{name} must be a 2-d tensor, got {getattr(t, 'shape', type(t).__name__)}")
    d_out, d_in = W.shape
    if V.shape[0] != d_in or U.shape[1] != d_out or V.shape[1] != U.shape[0]:
        raise ValueError(f"expected W: [d_out, d_in], V: [d_in, C], U: [C, d_out]; got W {list(W.shape)}, "
                         f"V {list(V.shape)}, U {list(U.shape)}")


def column_cosines(W: torch.Tensor, V: torch.Tensor, U: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """cos(V[j, c] U[c, :], W[:, j]) for every subcomponent c and input feature j: [C, d_in]."""
    _check(W, V, U)
    sub = torch.einsum("fc,ch->cfh", V, U)  # [C, d_in, d_out]
    target = W.T  # [d_in, d_out]
    sub_n = sub / (sub.norm(dim=-1, keepdim=True) + eps)
    tgt_n = target / (target.norm(dim=-1, keepdim=True) + eps)
    return torch.einsum("cfh,fh->cf", sub_n, tgt_n)


def mmcs_ml2r(W: torch.Tensor, V: torch.Tensor, U: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(MMCS, ML2R) of the decomposition W ≈ (V U)ᵀ. W: [d_out, d_in], V: [d_in, C], U: [C, d_out]
    -> two 0-d tensors."""
    _check(W, V, U)
    return columns_mmcs_ml2r(W, torch.einsum("fc,ch->cfh", V, U))


def columns_mmcs_ml2r(W: torch.Tensor, sub: torch.Tensor, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """(MMCS, ML2R) for any components given by their columns: W: [d_out, d_in] and
    sub: [C, d_in, d_out] (sub[c, j] = column j of component c; for APD, P_cᵀ)."""
    if sub.ndim != 3 or sub.shape[1:] != W.T.shape:
        raise ValueError(f"sub must have shape [C, d_in, d_out] = [C, {W.shape[1]}, {W.shape[0]}], "
                         f"got {list(sub.shape)}")
    target = W.T  # [d_in, d_out]
    sub_n = sub / (sub.norm(dim=-1, keepdim=True) + eps)
    tgt_n = target / (target.norm(dim=-1, keepdim=True) + eps)
    cos = torch.einsum("cfh,fh->cf", sub_n, tgt_n)  # [C, d_in]
    best = cos.max(dim=0)
    matched = sub[best.indices, torch.arange(W.shape[1], device=W.device)]  # [d_in, d_out]
    return best.values.mean(), (matched.norm(dim=-1) / target.norm(dim=-1)).mean()


def subcomponent_norms(V: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of every rank-one subcomponent, ‖V_c‖ ‖U_c‖: [C]."""
    return V.norm(dim=0) * U.norm(dim=1)


def n_alive(ci: torch.Tensor, threshold: float = 0.1) -> int:
    """Subcomponents whose causal importance exceeds ``threshold`` on at least one input (the authors'
    ``ci_alive_threshold`` 0.1). ci: [batch, C]."""
    return int((ci > threshold).any(dim=0).sum())


def ci_l0(ci: torch.Tensor, threshold: float = 0.1) -> float:
    """Causal-importance sparsity: the mean number of subcomponents per input with g > threshold."""
    return float((ci > threshold).float().sum(-1).mean())


def neuron_contributions(W_E: torch.Tensor, W_in: torch.Tensor, W_out: torch.Tensor
                         ) -> torch.Tensor:
    """The residual MLP's neuron contributions (Braun et al. 2025; SPD paper eq.):
    (W_U[i, :] W_out) ⊙ (W_in W_E[:, i]) for every feature i, with W_U = W_Eᵀ.
    W_E: [d_embed, n_feat], W_in: [d_mlp, d_embed], W_out: [d_embed, d_mlp] -> [n_feat, d_mlp]."""
    return (W_E.T @ W_out) * (W_E.T @ W_in.T)


def subcomponent_contributions(W_E: torch.Tensor, V_in: torch.Tensor, U_in: torch.Tensor, W_out_sum: torch.Tensor,
                               pick: torch.Tensor) -> torch.Tensor:
    """The same with W_in replaced by one of its subcomponents per feature, ``pick[i]`` (the paper
    takes the best-matching one; the chapter picks the one with the largest causal importance on the
    one-hot input i), and W_out by the sum of its subcomponents. V_in: [d_embed, C], U_in: [C, d_mlp],
    W_out_sum: [d_embed, d_mlp], pick: [n_feat] -> [n_feat, d_mlp]."""
    inner = W_E.T @ V_in  # [n_feat, C]: each feature's inner activation on each subcomponent
    idx = torch.arange(W_E.shape[1])
    mlp_in = inner[idx, pick][:, None] * U_in[pick]  # [n_feat, d_mlp]
    return (W_E.T @ W_out_sum) * mlp_in


def own_subcomponents(ci_one_hot: torch.Tensor, threshold: float = 0.1) -> int:
    """How many input features have a subcomponent of their own: on the one-hot input i exactly one
    subcomponent has g > threshold, and it has g ≤ threshold on every other one-hot input. The SPD
    paper's residual-MLP W_in result is this count equal to the number of features.
    ci_one_hot: [n_feat, C] (row i: the causal importances on x = value·e_i)."""
    if not isinstance(ci_one_hot, torch.Tensor) or ci_one_hot.ndim != 2:
        raise ValueError(f"ci_one_hot must be a [n_feat, C] tensor, got {getattr(ci_one_hot, 'shape', ci_one_hot)}")
    on = ci_one_hot > threshold  # [n_feat, C]
    single = on.sum(1) == 1
    exclusive = on.sum(0) == 1  # [C]: important on one input only
    return int((single & (on & exclusive).any(1)).sum())
