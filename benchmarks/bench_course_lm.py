"""Course model: load time, training throughput, activation-store throughput."""

from __future__ import annotations

import time

import torch

from course_utils import course_lm as lm
from course_utils.activations import ActivationStore
from course_utils.bench import benchmark


@benchmark("appA/load_seconds")
def load_time() -> dict[str, float]:
    lm.load_course_lm()  # warm imports
    t0 = time.perf_counter()
    lm.load_course_lm()
    return {"seconds": round(time.perf_counter() - t0, 3)}


@benchmark("appA/train_tokens_per_second")
def train_speed() -> dict[str, float]:
    model, tok = lm.load_course_lm()
    tokens = lm.encode_split(tok, "validation")
    _, log = lm.train_model(lm.CourseLMConfig(), lm.TrainConfig(steps=10, eval_every=10**9), tokens, tokens,
                            device="cuda" if torch.cuda.is_available() else "cpu", progress=False)
    return {"tokens_per_second": log["tokens_per_second"], "threads": torch.get_num_threads()}


@benchmark("appA/activation_store_tokens_per_second")
def store_speed() -> dict[str, float]:
    model, tok = lm.load_course_lm()
    store = ActivationStore(model, tok, "blocks.1.mlp.hook_post", split="validation", batch_size=4096,
                            max_batches=8)
    list(store)
    return {"tokens_per_second": round(store.tokens_per_second)}
