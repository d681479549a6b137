"""Build the website: `jupyter-book build . -W -n --keep-going`, executing every page, offline.

Usage: python tools/build_book.py [--out DIR]   (default: the repository, i.e. ./_build/html)
Exits non-zero on any Sphinx warning or notebook error (then see _build/html/reports/*.err.log).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder that receives _build/")
    args = parser.parse_args()
    if not (ROOT / "book" / "_assets" / "vendor" / ".fetched").exists():
        print("vendored JavaScript missing: run `python tools/fetch_assets.py` (make does it)", file=sys.stderr)
        return 2
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "-W", "-n", "--keep-going", "--builder", "html"]
    if args.out is not None:
        cmd += ["--path-output", str(args.out)]
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
