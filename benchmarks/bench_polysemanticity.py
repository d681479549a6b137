"""Chapter 1 benchmarks: how long each experiment of the page takes, and the numbers it reproduces.

Run with ``python -m course_utils.bench -k 'ch01*'`` (this also times the chapter page and the solutions
notebook, registered by ``course_utils.bench`` as ``ch01_polysemanticity/page_seconds`` and
``ch01_polysemanticity/solutions_seconds``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from course_utils import polysemanticity as P
from course_utils.bench import benchmark


@contextmanager
def _threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process): on a shared machine the two differ."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


@benchmark("ch01/digits_neurons")
def digits_neurons() -> dict[str, float]:
    """Train the page's digits MLP on 8 seeds and score its neurons, random and read-out directions."""
    data = P.load_digits_data()
    with _threads(2):
        rows, wall, cpu = _timed(lambda: P.digits_seed_study(data, range(8)))
    med = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
    return {"seeds": 8, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "test_accuracy_median": round(med("test_accuracy"), 3),
            "neuron_score_median": round(med("neuron_score_median"), 2),
            "random_score_median": round(med("random_score_median"), 2),
            "readout_score_median": round(med("readout_score_median"), 2),
            "frac_multi_class_min": round(min(r["frac_neurons_multi_class"] for r in rows), 2)}


@benchmark("ch01/xy_network")
def xy_network() -> dict[str, float]:
    """The 4-neuron x·y network, best of 32 batched restarts, on 4 seeds."""
    with _threads(1):
        runs, wall, cpu = _timed(lambda: [P.train_xy_network(seed=s) for s in range(4)])
    errs = [r.relative_error for r in runs]
    good = [int((r.restart_errors < 0.05).sum()) for r in runs]
    align = min(P.diagonal_alignment(r.model[0].weight.detach()).min().item() for r in runs)
    return {"seeds": 4, "wall_s_per_seed": round(wall / 4, 2), "cpu_s_per_seed": round(cpu / 4, 2),
            "best_relative_error_max": round(max(errs), 4), "restarts_reaching_0.05_of_32_min": min(good),
            "restarts_reaching_0.05_of_32_max": max(good), "min_diagonal_alignment": round(align, 4)}


@benchmark("ch01/without_superposition")
def without_superposition() -> dict[str, float]:
    """Orthogonal autoencoder + Procrustes recovery, and the correlated-features neuron model."""
    with _threads(1):
        (orth, rec), wall_o, cpu_o = _timed(lambda: (lambda r: (r, P.recover_features(r)))(
            P.train_orthogonal_autoencoder(seed=0)))
        (W, _), wall_c, cpu_c = _timed(lambda: P.train_neuron_model("correlated", instances=4, seed=0))
    return {"orthogonal_wall_s": round(wall_o, 2), "orthogonal_cpu_s": round(cpu_o, 2),
            "purity_before_mean": round(P.neuron_purity(orth.W).mean().item(), 3),
            "purity_after_min": round(P.neuron_purity(rec["rotated_W"][:3]).min().item(), 5),
            "correlated_wall_s": round(wall_c, 2), "correlated_cpu_s": round(cpu_c, 2),
            "correlated_purity_mean": round(torch.stack([P.neuron_purity(w) for w in W]).mean().item(), 3)}
