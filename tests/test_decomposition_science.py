"""Chapter 6 science: SPD reproduces the paper's TMS 5-2 numbers on a target the course trains, and
the split-subcomponent failure appears with the setting that causes it.

Paper (Bushnaq et al. 2025, Table 1): SPD on TMS 5-2, MMCS 1.000 ± 0.000, ML2R 0.993 ± 0.002.
Tolerance: MMCS ≥ 0.99 and |ML2R − 0.993| ≤ 0.02 (the issue's spec). Measured at the CPU
configuration (configs.TMS_5_2["cpu"]: batch 1024, 3k steps, β = 1e-2): seeds 0, 1, 2 gave MMCS
1.000 and ML2R 1.0059, 1.0074, 1.0079, 5 alive subcomponents per matrix: inside the tolerance but
above the paper by 0.013-0.015 (the page states this). About 15 s per run on an idle 2-core CPU.
"""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.decomposition import causal_importances, mmcs_ml2r, n_alive, train_spd, train_tms_target
from course_utils.decomposition.configs import experiment

PAPER_ML2R = 0.993


@pytest.fixture(scope="module")
def target():
    return train_tms_target(**experiment("tms_5_2", scale="cpu").target)


def _scores(target, res):
    V, U = res.factors("linear1")
    mm, ml = mmcs_ml2r(target.W, V, U)
    ci = causal_importances(res.model, target.sample(4096, torch.Generator().manual_seed(99)))
    return mm.item(), ml.item(), n_alive(ci["linear1"]), n_alive(ci["linear2"])


def test_target_is_the_pentagon(target):
    """The course's 5-2 target has the geometry the SPD paper decomposes: five features at ≈ 72°."""
    norms = target.W.norm(dim=0)
    assert ((norms > 1.05) & (norms < 1.25)).all(), norms
    ang = torch.atan2(target.W[1], target.W[0]).sort().values
    gaps = torch.diff(torch.cat([ang, ang[:1] + 2 * math.pi])) * 180 / math.pi
    assert torch.allclose(gaps, torch.full_like(gaps, 72.0), atol=4.0), gaps
    assert ((target.b > -0.3) & (target.b < -0.18)).all(), target.b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spd_reproduces_table_1(target, seed):
    res = train_spd(target, experiment("tms_5_2", scale="cpu").spd, seed=seed)
    mm, ml, alive1, alive2 = _scores(target, res)
    assert mm >= 0.99
    assert abs(ml - PAPER_ML2R) <= 0.02, ml
    assert alive1 == 5 and alive2 == 5


def test_too_small_beta_splits_features(target):
    """β = 1e-3 (vs 1e-2): features split over co-active subcomponents. MMCS stays near 1, ML2R drops
    (seed 0 measured: MMCS 0.994, ML2R 0.757, 7 and 6 alive)."""
    res = train_spd(target, experiment("tms_5_2", scale="cpu").spd, beta=1e-3, seed=0)
    mm, ml, alive1, _ = _scores(target, res)
    assert mm >= 0.98
    assert ml < 0.9
    assert alive1 > 5


# ---------------------------------------------------------------------------------- residual MLP


def test_shipped_residual_mlp_splits_w_in_per_feature():
    """The shipped CPU decomposition (configs.RESID_MLP["cpu"]: 25 features, 12 neurons, C = 25,
    β = 1e-3, 3k steps; regenerated bit-identically by ``python -m course_utils.decomposition.shipped
    --spd-only``). Measured: 21 of 25 features have a W_in subcomponent of their own (features 5 and 24
    share one and each also borrows the subcomponent of feature 10 and 18 respectively; the other 21
    use exactly one, exclusively), 1.08 W_in subcomponents per one-hot input, 12 W_out
    subcomponents alive (= the neurons) with 3.6 per one-hot input, and the subcomponents' neuron
    contributions correlate 0.994 with the target's (paper figure 7's check)."""
    from course_utils.decomposition import ci_l0, one_hot_causal_importances, own_subcomponents, shipped
    from course_utils.decomposition.metrics import neuron_contributions, subcomponent_contributions

    target, _, model, _ = shipped.load_resid_mlp()
    ci = one_hot_causal_importances(model)
    assert own_subcomponents(ci["W_in"]) >= 20
    assert ci_l0(ci["W_in"]) <= 1.2
    assert n_alive(ci["W_out"]) <= target.d_mlp + 2 and ci_l0(ci["W_out"]) >= 2.0  # few, co-active
    V_in, U_in = (t.detach() for t in model.factors("W_in"))
    V_out, U_out = (t.detach() for t in model.factors("W_out"))
    with torch.no_grad():
        tc = neuron_contributions(target.W_E, target.W_in, target.W_out)
        sc = subcomponent_contributions(target.W_E, V_in, U_in, (V_out @ U_out).T, ci["W_in"].argmax(1))
    assert torch.corrcoef(torch.stack([tc.flatten(), sc.flatten()]))[0, 1] >= 0.98


# ---------------------------------------------------------------------------------- APD


PAPER_APD = (0.998, 0.893)  # Braun et al. 2025, TMS 5-2: MMCS 0.998 ± 0.000, ML2R 0.893 ± 0.004


@pytest.mark.parametrize("seed", [0, 2])
def test_apd_reproduces_the_paper_with_shrinkage(target, seed):
    """APDConfig defaults (the paper's 5-2 settings, C = 5, simplicity term divided by the 10 entries
    of W), 4k steps. Measured: seed 0 MMCS 0.998 / ML2R 0.897, seed 2 0.996 / 0.888. Tolerance:
    MMCS ≥ 0.99, |ML2R − 0.893| ≤ 0.02; every component shorter than its feature's column."""
    from course_utils.decomposition import apd

    res = apd.train_apd(target, apd.APDConfig(steps=4_000, seed=seed))
    mm, ml = (t.item() for t in apd.apd_mmcs_ml2r(target.W, res.P))
    assert mm >= 0.99 and abs(ml - PAPER_APD[1]) <= 0.02, (mm, ml)
    assert (res.P.flatten(1).norm(dim=1) < target.W.norm(dim=0).min()).all()


def test_apd_is_unstable_across_seeds_and_without_the_normalisation(target):
    """Seed 1 with the same settings splits a feature (measured MMCS 0.967, ML2R 0.762); the paper's
    unnormalised simplicity term shrinks the components into mixtures (seed 0, 2k steps: MMCS 0.946,
    ML2R 0.359)."""
    from course_utils.decomposition import apd

    split = apd.train_apd(target, apd.APDConfig(steps=4_000, seed=1))
    mm, ml = (t.item() for t in apd.apd_mmcs_ml2r(target.W, split.P))
    assert mm < 0.99 and ml < 0.85, (mm, ml)
    raw = apd.train_apd(target, apd.APDConfig(steps=2_000, seed=0, simplicity_per_param=False))
    mm, ml = (t.item() for t in apd.apd_mmcs_ml2r(target.W, raw.P))
    assert ml < 0.6, (mm, ml)
