"""Chapter 4 part 2 benchmarks: activation generation on the course model, SAE training on those
activations here and with sae-lens 6.54.12's TopKTrainingSAE + SAETrainer (same batches, dictionary,
k and batch size; one CPU thread; interleaved, best of two), and the page's and solutions' run times.

Run with ``python -m course_utils.bench -k 'ch04b/*'``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from course_utils.bench import benchmark, time_notebook
from course_utils.device import one_thread
from course_utils.saes.sae_lens_reference import sae_lens_rate

ROOT = Path(__file__).resolve().parents[1]
D_SAE, K, BATCH, STEPS = 2048, 16, 1024, 30


def _activations(n_tokens: int) -> tuple[torch.Tensor, float]:
    from course_utils.course_lm import load_course_lm
    from course_utils.saes.course import MLP0, collect_activations, corpus_windows

    model, tok = load_course_lm()
    windows = corpus_windows(tok, "train", n_tokens, model.cfg.n_ctx, seed=0)
    with one_thread():
        t0 = time.perf_counter()
        acts = collect_activations(model, windows, [MLP0])[MLP0]
        seconds = time.perf_counter() - t0
    return acts, len(acts) / seconds


@benchmark("ch04b/activation_tokens_per_second")
def activation_speed() -> dict[str, float]:
    """Tokens per second of course-model activations at blocks.0.mlp.hook_post (forward included)."""
    acts, rate = _activations(16_384)
    return {"tokens_per_second": round(rate), "d_in": acts.shape[1]}


def _batches(acts: torch.Tensor) -> list[torch.Tensor]:
    from course_utils.saes.course import norm_scale

    x = acts * norm_scale(acts)
    g = torch.Generator().manual_seed(0)
    return [x[torch.randint(len(x), (BATCH,), generator=g)] for _ in range(STEPS)]


def _ours(batches: list[torch.Tensor]) -> float:
    from course_utils.saes import TrainConfig, make_sae, train_sae

    sae = make_sae("topk", batches[0].shape[1], D_SAE, seed=0, k=K)
    cfg = TrainConfig(steps=len(batches), batch_size=BATCH, lr=3e-3, warmup_steps=0, seed=0, eval_every=10**9)
    with one_thread():
        log = train_sae(sae, iter(batches), cfg)
    return log.steps_run / log.seconds


@benchmark("ch04b/topk_training_vs_sae_lens")
def training_speed() -> dict[str, float]:
    """Activations per second training a TopK SAE (512 -> 2048, k = 16, batch 1024) on course-model
    activations here and with sae-lens, on the same batches; ratio = ours / sae-lens."""
    acts, _ = _activations(8_192)
    batches = _batches(acts)
    ours = theirs = 0.0
    for _ in range(2):
        ours = max(ours, _ours(batches))
        theirs = max(theirs, sae_lens_rate("topk", batches, D_SAE, k=K))
    return {"ours_per_s": round(ours), "sae_lens_per_s": round(theirs), "ratio": round(ours / theirs, 2)}


@benchmark("ch04b/page_and_solutions_seconds")
def notebook_times() -> dict[str, float]:
    """Wall time of the chapter page and its solutions notebook in a fresh kernel."""
    env = {"OMP_NUM_THREADS": "1"}
    return {"page_s": round(time_notebook(ROOT / "book/ch04b_saes_course_model/index.ipynb", env=env), 1),
            "solutions_s": round(time_notebook(ROOT / "solutions/ch04b_saes_course_model.ipynb", env=env), 1)}
