"""The interface every sparse autoencoder of chapter 4 shares (SAELens-style: a config dataclass per
architecture, one ``nn.Module`` class each).

An SAE maps an activation ``x: [batch, d_in]`` to sparse latents ``f: [batch, d_sae]`` and back to
``x̂ = f @ W_dec + b_dec: [batch, d_out]``. For an autoencoder ``d_out == d_in``; transcoders (a later
chapter) subclass :class:`SAE` with a different ``d_out``. Shapes follow SAELens: ``W_enc: [d_in, d_sae]``,
``W_dec: [d_sae, d_out]``, ``b_enc: [d_sae]``, ``b_dec: [d_out]``. The pre-encoder bias (Bricken et al.
2023) subtracts ``b_dec`` from the input before encoding.

The training loop (:mod:`course_utils.saes.train`) needs only :meth:`SAE.loss` (a :class:`LossParts`),
:meth:`SAE.before_step` (gradient edits such as removing the component parallel to unit-norm decoder
rows, Gao et al. 2024) and :meth:`SAE.after_step` (decoder normalisation, threshold clamps, bias updates).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from course_utils._validate import check_float, check_int


@dataclass
class SAEConfig:
    """Sizes shared by every architecture. ``d_out`` defaults to ``d_in`` (an autoencoder)."""

    d_in: int
    d_sae: int
    d_out: int | None = None
    unit_norm_decoder: bool = True
    dead_tokens: int = 20_000

    architecture: ClassVar[str] = "base"

    def __post_init__(self) -> None:
        self.d_in = check_int(self.d_in, "d_in")
        self.d_sae = check_int(self.d_sae, "d_sae (the dictionary size)")
        self.d_out = self.d_in if self.d_out is None else check_int(self.d_out, "d_out")
        self.dead_tokens = check_int(self.dead_tokens, "dead_tokens")
        if not isinstance(self.unit_norm_decoder, bool):
            raise TypeError(f"unit_norm_decoder must be a bool, got {type(self.unit_norm_decoder).__name__}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["architecture"] = self.architecture
        return d

    @staticmethod
    def _coefficient(value: object, name: str) -> float:
        return check_float(value, name, low=0.0)


@dataclass
class LossParts:
    """The parts of one batch's loss. ``mse`` is the squared error summed over dimensions and averaged
    over the batch (SAELens's convention); ``sparsity`` the architecture's penalty (L1, L0, ...);
    ``aux`` an auxiliary loss (AuxK, Gated's frozen-decoder reconstruction); ``acts`` the latents."""

    mse: torch.Tensor
    sparsity: torch.Tensor
    aux: torch.Tensor
    acts: torch.Tensor = field(repr=False)

    @property
    def total(self) -> torch.Tensor:
        return self.mse + self.sparsity + self.aux


def squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """‖x − x̂‖² summed over the last dimension, averaged over the batch."""
    return (x_hat - x).pow(2).sum(-1).mean()


class SAE(nn.Module):
    """Base class: parameters, encode / decode, decoder normalisation, firing statistics, save / load.

    Subclasses set ``config_class`` and implement :meth:`encode` and :meth:`loss`.
    """

    config_class: ClassVar[type[SAEConfig]] = SAEConfig
    has_b_enc: ClassVar[bool] = True
    apply_b_dec_to_input: ClassVar[bool] = True

    def __init__(self, cfg: SAEConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not isinstance(cfg, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(cfg).__name__}")
        self.cfg = cfg
        d_in, d_sae, d_out = cfg.d_in, cfg.d_sae, cfg.d_out
        W_dec = torch.randn(d_sae, d_out, generator=generator)  # [d_sae, d_out]
        W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
        if d_in == d_out:
            W_enc = W_dec.T.clone()  # Gao et al. 2024: encoder initialised as the decoder's transpose
        else:
            W_enc = torch.randn(d_in, d_sae, generator=generator) / d_in**0.5
        self.W_enc = nn.Parameter(W_enc)  # [d_in, d_sae]
        self.W_dec = nn.Parameter(W_dec)  # [d_sae, d_out]
        self.b_dec = nn.Parameter(torch.zeros(d_out))  # [d_out]
        if self.has_b_enc:
            self.b_enc = nn.Parameter(torch.zeros(d_sae))  # [d_sae]
        # tokens seen since each latent last fired (dead = at least cfg.dead_tokens)
        self.register_buffer("tokens_since_fired", torch.zeros(d_sae, dtype=torch.long))

    # ------------------------------------------------------------------ forward
    def check_input(self, x: object) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape [batch, d_in={self.cfg.d_in}], got {type(x).__name__}")
        if x.ndim < 1 or x.shape[-1] != self.cfg.d_in:
            raise ValueError(f"x must have shape [..., d_in={self.cfg.d_in}], got {list(x.shape)}")
        return x

    def sae_in(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: x − b_dec (the pre-encoder bias), when the SAE is an autoencoder."""
        if self.apply_b_dec_to_input and self.cfg.d_in == self.cfg.d_out:
            return x - self.b_dec
        return x

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """(x − b_dec) @ W_enc + b_enc: [batch, d_sae]."""
        return self.sae_in(self.check_input(x)) @ self.W_enc + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """x̂ = f @ W_dec + b_dec: [batch, d_out]."""
        return f @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> LossParts:
        raise NotImplementedError

    # ------------------------------------------------------------------ training hooks
    def initialise_from_data(self, x: torch.Tensor) -> None:
        """Called once by the trainer with a first batch; the default sets nothing."""

    @torch.no_grad()
    def before_step(self) -> None:
        """Edit gradients before the optimiser step: with a unit-norm decoder, remove the gradient
        component parallel to each decoder row (Gao et al. 2024, §A.4)."""
        if self.cfg.unit_norm_decoder and self.W_dec.grad is not None:
            remove_parallel_component_(self.W_dec.grad, self.W_dec)

    @torch.no_grad()
    def after_step(self) -> None:
        """After the optimiser step: renormalise decoder rows to unit norm when constrained."""
        if self.cfg.unit_norm_decoder:
            self.W_dec.copy_(normalise_rows(self.W_dec))

    @torch.no_grad()
    def record_firing(self, acts: torch.Tensor) -> None:
        """Update ``tokens_since_fired`` from a batch of latents [batch, d_sae]. A latent fired when its
        largest activation in the batch is positive (one reduction, then a [d_sae] comparison, instead
        of comparing every entry)."""
        flat = acts.reshape(-1, acts.shape[-1])  # [tokens, d_sae]
        if flat.shape[0] == 0:
            return
        self.tokens_since_fired.add_(flat.shape[0]).masked_fill_(flat.amax(0) > 0, 0)

    def dead_mask(self) -> torch.Tensor:
        """Latents that have not fired for ``cfg.dead_tokens`` tokens: bool [d_sae]."""
        return self.tokens_since_fired >= self.cfg.dead_tokens

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        """Scale decoder rows to unit norm and the encoder columns (and b_enc) by the old norms, so that
        reconstructions are unchanged for a ReLU encoder (the latents scale by the norms)."""
        norms = self.W_dec.norm(dim=1).clamp_min(1e-8)  # [d_sae]
        self.W_dec.div_(norms[:, None])
        self.W_enc.mul_(norms[None, :])
        if self.has_b_enc:
            self.b_enc.mul_(norms)

    # ------------------------------------------------------------------ io
    def save(self, path: str | Path) -> Path:
        """Write SAELens's on-disk format (``cfg.json`` + ``sae_weights.safetensors``) to folder ``path``."""
        from course_utils.saes.io import save_sae

        return save_sae(self, path)

    @classmethod
    def load(cls, path: str | Path) -> SAE:
        """Load a folder written by :meth:`save` or by SAELens; raises if it holds another architecture."""
        from course_utils.saes.io import load_sae

        return load_sae(path, expected=cls)

    def sae_lens_state(self) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
        """(SAELens architecture, extra cfg keys, tensors) of the inference model; see :mod:`.io`."""
        tensors = {"W_enc": self.W_enc, "W_dec": self.W_dec, "b_enc": self.b_enc, "b_dec": self.b_dec}
        return "standard", {}, {k: v.detach().contiguous() for k, v in tensors.items()}


def normalise_rows(W: torch.Tensor) -> torch.Tensor:
    """Each row of W divided by its L2 norm (rows of zeros stay zero)."""
    return W / W.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def remove_parallel_component(grad: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
    """grad − (grad·Ŵ)Ŵ row by row: the part of the gradient that does not change a row's norm.
    grad, W_dec: [d_sae, d_out]."""
    W_hat = normalise_rows(W_dec)
    return grad - (grad * W_hat).sum(-1, keepdim=True) * W_hat


def remove_parallel_component_(grad: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
    """:func:`remove_parallel_component` written into ``grad`` (the trainer's post-backward hook): the
    same operations in the same order, without a temporary copy of the gradient."""
    W_hat = normalise_rows(W_dec)
    return grad.sub_((grad * W_hat).sum(-1, keepdim=True) * W_hat)
