"""Evaluating an SAE inside the model: splice it in at its hook and measure what the model loses.

Definitions (the same as ``sae_lens.evals.run_evals`` 6.54.12, which a test checks on the same SAE and
tokens; CE and KL are averaged over every predicted position of every window):

- CE loss recovered, zero ablation: (CE_zero − CE_sae) / (CE_zero − CE_clean), the activation replaced
  by zeros for CE_zero (sae-lens's ``ce_loss_score``). Mean ablation: the same with the activation
  replaced by its mean over the evaluation tokens (a harder baseline: the mean keeps what is constant).
- ΔL = CE_sae − CE_clean (nats per token).
- KL = KL(p_clean ‖ p_sae) of the next-token distributions per position; KL score =
  (KL_zero − KL_sae) / KL_zero.
- Explained variance = 1 − E‖x − x̂‖² / (E‖x‖² − ‖E x‖²) over all tokens, summed in float64
  (sae-lens's ``explained_variance``); FVU = 1 − explained variance.
- L0 = mean number of non-zero latents per token; firing frequency of a latent = fraction of tokens on
  which it is non-zero; dead = never fires on these tokens; dense = fires on more than
  ``dense_threshold`` (default 10%) of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from course_utils.saes.base import SAE

Hook = Callable[[torch.Tensor, Any], torch.Tensor]


def splice_hook(sae: SAE) -> Hook:
    """A TransformerLens forward hook replacing the activation ``[..., d_in]`` with ``sae(x)``."""

    def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:  # noqa: ARG001
        x = act.reshape(-1, act.shape[-1]).to(sae.W_dec.dtype)
        return sae(x).reshape(act.shape).to(act.dtype)

    return hook


def constant_hook(value: torch.Tensor) -> Hook:
    """A hook replacing the activation with ``value: [d]`` at every position (zero / mean ablation)."""

    def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:  # noqa: ARG001
        return value.to(act).expand_as(act).clone()

    return hook


def kl_per_position(clean_logits: torch.Tensor, new_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_clean ‖ p_new) per position: logits [batch, seq, vocab] -> [batch, seq]."""
    logp_clean = clean_logits.log_softmax(-1)
    logp_new = new_logits.log_softmax(-1)
    return (logp_clean.exp() * (logp_clean - logp_new)).sum(-1)


@dataclass
class Baselines:
    """Per-token losses of the clean model and of the two ablations at one hook, on fixed tokens."""

    hook_name: str
    ce_clean: torch.Tensor  # [n_predicted]
    ce_zero: torch.Tensor
    ce_mean: torch.Tensor
    kl_zero: torch.Tensor  # [n_positions]
    kl_mean: torch.Tensor
    mean_act: torch.Tensor  # [d]


def _check_tokens(tokens: object) -> torch.Tensor:
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.dtype != torch.long:
        raise ValueError("tokens must be a LongTensor [batch, seq] of token ids, got "
                         f"{getattr(tokens, 'shape', type(tokens).__name__)}")
    if tokens.shape[0] < 1:
        raise ValueError("tokens holds no rows: nothing to evaluate")
    if tokens.shape[1] < 2:
        raise ValueError(f"tokens must hold at least 2 positions per row to predict a token, got {tokens.shape[1]}")
    return tokens


def _check_hook(model: Any, hook_name: str) -> None:
    if hook_name not in model.hook_dict:
        raise ValueError(f"the model has no hook {hook_name!r}; e.g. 'blocks.0.mlp.hook_post'")


@torch.no_grad()
def mean_activation(model: Any, hook_name: str, tokens: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """The mean activation ``[d]`` at ``hook_name`` over every position of ``tokens``."""
    _check_hook(model, hook_name)
    tokens = _check_tokens(tokens)
    total, n = None, 0
    for i in range(0, len(tokens), batch_size):
        _, cache = model.run_with_cache(tokens[i:i + batch_size], names_filter=hook_name)
        a = cache[hook_name].double()
        a = a.reshape(-1, a.shape[-1])
        total = a.sum(0) if total is None else total + a.sum(0)
        n += len(a)
    return (total / n).float()


@torch.no_grad()
def baselines(model: Any, hook_name: str, tokens: torch.Tensor, batch_size: int = 16,
              mean_act: torch.Tensor | None = None) -> Baselines:
    """Clean, zero-ablated and mean-ablated losses at ``hook_name`` on ``tokens: [batch, seq]``."""
    tokens = _check_tokens(tokens)
    _check_hook(model, hook_name)
    mean_act = mean_activation(model, hook_name, tokens, batch_size) if mean_act is None else mean_act
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("ce_clean", "ce_zero", "ce_mean", "kl_zero", "kl_mean")}
    for i in range(0, len(tokens), batch_size):
        t = tokens[i:i + batch_size]
        logits, ce = model(t, return_type="both", loss_per_token=True)
        parts["ce_clean"].append(ce.flatten())
        for name, value in (("zero", torch.zeros_like(mean_act)), ("mean", mean_act)):
            new, ce_new = model.run_with_hooks(t, return_type="both", loss_per_token=True,
                                               fwd_hooks=[(hook_name, constant_hook(value))])
            parts[f"ce_{name}"].append(ce_new.flatten())
            parts[f"kl_{name}"].append(kl_per_position(logits, new).flatten())
    return Baselines(hook_name, *(torch.cat(parts[k]) for k in parts), mean_act=mean_act)  # type: ignore[misc]


@dataclass
class SAEEval:
    """Everything :func:`evaluate_sae` measured; :meth:`summary` gives the scalars as a dict."""

    ce_clean: float
    ce_sae: float
    ce_zero: float
    ce_mean: float
    kl_sae: float
    kl_zero: float
    kl_mean: float
    explained_variance: float
    mse: float
    l0: float
    dead_fraction: float
    dense_fraction: float
    n_tokens: int
    firing_frequencies: torch.Tensor = field(repr=False)  # [d_sae]

    @property
    def ce_recovered_zero(self) -> float:
        return (self.ce_zero - self.ce_sae) / (self.ce_zero - self.ce_clean)

    @property
    def ce_recovered_mean(self) -> float:
        return (self.ce_mean - self.ce_sae) / (self.ce_mean - self.ce_clean)

    @property
    def delta_loss(self) -> float:
        return self.ce_sae - self.ce_clean

    @property
    def kl_score(self) -> float:
        return (self.kl_zero - self.kl_sae) / self.kl_zero

    @property
    def fvu(self) -> float:
        return 1.0 - self.explained_variance

    def summary(self, digits: int = 4) -> dict[str, float]:
        keys = ("ce_recovered_zero", "ce_recovered_mean", "delta_loss", "kl_sae", "kl_score",
                "explained_variance", "fvu", "l0", "dead_fraction", "dense_fraction", "ce_clean", "ce_sae",
                "ce_zero", "ce_mean", "mse")
        out = {k: round(float(getattr(self, k)), digits) for k in keys}
        out["n_tokens"] = self.n_tokens
        return out


class ExplainedVariance:
    """Streaming 1 − E‖x − x̂‖² / (E‖x‖² − ‖E x‖²), accumulated in float64 (sae-lens's definition)."""

    def __init__(self) -> None:
        self.sum_x: torch.Tensor | None = None
        self.sum_sq = 0.0
        self.sum_err = 0.0
        self.n = 0

    def add(self, x: torch.Tensor, x_hat: torch.Tensor) -> None:
        """x, x_hat: [n, d]."""
        x64, xh64 = x.double(), x_hat.double()
        s = x64.sum(0)
        self.sum_x = s if self.sum_x is None else self.sum_x + s
        self.sum_sq += float(x64.pow(2).sum())
        self.sum_err += float((x64 - xh64).pow(2).sum())
        self.n += len(x)

    def compute(self) -> float:
        if self.n == 0 or self.sum_x is None:
            raise ValueError("no activations were added")
        var = self.sum_sq / self.n - float((self.sum_x / self.n).pow(2).sum())
        mse = self.sum_err / self.n
        if var < 1e-10:
            return 1.0 if mse < 1e-10 else 0.0
        return 1.0 - mse / var


def explained_variance(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """1 − E‖x − x̂‖² / (E‖x‖² − ‖E x‖²) over the rows of x, x_hat: [n, d] (float64)."""
    if x.shape != x_hat.shape or x.ndim != 2:
        raise ValueError(f"x and x_hat must both be [n, d], got {list(x.shape)} and {list(x_hat.shape)}")
    ev = ExplainedVariance()
    ev.add(x, x_hat)
    return ev.compute()


def _grabber(store: dict[str, torch.Tensor]) -> Hook:
    def grab(act: torch.Tensor, hook: Any = None) -> None:  # noqa: ARG001
        store["x"] = act.detach().reshape(-1, act.shape[-1])

    return grab  # type: ignore[return-value]


@torch.no_grad()
def evaluate_sae(model: Any, sae: SAE, hook_name: str, tokens: torch.Tensor, batch_size: int = 16,
                 base: Baselines | None = None, dense_threshold: float = 0.1) -> SAEEval:
    """Splice ``sae`` into ``model`` at ``hook_name`` and measure the module docstring's metrics on
    ``tokens: [batch, seq]``. ``base`` (from :func:`baselines` on the same tokens) saves recomputing
    the clean and ablated runs when several SAEs read the same hook. The model's hooks and training
    mode are left as they were."""
    tokens = _check_tokens(tokens)
    _check_hook(model, hook_name)
    if not isinstance(sae, SAE):
        raise TypeError(f"sae must be a course_utils.saes SAE, got {type(sae).__name__}")
    if base is None:
        base = baselines(model, hook_name, tokens, batch_size)
    elif base.hook_name != hook_name or len(base.ce_clean) != tokens.shape[0] * (tokens.shape[1] - 1):
        raise ValueError("base was computed for another hook or other tokens")
    was_training = sae.training
    sae.eval()
    ce, kl, fired = [], [], None
    l0_sum, n = 0.0, 0
    ev = ExplainedVariance()
    for i in range(0, len(tokens), batch_size):
        t = tokens[i:i + batch_size]
        store: dict[str, torch.Tensor] = {}
        logits = model.run_with_hooks(t, fwd_hooks=[(hook_name, _grabber(store))])
        x = store["x"].to(sae.W_dec.dtype)
        if x.shape[-1] != sae.cfg.d_in:
            raise ValueError(f"the SAE reads d_in={sae.cfg.d_in} activations but {hook_name} is "
                             f"{x.shape[-1]} wide in this model: wrong hook or wrong SAE")
        f = sae.encode(x)  # [n, d_sae]
        ev.add(x, sae.decode(f))
        nz = f != 0
        l0_sum += float(nz.sum())
        fired = nz.sum(0) if fired is None else fired + nz.sum(0)
        n += len(x)
        new, ce_new = model.run_with_hooks(t, return_type="both", loss_per_token=True,
                                           fwd_hooks=[(hook_name, splice_hook(sae))])
        ce.append(ce_new.flatten())
        kl.append(kl_per_position(logits, new).flatten())
    sae.train(was_training)
    freq = fired.double() / n  # type: ignore[union-attr]
    return SAEEval(
        ce_clean=float(base.ce_clean.mean()), ce_sae=float(torch.cat(ce).mean()),
        ce_zero=float(base.ce_zero.mean()), ce_mean=float(base.ce_mean.mean()),
        kl_sae=float(torch.cat(kl).mean()), kl_zero=float(base.kl_zero.mean()), kl_mean=float(base.kl_mean.mean()),
        explained_variance=ev.compute(), mse=ev.sum_err / ev.n, l0=l0_sum / n,
        dead_fraction=float((freq == 0).double().mean()), dense_fraction=float((freq > dense_threshold).double().mean()),
        n_tokens=n, firing_frequencies=freq.float())


@torch.no_grad()
def ce_loss_recovered(model: Any, sae: SAE, hook_name: str, tokens: torch.Tensor) -> float:
    """CE loss recovered with the zero-ablation baseline, (CE_zero − CE_sae) / (CE_zero − CE_clean),
    each CE the mean next-token loss over every predicted position of ``tokens: [batch, seq]``
    (the reference of the chapter's first exercise; :func:`evaluate_sae` measures it with the rest)."""
    tokens = _check_tokens(tokens)
    _check_hook(model, hook_name)
    clean = model(tokens, return_type="loss")
    spliced = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, splice_hook(sae))])
    zero = model.run_with_hooks(tokens, return_type="loss",
                                fwd_hooks=[(hook_name, lambda act, hook: torch.zeros_like(act))])
    return float((zero - spliced) / (zero - clean))
