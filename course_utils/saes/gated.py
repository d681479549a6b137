"""Gated SAE (Rajamanoharan et al. 2024, arXiv:2404.16014).

Two paths share the encoder: the gate π_gate = (x − b_dec) W_enc + b_gate decides *which* latents are
active, the magnitude π_mag = (x − b_dec) (W_enc ⊙ exp(r_mag)) + b_mag *how much*:
f = 1[π_gate > 0] ⊙ ReLU(π_mag). The L1 penalty acts on ReLU(π_gate) only, so it no longer shrinks the
magnitudes. The step has no gradient, so an auxiliary loss trains the gate path to reconstruct through a
*frozen* (detached) copy of the decoder: ‖x − (ReLU(π_gate) W_dec.detach() + b_dec.detach())‖² (as in the
paper and dictionary_learning; SAELens 6.54.12's GatedTrainingSAE does not detach the decoder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from course_utils.saes.base import SAE, LossParts, SAEConfig, squared_error


@dataclass
class GatedConfig(SAEConfig):
    l1_coefficient: float = 0.3

    architecture: ClassVar[str] = "gated"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.l1_coefficient = self._coefficient(self.l1_coefficient, "l1_coefficient")


def gated_encode(x: torch.Tensor, W_enc: torch.Tensor, b_gate: torch.Tensor, b_mag: torch.Tensor,
                 r_mag: torch.Tensor, b_dec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(f, π_gate): f = 1[π_gate > 0] ⊙ ReLU(π_mag). x: [batch, d_in], W_enc: [d_in, d_sae]."""
    x_c = x - b_dec
    pi_gate = x_c @ W_enc + b_gate
    pi_mag = x_c @ (W_enc * r_mag.exp()) + b_mag
    return (pi_gate > 0).to(x.dtype) * torch.relu(pi_mag), pi_gate


class CentredAffine(torch.autograd.Function):
    """(x − b) @ W + bias for x: [..., d_in], b: [d_in], W: [d_in, n], bias: [n], the bias added inside
    the matrix product (``addmm``). The backward gives b its gradient −(Σ_batch g) Wᵀ as one
    vector–matrix product instead of forming the gradient of every centred input, g Wᵀ: [batch, d_in],
    and then summing it (the same value up to float rounding; x's gradient is formed only when x
    needs one)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, b: torch.Tensor, W: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x_c = (x - b).reshape(-1, x.shape[-1])  # [tokens, d_in]
        ctx.save_for_backward(x_c, W)
        ctx.lead = x.shape[:-1]
        return torch.addmm(bias, x_c, W).reshape(*x.shape[:-1], W.shape[1])

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x_c, W = ctx.saved_tensors
        g2 = g.reshape(-1, g.shape[-1])  # [tokens, n]
        g_sum = g2.sum(0)  # [n]
        grad_x = (g2 @ W.T).reshape(*ctx.lead, W.shape[0]) if ctx.needs_input_grad[0] else None
        grad_b = -(g_sum @ W.T) if ctx.needs_input_grad[1] else None
        grad_W = x_c.T @ g2 if ctx.needs_input_grad[2] else None
        return grad_x, grad_b, grad_W, g_sum if ctx.needs_input_grad[3] else None


class GatedSAE(SAE):
    config_class = GatedConfig
    has_b_enc = False
    cfg: GatedConfig

    def __init__(self, cfg: GatedConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        self.b_gate = nn.Parameter(torch.zeros(cfg.d_sae))
        self.b_mag = nn.Parameter(torch.zeros(cfg.d_sae))
        self.r_mag = nn.Parameter(torch.zeros(cfg.d_sae))

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`gated_encode` with each path's bias added inside its product and b_dec's gradient
        through the encoder from :class:`CentredAffine` (the same values to float rounding; a test
        compares). Two products rather than one of the concatenated weights: the concatenation and
        its backward cost more than they save at the toy's size."""
        x = self.check_input(x)
        pi_gate = CentredAffine.apply(x, self.b_dec, self.W_enc, self.b_gate)  # [batch, d_sae]
        pi_mag = CentredAffine.apply(x, self.b_dec, self.W_enc * self.r_mag.exp(), self.b_mag)
        return (pi_gate > 0).to(x.dtype) * torch.relu(pi_mag), pi_gate

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._encode(x)[0]

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> LossParts:
        f, pi_gate = self._encode(x)
        target = x if target is None else target
        flat = (-1, self.cfg.d_sae)  # the decodes below add their bias inside the product (addmm)
        x_hat = torch.addmm(self.b_dec, f.reshape(flat), self.W_dec).reshape(target.shape)
        mse = squared_error(x_hat, target)
        gate = torch.relu(pi_gate)
        sparsity = self.cfg.l1_coefficient * (gate @ self.W_dec.norm(dim=1)).mean()  # Σ_i gate_i ‖W_dec,i‖
        aux_hat = torch.addmm(self.b_dec.detach(), gate.reshape(flat), self.W_dec.detach()).reshape(target.shape)
        aux = squared_error(aux_hat, target)
        return LossParts(mse, sparsity, aux, f)

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        norms = self.W_dec.norm(dim=1).clamp_min(1e-8)
        self.W_dec.div_(norms[:, None])
        self.W_enc.mul_(norms[None, :])
        self.b_gate.mul_(norms)
        self.b_mag.mul_(norms)

    def sae_lens_state(self) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
        tensors = {"W_enc": self.W_enc, "W_dec": self.W_dec, "b_dec": self.b_dec, "b_gate": self.b_gate,
                   "b_mag": self.b_mag, "r_mag": self.r_mag}
        return "gated", {}, {k: v.detach().contiguous() for k, v in tensors.items()}
