"""The training loop's options and the toy data: resampling revives dead latents, the learning-rate
schedule, hooks keep decoder rows unit-norm, and the hierarchical toy has the structure it claims."""

from __future__ import annotations

import torch

from course_utils.saes import TrainConfig, dead_fraction, hierarchical_toy, make_sae, sharkey_toy, train_sae
from course_utils.saes.train import lr_factor

TOY = sharkey_toy(d=32, n_features=48, seed=1)


def _dead_after(resample_every):
    sae = make_sae("relu", 32, 96, seed=0, l1_coefficient=0.1, dead_tokens=2_000)
    with torch.no_grad():
        sae.b_enc[48:] = -5.0  # half the latents can never fire
    log = train_sae(sae, TOY, TrainConfig(steps=120, batch_size=512, seed=0, resample_every=resample_every))
    with torch.no_grad():
        f = sae.encode(TOY.sample(4096, torch.Generator().manual_seed(3)))
    return dead_fraction(f).item(), log.n_resampled


def test_resampling_revives_dead_latents():
    dead_plain, n_plain = _dead_after(None)
    dead_resampled, n_resampled = _dead_after(30)
    assert n_plain == 0 and n_resampled >= 40
    assert dead_plain >= 0.45 and dead_resampled < dead_plain - 0.2, (dead_plain, dead_resampled)


def test_learning_rate_warms_up_and_decays():
    factors = [lr_factor(s, 100, 10, 0.2) for s in range(100)]
    assert factors[0] == 0.1 and factors[9] == 1.0 and factors[50] == 1.0
    assert factors[85] < factors[80] and factors[99] <= 0.05


def test_decoder_rows_stay_unit_norm_and_the_l1_variant_is_unconstrained():
    for arch, kw, unit in (("topk", dict(k=3), True), ("relu", dict(decoder_norm_in_penalty=True), False)):
        sae = make_sae(arch, 32, 64, seed=0, **kw)
        train_sae(sae, TOY, TrainConfig(steps=30, batch_size=256, lr=1e-2))
        norms = sae.W_dec.norm(dim=1)
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5) == unit


def test_hierarchical_toy_children_fire_only_with_their_parent():
    toy = hierarchical_toy(d=16, n_parents=4, n_children=3, p_parent=0.3, seed=0)
    c = toy.sample_coefficients(20_000, torch.Generator().manual_seed(0)) > 0
    parents, children = c[:, :4], c[:, 4:].reshape(-1, 4, 3)
    assert torch.equal(children.any(-1), parents)  # a present parent has exactly one child present
    assert (children.sum(-1) <= 1).all()
    assert abs(parents.float().mean().item() - 0.3) < 0.01


def test_explorer_trains_and_draws_and_rejects_unknown_choices():
    import pytest

    from course_utils.saes.explorer import explore

    fig = explore(TOY, "jumprelu", 64, "sparse", steps=5)
    assert "jumprelu, 64 latents, l0_coefficient = 0.1" in fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert len(fig.data[0].y) == TOY.features.shape[0]
    with pytest.raises(ValueError, match="architecture must be one of"):
        explore(TOY, "gba")
    with pytest.raises(ValueError, match="sparsity must be one of"):
        explore(TOY, "topk", sparsity="extreme")


def test_paper_sized_toy_configs_build_and_take_steps():
    """The page's GPU switch: d = 256, 512 features, dictionary 1024, every architecture with its
    shipped settings, two steps each on the CPU (a smoke test, not a result)."""
    from course_utils.saes import SHIPPED, mmcs, shipped_train_config

    toy = sharkey_toy(d=256, n_features=512, seed=0)
    for arch, kw in SHIPPED.items():
        kw = dict(kw, prefixes=(768, 1024)) if arch == "matryoshka" else kw
        sae = make_sae(arch, 256, 1024, seed=0, **kw)
        log = train_sae(sae, toy, shipped_train_config(arch, steps=2, batch_size=256, eval_every=1))
        assert log.steps == [1, 2] and 0 < mmcs(sae.W_dec, toy.features) < 1, arch
