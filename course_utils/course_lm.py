"""The course language model: a small transformer trained on the course corpus, shipped with the course.

Chapters 4-7 decompose a real trained transformer, and the course must work offline, so it trains and
ships its own: a byte-level BPE tokenizer (vocabulary 4,096) and a 2-layer TransformerLens
``HookedTransformer`` (d_model 128, d_mlp 512, context 128) trained on the Python standard library's
source (:mod:`course_utils.corpus`). Hook names are TransformerLens's own
(``blocks.0.mlp.hook_post``, ``blocks.1.hook_resid_pre``, ...).

Reproduce the shipped weights with ``python -m course_utils.course_lm train`` (deterministic for a
given machine and thread count); load them in well under a second with :func:`load_course_lm`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_utils.corpus import load_corpus

MODEL_DIR = Path(__file__).parent / "data" / "course_lm"
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
        from transformer_lens import HookedTransformerConfig

        return HookedTransformerConfig(**dataclasses.asdict(self), tokenizer_name=None, seed=0)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 4000
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 200
    weight_decay: float = 0.05
    seed: int = 0
    eval_every: int = 250


class CourseLMError(RuntimeError):
    """The shipped model files are missing, corrupted or do not match each other."""


# ------------------------------------------------------------------------------------------------
# Tokenizer


def train_tokenizer(texts: list[str], vocab_size: int = 4096) -> Any:
    """Byte-level BPE trained on ``texts`` with one special token, ``<|endoftext|>`` (id 0)."""
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


def encode_split(tokenizer: Any, split: str) -> torch.Tensor:
    """All files of a corpus split as one stream of token ids, files separated by ``<|endoftext|>``."""
    eot = tokenizer.token_to_id(EOT)
    ids: list[int] = []
    for f in load_corpus(split):  # type: ignore[arg-type]
        ids.extend(tokenizer.encode(f.text).ids)
        ids.append(eot)
    return torch.tensor(ids, dtype=torch.long)


# ------------------------------------------------------------------------------------------------
# Training and evaluation


def _batch(tokens: torch.Tensor, batch_size: int, n_ctx: int, gen: torch.Generator) -> torch.Tensor:
    starts = torch.randint(0, len(tokens) - n_ctx, (batch_size,), generator=gen)
    return torch.stack([tokens[s:s + n_ctx] for s in starts.tolist()])


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


def train_model(cfg: CourseLMConfig, tcfg: TrainConfig, train_tokens: torch.Tensor, val_tokens: torch.Tensor,
                device: str = "cpu", progress: bool = True) -> tuple[Any, dict[str, Any]]:
    """AdamW with linear warm-up and cosine decay on random windows; returns the model and a log."""
    from transformer_lens import HookedTransformer

    if tcfg.steps < 1 or tcfg.batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {tcfg.steps} and {tcfg.batch_size}")
    torch.manual_seed(tcfg.seed)
    model = HookedTransformer(cfg.hooked_config()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay, betas=(0.9, 0.95))

    def lr_at(step: int) -> float:
        if step < tcfg.warmup_steps:
            return tcfg.lr * (step + 1) / tcfg.warmup_steps
        frac = (step - tcfg.warmup_steps) / max(1, tcfg.steps - tcfg.warmup_steps)
        return tcfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    gen = torch.Generator().manual_seed(tcfg.seed)
    log: dict[str, Any] = {"step": [], "train_loss": [], "eval_step": [], "val_loss": []}
    t0 = time.perf_counter()
    for step in range(tcfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        batch = _batch(train_tokens, tcfg.batch_size, cfg.n_ctx, gen).to(device)
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
                rate = (step + 1) * tcfg.batch_size * cfg.n_ctx / (time.perf_counter() - t0)
                print(f"step {step + 1}/{tcfg.steps}: train {loss.item():.3f}, val {v:.3f}, {rate:,.0f} tokens/s",
                      flush=True)
    elapsed = max(time.perf_counter() - t0, 1e-9)
    log["seconds"] = round(elapsed, 1)
    log["tokens_per_second"] = round(tcfg.steps * tcfg.batch_size * cfg.n_ctx / elapsed)
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
    from tokenizers import Tokenizer
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.course_lm",
                                     description="Reproduce the shipped course model from the corpus.")
    parser.add_argument("command", choices=["train"])
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (the shipped model used 1, which makes runs repeatable)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    texts = [f.text for f in load_corpus("train")]
    t0 = time.perf_counter()
    tokenizer = train_tokenizer(texts, CourseLMConfig.d_vocab)
    train_tokens, val_tokens = encode_split(tokenizer, "train"), encode_split(tokenizer, "validation")
    print(f"tokenizer: {time.perf_counter() - t0:.1f} s; {len(train_tokens):,} train / {len(val_tokens):,} "
          "validation tokens", flush=True)
    cfg, tcfg = CourseLMConfig(), TrainConfig(steps=args.steps)
    model, log = train_model(cfg, tcfg, train_tokens, val_tokens, device=args.device)
    log["val_loss_full"] = round(evaluate(model, val_tokens, cfg.n_ctx), 4)
    log.update({f"{k}_baseline": round(v, 4) for k, v in ngram_baselines(train_tokens, val_tokens, cfg.d_vocab).items()})
    log.update(train_tokens=len(train_tokens), val_tokens=len(val_tokens), torch=torch.__version__,
               threads=torch.get_num_threads())
    save_course_lm(model, tokenizer, cfg, tcfg, log, args.out)
    print(f"saved to {args.out}: validation loss {log['val_loss_full']:.3f} nats "
          f"(unigram {log['unigram_baseline']:.3f}, bigram {log['bigram_baseline']:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


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


def plot_training(log: dict[str, Any]) -> Any:
    """Training and validation loss of the shipped model, with the n-gram baselines for scale."""
    import plotly.graph_objects as go

    from course_utils.plotting import style

    fig = go.Figure()
    fig.add_scatter(x=log["step"], y=log["train_loss"], name="train (batch)", line=dict(width=1))
    fig.add_scatter(x=log["eval_step"], y=log["val_loss"], name="validation", mode="lines+markers")
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
