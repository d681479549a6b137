"""Build the website: `jupyter-book build . -W -n --keep-going`, executing every page, offline.

Usage: python tools/build_book.py [--out DIR]   (default: the repository, i.e. ./_build/html)
Exits non-zero on any Sphinx warning or notebook error (then see _build/html/reports/*.err.log).

Every chapter with an exercise notebook (``exercises/<chapter>.ipynb``, stubs only: the answer keys in
``solutions/`` never reach the site) gets it as a sub-page. The sections are added to a generated copy
of ``_toc.yml`` (:func:`book_toc`), so a new chapter needs no toc edit for its exercises; the pages are
rendered, not executed (``execute.exclude_patterns`` in ``_config.yml``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def book_toc(root: Path = ROOT) -> dict[str, Any]:
    """``_toc.yml`` with each chapter's exercise notebook added as a section under the chapter."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            name = Path(chapter["file"]).parent.name
            exercises = f"exercises/{name}"
            sections = chapter.setdefault("sections", [])
            if (root / f"{exercises}.ipynb").exists() and all(s.get("file") != exercises for s in sections):
                sections.append({"file": exercises})
            if not sections:
                del chapter["sections"]
    return toc


def toc_files(root: Path = ROOT) -> list[str]:
    """Every document of the website in reading order (root, chapters, their sections)."""
    toc = book_toc(root)
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder that receives _build/")
    args = parser.parse_args()
    if not (ROOT / "book" / "_assets" / "vendor" / ".fetched").exists():
        print("vendored JavaScript missing: run `python tools/fetch_assets.py` (make does it)", file=sys.stderr)
        return 2
    build_dir = (args.out if args.out is not None else ROOT) / "_build"
    build_dir.mkdir(parents=True, exist_ok=True)
    toc_path = build_dir / "_toc.generated.yml"
    toc_path.write_text(yaml.safe_dump(book_toc(ROOT), sort_keys=False), encoding="utf-8")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "-W", "-n", "--keep-going", "--builder", "html",
           "--toc", str(toc_path)]
    if args.out is not None:
        cmd += ["--path-output", str(args.out)]
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
