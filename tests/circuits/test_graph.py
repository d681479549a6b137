"""Attribution graphs: every edge checked by intervention in the frozen replacement model, influence
against (I − A)⁻¹, pruning as circuit-tracer does it, the scores, and bad thresholds."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch

from course_utils.circuits.graph import (
    AttributionGraph,
    build_graph,
    compute_influence,
    find_threshold,
    graph_scores,
    normalize_matrix,
    prune_graph,
)
from course_utils.circuits.replacement import centred_logits, frozen_forward
from tests.circuits.graph_helpers import PROMPT, course_model, random_transcoders


@lru_cache(maxsize=4)
def graph_of(arch: str = "topk", skip: bool = True) -> AttributionGraph:
    model, tok = course_model()
    return build_graph(model, random_transcoders(arch, skip), PROMPT, tok, batch_size=64)


def targets(g: AttributionGraph, x_in: list[torch.Tensor], logits: torch.Tensor) -> torch.Tensor:
    """The values the graph's target rows explain: feature pre-activations (linear part) and the
    mean-centred logits of the logit nodes, in node order (features ..., logits)."""
    tcs = g.replacement.transcoders
    pre = torch.stack([x_in[int(layer)][0, p] @ tcs[int(layer)].W_enc[:, f] for layer, p, f in g.features])
    return torch.cat([pre, centred_logits(logits[0, -1])[g.logit_tokens]])


def removal_effects(g: AttributionGraph, sources: list[int]) -> torch.Tensor:
    """Remove each source (feature activation, error vector or embedding of one position) in the frozen
    model and return the change of every target: [len(sources), n_features + n_logits]."""
    model, _ = course_model()
    rep = g.replacement
    with torch.no_grad():
        base = targets(g, *frozen_forward(model, rep))
        out = []
        for s in sources:
            acts, errors, embed = [a.clone() for a in rep.acts], [e.clone() for e in rep.errors], rep.embed.clone()
            kind = g.kind(s)
            if kind == "feature":
                layer, p, f = g.features[s].tolist()
                acts[layer][p, f] = 0
            elif kind == "error":
                layer, p = divmod(s - g.n_features, g.n_tokens)
                errors[layer][p] = 0
            else:
                embed[s - g.n_features - g.n_errors] = 0
            out.append(targets(g, *frozen_forward(model, rep, acts=acts, errors=errors, embed=embed)) - base)
    return torch.stack(out)


def sample_sources(g: AttributionGraph) -> list[int]:
    """Sources of every kind: layer-0 and layer-1 features, errors of both layers, tokens."""
    f0 = (g.features[:, 0] == 0).nonzero()[:, 0]
    f1 = (g.features[:, 0] == 1).nonzero()[:, 0]
    picks = [int(f0[0]), int(f0[len(f0) // 2]), int(f0[-1]), int(f1[0]), int(f1[-1])]
    n = g.n_tokens
    picks += [g.error_index(0, 3), g.error_index(0, n - 1), g.error_index(1, n - 1)]
    return picks + [g.token_index(0), g.token_index(n // 2), g.token_index(n - 1)]


def target_rows(g: AttributionGraph) -> torch.Tensor:
    return torch.cat([torch.arange(g.n_features), torch.arange(g.n_nodes - g.n_logits, g.n_nodes)])


@pytest.mark.parametrize("arch,skip", [("topk", True), ("jumprelu", True), ("topk", False)])
def test_edges_match_interventions(arch: str, skip: bool) -> None:
    """Removing a source changes each target by minus the edge weight (the replacement is linear in
    its sources), for every kind of source and every target."""
    g = graph_of(arch, skip)
    sources = sample_sources(g)
    measured = removal_effects(g, sources)  # [n_sources, n_targets]
    predicted = -g.adjacency[target_rows(g)][:, sources].T
    scale = predicted.abs().max()
    assert scale > 1e-2
    torch.testing.assert_close(measured, predicted, atol=2e-4 * float(scale) + 1e-5, rtol=1e-3)


def test_a_wrong_skip_path_is_caught() -> None:
    """A plausible bug, the skip term treated as frozen (folded into the error node), keeps the forward
    exact but gives wrong edges: the intervention comparison sees it, forward equality cannot."""
    import copy

    model, tok = course_model()
    g = graph_of("topk", True)
    frozen_skip = copy.deepcopy(g.replacement.transcoders)
    for tc in frozen_skip:
        tc.register_parameter("W_skip", None)
    wrong = build_graph(model, frozen_skip, PROMPT, tok)
    with torch.no_grad():
        _, logits = frozen_forward(model, wrong.replacement)
    assert (logits[0] - g.replacement.logits).abs().max() < 1e-4  # still exact
    sources = [s for s in sample_sources(g) if g.kind(s) != "error"]
    measured = removal_effects(g, sources)
    predicted = -wrong.adjacency[target_rows(g)][:, sources].T
    assert (measured - predicted).abs().max() > 1e-2


def test_influence_is_the_neumann_series() -> None:
    g = graph_of()
    M = normalize_matrix(g.adjacency).double()
    w = g.logit_weights().double()
    eye = torch.eye(len(M), dtype=M.dtype)
    exact = torch.linalg.solve((eye - M).T, w) - w  # w (I − A)⁻¹ − w
    torch.testing.assert_close(compute_influence(M, w), exact, atol=1e-9, rtol=1e-6)
    assert torch.allclose(M.sum(1)[M.sum(1) > 0], torch.ones(1, dtype=M.dtype))


def test_find_threshold_by_hand() -> None:
    s = torch.tensor([0.1, 0.5, 0.2, 0.2])
    assert find_threshold(s, 0.5) == 0.5  # 0.5 alone reaches half
    assert find_threshold(s, 0.6) == 0.2  # 0.5 + 0.2
    assert find_threshold(s, 1.0) == 0.1


def test_pruning_keeps_tokens_and_logits_and_drops_orphans() -> None:
    g = graph_of()
    full = prune_graph(g, 1.0, 1.0)
    pr = prune_graph(g, 0.8, 0.98)
    keep = g.n_tokens + g.n_logits
    assert pr.node_mask[-keep:].all()
    assert pr.node_mask.sum() < full.node_mask.sum() <= g.n_nodes
    assert pr.edge_mask.sum() < full.edge_mask.sum()
    inner = g.n_nodes - keep
    # every kept feature/error node has an outgoing kept edge; every kept feature an incoming one
    assert (pr.edge_mask[:, :inner].any(0) | ~pr.node_mask[:inner]).all()
    assert (pr.edge_mask[: g.n_features].any(1) | ~pr.node_mask[: g.n_features]).all()
    # kept edges join kept nodes
    rows, cols = pr.edge_mask.nonzero(as_tuple=True)
    assert pr.node_mask[rows].all() and pr.node_mask[cols].all()
    # the kept nodes carry at least node_threshold of the influence among features and errors
    infl = pr.influence[:inner]
    assert infl[pr.node_mask[:inner]].sum() >= 0.5 * infl.sum()


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_thresholds_outside_unit_interval(bad: float) -> None:
    g = graph_of()
    with pytest.raises(ValueError, match=r"node_threshold must lie in"):
        prune_graph(g, node_threshold=bad)
    with pytest.raises(ValueError, match=r"edge_threshold must lie in"):
        prune_graph(g, edge_threshold=bad)
    with pytest.raises(TypeError, match="number"):
        prune_graph(g, node_threshold="0.8")  # type: ignore[arg-type]


def test_scores() -> None:
    g = graph_of()
    rep, comp = graph_scores(g)
    assert 0 < rep < 1 and 0 < comp < 1
    no_err = AttributionGraph(g.features, g.activations, g.adjacency.clone(), g.tokens, g.logit_tokens,
                              g.logit_probs, g.n_layers)
    no_err.adjacency[:, g.n_features:g.n_features + g.n_errors] = 0
    assert graph_scores(no_err) == pytest.approx((1.0, 1.0))


def test_graph_layout_and_determinism() -> None:
    g = graph_of()
    model, tok = course_model()
    again = build_graph(model, random_transcoders(), PROMPT, tok, batch_size=1000)
    torch.testing.assert_close(again.adjacency, g.adjacency, atol=1e-5, rtol=1e-4)  # batching: same edges
    assert g.n_nodes == g.n_features + 2 * g.n_tokens + g.n_tokens + g.n_logits
    assert g.logit_probs.sum() >= 0.95 or g.n_logits == 10
    A = g.adjacency
    assert (A[g.n_features:g.n_nodes - g.n_logits] == 0).all()  # errors and tokens have no inputs
    assert (A[:, -g.n_logits:] == 0).all()  # logits have no outputs
    layer0 = (g.features[:, 0] == 0).nonzero()[:, 0]
    assert (A[layer0][:, : g.n_features] == 0).all()  # layer-0 features read only the embeddings
    # causality: nothing reads a later position
    pos = torch.cat([g.features[:, 1], torch.arange(g.n_tokens).repeat(3), torch.full((g.n_logits,), 99)])
    later = pos[None, :] > pos[:, None]
    assert (A[later] == 0).all()


def test_target_tokens_and_bad_arguments() -> None:
    model, tok = course_model()
    tcs = random_transcoders()
    g = build_graph(model, tcs, PROMPT, tok, target_tokens=[5, 7])
    assert g.logit_tokens.tolist() == [5, 7]
    with pytest.raises(ValueError, match="target tokens"):
        build_graph(model, tcs, PROMPT, tok, target_tokens=[5000])
    with pytest.raises(ValueError, match="logit_prob"):
        build_graph(model, tcs, PROMPT, tok, logit_prob=1.5)
    with pytest.raises(ValueError, match="empty"):
        build_graph(model, tcs, "", tok)
