"""The course SAEs: dictionaries trained on the course language model and shipped with the package.

Chapter 4's analysis pages load these instead of training (a CPU run of a million tokens takes many
minutes). One command reproduces them deterministically (same machine, one thread)::

    python -m course_utils.saes train-course-saes [--out DIR] [--tokens N] [--only NAME ...]

At full size (``--scale full``, or ``--device cuda``, or by default when :mod:`course_utils.device`'s
switch selects the GPU scale) the same command trains every spec on 12M tokens of activations for 1.5
epochs (18M seen, against 100k-600k on the CPU) with batches of 4,096, the model forward on the
GPU too, and records the metrics on 32,768 validation tokens (:data:`RUN_SIZES`). A GPU run is not
bit-reproducible; a CPU run on one thread is.

It collects activations of the course model (:func:`course_utils.course_lm.load_course_lm`) on the
training split of the course corpus at every hook of :data:`COURSE_SAES` in one pass, normalises each
hook's activations so that E‖x‖ = √d_in (SAELens's ``expected_average_only_in``), trains each SAE with
:func:`course_utils.saes.train_sae`, folds the normalisation back into the weights (so the saved SAE
reads raw activations; decoder rows stay unit-norm), evaluates it on held-out validation text
(:mod:`course_utils.saes.evals`, :mod:`course_utils.saes.interp`) and writes, per SAE, a folder in
SAELens's format (``cfg.json``, ``sae_weights.safetensors`` in float16 to keep the shipped files small)
plus ``training_log.json``; ``manifest.json`` records every file's SHA-256.

:func:`load_course_sae` checks the checksums, the configuration and that the SAE was trained on the
shipped course model before returning it (float32, eval mode), and with a model it checks that the
hook exists and has the SAE's width.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import itertools
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from course_utils.saes import SAE, TrainConfig, load_sae, make_sae, save_sae, train_sae

COURSE_SAE_DIR = Path(__file__).resolve().parents[1] / "data" / "course_saes"
MANIFEST = "manifest.json"
LOG = "training_log.json"
MODEL_NAME = "course_lm"


class CourseSAEError(ValueError):
    """A shipped course SAE is missing, corrupted or does not match its configuration or model."""


@dataclass(frozen=True)
class CourseSAESpec:
    """One shipped SAE: where it reads, which architecture, how large, and its hyperparameters."""

    name: str
    hook_name: str
    architecture: str
    d_sae: int
    params: dict[str, Any] = field(default_factory=dict)
    lr: float = 1e-3
    seed: int = 0


MLP0, RESID1, MLP1_OUT = "blocks.0.mlp.hook_post", "blocks.1.hook_resid_pre", "blocks.1.hook_mlp_out"

#: The shipped SAEs: a TopK and a JumpReLU at three places, and a TopK dictionary-size family
#: (512 → 2048 → 8192) on the residual stream between the blocks.
COURSE_SAES: tuple[CourseSAESpec, ...] = (
    CourseSAESpec("mlp0-topk-2048", MLP0, "topk", 2048, {"k": 16}, lr=3e-3),
    CourseSAESpec("mlp0-jumprelu-2048", MLP0, "jumprelu", 2048,
                  {"l0_coefficient": 3.0, "init_threshold": 0.5, "bandwidth": 0.1}),
    CourseSAESpec("resid1-topk-512", RESID1, "topk", 512, {"k": 16}, lr=3e-3),
    CourseSAESpec("resid1-topk-2048", RESID1, "topk", 2048, {"k": 16}, lr=3e-3),
    CourseSAESpec("resid1-topk-8192", RESID1, "topk", 8192, {"k": 16}, lr=3e-3),
    CourseSAESpec("resid1-jumprelu-2048", RESID1, "jumprelu", 2048,
                  {"l0_coefficient": 1.0, "init_threshold": 0.5, "bandwidth": 0.1}),
    CourseSAESpec("mlp1out-topk-2048", MLP1_OUT, "topk", 2048, {"k": 16}, lr=3e-3),
    CourseSAESpec("mlp1out-jumprelu-2048", MLP1_OUT, "jumprelu", 2048,
                  {"l0_coefficient": 1.0, "init_threshold": 0.5, "bandwidth": 0.1}),
)


def spec(name: str) -> CourseSAESpec:
    """The :class:`CourseSAESpec` called ``name``; a clear error lists the names."""
    for s in COURSE_SAES:
        if s.name == name:
            return s
    raise CourseSAEError(f"no course SAE called {name!r}; choose one of {[s.name for s in COURSE_SAES]}")


@dataclass(frozen=True)
class RunSize:
    """How large a ``train-course-saes`` run is: tokens of training activations, passes over them,
    the batch size, validation tokens for the recorded metrics, sequences per model forward."""

    n_tokens: int
    epochs: float
    batch_size: int
    eval_tokens: int
    seqs_per_forward: int


#: ``cpu``: the command's CPU defaults (the shipped SAEs used 100k tokens for 2 epochs, or 600k for 1;
#: their logs record each command). ``full``: the GPU switch's size, 12M of the training split's 12.65M
#: tokens (18M activations seen), batches 4x larger, the model forward in 256-sequence chunks.
RUN_SIZES: dict[str, RunSize] = {
    "cpu": RunSize(n_tokens=200_000, epochs=2.0, batch_size=1_024, eval_tokens=8_192, seqs_per_forward=16),
    "full": RunSize(n_tokens=12_000_000, epochs=1.5, batch_size=4_096, eval_tokens=32_768, seqs_per_forward=256),
}


# ------------------------------------------------------------------------------------------------
# Activations


def corpus_windows(tokenizer: Any, split: str, n_tokens: int, n_ctx: int, seed: int = 0) -> torch.Tensor:
    """Token windows ``[n_windows, n_ctx]`` covering at least ``n_tokens`` tokens of a corpus split:
    files in a seeded random order, each followed by ``<|endoftext|>``, cut into windows."""
    from course_utils.corpus import load_corpus

    if not isinstance(n_tokens, int) or n_tokens < n_ctx:
        raise ValueError(f"n_tokens must be an int of at least one context ({n_ctx}), got {n_tokens!r}")
    files = load_corpus(split)  # type: ignore[arg-type]
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
    eot = tokenizer.token_to_id("<|endoftext|>")
    ids: list[int] = []
    need = -(-n_tokens // n_ctx) * n_ctx
    for i in order:
        ids.extend(tokenizer.encode(files[i].text).ids + [eot])
        if len(ids) >= need:
            break
    n = min(len(ids), need) // n_ctx
    return torch.tensor(ids[: n * n_ctx]).view(n, n_ctx)


@torch.no_grad()
def collect_activations(model: Any, windows: torch.Tensor, hook_names: list[str], seqs_per_forward: int = 16,
                        store: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """Activations ``[n_tokens, d]`` (float32) at every hook in ``hook_names``, one forward per chunk of
    ``windows: [n_windows, n_ctx]`` on the model's device, kept on ``store`` (default the CPU); each
    output is allocated once, so a 12M-token run needs no second copy."""
    for h in hook_names:
        check_hook(model, h)
    store = torch.device("cpu") if store is None else torch.device(store)
    dev = next(model.parameters()).device
    n = windows.numel()
    out: dict[str, torch.Tensor] = {}
    row = 0
    for i in range(0, len(windows), seqs_per_forward):
        _, cache = model.run_with_cache(windows[i:i + seqs_per_forward].to(dev), names_filter=hook_names)
        for h in hook_names:
            a = cache[h].reshape(-1, cache[h].shape[-1])
            if h not in out:
                out[h] = torch.empty(n, a.shape[-1], device=store)
            out[h][row:row + len(a)] = a.float()
        row += len(a)
    return out


def activation_store(device: str | torch.device, n_tokens: int, width: int, fraction: float = 0.5) -> torch.device:
    """Where to keep ``[n_tokens, width]`` float32 activations: on a CUDA ``device`` when they fill at
    most ``fraction`` of its free memory, else in CPU memory (each batch is then copied to the device)."""
    device = torch.device(device)
    if device.type != "cuda":
        return torch.device("cpu")
    free, _ = torch.cuda.mem_get_info(device)
    return device if 4 * n_tokens * width <= fraction * free else torch.device("cpu")


def check_hook(model: Any, hook_name: str) -> None:
    """Raise a clear error when ``model`` has no hook called ``hook_name``."""
    if not isinstance(hook_name, str) or hook_name not in model.hook_dict:
        near = [h for h in model.hook_dict if h.endswith(str(hook_name).split(".")[-1])][:4]
        raise CourseSAEError(f"the model has no hook {hook_name!r}; hooks with that ending: {near}")


def hook_width(model: Any, hook_name: str) -> int:
    """The width of the activation at ``hook_name`` (one forward of one token)."""
    check_hook(model, hook_name)
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.zeros(1, 1, dtype=torch.long), names_filter=hook_name)
    return int(cache[hook_name].shape[-1])


def norm_scale(x: torch.Tensor) -> float:
    """The factor s with E‖s·x‖ = √d: x: [n, d]."""
    return float(x.shape[-1] ** 0.5 / x.norm(dim=-1).mean().clamp_min(1e-12))


@torch.no_grad()
def fold_input_scale(sae: SAE, s: float) -> None:
    """Make an SAE trained on s·x read x: b_enc, b_dec (and a threshold) divide by s, so the latents
    are the trained ones divided by s, x̂(x) = x̂_trained(s·x)/s, and decoder rows keep their norms."""
    for name in ("b_enc", "b_dec", "threshold"):
        t = getattr(sae, name, None)
        if isinstance(t, torch.Tensor):
            t.div_(s)


# ------------------------------------------------------------------------------------------------
# Training


def train_one(s: CourseSAESpec, acts: torch.Tensor, epochs: float = 2.0, batch_size: int = 1024,
              device: str | torch.device | None = None) -> tuple[SAE, dict[str, Any]]:
    """Train the SAE of spec ``s`` on activations ``acts: [n, d_in]`` (raw, on any device) on ``device``
    (default the CPU); return it on the CPU (reading raw activations) and its training record."""
    dev = torch.device("cpu") if device is None else torch.device(device)
    scale = norm_scale(acts)
    steps = max(1, int(epochs * len(acts) / batch_size))
    sae = make_sae(s.architecture, d_in=acts.shape[-1], d_sae=s.d_sae, seed=s.seed, **s.params)

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:  # scaled per batch: no scaled copy of acts
        idx = torch.randint(len(acts), (n,), generator=gen)
        return acts[idx.to(acts.device)].to(dev) * scale

    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=s.lr, warmup_steps=min(50, steps), seed=s.seed,
                      eval_every=max(1, steps // 20))
    log = train_sae(sae, sample, cfg, device=dev)
    sae.cpu()
    fold_input_scale(sae, scale)
    record = {"spec": asdict(s), "train": asdict(cfg), "input_scale": scale, "train_tokens": len(acts),
              "tokens_seen": log.steps_run, "seconds": round(log.seconds, 1), "device": dev.type,
              "curve": {"steps": log.steps, "mse": log.mse, "sparsity": log.sparsity, "aux": log.aux}}
    return sae.eval(), record


@torch.no_grad()
def round_to_half(sae: SAE) -> None:
    """Round every floating parameter and buffer to float16 precision (kept in float32)."""
    for t in itertools.chain(sae.parameters(), sae.buffers()):
        if t.is_floating_point():
            t.copy_(t.half().float())


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_course_sae(sae: SAE, s: CourseSAESpec, record: dict[str, Any], out: Path,
                    context_size: int) -> dict[str, str]:
    """Write the SAE (float16 tensors) in SAELens's format and its training log; return file checksums."""
    folder = Path(out) / s.name
    save_sae(copy.deepcopy(sae).half(), folder, hook_name=s.hook_name, model_name=MODEL_NAME)
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["metadata"]["context_size"] = context_size
    (folder / "cfg.json").write_text(json.dumps(cfg, indent=1))
    (folder / LOG).write_text(json.dumps(record, indent=1) + "\n")
    return {f"{s.name}/{f}": sha256(folder / f) for f in ("cfg.json", "sae_weights.safetensors", LOG)}


def train_course_saes(out: Path = COURSE_SAE_DIR, n_tokens: int = 200_000, only: list[str] | None = None,
                      epochs: float = 2.0, eval_tokens: int = 8_192, progress: bool = True,
                      batch_size: int = 1_024, device: str | torch.device = "cpu",
                      seqs_per_forward: int = 16) -> dict[str, Any]:
    """Train, evaluate and save the course SAEs (all of :data:`COURSE_SAES`, or those named in
    ``only``) into ``out``; return the manifest written to ``out/manifest.json``.

    ``device`` runs the model forward that collects the activations and the SAE training (activations
    stay on a CUDA device when they fit, :func:`activation_store`); the model and the SAEs return to
    the CPU for the recorded metrics, so they are measured as :func:`load_course_sae` serves them."""
    from course_utils.course_lm import load_course_lm
    from course_utils.device import one_thread
    from course_utils.saes.evals import baselines, evaluate_sae
    from course_utils.saes.interp import score_course_sae

    specs = [spec(n) for n in only] if only else list(COURSE_SAES)
    dev = torch.device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"saes": {}, "sha256": {}}
    command = (f"python -m course_utils.saes train-course-saes --tokens {n_tokens} --epochs {epochs} "
               f"--eval-tokens {eval_tokens}" + (f" --batch-size {batch_size}" if batch_size != 1_024 else "")
               + (f" --device {dev.type}" if dev.type != "cpu" else ""))
    hooks = sorted({s.hook_name for s in specs})
    with one_thread():
        model, tokenizer = load_course_lm()
        n_ctx = model.cfg.n_ctx
        t0 = time.perf_counter()
        windows = corpus_windows(tokenizer, "train", n_tokens, n_ctx, seed=0)
        widths = {h: hook_width(model, h) for h in hooks}
        store = activation_store(dev, windows.numel(), sum(widths.values()))
        acts = collect_activations(model if dev.type == "cpu" else model.to(dev), windows, hooks,
                                   seqs_per_forward, store=store)
        if dev.type != "cpu":
            model.cpu()  # evaluated where load_course_sae serves the SAEs
        act_seconds = time.perf_counter() - t0
        val = corpus_windows(tokenizer, "validation", eval_tokens, n_ctx, seed=1)
        base = {h: baselines(model, h, val) for h in hooks}
        for s in specs:
            if progress:
                print(f"training {s.name} on {len(acts[s.hook_name]):,} tokens at {s.hook_name} "
                      f"({dev.type}) ...", flush=True)
            sae, record = train_one(s, acts[s.hook_name], epochs=epochs, batch_size=batch_size, device=dev)
            round_to_half(sae)  # measure exactly what load_course_sae will return
            record["activation_seconds"] = round(act_seconds, 1)
            record["model_sha256"] = _model_digest()
            record["eval"] = evaluate_sae(model, sae, s.hook_name, val, base=base[s.hook_name]).summary()
            record["monosemanticity"] = score_course_sae(model, tokenizer, sae, s.hook_name, eval_tokens)
            if progress:
                print(f"  {s.name}: {json.dumps(record['eval'])}", flush=True)
            sums = save_course_sae(sae, s, record, out, n_ctx)
            # per SAE: SAEs retrained later with other settings keep their own command
            manifest["saes"][s.name] = {"spec": asdict(s), "d_in": sae.cfg.d_in,
                                        "command": f"{command} --only {s.name}"}
            manifest["sha256"] = {k: v for k, v in manifest["sha256"].items() if not k.startswith(s.name + "/")}
            manifest["sha256"].update(sums)
            manifest["command"] = command
            manifest["eval_tokens"] = eval_tokens
            manifest["model_sha256"] = record["model_sha256"]
            # written after every SAE, so an interrupted run leaves a consistent manifest
            manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def _model_digest() -> str:
    from course_utils.course_lm import MODEL_DIR

    return json.loads((MODEL_DIR / "config.json").read_text())["sha256"]["model.safetensors"]


# ------------------------------------------------------------------------------------------------
# Loading


def load_course_sae(name: str, model: Any | None = None, path: Path = COURSE_SAE_DIR) -> SAE:
    """A shipped course SAE (float32, eval mode), after checking every file's SHA-256 against
    ``manifest.json``, the saved config against the manifest's spec and the course model its log
    names against the shipped one. With ``model``, also check that the model has the SAE's hook and
    that the activation there has the SAE's width."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str such as 'mlp0-topk-2048', got {type(name).__name__}")
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise CourseSAEError(f"no course SAEs at {path}: {MANIFEST} is missing; run "
                             "`python -m course_utils.saes train-course-saes`")
    manifest = json.loads(manifest_path.read_text())
    if name not in manifest["saes"]:
        raise CourseSAEError(f"no course SAE called {name!r} in {path}; shipped: {sorted(manifest['saes'])}")
    for key, digest in manifest["sha256"].items():
        if not key.startswith(name + "/"):
            continue
        f = path / key
        if not f.exists():
            raise CourseSAEError(f"course SAE file {f} is missing")
        got = sha256(f)
        if got != digest:
            raise CourseSAEError(f"{key} does not match its checksum in {MANIFEST} (sha256 {got[:12]}..., "
                                 f"expected {digest[:12]}...): the file is corrupted or was replaced")
    entry = manifest["saes"][name]
    log = path / name / LOG
    trained_on = json.loads(log.read_text()).get("model_sha256") if log.exists() else None
    if trained_on is not None and trained_on != _model_digest():
        raise CourseSAEError(f"{name} was trained on another course model (model.safetensors sha256 "
                             f"{trained_on[:12]}..., the shipped model is {_model_digest()[:12]}...): its latents "
                             "would read other features; retrain with `python -m course_utils.saes train-course-saes`")
    cfg = json.loads((path / name / "cfg.json").read_text())
    want = entry["spec"]
    course = cfg["metadata"].get("course_utils", {})
    got = {"hook_name": cfg["metadata"].get("hook_name"), "d_sae": cfg.get("d_sae"),
           "architecture": course.get("architecture"), "d_in": cfg.get("d_in")}
    expected = {"hook_name": want["hook_name"], "d_sae": want["d_sae"], "architecture": want["architecture"],
                "d_in": entry["d_in"]}
    bad = {k: (got[k], expected[k]) for k in expected if got[k] != expected[k]}
    if bad:
        raise CourseSAEError(f"{name}: cfg.json does not match the manifest: "
                             + ", ".join(f"{k} is {g!r}, expected {e!r}" for k, (g, e) in bad.items()))
    sae = load_sae(path / name).float().eval()
    if model is not None:
        check_sae_fits(sae, model, want["hook_name"])
    return sae


def check_sae_fits(sae: SAE, model: Any, hook_name: str) -> None:
    """Raise when ``model`` lacks ``hook_name`` or its activation there is not ``sae.cfg.d_in`` wide."""
    width = hook_width(model, hook_name)
    if width != sae.cfg.d_in:
        raise CourseSAEError(f"the SAE reads {sae.cfg.d_in}-wide activations but {hook_name} is {width} wide "
                             "in this model: wrong hook or wrong model")


def shipped_names(path: Path = COURSE_SAE_DIR) -> list[str]:
    """Names of the SAEs in the shipped manifest (empty when none are shipped)."""
    p = Path(path) / MANIFEST
    return sorted(json.loads(p.read_text())["saes"]) if p.exists() else []


def training_log(name: str, path: Path = COURSE_SAE_DIR) -> dict[str, Any]:
    """The recorded training log of a shipped SAE (metrics measured when it was trained)."""
    f = Path(path) / spec(name).name / LOG
    if not f.exists():
        raise CourseSAEError(f"{name} has no training log at {f}")
    return json.loads(f.read_text())


# ------------------------------------------------------------------------------------------------
# Command line


def run_size(scale: str | None = None, device: str | None = None) -> tuple[str, RunSize, torch.device]:
    """The size and device of a run: ``scale`` ``"cpu"`` or ``"full"`` (:data:`RUN_SIZES`) and a device
    name. Unset, the device follows :mod:`course_utils.device`'s switch (the CPU at CPU scale, else
    :func:`~course_utils.device.get_device`), and the scale is ``"full"`` on a CUDA device or when
    the switch selects the GPU scale (``COURSE_SCALE=gpu`` smoke-tests it on a CPU)."""
    from course_utils.device import get_device, pick

    if scale is not None and scale not in RUN_SIZES:
        raise ValueError(f"scale must be one of {sorted(RUN_SIZES)}, got {scale!r}")
    dev = get_device(device) if device is not None else pick(cpu=torch.device("cpu"), gpu=get_device())
    if scale is None:
        scale = "full" if dev.type == "cuda" else pick(cpu="cpu", gpu="full")
    return scale, RUN_SIZES[scale], dev


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m course_utils.saes train-course-saes",
                                description="Train, evaluate and save the course SAEs (deterministic on a CPU).")
    p.add_argument("--out", type=Path, default=COURSE_SAE_DIR, help="output folder (default: the shipped one)")
    p.add_argument("--scale", choices=sorted(RUN_SIZES), default=None,
                   help="run size: cpu (200k tokens, 2 epochs, batch 1024) or full (12M tokens, 1.5 epochs, "
                        "batch 4096); default: full on a GPU or with COURSE_SCALE=gpu, else cpu")
    p.add_argument("--device", default=None, help="where the model forward and training run (cpu, cuda); "
                   "default: the GPU when the course's switch selects it")
    p.add_argument("--tokens", type=int, default=None, help="training tokens of activations (default: the scale's)")
    p.add_argument("--epochs", type=float, default=None, help="passes over those activations (default: the scale's)")
    p.add_argument("--batch-size", type=int, default=None, help="training batch (default: the scale's)")
    p.add_argument("--eval-tokens", type=int, default=None, help="validation tokens for the recorded metrics")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="train only these SAEs")
    a = p.parse_args(argv)
    if a.only:
        for n in a.only:
            spec(n)
    scale, size, dev = run_size(a.scale, a.device)
    manifest = train_course_saes(
        a.out, size.n_tokens if a.tokens is None else a.tokens, a.only,
        size.epochs if a.epochs is None else a.epochs, size.eval_tokens if a.eval_tokens is None else a.eval_tokens,
        batch_size=size.batch_size if a.batch_size is None else a.batch_size, device=dev,
        seqs_per_forward=size.seqs_per_forward)
    print(f"wrote {len(manifest['saes'])} SAEs to {a.out} ({scale} size, on {dev.type})")
    return 0
