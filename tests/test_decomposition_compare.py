"""Chapter 6: SAE vs SPD on the same TMS 5-2 model (course_utils.decomposition.compare).

Measured at the CPU configuration, seed 0 (target of configs.TMS_5_2["cpu"], SPD seed 0, TopK SAEs with
5 latents, 800 steps): SPD MMCS 1.000, 5 subcomponents, one-feature probes 5/5, two-feature probes
10/10, output error 0.057 (g masks) / 0.026 (0/1 masks); SAE k = 1 MMCS 0.996, 5/5, 0/10, 0.039;
SAE k = 2 MMCS 0.945, 0/5, 6/10, 0.0015. The assertions below allow one probe of slack where the
count is not forced by construction.
"""

from __future__ import annotations

import pytest
import torch

from course_utils.decomposition import compare, configs, figures, train_spd, train_tms_target
from course_utils.decomposition.targets import ResidualMLPTarget


@pytest.fixture(scope="module")
def runs():
    torch.set_num_threads(1)
    exp = configs.experiment("tms_5_2", scale="cpu")
    target = train_tms_target(**exp.target)
    spd = train_spd(target, exp.spd, seed=0)
    saes = {k: compare.train_tms_sae(target, k) for k in (1, 2)}
    return target, spd.model, saes


def test_probe_inputs_are_every_one_and_two_feature_combination():
    x, labels = compare.probe_inputs(5)
    assert x.shape == (15, 5) and len(labels) == 15
    assert labels[0] == "x0" and labels[5] == "x0+x1" and labels[-1] == "x3+x4"
    assert ((x == 0) | (x == 0.75)).all()
    assert ((x > 0).sum(1) == torch.tensor([1] * 5 + [2] * 10)).all()
    assert len({tuple(r.tolist()) for r in x}) == 15


def test_claimed_features_maps_units_to_features():
    active = torch.tensor([[True, False, False], [True, True, False], [False, False, False]])
    feats = torch.tensor([2, 0, 2])  # units 0 and 2 both stand for feature 2
    claimed = compare.claimed_features(active, feats, 3)
    assert claimed.tolist() == [[False, False, True], [True, False, True], [False, False, False]]


def test_spd_recovers_which_features_each_input_uses(runs):
    target, model, _ = runs
    acc = compare.spd_account("SPD", model)
    assert acc.mmcs >= 0.99 and acc.units == 5
    assert acc.single_correct == 5 and acc.n_single == 5
    assert acc.pair_correct >= 9 and acc.n_pair == 10
    assert compare.spd_account("SPD", model, binary=True).output_error < 0.05
    assert acc.output_error < 0.1


def test_topk_sae_finds_the_directions_but_its_k_fixes_how_many_features(runs):
    target, _, saes = runs
    one = compare.sae_account("k=1", saes[1], target)
    two = compare.sae_account("k=2", saes[2], target)
    assert one.mmcs >= 0.99 and one.single_correct == 5
    assert one.pair_correct == 0  # one latent cannot stand for two features
    assert two.single_correct <= 1  # two latents fire on a one-feature input
    # k = 2 reproduces the output better although its units do not match the features present
    assert two.output_error < one.output_error / 5
    table = compare.format_table([one, two])
    assert len(table.splitlines()) == 3 and max(map(len, table.splitlines())) <= 88


def test_unit_activity_figure(runs):
    target, model, saes = runs
    x, labels = compare.probe_inputs(5)
    fig = figures.plot_unit_activity(
        {"SAE": (compare.sae_activity(saes[1], target, x), compare.sae_unit_features(saes[1], target.W))}, labels)
    assert len(fig.data) == 1 and fig.layout.title.text
    with pytest.raises(ValueError, match="does not fit"):
        figures.plot_unit_activity({"SAE": (torch.zeros(3, 5), torch.zeros(5, dtype=torch.long))}, labels)


def test_bad_input_is_named(runs):
    target, model, saes = runs
    with pytest.raises(ValueError, match="max_active"):
        compare.probe_inputs(3, max_active=4)
    with pytest.raises(ValueError, match="n_feat"):
        compare.probe_inputs(0)
    with pytest.raises(ValueError, match="k must be at most"):
        compare.train_tms_sae(target, k=6)
    with pytest.raises(TypeError, match="TMSTarget"):
        compare.train_tms_sae("not a model", k=1)  # type: ignore[arg-type]
    resid = ResidualMLPTarget(torch.randn(8, 4), torch.randn(3, 8), torch.zeros(3), torch.randn(8, 3),
                              torch.zeros(8))
    with pytest.raises(ValueError, match="hidden activations"):
        compare.sae_account("bad", saes[1], train_tms_target(n_feat=6, d_hidden=3, steps=10, n_candidates=1))
    spd_resid = train_spd(resid, configs.SPDConfig(C=3, steps=1, warmup_steps=0, batch_size=8))
    with pytest.raises(TypeError, match="TMSTarget"):
        compare.spd_account("bad", spd_resid.model)
