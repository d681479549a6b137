"""Stage 1 of the shipped course model (issue 12), kept in ``data/course_lm_stage1`` so that stage 2 (the
shipped model, ``course_lm train --init-from``) reproduces from it. It loads and checks its files like the
shipped model, has the shipped architecture and tokenizer (so token ids, and data built on them, did not
change when stage 2 replaced it), is the exact initialisation stage 2 records, and its recorded numbers
re-measure."""

from __future__ import annotations

import json
import shutil

import pytest

from course_utils import course_lm as lm

STAGE1 = lm.STAGE1_DIR


@pytest.fixture(scope="module")
def stage1():
    model, tok = lm.load_course_lm(path=STAGE1)
    log = json.loads((STAGE1 / "training_log.json").read_text())
    meta = json.loads((STAGE1 / "config.json").read_text())
    return model, tok, log, meta


def test_it_is_the_recorded_initialisation_of_the_shipped_model(stage1):
    model, tok, log, meta = stage1
    shipped = json.loads((lm.MODEL_DIR / "config.json").read_text())
    assert meta["model"] == shipped["model"]  # 2 layers, d_model 128, d_mlp 512, n_ctx 128, vocab 4096
    assert shipped["training"]["init_sha256"] == meta["sha256"]["model.safetensors"]
    shipped_log = json.loads((lm.MODEL_DIR / "training_log.json").read_text())
    assert shipped_log["init_from"]["config"] == meta
    assert "--init-from course_utils/data/course_lm_stage1" in shipped_log["command_current_paths"]
    _, shipped_tok = lm.load_course_lm()
    assert tok.get_vocab() == shipped_tok.get_vocab()
    text = "def f(x):\n    return x  # one\n"
    assert tok.encode(text).ids == shipped_tok.encode(text).ids


def test_its_checksums_verify_and_an_altered_file_is_refused(stage1, tmp_path):
    _, _, _, meta = stage1
    for name, digest in meta["sha256"].items():
        assert lm._sha256(STAGE1 / name) == digest
    bad = tmp_path / "bad"
    shutil.copytree(STAGE1, bad)
    blob = bytearray((bad / "model.safetensors").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (bad / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(lm.CourseLMError, match="does not match its checksum"):
        lm.load_course_lm(path=bad)


def test_recorded_validation_loss_reproduces(stage1):
    """The log's last evaluation (the first 256 stdlib validation windows) is recomputed from the weights;
    tolerance 0.01 nats (float summation order across machines and thread counts). Measured: 3.78."""
    model, tok, log, _ = stage1
    val = lm.encode_split(tok, "validation")
    assert len(val) == log["val_tokens"]
    assert abs(lm.evaluate(model, val, model.cfg.n_ctx, max_windows=256) - log["val_loss"][-1]) < 0.01
    assert abs(log["val_loss_full"] - 3.777) < 0.001
