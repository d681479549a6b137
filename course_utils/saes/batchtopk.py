"""BatchTopK SAE (Bussmann, Leask, Nanda 2024, arXiv:2412.06410).

In training the k·B largest pre-activations of the whole batch survive (B = batch size), so the mean L0
is exactly k but each example gets as many latents as it needs. At inference a batch is not available:
a single threshold θ, a running average of the smallest activation kept in training batches, replaces
the selection, f = ReLU(pre) · 1[pre > θ] (so SAELens saves it as a JumpReLU SAE). The running average is
an exponential moving average with rate ``threshold_lr`` (0.01, as in SAELens). AuxK as for TopK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from course_utils._validate import check_float
from course_utils.saes.base import LossParts, squared_error
from course_utils.saes.topk import TopKConfig, TopKSAE, auxk_loss, top_indices


@dataclass
class BatchTopKConfig(TopKConfig):
    threshold_lr: float = 0.01

    architecture: ClassVar[str] = "batchtopk"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.threshold_lr = check_float(self.threshold_lr, "threshold_lr", low=0.0, high=1.0)


def batch_topk_activation(pre: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k·batch largest entries of the whole batch pre: [batch, d_sae] (after a ReLU)."""
    flat = torch.relu(pre).flatten()
    n_keep = min(k * pre.shape[0], flat.numel())
    top = flat.topk(n_keep)
    return torch.zeros_like(flat).scatter(0, top.indices, top.values).reshape(pre.shape)


def batch_topk_select(pre: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(f, kept): :func:`batch_topk_activation` computed with :func:`~.topk.top_indices` (the training
    path; the same values and gradient), and the kept values [k·batch], from which the threshold's
    running estimate reads its minimum without scanning the dense latents."""
    flat = torch.relu(pre).flatten()
    idx = top_indices(flat, min(k * pre.shape[0], flat.numel()))  # [k·batch]
    kept = flat.gather(0, idx)
    return torch.zeros_like(flat).scatter(0, idx, kept).reshape(pre.shape), kept


def update_threshold(threshold: torch.Tensor, acts: torch.Tensor, lr: float) -> torch.Tensor:
    """EMA of the smallest positive training activation: θ ← (1 − lr) θ + lr · min(acts > 0).
    A negative θ means "not yet set": it becomes that minimum. Unchanged if nothing fired."""
    positive = acts[acts > 0]
    if positive.numel() == 0:
        return threshold
    smallest = positive.min().to(threshold.dtype)
    if threshold < 0:
        return smallest.reshape(threshold.shape)
    return (1 - lr) * threshold + lr * smallest


class BatchTopKSAE(TopKSAE):
    config_class = BatchTopKConfig
    cfg: BatchTopKConfig

    def __init__(self, cfg: BatchTopKConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        self.register_buffer("threshold", torch.tensor(-1.0))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Batch selection in training mode; the learned threshold in eval mode."""
        pre = self.pre_acts(x)
        if self.training:
            return batch_topk_select(pre, self.cfg.k)[0]
        return self.threshold_encode(pre)

    def threshold_encode(self, pre: torch.Tensor) -> torch.Tensor:
        theta = self.threshold.clamp_min(0.0)
        return torch.relu(pre) * (pre > theta).to(pre.dtype)

    def _decode_loss(self, f: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return squared_error(self.decode(f), target)

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> LossParts:
        pre = self.pre_acts(x)
        f, kept = batch_topk_select(pre, self.cfg.k)
        target = x if target is None else target
        x_hat = self.decode(f)
        mse = self._decode_loss(f, target)
        with torch.no_grad():  # f's positive entries are exactly the positive kept values
            self.threshold.copy_(update_threshold(self.threshold, kept.detach(), self.cfg.threshold_lr))
        aux = self.cfg.aux_coefficient * auxk_loss(pre, target - x_hat, self.W_dec, self.dead_mask(),
                                                   self.cfg.k_aux)
        return LossParts(mse, torch.zeros_like(mse), aux, f)

    def sae_lens_state(self) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
        _, _, tensors = super().sae_lens_state()
        theta = self.threshold.detach().clamp_min(0.0)
        tensors["threshold"] = theta.expand(self.cfg.d_sae).clone().to(tensors["W_enc"].dtype)
        return "jumprelu", {}, tensors
