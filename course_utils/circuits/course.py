"""The course transcoders: per-layer transcoders, a cross-layer transcoder and comparison SAEs trained
on the course model's MLPs and shipped with the package (``course_utils/data/course_transcoders/``).

One command reproduces them deterministically (same machine, one thread)::

    python -m course_utils.circuits train-course-transcoders [--out DIR] [--tokens N] [--only NAME ...]

It collects, on the training split of the course corpus, the normalised MLP input
``blocks.L.ln2.hook_normalized`` and the MLP output ``blocks.L.hook_mlp_out`` of both layers in one pass
(:func:`course_utils.saes.course.corpus_windows` / ``collect_activations``), scales inputs and outputs
so that E‖x‖ = √d (as for the course SAEs), trains each entry of :data:`COURSE_TRANSCODERS` with
chapter 4's loop, folds the scales back into the weights (the saved models read and write raw
activations), rounds to float16, evaluates on held-out validation text
(:mod:`course_utils.circuits.transcoder_evals`; the monosemanticity scores of
:mod:`course_utils.saes.interp`) and writes one folder per model plus ``manifest.json`` with every
file's SHA-256. Per-layer transcoders use SAELens's transcoder format
(:mod:`course_utils.circuits.transcoder_io`), the CLT :func:`course_utils.circuits.clt.save_clt`, the
comparison SAEs chapter 4's SAE format.

:func:`load_course_transcoder` checks the checksums, the config against the manifest and, given the
model, the hooks and widths; :func:`comparison_table` returns the transcoder-vs-SAE comparison
(Dunefsky et al. 2024) from the recorded logs.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from course_utils.circuits.clt import CLTConfig, CrossLayerTranscoder, load_clt, save_clt, train_clt
from course_utils.circuits.transcoder_evals import (
    ReplacementBaselines,
    check_fits,
    evaluate_replacement,
    replacement_baselines,
)
from course_utils.circuits.transcoder_io import load_transcoder, save_transcoder
from course_utils.circuits.transcoders import Transcoder, make_transcoder, mlp_hooks, train_transcoder
from course_utils.saes import SAE, TrainConfig
from course_utils.saes.course import CourseSAESpec, norm_scale, round_to_half, sha256

COURSE_TRANSCODER_DIR = Path(__file__).resolve().parents[1] / "data" / "course_transcoders"
MANIFEST = "manifest.json"
LOG = "training_log.json"
N_LAYERS = 2


class CourseTranscoderError(ValueError):
    """A shipped course transcoder is missing, corrupted, or does not match its config or the model."""


@dataclass(frozen=True)
class CourseTranscoderSpec:
    """One shipped model: ``kind`` "transcoder" (one layer), "clt" (every layer) or "sae" (an SAE on
    one layer's MLP output, for the comparison); architecture "topk" or "jumprelu"."""

    name: str
    kind: str
    architecture: str
    d_sae: int
    layer: int | None = None
    skip: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    lr: float = 3e-3
    seed: int = 0

    @property
    def hooks(self) -> tuple[str, str]:
        """(input hook, output hook); an SAE reads and writes the MLP output."""
        h_in, h_out = mlp_hooks(self.layer if self.layer is not None else 0)
        return (h_out, h_out) if self.kind == "sae" else (h_in, h_out)


_TOPK = {"k": 16}
_JUMP = {"l0_coefficient": 1.0, "init_threshold": 0.5, "bandwidth": 0.1}
#: With a skip path the features have less left to explain, and λ = 1 left layer 0 with L0 ≈ 1.4
#: (layer 1: 9.6); these λ were chosen from those runs (L0 ∝ λ^-0.6 between λ = 0.1 and 1) to aim at
#: L0 ≈ 16, the TopK transcoders' k.
_SKIP_L0_COEFFICIENT = {0: 0.015, 1: 0.4}


def _per_layer(layer: int) -> tuple[CourseTranscoderSpec, ...]:
    jump_skip = {**_JUMP, "l0_coefficient": _SKIP_L0_COEFFICIENT[layer]}
    return (
        CourseTranscoderSpec(f"mlp{layer}-topk-1024", "transcoder", "topk", 1024, layer, False, _TOPK),
        CourseTranscoderSpec(f"mlp{layer}-skip-topk-1024", "transcoder", "topk", 1024, layer, True, _TOPK),
        CourseTranscoderSpec(f"mlp{layer}-jumprelu-1024", "transcoder", "jumprelu", 1024, layer, False, _JUMP,
                             lr=1e-3),
        CourseTranscoderSpec(f"mlp{layer}-skip-jumprelu-1024", "transcoder", "jumprelu", 1024, layer, True,
                             jump_skip, lr=1e-3),
        CourseTranscoderSpec(f"sae-mlp{layer}out-topk-1024", "sae", "topk", 1024, layer, False, _TOPK),
    )


#: The shipped models: per MLP a TopK and a JumpReLU transcoder, each with and without a skip path,
#: and a TopK SAE on the MLP output at the same L0 (k = 16) for the comparison; one TopK CLT.
COURSE_TRANSCODERS: tuple[CourseTranscoderSpec, ...] = (
    *_per_layer(0), *_per_layer(1),
    CourseTranscoderSpec("clt-topk-1024", "clt", "topk", 1024, None, False, _TOPK),
)


def spec(name: str) -> CourseTranscoderSpec:
    """The spec called ``name``; a clear error lists the names."""
    for s in COURSE_TRANSCODERS:
        if s.name == name:
            return s
    raise CourseTranscoderError(f"no course transcoder called {name!r}; choose one of "
                                f"{[s.name for s in COURSE_TRANSCODERS]}")


# ------------------------------------------------------------------------------------------------
# Training


def _config(s: CourseTranscoderSpec, steps: int, batch_size: int) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=batch_size, lr=s.lr, warmup_steps=min(50, steps), seed=s.seed,
                       eval_every=max(1, steps // 20))


@torch.no_grad()
def fold_scales(tc: Transcoder, a: float, c: float) -> None:
    """Make a transcoder trained on (a·x → c·y) map x → y, keeping unit-norm decoder rows: the
    activations become the trained ones divided by c (W_enc·a/c, b_enc/c, threshold/c), the skip
    path W_skip·a/c and b_dec/c."""
    tc.W_enc.mul_(a / c)
    tc.b_enc.div_(c)
    tc.b_dec.div_(c)
    if getattr(tc, "threshold", None) is not None:
        tc.threshold.div_(c)
    if tc.W_skip is not None:
        tc.W_skip.mul_(a / c)


@torch.no_grad()
def fold_clt_scales(clt: CrossLayerTranscoder, a: torch.Tensor, c: float) -> None:
    """The CLT version of :func:`fold_scales`: input scale a[s] per source layer, one output scale c."""
    clt.W_enc.mul_(a[:, None, None] / c)
    clt.b_enc.div_(c)
    clt.b_dec.div_(c)
    if clt.cfg.activation == "jumprelu":
        clt.threshold.div_(c)


def train_one(s: CourseTranscoderSpec, acts: dict[str, torch.Tensor], epochs: float = 2.0,
              batch_size: int = 1024, device: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Train the model of spec ``s`` on raw activations ``acts[hook]: [n, d]`` (on ``device``, default
    the CPU); return it on the CPU (reading raw activations, float32) and its training record."""
    n = len(next(iter(acts.values())))
    steps = max(1, int(epochs * n / batch_size))
    cfg = _config(s, steps, batch_size)
    record: dict[str, Any] = {"spec": asdict(s), "train": asdict(cfg), "train_tokens": n}
    if s.kind == "sae":
        from course_utils.saes.course import train_one as train_sae_one

        sae, rec = train_sae_one(_sae_spec(s), acts[s.hooks[1]], epochs=epochs, batch_size=batch_size)
        record.update({k: rec[k] for k in ("input_scale", "tokens_seen", "seconds", "curve")})
        return sae, record
    if s.kind == "clt":
        x = torch.stack([acts[mlp_hooks(layer)[0]] for layer in range(N_LAYERS)], 1)  # [n, L, d_in]
        y = torch.stack([acts[mlp_hooks(layer)[1]] for layer in range(N_LAYERS)], 1)  # [n, L, d_out]
        a = torch.tensor([norm_scale(x[:, layer]) for layer in range(N_LAYERS)])
        c = norm_scale(y.reshape(-1, y.shape[-1]))
        model = CrossLayerTranscoder(CLTConfig(
            n_layers=N_LAYERS, d_in=x.shape[-1], d_sae=s.d_sae, d_out=y.shape[-1], activation=s.architecture,
            hook_names=tuple(mlp_hooks(i)[0] for i in range(N_LAYERS)),
            hook_names_out=tuple(mlp_hooks(i)[1] for i in range(N_LAYERS)), **s.params),
            generator=torch.Generator().manual_seed(s.seed))
        log = train_clt(model, x * a[None, :, None], y * c, cfg, device=device)
        model.cpu()
        fold_clt_scales(model, a, c)
        record["input_scale"], record["output_scale"] = a.tolist(), c
    else:
        h_in, h_out = s.hooks
        x, y = acts[h_in], acts[h_out]
        a, c = norm_scale(x), norm_scale(y)
        model = make_transcoder(s.architecture, d_in=x.shape[-1], d_sae=s.d_sae, d_out=y.shape[-1], seed=s.seed,
                                skip=s.skip, hook_name=h_in, hook_name_out=h_out, **s.params)
        log = train_transcoder(model, x * a, y * c, cfg, device=device)
        model.cpu()
        fold_scales(model, a, c)
        record["input_scale"], record["output_scale"] = a, c
    record.update({"tokens_seen": log.steps_run, "seconds": round(log.seconds, 1),
                   "curve": {"steps": log.steps, "mse": log.mse, "sparsity": log.sparsity, "aux": log.aux}})
    return model.eval(), record


def _sae_spec(s: CourseTranscoderSpec) -> CourseSAESpec:
    return CourseSAESpec(s.name, s.hooks[1], s.architecture, s.d_sae, dict(s.params), lr=s.lr, seed=s.seed)


def _save(model: Any, s: CourseTranscoderSpec, record: dict[str, Any], out: Path, n_ctx: int) -> dict[str, str]:
    """Write one model (float16) and its log; return the files' checksums."""
    folder = Path(out) / s.name
    half = copy.deepcopy(model).half()
    if s.kind == "sae":
        from course_utils.saes.course import save_course_sae

        save_course_sae(model, _sae_spec(s), record, out, n_ctx)
        files = ("cfg.json", "sae_weights.safetensors", LOG)
    elif s.kind == "clt":
        save_clt(half, folder, model_name="course_lm", context_size=n_ctx)
        files = ("cfg.json", "clt_weights.safetensors", LOG)
    else:
        save_transcoder(half, folder, model_name="course_lm", context_size=n_ctx)
        files = ("cfg.json", "sae_weights.safetensors", LOG)
    (folder / LOG).write_text(json.dumps(record, indent=1) + "\n")
    return {f"{s.name}/{f}": sha256(folder / f) for f in files}


# ------------------------------------------------------------------------------------------------
# Evaluation


def evaluate_one(model_lm: Any, tokenizer: Any, s: CourseTranscoderSpec, m: Any, val: torch.Tensor,
                 bases: dict[tuple[str, ...], ReplacementBaselines], interp_tokens: int) -> dict[str, Any]:
    """The recorded metrics of one model: ``eval`` (CE recovered, KL, FVU, L0, dead fraction) and
    ``monosemanticity`` (the chapter 4 scores of its features, the MLP's neurons, random directions)."""
    from course_utils.saes.evals import Baselines, evaluate_sae
    from course_utils.saes.interp import score_course_sae

    layers = list(range(N_LAYERS)) if s.kind == "clt" else [s.layer]
    outs = tuple(mlp_hooks(i)[1] for i in layers)
    if outs not in bases:
        bases[outs] = replacement_baselines(model_lm, outs, val)
    b = bases[outs]
    if s.kind == "sae":
        sb = Baselines(outs[0], b.ce_clean, b.ce_zero, b.ce_mean, b.kl_zero, b.kl_mean, b.mean_acts[outs[0]])
        ev = evaluate_sae(model_lm, m, outs[0], val, base=sb).summary()
        return {"eval": ev, "monosemanticity": score_course_sae(model_lm, tokenizer, m, outs[0], interp_tokens)}
    rep = m if s.kind == "clt" else {s.layer: m}
    return {"eval": evaluate_replacement(model_lm, rep, val, base=b),
            "monosemanticity": score_transcoder_features(model_lm, tokenizer, m, interp_tokens)}


@torch.no_grad()
def score_transcoder_features(model_lm: Any, tokenizer: Any, m: Transcoder | CrossLayerTranscoder,
                              n_tokens: int, recall_floor: float = 0.5) -> dict[str, Any]:
    """Monosemanticity (:func:`course_utils.saes.interp.monosemanticity`) of a transcoder's features,
    of the MLP's neurons (``blocks.L.mlp.hook_post``) and of random directions in its input space, on
    the same validation tokens; for a CLT, per source layer (keys "0", "1", ...)."""
    from course_utils.saes.interp import concept_vocabulary, labelled_activations, monosemanticity, random_directions

    def layer_scores(layer: int, encode: Any, hook_in: str) -> dict[str, Any]:
        data = labelled_activations(model_lm, tokenizer, hook_in, n_tokens)
        neurons = labelled_activations(model_lm, tokenizer, f"blocks.{layer}.mlp.hook_post", n_tokens)
        concepts = concept_vocabulary(data.tokens, data.prev, data.labels)
        x = data.acts
        return {"recall_floor": recall_floor, "fire_fraction": 0.5, "n_tokens": len(data.tokens),
                "latents": monosemanticity(encode(x), concepts, recall_floor).summary(),
                "neurons": monosemanticity(neurons.acts, concepts, recall_floor).summary(),
                "random": monosemanticity(x @ random_directions(x.shape[-1], x.shape[-1]), concepts,
                                          recall_floor).summary()}

    if isinstance(m, CrossLayerTranscoder):
        return {str(s): layer_scores(s, lambda x, s=s: m.encode_layer(x, s), m.cfg.hook_names[s])
                for s in range(m.cfg.n_layers)}
    layer = int(m.cfg.hook_name.split(".")[1])
    return layer_scores(layer, m.encode, m.cfg.hook_name)


def train_course_transcoders(out: Path = COURSE_TRANSCODER_DIR, n_tokens: int = 200_000,
                             only: list[str] | None = None, epochs: float = 2.0, eval_tokens: int = 8_192,
                             progress: bool = True, device: str | None = None) -> dict[str, Any]:
    """Train, evaluate and save the models of :data:`COURSE_TRANSCODERS` (or those named in ``only``)
    into ``out``; return the manifest written to ``out/manifest.json``. ``device="cuda"`` trains the
    transcoders there (the GPU-scale run); activations, evaluation and the comparison SAEs stay on the
    CPU, and only a CPU run on one thread is bit-reproducible."""
    from course_utils.course_lm import load_course_lm
    from course_utils.device import one_thread
    from course_utils.saes.course import _model_digest, collect_activations, corpus_windows

    specs = [spec(n) for n in only] if only else list(COURSE_TRANSCODERS)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"models": {}, "sha256": {}}
    with one_thread():
        model_lm, tokenizer = load_course_lm()
        n_ctx = model_lm.cfg.n_ctx
        t0 = time.perf_counter()
        windows = corpus_windows(tokenizer, "train", n_tokens, n_ctx, seed=0)
        hooks = sorted({h for i in range(N_LAYERS) for h in mlp_hooks(i)})
        acts = collect_activations(model_lm, windows, hooks)
        act_seconds = time.perf_counter() - t0
        val = corpus_windows(tokenizer, "validation", eval_tokens, n_ctx, seed=1)
        bases: dict[tuple[str, ...], ReplacementBaselines] = {}
        for s in specs:
            if progress:
                print(f"training {s.name} ({s.kind}) on {len(acts[hooks[0]]):,} tokens ...", flush=True)
            m, record = train_one(s, acts, epochs=epochs, device=device)
            round_to_half(m)  # measure exactly what load_course_transcoder returns
            record["activation_seconds"] = round(act_seconds, 1)
            record["model_sha256"] = _model_digest()
            record.update(evaluate_one(model_lm, tokenizer, s, m, val, bases, eval_tokens))
            if progress:
                print(f"  {s.name}: {json.dumps(record['eval'])}", flush=True)
            sums = _save(m, s, record, out, n_ctx)
            d_in = m.cfg.d_in
            manifest["models"][s.name] = {"spec": asdict(s), "d_in": d_in, "d_out": m.cfg.d_out}
            manifest["sha256"] = {k: v for k, v in manifest["sha256"].items() if not k.startswith(s.name + "/")}
            manifest["sha256"].update(sums)
            manifest["command"] = (f"python -m course_utils.circuits train-course-transcoders --tokens {n_tokens} "
                                   f"--epochs {epochs} --eval-tokens {eval_tokens}")
            manifest["eval_tokens"] = eval_tokens
            manifest["model_sha256"] = record["model_sha256"]
            manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        manifest["joint"] = joint_replacements(model_lm, out, val, bases)
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


JOINT_VARIANTS = ("topk-1024", "skip-topk-1024", "jumprelu-1024", "skip-jumprelu-1024")


def joint_replacements(model_lm: Any, out: Path, val: torch.Tensor,
                       bases: dict[tuple[str, ...], ReplacementBaselines] | None = None) -> dict[str, Any]:
    """Both MLPs replaced at once by the per-layer transcoders of each variant in ``out`` (when both
    layers are there): the same metrics as the CLT's log, for the CLT vs per-layer comparison."""
    bases = {} if bases is None else bases
    outs = tuple(mlp_hooks(i)[1] for i in range(N_LAYERS))
    names = shipped_names(out)
    joint = {}
    for variant in JOINT_VARIANTS:
        layer_names = [f"mlp{i}-{variant}" for i in range(N_LAYERS)]
        if not all(n in names for n in layer_names):
            continue
        if outs not in bases:
            bases[outs] = replacement_baselines(model_lm, outs, val)
        rep = {i: load_course_transcoder(n, path=out) for i, n in enumerate(layer_names)}
        joint[variant] = evaluate_replacement(model_lm, rep, val, base=bases[outs])
    return joint


# ------------------------------------------------------------------------------------------------
# Loading


def _read_manifest(path: Path) -> dict[str, Any]:
    p = Path(path) / MANIFEST
    if not p.exists():
        raise CourseTranscoderError(f"no course transcoders at {path}: {MANIFEST} is missing; run "
                                    "`python -m course_utils.circuits train-course-transcoders`")
    return json.loads(p.read_text())


def load_course_transcoder(name: str, model: Any | None = None, path: Path = COURSE_TRANSCODER_DIR) -> Any:
    """A shipped course model by name (float32, eval mode): a transcoder, the CLT or a comparison SAE,
    after checking every file's SHA-256 against ``manifest.json`` and the saved config against the
    manifest's spec. With ``model``, also check that its hooks exist and have the model's widths."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str such as 'mlp0-topk-1024', got {type(name).__name__}")
    path = Path(path)
    manifest = _read_manifest(path)
    if name not in manifest["models"]:
        raise CourseTranscoderError(f"no course transcoder called {name!r} in {path}; shipped: "
                                    f"{sorted(manifest['models'])}")
    for key, digest in manifest["sha256"].items():
        if key.startswith(name + "/"):
            f = path / key
            if not f.exists():
                raise CourseTranscoderError(f"course transcoder file {f} is missing")
            got = sha256(f)
            if got != digest:
                raise CourseTranscoderError(f"{key} does not match its checksum in {MANIFEST} (sha256 "
                                            f"{got[:12]}..., expected {digest[:12]}...): the file is corrupted "
                                            "or was replaced")
    entry = manifest["models"][name]
    s = CourseTranscoderSpec(**entry["spec"])
    m = _load_kind(s, path / name)
    _check_config(name, s, entry, m)
    if model is not None:
        fits(m, s, model)
    return m


def _load_kind(s: CourseTranscoderSpec, folder: Path) -> Any:
    from course_utils.saes import load_sae

    if s.kind == "sae":
        return load_sae(folder).float().eval()
    if s.kind == "clt":
        return load_clt(folder).float().eval()
    return load_transcoder(folder).float().eval()


def _check_config(name: str, s: CourseTranscoderSpec, entry: dict[str, Any], m: Any) -> None:
    got: dict[str, Any] = {"d_in": m.cfg.d_in, "d_out": m.cfg.d_out, "d_sae": m.cfg.d_sae}
    want: dict[str, Any] = {"d_in": entry["d_in"], "d_out": entry["d_out"], "d_sae": s.d_sae}
    if s.kind == "transcoder":
        got.update(hook_name=m.cfg.hook_name, hook_name_out=m.cfg.hook_name_out, skip=m.cfg.skip,
                   architecture=m.cfg.architecture)
        want.update(hook_name=s.hooks[0], hook_name_out=s.hooks[1], skip=s.skip,
                    architecture=f"{s.architecture}_transcoder")
    elif s.kind == "clt":
        got.update(n_layers=m.cfg.n_layers, activation=m.cfg.activation)
        want.update(n_layers=N_LAYERS, activation=s.architecture)
    bad = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    if bad:
        raise CourseTranscoderError(f"{name}: its config does not match the manifest: "
                                    + ", ".join(f"{k} is {g!r}, expected {e!r}" for k, (g, e) in bad.items()))


def fits(m: Any, s: CourseTranscoderSpec, model: Any) -> None:
    """Raise :class:`CourseTranscoderError` when ``model`` lacks the hooks or has other widths."""
    try:
        if isinstance(m, SAE) and not isinstance(m, (Transcoder, CrossLayerTranscoder)):
            from course_utils.saes.course import check_sae_fits

            check_sae_fits(m, model, s.hooks[1])
        else:
            check_fits(model, m if isinstance(m, CrossLayerTranscoder) else {s.layer: m})
    except ValueError as e:
        raise CourseTranscoderError(f"{s.name} does not fit this model: {e}") from e


def shipped_names(path: Path = COURSE_TRANSCODER_DIR) -> list[str]:
    """Names in the shipped manifest (empty when none are shipped)."""
    p = Path(path) / MANIFEST
    return sorted(json.loads(p.read_text())["models"]) if p.exists() else []


def training_log(name: str, path: Path = COURSE_TRANSCODER_DIR) -> dict[str, Any]:
    """The recorded log of a shipped model (the metrics measured when it was trained)."""
    f = Path(path) / spec(name).name / LOG
    if not f.exists():
        raise CourseTranscoderError(f"{name} has no training log at {f}")
    return json.loads(f.read_text())


# ------------------------------------------------------------------------------------------------
# Transcoders vs SAEs (Dunefsky et al. 2024)


def comparison_table(path: Path = COURSE_TRANSCODER_DIR) -> list[dict[str, Any]]:
    """One row per shipped per-layer model (transcoders, skip transcoders, SAEs on the MLP output) from
    the recorded logs, no retraining: layer, name, kind, L0, CE recovered (zero / mean ablation), FVU
    of the MLP output and the features' monosemanticity (median, mean, share above 0.5)."""
    rows = []
    for name in shipped_names(path):
        s = spec(name)
        if s.kind == "clt":
            continue
        log = training_log(name, path)
        ev, mono = log["eval"], log["monosemanticity"]["latents"]
        key = str(s.layer)
        rows.append({
            "layer": s.layer, "name": name,
            "kind": "SAE" if s.kind == "sae" else ("skip transcoder" if s.skip else "transcoder"),
            "architecture": s.architecture,
            "l0": ev["l0"][key] if isinstance(ev["l0"], dict) else ev["l0"],
            "ce_recovered_zero": ev["ce_recovered_zero"], "ce_recovered_mean": ev["ce_recovered_mean"],
            "fvu": ev["fvu"][key] if isinstance(ev["fvu"], dict) else ev["fvu"],
            "mono_median": mono["median"], "mono_mean": mono["mean"], "mono_frac_above_half": mono["frac_above_0.5"],
        })
    return sorted(rows, key=lambda r: (r["layer"], r["architecture"], r["kind"]))


def clt_comparison(path: Path = COURSE_TRANSCODER_DIR) -> list[dict[str, Any]]:
    """Both MLPs replaced at once: the CLT and each per-layer variant (from the recorded logs and the
    manifest's ``joint`` entry): CE recovered (zero / mean ablation of both MLP outputs), FVU and L0
    per layer."""
    manifest = _read_manifest(Path(path))
    evals = {f"per-layer {v}": e for v, e in manifest.get("joint", {}).items()}
    for name in shipped_names(path):
        if spec(name).kind == "clt":
            evals[name] = training_log(name, path)["eval"]
    return [{"model": k, "ce_recovered_zero": e["ce_recovered_zero"], "ce_recovered_mean": e["ce_recovered_mean"],
             "fvu": e["fvu"], "l0": e["l0"]} for k, e in evals.items()]


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """The comparison rows as a fixed-width table (under 88 columns)."""
    head = f"{'layer':>5} {'kind':<16} {'arch':<8} {'L0':>6} {'CE rec0':>7} {'CE recμ':>7} {'FVU':>6} " \
           f"{'mono mean':>9} {'mono>½':>6}"
    lines = [head]
    for r in rows:
        lines.append(f"{r['layer']:>5} {r['kind']:<16} {r['architecture']:<8} {r['l0']:>6.1f} "
                     f"{r['ce_recovered_zero']:>7.3f} {r['ce_recovered_mean']:>7.3f} {r['fvu']:>6.3f} "
                     f"{r['mono_mean']:>9.3f} {r['mono_frac_above_half']:>6.3f}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    from course_utils.device import pick

    p = argparse.ArgumentParser(prog="python -m course_utils.circuits train-course-transcoders",
                                description="Train, evaluate and save the course transcoders (deterministic).")
    p.add_argument("--out", type=Path, default=COURSE_TRANSCODER_DIR, help="output folder (default: the shipped one)")
    p.add_argument("--tokens", type=int, default=pick(cpu=200_000, gpu=2_000_000),
                   help="training tokens of activations (default 200k on a CPU, 2M at GPU scale)")
    p.add_argument("--epochs", type=float, default=2.0, help="passes over those activations (default 2)")
    p.add_argument("--eval-tokens", type=int, default=8_192, help="validation tokens for the recorded metrics")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="train only these models")
    p.add_argument("--device", default=pick(cpu="cpu", gpu="cuda"), help="where transcoders train (cpu, cuda)")
    a = p.parse_args(argv)
    if a.only:
        for n in a.only:
            spec(n)
    manifest = train_course_transcoders(a.out, a.tokens, a.only, a.epochs, a.eval_tokens, device=a.device)
    print(f"wrote {len(manifest['models'])} models to {a.out}")
    return 0
