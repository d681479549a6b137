"""Per-layer transcoders and the cross-layer transcoder: interface, skip path, training through chapter
4's loop, SAELens's transcoder format (loaded by SAELens's own classes, identical outputs on
non-square shapes), and clear errors for bad input."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils.circuits import (
    CLTConfig,
    CrossLayerTranscoder,
    JumpReLUTranscoder,
    TopKTranscoder,
    load_clt,
    load_transcoder,
    make_transcoder,
    register_sae_lens_topk_transcoders,
    save_transcoder,
    train_clt,
    train_transcoder,
)
from course_utils.circuits.course import fold_clt_scales, fold_scales
from course_utils.saes import TrainConfig

D_IN, D_SAE, D_OUT = 12, 40, 7  # non-square on purpose
VARIANTS = [("topk", False), ("topk", True), ("jumprelu", False), ("jumprelu", True)]


def randomised(arch: str, skip: bool, seed: int = 0, dtype: torch.dtype = torch.float32):
    kw = {"k": 5} if arch == "topk" else {"init_threshold": 0.2}
    tc = make_transcoder(arch, D_IN, D_SAE, D_OUT, seed=seed, skip=skip, hook_name="blocks.0.ln2.hook_normalized",
                         hook_name_out="blocks.0.hook_mlp_out", **kw)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in tc.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
        if arch == "jumprelu":
            tc.threshold.abs_()
    return tc.to(dtype).eval()


@pytest.mark.parametrize(("arch", "skip"), VARIANTS)
def test_interface_shapes_and_skip_path(arch, skip):
    tc = randomised(arch, skip)
    x = torch.randn(3, 5, D_IN, generator=torch.Generator().manual_seed(1))
    acts = tc.encode(x)
    assert acts.shape == (3, 5, D_SAE) and (acts >= 0).all()
    assert tc.W_enc.shape == (D_IN, D_SAE) and tc.W_dec.shape == (D_SAE, D_OUT) and tc.b_dec.shape == (D_OUT,)
    assert tc.b_enc.shape == (D_SAE,)
    y = tc(x)
    assert y.shape == (3, 5, D_OUT)
    assert torch.allclose(y, tc.decode(acts, x))
    no_skip = acts @ tc.W_dec + tc.b_dec
    assert torch.allclose(tc.decode(acts), no_skip)  # x=None: the skip path is left out
    if skip:
        assert tc.W_skip.shape == (D_IN, D_OUT)
        assert torch.allclose(y - no_skip, x @ tc.W_skip, atol=1e-6)
        assert (x @ tc.W_skip).abs().max() > 0.1  # the skip path contributes
    else:
        assert tc.W_skip is None and torch.allclose(y, no_skip)
    assert tc.cfg.hook_name == "blocks.0.ln2.hook_normalized" and tc.cfg.hook_name_out == "blocks.0.hook_mlp_out"
    # rows are independent: one token's output does not depend on the others
    assert torch.allclose(tc(x[:1, :1]), y[:1, :1], atol=1e-6)


def test_activations_follow_the_architecture():
    x = torch.randn(64, D_IN, generator=torch.Generator().manual_seed(2))
    topk = randomised("topk", False)
    assert ((topk.encode(x) > 0).sum(-1) <= 5).all()
    jump = randomised("jumprelu", False)
    pre = x @ jump.W_enc + jump.b_enc
    want = torch.where(pre > jump.threshold, pre.relu(), torch.zeros_like(pre))
    assert torch.equal(jump.encode(x), want)


def test_no_pre_encoder_bias_for_square_transcoders():
    """b_dec lives in the output space: it must not be subtracted from the input even when d_in == d_out."""
    tc = make_transcoder("topk", 8, 16, 8, k=3)
    x = torch.randn(4, 8)
    before = tc.encode(x)
    with torch.no_grad():
        tc.b_dec.fill_(5.0)
    assert torch.equal(tc.encode(x), before)
    assert not torch.allclose(tc.W_enc, tc.W_dec.T)  # not tied like an autoencoder's initialisation


@pytest.mark.parametrize(("arch", "skip"), VARIANTS)
def test_pair_batches_and_explicit_targets_give_the_same_loss(arch, skip):
    tc = randomised(arch, skip)
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(16, D_IN, generator=g), torch.randn(16, D_OUT, generator=g)
    a, b = tc.loss(torch.cat([x, y], -1)), tc.loss(x, y)
    assert torch.allclose(a.total, b.total)
    assert torch.allclose(a.mse, (tc(x) - y).pow(2).sum(-1).mean())


@pytest.mark.parametrize(("arch", "skip"), VARIANTS)
def test_training_fits_a_target_deterministically(arch, skip):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4096, D_IN, generator=g)
    y = x[:, :D_OUT] * 2.0 + torch.relu(x[:, D_OUT:D_OUT + 1])  # linear part + a feature
    cfg = TrainConfig(steps=300, batch_size=256, lr=1e-2, eval_every=50, seed=0)
    kw = {"k": 8} if arch == "topk" else {"l0_coefficient": 1e-3, "init_threshold": 0.01}
    runs = []
    for _ in range(2):
        tc = make_transcoder(arch, D_IN, D_SAE, D_OUT, seed=0, skip=skip, **kw)
        train_transcoder(tc, x, y, cfg)
        runs.append(tc)
    for p, q in zip(runs[0].parameters(), runs[1].parameters(), strict=True):
        assert torch.equal(p, q)
    tc = runs[0]
    with torch.no_grad():
        fvu = (tc(x) - y).pow(2).sum() / (y - y.mean(0)).pow(2).sum()
    assert fvu < 0.3, float(fvu)
    if skip:
        assert tc.W_skip.abs().max() > 0.1  # the skip path was trained (gradients reach it)


@pytest.mark.parametrize(("arch", "skip"), VARIANTS)
def test_fold_scales_maps_raw_activations(arch, skip):
    tc = randomised(arch, skip, dtype=torch.float64)
    folded = randomised(arch, skip, dtype=torch.float64)
    a, c = 1.7, 0.4
    fold_scales(folded, a, c)
    x = torch.randn(32, D_IN, dtype=torch.float64)
    assert torch.allclose(folded(x), tc(a * x) / c, atol=1e-10)
    assert torch.allclose(folded.W_dec, tc.W_dec)  # decoder rows keep their norms


@pytest.mark.parametrize(("arch", "skip"), VARIANTS)
def test_sae_lens_loads_the_file_with_identical_outputs(arch, skip, tmp_path):
    sae_lens = pytest.importorskip("sae_lens", reason="sae-lens is an optional extra (pip install .[lm])")
    register_sae_lens_topk_transcoders()
    for dtype, atol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        tc = randomised(arch, skip, dtype=dtype)
        folder = save_transcoder(tc, tmp_path / f"{arch}{skip}{dtype}")
        cfg = json.loads((folder / "cfg.json").read_text())
        assert cfg["d_out"] == D_OUT and cfg["metadata"]["hook_name_out"] == "blocks.0.hook_mlp_out"
        assert cfg["apply_b_dec_to_input"] is False
        theirs = sae_lens.SAE.load_from_disk(str(folder))
        expected = {"topk": "Transcoder", "jumprelu": "JumpReLUTranscoder"}[arch]
        if skip:
            assert isinstance(theirs, sae_lens.SkipTranscoder)
        assert isinstance(theirs, getattr(sae_lens, expected))
        if arch == "jumprelu":  # SAELens's own classes, unchanged
            assert type(theirs).__module__ == "sae_lens.saes.transcoder"
        x = torch.randn(6, D_IN, dtype=dtype, generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            assert torch.allclose(theirs.encode(x), tc.encode(x), atol=atol)
            assert torch.allclose(theirs(x), tc(x), atol=atol)
        ours = load_transcoder(folder)
        assert type(ours) is type(tc) and ours.cfg.skip == skip
        assert torch.equal(ours(x), tc(x))
        again = type(tc).load(tc.save(tmp_path / f"method{arch}{skip}{dtype}"))  # the methods use this format
        assert torch.equal(again(x), tc(x))
    other = JumpReLUTranscoder if arch == "topk" else TopKTranscoder
    with pytest.raises(ValueError, match=f"not a {other.__name__}"):
        other.load(folder)


def test_a_file_written_by_sae_lens_loads_here(tmp_path):
    sae_lens = pytest.importorskip("sae_lens", reason="sae-lens is an optional extra (pip install .[lm])")
    cfg = sae_lens.JumpReLUSkipTranscoderConfig(d_in=D_IN, d_sae=D_SAE, d_out=D_OUT, apply_b_dec_to_input=False)
    theirs = sae_lens.JumpReLUSkipTranscoder(cfg)
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        theirs.threshold.abs_()
    theirs.save_model(str(tmp_path))
    ours = load_transcoder(tmp_path)
    assert isinstance(ours, JumpReLUTranscoder) and ours.cfg.skip
    x = torch.randn(9, D_IN, generator=g)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)


def test_bad_input_is_named(tmp_path):
    tc = randomised("topk", True)
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., d_in=12\]"):
        tc.encode(torch.randn(3, 11))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        tc([1.0] * 12)
    with pytest.raises(ValueError, match=r"acts must have shape \[\.\.\., d_sae=40\]"):
        tc.decode(torch.randn(3, 39))
    with pytest.raises(ValueError, match="share leading dimensions"):
        tc.decode(torch.randn(3, D_SAE), torch.randn(2, D_IN))
    with pytest.raises(ValueError, match="target must have shape"):
        tc.loss(torch.randn(4, D_IN), torch.randn(4, D_OUT + 1))
    with pytest.raises(ValueError, match="training pair"):
        tc.loss(torch.randn(4, D_IN))
    with pytest.raises(ValueError, match="unknown transcoder architecture 'gated'"):
        make_transcoder("gated", 4, 8, 4)
    with pytest.raises(TypeError, match="skip must be a bool"):
        make_transcoder("topk", 4, 8, 4, k=2, skip="yes")
    with pytest.raises(ValueError, match="k=9 is larger than the dictionary"):
        make_transcoder("topk", 4, 8, 4, k=9)
    with pytest.raises(ValueError, match=r"x must be \[n, d_in=12\] and y \[n, d_out=7\]"):
        train_transcoder(tc, torch.randn(10, D_IN), torch.randn(10, D_IN))
    with pytest.raises(ValueError, match="resampling is defined for autoencoders only"):
        train_transcoder(tc, torch.randn(10, D_IN), torch.randn(10, D_OUT), TrainConfig(steps=1, resample_every=5))


def test_corrupted_and_mismatched_files_are_named(tmp_path):
    from course_utils.saes import TopKConfig, TopKSAE

    tc = randomised("jumprelu", True)
    folder = save_transcoder(tc, tmp_path / "tc")
    with pytest.raises(ValueError, match="is not a saved transcoder"):
        load_transcoder(tmp_path / "nothing")
    sae_dir = TopKSAE(TopKConfig(d_in=8, d_sae=16, k=2)).save(tmp_path / "sae")
    with pytest.raises(ValueError, match="an SAE, not a transcoder"):
        load_transcoder(sae_dir)
    cfg_path = folder / "cfg.json"
    good = cfg_path.read_text()
    cfg = json.loads(good)
    cfg["metadata"]["course_utils"]["d_out"] = D_OUT + 1
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"W_dec has shape \[40, 7\] but the config implies \[40, 8\]"):
        load_transcoder(folder)
    cfg = json.loads(good)
    cfg["metadata"]["course_utils"]["skip"] = False
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="skip=False"):
        load_transcoder(folder)
    cfg_path.write_text(good[:-20])
    with pytest.raises(ValueError, match="not valid JSON"):
        load_transcoder(folder)
    cfg_path.write_text(good)
    w = folder / "sae_weights.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(ValueError, match="could not be read"):
        load_transcoder(folder)


# ------------------------------------------------------------------------------------------------
# Cross-layer transcoder


def clt_random(activation: str = "topk", seed: int = 0, dtype: torch.dtype = torch.float32,
               n_layers: int = 2) -> CrossLayerTranscoder:
    clt = CrossLayerTranscoder(CLTConfig(n_layers=n_layers, d_in=D_IN, d_sae=D_SAE, d_out=D_OUT, k=5,
                                         activation=activation, init_threshold=0.2),
                               generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in (clt.b_enc, clt.b_dec):
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return clt.to(dtype).eval()


@pytest.mark.parametrize("activation", ["topk", "jumprelu"])
def test_clt_decodes_each_target_from_every_earlier_source(activation):
    clt = clt_random(activation, n_layers=3)
    x = torch.randn(4, 2, 3, D_IN, generator=torch.Generator().manual_seed(7))
    acts = clt.encode(x)
    assert acts.shape == (4, 2, 3, D_SAE)
    assert clt.W_dec.shape == (3, 3, D_SAE, D_OUT) and clt.W_dec[0, 2].shape == (D_SAE, D_OUT)
    y = clt(x)
    for t in range(3):
        want = clt.b_dec[t] + sum(acts[..., s, :] @ clt.W_dec[s, t] for s in range(t + 1))
        assert torch.allclose(y[..., t, :], want, atol=1e-5)
        assert torch.allclose(clt.decode_to(acts, t), want, atol=1e-5)
        assert torch.equal(clt.encode_layer(x[..., t, :], t), acts[..., t, :])
    for s in range(3):
        for t in range(s):
            assert clt.W_dec[s, t].abs().max() == 0  # no feature writes to an earlier layer


def test_one_layer_clt_is_a_per_layer_transcoder():
    clt = clt_random("topk", n_layers=1)
    tc = make_transcoder("topk", D_IN, D_SAE, D_OUT, k=5)
    with torch.no_grad():
        tc.W_enc.copy_(clt.W_enc[0])
        tc.b_enc.copy_(clt.b_enc[0])
        tc.W_dec.copy_(clt.W_dec[0, 0])
        tc.b_dec.copy_(clt.b_dec[0])
    x = torch.randn(10, D_IN)
    assert torch.allclose(clt(x[:, None])[:, 0], tc(x), atol=1e-6)


@pytest.mark.parametrize("activation", ["topk", "jumprelu"])
def test_clt_trains_on_the_sum_of_layer_losses(activation):
    g = torch.Generator().manual_seed(8)
    x = torch.randn(4096, 2, D_IN, generator=g)
    y = torch.stack([torch.relu(x[:, 0, :D_OUT]), torch.relu(x[:, 0, :D_OUT]) + x[:, 1, :D_OUT]], 1)
    clt = clt_random(activation)
    xy = torch.cat([x[:8], y[:8]], -1)
    parts = clt.loss(xy)
    per_layer = sum((clt(x[:8])[:, t] - y[:8, t]).pow(2).sum(-1).mean() for t in range(2))
    assert torch.allclose(parts.mse, per_layer)
    cfg = TrainConfig(steps=200, batch_size=256, lr=1e-2, eval_every=50)
    runs = []
    for _ in range(2):
        c = CrossLayerTranscoder(CLTConfig(n_layers=2, d_in=D_IN, d_sae=D_SAE, d_out=D_OUT, k=8,
                                           activation=activation, l0_coefficient=1e-3, init_threshold=0.01),
                                 generator=torch.Generator().manual_seed(0))
        log = train_clt(c, x, y, cfg)
        runs.append(c)
    assert torch.equal(runs[0].W_dec, runs[1].W_dec) and torch.equal(runs[0].W_enc, runs[1].W_enc)
    c = runs[0]
    assert log.mse[-1] < 0.5 * log.mse[0]
    assert c.W_dec[1, 0].abs().max() == 0  # the masked block stayed zero through training
    norms = c.W_dec.pow(2).sum((1, 3)).sqrt()
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)  # joint unit-norm decoder rows


def test_clt_save_load_and_scale_folding(tmp_path):
    clt = clt_random("jumprelu", dtype=torch.float64)
    x = torch.randn(16, 2, D_IN, dtype=torch.float64)
    clt.save(tmp_path / "clt")
    back = load_clt(tmp_path / "clt")
    assert torch.equal(back(x), clt(x))
    folded = load_clt(tmp_path / "clt")
    a = torch.tensor([1.5, 0.7], dtype=torch.float64)
    fold_clt_scales(folded, a, 0.25)
    assert torch.allclose(folded(x), clt(x * a[:, None]) / 0.25, atol=1e-10)


def test_clt_bad_input_is_named(tmp_path):
    clt = clt_random()
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., n_layers=2, d_in=12\]"):
        clt.encode(torch.randn(3, D_IN))
    with pytest.raises(ValueError, match=r"acts must have shape \[\.\.\., n_layers=2, d_sae=40\]"):
        clt.decode(torch.randn(3, 1, D_SAE))
    with pytest.raises(ValueError, match=r"layer must be an int in \[0, 2\)"):
        clt.encode_layer(torch.randn(3, D_IN), 2)
    with pytest.raises(ValueError, match="activation must be 'topk' or 'jumprelu'"):
        CLTConfig(d_in=4, d_sae=8, activation="relu")
    with pytest.raises(ValueError, match="hook_names must be empty or 2 hook names"):
        CLTConfig(d_in=4, d_sae=8, k=2, hook_names=("a",))
    with pytest.raises(ValueError, match=r"x must be \[n, 2, 12\]"):
        train_clt(clt, torch.randn(5, 3, D_IN), torch.randn(5, 3, D_OUT))
    with pytest.raises(ValueError, match="is not a saved CLT"):
        load_clt(tmp_path)
    folder = clt.save(tmp_path / "c")
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["d_sae"] = 41
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="W_dec_0 has shape"):
        load_clt(folder)
    with pytest.raises(NotImplementedError, match="SAELens has no cross-layer transcoder format"):
        clt.sae_lens_state()


def test_transcoder_classes_are_chapter_4_saes():
    """Reuse, not a copy: the transcoders are chapter 4's SAE classes with another target."""
    from course_utils.saes import SAE, JumpReLUSAE, TopKSAE

    assert issubclass(TopKTranscoder, TopKSAE) and issubclass(JumpReLUTranscoder, JumpReLUSAE)
    assert issubclass(CrossLayerTranscoder, SAE)
