"""Chapter 7 figures: pure functions from measured numbers to plotly figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from course_utils.plotting import style


def _random_band(fig: go.Figure, strengths: Sequence[float], random: Any, what: str) -> None:
    """A shaded min-max band and a dashed mean line over random directions ``[n, n_strengths]``."""
    r = np.asarray(random, float)
    if r.ndim != 2 or r.shape[1] != len(strengths) or r.shape[0] < 2:
        raise ValueError(f"random must be [n_directions >= 2, {len(strengths)}], got shape {list(r.shape)}")
    x = list(strengths)
    name = f"random directions (n = {r.shape[0]})"
    fig.add_scatter(x=x + x[::-1], y=list(r.max(0)) + list(r.min(0))[::-1], fill="toself", mode="lines",
                    line=dict(width=0), fillcolor="rgba(127, 127, 127, 0.25)", hoverinfo="skip",
                    name=f"{name}: min to max", legendgroup="random")
    fig.add_scatter(x=x, y=r.mean(0), mode="lines", line=dict(dash="dash", color="rgb(90, 90, 90)"),
                    name=f"{name}: mean", legendgroup="random",
                    hovertemplate=f"strength %{{x}}<br>random mean {what} %{{y:.3f}}<extra></extra>")


def plot_dose_response(strengths: Sequence[float], fractions: Mapping[str, Sequence[float]], concept: str,
                       baseline: float | None = None, random: Any = None) -> go.Figure:
    """Fraction of generated tokens in ``concept`` (y) against steering strength (x), one line per
    direction; ``random`` (``[n_directions, n_strengths]``, optional) is drawn as the min-max band and
    the mean of random directions of the same norm."""
    fig = go.Figure()
    if random is not None:
        _random_band(fig, strengths, random, "fraction")
    for name, ys in fractions.items():
        fig.add_scatter(x=list(strengths), y=list(ys), mode="lines+markers", name=name)
    if baseline is not None:
        fig.add_hline(y=baseline, line_dash="dot", annotation_text="unsteered")
    fig.update_xaxes(title="steering strength (norm of the added vector)")
    fig.update_yaxes(title=f"generated tokens {concept.replace('_', ' ')}", range=[0, 1])
    return style(fig, title=f"Dose-response: steering towards '{concept}'")


def plot_steering_cost(strengths: Sequence[float], losses: Mapping[str, Sequence[float]], clean: float,
                       random: Any = None) -> go.Figure:
    """Held-out next-token loss (y) against strength (x) while steering, one line per direction;
    ``random`` (``[n_directions, n_strengths]``, optional) as in :func:`plot_dose_response`."""
    fig = go.Figure()
    if random is not None:
        _random_band(fig, strengths, random, "loss")
    for name, ys in losses.items():
        fig.add_scatter(x=list(strengths), y=list(ys), mode="lines+markers", name=name)
    fig.add_hline(y=clean, line_dash="dot", annotation_text="clean")
    fig.update_xaxes(title="steering strength (norm of the added vector)")
    fig.update_yaxes(title="held-out loss (nats / token)")
    return style(fig, title="What steering costs: loss on held-out code")


def plot_shift(results: Mapping[str, Mapping[str, float]], metrics: Sequence[str] = ("intended", "spurious",
                                                                                      "worst_group")
               ) -> go.Figure:
    """Grouped bars: accuracy per metric (x) for each condition (probe, SHIFT, ...)."""
    fig = go.Figure()
    for name, acc in results.items():
        fig.add_bar(x=[m.replace("_", " ") for m in metrics], y=[acc[m] for m in metrics], name=name,
                    text=[f"{acc[m]:.2f}" for m in metrics], textposition="outside")
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance")
    fig.update_xaxes(title="accuracy on")
    fig.update_yaxes(title="accuracy (balanced test set)", range=[0, 1.1])
    fig.update_layout(barmode="group")
    return style(fig, title="Removing a spurious concept from a probe")


def plot_savings(savings: Any) -> go.Figure:
    """Superposed width vs matching monosemantic width (left axis) and interference cost (right axis)
    across sparsity."""
    x = [f"{s:g}" for s in savings.sparsity]
    fig = go.Figure()
    fig.add_scatter(x=x, y=[savings.d_hidden] * len(x), name="superposed model (d_hidden)", mode="lines")
    fig.add_scatter(x=x, y=savings.matching_width, name="monosemantic width matching its loss",
                    mode="lines+markers")
    fig.add_scatter(x=x, y=savings.represented, name="features the superposed model represents",
                    mode="lines+markers", line_dash="dash")
    fig.add_bar(x=x, y=np.array(savings.interference_cost) * 1e3, name="interference cost (x1e-3, right axis)",
                yaxis="y2", opacity=0.35)
    fig.update_layout(yaxis2=dict(title="interference cost (x1e-3)", overlaying="y", side="right"),
                      legend=dict(orientation="h", y=-0.3))
    fig.update_xaxes(title="sparsity S (x is 0 with probability S)")
    fig.update_yaxes(title="hidden dimensions")
    return style(fig, title="Dimensions superposition saves, and what it costs", height=480)


def generations_html(prompt: str, continuations: Mapping[str, str]) -> str:
    """An HTML block: the prompt's last lines, then each labelled continuation (escaped, monospace)."""
    import html

    tail = "\n".join(prompt.splitlines()[-4:])
    pre = '<pre style="white-space: pre-wrap">'  # long generated lines wrap instead of scrolling
    rows = [f"<p><b>prompt (last lines)</b></p>{pre}{html.escape(tail)}</pre>"]
    rows += [f"<p><b>{html.escape(k)}</b></p>{pre}{html.escape(v)}</pre>" for k, v in continuations.items()]
    return "\n".join(rows)


def steering_explorer(generate: Any, latents: Sequence[str], strengths: Sequence[float], prompt: str) -> Any:
    """Live: a latent menu and a strength slider; each change shows ``generate(latent, strength)``
    (the steered continuation of ``prompt``). On the website: one tab per strength for the first
    latent, precomputed by the same function (the static twin)."""
    from course_utils.plotting import html_tabs, in_book_build

    if not latents or not strengths:
        raise ValueError("give at least one latent and one strength")
    if in_book_build():
        first = latents[0]
        return html_tabs({f"{s:g}": generations_html(prompt, {f"{first}, strength {s:g}": generate(first, s)})
                          for s in strengths})

    import ipywidgets as widgets
    from IPython.display import HTML, display

    pick = widgets.Dropdown(options=list(latents), description="latent")
    strength = widgets.SelectionSlider(options=list(strengths), value=strengths[0], description="strength",
                                       continuous_update=False)
    out = widgets.Output()

    def redraw(latent: str, strength: float) -> None:
        out.clear_output(wait=True)
        with out:
            display(HTML(generations_html(prompt, {f"{latent}, strength {strength:g}": generate(latent, strength)})))

    widgets.interactive_output(redraw, {"latent": pick, "strength": strength})
    return widgets.VBox([widgets.HBox([pick, strength]), out])
