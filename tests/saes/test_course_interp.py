"""Scoring units against ground-truth concepts (course_utils.saes.interp) on small synthetic data where
the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.saes.interp import concept_vocabulary, monosemanticity, random_directions


def toy(n: int = 600, seed: int = 0):
    """Random tokens from a small vocabulary; ``in_string`` holds on a random third of them."""
    rng = np.random.default_rng(seed)
    vocab = ["self", "def", "(", ")", "x", "return", ":", "␣"]
    toks = [vocab[i] for i in rng.integers(0, len(vocab), n)]
    prev = [""] + toks[:-1]
    in_string = rng.random(n) < 1 / 3
    is_name = np.array([t in ("self", "x") for t in toks])
    return toks, prev, {"in_string": in_string, "token:name": is_name}


def unit(mask: np.ndarray, rng_seed: int = 1) -> np.ndarray:
    """A unit that fires (values in [1, 2]) exactly where ``mask`` holds and is 0 elsewhere."""
    rng = np.random.default_rng(rng_seed)
    return np.where(mask, 1 + rng.random(len(mask)), 0.0)


def test_vocabulary_widens_with_tokens_bigrams_and_combinations():
    toks, prev, s = toy(n=2000)
    cs = concept_vocabulary(toks, prev, s, min_count=5)
    for name in ("in_string", "token:name", "in_string&token:name", "tok='self'", "prev='def'",
                 "prev='def'&tok='('", "tok='self'&in_string"):
        assert name in cs.names, name
    t = np.array(toks)
    assert np.array_equal(cs.holds("tok='self'&in_string"), (t == "self") & s["in_string"])
    assert np.array_equal(cs.holds("prev='def'&tok='('"), (np.array(prev) == "def") & (t == "("))
    assert cs.counts.min() >= 5
    # min_count is a real filter: raising it drops the rarer concepts
    assert len(concept_vocabulary(toks, prev, s, min_count=40).names) < len(cs.names)


def test_exact_unit_scores_one_and_names_its_concept():
    toks, prev, s = toy()
    cs = concept_vocabulary(toks, prev, s, min_count=5)
    t = np.array(toks)
    acts = np.stack([unit(t == "self"), unit((t == "x") & s["in_string"])], 1)
    sc = monosemanticity(acts, cs)
    assert sc.best == ["tok='self'", "tok='x'&in_string"]
    assert np.allclose(sc.score, 1.0) and np.allclose(sc.precision, 1.0) and np.allclose(sc.recall, 1.0)
    assert np.allclose(sc.weighted, 1.0)


def test_unrelated_unit_scores_near_zero_not_its_base_rate():
    """Independence from the concepts: a unit firing on a random half of tokens has precision equal to
    each concept's base rate; the chance-corrected score is ≈ 0 (raw precision would not be)."""
    toks, prev, s = toy(n=4000)
    cs = concept_vocabulary(toks, prev, s, min_count=5)
    rng = np.random.default_rng(5)
    acts = np.where(rng.random((4000, 20)) < 0.5, 1.0, 0.0)
    sc = monosemanticity(acts, cs)
    assert sc.score.max() < 0.1
    assert sc.precision.max() > 0.3  # raw precision of a broad concept, what the correction removes


def test_recall_floor_boundary():
    """A unit firing on 30% of 'self' tokens (and nothing else) is monosemantic with a floor of 0.25 but
    not with 0.5 (parameters at a boundary)."""
    toks, prev, s = toy(n=3000)
    cs = concept_vocabulary(toks, prev, s, min_count=5)
    t = np.array(toks)
    rng = np.random.default_rng(2)
    mask = (t == "self") & (rng.random(len(t)) < 0.3)
    acts = unit(mask)[:, None]
    low = monosemanticity(acts, cs, recall_floor=0.25)
    high = monosemanticity(acts, cs, recall_floor=0.5)
    assert low.score[0] > 0.95 and low.recall[0] >= 0.25
    assert high.score[0] < 0.5  # no concept it explains has recall >= 0.5


def test_fire_fraction_and_silent_units():
    """Firing = above half the unit's maximum: small activations elsewhere do not count; a unit that is
    never positive scores 0 with no concept."""
    toks, prev, s = toy()
    cs = concept_vocabulary(toks, prev, s, min_count=5)
    t = np.array(toks)
    acts = np.stack([unit(t == "def") + 0.1 * (t != "def"), -np.ones(len(t))], 1)
    sc = monosemanticity(acts, cs)
    assert sc.best[0] == "tok='def'" and sc.score[0] == pytest.approx(1.0)
    assert sc.score[1] == 0 and sc.best[1] == "" and sc.fires[1] == 0
    # with fire_fraction 0 the background counts as firing and the score drops
    assert monosemanticity(acts[:, :1], cs, fire_fraction=0.0).score[0] < 0.5


def test_random_directions_seeded_unit_norm():
    a, b = random_directions(16, 5, seed=3), random_directions(16, 5, seed=3)
    assert a.shape == (16, 5) and np.allclose(a.norm(dim=0).numpy(), 1.0)
    assert np.array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), random_directions(16, 5, seed=4).numpy())


def test_bad_input():
    toks, prev, s = toy(n=50)
    with pytest.raises(ValueError, match="prev has"):
        concept_vocabulary(toks, prev[:-1], s)
    with pytest.raises(ValueError, match="expected \\(50,\\)"):
        concept_vocabulary(toks, prev, {"in_string": np.zeros(49, bool)})
    with pytest.raises(ValueError, match="min_count"):
        concept_vocabulary(toks, prev, s, min_count=0)
    cs = concept_vocabulary(toks, prev, s, min_count=2)
    with pytest.raises(ValueError, match="n_tokens=50"):
        monosemanticity(np.zeros((49, 3)), cs)
    with pytest.raises(ValueError, match="recall_floor"):
        monosemanticity(np.zeros((50, 3)), cs, recall_floor=0.0)
    with pytest.raises(ValueError, match="fire_fraction"):
        monosemanticity(np.zeros((50, 3)), cs, fire_fraction=1.0)
