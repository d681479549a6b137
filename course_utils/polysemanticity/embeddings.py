"""Chapter 1: features as directions, a tiny word-embedding model trained on a synthetic corpus
(embedding arithmetic, attribute directions)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from course_utils._validate import check_int as _check_int
from course_utils._validate import check_tensor as _check_tensor
from course_utils.device import one_thread

# Features as directions: a tiny word-embedding model with embedding arithmetic

WORDS = ["man", "woman", "boy", "girl", "king", "queen", "prince", "princess"]
# (female, royal, child) for each word
WORD_ATTRIBUTES = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 0, 1], [1, 0, 1],
                                [0, 1, 0], [1, 1, 0], [0, 1, 1], [1, 1, 1]], dtype=torch.float64)
CONTEXTS = ["he", "his", "she", "her", "crown", "throne", "palace", "farm", "market", "school", "toys", "work"]
# each attribute value makes some context words likelier (log-odds +2)
_CONTEXT_AFFINITY = {
    (0, 0): ["he", "his"], (0, 1): ["she", "her"],
    (1, 0): ["farm", "market"], (1, 1): ["crown", "throne", "palace"],
    (2, 0): ["work"], (2, 1): ["school", "toys"],
}


def word_context_counts(n_per_word: int = 5000, seed: int = 0) -> torch.Tensor:
    """A synthetic corpus as co-occurrence counts ``[8 words, 12 contexts]``: each word's contexts are
    sampled from a softmax whose log-odds add up one +2 bump per attribute value (gender, royalty, age)."""
    _check_int(n_per_word, "n_per_word")
    _check_int(seed, "seed", 0)
    logits = torch.zeros(len(WORDS), len(CONTEXTS), dtype=torch.float64)
    for w, attrs in enumerate(WORD_ATTRIBUTES.long().tolist()):
        for a, v in enumerate(attrs):
            for c in _CONTEXT_AFFINITY[(a, v)]:
                logits[w, CONTEXTS.index(c)] += 2.0
    g = torch.Generator().manual_seed(seed)
    samples = torch.multinomial(logits.softmax(-1), n_per_word, replacement=True, generator=g)
    return nn.functional.one_hot(samples, len(CONTEXTS)).sum(1).to(torch.float32)


def train_word_embeddings(counts: torch.Tensor, dim: int = 3, steps: int = 800, lr: float = 0.03,
                          seed: int = 0) -> torch.Tensor:
    """Fit word embeddings ``E: [n_words, dim]`` and context vectors by maximising the likelihood of the
    co-occurrence counts under p(context | word) = softmax(U E_word + c). Returns E."""
    counts = _check_tensor(counts, "counts", 2, "[n_words, n_contexts]")
    if (counts < 0).any():
        raise ValueError("counts must be non-negative co-occurrence counts")
    _check_int(dim, "dim", 2)
    _check_int(steps, "steps")
    _check_int(seed, "seed", 0)
    g = torch.Generator().manual_seed(seed)
    E = (0.1 * torch.randn(counts.shape[0], dim, generator=g)).requires_grad_()
    U = (0.1 * torch.randn(counts.shape[1], dim, generator=g)).requires_grad_()
    c = torch.zeros(counts.shape[1], requires_grad=True)
    opt = torch.optim.Adam([E, U, c], lr=lr)
    total = counts.sum()
    with one_thread():
        for _ in range(steps):
            opt.zero_grad()
            loss = -(counts * (E @ U.T + c).log_softmax(-1)).sum() / total
            loss.backward()
            opt.step()
    return E.detach()


def analogy(E: torch.Tensor, a: str, b: str, c: str, words: Sequence[str] = WORDS) -> tuple[str, float]:
    """Solve "a is to b as c is to ?": the word (other than a, b, c) whose embedding has the largest cosine
    with ``E[b] − E[a] + E[c]``; returns (word, cosine)."""
    E = _check_tensor(E, "E", 2, "[n_words, dim]")
    words = list(words)
    if E.shape[0] != len(words):
        raise ValueError(f"E must have one row per word: expected {len(words)} rows, got {E.shape[0]}")
    for w in (a, b, c):
        if w not in words:
            raise ValueError(f"{w!r} is not in the vocabulary {words}")
    target = E[words.index(b)] - E[words.index(a)] + E[words.index(c)]
    cos = (E @ target) / (E.norm(dim=1) * target.norm()).clamp_min(1e-12)
    for w in (a, b, c):
        cos[words.index(w)] = -math.inf
    i = int(cos.argmax())
    return words[i], float(cos[i])


def analogy_accuracy(E: torch.Tensor) -> tuple[float, int]:
    """Fraction of all one-attribute analogies of the 8-word vocabulary solved exactly by
    :func:`analogy` (a, b differ in one attribute; c shares a's value of it), and how many there are."""
    E = _check_tensor(E, "E", 2, "[8, dim]")
    if E.shape[0] != len(WORDS):
        raise ValueError(f"E must have {len(WORDS)} rows (one per word of WORDS), got {E.shape[0]}")
    attrs = WORD_ATTRIBUTES.long().tolist()
    good = total = 0
    for ia, ib, ic in itertools.permutations(range(len(WORDS)), 3):
        diff = [i for i in range(3) if attrs[ia][i] != attrs[ib][i]]
        if len(diff) != 1:
            continue
        f = diff[0]
        if attrs[ic][f] != attrs[ia][f]:
            continue
        want = list(attrs[ic])
        want[f] = attrs[ib][f]
        target = WORDS[attrs.index(want)]
        total += 1
        good += analogy(E, WORDS[ia], WORDS[ib], WORDS[ic])[0] == target
    return good / total, total


def attribute_directions(E: torch.Tensor) -> torch.Tensor:
    """For each attribute (female, royal, child), the unit vectors of the 4 differences E[word with it] −
    E[same word without it]: ``[3 attributes, 4 pairs, dim]``."""
    E = _check_tensor(E, "E", 2, "[8, dim]")
    if E.shape[0] != len(WORDS):
        raise ValueError(f"E must have {len(WORDS)} rows, got {E.shape[0]}")
    attrs = WORD_ATTRIBUTES.long().tolist()
    out = []
    for f in range(3):
        diffs = []
        for i, a in enumerate(attrs):
            if a[f] == 0:
                other = list(a)
                other[f] = 1
                diffs.append(E[attrs.index(other)] - E[i])
        D = torch.stack(diffs)
        out.append(D / D.norm(dim=1, keepdim=True))
    return torch.stack(out)


# ----------------------------------------------------------------------------------------------
