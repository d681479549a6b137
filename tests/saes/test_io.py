"""SAELens's on-disk format: files written here load in sae-lens 6.54.12 with the same encodings and
reconstructions, files written by sae-lens load here, and bad files fail with a clear error."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils.saes import ARCHITECTURES, SHIPPED, TopKSAE, load_sae, make_sae, save_sae
from course_utils.saes.batchtopk import BatchTopKSAE

sae_lens = pytest.importorskip("sae_lens", reason="sae-lens is an optional extra (pip install .[saes])")

D_IN, D_SAE = 12, 40  # non-square: a transposed W_dec would load silently when d_in == d_sae


def _randomised(arch: str) -> torch.nn.Module:
    kwargs = dict(SHIPPED[arch])
    if arch == "matryoshka":
        kwargs["prefixes"] = (10, 40)
    if "k" in kwargs:
        kwargs["k"] = 3
    sae = make_sae(arch, D_IN, D_SAE, seed=1, **kwargs)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        if hasattr(sae, "threshold"):
            sae.threshold.copy_(torch.rand(sae.threshold.shape, generator=g) * 0.2 + 0.05)
    return sae.eval()


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_sae_lens_loads_what_we_save(arch, tmp_path):
    sae = _randomised(arch)
    save_sae(sae, tmp_path / arch)
    theirs = sae_lens.SAE.load_from_disk(str(tmp_path / arch))
    assert theirs.W_enc.shape == (D_IN, D_SAE) and theirs.W_dec.shape == (D_SAE, D_IN)
    x = torch.randn(64, D_IN, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        f_ours, f_theirs = sae.encode(x), theirs.encode(x)
        assert (f_ours != 0).float().mean() > 0.02  # the comparison is not between two zero tensors
        torch.testing.assert_close(f_theirs, f_ours, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(theirs.decode(f_theirs), sae.decode(f_ours), atol=1e-5, rtol=1e-5)
    cfg = json.loads((tmp_path / arch / "cfg.json").read_text())
    assert cfg["metadata"]["sae_lens_version"] and cfg["metadata"]["training_architecture"] == arch


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_round_trip_restores_the_training_class(arch, tmp_path):
    sae = _randomised(arch)
    loaded = load_sae(save_sae(sae, tmp_path / "s"))
    assert type(loaded) is type(sae) and loaded.cfg == sae.cfg
    x = torch.randn(16, D_IN, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), sae(x))


@pytest.mark.parametrize("arch", ["standard", "topk", "jumprelu", "gated"])
def test_we_load_what_sae_lens_saves(arch, tmp_path):
    name = {"standard": "Standard", "topk": "TopK", "jumprelu": "JumpReLU", "gated": "Gated"}[arch]
    cfg_cls, sae_cls = getattr(sae_lens, f"{name}SAEConfig"), getattr(sae_lens, f"{name}SAE")
    extra = {"k": 3} if arch == "topk" else {}
    theirs = sae_cls(cfg_cls(d_in=D_IN, d_sae=D_SAE, **extra))
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        if arch == "jumprelu":
            theirs.threshold.copy_(torch.rand(D_SAE, generator=g) * 0.2)
    theirs.save_model(tmp_path / arch)
    ours = load_sae(tmp_path / arch)
    x = torch.randn(32, D_IN, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(ours.encode(x), theirs.encode(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours(x), theirs.decode(theirs.encode(x)), atol=1e-5, rtol=1e-5)


def test_a_file_of_another_architecture_is_refused(tmp_path):
    save_sae(_randomised("gated"), tmp_path / "g")
    with pytest.raises(ValueError, match="holds a GatedSAE.*not a TopKSAE"):
        TopKSAE.load(tmp_path / "g")
    save_sae(_randomised("matryoshka"), tmp_path / "m")
    assert isinstance(BatchTopKSAE.load(tmp_path / "m"), BatchTopKSAE)  # a Matryoshka SAE is a BatchTopK SAE


def test_a_mismatched_config_is_refused(tmp_path):
    path = save_sae(_randomised("topk"), tmp_path / "t")
    cfg = json.loads((path / "cfg.json").read_text())
    cfg["metadata"]["course_utils"]["d_sae"] = D_SAE + 1
    (path / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="W_(enc|dec) has shape .* but the config implies"):
        load_sae(path)


def test_missing_files_and_extra_tensors_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not a saved SAE"):
        load_sae(tmp_path)
    from safetensors.torch import load_file, save_file

    path = save_sae(_randomised("relu"), tmp_path / "r")
    tensors = load_file(str(path / "sae_weights.safetensors"))
    tensors["threshold"] = torch.zeros(D_SAE)
    save_file(tensors, str(path / "sae_weights.safetensors"))
    with pytest.raises(ValueError, match="do not match a ReLUSAE"):
        load_sae(path)


def test_corrupted_and_truncated_files_are_named(tmp_path):
    path = save_sae(_randomised("topk"), tmp_path / "t")
    weights = path / "sae_weights.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"sae_weights.safetensors could not be read .*corrupted"):
        load_sae(path)
    weights.write_bytes(good)
    (path / "cfg.json").write_text('{"d_in": 12,')
    with pytest.raises(ValueError, match=r"cfg.json is not valid JSON .*corrupted"):
        load_sae(path)
    with pytest.raises(TypeError, match="folder path"):
        load_sae(3)
