"""The graph explorer: type or pick a prompt, choose the target token and the node and edge
thresholds, and the pruned attribution graph is rebuilt (a couple of seconds on a CPU for a short
prompt). Live in a kernel (ipywidgets); on the website its static twin is one figure with a menu over
graphs precomputed for several prompts (:func:`static_explorer`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from course_utils.circuits.figures import graph_figure
from course_utils.circuits.graph import build_graph, check_threshold, prune_graph
from course_utils.plotting import in_book_build


def explore_graph(model: Any, transcoders: Sequence[Any], tokenizer: Any, prompt: str, target: str = "",
                  node_threshold: float = 0.8, edge_threshold: float = 0.98, notes: Any = None) -> go.Figure:
    """The pruned graph of ``prompt``. ``target`` is the next token to explain (its text, which must
    be one token); empty: the most likely next tokens (circuit-tracer's default)."""
    check_threshold(node_threshold, "node_threshold")
    check_threshold(edge_threshold, "edge_threshold")
    targets = None
    if target:
        ids = tokenizer.encode(target).ids
        if len(ids) != 1:
            raise ValueError(f"target {target!r} is {len(ids)} tokens; give a single token")
        targets = ids
    g = build_graph(model, transcoders, prompt, tokenizer, target_tokens=targets)
    pr = prune_graph(g, node_threshold, edge_threshold)
    tokens = [tokenizer.id_to_token(t) for t in g.tokens.tolist()]  # shown with ␣ ↵ ⇥
    names = [tokenizer.decode([t]) for t in g.logit_tokens.tolist()]
    title = f"thresholds {node_threshold:g} / {edge_threshold:g}: {int(pr.node_mask.sum())} nodes"
    return graph_figure(g, pr, tokens, names, notes, title=title)


def static_explorer(figures: Mapping[str, go.Figure], label: str = "prompt") -> go.Figure:
    """One figure holding every figure of ``figures`` (same layout), with a menu that shows one at a
    time: the explorer's twin for a page without a kernel."""
    if not figures:
        raise ValueError("figures must hold at least one figure")
    names = list(figures)
    first = figures[names[0]]
    fig = go.Figure(layout=first.layout)
    counts = []
    for k, name in enumerate(names):
        for tr in figures[name].data:
            tr.visible = k == 0
            fig.add_trace(tr)
        counts.append(len(figures[name].data))
    buttons = []
    for k, name in enumerate(names):
        vis = [j == k for j, c in enumerate(counts) for _ in range(c)]
        layout = figures[name].layout
        buttons.append(dict(label=name, method="update",
                            args=[{"visible": vis}, {"title": layout.title, "xaxis": layout.xaxis}]))
    fig.update_layout(updatemenus=[dict(buttons=buttons, direction="down", x=0.0, y=1.18, xanchor="left",
                                        showactive=True)],
                      annotations=[dict(text=f"{label}:", x=0.0, y=1.25, xref="paper", yref="paper",
                                        showarrow=False, xanchor="left")])
    fig.update_layout(margin=dict(t=110))
    return fig


def graph_explorer(model: Any, transcoders: Sequence[Any], tokenizer: Any, prompts: Sequence[str],
                   notes: Any = None) -> Any:
    """Live: a prompt box (prefilled with the first of ``prompts``), a target-token box and the two
    threshold sliders. On the website: :func:`static_explorer` over ``prompts`` at the default
    thresholds."""
    if not prompts:
        raise ValueError("prompts must hold at least one prompt")
    if in_book_build():
        return static_explorer({repr(p): explore_graph(model, transcoders, tokenizer, p, notes=notes)
                                for p in prompts})
    import ipywidgets as widgets
    from IPython.display import display

    box = widgets.Combobox(value=prompts[0], options=list(prompts), description="prompt",
                           continuous_update=False, layout=widgets.Layout(width="60%"))
    target = widgets.Text(value="", description="target", placeholder="top logits",
                          continuous_update=False)
    node = widgets.FloatSlider(value=0.8, min=0.05, max=1.0, step=0.05, description="node threshold",
                               continuous_update=False, style={"description_width": "initial"})
    edge = widgets.FloatSlider(value=0.98, min=0.05, max=1.0, step=0.01, description="edge threshold",
                               continuous_update=False, style={"description_width": "initial"})
    out = widgets.Output()

    def redraw(*_: Any) -> None:
        out.clear_output(wait=True)
        with out:
            try:
                display(explore_graph(model, transcoders, tokenizer, box.value, target.value, node.value,
                                      edge.value, notes))
            except ValueError as err:
                print(f"cannot build this graph: {err}")

    for w in (box, target, node, edge):
        w.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([box, target]), widgets.HBox([node, edge]), out])
