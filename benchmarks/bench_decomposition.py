"""Chapter 6 benchmarks: SPD speed on TMS 5-2 against a plain loop, and time to the paper's numbers.

Run with ``python -m course_utils.bench -k 'ch06/*'``.
"""

from __future__ import annotations

import torch

from course_utils.bench import benchmark
from course_utils.decomposition import mmcs_ml2r, train_spd, train_tms_target
from course_utils.decomposition.configs import experiment

STEPS = 300


def _target():
    return train_tms_target(**experiment("tms_5_2", scale="cpu").target)


@benchmark("ch06/spd_steps_per_second")
def spd_speed() -> dict[str, float]:
    """SPD optimiser steps per second on TMS 5-2 (C = 20, batch 1024): the course's loop, which drops
    the all-zero inputs from the reconstruction losses exactly (77% of rows at p = 0.05), against the
    plain loop over every row. Best of two timings each (the CPU is shared)."""
    target = _target()
    cfg = experiment("tms_5_2", scale="cpu").spd

    def rate(skip: bool) -> float:
        return max(train_spd(target, cfg, steps=STEPS, warmup_steps=0, skip_inert_inputs=skip).steps_per_second
                   for _ in range(2))

    fast, plain = rate(True), rate(False)
    return {"course_steps_per_s": round(fast, 1), "plain_steps_per_s": round(plain, 1),
            "ratio": round(fast / plain, 2)}


@benchmark("ch06/spd_time_to_mmcs")
def time_to_mmcs() -> dict[str, float]:
    """Seconds (and steps) until the CPU configuration first reaches MMCS ≥ 0.99, and until it also
    has |ML2R − 0.993| ≤ 0.02 (checked every 100 steps; seed 0)."""
    target = _target()
    res = train_spd(target, experiment("tms_5_2", scale="cpu").spd, snapshot_every=100)
    per_step = res.seconds / res.config.steps
    first_mmcs = first_both = float("nan")
    for step, comps in res.snapshots:
        mm, ml = (t.item() for t in mmcs_ml2r(target.W, *comps["linear1"]))
        if mm >= 0.99 and first_mmcs != first_mmcs:
            first_mmcs = step
        if mm >= 0.99 and abs(ml - 0.993) <= 0.02 and first_both != first_both:
            first_both = step
    return {"steps_to_mmcs_0.99": first_mmcs, "seconds_to_mmcs_0.99": round(first_mmcs * per_step, 1),
            "steps_to_paper_numbers": first_both, "seconds_to_paper_numbers": round(first_both * per_step, 1),
            "total_seconds": round(res.seconds, 1)}


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(spd_speed())
