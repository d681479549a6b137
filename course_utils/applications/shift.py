"""SHIFT made checkable: removing a spurious concept from a probe by ablating SAE latents.

Marks et al. (2024, "Sparse feature circuits") train a classifier on data where the intended
label is perfectly confounded with a spurious one, find the SAE latents the classifier reads,
have a human mark the spurious ones, and zero-ablate those latents while keeping the SAE error
term; accuracy on the intended label rises and on the spurious label falls. Here both labels come
from the course's ground-truth labeller (neither is a token identity) and the spurious latents
are picked automatically by their concept scores, so every step can be checked:

* ``X: [n, d]`` activations at one hook, ``y`` (intended) and ``z`` (spurious) bools per token;
* the **biased** training set holds only the groups (y, z) = (1, 1) and (0, 0); the **test** set all
  four groups equally;
* a logistic-regression probe ``p(y | x) = sigmoid(w . x + b)`` (``w: [d]`` in activation units);
* attribution of latent ``j`` (SAEBench's SCR, Karvonen et al., 2025):
  ``|(mu_pos - mu_neg)_j * (w . W_dec[j])|`` with ``mu`` the latent's mean on each class;
* ablation with the error term kept: ``x - sum_{j in S} f_j(x) W_dec[j]``;
* SCR score ``(A_abl - A_base) / (A_oracle - A_base)`` on the intended label, ``A_oracle`` from a
  probe trained on balanced data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class Probe:
    """A linear probe in activation coordinates: logit = ``X @ w + b``."""

    w: torch.Tensor  # [d]
    b: float

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        check_probe_width(self.w, X)
        return X.to(self.w.dtype) @ self.w + self.b

    def predict(self, X: torch.Tensor) -> np.ndarray:
        return (self.logits(X) > 0).numpy()


def check_probe_width(w: torch.Tensor, X: torch.Tensor) -> None:
    if w.ndim != 1 or X.ndim != 2 or X.shape[1] != w.shape[0]:
        raise ValueError(f"the probe reads {w.shape[0] if w.ndim == 1 else list(w.shape)}-wide activations "
                         f"but X has shape {list(X.shape)}: a probe of the wrong width for this hook")


def check_same_length(**arrays: Any) -> int:
    """All arrays have the same first dimension; return it."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("labels and activations must have one entry per token; lengths differ: "
                         + ", ".join(f"{k}={n}" for k, n in lengths.items()))
    return next(iter(lengths.values()))


def fit_probe(X: torch.Tensor, y: np.ndarray, C: float = 1.0, seed: int = 0) -> Probe:
    """Logistic regression on standardised ``X: [n, d]`` (sklearn, lbfgs; deterministic), returned
    in raw activation coordinates."""
    from sklearn.linear_model import LogisticRegression

    check_same_length(X=X, y=y)
    Xn = X.double().numpy()
    mu, sd = Xn.mean(0), Xn.std(0) + 1e-6
    clf = LogisticRegression(C=C, max_iter=3000, random_state=seed).fit((Xn - mu) / sd, np.asarray(y, bool))
    w = clf.coef_[0] / sd
    return Probe(torch.tensor(w, dtype=torch.float32), float(clf.intercept_[0] - (mu * w).sum()))


def group_accuracy(pred: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, float]:
    """Accuracy of ``pred`` on the intended label, on the spurious label, per group and worst group."""
    check_same_length(pred=pred, y=y, z=z)
    pred, y, z = (np.asarray(a, bool) for a in (pred, y, z))
    groups = {f"y={a:d},z={c:d}": float((pred[(y == a) & (z == c)] == a).mean())
              for a in (True, False) for c in (True, False) if ((y == a) & (z == c)).any()}
    return {"intended": float((pred == y).mean()), "spurious": float((pred == z).mean()),
            "worst_group": min(groups.values()), **groups}


def latent_attribution(f_pos: torch.Tensor, f_neg: torch.Tensor, W_dec: torch.Tensor, w: torch.Tensor
                       ) -> torch.Tensor:
    """SAEBench's effect of each latent on the probe: ``|(mean f_pos - mean f_neg) * (W_dec @ w)|``.
    ``f_pos: [n_pos, d_sae]``, ``f_neg: [n_neg, d_sae]`` (latent activations on each class),
    ``W_dec: [d_sae, d]``, ``w: [d]`` -> ``[d_sae]``."""
    if W_dec.shape[1] != w.shape[0]:
        raise ValueError(f"the probe is {w.shape[0]} wide but the decoder writes {W_dec.shape[1]}-wide vectors")
    return ((f_pos.mean(0) - f_neg.mean(0)) * (W_dec @ w)).abs()


def ablate_latents(x: torch.Tensor, f: torch.Tensor, W_dec: torch.Tensor, latents: Sequence[int]) -> torch.Tensor:
    """Zero-ablate ``latents`` keeping the SAE error: ``x - f[:, S] @ W_dec[S]``, ``x: [n, d]``,
    ``f: [n, d_sae]``."""
    S = list(latents)
    bad = [j for j in S if not 0 <= int(j) < W_dec.shape[0]]
    if bad:
        raise ValueError(f"unknown latent ids {bad}: the SAE has latents 0 .. {W_dec.shape[0] - 1}")
    return x - f[:, S] @ W_dec[S]


def concept_precision(acts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Chance-corrected precision ``(P(c | fires) - P(c)) / (1 - P(c))`` of every unit: ``[n_units]``
    (fires = above half the unit's maximum; 0 for a unit that never fires)."""
    from course_utils.labels import score_units

    check_same_length(acts=acts, labels=labels)
    c = np.asarray(labels, bool)
    base = c.mean()
    prec = score_units(acts, {"c": c})["precision"][:, 0]
    fires = (acts > 0.5 * np.maximum(acts.max(0), 1e-12)).any(0)
    return np.where(fires, (prec - base) / max(1 - base, 1e-12), 0.0)


def spurious_units(acts: np.ndarray, intended: np.ndarray, spurious: np.ndarray, candidates: Sequence[int],
                   margin: float = 0.0) -> list[int]:
    """The candidates better explained by the spurious concept than by the intended one, judged on
    the natural (unconfounded) distribution of tokens: chance-corrected precision for the spurious
    concept above that for the intended one by more than ``margin``. For signed units (neurons of the
    residual stream) the absolute activation is scored."""
    check_same_length(acts=acts, intended=intended, spurious=spurious)
    cand = list(candidates)
    if not cand:
        return []
    a = np.abs(acts[:, cand])
    cp_i, cp_s = concept_precision(a, intended), concept_precision(a, spurious)
    return [j for j, ci, cs in zip(cand, cp_i, cp_s) if cs > ci + margin]


@dataclass
class ShiftResult:
    """Accuracies (dicts of :func:`group_accuracy`) before and after, and what was ablated."""

    base: dict[str, float]
    shift: dict[str, float]
    shift_retrain: dict[str, float]
    neurons: dict[str, float]
    oracle: dict[str, float]
    candidates: list[int]
    ablated: list[int]
    ablated_neurons: list[int]
    scr: float
    concept_names: tuple[str, str] = ("", "")
    sizes: dict[str, int] = field(default_factory=dict)
    probe: Probe | None = None


def biased_and_balanced(y: np.ndarray, z: np.ndarray, n_per_group: int, seed: int = 0, balanced: bool = False
                        ) -> np.ndarray:
    """Indices of a sample with ``n_per_group`` tokens from each of the groups (1, 1) and (0, 0)
    (biased) or from all four groups (balanced)."""
    check_same_length(y=y, z=z)
    if isinstance(n_per_group, bool) or not isinstance(n_per_group, (int, np.integer)) or n_per_group < 1:
        raise ValueError(f"n_per_group must be a positive int, got {n_per_group!r}")
    y, z = np.asarray(y, bool), np.asarray(z, bool)
    g = np.random.default_rng(seed)
    cells = [(1, 1), (0, 0)] + ([(1, 0), (0, 1)] if balanced else [])
    out = []
    for a, c in cells:
        idx = np.flatnonzero((y == bool(a)) & (z == bool(c)))
        if len(idx) < n_per_group:
            raise ValueError(f"only {len(idx)} tokens in group y={a}, z={c}; ask for at most that many")
        out.append(g.choice(idx, n_per_group, replace=False))
    return np.sort(np.concatenate(out))


@torch.no_grad()
def run_shift(X_train: torch.Tensor, y_train: np.ndarray, z_train: np.ndarray, X_test: torch.Tensor,
              y_test: np.ndarray, z_test: np.ndarray, sae: Any, n_per_group: int = 1000, top_n: int = 20,
              seed: int = 0, names: tuple[str, str] = ("intended", "spurious"), margin: float = 0.1
              ) -> ShiftResult:
    """The whole experiment: biased probe, attribution, automatic choice of the spurious latents among
    the ``top_n`` by attribution (spurious precision above intended precision by ``margin``), ablation with the error kept, retraining, the neuron skyline (the same
    selection applied to the hook's basis directions, mean-ablated), the oracle and SCR."""
    check_same_length(X_train=X_train, y_train=y_train, z_train=z_train)
    check_same_length(X_test=X_test, y_test=y_test, z_test=z_test)
    d_sae_in = sae.W_dec.shape[1]
    for name, X in (("X_train", X_train), ("X_test", X_test)):
        if X.ndim != 2 or X.shape[1] != d_sae_in:
            raise ValueError(f"{name} has shape {list(X.shape)} but the SAE reads {d_sae_in}-wide activations: "
                             f"give [n_tokens, {d_sae_in}]")
    tr = biased_and_balanced(y_train, z_train, n_per_group, seed)
    te = biased_and_balanced(y_test, z_test, n_per_group // 2, seed + 1, balanced=True)
    Xb, yb = X_train[tr], y_train[tr]
    Xt, yt, zt = X_test[te], y_test[te], z_test[te]
    probe = fit_probe(Xb, yb, seed=seed)
    fb, ft, f_all = sae.encode(Xb), sae.encode(Xt), sae.encode(X_train)
    W_dec = sae.W_dec.detach()
    attr = latent_attribution(fb[yb], fb[~yb], W_dec, probe.w)
    cand = attr.topk(top_n).indices.tolist()
    spur = spurious_units(f_all.numpy(), y_train, z_train, cand, margin)
    Xt_abl = ablate_latents(Xt, ft, W_dec, spur)
    retrained = fit_probe(ablate_latents(Xb, fb, W_dec, spur), yb, seed=seed)
    # neuron skyline: the same attribution and selection on the basis directions, mean-ablated
    mu = X_train.mean(0)
    n_attr = ((Xb[yb].mean(0) - Xb[~yb].mean(0)) * probe.w).abs()
    n_cand = n_attr.topk(min(top_n, len(n_attr))).indices.tolist()
    n_spur = spurious_units((X_train - mu).numpy(), y_train, z_train, n_cand, margin)
    Xt_n = Xt.clone()
    Xt_n[:, n_spur] = mu[n_spur]
    oracle_idx = biased_and_balanced(y_train, z_train, n_per_group // 2, seed + 2, balanced=True)
    oracle = fit_probe(X_train[oracle_idx], y_train[oracle_idx], seed=seed)
    base = group_accuracy(probe.predict(Xt), yt, zt)
    shift = group_accuracy(probe.predict(Xt_abl), yt, zt)
    orc = group_accuracy(oracle.predict(Xt), yt, zt)
    gap = orc["intended"] - base["intended"]
    return ShiftResult(base, shift, group_accuracy(retrained.predict(Xt_abl), yt, zt),
                       group_accuracy(probe.predict(Xt_n), yt, zt), orc, cand, spur, n_spur,
                       scr=float((shift["intended"] - base["intended"]) / gap) if gap > 0 else float("nan"),
                       concept_names=names, sizes={"train": len(tr), "test": len(te)}, probe=probe)


class OrthonormalDictionary:
    """A dictionary with orthonormal rows ``W_dec: [d_sae, d]`` whose encoder is exact for
    non-negative codes: ``f = relu(x @ W_dec.T)`` (what an ideal SAE of a planted task would learn)."""

    def __init__(self, W_dec: torch.Tensor) -> None:
        gram = W_dec @ W_dec.T
        if not torch.allclose(gram, torch.eye(len(W_dec), dtype=W_dec.dtype), atol=1e-5):
            raise ValueError("W_dec must have orthonormal rows")
        self.W_dec = W_dec

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.W_dec.T)


def planted_task(n: int = 8000, d: int = 24, d_sae: int = 12, spurious_scale: float = 3.0, seed: int = 0
                 ) -> tuple[torch.Tensor, np.ndarray, np.ndarray, OrthonormalDictionary]:
    """A toy SHIFT task where each label is one latent: ``x = sum_j c_j W_dec[j] + noise`` with latent 0
    = the intended label y, latent 1 = ``spurious_scale`` * the spurious label z (louder than y), the
    other latents random sparse. Returns ``X: [n, d]``, ``y``, ``z`` and the exact dictionary."""
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.linalg.qr(torch.randn(d, d, generator=g))[0][:d_sae]  # orthonormal rows
    y = (torch.rand(n, generator=g) < 0.5).numpy()
    z = (torch.rand(n, generator=g) < 0.5).numpy()
    codes = torch.rand(n, d_sae, generator=g) * (torch.rand(n, d_sae, generator=g) < 0.2)
    codes[:, 0] = torch.as_tensor(y, dtype=torch.float32)
    codes[:, 1] = torch.as_tensor(z, dtype=torch.float32) * spurious_scale
    X = codes @ W_dec + 0.05 * torch.randn(n, d, generator=g)
    return X, y, z, OrthonormalDictionary(W_dec)
