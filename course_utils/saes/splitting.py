"""Feature splitting across a family of dictionary sizes (Bricken et al. 2023, "Towards
Monosemanticity", section on feature splitting): a latent of a small SAE corresponds to several
latents of a larger SAE trained on the same activations, each firing on part of its tokens.

Latents are matched by **decoder cosine** (rows of W_dec normalised) and by **co-activation**: the
share of the parent's firing tokens on which a child fires, P(child fires | parent fires).
A latent of the larger SAE is a *child* of the smaller SAE latent its decoder row is closest to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch

from course_utils.plotting import style


def _unit_rows(W: torch.Tensor) -> torch.Tensor:
    return W / W.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def match_latents(W_small: torch.Tensor, W_large: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each latent of the smaller dictionary, the most similar latent of the larger one by the
    cosine of decoder rows. W_small: [m1, d], W_large: [m2, d] -> (cosine [m1], index [m1] long)."""
    if W_small.ndim != 2 or W_large.ndim != 2 or W_small.shape[1] != W_large.shape[1]:
        raise ValueError(f"need decoders [m1, d] and [m2, d] of the same d, got {list(W_small.shape)} and "
                         f"{list(W_large.shape)}")
    cos = _unit_rows(W_small) @ _unit_rows(W_large).T  # [m1, m2]
    return cos.max(dim=1)


def parents(W_small: torch.Tensor, W_large: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each latent of the larger dictionary, its parent: the nearest smaller-dictionary latent.
    -> (cosine [m2], parent index [m2] long)."""
    return match_latents(W_large, W_small)


def coactivation(f_parent: torch.Tensor, f_children: torch.Tensor) -> torch.Tensor:
    """P(child fires | parent fires) for activations ``f_parent: [n]`` and ``f_children: [n, c]`` -> [c]
    (zeros when the parent never fires)."""
    on = f_parent > 0
    if not on.any():
        return torch.zeros(f_children.shape[1])
    return (f_children[on] > 0).double().mean(0).float()


@dataclass
class Split:
    """One parent latent and its descendants: per dictionary size, the children's indices, their
    decoder cosine with the parent they descend from, and their co-activation with the root."""

    root: int
    sizes: list[str]
    children: list[list[int]]  # per size after the first
    cosine: list[list[float]]
    coact: list[list[float]]
    via: list[list[int]]  # the parent (at the previous size) each child descends from


def split_family(W_decs: list[torch.Tensor], latents: list[torch.Tensor], root: int, sizes: list[str],
                 max_children: int = 8) -> Split:
    """Descendants of latent ``root`` of the first dictionary through the family ``W_decs`` (each [m_i, d],
    sizes increasing), with latent activations ``latents[i]: [n, m_i]`` on the same tokens."""
    if not len(W_decs) == len(latents) == len(sizes) >= 2:
        raise ValueError("give at least two dictionaries, with activations and a name for each")
    if not 0 <= root < W_decs[0].shape[0]:
        raise ValueError(f"root {root} is out of range: the first dictionary has {W_decs[0].shape[0]} latents")
    current = [root]
    out = Split(root, sizes, [], [], [], [])
    for i in range(1, len(W_decs)):
        cos, par = parents(W_decs[i - 1], W_decs[i])
        kids = [j for j in torch.nonzero(torch.isin(par, torch.tensor(current))).flatten().tolist()]
        co = coactivation(latents[0][:, root], latents[i][:, kids]) if kids else torch.zeros(0)
        order = sorted(range(len(kids)), key=lambda a: -float(co[a]))[:max_children]
        kids = [kids[a] for a in order]
        out.children.append(kids)
        out.cosine.append([round(float(cos[j]), 3) for j in kids])
        out.coact.append([round(float(co[a]), 3) for a in order])
        out.via.append([int(par[j]) for j in kids])
        current = kids or current
    return out


def children_per_parent(W_small: torch.Tensor, W_large: torch.Tensor, min_cos: float = 0.5) -> np.ndarray:
    """How many larger-dictionary latents have each smaller latent as parent with cosine ≥ ``min_cos``: [m1]."""
    cos, par = parents(W_small, W_large)
    keep = cos >= min_cos
    return np.bincount(par[keep].numpy(), minlength=W_small.shape[0])


def plot_split(s: Split, concepts: list[dict[int, str]] | None = None) -> go.Figure:
    """The family tree of one latent: x = dictionary, y = co-activation with the root; a line joins
    each child to the latent it descends from; hover: decoder cosine and best concept."""
    fig = go.Figure()
    ys: dict[tuple[int, int], float] = {(0, s.root): 1.0}
    name0 = concepts[0].get(s.root, "") if concepts else ""
    fig.add_trace(go.Scatter(x=[s.sizes[0]], y=[1.0], mode="markers+text", text=[f"{s.root}"],
                             textposition="top center", marker=dict(size=14, color="#d62728"),
                             hovertext=[f"latent {s.root}: {name0}"], hoverinfo="text", name=s.sizes[0]))
    for i, kids in enumerate(s.children, start=1):
        for j, c, co, v in zip(kids, s.cosine[i - 1], s.coact[i - 1], s.via[i - 1]):
            y0 = ys.get((i - 1, v), 1.0)
            ys[(i, j)] = co
            fig.add_trace(go.Scatter(x=[s.sizes[i - 1], s.sizes[i]], y=[y0, co], mode="lines",
                                     line=dict(color="#999", width=1 + 3 * max(c, 0)), hoverinfo="skip",
                                     showlegend=False))
        names = [concepts[i].get(j, "") if concepts else "" for j in kids]
        fig.add_trace(go.Scatter(x=[s.sizes[i]] * len(kids), y=s.coact[i - 1], mode="markers+text",
                                 text=[str(j) for j in kids], textposition="middle right",
                                 marker=dict(size=11), name=s.sizes[i], hoverinfo="text",
                                 hovertext=[f"latent {j}: cos {c:.2f} with {v}; {n}"
                                            for j, c, v, n in zip(kids, s.cosine[i - 1], s.via[i - 1], names)]))
    fig.update_xaxes(title="dictionary (latents)", type="category")
    fig.update_yaxes(title="P(fires | root fires)", range=[-0.05, 1.1])
    return style(fig, f"Feature splitting of latent {s.root} ({s.sizes[0]})", 420)
