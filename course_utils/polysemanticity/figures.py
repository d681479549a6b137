"""Chapter 1 figures: pure functions from data to plotly figures (course_utils.plotting conventions:
signed values red positive / blue negative with a titled colour bar)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn

from course_utils._validate import check_float as _check_float
from course_utils._validate import check_int as _check_int
from course_utils._validate import check_tensor as _check_tensor
from course_utils.plotting import signed_heatmap, style
from course_utils.polysemanticity._args import _check_acts, _check_k, _check_labels, _check_unit_index
from course_utils.polysemanticity.embeddings import WORDS
from course_utils.polysemanticity.neurons import N_DIGIT_CLASSES, polysemanticity_score, top_k_class_counts
from course_utils.polysemanticity.without_superposition import neuron_purity

# Figures (pure functions of their arguments)


def _mosaic(images: torch.Tensor, cols: int, gap: int = 1) -> np.ndarray:
    n, h, w = images.shape
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = images[i].numpy()
    return out


def neuron_figure(acts: torch.Tensor, labels: torch.Tensor, images: torch.Tensor, neuron: int,
                  k: int = 50, n_images: int = 12) -> go.Figure:
    """The neuron explorer's view of one unit: its ``n_images`` top-activating digits and the classes of
    its top-``k`` examples, titled with its polysemanticity score. The same two traces for every neuron,
    so :func:`course_utils.plotting.explorer` can precompute a slider over neurons."""
    acts = _check_acts(acts)
    labels = _check_labels(labels, acts.shape[0], N_DIGIT_CLASSES)
    images = _check_tensor(images, "images", 3, "[n_examples, 8, 8]")
    if images.shape[0] != acts.shape[0]:
        raise ValueError(f"images must have one entry per example: expected {acts.shape[0]}, got {images.shape[0]}")
    neuron = _check_unit_index(neuron, acts.shape[1])
    k = _check_k(k, acts.shape[0])
    n_images = _check_k(n_images, acts.shape[0])
    col = acts[:, neuron: neuron + 1].detach().cpu()
    idx = col[:, 0].topk(max(k, n_images)).indices
    counts = top_k_class_counts(col, labels.cpu(), k)[0]
    score = polysemanticity_score(counts[None])[0].item()
    top_classes = sorted(range(N_DIGIT_CLASSES), key=lambda c: -counts[c].item())[:3]
    desc = ", ".join(f"{c} ({counts[c].item() / k:.0%})" for c in top_classes if counts[c] > 0)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.08,
                        subplot_titles=(f"top {n_images} digits (largest first)", f"classes of its top {k}"))
    tiles = images[idx[:n_images]].detach().cpu().float()
    fig.add_trace(go.Heatmap(z=_mosaic(tiles, cols=6), colorscale="Greys", showscale=False, hoverinfo="skip"),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=list(range(N_DIGIT_CLASSES)), y=counts.tolist(), marker_color="#3366cc",
                         hovertemplate="class %{x}: %{y} of " + str(k) + "<extra></extra>"), row=1, col=2)
    # No grid or zero lines over the digit images.
    fig.update_yaxes(autorange="reversed", showticklabels=False, scaleanchor="x", showgrid=False,
                     zeroline=False, row=1, col=1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=1)
    fig.update_xaxes(title_text="digit class", dtick=1, row=1, col=2)
    fig.update_yaxes(title_text="count", range=[0, k], row=1, col=2)
    fig.update_layout(showlegend=False)
    return style(fig, title=f"neuron {neuron}: {score:.2f} effective classes; top classes {desc}", height=380)


def score_comparison_figure(neuron_scores: torch.Tensor, random_scores: torch.Tensor,
                            readout_scores: torch.Tensor) -> go.Figure:
    """Distributions of the polysemanticity score for neurons, random directions and read-out directions."""
    fig = go.Figure()
    for name, s in (("neurons", neuron_scores), ("random directions", random_scores),
                    ("read-out directions", readout_scores)):
        s = _check_tensor(s, name, 1, "[n_units]")
        fig.add_trace(go.Box(y=s.tolist(), name=name, boxpoints="all", jitter=0.4, pointpos=0, marker_size=4))
    fig.update_yaxes(title_text="effective number of classes in the top-k", range=[0.8, None])
    fig.update_layout(showlegend=False)
    return style(fig, title="Are neurons more class-selective than random directions of the same layer?")


def basis_figure(results: dict[str, float]) -> go.Figure:
    """Bar chart of :func:`basis_test`'s accuracies."""
    keys = ["original", "permuted", "rotated"]
    for k in keys:
        if k not in results:
            raise ValueError(f"results must come from basis_test(); missing {k!r}")
    fig = go.Figure(go.Bar(x=["original", "neurons permuted", "neurons rotated"],
                           y=[results[k] for k in keys], text=[f"{results[k]:.1%}" for k in keys],
                           textposition="outside", marker_color=["#3366cc", "#109618", "#dc3912"]))
    fig.update_yaxes(title_text="accuracy", range=[0, 1.1])
    return style(fig, title="Change the hidden basis of a ReLU layer, undo it in the read-out", height=360)


def embedding_figure(E: torch.Tensor, words: Sequence[str] = WORDS) -> go.Figure:
    """The word embeddings projected on their top two principal components, with the man→woman,
    boy→girl, king→queen and prince→princess arrows."""
    E = _check_tensor(E, "E", 2, "[n_words, dim]")
    words = list(words)
    if E.shape[0] != len(words):
        raise ValueError(f"E must have one row per word: expected {len(words)}, got {E.shape[0]}")
    Ec = (E - E.mean(0)).double()
    _, _, Vh = torch.linalg.svd(Ec, full_matrices=False)
    P = (Ec @ Vh[:2].T).numpy()
    fig = go.Figure(go.Scatter(x=P[:, 0], y=P[:, 1], mode="markers+text", text=words, textposition="top center",
                               marker=dict(size=10, color="#3366cc")))
    for a, b in (("man", "woman"), ("boy", "girl"), ("king", "queen"), ("prince", "princess")):
        if a in words and b in words:
            i, j = words.index(a), words.index(b)
            fig.add_annotation(x=P[j, 0], y=P[j, 1], ax=P[i, 0], ay=P[i, 1], xref="x", yref="y", axref="x",
                               ayref="y", showarrow=True, arrowhead=2, arrowcolor="#dc3912", text="")
    fig.update_xaxes(title_text="principal component 1")
    fig.update_yaxes(title_text="principal component 2", scaleanchor="x")
    return style(fig, title="Trained word embeddings: the same arrow turns every male word into its female twin",
                 height=450)


def circuit_figure(mono: torch.Tensor, poly: torch.Tensor) -> go.Figure:
    """Side-by-side heatmaps of measured feature-to-feature connections (:func:`effective_connections`)."""
    mono = _check_tensor(mono, "mono", 2, "[n_out, n_in]")
    poly = _check_tensor(poly, "poly", 2, "[n_out, n_in]")
    zmax = max(mono.abs().max().item(), poly.abs().max().item(), 1e-9)
    n_mono = int((mono.abs() > 1e-6).sum())
    n_poly = int((poly.abs() > 1e-6).sum())
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        f"one neuron per feature: {n_mono} connections", f"two polysemantic neurons, one weight: {n_poly} connections"))
    for col, M in ((1, mono), (2, poly)):
        n_out, n_in = M.shape
        fig.add_trace(signed_heatmap(M.numpy(), zmax=zmax, colorbar_title="connection", showscale=col == 2,
                                     x=[f"a{i + 1}" for i in range(n_in)], y=[f"b{j + 1}" for j in range(n_out)],
                                     texttemplate="%{z:.2f}", hovertemplate="%{x} → %{y}: %{z:.3f}<extra></extra>"),
                      row=1, col=col)
        fig.update_xaxes(title_text="upstream feature switched on", row=1, col=col)
        fig.update_yaxes(title_text="downstream feature", autorange="reversed", row=1, col=col)
    return style(fig, title="Feature-to-feature connections, measured by switching one feature on at a time",
                 height=400)


def feature_matrix_figure(before: torch.Tensor, after: torch.Tensor) -> go.Figure:
    """Heatmaps of the neuron × feature matrix before and after a rotation of neuron space, with each
    neuron's purity."""
    before = _check_tensor(before, "before", 2, "[n_neurons, n_features]")
    after = _check_tensor(after, "after", 2, "[n_neurons, n_features]")
    if before.shape != after.shape:
        raise ValueError(f"before and after must have the same shape, got {list(before.shape)}, {list(after.shape)}")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.15,
                        subplot_titles=("trained neurons", "after the recovered rotation"))
    for col, M in ((1, before), (2, after)):
        pur = neuron_purity(M)
        live = M.norm(dim=1) > 1e-3
        labels = [f"n{i} ({pur[i]:.2f})" if live[i] else f"n{i} (unused)" for i in range(M.shape[0])]
        fig.add_trace(signed_heatmap(M.numpy(), zmax=1.0, colorbar_title="weight", showscale=col == 2,
                                     x=[f"f{j}" for j in range(M.shape[1])], y=labels, texttemplate="%{z:.2f}",
                                     hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>"), row=1, col=col)
        fig.update_yaxes(autorange="reversed", title_text="neuron (purity)" if col == 1 else None, row=1, col=col)
        fig.update_xaxes(title_text="feature", row=1, col=col)
    return style(fig, title="Each feature's weight on each neuron (rows: neurons, purity in brackets)", height=400)


def purity_sweep_figure(curves: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> go.Figure:
    """Mean neuron purity against the rotation angle of a 2-neuron basis, one line per arrangement
    (output of :func:`best_purity_over_rotations`)."""
    if not curves:
        raise ValueError("curves must hold at least one (angles, purity) pair")
    fig = go.Figure()
    for name, (angles, purity) in curves.items():
        fig.add_trace(go.Scatter(x=(angles * 180 / math.pi).tolist(), y=purity.tolist(), mode="lines", name=name))
    fig.update_xaxes(title_text="rotation of the neuron basis (degrees)")
    fig.update_yaxes(title_text="mean neuron purity", range=[0, 1.05])
    return style(fig, title="Is there a rotation that makes every neuron monosemantic?", height=380)


def xy_figure(model: nn.Sequential, lim: float = 3.0, n_grid: int = 61) -> go.Figure:
    """Three panels for an x·y network: the learned function, the target xy, and the network along the
    two diagonals against ±t² (its piecewise-linear pieces)."""
    if not isinstance(model, nn.Sequential) or len(model) != 3:
        raise TypeError("model must be the nn.Sequential of train_xy_network")
    _check_float(lim, "lim", 1e-3)
    _check_int(n_grid, "n_grid", 3)
    g = torch.linspace(-lim, lim, n_grid)
    X, Y = torch.meshgrid(g, g, indexing="xy")
    with torch.no_grad():
        Z = model(torch.stack([X.flatten(), Y.flatten()], 1)).reshape(n_grid, n_grid)
        diag_p = model(torch.stack([g, g], 1))[:, 0]
        diag_m = model(torch.stack([g, -g], 1))[:, 0]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("network f(x, y)", "target x·y",
                                                        "along the diagonals"), horizontal_spacing=0.07)
    zmax = lim * lim
    for col, z in ((1, Z), (2, X * Y)):
        fig.add_trace(signed_heatmap(z.numpy(), zmax=zmax, colorbar_title="output", showscale=col == 2,
                                     x=g.numpy(), y=g.numpy(), hover="%{z:.2f}",
                                     hovertemplate="x %{x:.2f}, y %{y:.2f}: %{z:.2f}<extra></extra>"),
                      row=1, col=col)
        fig.update_xaxes(title_text="x", row=1, col=col)
        fig.update_yaxes(title_text="y", row=1, col=col)
    gl = g.tolist()
    fig.add_trace(go.Scatter(x=gl, y=diag_p.tolist(), name="f(t, t)", line=dict(color="#3366cc")), row=1, col=3)
    fig.add_trace(go.Scatter(x=gl, y=(g * g).tolist(), name="t²", line=dict(color="#3366cc", dash="dot")), row=1, col=3)
    fig.add_trace(go.Scatter(x=gl, y=diag_m.tolist(), name="f(t, −t)", line=dict(color="#dc3912")), row=1, col=3)
    fig.add_trace(go.Scatter(x=gl, y=(-g * g).tolist(), name="−t²", line=dict(color="#dc3912", dash="dot")),
                  row=1, col=3)
    fig.update_xaxes(title_text="t", row=1, col=3)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="right", x=1.0))
    return style(fig, title="A 4-neuron ReLU network computing x·y", height=440)


def xy_neurons_figure(model: nn.Sequential, lim: float = 3.0, n_grid: int = 61) -> go.Figure:
    """Each hidden neuron's activation over the (x, y) plane: where does it fire?"""
    if not isinstance(model, nn.Sequential) or len(model) != 3:
        raise TypeError("model must be the nn.Sequential of train_xy_network")
    _check_int(n_grid, "n_grid", 3)
    g = torch.linspace(-lim, lim, n_grid)
    X, Y = torch.meshgrid(g, g, indexing="xy")
    with torch.no_grad():
        H = model[1](model[0](torch.stack([X.flatten(), Y.flatten()], 1))).reshape(n_grid, n_grid, -1)
    n = H.shape[-1]
    w2 = model[2].weight.detach()[0]
    # Two lines per subplot title (short enough for four panels side by side without overlapping).
    titles = [f"neuron {i}<br>out weight {w2[i]:+.2f}" for i in range(n)]
    fig = make_subplots(rows=1, cols=n, subplot_titles=titles, horizontal_spacing=0.05)
    for i in range(n):
        fig.add_trace(go.Heatmap(z=H[..., i].numpy(), x=g.numpy(), y=g.numpy(), colorscale="Viridis",
                                 showscale=i == n - 1, zmin=0, zmax=float(H.max()),
                                 colorbar=dict(title=dict(text="activation")),
                                 hovertemplate="x %{x:.2f}, y %{y:.2f}: %{z:.2f}<extra></extra>"),
                      row=1, col=i + 1)
        fig.update_xaxes(title_text="x", row=1, col=i + 1)
    fig.update_yaxes(title_text="y", row=1, col=1)
    fig.update_annotations(font_size=12)
    style(fig, title="Hidden activations of the x·y network, one panel per neuron", height=360)
    return fig.update_layout(margin=dict(t=95))


def correlated_figure(weights: dict[str, torch.Tensor]) -> go.Figure:
    """Heatmaps of ``W: [n_neurons, n_features]`` (one instance per setting), titled with mean purity."""
    if not weights:
        raise ValueError("weights must map a setting name to a [n_neurons, n_features] matrix")
    fig = make_subplots(rows=1, cols=len(weights), horizontal_spacing=0.08,
                        subplot_titles=[f"{name} (mean purity {neuron_purity(W).mean():.2f})"
                                        for name, W in weights.items()])
    for col, W in enumerate(weights.values(), start=1):
        W = _check_tensor(W, "W", 2, "[n_neurons, n_features]")
        fig.add_trace(signed_heatmap(W.numpy(), zmax=1.2, colorbar_title="weight", showscale=col == len(weights),
                                     x=[f"x{j}" for j in range(W.shape[1])],
                                     y=[f"neuron {i}" for i in range(W.shape[0])], texttemplate="%{z:.2f}",
                                     hovertemplate="%{y}, feature %{x}: %{z:.3f}<extra></extra>"),
                      row=1, col=col)
        fig.update_yaxes(autorange="reversed", row=1, col=col)
        fig.update_xaxes(title_text="feature", row=1, col=col)
    return style(fig, title="Which features does each ReLU neuron read? (W, rows = neurons)", height=320)
