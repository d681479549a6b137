"""The residual-MLP decomposition shipped with the course (training it exceeds a page's budget on a CPU).

Regenerate with ``python -m course_utils.decomposition.shipped`` (CPU configuration of
:data:`configs.RESID_MLP`; ``--spd-only`` keeps the shipped targets and retrains the decomposition,
about 5 min on an idle CPU core, 10 min on a busy one): it trains the target with a random
embedding (the paper's setting) and one with an orthogonal embedding (no residual mixing, for the
check the 2026 critique suggests), runs SPD on the first, and writes
``data/resid_mlp.safetensors`` with a SHA-256 in ``data/resid_mlp.json``. Loading verifies both.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from course_utils.decomposition.configs import experiment
from course_utils.decomposition.spd import SPDConfig, SPDModel, train_spd
from course_utils.decomposition.targets import ResidualMLPTarget, train_residual_mlp

DATA = Path(__file__).resolve().parent / "data"
WEIGHTS = DATA / "resid_mlp.safetensors"
META = DATA / "resid_mlp.json"
_TARGET_KEYS = ("W_E", "W_in", "b_in", "W_out", "b_out")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _train_target(kwargs: dict[str, object], embedding: str) -> ResidualMLPTarget:
    torch.set_num_threads(1)
    return train_residual_mlp(**kwargs, embedding=embedding)  # type: ignore[arg-type]


def train_and_save(weights: Path = WEIGHTS, meta: Path = META, spd_only: bool = False,
                   spd_steps: int | None = None) -> dict[str, object]:
    """Train both targets and the SPD decomposition at CPU size and write the shipped files. With
    ``spd_only`` the two targets are taken from the shipped files (their recorded target settings must
    be the current ones) and only the decomposition is retrained. ``spd_steps`` shortens the
    decomposition's run (tests); the shipped files use the configured steps."""
    exp = experiment("resid_mlp", scale="cpu")
    if spd_steps is not None:
        exp = replace(exp, spd=replace(exp.spd, steps=spd_steps, warmup_steps=min(exp.spd.warmup_steps, spd_steps)))
    t0 = time.perf_counter()
    if spd_only:
        target, clean, _, old = load_resid_mlp(weights, meta)
        if old["target"] != exp.target:
            raise ValueError(f"the shipped targets were trained with {old['target']}, the current settings are "
                             f"{exp.target}: regenerate everything (without --spd-only)")
        target_seconds = old["target_seconds"]
    else:
        with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:  # the two targets side by side
            futures = [pool.submit(_train_target, exp.target, e) for e in ("random", "orthogonal")]
            target, clean = (f.result() for f in futures)
        target_seconds = round(time.perf_counter() - t0, 1)
    res = train_spd(target, exp.spd)
    tensors = {f"target.{k}": getattr(target, k).contiguous() for k in _TARGET_KEYS}
    tensors |= {f"orthogonal.{k}": getattr(clean, k).contiguous() for k in _TARGET_KEYS}
    tensors |= {f"spd.{k}": v.detach().contiguous() for k, v in res.model.state_dict().items()}
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(weights))
    info = {"target": exp.target, "spd": asdict(exp.spd), "feature_probability": target.feature_probability,
            "sha256": _sha256(weights), "target_seconds": target_seconds, "spd_seconds": round(res.seconds, 1),
            "target_loss": target.loss(), "orthogonal_loss": clean.loss(), "naive_loss": target.naive_loss(),
            "command": "python -m course_utils.decomposition.shipped" + (" --spd-only" if spd_only else "")
            + (f" (shortened to {spd_steps} SPD steps)" if spd_steps is not None else "")}
    meta.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info


def load_resid_mlp(weights: Path = WEIGHTS, meta: Path = META
                   ) -> tuple[ResidualMLPTarget, ResidualMLPTarget, SPDModel, dict[str, object]]:
    """(target, orthogonal-embedding target, its SPD decomposition, metadata) from the shipped files.
    Raises FileNotFoundError or ValueError naming the problem when they are missing or do not match."""
    for p in (weights, meta):
        if not Path(p).exists():
            raise FileNotFoundError(f"shipped file {p} is missing: regenerate it with "
                                    "python -m course_utils.decomposition.shipped")
    info = json.loads(Path(meta).read_text(encoding="utf-8"))
    if _sha256(Path(weights)) != info.get("sha256"):
        raise ValueError(f"{weights} does not match the checksum in {meta}: the two shipped files are from "
                         "different runs; regenerate both with python -m course_utils.decomposition.shipped")
    t = load_file(str(weights))
    p = float(info["feature_probability"])
    target = ResidualMLPTarget(*(t[f"target.{k}"] for k in _TARGET_KEYS), feature_probability=p)
    clean = ResidualMLPTarget(*(t[f"orthogonal.{k}"] for k in _TARGET_KEYS), feature_probability=p)
    cfg = SPDConfig(**info["spd"])
    model = SPDModel(target, cfg.C, cfg.d_gate, cfg.tie, torch.Generator().manual_seed(0))
    state = {k[len("spd."):]: v for k, v in t.items() if k.startswith("spd.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{weights} does not fit the SPD model of {meta}: missing {missing}, unexpected {unexpected}")
    return target, clean, model, info


if __name__ == "__main__":
    import sys

    torch.set_num_threads(1)
    print(json.dumps(train_and_save(spd_only="--spd-only" in sys.argv[1:]), indent=1))
