"""The chapter's SAE explorer: train a small SAE on the toy in a couple of seconds and show which true
features it recovered. Wrapped by :func:`course_utils.plotting.explorer` on the page (live sliders in a
kernel, a static slider on the website)."""

from __future__ import annotations

import plotly.graph_objects as go
import torch

from course_utils.saes import SHIPPED, TrainConfig, make_sae, train_sae
from course_utils.saes.figures import recovery_figure
from course_utils.saes.metrics import fvu, l0
from course_utils.saes.toy import ToyData

#: What "sparser" means for each architecture: k for the TopK family, λ for L1 / Gated, the L0
#: coefficient for JumpReLU.
SPARSITY: dict[str, tuple[str, dict[str, float]]] = {
    "topk": ("k", {"dense": 10, "medium": 5, "sparse": 2}),
    "batchtopk": ("k", {"dense": 10, "medium": 5, "sparse": 2}),
    "relu": ("l1_coefficient", {"dense": 0.1, "medium": 0.3, "sparse": 1.0}),
    "gated": ("l1_coefficient", {"dense": 0.1, "medium": 0.3, "sparse": 1.0}),
    "jumprelu": ("l0_coefficient", {"dense": 0.01, "medium": 0.03, "sparse": 0.1}),
}


def explore(toy: ToyData, architecture: str = "topk", d_sae: int = 256, sparsity: str = "medium",
            steps: int = 150, seed: int = 0) -> go.Figure:
    """Train ``architecture`` (dictionary ``d_sae``, sparsity level dense / medium / sparse) for
    ``steps`` steps on ``toy`` and plot each true feature's best cosine with a decoder row."""
    if architecture not in SPARSITY:
        raise ValueError(f"architecture must be one of {sorted(SPARSITY)}, got {architecture!r}")
    name, levels = SPARSITY[architecture]
    if sparsity not in levels:
        raise ValueError(f"sparsity must be one of {list(levels)}, got {sparsity!r}")
    kwargs = {**SHIPPED[architecture], name: levels[sparsity]}
    sae = make_sae(architecture, toy.d, d_sae, seed=seed, **kwargs)
    train_sae(sae, toy, TrainConfig(steps=steps, seed=seed, warmup_steps=min(50, steps)))
    x = toy.sample(2048, torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        f = sae.encode(x)
        score = f"L0 {l0(f).item():.1f}, FVU {fvu(x, sae.decode(f)).item():.3f}"
    return recovery_figure(sae.W_dec.detach(), toy.features,
                           f"{architecture}, {d_sae} latents, {name} = {levels[sparsity]:g}: {score}")
