"""Transcoders in SAELens's on-disk format (SAELens 6.54.12, ``sae_lens/saes/transcoder.py``).

A folder with ``cfg.json`` and ``sae_weights.safetensors``. The config carries ``d_in``, ``d_sae``,
``d_out``, ``apply_b_dec_to_input: false`` (SAELens refuses true for transcoders) and
``metadata.hook_name`` / ``metadata.hook_name_out``. Tensors: ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``,
``W_dec [d_sae, d_out]``, ``b_dec [d_out]``; JumpReLU adds ``threshold [d_sae]``; a skip transcoder adds
``W_skip`` stored as SAELens stores it, ``[d_out, d_in]`` (its forward adds ``x @ W_skip.T``), the
transpose of the course attribute ``W_skip [d_in, d_out]``.

Architectures: JumpReLU transcoders are SAELens's ``jumprelu_transcoder`` / ``jumprelu_skip_transcoder``
and load with SAELens's own classes unchanged. SAELens 6.54.12 has no TopK transcoder, so TopK ones are
written as ``topk_transcoder`` / ``topk_skip_transcoder`` with ``k`` in the config, and
:func:`register_sae_lens_topk_transcoders` registers SAELens classes for those names, built from SAELens's
own ``Transcoder`` / ``SkipTranscoder`` with SAELens's ``TopK`` activation, so that
``sae_lens.SAE.load_from_disk`` reads them. The course's own config goes in ``metadata.course_utils`` so
:func:`load_transcoder` rebuilds the training class; weights are read with safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import save_file

from course_utils.saes.io import CFG, SAE_LENS_VERSION, WEIGHTS, check_tensors, read_folder

if TYPE_CHECKING:
    from course_utils.circuits.transcoders import JumpReLUTranscoder, TopKTranscoder, Transcoder

SAE_LENS_ARCHITECTURES = ("jumprelu_transcoder", "jumprelu_skip_transcoder", "topk_transcoder",
                          "topk_skip_transcoder")


def sae_lens_architecture(tc: Transcoder) -> str:
    """The SAELens architecture name of a course transcoder."""
    base = "topk" if tc.cfg.architecture == "topk_transcoder" else "jumprelu"
    return f"{base}_skip_transcoder" if tc.cfg.skip else f"{base}_transcoder"


def sae_lens_state(tc: Transcoder) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """(architecture, extra config keys, tensors in SAELens's layout) of transcoder ``tc``."""
    tensors = {"W_enc": tc.W_enc, "b_enc": tc.b_enc, "W_dec": tc.W_dec, "b_dec": tc.b_dec}
    extra: dict[str, Any] = {"d_out": tc.cfg.d_out}
    if tc.cfg.architecture == "topk_transcoder":
        extra["k"] = tc.cfg.k
    else:
        tensors["threshold"] = tc.threshold
    if tc.W_skip is not None:
        tensors["W_skip"] = tc.W_skip.T  # SAELens: [d_out, d_in]
    return sae_lens_architecture(tc), extra, {k: v.detach().contiguous() for k, v in tensors.items()}


def save_transcoder(tc: Transcoder, path: str | Path, model_name: str = "course_lm",
                    context_size: int = 128) -> Path:
    """Write ``tc`` to folder ``path`` in SAELens's transcoder format; return the folder."""
    from course_utils.circuits.transcoders import Transcoder

    if not isinstance(tc, Transcoder):
        raise TypeError(f"tc must be a course transcoder, got {type(tc).__name__}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arch, extra, tensors = sae_lens_state(tc)
    cfg = {
        "architecture": arch, "d_in": tc.cfg.d_in, "d_sae": tc.cfg.d_sae, **extra,
        "dtype": str(tensors["W_dec"].dtype).replace("torch.", ""), "device": "cpu",
        "apply_b_dec_to_input": False, "normalize_activations": "none", "reshape_activations": "none",
        "metadata": {"sae_lens_version": SAE_LENS_VERSION, "model_name": model_name,
                     "hook_name": tc.cfg.hook_name, "hook_name_out": tc.cfg.hook_name_out,
                     "context_size": context_size, "prepend_bos": False,
                     "training_architecture": tc.cfg.architecture, "course_utils": tc.cfg.to_dict()},
    }
    save_file({k: v.cpu().contiguous() for k, v in tensors.items()}, str(path / WEIGHTS))
    (path / CFG).write_text(json.dumps(cfg, indent=1))
    return path


def _config_from_sae_lens(cfg: dict[str, Any], path: Path) -> tuple[str, dict[str, Any]]:
    arch = cfg.get("architecture")
    if arch not in SAE_LENS_ARCHITECTURES:
        raise ValueError(f"{path}: architecture {arch!r} is not a transcoder the course loads; "
                         f"loadable: {list(SAE_LENS_ARCHITECTURES)}")
    meta = cfg.get("metadata", {}) or {}
    kwargs: dict[str, Any] = {"d_in": cfg["d_in"], "d_sae": cfg["d_sae"], "d_out": cfg["d_out"],
                              "skip": "skip" in arch, "hook_name": meta.get("hook_name") or "",
                              "hook_name_out": meta.get("hook_name_out") or "", "unit_norm_decoder": False}
    if arch.startswith("topk"):
        kwargs["k"] = cfg["k"]
        return "topk_transcoder", kwargs
    return "jumprelu_transcoder", kwargs


def load_transcoder(path: str | Path) -> TopKTranscoder | JumpReLUTranscoder:
    """Load a folder written by :func:`save_transcoder` (or a SAELens JumpReLU transcoder); the config
    must match the tensors' shapes, and an SAE folder is refused with a clear error."""
    from course_utils.circuits.transcoders import TRANSCODERS

    cfg, tensors = read_folder(path, "transcoder")
    path = Path(path)
    if "d_out" not in cfg:
        raise ValueError(f"{path} holds {cfg.get('architecture')!r} with no d_out: an SAE, not a transcoder "
                         "(load it with course_utils.saes.load_sae)")
    course = (cfg.get("metadata") or {}).get("course_utils")
    if course is not None:
        name = course.get("architecture")
        kwargs = {k: v for k, v in course.items() if k != "architecture"}
    else:
        name, kwargs = _config_from_sae_lens(cfg, path)
    if name not in TRANSCODERS:
        raise ValueError(f"{path}: unknown transcoder architecture {name!r}; choose one of {sorted(TRANSCODERS)}")
    cls = TRANSCODERS[name]
    tc = cls(cls.config_class(**kwargs))
    _, _, own = sae_lens_state(tc)
    check_tensors(tensors, own, path, f"{type(tc).__name__} with skip={tc.cfg.skip}",
                  f"d_in={tc.cfg.d_in}, d_sae={tc.cfg.d_sae}, d_out={tc.cfg.d_out}")
    tc.to(tensors["W_dec"].dtype)
    with torch.no_grad():
        for k, t in tensors.items():
            getattr(tc, k).copy_(t.T if k == "W_skip" else t)
    return tc.eval()


_REGISTERED: dict[str, Any] = {}


def register_sae_lens_topk_transcoders() -> dict[str, Any]:
    """Register ``topk_transcoder`` and ``topk_skip_transcoder`` with SAELens (idempotent) and return
    ``{architecture: SAELens class}``. The classes are SAELens's ``Transcoder`` / ``SkipTranscoder``
    whose activation is SAELens's ``TopK(k)``; their config adds ``k`` to SAELens's ``TranscoderConfig``."""
    if _REGISTERED:
        return dict(_REGISTERED)
    from dataclasses import dataclass

    from course_utils._optional import require

    require("sae_lens", purpose="loading TopK transcoders with SAELens")
    from sae_lens.registry import SAE_CLASS_REGISTRY, register_sae_class
    from sae_lens.saes.topk_sae import TopK
    from sae_lens.saes.transcoder import SkipTranscoder, SkipTranscoderConfig, Transcoder, TranscoderConfig

    @dataclass
    class TopKTranscoderConfig(TranscoderConfig):
        k: int = 100

        @classmethod
        def architecture(cls) -> str:
            return "topk_transcoder"

        @classmethod
        def from_dict(cls, config_dict: dict[str, Any]) -> TopKTranscoderConfig:
            return _from_dict(cls, config_dict)

        def to_dict(self) -> dict[str, Any]:
            return {**super().to_dict(), "k": self.k}

    @dataclass
    class TopKSkipTranscoderConfig(SkipTranscoderConfig):
        k: int = 100

        @classmethod
        def architecture(cls) -> str:
            return "topk_skip_transcoder"

        @classmethod
        def from_dict(cls, config_dict: dict[str, Any]) -> TopKSkipTranscoderConfig:
            return _from_dict(cls, config_dict)

        def to_dict(self) -> dict[str, Any]:
            return {**super().to_dict(), "k": self.k}

    class TopKTranscoderSL(Transcoder):
        def get_activation_fn(self) -> Any:
            return TopK(self.cfg.k)

        @classmethod
        def from_dict(cls, config_dict: dict[str, Any]) -> TopKTranscoderSL:
            return cls(TopKTranscoderConfig.from_dict(config_dict))

    class TopKSkipTranscoderSL(SkipTranscoder):
        def get_activation_fn(self) -> Any:
            return TopK(self.cfg.k)

        @classmethod
        def from_dict(cls, config_dict: dict[str, Any]) -> TopKSkipTranscoderSL:
            return cls(TopKSkipTranscoderConfig.from_dict(config_dict))

    for arch, sae_cls, cfg_cls in (("topk_transcoder", TopKTranscoderSL, TopKTranscoderConfig),
                                   ("topk_skip_transcoder", TopKSkipTranscoderSL, TopKSkipTranscoderConfig)):
        if arch not in SAE_CLASS_REGISTRY:
            register_sae_class(arch, sae_cls, cfg_cls)
        _REGISTERED[arch] = SAE_CLASS_REGISTRY[arch][0]
    return dict(_REGISTERED)


def _from_dict(cls: Any, config_dict: dict[str, Any]) -> Any:
    from sae_lens.saes.sae import SAEMetadata
    from sae_lens.util import filter_valid_dataclass_fields

    res = cls(**filter_valid_dataclass_fields(config_dict, cls))
    if "metadata" in config_dict:
        res.metadata = SAEMetadata(**config_dict["metadata"])
    return res
