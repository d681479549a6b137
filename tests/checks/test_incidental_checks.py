"""Chapter 3 checks: the reference passes, plausible wrong implementations are rejected with the right
diagnosis, and an untouched stub's NotImplementedError passes through.

Every wrong implementation states its mistake kind (values, shapes, dtypes, differentiability,
parameters, boundaries, randomness, statistics, stated requirement, side effects) in its test id.
"""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import incidental as inc
from course_utils.checks import incidental as checks
from course_utils.checks._core import CheckFailed


def _eye(W: torch.Tensor) -> torch.Tensor:
    return torch.eye(W.shape[1], dtype=W.dtype, device=W.device)


def _stub(*args, **kwargs):
    raise NotImplementedError("Exercise 3.x (stub): replace this line with your implementation")


def _cases(table):
    return pytest.mark.parametrize("wrong, match", [c[1:] for c in table], ids=[c[0] for c in table])


ALL_CHECKS = [checks.check_toy_loss, checks.check_count_polysemantic, checks.check_ode_step,
              checks.check_expected_polysemantic, checks.check_simulate_polysemantic, checks.check_noisy_outputs]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_stub_passes_through(check):
    with pytest.raises(NotImplementedError):
        check(_stub)


# --- 3.1 toy_loss ------------------------------------------------------------------------------


def test_toy_loss_reference_passes(capsys):
    checks.check_toy_loss(lambda W, lam: inc.loss(W, lam))
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "toy_loss: correct" in out


def _loss_no_grad(W, lam):
    with torch.no_grad():
        return inc.loss(W, lam)


def _loss_fixed_eye(W, lam):
    eye = torch.eye(5, dtype=W.dtype)
    return ((eye - torch.relu(W @ W.transpose(1, 2))) ** 2).sum((1, 2)) + lam * W.abs().sum((1, 2))


def _loss_float32(W, lam):
    return inc.loss(W.float(), lam).to(W.dtype)


def _loss_float32_eye(W, lam):
    eye = torch.eye(W.shape[1])  # float32 whatever W is
    return ((eye - torch.relu(W @ W.transpose(1, 2))) ** 2).sum((1, 2)) + lam * W.abs().sum((1, 2))


TOY_LOSS = [
    ("values: averaged", lambda W, lam: ((_eye(W) - torch.relu(W @ W.transpose(1, 2))) ** 2).mean((1, 2))
     + lam * W.abs().sum((1, 2)), "averaged"),
    ("values: no ReLU", lambda W, lam: ((_eye(W) - W @ W.transpose(1, 2)) ** 2).sum((1, 2)) + lam * W.abs().sum((1, 2)),
     "ReLU"),
    ("values: L2 penalty", lambda W, lam: inc.loss(W, 0.0) + lam * (W**2).sum((1, 2)), "L2"),
    ("values: L1 on the outputs", lambda W, lam: inc.loss(W, 0.0) + lam * (W @ W.transpose(1, 2)).abs().sum((1, 2)),
     "outputs W Wᵀ"),
    ("parameters: lam ignored", lambda W, lam: inc.loss(W, 0.0), "forgot the L1"),
    ("parameters: lam hard-coded to 0.1", lambda W, lam: inc.loss(W, 0.1), "λ = 0.1 instead of the lam argument"),
    ("shapes: summed over runs", lambda W, lam: inc.loss(W, lam).sum(), "shape"),
    ("shapes: n hard-coded to 5", _loss_fixed_eye, "raised|shape"),
    ("dtypes: float64 computed in float32", _loss_float32, "float32 precision"),
    ("right answer: a float32 eye is promoted to W's dtype", _loss_float32_eye, None),
    ("differentiability: under no_grad", _loss_no_grad, "does not carry gradients"),
    ("differentiability: L1 term detached", lambda W, lam: inc.loss(W, 0.0) + lam * W.detach().abs().sum((1, 2)),
     "gradient of toy_loss with respect to 'W' is wrong"),
]


@_cases(TOY_LOSS)
def test_toy_loss_rejects(wrong, match):
    if match is None:  # a right answer written differently: torch promotes the float32 eye to W's dtype
        checks.check_toy_loss(wrong)
        return
    with pytest.raises(CheckFailed, match=match):
        checks.check_toy_loss(wrong)


# --- 3.2 count_polysemantic --------------------------------------------------------------------


def test_count_polysemantic_reference_passes(capsys):
    checks.check_count_polysemantic(inc.count_polysemantic)
    assert "count_polysemantic: correct" in capsys.readouterr().out


def _strong(W, lo, hi):
    return (W.abs() >= lo) & (W.abs() <= hi)


COUNT = [
    ("values: features counted", lambda W, lo, hi: (_strong(W, lo, hi).sum(2) >= 2).sum(1), "counted \\*features\\*"),
    ("values: signed weights", lambda W, lo, hi: (((W >= lo) & (W <= hi)).sum(1) >= 2).sum(1), "signed weights"),
    ("values: one strong feature", lambda W, lo, hi: (_strong(W, lo, hi).sum(1) >= 1).sum(1), "at least one strong"),
    ("boundaries: more than two", lambda W, lo, hi: (_strong(W, lo, hi).sum(1) > 2).sum(1), "more than two"),
    ("parameters: hi ignored", lambda W, lo, hi: ((W.abs() >= lo).sum(1) >= 2).sum(1), "upper end"),
    ("boundaries: open band", lambda W, lo, hi: ((((W.abs() > lo) & (W.abs() < hi)).sum(1)) >= 2).sum(1),
     "strict inequalities"),
    ("parameters: band hard-coded to 0.8-1.2", lambda W, lo, hi: inc.count_polysemantic(W, 0.8, 1.2),
     "default band"),
    ("dtypes: count as float", lambda W, lo, hi: (_strong(W, lo, hi).sum(1) >= 2).sum(1).float(),
     "expected an integer tensor"),
    ("shapes: total over runs", lambda W, lo, hi: (_strong(W, lo, hi).sum(1) >= 2).sum(), "shape"),
]


@_cases(COUNT)
def test_count_polysemantic_rejects(wrong, match):
    with pytest.raises(CheckFailed, match=match):
        checks.check_count_polysemantic(wrong)


# --- 3.3 ode_step ------------------------------------------------------------------------------


def test_ode_step_reference_passes(capsys):
    checks.check_ode_step(inc.ode_step)
    assert "ode_step: correct" in capsys.readouterr().out


def _variant(w, lam, dt, sq):
    w = w + dt * (1 - sq) * w
    return torch.sign(w) * torch.clamp(w.abs() - lam * dt, min=0)


def _ode_2d_only(w, lam, dt):
    sq = (w * w).sum(1, keepdim=True)  # assumes w: [features, m]
    return _variant(w, lam, dt, sq)


def _ode_in_place(w, lam, dt):
    w += dt * (1 - (w * w).sum(-1, keepdim=True)) * w
    return torch.sign(w) * torch.clamp(w.abs() - lam * dt, min=0)


def _ode_float32(w, lam, dt):
    return inc.ode_step(w.float(), lam, dt).to(w.dtype)


ODE = [
    ("values: plain Euler", lambda w, lam, dt: w + dt * ((1 - (w * w).sum(-1, keepdim=True)) * w - lam * torch.sign(w)),
     "plain Euler"),
    ("values: norm not squared", lambda w, lam, dt: _variant(w, lam, dt, w.norm(dim=-1, keepdim=True)), "squared norm"),
    ("shapes: norm over the first axis", lambda w, lam, dt: _variant(w, lam, dt, (w * w).sum(0, keepdim=True)),
     "wrong axis"),
    ("shapes: norm over axis 1 (fails for [m] and [runs, features, m])", _ode_2d_only, "raised|wrong"),
    ("values: L1 sign", lambda w, lam, dt: _variant(w, -lam, dt, (w * w).sum(-1, keepdim=True)), "wrong sign"),
    ("values: threshold first", lambda w, lam, dt: _variant(
        torch.sign(w) * torch.clamp(w.abs() - lam * dt, min=0), 0.0, dt,
        (torch.sign(w) * torch.clamp(w.abs() - lam * dt, min=0)).pow(2).sum(-1, keepdim=True)),
     "before the Euler step"),
    ("parameters: shrinkage without dt", lambda w, lam, dt: inc.ode_step(w, lam / dt, dt),
     "multiply the L1 shrinkage by dt"),
    ("dtypes: float64 computed in float32", _ode_float32, "float32 precision"),
    ("side effects: w updated in place", _ode_in_place, "in place"),
]


@_cases(ODE)
def test_ode_step_rejects(wrong, match):
    with pytest.raises(CheckFailed, match=match):
        checks.check_ode_step(wrong)


# --- 3.4 expected_polysemantic -----------------------------------------------------------------


def test_expected_polysemantic_reference_passes(capsys):
    checks.check_expected_polysemantic(inc.expected_polysemantic)
    assert "expected_polysemantic: correct" in capsys.readouterr().out


def _expected_integer_division(n, m):
    q = 1 - 1 // m  # integer division: 1 // m is 0 for m > 1
    return m * (1 - q**n - (n / m) * q ** (n - 1))


def _expected_float32(n, m):
    q = torch.tensor(1 - 1 / m, dtype=torch.float32)
    return float(m * (1 - q**n - (n / m) * q ** (n - 1)))


EXPECTED = [
    ("values: pairs", lambda n, m: n * (n - 1) / (2 * m), "colliding \\*pairs\\*"),
    ("values: fitted line", lambda n, m: n * n / (4 * m), "fitted line"),
    ("values: large-m approximation", lambda n, m: n * n / (2 * m), "large-m approximation"),
    ("values: at least one winner", lambda n, m: m * (1 - (1 - 1 / m) ** n), "at least one winner"),
    ("boundaries: exponent n instead of n - 1", lambda n, m: m * (1 - (1 - 1 / m) ** n - (n / m) * (1 - 1 / m) ** n),
     "exponent"),
    ("dtypes: integer division", _expected_integer_division, "integer division"),
    ("dtypes: computed in float32", _expected_float32, "returned"),
]


@_cases(EXPECTED)
def test_expected_polysemantic_rejects(wrong, match):
    with pytest.raises(CheckFailed, match=match):
        checks.check_expected_polysemantic(wrong)


# --- 3.5 simulate_polysemantic -----------------------------------------------------------------


def test_simulate_polysemantic_reference_passes(capsys):
    checks.check_simulate_polysemantic(inc.simulate_polysemantic)
    assert "simulate_polysemantic: correct" in capsys.readouterr().out


def _hits(n, m, trials, seed, replace=True):
    g = torch.Generator().manual_seed(seed)
    if replace:
        picks = torch.randint(0, m, (trials, n), generator=g)
    else:
        picks = torch.stack([torch.randperm(m, generator=g)[:n] for _ in range(trials)])
    return torch.zeros(trials, m, dtype=torch.long).scatter_add_(1, picks, torch.ones_like(picks))


def _unseeded(n, m, trials, seed):
    return float((_hits(n, m, trials, int(torch.randint(0, 10**6, (1,)))) >= 2).sum(1).double().mean())


def _hits_range(n, m, trials, seed, low, high):
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(low, high, (trials, n), generator=g)
    hits = torch.zeros(trials, m + 1, dtype=torch.long).scatter_add_(1, picks, torch.ones_like(picks))
    return float((hits >= 2).sum(1).double().mean())


def _global_rng(n, m, trials, seed):
    torch.manual_seed(seed)
    picks = torch.randint(0, m, (trials, n))
    hits = torch.zeros(trials, m, dtype=torch.long).scatter_add_(1, picks, torch.ones_like(picks))
    return float((hits >= 2).sum(1).double().mean())


def _seed_ignored(n, m, trials, seed):
    return float((_hits(n, m, trials, 0) >= 2).sum(1).double().mean())


def _trials_hard_coded(n, m, trials, seed):
    return float((_hits(n, m, 4000, seed) >= 2).sum(1).double().mean())


def _few_trials_biased(n, m, trials, seed):
    """A biased sampler: neuron 0 twice as likely as the others (a loose tolerance would let it pass)."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.ones(m, dtype=torch.float64)
    weights[0] = 2.0
    picks = torch.multinomial(weights.expand(trials, m), n, replacement=True, generator=g)
    hits = torch.zeros(trials, m, dtype=torch.long).scatter_add_(1, picks, torch.ones_like(picks))
    return float((hits >= 2).sum(1).double().mean())


SIMULATE = [
    ("values: without replacement", lambda n, m, trials, seed:
     float((_hits(n, m, trials, seed, replace=False) >= 2).sum(1).double().mean()), "without replacement"),
    ("values: pairs", lambda n, m, trials, seed: float((_hits(n, m, trials, seed) * (_hits(n, m, trials, seed) - 1) / 2)
                                                      .sum(1).double().mean()), "colliding \\*pairs\\*"),
    ("values: at least one", lambda n, m, trials, seed: float((_hits(n, m, trials, seed) >= 1).sum(1).double().mean()),
     "at least one"),
    ("values: total over trials", lambda n, m, trials, seed: float((_hits(n, m, trials, seed) >= 2).sum().double()),
     "total over trials"),
    ("statistics: off-by-one range randint(0, m - 1)", lambda n, m, trials, seed: _hits_range(n, m, trials, seed, 0, m - 1),
     "only m − 1 neurons"),
    ("statistics: off-by-one range randint(1, m)", lambda n, m, trials, seed: _hits_range(n, m, trials, seed, 1, m),
     "only m − 1 neurons"),
    ("statistics: off-by-one range randint(0, m + 1)", lambda n, m, trials, seed: _hits_range(n, m, trials, seed, 0, m + 1),
     "m \\+ 1 neurons"),
    ("statistics: biased sampler (one neuron twice as likely)", _few_trials_biased, "returned .* expected"),
    ("randomness: unseeded", _unseeded, "same seed|global random generator"),
    ("randomness: global RNG reseeded", _global_rng, "global random generator"),
    ("randomness: seed ignored", _seed_ignored, "seed is ignored"),
    ("parameters: trials hard-coded", _trials_hard_coded, "trials=1"),
    ("stated: returns a tensor", lambda n, m, trials, seed: (_hits(n, m, trials, seed) >= 2).sum(1).double().mean(),
     "as a float, got a tensor"),
    ("stated: returns per-trial counts", lambda n, m, trials, seed: (_hits(n, m, trials, seed) >= 2).sum(1).double(),
     "as a float"),
]


@_cases(SIMULATE)
def test_simulate_polysemantic_rejects(wrong, match):
    with pytest.raises(CheckFailed, match=match):
        checks.check_simulate_polysemantic(wrong)


# --- 3.6 noisy_outputs -------------------------------------------------------------------------


def test_noisy_outputs_reference_passes(capsys):
    checks.check_noisy_outputs(lambda W, xi: torch.relu((W + xi) @ W.transpose(1, 2)))
    assert "noisy_outputs: correct" in capsys.readouterr().out


def _noisy_in_place(W, xi):
    xi += W  # fails on an expanded xi, and modifies the caller's noise otherwise
    return torch.relu(xi @ W.transpose(1, 2))


def _noisy_no_grad(W, xi):
    with torch.no_grad():
        return torch.relu((W + xi) @ W.transpose(1, 2))


def _noisy_detached_readout(W, xi):
    return torch.relu((W + xi) @ W.detach().transpose(1, 2))


def _noisy_float32(W, xi):
    return torch.relu((W + xi).float() @ W.float().transpose(1, 2)).to(W.dtype)


NOISY = [
    ("values: no ReLU", lambda W, xi: (W + xi) @ W.transpose(1, 2), "forgot the ReLU"),
    ("values: rows and columns swapped", lambda W, xi: torch.relu(W @ (W + xi).transpose(1, 2)), "swapped"),
    ("values: noise on both sides", lambda W, xi: torch.relu((W + xi) @ (W + xi).transpose(1, 2)), "both sides"),
    ("values: noise ignored", lambda W, xi: torch.relu(W @ W.transpose(1, 2)), "ignored the noise"),
    ("shapes: [n, m] @ [m, n] assumed 2-D", lambda W, xi: torch.relu((W + xi)[0] @ W[0].T), "shape"),
    ("dtypes: float64 computed in float32", _noisy_float32, "float32 precision"),
    ("differentiability: under no_grad", _noisy_no_grad, "does not carry gradients"),
    ("differentiability: read-out weights detached", _noisy_detached_readout,
     "gradient of noisy_outputs with respect to 'W' is wrong"),
    ("side effects: noise modified in place", _noisy_in_place, "in place|raised RuntimeError"),
]


@_cases(NOISY)
def test_noisy_outputs_rejects(wrong, match):
    with pytest.raises(CheckFailed, match=match):
        checks.check_noisy_outputs(wrong)


def test_simulate_reference_close_to_exact():
    assert math.isclose(inc.simulate_polysemantic(64, 256, 20000, seed=3), inc.expected_polysemantic(64, 256),
                        rel_tol=0.05)


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_simulate_check_passes_the_reference_on_other_seeds(offset):
    """The 5-standard-error tolerance (exact variance for the small case) is not tuned to seed 1."""
    checks.check_simulate_polysemantic(
        lambda n, m, trials, seed: inc.simulate_polysemantic(n, m, trials, seed + 1000 * offset))
