"""The chapter's case study on the shipped skip TopK transcoders: the replacement model is exact on
the page's prompt, the graph is mostly explained (replacement score), and ablating the graph's most
influential feature in the real model moves the 'self' logit the way the graph predicts (same sign,
at least a third of the direct prediction and at most 1.5 times it)."""

from __future__ import annotations

import torch

from course_utils.circuits.casestudy import measured_logit_change, predicted_logit_change
from course_utils.circuits.course import COURSE_TRANSCODER_DIR
from course_utils.circuits.graph import build_graph, graph_scores, prune_graph
from course_utils.circuits.replacement import course_transcoders, frozen_forward
from tests.circuits.graph_helpers import course_model

PAGE_PROMPT = "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push("



def setup_module() -> None:
    """The course ships its transcoders: a missing set is a failure, not a skip."""
    assert (COURSE_TRANSCODER_DIR / "manifest.json").exists(), (
        "course transcoders missing: python -m course_utils.circuits train-course-transcoders")


def test_case_study_on_shipped_transcoders() -> None:
    model, tok = course_model()
    tcs = course_transcoders("skip-topk-1024", model)
    g = build_graph(model, tcs, PAGE_PROMPT, tok)
    with torch.no_grad():
        _, logits = frozen_forward(model, g.replacement)
    assert (logits[0] - g.replacement.logits).abs().max() < 1e-4
    assert tok.decode([int(g.logit_tokens[0])]) == "self" and float(g.logit_probs[0]) > 0.9
    rep, comp = graph_scores(g)
    assert rep > 0.8 and comp > 0.9
    pr = prune_graph(g)
    feats = [i for i in pr.node_mask.nonzero()[:, 0].tolist() if g.kind(i) == "feature"]
    top = max(feats, key=lambda i: float(pr.influence[i]))
    direct, _ = predicted_logit_change(g, [top])
    measured = measured_logit_change(model, g, [top])
    assert direct < 0 and 0.33 <= measured / direct <= 1.5
