"""Toy data with known features (Sharkey, Braun, Millidge 2022, "Taking features out of superposition
with sparse autoencoders"), plus a hierarchical toy for Matryoshka SAEs.

Flat toy: ``n_features`` random unit vectors in ℝ^d; feature i is present with probability p_i ∝
decay^i, rescaled so that on average ``n_active`` features are present; a present feature has a
coefficient uniform on [0, 1); x = Σ_i c_i F_i. (The paper: d = 256, 512 features, mean 5 active;
the course's CPU size d = 64, 128 features.)

Hierarchical toy: ``n_parents`` parent features, each with ``n_children`` children; a parent is present
with probability ``p_parent``; when it is, exactly one of its children is present too (chosen
uniformly), with its own coefficient. Children fire only with their parent, so an SAE can lower its
loss by absorbing the parent's direction into each child latent ("feature absorption", Chanin et al.
2024); Matryoshka's small prefixes resist this.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from course_utils._validate import check_float, check_int

TOY_SEED_OFFSET = 1_000_003  # toy features never share a random stream with an SAE seeded alike


def random_unit_vectors(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """n random directions in ℝ^d: [n, d]."""
    v = torch.randn(n, d, generator=generator)
    return v / v.norm(dim=1, keepdim=True)


@dataclass
class ToyData:
    """Sparse combinations of known unit-norm features. ``features: [n_features, d]``,
    ``probabilities: [n_features]``."""

    features: torch.Tensor
    probabilities: torch.Tensor

    @property
    def d(self) -> int:
        return self.features.shape[1]

    def sample_coefficients(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """c: [batch, n_features], c_i = U[0, 1) where feature i is present, else 0."""
        batch_size = check_int(batch_size, "batch_size")
        n = self.probabilities.shape[0]
        present = torch.rand(batch_size, n, generator=generator) < self.probabilities
        return torch.rand(batch_size, n, generator=generator) * present

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """x = c @ features: [batch, d]."""
        return self.sample_coefficients(batch_size, generator) @ self.features


def sharkey_toy(d: int = 64, n_features: int = 128, n_active: float = 5.0, decay: float = 0.99,
                seed: int = 0) -> ToyData:
    """The flat toy with feature probabilities ∝ decay^i scaled to a mean of ``n_active`` present."""
    d, n_features = check_int(d, "d"), check_int(n_features, "n_features")
    n_active = check_float(n_active, "n_active", low=1e-9, high=float(n_features))
    decay = check_float(decay, "decay", low=1e-9, high=1.0)
    g = torch.Generator().manual_seed(TOY_SEED_OFFSET + seed)
    features = random_unit_vectors(n_features, d, g)
    p = decay ** torch.arange(n_features, dtype=torch.float32)
    p = (p * n_active / p.sum()).clamp(max=1.0)
    return ToyData(features, p)


@dataclass
class HierarchicalToy(ToyData):
    """Parents (rows 0..n_parents−1 of ``features``) and their children (the rows after them, in
    parent order). ``parent_of: [n_children_total]``."""

    parent_of: torch.Tensor
    n_parents: int
    p_parent: float

    def sample_coefficients(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        batch_size = check_int(batch_size, "batch_size")
        P = self.n_parents
        per = self.parent_of.shape[0] // P
        parent_on = torch.rand(batch_size, P, generator=generator) < self.p_parent
        which = torch.randint(per, (batch_size, P), generator=generator)
        child_on = torch.zeros(batch_size, P, per, dtype=torch.bool)
        child_on.scatter_(2, which[..., None], True)
        child_on &= parent_on[..., None]
        present = torch.cat([parent_on, child_on.reshape(batch_size, -1)], dim=1)
        return torch.rand(batch_size, present.shape[1], generator=generator) * present


def hierarchical_toy(d: int = 64, n_parents: int = 16, n_children: int = 4, p_parent: float = 0.15,
                     seed: int = 0) -> HierarchicalToy:
    """Parents with mutually exclusive children; all directions random unit vectors in ℝ^d."""
    d, n_parents, n_children = check_int(d, "d"), check_int(n_parents, "n_parents"), check_int(n_children, "n_children")
    p_parent = check_float(p_parent, "p_parent", low=0.0, high=1.0)
    g = torch.Generator().manual_seed(TOY_SEED_OFFSET + seed)
    features = random_unit_vectors(n_parents * (1 + n_children), d, g)
    parent_of = torch.arange(n_parents).repeat_interleave(n_children)
    p = torch.cat([torch.full((n_parents,), p_parent), torch.full((n_parents * n_children,), p_parent / n_children)])
    return HierarchicalToy(features, p, parent_of, n_parents, p_parent)


def recovery_by_active_count(sae: torch.nn.Module, toy: ToyData, batch_size: int = 8192, seed: int = 7,
                             max_active: int = 3) -> list[dict[str, float]]:
    """How well an SAE decodes toy examples with 1, 2, … present features: per count, the share of such
    examples, the relative squared error ‖x − x̂‖² / E‖x − x̄‖², and the share whose active latents
    name exactly the present features (each latent read as its best-matching true feature)."""
    batch_size = check_int(batch_size, "batch_size")
    max_active = check_int(max_active, "max_active")
    c = toy.sample_coefficients(batch_size, torch.Generator().manual_seed(seed))  # [batch, n_features]
    x = c @ toy.features
    with torch.no_grad():
        f = sae.encode(x)
        x_hat = sae.decode(f)
    W = sae.W_dec.detach()
    latent_feature = (W / W.norm(dim=1, keepdim=True).clamp_min(1e-12) @ toy.features.T).argmax(1)  # [d_sae]
    named = torch.zeros_like(c, dtype=torch.bool)
    rows, cols = torch.nonzero(f > 0, as_tuple=True)
    named[rows, latent_feature[cols]] = True
    exact = (named == (c > 0)).all(1)
    err = (x_hat - x).pow(2).sum(1) / (x - x.mean(0)).pow(2).sum(1).mean()
    n = (c > 0).sum(1)
    out = []
    for count in range(1, max_active + 1):
        sel = n == count
        if sel.any():
            out.append(dict(n_active=count, share=sel.double().mean().item(), rel_error=err[sel].mean().item(),
                            exact_support=exact[sel].double().mean().item()))
    return out
