"""Chapter 7 on the course model: the numbers the page states, asserted with stated tolerances on a
shortened version of the page's runs (same hooks, SAE, concepts and seeds; fewer tokens and prompts).

* steering: the difference-of-means direction raises the fraction of generated string tokens by at
  least 0.1 over the unsteered baseline at strength 32, >= 1 standard deviation of eight random
  directions of the same norm above their mean; the best SAE latent lies inside their range, within
  one standard deviation of their mean; every edit of norm 8 costs held-out loss (> 0.1 nats); and
  the page's own run reproduces the fractions, z-scores and loss band its text quotes, and its
  clamping run the fractions it quotes for each multiple of a latent's maximum;
* SHIFT: the biased probe is confounded (worst group < 0.3, spurious accuracy > 0.6), the oracle beats
  it by > 0.1 on the intended label, SHIFT lowers spurious accuracy but moves intended accuracy by
  less than 0.05, so SCR < 0.2 (the paper's effect is measured to differ; sampling seeds 0-3 gave
  SCR 0.05-0.13, oracle margins 0.14-0.16, worst groups 0.15-0.22);
* compression: at sparsity 0.99 the 5-dimensional toy model matches a monosemantic model at least 5
  dimensions wider, at sparsity 0 it saves at most one; the interference cost is never negative
  beyond 1e-4; the SAE splice without error term costs the course model > 0.1 nats at resid1.
"""

from __future__ import annotations

import pytest
import torch

from course_utils import applications as app

HOOK = "blocks.1.hook_resid_pre"


@pytest.fixture(scope="module")
def setup():
    from course_utils.course_lm import load_course_lm
    from course_utils.saes.course import load_course_sae
    from course_utils.saes.interp import labelled_activations

    torch.set_num_threads(1)
    model, tok = load_course_lm()
    sae = load_course_sae("resid1-topk-2048", model)
    train = labelled_activations(model, tok, HOOK, 12_000, "train", seed=0)
    test = labelled_activations(model, tok, HOOK, 6_000, "validation", seed=1)
    return model, tok, sae, train, test


@torch.no_grad()
def test_generation_without_hooks_is_the_greedy_completion(setup):
    from course_utils.course_lm import complete

    model, tok, *_ = setup
    prompt = "def add(a, b):\n    return"
    ids = torch.tensor([tok.encode(prompt).ids])
    assert tok.decode(app.generate_ids(model, ids, 8)[0].tolist()) == complete(model, tok, prompt, 8)


@torch.no_grad()
def test_steering_dose_response_and_cost(setup):
    """Against eight random directions of the same norm: at strength 32 the difference of means lies
    >= 1 random standard deviation above their mean and the best SAE latent within 1 of it. Prompt
    seeds 0-2 x random seeds 0-1 at this size gave z = 1.2 to 51 (mean difference; some prompt sets
    leave the random directions little spread) and -0.4 to 0.5 (SAE latent); one draw of eight (random seed 1) holds a direction above the mean difference, so
    "above every random direction" is not asserted. The page's run (12 prompts, random seeds 0-3)
    gave z = 1.9 to 7.4 and -0.1 to 0.5."""
    from course_utils.corpus import load_corpus
    from course_utils.saes.course import corpus_windows
    from course_utils.saes.interp import random_directions

    model, tok, sae, train, _ = setup
    y = train.labels["in_string"]
    prompts = app.prompt_windows(tok, [f.text for f in load_corpus("validation")], 8, 48, seed=0)
    mean_diff = app.mean_difference_direction(train.acts, y)
    latent = app.latent_direction(sae, app.best_latent(sae.encode(train.acts).numpy(), y))
    rand = random_directions(model.cfg.d_model, 8, seed=0).T
    table = app.dose_response_many(model, tok, prompts, HOOK, torch.stack([mean_diff, latent, *rand]),
                                   [0.0, 32.0], "in_string", 16)
    f_md, f_sae, f_rand = table[0], table[1], table[2:]
    assert f_md[1] - f_md[0] >= 0.1, f_md
    cmp_md, cmp_sae = app.compare_to_random(f_md, f_rand), app.compare_to_random(f_sae, f_rand)
    assert cmp_md["z"][1] >= 1.0, (f_md, f_rand)
    assert cmp_sae["position"][1] == "inside" and abs(cmp_sae["z"][1]) <= 1.0, (f_sae, f_rand)
    assert cmp_md["z"][0] == 0.0 and cmp_md["position"][0] == "inside"  # strength 0: one shared run
    windows = corpus_windows(tok, "validation", 4 * 128, model.cfg.n_ctx, seed=2)
    clean = app.steered_loss(model, windows)
    for d in (mean_diff, latent, *rand):
        assert app.steered_loss(model, windows, [(HOOK, app.add_hook(d, 8.0))]) - clean > 0.1
    assert app.steered_loss(model, windows, [(HOOK, app.add_hook(mean_diff, 0.0))]) == pytest.approx(clean)


@torch.no_grad()
def test_the_pages_steering_numbers(setup):
    """The page's run at strengths 0, 8 and 32 (12 prompts, 20 new tokens, the same directions in
    the same batch): the numbers its text quotes, to within 0.02 in fraction (five of 240 generated
    tokens) and 0.3 in z, 0.02 nats in loss. Greedy decoding on the CPU is deterministic; the
    tolerance allows for another BLAS."""
    from course_utils.corpus import load_corpus
    from course_utils.saes.course import corpus_windows
    from course_utils.saes.interp import random_directions

    model, tok, sae, train, _ = setup
    y = train.labels["in_string"]
    mean_diff = app.mean_difference_direction(train.acts, y)
    best = app.best_latent(sae.encode(train.acts).numpy(), y)
    nearest = int((sae.W_dec @ mean_diff / sae.W_dec.norm(dim=1)).argmax())
    named = [app.latent_direction(sae, best), app.latent_direction(sae, nearest),
             app.probe_direction(train.acts, y), mean_diff]
    rand = random_directions(model.cfg.d_model, 8, seed=0).T
    prompts = app.prompt_windows(tok, [f.text for f in load_corpus("validation")], 12, 48, seed=0)
    table = app.dose_response_many(model, tok, prompts, HOOK, torch.stack([*named, *rand]), [0.0, 8.0, 32.0],
                                   "in_string", 20)
    f_rand = table[4:]
    assert table[0, 0] == pytest.approx(0.35, abs=0.02)
    assert table[3, 2] == pytest.approx(0.64, abs=0.02) and table[2, 2] == pytest.approx(0.66, abs=0.02)
    assert table[0, 2] == pytest.approx(0.33, abs=0.02) and table[1, 1] == pytest.approx(0.46, abs=0.02)
    assert f_rand[:, 2].min() == pytest.approx(0.17, abs=0.02) and f_rand[:, 2].max() == pytest.approx(0.33, abs=0.02)
    cmp_md, cmp_sae = app.compare_to_random(table[3], f_rand), app.compare_to_random(table[0], f_rand)
    assert cmp_md["z"][2] == pytest.approx(5.8, abs=0.3) and cmp_md["position"][1:] == ["above", "above"]
    assert cmp_sae["position"][1:] == ["inside", "inside"] and max(abs(cmp_sae["z"][1:])) <= 1.1
    windows = corpus_windows(tok, "validation", 8 * 128, model.cfg.n_ctx, seed=2)
    at8 = [app.steered_loss(model, windows, [(HOOK, app.add_hook(d, 8.0))]) for d in rand]
    assert min(at8) == pytest.approx(3.64, abs=0.02) and max(at8) == pytest.approx(4.60, abs=0.02)


@torch.no_grad()
def test_the_pages_clamping_numbers(setup):
    """The page's clamping run at 0, 1, 2 and 5 times each latent's maximum (12 prompts, 20 new
    tokens): ablation leaves the unsteered 0.35, the string latent at its maximum gives 0.29, twice
    the maximum 0.45 and 0.44, five times the degenerate 0.33 (to within 0.02, as above); and
    clamping to 0 a latent that never fires on the prompts leaves generation unchanged (the hook
    keeps the SAE error instead of splicing in the reconstruction)."""
    from course_utils.corpus import load_corpus

    model, tok, sae, train, _ = setup
    y = train.labels["in_string"]
    latents = sae.encode(train.acts)
    best = app.best_latent(latents.numpy(), y)
    mean_diff = app.mean_difference_direction(train.acts, y)
    nearest = int((sae.W_dec @ mean_diff / sae.W_dec.norm(dim=1)).argmax())
    assert (best, nearest) == (1178, 1812)
    prompts = app.prompt_windows(tok, [f.text for f in load_corpus("validation")], 12, 48, seed=0)
    want = {best: [0.35, 0.29, 0.45, 0.33], nearest: [0.35, 0.35, 0.44, 0.33]}
    for lat, fractions in want.items():
        top = float(latents[:, lat].max())
        got = app.clamp_response(model, tok, prompts, HOOK, sae, lat, [m * top for m in (0, 1, 2, 5)],
                                 "in_string", 20)
        assert got == pytest.approx(fractions, abs=0.02), lat
    silent = int(sae.encode(model.run_with_cache(prompts)[1][HOOK]).amax((0, 1)).argmin())
    plain = app.generate_ids(model, prompts[:4], 6)
    assert torch.equal(app.generate_ids(model, prompts[:4], 6, [(HOOK, app.clamp_hook(sae, silent, 0.0))]), plain)


@torch.no_grad()
def test_batched_dose_response_matches_one_direction_at_a_time(setup):
    from course_utils.corpus import load_corpus
    from course_utils.saes.interp import random_directions

    model, tok, *_ = setup
    prompts = app.prompt_windows(tok, [f.text for f in load_corpus("validation")], 3, 48, seed=1)
    rand = random_directions(model.cfg.d_model, 3, seed=5).T * torch.tensor([[1.0], [3.0], [0.5]])
    many = app.dose_response_many(model, tok, prompts, HOOK, rand, [16.0, 0.0], "in_comment", 8)
    for i in range(3):
        one = app.dose_response(model, tok, prompts, HOOK, rand[i] / rand[i].norm(), [16.0, 0.0], "in_comment", 8)
        assert many[i] == pytest.approx(one), i
    assert len(set(many[:, 1])) == 1  # strength 0 is the same unsteered run for every direction


@torch.no_grad()
def test_shift_on_the_course_model(setup):
    _, _, sae, train, test = setup
    res = app.run_shift(train.acts, train.labels["in_string"], train.labels["bracket>=1"], test.acts,
                        test.labels["in_string"], test.labels["bracket>=1"], sae, n_per_group=700, top_n=50)
    assert res.base["worst_group"] < 0.3 and res.base["spurious"] > 0.6
    assert res.oracle["intended"] - res.base["intended"] > 0.1
    assert res.shift["spurious"] < res.base["spurious"]
    assert abs(res.shift["intended"] - res.base["intended"]) < 0.05
    assert res.scr < 0.2 and len(res.ablated) > 0


def test_superposition_savings_on_toy_models():
    from course_utils import tms

    sweep = tms.sparsity_sweep(20, 5, [0.0, 0.99], importance_decay=0.9, steps=1500, seed=0)
    sav = app.superposition_savings(sweep)
    assert sav.saved[1] >= 5 and sav.saved[0] <= 1
    assert min(sav.interference_cost) > -1e-4


@torch.no_grad()
def test_forced_monosemantic_replacement_costs_loss(setup):
    from course_utils.saes.course import corpus_windows

    model, tok, sae, *_ = setup
    windows = corpus_windows(tok, "validation", 4 * 128, model.cfg.n_ctx, seed=2)
    clean = app.spliced_loss(model, windows, HOOK, mode="clean")
    with_sae = app.spliced_loss(model, windows, HOOK, sae, "sae")
    zero = app.spliced_loss(model, windows, HOOK, mode="zero")
    assert clean + 0.1 < with_sae < zero
