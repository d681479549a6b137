"""Warm-up: the tensor moves every later chapter uses.

A tiny MLP on a synthetic task, so that learners can practise reading activations: einsum for
linear maps, cosine-similarity matrices of weight directions, top-k activating examples and forward
hooks.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyMLP(nn.Module):
    """``x: [batch, d_in] -> logits: [batch, n_classes]`` through one ReLU hidden layer.

    Modules are named so that hooks read naturally: ``model.hidden`` (the linear map into the hidden
    layer), ``model.act`` (the ReLU: its output is the neurons' activations), ``model.readout``.
    """

    def __init__(self, d_in: int = 8, d_hidden: int = 16, n_classes: int = 4) -> None:
        super().__init__()
        for name, v in (("d_in", d_in), ("d_hidden", d_hidden), ("n_classes", n_classes)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.hidden = nn.Linear(d_in, d_hidden)
        self.act = nn.ReLU()
        self.readout = nn.Linear(d_hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.act(self.hidden(x)))


def make_blobs(n: int = 512, d_in: int = 8, n_classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clusters: ``x: [n, d_in]`` around ``n_classes`` random centres, ``y: [n]`` labels."""
    if n < n_classes:
        raise ValueError(f"n must be at least n_classes={n_classes}, got {n}")
    if d_in < 1 or n_classes < 2:
        raise ValueError(f"need d_in >= 1 and n_classes >= 2, got d_in={d_in}, n_classes={n_classes}")
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(n_classes, d_in, generator=g)
    y = torch.arange(n) % n_classes
    x = centres[y] + 0.7 * torch.randn(n, d_in, generator=g)
    return x, y


def train_tiny_mlp(x: torch.Tensor, y: torch.Tensor, d_hidden: int = 16, steps: int = 300,
                   lr: float = 1e-2, seed: int = 0) -> TinyMLP:
    """Full-batch Adam on cross-entropy; deterministic for a given seed."""
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"expected x: [n, d_in] and y: [n], got {list(x.shape)} and {list(y.shape)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    torch.manual_seed(seed)
    model = TinyMLP(x.shape[1], d_hidden, int(y.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(-1) == y).float().mean().item()
