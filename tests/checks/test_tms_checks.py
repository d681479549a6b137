"""Chapter 2 checks accept the reference and reject plausible wrong answers with the right diagnosis.

Every wrong answer is listed with its mistake kind (values, shapes, dtypes, differentiability,
boundaries, independence, randomness, stated requirement, side effects) as the start of its test id.
"""

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


# ---------------------------------------------------------------------------------- helpers


def _cases(table):
    return pytest.mark.parametrize("wrong, diagnosis", [c[1:] for c in table], ids=[c[0] for c in table])


def _h(W, x):
    return torch.einsum("imf,bif->bim", W, x)


def _o(W, h):
    return torch.einsum("imf,bim->bif", W, h)


def _ao(W2, h):
    return torch.einsum("ifm,bim->bif", W2, h)


# ---------------------------------------------------------------------------------- forward passes


def _tms_no_grad(W, b, x):
    with torch.no_grad():
        return tms.tms_forward(W, b, x)


def _tms_fixed_inst(W, b, x):
    return torch.relu(torch.einsum("imf,img,big->bif", W, W, x) + b.reshape(3, -1))


def _tms_float32(W, b, x):
    return tms.tms_forward(W.float(), b.float(), x.float()).to(W.dtype)


def _tms_relu_in_place(W, b, x):
    out = torch.einsum("imf,img,big->bif", W, W, x)
    out += b
    return out.relu_()


TMS = [
    ("values: no output ReLU", lambda W, b, x: _ein(W, x) + b, "ReLU is missing on the output"),
    ("values: bias after ReLU", lambda W, b, x: torch.relu(_ein(W, x)) + b, "bias is added after the ReLU"),
    ("values: no bias", lambda W, b, x: torch.relu(_ein(W, x)), "bias b is missing"),
    ("independence: instance 0's weights for all", lambda W, b, x: torch.relu(_ein(W[:1].expand_as(W), x) + b),
     "instance 0's weights"),
    ("shapes: batch and instance swapped", lambda W, b, x: torch.relu(_ein(W, x) + b).transpose(0, 1), "shape"),
    ("shapes: three instances hard-coded", _tms_fixed_inst, "raised|shape"),
    ("dtypes: float32 result", lambda W, b, x: torch.relu(_ein(W, x) + b).float(), "dtype"),
    ("dtypes: float64 computed in float32", _tms_float32, "float32 precision"),
    ("differentiability: under no_grad", _tms_no_grad, "does not carry gradients"),
    ("differentiability: W detached", lambda W, b, x: torch.relu(_ein(W.detach(), x) + b),
     "no gradient reaches 'W'"),
]


@_cases(TMS)
def test_tms_forward_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_tms_forward(wrong)


def test_tms_forward_in_place_relu_on_an_intermediate_is_fine():
    checks.check_tms_forward(_tms_relu_in_place)


NEURON = [
    ("values: no hidden ReLU", tms.tms_forward, "hidden ReLU is missing"),
    ("values: no output ReLU", lambda W, b, x: _o(W, torch.relu(_h(W, x))) + b, "ReLU is missing on the output"),
    ("values: bias after ReLU", lambda W, b, x: torch.relu(_o(W, torch.relu(_h(W, x)))) + b, "bias is added after"),
    ("values: no bias", lambda W, b, x: torch.relu(_o(W, torch.relu(_h(W, x)))), "bias b is missing"),
    ("differentiability: hidden layer detached",
     lambda W, b, x: torch.relu(_o(W, torch.relu(_h(W, x)).detach()) + b), "gradient of neuron_forward.*'W'"),
    ("shapes: squeezed batch", lambda W, b, x: tms.neuron_forward(W, b, x).squeeze(), "shape"),
]


@_cases(NEURON)
def test_neuron_forward_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_neuron_forward(wrong)


def _abs_no_grad(W1, W2, b, x):
    with torch.no_grad():
        return tms.abs_forward(W1, W2, b, x)


ABS = [
    ("values: no hidden ReLU", lambda W1, W2, b, x: torch.relu(_ao(W2, _h(W1, x)) + b), "hidden ReLU is missing"),
    ("values: no output ReLU", lambda W1, W2, b, x: _ao(W2, torch.relu(_h(W1, x))) + b,
     "ReLU is missing on the output"),
    ("values: tied weights", lambda W1, W2, b, x: torch.relu(_ao(W1.transpose(1, 2), torch.relu(_h(W1, x))) + b),
     "tied weights"),
    ("values: no bias", lambda W1, W2, b, x: torch.relu(_ao(W2, torch.relu(_h(W1, x)))), "bias b is missing"),
    ("values: |x| fed in", lambda W1, W2, b, x: torch.relu(_ao(W2, torch.relu(_h(W1, x.abs()))) + b), "wrong"),
    ("differentiability: under no_grad", _abs_no_grad, "does not carry gradients"),
    ("differentiability: W2 detached", lambda W1, W2, b, x: torch.relu(_ao(W2.detach(), torch.relu(_h(W1, x))) + b),
     "no gradient reaches 'W2'"),
]


@_cases(ABS)
def test_abs_forward_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_abs_forward(wrong)


# ---------------------------------------------------------------------------------- loss


def _loss_item(out, target, importance):
    return torch.tensor(tms.importance_weighted_loss(out, target, importance).item(), dtype=out.dtype)


def _loss_fixed_batch(out, target, importance):
    return (importance * (target - out) ** 2).sum(dim=(0, 2)).div(8 * out.shape[2]).sum()


def _loss_float32(out, target, importance):
    return tms.importance_weighted_loss(out.float(), target.float(), importance.float()).to(out.dtype)


LOSS = [
    ("values: averaged over instances", lambda out, target, importance: (importance * (target - out) ** 2).mean(),
     "averaged over instances"),
    ("values: importance squared",
     lambda out, target, importance: ((importance * (target - out)) ** 2).mean(dim=(0, 2)).sum(), "counts as I²"),
    ("values: square root",
     lambda out, target, importance: (importance * ((target - out) ** 2).mean(dim=0).sqrt()).mean(-1).sum(),
     "after a square root"),
    ("values: absolute error",
     lambda out, target, importance: (importance * (target - out).abs()).mean(dim=(0, 2)).sum(), "absolute error"),
    ("values: no importance", lambda out, target, importance: ((target - out) ** 2).mean(dim=(0, 2)).sum(),
     "weights are missing"),
    ("values: summed over features",
     lambda out, target, importance: (importance * (target - out) ** 2).mean(dim=0).sum(), "summed over features"),
    ("shapes: not reduced over instances",
     lambda out, target, importance: (importance * (target - out) ** 2).mean(dim=(0, 2)), "should be reduced"),
    ("shapes: batch size 8 hard-coded", _loss_fixed_batch, "is wrong"),
    ("dtypes: float64 computed in float32", _loss_float32, "float32 precision"),
    ("differentiability: rebuilt from .item()", _loss_item, "does not carry gradients"),
    ("differentiability: target and out swapped and detached",
     lambda out, target, importance: (importance * (out.detach() - target) ** 2).mean(dim=(0, 2)).sum(),
     "does not carry gradients"),
]


@_cases(LOSS)
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


def _dim_float32(W):
    return tms.feature_dimensionality(W.float()).to(W.dtype)


def _dim_normalises_in_place(W):
    norms = W.norm(dim=1)
    W /= norms.unsqueeze(1).clamp_min(1e-8)
    return tms.feature_dimensionality(W * norms.unsqueeze(1))


DIM = [
    ("values: not normalised", _dim_unnormalised, "not normalised"),
    ("values: wrong axis", _dim_wrong_axis, "wrong axis"),
    ("values: dots not squared", _dim_no_square, "must be squared"),
    ("values: square root of D", lambda W: tms.feature_dimensionality(W).sqrt(), "largest error|wrong"),
    ("boundaries: zero feature gives NaN", _dim_unsafe, "NaN"),
    ("dtypes: float64 computed in float32", _dim_float32, "float32 precision"),
    ("side effects: W normalised in place", _dim_normalises_in_place, "in place"),
]


@_cases(DIM)
def test_dimensionality_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_feature_dimensionality(wrong)


# ---------------------------------------------------------------------------------- phases


def _phase(learned, shared):
    return torch.where(learned, torch.where(shared, 1, 2), 0).long()


def _norm(W):
    return W.norm(dim=1)[:, -1]


PHASE = [
    ("values: interference tested first", lambda W: torch.where(tms.interference(W)[:, -1] > 0.1, 1,
                                                                torch.where(_norm(W) > 0.5, 2, 0)).long(),
     "test the norm first"),
    ("values: W_last not normalised",
     lambda W: _phase(_norm(W) > 0.5, (torch.einsum("im,imj->ij", W[:, :, -1], W[:, :, :-1]) ** 2).sum(-1) > 0.1),
     "unnormalised"),
    ("parameters: first feature", lambda W: tms.classify_phase(W, 0), "first feature"),
    ("values: codes swapped", lambda W: _phase(_norm(W) > 0.5, tms.interference(W)[:, -1] <= 0.1), "swapped"),
    ("boundaries: norm >= 0.5 counts as learned",
     lambda W: _phase(_norm(W) >= 0.5, tms.interference(W)[:, -1] > 0.1), "exactly 0.5"),
    ("stated: float codes instead of a long tensor", lambda W: tms.classify_phase(W, -1).to(W.dtype),
     "expected an integer tensor \\(torch.int64\\)"),
    ("stated: int32 codes", lambda W: tms.classify_phase(W, -1).int(), "torch.int64"),
]


@_cases(PHASE)
def test_classify_phase_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_classify_phase(wrong)


# ---------------------------------------------------------------------------------- packing


def _gram(V):
    U = V / V.norm(dim=1, keepdim=True)
    return U @ U.T


def _off(G):
    return G - torch.diag(torch.diagonal(G))


def _fill_diag_in_place(V):
    V /= V.norm(dim=1, keepdim=True)
    G = (V @ V.T).abs()
    return G.fill_diagonal_(0).max()


COS = [
    ("values: diagonal included", lambda V: _gram(V).abs().max(), "diagonal is included"),
    ("values: not normalised", lambda V: _off(V @ V.T).abs().max(), "not normalised"),
    ("values: signed cosine", lambda V: _off(_gram(V)).max(), "signed cosine"),
    ("shapes: columns compared", lambda V: _off(_gram(V.T)).abs().max(), "columns"),
    ("dtypes: float64 computed in float32", lambda V: float(packing.max_abs_cosine(V.float())), "float32 precision"),
    ("side effects: V normalised in place", _fill_diag_in_place, "in place"),
]


@_cases(COS)
def test_max_abs_cosine_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_max_abs_cosine(wrong)


def _welch_no_zero(n_vectors, d):
    return math.sqrt((n_vectors - d) / (d * (n_vectors - 1)))


def _welch_int_zero(n_vectors, d):
    return 0 if n_vectors <= d else math.sqrt((n_vectors - d) / (d * (n_vectors - 1)))


def _welch_tensor(n_vectors, d):
    return torch.tensor(packing.welch_bound(n_vectors, d))


WELCH = [
    ("values: no square root", lambda n_vectors, d: (n_vectors - d) / (d * (n_vectors - 1)), "square root is missing"),
    ("values: d·N", lambda n_vectors, d: math.sqrt(max(n_vectors - d, 0) / (d * n_vectors)), "not d·N"),
    ("values: large-N limit", lambda n_vectors, d: 1 / math.sqrt(d), "N → ∞ limit"),
    ("boundaries: N <= d not handled", _welch_no_zero, "return 0.0"),
    ("stated: returns an int 0", _welch_int_zero, "should return a float, got int: return 0.0, not 0"),
    ("stated: returns a tensor", _welch_tensor, "should return a float, got a tensor"),
]


@_cases(WELCH)
def test_welch_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_welch_bound(wrong)


# ---------------------------------------------------------------------------------- batches


def _plain(p, coin_shape, value_one=False, sparsity=False, batch_size=None):
    vals = torch.ones(batch_size, *p.shape, dtype=p.dtype) if value_one else torch.rand(batch_size, *p.shape, dtype=p.dtype)
    coins = torch.rand(coin_shape, dtype=p.dtype)
    q = 1 - p if sparsity else p
    return torch.where(coins < q.cpu(), vals, 0.0).to(p.device)


def _gen_with(batch_size, feature_probability, values=None, coins=None, q=None):
    p = feature_probability
    shape = (batch_size, *p.shape)
    v = torch.rand(shape, dtype=p.dtype) if values is None else values(shape, p)
    c = torch.rand(shape, dtype=p.dtype) if coins is None else coins(shape, p)
    return torch.where(c < (p if q is None else q(p)), v, torch.zeros_like(v))


def _reseeds(batch_size, feature_probability):
    torch.manual_seed(0)
    return tms.generate_batch(batch_size, feature_probability)


def _numpy_rng(batch_size, feature_probability):
    import numpy as np

    p = feature_probability
    rng = np.random.default_rng()
    shape = (batch_size, *p.shape)
    vals = torch.as_tensor(rng.random(shape), dtype=p.dtype)
    return torch.where(torch.as_tensor(rng.random(shape), dtype=p.dtype) < p, vals, 0.0)


def _fixed_shape(batch_size, feature_probability):
    p = feature_probability
    vals, coins = torch.rand(batch_size, 3, 5, dtype=p.dtype), torch.rand(batch_size, 3, 5, dtype=p.dtype)
    return torch.where(coins < p.expand(3, 5) if p.shape == (3, 5) else coins < 0.4, vals, 0.0)


def _shared_value_per_example(batch_size, feature_probability):
    return _gen_with(batch_size, feature_probability,
                     values=lambda shape, p: torch.rand(shape[0], 1, 1, dtype=p.dtype).expand(shape))


def _shared_value_across_instances(batch_size, feature_probability):
    return _gen_with(batch_size, feature_probability,
                     values=lambda shape, p: torch.rand(shape[0], 1, shape[2], dtype=p.dtype).expand(shape))


def _coin_across_instances_for_last_instance(batch_size, feature_probability):
    """Instances 1.. reuse instance 0's coins: caught by the instance covariance, not only (0, 0)-(1, 0)."""
    def coins(shape, p):
        c = torch.rand(shape, dtype=p.dtype)
        c[:, -1] = c[:, 0]
        return c
    return _gen_with(batch_size, feature_probability, coins=coins)


def _values_squared(batch_size, feature_probability):
    return _gen_with(batch_size, feature_probability, values=lambda shape, p: torch.rand(shape, dtype=p.dtype) ** 1.1)


def _probability_off(batch_size, feature_probability):
    return _gen_with(batch_size, feature_probability, q=lambda p: p * 0.97)


GENERATE = [
    ("values: probability 1 - p", lambda batch_size, feature_probability: _plain(
        feature_probability, (batch_size, *feature_probability.shape), sparsity=True, batch_size=batch_size),
     "probability 1 − p"),
    ("independence: one coin per batch", lambda batch_size, feature_probability: _plain(
        feature_probability, (1, *feature_probability.shape), batch_size=batch_size), "one coin per batch"),
    ("independence: one coin per example for all features", lambda batch_size, feature_probability: _plain(
        feature_probability, (batch_size, feature_probability.shape[0], 1), batch_size=batch_size), "its own coin"),
    ("independence: one coin for all instances", lambda batch_size, feature_probability: _plain(
        feature_probability, (batch_size, 1, feature_probability.shape[1]), batch_size=batch_size),
     "every instance needs its own coins"),
    ("independence: last instance reuses instance 0's coins", _coin_across_instances_for_last_instance,
     "instance 0 .* and instance 2 .* are correlated"),
    ("independence: one value per example", _shared_value_per_example, "are correlated"),
    ("independence: one value shared by the instances", _shared_value_across_instances,
     "every instance needs its own coins and values"),
    ("values: constant value", lambda batch_size, feature_probability: _plain(
        feature_probability, (batch_size, *feature_probability.shape), value_one=True, batch_size=batch_size),
     "same value"),
    ("values: slightly non-uniform values (u ** 1.1)", _values_squared, "average|variance|below"),
    ("parameters: probability 3% too low", _probability_off, "present in .* of the examples; expected"),
    ("shapes: layout [inst, batch, feat]", lambda batch_size, feature_probability:
     tms.generate_batch(batch_size, feature_probability).transpose(0, 1), "wrong order"),
    ("shapes: [3, 5] hard-coded", _fixed_shape, "shape \\[1, 3, 5\\], expected \\[1, 2, 7\\]"),
    ("dtypes: always float32", lambda batch_size, feature_probability:
     tms.generate_batch(batch_size, feature_probability.float()), "dtype"),
    ("randomness: reseeds the global RNG inside", _reseeds, "same batch"),
    ("randomness: numpy's RNG ignores torch.manual_seed", _numpy_rng, "torch.manual_seed does not make"),
]


@_cases(GENERATE)
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
    elif mode == "one_coin_all_instances":
        present = (torch.rand(batch_size, 1, k, dtype=p.dtype) < p).repeat_interleave(2, -1)
    elif mode == "correlated_values":
        present = (torch.rand(batch_size, inst, k, dtype=p.dtype) < p).repeat_interleave(2, -1)
        first = vals[:, :, 0::2]
        vals = torch.stack([first, (first + 0.1 * vals[:, :, 1::2]) % 1.0], -1).flatten(-2)
    elif mode == "anti_half":
        u = torch.rand(batch_size, inst, k, dtype=p.dtype)
        first = torch.rand(batch_size, inst, k) < 0.5
        present = torch.stack([(u < p) & first, (u < p) & ~first], -1).flatten(-2)
    elif mode == "anti_overlap":
        present = torch.rand(batch_size, inst, 2 * k, dtype=p.dtype) < p.repeat_interleave(2, -1)
    elif mode == "anti_always":
        first = torch.rand(batch_size, inst, k) < 0.5
        present = torch.stack([first, ~first], -1).flatten(-2)
    elif mode == "anti_biased_choice":
        u = torch.rand(batch_size, inst, k, dtype=p.dtype)
        first = torch.rand(batch_size, inst, k) < 0.45
        present = torch.stack([(u < 2 * p) & first, (u < 2 * p) & ~first], -1).flatten(-2)
    elif mode == "anti_shared_instances":
        u = torch.rand(batch_size, 1, k, dtype=p.dtype).expand(batch_size, inst, k)
        first = torch.rand(batch_size, inst, k) < 0.5
        present = torch.stack([(u < 2 * p) & first, (u < 2 * p) & ~first], -1).flatten(-2)
    return torch.where(present, vals, 0.0)


CORRELATED = [
    ("independence: features drawn independently", "independent", "one coin per pair"),
    ("values: pair shares its value", "shared_value", "same value"),
    ("independence: one coin for all pairs", "one_coin_all_pairs", "pairs 0 and 1 of instance 0 are correlated"),
    ("independence: one coin for all instances", "one_coin_all_instances", "every instance needs its own coins"),
    ("independence: the pair's values correlated", "correlated_values", "values of the two features"),
]


@pytest.mark.parametrize("mode, diagnosis", [c[1:] for c in CORRELATED], ids=[c[0] for c in CORRELATED])
def test_correlated_rejects(mode, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_generate_correlated_batch(lambda batch_size, feature_probability:
                                               _pairs(batch_size, feature_probability, mode))


ANTI = [
    ("parameters: pair active with p, not 2p", "anti_half", "probability p/2"),
    ("values: both features can be present", "anti_overlap", "never present together"),
    ("parameters: pair always active", "anti_always", "expected 0.4"),
    ("parameters: biased choice within the pair (0.45)", "anti_biased_choice", "present in .* expected"),
    ("independence: one coin for all instances", "anti_shared_instances", "every instance needs its own coins"),
]


@pytest.mark.parametrize("mode, diagnosis", [c[1:] for c in ANTI], ids=[c[0] for c in ANTI])
def test_anticorrelated_rejects(mode, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_generate_anticorrelated_batch(lambda batch_size, feature_probability:
                                                   _pairs(batch_size, feature_probability, mode))


@pytest.mark.slow
@pytest.mark.parametrize("offset", [1, 2, 3])
def test_statistical_checks_pass_the_reference_on_other_seeds(offset):
    """The 5-standard-error tolerances are not tuned to one seed: burning `offset` draws of the global
    RNG first gives the references other batches, and every generator check still passes."""
    def shifted(fn):
        def wrapped(batch_size, feature_probability):
            torch.rand(offset * 7919)
            return fn(batch_size, feature_probability)
        return wrapped

    checks.check_generate_batch(shifted(tms.generate_batch))
    checks.check_generate_correlated_batch(shifted(tms.generate_correlated_batch))
    checks.check_generate_anticorrelated_batch(shifted(tms.generate_anticorrelated_batch))
