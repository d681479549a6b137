"""ReLU SAE with an L1 penalty (Bricken et al. 2023, "Towards Monosemanticity").

f = ReLU((x − b_dec) W_enc + b_enc), x̂ = f W_dec + b_dec, loss = ‖x − x̂‖² + λ Σ_i f_i (unit-norm decoder
rows). The variant of Anthropic's April 2024 update puts the decoder norms inside the penalty,
λ Σ_i f_i ‖W_dec,i‖, and leaves the decoder unconstrained (``decoder_norm_in_penalty=True``).
L1 pulls every active latent towards zero: reconstructions shrink (‖x̂‖ < ‖x‖), the problem Gated and
JumpReLU SAEs fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from course_utils.saes.base import SAE, LossParts, SAEConfig, squared_error


@dataclass
class ReLUConfig(SAEConfig):
    l1_coefficient: float = 0.3
    decoder_norm_in_penalty: bool = False

    architecture: ClassVar[str] = "relu"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.l1_coefficient = self._coefficient(self.l1_coefficient, "l1_coefficient")
        if self.decoder_norm_in_penalty:
            self.unit_norm_decoder = False


def relu_encode(x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, b_dec: torch.Tensor) -> torch.Tensor:
    """f = ReLU((x − b_dec) @ W_enc + b_enc). x: [batch, d_in], W_enc: [d_in, d_sae] -> [batch, d_sae]."""
    return torch.relu((x - b_dec) @ W_enc + b_enc)


def relu_l1_loss(x: torch.Tensor, f: torch.Tensor, x_hat: torch.Tensor, W_dec: torch.Tensor,
                 l1_coefficient: float, decoder_norm_in_penalty: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(mse, sparsity): ‖x − x̂‖² summed over dimensions, and λ Σ_i f_i (times ‖W_dec,i‖ in the
    April 2024 variant), both averaged over the batch."""
    weights = W_dec.norm(dim=1) if decoder_norm_in_penalty else torch.ones_like(W_dec[:, 0])
    return squared_error(x_hat, x), l1_coefficient * (f * weights).sum(-1).mean()


class ReLUSAE(SAE):
    config_class = ReLUConfig
    cfg: ReLUConfig

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.pre_acts(x))

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> LossParts:
        f = self.encode(x)
        x_hat = self.decode(f)
        target = x if target is None else target
        mse, sparsity = relu_l1_loss(target, f, x_hat, self.W_dec, self.cfg.l1_coefficient,
                                     self.cfg.decoder_norm_in_penalty)
        return LossParts(mse, sparsity, torch.zeros_like(mse), f)
