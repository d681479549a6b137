"""The course language model: a small transformer trained on the course corpus, shipped with the course.

Chapters 4-7 decompose a real trained transformer, and the course must work offline, so it trains and
ships its own: a byte-level BPE tokenizer (vocabulary 4,096) and a 2-layer TransformerLens
``HookedTransformer`` (d_model 128, d_mlp 512, context 128) trained on real Python: the standard
library's source (:mod:`course_utils.corpus`) and that of five pinned, BSD-licensed packages. Hook names are TransformerLens's own
(``blocks.0.mlp.hook_post``, ``blocks.1.hook_resid_pre``, ...).

The shipped weights were trained in two stages on the larger corpus of
:mod:`course_utils.package_corpus` (``python -m course_utils.course_lm train --corpus python``, then
``train --init-from``: the first stage's weights and tokenizer, so token ids stay, with a fresh
optimiser and schedule). The first stage is kept in ``data/course_lm_stage1`` (:data:`STAGE1_DIR`) so
that the second reproduces; both commands are in the README and in the shipped training log. Training
is deterministic for a given machine and thread count, and resumable: with ``--checkpoint-dir`` an
interrupted run continues from its last checkpoint and ends with the same weights. Load the model in
well under a second with :func:`load_course_lm`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_utils._optional import require
from course_utils.corpus import SourceFile, load_corpus

MODEL_DIR = Path(__file__).parent / "data" / "course_lm"
STAGE1_DIR = Path(__file__).parent / "data" / "course_lm_stage1"  # the shipped model's first stage (init of the second)
EOT = "<|endoftext|>"


@dataclass(frozen=True)
class CourseLMConfig:
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    n_ctx: int = 128
    d_vocab: int = 4096
    act_fn: str = "gelu"
    normalization_type: str = "LN"

    def hooked_config(self) -> Any:
        require("transformer_lens", purpose="the course language model")
        from transformer_lens import HookedTransformerConfig

        return HookedTransformerConfig(**dataclasses.asdict(self), tokenizer_name=None, seed=0)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3500  # the shipped model: 1.13 passes over the larger corpus
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 200
    weight_decay: float = 0.05
    seed: int = 0
    eval_every: int = 250
    # Warm start: sha256 of the model.safetensors whose weights the run starts from ("" = random init).
    # Recorded so a checkpoint or shipped config names the weights it continued from.
    init_sha256: str = ""


class CourseLMError(RuntimeError):
    """The shipped model files are missing, corrupted or do not match each other."""


# ------------------------------------------------------------------------------------------------
# Tokenizer


def train_tokenizer(texts: list[str], vocab_size: int = 4096) -> Any:
    """Byte-level BPE trained on ``texts`` with one special token, ``<|endoftext|>`` (id 0)."""
    require("tokenizers", purpose="the course language model")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 300:
        raise ValueError(f"vocab_size must be at least 300 (256 bytes + merges), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def corpus_files(split: str, corpus: str = "stdlib") -> list[SourceFile]:
    """A split of the shipped stdlib corpus (``corpus="stdlib"``) or of the larger snapshot (``"python"``)."""
    if corpus == "stdlib":
        return load_corpus(split)  # type: ignore[arg-type]
    if corpus == "python":
        from course_utils.package_corpus import load_python_corpus

        return load_python_corpus(split)  # type: ignore[arg-type]
    raise ValueError(f"corpus must be 'stdlib' or 'python', got {corpus!r}")


def encode_files(tokenizer: Any, files: list[SourceFile]) -> torch.Tensor:
    """Files as one stream of token ids, each followed by ``<|endoftext|>``."""
    eot = tokenizer.token_to_id(EOT)
    ids: list[int] = []
    for enc in tokenizer.encode_batch([f.text for f in files]):
        ids.extend(enc.ids)
        ids.append(eot)
    return torch.tensor(ids, dtype=torch.long)


def encode_split(tokenizer: Any, split: str, corpus: str = "stdlib") -> torch.Tensor:
    """All files of a corpus split as one stream of token ids, files separated by ``<|endoftext|>``."""
    return encode_files(tokenizer, corpus_files(split, corpus))


# ------------------------------------------------------------------------------------------------
# Training and evaluation


class WindowSampler:
    """Batches of non-overlapping ``n_ctx`` windows of ``tokens``, every window once per pass (epoch),
    in an order reshuffled each pass. Batch ``step`` depends only on (seed, step), so a resumed run
    sees exactly the batches the uninterrupted one would have."""

    def __init__(self, tokens: torch.Tensor, n_ctx: int, batch_size: int, seed: int) -> None:
        self.n_windows = len(tokens) // n_ctx
        if self.n_windows < 1:
            raise ValueError(f"need at least {n_ctx} training tokens, got {len(tokens)}")
        self.windows = tokens[: self.n_windows * n_ctx].view(self.n_windows, n_ctx)
        self.batch_size, self.seed = batch_size, seed
        self._perm: tuple[int, torch.Tensor] | None = None

    def steps_per_epoch(self) -> float:
        return self.n_windows / self.batch_size

    def _order(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = (epoch, torch.randperm(self.n_windows, generator=gen))
        return self._perm[1]

    def batch(self, step: int) -> torch.Tensor:
        idx = []
        for i in range(step * self.batch_size, (step + 1) * self.batch_size):
            idx.append(int(self._order(i // self.n_windows)[i % self.n_windows]))
        return self.windows[idx]


@torch.no_grad()
def evaluate(model: Any, tokens: torch.Tensor, n_ctx: int, max_windows: int | None = None,
             batch_size: int = 64) -> float:
    """Mean next-token cross-entropy (nats) over non-overlapping windows of ``tokens``."""
    n = (len(tokens) - 1) // n_ctx
    if max_windows is not None:
        n = min(n, max_windows)
    if n < 1:
        raise ValueError(f"need more than {n_ctx} tokens to evaluate, got {len(tokens)}")
    windows = tokens[: n * n_ctx].view(n, n_ctx)
    device = next(model.parameters()).device
    total = 0.0
    for i in range(0, n, batch_size):
        chunk = windows[i:i + batch_size].to(device)
        total += model(chunk, return_type="loss").item() * len(chunk)
    return total / n


def ngram_baselines(train: torch.Tensor, val: torch.Tensor, d_vocab: int) -> dict[str, float]:
    """Cross-entropy (nats) on ``val`` of add-one unigram and add-0.1 bigram models counted on ``train``."""
    uni = torch.bincount(train, minlength=d_vocab).double() + 1
    uni_lp = (uni / uni.sum()).log()
    unigram = -uni_lp[val[1:]].mean().item()
    pairs = train[:-1] * d_vocab + train[1:]
    big = torch.bincount(pairs, minlength=d_vocab * d_vocab).view(d_vocab, d_vocab).float() + 0.1
    big_lp = (big / big.sum(1, keepdim=True)).log()
    bigram = -big_lp[val[:-1], val[1:]].double().mean().item()
    return {"unigram": unigram, "bigram": bigram}


def _save_checkpoint(path: Path, step: int, model: Any, opt: Any, log: dict[str, Any], seconds: float,
                     cfg: CourseLMConfig, tcfg: TrainConfig) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "model": model.state_dict(), "opt": opt.state_dict(), "log": log,
                "seconds": seconds, "config": dataclasses.asdict(cfg), "training": dataclasses.asdict(tcfg)}, tmp)
    tmp.replace(path)


def train_model(cfg: CourseLMConfig, tcfg: TrainConfig, train_tokens: torch.Tensor, val_tokens: torch.Tensor,
                device: str = "cpu", progress: bool = True, checkpoint: Path | None = None,
                checkpoint_every: int = 250, init: dict[str, torch.Tensor] | None = None
                ) -> tuple[Any, dict[str, Any]]:
    """AdamW with linear warm-up and cosine decay over shuffled passes of the training windows
    (:class:`WindowSampler`); returns the model and a log.

    With ``init`` (a state dict, e.g. the shipped weights), training starts from those weights instead
    of a random initialisation, with a fresh optimiser and schedule (a warm start; ``tcfg.init_sha256``
    should name the weights).

    With ``checkpoint`` (a file path), the state (weights, optimiser, log, step) is saved there every
    ``checkpoint_every`` steps, and a run that finds a checkpoint of the same configurations resumes
    from it; on one thread the resumed run's weights equal the uninterrupted run's bit for bit."""
    require("transformer_lens", purpose="the course language model")
    from transformer_lens import HookedTransformer

    if tcfg.steps < 1 or tcfg.batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {tcfg.steps} and {tcfg.batch_size}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be positive, got {checkpoint_every}")
    torch.manual_seed(tcfg.seed)
    model = HookedTransformer(cfg.hooked_config()).to(device)
    if init is not None:
        model.load_state_dict(init)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay, betas=(0.9, 0.95))
    sampler = WindowSampler(train_tokens, cfg.n_ctx, tcfg.batch_size, tcfg.seed)
    log: dict[str, Any] = {"step": [], "train_loss": [], "eval_step": [], "val_loss": []}
    start, before = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, weights_only=True, map_location=device)
        if state["config"] != dataclasses.asdict(cfg) or state["training"] != dataclasses.asdict(tcfg):
            raise ValueError(f"checkpoint {checkpoint} belongs to another configuration: "
                             f"{state['config']}, {state['training']}; delete it or use another folder")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, log, before = state["step"], state["log"], state["seconds"]
        if progress:
            print(f"resuming from {checkpoint} at step {start}", flush=True)

    def lr_at(step: int) -> float:
        if step < tcfg.warmup_steps:
            return tcfg.lr * (step + 1) / tcfg.warmup_steps
        frac = (step - tcfg.warmup_steps) / max(1, tcfg.steps - tcfg.warmup_steps)
        return tcfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    t0 = time.perf_counter()
    for step in range(start, tcfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        batch = sampler.batch(step).to(device)
        loss = model(batch, return_type="loss")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0:
            log["step"].append(step)
            log["train_loss"].append(round(loss.item(), 4))
        if (step + 1) % tcfg.eval_every == 0 or step + 1 == tcfg.steps:
            model.eval()
            v = evaluate(model, val_tokens, cfg.n_ctx, max_windows=256)
            model.train()
            log["eval_step"].append(step + 1)
            log["val_loss"].append(round(v, 4))
            if progress:
                rate = (step + 1 - start) * tcfg.batch_size * cfg.n_ctx / (time.perf_counter() - t0)
                print(f"step {step + 1}/{tcfg.steps} (pass {(step + 1) / sampler.steps_per_epoch():.2f}): "
                      f"train {loss.item():.3f}, val {v:.3f}, {rate:,.0f} tokens/s", flush=True)
        if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == tcfg.steps):
            _save_checkpoint(Path(checkpoint), step + 1, model, opt, log, before + time.perf_counter() - t0,
                             cfg, tcfg)
    elapsed = max(before + time.perf_counter() - t0, 1e-9)
    log["seconds"] = round(elapsed, 1)
    log["tokens_per_second"] = round(tcfg.steps * tcfg.batch_size * cfg.n_ctx / elapsed)
    log["passes"] = round(tcfg.steps / sampler.steps_per_epoch(), 3)
    return model.eval(), log


# ------------------------------------------------------------------------------------------------
# Saving and loading


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_course_lm(model: Any, tokenizer: Any, cfg: CourseLMConfig, tcfg: TrainConfig, log: dict[str, Any],
                   out: Path = MODEL_DIR) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    tokenizer.save(str(out / "tokenizer.json"))
    meta = {"model": dataclasses.asdict(cfg), "training": dataclasses.asdict(tcfg),
            "sha256": {"model.safetensors": _sha256(out / "model.safetensors"),
                       "tokenizer.json": _sha256(out / "tokenizer.json")}}
    (out / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "training_log.json").write_text(json.dumps(log) + "\n")


def load_course_lm(device: str | torch.device | None = None, path: Path = MODEL_DIR) -> tuple[Any, Any]:
    """The shipped model (``HookedTransformer``, in eval mode) and its tokenizer, checked by SHA-256."""
    from safetensors.torch import load_file
    require("tokenizers", purpose="the course language model")
    from tokenizers import Tokenizer
    require("transformer_lens", purpose="the course language model")
    from transformer_lens import HookedTransformer

    path = Path(path)
    meta_path = path / "config.json"
    if not meta_path.exists():
        raise CourseLMError(f"no course model at {path}: config.json is missing")
    meta = json.loads(meta_path.read_text())
    for name, digest in meta["sha256"].items():
        f = path / name
        if not f.exists():
            raise CourseLMError(f"course model file {f} is missing")
        got = _sha256(f)
        if got != digest:
            raise CourseLMError(f"{f.name} does not match its checksum in config.json (sha256 {got[:12]}..., "
                                f"expected {digest[:12]}...): the file is corrupted or belongs to another model")
    cfg = CourseLMConfig(**meta["model"])
    model = HookedTransformer(cfg.hooked_config(), move_to_device=False)
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    if device is not None:
        model = model.to(device)
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    return model.eval(), tokenizer


class OfflineError(RuntimeError):
    """A pretrained model was requested but no model hub can be reached."""


def _hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_pretrained(name: str = "gpt2-small", device: str | torch.device | None = None) -> Any:
    """A pretrained TransformerLens model from the Hugging Face hub, for learners who are online (e.g. on
    Colab). Offline it raises :class:`OfflineError`: the course model (:func:`load_course_lm`) is the
    offline default and every chapter runs on it."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a model name such as 'gpt2-small', got {name!r}")
    if not _hub_reachable():
        raise OfflineError(f"cannot download {name!r}: the model hub is unreachable (offline). The course's own "
                           "model works offline: model, tokenizer = load_course_lm()")
    require("transformer_lens", purpose="the course language model")
    from transformer_lens import HookedTransformer

    return HookedTransformer.from_pretrained(name, device=str(device) if device is not None else None)


def load_pretrained_sae(release: str = "gpt2-small-res-jb", sae_id: str = "blocks.8.hook_resid_pre",
                        device: str | torch.device | None = None) -> Any:
    """A pretrained sparse autoencoder from SAELens (e.g. for GPT-2 small), for learners who are online.
    Offline it raises :class:`OfflineError`; chapter 4 trains its SAEs on the course model instead."""
    for name, v in (("release", release), ("sae_id", sae_id)):
        if not isinstance(v, str) or not v:
            raise ValueError(f"{name} must be a non-empty string such as 'gpt2-small-res-jb', got {v!r}")
    if not _hub_reachable():
        raise OfflineError(f"cannot download the SAE {release}/{sae_id}: the model hub is unreachable (offline). "
                           "Offline, train SAEs on the course model: model, tokenizer = load_course_lm()")
    require("sae_lens", purpose="the course language model")
    from sae_lens import SAE

    return SAE.from_pretrained(release, sae_id, device=str(device) if device is not None else "cpu")


def encode(tokenizer: Any, text: str, n_ctx: int | None = None) -> torch.Tensor:
    """Token ids ``[1, seq]`` of ``text``; raises if it is empty or longer than ``n_ctx``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError("text is empty: nothing to encode")
    ids = tokenizer.encode(text).ids
    if n_ctx is not None and len(ids) > n_ctx:
        raise ValueError(f"text is {len(ids)} tokens long but the model's context is {n_ctx}; shorten it "
                         "or split it into windows")
    return torch.tensor([ids], dtype=torch.long)


@torch.no_grad()
def complete(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int = 20) -> str:
    """Greedy continuation of ``prompt`` (deterministic)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
    n_ctx = model.cfg.n_ctx
    ids = encode(tokenizer, prompt, n_ctx)[0].tolist()
    eot = tokenizer.token_to_id(EOT)
    device = next(model.parameters()).device
    new: list[int] = []
    for _ in range(max_new_tokens):
        ctx = torch.tensor([(ids + new)[-n_ctx:]], device=device)
        nxt = int(model(ctx)[0, -1].argmax())
        if nxt == eot:
            break
        new.append(nxt)
    return tokenizer.decode(new)


# ------------------------------------------------------------------------------------------------
# Reading the model's units against ground-truth labels (the appendix page)


def unit_activations(model: Any, tokenizer: Any, texts: list[str], hook_name: str, max_tokens: int = 20_000,
                     concepts: list[str] | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """Activations ``[n_tokens, d]`` at ``hook_name`` over ``texts`` (each cut into context windows), and
    the ground-truth concept of every token (:func:`course_utils.labels.token_labels`)."""
    import numpy as np

    from course_utils.labels import LabelError, token_labels

    if hook_name not in model.hook_dict:
        raise ValueError(f"unknown hook name {hook_name!r}; e.g. 'blocks.0.mlp.hook_post'")
    n_ctx = model.cfg.n_ctx
    acts, labs, toks = [], [], []
    total = 0
    for text in texts:
        try:
            tl = token_labels(text, tokenizer, concepts)
        except LabelError:
            continue
        ids = torch.tensor(tokenizer.encode(text).ids)
        for start in range(0, len(ids), n_ctx):
            window = ids[start:start + n_ctx]
            _, cache = model.run_with_cache(window[None], names_filter=hook_name)
            acts.append(cache[hook_name][0].detach())
            labs.append({c: v[start:start + n_ctx] for c, v in tl.values.items()})
            toks.extend(tl.tokens[start:start + n_ctx])
            total += len(window)
            if total >= max_tokens:
                break
        if total >= max_tokens:
            break
    names = list(labs[0])
    return torch.cat(acts), {"tokens": toks, "labels": {c: np.concatenate([lab[c] for lab in labs]) for c in names}}


def plot_training(log: dict[str, Any], earlier: dict[str, Any] | None = None) -> Any:
    """Training and validation loss of a model, with the n-gram baselines for scale. ``earlier``: the
    log of the stage it was warm-started from (``train --init-from``), drawn first, so that the steps
    run on across both stages and a dotted line marks where the second began."""
    import plotly.graph_objects as go

    from course_utils.plotting import style

    stages = [("stage 1 ", earlier), ("stage 2 ", log)] if earlier is not None else [("", log)]
    fig, offset = go.Figure(), 0
    for (prefix, lg), colours in zip(stages, (("#9ecae1", "#08519c"), ("#fdae6b", "#a63603"))):
        if earlier is not None and lg is log:
            fig.add_vline(x=offset, line=dict(dash="dot", color="grey"), annotation_text="warm start",
                          annotation_position="top left")
        fig.add_scatter(x=[offset + s for s in lg["step"]], y=lg["train_loss"], name=prefix + "train (batch)",
                        line=dict(width=1, color=colours[0]))
        fig.add_scatter(x=[offset + s for s in lg["eval_step"]], y=lg["val_loss"], name=prefix + "validation",
                        mode="lines+markers", line=dict(color=colours[1]))
        offset += lg["step"][-1]
    for k, dash in (("unigram_baseline", "dot"), ("bigram_baseline", "dash")):
        if k in log:
            fig.add_hline(y=log[k], line=dict(dash=dash, color="grey"),
                          annotation_text=k.replace("_baseline", " baseline"), annotation_position="top right")
    fig.update_layout(xaxis_title="step", yaxis_title="cross-entropy (nats per token)")
    return style(fig, title="Training the course model")


def plot_best_f1(f1: Any, concepts: list[str], title: str) -> Any:
    """For each unit, its best F1 over the concepts: a histogram, and which concept wins how often."""
    import numpy as np
    from plotly.subplots import make_subplots

    from course_utils.plotting import style

    f1 = np.asarray(f1)
    best = f1.max(1)
    winner = np.array(concepts)[f1.argmax(1)]
    names, counts = np.unique(winner, return_counts=True)
    order = np.argsort(-counts)
    fig = make_subplots(1, 2, subplot_titles=("best F1 per neuron", "best-matching concept"))
    fig.add_histogram(x=best, nbinsx=20, row=1, col=1, showlegend=False)
    fig.add_bar(x=names[order], y=counts[order], row=1, col=2, showlegend=False)
    fig.update_xaxes(title_text="F1 of the best concept", row=1, col=1)
    fig.update_yaxes(title_text="neurons", row=1, col=1)
    return style(fig, title=title, height=400)


def _probe_log(model_and_tokenizer: tuple[Any, Any], n_train: int, previous: Path | None, min_context: int = 0,
               concepts: list[str] | None = None) -> dict[str, Any]:
    """The probe report (:mod:`course_utils.probes`) of a model, and of the previous one if given (a
    report the previous model's log already holds under the same protocol is taken from there), and
    what the context windows themselves allow (:func:`course_utils.probes.window_ceiling`). The report
    is stored under ``probe`` (``min_context=0``, the original protocol) or ``probe_min_context{k}``."""
    from course_utils.probes import PROBE_HOOKS, comment_confusion, probe_report, probe_texts, window_ceiling

    key = "probe" if min_context == 0 else f"probe_min_context{min_context}"
    train_texts, val_texts = probe_texts()

    def report(model: Any, tokenizer: Any) -> dict[str, Any]:
        return probe_report(model, tokenizer, train_texts, val_texts, concepts=concepts, n_train=n_train,
                            n_val=n_train // 2, min_context=min_context)

    def confusion(model: Any, tokenizer: Any) -> dict[str, Any]:  # with the original protocol's report only
        return {"comment_confusion": comment_confusion(model, tokenizer, n_train=n_train, n_val=n_train // 2)
                } if min_context == 0 and concepts is None else {}

    model, tokenizer = model_and_tokenizer
    out: dict[str, Any] = {key: report(model, tokenizer), **confusion(model, tokenizer)}
    for k in sorted({0, min_context}):  # the original protocol's windows, and this one's
        out[f"window_ceiling_min_context{k}"] = window_ceiling(tokenizer, val_texts, model.cfg.n_ctx, n_train // 2,
                                                               min_context=k)
    if previous is not None:
        old_log = json.loads((previous / "training_log.json").read_text())
        model, tokenizer = load_course_lm(path=previous)
        out["previous"] = {**_summary(model, tokenizer, old_log), **confusion(model, tokenizer)}
        rec = old_log.get(key)
        if (concepts is None and rec is not None and rec["n_train"] == n_train and rec["n_val"] == n_train // 2
                and rec.get("min_context", 0) == min_context and set(rec["f1"]) == set(PROBE_HOOKS)):
            out["previous"][key] = {**rec, "source": "recorded in the previous model's training log (same protocol)"}
        else:
            out["previous"][key] = report(model, tokenizer)
    return out


def _summary(model: Any, tokenizer: Any, log: dict[str, Any]) -> dict[str, Any]:
    """A previous model's losses on the stdlib corpus, measured as this command measures its own."""
    val, train = encode_split(tokenizer, "validation"), encode_split(tokenizer, "train")
    val_loss = evaluate(model, val, model.cfg.n_ctx)
    chars = sum(len(f.text) + 1 for f in corpus_files("validation", "stdlib"))
    return {"val_loss_full": round(val_loss, 4), "val_tokens": len(val),
            "val_nats_per_char": round(val_loss * len(val) / chars, 4),
            "train_loss_sample": round(evaluate(model, train, model.cfg.n_ctx, max_windows=1024), 4),
            "train_tokens": log.get("train_tokens", len(train)),
            **{k: log[k] for k in ("bigram_baseline", "unigram_baseline", "seconds") if k in log}}


def _tokens(tokenizer: Any, corpus: str, cache: Path | None, max_files: int | None = None
            ) -> dict[str, torch.Tensor]:
    """Token streams of the splits (read back from ``cache/tokens.safetensors`` when present)."""
    from safetensors.torch import load_file, save_file

    if cache is not None and (cache / "tokens.safetensors").exists():
        return load_file(str(cache / "tokens.safetensors"))
    splits = ["train", "validation"] + (["validation_packages"] if corpus == "python" else [])
    out = {sp: encode_files(tokenizer, corpus_files(sp, corpus)[:max_files]) for sp in splits}
    if cache is not None:
        save_file(out, str(cache / "tokens.safetensors"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.course_lm",
                                     description="Reproduce the shipped course model from the corpus.")
    parser.add_argument("command", choices=["train", "probe"],
                        help="train: tokenizer, model, training log with probe report; probe: (re)write the "
                             "probe report of the model in --out into its training log")
    parser.add_argument("--corpus", choices=["stdlib", "python"], default="python",
                        help="'python': stdlib + pinned packages (build it first: python -m "
                             "course_utils.package_corpus build); 'stdlib': the shipped snapshot only")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr, help="peak learning rate")
    parser.add_argument("--warmup-steps", type=int, default=TrainConfig.warmup_steps)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed,
                        help="seed of the initialisation and of the order of the training windows")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="warm start: continue from the model (weights and tokenizer) in this folder, "
                             "e.g. the shipped course_utils/data/course_lm, with a fresh optimiser and schedule")
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="save the tokenizer, tokens and a training checkpoint here; rerunning the same "
                             "command resumes from the checkpoint")
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (the shipped model used 1, which makes runs repeatable)")
    parser.add_argument("--max-files", type=int, default=None,
                        help="use only the first N files of each split (a quick check of the command)")
    parser.add_argument("--probe-tokens", type=int, default=30_000,
                        help="probe training tokens (half as many held-out tokens score them); 0: no probes")
    parser.add_argument("--previous", type=Path, default=None,
                        help="also probe the model in this folder and record it as the previous model")
    parser.add_argument("--min-context", type=int, default=0,
                        help="probe protocol: score only tokens that see >= this many tokens before them in "
                             "their window (sliding windows; 0: non-overlapping windows, the original protocol)")
    parser.add_argument("--concepts", default=None, help="comma-separated concepts to probe (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.command == "probe":
        log_path = args.out / "training_log.json"
        log = json.loads(log_path.read_text())
        concepts = None if args.concepts is None else args.concepts.split(",")
        new = _probe_log(load_course_lm(path=args.out), args.probe_tokens, args.previous, args.min_context, concepts)
        previous = new.pop("previous", None)
        log.update(new)
        if previous is not None:  # merge: keep the previous model's other reports
            log["previous"] = {**log.get("previous", {}), **previous}
        log.setdefault("probe_commands", []).append("python -m course_utils.course_lm " + " ".join(
            sys.argv[1:] if argv is None else argv))
        log_path.write_text(json.dumps(log) + "\n")
        return 0
    ckpt = args.checkpoint_dir
    t0 = time.perf_counter()
    init, init_sha = None, ""
    if args.init_from is not None:
        init_model, tokenizer = load_course_lm(path=args.init_from)  # checks its checksums
        init = init_model.state_dict()
        init_sha = json.loads((args.init_from / "config.json").read_text())["sha256"]["model.safetensors"]
        if ckpt is not None:
            ckpt.mkdir(parents=True, exist_ok=True)
            tokenizer.save(str(ckpt / "tokenizer.json"))
    elif ckpt is not None and (ckpt / "tokenizer.json").exists():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    else:
        texts = [f.text for f in corpus_files("train", args.corpus)[:args.max_files]]
        tokenizer = train_tokenizer(texts, CourseLMConfig.d_vocab)
        if ckpt is not None:
            ckpt.mkdir(parents=True, exist_ok=True)
            tokenizer.save(str(ckpt / "tokenizer.json"))
    toks = _tokens(tokenizer, args.corpus, ckpt, args.max_files)
    train_tokens, val_tokens = toks["train"], toks["validation"]
    print(f"tokenizer and tokens: {time.perf_counter() - t0:.1f} s; {len(train_tokens):,} train / "
          f"{len(val_tokens):,} validation tokens", flush=True)
    cfg = CourseLMConfig()
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
                       seed=args.seed, init_sha256=init_sha)
    model, log = train_model(cfg, tcfg, train_tokens, val_tokens, device=args.device,
                             checkpoint=ckpt / "checkpoint.pt" if ckpt is not None else None,
                             checkpoint_every=args.checkpoint_every, init=init)
    log["val_loss_full"] = round(evaluate(model, val_tokens, cfg.n_ctx), 4)
    val_chars = sum(len(f.text) + 1 for f in corpus_files("validation", "stdlib")[:args.max_files])
    log["val_nats_per_char"] = round(log["val_loss_full"] * len(val_tokens) / val_chars, 4)
    if "validation_packages" in toks:
        log["val_packages_loss_full"] = round(evaluate(model, toks["validation_packages"], cfg.n_ctx), 4)
        log["val_packages_tokens"] = len(toks["validation_packages"])
    log["train_loss_sample"] = round(evaluate(model, train_tokens, cfg.n_ctx, max_windows=1024), 4)
    log.update({f"{k}_baseline": round(v, 4) for k, v in ngram_baselines(train_tokens, val_tokens, cfg.d_vocab).items()})
    if args.corpus == "python":
        from course_utils.package_corpus import corpus_manifest

        log["corpus_sources"] = corpus_manifest()
    log.update(corpus=args.corpus, train_tokens=len(train_tokens), val_tokens=len(val_tokens),
               torch=torch.__version__, threads=torch.get_num_threads(),
               command="python -m course_utils.course_lm " + " ".join(sys.argv[1:] if argv is None else argv))
    if args.init_from is not None:  # the warm start's first stage: its command, config and log summary
        first = json.loads((args.init_from / "training_log.json").read_text())
        log["init_from"] = {"config": json.loads((args.init_from / "config.json").read_text()),
                            **{k: first[k] for k in ("command", "notes", "seconds", "tokens_per_second", "passes",
                                                      "val_loss_full", "val_nats_per_char", "train_loss_sample",
                                                      "threads") if k in first}}
    if args.probe_tokens > 0:
        concepts = None if args.concepts is None else args.concepts.split(",")
        log.update(_probe_log((model, tokenizer), args.probe_tokens, args.previous, args.min_context, concepts))
    save_course_lm(model, tokenizer, cfg, tcfg, log, args.out)
    print(f"saved to {args.out}: validation loss {log['val_loss_full']:.3f} nats "
          f"(unigram {log['unigram_baseline']:.3f}, bigram {log['bigram_baseline']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
