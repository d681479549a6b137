"""The candidate course model (issue 12, second stage): the shipped model's weights and tokenizer trained
further on the larger corpus (``course_lm train --init-from``), shipped beside the course model for the
next session to swap in. It loads and checks its files like the shipped model, keeps the shipped
tokenizer (so token ids, and data built on them, stay valid), and its recorded numbers re-measure."""

from __future__ import annotations

import json
import shutil

import pytest

from course_utils import course_lm as lm

CANDIDATE = lm.CANDIDATE_DIR
CONCEPTS = ["in_string", "in_docstring", "in_comment"]
LAST = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def candidate():
    model, tok = lm.load_course_lm(path=CANDIDATE)
    log = json.loads((CANDIDATE / "training_log.json").read_text())
    meta = json.loads((CANDIDATE / "config.json").read_text())
    return model, tok, log, meta


def test_it_loads_with_the_shipped_architecture_and_tokenizer(candidate):
    model, tok, log, meta = candidate
    shipped = json.loads((lm.MODEL_DIR / "config.json").read_text())
    assert meta["model"] == shipped["model"]  # 2 layers, d_model 128, d_mlp 512, n_ctx 128, vocab 4096
    assert meta["training"]["init_sha256"] == shipped["sha256"]["model.safetensors"]  # warm-started from it
    _, shipped_tok = lm.load_course_lm()
    assert tok.get_vocab() == shipped_tok.get_vocab()
    text = "def f(x):\n    return x  # one\n"
    assert tok.encode(text).ids == shipped_tok.encode(text).ids


def test_its_checksums_verify_and_an_altered_file_is_refused(candidate, tmp_path):
    _, _, _, meta = candidate
    for name, digest in meta["sha256"].items():
        assert lm._sha256(CANDIDATE / name) == digest
    bad = tmp_path / "bad"
    shutil.copytree(CANDIDATE, bad)
    blob = bytearray((bad / "model.safetensors").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (bad / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(lm.CourseLMError, match="does not match its checksum"):
        lm.load_course_lm(path=bad)


def test_recorded_validation_loss_reproduces(candidate):
    """The log's last evaluation (the first 256 stdlib validation windows) is recomputed from the weights;
    tolerance 0.01 nats (float summation order across machines and thread counts)."""
    model, tok, log, _ = candidate
    val = lm.encode_split(tok, "validation")
    assert len(val) == log["val_tokens"]
    assert abs(lm.evaluate(model, val, model.cfg.n_ctx, max_windows=256) - log["val_loss"][-1]) < 0.01


def test_probe_reports_cover_every_concept_at_every_hook_for_both_models(candidate):
    """The log holds the report for the candidate and the shipped model under both protocols: every
    concept at every hook with non-overlapping windows, the string and comment concepts with
    min_context=64; the shipped model's first report is the one its own log records (same protocol)."""
    from course_utils import probes
    from course_utils.labels import concepts

    _, _, log, _ = candidate
    shipped = json.loads((lm.MODEL_DIR / "training_log.json").read_text())
    for rep in (log["probe"], log["previous"]["probe"]):
        assert set(rep["f1"]) == set(probes.PROBE_HOOKS)
        assert all(set(f1) == set(concepts()) for f1 in rep["f1"].values())
        assert (rep["n_train"], rep["n_val"]) == (30_000, 15_000)
    assert log["previous"]["probe"]["f1"] == shipped["probe"]["f1"]
    for rep in (log["probe_min_context64"], log["previous"]["probe_min_context64"]):
        assert rep["min_context"] == 64 and set(rep["f1"]) == set(probes.PROBE_HOOKS)
        assert all(set(f1) == set(CONCEPTS) for f1 in rep["f1"].values())
    assert log["previous"]["val_loss_full"] == shipped["val_loss_full"]  # re-measured: the same


def test_recorded_probe_f1_reproduces(candidate):
    """The candidate's probe F1 at the last residual stream, recomputed from the weights (tolerance 0.02
    for float differences across machines)."""
    from course_utils import probes

    model, tok, log, _ = candidate
    got = probes.probe_report(model, tok, *probes.probe_texts(), hooks=(LAST,), concepts=CONCEPTS)
    for c in CONCEPTS:
        assert abs(got["f1"][LAST][c] - log["probe"]["f1"][LAST][c]) < 0.02


def test_full_validation_loss_reproduces_and_where_it_stands_against_the_targets(candidate):
    """Measured (one run: seed 1, 5,000 steps warm-started from the shipped model, 1 thread): validation
    3.430 nats/token (shipped 3.777, first model 4.014) and 1.0645 nats/char (1.172, 1.197); training
    text 2.837, so the gap is 0.593 (0.612, 1.252); package validation files 3.186 (3.474). Issue 12's
    targets: 0.5 nats/token below the first model (3.514) is met; the same per character (1.048, the
    fair comparison across tokenizers) is not, by 0.017; a gap below the first model's is met.
    Tolerance 0.01 nats for recomputing the full validation loss."""
    model, tok, log, _ = candidate
    val = lm.encode_split(tok, "validation")
    assert abs(lm.evaluate(model, val, model.cfg.n_ctx) - log["val_loss_full"]) < 0.01
    shipped = json.loads((lm.MODEL_DIR / "training_log.json").read_text())
    first = shipped["previous"]
    assert log["val_loss_full"] <= first["val_loss_full"] - 0.5
    per_char_target = first["val_nats_per_char"] * (first["val_loss_full"] - 0.5) / first["val_loss_full"]
    assert per_char_target < log["val_nats_per_char"] < per_char_target + 0.03  # close; not reached
    assert log["val_nats_per_char"] < shipped["val_nats_per_char"] - 0.09
    gap = log["val_loss_full"] - log["train_loss_sample"]
    assert gap < first["val_loss_full"] - first["train_loss_sample"] - 0.5
    assert log["val_packages_loss_full"] < shipped["val_packages_loss_full"] - 0.2
    assert log["passes"] > 1.5 and log["threads"] == 1 and log["corpus"] == "python"


def test_probe_targets_are_not_met_and_the_comment_probe_confuses_docstrings(candidate):
    """Measured at the last residual stream: in_string 0.77, in_docstring 0.71, in_comment 0.64 (targets
    0.8, 0.8, 0.9; the shipped model 0.77, 0.72, 0.63); 506 of the in_comment probe's 615 false positives
    are docstring tokens and "comment or docstring" reads at 0.91; a lexer that sees only the window
    reads in_comment at 0.94 (so the window allows the target). The confusion is re-measured here
    (tolerance 0.02 on F1, 5% on counts), the window ceiling exactly (it depends on the tokenizer only)."""
    from course_utils import probes

    model, tok, log, _ = candidate
    f1 = log["probe"]["f1"][LAST]
    assert f1["in_comment"] < 0.9 and f1["in_string"] < 0.8 and f1["in_docstring"] < 0.8
    conf, rec = probes.comment_confusion(model, tok, LAST), log["comment_confusion"]
    for k in ("in_comment_f1", "comment_or_docstring_f1"):
        assert abs(conf[k] - rec[k]) < 0.02
    for k in ("false_positives", "fp_in_docstring"):
        assert abs(conf[k] - rec[k]) <= 0.05 * rec[k]
    assert rec["fp_in_docstring"] > 0.75 * rec["false_positives"]
    assert rec["comment_or_docstring_f1"] > 0.9 > rec["in_comment_f1"]
    ceiling = probes.window_ceiling(tok, probes.probe_texts()[1], min_context=64)
    assert ceiling == log["window_ceiling_min_context64"]
    assert ceiling["in_comment"]["lexer_f1"] > 0.9 and ceiling["in_comment"]["opened_before_window"] == 0.0
