"""Chapter 2 benchmarks: batched toy-model training speed and the reproduced pentagon numbers.

Run with ``python -m course_utils.bench -k 'ch02/*'``.
"""

from __future__ import annotations

import time

import torch

from course_utils import tms
from course_utils.bench import benchmark

STEPS = 200


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _steps_per_second(n_feat: int, d_hidden: int, n_inst: int, batch_size: int) -> float:
    p = torch.full((n_inst, 1), 0.1)
    t0 = time.perf_counter()
    tms.train_toy_model(n_feat, d_hidden, p, torch.ones(n_feat), steps=STEPS, batch_size=batch_size, lr=1e-2)
    return STEPS / (time.perf_counter() - t0)


@benchmark("ch02/tms_steps_per_second")
def tms_speed() -> dict[str, float]:
    """Optimiser steps per second of the batched trainer (all instances per step) for the chapter's shapes."""
    shapes = {"n5_m2_inst30_b512": (5, 2, 30, 512), "n20_m5_inst7_b512": (20, 5, 7, 512),
              "n100_m10_inst12_b256": (100, 10, 12, 256), "n200_m20_inst20_b1024": (200, 20, 20, 1024)}
    return {name: round(_steps_per_second(*shape), 1) for name, shape in shapes.items()}


@benchmark("ch02/tms_batched_vs_loop")
def batched_vs_loop() -> dict[str, float]:
    """Ten instances of the n=5, m=2 model: one batched run against a Python loop of ten single runs
    (the same number of optimiser steps per instance). Best of three timings of each: the CPU is shared."""
    p = torch.tensor([[1 - s] for s in [1 - 20 ** (-k / 9) for k in range(10)]])
    imp = 0.9 ** torch.arange(5.0)
    batched = min(_seconds(lambda: tms.train_toy_model(5, 2, p, imp, steps=STEPS, batch_size=1024, lr=1e-2))
                  for _ in range(3))
    loop = min(_seconds(lambda: tms.train_unbatched(5, 2, p, imp, steps=STEPS, batch_size=1024, lr=1e-2))
               for _ in range(3))
    return {"batched_seconds": round(batched, 2), "loop_seconds": round(loop, 2),
            "speedup": round(loop / batched, 1)}


@benchmark("ch02/pentagon")
def pentagon() -> dict[str, float]:
    """The page's n=5, m=2 sweep (CPU size): the sparsest instance's geometry."""
    S = [1 - 20 ** (-k / 9) for k in range(10)]
    sw = tms.sparsity_sweep(5, 2, S, 0.9, n_seeds=3, steps=1_000, batch_size=512, lr=1e-2, seed=0)
    W = sw.W[-1:]
    D = tms.feature_dimensionality(W)[0]
    norms = tms.feature_norms(W)[0]
    return {"n_represented": int(tms.n_represented(W).item()), "D_i_min": round(D.min().item(), 3),
            "D_i_max": round(D.max().item(), 3), "norm_mean": round(norms.mean().item(), 3),
            "bias_mean": round(sw.b[-1].mean().item(), 3),
            "D_star": round(tms.dimensions_per_feature(W).item(), 3)}
