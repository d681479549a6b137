"""The course corpus: a fixed snapshot of the Python 3.11.7 standard library's source code.

Real text (code, English docstrings and comments) that may be redistributed (PSF licence, shipped as
``course_utils/data/LICENSE-PSF.txt``) and needs no download. The snapshot is stored compressed with
its SHA-256, so every machine sees the same files whatever its own Python version. Train and
validation are split by file (about 1 file in 20 is held out, chosen by a hash of its path).
The course model trains on a larger corpus, this snapshot plus the source of pinned packages, built
on demand by :mod:`course_utils.package_corpus` with the same split rule.
"""

from __future__ import annotations

import hashlib
import json
import lzma
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

DATA = Path(__file__).parent / "data"
CORPUS_FILE = DATA / "stdlib-3.11.7.jsonl.xz"
CORPUS_SHA256 = "36cb3ffecea57056e7ec5489fbf2b440b3dfb9116baaaccd8e6fea7b29d511fb"
Split = Literal["train", "validation", "all"]


class CorpusError(RuntimeError):
    """The shipped corpus file is missing or does not match its recorded checksum."""


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the standard library root (e.g. "json/decoder.py") or to site-packages
    text: str
    source: str = "stdlib-3.11.7"  # where the file comes from, e.g. "numpy-2.4.6" (course_utils.package_corpus)

    @property
    def split(self) -> Literal["train", "validation", "validation_packages"]:
        """1 file in 20 is held out by a hash of its path: stdlib files to ``validation`` (the original
        validation set), package files to ``validation_packages``."""
        if int(hashlib.sha1(self.path.encode()).hexdigest(), 16) % 20:
            return "train"
        return "validation" if self.source.startswith("stdlib") else "validation_packages"


@lru_cache(maxsize=1)
def _load_all() -> tuple[SourceFile, ...]:
    if not CORPUS_FILE.exists():
        raise CorpusError(f"corpus file missing: {CORPUS_FILE} (reinstall the course package)")
    raw = CORPUS_FILE.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != CORPUS_SHA256:
        raise CorpusError(f"corpus file {CORPUS_FILE.name} is corrupted or was changed: sha256 {digest}, "
                          f"expected {CORPUS_SHA256}")
    lines = lzma.decompress(raw).decode("utf-8").splitlines()
    return tuple(SourceFile(**json.loads(ln)) for ln in lines)


def load_corpus(split: Split = "train") -> list[SourceFile]:
    """The snapshot's files (sorted by path) in the requested split."""
    if split not in ("train", "validation", "all"):
        raise ValueError(f"split must be 'train', 'validation' or 'all', got {split!r}")
    files = _load_all()
    return list(files) if split == "all" else [f for f in files if f.split == split]
