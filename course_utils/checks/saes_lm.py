"""Checks for chapter 4 part 2 (SAEs on the course language model): CE loss recovered with a splice
hook, explained variance, firing density, top-activating contexts, logit effects, scoring a unit
against labels, matching latents across dictionary sizes.

Each check compares the learner's function with the reference in :mod:`course_utils.saes` on seeded
random inputs of several shapes (one document / one token, non-square, k at its ends), in float32 and
float64 (and on the GPU when present), and names the plausible mistake when a wrong answer matches one.
The splice-hook check runs a tiny seeded TransformerLens model and also checks side effects (no hook
left behind, caller's hooks kept, modes and parameters unchanged).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch

# imported here, not inside tiny_model: importing transformer_lens rebinds torch.manual_seed, which the
# grader snapshots after importing the checks and before the learner's code runs
import transformer_lens  # noqa: F401

from course_utils.checks._core import Case, CheckFailed, Mistake, check_function, dtypes_and_devices, passed
from course_utils.checks._hooks import assert_untouched, call_on_failing_model, snapshot
from course_utils.saes import dashboards, evals, interp, splitting


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rand(shape: tuple[int, ...], g: torch.Generator, dt: torch.dtype, dev: torch.device,
          scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dt).to(dev)


# ---------------------------------------------------------------------------------------------- CE recovered


def tiny_model(seed: int, d_model: int = 8, d_mlp: int = 12) -> Any:
    """A seeded one-block TransformerLens model (vocabulary 23, context 7) for the splice-hook check."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=d_model, d_head=4, n_heads=d_model // 4, d_mlp=d_mlp,
                                  d_vocab=23, n_ctx=7, act_fn="relu", normalization_type="LN", seed=seed,
                                  device="cpu")
    model = HookedTransformer(cfg)
    model.eval()
    return model


def _tiny_sae(d_in: int, d_sae: int, seed: int, x: torch.Tensor) -> Any:
    from course_utils.saes import make_sae

    sae = make_sae("relu", d_in=d_in, d_sae=d_sae, seed=seed)
    with torch.no_grad():  # biases away from zero, so a decoder without b_dec is visibly wrong
        sae.b_dec.copy_(x.mean(0) + 0.3 * torch.randn(d_in, generator=_g(seed)))
        sae.b_enc.copy_(0.1 * torch.randn(d_sae, generator=_g(seed + 1)))
    return sae.eval()


class _FailingSAE(torch.nn.Module):
    """An SAE whose every call raises: a splice hook added with ``model.add_hook`` and removed only
    after a successful forward pass survives it."""

    def __init__(self, sae: Any) -> None:
        super().__init__()
        self.cfg, self.W_dec, self.b_dec = sae.cfg, sae.W_dec, sae.b_dec

    def _fail(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        raise RuntimeError("this SAE fails on purpose (testing that the splice hook is removed anyway)")

    forward = encode = decode = _fail


def _acts(model: Any, hook_name: str, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=hook_name)
    return cache[hook_name].reshape(-1, cache[hook_name].shape[-1])


def _ce_wrong(model: Any, sae: Any, hook_name: str, tokens: torch.Tensor, what: str) -> torch.Tensor:
    with torch.no_grad():
        clean = model(tokens, return_type="loss")
        x = _acts(model, hook_name, tokens)
        if what == "no_b_dec":
            recon = lambda a, hook: (sae.encode(a) @ sae.W_dec).reshape(a.shape)  # noqa: E731
        else:
            recon = lambda a, hook: sae(a.reshape(-1, a.shape[-1])).reshape(a.shape)  # noqa: E731
        spliced = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, recon)])
        base = x.mean(0) if what == "mean" else torch.zeros(x.shape[-1])
        abl = model.run_with_hooks(tokens, return_type="loss",
                                   fwd_hooks=[(hook_name, lambda a, hook: base.expand_as(a).clone())])
        if what == "inverted":
            return torch.tensor(float((spliced - clean) / (abl - clean)))
        if what == "per_position":
            per = [model.run_with_hooks(tokens, return_type="loss", loss_per_token=True, fwd_hooks=f)
                   for f in ([], [(hook_name, recon)], [(hook_name, lambda a, hook: torch.zeros_like(a))])]
            return ((per[2] - per[1]) / (per[2] - per[0])).mean()
        return torch.tensor(float((abl - spliced) / (abl - clean)))


def check_ce_loss_recovered(fn: Callable[..., float]) -> None:
    """``ce_loss_recovered(model, sae, hook_name, tokens) -> float``: (CE_zero − CE_sae)/(CE_zero − CE_clean).

    Covers: formula (mean-ablation baseline, inverted ratio, a ratio per position averaged, the
    decoder without b_dec), one shape only (batch 1, other hooks and widths), parameters (other seeds,
    an MLP hook and two residual hooks of the same width, so a hard-coded hook fails), side effects
    (no hook left on the model, also when the forward pass raises; the caller's hook kept; the
    model's and the SAE's modes and parameters unchanged; autograd on; tokens not modified), stated
    (a Python float computed under no_grad, not a tensor). Not applicable: differentiability (the
    exercise asks for no_grad), dtypes (the model is float32, tokens long), independence and
    randomness (nothing is drawn)."""
    name = "ce_loss_recovered"
    n = 0
    for seed, hook_name, batch in ((0, "blocks.0.mlp.hook_post", 3), (1, "blocks.0.hook_resid_post", 1),
                                   (2, "blocks.0.hook_resid_pre", 2), (4, "blocks.0.hook_resid_mid", 2)):
        model = tiny_model(seed)
        tokens = torch.randint(0, 23, (batch, 7), generator=_g(seed))
        x = _acts(model, hook_name, tokens)
        sae = _tiny_sae(x.shape[-1], 2 * x.shape[-1] + 1, seed, x)
        model.blocks[0].hook_resid_mid.add_hook(lambda a, hook: None, dir="fwd", is_permanent=True)  # caller's own
        before = snapshot(model)
        sae_before = {k: v.clone() for k, v in sae.state_dict().items()}
        given = tokens.clone()
        try:
            out = fn(model=model, sae=sae, hook_name=hook_name, tokens=given)
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001
            raise CheckFailed(f"{name} raised {type(err).__name__}: {err} (hook {hook_name!r}, tokens "
                              f"{list(tokens.shape)})") from err
        assert_untouched(name, model, before)
        if any(not torch.equal(v, sae.state_dict()[k]) for k, v in sae_before.items()):
            raise CheckFailed(f"{name} changed the SAE's parameters: evaluate it under torch.no_grad() only")
        if sae.training:
            raise CheckFailed(f"{name} switched the SAE to train mode and left it so: leave its train/eval "
                              "mode as you found it")
        if not torch.equal(given, tokens):
            raise CheckFailed(f"{name} modified its input 'tokens' in place; work on a copy")
        if isinstance(out, torch.Tensor) and out.requires_grad:
            raise CheckFailed(f"{name} returned a tensor that requires grad: compute under torch.no_grad() "
                              "and return float(...)")
        if not isinstance(out, numbers.Real) or isinstance(out, bool):
            raise CheckFailed(f"{name} must return a Python float (the exercise asks for one: float(...)), "
                              f"got {type(out).__name__}")
        got = float(out)
        want = evals.ce_loss_recovered(model, sae, hook_name, tokens)
        if abs(got - want) > 1e-4 * max(1.0, abs(want)):
            hint = ""
            for what, msg in (("mean", "you used the mean-ablation baseline; this exercise asks for zero ablation "
                                       "(replace the activation by zeros)"),
                              ("inverted", "the ratio is inverted: CE recovered is (CE_zero − CE_sae)/(CE_zero − "
                                           "CE_clean), 1 when the SAE costs nothing"),
                              ("per_position", "you averaged a ratio per position; take the ratio of the mean "
                                               "losses"),
                              ("no_b_dec", "the spliced reconstruction has no decoder bias: use sae(x) (or "
                                           "decode(encode(x)), which adds b_dec)")):
                if abs(float(_ce_wrong(model, sae, hook_name, tokens, what)) - got) < 1e-4 * max(1.0, abs(got)):
                    hint = f" Likely mistake: {msg}."
                    break
            raise CheckFailed(f"{name} returned {got:.5f}, expected {want:.5f} (hook {hook_name!r}, tokens "
                              f"{list(tokens.shape)}).{hint}")
        n += 1
    model = tiny_model(3)
    tokens = torch.randint(0, 23, (2, 7), generator=_g(3))
    x = _acts(model, "blocks.0.mlp.hook_post", tokens)
    call_on_failing_model(fn, dict(model=model, sae=_FailingSAE(_tiny_sae(x.shape[-1], 9, 3, x)),
                                   hook_name="blocks.0.mlp.hook_post", tokens=tokens), name)
    passed(name, f"{n} tiny models, MLP and residual hooks, hooks and modes left as found")


# ---------------------------------------------------------------------------------------------- explained variance


def explained_variance_ref(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """1 − Σ‖x − x̂‖² / Σ‖x − x̄‖² over tokens (x̄ the mean over tokens): a 0-d tensor in x's dtype."""
    return 1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()


def check_explained_variance(fn: Callable[..., torch.Tensor]) -> None:
    """Covers: formula (not centred, per-dimension R² averaged, FVU returned, x̂'s variance), one shape
    only (d = 1, two tokens, non-square), dtypes (float64 at float64 tolerance), side effects (inputs
    not modified), differentiability (the value flows back to x̂), stated (a 0-d tensor, not a float).
    Not applicable: parameters (there are none), independence and randomness (nothing is drawn)."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (n, d) in enumerate(((50, 6), (2, 3), (40, 1))):
            g = _g(10 * k + j)
            x = _rand((n, d), g, dt, dev) + 2.0
            cases.append(Case(dict(x=x, x_hat=x + _rand((n, d), g, dt, dev, 0.4))))
    mistakes = [
        Mistake("the denominator is not centred: divide by Σ‖x − x̄‖² (the variance), not Σ‖x‖²",
                lambda x, x_hat: 1 - (x - x_hat).pow(2).sum() / x.pow(2).sum()),
        Mistake("you averaged an R² per dimension (sklearn's r2_score); pool the squared errors over all "
                "dimensions first", lambda x, x_hat: (1 - (x - x_hat).pow(2).sum(0) / (x - x.mean(0)).pow(2).sum(0)).mean()),
        Mistake("you returned the fraction of variance unexplained (FVU); explained variance is 1 − FVU",
                lambda x, x_hat: (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()),
        Mistake("the denominator uses the reconstruction's variance; it is the variance of x",
                lambda x, x_hat: 1 - (x - x_hat).pow(2).sum() / (x_hat - x_hat.mean(0)).pow(2).sum()),
    ]
    n = check_function("explained_variance", fn, explained_variance_ref, cases, mistakes, grad=("x_hat",))
    passed("explained_variance", f"{n} random cases incl. d = 1 and two tokens")


# ---------------------------------------------------------------------------------------------- firing density


def firing_density_ref(latents: torch.Tensor) -> torch.Tensor:
    """The fraction of tokens on which each latent is non-zero: [n_tokens, d_sae] -> [d_sae]."""
    return (latents != 0).to(latents.dtype).mean(0)


def check_firing_density(fn: Callable[..., torch.Tensor]) -> None:
    """Covers: formula (mean activation, a count instead of a fraction, '> 0' where negative values
    are non-zero too), one shape only (one token, square [n, n] where the wrong axis keeps the shape,
    40, 1 and 6 tokens so a hard-coded count fails), dtypes (float32/float64 results in the input's
    dtype), side effects (input not modified), stated (!= 0). Not applicable: differentiability (a
    count, piecewise constant), parameters (there are none), independence and randomness."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (n, m) in enumerate(((40, 9), (1, 5), (6, 6))):
            g = _g(100 + 10 * k + j)
            a = _rand((n, m), g, dt, dev)
            keep = torch.rand((n, m), generator=g) < 0.3
            a = torch.where(keep.to(dev), a.abs(), torch.zeros_like(a))
            if j == 2:
                a[0, 0] = -0.5  # a negative value is non-zero: it counts
            cases.append(Case(dict(latents=a), label="one value is negative" if j == 2 else ""))
    mistakes = [
        Mistake("you returned the mean activation; the density is the fraction of tokens where the latent "
                "is non-zero", lambda latents: latents.mean(0)),
        Mistake("you counted tokens; divide by the number of tokens", lambda latents: (latents != 0).to(latents.dtype).sum(0)),
        Mistake("you averaged over latents (dim=1), giving a per-token L0 fraction; average over tokens (dim=0)",
                lambda latents: (latents != 0).to(latents.dtype).mean(1)),
        Mistake("you counted only positive values (> 0); a latent fires wherever it is non-zero (!= 0)",
                lambda latents: (latents > 0).to(latents.dtype).mean(0)),
    ]
    n = check_function("firing_density", fn, firing_density_ref, cases, mistakes)
    passed("firing_density", f"{n} random cases incl. one token and a negative value")


# ---------------------------------------------------------------------------------------------- top contexts


def check_top_activating(fn: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
    """Covers: formula (smallest values, the top per document, indices unravelled with the wrong
    length, document and position swapped), one shape only (one document, non-square, a hard-coded
    sequence length), parameters (k = 1, k = every position), dtypes (long indices; float64 values),
    side effects (e.g. masking found maxima in the input), stated (largest first). Not applicable:
    differentiability (a selection for display), independence and randomness (nothing is drawn)."""
    cases = []
    for k_, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (docs, seq, ks) in enumerate(((5, 7, (4, 1)), (1, 9, (9,)), (8, 3, (6,)))):
            g = _g(200 + 10 * k_ + j)
            acts = _rand((docs, seq), g, dt, dev)
            for k in ks:
                cases.append(Case(dict(acts=acts, k=k)))

    def flat(acts: torch.Tensor, k: int, largest: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        return acts.reshape(-1).topk(k, largest=largest)

    def wrong_unravel(acts: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
        v, i = flat(acts, k)
        return v, i // acts.shape[0], i % acts.shape[0]

    def swapped(acts: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
        v, i = flat(acts, k)
        return v, i % acts.shape[1], i // acts.shape[1]

    def smallest(acts: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
        v, i = flat(acts, k, largest=False)
        return v, i // acts.shape[1], i % acts.shape[1]

    def per_doc(acts: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
        v, pos = acts.max(1)
        order = v.argsort(descending=True)[:k]
        return v[order], order, pos[order]

    def ascending(acts: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
        v, i = flat(acts, k)
        return v.flip(0), (i // acts.shape[1]).flip(0), (i % acts.shape[1]).flip(0)

    mistakes = [
        Mistake("you took the k smallest activations; take the largest", smallest),
        Mistake("the k largest are in ascending order; return them largest first", ascending),
        Mistake("you unravelled the flat index with the number of documents; position = index % seq, "
                "document = index // seq", wrong_unravel),
        Mistake("document and position are swapped in the result", swapped),
        Mistake("you took only the best position of each document; rank every position of every document",
                per_doc),
    ]
    n = check_function("top_activating", fn, dashboards.top_activating, cases, mistakes,
                       names=("values", "doc", "pos"))
    passed("top_activating", f"{n} random cases incl. one document, k = 1 and k = all")


# ---------------------------------------------------------------------------------------------- logit effects


def check_logit_effects(fn: Callable[..., torch.Tensor]) -> None:
    """Covers: formula (not centred, a column of W_dec, standardised instead of centred, W_U
    transposed where square), parameters (several latent indices incl. the last), one shape only
    (square d_sae = d_model, vocab 1-wide is not allowed: ≥ 2), differentiability (W_dec and W_U),
    dtypes, side effects. Not applicable: independence and randomness (nothing is drawn); nothing
    else is stated."""
    cases = []
    for k_, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (m, d, v, lats) in enumerate(((10, 6, 15, (3, 9)), (5, 5, 5, (0, 4)), (7, 4, 2, (6,)))):
            g = _g(300 + 10 * k_ + j)
            W_dec, W_U = _rand((m, d), g, dt, dev), _rand((d, v), g, dt, dev)
            for lat in lats:
                cases.append(Case(dict(W_dec=W_dec, W_U=W_U, latent=lat)))
    mistakes = [
        Mistake("the effects are not centred: subtract their mean over the vocabulary (softmax ignores a "
                "constant shift)", lambda W_dec, W_U, latent: W_dec[latent] @ W_U),
        Mistake("you took a column of W_dec; latent i's decoder direction is the row W_dec[i]",
                lambda W_dec, W_U, latent: (W_dec[:, latent] @ W_U) - (W_dec[:, latent] @ W_U).mean()),
        Mistake("you standardised (divided by the standard deviation); only centre",
                lambda W_dec, W_U, latent: ((W_dec[latent] @ W_U) - (W_dec[latent] @ W_U).mean())
                / (W_dec[latent] @ W_U).std()),
        Mistake("you multiplied by W_U transposed; W_U is [d_model, d_vocab]: W_dec[latent] @ W_U",
                lambda W_dec, W_U, latent: (W_dec[latent] @ W_U.T) - (W_dec[latent] @ W_U.T).mean()),
        Mistake("you used latent 0 whatever `latent` is", lambda W_dec, W_U, latent: (W_dec[0] @ W_U)
                - (W_dec[0] @ W_U).mean()),
    ]
    n = check_function("logit_effects", fn, dashboards.logit_effects, cases, mistakes, grad=("W_dec", "W_U"))
    passed("logit_effects", f"{n} random cases, gradients included")


# ---------------------------------------------------------------------------------------------- unit score


def _unit_cases() -> list[Case]:
    cases = []
    for k_, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (n, c, floor) in enumerate(((200, 6, 0.5), (120, 1, 0.3), (150, 4, 1.0))):
            g = _g(400 + 10 * k_ + j)
            concepts = torch.rand((n, c), generator=g) < 0.25
            if c > 1:  # a superset of concept 0: precision as high, recall below the floor of 0.5
                concepts[:, -1] = concepts[:, 0] | (torch.rand(n, generator=g) < 0.6)
            acts = _rand((n,), g, dt, dev, 0.6) + 1.0 * concepts[:, 0].to(dt).to(dev)
            if floor == 1.0:  # boundary: one concept is exactly where the unit fires (recall 1 = the floor)
                concepts[:, 1] = (acts > 0.5 * acts.max()).cpu()
            cases.append(Case(dict(acts=acts, concepts=concepts.to(dev), recall_floor=floor)))
        cases.append(Case(dict(acts=-torch.rand(30, generator=g).to(dt).to(dev),
                               concepts=(torch.rand((30, 3), generator=g) < 0.5).to(dev), recall_floor=0.5),
                          label="the unit never fires (all activations ≤ 0): score 0, best −1"))
        cases += _unit_boundary_cases(dt, dev)
    return cases


def _unit_boundary_cases(dt: torch.dtype, dev: torch.device) -> list[Case]:
    """Three stated rules that random cases rarely touch: values exactly at ½ max do not fire, a
    negative chance-corrected precision is clipped to 0, and ties go to the higher recall."""
    acts = torch.tensor([2.0, 1.0, 1.0, 1.5, 0.2, 0.0, 0.3, 1.0], dtype=dt, device=dev)  # ½ max = 1.0 exactly
    half = torch.tensor([[1, 0], [0, 1], [0, 1], [1, 0], [0, 0], [0, 1], [1, 0], [0, 1]], dtype=torch.bool)
    n = 12
    anti_acts = torch.zeros(n, dtype=dt, device=dev)
    anti_acts[:3] = 1.0  # fires on tokens 0-2
    anti = torch.zeros(n, 1, dtype=torch.bool)
    anti[2:10, 0] = True  # P(c | fires) = 1/3 < P(c) = 2/3: corrected precision −1
    tie = torch.zeros(n, 2, dtype=torch.bool)
    tie[:6, 0] = True  # contains the firing set, recall 1/2
    tie[:3, 1] = True  # exactly the firing set, recall 1: both have corrected precision 1
    return [Case(dict(acts=acts, concepts=half.to(dev), recall_floor=0.5),
                 label="values exactly at ½ max (not firing)"),
            Case(dict(acts=anti_acts, concepts=anti.to(dev), recall_floor=0.0),
                 label="an anti-correlated concept, recall floor 0 (score clipped to 0)"),
            Case(dict(acts=anti_acts, concepts=tie.to(dev), recall_floor=0.3),
                 label="two concepts tied at precision 1 (the higher recall wins)")]


def _unit_variant(acts: torch.Tensor, concepts: torch.Tensor, recall_floor: float, corrected: bool = True,
                  floor: bool = True, threshold: str = "half", strict: bool = False, clip: bool = True,
                  tie: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    top = acts.max()
    if threshold == "half":
        fires = (acts > 0.5 * top) & (top > 0)
    else:
        fires = (acts >= 0.5 * top) & (top > 0) if threshold == "half_or_equal" else acts > 0
    c = concepts.to(acts.dtype)
    tp = fires.to(acts.dtype) @ c
    prec = tp / fires.sum().clamp_min(1)
    rec = tp / c.sum(0).clamp_min(1)
    base = c.mean(0)
    s = (prec - base) / (1 - base).clamp_min(1e-12) if corrected else prec
    if floor:
        s = torch.where(rec > recall_floor if strict else rec >= recall_floor, s, torch.full_like(s, -torch.inf))
    if fires.sum() == 0 or not torch.isfinite(s).any():
        return acts.new_zeros(()), torch.tensor(-1, device=acts.device)
    j = (s + 1e-6 * rec).argmax() if tie else s.argmax()  # ties go to the higher recall in the reference
    return (s[j].clamp_min(0) if clip else s[j]), j


def check_unit_score(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``unit_score(acts, concepts, recall_floor) -> (score, best)``: the best chance-corrected
    precision over concepts with recall ≥ the floor, the unit firing where acts > ½ max.

    Covers: formula (raw precision without the chance correction, the recall floor ignored, firing
    taken as acts > 0), parameters (floors 0, 0.3, 0.5 and exactly 1.0; one concept), boundaries (the
    unit that never fires, values exactly at ½ max), stated (the score clipped at 0, ties to the
    higher recall, (0, −1) when nothing qualifies), one shape only (one concept, 12 to 200 tokens),
    dtypes (score in acts' dtype, best a 0-d long), side effects. Not applicable: differentiability
    (a thresholded count, nothing trains through it), independence and randomness (nothing is drawn)."""
    mistakes = [
        Mistake("the precision is not chance-corrected: use (P(c | fires) − P(c)) / (1 − P(c))",
                lambda acts, concepts, recall_floor: _unit_variant(acts, concepts, recall_floor, corrected=False)),
        Mistake("the recall floor is ignored: only concepts with recall ≥ recall_floor may be the best",
                lambda acts, concepts, recall_floor: _unit_variant(acts, concepts, recall_floor, floor=False)),
        Mistake("you took 'fires' as acts > 0; the unit fires where acts > ½ of its maximum",
                lambda acts, concepts, recall_floor: _unit_variant(acts, concepts, recall_floor, threshold="pos")),
        Mistake("you required recall > recall_floor; a concept exactly at the floor counts (recall ≥ floor)",
                lambda acts, concepts, recall_floor: _unit_variant(acts, concepts, recall_floor, strict=True)),
        Mistake("recall_floor is ignored (fixed at 0.5): use the argument",
                lambda acts, concepts, recall_floor: _unit_variant(acts, concepts, 0.5)),
        Mistake("you took 'fires' as acts ≥ ½ max; a value exactly at half the maximum does not fire (>)",
                lambda acts, concepts, recall_floor: _unit_variant(acts, concepts, recall_floor,
                                                                   threshold="half_or_equal")),
        Mistake("the score is not clipped at 0: a concept rarer where the unit fires than overall gives a "
                "negative corrected precision; return max(score, 0)",
                lambda acts, concepts, recall_floor: _unit_variant(acts, concepts, recall_floor, clip=False)),
        Mistake("ties are not broken towards the higher recall: add 1e-6 * recall before the argmax",
                lambda acts, concepts, recall_floor: _unit_variant(acts, concepts, recall_floor, tie=False)),
    ]
    n = check_function("unit_score", fn, interp.unit_score, _unit_cases(), mistakes, names=("score", "best"))
    passed("unit_score", f"{n} random cases incl. recall floor 1 and a unit that never fires")


# ---------------------------------------------------------------------------------------------- matching


def check_match_latents(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Covers: formula (dot products without normalising, |cosine|, columns normalised), one shape only
    (one small latent, equal sizes, the matching done the wrong way round), dtypes (long indices,
    float64 cosines), side effects, stated (signed cosine, one match per row of W_small). Not
    applicable: differentiability (an argmax for analysis), parameters (there are none),
    independence and randomness (nothing is drawn)."""
    cases = []
    for k_, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (m1, m2, d) in enumerate(((6, 20, 5), (1, 7, 4), (8, 8, 8))):
            g = _g(500 + 10 * k_ + j)
            scales = torch.rand(m2, 1, generator=g).to(dt).to(dev) * 3 + 0.2
            cases.append(Case(dict(W_small=_rand((m1, d), g, dt, dev),
                                   W_large=_rand((m2, d), g, dt, dev) * scales)))

    def unit(W: torch.Tensor, dim: int = -1) -> torch.Tensor:
        return W / W.norm(dim=dim, keepdim=True)

    mistakes = [
        Mistake("you compared dot products of unnormalised rows; normalise each decoder row first (cosine)",
                lambda W_small, W_large: (W_small @ W_large.T).max(1)),
        Mistake("you took |cosine|: an anti-parallel latent is not a match; use the signed cosine",
                lambda W_small, W_large: (unit(W_small) @ unit(W_large).T).abs().max(1)),
        Mistake("you normalised the columns (dim=0); each latent is a row",
                lambda W_small, W_large: (unit(W_small, 0) @ unit(W_large, 0).T).max(1)),
    ]

    def wrapped(W_small: torch.Tensor, W_large: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(splitting.match_latents(W_small, W_large))  # type: ignore[return-value]

    def learner(W_small: torch.Tensor, W_large: torch.Tensor) -> Any:
        out = fn(W_small=W_small, W_large=W_large)
        return tuple(out) if isinstance(out, (tuple, list)) or hasattr(out, "indices") else out

    mistakes = [Mistake(m.message, lambda f=m.fn, **kw: tuple(f(**kw))) for m in mistakes]
    n = check_function("match_latents", learner, wrapped, cases, mistakes, names=("cosine", "index"))
    passed("match_latents", f"{n} random cases incl. one latent and equal sizes")
