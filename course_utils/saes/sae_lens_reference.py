"""sae-lens 6.54.12's own trainer as the reference the course's benchmarks time against.

Chapters 4, 4b and 5 compare this package's training loop with what a user would otherwise pick:
sae-lens's training SAE classes and ``SAETrainer``, fed the same pre-generated activation batches
(no hub, no activation store) with the same learning rate, on one CPU thread. sae-lens is imported
only when a rate is measured.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from course_utils.device import one_thread

#: Our architecture -> (sae-lens training class, its config class, config keywords) at the shipped
#: hyperparameters (group bias adaptation has no sae-lens counterpart).
SAE_LENS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "relu": ("StandardTrainingSAE", "StandardTrainingSAEConfig", dict(l1_coefficient=0.3)),
    "topk": ("TopKTrainingSAE", "TopKTrainingSAEConfig", dict(k=5)),
    "batchtopk": ("BatchTopKTrainingSAE", "BatchTopKTrainingSAEConfig", dict(k=5)),
    "jumprelu": ("JumpReLUTrainingSAE", "JumpReLUTrainingSAEConfig",
                 dict(l0_coefficient=0.03, jumprelu_bandwidth=0.05, jumprelu_init_threshold=0.05)),
    "gated": ("GatedTrainingSAE", "GatedTrainingSAEConfig", dict(l1_coefficient=0.3)),
    "matryoshka": ("MatryoshkaBatchTopKTrainingSAE", "MatryoshkaBatchTopKTrainingSAEConfig",
                   dict(k=5, matryoshka_widths=[192, 256])),
}


def sae_lens_rate(arch: str, batches: list[torch.Tensor], d_sae: int, **kw: Any) -> float:
    """Examples per second of sae-lens's ``SAETrainer`` on ``batches`` (each ``[batch, d_in]``), for
    the sae-lens class matching ``arch`` (keywords in ``kw`` override the shipped ones)."""
    if arch not in SAE_LENS:
        raise ValueError(f"sae-lens has no counterpart of {arch!r}; expected one of {sorted(SAE_LENS)}")
    import sae_lens
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    batch, d_in = batches[0].shape
    cls_name, cfg_name, cfg_kw = SAE_LENS[arch]
    sae = getattr(sae_lens, cls_name)(getattr(sae_lens, cfg_name)(d_in=d_in, d_sae=d_sae, **{**cfg_kw, **kw}))
    cfg = SAETrainerConfig(n_checkpoints=0, checkpoint_path=None, save_final_checkpoint=False,
                           total_training_samples=len(batches) * batch, device="cpu",
                           autocast=False, lr=3e-3, lr_end=3e-3, lr_scheduler_name="constant",
                           lr_warm_up_steps=0, adam_beta1=0.9, adam_beta2=0.999, lr_decay_steps=0,
                           n_restart_cycles=1, train_batch_size_samples=batch,
                           dead_feature_window=1000, feature_sampling_window=2000,
                           logger=LoggingConfig(log_to_wandb=False, eval_every_n_wandb_logs=2**31 - 1),
                           n_batches_for_norm_estimate=1000)
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=iter(batches), save_checkpoint_fn=lambda _p: None)
    with one_thread():
        t0 = time.perf_counter()
        trainer.fit()
        return len(batches) * batch / (time.perf_counter() - t0)
