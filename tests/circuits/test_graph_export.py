"""circuit-tracer graph JSON (schema version 1): fields, node_id formats, links that name kept nodes
with the adjacency's weights, and a file that reads back."""

from __future__ import annotations

import json
import re

import pytest

from course_utils.circuits.export import cumulative_influence, graph_json, node_ids, save_graph_json
from course_utils.circuits.graph import build_graph, prune_graph
from tests.circuits.graph_helpers import PROMPT, course_model, random_transcoders


def test_graph_json_layout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, tok = course_model()
    g = build_graph(model, random_transcoders(), PROMPT, tok)
    pr = prune_graph(g)
    data = graph_json(g, tok, slug="t", prune=pr, prompt=PROMPT)
    assert set(data) == {"metadata", "qParams", "nodes", "links"}
    meta = data["metadata"]
    assert meta["schema_version"] == 1 and meta["prompt"] == PROMPT and meta["slug"] == "t"
    assert "".join(meta["prompt_tokens"]) == PROMPT
    assert len(data["nodes"]) == int(pr.node_mask.sum())
    kinds = {n["feature_type"] for n in data["nodes"]}
    assert kinds >= {"embedding", "logit"}
    patterns = {"cross layer transcoder": r"^[01]_\d+_\d+$", "mlp reconstruction error": r"^0_[01]_\d+$",
                "embedding": r"^E_\d+_\d+$", "logit": r"^3_\d+_%d$" % (g.n_tokens - 1)}
    for n in data["nodes"]:
        assert re.match(patterns[n["feature_type"]], n["node_id"]), n
    assert sum(n["is_target_logit"] for n in data["nodes"]) == 1
    ids = node_ids(g)
    # unique, except circuit-tracer's own clash: layer-0 feature f < n_layers and error node (layer f)
    clashes = {i for i in ids if ids.count(i) > 1}
    assert all(re.match(r"^0_[01]_\d+$", i) for i in clashes)
    kept = {n["node_id"] for n in data["nodes"]}
    assert len(data["links"]) == int(pr.edge_mask.sum()) > 0
    index = {node_id: i for i, node_id in enumerate(ids)}
    for link in data["links"][:200]:
        assert link["source"] in kept and link["target"] in kept
        assert link["weight"] == pytest.approx(float(g.adjacency[index[link["target"]], index[link["source"]]]))
    path = save_graph_json(g, tmp_path / "g.json", tokenizer=tok)
    assert json.loads(path.read_text())["metadata"]["schema_version"] == 1
    with pytest.raises(ValueError, match=".json"):
        save_graph_json(g, tmp_path / "g.txt")
    with pytest.raises(TypeError, match="AttributionGraph"):
        graph_json("graph")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="edge_threshold"):
        graph_json(g, edge_threshold=0)


def test_cumulative_influence() -> None:
    import torch

    c = cumulative_influence(torch.tensor([0.1, 0.6, 0.3]))
    assert c.tolist() == pytest.approx([1.0, 0.6, 0.9])
