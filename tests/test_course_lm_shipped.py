"""The shipped course model (issue 12): stage 1 trained from scratch on the stdlib plus pinned packages,
stage 2 warm-started from it (``course_lm train --init-from``). It loads offline, its recorded losses and
probe F1 reproduce from the weights, it improves on the first course model and on stage 1 by the
measured margins, it beats n-gram baselines by a wide margin, and its completions look like Python."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils import course_lm as lm

CONCEPTS = ["in_string", "in_docstring", "in_comment"]
LAST = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def shipped():
    model, tok = lm.load_course_lm()
    log = json.loads((lm.MODEL_DIR / "training_log.json").read_text())
    return model, tok, log


@pytest.fixture(scope="module")
def stage1_log():
    return json.loads((lm.STAGE1_DIR / "training_log.json").read_text())


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


def test_full_validation_loss_and_gap_reproduce_and_where_they_stand_against_the_targets(shipped, stage1_log):
    """Measured (one run: seed 1, 5,000 steps warm-started from stage 1, 1 thread): validation 3.430
    nats/token (stage 1 3.777, first model 4.014) and 1.0645 nats/char (1.172, 1.197); training text
    2.837, so the gap is 0.593 (0.612, 1.252); package validation files 3.186 (3.474). Issue 12's
    targets: 0.5 nats/token below the first model (3.514) is met; the same per character (1.048, the
    fair comparison across tokenizers) is not, by 0.017; a gap below the first model's is met.
    Tolerance 0.01 nats for recomputing the losses."""
    model, tok, log = shipped
    val = lm.encode_split(tok, "validation")
    assert abs(lm.evaluate(model, val, model.cfg.n_ctx) - log["val_loss_full"]) < 0.01
    train = lm.encode_split(tok, "train")  # the stdlib training files, first 1,024 windows
    assert abs(lm.evaluate(model, train, model.cfg.n_ctx, max_windows=1024) - log["train_loss_sample"]) < 0.01
    first = stage1_log["previous"]
    assert first["val_loss_full"] == 4.0143 and first["val_tokens"] == 143_168  # the first model's numbers
    assert log["val_loss_full"] <= first["val_loss_full"] - 0.5
    per_char_target = first["val_nats_per_char"] * (first["val_loss_full"] - 0.5) / first["val_loss_full"]
    assert per_char_target < log["val_nats_per_char"] < per_char_target + 0.03  # close; not reached
    assert log["val_nats_per_char"] < stage1_log["val_nats_per_char"] - 0.09
    gap = log["val_loss_full"] - log["train_loss_sample"]
    assert gap < first["val_loss_full"] - first["train_loss_sample"] - 0.5
    assert log["val_packages_loss_full"] < stage1_log["val_packages_loss_full"] - 0.2
    assert log["passes"] > 1.5 and log["threads"] == 1 and log["corpus"] == "python"
    assert log["train_tokens"] > 12_000_000


def test_probe_reports_cover_every_concept_at_every_hook_for_both_stages(shipped, stage1_log):
    """The log holds the report for both stages under both protocols: every concept at every hook with
    non-overlapping windows, the string and comment concepts with min_context=64; stage 1's first
    report is the one its own log records (same protocol), and so are its re-measured losses."""
    from course_utils import probes
    from course_utils.labels import concepts

    _, _, log = shipped
    for rep in (log["probe"], log["previous"]["probe"], stage1_log["previous"]["probe"]):
        assert set(rep["f1"]) == set(probes.PROBE_HOOKS)
        assert all(set(f1) == set(concepts()) for f1 in rep["f1"].values())
        assert (rep["n_train"], rep["n_val"]) == (30_000, 15_000)
    assert log["previous"]["probe"]["f1"] == stage1_log["probe"]["f1"]
    for rep in (log["probe_min_context64"], log["previous"]["probe_min_context64"]):
        assert rep["min_context"] == 64 and set(rep["f1"]) == set(probes.PROBE_HOOKS)
        assert all(set(f1) == set(CONCEPTS) for f1 in rep["f1"].values())
    assert log["previous"]["val_loss_full"] == stage1_log["val_loss_full"]


def test_recorded_probe_f1_reproduces(shipped):
    """The training log's probe report at the last residual stream, recomputed from the weights
    (logistic regression is deterministic; tolerance 0.02 for float differences across machines)."""
    from course_utils import probes

    model, tok, log = shipped
    got = probes.probe_report(model, tok, *probes.probe_texts(), hooks=(LAST,), concepts=CONCEPTS)
    assert got["n_train"] == log["probe"]["n_train"] == 30_000 and got["n_val"] == 15_000
    for c in CONCEPTS:
        assert abs(got["f1"][LAST][c] - log["probe"]["f1"][LAST][c]) < 0.02


def test_probe_targets_are_not_met_and_the_comment_probe_confuses_docstrings(shipped):
    """Measured at the last residual stream: in_string 0.77, in_docstring 0.71, in_comment 0.64 (targets
    0.8, 0.8, 0.9; stage 1 0.77, 0.72, 0.63; the first model 0.76, 0.74, 0.67); 506 of the in_comment
    probe's 615 false positives are docstring tokens and "comment or docstring" reads at 0.91; a lexer
    that sees only the window reads in_comment at 0.94 (so the window allows the target). The confusion
    is re-measured here (tolerance 0.02 on F1, 5% on counts), the window ceiling exactly (it depends on
    the tokenizer only)."""
    from course_utils import probes

    model, tok, log = shipped
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


def test_training_figure_runs_the_steps_on_across_both_stages(shipped, stage1_log):
    _, _, log = shipped
    fig = lm.plot_training(log, earlier=stage1_log)
    names = [t.name for t in fig.data]
    assert names == ["stage 1 train (batch)", "stage 1 validation", "stage 2 train (batch)", "stage 2 validation"]
    assert fig.data[2].x[0] == stage1_log["step"][-1] + log["step"][0]
    assert fig.data[3].x[-1] == stage1_log["step"][-1] + log["eval_step"][-1]
    assert fig.layout.xaxis.title.text == "step" and "nats" in fig.layout.yaxis.title.text
    assert len(lm.plot_training(log).data) == 2
