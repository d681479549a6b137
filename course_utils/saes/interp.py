"""Scoring units (SAE latents, neurons, random directions) against ground-truth concepts.

A unit is monosemantic when one concept explains where it fires. Best-concept F1 over a few broad
labels (the appendix's score) penalises specific features: a latent firing on ``self`` inside
argument lists has low recall for "name". So the vocabulary is widened (:func:`concept_vocabulary`):

- the structural labels of :mod:`course_utils.labels` (``in_string``, ``token:name``, ``stmt:def``, ...)
  and every pairwise AND of them (e.g. ``token:name&in_string``, a name inside a string);
- the current token (``tok=…``), the previous token (``prev=…``), the bigram (``prev=…&tok=…``) and
  the current token with each structural label (``tok=…&in_string``);

keeping concepts that hold on at least ``min_count`` tokens. A unit *fires* on a token when its
activation exceeds ``fire_fraction`` (default ½) of its maximum over the scored tokens. For unit u
and concept c: precision P(c | u fires), recall P(u fires | c), base rate P(c). The score
(:func:`monosemanticity`) is the best **chance-corrected precision** (P(c | fires) − P(c)) / (1 − P(c))
over concepts with recall ≥ ``recall_floor`` (default 0.5): 1 when the unit fires only where one
concept holds and on at least half of that concept's tokens, ≈ 0 for a unit whose firing is unrelated
to every concept. Raw precision (uncorrected) is reported too, and the activation-weighted specificity:
the share of the unit's positive activation mass on tokens of that best concept. Ties between
concepts of equal score go to the one with the higher recall (the tighter fit).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from course_utils.saes.base import SAE


@dataclass
class ConceptSet:
    """Boolean concepts over ``n_tokens`` tokens: ``matrix`` (scipy CSC, [n_tokens, n_concepts])."""

    names: list[str]
    matrix: Any
    counts: np.ndarray  # [n_concepts]

    @property
    def n_tokens(self) -> int:
        return int(self.matrix.shape[0])

    def holds(self, name: str) -> np.ndarray:
        """The bool [n_tokens] of concept ``name``."""
        if name not in self.names:
            raise ValueError(f"unknown concept {name!r}")
        return self.matrix[:, self.names.index(name)].toarray().ravel().astype(bool)


def _family(keys: np.ndarray, name_of: Callable[[int], str], rows: list[np.ndarray], cols: list[np.ndarray],
            names: list[str], min_count: int, mask: np.ndarray | None = None) -> None:
    """Add one concept per distinct key (an int per token; -1 = none) held by ≥ min_count tokens."""
    idx = np.nonzero(keys >= 0 if mask is None else (keys >= 0) & mask)[0]
    if len(idx) == 0:
        return
    uniq, inv, counts = np.unique(keys[idx], return_inverse=True, return_counts=True)
    keep = counts >= min_count
    col_of = np.full(len(uniq), -1)
    col_of[keep] = np.arange(int(keep.sum())) + len(names)
    here = col_of[inv]
    ok = here >= 0
    rows.append(idx[ok])
    cols.append(here[ok])
    names.extend(name_of(int(k)) for k in uniq[keep])


def concept_vocabulary(tokens: list[str], prev: list[str], structural: dict[str, np.ndarray],
                       min_count: int = 10, token_combos: bool = True) -> ConceptSet:
    """The widened vocabulary of the module docstring over tokens with strings ``tokens``, previous
    tokens ``prev`` (``""`` at a text's start) and bool arrays ``structural[name]: [n_tokens]``."""
    from scipy import sparse

    n = len(tokens)
    if len(prev) != n:
        raise ValueError(f"prev has {len(prev)} entries, tokens {n}")
    if not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a positive int, got {min_count!r}")
    for c, v in structural.items():
        if np.asarray(v).shape != (n,):
            raise ValueError(f"structural[{c!r}] has shape {np.asarray(v).shape}, expected ({n},)")
    s_names = list(structural)
    S = np.stack([np.asarray(structural[c], bool) for c in s_names], 1) if s_names else np.zeros((n, 0), bool)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    names: list[str] = []

    def add(name: str, holds: np.ndarray) -> None:
        if holds.sum() >= min_count:
            rows.append(np.nonzero(holds)[0])
            cols.append(np.full(int(holds.sum()), len(names)))
            names.append(name)

    for j, c in enumerate(s_names):
        add(c, S[:, j])
    for a, b in itertools.combinations(range(len(s_names)), 2):
        add(f"{s_names[a]}&{s_names[b]}", S[:, a] & S[:, b])
    vocab = {t: i for i, t in enumerate(sorted(set(tokens) | set(prev)))}
    inv_vocab = {i: t for t, i in vocab.items()}
    cur = np.array([vocab[t] for t in tokens])
    prv = np.array([vocab[t] if t else -1 for t in prev])
    V = len(vocab)
    _family(cur, lambda k: f"tok={inv_vocab[k]!r}", rows, cols, names, min_count)
    _family(prv, lambda k: f"prev={inv_vocab[k]!r}", rows, cols, names, min_count)
    _family(np.where(prv >= 0, prv * V + cur, -1),
            lambda k: f"prev={inv_vocab[k // V]!r}&tok={inv_vocab[k % V]!r}", rows, cols, names, min_count)
    if token_combos:
        for j, c in enumerate(s_names):
            _family(cur, lambda k, c=c: f"tok={inv_vocab[k]!r}&{c}", rows, cols, names, min_count, mask=S[:, j])
    r = np.concatenate(rows) if rows else np.zeros(0, int)
    cidx = np.concatenate(cols) if cols else np.zeros(0, int)
    M = sparse.csc_matrix((np.ones(len(r), np.float32), (r, cidx)), shape=(n, len(names)))
    M.sum_duplicates()
    M.data[:] = 1.0
    return ConceptSet(names, M, np.asarray(M.sum(0)).ravel())


@dataclass
class UnitScores:
    """Per unit: the score, its best concept, that concept's raw precision and recall, and the
    activation-weighted specificity; ``fires`` = number of tokens the unit fires on (0 = unscored)."""

    score: np.ndarray
    best: list[str]
    precision: np.ndarray
    recall: np.ndarray
    weighted: np.ndarray
    fires: np.ndarray

    def summary(self, min_fires: int = 1) -> dict[str, float]:
        ok = self.fires >= min_fires
        s = self.score[ok]
        if len(s) == 0:
            return {"n_scored": 0}
        return {"n_scored": int(ok.sum()), "median": round(float(np.median(s)), 4),
                "mean": round(float(s.mean()), 4), "best": round(float(s.max()), 4),
                "frac_above_0.5": round(float((s > 0.5).mean()), 4),
                "median_weighted": round(float(np.median(self.weighted[ok])), 4)}


def monosemanticity(acts: np.ndarray | torch.Tensor, concepts: ConceptSet, recall_floor: float = 0.5,
                    fire_fraction: float = 0.5, chunk: int = 256) -> UnitScores:
    """Score every unit (column of ``acts: [n_tokens, n_units]``) as the module docstring defines.
    A unit that never exceeds zero fires nowhere and scores 0."""
    a = acts.detach().cpu().numpy() if isinstance(acts, torch.Tensor) else np.asarray(acts)
    a = a.astype(np.float64)
    if a.ndim != 2 or a.shape[0] != concepts.n_tokens:
        raise ValueError(f"acts must be [n_tokens={concepts.n_tokens}, n_units], got shape {a.shape}")
    if not 0.0 < recall_floor <= 1.0:
        raise ValueError(f"recall_floor must lie in (0, 1], got {recall_floor}")
    if not 0.0 <= fire_fraction < 1.0:
        raise ValueError(f"fire_fraction must lie in [0, 1), got {fire_fraction}")
    n, u = a.shape
    base = concepts.counts / n  # [c]
    CT = concepts.matrix.T.tocsr()  # [c, n]
    out = {k: np.zeros(u) for k in ("score", "precision", "recall", "weighted", "fires")}
    best: list[str] = [""] * u
    for lo in range(0, u, chunk):
        block = a[:, lo:lo + chunk]  # [n, b]
        top = block.max(0)
        fires = (block > fire_fraction * top) & (top > 0)  # [n, b]
        n_fire = fires.sum(0)  # [b]
        tp = np.asarray(CT @ fires.astype(np.float64))  # [c, b]
        prec = tp / np.maximum(n_fire, 1)
        rec = tp / np.maximum(concepts.counts[:, None], 1)
        corrected = (prec - base[:, None]) / np.maximum(1 - base[:, None], 1e-12)
        corrected = np.where(rec >= recall_floor, corrected, -np.inf)
        j = (corrected + 1e-6 * rec).argmax(0)  # [b]; ties (e.g. 'self' vs 'name' at precision 1) go to recall
        cols = np.arange(block.shape[1])
        score = np.where(n_fire > 0, np.maximum(corrected[j, cols], 0.0), 0.0)
        pos = np.maximum(block, 0)
        mass = np.asarray(CT @ pos)[j, cols] / np.maximum(pos.sum(0), 1e-12)
        has = (n_fire > 0) & np.isfinite(corrected[j, cols])
        out["score"][lo:lo + chunk] = score
        out["precision"][lo:lo + chunk] = np.where(has, prec[j, cols], 0.0)
        out["recall"][lo:lo + chunk] = np.where(has, rec[j, cols], 0.0)
        out["weighted"][lo:lo + chunk] = np.where(has, mass, 0.0)
        out["fires"][lo:lo + chunk] = n_fire
        for b in range(block.shape[1]):
            best[lo + b] = concepts.names[j[b]] if has[b] else ""
    return UnitScores(out["score"], best, out["precision"], out["recall"], out["weighted"],
                      out["fires"].astype(int))


# ------------------------------------------------------------------------------------------------
# On the course model


@dataclass
class LabelledActivations:
    """Activations ``acts: [n, d]`` at a hook over validation text, with each token's string, the
    previous token's string ("" at a text's start) and the structural labels."""

    acts: torch.Tensor
    tokens: list[str]
    prev: list[str]
    labels: dict[str, np.ndarray]


@torch.no_grad()
def labelled_activations(model: Any, tokenizer: Any, hook_name: str, n_tokens: int = 16_384,
                         split: str = "validation", seed: int = 1) -> LabelledActivations:
    """Activations at ``hook_name`` on parsable files of ``split`` (seeded order), window by window."""
    from course_utils.corpus import load_corpus
    from course_utils.labels import LabelError, token_labels

    if hook_name not in model.hook_dict:
        raise ValueError(f"the model has no hook {hook_name!r}")
    files = load_corpus(split)  # type: ignore[arg-type]
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
    n_ctx = model.cfg.n_ctx
    acts, toks, prev = [], [], []
    labs: list[dict[str, np.ndarray]] = []
    total = 0
    for i in order:
        if total >= n_tokens:
            break
        try:
            tl = token_labels(files[i].text, tokenizer)
        except LabelError:
            continue
        ids = torch.tensor(tokenizer.encode(files[i].text).ids)
        keep = min(len(ids), n_tokens - total)
        windows = [ids[s:min(s + n_ctx, keep)] for s in range(0, keep, n_ctx)]
        for w in windows:
            _, cache = model.run_with_cache(w[None], names_filter=hook_name)
            acts.append(cache[hook_name][0].float())
        toks.extend(tl.tokens[:keep])
        prev.extend([""] + tl.tokens[:keep - 1])
        labs.append({c: v[:keep] for c, v in tl.values.items()})
        total += keep
    names = list(labs[0])
    return LabelledActivations(torch.cat(acts), toks, prev, {c: np.concatenate([d[c] for d in labs]) for c in names})


def random_directions(d: int, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` random unit vectors in R^d: [d, n] (a seeded Gaussian, normalised)."""
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(d, n, generator=g)
    return r / r.norm(dim=0, keepdim=True)


@torch.no_grad()
def score_units_at_hook(sae: SAE, data: LabelledActivations, recall_floor: float = 0.5,
                        min_count: int = 10, seed: int = 0) -> dict[str, UnitScores]:
    """Scores of the SAE's latents, the hook's basis directions (the neurons, at an MLP hook) and as
    many random unit directions, on the same tokens and concepts."""
    concepts = concept_vocabulary(data.tokens, data.prev, data.labels, min_count=min_count)
    x = data.acts
    latents = sae.encode(x.to(sae.W_dec.dtype))
    d = x.shape[-1]
    return {"latents": monosemanticity(latents, concepts, recall_floor),
            "neurons": monosemanticity(x, concepts, recall_floor),
            "random": monosemanticity(x @ random_directions(d, d, seed), concepts, recall_floor)}


def score_course_sae(model: Any, tokenizer: Any, sae: SAE, hook_name: str, n_tokens: int = 16_384,
                     recall_floor: float = 0.5) -> dict[str, Any]:
    """The monosemanticity summaries (latents vs basis directions vs random directions) recorded in a
    course SAE's training log."""
    data = labelled_activations(model, tokenizer, hook_name, n_tokens)
    scores = score_units_at_hook(sae, data, recall_floor)
    return {"recall_floor": recall_floor, "fire_fraction": 0.5, "n_tokens": len(data.tokens),
            **{k: v.summary() for k, v in scores.items()}}


def unit_score(acts: torch.Tensor, concepts: torch.Tensor, recall_floor: float = 0.5,
               fire_fraction: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """One unit's score as :func:`monosemanticity` defines it, in torch: ``acts: [n_tokens]``,
    ``concepts: bool [n_tokens, n_concepts]`` -> (score (0-d, acts' dtype), best concept (0-d long;
    -1 when the unit never fires or no concept reaches the recall floor))."""
    top = acts.max()
    fires = (acts > fire_fraction * top) & (top > 0)  # [n]
    c = concepts.to(acts.dtype)
    n_fire = fires.sum()
    tp = fires.to(acts.dtype) @ c  # [n_concepts]
    prec = tp / n_fire.clamp_min(1)
    rec = tp / c.sum(0).clamp_min(1)
    base = c.mean(0)
    corrected = (prec - base) / (1 - base).clamp_min(1e-12)
    corrected = torch.where(rec >= recall_floor, corrected, torch.full_like(corrected, -torch.inf))
    if n_fire == 0 or not torch.isfinite(corrected).any():
        return acts.new_zeros(()), torch.tensor(-1, device=acts.device)
    j = (corrected + 1e-6 * rec).argmax()
    return corrected[j].clamp_min(0), j
