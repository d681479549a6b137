"""The GPU switch of ``train-course-saes``: the full-size configuration (12M tokens, batches of 4,096,
the model forward on the device) chosen by ``course_utils.device``'s switch or by ``--scale full`` /
``--device cuda``, smoke-tested with a couple of steps on each available device."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils.saes.course import (
    RESID1,
    RUN_SIZES,
    collect_activations,
    corpus_windows,
    load_course_sae,
    main,
    run_size,
    training_log,
)

NAME = "resid1-topk-512"
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here; the same test runs the GPU path where one is"))]


def test_full_size_is_the_documented_one():
    """10-20M tokens seen, from activations of at most the training split (12,650,736 tokens)."""
    from course_utils.course_lm import MODEL_DIR

    split = json.loads((MODEL_DIR / "training_log.json").read_text())["train_tokens"]
    full, cpu = RUN_SIZES["full"], RUN_SIZES["cpu"]
    assert 10e6 <= full.n_tokens * full.epochs <= 20e6 and full.n_tokens <= split
    assert full.batch_size == 4 * cpu.batch_size and full.eval_tokens > cpu.eval_tokens
    assert (cpu.n_tokens, cpu.epochs, cpu.batch_size, cpu.eval_tokens) == (200_000, 2.0, 1_024, 8_192)


@pytest.mark.parametrize("env, scale, device, want", [
    ("cpu", None, None, ("cpu", "cpu")),
    ("gpu", None, None, ("full", "cuda" if torch.cuda.is_available() else "cpu")),
    ("cpu", "full", "cpu", ("full", "cpu")),
    ("cpu", "cpu", None, ("cpu", "cpu")),
])
def test_run_size_follows_the_switch(monkeypatch, env, scale, device, want):
    monkeypatch.setenv("COURSE_SCALE", env)
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    got, size, dev = run_size(scale, device)
    assert (got, dev.type) == want and size == RUN_SIZES[got]


def test_run_size_bad_input(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "cpu")
    with pytest.raises(ValueError, match="scale must be one of"):
        run_size("huge")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            run_size(None, "cuda")
    else:
        assert run_size(None, "cuda")[0] == "full"  # an explicit GPU means the full size


def test_chunking_and_store_do_not_change_the_activations():
    """The full size's 256-sequence forwards give the CPU size's activations."""
    from course_utils.course_lm import load_course_lm

    torch.set_num_threads(1)
    model, tok = load_course_lm()
    w = corpus_windows(tok, "validation", 3 * 128, 128, seed=1)
    a = collect_activations(model, w, [RESID1], seqs_per_forward=1)[RESID1]
    b = collect_activations(model, w, [RESID1], seqs_per_forward=RUN_SIZES["full"].seqs_per_forward,
                            store="cpu")[RESID1]
    assert a.shape == (3 * 128, 128) and a.dtype == torch.float32
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_full_size_command_smoke(tmp_path, device):
    """The full-size configuration end to end with tiny token counts: two steps of 4,096 activations,
    the model forward and the training on ``device``, SAELens-format files the loader accepts."""
    from course_utils.course_lm import load_course_lm

    torch.set_num_threads(1)
    out = tmp_path / "full"
    assert main(["--scale", "full", "--device", device, "--tokens", "8192", "--epochs", "1",
                 "--eval-tokens", "512", "--only", NAME, "--out", str(out)]) == 0
    log = training_log(NAME, path=out)
    assert log["device"] == device and log["train"]["batch_size"] == 4_096 and log["train"]["steps"] == 2
    assert log["tokens_seen"] == 8_192 and log["eval"]["l0"] <= 16 + 1e-9
    manifest = json.loads((out / "manifest.json").read_text())
    assert "--batch-size 4096" in manifest["saes"][NAME]["command"]
    assert (f"--device {device}" in manifest["command"]) == (device != "cpu")
    model = load_course_lm()[0]
    sae = load_course_sae(NAME, model, path=out)
    assert sae.W_dec.device.type == "cpu" and sae.cfg.d_in == 128
    cfg = json.loads((out / NAME / "cfg.json").read_text())
    assert cfg["metadata"]["hook_name"] == RESID1 and cfg["dtype"] == "float16"
