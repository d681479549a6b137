"""Chapter 2 checks accept the reference and reject plausible wrong answers with the right diagnosis."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils import packing, tms
from course_utils.checks import CheckFailed
from course_utils.checks import tms as checks


def _ein(W, x):
    return torch.einsum("imf,img,big->bif", W, W, x)


# ---------------------------------------------------------------------------------- references


def test_references_pass(capsys):
    checks.check_tms_forward(tms.tms_forward)
    checks.check_neuron_forward(tms.neuron_forward)
    checks.check_abs_forward(tms.abs_forward)
    checks.check_importance_weighted_loss(tms.importance_weighted_loss)
    checks.check_feature_dimensionality(tms.feature_dimensionality)
    checks.check_classify_phase(lambda W: tms.classify_phase(W, -1))
    checks.check_max_abs_cosine(packing.max_abs_cosine)
    checks.check_welch_bound(packing.welch_bound)
    checks.check_generate_batch(tms.generate_batch)
    checks.check_generate_correlated_batch(tms.generate_correlated_batch)
    checks.check_generate_anticorrelated_batch(tms.generate_anticorrelated_batch)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 11 and all(ln.startswith("\u2714") for ln in lines)


@pytest.mark.parametrize("check", [
    checks.check_tms_forward, checks.check_neuron_forward, checks.check_abs_forward,
    checks.check_importance_weighted_loss,
    checks.check_feature_dimensionality, checks.check_classify_phase, checks.check_max_abs_cosine,
    checks.check_welch_bound, checks.check_generate_batch, checks.check_generate_correlated_batch,
    checks.check_generate_anticorrelated_batch,
])
def test_stub_passes_through_as_not_implemented(check):
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise 2.1 (stub)")

    with pytest.raises(NotImplementedError, match="Exercise 2.1"):
        check(stub)


# ---------------------------------------------------------------------------------- forward passes


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda W, b, x: _ein(W, x) + b, "ReLU is missing on the output"),
    (lambda W, b, x: torch.relu(_ein(W, x)) + b, "bias is added after the ReLU"),
    (lambda W, b, x: torch.relu(_ein(W, x)), "bias b is missing"),
    (lambda W, b, x: torch.relu(_ein(W[:1].expand_as(W), x) + b), "instance 0's weights"),
    (lambda W, b, x: torch.relu(_ein(W, x) + b).transpose(0, 1), "shape"),
    (lambda W, b, x: torch.relu(_ein(W, x) + b).float(), "dtype"),
])
def test_tms_forward_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_tms_forward(wrong)


def _h(W, x):
    return torch.einsum("imf,bif->bim", W, x)


def _o(W, h):
    return torch.einsum("imf,bim->bif", W, h)


@pytest.mark.parametrize("wrong, diagnosis", [
    (tms.tms_forward, "hidden ReLU is missing"),
    (lambda W, b, x: _o(W, torch.relu(_h(W, x))) + b, "ReLU is missing on the output"),
    (lambda W, b, x: torch.relu(_o(W, torch.relu(_h(W, x)))) + b, "bias is added after"),
    (lambda W, b, x: torch.relu(_o(W, torch.relu(_h(W, x)))), "bias b is missing"),
])
def test_neuron_forward_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_neuron_forward(wrong)


def _ao(W2, h):
    return torch.einsum("ifm,bim->bif", W2, h)


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda W1, W2, b, x: torch.relu(_ao(W2, _h(W1, x)) + b), "hidden ReLU is missing"),
    (lambda W1, W2, b, x: _ao(W2, torch.relu(_h(W1, x))) + b, "ReLU is missing on the output"),
    (lambda W1, W2, b, x: torch.relu(_ao(W1.transpose(1, 2), torch.relu(_h(W1, x))) + b), "tied weights"),
    (lambda W1, W2, b, x: torch.relu(_ao(W2, torch.relu(_h(W1, x)))), "bias b is missing"),
    (lambda W1, W2, b, x: torch.relu(_ao(W2, torch.relu(_h(W1, x.abs()))) + b), "wrong"),
])
def test_abs_forward_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_abs_forward(wrong)


# ---------------------------------------------------------------------------------- loss


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda out, target, importance: (importance * (target - out) ** 2).mean(), "averaged over instances"),
    (lambda out, target, importance: ((importance * (target - out)) ** 2).mean(dim=(0, 2)).sum(), "counts as I²"),
    (lambda out, target, importance: (importance * ((target - out) ** 2).mean(dim=0).sqrt()).mean(-1).sum(),
     "after a square root"),
    (lambda out, target, importance: (importance * (target - out).abs()).mean(dim=(0, 2)).sum(), "absolute error"),
    (lambda out, target, importance: ((target - out) ** 2).mean(dim=(0, 2)).sum(), "weights are missing"),
    (lambda out, target, importance: (importance * (target - out) ** 2).mean(dim=0).sum(), "summed over features"),
    (lambda out, target, importance: (importance * (target - out) ** 2).mean(dim=(0, 2)), "should be reduced"),
])
def test_loss_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_importance_weighted_loss(wrong)


# ---------------------------------------------------------------------------------- dimensionality


def _dim_unnormalised(W):
    return W.norm(dim=1) ** 2 / (torch.einsum("imf,img->ifg", W, W) ** 2).sum(-1)


def _dim_unsafe(W):
    W_hat = W / W.norm(dim=1, keepdim=True)
    return W.norm(dim=1) ** 2 / (torch.einsum("imf,img->ifg", W_hat, W) ** 2).sum(-1)


def _dim_no_square(W):
    W_hat = W / W.norm(dim=1, keepdim=True).clamp_min(1e-8)
    return W.norm(dim=1) ** 2 / torch.einsum("imf,img->ifg", W_hat, W).abs().sum(-1).clamp_min(1e-12)


def _dim_wrong_axis(W):
    W_hat = W / W.norm(dim=2, keepdim=True)
    return W.norm(dim=1) ** 2 / (torch.einsum("imf,img->ifg", W_hat, W) ** 2).sum(-1)


@pytest.mark.parametrize("wrong, diagnosis", [
    (_dim_unnormalised, "not normalised"),
    (_dim_wrong_axis, "wrong axis"),
    (_dim_no_square, "must be squared"),
    (lambda W: tms.feature_dimensionality(W).sqrt(), "largest error|wrong"),
    (_dim_unsafe, "NaN"),
])
def test_dimensionality_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_feature_dimensionality(wrong)


# ---------------------------------------------------------------------------------- phases


def _phase(learned, shared):
    return torch.where(learned, torch.where(shared, 1, 2), 0).long()


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda W: torch.where(tms.interference(W)[:, -1] > 0.1, 1,
                           torch.where(W.norm(dim=1)[:, -1] > 0.5, 2, 0)).long(), "test the norm first"),
    (lambda W: _phase(W.norm(dim=1)[:, -1] > 0.5,
                      (torch.einsum("im,imj->ij", W[:, :, -1], W[:, :, :-1]) ** 2).sum(-1) > 0.1), "unnormalised"),
    (lambda W: tms.classify_phase(W, 0), "first feature"),
    (lambda W: _phase(W.norm(dim=1)[:, -1] > 0.5, tms.interference(W)[:, -1] <= 0.1), "swapped"),
])
def test_classify_phase_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_classify_phase(wrong)


# ---------------------------------------------------------------------------------- packing


def _gram(V):
    U = V / V.norm(dim=1, keepdim=True)
    return U @ U.T


def _off(G):
    return G - torch.diag(torch.diagonal(G))


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda V: _gram(V).abs().max(), "diagonal is included"),
    (lambda V: _off(V @ V.T).abs().max(), "not normalised"),
    (lambda V: _off(_gram(V)).max(), "signed cosine"),
    (lambda V: _off(_gram(V.T)).abs().max(), "columns"),
])
def test_max_abs_cosine_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_max_abs_cosine(wrong)


def _welch_no_zero(n_vectors, d):
    return math.sqrt((n_vectors - d) / (d * (n_vectors - 1)))


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda n_vectors, d: (n_vectors - d) / (d * (n_vectors - 1)), "square root is missing"),
    (lambda n_vectors, d: math.sqrt((n_vectors - d) / (d * n_vectors)), "not d·N"),
    (lambda n_vectors, d: 1 / math.sqrt(d), "N → ∞ limit"),
    (_welch_no_zero, "return 0.0"),
])
def test_welch_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_welch_bound(wrong)


# ---------------------------------------------------------------------------------- batches


def _plain(p, coin_shape, value_one=False, sparsity=False, batch_size=None):
    vals = torch.ones(batch_size, *p.shape, dtype=p.dtype) if value_one else torch.rand(batch_size, *p.shape, dtype=p.dtype)
    coins = torch.rand(coin_shape, dtype=p.dtype)
    q = 1 - p if sparsity else p
    return torch.where(coins < q.cpu(), vals, 0.0).to(p.device)


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda batch_size, feature_probability: _plain(feature_probability, (batch_size, *feature_probability.shape),
                                                   sparsity=True, batch_size=batch_size), "probability 1 − p"),
    (lambda batch_size, feature_probability: _plain(feature_probability, (1, *feature_probability.shape),
                                                   batch_size=batch_size), "one coin per batch"),
    (lambda batch_size, feature_probability: _plain(feature_probability, (batch_size, feature_probability.shape[0], 1),
                                                   batch_size=batch_size), "its own coin"),
    (lambda batch_size, feature_probability: _plain(feature_probability, (batch_size, 1, feature_probability.shape[1]),
                                                   batch_size=batch_size), "every instance needs its own coins"),
    (lambda batch_size, feature_probability: _plain(feature_probability, (batch_size, *feature_probability.shape),
                                                   value_one=True, batch_size=batch_size), "same value"),
    (lambda batch_size, feature_probability: tms.generate_batch(batch_size, feature_probability).transpose(0, 1),
     "wrong order"),
    (lambda batch_size, feature_probability: tms.generate_batch(batch_size, feature_probability.float()),
     "dtype"),
])
def test_generate_batch_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_generate_batch(wrong)


def _pairs(batch_size, p, mode):
    inst, k = p.shape
    vals = torch.rand(batch_size, inst, 2 * k, dtype=p.dtype)
    if mode == "independent":
        present = torch.rand(batch_size, inst, 2 * k, dtype=p.dtype) < p.repeat_interleave(2, -1)
    elif mode == "shared_value":
        present = (torch.rand(batch_size, inst, k, dtype=p.dtype) < p).repeat_interleave(2, -1)
        vals = vals[:, :, 0::2].repeat_interleave(2, -1)
    elif mode == "one_coin_all_pairs":
        u = torch.rand(batch_size, inst, 1, dtype=p.dtype)
        present = (u < p).repeat_interleave(2, -1)
    elif mode == "anti_half":
        u = torch.rand(batch_size, inst, k, dtype=p.dtype)
        first = torch.rand(batch_size, inst, k) < 0.5
        present = torch.stack([(u < p) & first, (u < p) & ~first], -1).flatten(-2)
    elif mode == "anti_overlap":
        present = torch.rand(batch_size, inst, 2 * k, dtype=p.dtype) < p.repeat_interleave(2, -1)
    elif mode == "anti_always":
        first = torch.rand(batch_size, inst, k) < 0.5
        present = torch.stack([first, ~first], -1).flatten(-2)
    return torch.where(present, vals, 0.0)


@pytest.mark.parametrize("mode, diagnosis", [
    ("independent", "one coin per pair"),
    ("shared_value", "same value"),
    ("one_coin_all_pairs", "independent coins"),
])
def test_correlated_rejects(mode, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_generate_correlated_batch(lambda batch_size, feature_probability:
                                               _pairs(batch_size, feature_probability, mode))


@pytest.mark.parametrize("mode, diagnosis", [
    ("anti_half", "probability p/2"),
    ("anti_overlap", "never present together"),
    ("anti_always", "expected 0.4"),
])
def test_anticorrelated_rejects(mode, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_generate_anticorrelated_batch(lambda batch_size, feature_probability:
                                                   _pairs(batch_size, feature_probability, mode))
