"""Benchmarks: timings and reproduced numbers, registered by the chapters, run by ``make bench``.

Benchmarks are not timed tests: they never fail on speed. They record what a machine measured so the
chapter metadata and the closing notes can cite real figures::

    from course_utils.bench import benchmark

    @benchmark("ch02/tms_steps_per_second")
    def tms_speed() -> dict[str, float]:
        ...
        return {"steps_per_s_batched": 812.0, "speedup_vs_loop": 9.7}

``python -m course_utils.bench [-k PATTERN]`` imports every ``benchmarks/bench_*.py``, runs the
registered functions (plus the execution time of every chapter page and solutions notebook, and the
download weight of every page of the built website, :func:`page_weight`) and writes ``_build/bench/results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import platform
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

Result = dict[str, float | int | str]
_REGISTRY: dict[str, Callable[[], Result]] = {}
_LOADED: set[Path] = set()


def benchmark(name: str) -> Callable[[Callable[[], Result]], Callable[[], Result]]:
    """Register ``fn`` under ``name`` (``"chNN/what"``); ``fn()`` returns the figures it measured."""
    if not isinstance(name, str) or "/" not in name:
        raise ValueError(f"benchmark names look like 'ch02/tms_speed', got {name!r}")

    def deco(fn: Callable[[], Result]) -> Callable[[], Result]:
        if name in _REGISTRY:
            raise ValueError(f"benchmark {name!r} is registered twice")
        _REGISTRY[name] = fn
        return fn

    return deco


def registered() -> dict[str, Callable[[], Result]]:
    return dict(_REGISTRY)


def load_benchmarks(root: Path) -> None:
    for path in sorted((root / "benchmarks").glob("bench_*.py")):
        if path.resolve() in _LOADED:  # a second load would register every benchmark twice
            continue
        _LOADED.add(path.resolve())
        spec = importlib.util.spec_from_file_location(f"course_benchmarks.{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


def time_notebook(path: Path, timeout: int = 600, env: dict[str, str] | None = None) -> float:
    """Execute a notebook in a fresh kernel and return the wall time in seconds."""
    import os

    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        t0 = time.perf_counter()
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}}).execute()
        return time.perf_counter() - t0
    finally:
        os.environ.clear()
        os.environ.update(old)


def notebook_benchmarks(root: Path) -> dict[str, Callable[[], Result]]:
    """One benchmark per chapter page and per solutions notebook: execution time on this machine."""
    out: dict[str, Callable[[], Result]] = {}
    book_env = {"COURSE_BOOK_BUILD": "1", "IPYTHONDIR": str(root / "book" / "_ipython")}
    from course_utils.authoring import chapter_dirs

    for page in [d / "index.ipynb" for d in chapter_dirs(root) if (d / "index.ipynb").exists()]:
        out[f"{page.parent.name}/page_seconds"] = lambda p=page: {"seconds": round(time_notebook(p, env=book_env), 1)}
    for sol in sorted((root / "solutions").glob("*.ipynb")):
        out[f"{sol.stem}/solutions_seconds"] = lambda p=sol: {"seconds": round(time_notebook(p), 1)}
    return out


_ASSET = re.compile(r"""<(?:script[^>]*\ssrc|link[^>]*\shref|img[^>]*\ssrc)=["']([^"'#?]+)""", re.I)
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')#?]+)""")


def page_weight(html_root: Path, page: Path) -> Result:
    """What a first visit to one built page downloads, read from the files: the HTML, every local
    script, stylesheet and image it references, and the fonts and files those stylesheets pull in
    with ``url(...)`` (a browser skips fonts a page never uses, so ``font_kb`` is an upper bound).
    Returns kilobytes by kind and whether plotly.js is among the scripts."""
    html_root, page = Path(html_root), Path(page)
    if not page.is_file():
        raise ValueError(f"no built page at {page}")
    sizes = {"html_kb": page.stat().st_size, "script_kb": 0, "css_kb": 0, "font_kb": 0, "other_kb": 0}
    seen: set[Path] = set()

    def add(path: Path) -> None:
        if path in seen or not path.is_file() or html_root not in path.parents:
            return
        seen.add(path)
        kind = {".js": "script_kb", ".css": "css_kb", ".woff2": "font_kb", ".woff": "font_kb",
                ".ttf": "font_kb", ".eot": "font_kb"}.get(path.suffix, "other_kb")
        sizes[kind] += path.stat().st_size
        if path.suffix == ".css":
            for ref in _CSS_URL.findall(path.read_text(encoding="utf-8", errors="replace")):
                if not ref.startswith(("data:", "http:", "https:")):
                    add((path.parent / ref).resolve())

    for ref in _ASSET.findall(page.read_text(encoding="utf-8", errors="replace")):
        if not ref.startswith(("http:", "https:", "data:", "//")) and not ref.endswith(".html"):
            add((page.parent / ref).resolve())
    out: Result = {k: round(v / 1024, 1) for k, v in sizes.items()}
    out["total_kb"] = round(sum(sizes.values()) / 1024, 1)
    out["plotly_js"] = int(any(p.name.startswith("plotly") and p.suffix == ".js" for p in seen))
    return out


def page_weight_benchmarks(root: Path) -> dict[str, Callable[[], Result]]:
    """One page-weight figure per page of the built website (``_build/html``; none if not built)."""
    html = Path(root) / "_build" / "html"
    if not html.is_dir():
        return {}
    pages = sorted(p for p in html.glob("book/**/*.html") if "_static" not in p.parts)
    return {f"site/{p.relative_to(html).with_suffix('').as_posix()}/weight":
            (lambda p=p: page_weight(html.resolve(), p.resolve())) for p in pages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.bench", description="Run the course benchmarks.")
    parser.add_argument("-k", default="*", help="glob over benchmark names, e.g. 'ch02/*'")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--list", action="store_true", help="list the matching benchmarks without running them")
    args = parser.parse_args(argv)
    load_benchmarks(args.root)
    todo = {**registered(), **notebook_benchmarks(args.root), **page_weight_benchmarks(args.root)}
    todo = {k: v for k, v in sorted(todo.items()) if fnmatch.fnmatch(k, args.k)}
    if not todo:
        print(f"no benchmark matches {args.k!r}", file=sys.stderr)
        return 1
    if args.list:
        print("\n".join(todo))
        return 0
    machine = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    results: dict[str, Result] = {}
    for name, fn in todo.items():
        print(f"running {name} ...", flush=True)
        t0 = time.perf_counter()
        res = dict(fn())
        res.setdefault("wall_seconds", round(time.perf_counter() - t0, 2))
        results[name] = res
        print(f"  {res}", flush=True)
    out = args.out or args.root / "_build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    lines = ["| benchmark | figures |", "|---|---|"]
    lines += [f"| {k} | " + ", ".join(f"{a}={b}" for a, b in v.items()) + " |" for k, v in results.items()]
    (out / "results.md").write_text(f"Machine: {machine}\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    # Run through the importable module: benchmark files register with `course_utils.bench`, which is a
    # different module object from this `__main__`.
    from course_utils.bench import main as _main

    raise SystemExit(_main())
