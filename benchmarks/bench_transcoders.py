"""Chapter 5 benchmarks: transcoder training throughput (tokens per second, one CPU thread).

Run with ``python -m course_utils.bench -k 'ch05/transcoder*'``. The shapes are the course
transcoders' (128 -> 1024 features -> 128, TopK k = 16, batch 1024) on pre-generated Gaussian pairs,
so data generation is not timed. SAELens 6.54.12 has no transcoder trainer, so the comparison is
with its TopK SAE trainer (``TopKTrainingSAE`` + ``SAETrainer``, the code chapter 4's benchmark
times) at the same shapes: a transcoder step costs what an autoencoder step of those shapes costs
plus a split of the pair batch.
"""

from __future__ import annotations

import torch

from course_utils.bench import benchmark
from course_utils.circuits import CLTConfig, CrossLayerTranscoder, make_transcoder
from course_utils.saes import TrainConfig, make_sae, train_sae
from course_utils.saes.sae_lens_reference import sae_lens_rate

D, D_SAE, K, BATCH, STEPS = 128, 1024, 16, 1024, 40


def _pairs(n: int, width: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(BATCH, *width, generator=g) for _ in range(n)]


def _rate(model: object, batches: list[torch.Tensor]) -> float:
    log = train_sae(model, iter(batches), TrainConfig(steps=len(batches), batch_size=BATCH, eval_every=10**9))
    return log.steps_run / log.seconds


def _sae_lens_rate(batches: list[torch.Tensor]) -> float:
    """SAELens's TopK SAE trainer on the same batches (chapter 4's reference helper)."""
    return sae_lens_rate("topk", batches, D_SAE, k=K)


@benchmark("ch05/transcoder_training_tokens_per_s")
def throughput() -> dict[str, float]:
    """Training tokens per second: TopK transcoder, skip transcoder, the 2-layer CLT (tokens = positions,
    each with both layers), chapter 4's TopK SAE at the same shapes, and SAELens's TopK SAE trainer;
    interleaved, best of three each (the load of a shared CPU drifts)."""
    pairs = _pairs(STEPS, (2 * D,))
    clt_pairs = _pairs(STEPS, (2, 2 * D))
    plain = [b[:, :D] for b in pairs]
    best: dict[str, float] = {}
    for _ in range(3):
        rates = {
            "transcoder": _rate(make_transcoder("topk", D, D_SAE, D, k=K), pairs),
            "skip_transcoder": _rate(make_transcoder("topk", D, D_SAE, D, k=K, skip=True), pairs),
            "clt": _rate(CrossLayerTranscoder(CLTConfig(n_layers=2, d_in=D, d_sae=D_SAE, d_out=D, k=K),
                                              generator=torch.Generator().manual_seed(0)), clt_pairs),
            "sae": _rate(make_sae("topk", D, D_SAE, k=K), plain),
            "sae_lens_sae": _sae_lens_rate(plain),
        }
        best = {k: max(v, best.get(k, 0.0)) for k, v in rates.items()}
    out: dict[str, float] = {f"{k}_per_s": round(v) for k, v in best.items()}
    out["transcoder_vs_sae_lens_sae_ratio"] = round(best["transcoder"] / best["sae_lens_sae"], 2)
    out["transcoder_vs_our_sae_ratio"] = round(best["transcoder"] / best["sae"], 2)
    return out
