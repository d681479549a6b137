"""Export an attribution graph as circuit-tracer's graph JSON (the file its frontend reads; schema
version 1), so a learner can take a course graph to the tools they know.

Layout (circuit-tracer's ``create_graph_files``, written here without its pydantic models)::

    {"metadata": {slug, scan, transcoder_list, prompt_tokens, prompt, node_threshold, schema_version: 1},
     "qParams": {pinnedIds, supernodes, linkType, clickedId, sg_pos},
     "nodes": [{node_id, feature, layer, ctx_idx, feature_type, token_prob, is_target_logit, run_idx,
                reverse_ctx_idx, jsNodeId, clerp, influence, activation}],
     "links": [{source, target, weight}]}

node_id formats: feature ``"{layer}_{feature}_{pos}"``, error ``"0_{layer}_{pos}"``, token
``"E_{token_id}_{pos}"``, logit ``"{n_layers + 1}_{token_id}_{pos}"`` (as in circuit-tracer, a layer-0
feature numbered ``f < n_layers`` shares its id with the error node of layer ``f``). ``influence`` is the node's
cumulative influence fraction (the rank circuit-tracer prunes by); links go from source to target
with the edge weight ``A[target, source]``. Only kept nodes and edges are written; token and logit nodes
always are. The course's feature descriptions can go in ``clerp``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from course_utils.circuits.graph import AttributionGraph, PruneResult, prune_graph

SCHEMA_VERSION = 1


def cumulative_influence(influence: torch.Tensor) -> torch.Tensor:
    """Each node's share of the total influence of all nodes ranked at or above it: ``[n_nodes]``."""
    order = influence.argsort(descending=True)
    out = torch.empty_like(influence)
    out[order] = influence[order].cumsum(0) / influence.sum().clamp_min(1e-30)
    return out


def node_ids(graph: AttributionGraph) -> list[str]:
    """circuit-tracer's node_id of every node, in node order."""
    ids = [f"{layer}_{f}_{p}" for layer, p, f in graph.features.tolist()]
    ids += [f"0_{layer}_{p}" for layer in range(graph.n_layers) for p in range(graph.n_tokens)]
    ids += [f"E_{t}_{p}" for p, t in enumerate(graph.tokens.tolist())]
    return ids + [f"{graph.n_layers + 1}_{t}_{graph.n_tokens - 1}" for t in graph.logit_tokens.tolist()]


def _node(graph: AttributionGraph, i: int, node_id: str, infl: float, decode: Any,
          labels: dict[int, str]) -> dict[str, Any]:
    kind = graph.kind(i)
    node: dict[str, Any] = {"node_id": node_id, "token_prob": 0.0, "is_target_logit": False, "run_idx": 0,
                            "reverse_ctx_idx": 0, "clerp": labels.get(i, ""), "influence": infl,
                            "activation": None}
    if kind == "feature":
        layer, p, f = graph.features[i].tolist()
        node.update(feature=f, layer=str(layer), ctx_idx=p, feature_type="cross layer transcoder",
                    jsNodeId=f"{layer}_{f}-0", activation=float(graph.activations[i]))
    elif kind == "error":
        layer, p = divmod(i - graph.n_features, graph.n_tokens)
        node.update(feature=-1, layer=str(layer), ctx_idx=p, feature_type="mlp reconstruction error",
                    jsNodeId=f"{layer}_{p}-0")
    elif kind == "token":
        p = i - graph.n_features - graph.n_errors
        node.update(feature=p, layer="E", ctx_idx=p, feature_type="embedding",
                    jsNodeId=f"E_{int(graph.tokens[p])}-{p}")
    else:
        j = i - (graph.n_nodes - graph.n_logits)
        t, prob = int(graph.logit_tokens[j]), float(graph.logit_probs[j])
        node.update(feature=t, layer=str(graph.n_layers + 1), ctx_idx=graph.n_tokens - 1, feature_type="logit",
                    token_prob=prob, is_target_logit=j == 0, jsNodeId=f"L_{t}-{graph.n_tokens - 1}",
                    clerp=f'Output "{decode(t)}" (p={prob:.3f})', influence=None)
    return node


def graph_json(graph: AttributionGraph, tokenizer: Any = None, slug: str = "course-graph",
               scan: str = "course-lm-transcoders", node_threshold: float = 0.8, edge_threshold: float = 0.98,
               prune: PruneResult | None = None, labels: dict[int, str] | None = None,
               prompt: str | None = None) -> dict[str, Any]:
    """The graph (pruned with the thresholds unless ``prune`` is given) as circuit-tracer's JSON dict.
    ``labels`` maps node indices to descriptions (``clerp``)."""
    if not isinstance(graph, AttributionGraph):
        raise TypeError(f"graph must be an AttributionGraph, got {type(graph).__name__}")
    if not isinstance(slug, str) or not slug:
        raise ValueError("slug must be a non-empty str (the graph's name in the viewer)")
    pr = prune if prune is not None else prune_graph(graph, node_threshold, edge_threshold)

    def decode(t: int) -> str:
        return tokenizer.decode([t]) if tokenizer is not None else str(t)

    ids = node_ids(graph)
    cum = cumulative_influence(pr.influence)
    kept = pr.node_mask.nonzero()[:, 0].tolist()
    nodes = [_node(graph, i, ids[i], float(cum[i]), decode, labels or {}) for i in kept]
    rows, cols = pr.edge_mask.nonzero(as_tuple=True)
    weights = graph.adjacency[rows, cols].tolist()
    links = [{"source": ids[s], "target": ids[t], "weight": w}
             for t, s, w in zip(rows.tolist(), cols.tolist(), weights)]
    tokens = [decode(t) for t in graph.tokens.tolist()]
    meta = {"slug": slug, "scan": scan, "transcoder_list": [], "prompt_tokens": tokens,
            "prompt": prompt if prompt is not None else "".join(tokens), "node_threshold": node_threshold,
            "schema_version": SCHEMA_VERSION}
    qparams = {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""}
    return {"metadata": meta, "qParams": qparams, "nodes": nodes, "links": links}


def save_graph_json(graph: AttributionGraph, path: str | Path, **kwargs: Any) -> Path:
    """Write :func:`graph_json` to ``path`` (a ``.json`` file); returns the path."""
    path = Path(path)
    if path.suffix != ".json":
        raise ValueError(f"path must end in .json, got {str(path)!r}")
    path.write_text(json.dumps(graph_json(graph, **kwargs), indent=1))
    return path
