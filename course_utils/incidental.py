"""Incidental polysemanticity (Lecomte et al. 2023): polysemantic neurons with more than enough room.

The model is the tied-weight toy autoencoder ``y = ReLU(W Wᵀ x)`` with ``W: [n, m]``, ``m >= n``
(``n`` features, ``m`` neurons: ample capacity). Each training step feeds all ``n`` basis vectors
(features never co-occur). The loss is the summed squared error plus ``λ‖W‖₁``; a second variant
replaces the L1 penalty by noise added to the hidden layer.

Everything is batched over runs: ``W: [run, n, m]`` holds many seeds (and, padded with a mask, many
``m`` values) that train together in one loop. Chapter 2's ``tms`` module has its own batched
trainer for ``ReLU(WᵀWx + b)``; this one is separate on purpose (tied weights, no bias, full basis
batch, closed-form gradient) so that the two chapters can change independently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import plotly.graph_objects as go
import torch

from course_utils._validate import check_int, check_tensor
from course_utils.plotting import COLORWAY, frames_figure, signed_heatmap, style

NOISE_KINDS = ("none", "bernoulli", "uniform", "gaussian", "laplace")
#: excess kurtosis E[ξ⁴]/σ⁴ − 3 of each noise distribution (0 for none)
EXCESS_KURTOSIS = {"none": 0.0, "bernoulli": -2.0, "uniform": -1.2, "gaussian": 0.0, "laplace": 3.0}

# ------------------------------------------------------------------------------------------------
# Argument checks


def check_sizes(n: int, m: int) -> None:
    """Raise unless ``n >= 1`` features and ``m >= n`` neurons (the regime of this chapter)."""
    check_int(n, "n", 1)
    check_int(m, "m", 1)
    if m < n:
        raise ValueError(f"m must be >= n (this chapter studies ample capacity: at least one neuron per "
                         f"feature), got n={n}, m={m}; for m < n see chapter 2 (superposition)")


def _check_lam(lam: float) -> float:
    if not isinstance(lam, (int, float)) or isinstance(lam, bool):
        raise TypeError(f"lam must be a number, got {type(lam).__name__}")
    if lam < 0 or not math.isfinite(lam):
        raise ValueError(f"lam (the L1 coefficient λ) must be a finite number >= 0, got {lam}")
    return float(lam)


def _check_W(W: object) -> None:
    check_tensor(W, "W", 3, "[run, n, m]")


# ------------------------------------------------------------------------------------------------
# Model


def init_weights(n: int, m: int, n_seeds: int, seed: int = 0, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """``W: [seed, n, m]`` with entries N(0, 1/m), so every feature's row starts with norm ≈ 1.

    Run ``s`` has its own generator (seeded from ``seed``, ``m`` and ``s``), so a run's
    initialisation does not depend on how many runs share the batch.
    """
    check_sizes(n, m)
    check_int(n_seeds, "n_seeds", 1)
    check_int(seed, "seed", 0)
    rows = []
    for s in range(n_seeds):
        g = torch.Generator().manual_seed((seed * 1_000_003 + m) * 10_007 + s)
        rows.append(torch.randn(n, m, generator=g, dtype=torch.float64) / math.sqrt(m))
    return torch.stack(rows).to(dtype=dtype, device=device)


def forward(W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y = ReLU(W Wᵀ x)`` for a batch of inputs: ``W: [run, n, m]``, ``x: [run, batch, n]`` (or
    ``[batch, n]``, shared by all runs) -> ``y: [run, batch, n]``."""
    _check_W(W)
    if x.shape[-1] != W.shape[1]:
        raise ValueError(f"x has {x.shape[-1]} features but W has n={W.shape[1]}")
    h = x @ W  # hidden layer Wᵀx: [run, batch, m]
    return torch.relu(h @ W.transpose(1, 2))


def loss(W: torch.Tensor, lam: float) -> torch.Tensor:
    """L(W) = Σᵢ ‖eᵢ − ReLU(W Wᵀ eᵢ)‖² + λ‖W‖₁ per run: ``W: [run, n, m] -> [run]``.

    Feeding every basis vector eᵢ at once makes the outputs the matrix ReLU(W Wᵀ).
    """
    _check_W(W)
    lam = _check_lam(lam)
    eye = torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
    Y = torch.relu(W @ W.transpose(1, 2))
    return ((eye - Y) ** 2).sum((1, 2)) + lam * W.abs().sum((1, 2))


def gradient(W: torch.Tensor, lam: float, xi: torch.Tensor | None = None) -> torch.Tensor:
    """Closed-form ∂L/∂W for ``W: [run, n, m]`` (used by :func:`train`; equals autograd's).

    With hidden noise ``xi: [run, 1 or n, m]`` the hidden vector for input eᵢ is ``wᵢ + ξ`` and the
    pre-activations are P = (W + Ξ) Wᵀ; with D = 2(ReLU(P) − I)·1[P > 0] the gradient of the squared
    error is Dᵀ(W + Ξ) + D W. Without noise D is symmetric and this is 2 D W.
    """
    eye = torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
    H = W if xi is None else W + xi
    P = H @ W.transpose(1, 2)
    D = 2.0 * (torch.relu(P) - eye) * (P > 0)
    g = 2.0 * (D @ W) if xi is None else D.transpose(1, 2) @ H + D @ W
    if lam:
        g = g + lam * torch.sign(W)
    return g


def sample_noise(kind: str, shape: Sequence[int], sigma: float, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Zero-mean noise with standard deviation ``sigma``: ``bernoulli`` (±σ), ``uniform``,
    ``gaussian`` or ``laplace`` (excess kurtosis −2, −1.2, 0, +3)."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    shape = tuple(shape)
    if kind == "none":
        return torch.zeros(shape, dtype=dtype)
    if kind == "bernoulli":
        return sigma * (2.0 * torch.randint(0, 2, shape, generator=generator) - 1.0).to(dtype)
    if kind == "uniform":
        return sigma * math.sqrt(3.0) * (2.0 * torch.rand(shape, generator=generator, dtype=dtype) - 1.0)
    if kind == "gaussian":
        return sigma * torch.randn(shape, generator=generator, dtype=dtype)
    u = torch.rand(shape, generator=generator, dtype=dtype).clamp(1e-7, 1 - 1e-7) - 0.5  # Laplace, var 2b²
    return -(sigma / math.sqrt(2.0)) * torch.sign(u) * torch.log1p(-2.0 * u.abs())


# ------------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainResult:
    """``W: [run, n, m]`` after training; ``snapshots: [T, run, n, m]`` at ``snapshot_steps``."""

    W: torch.Tensor
    steps_run: int
    snapshots: torch.Tensor | None = None
    snapshot_steps: list[int] = field(default_factory=list)


def train(W0: torch.Tensor, lam: float, steps: int, lr: float, optimizer: str = "adam",
          noise: str | Sequence[str] = "none", sigma: float = 0.0, seed: int = 0,
          mask: torch.Tensor | None = None, record_every: int | None = None,
          stop_when_converged: bool = False, check_every: int = 100) -> TrainResult:
    """Train every run of ``W0: [run, n, m]`` at once on all basis vectors (full batch).

    ``optimizer``: ``"adam"`` (the paper's choice; β = 0.9, 0.999) or ``"gd"`` (plain gradient
    descent, the dynamics the per-feature ODE describes). ``noise`` adds one fresh noise vector per
    step and run to the hidden layer (shared by the n inputs, as in the authors' code); pass one kind
    per run to compare distributions in a single batch. ``mask: [run, 1, m]`` freezes padded neurons
    (to batch several m values). With ``stop_when_converged`` training ends at the first check where
    every run has converged (:func:`run_converged`).
    """
    _check_W(W0)
    lam = _check_lam(lam)
    steps = check_int(steps, "steps", 1)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if optimizer not in ("adam", "gd"):
        raise ValueError(f"optimizer must be 'adam' or 'gd', got {optimizer!r}")
    R, n, m = W0.shape
    kinds = [noise] * R if isinstance(noise, str) else list(noise)
    if len(kinds) != R or any(k not in NOISE_KINDS for k in kinds):
        raise ValueError(f"noise must be one of {NOISE_KINDS} or a list of them, one per run ({R})")
    noisy = any(k != "none" for k in kinds) and sigma > 0
    chunk = 500
    groups = {k: torch.tensor([i for i, kk in enumerate(kinds) if kk == k]) for k in dict.fromkeys(kinds) if k != "none"}
    gen = torch.Generator().manual_seed(seed)
    W = W0.detach().clone()
    if mask is not None:
        W = W * mask
    mom = torch.zeros_like(W)
    vel = torch.zeros_like(W)
    b1, b2, eps = 0.9, 0.999, 1e-8
    snaps, snap_steps = [], []
    if record_every:
        snaps.append(W.clone())
        snap_steps.append(0)
    t = 0
    bank = None
    for t in range(1, steps + 1):
        xi = None
        if noisy:
            if (t - 1) % chunk == 0:  # draw the noise for the next `chunk` steps at once (fast, same stream)
                bank = torch.zeros(chunk, R, 1, m, dtype=W.dtype)
                for k, idx in groups.items():
                    bank[:, idx] = sample_noise(k, (chunk, len(idx), 1, m), sigma, gen, W.dtype)
                bank = bank.to(W.device)
            xi = bank[(t - 1) % chunk]
        g = gradient(W, lam, xi)
        if mask is not None:
            g = g * mask
        if optimizer == "gd":
            W -= lr * g
        else:
            mom.lerp_(g, 1 - b1)
            vel.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (vel / (1 - b2**t)).sqrt_().add_(eps)
            W.addcdiv_(mom, denom, value=-lr / (1 - b1**t))
        if record_every and t % record_every == 0:
            snaps.append(W.clone())
            snap_steps.append(t)
        if stop_when_converged and t % check_every == 0 and bool(run_converged(W).all()):
            break
    return TrainResult(W, t, torch.stack(snaps) if snaps else None, snap_steps)


@dataclass
class GridResult:
    """Trained weights per m value (``W[m]: [seed, n, m]``) and the steps each group needed."""

    n: int
    ms: list[int]
    W: dict[int, torch.Tensor]
    W0: dict[int, torch.Tensor]
    steps_run: dict[int, int]

    def counts(self, lo: float = 0.8, hi: float = 1.2) -> torch.Tensor:
        """Polysemantic neurons per run: ``[len(ms), seed]``."""
        return torch.stack([count_polysemantic(self.W[m], lo, hi) for m in self.ms])

    def converged(self) -> torch.Tensor:
        """``[len(ms), seed]``: did each run converge?"""
        return torch.stack([run_converged(self.W[m]) for m in self.ms])


def train_grid(n: int, ms: Sequence[int], n_seeds: int, lam: float = 1e-3, lr: float = 1e-2,
               max_steps: int = 8000, seed: int = 0, pad: bool = False,
               device: torch.device | str | None = None) -> GridResult:
    """Train all seeds for every m. ``pad=False``: one batched run per m (all seeds at once, each
    group stops when all its runs converged); ``pad=True``: every (m, seed) in one batch, padded to
    the largest m with frozen zero neurons. Both give the same weights for the same seeds."""
    ms = [int(m) for m in ms]
    if not ms:
        raise ValueError("ms must hold at least one m value")
    for m in ms:
        check_sizes(n, m)
    check_int(n_seeds, "n_seeds", 1)
    max_steps = check_int(max_steps, "max_steps", 1)
    W0 = {m: init_weights(n, m, n_seeds, seed, device=device) for m in ms}
    out: dict[int, torch.Tensor] = {}
    steps: dict[int, int] = {}
    if not pad:
        for m in ms:
            res = train(W0[m], lam, max_steps, lr, stop_when_converged=True)
            out[m], steps[m] = res.W, res.steps_run
    else:
        M = max(ms)
        Wp = torch.zeros(len(ms) * n_seeds, n, M, device=device)
        mask = torch.zeros(len(ms) * n_seeds, 1, M, device=device)
        for b, m in enumerate(ms):
            Wp[b * n_seeds:(b + 1) * n_seeds, :, :m] = W0[m]
            mask[b * n_seeds:(b + 1) * n_seeds, :, :m] = 1.0
        res = train(Wp, lam, max_steps, lr, mask=mask, stop_when_converged=True)
        for b, m in enumerate(ms):
            out[m], steps[m] = res.W[b * n_seeds:(b + 1) * n_seeds, :, :m].clone(), res.steps_run
    return GridResult(n, ms, out, W0, steps)


# ------------------------------------------------------------------------------------------------
# Measuring polysemanticity


def strong_weights(W: torch.Tensor, lo: float = 0.8, hi: float = 1.2) -> torch.Tensor:
    """``[run, n, m]`` bool: |w| in [lo, hi], i.e. the neuron carries the feature at about unit scale."""
    _check_W(W)
    if not 0 <= lo < hi:
        raise ValueError(f"need 0 <= lo < hi, got lo={lo}, hi={hi}")
    return (W.abs() >= lo) & (W.abs() <= hi)


def count_polysemantic(W: torch.Tensor, lo: float = 0.8, hi: float = 1.2) -> torch.Tensor:
    """Neurons carrying at least two features strongly (|w| ∈ [lo, hi]): ``W: [run, n, m] -> [run]``."""
    return (strong_weights(W, lo, hi).sum(1) >= 2).sum(1)


def winners(W: torch.Tensor) -> torch.Tensor:
    """Each feature's largest-|w| neuron: ``W: [run, n, m] -> [run, n]`` indices."""
    _check_W(W)
    return W.abs().argmax(-1)


def count_winner_collisions(W: torch.Tensor) -> torch.Tensor:
    """Neurons that are the largest-|w| neuron of at least two features: ``[run, n, m] -> [run]``.

    Needs no threshold, so it is defined before convergence too; after convergence it equals
    :func:`count_polysemantic`.
    """
    R, n, m = W.shape
    hits = torch.zeros(R, m, dtype=torch.long, device=W.device)
    hits.scatter_add_(1, winners(W), torch.ones(R, n, dtype=torch.long, device=W.device))
    return (hits >= 2).sum(1)


def feature_converged(W: torch.Tensor, lo: float = 0.8, hi: float = 1.2, rest: float = 0.2) -> torch.Tensor:
    """``[run, n]``: the feature has exactly one strong weight and all its other |w| < ``rest``."""
    strong = strong_weights(W, lo, hi)
    others = W.abs().masked_fill(strong, 0.0).amax(-1)
    return (strong.sum(-1) == 1) & (others < rest)


def run_converged(W: torch.Tensor) -> torch.Tensor:
    """``[run]``: every feature has converged (count polysemantic neurons only then)."""
    return feature_converged(W).all(-1)


def opposite_sign_fraction(W: torch.Tensor) -> float:
    """Among polysemantic neurons (all runs), the fraction whose strong weights have both signs."""
    strong = strong_weights(W)
    poly = strong.sum(1) >= 2  # [run, m]
    if not bool(poly.any()):
        return float("nan")
    pos = ((W > 0) & strong).any(1)
    neg = ((W < 0) & strong).any(1)
    return float(((pos & neg) & poly).sum() / poly.sum())


def sparsity(W: torch.Tensor) -> torch.Tensor:
    """Σₖ w⁴ / (Σₖ w²)² per feature, ``[run, n, m] -> [run, n]``: 1 when a feature uses one neuron,
    1/m when it is spread evenly (the inverse participation ratio; the authors track Σₖ w⁴)."""
    _check_W(W)
    w2 = W**2
    return (w2**2).sum(-1) / w2.sum(-1).clamp_min(1e-12) ** 2


# ------------------------------------------------------------------------------------------------
# Per-feature dynamics


def ode_step(w: torch.Tensor, lam: float, dt: float) -> torch.Tensor:
    """One step of dw/dt = (1 − ‖w‖²) w − λ sign(w) for ``w: [..., m]`` (norm over the last axis).

    Explicit Euler for the smooth part, then the exact flow of the L1 part (soft-thresholding by λ·dt),
    which sets a weight to 0 instead of making it flip sign and chatter.
    """
    w = w + dt * (1.0 - (w * w).sum(-1, keepdim=True)) * w
    return torch.sign(w) * torch.clamp(w.abs() - lam * dt, min=0.0)


def integrate_ode(w0: torch.Tensor, lam: float, t_max: float, dt: float = 0.05,
                  record_every: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Integrate the per-feature ODE from ``w0: [..., m]`` up to time ``t_max``.

    Returns the final ``w`` and, with ``record_every``, the trajectory ``[T, ..., m]`` (every
    ``record_every`` steps, starting with ``w0``). Plain gradient descent with learning rate η on the
    model's loss follows this ODE with t = 4η·step and λ_ode = λ/4 while interference is negligible.
    """
    lam = _check_lam(lam)
    if not dt > 0 or not t_max > 0:
        raise ValueError(f"dt and t_max must be > 0, got dt={dt}, t_max={t_max}")
    w = w0.clone()
    traj = [w.clone()] if record_every else None
    for k in range(1, int(round(t_max / dt)) + 1):
        w = ode_step(w, lam, dt)
        if record_every and k % record_every == 0:
            traj.append(w.clone())
    return w, (torch.stack(traj) if traj is not None else None)


def winner_agreement(n_values: Sequence[int], m: int, n_seeds: int = 8, lam: float = 0.02, lr: float = 0.1,
                     steps: int = 2000, seed: int = 0) -> dict[str, dict[int, float]]:
    """For each n: the fraction of features whose trained winner neuron is the one the ODE predicts
    (the initially largest |w|), under gradient descent and under Adam (lr 1e-2, λ 1e-3)."""
    out: dict[str, dict[int, float]] = {"gd": {}, "adam": {}, "ode_vs_init": {}}
    for n in n_values:
        W0 = init_weights(n, m, n_seeds, seed)
        w_ode, _ = integrate_ode(W0, lam / 4, 4 * lr * steps, dt=0.2)
        w_gd = train(W0, lam, steps, lr, optimizer="gd").W
        w_adam = train(W0, 1e-3, steps, 1e-2, optimizer="adam").W
        ode_win = winners(w_ode)
        out["gd"][n] = float((winners(w_gd) == ode_win).float().mean())
        out["adam"][n] = float((winners(w_adam) == ode_win).float().mean())
        out["ode_vs_init"][n] = float((winners(W0) == ode_win).float().mean())
    return out


# ------------------------------------------------------------------------------------------------
# Counting collisions


def law(n: int, m: int) -> float:
    """The authors' fitted reference line: n² / (4m) polysemantic neurons."""
    check_sizes(n, m)
    return n * n / (4.0 * m)


def birthday_pairs(n: int, m: int) -> float:
    """Expected pairs of features whose winners coincide, C(n, 2)/m ≈ n²/(2m)."""
    check_sizes(n, m)
    return n * (n - 1) / (2.0 * m)


def p_any_collision(n: int, m: int) -> float:
    """The birthday probability that at least two of n uniformly placed winners share a neuron:
    1 − Π_{k<n} (1 − k/m)."""
    check_sizes(n, m)
    return 1.0 - float(np.prod(1.0 - np.arange(n) / m))


def simulate_shared_initial_winner(m: int, trials: int, seed: int = 0) -> float:
    """Monte Carlo of the pair collision probability at initialisation: draw two N(0, 1/m) feature rows
    ``trials`` times and return how often their largest-|w| neurons coincide (≈ 1/m by symmetry)."""
    check_sizes(2, m)
    check_int(trials, "trials", 1)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(trials, 2, m, generator=g) / math.sqrt(m)
    win = w.abs().argmax(-1)
    return float((win[:, 0] == win[:, 1]).double().mean())


def expected_polysemantic(n: int, m: int) -> float:
    """Expected neurons that are the winner of ≥ 2 features when each of n features picks one of m
    neurons uniformly and independently: m·[1 − (1 − 1/m)ⁿ − (n/m)(1 − 1/m)ⁿ⁻¹]."""
    check_sizes(n, m)
    q = 1.0 - 1.0 / m
    return m * (1.0 - q**n - (n / m) * q ** (n - 1))


def simulate_polysemantic(n: int, m: int, trials: int, seed: int = 0) -> float:
    """Monte Carlo estimate of :func:`expected_polysemantic`: mean over ``trials`` draws."""
    check_sizes(n, m)
    check_int(trials, "trials", 1)
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, m, (trials, n), generator=g)
    hits = torch.zeros(trials, m, dtype=torch.long).scatter_add_(1, picks, torch.ones_like(picks))
    return float((hits >= 2).sum(1).double().mean())


def fit_loglog_slope(ms: Sequence[int], counts: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of log(count) = a + b·log(m); returns (b, a). Counts must be positive."""
    x = np.log(np.asarray(ms, dtype=float))
    y = np.asarray(counts, dtype=float)
    if np.any(y <= 0):
        raise ValueError("counts must be positive to fit a log-log slope")
    b, a = np.polyfit(x, np.log(y), 1)
    return float(b), float(a)


# ------------------------------------------------------------------------------------------------
# Noise instead of L1


def noise_experiment(kinds: Sequence[str] = ("bernoulli", "uniform", "gaussian", "laplace"), n: int = 8,
                     m: int = 16, n_seeds: int = 5, sigma: float = 0.15, lr: float = 0.02,
                     steps: int = 20_000, record_every: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Train with hidden-layer noise and no L1, plain gradient descent, every kind in one batch.

    Returns ``{"steps": [T], kind: [T] mean sparsity (Σw⁴/(Σw²)²)}``; the batch shares the
    initialisation across kinds so only the noise differs.
    """
    kinds = list(kinds)
    W0 = init_weights(n, m, n_seeds, seed).repeat(len(kinds), 1, 1)
    per_run = [k for k in kinds for _ in range(n_seeds)]
    res = train(W0, 0.0, steps, lr, optimizer="gd", noise=per_run, sigma=sigma, seed=seed, record_every=record_every)
    sp = sparsity(res.snapshots.flatten(0, 1)).reshape(len(res.snapshot_steps), len(kinds), n_seeds, n)
    out = {"steps": np.asarray(res.snapshot_steps)}
    for i, k in enumerate(kinds):
        out[k] = sp[:, i].mean((1, 2)).numpy()
    out["W_final"] = res.W.reshape(len(kinds), n_seeds, n, m).numpy()
    return out


# ------------------------------------------------------------------------------------------------
# Figures (pure functions)


def plot_loglog(ms: Sequence[int], counts: np.ndarray, n: int, slope: float | None = None) -> go.Figure:
    """Polysemantic neurons against m on log-log axes: every run, the mean, n²/(4m), C(n,2)/m and
    the exact birthday expectation. ``counts: [len(ms), seed]``."""
    ms_a = np.asarray(ms, dtype=float)
    counts = np.asarray(counts, dtype=float)
    grid = np.geomspace(ms_a.min(), ms_a.max(), 50)
    fig = go.Figure()
    xs = np.repeat(ms_a, counts.shape[1]) * np.exp(np.tile(np.linspace(-0.06, 0.06, counts.shape[1]), len(ms_a)))
    fig.add_scatter(x=xs, y=np.maximum(counts.ravel(), 0.3), mode="markers", name="one run (0 drawn at 0.3)",
                    marker=dict(size=5, opacity=0.35, color=COLORWAY[0]))
    fig.add_scatter(x=ms_a, y=counts.mean(1), mode="markers+lines", name="mean over seeds",
                    marker=dict(size=10, color=COLORWAY[0]))
    fig.add_scatter(x=grid, y=n * n / (4 * grid), mode="lines", name="n²/(4m) (authors' line)",
                    line=dict(color=COLORWAY[1]))
    fig.add_scatter(x=grid, y=n * (n - 1) / (2 * grid), mode="lines", name="C(n,2)/m (birthday pairs)",
                    line=dict(color=COLORWAY[2], dash="dash"))
    fig.add_scatter(x=grid, y=[expected_polysemantic(n, int(round(g))) for g in grid], mode="lines",
                    name="birthday, exact (≥2 winners)", line=dict(color=COLORWAY[3], dash="dot"))
    title = f"Polysemantic neurons vs m (n = {n})" + (f": fitted slope {slope:.2f}" if slope is not None else "")
    fig.update_xaxes(type="log", title="m (neurons)")
    fig.update_yaxes(type="log", title="polysemantic neurons")
    return style(fig, title)


def plot_ode_vs_training(t: np.ndarray, ode: np.ndarray, trained: np.ndarray, k: int = 4) -> go.Figure:
    """Trajectories of the ``k`` initially largest weights of one feature: ODE (lines) against
    gradient-descent training (markers). ``ode, trained: [T, m]`` on the same time grid ``t``."""
    order = np.argsort(-np.abs(ode[0]))[:k]
    fig = go.Figure()
    for i, j in enumerate(order):
        c = COLORWAY[i % len(COLORWAY)]
        fig.add_scatter(x=t, y=ode[:, j], mode="lines", line=dict(color=c), name=f"neuron {j}: ODE")
        fig.add_scatter(x=t, y=trained[:, j], mode="markers", marker=dict(color=c, size=5, symbol="circle-open"),
                        name=f"neuron {j}: training")
    fig.update_xaxes(title="time t = 4η·step")
    fig.update_yaxes(title="weight w_k")
    return style(fig, "One feature: the ODE against gradient descent (its 4 largest initial weights)")


def plot_noise_sparsity(result: dict[str, np.ndarray]) -> go.Figure:
    """Mean Σw⁴/(Σw²)² over training for each noise distribution (from :func:`noise_experiment`)."""
    fig = go.Figure()
    for i, k in enumerate(k for k in result if k not in ("steps", "W_final")):
        fig.add_scatter(x=result["steps"], y=result[k], mode="lines+markers", line=dict(color=COLORWAY[i]),
                        name=f"{k} (excess kurtosis {EXCESS_KURTOSIS[k]:+g})")
    fig.update_xaxes(title="gradient-descent step")
    fig.update_yaxes(title="sparsity Σw⁴/(Σw²)²  (1 = one neuron)", range=[0, 1.05])
    return style(fig, "Hidden-layer noise, no L1: which noise makes features sparse?")


def plot_weights(W: np.ndarray | torch.Tensor, title: str = "W (features × neurons)") -> go.Figure:
    """Heatmap of one run's ``W: [n, m]``, red positive, blue negative."""
    W = np.asarray(W)
    fig = go.Figure(signed_heatmap(W, zmax=1.2, colorbar_title="weight",
                                   hovertemplate="feature %{y}, neuron %{x}: %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title="neuron")
    fig.update_yaxes(title="feature", autorange="reversed")
    return style(fig, title, height=360)


@lru_cache(maxsize=32)
def explorer_run(m_over_n: int = 2, lam: float = 1e-2, noise_sigma: float = 0.0, n: int = 16,
                 steps: int = 3000, every: int = 200, seed: int = 0) -> TrainResult:
    """The small model behind the explorer (cached): n = 16 features, Adam lr 1e-2, Bernoulli
    hidden noise of size ``noise_sigma`` on top of the L1 penalty."""
    W0 = init_weights(n, n * m_over_n, 1, seed)
    return train(W0, lam, steps, 1e-2, noise="bernoulli" if noise_sigma > 0 else "none", sigma=noise_sigma,
                 seed=seed, record_every=every)


def explorer_figure(step: int = 0, m_over_n: int = 2, lam: float = 1e-2, noise_sigma: float = 0.0) -> go.Figure:
    """W over training for the explorer: heatmap at ``step`` with its polysemantic-neuron count."""
    res = explorer_run(m_over_n, lam, noise_sigma)
    if step not in res.snapshot_steps:
        raise ValueError(f"step must be one of the recorded steps {res.snapshot_steps}, got {step}")
    i = res.snapshot_steps.index(step)
    W = res.snapshots[i]
    poly = int(count_polysemantic(W)[0])
    conv = float(feature_converged(W).float().mean())
    return plot_weights(W[0], f"step {step}: {poly} polysemantic neurons, {conv:.0%} of features converged "
                              f"(m/n = {m_over_n}, λ = {lam:g}, noise σ = {noise_sigma:g})")


def explorer_static(m_over_n: int = 2, lam: float = 1e-2, noise_sigma: float = 0.0) -> go.Figure:
    """The website twin of the explorer: a slider over training steps."""
    steps = explorer_run(m_over_n, lam, noise_sigma).snapshot_steps
    return frames_figure(lambda s: explorer_figure(s, m_over_n, lam, noise_sigma), steps, "step")
