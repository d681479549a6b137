"""The target models that chapter 6 decomposes, trained by the course itself.

* :class:`TMSTarget`: the toy model of superposition x̂ = ReLU(WᵀWx + b) (Elhage et al. 2022) with
  W: [d_hidden, n_feat]; its two "layers" are ``linear1`` = W (x → h) and ``linear2`` = Wᵀ (h → x̂),
  tied (``ties = {"linear2": "linear1"}``), as in the SPD authors' TMSModel. Trained with the
  batched trainer of chapter 2 (:func:`course_utils.tms.train_toy_model`).
* :class:`ResidualMLPTarget`: the "toy model of compressed computation" (Braun et al. 2025): a fixed
  random embedding W_E with unit-norm columns, one residual MLP block, unembedding W_U = W_Eᵀ,
  trained to output y = x + ReLU(x) for sparse x ∈ [−1, 1]^n; layers ``W_in`` and ``W_out``.

A target's forward pass :meth:`Target.run` takes one callable per decomposed layer (a → a Wᵀ by
default), which is how SPD and APD swap in masked subcomponents without copying the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from course_utils import tms
from course_utils._validate import check_float, check_int

LayerFn = Callable[[torch.Tensor], torch.Tensor]


class Target:
    """Interface of a decomposable target model (weights are fixed tensors, never trained here)."""

    ties: dict[str, str] = {}
    input_dim: int

    def weights(self) -> dict[str, torch.Tensor]:
        """The decomposed matrices, each [d_out, d_in], in forward order."""
        raise NotImplementedError

    @staticmethod
    def linear(W: torch.Tensor) -> LayerFn:
        return lambda a: a @ W.T

    def run(self, x: torch.Tensor, layers: Mapping[str, LayerFn] | None = None
            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(output, {layer: its input activations}) on x: [batch, input_dim]."""
        raise NotImplementedError

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """A training batch [batch, input_dim] from the target's data distribution."""
        raise NotImplementedError

    def zero_input_is_inert(self) -> bool:
        """True when x = 0 feeds zeros into every decomposed layer: then no mask can change the output
        on such an input and SPD may drop those rows from its reconstruction losses exactly."""
        _, pre = self.run(torch.zeros(1, self.input_dim))
        return all(bool((a == 0).all()) for a in pre.values())

    def _layer(self, layers: Mapping[str, LayerFn] | None, name: str, W: torch.Tensor) -> LayerFn:
        return layers[name] if layers is not None and name in layers else self.linear(W)


def _check_matrix(W: object, name: str, shape: tuple[int, ...] | None = None, ndim: int = 2) -> torch.Tensor:
    if not isinstance(W, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(W).__name__}")
    if W.ndim != ndim or (shape is not None and tuple(W.shape) != shape):
        want = list(shape) if shape is not None else f"{ndim} dimensions"
        raise ValueError(f"{name} must have shape {want}, got {list(W.shape)}")
    if not W.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {W.dtype}")
    return W.detach()


# ----------------------------------------------------------------------------------------------
# Toy model of superposition


@dataclass(eq=False)
class TMSTarget(Target):
    """x̂ = ReLU(Wᵀ W x + b) with W: [d_hidden, n_feat], b: [n_feat]; features are U[0, 1) with
    probability ``feature_probability`` each, else 0 (the SPD paper's p = 0.05)."""

    W: torch.Tensor
    b: torch.Tensor
    feature_probability: float = 0.05

    def __post_init__(self) -> None:
        self.W = _check_matrix(self.W, "W ([d_hidden, n_feat])")
        d_hidden, n_feat = self.W.shape
        if d_hidden >= n_feat:
            raise ValueError(f"W must be [d_hidden, n_feat] with d_hidden < n_feat (a model in superposition), "
                             f"got {list(self.W.shape)}")
        self.b = _check_matrix(self.b, f"b ([n_feat] = [{n_feat}])", (n_feat,), ndim=1)
        self.feature_probability = check_float(self.feature_probability, "feature_probability", 1e-9, 1.0)
        self.ties = {"linear2": "linear1"}
        self.input_dim = n_feat

    @property
    def n_feat(self) -> int:
        return self.W.shape[1]

    @property
    def d_hidden(self) -> int:
        return self.W.shape[0]

    def weights(self) -> dict[str, torch.Tensor]:
        return {"linear1": self.W, "linear2": self.W.T}

    def run(self, x: torch.Tensor, layers: Mapping[str, LayerFn] | None = None
            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        h = self._layer(layers, "linear1", self.W)(x)  # [batch, d_hidden]
        out = torch.relu(self._layer(layers, "linear2", self.W.T)(h) + self.b)
        return out, {"linear1": x, "linear2": h}

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(batch_size, self.n_feat, generator=generator)
        p = self.feature_probability
        return torch.where(u < p, u / p, torch.zeros_like(u)).to(self.W.dtype)


def train_tms_target(n_feat: int = 5, d_hidden: int = 2, feature_probability: float = 0.05, *,
                     steps: int = 5_000, batch_size: int = 1024, lr: float = 5e-3, n_candidates: int = 4,
                     seed: int = 0) -> TMSTarget:
    """Train ``n_candidates`` toy models at once (chapter 2's batched trainer, AdamW, weight decay
    0.01, cosine-decayed lr) and keep the one with the lowest loss among those representing every
    feature (norm > 0.5). The SPD paper trains its TMS targets with AdamW at lr 5e-3 for 10k steps."""
    for v, name in ((n_feat, "n_feat"), (d_hidden, "d_hidden"), (steps, "steps"), (n_candidates, "n_candidates")):
        check_int(v, name)
    if d_hidden >= n_feat:
        raise ValueError(f"d_hidden must be smaller than n_feat for superposition, got {d_hidden} >= {n_feat}")
    check_float(feature_probability, "feature_probability", 1e-9, 1.0)
    p = torch.full((n_candidates, n_feat), float(feature_probability))
    res = tms.train_toy_model(n_feat, d_hidden, p, torch.ones(n_feat), steps=steps, batch_size=batch_size,
                              lr=lr, weight_decay=0.01, seed=seed)
    full = (tms.feature_norms(res.W) > tms.REPRESENTED_NORM).all(-1)
    loss = torch.where(full, res.loss, torch.full_like(res.loss, math.inf))
    best = int(loss.argmin()) if full.any() else int(res.loss.argmin())
    return TMSTarget(res.W[best].clone(), res.b[best].clone(), float(feature_probability))


# ----------------------------------------------------------------------------------------------
# Residual MLP ("compressed computation")


@dataclass(eq=False)
class ResidualMLPTarget(Target):
    """r = W_E x; ŷ = W_Eᵀ (r + W_out ReLU(W_in r + b_in) + b_out). W_E: [d_embed, n_feat] (fixed,
    unit-norm columns), W_in: [d_mlp, d_embed], b_in: [d_mlp], W_out: [d_embed, d_mlp],
    b_out: [d_embed]. Inputs: each x_i ~ U[−1, 1] with probability p, else 0."""

    W_E: torch.Tensor
    W_in: torch.Tensor
    b_in: torch.Tensor
    W_out: torch.Tensor
    b_out: torch.Tensor
    feature_probability: float = 0.01

    def __post_init__(self) -> None:
        self.W_E = _check_matrix(self.W_E, "W_E ([d_embed, n_feat])")
        d_embed, n_feat = self.W_E.shape
        self.W_in = _check_matrix(self.W_in, "W_in ([d_mlp, d_embed])")
        d_mlp = self.W_in.shape[0]
        self.W_in = _check_matrix(self.W_in, "W_in ([d_mlp, d_embed])", (d_mlp, d_embed))
        self.b_in = _check_matrix(self.b_in, "b_in ([d_mlp])", (d_mlp,), ndim=1)
        self.W_out = _check_matrix(self.W_out, "W_out ([d_embed, d_mlp])", (d_embed, d_mlp))
        self.b_out = _check_matrix(self.b_out, "b_out ([d_embed])", (d_embed,), ndim=1)
        self.feature_probability = check_float(self.feature_probability, "feature_probability", 1e-9, 1.0)
        self.ties = {}
        self.input_dim = n_feat

    @property
    def n_feat(self) -> int:
        return self.W_E.shape[1]

    @property
    def d_mlp(self) -> int:
        return self.W_in.shape[0]

    def weights(self) -> dict[str, torch.Tensor]:
        return {"W_in": self.W_in, "W_out": self.W_out}

    def run(self, x: torch.Tensor, layers: Mapping[str, LayerFn] | None = None
            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r = x @ self.W_E.T  # [batch, d_embed]
        a = torch.relu(self._layer(layers, "W_in", self.W_in)(r) + self.b_in)  # [batch, d_mlp]
        r2 = r + self._layer(layers, "W_out", self.W_out)(a) + self.b_out
        return r2 @ self.W_E, {"W_in": r, "W_out": a}

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        return _resid_sample(batch_size, self.n_feat, self.feature_probability, generator).to(self.W_E.dtype)

    @staticmethod
    def labels(x: torch.Tensor) -> torch.Tensor:
        """The task: y = x + ReLU(x)."""
        return x + torch.relu(x)

    def loss(self, n: int = 20_000, seed: int = 10_000) -> float:
        """MSE to the labels on n fresh inputs (averaged over examples and features)."""
        x = self.sample(n, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return float(((self.run(x)[0] - self.labels(x)) ** 2).mean())

    def naive_loss(self) -> float:
        """The loss of d_mlp monosemantic neurons computing d_mlp of the ReLUs exactly (and a clean
        residual): the other features miss ReLU(x_i), E[ReLU(x)²] = 1/6 for x ~ U[−1, 1], so
        (n_feat − d_mlp)/n_feat · p/6."""
        n, m, p = self.n_feat, self.d_mlp, self.feature_probability
        return max(n - m, 0) / n * p / 6


def _resid_sample(batch_size: int, n_feat: int, p: float, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(batch_size, n_feat, generator=generator)
    v = torch.rand(batch_size, n_feat, generator=generator) * 2 - 1
    return torch.where(u < p, v, torch.zeros_like(v))


def train_residual_mlp(n_feat: int = 100, d_embed: int = 1000, d_mlp: int = 50, feature_probability: float = 0.01,
                       *, steps: int = 10_000, batch_size: int = 2048, lr: float = 3e-3,
                       embedding: str = "random", seed: int = 0) -> ResidualMLPTarget:
    """Train the residual MLP on y = x + ReLU(x) (MSE), AdamW (weight decay 0.01) with cosine-decayed
    lr 3e-3 and batch 2048 as in the SPD paper. W_E is fixed: ``"random"`` (the paper: random with
    unit-norm columns, so W_Eᵀ W_E = I + noise mixes the features) or ``"orthogonal"`` (orthonormal
    columns, W_Eᵀ W_E = I exactly: no mixing; needs d_embed ≥ n_feat)."""
    for v, name in ((n_feat, "n_feat"), (d_embed, "d_embed"), (d_mlp, "d_mlp"), (steps, "steps"),
                    (batch_size, "batch_size")):
        check_int(v, name)
    check_float(feature_probability, "feature_probability", 1e-9, 1.0)
    if embedding not in ("random", "orthogonal"):
        raise ValueError(f"embedding must be 'random' or 'orthogonal', got {embedding!r}")
    if embedding == "orthogonal" and d_embed < n_feat:
        raise ValueError(f"an orthogonal embedding needs d_embed >= n_feat, got {d_embed} < {n_feat}")
    gen = torch.Generator().manual_seed(seed)
    W_E = torch.randn(d_embed, n_feat, generator=gen)
    W_E = torch.linalg.qr(W_E).Q if embedding == "orthogonal" else W_E / W_E.norm(dim=0, keepdim=True)
    W_in = torch.nn.Parameter(torch.randn(d_mlp, d_embed, generator=gen) / math.sqrt(d_embed))
    W_out = torch.nn.Parameter(torch.randn(d_embed, d_mlp, generator=gen) / math.sqrt(d_mlp))
    b_in = torch.nn.Parameter(torch.zeros(d_mlp))
    b_out = torch.nn.Parameter(torch.zeros(d_embed))
    params = [W_in, b_in, W_out, b_out]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
    for _ in range(steps):
        x = _resid_sample(batch_size, n_feat, feature_probability, gen)
        r = x @ W_E.T
        y = (r + torch.relu(r @ W_in.T + b_in) @ W_out.T + b_out) @ W_E
        loss = ((y - ResidualMLPTarget.labels(x)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return ResidualMLPTarget(W_E, W_in.detach(), b_in.detach(), W_out.detach(), b_out.detach(),
                             float(feature_probability))
