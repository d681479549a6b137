"""Device choice, seeding and the one switch between CPU-sized and paper-sized runs.

Every chapter sizes its runs with :func:`pick`::

    cfg = pick(cpu=dict(n_steps=2_000, seeds=4), gpu=dict(n_steps=10_000, seeds=16))

The switch is ``SCALE``: ``"cpu"`` (small runs, minutes on a laptop) or ``"gpu"`` (the paper's sizes).
It defaults to ``"gpu"`` when CUDA is available and ``"cpu"`` otherwise; the environment variable
``COURSE_SCALE=cpu|gpu`` overrides it (e.g. to smoke-test the GPU configuration on a CPU).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, TypeVar

import numpy as np
import torch

Scale = Literal["cpu", "gpu"]
T = TypeVar("T")

_VALID_SCALES = ("cpu", "gpu")


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` forces a device type (``"cpu"``, ``"cuda"``, ``"mps"``); the environment variable
    ``COURSE_DEVICE`` does the same for a whole notebook run.
    """
    prefer = prefer if prefer is not None else os.environ.get("COURSE_DEVICE") or None
    if prefer is not None:
        if not isinstance(prefer, str):
            raise TypeError(f"prefer must be a device name such as 'cpu' or 'cuda', got {type(prefer).__name__}")
        kind = prefer.split(":")[0]
        if kind not in ("cpu", "cuda", "mps"):
            raise ValueError(f"prefer must be 'cpu', 'cuda' or 'mps' (optionally 'cuda:N'), got {prefer!r}")
        if kind == "cuda" and not torch.cuda.is_available():
            raise ValueError("prefer='cuda' but no CUDA device is available; use 'cpu' or leave prefer unset")
        if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError("prefer='mps' but Apple's MPS backend is not available; use 'cpu'")
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def get_scale() -> Scale:
    """The run-size switch: ``COURSE_SCALE`` if set, else ``"gpu"`` iff CUDA is available."""
    env = os.environ.get("COURSE_SCALE")
    if env:
        if env not in _VALID_SCALES:
            raise ValueError(f"COURSE_SCALE must be one of {_VALID_SCALES}, got {env!r}")
        return env  # type: ignore[return-value]
    return "gpu" if torch.cuda.is_available() else "cpu"


SCALE: Scale = get_scale()


def pick(cpu: T, gpu: T, scale: Scale | None = None) -> T:
    """Choose the CPU-sized or the paper-sized value of a setting according to ``SCALE``."""
    scale = get_scale() if scale is None else scale
    if scale not in _VALID_SCALES:
        raise ValueError(f"scale must be one of {_VALID_SCALES}, got {scale!r}")
    return cpu if scale == "cpu" else gpu


def set_seed(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a fresh ``torch.Generator`` with that seed."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block. For the course's small models extra threads only
    add synchronisation, and on a shared 2-core machine they make training several times slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)
