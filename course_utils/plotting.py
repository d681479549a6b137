"""Figure conventions.

* A figure is a **pure function** from data to a ``plotly.graph_objects.Figure``: it trains nothing,
  reads no globals and has no side effects (``fig = plot_x(data); fig`` displays it).
* An interactive explorer wraps such a function. In a live kernel (JupyterLab, Colab) it is an
  ipywidgets control panel that calls the function on every change; on the website (no kernel) it is
  its **static twin**: a plotly figure with a slider over frames precomputed at build time
  (:func:`frames_figure`), which stays interactive in the browser.
* The website build sets ``COURSE_BOOK_BUILD=1`` and a plotly renderer that writes the figure as HTML
  (plotly.js is loaded once per page by the site, not inlined per figure); see
  ``book/_ipython/profile_default/startup/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

COLORWAY = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00"]
# One convention for signed values in every chapter: red positive, blue negative, white zero.
SIGNED_COLORSCALE = "RdBu_r"
BOOK_RENDERER = "course_book"


def in_book_build() -> bool:
    """True while the website is being built (no live kernel will ever see the output)."""
    return os.environ.get("COURSE_BOOK_BUILD") == "1"


def style(fig: go.Figure, title: str | None = None, height: int = 420) -> go.Figure:
    """Apply the course's look (white template, compact margins) and return the same figure."""
    if not isinstance(fig, go.Figure):
        raise TypeError(f"style expects a plotly Figure, got {type(fig).__name__}")
    fig.update_layout(template="plotly_white", colorway=COLORWAY, height=height,
                      margin=dict(l=50, r=20, t=60 if title else 30, b=40))
    if title is not None:
        fig.update_layout(title=dict(text=title, x=0.02))
    return fig


BYTE_LEVEL_SYMBOLS = {"Ġ": "␣", "Ċ": "↵", "ĉ": "⇥"}  # GPT-2-style byte-level BPE: space, newline, tab


def readable_tokens(tokens: Sequence[str]) -> list[str]:
    """Byte-level BPE tokens as a reader should see them: the marker symbols for a leading space
    (Ġ), a newline (Ċ) and a tab (ĉ) shown as ␣, ↵ and ⇥."""
    if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
        raise TypeError("tokens must be a sequence of strings")
    return ["".join(BYTE_LEVEL_SYMBOLS.get(ch, ch) for ch in t) for t in tokens]


def signed_heatmap(z: Any, zmax: float | None = None, colorbar_title: str = "value",
                   hover: str = "%{z:.3f}", showscale: bool = True, **kwargs: Any) -> go.Heatmap:
    """A heatmap trace of signed values in the course's convention (:data:`SIGNED_COLORSCALE`),
    symmetric about zero (``zmax`` defaults to the largest |z|), with a titled colour bar and a
    formatted hover value. Extra keyword arguments go to ``go.Heatmap`` (x, y, hovertemplate, ...)."""
    if zmax is None:
        flat = [abs(float(v)) for row in (z.tolist() if hasattr(z, "tolist") else z) for v in row]
        zmax = max(flat, default=1.0) or 1.0
    if not zmax > 0:
        raise ValueError(f"zmax must be positive, got {zmax!r}")
    kwargs.setdefault("hovertemplate", f"row %{{y}}, column %{{x}}: {hover}<extra></extra>")
    return go.Heatmap(z=z, zmin=-zmax, zmax=zmax, colorscale=SIGNED_COLORSCALE, showscale=showscale,
                      colorbar=dict(title=dict(text=colorbar_title)), **kwargs)


def frames_figure(make_fig: Callable[[Any], go.Figure], values: Sequence[Any], label: str,
                  fmt: Callable[[Any], str] = str) -> go.Figure:
    """The static twin of a one-parameter explorer: a figure with a slider over precomputed frames.

    ``make_fig(v)`` must return figures with the same traces (same number and types) for every ``v``;
    each becomes one frame. The result needs no kernel: the slider works in any browser.
    """
    if not callable(make_fig):
        raise TypeError("make_fig must be a function from a parameter value to a plotly Figure")
    values = list(values)
    if not values:
        raise ValueError("values must contain at least one parameter value")
    figs = [make_fig(v) for v in values]
    n_traces = len(figs[0].data)
    for v, f in zip(values, figs):
        if not isinstance(f, go.Figure):
            raise TypeError(f"make_fig({v!r}) returned {type(f).__name__}, expected a plotly Figure")
        if len(f.data) != n_traces:
            raise ValueError(f"make_fig({v!r}) returned {len(f.data)} traces but the first value gave "
                             f"{n_traces}: every frame needs the same traces")
    fig = go.Figure(data=figs[0].data, layout=figs[0].layout)
    names = [fmt(v) for v in values]
    fig.frames = [go.Frame(data=f.data, name=n, layout=dict(title=f.layout.title, annotations=f.layout.annotations))
                  for f, n in zip(figs, names)]
    steps = [dict(method="animate", label=n,
                  args=[[n], dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))])
             for n in names]
    fig.update_layout(sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix=f"{label}: "),
                                    pad=dict(t=40))])
    fig.update_layout(height=(fig.layout.height or 420) + 80)
    return fig


def explorer(make_fig: Callable[..., go.Figure], controls: Mapping[str, Sequence[Any]],
             static: str | None = None, labels: Mapping[str, str] | None = None,
             value: Mapping[str, Any] | None = None) -> Any:
    """A live explorer in a kernel, its static twin on the website.

    ``controls`` maps each keyword argument of ``make_fig`` to the values it may take, in slider
    order. Live, each becomes a selection slider labelled ``labels[name]`` (default: the name with
    spaces) and the figure is redrawn on every change. ``value`` gives a control's starting value
    (default: its first). On the website the parameter named ``static`` (default: the first) gets a
    plotly slider over precomputed frames and the others stay at their starting values.
    """
    if not controls:
        raise ValueError("controls must name at least one parameter of make_fig")
    for k, vals in controls.items():
        if len(list(vals)) == 0:
            raise ValueError(f"controls[{k!r}] is empty: give the values the slider may take")
    static = static or next(iter(controls))
    if static not in controls:
        raise ValueError(f"static={static!r} is not one of the controls {list(controls)}")
    labels, value = dict(labels or {}), dict(value or {})
    for name, given in (("labels", labels), ("value", value)):
        unknown = sorted(set(given) - set(controls))
        if unknown:
            raise ValueError(f"{name} names {unknown}, which are not controls {list(controls)}")
    for k, v in value.items():
        if v not in list(controls[k]):
            raise ValueError(f"value[{k!r}]={v!r} is not one of its options {list(controls[k])}")
    names = {k: labels.get(k, k.replace("_", " ")) for k in controls}
    defaults = {k: value.get(k, list(v)[0]) for k, v in controls.items()}
    if in_book_build():
        others = {k: v for k, v in defaults.items() if k != static}
        return frames_figure(lambda v: make_fig(**{static: v}, **others), list(controls[static]), names[static])

    import ipywidgets as widgets
    from IPython.display import display

    sliders = {k: widgets.SelectionSlider(options=list(v), value=defaults[k], description=names[k],
                                          continuous_update=False, style={"description_width": "initial"})
               for k, v in controls.items()}
    out = widgets.Output()

    def redraw(**kwargs: Any) -> None:
        out.clear_output(wait=True)
        with out:
            display(make_fig(**kwargs))

    widgets.interactive_output(redraw, sliders)
    return widgets.VBox([widgets.HBox(list(sliders.values())), out])


def html_tabs(pages: Mapping[str, str]) -> Any:
    """A tab widget of static HTML pages. Tabs switch in the browser, so its snapshot on the website
    stays fully usable without a kernel."""
    import ipywidgets as widgets

    if not pages:
        raise ValueError("pages must hold at least one (title, html) pair")
    tab = widgets.Tab(children=[widgets.HTML(v) for v in pages.values()])
    tab.titles = tuple(pages.keys())
    return tab


def register_book_renderer() -> None:
    """Register and select the website renderer: the figure as an HTML ``<div>`` without plotly.js
    (the site loads plotly.js once per page). Called by the build's IPython startup file."""

    class _BookRenderer(pio.base_renderers.HtmlRenderer):
        def __init__(self) -> None:
            super().__init__(connected=False, full_html=False, global_init=False)

        count = 0

        def to_mimebundle(self, fig_dict: dict) -> dict:
            # A deterministic div id (not plotly's random uuid): rebuilding a page gives the same HTML.
            type(self).count += 1
            digest = hashlib.sha1(json.dumps(fig_dict, sort_keys=True, default=str).encode()).hexdigest()[:10]
            html = pio.to_html(fig_dict, include_plotlyjs=False, full_html=False, validate=False,
                               div_id=f"fig-{digest}-{type(self).count}", auto_play=False,
                               config={"displaylogo": False, "responsive": True})
            return {"text/html": html}

    pio.renderers[BOOK_RENDERER] = _BookRenderer()
    pio.renderers.default = BOOK_RENDERER
