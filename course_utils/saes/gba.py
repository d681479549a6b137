"""Group bias adaptation (Chen, Sheen, Xiong, Wang, Yang 2025, arXiv:2506.14002).

A ReLU SAE trained on the reconstruction loss alone: no L1, no TopK. Sparsity comes from the encoder
biases, which are not trained by gradient but steered so that each latent fires at a target frequency.
The latents are split into groups; group g has a target activation frequency p_g (spaced geometrically
from ``p_max`` down to ``p_min``), so different groups can resonate with features of different
frequencies (the paper's "neuron resonance").

The update rule below is the course's reading of the paper's description (bias adaptation: a latent
firing more often than its target lowers its bias in proportion to its typical positive pre-activation;
a latent that rarely fires raises its bias towards 0; biases stay in [−b_max, 0]). It was not checked
against the authors' code, which this course could not read: treat its constants as ours, not theirs.
Every ``update_every`` steps, with ρ_m the latent's firing frequency and r_m its mean positive
pre-activation over those steps:

    ρ_m > p_g:        b_m ← max(b_m − γ r_m, −b_max)
    ρ_m < p_g / 10:   b_m ← min(b_m + γ_up, 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from course_utils._validate import check_float, check_int
from course_utils.saes.base import SAE, LossParts, SAEConfig, normalise_rows, squared_error


@dataclass
class GBAConfig(SAEConfig):
    n_groups: int = 4
    p_max: float = 0.1
    p_min: float = 0.01
    gamma: float = 0.05
    gamma_up: float = 0.01
    b_max: float = 1.0
    update_every: int = 5
    unit_norm_decoder: bool = False

    architecture: ClassVar[str] = "gba"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n_groups = check_int(self.n_groups, "n_groups")
        if self.n_groups > self.d_sae:
            raise ValueError(f"n_groups={self.n_groups} exceeds the dictionary size d_sae={self.d_sae}")
        self.p_max = check_float(self.p_max, "p_max", low=1e-9, high=1.0)
        self.p_min = check_float(self.p_min, "p_min", low=1e-9, high=self.p_max)
        self.gamma = self._coefficient(self.gamma, "gamma")
        self.gamma_up = self._coefficient(self.gamma_up, "gamma_up")
        self.b_max = self._coefficient(self.b_max, "b_max")
        self.update_every = check_int(self.update_every, "update_every")


def group_targets(d_sae: int, n_groups: int, p_max: float, p_min: float) -> torch.Tensor:
    """Target firing frequency of every latent: [d_sae], groups of (nearly) equal size, geometric."""
    levels = torch.logspace(torch.log10(torch.tensor(p_max)), torch.log10(torch.tensor(p_min)), n_groups) \
        if n_groups > 1 else torch.tensor([p_max])
    group = torch.arange(d_sae) * n_groups // d_sae
    return levels[group]


def adapt_bias(b: torch.Tensor, freq: torch.Tensor, mean_pos: torch.Tensor, target: torch.Tensor,
               gamma: float, gamma_up: float, b_max: float) -> torch.Tensor:
    """One bias-adaptation update (see the module docstring). All tensors [d_sae]."""
    down = torch.clamp(b - gamma * mean_pos, min=-b_max)
    up = torch.clamp(b + gamma_up, max=0.0)
    return torch.where(freq > target, down, torch.where(freq < target / 10, up, b))


class GBASAE(SAE):
    config_class = GBAConfig
    apply_b_dec_to_input = False  # a trained pre-encoder bias would undo the bias adaptation
    cfg: GBAConfig

    def __init__(self, cfg: GBAConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        self.b_enc.requires_grad_(False)  # steered by adapt_bias, not by the optimiser
        self.register_buffer("target", group_targets(cfg.d_sae, cfg.n_groups, cfg.p_max, cfg.p_min))
        self.register_buffer("_fired", torch.zeros(cfg.d_sae))
        self.register_buffer("_pos_sum", torch.zeros(cfg.d_sae))
        self.register_buffer("_tokens", torch.zeros(()))
        self._steps = 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.pre_acts(x))

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> LossParts:
        f = self.encode(x)
        target = x if target is None else target
        mse = squared_error(self.decode(f), target)
        with torch.no_grad():
            self._fired += (f > 0).sum(0)
            self._pos_sum += f.sum(0)
            self._tokens += f.shape[0]
        zero = torch.zeros_like(mse)
        return LossParts(mse, zero, zero, f)

    @torch.no_grad()
    def after_step(self) -> None:
        super().after_step()
        # unit-norm encoder columns: without a sparsity penalty the encoder could otherwise outgrow
        # any bias; with them the bias is a threshold on a cosine-like score
        self.W_enc.copy_(normalise_rows(self.W_enc.T).T)
        self._steps += 1
        if self._steps % self.cfg.update_every or self._tokens == 0:
            return
        freq = self._fired / self._tokens
        mean_pos = self._pos_sum / self._fired.clamp_min(1)
        self.b_enc.copy_(adapt_bias(self.b_enc, freq, mean_pos, self.target, self.cfg.gamma,
                                    self.cfg.gamma_up, self.cfg.b_max))
        self._fired.zero_()
        self._pos_sum.zero_()
        self._tokens.zero_()

    def sae_lens_state(self) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
        return super().sae_lens_state()
