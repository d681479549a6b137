"""One training loop for every architecture: the SAE supplies its loss and its hooks.

Each step: draw a batch, ``sae.loss(x)`` (a :class:`~course_utils.saes.base.LossParts`), backward,
``sae.before_step()`` (gradient edits), gradient clipping, Adam, ``sae.after_step()`` (decoder
normalisation, threshold clamps, bias updates), ``sae.record_firing`` (dead-latent tracking). The
learning rate warms up linearly over ``warmup_steps`` and decays linearly to 0 over the last
``decay_fraction`` of training. Optional: Bricken-style resampling of dead latents every
``resample_every`` steps (:func:`resample_dead_latents`), a ``stop_when`` test every ``eval_every``
steps (to time how long a run takes to reach a target), a tqdm bar. For a seed, a run on the CPU is
bit-reproducible.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from course_utils._validate import check_float, check_int
from course_utils.device import one_thread
from course_utils.saes.base import SAE

Data = Callable[[int, torch.Generator], torch.Tensor]


@dataclass
class TrainConfig:
    steps: int = 2_000
    batch_size: int = 1_024
    lr: float = 3e-3
    warmup_steps: int = 50
    decay_fraction: float = 0.2
    grad_clip: float = 1.0
    seed: int = 0
    resample_every: int | None = None
    resample_until: int | None = None
    eval_every: int = 100
    progress: bool = False

    def __post_init__(self) -> None:
        self.steps = check_int(self.steps, "steps")
        self.batch_size = check_int(self.batch_size, "batch_size")
        self.lr = check_float(self.lr, "lr", low=0.0)
        self.warmup_steps = check_int(self.warmup_steps, "warmup_steps", minimum=0)
        self.decay_fraction = check_float(self.decay_fraction, "decay_fraction", low=0.0, high=1.0)
        self.grad_clip = check_float(self.grad_clip, "grad_clip", low=0.0)
        self.seed = check_int(self.seed, "seed", minimum=0)
        if self.resample_every is not None:
            self.resample_every = check_int(self.resample_every, "resample_every")
        self.eval_every = check_int(self.eval_every, "eval_every")


@dataclass
class TrainLog:
    """What a run recorded: the loss parts every ``eval_every`` steps, the step a ``stop_when`` test
    first passed (or None), the number of latents resampled, and the wall-clock seconds."""

    steps: list[int] = field(default_factory=list)
    mse: list[float] = field(default_factory=list)
    sparsity: list[float] = field(default_factory=list)
    aux: list[float] = field(default_factory=list)
    stopped_at: int | None = None
    n_resampled: int = 0
    seconds: float = 0.0
    steps_run: int = 0

    @property
    def examples_per_second(self) -> float:
        return self.steps_run / max(self.seconds, 1e-9)


def lr_factor(step: int, steps: int, warmup_steps: int, decay_fraction: float) -> float:
    """Linear warm-up over ``warmup_steps``, constant, then linear decay to 0 over the last fraction."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    decay_start = steps * (1 - decay_fraction)
    decay = 1.0 if step < decay_start or decay_fraction == 0 else max(0.0, (steps - step) / (steps - decay_start))
    return warm * decay


def _batches(data: Any, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    if hasattr(data, "sample"):
        while True:
            yield data.sample(batch_size, gen)
    elif callable(data):
        while True:
            yield data(batch_size, gen)
    else:
        yield from iter(data)


@torch.no_grad()
def resample_dead_latents(W_enc: torch.Tensor, W_dec: torch.Tensor, b_enc: torch.Tensor, dead: torch.Tensor,
                          x: torch.Tensor, sq_error: torch.Tensor, generator: torch.Generator,
                          enc_scale: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bricken et al. 2023's resampling: for each dead latent, draw an input with probability ∝ its
    squared reconstruction error; the decoder row becomes that input's direction, the encoder column
    the same direction scaled to ``enc_scale`` × the mean encoder norm of the alive latents, b_enc 0.

    W_enc: [d_in, d_sae], W_dec: [d_sae, d_in], b_enc: [d_sae], dead: bool [d_sae], x: [batch, d_in],
    sq_error: [batch]. Returns new (W_enc, W_dec, b_enc); the inputs are not modified."""
    W_enc, W_dec, b_enc = W_enc.clone(), W_dec.clone(), b_enc.clone()
    idx = torch.nonzero(dead).flatten()  # dead latents in increasing order
    if idx.numel() == 0 or not sq_error.sum() > 0:
        return W_enc, W_dec, b_enc
    rows = torch.multinomial(sq_error, idx.numel(), replacement=True, generator=generator)
    directions = x[rows] / x[rows].norm(dim=-1, keepdim=True).clamp_min(1e-12)  # [n_dead, d_in]
    alive = ~dead
    alive_norm = W_enc[:, alive].norm(dim=0).mean() if alive.any() else W_enc.new_tensor(1.0)
    W_dec[idx] = directions
    W_enc[:, idx] = directions.T * enc_scale * alive_norm
    b_enc[idx] = 0.0
    return W_enc, W_dec, b_enc


def _reset_adam(opt: torch.optim.Optimizer, sae: SAE, idx: torch.Tensor) -> None:
    for name, dim in (("W_enc", 1), ("W_dec", 0), ("b_enc", 0)):
        p = getattr(sae, name, None)
        state = opt.state.get(p) if p is not None else None
        if not state:
            continue
        for key in ("exp_avg", "exp_avg_sq"):
            state[key].index_fill_(dim, idx, 0.0)


def _resample(sae: SAE, opt: torch.optim.Optimizer, x: torch.Tensor, gen: torch.Generator) -> int:
    dead = sae.dead_mask()
    if not dead.any() or not sae.has_b_enc:
        return 0
    with torch.no_grad():
        err = (sae(x) - x).pow(2).sum(-1)
        W_enc, W_dec, b_enc = resample_dead_latents(sae.W_enc, sae.W_dec, sae.b_enc, dead, x, err, gen)
        sae.W_enc.copy_(W_enc)
        sae.W_dec.copy_(W_dec)
        sae.b_enc.copy_(b_enc)
        sae.tokens_since_fired[dead] = 0
    _reset_adam(opt, sae, torch.nonzero(dead).flatten())
    return int(dead.sum())


def train_sae(sae: SAE, data: Any, cfg: TrainConfig | None = None,
              stop_when: Callable[[SAE], bool] | None = None, device: str | torch.device | None = None) -> TrainLog:
    """Train ``sae`` in place on ``data``: a :class:`~course_utils.saes.toy.ToyData`, a function
    ``(batch_size, generator) -> [batch, d_in]`` or an iterable of batches. Returns a :class:`TrainLog`."""
    cfg = TrainConfig() if cfg is None else cfg
    if not isinstance(sae, SAE):
        raise TypeError(f"sae must be a course_utils.saes SAE, got {type(sae).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    dev = torch.device(device) if device is not None else next(sae.parameters()).device
    sae.to(dev).train()
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam([p for p in sae.parameters() if p.requires_grad], lr=cfg.lr)
    log = TrainLog()
    batches = _batches(data, cfg.batch_size, gen)
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, desc=type(sae).__name__, leave=False)
    t0 = time.perf_counter()
    with one_thread() if dev.type == "cpu" else _null():
        for step in range(cfg.steps):
            x = next(batches, None)
            if x is None:
                break
            x = sae.check_input(x).to(dev, sae.W_dec.dtype)
            if step == 0:
                sae.initialise_from_data(x)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, cfg.steps, cfg.warmup_steps, cfg.decay_fraction)
            parts = sae.loss(x)
            opt.zero_grad(set_to_none=True)
            parts.total.backward()
            sae.before_step()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(sae.parameters(), cfg.grad_clip)
            opt.step()
            sae.after_step()
            sae.record_firing(parts.acts.detach())
            log.steps_run = (step + 1) * x.shape[0]
            if cfg.resample_every and step > 0 and step % cfg.resample_every == 0 and (
                    cfg.resample_until is None or step <= cfg.resample_until):
                log.n_resampled += _resample(sae, opt, x, gen)
            if bar is not None:
                bar.update(1)
            if (step + 1) % cfg.eval_every == 0 or step == cfg.steps - 1:
                log.steps.append(step + 1)
                log.mse.append(parts.mse.item())
                log.sparsity.append(parts.sparsity.item())
                log.aux.append(parts.aux.item())
                if stop_when is not None and log.stopped_at is None:
                    sae.eval()
                    ok = stop_when(sae)
                    sae.train()
                    if ok:
                        log.stopped_at = step + 1
                        break
    if bar is not None:
        bar.close()
    log.seconds = time.perf_counter() - t0
    sae.eval()
    return log


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
