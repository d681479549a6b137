"""SAE and SPD on the same toy model of superposition, side by side (chapter 6).

A sparse autoencoder (chapter 4; :mod:`course_utils.saes`) is trained on the TMS model's hidden
activations ``h = W x``; SPD (:mod:`.spd`) decomposes the weights W and Wᵀ. Both return one unit per
true feature when they work; this module measures what else each gives back:

* **directions**: MMCS of the SAE's decoder rows, and of SPD's subcomponent columns, against W's
  columns (the true feature directions in the hidden space);
* **which units an input uses**: on the probe inputs with one or two features at 0.75 (the SPD
  paper's one-hot value), the set of active units (SAE latents > 0; SPD subcomponents with causal
  importance > 0.1, the authors' threshold) mapped to the features they stand for, compared with
  the set of features present;
* **output faithfulness**: the target's output recomputed through each account (the SAE's
  reconstruction ĥ in place of h; SPD's subcomponents masked by their causal importances in both
  layers), as a relative squared error on random inputs with at least one feature present.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from course_utils._validate import check_float, check_int
from course_utils.decomposition.metrics import mmcs_ml2r
from course_utils.decomposition.spd import SPDModel, causal_importances, rank_one_forward
from course_utils.decomposition.targets import TMSTarget
from course_utils.saes import SAE, TopKConfig, TopKSAE, TrainConfig, mmcs, train_sae

CI_THRESHOLD = 0.1  # the authors' ci_alive_threshold


def probe_inputs(n_feat: int, max_active: int = 2, value: float = 0.75) -> tuple[torch.Tensor, list[str]]:
    """Every input with 1 … ``max_active`` features at ``value`` and the rest 0:
    (x: [n_inputs, n_feat], labels such as "x0" and "x0+x3")."""
    check_int(n_feat, "n_feat")
    check_int(max_active, "max_active")
    check_float(value, "value", low=1e-9)
    if max_active > n_feat:
        raise ValueError(f"max_active must be at most n_feat = {n_feat}, got {max_active}")
    rows, labels = [], []
    for k in range(1, max_active + 1):
        for combo in itertools.combinations(range(n_feat), k):
            x = torch.zeros(n_feat)
            x[list(combo)] = value
            rows.append(x)
            labels.append("+".join(f"x{i}" for i in combo))
    return torch.stack(rows), labels


def _active_rows(target: TMSTarget, n: int, seed: int) -> torch.Tensor:
    x = target.sample(4 * n, torch.Generator().manual_seed(seed))
    return x[x.abs().sum(-1) > 0][:n]


def train_tms_sae(target: TMSTarget, k: int, d_sae: int | None = None, steps: int = 800,
                  batch_size: int = 512, seed: int = 0) -> TopKSAE:
    """A TopK SAE (Gao et al. 2024) with ``d_sae`` latents (default: one per feature) on the hidden
    activations h = W x of inputs with at least one feature present."""
    if not isinstance(target, TMSTarget):
        raise TypeError(f"target must be a TMSTarget, got {type(target).__name__}")
    d_sae = target.n_feat if d_sae is None else d_sae
    check_int(k, "k")
    check_int(d_sae, "d_sae")
    if k > d_sae:
        raise ValueError(f"k must be at most d_sae = {d_sae}, got {k}")

    def hidden_batch(size: int, gen: torch.Generator) -> torch.Tensor:
        x = target.sample(4 * size, gen)
        return x[x.abs().sum(-1) > 0][:size] @ target.W.T  # [batch, d_hidden]

    sae = TopKSAE(TopKConfig(d_in=target.d_hidden, d_sae=d_sae, k=k),
                  generator=torch.Generator().manual_seed(seed))
    train_sae(sae, hidden_batch, TrainConfig(steps=steps, batch_size=batch_size, seed=seed))
    return sae


# ----------------------------------------------------------------------------------------------
# Which features an input's active units stand for


def sae_unit_features(sae: SAE, W: torch.Tensor) -> torch.Tensor:
    """The feature each SAE latent stands for: the column of W: [d_hidden, n_feat] its decoder row
    W_dec: [d_sae, d_hidden] is closest to in cosine -> [d_sae] (long)."""
    dec = torch.nn.functional.normalize(sae.W_dec.detach(), dim=1)
    cols = torch.nn.functional.normalize(W.T, dim=1)  # [n_feat, d_hidden]
    return (dec @ cols.T).argmax(1)


def spd_unit_features(V: torch.Tensor) -> torch.Tensor:
    """The input feature each subcomponent of W reads: argmax_j |V[j, c]| -> [C] (long)."""
    return V.abs().argmax(0)


def claimed_features(active: torch.Tensor, unit_features: torch.Tensor, n_feat: int) -> torch.Tensor:
    """Features with at least one active unit: active: bool [n_inputs, n_units], unit_features:
    [n_units] -> bool [n_inputs, n_feat]."""
    one_hot = torch.nn.functional.one_hot(unit_features, n_feat).to(torch.float32)  # [n_units, n_feat]
    return (active.to(torch.float32) @ one_hot) > 0


def sae_activity(sae: SAE, target: TMSTarget, x: torch.Tensor) -> torch.Tensor:
    """SAE latent activations on the hidden activations of inputs x: [n, n_feat] -> [n, d_sae]."""
    with torch.no_grad():
        return sae.encode(x @ target.W.T)


# ----------------------------------------------------------------------------------------------
# Output faithfulness


def _relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float(((out - ref) ** 2).sum() / (ref**2).sum())


@torch.no_grad()
def sae_output_error(sae: SAE, target: TMSTarget, x: torch.Tensor) -> float:
    """Σ‖f(x; h → ĥ) − f(x)‖² / Σ‖f(x)‖²: the target's output with the SAE's reconstruction of h."""
    h_hat = sae(x @ target.W.T)
    return _relative_error(torch.relu(h_hat @ target.W + target.b), target.run(x)[0])


def _masked_layer(V: torch.Tensor, U: torch.Tensor, mask: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda a: rank_one_forward(a, V, U, mask)


@torch.no_grad()
def spd_output_error(model: SPDModel, x: torch.Tensor, binary: bool = False,
                     threshold: float = CI_THRESHOLD) -> float:
    """The same with every decomposed layer replaced by its subcomponents masked by their causal
    importances g(x) (no delta component, no random part: the decomposition's own account); with
    ``binary`` the mask is 1 where g > threshold and 0 elsewhere (keep the needed ones whole)."""
    ci = causal_importances(model, x)
    masks = {name: (g > threshold).to(x.dtype) if binary else g for name, g in ci.items()}
    layers = {name: _masked_layer(V, U, masks[name]) for name, (V, U) in model.components().items()}
    return _relative_error(model.target.run(x, layers)[0], model.target.run(x)[0])


# ----------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Account:
    """One method's account of the model, measured."""

    name: str
    mmcs: float  # unit directions against W's columns
    units: int  # units used on some probe input (SAE latents that fire, SPD subcomponents alive)
    single_correct: int  # one-feature probes whose active units stand for exactly that feature
    pair_correct: int  # two-feature probes whose active units stand for exactly those two
    n_single: int
    n_pair: int
    output_error: float  # relative squared output error on random inputs

    def row(self) -> str:
        return (f"{self.name:<12}{self.mmcs:7.3f}{self.units:7d}"
                f"{self.single_correct:>6d}/{self.n_single:<3d}{self.pair_correct:>5d}/{self.n_pair:<4d}"
                f"{self.output_error:9.4f}")


TABLE_HEADER = f"{'':12}{'MMCS':>7}{'units':>7}{'1 feat':>10}{'2 feat':>10}{'out err':>9}"


def _score(name: str, directions_mmcs: float, active: torch.Tensor, unit_features: torch.Tensor,
           x: torch.Tensor, output_error: float) -> Account:
    n_feat = x.shape[1]
    claimed = claimed_features(active, unit_features, n_feat)
    correct = (claimed == (x > 0)).all(-1)
    n_active = (x > 0).sum(-1)
    single, pair = n_active == 1, n_active == 2
    return Account(name, directions_mmcs, int(active.any(0).sum()), int(correct[single].sum()),
                   int(correct[pair].sum()), int(single.sum()), int(pair.sum()), output_error)


def sae_account(name: str, sae: SAE, target: TMSTarget, n_eval: int = 20_000, seed: int = 5) -> Account:
    """Score an SAE trained on ``target``'s hidden activations (see the module docstring)."""
    if not isinstance(sae, SAE) or sae.cfg.d_in != target.d_hidden:
        raise ValueError(f"sae must be an SAE on the {target.d_hidden}-d hidden activations of the target")
    x, _ = probe_inputs(target.n_feat)
    active = sae_activity(sae, target, x) > 0
    err = sae_output_error(sae, target, _active_rows(target, n_eval, seed))
    return _score(name, mmcs(sae.W_dec.detach(), target.W.T).item(), active, sae_unit_features(sae, target.W),
                  x, err)


def spd_account(name: str, model: SPDModel, n_eval: int = 20_000, seed: int = 5,
                threshold: float = CI_THRESHOLD, binary: bool = False) -> Account:
    """Score an SPD decomposition of a TMS target by its first layer's subcomponents (W: x → h);
    ``binary``: the output error with 0/1 masks (see :func:`spd_output_error`)."""
    target = model.target
    if not isinstance(target, TMSTarget):
        raise TypeError(f"spd_account scores a decomposition of a TMSTarget, got {type(target).__name__}")
    x, _ = probe_inputs(target.n_feat)
    V, U = (t.detach() for t in model.factors("linear1"))
    active = causal_importances(model, x)["linear1"] > threshold
    err = spd_output_error(model, _active_rows(target, n_eval, seed), binary, threshold)
    return _score(name, mmcs_ml2r(target.W, V, U)[0].item(), active, spd_unit_features(V), x, err)


def format_table(accounts: Mapping[str, Account] | list[Account]) -> str:
    """The accounts as a fixed-width table (fits the page's 88 columns)."""
    rows = list(accounts.values()) if isinstance(accounts, Mapping) else list(accounts)
    return "\n".join([TABLE_HEADER] + [a.row() for a in rows])
