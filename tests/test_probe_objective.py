"""The auxiliary-probe-objective experiment of appendix A (issue 12): the windows it trains on, the
fine-tuning step, a shortened re-run of its command, and the shipped report's numbers as the page
states them."""

from __future__ import annotations

import json

import pytest
import torch

from course_utils import probe_objective as po


@pytest.fixture(scope="module")
def windows(lm):
    from course_utils.corpus import load_corpus

    _, tok = lm
    texts = [f.text for f in load_corpus("train") if len(f.text) > 20_000][:3]
    return texts, po.labelled_windows(tok, texts, 128, 1024)


def test_labelled_windows_align_with_the_labeller(lm, windows):
    from course_utils.labels import token_labels

    _, tok = lm
    texts, (ids, labels) = windows
    assert ids.shape == (8, 128) and labels.shape == (8, 128, 3) and labels.dtype == torch.float32
    first = token_labels(texts[0], tok, list(po.CONCEPTS))
    want = tok.encode(texts[0]).ids[:128]
    assert ids[0].tolist() == want
    for k, c in enumerate(po.CONCEPTS):
        assert labels[0, :, k].tolist() == first.values[c][:128].astype(float).tolist()
    with pytest.raises(ValueError, match="at least n_ctx"):
        po.labelled_windows(tok, texts, 128, 64)
    with pytest.raises(ValueError, match="no text"):
        po.labelled_windows(tok, ["x = 1\n"], 128, 1024)


def test_finetune_is_deterministic_and_uses_the_weight(windows):
    from course_utils.course_lm import load_course_lm

    _, (ids, labels) = windows
    runs = {}
    for name, w in (("a", 1.0), ("b", 1.0), ("zero", 0.0)):
        m, _ = load_course_lm()
        last = po.finetune(m, ids, labels, steps=2, weight=w, batch_size=4)
        runs[name] = (m.W_in.detach().clone(), last)
    assert torch.equal(runs["a"][0], runs["b"][0]) and runs["a"][1] == runs["b"][1]
    assert not torch.equal(runs["a"][0], runs["zero"][0])  # the auxiliary loss reaches the weights
    shipped, _ = load_course_lm()
    assert not torch.equal(runs["zero"][0], shipped.W_in)
    for bad in ({"steps": 0, "weight": 1.0}, {"steps": 1, "weight": -1.0}):
        with pytest.raises(ValueError, match="positive"):
            po.finetune(shipped, ids, labels, **bad)


@pytest.mark.slow
def test_shortened_command_writes_the_report(tmp_path):
    out = tmp_path / "r.json"
    args = ["--steps", "2", "--weights", "0", "1", "--max-tokens", "2048", "--n-train", "2000", "--deeper"]
    assert po.main([*args, "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["command"].endswith("--steps 2 --weights 0 1 --max-tokens 2048 --n-train 2000 --deeper")
    deeper = rep["deeper"]
    assert deeper["n_layers"] == 3 and deeper["hook"] == "blocks.2.hook_resid_post"
    assert set(deeper["probe_f1"]) == set(deeper["probe_f1_at_hook"]) == set(po.CONCEPTS)
    assert set(rep["runs"]) == {"0", "1"} and rep["finetune_tokens"] == 2048
    for r in (rep["shipped"], *rep["runs"].values()):
        assert set(r["probe_f1"]) == set(po.CONCEPTS) and 2.5 < r["val_loss"] < 4.5
    assert rep["smallest_passing_weight"] == po.smallest_passing(rep)


def test_deepen_adds_a_block_that_changes_nothing_until_trained(lm):
    model, tok = lm
    before = {k: v.clone() for k, v in model.state_dict().items()}
    deep, again, other = po.deepen(model), po.deepen(model), po.deepen(model, seed=1)
    assert deep.cfg.n_layers == model.cfg.n_layers + 1 == 3
    ids = torch.tensor([tok.encode("def f(x):\n    # one more\n    return x + 1\n").ids])
    with torch.no_grad():
        assert torch.equal(deep(ids), model(ids))  # exactly the same function at the start
    top = deep.blocks[2]
    for w in (top.attn.W_O, top.attn.b_O, top.mlp.W_out, top.mlp.b_out):
        assert not w.any()
    assert top.attn.W_Q.any() and top.mlp.W_in.any()  # the rest of the block is initialised
    assert all(torch.equal(a, b) for a, b in zip(deep.state_dict().values(), again.state_dict().values()))
    assert not torch.equal(deep.blocks[2].attn.W_Q, other.blocks[2].attn.W_Q)
    with torch.no_grad():
        deep.blocks[0].mlp.W_in.add_(1.0)  # the copy owns its weights: the model is untouched
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_smallest_passing_weight():
    """The smallest positive weight whose probes reach every target; the control never counts, and
    keys compare as numbers, not strings."""
    def rep(**f1: tuple[float, float]) -> dict:
        runs = {w: {"probe_f1": {"a": a, "b": b}} for w, (a, b) in f1.items()}
        return {"targets": {"a": 0.8, "b": 0.9}, "runs": {k.replace("_", "."): v for k, v in runs.items()}}

    assert po.smallest_passing(rep(**{"0": (0.95, 0.95), "1": (0.85, 0.95)})) == "1"
    assert po.smallest_passing(rep(**{"10": (0.9, 0.9), "2": (0.9, 0.95), "0_3": (0.7, 1)})) == "2"
    assert po.smallest_passing(rep(**{"0_1": (0.85, 0.89), "1": (0.79, 0.95)})) is None
    assert po.smallest_passing(rep(**{"0_1": (0.8, 0.9)})) == "0.1"  # the targets are inclusive


@pytest.mark.parametrize("bad", [(), (0.0, 0.0), (0.0, -1.0), (1.0, 1.0000001)])
def test_run_rejects_bad_weights(bad):
    with pytest.raises(ValueError, match="distinct and >= 0"):
        po.run(steps=2, weights=bad)


def test_the_shipped_report_as_the_page_states():
    """Recorded with the shipped model; the shipped model's row equals the training log's probe
    report at the same hook (same texts, tokens and protocol)."""
    from course_utils.course_lm import MODEL_DIR

    rep = json.loads(po.REPORT.read_text())
    log = json.loads((MODEL_DIR / "training_log.json").read_text())
    assert rep["shipped"]["probe_f1"] == {c: log["probe"]["f1"][po.HOOK][c] for c in po.CONCEPTS}
    assert rep["command"] == ("python -m course_utils.probe_objective --steps 600 --weights 0 0.03 0.1 "
                              "0.3 0.5 1 --max-tokens 400000 --n-train 30000 --deeper")
    assert rep["command"].split("--weights ")[1].startswith(" ".join(f"{w:g}" for w in po.WEIGHTS))


def test_the_auxiliary_objective_reaches_the_targets_as_stated():
    """Appendix A, measured (one run per weight): the probes climb with the weight; 0.5 is the
    smallest weight tried that passes every target (0.91, 0.89, 0.91), 0.3 still misses in_comment
    (0.86) and weight 1 gives 0.93, 0.92, 0.93; the next-token-only control stays within 0.02 of the
    shipped model (0.76, 0.71, 0.62 against 0.77, 0.71, 0.64); weights up to 0.1 cost no validation
    loss (within 0.002 nats of the control's 3.408), 0.5 costs 0.012 and 1 costs 0.026."""
    rep = json.loads(po.REPORT.read_text())
    runs, shipped = rep["runs"], rep["shipped"]
    assert list(runs) == [f"{w:g}" for w in po.WEIGHTS]
    assert rep["smallest_passing_weight"] == po.smallest_passing(rep) == "0.5"
    ctrl = runs["0"]
    for c, t in po.TARGETS.items():
        f1 = [r["probe_f1"][c] for r in runs.values()]
        assert f1 == sorted(f1), c  # more weight, better probe, for every concept
        assert runs["1"]["probe_f1"][c] >= t + 0.01 and runs["0.5"]["probe_f1"][c] >= t, c
        assert abs(ctrl["probe_f1"][c] - shipped["probe_f1"][c]) <= 0.02, c
        assert ctrl["probe_f1"][c] < t, c
    assert runs["0.3"]["probe_f1"]["in_comment"] < po.TARGETS["in_comment"]
    assert runs["0.1"]["probe_f1"]["in_string"] >= po.TARGETS["in_string"]
    assert all(abs(runs[w]["val_loss"] - ctrl["val_loss"]) < 0.002 for w in ("0.03", "0.1"))
    assert 0.005 < runs["0.5"]["val_loss"] - ctrl["val_loss"] < 0.02
    assert 0 < runs["1"]["val_loss"] - ctrl["val_loss"] < 0.05


def test_one_more_block_on_next_tokens_alone_changes_nothing_as_stated():
    """Appendix A: the shipped model plus a third block, fine-tuned like the control, reads 0.76,
    0.71, 0.62 at its last residual stream (within 0.01 of the control at every concept, 0.04 to
    0.28 short of the targets), at a validation loss of 3.416."""
    rep = json.loads(po.REPORT.read_text())
    deep, ctrl = rep["deeper"], rep["runs"]["0"]
    assert deep["n_layers"] == 3 and deep["hook"] == "blocks.2.hook_resid_post"
    for c, t in po.TARGETS.items():
        assert abs(deep["probe_f1"][c] - ctrl["probe_f1"][c]) <= 0.01, c
        assert deep["probe_f1"][c] < t - 0.03, c
    assert deep["val_loss"] == pytest.approx(3.416, abs=0.001)
