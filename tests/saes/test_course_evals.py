"""The course's SAE evaluation (course_utils.saes.evals): exact baselines, hooks left clean, and the
same numbers as sae-lens's run_evals on the same SAE and tokens."""

from __future__ import annotations

import pytest
import torch

from course_utils.saes import ReLUConfig, ReLUSAE, TopKConfig, TopKSAE
from course_utils.saes.evals import baselines, evaluate_sae, explained_variance, mean_activation

HOOK = "blocks.0.mlp.hook_post"


@pytest.fixture(scope="module")
def model_and_tokens():
    from course_utils.course_lm import load_course_lm
    from course_utils.saes.course import corpus_windows

    torch.set_num_threads(1)
    model, tok = load_course_lm()
    tokens = corpus_windows(tok, "validation", 24 * 128, 128, seed=3)[:, :64].contiguous()
    return model, tokens


def identity_sae(d: int) -> ReLUSAE:
    """relu(x) − relu(−x) = x exactly: W_enc = [I, −I], W_dec = [I; −I]."""
    sae = ReLUSAE(ReLUConfig(d_in=d, d_sae=2 * d, unit_norm_decoder=False))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()


def constant_sae(value: torch.Tensor) -> ReLUSAE:
    """Never fires (b_enc very negative), so x̂ = b_dec = value."""
    d = value.shape[0]
    sae = ReLUSAE(ReLUConfig(d_in=d, d_sae=8, unit_norm_decoder=False))
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.b_enc.fill_(-1.0)
        sae.b_dec.copy_(value)
    return sae.eval()


def test_identity_sae_recovers_everything(model_and_tokens):
    model, tokens = model_and_tokens
    t = tokens[:4]
    ev = evaluate_sae(model, identity_sae(512), HOOK, t)
    assert ev.ce_recovered_zero == pytest.approx(1.0, abs=1e-4)
    assert ev.ce_recovered_mean == pytest.approx(1.0, abs=1e-4)
    assert abs(ev.delta_loss) < 1e-4 and ev.kl_sae < 1e-5 and ev.kl_score == pytest.approx(1.0, abs=1e-5)
    assert ev.explained_variance == pytest.approx(1.0, abs=1e-6)
    assert ev.ce_zero > ev.ce_clean + 1 and ev.ce_mean > ev.ce_clean + 1  # ablating the MLP hurts


def test_ablation_baselines_are_the_zero_points(model_and_tokens):
    """An SAE that outputs zeros scores 0 against zero ablation; one that outputs the mean, 0 against
    mean ablation (a swapped baseline would give a clearly non-zero score)."""
    model, tokens = model_and_tokens
    t = tokens[:4]
    mean = mean_activation(model, HOOK, t)
    zero = evaluate_sae(model, constant_sae(torch.zeros(512)), HOOK, t)
    assert zero.ce_recovered_zero == pytest.approx(0.0, abs=1e-5) and zero.l0 == 0
    assert zero.dead_fraction == 1.0 and zero.kl_score == pytest.approx(0.0, abs=1e-5)
    at_mean = evaluate_sae(model, constant_sae(mean), HOOK, t)
    assert at_mean.ce_recovered_mean == pytest.approx(0.0, abs=1e-4)
    assert abs(at_mean.ce_recovered_zero) > 0.05  # the two baselines differ on this hook
    assert at_mean.explained_variance == pytest.approx(0.0, abs=1e-4)  # the mean explains no variance


def test_model_left_as_it_was(model_and_tokens):
    """Side effects: no hook left behind, training mode unchanged, same logits afterwards."""
    model, tokens = model_and_tokens
    t = tokens[:2]
    before = model(t)
    sae = TopKSAE(TopKConfig(d_in=512, d_sae=256, k=8), generator=torch.Generator().manual_seed(0)).train()
    evaluate_sae(model, sae, HOOK, t)
    assert sae.training and not model.training
    assert all(not hp.fwd_hooks for hp in model.hook_dict.values())
    assert torch.equal(model(t), before)


def test_explained_variance_is_sae_lens_definition():
    """1 − E‖x − x̂‖² / (E‖x‖² − ‖Ex‖²) in float64 — not per-example FVU, and stable with a large mean
    (sae-lens squares in float32 before summing in float64: with a mean of 1000 it is off by 3e-5, so
    the comparison with it uses a mean of 3)."""
    from sae_lens.evals import ExplainedVarianceCalculator

    g = torch.Generator().manual_seed(0)
    small = torch.randn(300, 7, generator=g) * torch.arange(1, 8) + 3.0
    small_hat = small + 0.5 * torch.randn(300, 7, generator=g)
    calc = ExplainedVarianceCalculator()
    calc.add_batch(sae_output=small_hat, hidden_acts=small)
    assert explained_variance(small, small_hat) == pytest.approx(calc.compute(), abs=1e-6)
    x = torch.randn(300, 7, generator=g) * torch.arange(1, 8) + 1000.0
    x_hat = x + 0.5 * torch.randn(300, 7, generator=g)
    x64, xh64 = x.double(), x_hat.double()
    direct = 1 - (x64 - xh64).pow(2).sum(1).mean() / (x64 - x64.mean(0)).pow(2).sum(1).mean()
    assert explained_variance(x, x_hat) == pytest.approx(float(direct), abs=1e-9)


def test_bad_input(model_and_tokens):
    model, tokens = model_and_tokens
    sae = identity_sae(512)
    with pytest.raises(ValueError, match="no hook"):
        evaluate_sae(model, sae, "blocks.7.mlp.hook_post", tokens[:1])
    with pytest.raises(ValueError, match="LongTensor"):
        evaluate_sae(model, sae, HOOK, tokens[:1].float())
    with pytest.raises(ValueError, match="at least 2"):
        evaluate_sae(model, sae, HOOK, tokens[:1, :1])
    with pytest.raises(TypeError, match="SAE"):
        evaluate_sae(model, object(), HOOK, tokens[:1])
    base = baselines(model, HOOK, tokens[:1])
    with pytest.raises(ValueError, match="another hook or other tokens"):
        evaluate_sae(model, sae, HOOK, tokens[:2], base=base)
    with pytest.raises(ValueError, match="d_in=128 activations but blocks.0.mlp.hook_post is 512 wide"):
        evaluate_sae(model, identity_sae(128), HOOK, tokens[:1])


def random_topk(model, tokens):
    sae = TopKSAE(TopKConfig(d_in=512, d_sae=384, k=12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # a non-trivial SAE: bias at the data mean
        sae.b_dec.copy_(mean_activation(model, HOOK, tokens[:4]))
    return sae.eval()


def shipped_topk(model, tokens):
    from course_utils.saes.course import load_course_sae, shipped_names

    if "mlp0-topk-2048" not in shipped_names():
        pytest.skip("mlp0-topk-2048 is not shipped")
    return load_course_sae("mlp0-topk-2048", model)


@pytest.mark.parametrize("make", [random_topk, shipped_topk], ids=["random-topk", "shipped-mlp0-topk"])
def test_matches_sae_lens_run_evals(model_and_tokens, tmp_path, make):
    """Same SAE (saved by us, loaded by sae-lens), same tokens: CE score, KL score, explained variance
    and L0 agree (CE/KL on the 16 reconstruction rows, variance/L0 on the next 8)."""
    datasets = pytest.importorskip("datasets", reason="datasets ships with sae-lens")
    from sae_lens import SAE as LensSAE
    from sae_lens.evals import EvalConfig, run_evals
    from sae_lens.training.activation_scaler import ActivationScaler
    from sae_lens.training.activations_store import ActivationsStore

    model, tokens = model_and_tokens
    sae = make(model, tokens)
    from course_utils.saes import save_sae

    save_sae(sae, tmp_path / "sae", hook_name=HOOK, model_name="course_lm")
    import json

    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    cfg["metadata"]["context_size"] = tokens.shape[1]
    (tmp_path / "sae" / "cfg.json").write_text(json.dumps(cfg))
    lens = LensSAE.load_from_disk(str(tmp_path / "sae"))
    ds = datasets.Dataset.from_dict({"input_ids": tokens[:24].tolist()})
    store = ActivationsStore.from_sae(model, lens, dataset=ds, streaming=False, store_batch_size_prompts=8,
                                      context_size=tokens.shape[1])
    cfg_e = EvalConfig(batch_size_prompts=8, n_eval_reconstruction_batches=2, n_eval_sparsity_variance_batches=1,
                       compute_kl=True, compute_ce_loss=True, compute_sparsity_metrics=True,
                       compute_variance_metrics=True)
    theirs, _ = run_evals(lens, store, model, ActivationScaler(), cfg_e, exclude_special_tokens=False)
    recon = evaluate_sae(model, sae, HOOK, tokens[:16])
    sparse = evaluate_sae(model, sae, HOOK, tokens[16:24])
    assert recon.ce_recovered_zero == pytest.approx(theirs["model_performance_preservation"]["ce_loss_score"], abs=1e-4)
    assert recon.ce_sae == pytest.approx(theirs["model_performance_preservation"]["ce_loss_with_sae"], abs=1e-4)
    assert recon.kl_score == pytest.approx(theirs["model_behavior_preservation"]["kl_div_score"], abs=1e-4)
    assert recon.kl_sae == pytest.approx(theirs["model_behavior_preservation"]["kl_div_with_sae"], abs=1e-4)
    assert sparse.explained_variance == pytest.approx(theirs["reconstruction_quality"]["explained_variance"], abs=1e-4)
    assert sparse.l0 == pytest.approx(theirs["sparsity"]["l0"], abs=1e-4)
