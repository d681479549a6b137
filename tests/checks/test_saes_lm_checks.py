"""Chapter 4 part 2 checks accept the reference and a differently written right answer, and reject
plausible wrong answers of every kind that applies with the right diagnosis (formula, shapes,
parameters/boundaries, dtypes, differentiability, side effects, stated requirements).

Audit of the grading issue's mistake kinds, per check (each applicable kind has a test below whose
id starts with it; the reasons for the others are repeated next to each check's tests):

| check              | diff. | shapes | indep. | params | dtypes | side eff. | random | stated |
|--------------------|-------|--------|--------|--------|--------|-----------|--------|--------|
| ce_loss_recovered  | n/a   | yes    | n/a    | yes    | n/a    | yes       | n/a    | yes    |
| explained_variance | yes   | yes    | n/a    | n/a    | yes    | yes       | n/a    | yes    |
| firing_density     | n/a   | yes    | n/a    | n/a    | yes    | yes       | n/a    | yes    |
| top_activating     | n/a   | yes    | n/a    | yes    | yes    | yes       | n/a    | yes    |
| logit_effects      | yes   | yes    | n/a    | yes    | yes    | yes       | n/a    | n/a    |
| unit_score         | n/a   | yes    | n/a    | yes    | yes    | yes       | n/a    | yes    |
| match_latents      | n/a   | yes    | n/a    | n/a    | yes    | yes       | n/a    | yes    |

Independence and randomness apply to none of them: no exercise of this chapter draws random numbers
(they evaluate given activations, weights or a given model deterministically).
"""

from __future__ import annotations

import time

import pytest
import torch

from course_utils.checks import CheckFailed
from course_utils.checks import saes_lm as checks
from course_utils.saes import dashboards, evals, interp, splitting

REFERENCES = [
    (checks.check_ce_loss_recovered, evals.ce_loss_recovered),
    (checks.check_explained_variance, checks.explained_variance_ref),
    (checks.check_firing_density, checks.firing_density_ref),
    (checks.check_top_activating, dashboards.top_activating),
    (checks.check_logit_effects, dashboards.logit_effects),
    (checks.check_unit_score, interp.unit_score),
    (checks.check_match_latents, splitting.match_latents),
]


def test_references_pass(capsys):
    for check, ref in REFERENCES:
        check(ref)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(REFERENCES) and all(ln.startswith("\u2714") for ln in lines)


@pytest.mark.parametrize("check, ref", REFERENCES, ids=[c.__name__ for c, _ in REFERENCES])
def test_checks_are_fast(check, ref):
    """Each check runs in well under 2 s (the notebooks call them); measured as CPU time on one
    thread, so a busy machine does not make it flaky (about 0.4 s for the splice hook, the rest < 0.1 s)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t = time.process_time()
        check(ref)
        assert time.process_time() - t < 2.0
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("check", [c for c, _ in REFERENCES])
def test_stub_passes_through_as_not_implemented(check):
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise 4b.1 (stub)")

    with pytest.raises(NotImplementedError, match="Exercise 4b.1"):
        check(stub)


# ---------------------------------------------------------------------------------------------- right answers


@torch.no_grad()
def _ce_other(model, sae, hook_name, tokens):
    losses = []
    for hooks in ([], [(hook_name, lambda a, hook: sae.decode(sae.encode(a)))],
                  [(hook_name, lambda a, hook: a * 0)]):
        losses.append(model.run_with_hooks(tokens, return_type="loss", fwd_hooks=hooks).item())
    clean, spliced, zero = losses
    return (zero - spliced) / (zero - clean)


def _ev_other(x, x_hat):
    xc = x - x.mean(dim=0, keepdim=True)
    return 1 - ((x - x_hat) ** 2).sum() / (xc * xc).sum()


def _top_other(acts, k):
    values, flat = torch.sort(acts.flatten(), descending=True)
    flat = flat[:k]
    return values[:k], torch.div(flat, acts.shape[1], rounding_mode="floor"), torch.remainder(flat, acts.shape[1])


def _match_other(W_small, W_large):
    cos = torch.nn.functional.normalize(W_small, dim=1) @ torch.nn.functional.normalize(W_large, dim=1).T
    idx = cos.argmax(dim=1)
    return cos.gather(1, idx[:, None])[:, 0], idx


@pytest.mark.parametrize("check, fn", [
    (checks.check_ce_loss_recovered, _ce_other),
    (checks.check_explained_variance, _ev_other),
    (checks.check_firing_density, lambda latents: latents.ne(0).sum(0).to(latents.dtype) / latents.shape[0]),
    (checks.check_top_activating, _top_other),
    (checks.check_logit_effects, lambda W_dec, W_U, latent: torch.einsum("d,dv->v", W_dec[latent], W_U)
     - torch.einsum("d,dv->v", W_dec[latent], W_U).mean()),
    (checks.check_match_latents, _match_other),
], ids=["ce", "ev", "density", "top", "logits", "match"])
def test_differently_written_right_answers_pass(check, fn):
    check(fn)


# ---------------------------------------------------------------------------------------------- CE recovered


@torch.no_grad()
def _ce(model, sae, hook_name, tokens, recon=None, base="zero", invert=False):
    clean = model(tokens, return_type="loss")
    recon = recon or (lambda a, hook: sae(a.reshape(-1, a.shape[-1])).reshape(a.shape))
    spliced = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, recon)])
    if base == "mean":
        _, cache = model.run_with_cache(tokens, names_filter=hook_name)
        mu = cache[hook_name].reshape(-1, cache[hook_name].shape[-1]).mean(0)
        hook = lambda a, hook: mu.expand_as(a).clone()  # noqa: E731
    else:
        hook = lambda a, hook: torch.zeros_like(a)  # noqa: E731
    zero = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, hook)])
    return float((spliced - clean) / (zero - clean)) if invert else float((zero - spliced) / (zero - clean))


def _ce_hook_left(model, sae, hook_name, tokens):
    model.add_hook(hook_name, lambda a, hook: None)  # never removed
    return _ce(model, sae, hook_name, tokens)


def _ce_train_mode(model, sae, hook_name, tokens):
    model.train()
    return _ce(model, sae, hook_name, tokens)


def _ce_clears_hooks(model, sae, hook_name, tokens):
    model.reset_hooks(including_permanent=True)
    return _ce(model, sae, hook_name, tokens)


def _ce_grad_tensor(model, sae, hook_name, tokens):
    clean = model(tokens, return_type="loss")
    spliced = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, lambda a, hook: sae(a))])
    zero = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, lambda a, hook: a * 0)])
    return (zero - spliced) / (zero - clean)


def _ce_one_batch(model, sae, hook_name, tokens):
    return _ce(model, sae, hook_name, tokens[:1])


def _ce_hard_coded_hook(model, sae, hook_name, tokens):
    return _ce(model, sae, "blocks.0.hook_resid_post" if sae.cfg.d_in == 8 else hook_name, tokens)


@torch.no_grad()
def _ce_add_hook_no_finally(model, sae, hook_name, tokens):
    clean = model(tokens, return_type="loss")
    model.add_hook(hook_name, lambda a, hook: sae(a.reshape(-1, a.shape[-1])).reshape(a.shape))
    spliced = model(tokens, return_type="loss")
    model.reset_hooks()  # skipped when the forward pass raises
    zero = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, lambda a, hook: a * 0)])
    return float((zero - spliced) / (zero - clean))


def _ce_sae_train_mode(model, sae, hook_name, tokens):
    sae.train()
    return _ce(model, sae, hook_name, tokens)


def _ce_normalises_decoder(model, sae, hook_name, tokens):
    with torch.no_grad():
        sae.W_dec.div_(sae.W_dec.norm(dim=1, keepdim=True))
    return _ce(model, sae, hook_name, tokens)


def _ce_grad_left_off(model, sae, hook_name, tokens):
    torch.set_grad_enabled(False)
    return _ce(model, sae, hook_name, tokens)


def _ce_modifies_tokens(model, sae, hook_name, tokens):
    out = _ce(model, sae, hook_name, tokens)
    tokens.clamp_(max=5)
    return out


@torch.no_grad()
def _ce_tensor(model, sae, hook_name, tokens):
    return torch.tensor(_ce(model, sae, hook_name, tokens))


@pytest.mark.parametrize("fn, match", [
    pytest.param(lambda **kw: _ce(**kw, base="mean"), "mean-ablation", id="formula: mean-ablation baseline"),
    pytest.param(lambda **kw: _ce(**kw, invert=True), "inverted", id="formula: ratio inverted"),
    pytest.param(lambda model, sae, hook_name, tokens: _ce(
        model, sae, hook_name, tokens, recon=lambda a, hook: sae.encode(a) @ sae.W_dec), "b_dec",
        id="formula: decoder without b_dec"),
    pytest.param(_ce_one_batch, "expected", id="one shape only: only the first sequence"),
    pytest.param(_ce_hook_left, "left its hook", id="side effects: hook left registered"),
    pytest.param(_ce_train_mode, "train", id="side effects: model left in train mode"),
    pytest.param(_ce_clears_hooks, "removed a hook", id="side effects: caller's hook removed"),
    pytest.param(_ce_grad_tensor, "requires grad", id="stated: a tensor with grad, not a float"),
    pytest.param(_ce_tensor, "Python float", id="stated: a 0-d tensor, not a float"),
    pytest.param(_ce_hard_coded_hook, "expected", id="parameters: hook hard-coded for 8-wide hooks"),
    pytest.param(_ce_add_hook_no_finally, "raises an error", id="side effects: hook left when the forward raises"),
    pytest.param(_ce_sae_train_mode, "SAE to train mode", id="side effects: SAE left in train mode"),
    pytest.param(_ce_normalises_decoder, "changed the SAE's parameters", id="side effects: SAE decoder normalised"),
    pytest.param(_ce_grad_left_off, "autograd switched off", id="side effects: autograd left off"),
    pytest.param(_ce_modifies_tokens, "'tokens' in place", id="side effects: tokens modified in place"),
])
def test_ce_loss_recovered_rejects(fn, match):
    """Not applicable: differentiability (the exercise asks for no_grad), dtypes (the model is
    float32 and tokens are long; nothing else is passed), independence and randomness (nothing is
    drawn)."""
    with pytest.raises(CheckFailed, match=match):
        checks.check_ce_loss_recovered(fn)


def test_ce_per_position_ratio_is_named():
    @torch.no_grad()
    def per_position(model, sae, hook_name, tokens):
        per = [model.run_with_hooks(tokens, return_type="loss", loss_per_token=True, fwd_hooks=f)
               for f in ([], [(hook_name, lambda a, hook: sae(a))], [(hook_name, lambda a, hook: a * 0)])]
        return float(((per[2] - per[1]) / (per[2] - per[0])).mean())

    with pytest.raises(CheckFailed, match="per position"):
        checks.check_ce_loss_recovered(per_position)


# ---------------------------------------------------------------------------------------------- explained variance


@pytest.mark.parametrize("fn, match", [
    pytest.param(lambda x, x_hat: 1 - (x - x_hat).pow(2).sum() / x.pow(2).sum(), "not centred",
                 id="formula: not centred"),
    pytest.param(lambda x, x_hat: (1 - (x - x_hat).pow(2).sum(0) / (x - x.mean(0)).pow(2).sum(0)).mean(),
                 "per dimension", id="formula: per-dimension R2"),
    pytest.param(lambda x, x_hat: (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum(), "FVU",
                 id="formula: FVU"),
    pytest.param(lambda x, x_hat: 1 - (x - x_hat).pow(2).sum() / (x - x[:1]).pow(2).sum(), "wrong",
                 id="one shape only: centred on the first token"),
    pytest.param(lambda x, x_hat: (1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).float(),
                 "float", id="dtypes: float32 inside"),
    pytest.param(lambda x, x_hat: torch.tensor(float(1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()),
                                               dtype=x.dtype), "gradient", id="differentiability: via float()"),
    pytest.param(lambda x, x_hat: 1 - (x.sub_(x_hat)).pow(2).sum() / (x - x.mean(0)).pow(2).sum(), "in place",
                 id="side effects: modifies x"),
    pytest.param(lambda x, x_hat: float(1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()),
                 "torch.Tensor", id="stated: a Python float, not a 0-d tensor"),
])
def test_explained_variance_rejects(fn, match):
    """Not applicable: parameters (there are none), independence and randomness (nothing is drawn)."""
    with pytest.raises(CheckFailed, match=match):
        checks.check_explained_variance(fn)


# ---------------------------------------------------------------------------------------------- density


@pytest.mark.parametrize("fn, match", [
    pytest.param(lambda latents: latents.mean(0), "mean activation", id="formula: mean activation"),
    pytest.param(lambda latents: (latents != 0).to(latents.dtype).sum(0), "counted", id="formula: a count"),
    pytest.param(lambda latents: (latents != 0).to(latents.dtype).mean(1), "dim=1",
                 id="one shape only: wrong axis (square case)"),
    pytest.param(lambda latents: (latents > 0).to(latents.dtype).mean(0), "!= 0",
                 id="stated: non-zero, not positive"),
    pytest.param(lambda latents: (latents != 0).float().mean(0), "dtype", id="dtypes: float32 for float64"),
    pytest.param(lambda latents: (latents.clamp_(min=0) != 0).to(latents.dtype).mean(0), "in place",
                 id="side effects: clamps the input"),
    pytest.param(lambda latents: (latents != 0).to(latents.dtype).sum(0) / 40, "wrong",
                 id="one shape only: divides by a hard-coded 40 tokens"),
])
def test_firing_density_rejects(fn, match):
    """Not applicable: differentiability (a count is piecewise constant), parameters (there are
    none), independence and randomness (nothing is drawn)."""
    with pytest.raises(CheckFailed, match=match):
        checks.check_firing_density(fn)


# ---------------------------------------------------------------------------------------------- top contexts


def _top(acts, k, div=None, largest=True, swap=False, as_float=False):
    v, i = acts.reshape(-1).topk(k, largest=largest)
    n = acts.shape[1] if div is None else div
    doc, pos = i // n, i % n
    if swap:
        doc, pos = pos, doc
    if as_float:
        doc, pos = doc.to(acts.dtype), pos.to(acts.dtype)
    return v, doc, pos


@pytest.mark.parametrize("fn, match", [
    pytest.param(lambda acts, k: _top(acts, k, largest=False), "smallest", id="formula: smallest"),
    pytest.param(lambda acts, k: _top(acts, k, div=acts.shape[0]), "number of documents",
                 id="one shape only: unravelled with n_docs"),
    pytest.param(lambda acts, k: _top(acts, k, swap=True), "swapped", id="formula: doc and pos swapped"),
    pytest.param(lambda acts, k: _top(acts, min(k, 4)), "shape", id="parameters: k capped at 4"),
    pytest.param(lambda acts, k: _top(acts, k, as_float=True), "dtype|integer|long",
                 id="dtypes: indices as floats"),
])
def test_top_activating_rejects(fn, match):
    """Not applicable: differentiability (a selection for display), independence and randomness."""
    with pytest.raises(CheckFailed, match=match):
        checks.check_top_activating(fn)


def _top_masking_input(acts, k):
    values, docs, positions = [], [], []
    for _ in range(k):
        d, p = divmod(int(acts.argmax()), acts.shape[1])
        values.append(acts[d, p].clone())
        docs.append(d)
        positions.append(p)
        acts[d, p] = -float("inf")  # masks the found maximum in the caller's tensor
    return torch.stack(values), torch.tensor(docs), torch.tensor(positions)


@pytest.mark.parametrize("fn, match", [
    pytest.param(_top_masking_input, "in place", id="side effects: masks found maxima in the input"),
    pytest.param(lambda acts, k: tuple(t.flip(0) for t in _top(acts, k)), "largest first",
                 id="stated: ascending order"),
    pytest.param(lambda acts, k: _top(acts, k, div=7), "wrong", id="one shape only: sequence length hard-coded 7"),
])
def test_top_activating_rejects_more(fn, match):
    with pytest.raises(CheckFailed, match=match):
        checks.check_top_activating(fn)


def test_top_activating_per_document_is_named():
    def per_doc(acts, k):
        v, pos = acts.max(1)
        order = v.argsort(descending=True)[:k]
        return v[order], order, pos[order]

    with pytest.raises(CheckFailed, match="best position of each document|shape"):
        checks.check_top_activating(per_doc)


# ---------------------------------------------------------------------------------------------- logit effects


def _eff(W_dec, W_U, latent):
    e = W_dec[latent] @ W_U
    return e - e.mean()


@pytest.mark.parametrize("fn, match", [
    pytest.param(lambda W_dec, W_U, latent: W_dec[latent] @ W_U, "not centred", id="formula: not centred"),
    pytest.param(lambda W_dec, W_U, latent: _eff(W_dec.T, W_U, latent) if W_dec.shape[0] == W_dec.shape[1]
                 else _eff(W_dec, W_U, latent), "column", id="one shape only: column where square"),
    pytest.param(lambda W_dec, W_U, latent: _eff(W_dec, W_U, latent) / (W_dec[latent] @ W_U).std(),
                 "standardised", id="formula: standardised"),
    pytest.param(lambda W_dec, W_U, latent: _eff(W_dec, W_U, 0), "latent 0", id="parameters: latent ignored"),
    pytest.param(lambda W_dec, W_U, latent: _eff(W_dec.detach(), W_U, latent), "gradient",
                 id="differentiability: W_dec detached"),
    pytest.param(lambda W_dec, W_U, latent: _eff(W_dec.float(), W_U.float(), latent).to(W_dec.dtype), "float",
                 id="dtypes: float32 inside"),
    pytest.param(lambda W_dec, W_U, latent: _eff(W_dec, W_U.sub_(W_U.mean(1, keepdim=True)), latent)
                 if not W_U.requires_grad else _eff(W_dec, W_U, latent) + 1.0, "in place|wrong",
                 id="side effects: centres W_U in place"),
])
def test_logit_effects_rejects(fn, match):
    """Not applicable: independence and randomness (nothing is drawn); nothing else is stated."""
    with pytest.raises(CheckFailed, match=match):
        checks.check_logit_effects(fn)


# ---------------------------------------------------------------------------------------------- unit score


def _variant(**kw):
    """A wrong unit_score: the reference with one rule changed (see checks._unit_variant)."""
    return lambda acts, concepts, recall_floor: checks._unit_variant(acts, concepts, recall_floor, **kw)


def _unit_best_without_floor(acts, concepts, recall_floor):
    """Returns the best concept by score even when no concept reaches the recall floor."""
    score, best = interp.unit_score(acts, concepts, recall_floor)
    if best < 0 and acts.max() > 0:
        return score, interp.unit_score(acts, concepts, 0.0)[1]
    return score, best


@pytest.mark.parametrize("fn, match", [
    pytest.param(_variant(corrected=False),
                 "chance-corrected", id="formula: raw precision"),
    pytest.param(_variant(floor=False),
                 "recall floor", id="parameters: recall floor ignored"),
    pytest.param(_variant(threshold="pos"),
                 "acts > 0", id="formula: fires where positive"),
    pytest.param(_variant(strict=True),
                 "exactly at the floor", id="parameters: strict > at the boundary floor 1.0"),
    pytest.param(lambda acts, concepts, recall_floor: checks._unit_variant(acts, concepts, 0.5),
                 "ignored", id="parameters: recall_floor fixed at 0.5"),
    pytest.param(lambda acts, concepts, recall_floor: (lambda s, b: (s, b.float()))(
        *interp.unit_score(acts, concepts, recall_floor)), "dtype|integer|long", id="dtypes: best as float"),
    pytest.param(lambda acts, concepts, recall_floor: (lambda s, b: (s, b))(
        *interp.unit_score(acts.clamp_(min=0), concepts, recall_floor)), "in place",
        id="side effects: clamps acts in place"),
    pytest.param(_variant(clip=False),
                 "not clipped at 0", id="stated: score not clipped at 0"),
    pytest.param(_variant(tie=False),
                 "ties", id="stated: ties not broken towards the higher recall"),
    pytest.param(_variant(threshold="half_or_equal"),
                 "exactly at half", id="parameters: fires at exactly half the maximum"),
    pytest.param(_unit_best_without_floor, "recall floor", id="stated: a best concept although none reaches the floor"),
    pytest.param(lambda acts, concepts, recall_floor: (lambda s, b: (s, b.reshape(1)))(
        *interp.unit_score(acts, concepts, recall_floor)), "shape", id="one shape only: best of shape [1]"),
])
def test_unit_score_rejects(fn, match):
    """Not applicable: differentiability (a thresholded count), independence and randomness."""
    with pytest.raises(CheckFailed, match=match):
        checks.check_unit_score(fn)


def test_unit_score_matches_the_vectorised_scorer():
    """The exercise's reference equals :func:`interp.monosemanticity` unit by unit."""
    import numpy as np
    from scipy import sparse

    g = torch.Generator().manual_seed(0)
    C = torch.rand(300, 12, generator=g) < 0.2
    A = torch.randn(300, 20, generator=g, dtype=torch.float64)
    A[:, :5] += 3 * C[:, :5].double()
    cs = interp.ConceptSet([f"c{i}" for i in range(12)], sparse.csc_matrix(C.numpy().astype(np.float32)),
                           C.numpy().sum(0))
    ref = interp.monosemanticity(A.numpy(), cs, 0.3)
    for k in range(20):
        s, b = interp.unit_score(A[:, k], C, 0.3)
        assert float(s) == pytest.approx(ref.score[k], abs=1e-9)
        assert ref.best[k] == (f"c{int(b)}" if b >= 0 else "")


# ---------------------------------------------------------------------------------------------- matching


def _unit(W, dim=-1):
    return W / W.norm(dim=dim, keepdim=True)


@pytest.mark.parametrize("fn, match", [
    pytest.param(lambda W_small, W_large: (W_small @ W_large.T).max(1), "unnormalised", id="formula: dot products"),
    pytest.param(lambda W_small, W_large: (_unit(W_small) @ _unit(W_large).T).abs().max(1), "cosine",
                 id="formula: |cosine|"),
    pytest.param(lambda W_small, W_large: (_unit(W_small, 0) @ _unit(W_large, 0).T).max(1), "columns",
                 id="one shape only: columns normalised"),
    pytest.param(lambda W_small, W_large: (_unit(W_large) @ _unit(W_small).T).max(1), "shape",
                 id="one shape only: matched the wrong way round"),
    pytest.param(lambda W_small, W_large: tuple(v.float() if v.is_floating_point() else v.float()
                                                for v in (_unit(W_small) @ _unit(W_large).T).max(1)),
                 "dtype|integer|long|float", id="dtypes: float32 and float indices"),
    pytest.param(lambda W_small, W_large: (_unit(W_small) @ _unit(W_large.div_(W_large.norm(dim=1, keepdim=True))).T
                                           ).max(1), "in place", id="side effects: normalises W_large in place"),
    pytest.param(lambda W_small, W_large: tuple(t.squeeze() for t in (_unit(W_small) @ _unit(W_large).T).max(1)),
                 "shape", id="one shape only: squeezed when there is one latent"),
])
def test_match_latents_rejects(fn, match):
    """Not applicable: differentiability (an argmax for analysis), parameters (there are none),
    independence and randomness (nothing is drawn)."""
    with pytest.raises(CheckFailed, match=match):
        checks.check_match_latents(fn)


@pytest.mark.slow
def test_the_grader_passes_the_answer_key():
    """The grader runs these checks from a private copy after snapshotting torch's functions: importing
    transformer_lens inside a check (it rebinds torch.manual_seed) made every exercise fail."""
    from pathlib import Path

    from course_utils.grade import grade_notebook

    root = Path(__file__).resolve().parents[2]
    rep = grade_notebook(root / "solutions" / "ch04b_saes_course_model.ipynb")
    assert rep.status == "graded", rep.error
    assert [e.status for e in rep.exercises] == ["passed"] * 7, [(e.name, e.message) for e in rep.exercises]
