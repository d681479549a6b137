"""The activation store: shapes, shuffling, determinism, disk cache, throughput and bad hook names."""

from __future__ import annotations

import pytest
import torch

from course_utils.activations import ActivationStore


@pytest.fixture(scope="module")
def tiny_model():
    from transformer_lens import HookedTransformer

    from course_utils.corpus import load_corpus
    from course_utils.course_lm import CourseLMConfig, train_tokenizer

    tok = train_tokenizer([f.text for f in load_corpus("validation")][:10], vocab_size=320)
    cfg = CourseLMConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, n_ctx=32, d_vocab=320)
    torch.manual_seed(0)
    return HookedTransformer(cfg.hooked_config(), move_to_device=False).eval(), tok


def _store(tiny_model, **kw):
    model, tok = tiny_model
    args = dict(split="validation", batch_size=64, seqs_per_forward=4, buffer_batches=4, max_batches=6)
    args.update(kw)
    return ActivationStore(model, tok, **args)


def test_batches_have_the_hook_width(tiny_model):
    mlp = list(_store(tiny_model, hook_name="blocks.1.mlp.hook_post"))
    resid = list(_store(tiny_model, hook_name="blocks.0.hook_resid_pre"))
    attn = list(_store(tiny_model, hook_name="blocks.0.hook_attn_out"))
    assert len(mlp) == 6 and all(b.shape == (64, 32) for b in mlp)
    assert resid[0].shape == (64, 16) and attn[0].shape == (64, 16)


def test_same_seed_same_batches_and_shuffled_across_windows(tiny_model):
    a = list(_store(tiny_model, hook_name="blocks.0.mlp.hook_post", seed=1))
    b = list(_store(tiny_model, hook_name="blocks.0.mlp.hook_post", seed=1))
    c = list(_store(tiny_model, hook_name="blocks.0.mlp.hook_post", seed=2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    # the first batch must not be one window's consecutive tokens: compare with the unshuffled stream
    store = _store(tiny_model, hook_name="blocks.0.mlp.hook_post", seed=1)
    first_forward = next(store._activations())
    assert not torch.equal(a[0], first_forward[:64])


def test_disk_cache_round_trip(tiny_model, tmp_path):
    first = list(_store(tiny_model, hook_name="blocks.0.mlp.hook_post", cache_dir=tmp_path))
    assert (tmp_path / "store.json").exists() and len(list(tmp_path.glob("batch_*.safetensors"))) == 6
    again = list(_store(tiny_model, hook_name="blocks.0.mlp.hook_post", cache_dir=tmp_path))
    assert all(torch.equal(x, y) for x, y in zip(first, again))


def test_throughput_is_reported(tiny_model):
    store = _store(tiny_model, hook_name="blocks.0.mlp.hook_post")
    list(store)
    assert store.tokens_seen >= 6 * 64 and store.tokens_per_second > 0


@pytest.mark.parametrize("kw, match", [
    (dict(hook_name="blocks.0.mlp.hook_postt"), "unknown hook name"),
    (dict(hook_name="blocks.0.mlp.hook_post", batch_size=0), "batch_size must be a positive int"),
    (dict(hook_name="blocks.0.mlp.hook_post", max_batches=0), "max_batches must be positive"),
])
def test_bad_arguments(tiny_model, kw, match):
    with pytest.raises(ValueError, match=match):
        _store(tiny_model, **kw)
