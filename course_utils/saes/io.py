"""SAELens's on-disk format: a folder with ``cfg.json`` and ``sae_weights.safetensors``.

Tensor names and shapes follow SAELens 6.54.12: ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``,
``b_enc [d_sae]``, ``b_dec [d_in]``; JumpReLU adds ``threshold [d_sae]``; Gated has ``b_gate``, ``b_mag``,
``r_mag`` and no ``b_enc``. Training-only architectures are written as the inference model SAELens
would write: BatchTopK and Matryoshka as ``jumprelu`` (their running threshold expanded per latent),
group bias adaptation and ReLU as ``standard``. The course's own config goes in
``metadata.course_utils`` so that :func:`load_sae` rebuilds the training class; a folder written by
SAELens (no such key) loads as the matching inference architecture. Weights are read with safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

if TYPE_CHECKING:
    from course_utils.saes.base import SAE

CFG = "cfg.json"
WEIGHTS = "sae_weights.safetensors"
SAE_LENS_VERSION = "6.54.12"
_FROM_SAE_LENS = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu", "gated": "gated"}


def save_sae(sae: SAE, path: str | Path, hook_name: str = "toy", model_name: str = "toy") -> Path:
    """Write ``sae`` to folder ``path`` in SAELens's format; return the folder."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arch, extra, tensors = sae.sae_lens_state()
    dtype = str(tensors["W_dec"].dtype).replace("torch.", "")
    cfg = {
        "architecture": arch, "d_in": sae.cfg.d_in, "d_sae": sae.cfg.d_sae, "dtype": dtype, "device": "cpu",
        "apply_b_dec_to_input": type(sae).apply_b_dec_to_input and sae.cfg.d_in == sae.cfg.d_out, "normalize_activations": "none", "reshape_activations": "none",
        **extra,
        "metadata": {"sae_lens_version": SAE_LENS_VERSION, "model_name": model_name, "hook_name": hook_name,
                     "context_size": 1, "prepend_bos": False,
                     "training_architecture": sae.cfg.architecture, "course_utils": sae.cfg.to_dict()},
    }
    save_file({k: v.cpu().contiguous() for k, v in tensors.items()}, str(path / WEIGHTS))
    (path / CFG).write_text(json.dumps(cfg, indent=1))
    return path


def read_folder(path: object, what: str = "SAE") -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``cfg.json`` and the tensors of a SAELens folder (an SAE or a transcoder: ``what`` names it in
    the errors). A path of another type is a TypeError; a missing, unreadable or truncated file a
    ValueError that names the file."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a folder path, got {type(path).__name__}")
    path = Path(path)
    if not (path / CFG).is_file() or not (path / WEIGHTS).is_file():
        raise ValueError(f"{path} is not a saved {what}: expected {CFG} and {WEIGHTS} in it")
    try:
        cfg = json.loads((path / CFG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path / CFG} is not valid JSON ({e}): the file is corrupted") from e
    try:
        tensors = load_file(str(path / WEIGHTS))
    except Exception as e:  # safetensors raises its own error types for truncated files
        raise ValueError(f"{path / WEIGHTS} could not be read ({e}): the file is corrupted") from e
    return cfg, tensors


def check_tensors(tensors: dict[str, torch.Tensor], own: dict[str, torch.Tensor], path: object,
                  owner: str, dims: str) -> None:
    """The file's tensors are exactly the names and shapes of ``own`` (the module's state in SAELens
    names); ``owner`` and ``dims`` describe the module in the ValueError."""
    if set(tensors) != set(own):
        raise ValueError(f"{path}: tensors {sorted(tensors)} do not match a {owner} (expected {sorted(own)})")
    for name, t in tensors.items():
        if t.shape != own[name].shape:
            raise ValueError(f"{path}: {name} has shape {list(t.shape)} but the config implies "
                             f"{list(own[name].shape)} ({dims})")


def load_sae(path: str | Path, expected: type | None = None) -> SAE:
    """Load a folder written by :func:`save_sae` or by SAELens. ``expected`` (an SAE class) makes a
    file of another architecture an error; a config that does not match the tensors is one too."""
    from course_utils.saes import ARCHITECTURES
    from course_utils.saes.base import SAE

    cfg, tensors = read_folder(path)
    course = cfg.get("metadata", {}).get("course_utils")
    if course is not None:
        name = course.get("architecture")
        kwargs = {k: v for k, v in course.items() if k != "architecture"}
    else:
        name = _FROM_SAE_LENS.get(cfg.get("architecture"))
        if name is None:
            raise ValueError(f"{path}: architecture {cfg.get('architecture')!r} has no course class; "
                             f"loadable: {sorted(_FROM_SAE_LENS)}")
        kwargs = {"d_in": cfg["d_in"], "d_sae": cfg["d_sae"]}
        if name == "topk":
            kwargs["k"] = cfg["k"]
            if cfg.get("rescale_acts_by_decoder_norm"):
                raise ValueError(f"{path}: TopK with rescale_acts_by_decoder_norm=true is not supported; "
                                 "fold the decoder norm first")
        if name == "relu":
            kwargs["unit_norm_decoder"] = False
        if not cfg.get("apply_b_dec_to_input", True):
            raise ValueError(f"{path}: apply_b_dec_to_input=false is only supported for files written by "
                             "course_utils (group bias adaptation)")
    if name not in ARCHITECTURES:
        raise ValueError(f"{path}: unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}")
    cls = ARCHITECTURES[name]
    if expected is not None and expected is not SAE and not issubclass(cls, expected):
        raise ValueError(f"{path} holds a {cls.__name__} ({name!r}), not a {expected.__name__}")
    sae = cls(cls.config_class(**kwargs))
    _load_tensors(sae, tensors, path)
    return sae.eval()


def _load_tensors(sae: SAE, tensors: dict[str, torch.Tensor], path: object) -> None:
    _, _, own = sae.sae_lens_state()
    check_tensors(tensors, own, path, type(sae).__name__, f"d_in={sae.cfg.d_in}, d_sae={sae.cfg.d_sae}")
    sae.to(tensors["W_dec"].dtype)
    with torch.no_grad():
        for name, t in tensors.items():
            if name == "threshold" and not isinstance(sae.threshold, torch.nn.Parameter):
                sae.threshold.copy_(t.max() if t.numel() > 1 else t)  # BatchTopK: one shared threshold
                continue
            getattr(sae, name).data = t.clone()
