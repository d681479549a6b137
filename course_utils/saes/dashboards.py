"""Feature dashboards for SAE latents on a language model (Bricken et al. 2023's "feature browser",
at course size): an activation histogram, the top-activating contexts, the logit effects of the
latent's decoder direction and its ground-truth concept scores.

Works on the course model with a shipped SAE, and on any TransformerLens model with an SAE that has
``encode`` and ``W_dec: [d_sae, d_in]`` (e.g. GPT-2 small with a SAELens SAE from
:func:`course_utils.course_lm.load_pretrained_sae`, online only).

Contexts have two renderings (:func:`contexts_html`), both offline, tokens shown with
:func:`show_tokens` (␣ ↵ ⇥ for a space, a newline and a tab):

* ``backend="html"`` (the default; the website's static twin): plain HTML spans, each token's
  activation as a red background (the course's colour for positive values); no script, a few kB.
* ``backend="circuitsvis"`` (the notebook's live widget): circuitsvis's ``TopkSamples`` element, with
  circuitsvis's own bundled JavaScript inlined (its ``local_src``; about 1.3 MB per rendering).
  Never circuitsvis's ``_repr_html_``: that probes google.com to choose between the inlined bundle
  and a script from unpkg.com, and the course makes no network call. The website does not use it:
  its three dozen dashboards would carry 36 copies of the bundle (about 47 MB of script on one page).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from course_utils._optional import require
from course_utils.plotting import readable_tokens, style

# ------------------------------------------------------------------------------------------------
# The computations (the references of the exercises)


def top_activating(acts: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``k`` largest activations of one latent over ``acts: [n_docs, seq]``, largest first:
    (values [k], document index [k] (long), position index [k] (long))."""
    if not isinstance(acts, torch.Tensor) or acts.ndim != 2:
        raise ValueError(f"acts must be a [n_docs, seq] tensor, got {getattr(acts, 'shape', type(acts).__name__)}")
    if not isinstance(k, int) or not 1 <= k <= acts.numel():
        raise ValueError(f"k must be an int in [1, {acts.numel()}], got {k!r}")
    values, flat = acts.reshape(-1).topk(k)
    return values, flat // acts.shape[1], flat % acts.shape[1]


def logit_effects(W_dec: torch.Tensor, W_U: torch.Tensor, latent: int) -> torch.Tensor:
    """The direct effect on the logits of one unit of latent ``latent``: W_dec[latent] @ W_U,
    centred over the vocabulary (softmax ignores a constant). W_dec: [d_sae, d_model], W_U:
    [d_model, d_vocab] -> [d_vocab]."""
    if W_dec.ndim != 2 or W_U.ndim != 2 or W_dec.shape[1] != W_U.shape[0]:
        raise ValueError(f"need W_dec [d_sae, d_model] and W_U [d_model, d_vocab], got {list(W_dec.shape)} "
                         f"and {list(W_U.shape)}")
    check_latent(latent, W_dec.shape[0])
    e = W_dec[latent] @ W_U
    return e - e.mean()


def check_latent(latent: Any, d_sae: int) -> int:
    """Raise a clear error unless ``latent`` is an int index of one of ``d_sae`` latents."""
    if isinstance(latent, bool) or not isinstance(latent, (int, np.integer)):
        raise TypeError(f"latent must be an int index, got {type(latent).__name__}")
    if not 0 <= int(latent) < d_sae:
        raise ValueError(f"latent {latent} is out of range: this SAE has {d_sae} latents (0 to {d_sae - 1})")
    return int(latent)


def decoder_to_model(model: Any, hook_name: str, W_dec: torch.Tensor) -> torch.Tensor:
    """The SAE's decoder directions written into the residual stream: W_dec [d_sae, d_model] for
    residual-stream and MLP-output hooks; W_dec @ W_out for an MLP's hidden activations
    (``blocks.L.mlp.hook_post``). The path to the logits from there is taken as linear (the direct
    path: later blocks and the final LayerNorm's scale are ignored)."""
    if hook_name not in model.hook_dict:
        raise ValueError(f"the model has no hook {hook_name!r}")
    parts = hook_name.split(".")
    if hook_name.endswith("mlp.hook_post"):
        W_out = model.blocks[int(parts[1])].mlp.W_out  # [d_mlp, d_model]
        if W_dec.shape[1] != W_out.shape[0]:
            raise ValueError(f"the SAE is {W_dec.shape[1]} wide but {hook_name} is {W_out.shape[0]} wide")
        return W_dec @ W_out
    if not any(hook_name.endswith(s) for s in ("hook_resid_pre", "hook_resid_post", "hook_resid_mid",
                                                 "hook_mlp_out", "hook_attn_out")):
        raise ValueError(f"logit effects need a residual-stream, MLP-output or MLP-hidden hook, got {hook_name!r}")
    if W_dec.shape[1] != model.cfg.d_model:
        raise ValueError(f"the SAE is {W_dec.shape[1]} wide but the residual stream is {model.cfg.d_model}")
    return W_dec


# ------------------------------------------------------------------------------------------------
# Dashboard data


@dataclass
class LatentDashboard:
    """Everything one latent's dashboard shows."""

    latent: int
    values: np.ndarray  # [n_fired] the latent's non-zero activations
    n_tokens: int
    contexts: list[tuple[list[str], list[float], int]]  # (tokens, activations, index of the top token)
    top_logits: list[tuple[str, float]]
    bottom_logits: list[tuple[str, float]]
    concept: str  # best ground-truth concept ('' = none above the recall floor)
    score: float
    precision: float
    recall: float


def _context(tokens: list[str], prev: list[str], acts: np.ndarray, i: int, before: int, after: int
             ) -> tuple[list[str], list[float], int]:
    """Tokens around flat position i, clipped at the text's start and end (prev == '' starts a text)."""
    lo = i
    while lo > 0 and i - lo < before and prev[lo] != "":
        lo -= 1
    hi = i + 1
    while hi < len(tokens) and hi - i <= after and prev[hi] != "":
        hi += 1
    return show_tokens(tokens[lo:hi]), [float(a) for a in acts[lo:hi]], i - lo


def show_tokens(tokens: list[str]) -> list[str]:
    """Tokens as a reader should see them, whether byte-level (Ġ Ċ ĉ) or decoded (space, newline,
    tab): newlines as ↵ and tabs as ⇥, a byte-level space marker as ␣."""
    return [t.replace("\n", "↵").replace("\t", "⇥") for t in readable_tokens(tokens)]


def build_dashboard(latent: int, latents: torch.Tensor, tokens: list[str], prev: list[str],
                    effects: torch.Tensor, vocab: list[str], scores: Any | None = None, k: int = 8,
                    before: int = 12, after: int = 4, n_logits: int = 8) -> LatentDashboard:
    """The dashboard of ``latent`` from latent activations ``latents: [n_tokens, d_sae]`` over a token
    stream (``tokens``, ``prev``; see :class:`course_utils.saes.interp.LabelledActivations`),
    ``effects: [d_sae, d_vocab]`` (logit effects of every latent), the vocabulary strings, and
    optionally the :class:`course_utils.saes.interp.UnitScores` of these latents."""
    check_latent(latent, latents.shape[1])
    col = latents[:, latent].detach().float().cpu().numpy()
    fired = col[col != 0]
    order = np.argsort(-col, kind="stable")[:k]
    contexts = [_context(tokens, prev, col, int(i), before, after) for i in order if col[i] > 0]
    e = effects[latent].detach().float().cpu()
    n_logits = min(n_logits, len(e))
    top = e.topk(n_logits)
    bot = (-e).topk(n_logits)
    words = show_tokens([vocab[int(j)] for j in torch.cat([top.indices, bot.indices])])
    top_l = [(w, float(v)) for w, v in zip(words[:n_logits], top.values)]
    bot_l = [(w, -float(v)) for w, v in zip(words[n_logits:], bot.values)]
    if scores is None:
        concept, s, p, r = "", 0.0, 0.0, 0.0
    else:
        concept, s = scores.best[latent], float(scores.score[latent])
        p, r = float(scores.precision[latent]), float(scores.recall[latent])
    return LatentDashboard(latent, fired, len(col), contexts, top_l, bot_l, concept, s, p, r)


# ------------------------------------------------------------------------------------------------
# Rendering


def _red(a: float, vmax: float) -> str:
    alpha = 0.0 if vmax <= 0 else max(0.0, min(1.0, a / vmax))
    return f"rgba(214,39,40,{alpha:.2f})"


def context_html(tokens: list[str], acts: list[float], focus: int, vmax: float) -> str:
    """One context as HTML: each token on a red background proportional to its activation (hover:
    the value); the top token underlined."""
    spans = []
    for j, (t, a) in enumerate(zip(tokens, acts)):
        style_ = f"background:{_red(a, vmax)}" + (";border-bottom:2px solid black" if j == focus else "")
        spans.append(f'<span title="{a:.2f}" style="{style_}">{html.escape(t)}</span>')
    return ("<div style='line-height:1.7;overflow-wrap:anywhere;white-space:pre-wrap;font-family:monospace'>"
            + "".join(spans) + "</div>")


def _svg_histogram(values: np.ndarray, bins: int = 30, width: int = 300, height: int = 80) -> str:
    if len(values) == 0:
        return "<p><i>never fires on these tokens (dead here)</i></p>"
    counts, edges = np.histogram(values, bins=bins)
    top = counts.max() or 1
    w = width / bins
    bars = "".join(f'<rect x="{i * w:.1f}" y="{height - height * c / top:.1f}" width="{w - 1:.1f}" '
                   f'height="{height * c / top:.1f}" fill="#d62728"><title>{edges[i]:.2f}–{edges[i + 1]:.2f}: '
                   f'{c}</title></rect>' for i, c in enumerate(counts))
    return (f'<svg width="{width}" height="{height + 14}" role="img" aria-label="activation histogram">'
            f'{bars}<text x="0" y="{height + 12}" font-size="10">{edges[0]:.2f}</text>'
            f'<text x="{width}" y="{height + 12}" font-size="10" text-anchor="end">{edges[-1]:.2f}</text></svg>')


BACKENDS = ("html", "circuitsvis")
_CONTEXT_KEY = {"html": "activation as red; the top token underlined",
                "circuitsvis": "drawn by circuitsvis: activation as blue, hover a token for its value"}


def contexts_html(d: LatentDashboard, backend: str = "html") -> str:
    """The dashboard's top-activating contexts as HTML, largest first, drawn offline by ``backend``:
    ``"html"`` (the course's spans, :func:`context_html`; no script) or ``"circuitsvis"`` (its
    ``TopkSamples`` element with its bundled JavaScript inlined, about 1.3 MB; needs the ``[lm]``
    extra). Tokens are HTML-escaped for both: circuitsvis writes each token as raw HTML."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "html" or not d.contexts:
        vmax = max((max(a) for _, a, _ in d.contexts), default=1.0)
        ctx = "".join(f"<li>{context_html(t, a, f, vmax)}</li>" for t, a, f in d.contexts) or "<li>none</li>"
        return f"<ol>{ctx}</ol>"
    cv = require("circuitsvis", purpose="dashboard contexts drawn with circuitsvis (backend='circuitsvis')")
    tokens = [[[[html.escape(t, quote=False) for t in toks] for toks, _, _ in d.contexts]]]  # [1, 1, k, len]
    acts = [[[list(a) for _, a, _ in d.contexts]]]
    rendered = cv.topk_samples.topk_samples(
        tokens=tokens, activations=acts, zeroth_dimension_name="Contexts",
        zeroth_dimension_labels=["top-activating"], first_dimension_name="Latent",
        first_dimension_labels=[str(d.latent)])
    return _closed_container(rendered.local_src)  # never show `rendered`: it would probe the network


def _closed_container(src: str) -> str:
    """circuitsvis writes the element's container as ``<div id=… />``, which HTML parses as an open
    tag: what follows (the logit table) would fall inside the element, and React clears the element's
    children when it draws. Write the container closed."""
    head, sep, rest = src.partition("/>")
    if sep and head.startswith("<div ") and ">" not in head:
        return f"{head}></div>{rest}"
    return src


def dashboard_html(d: LatentDashboard, backend: str = "html") -> str:
    """The dashboard as one self-contained HTML block: inline SVG, contexts by :func:`contexts_html`
    (``backend="html"``: no scripts; ``"circuitsvis"``: one inlined script, for a live notebook)."""
    ctx = contexts_html(d, backend)
    freq = len(d.values) / max(d.n_tokens, 1)
    concept = (f"<b>{html.escape(d.concept)}</b>: score {d.score:.2f} (precision {d.precision:.2f}, "
               f"recall {d.recall:.2f})" if d.concept else "none with recall ≥ the floor")
    logits = "".join(f"<tr><td style='font-family:monospace'>{html.escape(a)}</td><td>{va:+.2f}</td>"
                     f"<td style='font-family:monospace'>{html.escape(b)}</td><td>{vb:+.2f}</td></tr>"
                     for (a, va), (b, vb) in zip(d.top_logits, d.bottom_logits))
    return (f"<div style='max-width:44em'><h4>Latent {d.latent}</h4>"
            f"<p>fires on {freq:.2%} of {d.n_tokens:,} tokens; best ground-truth concept: {concept}</p>"
            f"<p>Activation histogram (non-zero values)</p>{_svg_histogram(d.values)}"
            f"<p>Top-activating contexts ({_CONTEXT_KEY[backend]})</p>{ctx}"
            f"<p>Logit effects (direct path, centred): most promoted | most suppressed</p>"
            f"<table><tr><th>token</th><th>effect</th><th>token</th><th>effect</th></tr>{logits}</table></div>")


def plot_activation_histogram(d: LatentDashboard, bins: int = 40) -> go.Figure:
    """Histogram of one latent's non-zero activations (a plotly figure)."""
    fig = go.Figure(go.Histogram(x=d.values, nbinsx=bins, marker_color="#d62728"))
    fig.update_xaxes(title="activation (where non-zero)")
    fig.update_yaxes(title="tokens")
    return style(fig, f"Latent {d.latent}: activations on the {len(d.values):,} tokens where it fires", 300)


def plot_firing_histogram(freqs: dict[str, torch.Tensor], floor: float = 1e-5) -> go.Figure:
    """Histograms of log10 firing frequency, one trace per SAE (dead latents drawn at log10 ``floor``)."""
    fig = go.Figure()
    for name, f in freqs.items():
        f = f.detach().double().cpu().clamp_min(floor).log10().numpy()
        fig.add_trace(go.Histogram(x=f, name=name, opacity=0.6, xbins=dict(size=0.1)))
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title=f"log10 firing frequency (dead latents at {np.log10(floor):.0f})")
    fig.update_yaxes(title="latents")
    return style(fig, "Firing frequencies on validation text", 360)


def dashboard_widget(make: Any, d_sae: int, value: int = 0, scripts: bool = False) -> Any:
    """A live latent-id box that redraws ``make(latent) -> html`` (a notebook widget).

    ``scripts=True`` for HTML whose scripts must run (``dashboard_html(..., backend="circuitsvis")``):
    it is shown as a display output inside an ``ipywidgets.Output``, which the notebook renders like
    any cell output; an ``ipywidgets.HTML`` sets the page's innerHTML, where scripts never run."""
    import ipywidgets as widgets

    box = widgets.BoundedIntText(value=value, min=0, max=d_sae - 1, description="latent id")
    out = widgets.Output() if scripts else widgets.HTML()

    def draw(latent: int) -> None:
        page = make(latent)
        if scripts:
            out.outputs = ({"output_type": "display_data", "metadata": {},
                            "data": {"text/html": page, "text/plain": f"dashboard of latent {latent}"}},)
        else:
            out.value = page

    draw(value)
    box.observe(lambda change: draw(int(change["new"])), names="value")
    return widgets.VBox([box, out])
