"""Chapter 6 checks accept the reference and reject plausible wrong answers with the right diagnosis.
Each wrong implementation is labelled with the kind of mistake it stands for (see CONTRIBUTING)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_utils.checks import CheckFailed
from course_utils.checks import decomposition as checks
from course_utils.decomposition import metrics, spd

ALL = [checks.check_rank_one_forward, checks.check_causal_importance, checks.check_stochastic_mask,
       checks.check_faithfulness_loss, checks.check_tms_stochastic_recon_loss,
       checks.check_importance_minimality_loss, checks.check_mmcs_ml2r]


def test_references_pass(capsys):
    checks.check_rank_one_forward(spd.rank_one_forward)
    checks.check_causal_importance(spd.causal_importance)
    checks.check_stochastic_mask(spd.stochastic_mask)
    checks.check_faithfulness_loss(spd.faithfulness_loss)
    checks.check_tms_stochastic_recon_loss(checks.tms_stochastic_recon_loss)
    checks.check_importance_minimality_loss(spd.importance_minimality_loss)
    checks.check_mmcs_ml2r(metrics.mmcs_ml2r)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 7 and all(ln.startswith("\u2714") for ln in lines)


@pytest.mark.parametrize("check", ALL)
def test_stub_passes_through_as_not_implemented(check):
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise 6.1 (stub)")

    with pytest.raises(NotImplementedError, match="Exercise 6.1"):
        check(stub)


# ------------------------------------------------------------------------------- 6.1 rank-one forward


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("requirement: the mask", lambda x, V, U, mask: x @ V @ U, "mask is not applied"),
    ("independence across examples", lambda x, V, U, mask: (x @ V * mask.mean(0)) @ U, "averaged the mask"),
    ("differentiability", lambda x, V, U, mask: ((x @ V * mask) @ U).detach(), "gradient"),
    ("differentiability (U detached)", lambda x, V, U, mask: (x @ V * mask) @ U.detach(), "'U'"),
    ("shapes: hard-coded C", lambda x, V, U, mask: (x @ V[:, :7] * mask[:, :7]) @ U[:7], "raised|shape|wrong"),
    ("dtype: float32 hard-coded", lambda x, V, U, mask: ((x @ V * mask) @ U).float(), "dtype"),
    ("side effect: input mutated", lambda x, V, U, mask: (x @ V * mask.mul_(1.0).add_(0.0).clamp_(max=0.9)) @ U,
     "in place|wrong"),
])
def test_rank_one_forward_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_rank_one_forward(wrong)


# ------------------------------------------------------------------------------- 6.2 causal importance


def _pre(inner, W_in, b_in, W_out, b_out, act=F.gelu):
    return (act(inner[..., None] * W_in + b_in) * W_out).sum(-1) + b_out


def _ci(lo=spd.lower_leaky_hard_sigmoid, up=spd.upper_leaky_hard_sigmoid, act=F.gelu, detach=False):
    def fn(inner, W_in, b_in, W_out, b_out):
        pre = _pre(inner, W_in, b_in, W_out, b_out, act)
        pre = pre.detach() if detach else pre
        return lo(pre), up(pre)
    return fn


def _shared_mlp(inner, W_in, b_in, W_out, b_out):
    return spd.causal_importance(inner, W_in[:1].expand_as(W_in), b_in[:1].expand_as(b_in),
                                 W_out[:1].expand_as(W_out), b_out[:1].expand_as(b_out))


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("requirement: lower-leaky gate", _ci(lo=lambda z: z.clamp(0, 1)), "g_lower is a plain clamp"),
    ("requirement: upper-leaky gate", _ci(up=lambda z: z.clamp(0, 1)), "g_upper is a plain clamp"),
    ("requirement: which gate is which", _ci(lo=spd.upper_leaky_hard_sigmoid, up=spd.lower_leaky_hard_sigmoid),
     "swapped"),
    ("parameter varied: the slope", _ci(lo=lambda z: spd.lower_leaky_hard_sigmoid(z, 0.1),
                                        up=lambda z: spd.upper_leaky_hard_sigmoid(z, 0.1)), "slope"),
    ("requirement: GELU", _ci(act=torch.relu), "GELU"),
    ("independence across subcomponents", _shared_mlp, "subcomponent 0"),
    ("differentiability", _ci(detach=True), "gradient"),
])
def test_causal_importance_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_causal_importance(wrong)


# ------------------------------------------------------------------------------- 6.3 stochastic masks


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("randomness: global RNG instead of the generator", lambda g, generator: g + (1 - g) * torch.rand_like(g),
     "global RNG"),
    ("requirement: the mask lies in [g, 1]", lambda g, generator: g * torch.rand(
        g.shape, generator=generator, dtype=g.dtype), "g·r"),
    ("independence across examples", lambda g, generator: g + (1 - g) * torch.rand(
        g.shape[-1:], generator=generator, dtype=g.dtype), "shared by the whole batch"),
    ("dtype: r drawn in float32", lambda g, generator: g + (1 - g) * torch.rand(
        g.shape, generator=generator).to(g.dtype), "float32"),
    ("differentiability: g detached", lambda g, generator: (g + (1 - g) * torch.rand(
        g.shape, generator=generator, dtype=g.dtype)).detach(), "gradients"),
    ("differentiability: g detached in one use", lambda g, generator: g + (1 - g.detach()) * torch.rand(
        g.shape, generator=generator, dtype=g.dtype), "gradient of the mask"),
    ("side effect: g modified in place", lambda g, generator: g.mul_(1.0).add_(
        (1 - g) * torch.rand(g.shape, generator=generator, dtype=g.dtype)), "in place"),
])
def test_stochastic_mask_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_stochastic_mask(wrong)


# ------------------------------------------------------------------------------- 6.4 faithfulness


def _deltas(weights, components):
    return [W - (components[k][0] @ components[k][1]).T for k, W in weights.items()]


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("requirement: a mean, not a sum", lambda weights, components: sum(
        (d ** 2).sum() for d in _deltas(weights, components)), "summed"),
    ("other counts: layers of different sizes", lambda weights, components: sum(
        (d ** 2).mean() for d in _deltas(weights, components)) / len(weights), "averaged each layer"),
    ("shapes: W not transposed (non-square W)", lambda weights, components: sum(
        ((W - components[k][0] @ components[k][1]) ** 2).sum() for k, W in weights.items()) / sum(
        W.numel() for W in weights.values()), "raised|wrong"),
    ("differentiability", lambda weights, components: spd.faithfulness_loss(
        weights, {k: (V.detach(), U.detach()) for k, (V, U) in components.items()}), "gradient"),
])
def test_faithfulness_loss_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_faithfulness_loss(wrong)


# ------------------------------------------------------------------------------- 6.5 stochastic recon


ref = checks.tms_stochastic_recon_loss


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("requirement: one mask per layer", lambda x, V, U, b, mask1, mask2, target_out: ref(
        x, V, U, b, mask1, mask1, target_out), "both layers used mask1"),
    ("requirement: the second layer is masked too", lambda x, V, U, b, mask1, mask2, target_out: ref(
        x, V, U, b, mask1, torch.ones_like(mask2), target_out), "not masked"),
    ("requirement: ReLU", lambda x, V, U, b, mask1, mask2, target_out: (
        (((x @ V * mask1) @ U @ U.T * mask2) @ V.T + b - target_out) ** 2).mean(), "ReLU"),
    ("requirement: mean over all entries", lambda x, V, U, b, mask1, mask2, target_out: (
        (torch.relu(((x @ V * mask1) @ U @ U.T * mask2) @ V.T + b) - target_out) ** 2).sum(-1).mean(),
     "summed over features"),
    ("independence across examples: masks averaged over the batch", lambda x, V, U, b, mask1, mask2, target_out:
     ref(x, V, U, b, mask1.mean(0).expand_as(mask1), mask2.mean(0).expand_as(mask2), target_out), "wrong"),
    ("differentiability: masks detached", lambda x, V, U, b, mask1, mask2, target_out: ref(
        x, V, U, b, mask1.detach(), mask2.detach(), target_out), "mask1"),
])
def test_tms_stochastic_recon_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_tms_stochastic_recon_loss(wrong)


# ------------------------------------------------------------------------------- 6.6 importance minimality


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("requirement: sum over subcomponents", lambda g_upper, p: sum((g ** p).mean() for g in g_upper),
     "mean over subcomponents"),
    ("requirement: mean over the batch", lambda g_upper, p: sum((g ** p).sum() for g in g_upper), "summed over"),
    ("parameter varied: p ignored", lambda g_upper, p: sum(g.sum(-1).mean() for g in g_upper), "p is ignored"),
    ("other counts: layers averaged", lambda g_upper, p: sum((g ** p).sum(-1).mean() for g in g_upper) / len(g_upper),
     "averaged the layers"),
    ("other counts: only the first layer", lambda g_upper, p: (g_upper[0] ** p).sum(-1).mean(), "wrong"),
    ("differentiability", lambda g_upper, p: spd.importance_minimality_loss([g.detach() for g in g_upper], p),
     "gradient"),
])
def test_importance_minimality_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_importance_minimality_loss(wrong)


# ------------------------------------------------------------------------------- 6.7 MMCS / ML2R


def _cos(W, V, U):
    s = torch.einsum("fc,ch->cfh", V, U)
    return s, torch.einsum("cfh,fh->cf", s / (s.norm(dim=-1, keepdim=True) + 1e-12),
                           W.T / W.T.norm(dim=-1, keepdim=True))


def _abs_cos(W, V, U):
    s, c = _cos(W, V, U)
    best = c.abs().max(0)
    m = s[best.indices, torch.arange(W.shape[1])]
    return best.values.mean(), (m.norm(dim=-1) / W.T.norm(dim=-1)).mean()


def _whole_norm(W, V, U):
    s, c = _cos(W, V, U)
    best = c.max(0)
    return best.values.mean(), (s[best.indices].flatten(1).norm(dim=-1) / W.T.norm(dim=-1)).mean()


def _rows(W, V, U):  # cosines of rows instead of columns: transpose confusion
    return metrics.mmcs_ml2r(W.T, U.T, V.T) if W.shape[0] == W.shape[1] else metrics.mmcs_ml2r(W, V, U)[0] * 0.0


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("requirement: signed cosine", _abs_cos, "\\|cos\\|"),
    ("requirement: the matched column's norm", _whole_norm, "whole subcomponent"),
    ("requirement: ML2R direction", lambda W, V, U: (metrics.mmcs_ml2r(W, V, U)[0],
                                                     1 / metrics.mmcs_ml2r(W, V, U)[1]), "wrong"),
    ("shapes: max over the wrong axis", lambda W, V, U: (_cos(W, V, U)[1].max(1).values.mean(),
                                                         metrics.mmcs_ml2r(W, V, U)[1]), "max over input features"),
    ("shapes: transposed roles (rows for columns)", _rows, "wrong|should return"),
    ("dtype: float32 hard-coded", lambda W, V, U: tuple(t.float() for t in metrics.mmcs_ml2r(W, V, U)), "dtype"),
])
def test_mmcs_ml2r_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_mmcs_ml2r(wrong)
