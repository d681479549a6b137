"""The case-study tools: graph figure and static explorer, predictions against interventions, and
supernodes, on random transcoders (fast); bad arguments raise clear errors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from course_utils.circuits import figures
from course_utils.circuits.casestudy import (
    error_share,
    measured_logit_change,
    predicted_logit_change,
    supernodes,
)
from course_utils.circuits.explorer import explore_graph, static_explorer
from course_utils.circuits.graph import build_graph, compute_influence, prune_graph
from course_utils.circuits.replacement import freeze_hooks
from tests.circuits.graph_helpers import PROMPT, course_model, random_transcoders


def _graph():  # type: ignore[no-untyped-def]
    model, tok = course_model()
    return build_graph(model, random_transcoders(), PROMPT, tok)


def test_predictions_and_measurement() -> None:
    model, _ = course_model()
    g = _graph()
    row = g.n_nodes - g.n_logits
    layer1 = (g.features[:, 0] == 1).nonzero()[:, 0].tolist()
    s = max(layer1, key=lambda i: abs(float(g.adjacency[row, i])))
    direct, total = predicted_logit_change(g, [s])
    assert direct == pytest.approx(-float(g.adjacency[row, s]))
    assert total == pytest.approx(direct, rel=1e-5, abs=1e-6)  # layer-1 features reach the logit directly
    # a last-layer feature at the last position: only the final LayerNorm lies downstream, so with its
    # scale frozen the real model's change equals the prediction; live, the scale changes it
    last = [i for i in layer1 if int(g.features[i, 1]) == g.n_tokens - 1]
    s = max(last, key=lambda i: abs(float(g.adjacency[row, i])))
    frozen = freeze_hooks([], {"ln_final.hook_scale": g.replacement.scales["ln_final.hook_scale"]})
    measured = measured_logit_change(model, g, [s], extra_hooks=frozen)
    assert measured == pytest.approx(predicted_logit_change(g, [s])[0], rel=1e-3, abs=1e-4)
    assert measured_logit_change(model, g, [s]) != pytest.approx(measured, rel=1e-3)
    layer0 = (g.features[:, 0] == 0).nonzero()[:, 0].tolist()[:5]
    w = torch.zeros(g.n_nodes)
    w[row] = 1
    assert predicted_logit_change(g, layer0)[1] == pytest.approx(
        -float(compute_influence(g.adjacency, w)[layer0].sum()), rel=1e-5)
    with pytest.raises(ValueError, match="feature nodes"):
        predicted_logit_change(g, [g.token_index(0)])
    with pytest.raises(ValueError, match="feature nodes"):
        measured_logit_change(model, g, [g.error_index(0, 0)])
    assert 0 < error_share(g) < 1


def test_supernodes_group_by_concept() -> None:
    g = _graph()
    d_sae = g.replacement.transcoders[0].cfg.d_sae
    best = [["a" if f % 2 else "b" for f in range(d_sae)] for _ in range(2)]
    score = [np.where(np.arange(d_sae) % 3 == 0, 0.0, 0.9) for _ in range(2)]
    notes = SimpleNamespace(best=best, score=score)
    nodes = list(range(g.n_features)) + [g.token_index(0)]
    groups = supernodes(g, nodes, notes)
    assert sum(len(v) for v in groups.values()) == g.n_features
    for i in groups.get("a", []):
        f = int(g.features[i, 2])
        assert f % 2 == 1 and f % 3 != 0
    assert all(int(g.features[i, 2]) % 3 == 0 for i in groups["unlabelled"])


def test_figures_and_static_explorer() -> None:
    model, tok = course_model()
    g = _graph()
    pr = prune_graph(g)
    tokens = [tok.decode([t]) for t in g.tokens.tolist()]
    fig = figures.graph_figure(g, pr, tokens, title="t")
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    markers = [tr for tr in fig.data if tr.mode == "markers"]
    assert sum(len([x for x in tr.x if x is not None]) for tr in markers) == int(pr.node_mask.sum())
    with pytest.raises(ValueError, match="positions"):
        figures.graph_figure(g, pr, tokens[:-1])
    tcs = random_transcoders()
    a = explore_graph(model, tcs, tok, "x = len(items")
    b = explore_graph(model, tcs, tok, "y = data[key", target=")", node_threshold=0.5)
    both = static_explorer({"a": a, "b": b})
    assert len(both.data) == len(a.data) + len(b.data)
    buttons = both.layout.updatemenus[0].buttons
    assert [sum(bt.args[0]["visible"]) for bt in buttons] == [len(a.data), len(b.data)]
    with pytest.raises(ValueError, match="single token"):
        explore_graph(model, tcs, tok, "x = 1", target="hello world")
    with pytest.raises(ValueError, match="node_threshold"):
        explore_graph(model, tcs, tok, "x = 1", node_threshold=0)
    with pytest.raises(ValueError, match="empty"):
        explore_graph(model, tcs, tok, "")
    with pytest.raises(ValueError, match="at least one"):
        static_explorer({})
    bars = figures.intervention_figure(["a"], [1.0], [1.5], [1.2])
    assert isinstance(bars, go.Figure) and len(bars.data) == 3
    with pytest.raises(ValueError, match="same length"):
        figures.intervention_figure(["a", "b"], [1.0], [1.5], [1.2])
    heat = figures.connections_figure(torch.randn(2, 3), ["x", "y"], ["p", "q", "r"])
    assert heat.data[0].colorscale is not None
    with pytest.raises(ValueError, match="shape"):
        figures.connections_figure(torch.randn(2, 3), ["x"], ["p", "q", "r"])


def test_graph_explorer_live_and_static(monkeypatch: pytest.MonkeyPatch) -> None:
    from course_utils.circuits.explorer import graph_explorer

    model, tok = course_model()
    tcs = random_transcoders()
    monkeypatch.delenv("COURSE_BOOK_BUILD", raising=False)
    live = graph_explorer(model, tcs, tok, ["x = len(items"])
    assert type(live).__name__ == "VBox"
    box, target = live.children[0].children
    target.value = "hello world"  # not one token: the explorer says so instead of raising
    monkeypatch.setenv("COURSE_BOOK_BUILD", "1")
    static = graph_explorer(model, tcs, tok, ["x = len(items", "y = data[key"])
    assert isinstance(static, go.Figure) and len(static.layout.updatemenus[0].buttons) == 2
    with pytest.raises(ValueError, match="at least one prompt"):
        graph_explorer(model, tcs, tok, [])


def test_graph_figure_colours_supernodes() -> None:
    _, tok = course_model()
    g = _graph()
    pr = prune_graph(g, 0.99, 0.99)
    kept = [i for i in pr.node_mask.nonzero()[:, 0].tolist() if g.kind(i) == "feature"]
    groups = {"first": kept[:2], "second": kept[2:3]}
    tokens = [tok.id_to_token(t) for t in g.tokens.tolist()]
    fig = figures.graph_figure(g, pr, tokens, groups=groups)
    names = [tr.name for tr in fig.data if tr.mode == "markers"]
    assert names[:3] == ["features: first", "features: second", "other features"]
    sizes = {tr.name: len([x for x in tr.x if x is not None]) for tr in fig.data if tr.mode == "markers"}
    assert len(kept) >= 4
    assert sizes["features: first"] == 2 and sizes["other features"] == len(kept) - 3, (sizes, len(kept))
    assert "␣" in "".join(fig.layout.xaxis.ticktext) or "↵" in "".join(fig.layout.xaxis.ticktext)
