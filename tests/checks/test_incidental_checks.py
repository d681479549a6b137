"""Chapter 3 checks: the reference passes, plausible wrong implementations are rejected with the right
diagnosis, and an untouched stub's NotImplementedError passes through."""

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


@pytest.mark.parametrize("wrong, match", [
    (lambda W, lam: ((_eye(W) - torch.relu(W @ W.transpose(1, 2))) ** 2).mean((1, 2)) + lam * W.abs().sum((1, 2)),
     "averaged"),
    (lambda W, lam: ((_eye(W) - W @ W.transpose(1, 2)) ** 2).sum((1, 2)) + lam * W.abs().sum((1, 2)), "ReLU"),
    (lambda W, lam: inc.loss(W, 0.0) + lam * (W**2).sum((1, 2)), "L2"),
    (lambda W, lam: inc.loss(W, 0.0) + lam * (W @ W.transpose(1, 2)).abs().sum((1, 2)), "outputs W Wᵀ"),
    (lambda W, lam: inc.loss(W, 0.0), "forgot the L1"),
    (lambda W, lam: inc.loss(W, lam).sum(), "shape"),
])
def test_toy_loss_rejects(wrong, match):
    with pytest.raises(CheckFailed, match=match):
        checks.check_toy_loss(wrong)


# --- 3.2 count_polysemantic --------------------------------------------------------------------


def test_count_polysemantic_reference_passes(capsys):
    checks.check_count_polysemantic(inc.count_polysemantic)
    assert "count_polysemantic: correct" in capsys.readouterr().out


def _strong(W, lo, hi):
    return (W.abs() >= lo) & (W.abs() <= hi)


@pytest.mark.parametrize("wrong, match", [
    (lambda W, lo, hi: (_strong(W, lo, hi).sum(2) >= 2).sum(1), "counted \\*features\\*"),
    (lambda W, lo, hi: (((W >= lo) & (W <= hi)).sum(1) >= 2).sum(1), "signed weights"),
    (lambda W, lo, hi: (_strong(W, lo, hi).sum(1) >= 1).sum(1), "at least one strong"),
    (lambda W, lo, hi: (_strong(W, lo, hi).sum(1) > 2).sum(1), "more than two"),
    (lambda W, lo, hi: ((W.abs() >= lo).sum(1) >= 2).sum(1), "upper end"),
])
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


@pytest.mark.parametrize("wrong, match", [
    (lambda w, lam, dt: w + dt * ((1 - (w * w).sum(-1, keepdim=True)) * w - lam * torch.sign(w)), "plain Euler"),
    (lambda w, lam, dt: _variant(w, lam, dt, w.norm(dim=-1, keepdim=True)), "squared norm"),
    (lambda w, lam, dt: _variant(w, lam, dt, (w * w).sum(0, keepdim=True)), "wrong axis"),
    (lambda w, lam, dt: _variant(w, -lam, dt, (w * w).sum(-1, keepdim=True)), "wrong sign"),
    (lambda w, lam, dt: _variant(torch.sign(w) * torch.clamp(w.abs() - lam * dt, min=0), 0.0, dt,
                                 (torch.sign(w) * torch.clamp(w.abs() - lam * dt, min=0)).pow(2).sum(-1, keepdim=True)),
     "before the Euler step"),
    (lambda w, lam, dt: inc.ode_step(w, lam / dt, dt), "multiply the L1 shrinkage by dt"),
])
def test_ode_step_rejects(wrong, match):
    with pytest.raises(CheckFailed, match=match):
        checks.check_ode_step(wrong)


# --- 3.4 expected_polysemantic -----------------------------------------------------------------


def test_expected_polysemantic_reference_passes(capsys):
    checks.check_expected_polysemantic(inc.expected_polysemantic)
    assert "expected_polysemantic: correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (lambda n, m: n * (n - 1) / (2 * m), "colliding \\*pairs\\*"),
    (lambda n, m: n * n / (4 * m), "fitted line"),
    (lambda n, m: n * n / (2 * m), "large-m approximation"),
    (lambda n, m: m * (1 - (1 - 1 / m) ** n), "at least one winner"),
    (lambda n, m: m * (1 - (1 - 1 / m) ** n - (n / m) * (1 - 1 / m) ** n), "exponent"),
])
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


@pytest.mark.parametrize("wrong, match", [
    (lambda n, m, trials, seed: float((_hits(n, m, trials, seed, replace=False) >= 2).sum(1).double().mean()),
     "without replacement"),
    (lambda n, m, trials, seed: float((_hits(n, m, trials, seed) * (_hits(n, m, trials, seed) - 1) / 2)
                                      .sum(1).double().mean()), "colliding \\*pairs\\*"),
    (lambda n, m, trials, seed: float((_hits(n, m, trials, seed) >= 1).sum(1).double().mean()), "at least one"),
    (lambda n, m, trials, seed: float((_hits(n, m, trials, seed) >= 2).sum().double()), "total over trials"),
    (_unseeded, "same seed"),
    (lambda n, m, trials, seed: (_hits(n, m, trials, seed) >= 2).sum(1).double(), "a number"),
])
def test_simulate_polysemantic_rejects(wrong, match):
    with pytest.raises(CheckFailed, match=match):
        checks.check_simulate_polysemantic(wrong)


# --- 3.6 noisy_outputs -------------------------------------------------------------------------


def test_noisy_outputs_reference_passes(capsys):
    checks.check_noisy_outputs(lambda W, xi: torch.relu((W + xi) @ W.transpose(1, 2)))
    assert "noisy_outputs: correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (lambda W, xi: (W + xi) @ W.transpose(1, 2), "forgot the ReLU"),
    (lambda W, xi: torch.relu(W @ (W + xi).transpose(1, 2)), "swapped"),
    (lambda W, xi: torch.relu((W + xi) @ (W + xi).transpose(1, 2)), "both sides"),
    (lambda W, xi: torch.relu(W @ W.transpose(1, 2)), "ignored the noise"),
])
def test_noisy_outputs_rejects(wrong, match):
    with pytest.raises(CheckFailed, match=match):
        checks.check_noisy_outputs(wrong)


def test_simulate_reference_close_to_exact():
    assert math.isclose(inc.simulate_polysemantic(64, 256, 20000, seed=3), inc.expected_polysemantic(64, 256),
                        rel_tol=0.05)
