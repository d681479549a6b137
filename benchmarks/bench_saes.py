"""Chapter 4 benchmarks: training throughput against sae-lens 6.54.12's own SAE classes and SAETrainer
on the same data, dictionary and batch size, and the time each architecture takes to reach MMCS 0.99.

Run with ``python -m course_utils.bench -k 'ch04/*'``. Both trainers get the same pre-generated
batches (so data generation is not timed) on one CPU thread.
"""

from __future__ import annotations

import time

import torch

from course_utils.bench import benchmark
from course_utils.device import one_thread
from course_utils.saes import SHIPPED, TrainConfig, make_sae, mmcs, sharkey_toy, train_sae


def _batches(toy, n: int, batch: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [toy.sample(batch, g) for _ in range(n)]


def _ours(batches: list[torch.Tensor], d: int, d_sae: int, k: int) -> float:
    sae = make_sae("topk", d, d_sae, seed=0, k=k)
    log = train_sae(sae, iter(batches), TrainConfig(steps=len(batches), batch_size=batches[0].shape[0],
                                                     eval_every=10**9))
    return log.steps_run / log.seconds


def _sae_lens(batches: list[torch.Tensor], d: int, d_sae: int, k: int) -> float:
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=d_sae, k=k))
    cfg = SAETrainerConfig(n_checkpoints=0, checkpoint_path=None, save_final_checkpoint=False,
                           total_training_samples=len(batches) * batches[0].shape[0], device="cpu",
                           autocast=False, lr=3e-3, lr_end=3e-3, lr_scheduler_name="constant",
                           lr_warm_up_steps=0, adam_beta1=0.9, adam_beta2=0.999, lr_decay_steps=0,
                           n_restart_cycles=1, train_batch_size_samples=batches[0].shape[0],
                           dead_feature_window=1000, feature_sampling_window=2000,
                           logger=LoggingConfig(log_to_wandb=False, eval_every_n_wandb_logs=2**31 - 1),
                           n_batches_for_norm_estimate=1000)
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=iter(batches), save_checkpoint_fn=lambda _p: None)
    with one_thread():
        t0 = time.perf_counter()
        trainer.fit()
        return len(batches) * batches[0].shape[0] / (time.perf_counter() - t0)


@benchmark("ch04/topk_throughput_vs_sae_lens")
def throughput() -> dict[str, float]:
    """Examples per second training TopK (k = 5) here and with sae-lens's TopKTrainingSAE + SAETrainer,
    at 64 -> 256 (batch 1024) and 128 -> 2048 (batch 4096), the same pre-generated batches for both."""
    out: dict[str, float] = {}
    for name, (d, n_feat, d_sae, batch, steps) in {"64x256_b1024": (64, 128, 256, 1024, 150),
                                                    "128x2048_b4096": (128, 256, 2048, 4096, 20)}.items():
        batches = _batches(sharkey_toy(d=d, n_features=n_feat), steps, batch)
        ours, theirs = 0.0, 0.0
        for _ in range(3):  # interleaved, best of three each: the load of a shared CPU drifts
            ours = max(ours, _ours(batches, d, d_sae, 5))
            theirs = max(theirs, _sae_lens(batches, d, d_sae, 5))
        out[f"{name}_ours_per_s"] = round(ours)
        out[f"{name}_sae_lens_per_s"] = round(theirs)
        out[f"{name}_ratio"] = round(ours / theirs, 2)
    return out


@benchmark("ch04/seconds_to_mmcs_099")
def time_to_mmcs() -> dict[str, float]:
    """Seconds (and steps) until MMCS first reaches 0.99 on the CPU toy, shipped hyperparameters,
    checked every 50 steps; -1 when not reached within 3000 steps."""
    toy = sharkey_toy()
    out: dict[str, float] = {}
    for arch in ("relu", "topk", "batchtopk", "jumprelu", "gated", "matryoshka", "gba"):
        sae = make_sae(arch, 64, 256, seed=0, **SHIPPED[arch])
        log = train_sae(sae, toy, TrainConfig(steps=3000, eval_every=50, seed=0),
                        stop_when=lambda s: mmcs(s.W_dec, toy.features).item() >= 0.99)
        out[f"{arch}_seconds"] = round(log.seconds, 1) if log.stopped_at else -1.0
        out[f"{arch}_steps"] = log.stopped_at or -1
    return out
