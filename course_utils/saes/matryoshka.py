"""Matryoshka BatchTopK SAE (Bussmann et al. 2025, arXiv:2503.17547; Nabeshima 2024).

The dictionary is read as nested prefixes m_1 < m_2 < ... < m_n = d_sae. Each prefix on its own must
reconstruct the input: loss = Σ_j ‖x − (f[:, :m_j] W_dec[:m_j] + b_dec)‖² (+ AuxK), with f the BatchTopK
latents. The first latents are forced to be general (they must work alone), so a parent feature is not
absorbed into its children; on a flat toy with more features than the first prefix, the small prefixes
must instead merge features (the lesson of the chapter's page).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from course_utils.saes.base import squared_error
from course_utils.saes.batchtopk import BatchTopKConfig, BatchTopKSAE


@dataclass
class MatryoshkaConfig(BatchTopKConfig):
    prefixes: Sequence[int] = field(default_factory=tuple)

    architecture: ClassVar[str] = "matryoshka"

    def __post_init__(self) -> None:
        super().__post_init__()
        prefixes = list(self.prefixes) if self.prefixes else [self.d_sae]
        for m in prefixes:
            if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= self.d_sae:
                raise ValueError(f"prefixes must be ints in [1, d_sae={self.d_sae}], got {list(self.prefixes)}")
        if sorted(set(prefixes)) != prefixes:
            raise ValueError(f"prefixes must be strictly increasing, got {prefixes}")
        if prefixes[-1] != self.d_sae:
            prefixes.append(self.d_sae)
        self.prefixes = tuple(prefixes)


def matryoshka_loss(x: torch.Tensor, f: torch.Tensor, W_dec: torch.Tensor, b_dec: torch.Tensor,
                    prefixes: Sequence[int]) -> torch.Tensor:
    """Σ_j ‖x − (f[:, :m_j] @ W_dec[:m_j] + b_dec)‖², each term summed over dimensions and averaged over
    the batch. x: [batch, d_out], f: [batch, d_sae], W_dec: [d_sae, d_out]."""
    total = x.new_zeros(())
    for m in prefixes:
        total = total + squared_error(f[:, :m] @ W_dec[:m] + b_dec, x)
    return total


class MatryoshkaSAE(BatchTopKSAE):
    config_class = MatryoshkaConfig
    cfg: MatryoshkaConfig

    def _decode_loss(self, f: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return matryoshka_loss(target, f, self.W_dec, self.b_dec, self.cfg.prefixes)
