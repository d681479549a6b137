"""Figures for chapter 6: pure functions from tensors to plotly figures (course style)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from course_utils.decomposition.metrics import subcomponent_norms
from course_utils.plotting import COLORWAY, frames_figure, style


def _arrows(fig: go.Figure, cols: torch.Tensor, row: int, col: int, show_legend: bool) -> None:
    """One arrow (a line from 0 with a marker at the tip) per feature column. cols: [n_feat, 2]."""
    for j, (a, b) in enumerate(cols.tolist()):
        fig.add_trace(go.Scatter(x=[0, a], y=[0, b], mode="lines+markers", name=f"feature {j}",
                                 legendgroup=f"f{j}", showlegend=show_legend,
                                 line=dict(color=COLORWAY[j % len(COLORWAY)], width=3),
                                 marker=dict(size=[0, 8]),
                                 hovertemplate=f"feature {j}: (%{{x:.2f}}, %{{y:.2f}})<extra></extra>"),
                      row=row, col=col)


def plot_subcomponents_2d(W: torch.Tensor, V: torch.Tensor, U: torch.Tensor, n_show: int = 6,
                          title: str = "Target columns and the largest subcomponents",
                          lim: float = 1.4) -> go.Figure:
    """The paper's figure 1 for a 2-d hidden space: W's columns (one arrow per feature), then the
    ``n_show`` subcomponents with the largest norm, each drawn by its columns V[j, c] U[c, :].
    W: [2, n_feat], V: [n_feat, C], U: [C, 2]."""
    if W.shape[0] != 2:
        raise ValueError(f"plot_subcomponents_2d draws a 2-d hidden space, got W of shape {list(W.shape)}")
    norms = subcomponent_norms(V, U)
    order = norms.argsort(descending=True)[:n_show].tolist()
    titles = ["target W"] + [f"subcomponent {c} (‖·‖ {norms[c]:.2f})" for c in order]
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.02)
    _arrows(fig, W.T, 1, 1, True)
    for k, c in enumerate(order):
        _arrows(fig, V[:, c, None] * U[c][None, :], 1, k + 2, False)
    fig.update_xaxes(range=[-lim, lim], showticklabels=False, zeroline=True)
    fig.update_yaxes(range=[-lim, lim], showticklabels=False, zeroline=True, scaleanchor="x")
    fig.update_xaxes(title_text="hidden dim 0", row=1, col=1)
    fig.update_yaxes(title_text="hidden dim 1", row=1, col=1)
    return style(fig, title, height=280)


def subcomponent_frames(W: torch.Tensor, snapshots: Sequence[tuple[int, Mapping[str, tuple[torch.Tensor, torch.Tensor]]]],
                        layer: str = "linear1", n_show: int = 6) -> go.Figure:
    """The subcomponents as training proceeds: one frame per snapshot (the static twin: a slider
    over precomputed frames, no kernel needed)."""
    by_step = {step: comps[layer] for step, comps in snapshots}

    def make(step: int) -> go.Figure:
        V, U = by_step[step]
        return plot_subcomponents_2d(W, V, U, n_show, title=f"SPD subcomponents at step {step}")

    return frames_figure(make, list(by_step), "training step")


def plot_causal_importance(ci: Mapping[str, torch.Tensor], title: str = "Causal importance per input feature",
                           height: int = 320) -> go.Figure:
    """Heatmaps of causal importance g (clipped to [0, 1]) per layer: rows are inputs (e.g. one-hot
    x_i = 0.75), columns the subcomponents, ordered by the input they respond to most (alive ones
    first). ci[layer]: [n_inputs, C]."""
    names = list(ci)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.08)
    for k, name in enumerate(names):
        g = ci[name].detach().cpu().clamp(0, 1)
        alive = g.max(0).values
        key = torch.where(alive > 0.1, g.argmax(0).double(), torch.full_like(alive, 1e9, dtype=torch.float64))
        order = sorted(range(g.shape[1]), key=lambda c: (key[c].item(), -alive[c].item()))
        z = g[:, order]
        fig.add_trace(go.Heatmap(z=z.tolist(), x=[f"c{c}" for c in order], y=[f"x{i}" for i in range(g.shape[0])],
                                 zmin=0, zmax=1, colorscale="Blues", showscale=k == len(names) - 1,
                                 colorbar=dict(title=dict(text="g")),
                                 hovertemplate="input %{y}, subcomponent %{x}: g = %{z:.2f}<extra></extra>"),
                      row=1, col=k + 1)
        fig.update_xaxes(title_text="subcomponent (sorted)", row=1, col=k + 1, showticklabels=g.shape[1] <= 30)
        fig.update_yaxes(title_text="input feature active", row=1, col=k + 1, autorange="reversed")
    return style(fig, title, height=height)


def plot_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str, yaxis: str,
                xaxis: str = "training step", reference: float | None = None,
                reference_label: str = "paper") -> go.Figure:
    """Line plot of named (x, y) curves, with an optional horizontal reference line."""
    fig = go.Figure()
    for name, (x, y) in curves.items():
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines", name=name))
    if reference is not None:
        fig.add_hline(y=reference, line_dash="dot", annotation_text=f"{reference_label} {reference:g}")
    fig.update_layout(xaxis_title=xaxis, yaxis_title=yaxis)
    return style(fig, title, height=340)


def plot_neuron_contributions(target: torch.Tensor, sub: torch.Tensor,
                              title: str = "Neuron contributions: target vs best W_in subcomponent") -> go.Figure:
    """Scatter of each (feature, neuron) contribution in the target (x) against the best-matching
    subcomponent's (y), as in the SPD paper's figure 7. target, sub: [n_feat, d_mlp]."""
    t, s = target.flatten().tolist(), sub.flatten().tolist()
    lim = max(max(map(abs, t)), max(map(abs, s)), 1e-6)
    fig = go.Figure(go.Scatter(x=t, y=s, mode="markers", marker=dict(size=4, opacity=0.6), name="(feature, neuron)",
                               hovertemplate="target %{x:.3f}, subcomponent %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[-lim, lim], y=[-lim, lim], mode="lines", line=dict(dash="dot", color="grey"),
                             name="y = x"))
    fig.update_layout(xaxis_title="target contribution", yaxis_title="subcomponent contribution")
    return style(fig, title, height=380)


def plot_unit_activity(panels: Mapping[str, tuple[torch.Tensor, torch.Tensor]], row_labels: Sequence[str],
                       title: str = "Which units each input uses", height: int = 420) -> go.Figure:
    """Side-by-side heatmaps of how strongly each unit is used on each probe input. panels[name] =
    (activity: [n_inputs, n_units] ≥ 0, unit_features: [n_units], the feature each unit stands for);
    each panel is scaled to its own maximum (SAE activations and causal importances have different
    units), its columns sorted by feature and labelled "c → x_j"."""
    names = list(panels)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.06)
    for k, name in enumerate(names):
        act, feats = panels[name]
        act = act.detach().cpu().clamp_min(0)
        if act.shape[0] != len(row_labels) or act.shape[1] != feats.shape[0]:
            raise ValueError(f"panel {name!r}: activity {list(act.shape)} does not fit {len(row_labels)} "
                             f"inputs and {feats.shape[0]} units")
        order = sorted(range(act.shape[1]), key=lambda c: int(feats[c]))
        z = act[:, order] / act.max().clamp_min(1e-12)
        fig.add_trace(go.Heatmap(z=z.tolist(), x=[f"c{c}→x{int(feats[c])}" for c in order], y=list(row_labels),
                                 zmin=0, zmax=1, colorscale="Blues", showscale=k == len(names) - 1,
                                 colorbar=dict(title=dict(text="use (÷ max)")),
                                 hovertemplate="input %{y}, unit %{x}: %{z:.2f}<extra></extra>"),
                      row=1, col=k + 1)
        fig.update_xaxes(title_text="unit → feature it stands for", row=1, col=k + 1)
        fig.update_yaxes(title_text="features present (0.75 each)" if k == 0 else None, row=1, col=k + 1,
                         autorange="reversed", showticklabels=k == 0)
    return style(fig, title, height=height)
