"""Chapter 4's science on the CPU toy (d = 64, 128 known features, dictionary 256, batch 1024, Adam 3e-3):
every architecture recovers the features with its shipped hyperparameters, L1 shrinks reconstructions
while Gated and JumpReLU shrink them less, AuxK revives dead latents, BatchTopK's per-example L0 varies,
and training is deterministic for a seed.

Measured (seeds 0 and 1, the step at which MMCS first reached 0.99, checked every 50 steps; the
ch04/seconds_to_mmcs_099 benchmark): ReLU+L1 350/350, TopK 250/300, BatchTopK 750/700, JumpReLU
600/500, Gated 750/850, Matryoshka (prefixes 192/256) 1000/900, group bias adaptation (lr 1e-2)
1200/1300. The step caps below are about twice the larger of the two.
"""

from __future__ import annotations

import pytest
import torch

from course_utils.saes import (
    SHIPPED,
    TrainConfig,
    dead_fraction,
    l0,
    make_sae,
    mmcs,
    norm_ratio,
    sharkey_toy,
    shipped_train_config,
    train_sae,
)

TOY = sharkey_toy(d=64, n_features=128, seed=0)
PREFIX_GAP = 0.2
CAPS = {"relu": 800, "topk": 600, "batchtopk": 1600, "jumprelu": 1200, "gated": 1700, "matryoshka": 2000,
        "gba": 2600}
_TRAINED: dict[str, torch.nn.Module] = {}


def _trained(arch: str):
    if arch not in _TRAINED:
        sae = make_sae(arch, 64, 256, seed=0, **SHIPPED[arch])
        log = train_sae(sae, TOY, shipped_train_config(arch, steps=CAPS[arch], eval_every=50, seed=0),
                        stop_when=lambda s: mmcs(s.W_dec, TOY.features).item() >= 0.99)
        _TRAINED[arch] = (sae, log)
    return _TRAINED[arch]


def test_features_are_not_found_at_initialisation():
    """Guards the measurement: an SAE seeded like the toy must not start on the true features."""
    assert mmcs(make_sae("topk", 64, 256, seed=0, k=5).W_dec, TOY.features) < 0.6


@pytest.mark.parametrize("arch", sorted(CAPS))
def test_every_architecture_recovers_the_toy_features(arch):
    sae, log = _trained(arch)
    assert log.stopped_at is not None, f"{arch}: MMCS {mmcs(sae.W_dec, TOY.features):.4f} after {CAPS[arch]} steps"
    assert mmcs(sae.W_dec, TOY.features) >= 0.99


def _eval(sae):
    x = TOY.sample(4096, torch.Generator().manual_seed(1))
    with torch.no_grad():
        f = sae.encode(x)
        return x, f, sae.decode(f)


def test_l1_shrinks_and_gated_and_jumprelu_shrink_less():
    """Measured ‖x̂‖/‖x‖: ReLU+L1 0.71, Gated 0.93, JumpReLU 0.92 (at their stopping points; their L0s
    differ: 8.7, 6.4, 3.8)."""
    ratios = {a: norm_ratio(*_eval(_trained(a)[0])[::2]).item() for a in ("relu", "gated", "jumprelu")}
    assert ratios["relu"] < 0.85, ratios
    assert ratios["gated"] > ratios["relu"] + 0.1 and ratios["jumprelu"] > ratios["relu"] + 0.1, ratios


def test_batchtopk_l0_varies_per_example_but_averages_k():
    sae = make_sae("batchtopk", 64, 256, seed=0, **SHIPPED["batchtopk"]).train()
    x = TOY.sample(1024, torch.Generator().manual_seed(2))
    with torch.no_grad():
        per_example = (sae.encode(x) != 0).sum(-1).double()
    assert per_example.mean() == SHIPPED["batchtopk"]["k"]
    assert per_example.std() > 1.0 and per_example.min() < per_example.max()


def test_training_is_deterministic_for_a_seed():
    def run(seed):
        sae = make_sae("jumprelu", 64, 256, seed=seed, **SHIPPED["jumprelu"])
        train_sae(sae, TOY, TrainConfig(steps=15, seed=seed))
        return torch.cat([p.detach().flatten() for p in sae.parameters()])

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_l0_and_dead_fraction_of_a_trained_topk():
    sae, _ = _trained("topk")
    _, f, _ = _eval(sae)
    assert l0(f) <= 5 + 1e-6 and 0 <= dead_fraction(f) < 1


def test_auxk_lowers_the_dead_fraction():
    """A bad start (half the latents biased to −0.4), dictionary 128 = the number of features, 300 steps.
    Measured dead fraction: 0.117 without AuxK, 0.016 with α = 1 (0.086 with the paper's 1/32 on our
    unnormalised loss)."""
    dead = {}
    for aux in (0.0, 1.0):
        sae = make_sae("topk", 64, 128, seed=0, k=5, aux_coefficient=aux, dead_tokens=5_000)
        with torch.no_grad():
            sae.b_enc[64:] = -0.4
        train_sae(sae, TOY, TrainConfig(steps=300, seed=0))
        dead[aux] = dead_fraction(_eval(sae)[1]).item()
    assert dead[1.0] < dead[0.0] - 0.05, dead


def test_group_bias_adaptation_is_sparse_without_a_penalty():
    """Its shipped run (above) recovers the features; here: no sparsity term was ever added to the
    loss, the biases alone made the code sparse (measured L0 6.9), every bias stayed in [−b_max, 0],
    and the groups fire in the order of their targets (measured 0.041, 0.032, 0.021, 0.013)."""
    sae, log = _trained("gba")
    _, f, _ = _eval(sae)
    assert max(log.sparsity) == 0.0
    assert 3 <= l0(f) <= 12
    assert (sae.b_enc <= 0).all() and (sae.b_enc >= -sae.cfg.b_max).all()
    by_group = (f > 0).double().mean(0).reshape(sae.cfg.n_groups, -1).mean(1)
    assert (by_group[1:] < by_group[:-1]).all(), by_group


def test_small_matryoshka_prefixes_merge_the_rare_features():
    """Prefixes 32/64/128/256, 600 steps. Within the first 32 latents the 32 most frequent features are
    matched far better than the 64 rarest (measured mean best cosine, seed 0: 0.702 against 0.376, seed
    1: 0.651 against 0.369; each of those latents has cosine > 0.3 with about 3 features: blends). The
    full dictionary matches the rare ones better (0.88, 0.91) but, with these small prefixes, not fully."""
    from course_utils.saes.metrics import prefix_max_cosines

    prefixes = (32, 64, 128, 256)
    sae = make_sae("matryoshka", 64, 256, seed=0, k=5, prefixes=prefixes)
    train_sae(sae, TOY, TrainConfig(steps=600, seed=0))
    best = prefix_max_cosines(sae.W_dec.detach(), TOY.features, list(prefixes))
    assert best[0, :32].mean() > best[0, 64:].mean() + PREFIX_GAP, best[0]
    assert best[-1, 64:].mean() > 0.8
    assert (best[1:] >= best[:-1] - 1e-6).all()  # a longer prefix never matches worse


def test_matryoshka_absorbs_less_on_the_hierarchical_toy():
    """16 parents × 4 exclusive children, 128 latents, k = 3, 800 steps. Mean cosine between each child's
    latent and its parent (absorption), measured seeds 0-3: BatchTopK 0.313, 0.340, 0.315, 0.358;
    Matryoshka (prefixes 16/128) 0.137, 0.114, 0.121, 0.132. Asserted on seed 0: a gap of 0.1."""
    from course_utils.saes import hierarchical_toy
    from course_utils.saes.metrics import child_parent_cosines

    hier = hierarchical_toy(d=64, n_parents=16, n_children=4, p_parent=0.15, seed=0)
    score = {}
    for arch, kw in (("batchtopk", dict(k=3)), ("matryoshka", dict(k=3, prefixes=(16, 128)))):
        sae = make_sae(arch, 64, 128, seed=0, **kw)
        train_sae(sae, hier, TrainConfig(steps=800, seed=0))
        score[arch] = child_parent_cosines(sae.W_dec.detach(), hier.features, hier.parent_of).mean().item()
    baseline = child_parent_cosines(hier.features[16:], hier.features, hier.parent_of).mean().item()
    assert abs(baseline) < 0.05  # random directions: no absorption in the truth itself
    assert score["matryoshka"] < score["batchtopk"] - 0.1, score
    assert score["batchtopk"] > baseline + 0.2, score


def test_dictionary_size_too_small_merges_and_too_large_duplicates():
    """ReLU + L1 (λ = 0.3), 400 steps. Measured, seeds 0, 1, 2: 64 latents miss 90, 90, 87 features with
    0 duplicates; 512 latents miss none and have 63, 65, 62 duplicate latents."""
    from course_utils.saes.metrics import firing_frequencies, matched_counts

    counts = {}
    for d_sae in (64, 512):
        sae = make_sae("relu", 64, d_sae, seed=0, l1_coefficient=0.3)
        train_sae(sae, TOY, TrainConfig(steps=400, seed=0))
        alive = firing_frequencies(_eval(sae)[1]) > 0
        counts[d_sae] = matched_counts(sae.W_dec.detach(), TOY.features, alive)
    assert counts[64]["missed"] >= 60 and counts[64]["duplicates"] <= 5, counts
    assert counts[512]["missed"] <= 2 and counts[512]["duplicates"] >= 20, counts


def test_an_sae_finds_the_pentagon_but_not_the_code_of_two_features():
    """Chapter 2's toy model (5 features in 2 dimensions, p = 0.05) and TopK SAEs with 10 latents on its
    hidden states. Measured over seeds 0, 1, 2: k = 1 MMCS 0.995, 0.998, 0.964, relative error on
    one-feature inputs 0.007-0.027 and on two-feature inputs 0.24-0.54; k = 2 names the right pair on
    48%, 23%, 29% of two-feature inputs and the right single feature on 15%, 39%, 19% of one-feature
    inputs (a spurious second latent). Asserted on seed 0 with margins from those seeds."""
    from course_utils import tms
    from course_utils.saes import ToyData
    from course_utils.saes.toy import recovery_by_active_count

    run = tms.train_toy_model(5, 2, torch.full((1, 5), 0.05), torch.ones(5), steps=1000, batch_size=512,
                              lr=1e-2, seed=0)
    W = run.W[0]
    assert (W.norm(dim=0) > 0.5).all()  # the pentagon: all five features stored
    hidden = ToyData(W.T.contiguous(), torch.full((5,), 0.05))
    rows = {}
    for k in (1, 2):
        sae = make_sae("topk", 2, 10, seed=0, k=k)
        train_sae(sae, hidden, TrainConfig(steps=600, seed=0))
        rows[k] = {r["n_active"]: r for r in recovery_by_active_count(sae, hidden, max_active=2)}
        if k == 1:
            assert mmcs(sae.W_dec, hidden.features) > 0.95
    assert rows[1][1]["rel_error"] < 0.05 and rows[1][2]["rel_error"] > 0.15, rows[1]
    assert rows[2][2]["exact_support"] < 0.6 and rows[2][1]["exact_support"] < 0.5, rows[2]
