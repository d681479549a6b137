"""The toy-only metrics of chapter 4 on hand-built dictionaries: prefix recovery, absorption read from
the decoder, matched / missed / duplicate counts, the GBA bias update; and their bad-input errors."""

from __future__ import annotations

import pytest
import torch

from course_utils.saes.gba import adapt_bias, group_of, group_targets
from course_utils.saes.metrics import child_parent_cosines, matched_counts, prefix_max_cosines

E = torch.eye(4)  # four orthogonal "features" in R^4


def test_prefix_max_cosines_grow_with_the_prefix():
    W_dec = torch.stack([E[0] + E[1], E[0], E[1], E[2]])  # first row merges features 0 and 1
    best = prefix_max_cosines(W_dec, E, [1, 2, 4])
    assert best.shape == (3, 4)
    assert torch.allclose(best[0], torch.tensor([0.5**0.5, 0.5**0.5, 0.0, 0.0]))
    assert torch.allclose(best[2], torch.tensor([1.0, 1.0, 1.0, 0.0]))
    assert (best[1:] >= best[:-1] - 1e-7).all()


def test_child_parent_cosines_see_an_absorbed_parent():
    # parents 0 and 1; child 2 belongs to parent 0, child 3 to parent 1
    parent_of = torch.tensor([0, 1])
    clean = torch.stack([E[0], E[1], E[2], E[3]])
    absorbed = torch.stack([E[0], E[1], E[2] + E[0], E[3]])  # child 2's latent carries its parent
    assert torch.allclose(child_parent_cosines(clean, E, parent_of), torch.zeros(2))
    got = child_parent_cosines(absorbed, E, parent_of)
    assert torch.allclose(got, torch.tensor([0.5**0.5, 0.0]))
    with pytest.raises(ValueError, match="parents first"):
        child_parent_cosines(clean, E, torch.tensor([0, 3]))


def test_matched_counts_find_misses_and_duplicates():
    W_dec = torch.stack([E[0], E[0] * 2, E[1] + E[2], torch.ones(4)])
    counts = matched_counts(W_dec, E)
    assert counts == dict(found=1, missed=3, duplicates=1, other=2)
    alive = torch.tensor([True, False, True, True])
    assert matched_counts(W_dec, E, alive)["duplicates"] == 0


def test_prefixes_must_fit_the_dictionary():
    with pytest.raises(ValueError, match="prefixes must be ints in"):
        prefix_max_cosines(E, E, [5])
    with pytest.raises(ValueError, match="prefixes must be ints in"):
        prefix_max_cosines(E, E, [])


def test_group_targets_are_geometric_and_grouped():
    t = group_targets(8, 4, 0.1, 0.001)
    assert torch.allclose(t[::2], torch.tensor([0.1, 10**(-5 / 3), 10**(-7 / 3), 0.001]), rtol=1e-5)
    assert torch.equal(t[::2], t[1::2])
    assert torch.equal(group_of(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))


def test_adapt_bias_follows_the_rule():
    """Too frequent: down by γ r_m (floored at −b_max); dead: up by γ₊ × the group's mean r over latents
    that fired (capped at 0); in between: unchanged. Inputs are not modified."""
    b = torch.tensor([-0.5, -0.5, -0.05, -0.99])
    freq = torch.tensor([0.2, 0.05, 0.0, 0.3])
    r = torch.tensor([2.0, 1.0, 0.0, 1.0])
    group = torch.tensor([0, 0, 0, 1])
    target = torch.full((4,), 0.1)
    before = b.clone()
    new = adapt_bias(b, freq, r, target, group, gamma=0.1, gamma_up=0.1, b_max=1.0)
    assert torch.equal(b, before)
    # group 0's latents that fired have r = 2, 1: mean 1.5, so the dead one moves up by 0.15, capped at 0
    assert torch.allclose(new, torch.tensor([-0.7, -0.5, 0.0, -1.0]))
