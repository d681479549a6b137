"""Linear probes (course_utils.probes): a decodable concept scores near 1, an undecodable one low,
rare concepts report None, and the activations line up with the labels token by token."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import probes


def _data(seed: int, n: int = 2000, d: int = 16):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X[:, 3] + 0.5 * X[:, 7] > 0.2


def test_linearly_decodable_concept_scores_high_and_noise_low():
    Xtr, ytr = _data(0)
    Xva, yva = _data(1)
    assert probes.probe_f1(Xtr, ytr, Xva, yva) > 0.95
    rng = np.random.default_rng(2)
    noise = probes.probe_f1(Xtr, rng.random(len(ytr)) < 0.3, Xva, rng.random(len(yva)) < 0.3)
    assert noise is not None and noise < 0.3


def test_probe_is_scored_on_the_held_out_set_not_the_training_set():
    """Labels that hold only in the training set (memorisable noise in 200 dims) do not transfer."""
    rng = np.random.default_rng(3)
    Xtr, Xva = rng.normal(size=(300, 200)), rng.normal(size=(300, 200))
    ytr = rng.random(300) < 0.5
    f1 = probes.probe_f1(Xtr, ytr, Xva, rng.random(300) < 0.5)
    assert f1 is not None and f1 < 0.65


def test_too_few_positives_or_negatives_gives_none():
    Xtr, ytr = _data(0)
    Xva, yva = _data(1)
    rare = np.zeros(len(ytr), bool)
    rare[: probes.MIN_POSITIVES - 1] = True
    assert probes.probe_f1(Xtr, rare, Xva, yva) is None
    assert probes.probe_f1(Xtr, ytr, Xva, ~rare) is None
    rare[probes.MIN_POSITIVES - 1] = True
    assert probes.probe_f1(Xtr, rare, Xva, yva) is not None


@pytest.fixture(scope="module")
def shipped():
    from course_utils.course_lm import load_course_lm

    return load_course_lm()


def test_collect_aligns_activations_and_labels(shipped):
    model, tok = shipped
    text = "def f(x):\n    # add one\n    return x + 1  # done\n" * 30
    acts, labels = probes.collect(model, tok, [text], ("blocks.0.hook_resid_pre", "blocks.0.mlp.hook_post"),
                                  max_tokens=150, concepts=["in_comment"])
    assert acts["blocks.0.hook_resid_pre"].shape == (150, model.cfg.d_model)
    assert acts["blocks.0.mlp.hook_post"].shape == (150, model.cfg.d_mlp)
    n = len(tok.encode(text).ids)
    assert n > 150  # the text spans two context windows and is cut at max_tokens
    toks = tok.encode(text).tokens[:150]
    comment = [t for t, c in zip(toks, labels["in_comment"]) if c]
    assert comment and all(t.strip("Ġ") in ("#", "add", "one", "done") for t in comment)
    capped, lab2 = probes.collect(model, tok, [text, text], ("blocks.0.hook_resid_pre",), max_tokens=150,
                                  concepts=["in_comment"], per_text=40)
    assert capped["blocks.0.hook_resid_pre"].shape == (80, model.cfg.d_model)  # 40 from each text
    assert np.allclose(capped["blocks.0.hook_resid_pre"][40:], acts["blocks.0.hook_resid_pre"][:40], atol=1e-5)
    assert lab2["in_comment"][:40].tolist() == labels["in_comment"][:40].tolist()
    with pytest.raises(ValueError, match="unknown hook names"):
        probes.collect(model, tok, [text], ("blocks.0.hook_resid_prex",))
    with pytest.raises(ValueError, match="none of the texts could be labelled"):
        probes.collect(model, tok, ["def (:\n"], ("blocks.0.hook_resid_pre",))


def test_min_context_slides_windows_so_every_token_sees_enough_context(shipped):
    """min_context=64: each of the first per_text tokens is taken once, with the activation of a window
    in which it sees >= 64 tokens before it (or the file start), not of the non-overlapping cut."""
    import torch

    model, tok = shipped
    text = "def f(x):\n    # add one\n    return x + 1  # done\n" * 40
    ids = torch.tensor(tok.encode(text).ids)
    assert len(ids) > 400
    hook = "blocks.1.hook_resid_post"
    acts, labels = probes.collect(model, tok, [text], (hook,), max_tokens=10_000, concepts=["in_comment"],
                                  per_text=400, min_context=64)
    full, full_labels = probes.collect(model, tok, [text], (hook,), max_tokens=10_000, concepts=["in_comment"],
                             per_text=400)
    assert acts[hook].shape == (400, model.cfg.d_model)
    assert labels["in_comment"].tolist() == full_labels["in_comment"].tolist()
    assert np.allclose(acts[hook][:128], full[hook][:128], atol=1e-5)  # the first window: file start
    for j in (130, 300, 399):
        s = 64 * ((j - 128) // 64 + 1)  # the window whose last 64 positions hold token j
        _c, cache = model.run_with_cache(ids[s:s + 128][None], names_filter=[hook])
        assert np.allclose(acts[hook][j], cache[hook][0, j - s].numpy(), atol=1e-5)
        assert not np.allclose(acts[hook][j], full[hook][j], atol=1e-3)  # the non-overlapping cut differs
    for bad in (-1, model.cfg.n_ctx):
        with pytest.raises(ValueError, match="min_context must be in"):
            probes.collect(model, tok, [text], (hook,), min_context=bad)


def _mask(text, v):
    return "".join(ch if m else "_" for ch, m in zip(text, v))


def test_window_lexer_reads_strings_docstrings_and_comments_causally():
    text = 'x = "a # b"  # c\ndef f():\n    """Doc\n    more."""\n    return \'q\\\'s\'  # e\ny = """s"""\n'
    lex = probes.window_lexer(text)
    assert _mask(text, lex["in_comment"]).replace("_", "") == "# c# e"  # the '#' inside "a # b" is not one
    assert _mask(text, lex["in_string"]).replace("_", "") == '"a # b""""Doc\n    more."""\'q\\\'s\'"""s"""'
    assert _mask(text, lex["in_docstring"]).replace("_", "") == '"""Doc\n    more."""'  # not y = """s"""
    broken = "s = 'open\nx = 1  # c\n"  # an unterminated string ends at the line's end
    assert _mask(broken, probes.window_lexer(broken)["in_comment"]).replace("_", "") == "# c"


def test_window_ceiling_counts_tokens_whose_docstring_opened_before_their_window(shipped):
    """A window that starts inside a docstring cannot see it open: those tokens are counted, and the
    lexer reading that window inside out scores below one; a file short enough for one window scores 1."""
    _, tok = shipped
    text = 'def f():\n    """' + "word " * 300 + '"""\n    return 1  # one\n'
    short = probes.window_ceiling(tok, ['def f():\n    """Doc."""\n    return 1  # one\n'])
    assert short["in_docstring"]["lexer_f1"] == short["in_comment"]["lexer_f1"] == 1.0
    assert short["in_docstring"]["opened_before_window"] == 0.0
    long = probes.window_ceiling(tok, [text])
    assert long["n_tokens"] == len(tok.encode(text).ids)
    assert long["in_docstring"]["opened_before_window"] > 0.5
    assert long["in_docstring"]["lexer_f1"] < 0.9
    with pytest.raises(ValueError, match="min_context must be in"):
        probes.window_ceiling(tok, [text], min_context=128)


def test_comment_confusion_splits_the_false_positives_and_matches_the_report(shipped):
    """The in_comment probe's errors, by where they fall; its F1 is the report's F1 on the same tokens."""
    model, tok = shipped
    hook = "blocks.1.hook_resid_post"
    got = probes.comment_confusion(model, tok, hook, n_train=3000, n_val=1500)
    assert got["false_positives"] == got["fp_in_docstring"] + got["fp_in_other_string"] + got["fp_in_code"]
    train_texts, val_texts = probes.probe_texts()
    rep = probes.probe_report(model, tok, train_texts, val_texts, hooks=(hook,), concepts=["in_comment"],
                              n_train=3000, n_val=1500)
    assert got["in_comment_f1"] == rep["f1"][hook]["in_comment"]
    assert 0 < got["comment_or_docstring_f1"] <= 1
