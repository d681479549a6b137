"""Checks for the chapter 3 exercises (incidental polysemanticity)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from course_utils.checks._core import (
    Case,
    CheckFailed,
    Mistake,
    call_learner,
    check_function,
    compare,
    dtypes_and_devices,
    passed,
)
from course_utils.incidental import expected_polysemantic

# ------------------------------------------------------------------------------------------------
# References


def _toy_loss(W: torch.Tensor, lam: float) -> torch.Tensor:
    eye = torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
    Y = torch.relu(W @ W.transpose(1, 2))
    return ((eye - Y) ** 2).sum((1, 2)) + lam * W.abs().sum((1, 2))


def _count_polysemantic(W: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    strong = (W.abs() >= lo) & (W.abs() <= hi)
    return (strong.sum(1) >= 2).sum(1)


def _ode_step(w: torch.Tensor, lam: float, dt: float) -> torch.Tensor:
    w = w + dt * (1 - (w * w).sum(-1, keepdim=True)) * w
    return torch.sign(w) * torch.clamp(w.abs() - lam * dt, min=0)


def _noisy_outputs(W: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
    return torch.relu((W + xi) @ W.transpose(1, 2))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------
# Exercise 3.1: the model and its loss


def check_toy_loss(toy_loss: Callable[..., torch.Tensor]) -> None:
    """``toy_loss(W: [run, n, m], lam) -> [run]`` = Σᵢ ‖eᵢ − ReLU(W Wᵀ eᵢ)‖² + λ‖W‖₁ per run."""
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(seed)
        for runs, n, m, lam in ((3, 5, 8, 0.1), (2, 6, 6, 0.03)):
            W = torch.randn(runs, n, m, generator=g, dtype=dt) / math.sqrt(m)
            cases.append(Case(dict(W=W.to(dev), lam=lam)))
    mistakes = [
        Mistake("you averaged the squared errors (mean, or F.mse_loss's default): the loss *sums* them",
                lambda W, lam: ((torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
                                 - torch.relu(W @ W.transpose(1, 2))) ** 2).mean((1, 2)) + lam * W.abs().sum((1, 2))),
        Mistake("you left out the ReLU on the output: y = ReLU(W Wᵀ x)",
                lambda W, lam: ((torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
                                 - W @ W.transpose(1, 2)) ** 2).sum((1, 2)) + lam * W.abs().sum((1, 2))),
        Mistake("you penalised the squared weights (L2): the penalty is λ Σ|w| (L1)",
                lambda W, lam: _toy_loss(W, 0.0) + lam * (W**2).sum((1, 2))),
        Mistake("you put the L1 penalty on the outputs W Wᵀ instead of on the weights W",
                lambda W, lam: _toy_loss(W, 0.0) + lam * (W @ W.transpose(1, 2)).abs().sum((1, 2))),
        Mistake("you forgot the L1 term λ‖W‖₁", lambda W, lam: _toy_loss(W, 0.0)),
    ]
    n = check_function("toy_loss", toy_loss, _toy_loss, cases, mistakes)
    passed("toy_loss", f"{n} random cases, float32 and float64")


# ------------------------------------------------------------------------------------------------
# Exercise 3.2: counting polysemantic neurons


def _converged_like(runs: int, n: int, m: int, g: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """Weights that look trained: each feature has one weight of size 0.85–1.15 (random sign) on a
    random neuron, small noise elsewhere, plus deliberate traps (a 1.5 weight, a triple collision)."""
    W = 0.05 * torch.randn(runs, n, m, generator=g, dtype=dtype)
    neuron = torch.randint(0, m, (runs, n), generator=g)
    neuron[:, 1] = neuron[:, 0]  # a guaranteed collision (pair)
    neuron[:, 4] = neuron[:, 3]
    neuron[:, 5] = neuron[:, 3]  # a triple collision
    size = 0.85 + 0.3 * torch.rand(runs, n, generator=g, dtype=dtype)
    sign = torch.where(torch.rand(runs, n, generator=g) < 0.5, -1.0, 1.0).to(dtype)
    W.scatter_(2, neuron[..., None], (size * sign)[..., None])
    W[:, 6, :] = 0.0
    W[:, 6, neuron[0, 7]] = 1.5  # too large to count as "about unit scale"
    W[:, 7, :] = 0.0
    W[:, 7, neuron[0, 7]] = 1.0
    return W


def check_count_polysemantic(count_polysemantic: Callable[..., torch.Tensor]) -> None:
    """``count_polysemantic(W: [run, n, m], lo, hi) -> [run]``: neurons with ≥ 2 features whose
    |w| ∈ [lo, hi]."""
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(20 + seed)
        for runs, n, m in ((4, 12, 16), (3, 10, 40)):
            cases.append(Case(dict(W=_converged_like(runs, n, m, g, dt).to(dev), lo=0.8, hi=1.2)))
    mistakes = [
        Mistake("you counted *features* with two strong weights (summed over the neuron axis); count "
                "*neurons* (sum over the feature axis, dim=1)",
                lambda W, lo, hi: (((W.abs() >= lo) & (W.abs() <= hi)).sum(2) >= 2).sum(1)),
        Mistake("you compared signed weights: a weight of −1 is strong too, use |w|",
                lambda W, lo, hi: (((W >= lo) & (W <= hi)).sum(1) >= 2).sum(1)),
        Mistake("you counted neurons with at least one strong feature: polysemantic needs two or more",
                lambda W, lo, hi: (((W.abs() >= lo) & (W.abs() <= hi)).sum(1) >= 1).sum(1)),
        Mistake("you required more than two features (> 2): two strong features already make a neuron "
                "polysemantic (>= 2)",
                lambda W, lo, hi: (((W.abs() >= lo) & (W.abs() <= hi)).sum(1) > 2).sum(1)),
        Mistake("you ignored the upper end of the band: |w| must also be <= hi",
                lambda W, lo, hi: ((W.abs() >= lo).sum(1) >= 2).sum(1)),
    ]
    n = check_function("count_polysemantic", count_polysemantic, _count_polysemantic, cases, mistakes)
    passed("count_polysemantic", f"{n} synthetic trained-looking weight tensors")


# ------------------------------------------------------------------------------------------------
# Exercise 3.3: one step of the per-feature ODE


def check_ode_step(ode_step: Callable[..., torch.Tensor]) -> None:
    """``ode_step(w: [..., m], lam, dt) -> [..., m]``: Euler on (1 − ‖w‖²)w, then soft-threshold by λ·dt."""
    cases = []
    for seed, (dt_, dev) in enumerate(dtypes_and_devices()):
        g = _gen(40 + seed)
        w = torch.randn(5, 12, generator=g, dtype=dt_) / 3
        w[:, :3] = 0.002 * torch.randn(5, 3, generator=g, dtype=dt_)  # weights smaller than λ·dt
        cases.append(Case(dict(w=w.to(dev), lam=0.2, dt=0.05)))
        cases.append(Case(dict(w=(torch.randn(3, 4, 7, generator=g, dtype=dt_) / 2).to(dev), lam=0.1, dt=0.1)))
    mistakes = [
        Mistake("you did a plain Euler step on λ·sign(w): weights smaller than λ·dt flip sign instead of "
                "stopping at 0; soft-threshold instead: sign(w)·max(|w| − λ·dt, 0)",
                lambda w, lam, dt: w + dt * ((1 - (w * w).sum(-1, keepdim=True)) * w - lam * torch.sign(w))),
        Mistake("you used ‖w‖ where the ODE has ‖w‖² (the squared norm)",
                lambda w, lam, dt: _ode_step_variant(w, lam, dt, w.norm(dim=-1, keepdim=True))),
        Mistake("you took the norm over the wrong axis: each feature's vector is the *last* axis (dim=-1)",
                lambda w, lam, dt: _ode_step_variant(w, lam, dt, (w * w).sum(0, keepdim=True))),
        Mistake("the L1 term has the wrong sign: it pulls weights towards 0 (subtract λ·dt from |w|)",
                lambda w, lam, dt: _ode_step_variant(w, -lam, dt, (w * w).sum(-1, keepdim=True))),
        Mistake("you soft-thresholded before the Euler step: do the Euler step of (1 − ‖w‖²)w first, then "
                "threshold",
                lambda w, lam, dt: _ode_step_variant(torch.sign(w) * torch.clamp(w.abs() - lam * dt, min=0), 0.0, dt,
                                                     None)),
        Mistake("you forgot to multiply the L1 shrinkage by dt",
                lambda w, lam, dt: _ode_step(w, lam / dt, dt)),
    ]
    n = check_function("ode_step", ode_step, _ode_step, cases, mistakes)
    passed("ode_step", f"{n} random cases, including weights below the threshold")


def _ode_step_variant(w: torch.Tensor, lam: float, dt: float, sq: torch.Tensor | None) -> torch.Tensor:
    sq = (w * w).sum(-1, keepdim=True) if sq is None else sq
    w = w + dt * (1 - sq) * w
    return torch.sign(w) * torch.clamp(w.abs() - lam * dt, min=0)


# ------------------------------------------------------------------------------------------------
# Exercise 3.4: the birthday expectation


def check_expected_polysemantic(expected_polysemantic_fn: Callable[..., float]) -> None:
    """``expected_polysemantic(n, m) -> float``: expected neurons with ≥ 2 of n uniformly placed winners."""
    cases = [Case(dict(n=n, m=m)) for n, m in ((2, 3), (5, 7), (20, 40), (64, 64), (64, 1024), (256, 4096))]
    mistakes = [
        Mistake("that is the expected number of colliding *pairs*, C(n,2)/m; count *neurons* that receive at "
                "least two winners (a neuron with three winners holds three pairs but is one neuron)",
                lambda n, m: n * (n - 1) / (2 * m)),
        Mistake("that is the authors' fitted line n²/(4m), not the birthday expectation", lambda n, m: n * n / (4 * m)),
        Mistake("that is n²/(2m), the large-m approximation; compute the exact expectation",
                lambda n, m: n * n / (2 * m)),
        Mistake("you counted neurons with at least one winner, m(1 − (1 − 1/m)ⁿ): subtract those with exactly one",
                lambda n, m: m * (1 - (1 - 1 / m) ** n)),
        Mistake("the probability of exactly one winner is n·(1/m)·(1 − 1/m)ⁿ⁻¹: check the exponent (n − 1)",
                lambda n, m: m * (1 - (1 - 1 / m) ** n - (n / m) * (1 - 1 / m) ** n)),
    ]
    n = check_function("expected_polysemantic", expected_polysemantic_fn, expected_polysemantic, cases, mistakes,
                       atol=1e-9, rtol=1e-6)
    passed("expected_polysemantic", f"{n} (n, m) pairs")


# ------------------------------------------------------------------------------------------------
# Exercise 3.5: Monte Carlo


def check_simulate_polysemantic(simulate_polysemantic: Callable[..., float]) -> None:
    """``simulate_polysemantic(n, m, trials, seed) -> float``: the mean over ``trials`` random draws,
    within 5 standard errors of the exact value, and the same number for the same seed."""
    for n, m in ((20, 40), (64, 256)):
        kwargs = dict(n=n, m=m, trials=4000, seed=1)
        value = call_learner(simulate_polysemantic, kwargs, "simulate_polysemantic")
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, (int, float)):
            raise CheckFailed(f"simulate_polysemantic should return a number (the mean over trials), got "
                              f"{type(value).__name__}")
        again = call_learner(simulate_polysemantic, kwargs, "simulate_polysemantic")
        again = again.item() if isinstance(again, torch.Tensor) else again
        if again != value:
            raise CheckFailed("simulate_polysemantic gave different numbers for the same seed: draw from a "
                              "torch.Generator seeded with `seed`")
        exact = expected_polysemantic(n, m)
        se = math.sqrt(exact / kwargs["trials"]) + 1e-3  # the count is close to Poisson
        q = 1 - 1 / m
        mistakes = [
            ("you drew the winners without replacement (randperm): then no two features ever share a neuron",
             0.0),
            ("you counted colliding *pairs* (Σ C(h, 2)); count neurons with h ≥ 2", n * (n - 1) / (2 * m)),
            ("you counted neurons with at least one winner (h ≥ 1); polysemantic needs h ≥ 2",
             m * (1 - q**n)),
            ("you returned the total over trials; return the mean", exact * kwargs["trials"]),
        ]
        if abs(value - exact) <= 5 * se:
            continue
        for msg, out in mistakes:
            if abs(value - out) <= max(5 * se, 0.05 * abs(out)):
                raise CheckFailed(f"simulate_polysemantic(n={n}, m={m}) returned {value:.4g}, expected about "
                                  f"{exact:.4g}. Likely mistake: {msg}")
        compare(value, exact, what=f"simulate_polysemantic(n={n}, m={m})", atol=5 * se, rtol=0)
    passed("simulate_polysemantic", "matches the exact expectation within 5 standard errors, reproducible")


# ------------------------------------------------------------------------------------------------
# Exercise 3.6: hidden-layer noise


def check_noisy_outputs(noisy_outputs: Callable[..., torch.Tensor]) -> None:
    """``noisy_outputs(W: [run, n, m], xi: [run, n, m]) -> [run, n, n]``: row i is the output for
    input eᵢ when the hidden vector is wᵢ + ξᵢ, i.e. ReLU((W + Ξ) Wᵀ)."""
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(60 + seed)
        for runs, n, m in ((2, 5, 9), (3, 4, 4)):
            W = torch.randn(runs, n, m, generator=g, dtype=dt) / math.sqrt(m)
            xi = 0.3 * torch.randn(runs, n, m, generator=g, dtype=dt)
            cases.append(Case(dict(W=W.to(dev), xi=xi.to(dev))))
    mistakes = [
        Mistake("you forgot the ReLU on the output", lambda W, xi: (W + xi) @ W.transpose(1, 2)),
        Mistake("your rows and columns are swapped: row i (the output for input eᵢ) uses the noisy hidden "
                "vector wᵢ + ξᵢ, read out by every wⱼ",
                lambda W, xi: torch.relu(W @ (W + xi).transpose(1, 2))),
        Mistake("you added the noise to the weights on both sides, ReLU((W + Ξ)(W + Ξ)ᵀ); the noise is on the "
                "hidden activations only, the read-out weights are W",
                lambda W, xi: torch.relu((W + xi) @ (W + xi).transpose(1, 2))),
        Mistake("you ignored the noise", lambda W, xi: torch.relu(W @ W.transpose(1, 2))),
    ]
    n = check_function("noisy_outputs", noisy_outputs, _noisy_outputs, cases, mistakes)
    passed("noisy_outputs", f"{n} random cases, float32 and float64")


__all__ = ["check_toy_loss", "check_count_polysemantic", "check_ode_step", "check_expected_polysemantic",
           "check_simulate_polysemantic", "check_noisy_outputs"]
