"""Shared set-up for the replacement-model and attribution-graph tests: the course model (loaded once)
and seeded random transcoders with a non-zero skip path (the edges' exactness needs no training)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch


@lru_cache(maxsize=1)
def course_model() -> tuple[Any, Any]:
    from course_utils.course_lm import load_course_lm

    torch.set_num_threads(1)
    return load_course_lm()


def random_transcoders(arch: str = "topk", skip: bool = True, d_sae: int = 256, seed: int = 0) -> list[Any]:
    """One transcoder per layer of the course model; ``W_skip`` random so that the skip path matters."""
    from course_utils.circuits.transcoders import make_transcoder, mlp_hooks

    params: dict[str, Any] = {"k": 8} if arch == "topk" else {"init_threshold": 0.05}
    tcs = []
    gen = torch.Generator().manual_seed(seed + 100)
    for layer in range(2):
        hi, ho = mlp_hooks(layer)
        tc = make_transcoder(arch, 128, d_sae, 128, seed=seed + layer, skip=skip, hook_name=hi,
                             hook_name_out=ho, **params)
        with torch.no_grad():
            tc.W_dec.mul_(0.5)
            tc.b_dec.copy_(0.1 * torch.randn(128, generator=gen))
            if skip:
                tc.W_skip.copy_(0.05 * torch.randn(128, 128, generator=gen))
        tcs.append(tc.eval())
    return tcs


PROMPT = "def f(self, x):\n    return [x, (x + 1)]"
