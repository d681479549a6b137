"""Per-layer transcoders (chapter 5): an MLP's computation as a sparse sum of features.

A transcoder reads an MLP's *input* and predicts its *output* (Dunefsky, Chlenski & Nanda 2024,
arXiv:2406.11944): ``acts = σ(x @ W_enc + b_enc)``, ``ŷ = acts @ W_dec + b_dec`` (+ ``x @ W_skip`` for a
skip transcoder, Paulo, Shabalin & Belrose 2025, arXiv:2501.18823). It is an SAE of chapter 4 with a
different target, so the classes here subclass :class:`course_utils.saes.TopKSAE` and
:class:`course_utils.saes.JumpReLUSAE` and train with :func:`course_utils.saes.train_sae`.

Interface (stable; the replacement model and attribution graphs build on it)::

    tc = TopKTranscoder(TopKTranscoderConfig(d_in=128, d_sae=1024, d_out=128, k=16, skip=True,
                                             hook_name="blocks.0.ln2.hook_normalized",
                                             hook_name_out="blocks.0.hook_mlp_out"))
    acts = tc.encode(x)          # x: [..., d_in] -> acts: [..., d_sae]
    y = tc.decode(acts, x)       # -> [..., d_out]; the skip path x @ W_skip needs x (x=None: no skip)
    y = tc(x)                    # forward = decode(encode(x), x)

Attributes: ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_out]``, ``b_dec [d_out]``,
``W_skip [d_in, d_out]`` or ``None``, JumpReLU ``threshold [d_sae]``; config ``cfg.hook_name`` (the input
hook), ``cfg.hook_name_out`` (the output hook), ``cfg.skip``, ``cfg.d_in``, ``cfg.d_sae``, ``cfg.d_out``.
No pre-encoder bias: the input is not shifted by ``b_dec`` (which lives in the output space; SAELens's
transcoders require ``apply_b_dec_to_input = False`` too).

For the course model the MLP input is the normalised residual ``blocks.L.ln2.hook_normalized``
(LayerNorm without its affine part, which TransformerLens folds into ``W_in``) and the output
``blocks.L.hook_mlp_out`` (:func:`mlp_hooks`).

Training: :func:`train_transcoder` feeds :func:`course_utils.saes.train_sae` *pairs*: a batch is the
input and its target concatenated on the last dimension, ``[batch, d_in + d_out]``, which
:meth:`Transcoder.check_input` accepts and :meth:`Transcoder.loss` splits; the loss is
‖y − ŷ‖² (summed over dimensions, averaged over the batch) plus the architecture's sparsity or AuxK
term, as for the SAEs. Files: :mod:`course_utils.circuits.transcoder_io` (SAELens's transcoder format).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from course_utils.saes import TrainConfig, TrainLog, train_sae
from course_utils.saes.base import LossParts, squared_error
from course_utils.saes.jumprelu import JumpReLUConfig, JumpReLUSAE, jumprelu, step
from course_utils.saes.topk import TopKConfig, TopKSAE, auxk_loss


def mlp_hooks(layer: int) -> tuple[str, str]:
    """(input hook, output hook) of layer ``layer``'s MLP in a TransformerLens model with LayerNorm."""
    if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
        raise ValueError(f"layer must be an int >= 0, got {layer!r}")
    return f"blocks.{layer}.ln2.hook_normalized", f"blocks.{layer}.hook_mlp_out"


def _check_transcoder_fields(cfg: Any) -> None:
    if not isinstance(cfg.skip, bool):
        raise TypeError(f"skip must be a bool, got {type(cfg.skip).__name__}")
    for name in ("hook_name", "hook_name_out"):
        if not isinstance(getattr(cfg, name), str):
            raise TypeError(f"{name} must be a str (a hook name), got {type(getattr(cfg, name)).__name__}")
    # transcoders have no unit-norm decoder constraint by default in SAELens; the course keeps the
    # SAEs' convention (unit-norm rows, the scale carried by the activations) unless told otherwise


@dataclass
class TopKTranscoderConfig(TopKConfig):
    """A TopK transcoder: TopK's fields plus where it reads and writes, and whether it has a skip path."""

    skip: bool = False
    hook_name: str = ""
    hook_name_out: str = ""

    architecture: ClassVar[str] = "topk_transcoder"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_transcoder_fields(self)


@dataclass
class JumpReLUTranscoderConfig(JumpReLUConfig):
    """A JumpReLU transcoder: JumpReLU's fields plus where it reads and writes, and the skip switch."""

    skip: bool = False
    hook_name: str = ""
    hook_name_out: str = ""

    architecture: ClassVar[str] = "jumprelu_transcoder"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_transcoder_fields(self)


class Transcoder:
    """Mixin for the transcoder classes (put first in the bases): the skip path, pair batches, decode
    with the skip term, forward, and the setup differences from an autoencoder."""

    apply_b_dec_to_input: ClassVar[bool] = False
    W_skip: nn.Parameter | None
    cfg: Any

    def _setup_transcoder(self, generator: torch.Generator | None) -> None:
        cfg = self.cfg
        if cfg.d_in == cfg.d_out:  # the SAE base ties W_enc to W_dec.T for autoencoders; untie it
            with torch.no_grad():
                self.W_enc.copy_(torch.randn(cfg.d_in, cfg.d_sae, generator=generator) / cfg.d_in**0.5)
        skip = nn.Parameter(torch.zeros(cfg.d_in, cfg.d_out)) if cfg.skip else None  # [d_in, d_out]
        self.register_parameter("W_skip", skip)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ input checks
    def check_x(self, x: object) -> torch.Tensor:
        """``x`` must be a tensor ``[..., d_in]``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape [..., d_in={self.cfg.d_in}], got {type(x).__name__}")
        if x.ndim < 1 or x.shape[-1] != self.cfg.d_in:
            raise ValueError(f"x must have shape [..., d_in={self.cfg.d_in}] (the MLP input at "
                             f"{self.cfg.hook_name or 'the input hook'}), got {list(x.shape)}")
        return x

    def check_input(self, x: object) -> torch.Tensor:
        """The trainer's check: an input ``[..., d_in]`` or a training pair ``[..., d_in + d_out]``."""
        if isinstance(x, torch.Tensor) and x.ndim >= 1 and x.shape[-1] == self.cfg.d_in + self.cfg.d_out:
            return x
        return self.check_x(x)

    def split_pair(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A training pair ``[..., d_in + d_out]`` -> (x ``[..., d_in]``, y ``[..., d_out]``)."""
        d_in, d_out = self.cfg.d_in, self.cfg.d_out
        if not isinstance(xy, torch.Tensor) or xy.shape[-1] != d_in + d_out:
            raise ValueError(f"a training pair must have shape [..., d_in + d_out = {d_in + d_out}], "
                             f"got {list(getattr(xy, 'shape', []))}")
        return xy[..., :d_in], xy[..., d_in:]

    def _x_and_target(self, x: torch.Tensor, target: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if target is None:
            return self.split_pair(x)
        x = self.check_x(x)
        if not isinstance(target, torch.Tensor) or target.shape[-1] != self.cfg.d_out or target.shape[:-1] != x.shape[:-1]:
            raise ValueError(f"target must have shape {list(x.shape[:-1]) + [self.cfg.d_out]} (the MLP output "
                             f"at {self.cfg.hook_name_out or 'the output hook'}), got "
                             f"{list(getattr(target, 'shape', []))}")
        return x, target

    # ------------------------------------------------------------------ forward
    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """x @ W_enc + b_enc: [..., d_sae] (no pre-encoder bias)."""
        return self.check_x(x) @ self.W_enc + self.b_enc

    def skip_out(self, x: torch.Tensor) -> torch.Tensor:
        """x @ W_skip: [..., d_out] (zeros without a skip path)."""
        x = self.check_x(x)
        if self.W_skip is None:
            return x.new_zeros(*x.shape[:-1], self.cfg.d_out)
        return x @ self.W_skip

    def decode(self, acts: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """ŷ = acts @ W_dec + b_dec (+ x @ W_skip when the transcoder has a skip path and x is given):
        acts [..., d_sae], x [..., d_in] -> [..., d_out]."""
        if not isinstance(acts, torch.Tensor) or acts.shape[-1] != self.cfg.d_sae:
            raise ValueError(f"acts must have shape [..., d_sae={self.cfg.d_sae}], got "
                             f"{list(getattr(acts, 'shape', []))}")
        out = acts @ self.W_dec + self.b_dec
        if x is not None and self.W_skip is not None:
            if self.check_x(x).shape[:-1] != acts.shape[:-1]:
                raise ValueError(f"x {list(x.shape)} and acts {list(acts.shape)} must share leading dimensions")
            out = out + x @ self.W_skip
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x), x): the predicted MLP output [..., d_out]."""
        return self.decode(self.encode(x), x)

    def initialise_from_data(self, x: torch.Tensor) -> None:
        """b_dec starts at the mean target of the first batch (a pair batch) or stays 0."""
        if x.shape[-1] == self.cfg.d_in + self.cfg.d_out:
            with torch.no_grad():
                self.b_dec.copy_(self.split_pair(x)[1].reshape(-1, self.cfg.d_out).mean(0))

    def save(self, path: Any) -> Any:
        """Write SAELens's transcoder format to folder ``path`` (:func:`.transcoder_io.save_transcoder`)."""
        from course_utils.circuits.transcoder_io import save_transcoder

        return save_transcoder(self, path)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Any) -> Any:
        """Load a folder written by :meth:`save`; raises if it holds another transcoder class."""
        from course_utils.circuits.transcoder_io import load_transcoder

        tc = load_transcoder(path)
        if not isinstance(tc, cls):
            raise ValueError(f"{path} holds a {type(tc).__name__}, not a {cls.__name__}")
        return tc

    def sae_lens_state(self) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
        """(SAELens architecture, extra cfg keys, tensors in SAELens's layout); see :mod:`.transcoder_io`."""
        from course_utils.circuits.transcoder_io import sae_lens_state

        return sae_lens_state(self)


class TopKTranscoder(Transcoder, TopKSAE):
    """TopK transcoder: acts = ReLU(TopK_k(x W_enc + b_enc)) (Gao et al. 2024's activation), with AuxK
    on the output residual for dead latents."""

    config_class = TopKTranscoderConfig
    cfg: TopKTranscoderConfig

    def __init__(self, cfg: TopKTranscoderConfig, generator: torch.Generator | None = None) -> None:
        TopKSAE.__init__(self, cfg, generator)
        self._setup_transcoder(generator)

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> LossParts:
        x, target = self._x_and_target(x, target)
        pre = self.pre_acts(x)
        acts = self.activation(pre)
        y_hat = self.decode(acts, x)
        mse = squared_error(y_hat, target)
        aux = self.cfg.aux_coefficient * auxk_loss(pre, target - y_hat, self.W_dec, self.dead_mask(),
                                                   self.cfg.k_aux)
        return LossParts(mse, torch.zeros_like(mse), aux, acts)


class JumpReLUTranscoder(Transcoder, JumpReLUSAE):
    """JumpReLU transcoder: acts = z · H(z − θ), z = ReLU(x W_enc + b_enc), loss ‖y − ŷ‖² + λ L0 with
    the straight-through threshold gradients of chapter 4 (Rajamanoharan et al. 2024)."""

    config_class = JumpReLUTranscoderConfig
    cfg: JumpReLUTranscoderConfig

    def __init__(self, cfg: JumpReLUTranscoderConfig, generator: torch.Generator | None = None) -> None:
        JumpReLUSAE.__init__(self, cfg, generator)
        self._setup_transcoder(generator)

    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> LossParts:
        x, target = self._x_and_target(x, target)
        z = torch.relu(self.pre_acts(x))
        acts = jumprelu(z, self.threshold, self.cfg.bandwidth)
        mse = squared_error(self.decode(acts, x), target)
        l0 = step(z, self.threshold, self.cfg.bandwidth).sum(-1).mean()
        return LossParts(mse, self.cfg.l0_coefficient * l0, torch.zeros_like(mse), acts)


TRANSCODERS: dict[str, type[TopKTranscoder] | type[JumpReLUTranscoder]] = {
    "topk_transcoder": TopKTranscoder, "jumprelu_transcoder": JumpReLUTranscoder,
}


def make_transcoder(architecture: str, d_in: int, d_sae: int, d_out: int, seed: int = 0,
                    **kwargs: Any) -> TopKTranscoder | JumpReLUTranscoder:
    """A transcoder by architecture name ("topk" / "jumprelu", or with a "_transcoder" suffix), seeded;
    ``kwargs`` go to its config (``k``, ``skip``, ``hook_name``, ``hook_name_out``, ...)."""
    name = architecture if isinstance(architecture, str) and architecture.endswith("_transcoder") \
        else f"{architecture}_transcoder"
    if name not in TRANSCODERS:
        raise ValueError(f"unknown transcoder architecture {architecture!r}; choose 'topk' or 'jumprelu'")
    cls = TRANSCODERS[name]
    cfg = cls.config_class(d_in=d_in, d_sae=d_sae, d_out=d_out, **kwargs)
    return cls(cfg, generator=torch.Generator().manual_seed(seed))


def pair_sampler(x: torch.Tensor, y: torch.Tensor) -> Any:
    """A data function for :func:`train_sae`: ``(batch_size, generator) -> [batch, ..., d_in + d_out]``
    drawing rows of x: [n, ..., d_in] and y: [n, ..., d_out] together (a CLT's have a layer axis)."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or x.ndim < 2 or x.ndim != y.ndim:
        raise ValueError("x and y must be tensors [n_tokens, ..., d_in] and [n_tokens, ..., d_out] of one rank")
    if x.shape[:-1] != y.shape[:-1]:
        raise ValueError(f"x {list(x.shape)} and y {list(y.shape)} must hold the same tokens (and layers)")
    xy = torch.cat([x, y], dim=-1)

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        return xy[torch.randint(len(xy), (n,), generator=gen)]

    return sample


def train_transcoder(tc: Transcoder, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig | None = None,
                     device: str | torch.device | None = None) -> TrainLog:
    """Train ``tc`` in place to map x: [n, d_in] to y: [n, d_out] with chapter 4's loop."""
    if not isinstance(tc, Transcoder):
        raise TypeError(f"tc must be a course transcoder, got {type(tc).__name__}")
    if x.shape[-1] != tc.cfg.d_in or y.shape[-1] != tc.cfg.d_out:
        raise ValueError(f"x must be [n, d_in={tc.cfg.d_in}] and y [n, d_out={tc.cfg.d_out}], got "
                         f"{list(x.shape)} and {list(y.shape)}")
    cfg = TrainConfig() if cfg is None else cfg
    if cfg.resample_every:
        raise ValueError("resampling is defined for autoencoders only; set resample_every=None")
    return train_sae(tc, pair_sampler(x, y), cfg, device=device)
