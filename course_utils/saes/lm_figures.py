"""Figures of chapter 4 part 2 (SAEs on the course language model): pure functions data -> figure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from course_utils.plotting import style

_HOOK_LABEL = {"blocks.0.mlp.hook_post": "layer-0 MLP hidden", "blocks.1.hook_resid_pre": "residual 0→1",
               "blocks.1.hook_mlp_out": "layer-1 MLP out"}
_SYMBOL = {"topk": "circle", "jumprelu": "diamond", "batchtopk": "square", "relu": "x"}


def plot_frontier(records: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """L0 (log x) against CE loss recovered (zero ablation) for every SAE; ``records[name]`` holds
    ``hook_name``, ``architecture``, ``d_sae`` and the eval summary's ``l0`` and ``ce_recovered_zero``."""
    fig = go.Figure()
    hooks = sorted({r["hook_name"] for r in records.values()})
    for h in hooks:
        rs = {n: r for n, r in records.items() if r["hook_name"] == h}
        fig.add_trace(go.Scatter(
            x=[r["l0"] for r in rs.values()], y=[r["ce_recovered_zero"] for r in rs.values()],
            mode="markers+text", name=_HOOK_LABEL.get(h, h), text=[f"{r['architecture']} {r['d_sae']}" for r in rs.values()],
            textposition="top center", marker=dict(size=12, symbol=[_SYMBOL.get(r["architecture"], "circle")
                                                                    for r in rs.values()]),
            hovertemplate="%{text}<br>L0 %{x:.1f}<br>CE recovered %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title="L0 (active latents per token, log scale)", type="log")
    fig.update_yaxes(title="CE loss recovered (zero ablation)")
    return style(fig, "Sparsity against CE loss recovered, every shipped SAE", 440)


def plot_score_distributions(scores: Mapping[str, np.ndarray], title: str) -> go.Figure:
    """Overlaid histograms (as fractions) of unit scores, one trace per kind of unit."""
    fig = go.Figure()
    for name, s in scores.items():
        fig.add_trace(go.Histogram(x=np.asarray(s), name=f"{name} ({len(s)})", opacity=0.55,
                                   histnorm="probability", xbins=dict(start=0, end=1.0001, size=0.05)))
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="monosemanticity score (chance-corrected precision at recall ≥ 0.5)")
    fig.update_yaxes(title="fraction of units")
    return style(fig, title, 380)


def plot_probe_ceiling(concepts: list[str], probe: list[float | None], latent: list[float],
                       neuron: list[float], hook_name: str) -> go.Figure:
    """Per structural concept: the linear probe's F1 (the ceiling of what the hook represents
    linearly) against the F1 of the best single SAE latent and the best single neuron."""
    fig = go.Figure()
    for name, vals in (("linear probe", probe), ("best SAE latent", latent), ("best basis direction", neuron)):
        fig.add_trace(go.Bar(x=concepts, y=[np.nan if v is None else v for v in vals], name=name))
    fig.update_xaxes(title="concept", tickangle=-45)
    fig.update_yaxes(title="F1 on held-out tokens", range=[0, 1])
    return style(fig, f"What one unit reaches against the probe ceiling ({_HOOK_LABEL.get(hook_name, hook_name)})", 440)
