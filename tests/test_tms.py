"""Chapter 2: the toy models of superposition reproduce the paper's numbers, and bad input is refused.

Tolerances were chosen from runs with several seeds and learning-rate settings at the CPU size:
the sparsest n=5, m=2 instance gave D_i in 0.39–0.41, norms 1.12–1.14, biases −0.23 to −0.25 and
D* 0.31–0.32 (seeds 0–3, lr 1e-2 / 3e-3); the n=20, m=5 sweep counted 5 → 11–14 represented features.
"""

from __future__ import annotations

import pytest
import torch

from course_utils import tms

PENTAGON_S = [1 - 20 ** (-k / 9) for k in range(10)]
S20 = [0.0, 0.7, 0.9, 0.97, 0.99, 0.997, 0.999]


@pytest.fixture(scope="module", params=[0, 1])
def pentagon(request):
    return tms.sparsity_sweep(5, 2, PENTAGON_S, 0.9, n_seeds=3, steps=1_000, batch_size=512, lr=1e-2,
                              seed=request.param)


@pytest.fixture(scope="module")
def sweep20():
    return tms.sparsity_sweep(20, 5, S20, 0.7, n_seeds=1, steps=2_000, batch_size=512, lr=1e-2, seed=0)


@pytest.fixture(scope="module")
def geometry():
    S = [1 - 20 ** (-k / 11) for k in range(12)]
    return tms.sparsity_sweep(100, 10, S, 1.0, n_seeds=1, steps=1_500, batch_size=256, lr=1e-2, seed=0)


# ---------------------------------------------------------------------------------- science


@pytest.mark.slow
def test_pentagon_at_the_sparse_end(pentagon):
    W = pentagon.W[-1:]
    assert tms.n_represented(W).item() == 5
    D = tms.feature_dimensionality(W)[0]
    assert ((D - 0.4).abs() < 0.05).all(), D
    norms = tms.feature_norms(W)[0]
    assert ((norms > 1.05) & (norms < 1.2)).all(), norms
    assert (pentagon.b[-1] < -0.1).all(), pentagon.b[-1]
    # D* is lower than 2/5 because the norms exceed 1 (the page says so)
    assert 0.28 < tms.dimensions_per_feature(W).item() < 0.36
    angles = torch.atan2(W[0, 1], W[0, 0]).rad2deg().sort().values
    gaps = torch.cat([angles.diff(), (360 + angles[0] - angles[-1]).view(1)])
    assert ((gaps - 72).abs() < 8).all(), gaps


@pytest.mark.slow
def test_pentagon_dense_end_is_two_orthogonal_features(pentagon):
    W = pentagon.W[:1]
    assert tms.n_represented(W).item() == 2
    assert tms.dimensions_per_feature(W).item() > 0.9
    top2 = W[0][:, :2]
    cos = (top2[:, 0] @ top2[:, 1]) / (top2.norm(dim=0).prod())
    assert abs(cos.item()) < 0.2  # within about 12° of orthogonal at the CPU training length (seeds 0, 1)


@pytest.mark.slow
def test_sweep20_represents_more_features_when_sparse(sweep20):
    counts = tms.n_represented(sweep20.W).tolist()
    assert counts[0] == 5, counts
    sparse = max(c for s, c in zip(S20, counts) if s >= 0.99)
    assert sparse >= counts[0] + 4, counts


@pytest.mark.slow
def test_geometry_dense_one_then_plateau_at_half(geometry):
    D_star = tms.dimensions_per_feature(geometry.W)
    assert abs(D_star[0].item() - 1) < 0.1, D_star
    near_half = ((D_star - 0.5).abs() < 0.05).int().tolist()
    runs = max(len(r) for r in "".join(map(str, near_half)).split("0"))
    assert runs >= 2, D_star  # a plateau: at least two consecutive levels within 0.05 of 1/2


@pytest.mark.slow
def test_phase_diagram_regions_where_the_paper_puts_them():
    rel = [10 ** (-1 + 2 * k / 6) for k in range(7)]
    dens = [10 ** (-2 * k / 6) for k in range(7)]
    pd = tms.phase_diagram(2, 1, rel, dens, n_seeds=2, steps=1_000, seed=0)
    ph = pd.phase
    assert (ph[:2, 0] == 0).all(), ph  # dense, unimportant: not learned
    assert (ph[-2:, 0] == 2).all(), ph  # dense, more important: takes the dimension
    assert (ph[2:5, -2:] == 1).all(), ph  # sparse, comparable importance: superposed (antipodal)


# ---------------------------------------------------------------------------------- mechanics


def test_batched_layout_matches_public_forward():
    for kind in ("tms", "neuron", "abs"):
        model = tms.ToyModel(3, 6, 2, kind=kind, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            model.b.normal_()
        x = torch.rand(4, 3, 6)
        assert torch.allclose(model(x), model.forward_ibf(x.transpose(0, 1)).transpose(0, 1), atol=1e-6)


def test_instances_do_not_interact():
    model = tms.ToyModel(3, 5, 2, generator=torch.Generator().manual_seed(0))
    x = tms.generate_batch(64, torch.full((3, 5), 0.3), torch.Generator().manual_seed(1))
    imp = torch.ones(3, 5)
    tms.importance_weighted_loss(model(x), x, imp).backward()
    full = model.W.grad.clone()
    model.W.grad = None
    tms.importance_weighted_loss(model(x)[:, 1:2], x[:, 1:2], imp[1:2]).backward()
    assert torch.allclose(model.W.grad[1], full[1], atol=1e-7)
    assert model.W.grad[[0, 2]].abs().max() == 0


def test_training_is_deterministic():
    p = torch.full((2, 1), 0.1)
    a = tms.train_toy_model(5, 2, p, torch.ones(5), steps=20, batch_size=64, seed=3)
    b = tms.train_toy_model(5, 2, p, torch.ones(5), steps=20, batch_size=64, seed=3)
    assert torch.equal(a.W, b.W) and torch.equal(a.loss, b.loss)


@pytest.mark.parametrize("data", ["plain", "correlated", "anticorrelated"])
def test_trainer_samples_the_right_distributions(data):
    p = torch.tensor([[0.2, 0.4]])
    gen = torch.Generator().manual_seed(0)
    x, _ = tms._sample(data, "tms", 50_000, p, gen)
    present = (x[0] > 0).double()
    marg = present.mean(0)
    want = torch.tensor([0.2, 0.4]) if data == "plain" else torch.tensor([0.2, 0.2, 0.4, 0.4])
    assert torch.allclose(marg, want.double(), atol=0.01)
    if data == "correlated":
        assert torch.equal(present[:, 0], present[:, 1])
    if data == "anticorrelated":
        assert (present[:, 0] * present[:, 1]).sum() == 0
    assert abs(x[x > 0].mean().item() - 0.5) < 0.01


@pytest.mark.parametrize(("data", "kind"), [("plain", "tms"), ("correlated", "tms"),
                                          ("anticorrelated", "tms"), ("plain", "abs")])
def test_evaluation_samples_are_shared_across_instances(data, kind):
    """Seeds are compared on one evaluation batch (the ±10–15% noise of separate batches was as
    large as the gaps between geometries). Wrong kind guarded against: independent draws per
    instance (the old behaviour), and sharing that breaks each instance's own distribution."""
    p = torch.tensor([[0.1, 0.3], [0.1, 0.3], [0.4, 0.2]])
    x, target = tms._sample(data, kind, 40_000, p, torch.Generator().manual_seed(0), shared=True)
    assert torch.equal(x[0], x[1]) and torch.equal(target[0], target[1])  # same p: same samples
    present = (x != 0).double().mean(1)  # [inst, n_feat]
    want = p.repeat_interleave(2, dim=1) if data != "plain" else p
    assert torch.allclose(present, want.double(), atol=0.01)  # each instance keeps its own p
    x_own, _ = tms._sample(data, kind, 1000, p, torch.Generator().manual_seed(0))
    assert not torch.equal(x_own[0], x_own[1])  # training batches stay independent across instances


def test_abs_model_targets_are_absolute_values():
    x, target = tms._sample("plain", "abs", 1000, torch.full((1, 4), 0.5), torch.Generator().manual_seed(0))
    assert (x < 0).any() and torch.equal(target, x.abs())


def test_gpu_configurations_run_a_few_steps():
    """The paper-sized settings the page picks on a GPU, smoke-tested on the CPU for two steps."""
    S = [1 - 20 ** (-k / 19) for k in range(20)]
    sw = tms.sparsity_sweep(200, 20, S, 1.0, n_seeds=1, steps=2, batch_size=1024, lr=1e-3)
    assert sw.W.shape == (20, 20, 200)
    sw = tms.sparsity_sweep(5, 2, PENTAGON_S, 0.9, n_seeds=8, steps=2, batch_size=1024, lr=1e-3)
    assert sw.W.shape == (10, 2, 5)
    rel = [10 ** (-1 + 2 * k / 14) for k in range(15)]
    dens = [10 ** (-2 * k / 14) for k in range(15)]
    pd = tms.phase_diagram(3, 2, rel, dens, n_seeds=2, steps=2)
    assert pd.phase.shape == (15, 15)


def test_explorer_figure_is_cached_and_static_twin_builds(monkeypatch):
    from course_utils.plotting import explorer

    monkeypatch.setenv("COURSE_BOOK_BUILD", "1")
    tms.explorer_run.cache_clear()
    fig = explorer(tms.explorer_figure, dict(sparsity=list(tms.EXPLORER_SPARSITY), importance_decay=[0.9],
                                             n_feat=[5], d_hidden=[2]))
    assert len(fig.frames) == len(tms.EXPLORER_SPARSITY)
    assert tms.explorer_run.cache_info().misses == 1


def test_geometry_helpers_on_known_configurations():
    # an antipodal pair and a lone feature in 2-D: D = 1/2, 1/2, 1
    W = torch.tensor([[[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]])
    assert torch.allclose(tms.feature_dimensionality(W), torch.tensor([[0.5, 0.5, 1.0]]))
    assert torch.allclose(tms.dimensions_per_feature(W), torch.tensor([2 / 3]))
    assert tms.classify_phase(W, 0).item() == 1 and tms.classify_phase(W, 2).item() == 2
    assert tms.feature_dimensionality(torch.zeros(1, 2, 3)).eq(0).all()


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, match", [
    (lambda: tms.check_sparsity([0.5, 1.2]), r"sparsity must lie in \[0, 1\]"),
    (lambda: tms.check_sparsity(-0.1), r"sparsity must lie in \[0, 1\]"),
    (lambda: tms.sparsity_sweep(5, 2, [0.5, 1.5]), r"sparsity must lie in \[0, 1\]"),
    (lambda: tms.sparsity_sweep(0, 2, [0.5]), r"n_feat must be an int >= 1"),
    (lambda: tms.ToyModel(2, 5, 0), r"d_hidden must be an int >= 1"),
    (lambda: tms.importance_profile(5, 0.0), "importance decay must be a positive number"),
    (lambda: tms.train_toy_model(3, 2, torch.full((1, 3), 0.5), torch.tensor([1.0, 0.0, 1.0]), steps=1),
     "importance must be positive"),
    (lambda: tms.generate_batch(8, torch.tensor([[0.5, 1.5]])), r"feature_probability must lie in \[0, 1\]"),
    (lambda: tms.generate_batch(0, torch.tensor([[0.5]])), "batch_size must be an int >= 1"),
    (lambda: tms.generate_batch(8, torch.tensor([0.5])), r"feature_probability must have shape \[inst, n_feat\]"),
    (lambda: tms.generate_anticorrelated_batch(8, torch.tensor([[0.6]])), r"must lie in \[0, 0.5\]"),
    (lambda: tms.feature_dimensionality(torch.ones(3, 4)), r"W must have shape \[inst, d_hidden, n_feat\]"),
    (lambda: tms.classify_phase(torch.ones(1, 2, 3), feature=5), "feature must index"),
    (lambda: tms.train_toy_model(3, 2, torch.full((1, 2), 0.5), torch.ones(3), steps=1), r"shape \[inst, 3\]"),
    (lambda: tms.train_toy_model(3, 2, torch.full((1, 3), 0.5), torch.ones(3), steps=1, data="correlated"),
     "n_feat must be even"),
    (lambda: tms.phase_diagram(2, 1, [0.0, 1.0], [0.5]), "rel_importance must hold positive"),
    (lambda: tms.phase_diagram(2, 1, [1.0], [1.5]), r"density .* must lie in \(0, 1\]"),
    (lambda: tms.explorer_figure(sparsity=0.42), "sparsity must be one of"),
    (lambda: tms.tms_forward(torch.ones(2, 3, 5), torch.ones(2, 4), torch.ones(8, 2, 5)), r"b must have shape"),
    (lambda: tms.neuron_forward(torch.ones(2, 3, 5), torch.ones(2, 5), torch.ones(8, 5)), r"x must have shape"),
    (lambda: tms.abs_forward(torch.ones(2, 3, 5), torch.ones(2, 3, 5), torch.ones(2, 5), torch.ones(8, 2, 5)),
     r"W2 must have shape"),
    (lambda: tms.importance_weighted_loss(torch.ones(4, 2, 3), torch.ones(4, 2, 3), torch.tensor([1.0, -1.0, 1.0])),
     "importance must be positive"),
    (lambda: tms.importance_weighted_loss(torch.ones(4, 2, 3), torch.ones(4, 3), torch.ones(3)),
     "target must have the shape"),
])
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_wrong_types_are_refused():
    with pytest.raises(TypeError, match="n_inst must be an int"):
        tms.ToyModel(2.5, 5, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="feature_probability must be a torch.Tensor"):
        tms.generate_batch(8, [[0.5]])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- variants


@pytest.mark.slow
def test_correlated_pairs_orthogonal_anticorrelated_pairs_antipodal():
    for data, want in (("correlated", 0.0), ("anticorrelated", -1.0)):
        run = tms.train_toy_model(4, 2, torch.full((6, 2), 0.1), torch.ones(4), data=data, steps=1_000,
                                  batch_size=512, lr=1e-2, seed=0)
        W = run.W[run.loss.argmin()]
        Wc = W / W.norm(dim=0, keepdim=True)
        cos = Wc.T @ Wc
        assert abs(cos[0, 1].item() - want) < 0.1 and abs(cos[2, 3].item() - want) < 0.1, (data, cos)


@pytest.mark.slow
def test_privileged_basis_monosemantic_when_dense_polysemantic_when_sparse():
    dens = [0.75, 0.1, 0.01]
    run = tms.train_toy_model(10, 5, torch.tensor(dens).unsqueeze(1), tms.importance_profile(10, 0.75),
                              kind="neuron", steps=1_500, batch_size=512, lr=1e-2, seed=0)
    per_neuron = tms.features_per_neuron(run.W)
    assert per_neuron[0].tolist() == [1] * 5, per_neuron
    assert per_neuron[-1].float().mean() >= 2, per_neuron


# ---------------------------------------------------------------------------------- figures


def test_figures_are_pure_functions_of_their_data():
    W = torch.randn(3, 2, 5, generator=torch.Generator().manual_seed(0))
    assert len(tms.plot_features_2d(W, ["a", "b", "c"]).data) == 15
    assert len(tms.plot_wtw(W, ["a", "b", "c"]).data) == 6
    assert len(tms.plot_neuron_weights(W, ["a", "b", "c"]).data) == 3
    fig = tms.plot_dimensionality([0.0, 0.5, 0.9], tms.feature_dimensionality(W), tms.dimensions_per_feature(W))
    assert len(fig.data) == 2
    pd = tms.PhaseDiagram([0.1, 1.0], [1.0, 0.1], torch.tensor([[0, 1], [2, 1]]), torch.randn(2, 2, 1, 2))
    assert tms.plot_phase_diagram(pd, "t").data[0].z.shape == (2, 2)
    with pytest.raises(ValueError, match="titles must have one entry per instance"):
        tms.plot_wtw(W, ["a"])
    with pytest.raises(ValueError, match="needs d_hidden = 2"):
        tms.plot_features_2d(torch.randn(1, 3, 5), ["a"])
