"""Build the course corpus: a fixed snapshot of the Python 3.11.7 standard library's source.

Writes course_utils/data/stdlib-3.11.7.jsonl.xz (one JSON object per file: {"path", "text"}, sorted
by path) and prints its SHA-256, which course_utils/corpus.py checks on every load. Run it only with
CPython 3.11.7 (the snapshot must not depend on the machine): `python3.11 tools/make_corpus.py`.
The Python source is distributed under the PSF licence (course_utils/data/LICENSE-PSF.txt).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "course_utils" / "data" / "stdlib-3.11.7.jsonl.xz"
SKIP_DIRS = {"test", "tests", "site-packages", "idlelib", "lib2to3", "pydoc_data", "encodings", "ensurepip",
             "turtledemo", "__pycache__"}


def main() -> None:
    if sys.version_info[:3] != (3, 11, 7):
        sys.exit(f"run with CPython 3.11.7 (this is {sys.version.split()[0]}): the snapshot must be reproducible")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py")
                   if not SKIP_DIRS & set(p.relative_to(stdlib).parts[:-1]))
    lines = []
    for p in files:
        text = p.read_text(encoding="utf-8", errors="strict")
        lines.append(json.dumps({"path": p.relative_to(stdlib).as_posix(), "text": text}, ensure_ascii=False))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    shutil.copy(stdlib / "LICENSE.txt", OUT.parent / "LICENSE-PSF.txt")
    print(f"{len(files)} files, {len(data) / 1e6:.1f} MB of text -> {OUT.name} ({OUT.stat().st_size / 1e6:.2f} MB)")
    print("sha256", hashlib.sha256(OUT.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
