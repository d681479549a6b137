"""Chapter 7 checks accept right answers and reject plausible wrong ones with the right diagnosis.
Each wrong implementation is labelled with the kind of mistake it stands for (see CONTRIBUTING)."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.applications.compression import monosemantic_loss
from course_utils.applications.shift import ablate_latents, latent_attribution
from course_utils.checks import CheckFailed
from course_utils.checks import applications as checks

ALL = [checks.check_add_steering, checks.check_dose_response, checks.check_latent_attribution,
       checks.check_ablate_latents, checks.check_worst_group_accuracy, checks.check_monosemantic_loss]


def _steer(act, direction, strength):
    if not math.isfinite(strength):
        raise ValueError("strength must be finite")
    return act + strength * direction / torch.linalg.vector_norm(direction)


def _dose(in_concept, strengths):
    if not (strengths == 0).any():
        raise ValueError("no zero strength")
    frac = in_concept.sum(dim=(1, 2)).double() / in_concept[0].numel()
    return (frac - frac[strengths == 0][0]).float()


def _worst(pred, y, z):
    if len(pred) != len(y) or len(y) != len(z):
        raise ValueError("mismatched lengths")
    accs = []
    for a in (False, True):
        for c in (False, True):
            m = (y == a) & (z == c)
            if m.sum() > 0:
                accs.append((pred[m] == y[m]).sum() / m.sum())
    return torch.stack(accs).min().float()


def test_references_and_other_right_answers_pass(capsys):
    checks.check_add_steering(_steer)
    checks.check_dose_response(_dose)
    checks.check_latent_attribution(latent_attribution)
    checks.check_ablate_latents(ablate_latents)
    checks.check_worst_group_accuracy(_worst)
    checks.check_monosemantic_loss(monosemantic_loss)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and all(ln.startswith("\u2714") for ln in lines)


@pytest.mark.parametrize("check", ALL)
def test_stub_passes_through_as_not_implemented(check):
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise 7.1 (stub)")

    with pytest.raises(NotImplementedError, match="Exercise 7.1"):
        check(stub)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("parameters: not normalised", lambda act, direction, strength: act + strength * direction, "normalised"),
    ("independence: last position only",
     lambda act, direction, strength: torch.cat([act[:, :-1], act[:, -1:] + strength * direction
                                                 / direction.norm()], 1), "last position"),
    ("differentiability: direction detached",
     lambda act, direction, strength: act + strength * direction.detach() / direction.detach().norm(), "gradient"),
    ("side effects: in place", lambda act, direction, strength: act.add_(strength * direction / direction.norm()),
     "in place"),
    ("dtypes: float32 hard-coded", lambda act, direction, strength: (act + strength * direction
                                                                     / direction.norm()).float(), "dtype"),
    ("stated: non-finite strength accepted", lambda act, direction, strength: act + strength * direction
     / direction.norm(), "non-finite|accepted|normalised|nan"),
    ("shapes: width hard-coded to 8", lambda act, direction, strength: act + strength * (direction
                                                                         / direction.norm()).view(1, 1, 8),
     "raised|shape"),
    ("parameters: sign of the strength dropped",
     lambda act, direction, strength: act + abs(strength) * direction / direction.norm(), "wrong|subtracted"),
    # randomness: not applicable, add_steering samples nothing
])
def test_add_steering_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_add_steering(wrong)


def test_add_steering_requires_value_error_on_nan():
    def lenient(act, direction, strength):
        return act + strength * direction / direction.norm()

    with pytest.raises(CheckFailed, match="accepted strength=nan"):
        checks.check_add_steering(lenient)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("parameters: baseline at index 0",
     lambda in_concept, strengths: (lambda f: f - f[0])(in_concept.float().mean(dim=(1, 2))), "index 0"),
    ("stated: baseline not subtracted", lambda in_concept, strengths: in_concept.float().mean(dim=(1, 2)),
     "without subtracting"),
    ("shapes: mean over tokens only", lambda in_concept, strengths: (lambda f: f - f[strengths == 0][0])(
        in_concept.float().mean(dim=2)[:, 0]), "shape|wrong"),
    ("dtypes: bool summed as int", lambda in_concept, strengths: (lambda f: f - f[strengths == 0][0])(
        in_concept.sum(dim=(1, 2))), "dtype|wrong"),
    ("dtypes: float64 returned where float32 is stated", lambda in_concept, strengths: (
        lambda f: f - f[strengths == 0][0])(in_concept.double().mean(dim=(1, 2))), "dtype"),
    ("independence: baseline pooled over strengths", lambda in_concept, strengths: (
        lambda f: f - f.mean())(in_concept.float().mean(dim=(1, 2))), "mean over all strengths"),
    ("side effects: strengths rescaled in place", lambda in_concept, strengths: (
        lambda f, z: f - f[z][0])(in_concept.float().mean(dim=(1, 2)), strengths.div_(strengths.max()) == 0),
     "in place"),
    # differentiability: not applicable (counts of labels, nothing is trained through this)
    # randomness: not applicable (nothing is sampled)
])
def test_dose_response_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_dose_response(wrong)


def test_dose_response_requires_a_zero_strength():
    def lenient(in_concept, strengths):
        f = in_concept.float().mean(dim=(1, 2))
        z = (strengths == 0).nonzero()
        return f - (f[z[0, 0]] if len(z) else 0.0)

    with pytest.raises(CheckFailed, match="strengths without 0"):
        checks.check_dose_response(lenient)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("statistics: sums not means",
     lambda f_pos, f_neg, W_dec, w: ((f_pos.sum(0) - f_neg.sum(0)) * (W_dec @ w)).abs(), "summed"),
    ("parameters: signed", lambda f_pos, f_neg, W_dec, w: (f_pos.mean(0) - f_neg.mean(0)) * (W_dec @ w),
     "absolute"),
    ("stated: probe ignored", lambda f_pos, f_neg, W_dec, w: (f_pos.mean(0) - f_neg.mean(0)).abs(), "probe"),
    ("shapes: transposed decoder", lambda f_pos, f_neg, W_dec, w: ((f_pos.mean(0) - f_neg.mean(0))
                                                                   * (w @ W_dec.T)[: W_dec.shape[0]]).abs()
     if W_dec.shape[0] == W_dec.shape[1] else (W_dec.T @ w), "raised|shape|wrong"),
    ("independence: negatives ignored", lambda f_pos, f_neg, W_dec, w: (f_pos.mean(0) * (W_dec @ w)).abs(),
     "negative class"),
    ("independence: normalised across latents", lambda f_pos, f_neg, W_dec, w: (lambda a: a / a.sum())(
        ((f_pos.mean(0) - f_neg.mean(0)) * (W_dec @ w)).abs()), "normalised"),
    ("dtypes: float32 inside", lambda f_pos, f_neg, W_dec, w: latent_attribution(
        f_pos.float(), f_neg.float(), W_dec.float(), w.float()).to(w.dtype), "float32|float64"),
    ("side effects: positives centred in place", lambda f_pos, f_neg, W_dec, w: (
        f_pos.sub_(f_neg.mean(0)).mean(0) * (W_dec @ w)).abs(), "in place"),
    # differentiability: not applicable (a ranking of latents, computed without gradients)
    # randomness: not applicable (nothing is sampled)
])
def test_latent_attribution_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_latent_attribution(wrong)


def test_latent_attribution_requires_width_check():
    def lenient(f_pos, f_neg, W_dec, w):
        return ((f_pos.mean(0) - f_neg.mean(0)) * (W_dec[:, : len(w)] @ w[: W_dec.shape[1]])).abs()

    with pytest.raises(CheckFailed, match="accepted a probe 5 wide"):
        checks.check_latent_attribution(lenient)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("stated: error term dropped",
     lambda x, f, W_dec, latents: f @ W_dec - f[:, latents] @ W_dec[latents], "error term"),
    ("parameters: complement ablated",
     lambda x, f, W_dec, latents: x - f @ W_dec + f[:, latents] @ W_dec[latents], "every latent except"),
    ("independence: mean over examples",
     lambda x, f, W_dec, latents: x - f[:, latents].mean(0) @ W_dec[latents], "averaged"),
    ("differentiability: detached", lambda x, f, W_dec, latents: (x - f[:, latents] @ W_dec[latents]).detach(),
     "gradient"),
    ("side effects: in place", lambda x, f, W_dec, latents: x.sub_(f[:, latents] @ W_dec[latents]), "in place"),
    ("shapes: no latents crashes", lambda x, f, W_dec, latents: x - torch.stack(
        [f[:, j:j + 1] * W_dec[j] for j in latents]).sum(0), "raised"),
    ("dtypes: float32 hard-coded", lambda x, f, W_dec, latents: (x - f[:, latents] @ W_dec[latents]).float(),
     "dtype"),
    # randomness: not applicable (nothing is sampled)
])
def test_ablate_latents_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_ablate_latents(wrong)


def test_ablate_latents_requires_id_check():
    def lenient(x, f, W_dec, latents):
        keep = [j for j in latents if 0 <= j < W_dec.shape[0]]
        return x - f[:, keep] @ W_dec[keep]

    with pytest.raises(CheckFailed, match="accepted latents="):
        checks.check_ablate_latents(lenient)


def _worst_hits_in_place(pred, y, z):
    hits = pred.logical_xor_(~y)  # in place: pred now says whether each prediction is right
    return torch.stack([hits[(y == a) & (z == c)].float().mean() for a in (True, False) for c in (True, False)
                        if ((y == a) & (z == c)).any()]).min()


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("statistics: overall accuracy", lambda pred, y, z: (pred == y).float().mean(), "overall"),
    ("statistics: mean of groups", lambda pred, y, z: torch.stack(
        [(pred[(y == a) & (z == c)] == a).float().mean() for a in (True, False) for c in (True, False)
         if ((y == a) & (z == c)).any()]).mean(), "averaged"),
    ("stated: against z", lambda pred, y, z: checks._worst_group(pred, z, y), "spurious"),
    ("shapes: empty groups not skipped", lambda pred, y, z: torch.stack(
        [(pred[(y == a) & (z == c)] == a).float().mean() for a in (True, False) for c in (True, False)]).min(),
     "NaN|nan|wrong"),
    ("independence: grouped by y only", lambda pred, y, z: torch.stack(
        [(pred[y == a] == a).float().mean() for a in (True, False) if (y == a).any()]).min(), "y only"),
    ("dtypes: float64 result", lambda pred, y, z: checks._worst_group(pred, y, z).double(), "dtype"),
    ("dtypes: a Python float", lambda pred, y, z: float(checks._worst_group(pred, y, z)), "float|type|tensor"),
    ("side effects: predictions turned into hits in place", _worst_hits_in_place, "in place"),
    # differentiability: not applicable (accuracies of hard predictions)
    # randomness: not applicable (nothing is sampled)
])
def test_worst_group_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_worst_group_accuracy(wrong)


def test_worst_group_requires_length_check():
    def lenient(pred, y, z):
        n = min(len(pred), len(y), len(z))
        return checks._worst_group(pred[:n], y[:n], z[:n])

    with pytest.raises(CheckFailed, match="accepted z of length 4"):
        checks.check_worst_group_accuracy(lenient)


def _by_index(importance, feature_probability, k):
    p = feature_probability
    return (importance * (p / 3 - p**2 / 4))[k:].sum() / len(p)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("parameters: kept by index", _by_index, "by index"),
    ("stated: second moment instead of variance", lambda importance, feature_probability, k: (
        importance * feature_probability / 3)[importance.argsort(descending=True)[k:]].sum() / len(importance),
     "variance"),
    ("statistics: summed over features", lambda importance, feature_probability, k:
     monosemantic_loss(importance, feature_probability, k) * len(importance), "summed"),
    ("dtypes: float32 inside", lambda importance, feature_probability, k:
     monosemantic_loss(importance.float(), feature_probability.float(), k).to(importance.dtype), "float32|float64"),
    ("independence: one probability for all features", lambda importance, feature_probability, k:
     monosemantic_loss(importance, feature_probability.mean().expand_as(feature_probability), k),
     "one probability"),
    ("shapes: a 1-element tensor instead of 0-d", lambda importance, feature_probability, k:
     monosemantic_loss(importance, feature_probability, k).reshape(1), "shape"),
    ("side effects: importance zeroed in place", lambda importance, feature_probability, k: (
        lambda order: (importance.index_fill_(0, order[:k], 0.0) * (
            feature_probability / 3 - feature_probability**2 / 4)).sum() / len(importance))(
        importance.argsort(descending=True)), "in place"),
    # differentiability: not applicable (a closed form, not trained through)
    # randomness: not applicable (nothing is sampled)
])
def test_monosemantic_loss_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_monosemantic_loss(wrong)
