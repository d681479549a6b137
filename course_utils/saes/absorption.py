"""Feature absorption (Chanin et al. 2024, "A is for Absorption"; SAEBench's absorption metric,
Karvonen et al. 2025), adapted from first-letter spelling to a concept the course's labels know.

For a concept c at a hook (e.g. ``token:keyword`` at the residual stream):

1. a logistic-regression probe on the activations gives the concept's direction p (unit norm) and says
   on which tokens the model represents c (the probe's true positives);
2. the *main latent* is the latent whose firing best matches c (highest F1: a 1-sparse probe);
3. on a true-positive token where the main latent does not fire, a firing latent *absorbs* c when
   its decoder row has cosine ≥ ``cos_min`` with p and the absorbing latents together carry at least
   ``share_min`` of the reconstruction's projection on p (SAEBench's thresholds: 0.025 and 0.4).

The absorption rate is the share of true-positive tokens on which c is absorbed. The main latent's
recall on true positives is reported too: a concept can also simply be missed (neither fired nor absorbed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Absorption:
    concept: str
    main_latent: int
    main_f1: float
    probe_f1: float
    n_true_positive: int
    main_recall: float  # share of probe true positives on which the main latent fires
    absorption_rate: float  # share of probe true positives absorbed by other latents
    absorbers: list[tuple[int, int]]  # (latent, tokens it absorbed on), most frequent first

    def row(self) -> dict[str, object]:
        return {"concept": self.concept, "main": self.main_latent, "main F1": round(self.main_f1, 2),
                "probe F1": round(self.probe_f1, 2), "TP": self.n_true_positive,
                "main fires": round(self.main_recall, 3), "absorbed": round(self.absorption_rate, 3)}


def probe(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """A logistic-regression probe of ``y: bool [n]`` on ``x: [n, d]`` fitted on the first half and
    applied everywhere: (unit direction [d] in activation space, predictions bool [n], F1 on the second half)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    if y.sum() < 10 or (~y).sum() < 10:
        raise ValueError(f"the concept holds on {int(y.sum())} of {len(y)} tokens: too few to probe")
    h = len(x) // 2
    mu, sd = x[:h].mean(0), x[:h].std(0) + 1e-6
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit((x[:h] - mu) / sd, y[:h])
    pred = clf.predict((x - mu) / sd).astype(bool)
    w = clf.coef_[0] / sd  # the direction in raw activation space
    return w / np.linalg.norm(w), pred, float(f1_score(y[h:], pred[h:]))


def best_f1_latent(f: torch.Tensor, y: np.ndarray) -> tuple[int, float]:
    """The latent whose firing (f > 0) has the highest F1 against ``y``: (index, F1). f: [n, m]."""
    fires = (f > 0).double()
    yt = torch.as_tensor(y, dtype=torch.float64)
    tp = yt @ fires
    f1 = 2 * tp / (fires.sum(0) + yt.sum()).clamp_min(1)
    j = int(f1.argmax())
    return j, float(f1[j])


def absorption(concept: str, x: torch.Tensor, f: torch.Tensor, W_dec: torch.Tensor, y: np.ndarray,
               cos_min: float = 0.025, share_min: float = 0.4, seed: int = 0) -> Absorption:
    """The absorption of the module docstring for concept ``y: bool [n]``, activations ``x: [n, d]``,
    latents ``f: [n, m]`` of an SAE with decoder ``W_dec: [m, d]``."""
    if not (len(x) == len(f) == len(y)) or W_dec.shape != (f.shape[1], x.shape[1]):
        raise ValueError(f"shapes do not fit: x {list(x.shape)}, f {list(f.shape)}, W_dec {list(W_dec.shape)}, "
                         f"y {np.shape(y)}")
    y = np.asarray(y, bool)
    p, pred, pf1 = probe(x.double().numpy(), y, seed)
    main, mf1 = best_f1_latent(f, y)
    pt = torch.as_tensor(p, dtype=torch.float64)
    Wd = W_dec.double()
    cos = (Wd / Wd.norm(dim=-1, keepdim=True).clamp_min(1e-12)) @ pt  # [m]
    tp = np.nonzero(pred & y)[0]
    ff = f[tp].double()  # [t, m]
    main_on = (ff[:, main] > 0).numpy()
    contrib = ff * (Wd @ pt)  # [t, m]: each latent's part of x_hat · p
    total = contrib.sum(1)
    cand = (ff > 0) & (cos >= cos_min)
    cand[:, main] = False
    share = (contrib * cand).sum(1) / total.clamp_min(1e-12)
    absorbed = (~main_on) & (share.numpy() >= share_min) & (total.numpy() > 0)
    counts: dict[int, int] = {}
    for t in np.nonzero(absorbed)[0]:
        j = int((contrib[t] * cand[t]).argmax())
        counts[j] = counts.get(j, 0) + 1
    n = max(len(tp), 1)
    return Absorption(concept, main, mf1, pf1, len(tp), float(main_on.sum() / n), float(absorbed.sum() / n),
                      sorted(counts.items(), key=lambda kv: -kv[1])[:8])
