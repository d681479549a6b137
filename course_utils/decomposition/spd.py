"""Stochastic Parameter Decomposition (SPD; Bushnaq, Braun & Sharkey 2025, arXiv:2506.20790).

Every weight matrix ``W: [d_out, d_in]`` of a target model is written as a sum of C rank-one
*subcomponents*, ``W ≈ Σ_c U_cᵀ V_cᵀ`` with ``V: [d_in, C]`` and ``U: [C, d_out]`` (the authors'
layout: a layer computes ``(a V ⊙ m) U``). A tiny MLP per subcomponent (1 → d_gate GELU → 1) reads
the subcomponent's *inner activation* ``h_c = a·V_c`` and predicts its *causal importance*
``g_c ∈ [0, 1]`` (paper eq. for g, with the leaky hard sigmoids of its appendix). Training masks
each subcomponent with ``m_c = g_c + (1 − g_c) r``, ``r ~ U(0, 1)``, and asks the masked model to
reproduce the target (stochastic and layerwise stochastic reconstruction) while penalising
``Σ_c |g_c|^p`` (importance minimality) and keeping ``Σ_c U_c V_c`` equal to W (faithfulness, or the
"delta component" of the authors' code plus a faithfulness warm-up).

The model-specific part is a :class:`~course_utils.decomposition.targets.Target`: its forward pass
takes one callable per decomposed layer, so the same loop decomposes the toy model of superposition
(W used twice, x → Wx and h → Wᵀh) and the residual MLP.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
import torch.nn.functional as F

from course_utils._validate import check_float, check_int
from course_utils.decomposition.targets import Target

Tie = Literal["shared", "single", "untied"]
LEAKY_SLOPE = 0.01  # slope of the leaky hard sigmoids (paper, appendix "leaky hard sigmoids")


# ----------------------------------------------------------------------------------------------
# The pieces (each is also an exercise)


def lower_leaky_hard_sigmoid(x: torch.Tensor, alpha: float = LEAKY_SLOPE) -> torch.Tensor:
    """σ_H,lower(x) = αx for x ≤ 0, x on [0, 1], 1 above: the gates used for the masks."""
    return torch.where(x > 0, x.clamp(max=1.0), alpha * x)


def upper_leaky_hard_sigmoid(x: torch.Tensor, alpha: float = LEAKY_SLOPE) -> torch.Tensor:
    """σ_H,upper(x) = 0 for x ≤ 0, x on [0, 1], 1 + α(x − 1) above: the gates the penalty sees."""
    return torch.where(x > 1, 1 + alpha * (x - 1), x.clamp(min=0.0))


def rank_one_forward(x: torch.Tensor, V: torch.Tensor, U: torch.Tensor,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """The masked layer Σ_c m_c (x·V_c) U_c: x: [batch, d_in], V: [d_in, C], U: [C, d_out],
    mask: [batch, C] (None: all ones) -> [batch, d_out]. Without a mask this is x Wᵀ with
    W = (V U)ᵀ: [d_out, d_in]."""
    inner = x @ V  # [batch, C]
    if mask is not None:
        inner = inner * mask
    return inner @ U


def causal_importance(inner: torch.Tensor, W_in: torch.Tensor, b_in: torch.Tensor, W_out: torch.Tensor,
                      b_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """g_c = σ_H(γ_c(h_c)) with γ_c(h) = W_out,c · GELU(W_in,c h + b_in,c) + b_out,c, one MLP per
    subcomponent. inner: [batch, C], W_in, b_in, W_out: [C, d_gate], b_out: [C]
    -> (g_lower, g_upper), each [batch, C]: the lower-leaky gate for masks and the upper-leaky one
    for the importance-minimality penalty."""
    hidden = F.gelu(inner[..., None] * W_in + b_in)  # [batch, C, d_gate]
    pre = (hidden * W_out).sum(-1) + b_out  # [batch, C]
    return lower_leaky_hard_sigmoid(pre), upper_leaky_hard_sigmoid(pre)


def stochastic_mask(g: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """m = g + (1 − g) r with r ~ U(0, 1) drawn from ``generator``: g: [..., C] -> [..., C]. The
    reparametrisation keeps gradients flowing to g."""
    r = torch.rand(g.shape, generator=generator, dtype=g.dtype, device="cpu").to(g.device)
    return g + (1 - g) * r


def faithfulness_loss(weights: Mapping[str, torch.Tensor],
                      components: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """L_faithfulness = (1/N) Σ_l Σ_ij (W^l − Σ_c U^l_c V^l_c)²_ij with N the number of decomposed
    weights. weights[l]: [d_out, d_in]; components[l] = (V: [d_in, C], U: [C, d_out])."""
    total, count = 0.0, 0
    for name, W in weights.items():
        V, U = components[name]
        total = total + ((W - (V @ U).T) ** 2).sum()
        count += W.numel()
    return total / count


def importance_minimality_loss(g_upper: Mapping[str, torch.Tensor] | list[torch.Tensor], p: float,
                               eps: float = 0.0) -> torch.Tensor:
    """L_importance-minimality = mean over the batch of Σ_l Σ_c |g^l_c|^p (the upper-leaky gates,
    which are ≥ 0). g_upper: one [batch, C] tensor per layer; p > 0."""
    values = list(g_upper.values()) if isinstance(g_upper, Mapping) else list(g_upper)
    return sum(((g + eps) ** p).sum(-1).mean() for g in values)  # type: ignore[return-value]


def mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The reconstruction distance D for these toy models: mean squared error over all entries."""
    return ((out - target) ** 2).mean()


# ----------------------------------------------------------------------------------------------
# Modules


class CIFunctions(torch.nn.Module):
    """C independent causal-importance MLPs 1 → d_gate (GELU) → 1, evaluated in parallel.
    W_in, b_in, W_out: [C, d_gate]; b_out: [C]. Kaiming-normal init as in the authors' code."""

    def __init__(self, C: int, d_gate: int, generator: torch.Generator) -> None:
        super().__init__()
        self.W_in = torch.nn.Parameter(torch.randn(C, d_gate, generator=generator) * math.sqrt(2.0))
        self.b_in = torch.nn.Parameter(torch.zeros(C, d_gate))
        self.W_out = torch.nn.Parameter(torch.randn(C, d_gate, generator=generator) / math.sqrt(d_gate))
        self.b_out = torch.nn.Parameter(torch.zeros(C))

    def forward(self, inner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inner: [batch, C] -> (g_lower, g_upper): [batch, C] each."""
        return causal_importance(inner, self.W_in, self.b_in, self.W_out, self.b_out)


@dataclass
class SPDConfig:
    """SPD hyperparameters. Defaults: the authors' TMS 5-2 settings (C = 20 per matrix, d_gate 16,
    β = 3e-3, p = 1, Adam with cosine decay from lr 1e-3, delta component and a 200-step faithfulness
    warm-up at lr 0.01 / weight decay 0.1) at the CPU-sized batch and step count that the chapter's
    tests reproduce the paper's numbers with (the paper trains 40k steps at batch 4096)."""

    C: int = 20
    d_gate: int = 16
    steps: int = 3_000
    batch_size: int = 1024
    lr: float = 1e-3
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    beta: float = 3e-3  # importance-minimality coefficient β₃
    p: float = 1.0
    stochastic_coeff: float = 1.0
    layerwise_coeff: float = 1.0
    faithfulness_coeff: float = 0.0  # the paper uses 1 without the delta component
    use_delta_component: bool = True
    warmup_steps: int = 200  # faithfulness-only warm-up before the main loop
    warmup_lr: float = 0.01
    warmup_weight_decay: float = 0.1
    n_mask_samples: int = 1
    tie: Tie = "shared"  # TMS: how the decompositions of W and Wᵀ are tied (see train_spd)
    skip_inert_inputs: bool = True  # exact: inputs whose layers all see zero drop out of the recon losses
    seed: int = 0
    log_every: int = 100
    snapshot_every: int = 0  # >0: keep (V, U) of every layer every this many steps (for the figures)

    def __post_init__(self) -> None:
        check_int(self.C, "C (subcomponents per matrix)")
        check_int(self.d_gate, "d_gate")
        check_int(self.steps, "steps")
        check_int(self.batch_size, "batch_size")
        check_int(self.n_mask_samples, "n_mask_samples")
        check_int(self.warmup_steps, "warmup_steps", minimum=0)
        check_int(self.seed, "seed", minimum=0)
        check_int(self.log_every, "log_every")
        check_int(self.snapshot_every, "snapshot_every", minimum=0)
        if isinstance(self.p, bool) or not isinstance(self.p, (int, float)) or not self.p > 0:
            raise ValueError(f"p (the importance-minimality norm) must be a number > 0, got {self.p!r}")
        for name in ("lr", "warmup_lr"):
            check_float(getattr(self, name), name, low=1e-12)
        for name in ("beta", "stochastic_coeff", "layerwise_coeff", "faithfulness_coeff", "warmup_weight_decay"):
            check_float(getattr(self, name), name, low=0.0)
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}")
        if self.tie not in ("shared", "single", "untied"):
            raise ValueError(f"tie must be 'shared', 'single' or 'untied', got {self.tie!r}")
        if not self.use_delta_component and self.faithfulness_coeff == 0:
            raise ValueError("without the delta component the faithfulness loss is the only thing tying the "
                             "subcomponents to W: set faithfulness_coeff > 0 (the paper uses 1)")


class SPDModel(torch.nn.Module):
    """The decomposition of a target's layers: per layer l, V[l]: [d_in, C], U[l]: [C, d_out] and its
    causal-importance MLPs. A layer in ``target.ties`` (l → src, W_l = W_srcᵀ) is tied to src:

    * ``"shared"``: its V, U are parameters that *share storage* with src's Uᵀ, Vᵀ (the authors' code:
      two parameters, two optimiser states, one set of numbers);
    * ``"single"``: it has no parameters of its own and uses src's Uᵀ, Vᵀ (one optimiser state);
    * ``"untied"``: it is decomposed independently.
    """

    def __init__(self, target: Target, C: int, d_gate: int, tie: Tie, generator: torch.Generator) -> None:
        super().__init__()
        self.target, self.C, self.tie = target, C, tie
        self.V = torch.nn.ParameterDict()
        self.U = torch.nn.ParameterDict()
        self.ci = torch.nn.ModuleDict()
        weights = target.weights()
        for name, W in weights.items():
            d_out, d_in = W.shape
            self.ci[name] = CIFunctions(C, d_gate, generator)
            src = target.ties.get(name)
            if src is not None and tie != "untied":
                continue
            self.V[name] = torch.nn.Parameter(torch.randn(d_in, C, generator=generator) / math.sqrt(d_in))
            self.U[name] = torch.nn.Parameter(torch.randn(C, d_out, generator=generator) / math.sqrt(C))
        if tie == "shared":
            for name, src in target.ties.items():
                self.V[name] = torch.nn.Parameter(self.U[src].data.T)  # a view: same storage
                self.U[name] = torch.nn.Parameter(self.V[src].data.T)

    def factors(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(V: [d_in, C], U: [C, d_out]) of layer ``name``."""
        src = self.target.ties.get(name)
        if self.tie == "single" and src is not None:
            return self.U[src].T, self.V[src].T
        return self.V[name], self.U[name]

    def components(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {name: self.factors(name) for name in self.target.weights()}

    def weight_deltas(self) -> dict[str, torch.Tensor]:
        """W^l − Σ_c U_c V_c per layer: [d_out, d_in]."""
        return {name: W - (V @ U).T for (name, W), (V, U) in zip(self.target.weights().items(),
                                                                   self.components().values())}


# ----------------------------------------------------------------------------------------------
# Training


@dataclass
class SPDResult:
    """A trained decomposition, its training log and (optionally) snapshots of its factors."""

    model: SPDModel
    config: SPDConfig
    history: dict[str, list[float]]  # per logged step: "step", "stochastic", "layerwise", "importance", ...
    snapshots: list[tuple[int, dict[str, tuple[torch.Tensor, torch.Tensor]]]] = field(default_factory=list)
    seconds: float = 0.0
    steps_per_second: float = 0.0

    def factors(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        V, U = self.model.factors(name)
        return V.detach(), U.detach()


def _layer_fn(V: torch.Tensor, U: torch.Tensor, mask: torch.Tensor | None,
              delta: torch.Tensor | None, delta_mask: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
    def fn(a: torch.Tensor) -> torch.Tensor:
        out = rank_one_forward(a, V, U, mask)
        if delta is not None:
            out = out + delta_mask[:, None] * (a @ delta.T)  # type: ignore[index]
        return out
    return fn


def spd_losses(model: SPDModel, x: torch.Tensor, n_total: int, cfg: SPDConfig,
               gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The SPD losses on a batch ``x: [batch, d_x]`` of the target's inputs. ``n_total`` ≥ batch is
    the size of the batch these rows came from: skipped inert rows (whose reconstruction error is 0
    for every mask) count in the means, and their penalty is added by the caller."""
    target = model.target
    with torch.no_grad():
        target_out, pre_acts = target.run(x)
    comps = model.components()
    gates = {name: model.ci[name](pre_acts[name] @ V) for name, (V, _) in comps.items()}
    deltas = model.weight_deltas() if cfg.use_delta_component else None
    weights = target.weights()
    plain = {name: target.linear(W) for name, W in weights.items()}
    scale = x.shape[0] / n_total

    def masked_layers() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
        fns = {}
        for name, (V, U) in comps.items():
            mask = stochastic_mask(gates[name][0], gen)
            d = deltas[name] if deltas is not None else None
            dm = torch.rand(x.shape[0], generator=gen, dtype=x.dtype).to(x.device) if d is not None else None
            fns[name] = _layer_fn(V, U, mask, d, dm)
        return fns

    stoch = x.new_zeros(())
    layerwise = x.new_zeros(())
    for _ in range(cfg.n_mask_samples):  # the two losses draw their masks independently, as in the paper
        stoch = stoch + mse(target.run(x, masked_layers())[0], target_out) * scale
        fns = masked_layers()
        for name in comps:
            layerwise = layerwise + mse(target.run(x, {**plain, name: fns[name]})[0], target_out) * scale
    n = cfg.n_mask_samples
    out = {"stochastic": stoch / n, "layerwise": layerwise / (n * len(comps)),
           "importance": importance_minimality_loss([g[1] for g in gates.values()], cfg.p) * scale,
           "faithfulness": faithfulness_loss(weights, comps)}
    return out


def _inert_penalty(model: SPDModel, cfg: SPDConfig, dtype: torch.dtype) -> torch.Tensor:
    """Σ_l Σ_c g_upper(γ_c(0))^p: the importance penalty of an input whose layers all see zero."""
    zeros = torch.zeros(1, model.C, dtype=dtype)
    return importance_minimality_loss([model.ci[name](zeros)[1] for name in model.ci], cfg.p)


def _warmup(model: SPDModel, cfg: SPDConfig) -> None:
    if cfg.warmup_steps == 0:
        return
    params = list(model.V.values()) + list(model.U.values())
    opt = torch.optim.AdamW(params, lr=cfg.warmup_lr, weight_decay=cfg.warmup_weight_decay)
    weights = model.target.weights()
    for _ in range(cfg.warmup_steps):
        loss = faithfulness_loss(weights, model.components())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def train_spd(target: Target, config: SPDConfig | None = None, **overrides: object) -> SPDResult:
    """Decompose ``target``'s layers with SPD (paper's Algorithm 1, S = n_mask_samples).

    Loss = faithfulness_coeff·L_faith + stochastic_coeff·L_stoch + layerwise_coeff·L_layerwise
    + β·L_importance. With ``use_delta_component`` the masked forward passes add the residual
    W − Σ_c U_c V_c scaled by its own U(0, 1) mask (the authors' code), so the subcomponents need not
    sum exactly to W during training; the faithfulness warm-up starts them there.
    """
    if not isinstance(target, Target):
        raise TypeError(f"target must be a decomposition Target (TMSTarget, ResidualMLPTarget), "
                        f"got {type(target).__name__}")
    cfg = replace(config or SPDConfig(), **overrides)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(cfg.seed)
    model = SPDModel(target, cfg.C, cfg.d_gate, cfg.tie, gen)
    skip = cfg.skip_inert_inputs and target.zero_input_is_inert()
    start = time.perf_counter()
    _warmup(model, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if cfg.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / cfg.steps)))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0)
    history: dict[str, list[float]] = {k: [] for k in ("step", "loss", "stochastic", "layerwise",
                                                       "importance", "faithfulness")}
    snapshots: list[tuple[int, dict[str, tuple[torch.Tensor, torch.Tensor]]]] = []
    for step in range(cfg.steps + 1):
        if cfg.snapshot_every and step % cfg.snapshot_every == 0:
            snapshots.append((step, {k: (V.detach().clone(), U.detach().clone())
                                     for k, (V, U) in model.components().items()}))
        if step == cfg.steps:
            break
        x = target.sample(cfg.batch_size, gen)
        rows = x.abs().sum(-1) > 0 if skip else torch.ones(x.shape[0], dtype=torch.bool)
        n_inert = int((~rows).sum())
        xs = x[rows] if n_inert else x
        if xs.shape[0] == 0:
            xs = x[:1]
        losses = spd_losses(model, xs, cfg.batch_size, cfg, gen)
        if n_inert:
            losses["importance"] = losses["importance"] + _inert_penalty(model, cfg, x.dtype) * n_inert / cfg.batch_size
        loss = (cfg.faithfulness_coeff * losses["faithfulness"] + cfg.stochastic_coeff * losses["stochastic"]
                + cfg.layerwise_coeff * losses["layerwise"] + cfg.beta * losses["importance"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            history["step"].append(step)
            history["loss"].append(loss.item())
            for k, v in losses.items():
                history[k].append(v.item())
    seconds = time.perf_counter() - start
    return SPDResult(model, cfg, history, snapshots, seconds, cfg.steps / max(seconds, 1e-9))


@torch.no_grad()
def causal_importances(model: SPDModel, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The lower-leaky causal importances g (clipped to [0, 1]) of every layer on inputs
    x: [batch, d_x] -> {layer: [batch, C]}."""
    _, pre_acts = model.target.run(x)
    return {name: model.ci[name](pre_acts[name] @ V)[0].clamp(0, 1)
            for name, (V, _) in model.components().items()}


@torch.no_grad()
def one_hot_causal_importances(model: SPDModel, value: float = 0.75) -> dict[str, torch.Tensor]:
    """Causal importances on the one-hot inputs x = value·e_i (the paper's figures use 0.75):
    {layer: [n_inputs, C]}."""
    n = model.target.input_dim
    return causal_importances(model, value * torch.eye(n))
