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


def _close_to(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.allclose(a.detach().to("cpu", torch.float64), b.detach().to("cpu", torch.float64),
                               rtol=1e-4, atol=1e-5))


# ------------------------------------------------------------------------------------------------
# Exercise 3.1: the model and its loss


def check_toy_loss(toy_loss: Callable[..., torch.Tensor]) -> None:
    """``toy_loss(W: [run, n, m], lam) -> [run]`` = Σᵢ ‖eᵢ − ReLU(W Wᵀ eᵢ)‖² + λ‖W‖₁ per run.

    Kinds covered: shapes (one run, n < m, n = m, n > m), parameters (λ = 0 and several λ), float64
    at float64 tolerance, differentiability (the next cell back-propagates to W).
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(seed)
        for runs, n, m, lam in ((3, 5, 8, 0.1), (2, 6, 6, 0.03), (1, 7, 3, 0.0), (1, 2, 5, 1.5)):
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
    def fixed_lam(actual: object, kwargs: dict) -> str | None:
        if not isinstance(actual, torch.Tensor) or actual.shape != kwargs["W"].shape[:1]:
            return None
        for lam in (1e-3, 0.1, 0.03, 0.0, 1.5, 0.01):
            if lam != kwargs["lam"] and _close_to(actual, _toy_loss(kwargs["W"], lam)):
                return f"you used λ = {lam:g} instead of the lam argument ({kwargs['lam']:g})"
        return None

    n = check_function("toy_loss", toy_loss, _toy_loss, cases, mistakes, grad=("W",), hints=[fixed_lam])
    passed("toy_loss", f"{n} random cases, float32 and float64, gradients included")


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


def _band_edges(dtype: torch.dtype) -> torch.Tensor:
    """[4 runs, 6 features, 5 neurons] for the band [0.75, 1.25] (exact binary fractions): weights exactly
    on lo and hi, inside this band but outside 0.8–1.2, negative pairs and pairs just outside. Expected
    counts [2, 1, 1, 1]; an open band, the default band and signed weights each give another vector."""
    W = torch.zeros(4, 6, 5, dtype=dtype)
    W[0, 0, 0], W[0, 1, 0], W[0, 4, 3], W[0, 5, 3] = 0.75, -1.25, 1.0, 1.125  # on the ends; inside
    W[1, 2, 1], W[1, 3, 1] = 0.765625, 1.0  # inside [0.75, 1.25], outside [0.8, 1.2]
    W[2, 0, 2], W[2, 1, 2] = -0.875, -1.0  # both negative
    W[3, 2, 4], W[3, 3, 4], W[3, 0, 0], W[3, 1, 0] = 0.74, 1.26, 1.25, 0.75  # just outside; on the ends
    return W


def check_count_polysemantic(count_polysemantic: Callable[..., torch.Tensor]) -> None:
    """``count_polysemantic(W: [run, n, m], lo, hi) -> [run]``: neurons with ≥ 2 features whose
    |w| ∈ [lo, hi].

    Kinds covered: parameters (another band, weights exactly on lo and hi: the band is closed),
    shapes (one run, m < n), dtypes (an integer count), inputs left unmodified.
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(20 + seed)
        for runs, n, m in ((4, 12, 16), (3, 10, 40), (1, 12, 6)):
            cases.append(Case(dict(W=_converged_like(runs, n, m, g, dt).to(dev), lo=0.8, hi=1.2)))
        cases.append(Case(dict(W=_band_edges(dt).to(dev), lo=0.75, hi=1.25), label="weights exactly on lo and hi"))
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
        Mistake("you used strict inequalities: the band [lo, hi] includes its ends (lo <= |w| <= hi)",
                lambda W, lo, hi: ((((W.abs() > lo) & (W.abs() < hi)).sum(1)) >= 2).sum(1)),
        Mistake("you used the default band 0.8–1.2 instead of the lo and hi arguments",
                lambda W, lo, hi: _count_polysemantic(W, 0.8, 1.2)),
    ]
    n = check_function("count_polysemantic", count_polysemantic, _count_polysemantic, cases, mistakes)
    passed("count_polysemantic", f"{n} synthetic trained-looking weight tensors")


# ------------------------------------------------------------------------------------------------
# Exercise 3.3: one step of the per-feature ODE


def check_ode_step(ode_step: Callable[..., torch.Tensor]) -> None:
    """``ode_step(w: [..., m], lam, dt) -> [..., m]``: Euler on (1 − ‖w‖²)w, then soft-threshold by λ·dt.

    Kinds covered: shapes (one feature [m], [features, m], [runs, features, m]), parameters (λ = 0,
    several dt), boundaries (weights below λ·dt end at exactly 0), float64, inputs left unmodified.
    """
    cases = []
    for seed, (dt_, dev) in enumerate(dtypes_and_devices()):
        g = _gen(40 + seed)
        w = torch.randn(5, 12, generator=g, dtype=dt_) / 3
        w[:, :3] = 0.002 * torch.randn(5, 3, generator=g, dtype=dt_)  # weights smaller than λ·dt
        cases.append(Case(dict(w=w.to(dev), lam=0.2, dt=0.05)))
        cases.append(Case(dict(w=(torch.randn(3, 4, 7, generator=g, dtype=dt_) / 2).to(dev), lam=0.1, dt=0.1)))
        cases.append(Case(dict(w=(torch.randn(9, generator=g, dtype=dt_) / 2).to(dev), lam=0.05, dt=0.2),
                          label="a single feature's vector w: [m]"))
        cases.append(Case(dict(w=(torch.randn(4, 6, generator=g, dtype=dt_) / 2).to(dev), lam=0.0, dt=0.3),
                          label="λ = 0: no shrinkage"))
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
    """``expected_polysemantic(n, m) -> float``: expected neurons with ≥ 2 of n uniformly placed winners.

    Kinds covered: boundaries (n = 1: no collision; n = m = 2: probability 1/2), parameters over three
    orders of magnitude (n < m, n = m), integer arguments.
    """
    cases = [Case(dict(n=n, m=m)) for n, m in ((2, 3), (5, 7), (20, 40), (64, 64), (64, 1024), (256, 4096),
                                              (1, 5), (1, 1), (2, 2))]
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
        Mistake("integer division: 1 // m is 0 for m > 1; use 1 / m",
                lambda n, m: m * (1 - (1 - 1 // m) ** n - (n / m) * (1 - 1 // m) ** (n - 1))),
    ]
    n = check_function("expected_polysemantic", expected_polysemantic_fn, expected_polysemantic, cases, mistakes,
                       atol=1e-9, rtol=1e-6)
    passed("expected_polysemantic", f"{n} (n, m) pairs")


# ------------------------------------------------------------------------------------------------
# Exercise 3.5: Monte Carlo


def _exact_moments(n: int, m: int) -> tuple[float, float]:
    """Mean and variance of the number of neurons with >= 2 of n features, by enumerating all m**n
    placements (small n, m only)."""
    placements = torch.cartesian_prod(*[torch.arange(m)] * n) if n > 1 else torch.arange(m)[:, None]
    hits = torch.zeros(placements.shape[0], m, dtype=torch.long).scatter_add_(1, placements,
                                                                            torch.ones_like(placements))
    counts = (hits >= 2).sum(1).double()
    return counts.mean().item(), counts.var(unbiased=False).item()


def _simulate_value(fn: Callable[..., float], kwargs: dict[str, int]) -> float:
    value = call_learner(fn, kwargs, "simulate_polysemantic")
    if not isinstance(value, float):
        hint = ("a tensor: return float(...) of the mean" if isinstance(value, torch.Tensor)
                else type(value).__name__)
        raise CheckFailed(f"simulate_polysemantic should return the mean over trials as a float, got {hint} "
                          f"(inputs: {kwargs})")
    return value


def _birthday(n: int, m: int) -> float:
    """The exact expectation without argument checks (also for m < n, for the off-by-one diagnoses)."""
    q = 1 - 1 / m
    return m * (1 - q**n - (n / m) * q ** (n - 1))


def check_simulate_polysemantic(simulate_polysemantic: Callable[..., float]) -> None:
    """``simulate_polysemantic(n, m, trials, seed) -> float``: the mean over ``trials`` random draws.

    Kinds covered: statistics (within 5 standard errors of the exact value; a small case with the
    exact variance, so that an off-by-one range of neurons fails), randomness (the same seed gives the
    same number, other seeds other numbers, the global RNG is neither used nor reseeded: a
    torch.Generator is), parameters (trials = 1 gives a whole number), stated (a float).
    """
    name = "simulate_polysemantic"
    for n, m, trials in ((4, 4, 20000), (20, 40, 4000), (64, 256, 4000)):
        kwargs = dict(n=n, m=m, trials=trials, seed=1)
        rng_before = torch.random.get_rng_state()
        value = _simulate_value(simulate_polysemantic, kwargs)
        rng_changed = not torch.equal(torch.random.get_rng_state(), rng_before)
        exact = expected_polysemantic(n, m)
        var = _exact_moments(n, m)[1] if m**n <= 5000 else exact  # else: the count is close to Poisson
        se = math.sqrt(var / trials)
        q = 1 - 1 / m
        mistakes = [
            ("you drew the winners without replacement (randperm): then no two features ever share a neuron",
             0.0),
            ("you counted colliding *pairs* (Σ C(h, 2)); count neurons with h ≥ 2", n * (n - 1) / (2 * m)),
            ("you counted neurons with at least one winner (h ≥ 1); polysemantic needs h ≥ 2",
             m * (1 - q**n)),
            ("you returned the total over trials; return the mean", exact * trials),
            ("your placements use only m − 1 neurons: torch.randint's upper end is exclusive, so "
             "torch.randint(0, m, ...) draws 0..m−1 (randint(0, m - 1) or randint(1, m) misses one)",
             _birthday(n, m - 1)),
            ("your placements use m + 1 neurons: torch.randint(0, m, ...) already draws 0..m−1",
             _birthday(n, m + 1)),
        ]
        if abs(value - exact) > 5 * se:
            for msg, out in mistakes:
                if abs(value - out) <= max(5 * se, 0.02 * abs(out)):
                    raise CheckFailed(f"{name}(n={n}, m={m}) returned {value:.4g}, expected {exact:.4g} ± "
                                      f"{5 * se:.2g}. Likely mistake: {msg}")
            compare(value, exact, what=f"{name}(n={n}, m={m}, trials={trials})", atol=5 * se, rtol=0,
                    context=f"5 standard errors = {5 * se:.2g}")
        if _simulate_value(simulate_polysemantic, kwargs) != value:
            raise CheckFailed(f"{name} gave different numbers for the same seed: draw from a "
                              "torch.Generator seeded with `seed`")
        if rng_changed:
            torch.random.set_rng_state(rng_before)
            raise CheckFailed(f"{name} used (or reseeded) PyTorch's global random generator: create "
                              "g = torch.Generator().manual_seed(seed) and pass generator=g, so that the "
                              "notebook's other random numbers are not affected")
        others = {_simulate_value(simulate_polysemantic, dict(kwargs, seed=sd)) for sd in (2, 3)}
        if others == {value}:
            raise CheckFailed(f"{name} gave the same number for seeds 1, 2 and 3: the seed is ignored; use "
                              "torch.Generator().manual_seed(seed)")
    one = _simulate_value(simulate_polysemantic, dict(n=20, m=40, trials=1, seed=0))
    if one != round(one):
        raise CheckFailed(f"{name}(trials=1) returned {one:.4g}: one trial's count is a whole number; is the "
                          "number of trials hard-coded instead of taken from `trials`?")
    passed(name, "within 5 standard errors of the exact value, seeded by a torch.Generator")


# ------------------------------------------------------------------------------------------------
# Exercise 3.6: hidden-layer noise


def check_noisy_outputs(noisy_outputs: Callable[..., torch.Tensor]) -> None:
    """``noisy_outputs(W: [run, n, m], xi: [run, n, m]) -> [run, n, n]``: row i is the output for
    input eᵢ when the hidden vector is wᵢ + ξᵢ, i.e. ReLU((W + Ξ) Wᵀ).

    Kinds covered: shapes (one run, n < m, n = m, n > m), an expanded (stride-0) ξ as the next cell
    passes it, float64 at float64 tolerance, differentiability (gradients to W and ξ), inputs left
    unmodified.
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(60 + seed)
        for runs, n, m in ((2, 5, 9), (3, 4, 4), (1, 6, 3)):
            W = torch.randn(runs, n, m, generator=g, dtype=dt) / math.sqrt(m)
            xi = 0.3 * torch.randn(runs, n, m, generator=g, dtype=dt)
            cases.append(Case(dict(W=W.to(dev), xi=xi.to(dev))))
        W = torch.randn(2, 5, 7, generator=g, dtype=dt) / math.sqrt(7)
        xi = (0.3 * torch.randn(2, 1, 7, generator=g, dtype=dt)).expand(2, 5, 7)
        cases.append(Case(dict(W=W.to(dev), xi=xi.to(dev)), label="xi expanded from [run, 1, m] (shared noise)"))
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
    n = check_function("noisy_outputs", noisy_outputs, _noisy_outputs, cases, mistakes, grad=("W", "xi"))
    passed("noisy_outputs", f"{n} random cases, float32 and float64, gradients included")


__all__ = ["check_toy_loss", "check_count_polysemantic", "check_ode_step", "check_expected_polysemantic",
           "check_simulate_polysemantic", "check_noisy_outputs"]
