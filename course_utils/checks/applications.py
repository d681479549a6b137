"""Checks for chapter 7 (applications): the steering edit, the dose-response measurement, attribution
of a probe's output to SAE latents, ablation with the error term kept, worst-group accuracy and the
monosemantic-width loss behind the superposition savings.

Each check compares the learner's function with the reference on seeded inputs (float32 and float64,
float64 at float64 tolerances; batch 1, other widths), checks gradients where the function is used
inside a forward pass, names known mistakes, and checks the stated errors on bad input.

Mistake kinds covered, per check (each check's docstring says which apply and why the others do not;
``tests/checks/test_applications_checks.py`` feeds a wrong implementation for every kind that applies):
differentiability (steering, ablation: ``grad``), shapes (batch 1, other widths, one latent, no
latent, 0-d results), independence (per-position / per-example / per-latent / per-feature results,
groups by both labels), parameters (strength 0 and negative, baseline not first, ``k = 0`` and
``k = n``), dtypes (bool labels, float64 at float64 tolerance, the stated float32 results), side
effects (inputs modified in place), stated requirements (ValueError on a non-finite strength, unknown
latent ids, mismatched lengths, no zero strength, a probe of the wrong width). Randomness does not
apply to any of the six: none of them samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from course_utils.applications.compression import monosemantic_loss as _mono_ref
from course_utils.checks._core import Case, CheckFailed, Mistake, check_function, passed


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(shape: tuple[int, ...], g: torch.Generator, dt: torch.dtype) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dt)


def _expect_value_error(name: str, fn: Callable[..., Any], kwargs: dict[str, Any], what: str) -> None:
    try:
        fn(**kwargs)
    except NotImplementedError:
        raise
    except ValueError:
        return
    except Exception as err:  # noqa: BLE001 - the wrong exception type is the learner's mistake
        raise CheckFailed(f"{name} raised {type(err).__name__} for {what}; raise a ValueError that says what "
                          "is wrong") from None
    raise CheckFailed(f"{name} accepted {what}; it must raise a ValueError naming the problem")


# ------------------------------------------------------------------------------------ 7.1 steering


def _add_steering(act: torch.Tensor, direction: torch.Tensor, strength: float) -> torch.Tensor:
    if not math.isfinite(strength):
        raise ValueError("strength must be finite")
    return act + strength * direction / direction.norm()


def check_add_steering(fn: Callable[..., Any]) -> None:
    """Covers: differentiability (gradients to ``act`` and ``direction``), shapes (batch 1, one
    position, widths 6, 8 and 16: a hard-coded width fails), independence (every position and batch
    item is edited), parameters (normalisation; strength 0 and negative), dtypes (float64 at float64
    tolerance), side effects (in-place edits of ``act``) and the stated ValueError on a non-finite
    strength. Randomness: not applicable (nothing is sampled)."""
    cases = []
    for seed, (b, p, d), s in ((0, (2, 5, 8), 3.0), (1, (1, 1, 16), -2.5), (2, (3, 4, 6), 0.0)):
        for dt in (torch.float32, torch.float64):
            g = _gen(seed)
            cases.append(Case(dict(act=_randn((b, p, d), g, dt), direction=_randn((d,), g, dt) * 3,
                                   strength=s), label=f"batch {b}, {p} positions, strength {s}"))
    mistakes = [
        Mistake("the direction is not normalised: divide it by its norm so that strength is the norm of "
                "what you add", lambda act, direction, strength: act + strength * direction),
        Mistake("you added only at the last position; steering edits every position",
                lambda act, direction, strength: torch.cat([act[:, :-1], act[:, -1:] + strength * direction
                                                            / direction.norm()], 1)),
        Mistake("you subtracted the direction", lambda act, direction, strength: act - strength * direction
                / direction.norm()),
        Mistake("you replaced the activation by the direction instead of adding to it",
                lambda act, direction, strength: (strength * direction / direction.norm()).expand_as(act)),
    ]
    n = check_function("add_steering", fn, _add_steering, cases, mistakes, grad=("act", "direction"))
    g = _gen(3)
    for bad in (float("nan"), float("inf")):
        _expect_value_error("add_steering", fn, dict(act=_randn((1, 2, 4), g, torch.float32),
                                                     direction=_randn((4,), g, torch.float32), strength=bad),
                            f"strength={bad}")
    passed("add_steering", f"{n} cases and a non-finite strength")


# ------------------------------------------------------------------------------- 7.2 dose-response


def _dose_response(in_concept: torch.Tensor, strengths: torch.Tensor) -> torch.Tensor:
    zero = (strengths == 0).nonzero()
    if len(zero) == 0:
        raise ValueError("strengths must include 0 (the unsteered baseline)")
    frac = in_concept.double().mean(dim=(1, 2))
    return (frac - frac[zero[0, 0]]).float()


def check_dose_response(fn: Callable[..., Any]) -> None:
    """Covers: shapes (one prompt, one token; the mean over prompts and tokens, not one axis only),
    independence (one fraction per strength: pooling strengths fails), parameters (the baseline found
    by value, not by position), dtypes (bool input; the stated float32 result), side effects (inputs
    modified in place) and the stated ValueError when no strength is 0. Differentiability: not
    applicable (labels of generated tokens are counted, nothing is trained through this);
    randomness: not applicable."""
    cases = []
    for seed, (n_s, b, t), zero_at in ((0, (5, 4, 6), 0), (1, (4, 1, 3), 2), (2, (3, 6, 1), 1)):
        g = _gen(seed)
        in_concept = torch.rand((n_s, b, t), generator=g) < torch.linspace(0.1, 0.8, n_s)[:, None, None]
        strengths = torch.linspace(1.0, 8.0, n_s)
        strengths[zero_at] = 0.0
        cases.append(Case(dict(in_concept=in_concept, strengths=strengths),
                          label=f"{n_s} strengths, {b} prompts, {t} tokens, strength 0 at index {zero_at}"))
    mistakes = [
        Mistake("you took the baseline at index 0; find the entry whose strength is 0",
                lambda in_concept, strengths: (lambda f: f - f[0])(in_concept.float().mean(dim=(1, 2)))),
        Mistake("you returned the fractions without subtracting the unsteered baseline",
                lambda in_concept, strengths: in_concept.float().mean(dim=(1, 2))),
        Mistake("you divided by the baseline (a ratio); the effect is the difference of fractions",
                lambda in_concept, strengths: (lambda f: f / f[strengths == 0][0])(
                    in_concept.float().mean(dim=(1, 2)))),
        Mistake("you subtracted the mean over all strengths; each strength's effect is against the "
                "fraction at strength 0 only",
                lambda in_concept, strengths: (lambda f: f - f.mean())(in_concept.float().mean(dim=(1, 2)))),
    ]
    n = check_function("dose_response", fn, _dose_response, cases, mistakes, atol=1e-6)
    _expect_value_error("dose_response", fn, dict(in_concept=torch.ones(2, 2, 2, dtype=torch.bool),
                                                  strengths=torch.tensor([1.0, 2.0])), "strengths without 0")
    passed("dose_response", f"{n} cases and strengths without 0")


# ------------------------------------------------------------------------------- 7.3 attribution


def _latent_attribution(f_pos: torch.Tensor, f_neg: torch.Tensor, W_dec: torch.Tensor, w: torch.Tensor
                        ) -> torch.Tensor:
    if W_dec.shape[1] != w.shape[0]:
        raise ValueError("probe width does not match the decoder")
    return ((f_pos.mean(0) - f_neg.mean(0)) * (W_dec @ w)).abs()


def check_latent_attribution(fn: Callable[..., Any]) -> None:
    """Covers: shapes (the decoder projection ``W_dec @ w``, not ``W_dec.T``; non-square shapes; one
    example per class), independence (one score per latent, not normalised across latents; the
    negative class), parameters (class means, not sums, with classes of different sizes; the absolute
    value), dtypes (float64 at float64 tolerance), side effects (inputs modified in place) and the
    stated ValueError for a probe of the wrong width. Differentiability: not applicable (a ranking,
    computed without gradients on the page); randomness: not applicable."""
    cases = []
    for seed, (n_pos, n_neg, d_sae, d) in ((0, (7, 4, 12, 5)), (1, (1, 1, 6, 3)), (2, (3, 9, 10, 10))):
        for dt in (torch.float32, torch.float64):
            g = _gen(seed)
            cases.append(Case(dict(f_pos=_randn((n_pos, d_sae), g, dt).relu(),
                                   f_neg=_randn((n_neg, d_sae), g, dt).relu(),
                                   W_dec=_randn((d_sae, d), g, dt), w=_randn((d,), g, dt)),
                              label=f"{n_pos} positives, {n_neg} negatives, d_sae {d_sae}, d {d}"))
    mistakes = [
        Mistake("you summed over examples; use the mean activation of each class (the classes differ in size)",
                lambda f_pos, f_neg, W_dec, w: ((f_pos.sum(0) - f_neg.sum(0)) * (W_dec @ w)).abs()),
        Mistake("you dropped the absolute value: a latent that pushes the probe down matters as much",
                lambda f_pos, f_neg, W_dec, w: (f_pos.mean(0) - f_neg.mean(0)) * (W_dec @ w)),
        Mistake("you left out the probe: each latent's effect goes through W_dec[j] . w",
                lambda f_pos, f_neg, W_dec, w: (f_pos.mean(0) - f_neg.mean(0)).abs()),
        Mistake("you used only the positive class; subtract the negative class's mean",
                lambda f_pos, f_neg, W_dec, w: (f_pos.mean(0) * (W_dec @ w)).abs()),
        Mistake("you normalised the attributions across latents; each latent's score stands on its own",
                lambda f_pos, f_neg, W_dec, w: (lambda a: a / a.sum())(
                    ((f_pos.mean(0) - f_neg.mean(0)) * (W_dec @ w)).abs())),
    ]
    n = check_function("latent_attribution", fn, _latent_attribution, cases, mistakes)
    g = _gen(4)
    _expect_value_error("latent_attribution", fn, dict(f_pos=_randn((3, 6), g, torch.float32),
                                                       f_neg=_randn((3, 6), g, torch.float32),
                                                       W_dec=_randn((6, 4), g, torch.float32),
                                                       w=_randn((5,), g, torch.float32)),
                        "a probe 5 wide on a decoder that writes 4-wide vectors")
    passed("latent_attribution", f"{n} cases and a probe of the wrong width")


# ------------------------------------------------------------------------------- 7.4 ablation


def _ablate(x: torch.Tensor, f: torch.Tensor, W_dec: torch.Tensor, latents: list[int]) -> torch.Tensor:
    if any(not 0 <= j < W_dec.shape[0] for j in latents):
        raise ValueError("unknown latent id")
    return x - f[:, latents] @ W_dec[latents]


def check_ablate_latents(fn: Callable[..., Any]) -> None:
    """Covers: differentiability (gradients to ``x`` and ``f``), shapes (one example; one, several and
    no latents), independence (per-example activations), parameters (only the listed latents removed,
    the error term ``x - f @ W_dec`` kept), dtypes (float64 at float64 tolerance), side effects
    (in-place edits of ``x``) and the stated ValueError for unknown latent ids. Randomness: not
    applicable."""
    cases = []
    for seed, (n, d_sae, d), lat in ((0, (6, 10, 4), [2, 7]), (1, (1, 5, 3), [4]), (2, (4, 8, 8), []),
                                     (3, (5, 12, 6), [0, 3, 11, 5])):
        for dt in (torch.float32, torch.float64):
            g = _gen(seed)
            cases.append(Case(dict(x=_randn((n, d), g, dt), f=_randn((n, d_sae), g, dt).relu(),
                                   W_dec=_randn((d_sae, d), g, dt), latents=lat),
                              label=f"{n} examples, latents {lat}"))
    keep_others = Mistake(
        "you returned the SAE reconstruction without the ablated latents and dropped the error term "
        "x - f @ W_dec; keep it: subtract only the ablated latents' contribution",
        lambda x, f, W_dec, latents: f @ W_dec - f[:, latents] @ W_dec[latents])
    mistakes = [
        keep_others,
        Mistake("you removed every latent except the listed ones",
                lambda x, f, W_dec, latents: x - f @ W_dec + f[:, latents] @ W_dec[latents]),
        Mistake("you added the latents' contribution instead of subtracting it",
                lambda x, f, W_dec, latents: x + f[:, latents] @ W_dec[latents]),
        Mistake("you averaged the latents over the examples; each example keeps its own activations",
                lambda x, f, W_dec, latents: x - f[:, latents].mean(0) @ W_dec[latents]),
    ]
    n = check_function("ablate_latents", fn, _ablate, cases, mistakes, grad=("x", "f"))
    g = _gen(5)
    for bad in ([10], [-1]):
        _expect_value_error("ablate_latents", fn, dict(x=_randn((2, 3), g, torch.float32),
                                                       f=_randn((2, 10), g, torch.float32).relu(),
                                                       W_dec=_randn((10, 3), g, torch.float32), latents=bad),
                            f"latents={bad} with 10 latents")
    passed("ablate_latents", f"{n} cases and unknown latent ids")


# ------------------------------------------------------------------------------- 7.5 worst group


def _worst_group(pred: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    if not (len(pred) == len(y) == len(z)):
        raise ValueError("lengths differ")
    accs = [(pred[(y == a) & (z == c)] == a).double().mean() for a in (True, False) for c in (True, False)
            if ((y == a) & (z == c)).any()]
    return torch.stack(accs).min().float()


def check_worst_group_accuracy(fn: Callable[..., Any]) -> None:
    """Covers: shapes (9 to 60 tokens; empty groups skipped), independence (groups by both labels, not
    by y alone), parameters (the minimum, not the mean, not the overall accuracy; accuracy on y, not
    z), dtypes (bool inputs; the stated 0-d float32 result: a float64 tensor or a Python float fails),
    side effects (inputs modified in place) and the stated ValueError for labels of mismatched length.
    Differentiability: not applicable (accuracies of hard predictions); randomness: not applicable."""
    cases = []
    for seed, n in ((0, 40), (1, 9), (2, 60)):
        g = _gen(seed)
        y = torch.rand(n, generator=g) < 0.5
        z = torch.rand(n, generator=g) < 0.5
        pred = torch.where(torch.rand(n, generator=g) < 0.7, z, y)
        cases.append(Case(dict(pred=pred, y=y, z=z), label=f"{n} tokens"))
    g = _gen(3)
    y = torch.rand(30, generator=g) < 0.5
    cases.append(Case(dict(pred=torch.rand(30, generator=g) < 0.5, y=y, z=y.clone()),
                      label="z equal to y: two groups are empty"))
    mistakes = [
        Mistake("you returned the overall accuracy; take the accuracy within each (y, z) group and then "
                "the smallest", lambda pred, y, z: (pred == y).float().mean()),
        Mistake("you averaged the groups' accuracies; the worst group is the minimum",
                lambda pred, y, z: torch.stack([(pred[(y == a) & (z == c)] == a).float().mean()
                                                for a in (True, False) for c in (True, False)
                                                if ((y == a) & (z == c)).any()]).mean()),
        Mistake("you scored the predictions against the spurious label z; accuracy is on the intended y",
                lambda pred, y, z: _worst_group(pred, z, y)),
        Mistake("you grouped the tokens by y only; the groups are the four (y, z) combinations",
                lambda pred, y, z: torch.stack([(pred[y == a] == a).float().mean() for a in (True, False)
                                                if (y == a).any()]).min()),
    ]
    n = check_function("worst_group_accuracy", fn, _worst_group, cases, mistakes, atol=1e-6)
    _expect_value_error("worst_group_accuracy", fn, dict(pred=torch.ones(5, dtype=torch.bool),
                                                         y=torch.ones(5, dtype=torch.bool),
                                                         z=torch.ones(4, dtype=torch.bool)),
                        "z of length 4 with 5 predictions")
    passed("worst_group_accuracy", f"{n} cases and labels of mismatched length")


# ------------------------------------------------------------------------------- 7.6 savings


def check_monosemantic_loss(fn: Callable[..., Any]) -> None:
    """Covers: shapes (4 to 12 features; the stated 0-d result), independence (each feature's own
    probability), parameters (features kept by importance, not by index: importances are shuffled;
    ``k = 0`` and ``k = n``; the variance of a dropped feature, since its best constant output is the
    mean; the mean over features), dtypes (float64 at float64 tolerance), side effects (inputs
    modified in place). Differentiability: not applicable (a closed form, not trained through);
    randomness: not applicable."""
    cases = []
    for seed, n, k in ((0, 8, 3), (1, 5, 0), (2, 6, 6), (3, 12, 5)):
        for dt in (torch.float32, torch.float64):
            g = _gen(seed)
            imp = (0.8 ** torch.arange(n, dtype=torch.float64))[torch.randperm(n, generator=g)].to(dt)
            p = (0.05 + 0.9 * torch.rand(n, generator=g, dtype=torch.float64)).to(dt)
            cases.append(Case(dict(importance=imp, feature_probability=p, k=k), label=f"n_feat {n}, k {k}"))

    def by_index(importance: torch.Tensor, feature_probability: torch.Tensor, k: int) -> torch.Tensor:
        p = feature_probability
        return (importance * (p / 3 - p**2 / 4))[k:].sum() / len(p)

    def second_moment(importance: torch.Tensor, feature_probability: torch.Tensor, k: int) -> torch.Tensor:
        per_feature = importance * feature_probability / 3
        return per_feature[importance.argsort(descending=True, stable=True)[k:]].sum() / len(importance)

    mistakes = [
        Mistake("you kept the first k features by index; keep the k most important ones", by_index),
        Mistake("a dropped feature costs E[x^2] = p/3 only if the model outputs 0; its bias can output the "
                "mean p/2, leaving the variance p/3 - p^2/4", second_moment),
        Mistake("you summed over features; the loss is the mean over all n_feat features",
                lambda importance, feature_probability, k: _mono_ref(importance, feature_probability, k)
                * len(importance)),
        Mistake("you used one probability (the mean) for every feature; each feature has its own p_i",
                lambda importance, feature_probability, k: _mono_ref(
                    importance, feature_probability.mean().expand_as(feature_probability), k)),
    ]
    n = check_function("monosemantic_loss", fn, _mono_ref, cases, mistakes)
    passed("monosemantic_loss", f"{n} cases")

