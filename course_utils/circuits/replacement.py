"""The local replacement model of one prompt (Ameisen et al. 2025, "Circuit Tracing", §2.2).

On a fixed prompt the course model is made *linear* in a set of source vectors:

* every attention pattern (``blocks.L.attn.hook_pattern``) and every LayerNorm denominator
  (``*.hook_scale``) is replaced by its value on the prompt (frozen constants, no gradient);
* every MLP output (the transcoder's ``cfg.hook_name_out``) is replaced by
  ``acts @ W_dec + b_dec + x @ W_skip + error``, where ``acts`` are the transcoder's feature activations
  on the prompt (frozen), ``x`` is the live MLP input (``cfg.hook_name``), and
  ``error = mlp_out − transcoder(x)`` is the part the transcoder misses (an *error node* per layer and
  position, frozen).

With these substitutions the replacement model reproduces the model's logits on that prompt exactly
(up to float rounding), and every remaining path from a source (token embedding, feature output, error)
to a target (a feature's pre-activation ``x · W_enc[:, i]``, a logit) is linear: the values, keys and
queries' *values* path, residual additions, the skip paths and the unembedding. Attention patterns are
not explained (QK is frozen), which is one thing an attribution graph misses.

The token node of a position carries the token *and* the positional embedding
(``blocks.0.hook_resid_pre``); the model's biases (``b_O``, ``b_dec``, LayerNorm ``b``, ``b_U``) are
constants, not nodes.

Public: :class:`LocalReplacement`, :func:`build_replacement`, :func:`frozen_forward`,
:func:`source_gradients`, :func:`freeze_hooks`, :func:`check_transcoders`, :func:`prompt_tokens`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

Hook = tuple[str, Callable[..., torch.Tensor]]

_IN = re.compile(r"^blocks\.(\d+)\.")


class ReplacementError(ValueError):
    """Transcoders that do not fit the model, or a prompt the model cannot read."""


# ------------------------------------------------------------------------------------------------
# Argument checks


def prompt_tokens(prompt: object, tokenizer: Any = None, n_ctx: int | None = None) -> torch.Tensor:
    """Token ids ``[n]`` (long) of a prompt given as text (with ``tokenizer``) or as ids ``[n]`` /
    ``[1, n]``; raises on an empty prompt or one longer than ``n_ctx``."""
    if isinstance(prompt, str):
        if tokenizer is None:
            raise TypeError("a text prompt needs the tokenizer (tokenizer=...)")
        if not prompt:
            raise ValueError("the prompt is empty: give at least one token")
        ids = torch.tensor(tokenizer.encode(prompt).ids, dtype=torch.long)
    elif isinstance(prompt, torch.Tensor):
        if prompt.dtype != torch.long:
            raise TypeError(f"token ids must be a long tensor, got {prompt.dtype}")
        if prompt.ndim == 2 and prompt.shape[0] == 1:
            prompt = prompt[0]
        if prompt.ndim != 1:
            raise ValueError(f"token ids must have shape [n] or [1, n], got {list(prompt.shape)}")
        ids = prompt
    else:
        raise TypeError(f"prompt must be a str or a long tensor of token ids, got {type(prompt).__name__}")
    if len(ids) == 0:
        raise ValueError("the prompt is empty: give at least one token")
    if n_ctx is not None and len(ids) > n_ctx:
        raise ValueError(f"the prompt is {len(ids)} tokens long but the model's context is {n_ctx} "
                         "tokens; shorten it")
    return ids


def check_transcoders(model: Any, transcoders: Sequence[Any]) -> list[Any]:
    """One transcoder per MLP layer, in layer order, reading ``blocks.L.*`` and writing
    ``blocks.L.hook_mlp_out`` with the model's width; returns them as a list."""
    if not isinstance(transcoders, (list, tuple)):
        raise TypeError(f"transcoders must be a list with one transcoder per layer, got "
                        f"{type(transcoders).__name__}")
    n_layers, d_model = model.cfg.n_layers, model.cfg.d_model
    if len(transcoders) != n_layers:
        raise ReplacementError(f"the model has {n_layers} MLP layers; give one transcoder per layer "
                               f"(got {len(transcoders)})")
    for layer, tc in enumerate(transcoders):
        cfg = getattr(tc, "cfg", None)
        for name in ("hook_name", "hook_name_out", "d_in", "d_out", "d_sae"):
            if not hasattr(cfg, name):
                raise TypeError(f"transcoder {layer} has no cfg.{name}: is it a course transcoder?")
        m_in, m_out = _IN.match(cfg.hook_name), _IN.match(cfg.hook_name_out)
        if m_in is None or int(m_in.group(1)) != layer or cfg.hook_name not in model.hook_dict:
            raise ReplacementError(f"transcoder {layer} reads {cfg.hook_name!r}; expected a hook of "
                                   f"block {layer} (e.g. 'blocks.{layer}.ln2.hook_normalized')")
        if m_out is None or cfg.hook_name_out != f"blocks.{layer}.hook_mlp_out":
            raise ReplacementError(f"transcoder {layer} writes {cfg.hook_name_out!r}; expected "
                                   f"'blocks.{layer}.hook_mlp_out'")
        if cfg.d_in != d_model or cfg.d_out != d_model:
            raise ReplacementError(f"transcoder {layer} maps {cfg.d_in} -> {cfg.d_out} dimensions but "
                                   f"the model's MLP maps {d_model} -> {d_model}")
    return list(transcoders)


# ------------------------------------------------------------------------------------------------
# The prompt's frozen quantities


@dataclass
class LocalReplacement:
    """Everything the replacement model freezes on one prompt (``n`` tokens, layer ``L``).

    tokens ``[n]``; patterns[L] ``[1, n_heads, n, n]``; scales[hook] ``[1, n, 1]``; embed ``[n, d_model]``
    (token + position); x_in[L] ``[n, d_in]``; mlp_out[L] ``[n, d_out]``; acts[L] ``[n, d_sae]``;
    errors[L] ``[n, d_out]``; logits ``[n, d_vocab]`` (the model's own).
    """

    transcoders: list[Any]
    tokens: torch.Tensor
    patterns: list[torch.Tensor]
    scales: dict[str, torch.Tensor]
    embed: torch.Tensor
    x_in: list[torch.Tensor]
    mlp_out: list[torch.Tensor]
    acts: list[torch.Tensor]
    errors: list[torch.Tensor]
    logits: torch.Tensor

    @property
    def n_layers(self) -> int:
        return len(self.transcoders)

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)


@torch.no_grad()
def build_replacement(model: Any, transcoders: Sequence[Any], prompt: object,
                      tokenizer: Any = None) -> LocalReplacement:
    """Run the model once on ``prompt`` and freeze what the local replacement model needs."""
    tcs = check_transcoders(model, transcoders)
    tokens = prompt_tokens(prompt, tokenizer, model.cfg.n_ctx)
    names = {"blocks.0.hook_resid_pre"} | {h for h in model.hook_dict if h.endswith("hook_scale")}
    names |= {f"blocks.{layer}.attn.hook_pattern" for layer in range(len(tcs))}
    names |= {tc.cfg.hook_name for tc in tcs} | {tc.cfg.hook_name_out for tc in tcs}
    logits, cache = model.run_with_cache(tokens[None], names_filter=lambda h: h in names)
    x_in = [cache[tc.cfg.hook_name][0].float() for tc in tcs]
    mlp_out = [cache[tc.cfg.hook_name_out][0].float() for tc in tcs]
    acts = [tc.encode(x) for tc, x in zip(tcs, x_in)]
    errors = [y - tc.decode(a, x) for tc, x, y, a in zip(tcs, x_in, mlp_out, acts)]
    return LocalReplacement(
        transcoders=tcs, tokens=tokens,
        patterns=[cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(len(tcs))],
        scales={h: cache[h] for h in names if h.endswith("hook_scale")},
        embed=cache["blocks.0.hook_resid_pre"][0], x_in=x_in, mlp_out=mlp_out, acts=acts, errors=errors,
        logits=logits[0])


# ------------------------------------------------------------------------------------------------
# Hooks and the frozen forward


def freeze_hooks(patterns: Sequence[torch.Tensor], scales: dict[str, torch.Tensor]) -> list[Hook]:
    """Hooks that replace every attention pattern and LayerNorm scale by its frozen value (detached,
    broadcast to the batch): patterns[L] ``[1, heads, n, n]``, scales[hook] ``[1, n, 1]``."""
    def const(value: torch.Tensor) -> Callable[..., torch.Tensor]:
        return lambda t, hook: value.detach().to(t.dtype).expand(t.shape)

    hooks: list[Hook] = [(f"blocks.{layer}.attn.hook_pattern", const(p)) for layer, p in enumerate(patterns)]
    return hooks + [(name, const(s)) for name, s in scales.items()]


def _as_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    return t.expand(batch, *t.shape) if t.ndim == 2 else t


def frozen_forward(model: Any, rep: LocalReplacement, *, batch: int = 1,
                   embed: torch.Tensor | None = None, acts: Sequence[torch.Tensor] | None = None,
                   errors: Sequence[torch.Tensor] | None = None,
                   deltas: Sequence[torch.Tensor] | None = None
                   ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The replacement model's forward pass: (x_in per layer ``[batch, n, d_in]``, logits
    ``[batch, n, d_vocab]``).

    ``embed`` ``[n, d]`` or ``[batch, n, d]``, ``acts[L]`` ``[(batch,) n, d_sae]`` and ``errors[L]``
    ``[(batch,) n, d_out]`` replace the prompt's values (interventions; default: the frozen ones).
    ``deltas`` (length ``n_layers + 1``, each ``[batch, n, d_model]``) are added to the embedding and to
    each MLP output: pass zero tensors that require grad to read gradients at the source sites.
    """
    tcs = rep.transcoders
    embed = rep.embed if embed is None else embed
    acts = rep.acts if acts is None else acts
    errors = rep.errors if errors is None else errors
    if len(acts) != len(tcs) or len(errors) != len(tcs):
        raise ValueError(f"acts and errors need one tensor per layer ({len(tcs)})")
    if deltas is not None and len(deltas) != len(tcs) + 1:
        raise ValueError(f"deltas needs n_layers + 1 = {len(tcs) + 1} tensors (embedding, then each MLP)")
    live: dict[int, torch.Tensor] = {}

    def set_embed(t: torch.Tensor, hook: Any) -> torch.Tensor:
        out = _as_batch(embed, batch).to(t.dtype)
        return out + deltas[0] if deltas is not None else out

    def read_input(layer: int) -> Callable[..., torch.Tensor]:
        def fn(t: torch.Tensor, hook: Any) -> torch.Tensor:
            live[layer] = t
            return t
        return fn

    def write_output(layer: int) -> Callable[..., torch.Tensor]:
        tc = tcs[layer]

        def fn(t: torch.Tensor, hook: Any) -> torch.Tensor:
            out = acts[layer] @ tc.W_dec + tc.b_dec + errors[layer]  # frozen part [(batch,) n, d_out]
            if tc.W_skip is not None:
                out = out + live[layer] @ tc.W_skip  # the skip path stays live (linear)
            out = _as_batch(out, batch) if out.ndim == 2 else out
            return out + deltas[layer + 1] if deltas is not None else out.expand(t.shape)
        return fn

    hooks = freeze_hooks(rep.patterns, rep.scales) + [("blocks.0.hook_resid_pre", set_embed)]
    for layer, tc in enumerate(tcs):
        hooks += [(tc.cfg.hook_name, read_input(layer)), (tc.cfg.hook_name_out, write_output(layer))]
    logits = model.run_with_hooks(rep.tokens[None].expand(batch, -1), fwd_hooks=hooks)
    return [live[layer] for layer in range(len(tcs))], logits


def centred_logits(logits: torch.Tensor) -> torch.Tensor:
    """Logits minus their mean over the vocabulary (the quantity logit nodes explain)."""
    return logits - logits.mean(-1, keepdim=True)


def target_pre_acts(rep: LocalReplacement, x_in: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The linear part of each transcoder's pre-activation, ``x_in[L] @ W_enc``: ``[..., n, d_sae]``."""
    return [x @ tc.W_enc for tc, x in zip(rep.transcoders, x_in)]


# ------------------------------------------------------------------------------------------------
# The backward pass of the frozen linear path, written out (fast: no query/key, no MLP, no full
# unembedding, no layer above the targets)


def _frozen_ln(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """LayerNorm's normalisation with its denominator frozen: (x − mean x) / scale (no affine part)."""
    return (x - x.mean(-1, keepdim=True)) / scale


def _ln_back(g: torch.Tensor, scale: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """The input gradient of a frozen LayerNorm y = (x − mean x) / scale (· w) for output gradient g."""
    h = (g * w if w is not None else g) / scale
    return h - h.mean(-1, keepdim=True)


def source_gradients(model: Any, rep: LocalReplacement, top: int, g_x_in: torch.Tensor | None = None,
                     g_final: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The backward pass of :func:`frozen_forward` written out (a vector-Jacobian product): gradients
    ``[batch, n, d_model]`` at the embedding and at each MLP output (``n_layers + 1`` tensors) of
    ``Σ g_x_in · x_in[top]`` (a batch of feature targets in layer ``top``) or, with ``top == n_layers``,
    of ``Σ g_final · final`` (logit targets; ``final`` is the last LayerNorm's output, logits =
    final @ W_U + b_U). Layers above ``top`` are never visited, which is what makes a graph's edges
    cheap: a layer-0 target costs one attention layer."""
    n_layers, scales = rep.n_layers, rep.scales
    ref = g_x_in if g_x_in is not None else g_final
    if ref is None or (top == n_layers) != (g_final is not None):
        raise ValueError("give g_x_in for feature targets (top < n_layers) or g_final for logits")
    grads = [torch.zeros_like(ref) for _ in range(n_layers + 1)]
    g = _ln_back(g_final, scales["ln_final.hook_scale"][0], model.ln_final.w) if g_final is not None else None
    for layer in range(min(top, n_layers - 1), -1, -1):
        block, tc = model.blocks[layer], rep.transcoders[layer]
        if layer == top:  # the targets' own layer: the gradient enters at the MLP input
            g_x, g_rm = g_x_in, torch.zeros_like(ref)
        else:  # resid_{L+1} = rm + mlp_out(x_in(rm)) + delta_{L+1}
            grads[layer + 1] = g
            g_x = g @ tc.W_skip.T if tc.W_skip is not None else None
            g_rm = g
        if g_x is not None:
            g_rm = g_rm + _ln_back(g_x, scales[f"blocks.{layer}.ln2.hook_scale"][0])
        # rm = resid + Σ_h P_h (ln1(resid) W_V[h] + b_V[h]) W_O[h] + b_O
        g_z = torch.einsum("bqd,hed->bqhe", g_rm, block.attn.W_O)
        g_v = torch.einsum("hqk,bqhe->bkhe", rep.patterns[layer][0], g_z)
        g_a = torch.einsum("bkhe,hde->bkd", g_v, block.attn.W_V)
        g = g_rm + _ln_back(g_a, scales[f"blocks.{layer}.ln1.hook_scale"][0], block.ln1.w)
    grads[0] = g
    return grads


def course_transcoders(variant: str = "skip-topk-1024", model: Any = None, path: Any = None) -> list[Any]:
    """The shipped per-layer transcoders of one variant (``"topk-1024"``, ``"skip-topk-1024"``,
    ``"jumprelu-1024"``, ``"skip-jumprelu-1024"``), one per layer of the course model, checked against
    ``model`` when given (:func:`course_utils.circuits.course.load_course_transcoder`; ``path``: another
    folder in the shipped layout)."""
    from course_utils.circuits.course import COURSE_TRANSCODER_DIR, load_course_transcoder

    n_layers = model.cfg.n_layers if model is not None else 2
    folder = COURSE_TRANSCODER_DIR if path is None else path
    return [load_course_transcoder(f"mlp{layer}-{variant}", model, folder) for layer in range(n_layers)]
