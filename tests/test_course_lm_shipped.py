"""The shipped course model (issue 12: trained on the stdlib plus pinned packages): it loads offline,
its recorded losses and probe F1 reproduce from the weights, it improves on the first course model by
the measured margins, it beats n-gram baselines by a wide margin, and its completions look like Python."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils import course_lm as lm


@pytest.fixture(scope="module")
def shipped():
    model, tok = lm.load_course_lm()
    log = json.loads((lm.MODEL_DIR / "training_log.json").read_text())
    return model, tok, log


def test_shipped_config_is_the_documented_size(shipped):
    model, tok, _ = shipped
    c = model.cfg
    assert (c.n_layers, c.d_model, c.d_mlp, c.n_ctx, c.d_vocab) == (2, 128, 512, 128, 4096)
    assert tok.get_vocab_size() == 4096


def test_recorded_validation_loss_reproduces(shipped):
    """The training log's last evaluation (first 256 validation windows) is recomputed from the weights;
    tolerance 0.01 nats covers float summation order across machines and thread counts."""
    model, tok, log = shipped
    val = lm.encode_split(tok, "validation")
    assert len(val) == log["val_tokens"]
    got = lm.evaluate(model, val, model.cfg.n_ctx, max_windows=256)
    assert abs(got - log["val_loss"][-1]) < 0.01


def test_full_validation_loss_and_gap_reproduce_and_beat_the_first_model(shipped):
    """Measured (one run, seed 0): validation 3.777 nats/token (first model 4.014), 1.172 nats/character
    (1.197), training-text loss 3.164 (2.762), so the train/validation gap fell from 1.25 to 0.61. The
    issue's target, 3.51 nats/token, is NOT reached; these tests pin what was measured. Tolerance 0.01
    nats for recomputation; the comparisons hold with margins of >= 0.02 nats/char and 0.5 nats gap."""
    model, tok, log = shipped
    val = lm.encode_split(tok, "validation")
    assert abs(lm.evaluate(model, val, model.cfg.n_ctx) - log["val_loss_full"]) < 0.01
    train = lm.encode_split(tok, "train")  # the stdlib training files, first 1,024 windows
    assert abs(lm.evaluate(model, train, model.cfg.n_ctx, max_windows=1024) - log["train_loss_sample"]) < 0.01
    old = log["previous"]
    assert old["val_loss_full"] == 4.0143 and old["val_tokens"] == 143_168  # the first model's numbers
    assert log["val_nats_per_char"] < old["val_nats_per_char"] - 0.02
    assert log["val_loss_full"] < old["val_loss_full"] - 0.2
    gap, old_gap = (m["val_loss_full"] - m["train_loss_sample"] for m in (log, old))
    assert gap < old_gap - 0.5
    assert log["passes"] >= 1.0 and log["corpus"] == "python" and log["train_tokens"] > 12_000_000


def test_recorded_probe_f1_reproduces(shipped):
    """The training log's probe report at the last residual stream, recomputed from the weights
    (logistic regression is deterministic; tolerance 0.02 for float differences across machines).
    Measured F1: in_string 0.77, in_docstring 0.72, in_comment 0.63 (first model 0.76, 0.74, 0.67):
    below the issue's targets (0.8, 0.8, 0.9)."""
    from course_utils import probes

    model, tok, log = shipped
    names = ["in_string", "in_docstring", "in_comment"]
    train_texts, val_texts = probes.probe_texts()
    got = probes.probe_report(model, tok, train_texts, val_texts, hooks=("blocks.1.hook_resid_post",),
                              concepts=names)
    assert got["n_train"] == log["probe"]["n_train"] == 30_000 and got["n_val"] == 15_000
    for c in names:
        assert abs(got["f1"]["blocks.1.hook_resid_post"][c] - log["probe"]["f1"]["blocks.1.hook_resid_post"][c]) < 0.02
    assert set(log["probe"]["f1"]) == set(probes.PROBE_HOOKS) == set(log["previous"]["probe"]["f1"])


def test_far_below_ngram_baselines(shipped):
    _, _, log = shipped
    assert log["val_loss_full"] < log["bigram_baseline"] - 0.75
    assert log["val_loss_full"] < log["unigram_baseline"] - 2.0
    assert log["bigram_baseline"] < log["unigram_baseline"]


@pytest.mark.parametrize("prompt, plausible", [
    ("def get_name(self", lambda s: ")" in s and ":" in s),
    ("    for i in range(", lambda s: ")" in s and ":" in s),
    ("from os import", lambda s: s[:1] == " " and (s[1:2].isalpha() or s[1:2] == "_")),
])
def test_greedy_completions_are_syntactically_plausible(shipped, prompt, plausible):
    model, tok, _ = shipped
    out = lm.complete(model, tok, prompt, max_new_tokens=12)
    assert plausible(out), f"{prompt!r} -> {out!r}"


def test_context_limit_and_unknown_hook(shipped):
    model, tok, _ = shipped
    with pytest.raises(ValueError, match="context is 128"):
        lm.encode(tok, "x = 1\n" * 200, model.cfg.n_ctx)
    with pytest.raises(ValueError, match="unknown hook name"):
        lm.unit_activations(model, tok, ["x = 1\n"], "blocks.0.mlp.hook_posst")


def test_model_is_deterministic(shipped):
    model, tok, _ = shipped
    ids = lm.encode(tok, "for i in range(10):\n    print(i)\n")
    assert torch.equal(model(ids), model(ids))


def test_layer0_neurons_match_no_labelled_concept_cleanly(shipped):
    """The appendix's claim: against the ground-truth labels, no layer-0 MLP neuron reaches F1 0.8 for
    any concept and the median neuron's best F1 is low (measured: max 0.39, median 0.08 on 20k tokens;
    the first model: 0.41 and 0.09); tolerance: max below 0.8, median below 0.25."""
    import numpy as np

    from course_utils.corpus import load_corpus
    from course_utils.labels import concepts, score_units

    model, tok, _ = shipped
    names = [c for c in concepts() if c not in ("token:string", "token:comment", "indent>=1")]
    acts, data = lm.unit_activations(model, tok, [f.text for f in load_corpus("validation")],
                                     "blocks.0.mlp.hook_post", max_tokens=20_000, concepts=names)
    best = score_units(acts.numpy(), data["labels"])["f1"].max(1)
    assert acts.shape == (20_082, 512)
    assert best.max() < 0.8 and np.median(best) < 0.25
