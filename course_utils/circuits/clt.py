"""Cross-layer transcoder (CLT; Ameisen et al. 2025, "Circuit tracing", transformer-circuits.pub).

Each feature of a CLT reads the residual stream at one layer ``s`` (here the normalised MLP input
``blocks.s.ln2.hook_normalized``, the input the per-layer transcoders read) and writes to the MLP output
of *every* layer ``t >= s``. The MLP-output prediction at layer ``t`` is the sum over source layers
``s <= t`` of that source's features through the decoder block ``W_dec[s, t]``::

    acts[s] = σ(x[s] @ W_enc[s] + b_enc[s])                     # [..., d_sae] per source layer
    ŷ[t]    = Σ_{s <= t} acts[s] @ W_dec[s, t] + b_dec[t]        # [..., d_out] per target layer

Training minimises the sum over target layers of ‖y[t] − ŷ[t]‖² (the MLP-output reconstruction
losses) with the chapter 4 training loop, plus AuxK (TopK) or λ·L0 (JumpReLU).

Interface::

    clt = CrossLayerTranscoder(CLTConfig(n_layers=2, d_in=128, d_sae=1024, d_out=128, k=16))
    acts = clt.encode(x)          # x: [..., n_layers, d_in] -> [..., n_layers, d_sae]
    y = clt.decode(acts)          # -> [..., n_layers, d_out]
    y = clt(x)
    clt.W_enc[s]                  # [d_in, d_sae]   encoder of source layer s
    clt.W_dec[s, t]               # [d_sae, d_out]  decoder from source s to target t (zero for t < s)
    clt.encode_layer(x_s, s)      # [..., d_sae];   clt.decode_to(acts, t) -> [..., d_out]

Shapes: ``W_enc [n_layers, d_in, d_sae]``, ``b_enc [n_layers, d_sae]``, ``W_dec [n_layers (source),
n_layers (target), d_sae, d_out]`` whose blocks with target < source are held at zero (their gradients
are masked), ``b_dec [n_layers, d_out]``, JumpReLU ``threshold [n_layers, d_sae]``. With a unit-norm
decoder, each feature's decoder rows over all its targets together have norm 1. Hooks:
``cfg.hook_names`` (input per layer) and ``cfg.hook_names_out`` (output per layer).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from course_utils._validate import check_float, check_int
from course_utils.circuits.transcoders import pair_sampler
from course_utils.saes import TrainConfig, TrainLog, train_sae
from course_utils.saes.base import SAE, LossParts, SAEConfig, squared_error
from course_utils.saes.jumprelu import jumprelu, step
from course_utils.saes.topk import auxk_loss, topk_activation

CLT_CFG, CLT_WEIGHTS = "cfg.json", "clt_weights.safetensors"


@dataclass
class CLTConfig(SAEConfig):
    """Sizes per layer (``d_sae`` features per source layer), the activation ("topk" with ``k`` per
    source layer, or "jumprelu"), and the hooks it reads and writes."""

    n_layers: int = 2
    activation: str = "topk"
    k: int = 16
    k_aux: int | None = None
    aux_coefficient: float = 1.0
    l0_coefficient: float = 0.03
    bandwidth: float = 0.05
    init_threshold: float = 0.05
    hook_names: tuple[str, ...] = field(default_factory=tuple)
    hook_names_out: tuple[str, ...] = field(default_factory=tuple)

    architecture: ClassVar[str] = "clt"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n_layers = check_int(self.n_layers, "n_layers")
        if self.activation not in ("topk", "jumprelu"):
            raise ValueError(f"activation must be 'topk' or 'jumprelu', got {self.activation!r}")
        self.k = check_int(self.k, "k")
        if self.k > self.d_sae:
            raise ValueError(f"k={self.k} is larger than the features per layer (d_sae={self.d_sae})")
        self.k_aux = min(self.d_sae, max(1, self.d_in // 2) if self.k_aux is None else check_int(self.k_aux, "k_aux"))
        self.aux_coefficient = self._coefficient(self.aux_coefficient, "aux_coefficient")
        self.l0_coefficient = self._coefficient(self.l0_coefficient, "l0_coefficient")
        self.bandwidth = check_float(self.bandwidth, "bandwidth", low=1e-12)
        self.init_threshold = self._coefficient(self.init_threshold, "init_threshold")
        self.hook_names = tuple(self.hook_names)
        self.hook_names_out = tuple(self.hook_names_out)
        for name in ("hook_names", "hook_names_out"):
            hooks = getattr(self, name)
            if hooks and (len(hooks) != self.n_layers or not all(isinstance(h, str) for h in hooks)):
                raise ValueError(f"{name} must be empty or {self.n_layers} hook names (one per layer), got {hooks!r}")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["hook_names"], d["hook_names_out"] = list(self.hook_names), list(self.hook_names_out)
        return d


class CrossLayerTranscoder(SAE):
    """A CLT trained by :func:`course_utils.saes.train_sae` (it implements the trainer's hooks)."""

    config_class = CLTConfig
    cfg: CLTConfig

    def __init__(self, cfg: CLTConfig, generator: torch.Generator | None = None) -> None:
        nn.Module.__init__(self)
        if not isinstance(cfg, CLTConfig):
            raise TypeError(f"CrossLayerTranscoder needs a CLTConfig, got {type(cfg).__name__}")
        self.cfg = cfg
        L, d_in, d_sae, d_out = cfg.n_layers, cfg.d_in, cfg.d_sae, cfg.d_out
        mask = torch.ones(L, L).triu().bool()  # [source, target]: target >= source
        self.register_buffer("decoder_mask", mask)
        W_dec = torch.randn(L, L, d_sae, d_out, generator=generator) * mask[:, :, None, None]
        self.W_enc = nn.Parameter(torch.randn(L, d_in, d_sae, generator=generator) / d_in**0.5)
        self.b_enc = nn.Parameter(torch.zeros(L, d_sae))
        self.W_dec = nn.Parameter(self._unit_rows(W_dec))
        self.b_dec = nn.Parameter(torch.zeros(L, d_out))
        if cfg.activation == "jumprelu":
            self.threshold = nn.Parameter(torch.full((L, d_sae), float(cfg.init_threshold)))
        self.register_buffer("tokens_since_fired", torch.zeros(L, d_sae, dtype=torch.long))

    # ------------------------------------------------------------------ shapes
    def check_x(self, x: object) -> torch.Tensor:
        L, d = self.cfg.n_layers, self.cfg.d_in
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape [..., n_layers={L}, d_in={d}], got {type(x).__name__}")
        if x.ndim < 2 or tuple(x.shape[-2:]) != (L, d):
            raise ValueError(f"x must have shape [..., n_layers={L}, d_in={d}] (the MLP input of every "
                             f"layer), got {list(x.shape)}")
        return x

    def check_input(self, x: object) -> torch.Tensor:
        """The trainer's check: ``[..., n_layers, d_in]`` or a pair ``[..., n_layers, d_in + d_out]``."""
        c = self.cfg
        if isinstance(x, torch.Tensor) and x.ndim >= 2 and tuple(x.shape[-2:]) == (c.n_layers, c.d_in + c.d_out):
            return x
        return self.check_x(x)

    def _layer(self, layer: object, name: str = "layer") -> int:
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < self.cfg.n_layers:
            raise ValueError(f"{name} must be an int in [0, {self.cfg.n_layers}), got {layer!r}")
        return layer

    # ------------------------------------------------------------------ forward
    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """x[s] @ W_enc[s] + b_enc[s] for every source layer: [..., n_layers, d_sae]."""
        return torch.einsum("...ld,ldf->...lf", self.check_x(x), self.W_enc) + self.b_enc

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        if self.cfg.activation == "topk":
            return topk_activation(pre, self.cfg.k)
        return jumprelu(torch.relu(pre), self.threshold, self.cfg.bandwidth)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations [..., n_layers, d_sae]."""
        return self.activation(self.pre_acts(x))

    def encode_layer(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """Activations of source layer ``layer``'s features from its input x: [..., d_in] -> [..., d_sae]."""
        s = self._layer(layer)
        if not isinstance(x, torch.Tensor) or x.shape[-1] != self.cfg.d_in:
            raise ValueError(f"x must have shape [..., d_in={self.cfg.d_in}], got {list(getattr(x, 'shape', []))}")
        pre = x @ self.W_enc[s] + self.b_enc[s]
        if self.cfg.activation == "topk":
            return topk_activation(pre, self.cfg.k)
        return jumprelu(torch.relu(pre), self.threshold[s], self.cfg.bandwidth)

    def masked_W_dec(self) -> torch.Tensor:
        """W_dec with the blocks target < source zeroed: [n_layers, n_layers, d_sae, d_out]."""
        return self.W_dec * self.decoder_mask[:, :, None, None].to(self.W_dec.dtype)

    def decode(self, acts: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """ŷ[t] = Σ_{s<=t} acts[s] @ W_dec[s, t] + b_dec[t]: [..., n_layers, d_sae] -> [..., n_layers, d_out]."""
        c = self.cfg
        if not isinstance(acts, torch.Tensor) or acts.ndim < 2 or tuple(acts.shape[-2:]) != (c.n_layers, c.d_sae):
            raise ValueError(f"acts must have shape [..., n_layers={c.n_layers}, d_sae={c.d_sae}], got "
                             f"{list(getattr(acts, 'shape', []))}")
        return torch.einsum("...sf,stfo->...to", acts, self.masked_W_dec()) + self.b_dec

    def decode_to(self, acts: torch.Tensor, target: int) -> torch.Tensor:
        """The prediction of target layer ``target``'s MLP output: [..., n_layers, d_sae] -> [..., d_out]."""
        t = self._layer(target, "target")
        return self.decode(acts)[..., t, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    # ------------------------------------------------------------------ training
    def loss(self, x: torch.Tensor, target: torch.Tensor | None = None) -> LossParts:
        """Σ_t ‖y[t] − ŷ[t]‖² (+ AuxK per source layer, or λ·L0 summed over layers). ``x`` is a pair
        batch ``[batch, n_layers, d_in + d_out]`` or, with ``target [batch, n_layers, d_out]``, an input."""
        if target is None:
            c = self.check_input(x)
            if c.shape[-1] != self.cfg.d_in + self.cfg.d_out:
                raise ValueError("without a target, x must be a pair batch [batch, n_layers, d_in + d_out]")
            x, target = c[..., : self.cfg.d_in], c[..., self.cfg.d_in:]
        pre = self.pre_acts(x)
        acts = self.activation(pre)
        y_hat = self.decode(acts)
        mse = squared_error(y_hat.flatten(-2), target.flatten(-2))
        zero = torch.zeros_like(mse)
        if self.cfg.activation == "jumprelu":
            l0 = step(torch.relu(pre), self.threshold, self.cfg.bandwidth).sum((-1, -2)).mean()
            return LossParts(mse, self.cfg.l0_coefficient * l0, zero, acts)
        aux = zero
        residual = target - y_hat  # [batch, n_layers, d_out]
        dead = self.dead_mask()
        for s in range(self.cfg.n_layers):
            W = self.W_dec[s, s:].permute(1, 0, 2).flatten(1)  # [d_sae, (n_layers - s) * d_out]
            aux = aux + auxk_loss(pre[..., s, :], residual[..., s:, :].flatten(-2), W, dead[s], self.cfg.k_aux)
        return LossParts(mse, zero, self.cfg.aux_coefficient * aux, acts)

    def initialise_from_data(self, x: torch.Tensor) -> None:
        if x.shape[-1] == self.cfg.d_in + self.cfg.d_out:
            with torch.no_grad():
                self.b_dec.copy_(x[..., self.cfg.d_in:].reshape(-1, self.cfg.n_layers, self.cfg.d_out).mean(0))

    @staticmethod
    def _row_norms(W_dec: torch.Tensor) -> torch.Tensor:
        """Each feature's decoder norm over all targets: [source, 1, d_sae, 1]."""
        return W_dec.pow(2).sum((1, 3), keepdim=True).sqrt().clamp_min(1e-12)

    def _unit_rows(self, W_dec: torch.Tensor) -> torch.Tensor:
        return W_dec / self._row_norms(W_dec) if self.cfg.unit_norm_decoder else W_dec

    @torch.no_grad()
    def before_step(self) -> None:
        """Mask the gradient of the unused blocks; with a unit-norm decoder remove each feature's
        gradient component parallel to its (joint) decoder row."""
        g = self.W_dec.grad
        if g is None:
            return
        g.mul_(self.decoder_mask[:, :, None, None].to(g.dtype))
        if self.cfg.unit_norm_decoder:
            W_hat = self.W_dec / self._row_norms(self.W_dec)
            g.sub_((g * W_hat).sum((1, 3), keepdim=True) * W_hat)

    @torch.no_grad()
    def after_step(self) -> None:
        self.W_dec.copy_(self._unit_rows(self.masked_W_dec()))
        if self.cfg.activation == "jumprelu":
            self.threshold.clamp_(min=0.0)

    @torch.no_grad()
    def record_firing(self, acts: torch.Tensor) -> None:
        flat = acts.reshape(-1, self.cfg.n_layers, self.cfg.d_sae)
        self.tokens_since_fired += flat.shape[0]
        self.tokens_since_fired[(flat > 0).any(0)] = 0

    def fold_decoder_norm(self) -> None:
        raise NotImplementedError("the CLT keeps its decoder normalisation; fold_decoder_norm is for SAEs")

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write ``cfg.json`` and ``clt_weights.safetensors`` (``W_dec_s``: [d_sae, n_layers − s, d_out],
        the blocks of source s to targets s..n_layers−1) to folder ``path``."""
        return save_clt(self, path)

    @classmethod
    def load(cls, path: str | Path) -> CrossLayerTranscoder:
        return load_clt(path)

    def sae_lens_state(self) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
        raise NotImplementedError("SAELens has no cross-layer transcoder format; use CrossLayerTranscoder.save")


def clt_tensors(clt: CrossLayerTranscoder) -> dict[str, torch.Tensor]:
    """The CLT's tensors by file name, one decoder tensor per source layer."""
    out: dict[str, torch.Tensor] = {}
    for s in range(clt.cfg.n_layers):
        out[f"W_enc_{s}"] = clt.W_enc[s]
        out[f"b_enc_{s}"] = clt.b_enc[s]
        out[f"W_dec_{s}"] = clt.W_dec[s, s:].permute(1, 0, 2)  # [d_sae, n_layers - s, d_out]
        out[f"b_dec_{s}"] = clt.b_dec[s]
        if clt.cfg.activation == "jumprelu":
            out[f"threshold_{s}"] = clt.threshold[s]
    return {k: v.detach().cpu().contiguous() for k, v in out.items()}


def save_clt(clt: CrossLayerTranscoder, path: str | Path, **metadata: Any) -> Path:
    if not isinstance(clt, CrossLayerTranscoder):
        raise TypeError(f"clt must be a CrossLayerTranscoder, got {type(clt).__name__}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = clt_tensors(clt)
    dtype = str(tensors["W_dec_0"].dtype).replace("torch.", "")
    cfg = {"architecture": "clt", "dtype": dtype, **clt.cfg.to_dict(), "metadata": metadata}
    save_file(tensors, str(path / CLT_WEIGHTS))
    (path / CLT_CFG).write_text(json.dumps(cfg, indent=1))
    return path


def load_clt(path: str | Path) -> CrossLayerTranscoder:
    """Load a folder written by :func:`save_clt`; shapes are checked against the config."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a folder path, got {type(path).__name__}")
    path = Path(path)
    if not (path / CLT_CFG).is_file() or not (path / CLT_WEIGHTS).is_file():
        raise ValueError(f"{path} is not a saved CLT: expected {CLT_CFG} and {CLT_WEIGHTS} in it")
    raw = json.loads((path / CLT_CFG).read_text())
    if raw.get("architecture") != "clt":
        raise ValueError(f"{path} holds architecture {raw.get('architecture')!r}, not a cross-layer transcoder")
    names = {f.name for f in dataclasses.fields(CLTConfig)}
    keep = {k: v for k, v in raw.items() if k in names}
    clt = CrossLayerTranscoder(CLTConfig(**keep))
    tensors = load_file(str(path / CLT_WEIGHTS))
    want = clt_tensors(clt)
    if set(tensors) != set(want):
        raise ValueError(f"{path}: tensors {sorted(tensors)} do not match the config (expected {sorted(want)})")
    for k, t in tensors.items():
        if t.shape != want[k].shape:
            raise ValueError(f"{path}: {k} has shape {list(t.shape)} but the config implies {list(want[k].shape)}")
    dtype = tensors["W_dec_0"].dtype
    clt.to(dtype)
    with torch.no_grad():
        for s in range(clt.cfg.n_layers):
            clt.W_enc[s].copy_(tensors[f"W_enc_{s}"])
            clt.b_enc[s].copy_(tensors[f"b_enc_{s}"])
            clt.W_dec[s].zero_()
            clt.W_dec[s, s:].copy_(tensors[f"W_dec_{s}"].permute(1, 0, 2))
            clt.b_dec[s].copy_(tensors[f"b_dec_{s}"])
            if clt.cfg.activation == "jumprelu":
                clt.threshold[s].copy_(tensors[f"threshold_{s}"])
    return clt.eval()


def train_clt(clt: CrossLayerTranscoder, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig | None = None,
              device: str | torch.device | None = None) -> TrainLog:
    """Train ``clt`` in place: x [n, n_layers, d_in] (MLP inputs), y [n, n_layers, d_out] (MLP outputs)."""
    if not isinstance(clt, CrossLayerTranscoder):
        raise TypeError(f"clt must be a CrossLayerTranscoder, got {type(clt).__name__}")
    c = clt.cfg
    if x.shape[-2:] != (c.n_layers, c.d_in) or y.shape[-2:] != (c.n_layers, c.d_out):
        raise ValueError(f"x must be [n, {c.n_layers}, {c.d_in}] and y [n, {c.n_layers}, {c.d_out}], got "
                         f"{list(x.shape)} and {list(y.shape)}")
    cfg = TrainConfig() if cfg is None else cfg
    if cfg.resample_every:
        raise ValueError("resampling is defined for autoencoders only; set resample_every=None")
    return train_sae(clt, pair_sampler(x, y), cfg, device=device)
