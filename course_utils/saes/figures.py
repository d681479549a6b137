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
