"""Toy models of superposition (Elhage et al. 2022), batched over instances.

One model holds many independent *instances* (sparsity levels, seeds, grid points) that train at once:
``W: [inst, d_hidden, n_feat]``, ``b: [inst, n_feat]``, batches ``x: [batch, inst, n_feat]``. The loss
sums over instances, so every instance gets exactly the gradient it would get alone, and AdamW's
per-parameter updates keep them independent: one optimiser step trains all of them.

Models (``kind``):

* ``"tms"``     x' = ReLU(WᵀWx + b)                              (the toy model of superposition)
* ``"neuron"``  h = ReLU(Wx), x' = ReLU(Wᵀh + b)                  (privileged basis: hidden ReLU)
* ``"abs"``     h = ReLU(W₁x), y' = ReLU(W₂h + b), target |x|     (computation in superposition)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from course_utils._validate import check_int as _check_int
from course_utils._validate import check_tensor as _check_tensor
from course_utils.plotting import COLORWAY, signed_heatmap, style

Kind = Literal["tms", "neuron", "abs"]
Data = Literal["plain", "correlated", "anticorrelated"]

REPRESENTED_NORM = 0.5  # a feature counts as represented when ‖W_i‖ exceeds this (trained norms sit near 0 or ≥ 1)


# ----------------------------------------------------------------------------------------------
# Argument checking


def _check_probability(p: torch.Tensor, name: str = "feature_probability", high: float = 1.0) -> None:
    if torch.isnan(p).any() or (p < 0).any() or (p > high).any():
        raise ValueError(f"{name} must lie in [0, {high:g}], got values from {p.min().item():.3g} "
                         f"to {p.max().item():.3g}")


def check_sparsity(sparsity: Sequence[float] | float) -> list[float]:
    """Validate sparsities S (each in [0, 1]) and return them as a list of floats."""
    values = [sparsity] if isinstance(sparsity, (int, float)) else list(sparsity)
    if not values:
        raise ValueError("sparsity must hold at least one value in [0, 1]")
    for s in values:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= float(s) <= 1.0:
            raise ValueError(f"sparsity must lie in [0, 1] (the probability that a feature is zero), got {s!r}")
    return [float(s) for s in values]


def importance_profile(n_feat: int, decay: float) -> torch.Tensor:
    """Importance I_i = decay^i for i = 0..n_feat-1: [n_feat]. ``decay`` must be positive."""
    _check_int(n_feat, "n_feat")
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not decay > 0:
        raise ValueError(f"importance decay must be a positive number, got {decay!r}")
    return float(decay) ** torch.arange(n_feat, dtype=torch.float64)


# ----------------------------------------------------------------------------------------------
# Data


def generate_batch(batch_size: int, feature_probability: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Sparse features: x_i ~ U[0, 1) with probability p_i, else 0, independently per example,
    instance and feature. feature_probability: [inst, n_feat] -> x: [batch, inst, n_feat]."""
    _check_int(batch_size, "batch_size")
    p = _check_tensor(feature_probability, "feature_probability", 2, "[inst, n_feat]")
    _check_probability(p)
    shape = (batch_size, *p.shape)
    values = torch.rand(shape, generator=generator, dtype=p.dtype, device="cpu").to(p.device)
    coins = torch.rand(shape, generator=generator, dtype=p.dtype, device="cpu").to(p.device)
    return torch.where(coins < p, values, torch.zeros_like(values))


def generate_correlated_batch(batch_size: int, feature_probability: torch.Tensor,
                              generator: torch.Generator | None = None) -> torch.Tensor:
    """Correlated pairs: features 2k and 2k+1 are present together (probability p_k) or absent together;
    their values are independent U[0, 1). feature_probability: [inst, n_pairs] -> [batch, inst, 2 n_pairs]."""
    _check_int(batch_size, "batch_size")
    p = _check_tensor(feature_probability, "feature_probability", 2, "[inst, n_pairs]")
    _check_probability(p)
    n_inst, n_pairs = p.shape
    values = torch.rand((batch_size, n_inst, 2 * n_pairs), generator=generator, dtype=p.dtype).to(p.device)
    coins = torch.rand((batch_size, n_inst, n_pairs), generator=generator, dtype=p.dtype).to(p.device)
    present = (coins < p).repeat_interleave(2, dim=-1)
    return torch.where(present, values, torch.zeros_like(values))


def generate_anticorrelated_batch(batch_size: int, feature_probability: torch.Tensor,
                                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Anticorrelated pairs: never both present. A pair is active with probability 2p_k, then exactly
    one of its two features (each with chance 1/2) takes a U[0, 1) value, so each feature's marginal
    probability is p_k. feature_probability: [inst, n_pairs] (values in [0, 1/2]) -> [batch, inst, 2 n_pairs]."""
    _check_int(batch_size, "batch_size")
    p = _check_tensor(feature_probability, "feature_probability", 2, "[inst, n_pairs]")
    _check_probability(p, high=0.5)
    n_inst, n_pairs = p.shape
    values = torch.rand((batch_size, n_inst, 2 * n_pairs), generator=generator, dtype=p.dtype).to(p.device)
    coins = torch.rand((batch_size, n_inst, n_pairs), generator=generator, dtype=p.dtype).to(p.device)
    first = torch.rand((batch_size, n_inst, n_pairs), generator=generator, dtype=p.dtype).to(p.device) < 0.5
    active = coins < 2 * p
    present = torch.stack([active & first, active & ~first], dim=-1).flatten(-2)
    return torch.where(present, values, torch.zeros_like(values))


_GENERATORS = {"plain": generate_batch, "correlated": generate_correlated_batch,
               "anticorrelated": generate_anticorrelated_batch}


# ----------------------------------------------------------------------------------------------
# Forward passes and loss


def _check_forward(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> None:
    _check_tensor(W, "W", 3, "[inst, d_hidden, n_feat]")
    n_inst, _, n_feat = W.shape
    _check_tensor(b, "b", 2, f"[inst, n_feat] = [{n_inst}, {n_feat}]")
    _check_tensor(x, "x", 3, f"[batch, inst, n_feat] = [batch, {n_inst}, {n_feat}]")
    if tuple(b.shape) != (n_inst, n_feat):
        raise ValueError(f"b must have shape [inst, n_feat] = [{n_inst}, {n_feat}], got {list(b.shape)}")
    if tuple(x.shape[1:]) != (n_inst, n_feat):
        raise ValueError(f"x must have shape [batch, inst, n_feat] = [batch, {n_inst}, {n_feat}], got {list(x.shape)}")


def tms_forward(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x' = ReLU(WᵀWx + b) per instance. W: [inst, d_hidden, n_feat], b: [inst, n_feat],
    x: [batch, inst, n_feat] -> [batch, inst, n_feat]."""
    _check_forward(W, b, x)
    h = torch.einsum("imf,bif->bim", W, x)  # [batch, inst, d_hidden]
    return torch.relu(torch.einsum("imf,bim->bif", W, h) + b)


def neuron_forward(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Privileged basis: h = ReLU(Wx), x' = ReLU(Wᵀh + b). Shapes as in :func:`tms_forward`."""
    _check_forward(W, b, x)
    h = torch.relu(torch.einsum("imf,bif->bim", W, x))
    return torch.relu(torch.einsum("imf,bim->bif", W, h) + b)


def abs_forward(W1: torch.Tensor, W2: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Absolute value in superposition: y' = ReLU(W₂ ReLU(W₁x) + b). W1: [inst, d_hidden, n_feat],
    W2: [inst, n_feat, d_hidden], b: [inst, n_feat], x: [batch, inst, n_feat] -> [batch, inst, n_feat]."""
    _check_forward(W1, b, x)
    _check_tensor(W2, "W2", 3, "[inst, n_feat, d_hidden]")
    if W2.shape != W1.transpose(1, 2).shape:
        raise ValueError(f"W2 must have shape [inst, n_feat, d_hidden] = {list(W1.transpose(1, 2).shape)}, "
                         f"got {list(W2.shape)}")
    h = torch.relu(torch.einsum("imf,bif->bim", W1, x))
    return torch.relu(torch.einsum("ifm,bim->bif", W2, h) + b)


def importance_weighted_loss(out: torch.Tensor, target: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """L = Σ_inst mean_{batch, feat} I_{inst,f} (target − out)²  (Elhage et al. 2022's loss, per instance).
    out, target: [batch, inst, n_feat]; importance: [inst, n_feat] -> scalar."""
    _check_tensor(out, "out", 3, "[batch, inst, n_feat]")
    if target.shape != out.shape:
        raise ValueError(f"target must have the shape of out {list(out.shape)}, got {list(target.shape)}")
    if not (importance > 0).all():
        raise ValueError("importance must be positive for every feature")
    return (importance * (target - out) ** 2).mean(dim=(0, 2)).sum()


# ----------------------------------------------------------------------------------------------
# Geometry


def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """‖W_i‖ for every feature: W: [inst, d_hidden, n_feat] -> [inst, n_feat]."""
    return _check_tensor(W, "W", 3, "[inst, d_hidden, n_feat]").norm(dim=1)


def interference(W: torch.Tensor) -> torch.Tensor:
    """Σ_{j≠i} (Ŵ_i·W_j)²: how much the other features project onto feature i's direction.
    W: [inst, d_hidden, n_feat] -> [inst, n_feat]."""
    W = _check_tensor(W, "W", 3, "[inst, d_hidden, n_feat]")
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8)
    overlap = torch.einsum("imf,img->ifg", W_hat, W) ** 2  # [inst, f, g]
    return overlap.sum(-1) - overlap.diagonal(dim1=-2, dim2=-1)


def feature_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²  (Elhage et al. 2022, "feature dimensionality"); 0 for an
    unlearned (zero) feature. W: [inst, d_hidden, n_feat] -> [inst, n_feat]."""
    W = _check_tensor(W, "W", 3, "[inst, d_hidden, n_feat]")
    norms = W.norm(dim=1)  # [inst, n_feat]
    W_hat = W / norms.unsqueeze(1).clamp_min(1e-8)
    denom = (torch.einsum("imf,img->ifg", W_hat, W) ** 2).sum(-1)
    return norms**2 / denom.clamp_min(1e-12)


def dimensions_per_feature(W: torch.Tensor) -> torch.Tensor:
    """D* = m / ‖W‖²_F: hidden dimensions per (unit-norm) embedded feature. W: [inst, m, n] -> [inst]."""
    W = _check_tensor(W, "W", 3, "[inst, d_hidden, n_feat]")
    return W.shape[1] / (W**2).sum(dim=(1, 2)).clamp_min(1e-12)


def n_represented(W: torch.Tensor, threshold: float = REPRESENTED_NORM) -> torch.Tensor:
    """Number of features with ‖W_i‖ > threshold: W: [inst, d_hidden, n_feat] -> [inst] (long)."""
    return (feature_norms(W) > threshold).sum(-1)


def features_per_neuron(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """For a hidden-ReLU model: how many features drive each neuron, i.e. W[k, j, i] > threshold
    (inputs are non-negative, so only positive weights can switch a neuron on).
    W: [inst, d_hidden, n_feat] -> [inst, d_hidden] (long)."""
    return (_check_tensor(W, "W", 3, "[inst, d_hidden, n_feat]") > threshold).sum(-1)


PHASES = ("not learned", "superposed", "dedicated")


def classify_phase(W: torch.Tensor, feature: int = -1, norm_threshold: float = REPRESENTED_NORM,
                   interference_threshold: float = 0.1) -> torch.Tensor:
    """Phase of one feature per instance: 0 = not learned (‖W_i‖ ≤ norm_threshold), 1 = superposed
    (learned and Σ_{j≠i}(Ŵ_i·W_j)² > interference_threshold), 2 = dedicated dimension (learned, no
    interference). W: [inst, d_hidden, n_feat] -> [inst] (long)."""
    W = _check_tensor(W, "W", 3, "[inst, d_hidden, n_feat]")
    if not -W.shape[2] <= feature < W.shape[2]:
        raise ValueError(f"feature must index one of the {W.shape[2]} features, got {feature}")
    learned = feature_norms(W)[:, feature] > norm_threshold
    shared = interference(W)[:, feature] > interference_threshold
    return torch.where(learned, torch.where(shared, 1, 2), 0).long()


# ----------------------------------------------------------------------------------------------
# Model and trainer


class ToyModel(torch.nn.Module):
    """A batch of independent toy models. ``kind``: "tms", "neuron" (hidden ReLU) or "abs".

    Parameters: W: [inst, d_hidden, n_feat] (xavier-normal per instance, std √(2/(n+m))),
    b: [inst, n_feat] (zeros) and, for "abs", W2: [inst, n_feat, d_hidden].
    """

    def __init__(self, n_inst: int, n_feat: int, d_hidden: int, kind: Kind = "tms",
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> None:
        super().__init__()
        for name, v in (("n_inst", n_inst), ("n_feat", n_feat), ("d_hidden", d_hidden)):
            _check_int(v, name)
        if kind not in ("tms", "neuron", "abs"):
            raise ValueError(f"kind must be 'tms', 'neuron' or 'abs', got {kind!r}")
        self.kind, self.n_inst, self.n_feat, self.d_hidden = kind, n_inst, n_feat, d_hidden
        std = math.sqrt(2.0 / (n_feat + d_hidden))
        W = torch.randn((n_inst, d_hidden, n_feat), generator=generator, dtype=dtype) * std
        self.W = torch.nn.Parameter(W.to(device))
        self.b = torch.nn.Parameter(torch.zeros((n_inst, n_feat), dtype=dtype, device=device))
        if kind == "abs":
            W2 = torch.randn((n_inst, n_feat, d_hidden), generator=generator, dtype=dtype) * std
            self.W2 = torch.nn.Parameter(W2.to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [batch, inst, n_feat] -> [batch, inst, n_feat]."""
        if self.kind == "tms":
            return tms_forward(self.W, self.b, x)
        if self.kind == "neuron":
            return neuron_forward(self.W, self.b, x)
        return abs_forward(self.W, self.W2, self.b, x)

    def forward_ibf(self, x: torch.Tensor) -> torch.Tensor:
        """The same map in the trainer's layout: x: [inst, batch, n_feat] -> [inst, batch, n_feat]."""
        Wt = self.W.transpose(1, 2)  # [inst, n_feat, d_hidden]
        h = x @ Wt  # [inst, batch, d_hidden]
        if self.kind != "tms":
            h = torch.relu(h)
        W_out = self.W2.transpose(1, 2) if self.kind == "abs" else self.W  # [inst, d_hidden, n_feat]
        return torch.relu(h @ W_out + self.b[:, None, :])


@dataclass
class TrainResult:
    """A trained batch of toy models and its final loss per instance (on one fixed evaluation batch
    that all instances share, so seeds with the same sparsity are compared on the same samples)."""

    model: ToyModel
    loss: torch.Tensor  # [inst]
    history: torch.Tensor  # [n_logged, inst]: training loss per instance every `log_every` steps

    @property
    def W(self) -> torch.Tensor:
        return self.model.W.detach()

    @property
    def b(self) -> torch.Tensor:
        return self.model.b.detach()


def _sample(data: Data, kind: Kind, batch_size: int, p: torch.Tensor,
            gen: torch.Generator, shared: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch in the trainer's layout [inst, batch, n_feat] (faster matmuls than
    [batch, inst, n_feat]); same distributions as the public generators. p: [inst, n_cols].
    Returns (x, target): target = x, or |x| with x ∈ [−1, 1] for "abs".

    shared=True draws one set of uniforms for all instances (common random numbers): instances with
    the same p (the seeds of a sweep) then see identical samples, so comparing their losses compares
    the models, not their evaluation batches."""
    n_inst, n_cols = p.shape
    pc = p[:, None, :]  # [inst, 1, n_cols]
    lead = 1 if shared else n_inst

    def draw(cols: int) -> torch.Tensor:  # [inst, batch, cols]
        u = torch.rand((lead, batch_size, cols), generator=gen).to(p.device)
        return u.expand(n_inst, batch_size, cols)

    u = draw(n_cols)
    if data == "plain":
        # Given u < p, u / p is uniform on [0, 1): one random draw gives both the coin and the value.
        x = torch.where(u < pc, u / pc.clamp_min(1e-12), torch.zeros_like(u))
    else:
        vals = draw(2 * n_cols)
        if data == "correlated":
            present = (u < pc).repeat_interleave(2, dim=-1)
        else:  # active with probability 2p; given active, u < p (first feature) with probability 1/2
            present = torch.stack([u < pc, (u >= pc) & (u < 2 * pc)], dim=-1).flatten(-2)
        x = torch.where(present, vals, torch.zeros_like(vals))
    if kind == "abs":
        sign = draw(x.shape[-1]) < 0.5
        x = torch.where(sign, -x, x)
        return x, x.abs()
    return x, x


@contextmanager
def _cpu_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op threads (None: unchanged). Toy models are tiny: on a busy CPU one thread
    avoids the synchronisation cost that dominates each step with several."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def train_toy_model(n_feat: int, d_hidden: int, feature_probability: torch.Tensor,
                    importance: torch.Tensor, *, kind: Kind = "tms", data: Data = "plain",
                    steps: int = 5_000, batch_size: int = 1024, lr: float = 1e-3,
                    weight_decay: float = 0.01, seed: int = 0, log_every: int = 100,
                    device: torch.device | str = "cpu") -> TrainResult:
    """Train every instance at once with AdamW and a cosine-decayed learning rate.

    feature_probability: [inst, n_feat] ([inst, n_feat/2] for correlated data) or broadcastable;
    importance: [inst, n_feat] or [n_feat]. The loss is :func:`importance_weighted_loss` (summed over
    instances), so instances never interact. No per-instance Python loop.
    """
    _check_int(n_feat, "n_feat")
    _check_int(d_hidden, "d_hidden")
    _check_int(steps, "steps")
    _check_int(batch_size, "batch_size")
    if data not in _GENERATORS:
        raise ValueError(f"data must be one of {sorted(_GENERATORS)}, got {data!r}")
    if not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    p = torch.as_tensor(feature_probability, dtype=torch.float32)
    n_cols = n_feat // 2 if data != "plain" else n_feat
    if data != "plain" and n_feat % 2:
        raise ValueError(f"n_feat must be even for {data} pairs, got {n_feat}")
    if p.ndim != 2 or p.shape[1] not in (1, n_cols):
        raise ValueError(f"feature_probability must have shape [inst, {n_cols}] (or [inst, 1]), "
                         f"got {list(p.shape)}")
    _check_probability(p, high=0.5 if data == "anticorrelated" else 1.0)
    n_inst = p.shape[0]
    p = p.expand(n_inst, n_cols).contiguous().to(device)
    imp = torch.as_tensor(importance, dtype=torch.float32)
    if imp.ndim == 1:
        imp = imp.expand(n_inst, -1)
    if imp.shape != (n_inst, n_feat):
        raise ValueError(f"importance must have shape [{n_feat}] or [{n_inst}, {n_feat}], got {list(imp.shape)}")
    if not (imp > 0).all():
        raise ValueError("importance must be positive for every feature")
    imp_b = imp.to(device)[:, None, :]  # [inst, 1, n_feat]
    small = n_inst * batch_size * n_feat <= 2_000_000
    with _cpu_threads(1 if torch.device(device).type == "cpu" and small else None):
        return _train(n_feat, d_hidden, kind, data, p, imp_b, steps, batch_size, lr, weight_decay, seed,
                      log_every, device)


def _train(n_feat: int, d_hidden: int, kind: Kind, data: Data, p: torch.Tensor, imp_b: torch.Tensor,
           steps: int, batch_size: int, lr: float, weight_decay: float, seed: int, log_every: int,
           device: torch.device | str) -> TrainResult:
    n_inst = p.shape[0]
    gen = torch.Generator().manual_seed(seed)
    model = ToyModel(n_inst, n_feat, d_hidden, kind, generator=gen, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
    history = []
    for step in range(steps):
        x, target = _sample(data, kind, batch_size, p, gen)  # [inst, batch, n_feat]
        per_inst = (imp_b * (target - model.forward_ibf(x)) ** 2).mean(dim=(1, 2))  # [inst]
        opt.zero_grad(set_to_none=True)
        per_inst.sum().backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            history.append(per_inst.detach().cpu())
    eval_gen = torch.Generator().manual_seed(10_000 + seed)
    with torch.no_grad():  # every instance is scored on the same evaluation samples
        x, target = _sample(data, kind, 8192, p, eval_gen, shared=True)
        loss = (imp_b * (target - model.forward_ibf(x)) ** 2).mean(dim=(1, 2)).cpu()
    return TrainResult(model.cpu(), loss, torch.stack(history))


def train_unbatched(n_feat: int, d_hidden: int, feature_probability: torch.Tensor,
                    importance: torch.Tensor, **kwargs: object) -> list[TrainResult]:
    """The plain alternative, for benchmarks only: one training run per instance in a Python loop."""
    p = torch.as_tensor(feature_probability, dtype=torch.float32)
    return [train_toy_model(n_feat, d_hidden, p[i:i + 1], importance, **kwargs)  # type: ignore[arg-type]
            for i in range(p.shape[0])]


@dataclass
class Sweep:
    """Best-of-seeds results of a sweep over sparsity: one instance per sparsity level."""

    sparsity: list[float]
    W: torch.Tensor  # [level, d_hidden, n_feat]
    b: torch.Tensor  # [level, n_feat]
    loss: torch.Tensor  # [level]
    importance: torch.Tensor  # [n_feat]
    all_loss: torch.Tensor  # [seed, level]


def sparsity_sweep(n_feat: int, d_hidden: int, sparsity: Sequence[float], importance_decay: float = 1.0,
                   *, n_seeds: int = 1, kind: Kind = "tms", steps: int = 5_000, batch_size: int = 1024,
                   lr: float = 1e-3, seed: int = 0, device: torch.device | str = "cpu") -> Sweep:
    """Train ``n_seeds`` × ``len(sparsity)`` instances in one batched model (p = 1 − S) and keep, per
    level, the seed with the lowest evaluation loss (sparse levels sometimes stick in a worse optimum)."""
    levels = check_sparsity(sparsity)
    _check_int(n_seeds, "n_seeds")
    imp = importance_profile(n_feat, importance_decay).float()
    p = torch.tensor([1.0 - s for s in levels]).repeat(n_seeds).unsqueeze(1)  # [seed*level, 1]
    res = train_toy_model(n_feat, d_hidden, p, imp, kind=kind, steps=steps, batch_size=batch_size,
                          lr=lr, seed=seed, device=device)
    L = len(levels)
    all_loss = res.loss.view(n_seeds, L)
    best = all_loss.argmin(0)  # [level]
    idx = best * L + torch.arange(L)
    return Sweep(levels, res.W[idx], res.b[idx], all_loss.gather(0, best[None])[0], imp, all_loss)


@dataclass
class PhaseDiagram:
    """Phase of the last feature over a grid of (relative importance, density); best of seeds."""

    rel_importance: list[float]
    density: list[float]
    phase: torch.Tensor  # [n_importance, n_density] in {0, 1, 2} (see PHASES)
    W: torch.Tensor  # [n_importance, n_density, d_hidden, n_feat]


def phase_diagram(n_feat: int, d_hidden: int, rel_importance: Sequence[float], density: Sequence[float], *,
                  n_seeds: int = 2, steps: int = 2_000, batch_size: int = 512, lr: float = 1e-2,
                  seed: int = 0, device: torch.device | str = "cpu") -> PhaseDiagram:
    """Train one instance per (relative importance r of the last feature, density p of every feature,
    seed) in a single batched model: importance (1, …, 1, r), feature probability p. Keep the seed with
    the lowest loss and classify the last feature with :func:`classify_phase`."""
    rel = [float(r) for r in rel_importance]
    if not rel or any(not r > 0 for r in rel):
        raise ValueError(f"rel_importance must hold positive numbers, got {rel_importance!r}")
    dens = [float(d) for d in density]
    if not dens or any(not 0 < d <= 1 for d in dens):
        raise ValueError(f"density (1 − S, the probability a feature is present) must lie in (0, 1], got {density!r}")
    _check_int(n_seeds, "n_seeds")
    R, P = len(rel), len(dens)
    r = torch.tensor(rel).repeat_interleave(P).repeat(n_seeds)  # [seed*R*P]
    p = torch.tensor(dens).repeat(R).repeat(n_seeds).unsqueeze(1)  # [seed*R*P, 1]
    imp = torch.ones(len(r), n_feat)
    imp[:, -1] = r
    res = train_toy_model(n_feat, d_hidden, p, imp, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                          device=device)
    loss = res.loss.view(n_seeds, R * P)
    best = loss.argmin(0) * R * P + torch.arange(R * P)
    W = res.W[best]
    return PhaseDiagram(rel, dens, classify_phase(W, -1).view(R, P), W.view(R, P, d_hidden, n_feat))


def plot_phase_diagram(diagram: PhaseDiagram, title: str, height: int = 420) -> go.Figure:
    """Heatmap of the last feature's phase over density (x, log) and relative importance (y, log);
    hover shows ‖W_last‖ and the phase."""
    phase = diagram.phase.numpy()
    norms = diagram.W[..., -1].norm(dim=-1).numpy()
    text = [[f"{PHASES[int(phase[i, j])]}, ‖W_last‖ = {norms[i, j]:.2f}" for j in range(phase.shape[1])]
            for i in range(phase.shape[0])]
    colors = [[0, "#dddddd"], [0.33, "#dddddd"], [0.33, "#dc3912"], [0.67, "#dc3912"], [0.67, "#3366cc"],
              [1, "#3366cc"]]
    fig = go.Figure(go.Heatmap(z=phase, x=diagram.density, y=diagram.rel_importance, zmin=-0.5, zmax=2.5,
                               colorscale=colors, text=text,
                               hovertemplate="density %{x:.3g}, importance %{y:.3g}: %{text}<extra></extra>",
                               colorbar=dict(tickvals=[0, 1, 2], ticktext=list(PHASES))))
    fig.update_xaxes(type="log", title="feature density 1 − S", autorange="reversed")
    fig.update_yaxes(type="log", title="relative importance of the last feature")
    return style(fig, title=title, height=height)


# ----------------------------------------------------------------------------------------------
# Figures (pure functions of their data)


def _fmt_s(s: float) -> str:
    return f"S = {s:.3f}".rstrip("0").rstrip(".") if s < 1 else "S = 1"


def plot_features_2d(W: torch.Tensor, titles: Sequence[str], importance: torch.Tensor | None = None,
                     height: int = 300) -> go.Figure:
    """Each instance's feature directions W_i in its 2-D hidden space, one panel per instance.
    W: [inst, 2, n_feat]. Colour = importance (dark = important), or one colour per feature when no
    importance is given; every arrow is labelled with its feature index."""
    W = _check_tensor(W, "W", 3, "[inst, 2, n_feat]")
    if W.shape[1] != 2:
        raise ValueError(f"plot_features_2d needs d_hidden = 2, got W of shape {list(W.shape)}")
    n_inst, _, n = W.shape
    if len(titles) != n_inst:
        raise ValueError(f"titles must have one entry per instance ({n_inst}), got {len(titles)}")
    imp = torch.ones(n) if importance is None else importance.detach().cpu()
    shade = (imp - imp.min()) / (imp.max() - imp.min() + 1e-9)
    fig = make_subplots(rows=1, cols=n_inst, subplot_titles=list(titles), horizontal_spacing=0.02)
    for k in range(n_inst):
        for i in range(n):
            x, y = W[k, 0, i].item(), W[k, 1, i].item()
            g = int(200 - 170 * shade[i].item())
            # No importance given: every feature its own colour, so that pairs can be told apart.
            color = COLORWAY[i % len(COLORWAY)] if importance is None else f"rgb({g},{g},{min(255, g + 60)})"
            fig.add_trace(go.Scatter(x=[0, x], y=[0, y], mode="lines+markers+text", showlegend=False,
                                     line=dict(color=color, width=2), marker=dict(size=[0, 7]),
                                     text=["", str(i)], textposition="top center",
                                     hovertemplate=f"feature {i}: ‖W‖ = {math.hypot(x, y):.2f}<extra></extra>"),
                          row=1, col=k + 1)
        fig.update_xaxes(range=[-1.5, 1.5], showticklabels=False, row=1, col=k + 1)
        fig.update_yaxes(range=[-1.5, 1.5], showticklabels=False, scaleanchor=f"x{k + 1 if k else ''}",
                         row=1, col=k + 1)
    return style(fig, height=height)


def plot_wtw(W: torch.Tensor, titles: Sequence[str], height: int = 560) -> go.Figure:
    """Top row: WᵀW per instance (course convention: red positive, blue negative). Bottom row: ‖W_i‖ per feature,
    coloured by how much of it is shared with other features (Σ_{j≠i}(Ŵ_i·W_j)², black = none)."""
    W = _check_tensor(W, "W", 3, "[inst, d_hidden, n_feat]").detach().cpu()
    n_inst, _, n = W.shape
    if len(titles) != n_inst:
        raise ValueError(f"titles must have one entry per instance ({n_inst}), got {len(titles)}")
    gram = torch.einsum("imf,img->ifg", W, W)
    norms, interf = feature_norms(W), interference(W)
    share = (interf / (interf + norms**2).clamp_min(1e-8)).clamp(0, 1)
    fig = make_subplots(rows=2, cols=n_inst, subplot_titles=list(titles), vertical_spacing=0.08,
                        horizontal_spacing=0.015, row_heights=[0.55, 0.45])
    for k in range(n_inst):
        fig.add_trace(signed_heatmap(gram[k].numpy(), zmax=1, colorbar_title="WᵀW", showscale=k == 0,
                                     hovertemplate="WᵀW[%{y}, %{x}] = %{z:.2f}<extra></extra>",
                                     colorbar_len=0.5, colorbar_y=0.78), row=1, col=k + 1)
        fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=k + 1)
        fig.update_xaxes(showticklabels=False, row=1, col=k + 1)
        colors = [f"rgb({int(230 * s)},{int(40 * s)},{int(40 * s)})" for s in share[k].tolist()]
        fig.add_trace(go.Bar(y=list(range(n)), x=norms[k].numpy(), orientation="h", marker_color=colors,
                             showlegend=False, customdata=interf[k].numpy(),
                             hovertemplate="feature %{y}: ‖W‖ = %{x:.2f}, interference %{customdata:.2f}"
                                           "<extra></extra>"), row=2, col=k + 1)
        fig.update_yaxes(autorange="reversed", showticklabels=k == 0, row=2, col=k + 1)
        fig.update_xaxes(range=[0, 1.6], row=2, col=k + 1)
    return style(fig, height=height)


def plot_dimensionality(sparsity: Sequence[float], D: torch.Tensor, D_star: torch.Tensor,
                        height: int = 440) -> go.Figure:
    """Per-feature dimensionality D_i (dots) and D* (line) against 1/(1−S), with the fractions
    1, 3/4, 2/3, 1/2, 2/5, 3/8 drawn as guides. D: [level, n_feat], D_star: [level]."""
    levels = check_sparsity(sparsity)
    inv = [1.0 / max(1.0 - s, 1e-9) for s in levels]
    fig = go.Figure()
    for frac, label in ((1, "1"), (3 / 4, "3/4"), (2 / 3, "2/3"), (1 / 2, "1/2"), (2 / 5, "2/5"), (3 / 8, "3/8")):
        fig.add_hline(y=frac, line=dict(color="#bbbbbb", width=1, dash="dot"), annotation_text=label,
                      annotation_position="right")
    xs, ys = [], []
    for k, v in enumerate(inv):
        d = D[k].detach().cpu()
        keep = d > 0.05
        xs += [v * math.exp(0.04 * (j % 7 - 3)) for j in range(int(keep.sum()))]
        ys += d[keep].tolist()
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="feature D<sub>i</sub>",
                             marker=dict(size=4, color="#3366cc", opacity=0.35)))
    fig.add_trace(go.Scatter(x=inv, y=D_star.detach().cpu().tolist(), mode="lines+markers", name="D*",
                             line=dict(color="#111111", width=2)))
    fig.update_xaxes(type="log", title="1 / (1 − S)   (inverse feature density)")
    fig.update_yaxes(title="dimensions per feature", range=[0, 1.1])
    return style(fig, height=height)


def plot_neuron_weights(W: torch.Tensor, titles: Sequence[str], height: int = 300) -> go.Figure:
    """W per instance as a neurons × features heatmap (red positive, blue negative, the course's
    convention): a monosemantic neuron is a row with one strong cell. W: [inst, d_hidden, n_feat]."""
    W = _check_tensor(W, "W", 3, "[inst, d_hidden, n_feat]").detach().cpu()
    if len(titles) != W.shape[0]:
        raise ValueError(f"titles must have one entry per instance ({W.shape[0]}), got {len(titles)}")
    lim = max(float(W.abs().max()), 1e-6)
    fig = make_subplots(rows=1, cols=W.shape[0], subplot_titles=list(titles), horizontal_spacing=0.02)
    for k in range(W.shape[0]):
        fig.add_trace(signed_heatmap(W[k].numpy(), zmax=lim, colorbar_title="weight", showscale=k == 0,
                                     hovertemplate="neuron %{y}, feature %{x}: %{z:.2f}<extra></extra>"),
                      row=1, col=k + 1)
        fig.update_yaxes(autorange="reversed", showticklabels=k == 0, title="neuron" if k == 0 else None,
                         row=1, col=k + 1)
        fig.update_xaxes(title="feature", row=1, col=k + 1)
    return style(fig, height=height)


# ----------------------------------------------------------------------------------------------
# The superposition explorer


EXPLORER_SPARSITY = (0.0, 0.5, 0.8, 0.9, 0.95, 0.97, 0.99)


@lru_cache(maxsize=32)
def explorer_run(importance_decay: float, n_feat: int, d_hidden: int, steps: int = 1_500) -> Sweep:
    """One batched model per (decay, n, m) over :data:`EXPLORER_SPARSITY` (cached: moving the sparsity
    slider costs nothing, other sliders retrain: one to three seconds on a 2-core CPU)."""
    if d_hidden > n_feat:
        raise ValueError(f"d_hidden must not exceed n_feat (got m={d_hidden} > n={n_feat})")
    return sparsity_sweep(n_feat, d_hidden, EXPLORER_SPARSITY, importance_decay, n_seeds=1, steps=steps,
                          batch_size=256, lr=1e-2, seed=0)


def explorer_figure(sparsity: float = 0.0, importance_decay: float = 0.9, n_feat: int = 5,
                    d_hidden: int = 2) -> go.Figure:
    """The geometry a small batched model learns at one sparsity: feature directions (m = 2) or WᵀW
    (m > 2), and per-feature norms coloured by interference."""
    if sparsity not in EXPLORER_SPARSITY:
        raise ValueError(f"sparsity must be one of {EXPLORER_SPARSITY}, got {sparsity!r}")
    if d_hidden > n_feat:
        return style(go.Figure(), title=f"choose m ≤ n (here m = {d_hidden} > n = {n_feat})")
    run = explorer_run(float(importance_decay), int(n_feat), int(d_hidden))
    k = run.sparsity.index(sparsity)
    W = run.W[k]
    norms, interf = feature_norms(W[None])[0], interference(W[None])[0]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45],
                        subplot_titles=["feature directions W_i" if d_hidden == 2 else "WᵀW",
                                        "‖W_i‖ (red: shared with other features)"])
    if d_hidden == 2:
        xs, ys = [], []
        for i in range(n_feat):
            xs += [0.0, W[0, i].item(), None]
            ys += [0.0, W[1, i].item(), None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", showlegend=False, line=dict(width=2),
                                 hoverinfo="skip"), row=1, col=1)
        fig.update_xaxes(range=[-1.6, 1.6], row=1, col=1)
        fig.update_yaxes(range=[-1.6, 1.6], scaleanchor="x", row=1, col=1)
    else:
        fig.add_trace(signed_heatmap((W.T @ W).numpy(), zmax=1, colorbar_title="WᵀW",
                                     hovertemplate="WᵀW[%{y}, %{x}] = %{z:.2f}<extra></extra>",
                                     colorbar_x=0.5), row=1, col=1)
        fig.update_yaxes(autorange="reversed", row=1, col=1)
    share = (interf / (interf + norms**2).clamp_min(1e-8)).clamp(0, 1)
    fig.add_trace(go.Bar(y=list(range(n_feat)), x=norms.numpy(), orientation="h", showlegend=False,
                         marker_color=[f"rgb({int(230 * s)},{int(40 * s)},{int(40 * s)})" for s in share.tolist()]),
                  row=1, col=2)
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    fig.update_xaxes(range=[0, 1.6], row=1, col=2)
    title = (f"{_fmt_s(sparsity)}, importance {importance_decay}^i, n = {n_feat}, m = {d_hidden}: "
             f"{int((norms > REPRESENTED_NORM).sum())} features represented")
    return style(fig, title=title, height=420)
