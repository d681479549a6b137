"""Figures of chapter 5: the pruned attribution graph (nodes by layer and position, edges coloured by
sign in the course convention, hover with each feature's concept and top contexts), a bar chart of
predicted against measured logit changes, and a heatmap of input-invariant connections. Pure
functions: data in, plotly figure out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import torch

from course_utils.circuits.graph import AttributionGraph, PruneResult
from course_utils.plotting import COLORWAY, readable_tokens, signed_heatmap, style

RED, BLUE = "#d6604d", "#4393c3"  # the ends of RdBu_r: positive, negative
KIND_STYLE = {"feature": ("circle", "#555555"), "error": ("x", "#999999"), "token": ("square", "#2ca02c"),
              "logit": ("diamond", "#9467bd")}


def _node_xy(graph: AttributionGraph, nodes: list[int]) -> dict[int, tuple[float, float]]:
    """Position of each node: x = token position, y = row (0 tokens, L + 1 layer L, top logits);
    nodes sharing a cell are spread a little."""
    cells: dict[tuple[int, int], list[int]] = {}
    for i in nodes:
        kind = graph.kind(i)
        if kind == "feature":
            layer, p, _ = graph.features[i].tolist()
            key = (p, layer + 1)
        elif kind == "error":
            layer, p = divmod(i - graph.n_features, graph.n_tokens)
            key = (p, layer + 1)
        elif kind == "token":
            key = (i - graph.n_features - graph.n_errors, 0)
        else:
            key = (graph.n_tokens - 1, graph.n_layers + 1)
        cells.setdefault(key, []).append(i)
    xy = {}
    for (p, row), members in cells.items():
        for j, i in enumerate(members):
            off = (j - (len(members) - 1) / 2) * min(0.8 / max(len(members), 1), 0.25)
            if row == graph.n_layers + 1:  # logits side by side
                xy[i] = (p + off * 2, float(row))
            else:
                xy[i] = (p + off, row + 0.15 * off)
    return xy


def node_label(graph: AttributionGraph, i: int, tokens: Sequence[str], notes: Any = None) -> str:
    """A one-line name of node ``i`` and, for features with notes, its concept and top contexts (HTML)."""
    kind = graph.kind(i)
    if kind == "feature":
        layer, p, f = graph.features[i].tolist()
        text = f"L{layer} feature {f} at {p} ({tokens[p]!r}), act {float(graph.activations[i]):.2f}"
        if notes is not None:
            best, score = notes.best[layer][f] or "none", float(notes.score[layer][f])
            ctx = "<br>".join(readable_tokens([c])[0].replace("\n", "↵").replace("\t", "⇥").replace("<", "&lt;")
                              for c in notes.contexts[layer][f])
            text += f"<br>concept: {best} (score {score:.2f})<br>top contexts:<br>{ctx}"
        return text
    if kind == "error":
        layer, p = divmod(i - graph.n_features, graph.n_tokens)
        return f"L{layer} error node at {p} ({tokens[p]!r})"
    if kind == "token":
        p = i - graph.n_features - graph.n_errors
        return f"token {tokens[p]!r} at {p}"
    j = i - (graph.n_nodes - graph.n_logits)
    return f"logit {int(graph.logit_tokens[j])} (p = {float(graph.logit_probs[j]):.2f})"


def graph_figure(graph: AttributionGraph, prune: PruneResult, tokens: Sequence[str],
                 logit_names: Sequence[str] | None = None, notes: Any = None, title: str = "",
                 max_edges: int = 300, height: int = 520,
                 groups: dict[str, list[int]] | None = None) -> go.Figure:
    """The pruned graph: kept nodes at (position, layer) with hover text, the ``max_edges`` strongest
    kept edges as lines (red positive, blue negative; width by |weight|). ``tokens`` are the prompt's
    tokens as strings (shown with :func:`course_utils.plotting.readable_tokens`). ``groups``
    (supernodes: name -> feature nodes) colours the features of the six largest groups, one legend
    entry each."""
    if len(tokens) != graph.n_tokens:
        raise ValueError(f"tokens has {len(tokens)} entries but the graph has {graph.n_tokens} positions")
    shown = readable_tokens(list(tokens))
    nodes = prune.node_mask.nonzero()[:, 0].tolist()
    xy = _node_xy(graph, nodes)
    rows, cols = prune.edge_mask.nonzero(as_tuple=True)
    w = graph.adjacency[rows, cols]
    order = w.abs().argsort(descending=True)[:max_edges]
    wmax = float(w.abs().max()) if len(w) else 1.0
    fig = go.Figure()
    for sign, colour, name in ((1, RED, "positive edge"), (-1, BLUE, "negative edge")):
        for lo, hi, width in ((0.0, 0.1, 0.6), (0.1, 0.4, 1.5), (0.4, 1.01, 3.0)):
            xs: list[float | None] = []
            ys: list[float | None] = []
            for k in order.tolist():
                wk = float(w[k])
                if (wk > 0) != (sign > 0) or not lo <= abs(wk) / wmax < hi:
                    continue
                (x0, y0), (x1, y1) = xy[int(cols[k])], xy[int(rows[k])]
                xs += [x0, x1, None]
                ys += [y0, y1, None]
            fig.add_trace(go.Scatter(x=xs or [None], y=ys or [None], mode="lines", hoverinfo="skip",
                                     line=dict(color=colour, width=width), opacity=0.6, name=name,
                                     legendgroup=name, showlegend=lo == 0.0))
    infl = prune.influence
    top = float(infl[nodes].max()) if nodes else 1.0
    series: list[tuple[str, str, str, list[int]]] = []
    for kind, (symbol, colour) in KIND_STYLE.items():
        members = [i for i in nodes if graph.kind(i) == kind]
        if kind == "feature" and groups:
            named = list(groups.items())[:6]
            grouped = {i for _, m in named for i in m}
            for k, (name, m) in enumerate(named):
                series.append((f"features: {name[:24]}", symbol, COLORWAY[k % len(COLORWAY)],
                               [i for i in members if i in set(m)]))
            members = [i for i in members if i not in grouped]
            series.append(("other features", symbol, colour, members))
        else:
            series.append((kind, symbol, colour, members))
    for kind, symbol, colour, members in series:
        labels = [node_label(graph, i, shown, notes) for i in members]
        if kind == "logit" and logit_names is not None and members:
            labels = [f"{lab}: {logit_names[i - (graph.n_nodes - graph.n_logits)]!r}"
                      for lab, i in zip(labels, members)]
        sizes = [8 + 14 * (float(infl[i]) / top if top > 0 else 0) for i in members]
        fig.add_trace(go.Scatter(x=[xy[i][0] for i in members] or [None], y=[xy[i][1] for i in members] or [None],
                                 mode="markers", name=kind, text=labels or [""],
                                 hovertemplate="%{text}<extra></extra>",
                                 marker=dict(symbol=symbol, color=colour, size=sizes or [8],
                                             line=dict(width=1, color="white"))))
    rows_names = ["tokens"] + [f"layer {layer}" for layer in range(graph.n_layers)] + ["logits"]
    fig.update_xaxes(title="position (token)", tickvals=list(range(graph.n_tokens)), ticktext=shown,
                     range=[-0.7, graph.n_tokens - 0.3])
    fig.update_yaxes(title="layer", tickvals=list(range(len(rows_names))), ticktext=rows_names,
                     range=[-0.5, len(rows_names) - 0.5])
    return style(fig, title or "Pruned attribution graph", height=height)


def intervention_figure(names: Sequence[str], predicted_direct: Sequence[float],
                        predicted_total: Sequence[float], measured: Sequence[float], title: str = "") -> go.Figure:
    """Grouped bars: the logit change each intervention was predicted to cause (direct edges; linear
    total through the graph) and the change measured on the real model."""
    if not len(names) == len(predicted_direct) == len(predicted_total) == len(measured):
        raise ValueError("names, predictions and measurements must have the same length")
    fig = go.Figure([go.Bar(name="predicted (direct edges)", x=list(names), y=list(predicted_direct)),
                     go.Bar(name="predicted (linear, all paths)", x=list(names), y=list(predicted_total)),
                     go.Bar(name="measured (real model)", x=list(names), y=list(measured))])
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="features ablated")
    fig.update_yaxes(title="change of the centred logit")
    return style(fig, title or "Graph predictions against interventions")


def connections_figure(virtual: torch.Tensor, src: Sequence[str], dst: Sequence[str], title: str = "") -> go.Figure:
    """Input-invariant connections ``virtual[i, j] = W_dec0[src_i] · W_enc1[:, dst_j]`` as a signed
    heatmap (rows: layer-0 features, columns: layer-1 features)."""
    if virtual.shape != (len(src), len(dst)):
        raise ValueError(f"virtual has shape {list(virtual.shape)}, labels give {len(src)} x {len(dst)}")
    fig = go.Figure(signed_heatmap(virtual.tolist(), colorbar_title="W_dec · W_enc", x=list(dst), y=list(src),
                                   hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title="layer-1 feature (reads)")
    fig.update_yaxes(title="layer-0 feature (writes)")
    return style(fig, title or "Strongest input-invariant connections", height=460)
