"""Evaluating transcoders inside the course model: replace MLP outputs, measure what the model loses.

The definitions are chapter 4's (:mod:`course_utils.saes.evals`), with the spliced activation being
an MLP's *output* predicted from its *input*:

- CE loss recovered, zero ablation: (CE_zero − CE_tc) / (CE_zero − CE_clean), where CE_tc replaces the
  MLP output(s) by the transcoder's prediction and CE_zero replaces them by zeros; mean ablation
  replaces them by their mean over the evaluation tokens instead. KL(p_clean ‖ p_tc) per position.
- FVU of the MLP output = 1 − explained variance, E‖y − ŷ‖² / (E‖y‖² − ‖E y‖²), in float64, with ŷ
  predicted from the *clean* MLP input (the transcoder alone, not the errors of earlier replacements).
- L0 = mean number of active features per token (per source layer for a CLT), dead fraction = share of
  features that never fire on the evaluation tokens.

Replacing several layers (two per-layer transcoders, or a CLT): the hooks run in the model's forward
order, so a layer's transcoder reads that layer's input *after* the earlier replacements (the usual
splice evaluation); a CLT's layer-``t`` output sums the features of every source layer ``s <= t``
computed from the replaced model's inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from course_utils.circuits.clt import CrossLayerTranscoder
from course_utils.circuits.transcoders import Transcoder
from course_utils.saes.evals import ExplainedVariance, _check_tokens, constant_hook, kl_per_position

Replacement = dict[int, Transcoder] | CrossLayerTranscoder


def _layers(rep: Replacement) -> list[int]:
    if isinstance(rep, CrossLayerTranscoder):
        return list(range(rep.cfg.n_layers))
    if not isinstance(rep, dict) or not rep or not all(isinstance(t, Transcoder) for t in rep.values()):
        raise TypeError("replacement must be a CrossLayerTranscoder or a non-empty dict {layer: transcoder}")
    return sorted(rep)


def _hooks_of(rep: Replacement, layer: int) -> tuple[str, str]:
    if isinstance(rep, CrossLayerTranscoder):
        return rep.cfg.hook_names[layer], rep.cfg.hook_names_out[layer]
    return rep[layer].cfg.hook_name, rep[layer].cfg.hook_name_out


def check_fits(model: Any, rep: Replacement) -> None:
    """Raise ValueError when a hook is missing or a width differs from the model's (wrong layer/model)."""
    if isinstance(rep, CrossLayerTranscoder):
        if rep.cfg.n_layers != model.cfg.n_layers:
            raise ValueError(f"the CLT has {rep.cfg.n_layers} layers but the model has {model.cfg.n_layers}")
        if len(rep.cfg.hook_names) != rep.cfg.n_layers or len(rep.cfg.hook_names_out) != rep.cfg.n_layers:
            raise ValueError("the CLT's config names no hooks (hook_names / hook_names_out are empty)")
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.zeros(1, 1, dtype=torch.long))
    for layer in _layers(rep):
        if not all(h.startswith(f"blocks.{layer}.") for h in _hooks_of(rep, layer)):
            raise ValueError(f"layer {layer}: the transcoder's hooks {_hooks_of(rep, layer)} belong to another "
                             "layer: wrong layer")
        widths = (rep.cfg.d_in, rep.cfg.d_out) if isinstance(rep, CrossLayerTranscoder) else \
            (rep[layer].cfg.d_in, rep[layer].cfg.d_out)
        for hook, width, what in zip(_hooks_of(rep, layer), widths, ("reads", "writes"), strict=True):
            if hook not in model.hook_dict:
                raise ValueError(f"layer {layer}: the model has no hook {hook!r} (it has {model.cfg.n_layers} "
                                 "layers; hooks look like 'blocks.0.ln2.hook_normalized')")
            if cache[hook].shape[-1] != width:
                raise ValueError(f"layer {layer}: the transcoder {what} {width}-wide activations but {hook} is "
                                 f"{cache[hook].shape[-1]} wide in this model: wrong layer, hook or model")


def replacement_hooks(rep: Replacement) -> list[tuple[str, Any]]:
    """TransformerLens forward hooks that replace each replaced layer's MLP output by the prediction."""
    store: dict[int, torch.Tensor] = {}
    hooks: list[tuple[str, Any]] = []
    for layer in _layers(rep):
        h_in, h_out = _hooks_of(rep, layer)

        def grab(act: torch.Tensor, hook: Any = None, layer: int = layer) -> None:  # noqa: ARG001
            if isinstance(rep, CrossLayerTranscoder):
                store[layer] = rep.encode_layer(act.to(rep.W_dec.dtype), layer)
            else:
                store[layer] = act.to(rep[layer].W_dec.dtype)

        def put(act: torch.Tensor, hook: Any = None, layer: int = layer) -> torch.Tensor:  # noqa: ARG001
            if isinstance(rep, CrossLayerTranscoder):
                out = rep.b_dec[layer] + sum(store[s] @ rep.W_dec[s, layer] for s in range(layer + 1))
            else:
                out = rep[layer](store[layer])
            return out.to(act.dtype)

        hooks += [(h_in, grab), (h_out, put)]
    return hooks


@dataclass
class ReplacementBaselines:
    """Clean and ablated per-token losses with the output hooks ``hooks`` ablated together."""

    hooks: tuple[str, ...]
    ce_clean: torch.Tensor
    ce_zero: torch.Tensor
    ce_mean: torch.Tensor
    kl_zero: torch.Tensor
    kl_mean: torch.Tensor
    mean_acts: dict[str, torch.Tensor]


@torch.no_grad()
def replacement_baselines(model: Any, hooks: list[str] | tuple[str, ...], tokens: torch.Tensor,
                          batch_size: int = 16) -> ReplacementBaselines:
    """CE and KL of the clean model and with every hook in ``hooks`` zero- or mean-ablated at once."""
    tokens = _check_tokens(tokens)
    hooks = tuple(hooks)
    for h in hooks:
        if h not in model.hook_dict:
            raise ValueError(f"the model has no hook {h!r}")
    sums: dict[str, torch.Tensor] = {}
    n = 0
    for i in range(0, len(tokens), batch_size):
        _, cache = model.run_with_cache(tokens[i:i + batch_size], names_filter=list(hooks))
        for h in hooks:
            a = cache[h].double().reshape(-1, cache[h].shape[-1])
            sums[h] = a.sum(0) + sums.get(h, 0)
        n += tokens[i:i + batch_size].numel()
    means = {h: (s / n).float() for h, s in sums.items()}
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("ce_clean", "ce_zero", "ce_mean", "kl_zero", "kl_mean")}
    for i in range(0, len(tokens), batch_size):
        t = tokens[i:i + batch_size]
        logits, ce = model(t, return_type="both", loss_per_token=True)
        parts["ce_clean"].append(ce.flatten())
        for name in ("zero", "mean"):
            fwd = [(h, constant_hook(means[h] if name == "mean" else torch.zeros_like(means[h]))) for h in hooks]
            new, ce_new = model.run_with_hooks(t, return_type="both", loss_per_token=True, fwd_hooks=fwd)
            parts[f"ce_{name}"].append(ce_new.flatten())
            parts[f"kl_{name}"].append(kl_per_position(logits, new).flatten())
    cat = {k: torch.cat(v) for k, v in parts.items()}
    return ReplacementBaselines(hooks, cat["ce_clean"], cat["ce_zero"], cat["ce_mean"], cat["kl_zero"],
                                cat["kl_mean"], means)


def _clean_stats(model: Any, rep: Replacement, tokens: torch.Tensor, batch_size: int) -> dict[str, Any]:
    """FVU per layer, L0 and firing counts per layer, from the clean inputs and outputs."""
    layers = _layers(rep)
    names = [h for layer in layers for h in _hooks_of(rep, layer)]
    ev = {layer: ExplainedVariance() for layer in layers}
    fired: dict[int, torch.Tensor] = {}
    l0 = dict.fromkeys(layers, 0.0)
    n = 0
    for i in range(0, len(tokens), batch_size):
        _, cache = model.run_with_cache(tokens[i:i + batch_size], names_filter=names)
        if isinstance(rep, CrossLayerTranscoder):
            x = torch.stack([cache[rep.cfg.hook_names[s]] for s in layers], -2)  # [b, seq, L, d_in]
            x = x.reshape(-1, len(layers), rep.cfg.d_in).to(rep.W_dec.dtype)
            acts = rep.encode(x)
            y_hat = rep.decode(acts)
            per = {s: (acts[:, s], y_hat[:, s]) for s in layers}
        else:
            per = {}
            for s in layers:
                tc = rep[s]
                x = cache[tc.cfg.hook_name].reshape(-1, tc.cfg.d_in).to(tc.W_dec.dtype)
                a = tc.encode(x)
                per[s] = (a, tc.decode(a, x))
        for s, (a, y_hat) in per.items():
            y = cache[_hooks_of(rep, s)[1]].reshape(len(a), -1)
            ev[s].add(y, y_hat)
            nz = a != 0
            l0[s] += float(nz.sum())
            fired[s] = nz.sum(0) + fired.get(s, 0)
        n += len(per[layers[0]][0])
    return {"fvu": {s: 1.0 - ev[s].compute() for s in layers}, "l0": {s: l0[s] / n for s in layers},
            "dead_fraction": {s: float((fired[s] == 0).double().mean()) for s in layers}, "n_tokens": n}


@torch.no_grad()
def evaluate_replacement(model: Any, rep: Replacement, tokens: torch.Tensor, batch_size: int = 16,
                         base: ReplacementBaselines | None = None, digits: int = 4) -> dict[str, Any]:
    """The module docstring's metrics for replacing the MLP output of every layer ``rep`` covers (a
    ``{layer: transcoder}`` dict or a CLT) on ``tokens: [batch, seq]``; a dict of rounded numbers
    (per-layer entries keyed ``"0"``, ``"1"``, ...)."""
    tokens = _check_tokens(tokens)
    check_fits(model, rep)
    layers = _layers(rep)
    outs = tuple(_hooks_of(rep, s)[1] for s in layers)
    if base is None:
        base = replacement_baselines(model, outs, tokens, batch_size)
    elif base.hooks != outs or len(base.ce_clean) != tokens.shape[0] * (tokens.shape[1] - 1):
        raise ValueError("base was computed for other hooks or other tokens")
    modules = [rep] if isinstance(rep, CrossLayerTranscoder) else list(rep.values())
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    ce, kl = [], []
    for i in range(0, len(tokens), batch_size):
        t = tokens[i:i + batch_size]
        logits = model(t)
        new, ce_new = model.run_with_hooks(t, return_type="both", loss_per_token=True,
                                           fwd_hooks=replacement_hooks(rep))
        ce.append(ce_new.flatten())
        kl.append(kl_per_position(logits, new).flatten())
    stats = _clean_stats(model, rep, tokens, batch_size)
    for m, mode in zip(modules, modes, strict=True):
        m.train(mode)
    c_clean, c_tc = float(base.ce_clean.mean()), float(torch.cat(ce).mean())
    c_zero, c_mean = float(base.ce_zero.mean()), float(base.ce_mean.mean())
    r = round
    return {
        "ce_recovered_zero": r((c_zero - c_tc) / (c_zero - c_clean), digits),
        "ce_recovered_mean": r((c_mean - c_tc) / (c_mean - c_clean), digits),
        "delta_loss": r(c_tc - c_clean, digits), "kl": r(float(torch.cat(kl).mean()), digits),
        "ce_clean": r(c_clean, digits), "ce_replaced": r(c_tc, digits), "ce_zero": r(c_zero, digits),
        "ce_mean": r(c_mean, digits),
        "fvu": {str(s): r(v, digits) for s, v in stats["fvu"].items()},
        "l0": {str(s): r(v, digits) for s, v in stats["l0"].items()},
        "dead_fraction": {str(s): r(v, digits) for s, v in stats["dead_fraction"].items()},
        "n_tokens": stats["n_tokens"],
    }
