"""Stream activations of a TransformerLens model at any hook point, shuffled, for training dictionaries.

``ActivationStore(model, tokenizer, "blocks.0.mlp.hook_post")`` walks the corpus in context-length
windows (in a seeded random order), runs the model up to the hook, and yields batches ``[batch, d]`` of
per-token activations drawn from a shuffle buffer, so consecutive batches mix many documents. With
``cache_dir`` the batches are written to disk as safetensors the first time and read back afterwards.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from course_utils.corpus import load_corpus


class ActivationStore:
    def __init__(self, model: Any, tokenizer: Any, hook_name: str, split: str = "train", batch_size: int = 4096,
                 seqs_per_forward: int = 16, buffer_batches: int = 8, seed: int = 0, max_batches: int | None = None,
                 device: str | torch.device | None = None, cache_dir: Path | str | None = None,
                 progress: bool = False) -> None:
        if hook_name not in model.hook_dict:
            examples = [h for h in model.hook_dict if h.startswith("blocks.0.")][:6]
            raise ValueError(f"unknown hook name {hook_name!r}; examples of valid names: {examples}")
        for name, v in (("batch_size", batch_size), ("seqs_per_forward", seqs_per_forward),
                        ("buffer_batches", buffer_batches)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if max_batches is not None and max_batches < 1:
            raise ValueError(f"max_batches must be positive or None, got {max_batches}")
        self.model, self.tokenizer, self.hook_name = model, tokenizer, hook_name
        self.split, self.batch_size, self.seqs_per_forward = split, batch_size, seqs_per_forward
        self.buffer_size = batch_size * buffer_batches
        self.seed, self.max_batches, self.progress = seed, max_batches, progress
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        m = re.match(r"blocks\.(\d+)\.", hook_name)
        self._stop_at = int(m.group(1)) + 1 if m else None
        self.tokens_seen = 0
        self.seconds = 0.0

    @property
    def tokens_per_second(self) -> float:
        """Throughput of the last pass (model forward + buffering), in tokens per second."""
        return self.tokens_seen / self.seconds if self.seconds else 0.0

    def _windows(self) -> torch.Tensor:
        n_ctx = self.model.cfg.n_ctx
        eot = self.tokenizer.token_to_id("<|endoftext|>")
        ids: list[int] = []
        for f in load_corpus(self.split):  # type: ignore[arg-type]
            ids.extend(self.tokenizer.encode(f.text).ids + [eot])
        n = len(ids) // n_ctx
        windows = torch.tensor(ids[: n * n_ctx]).view(n, n_ctx)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        return windows[order]

    @torch.no_grad()
    def _activations(self) -> Iterator[torch.Tensor]:
        windows = self._windows()
        for i in range(0, len(windows), self.seqs_per_forward):
            chunk = windows[i:i + self.seqs_per_forward].to(self.device)
            _, cache = self.model.run_with_cache(chunk, names_filter=self.hook_name, stop_at_layer=self._stop_at)
            act = cache[self.hook_name]
            yield act.reshape(-1, act.shape[-1]) if act.ndim == 3 else act.reshape(act.shape[0] * act.shape[1], -1)

    def _generate(self) -> Iterator[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed + 1)
        buffer = torch.empty(0)
        emitted = 0
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.max_batches, desc=f"activations at {self.hook_name}", unit="batch")
        t0 = time.perf_counter()
        self.tokens_seen = 0
        for acts in self._activations():
            self.tokens_seen += len(acts)
            buffer = torch.cat([buffer.to(acts), acts]) if len(buffer) else acts
            if len(buffer) < self.buffer_size:
                continue
            buffer = buffer[torch.randperm(len(buffer), generator=gen).to(buffer.device)]
            while len(buffer) > self.buffer_size // 2:
                batch, buffer = buffer[: self.batch_size], buffer[self.batch_size:]
                self.seconds = time.perf_counter() - t0
                yield batch
                emitted += 1
                if bar is not None:
                    bar.update(1)
                if self.max_batches is not None and emitted >= self.max_batches:
                    if bar is not None:
                        bar.close()
                    return
        buffer = buffer[torch.randperm(len(buffer), generator=gen).to(buffer.device)] if len(buffer) else buffer
        for i in range(0, len(buffer) - self.batch_size + 1, self.batch_size):
            self.seconds = time.perf_counter() - t0
            yield buffer[i:i + self.batch_size]
            emitted += 1
            if self.max_batches is not None and emitted >= self.max_batches:
                break
        if bar is not None:
            bar.close()

    def _cache_key(self) -> dict[str, Any]:
        return {"hook_name": self.hook_name, "split": self.split, "batch_size": self.batch_size,
                "buffer_size": self.buffer_size, "seed": self.seed, "max_batches": self.max_batches,
                "seqs_per_forward": self.seqs_per_forward}

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.cache_dir is None:
            yield from self._generate()
            return
        from safetensors.torch import load_file, save_file

        meta = self.cache_dir / "store.json"
        if meta.exists() and json.loads(meta.read_text()).get("key") == self._cache_key():
            n = json.loads(meta.read_text())["n_batches"]
            for i in range(n):
                yield load_file(str(self.cache_dir / f"batch_{i:05d}.safetensors"))["acts"].to(self.device)
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        n = 0
        for batch in self._generate():
            save_file({"acts": batch.detach().cpu().contiguous()}, str(self.cache_dir / f"batch_{n:05d}.safetensors"))
            n += 1
            yield batch
        meta.write_text(json.dumps({"key": self._cache_key(), "n_batches": n}))
