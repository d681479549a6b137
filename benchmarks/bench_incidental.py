"""Chapter 3 benchmarks: batched training speed-up and the reproduced count law.

Run with ``python -m course_utils.bench -k 'ch03/*'``.
"""

from __future__ import annotations

import time

import torch

from course_utils import incidental as inc
from course_utils.bench import benchmark
from course_utils.device import one_thread

N, MS, SEEDS = 64, [64, 128, 256, 512, 1024], 8




def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@benchmark("ch03/batched_speedup")
def batched_speedup() -> dict[str, float]:
    """Same work three ways, a fixed 200 Adam steps for every (m, seed) of the CPU grid: a Python loop
    over the 40 single runs, one batch per m (the chapter's default), one padded batch of all 40."""
    steps = 200
    W0 = {m: inc.init_weights(N, m, SEEDS) for m in MS}
    with one_thread():
        return _speedup(W0, steps)


def _speedup(W0: dict[int, torch.Tensor], steps: int) -> dict[str, float]:
    loop = _seconds(lambda: [inc.train(W0[m][s:s + 1], 1e-3, steps, 1e-2) for m in MS for s in range(SEEDS)])
    per_m = _seconds(lambda: [inc.train(W0[m], 1e-3, steps, 1e-2) for m in MS])
    padded = _seconds(lambda: inc.train_grid(N, MS, SEEDS, max_steps=steps, pad=True))
    # a small model (the explorer's size), where per-step overhead dominates: 64 seeds, 500 steps
    W_small = inc.init_weights(16, 32, 64)
    loop_small = _seconds(lambda: [inc.train(W_small[s:s + 1], 1e-3, 500, 1e-2) for s in range(64)])
    batch_small = _seconds(lambda: inc.train(W_small, 1e-3, 500, 1e-2))
    return {"threads": 1, "loop_of_single_runs_s": round(loop, 2),
            "batch_per_m_s": round(per_m, 2), "one_padded_batch_s": round(padded, 2),
            "speedup_batch_per_m": round(loop / per_m, 2), "speedup_padded": round(loop / padded, 2),
            "small_n16_m32_64seeds_loop_s": round(loop_small, 2), "small_batch_s": round(batch_small, 2),
            "speedup_small": round(loop_small / batch_small, 1)}


@benchmark("ch03/count_law")
def count_law() -> dict[str, float]:
    """The CPU reproduction: n = 64, m ∈ {64 … 1024}, 8 seeds, trained to convergence."""
    t0 = time.perf_counter()
    with one_thread():
        grid = inc.train_grid(N, MS, SEEDS, lam=1e-3, lr=1e-2, max_steps=8000)
    seconds = time.perf_counter() - t0
    means = grid.counts().float().mean(1).tolist()
    slope, _ = inc.fit_loglog_slope(MS, means)
    out: dict[str, float] = {"grid_seconds": round(seconds, 1), "all_converged": int(grid.converged().all()),
                             "loglog_slope": round(slope, 3)}
    for m, c in zip(MS, means):
        out[f"mean_count_m{m}"] = round(c, 3)
        out[f"ratio_to_n2_over_4m_m{m}"] = round(c / inc.law(N, m), 3)
        out[f"steps_m{m}"] = grid.steps_run[m]
    return out


@benchmark("ch03/winner_agreement")
def winner_agreement() -> dict[str, float]:
    """Fraction of features whose trained winner is the ODE's (initially largest) neuron, m = 256."""
    with one_thread():
        a = inc.winner_agreement([1, 8, 64], m=256, n_seeds=8)
    return {f"{opt}_n{n}": round(v, 3) for opt in ("gd", "adam") for n, v in a[opt].items()}
