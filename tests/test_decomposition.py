"""Chapter 6 machinery: SPD's pieces, tying, the exact skipping of inert inputs, the metrics, APD's
attributions, and clear errors on bad input. The science (reproduced numbers) is in
test_decomposition_science.py."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.decomposition import (
    ResidualMLPTarget,
    SPDConfig,
    TMSTarget,
    apd,
    causal_importances,
    configs,
    lower_leaky_hard_sigmoid,
    mmcs_ml2r,
    n_alive,
    train_spd,
    upper_leaky_hard_sigmoid,
)
from course_utils.decomposition.spd import SPDModel, _inert_penalty, spd_losses


def _pentagon(scale: float = 1.13) -> TMSTarget:
    ang = torch.arange(5) * 2 * math.pi / 5
    return TMSTarget(scale * torch.stack([ang.cos(), ang.sin()]), torch.full((5,), -0.24))


# ---------------------------------------------------------------------------------- pieces


def test_leaky_hard_sigmoids_match_the_paper():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.0, 3.0], requires_grad=True)
    assert torch.allclose(lower_leaky_hard_sigmoid(x), torch.tensor([-0.02, -0.005, 0.0, 0.3, 1.0, 1.0]))
    assert torch.allclose(upper_leaky_hard_sigmoid(x), torch.tensor([0.0, 0.0, 0.0, 0.3, 1.0, 1.02]))
    (g,) = torch.autograd.grad(lower_leaky_hard_sigmoid(x).sum(), x)
    assert torch.allclose(g, torch.tensor([0.01, 0.01, 0.01, 1.0, 1.0, 0.0]))  # leaks below 0, flat above 1
    (g,) = torch.autograd.grad(upper_leaky_hard_sigmoid(x).sum(), x)
    assert torch.allclose(g[[0, 1, 3, 5]], torch.tensor([0.0, 0.0, 1.0, 0.01]))


def test_unmasked_decomposition_is_the_matrix():
    g = torch.Generator().manual_seed(0)
    V, U, x = torch.randn(5, 7, generator=g), torch.randn(7, 3, generator=g), torch.randn(4, 5, generator=g)
    from course_utils.decomposition import rank_one_forward

    W = (V @ U).T  # [d_out, d_in]
    assert torch.allclose(rank_one_forward(x, V, U), x @ W.T, atol=1e-5)
    assert torch.allclose(rank_one_forward(x, V, U, torch.zeros(4, 7)), torch.zeros(4, 3))


def test_shared_tying_is_one_set_of_numbers_with_two_optimiser_states():
    model = SPDModel(_pentagon(), C=6, d_gate=4, tie="shared", generator=torch.Generator().manual_seed(0))
    V1, U1 = model.factors("linear1")
    V2, U2 = model.factors("linear2")
    assert V2.data_ptr() == U1.data_ptr() and U2.data_ptr() == V1.data_ptr()
    assert V2 is not U1  # separate Parameters: Adam keeps a state for each use
    with torch.no_grad():
        V1.add_(1.0)
    assert torch.equal(U2, V1.T)
    single = SPDModel(_pentagon(), C=6, d_gate=4, tie="single", generator=torch.Generator().manual_seed(0))
    assert set(single.V) == {"linear1"}
    untied = SPDModel(_pentagon(), C=6, d_gate=4, tie="untied", generator=torch.Generator().manual_seed(0))
    assert set(untied.V) == {"linear1", "linear2"} and untied.V["linear2"].shape == (2, 6)


def test_skipping_inert_inputs_is_exact():
    """An all-zero TMS input gives zero reconstruction error for every mask, so dropping those rows
    and adding their penalty at g(γ(0)) leaves the losses unchanged."""
    target = _pentagon()
    assert target.zero_input_is_inert()
    cfg = SPDConfig(C=6, d_gate=4, skip_inert_inputs=False)
    model = SPDModel(target, 6, 4, "shared", torch.Generator().manual_seed(0))
    x = target.sample(64, torch.Generator().manual_seed(1))
    x[:20] = 0.0
    full = spd_losses(model, x, 64, cfg, torch.Generator().manual_seed(2))
    zeros = spd_losses(model, x[:20], 64, cfg, torch.Generator().manual_seed(3))
    assert zeros["stochastic"].item() == 0.0 and zeros["layerwise"].item() == 0.0
    assert torch.allclose(zeros["importance"], _inert_penalty(model, cfg, x.dtype) * 20 / 64)
    rest = spd_losses(model, x[20:], 64, cfg, torch.Generator().manual_seed(2))
    assert torch.allclose(full["importance"], zeros["importance"] + rest["importance"], atol=1e-6)
    # the residual MLP with a positive input bias is not inert: its W_out sees ReLU(b_in) at x = 0
    resid = ResidualMLPTarget(torch.eye(4)[:, :3], torch.randn(2, 4), torch.ones(2), torch.randn(4, 2), torch.zeros(4))
    assert not resid.zero_input_is_inert()


def test_training_is_seeded_and_logs():
    target = _pentagon()
    a = train_spd(target, SPDConfig(C=6, d_gate=4, steps=5, batch_size=64, warmup_steps=2, log_every=2, seed=3))
    b = train_spd(target, SPDConfig(C=6, d_gate=4, steps=5, batch_size=64, warmup_steps=2, log_every=2, seed=3))
    assert torch.equal(a.factors("linear1")[0], b.factors("linear1")[0])
    assert a.history["step"] == [0, 2, 4]
    c = train_spd(target, SPDConfig(C=6, d_gate=4, steps=5, batch_size=64, warmup_steps=2, seed=4))
    assert not torch.equal(a.factors("linear1")[0], c.factors("linear1")[0])


def test_snapshots_for_the_scrubbing_figure():
    res = train_spd(_pentagon(), SPDConfig(C=4, d_gate=4, steps=6, batch_size=32, warmup_steps=0,
                                           snapshot_every=3))
    assert [s for s, _ in res.snapshots] == [0, 3, 6]
    assert res.snapshots[0][1]["linear1"][0].shape == (5, 4)


# ---------------------------------------------------------------------------------- metrics


def test_mmcs_ml2r_on_known_decompositions():
    W = _pentagon().W  # [2, 5]
    V, U = torch.eye(5), W.T.clone()  # subcomponent c = feature c's column exactly
    mm, ml = mmcs_ml2r(W, V, U)
    assert mm.item() == pytest.approx(1.0, abs=1e-6) and ml.item() == pytest.approx(1.0, abs=1e-6)
    mm, ml = mmcs_ml2r(W, V, 0.9 * U)  # shrinkage shows in ML2R only
    assert mm.item() == pytest.approx(1.0, abs=1e-6) and ml.item() == pytest.approx(0.9, abs=1e-6)
    # a feature split over two co-active subcomponents (half each): MMCS stays 1, ML2R halves
    V2 = torch.cat([torch.eye(5), torch.eye(5)], dim=1)
    U2 = torch.cat([0.5 * W.T, 0.5 * W.T])
    mm, ml = mmcs_ml2r(W, V2, U2)
    assert mm.item() == pytest.approx(1.0, abs=1e-6) and ml.item() == pytest.approx(0.5, abs=1e-6)
    # anti-aligned components do not count (signed maximum, as in the authors' code)
    mm, _ = mmcs_ml2r(W, V, -U)
    assert mm.item() == pytest.approx(0.0, abs=1e-6)  # the zero columns (cos 0) beat the cos −1 ones


def test_n_alive_counts_subcomponents_above_threshold():
    ci = torch.tensor([[0.0, 0.05, 0.5], [0.0, 0.2, 0.0]])
    assert n_alive(ci) == 2 and n_alive(ci, threshold=0.3) == 1


# ---------------------------------------------------------------------------------- APD


def test_apd_attributions_are_the_directional_derivative():
    """A_c(x) = RMS over outputs of d/dε f(x | W + εP_c) at ε = 0: compare with autograd's jvp."""
    target = _pentagon()
    g = torch.Generator().manual_seed(0)
    P = torch.randn(3, 2, 5, generator=g, dtype=torch.float64)
    W, b = target.W.double(), target.b.double()
    x = torch.rand(6, 5, generator=g, dtype=torch.float64)
    got = apd.attributions(W, b, P, x)
    for c in range(3):
        _, jvp = torch.func.jvp(lambda Wv: torch.relu(x @ Wv.T @ Wv + b), (W,), (P[c],))
        assert torch.allclose(got[:, c], (jvp**2).mean(-1).sqrt(), atol=1e-10)


def test_batch_topk_keeps_k_times_batch():
    attr = torch.rand(100, 5, generator=torch.Generator().manual_seed(0))
    mask = apd.batch_topk_mask(attr, 0.211)
    assert mask.sum().item() == 21
    assert attr[mask.bool()].min() >= attr[~mask.bool()].max()


def test_apd_short_run_is_seeded_and_finite():
    target = _pentagon()
    a = apd.train_apd(target, apd.APDConfig(steps=20, batch_size=128, log_every=10, seed=1))
    b = apd.train_apd(target, apd.APDConfig(steps=20, batch_size=128, log_every=10, seed=1))
    assert torch.equal(a.P, b.P) and torch.isfinite(a.P).all()
    assert a.metric_history["step"] == [0, 10, 19]


# ---------------------------------------------------------------------------------- GPU configs (smoke)


@pytest.mark.parametrize("name", ["tms_5_2", "tms_40_10", "resid_mlp"])
def test_paper_sized_configs_run(name):
    """The GPU (paper-sized) configurations, two steps each on the CPU."""
    from course_utils.decomposition import train_residual_mlp, train_tms_target

    exp = configs.experiment(name, scale="gpu")
    kw = dict(exp.target, steps=2)
    target = train_residual_mlp(**kw) if name == "resid_mlp" else train_tms_target(**kw)
    res = train_spd(target, exp.spd, steps=2, warmup_steps=1, batch_size=min(exp.spd.batch_size, 256))
    assert res.model.C == exp.spd.C
    ci = causal_importances(res.model, target.sample(8, torch.Generator().manual_seed(0)))
    assert all(v.shape == (8, exp.spd.C) for v in ci.values())


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, match", [
    (dict(C=0), "C \\(subcomponents per matrix\\) must be an int >= 1"),
    (dict(C=-3), "C \\(subcomponents per matrix\\)"),
    (dict(p=0.0), "p \\(the importance-minimality norm\\) must be a number > 0"),
    (dict(p=-1), "must be a number > 0"),
    (dict(tie="both"), "tie must be"),
    (dict(use_delta_component=False, faithfulness_coeff=0.0), "faithfulness_coeff > 0"),
    (dict(beta=-1.0), "beta must lie in"),
])
def test_bad_spd_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SPDConfig(**kwargs)


def test_bad_types():
    with pytest.raises(TypeError, match="C \\(subcomponents per matrix\\) must be an int"):
        SPDConfig(C=2.5)
    with pytest.raises(TypeError, match="target must be a decomposition Target"):
        train_spd(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="train_apd decomposes a TMSTarget"):
        apd.train_apd("tms")
    with pytest.raises(ValueError, match="p \\(the Schatten norm\\) must be a number > 0"):
        apd.APDConfig(p=0)
    with pytest.raises(TypeError, match="simplicity_per_param must be True or False"):
        apd.APDConfig(simplicity_per_param=1)


@pytest.mark.parametrize("W, b, match", [
    (torch.zeros(5, 2), torch.zeros(2), "d_hidden < n_feat"),
    (torch.zeros(1, 2, 5), torch.zeros(5), "W \\(\\[d_hidden, n_feat\\]\\) must have shape"),
    (torch.zeros(2, 5), torch.zeros(4), "b \\(\\[n_feat\\] = \\[5\\]\\) must have shape \\[5\\]"),
    (torch.zeros(2, 5, dtype=torch.long), torch.zeros(5), "floating-point"),
])
def test_target_of_the_wrong_shape(W, b, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TMSTarget(W, b)


def test_residual_target_shapes_are_checked():
    W_E = torch.randn(8, 4)
    with pytest.raises(ValueError, match="W_out \\(\\[d_embed, d_mlp\\]\\) must have shape \\[8, 3\\]"):
        ResidualMLPTarget(W_E, torch.randn(3, 8), torch.zeros(3), torch.randn(3, 8), torch.zeros(8))
    with pytest.raises(ValueError, match="W_in"):
        ResidualMLPTarget(W_E, torch.randn(3, 7), torch.zeros(3), torch.randn(8, 3), torch.zeros(8))


def test_metrics_shape_errors():
    with pytest.raises(ValueError, match="expected W: \\[d_out, d_in\\], V: \\[d_in, C\\], U: \\[C, d_out\\]"):
        mmcs_ml2r(torch.zeros(2, 5), torch.zeros(4, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="experiment must be one of"):
        configs.experiment("tms_3_1")


# ---------------------------------------------------------------------------------- shipped files


def test_shipped_files_are_checked(tmp_path):
    import shutil

    from course_utils.decomposition import shipped

    w, m = tmp_path / "w.safetensors", tmp_path / "m.json"
    with pytest.raises(FileNotFoundError, match="is missing: regenerate it with python -m"):
        shipped.load_resid_mlp(w, m)
    shutil.copy(shipped.WEIGHTS, w)
    shutil.copy(shipped.META, m)
    target, clean, model, info = shipped.load_resid_mlp(w, m)
    assert model.C == info["spd"]["C"] and target.n_feat == info["target"]["n_feat"]
    assert torch.allclose(clean.W_E.T @ clean.W_E, torch.eye(clean.n_feat), atol=1e-5)  # no mixing
    data = bytearray(w.read_bytes())
    data[-1] ^= 1
    w.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the checksum"):
        shipped.load_resid_mlp(w, m)


def test_own_subcomponents_counts_exclusive_single_subcomponents():
    from course_utils.decomposition import own_subcomponents

    ci = torch.tensor([[0.9, 0.0, 0.0], [0.0, 0.8, 0.3], [0.0, 0.0, 0.7], [0.9, 0.0, 0.0]])
    # input 0 and 3 share subcomponent 0; input 1 uses two; input 2 uses subcomponent 2 alone, but
    # subcomponent 2 is also important on input 1
    assert own_subcomponents(ci) == 0
    assert own_subcomponents(torch.eye(4)) == 4
    assert own_subcomponents(ci, threshold=0.5) == 2  # inputs 1 and 2
    with pytest.raises(ValueError, match="n_feat, C"):
        own_subcomponents(torch.zeros(3))


def test_shipping_command_reruns_shortened_and_deterministically(tmp_path):
    """`python -m course_utils.decomposition.shipped --spd-only`, shortened to 20 SPD steps: it keeps
    the shipped targets, writes files the checked loader reads, records their checksum and command,
    and a second run writes the same bytes."""
    import shutil

    from course_utils.decomposition import shipped

    runs = []
    for i in range(2):
        w, m = tmp_path / f"w{i}.safetensors", tmp_path / f"m{i}.json"
        shutil.copy(shipped.WEIGHTS, w)
        shutil.copy(shipped.META, m)
        info = shipped.train_and_save(w, m, spd_only=True, spd_steps=20)
        assert info["spd"]["steps"] == 20 and "--spd-only" in info["command"] and "20 SPD steps" in info["command"]
        target, _, model, read = shipped.load_resid_mlp(w, m)
        assert read["sha256"] == info["sha256"] and model.C == info["spd"]["C"]
        ref, _, _, _ = shipped.load_resid_mlp()
        assert torch.equal(target.W_in, ref.W_in)  # the targets are the shipped ones
        runs.append(w.read_bytes())
    assert runs[0] == runs[1]
