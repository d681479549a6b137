"""Reading and testing an attribution graph: what each feature responds to (top contexts and concept
scores on validation text), supernodes (features grouped by their best concept), and the check of a
graph's prediction by intervening on the real model.

Predictions for removing a set of features ``S`` (their output ``a_s W_dec[s]`` subtracted from the MLP
output at their position):

* *direct*: ``−Σ_{s∈S} A[logit, s]``, the edges straight to the logit;
* *linear total*: ``−Σ_{s∈S} T[logit, s]`` with ``T = (I − A)⁻¹ − I`` (signed), adding the paths through
  later features, as if every feature responded linearly to its pre-activation (an active TopK or
  JumpReLU feature does, until it switches off) and attention patterns stayed fixed.

The measurement ablates the features in the real model with hooks (attention and LayerNorm live,
later features recomputed by the real MLPs) and reads the change of the mean-centred logit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from course_utils.circuits.graph import AttributionGraph, compute_influence
from course_utils.circuits.replacement import centred_logits


@dataclass
class FeatureNotes:
    """Per transcoder layer: ``best[layer][f]`` the feature's best concept ("" if none), ``score`` its
    concept score, ``contexts[layer][f]`` up to three top-activating contexts (text ending at the token
    where the feature fires most)."""

    best: list[list[str]]
    score: list[np.ndarray]
    contexts: list[list[list[str]]]
    n_tokens: int


@torch.no_grad()
def feature_notes(model: Any, tokenizer: Any, transcoders: Sequence[Any], n_tokens: int = 8192,
                  n_contexts: int = 3, width: int = 6) -> FeatureNotes:
    """Concept scores (:func:`course_utils.saes.interp.monosemanticity`) and top contexts of every
    feature of every transcoder, on ``n_tokens`` tokens of validation text."""
    from course_utils.saes.interp import concept_vocabulary, labelled_activations, monosemanticity

    best, score, contexts = [], [], []
    for tc in transcoders:
        data = labelled_activations(model, tokenizer, tc.cfg.hook_name, n_tokens)
        acts = tc.encode(data.acts)  # [n, d_sae]
        units = monosemanticity(acts, concept_vocabulary(data.tokens, data.prev, data.labels))
        best.append(list(units.best))
        score.append(units.score)
        top = acts.topk(n_contexts, dim=0)  # [n_contexts, d_sae]
        ctx = []
        for f in range(acts.shape[1]):
            rows = [int(i) for v, i in zip(top.values[:, f], top.indices[:, f]) if v > 0]
            ctx.append(["".join(data.tokens[max(0, i - width):i]) + "[" + data.tokens[i] + "]" for i in rows])
        contexts.append(ctx)
    return FeatureNotes(best, score, contexts, len(data.tokens))


def supernodes(graph: AttributionGraph, nodes: Sequence[int], notes: FeatureNotes,
               min_score: float = 0.2) -> dict[str, list[int]]:
    """Feature nodes grouped by their best concept (score ≥ ``min_score``; others under "unlabelled")."""
    groups: dict[str, list[int]] = {}
    for i in nodes:
        if graph.kind(i) != "feature":
            continue
        layer, _, f = graph.features[i].tolist()
        name = notes.best[layer][f] if notes.score[layer][f] >= min_score else ""
        groups.setdefault(name or "unlabelled", []).append(i)
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))


def predicted_logit_change(graph: AttributionGraph, nodes: Sequence[int], logit: int = 0) -> tuple[float, float]:
    """(direct, linear total) change of logit node ``logit``'s centred logit when ``nodes`` (feature
    nodes) are removed; see the module docstring."""
    for i in nodes:
        if graph.kind(i) != "feature":
            raise ValueError(f"node {i} is a {graph.kind(i)} node; give feature nodes")
    row = graph.n_nodes - graph.n_logits + logit
    w = torch.zeros(graph.n_nodes, dtype=graph.adjacency.dtype)
    w[row] = 1.0
    total = compute_influence(graph.adjacency, w)  # the signed series: w((I − A)⁻¹ − I)
    idx = torch.as_tensor(list(nodes), dtype=torch.long)
    return float(-graph.adjacency[row, idx].sum()), float(-total[idx].sum())


@torch.no_grad()
def measured_logit_change(model: Any, graph: AttributionGraph, nodes: Sequence[int], logit: int = 0,
                          extra_hooks: Sequence[tuple[str, Any]] = ()) -> float:
    """The change of the centred logit of logit node ``logit`` when ``nodes`` (features) are ablated in
    the real model: hooks subtract each feature's output at its position from its layer's MLP output.
    ``extra_hooks`` run in both the clean and the ablated pass (e.g. to freeze a LayerNorm scale)."""
    rep = graph.replacement
    if rep is None:
        raise ValueError("the graph has no replacement model attached (build it with build_graph)")
    by_layer: dict[int, list[tuple[int, torch.Tensor]]] = {}
    for i in nodes:
        if graph.kind(i) != "feature":
            raise ValueError(f"node {i} is a {graph.kind(i)} node; give feature nodes")
        layer, p, f = graph.features[i].tolist()
        by_layer.setdefault(layer, []).append((p, rep.acts[layer][p, f] * rep.transcoders[layer].W_dec[f]))

    def hook_for(layer: int) -> Any:
        def hook(t: torch.Tensor, hook: Any = None) -> torch.Tensor:
            out = t.clone()
            for p, v in by_layer[layer]:
                out[:, p] -= v
            return out
        return hook

    hooks = [(rep.transcoders[layer].cfg.hook_name_out, hook_for(layer)) for layer in by_layer]
    hooks += list(extra_hooks)
    tok = int(graph.logit_tokens[logit])
    clean = centred_logits(model.run_with_hooks(rep.tokens[None], fwd_hooks=list(extra_hooks))[0, -1])[tok]
    ablated = centred_logits(model.run_with_hooks(rep.tokens[None], fwd_hooks=hooks)[0, -1])[tok]
    return float(ablated - clean)


def error_share(graph: AttributionGraph) -> float:
    """The share of all influence on the logits (of every non-logit node) that error nodes carry: the
    part of the graph's account that the transcoders leave unexplained."""
    from course_utils.circuits.graph import node_influence

    infl = node_influence(graph)
    e0, e1 = graph.n_features, graph.n_features + graph.n_errors
    return float(infl[e0:e1].sum() / infl[: graph.n_nodes - graph.n_logits].sum().clamp_min(1e-30))
