"""Sparse autoencoders (chapter 4): every architecture behind one interface, trained by one loop.

Public API (pages and later chapters import from here)::

    from course_utils.saes import TopKSAE, TopKConfig, train_sae, TrainConfig, sharkey_toy, mmcs

    toy = sharkey_toy(d=64, n_features=128)
    sae = TopKSAE(TopKConfig(d_in=64, d_sae=256, k=5), generator=torch.Generator().manual_seed(0))
    log = train_sae(sae, toy, TrainConfig(steps=500))
    mmcs(sae.W_dec, toy.features)          # ≈ 1: every true feature has a matching decoder row
    sae.save("my_sae")                     # SAELens's format: cfg.json + sae_weights.safetensors

Architectures (class, config, ``architecture`` name): :class:`ReLUSAE` / :class:`ReLUConfig` ("relu",
Bricken et al. 2023), :class:`TopKSAE` / :class:`TopKConfig` ("topk", Gao et al. 2024),
:class:`BatchTopKSAE` / :class:`BatchTopKConfig` ("batchtopk"), :class:`JumpReLUSAE` /
:class:`JumpReLUConfig` ("jumprelu"), :class:`GatedSAE` / :class:`GatedConfig` ("gated"),
:class:`MatryoshkaSAE` / :class:`MatryoshkaConfig` ("matryoshka"), :class:`GBASAE` / :class:`GBAConfig`
("gba", group bias adaptation). :func:`make_sae` builds one by name; :data:`SHIPPED` holds the
hyperparameters the tests show reach MMCS ≥ 0.99 on the CPU toy, :data:`SHIPPED_TRAIN` /
:func:`shipped_train_config` the training settings that go with them.

Training: :func:`train_sae`, :class:`TrainConfig`, :class:`TrainLog`. Metrics: :func:`mmcs`, :func:`fvu`,
:func:`l0`, :func:`dead_fraction`, :func:`firing_frequencies`, :func:`norm_ratio`; on toys with known
features also :func:`prefix_max_cosines` (Matryoshka prefixes), :func:`child_parent_cosines`
(absorption on the hierarchical toy) and :func:`matched_counts` (missed / duplicated features). Data:
:func:`sharkey_toy`, :func:`hierarchical_toy`. Files: :func:`save_sae`, :func:`load_sae`.
Transcoders subclass :class:`SAE` with ``d_out != d_in``.
"""

from __future__ import annotations

from typing import Any

import torch

from course_utils.saes.base import SAE, LossParts, SAEConfig
from course_utils.saes.batchtopk import BatchTopKConfig, BatchTopKSAE
from course_utils.saes.gated import GatedConfig, GatedSAE
from course_utils.saes.gba import GBASAE, GBAConfig
from course_utils.saes.io import load_sae, save_sae
from course_utils.saes.jumprelu import JumpReLUConfig, JumpReLUSAE
from course_utils.saes.matryoshka import MatryoshkaConfig, MatryoshkaSAE
from course_utils.saes.metrics import (
    child_parent_cosines,
    dead_fraction,
    firing_frequencies,
    fvu,
    l0,
    matched_counts,
    mmcs,
    norm_ratio,
    prefix_max_cosines,
)
from course_utils.saes.relu import ReLUConfig, ReLUSAE
from course_utils.saes.topk import TopKConfig, TopKSAE
from course_utils.saes.toy import HierarchicalToy, ToyData, hierarchical_toy, sharkey_toy
from course_utils.saes.train import TrainConfig, TrainLog, train_sae

ARCHITECTURES: dict[str, type[SAE]] = {
    "relu": ReLUSAE, "topk": TopKSAE, "batchtopk": BatchTopKSAE, "jumprelu": JumpReLUSAE,
    "gated": GatedSAE, "matryoshka": MatryoshkaSAE, "gba": GBASAE,
}

#: Hyperparameters per architecture for the CPU toy (d = 64, 128 features, dictionary 256).
SHIPPED: dict[str, dict[str, Any]] = {
    "relu": dict(l1_coefficient=0.3),
    "topk": dict(k=5),
    "batchtopk": dict(k=5),
    "jumprelu": dict(l0_coefficient=0.03, bandwidth=0.05, init_threshold=0.05),
    "gated": dict(l1_coefficient=0.3),
    "matryoshka": dict(k=5, prefixes=(192, 256)),
    "gba": dict(p_max=0.07, p_min=0.02, gamma=0.01, gamma_up=0.01),
}

#: Training settings that differ from :class:`TrainConfig`'s defaults for an architecture on that toy
#: (group bias adaptation trains only the weights, by the reconstruction loss: a larger step helps).
SHIPPED_TRAIN: dict[str, dict[str, Any]] = {"gba": dict(lr=1e-2)}


def shipped_train_config(architecture: str, **overrides: Any) -> TrainConfig:
    """:class:`TrainConfig` with :data:`SHIPPED_TRAIN`'s settings for ``architecture``, then ``overrides``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}")
    return TrainConfig(**{**SHIPPED_TRAIN.get(architecture, {}), **overrides})


def make_sae(architecture: str, d_in: int, d_sae: int, seed: int = 0, **kwargs: Any) -> SAE:
    """Build an SAE by architecture name with a seeded initialisation; ``kwargs`` go to its config."""
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}")
    cls = ARCHITECTURES[architecture]
    return cls(cls.config_class(d_in=d_in, d_sae=d_sae, **kwargs), generator=torch.Generator().manual_seed(seed))


__all__ = [
    "ARCHITECTURES", "SHIPPED", "SHIPPED_TRAIN", "BatchTopKConfig", "BatchTopKSAE", "GBAConfig", "GBASAE", "GatedConfig",
    "GatedSAE", "HierarchicalToy", "JumpReLUConfig", "JumpReLUSAE", "LossParts", "MatryoshkaConfig",
    "MatryoshkaSAE", "ReLUConfig", "ReLUSAE", "SAE", "SAEConfig", "ToyData", "TopKConfig", "TopKSAE",
    "TrainConfig", "TrainLog", "child_parent_cosines", "dead_fraction", "firing_frequencies", "fvu", "hierarchical_toy", "l0",
    "load_sae", "make_sae", "matched_counts", "mmcs", "norm_ratio", "prefix_max_cosines", "save_sae", "sharkey_toy", "shipped_train_config",
    "train_sae",
]
