"""Figures for chapter 4: pure functions from measured numbers to plotly figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch

from course_utils.plotting import style


def frontier_figure(points: Sequence[Mapping[str, float | str]]) -> go.Figure:
    """L0 against FVU, one marker per run; ``points`` hold ``architecture``, ``l0``, ``fvu``, ``label``."""
    fig = go.Figure()
    for arch in dict.fromkeys(str(p["architecture"]) for p in points):
        rows = [p for p in points if p["architecture"] == arch]
        fig.add_trace(go.Scatter(x=[p["l0"] for p in rows], y=[p["fvu"] for p in rows], mode="markers+lines",
                                 name=arch, text=[str(p.get("label", "")) for p in rows],
                                 hovertemplate="%{text}<br>L0 %{x:.2f}, FVU %{y:.3f}<extra>" + arch + "</extra>"))
    fig.update_xaxes(title="L0 (active latents per example)")
    fig.update_yaxes(title="fraction of variance unexplained", type="log")
    return style(fig, "The sparsity–reconstruction frontier on the toy")


def shrinkage_figure(ratios: Mapping[str, float], l0s: Mapping[str, float]) -> go.Figure:
    """Mean ‖x̂‖/‖x‖ per architecture (1 = no shrinkage), with each run's L0 in the hover text."""
    names = list(ratios)
    fig = go.Figure(go.Bar(x=names, y=[ratios[n] for n in names], text=[f"{ratios[n]:.2f}" for n in names],
                           customdata=[l0s[n] for n in names],
                           hovertemplate="%{x}: ‖x̂‖/‖x‖ = %{y:.3f}, L0 %{customdata:.1f}<extra></extra>"))
    fig.add_hline(y=1.0, line_dash="dot")
    fig.update_yaxes(title="mean ‖x̂‖ / ‖x‖", range=[0, 1.1])
    fig.update_xaxes(title="architecture")
    return style(fig, "Shrinkage: L1 pulls reconstructions towards zero")


def recovery_figure(W_dec: torch.Tensor, features: torch.Tensor, title: str = "Recovered vs true features") -> go.Figure:
    """Each true feature's best cosine with a decoder row, sorted; a line at 0.99."""
    a = W_dec / W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b = features / features.norm(dim=1, keepdim=True)
    best = (b @ a.T).max(dim=1).values.sort(descending=True).values.detach().cpu()
    fig = go.Figure(go.Scatter(x=list(range(len(best))), y=best.tolist(), mode="lines+markers",
                               hovertemplate="feature rank %{x}: best cosine %{y:.3f}<extra></extra>"))
    fig.add_hline(y=0.99, line_dash="dot")
    fig.update_xaxes(title="true feature (sorted by best cosine)")
    fig.update_yaxes(title="max cosine with a decoder row", range=[0, 1.02])
    return style(fig, f"{title} (MMCS {best.mean().item():.3f})")


def frequency_figure(freqs: Mapping[str, torch.Tensor]) -> go.Figure:
    """Histogram of log10 firing frequencies per run (dead latents at the left edge, −7)."""
    fig = go.Figure()
    for name, f in freqs.items():
        fig.add_trace(go.Histogram(x=torch.log10(f.clamp_min(1e-7)).tolist(), name=name, opacity=0.6, nbinsx=40))
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="log10 firing frequency (−7 = never fired)")
    fig.update_yaxes(title="number of latents")
    return style(fig, "Firing frequencies")


def prefix_figure(best: torch.Tensor, prefixes: Sequence[int], probabilities: torch.Tensor) -> go.Figure:
    """A Matryoshka SAE's nested dictionaries: each true feature's best cosine within the first m
    latents, one line per prefix m, features ordered from most to least frequent.
    best: [n_prefixes, n_features]; probabilities: [n_features]."""
    order = probabilities.argsort(descending=True)
    fig = go.Figure()
    for m, row in zip(prefixes, best):
        fig.add_trace(go.Scatter(x=list(range(len(order))), y=row[order].tolist(), mode="lines",
                                 name=f"first {m} latents",
                                 hovertemplate=f"first {m} latents: " + "feature rank %{x}, "
                                 "best cosine %{y:.3f}<extra></extra>"))
    fig.add_hline(y=0.99, line_dash="dot")
    fig.update_xaxes(title="true feature, most frequent first")
    fig.update_yaxes(title="best cosine within the prefix", range=[0, 1.02])
    return style(fig, "Matryoshka prefixes on the flat toy: small prefixes merge rare features")


def absorption_figure(scores: Mapping[str, Sequence[float]], baseline: float) -> go.Figure:
    """Mean child-to-parent cosine of each child's latent (one bar per architecture, one marker per
    seed in ``scores``), with the true child-parent cosine as a dotted line (no absorption)."""
    names = list(scores)
    means = [sum(scores[n]) / len(scores[n]) for n in names]
    fig = go.Figure(go.Bar(x=names, y=means, name="mean over seeds", text=[f"{m:.2f}" for m in means],
                           hovertemplate="%{x}: mean %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[n for n in names for _ in scores[n]], y=[v for n in names for v in scores[n]],
                             mode="markers", name="one seed", marker=dict(color="black", size=8),
                             hovertemplate="%{x}: %{y:.3f}<extra>one seed</extra>"))
    fig.add_hline(y=baseline, line_dash="dot", annotation_text="true child–parent cosine")
    fig.update_xaxes(title="architecture")
    fig.update_yaxes(title="cosine of a child's latent with its parent")
    return style(fig, "Absorption: how much parent direction the child latents carry")


def sweep_figure(values: Sequence[float], rows: Sequence[Mapping[str, float]], x_title: str, title: str,
                 log_x: bool = True) -> go.Figure:
    """MMCS (left axis) and feature counts (right axis: ``missed``, ``duplicates``) against a swept
    setting. ``rows[i]`` holds ``mmcs``, ``missed`` and ``duplicates`` for ``values[i]``."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(values), y=[r["mmcs"] for r in rows], mode="lines+markers", name="MMCS",
                             hovertemplate="%{x}: MMCS %{y:.3f}<extra></extra>"))
    for key, label in (("missed", "features missed (merged or lost)"), ("duplicates", "duplicate latents")):
        fig.add_trace(go.Scatter(x=list(values), y=[r[key] for r in rows], mode="lines+markers", name=label,
                                 yaxis="y2", line=dict(dash="dash"),
                                 hovertemplate="%{x}: %{y}<extra>" + label + "</extra>"))
    fig.update_xaxes(title=x_title, type="log" if log_x else "linear")
    fig.update_layout(yaxis=dict(title="MMCS", range=[0, 1.02]),
                      yaxis2=dict(title="number of features / latents", overlaying="y", side="right",
                                  rangemode="tozero"),
                      legend=dict(orientation="h", y=-0.25))
    return style(fig, title)


def hidden_state_figure(h: torch.Tensor, features: torch.Tensor, W_dec: torch.Tensor, title: str) -> go.Figure:
    """A 2-d hidden space: sample hidden states (grey), the model's feature directions (solid) and
    an SAE's decoder rows (dotted), both drawn as unit-length spokes. h: [n, 2], features, W_dec: [·, 2]."""
    fig = go.Figure(go.Scatter(x=h[:, 0].tolist(), y=h[:, 1].tolist(), mode="markers", name="hidden states",
                               marker=dict(color="lightgrey", size=4),
                               hovertemplate="(%{x:.2f}, %{y:.2f})<extra>hidden state</extra>"))
    for name, rows, dash in (("model's features", features, "solid"), ("SAE decoder rows", W_dec, "dot")):
        unit = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
        xs, ys = [], []
        for r in unit.tolist():
            xs += [0.0, r[0], None]
            ys += [0.0, r[1], None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name, line=dict(dash=dash, width=3),
                                 hoverinfo="skip"))
    fig.update_xaxes(title="hidden dimension 1", scaleanchor="y", scaleratio=1)
    fig.update_yaxes(title="hidden dimension 2")
    return style(fig, title, height=460)
