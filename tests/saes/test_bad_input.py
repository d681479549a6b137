"""Bad arguments fail with a clear error that names the problem."""

from __future__ import annotations

import pytest
import torch

from course_utils.saes import (
    ARCHITECTURES,
    GatedConfig,
    JumpReLUConfig,
    MatryoshkaConfig,
    ReLUConfig,
    TopKConfig,
    TopKSAE,
    TrainConfig,
    make_sae,
    mmcs,
    sharkey_toy,
    train_sae,
)
from course_utils.saes.gba import GBAConfig


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture 'vanilla'.*batchtopk"):
        make_sae("vanilla", 8, 16)


def test_k_larger_than_the_dictionary():
    with pytest.raises(ValueError, match="k=20 is larger than the dictionary"):
        TopKConfig(d_in=8, d_sae=16, k=20)
    TopKConfig(d_in=8, d_sae=16, k=16)  # the boundary k = d_sae is allowed


@pytest.mark.parametrize("d_sae", [0, -3])
def test_dictionary_smaller_than_one(d_sae):
    with pytest.raises(ValueError, match="d_sae"):
        ReLUConfig(d_in=8, d_sae=d_sae)


def test_non_integer_sizes():
    with pytest.raises(TypeError, match="d_in must be an int"):
        ReLUConfig(d_in=8.0, d_sae=16)
    with pytest.raises(TypeError, match="k must be an int"):
        TopKConfig(d_in=8, d_sae=16, k=True)


@pytest.mark.parametrize("cfg, name", [
    (lambda: ReLUConfig(d_in=8, d_sae=16, l1_coefficient=-0.1), "l1_coefficient"),
    (lambda: GatedConfig(d_in=8, d_sae=16, l1_coefficient=-1), "l1_coefficient"),
    (lambda: JumpReLUConfig(d_in=8, d_sae=16, l0_coefficient=-0.01), "l0_coefficient"),
    (lambda: TopKConfig(d_in=8, d_sae=16, aux_coefficient=-1.0), "aux_coefficient"),
    (lambda: JumpReLUConfig(d_in=8, d_sae=16, bandwidth=0.0), "bandwidth"),
    (lambda: GBAConfig(d_in=8, d_sae=16, gamma=-0.1), "gamma"),
])
def test_negative_coefficients(cfg, name):
    with pytest.raises(ValueError, match=f"{name} must lie in"):
        cfg()


def test_bad_prefixes():
    with pytest.raises(ValueError, match="strictly increasing"):
        MatryoshkaConfig(d_in=8, d_sae=16, prefixes=(8, 4, 16))
    with pytest.raises(ValueError, match="ints in \\[1, d_sae=16\\]"):
        MatryoshkaConfig(d_in=8, d_sae=16, prefixes=(4, 32))
    assert MatryoshkaConfig(d_in=8, d_sae=16, prefixes=(4,)).prefixes == (4, 16)  # the full dictionary is added


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_inputs_of_the_wrong_width(arch):
    sae = make_sae(arch, 8, 16, **({"k": 2} if arch in ("topk", "batchtopk", "matryoshka") else {}))
    with pytest.raises(ValueError, match="d_in=8.*\\[4, 7\\]"):
        sae.encode(torch.zeros(4, 7))
    with pytest.raises(TypeError, match="torch.Tensor"):
        sae.encode([[0.0] * 8])


def test_wrong_config_class_and_training_arguments():
    with pytest.raises(TypeError, match="TopKSAE needs a TopKConfig"):
        TopKSAE(ReLUConfig(d_in=8, d_sae=16))
    sae = make_sae("relu", 8, 16)
    with pytest.raises(TypeError, match="cfg must be a TrainConfig"):
        train_sae(sae, sharkey_toy(d=8, n_features=10), {"steps": 3})
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="W_dec has width 8 but features have width 9"):
        mmcs(sae.W_dec, torch.zeros(3, 9))
    with pytest.raises(ValueError, match="n_active"):
        sharkey_toy(d=8, n_features=10, n_active=11)
