"""Chapter 1, why polysemanticity matters for circuits: two polysemantic neurons joined by one
weight make 25 feature-level connections, measured by intervention."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from course_utils._validate import check_float as _check_float
from course_utils._validate import check_int as _check_int

# Circuits: one weight between two polysemantic neurons = 25 feature-level connections


def effective_connections(forward: Callable[[torch.Tensor], torch.Tensor], n_in: int) -> torch.Tensor:
    """Measure feature-to-feature connections by intervention: entry ``[j, i]`` is how much downstream
    feature ``j`` changes when upstream feature ``i`` alone is switched on (``forward(e_i) − forward(0)``).
    ``forward`` maps ``[batch, n_in]`` to ``[batch, n_out]``."""
    if not callable(forward):
        raise TypeError("forward must be a function from [batch, n_in] inputs to [batch, n_out] outputs")
    _check_int(n_in, "n_in")
    inputs = torch.cat([torch.zeros(1, n_in), torch.eye(n_in)])
    with torch.no_grad():
        out = forward(inputs)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != n_in + 1:
        raise ValueError(f"forward must return [batch, n_out]; got {getattr(out, 'shape', type(out).__name__)}")
    return (out[1:] - out[:1]).T


@dataclass
class CircuitExample:
    """Upstream features a₁..aₙ → one or n neurons → one or n neurons → downstream features b₁..bₙ."""

    encoder: torch.Tensor  # [n] how strongly each upstream feature drives neuron A
    weight: float  # the single weight A → B
    decoder: torch.Tensor  # [n] how strongly neuron B writes each downstream feature
    mono_weights: torch.Tensor  # [n, n] the monosemantic network's neuron-to-neuron weights

    def polysemantic_forward(self, a: torch.Tensor) -> torch.Tensor:
        A = torch.relu(a @ self.encoder)  # [batch]
        B = torch.relu(self.weight * A)
        return B[:, None] * self.decoder[None, :]

    def monosemantic_forward(self, a: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.relu(a) @ self.mono_weights.T)


def circuit_example(n_features: int = 5, weight: float = 0.8, seed: int = 0) -> CircuitExample:
    """Two neurons each standing for ``n_features`` features, joined by one weight; and the monosemantic
    network with one neuron per feature that implements the intended sparse wiring (feature i → i)."""
    _check_int(n_features, "n_features")
    _check_float(weight, "weight")
    g = torch.Generator().manual_seed(seed)
    enc = 0.5 + torch.rand(n_features, generator=g)
    dec = 0.5 + torch.rand(n_features, generator=g)
    return CircuitExample(enc, float(weight), dec, float(weight) * torch.eye(n_features))


# ----------------------------------------------------------------------------------------------
