"""JumpReLU SAE (Rajamanoharan et al. 2024, arXiv:2407.14435).

f = z · H(z − θ) with z = (x − b_dec) W_enc + b_enc and a learned threshold θ_i > 0 per latent; the loss
is ‖x − x̂‖² + λ ‖f‖₀, penalising the number of active latents instead of their size (no shrinkage).
H has zero derivative almost everywhere, so θ is trained with straight-through estimators using a
rectangle kernel K(u) = 1[|u| < 1/2] of bandwidth ε (the paper's eqs. 11-12):

    ∂ JumpReLU_θ(z) / ∂θ = −(θ/ε) K((z − θ)/ε),      ∂ H(z − θ) / ∂θ = −(1/ε) K((z − θ)/ε),

and ∂/∂z is the ordinary one (H(z − θ) for the jump, 0 for the step). θ is trained directly and
clamped ≥ 0 after each step (a log-parameterised θ froze under Adam in SAELens's experience).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from course_utils._validate import check_float
from course_utils.saes.base import SAE, LossParts, SAEConfig, squared_error


@dataclass
class JumpReLUConfig(SAEConfig):
    l0_coefficient: float = 0.03
    bandwidth: float = 0.05
    init_threshold: float = 0.05

    architecture: ClassVar[str] = "jumprelu"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.l0_coefficient = self._coefficient(self.l0_coefficient, "l0_coefficient")
        self.bandwidth = check_float(self.bandwidth, "bandwidth", low=1e-12)
        self.init_threshold = self._coefficient(self.init_threshold, "init_threshold")


def rectangle(u: torch.Tensor) -> torch.Tensor:
    """K(u) = 1 if |u| < 1/2 else 0."""
    return (u.abs() < 0.5).to(u.dtype)


def _window(z: torch.Tensor, theta: torch.Tensor, eps: float) -> torch.Tensor:
    """K((z − θ)/ε) as a bool mask (no float mask to multiply by)."""
    return ((z - theta) / eps).abs_() < 0.5


class JumpReLUFunction(torch.autograd.Function):
    """JumpReLU_θ(z) = z · 1[z > θ] with the rectangle-kernel pseudo-gradient for θ."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, theta: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        return torch.where(z > theta, z, torch.zeros((), dtype=z.dtype))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        z, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        zero = torch.zeros((), dtype=grad.dtype)
        grad_z = torch.where(z > theta, grad, zero)
        # −(θ/ε) K((z − θ)/ε) · grad, summed over the batch: θ/ε is per latent, so it factors out of the sum
        windowed = _sum_to(torch.where(_window(z, theta, eps), grad, zero), theta.shape)
        return grad_z, -(theta / eps) * windowed, None


class StepFunction(torch.autograd.Function):
    """H(z − θ) with the rectangle-kernel pseudo-gradient for θ (and none for z)."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, theta: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        z, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        windowed = _sum_to(torch.where(_window(z, theta, eps), grad, torch.zeros((), dtype=grad.dtype)),
                           theta.shape)
        return torch.zeros_like(z), -windowed / eps, None


class JumpReLUWithL0(torch.autograd.Function):
    """The training path: ``(JumpReLU_θ(z), H(z − θ))`` in one function, so the mask z > θ and the
    kernel window are computed once per step instead of once per function and pass. Forward and both
    pseudo-gradients are those of :class:`JumpReLUFunction` and :class:`StepFunction` (a test compares
    them); ``z`` must be non-negative (it is ReLU'd), so z · 1[z > θ] equals the zeroed where."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, theta: torch.Tensor, bandwidth: float) -> tuple[torch.Tensor, torch.Tensor]:
        above = (z > theta).to(z.dtype)  # [batch, d_sae]
        ctx.save_for_backward(z, theta, above)
        ctx.bandwidth = bandwidth
        return z * above, above

    @staticmethod
    def backward(ctx: Any, grad_f: torch.Tensor, grad_step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        z, theta, above = ctx.saved_tensors
        eps = ctx.bandwidth
        window = _window(z, theta, eps).to(z.dtype)  # K((z − θ)/ε)
        d_jump = -(theta / eps) * _sum_to(grad_f * window, theta.shape)
        d_step = -_sum_to(grad_step * window, theta.shape) / eps
        return grad_f * above, d_jump + d_step, None


def _sum_to(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient back to ``shape`` (θ: [d_sae] against z: [batch, d_sae])."""
    while g.ndim > len(shape):
        g = g.sum(0)
    return g


def jumprelu(z: torch.Tensor, theta: torch.Tensor, bandwidth: float) -> torch.Tensor:
    return JumpReLUFunction.apply(z, theta, bandwidth)


def step(z: torch.Tensor, theta: torch.Tensor, bandwidth: float) -> torch.Tensor:
    return StepFunction.apply(z, theta, bandwidth)


class JumpReLUSAE(SAE):
    config_class = JumpReLUConfig
    cfg: JumpReLUConfig

    def __init__(self, cfg: JumpReLUConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        self.threshold = nn.Parameter(torch.full((cfg.d_sae,), float(cfg.init_threshold)))  # [d_sae]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return jumprelu(torch.relu(self.pre_acts(x)), self.threshold, self.cfg.bandwidth)

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> LossParts:
        z = torch.relu(self.pre_acts(x))
        f, active = JumpReLUWithL0.apply(z, self.threshold, self.cfg.bandwidth)
        target = x if target is None else target
        mse = squared_error(self.decode(f), target)
        l0 = active.sum(-1).mean()
        return LossParts(mse, self.cfg.l0_coefficient * l0, torch.zeros_like(mse), f)

    @torch.no_grad()
    def after_step(self) -> None:
        super().after_step()
        self.threshold.clamp_(min=0.0)

    def sae_lens_state(self) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
        _, _, tensors = super().sae_lens_state()
        tensors["threshold"] = self.threshold.detach().clone()
        return "jumprelu", {}, tensors
