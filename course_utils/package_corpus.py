"""The larger course corpus: the stdlib snapshot plus the Python source of pinned, BSD-licensed packages.

The course model of issue 12 trains on more real code than the standard library alone. The extra
source comes from packages the course already installs, at the exact versions it pins (numpy, scipy,
scikit-learn, networkx, pandas; sympy is measured but left out, see :data:`SYMPY`), read offline from the installed files. The snapshot is built
on demand into a cache folder (it is not shipped: the stdlib snapshot of :mod:`course_utils.corpus`
stays the default for pages and tests) and checked against recorded SHA-256 digests, one per package,
so a different installation fails loudly and names the package that differs.

Rules, so every machine with the pinned versions builds the same bytes:

- a package whose installed version differs from its pin, or whose licence is not in
  :data:`PERMISSIVE`, is an error naming it (:class:`PackageCorpusError`);
- files under ``tests``/``test``/``testing`` folders are left out (as the stdlib's ``test/`` is),
  and so are generated, build-specific files (``__config__.py``, ``_distributor_init*.py``);
- files that do not decode as UTF-8 or do not parse with Python 3.11's ``ast`` and ``tokenize``
  are dropped and counted;
- files are ordered by (source, path); the split is by file, with the stdlib's own rule
  (1 file in 20 by a hash of its path), so the original validation files stay in ``validation``
  and the held-out package files form a new ``validation_packages`` set.

Build it with ``python -m course_utils.package_corpus build``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import re
import shutil
import tokenize
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Literal

from course_utils.corpus import DATA, SourceFile, load_corpus

LICENSE_DIR = DATA / "licenses"
SNAPSHOT_NAME = "python-corpus-v1.jsonl"
Split = Literal["train", "validation", "validation_packages", "all"]

# SPDX identifiers (and the trove-classifier names that mean them) the course may redistribute.
PERMISSIVE = frozenset({"BSD-3-Clause", "BSD-2-Clause", "BSD", "0BSD", "MIT", "Zlib", "CC0-1.0", "PSF-2.0",
                        "Apache-2.0", "ISC", "BSD License", "MIT License", "Apache Software License",
                        "Python Software Foundation License"})


@dataclass(frozen=True)
class Package:
    """A pinned distribution and the import package whose ``.py`` files join the corpus."""

    dist: str  # distribution name, as in constraints.txt
    version: str  # the exact pin
    module: str  # top-level import folder in site-packages


PACKAGES: tuple[Package, ...] = (
    Package("numpy", "2.4.6", "numpy"),
    Package("scipy", "1.17.1", "scipy"),
    Package("scikit-learn", "1.9.1", "sklearn"),
    Package("networkx", "3.6.1", "networkx"),
    Package("pandas", "3.1.1", "pandas"),
)
# sympy 1.14.0 (BSD, 846 files, 16.5M characters without tests) fits the same rules but is left out:
# at the measured single-thread throughput one pass over the corpus with it does not fit the course's
# two-hour training budget on a shared 2-core machine.
SYMPY = Package("sympy", "1.14.0", "sympy")

# sha256 of each source's records in the snapshot (the stdlib's from the shipped snapshot), measured on
# the manylinux x86_64 wheels of the pinned versions; a mismatch names the source.
SOURCE_SHA256: dict[str, str] = {
    "stdlib-3.11.7": "07c73167440023d55c7dc7344cc2ba873995e7744086da04f995a65a3395c264",
    "numpy-2.4.6": "ddaf3b54faf488f5dfb2942451f6ddbda8aa02e0c89f8f40f4c6d1ce170aec8a",
    "scipy-1.17.1": "365f5ff364c196d98e7ca81556f3c7eccd27cab8932482f21cdf2a438458c743",
    "scikit-learn-1.9.1": "401d6c5eac6f4eb9ec1c675ff515204be071f34e5cde01d522aae00ba89b41fe",
    "networkx-3.6.1": "12c06c221c712c60da54bd794972bb87e19d2f010eff11bc592a2a8257433fff",
    "pandas-3.1.1": "797ba91e2d89ac113e2eb71aa2f5fa90b3fa9f043f8360a4259a17e8f3a61195",
    "sympy-1.14.0": "58ae0d75e6cad476546288be561479db5e59dedba0a7263c0625ef463bffcad7",
}

_SKIP_DIRS = {"tests", "test", "testing", "__pycache__"}
_SKIP_FILES = re.compile(r"^(__config__|_distributor_init.*)\.py$")


class PackageCorpusError(RuntimeError):
    """The snapshot cannot be built or loaded: a version differs from its pin, a licence is not
    redistributable, or the snapshot is missing or does not match its checksum."""


def source_names(packages: tuple[Package, ...] = PACKAGES) -> list[str]:
    """The snapshot's sources in order: the stdlib, then each package as ``dist-version``."""
    return ["stdlib-3.11.7"] + [f"{p.dist}-{p.version}" for p in packages]


def cache_dir() -> Path:
    """Where the snapshot is built: ``$COURSE_CACHE`` or ``~/.cache/course_utils``."""
    return Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "course_utils"))


def _licences(dist: metadata.Distribution) -> list[str]:
    """Licence names a distribution declares: its SPDX expression, else its trove classifiers."""
    meta = dist.metadata
    expr = meta.get("License-Expression")
    if expr:
        return sorted({t for t in re.split(r"[()\s]+|\bAND\b|\bOR\b|\bWITH\b", expr) if t})
    found = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return sorted(set(found)) or [str(meta.get("License") or "unknown")]


def check_package(pkg: Package, site_packages: Path | None = None) -> metadata.Distribution:
    """The installed distribution of ``pkg`` (in ``site_packages``, default: this interpreter's), after
    checking its version against the pin and its licence against :data:`PERMISSIVE`."""
    if site_packages is None:
        found = list(metadata.distributions(name=pkg.dist))
    else:
        found = list(metadata.distributions(name=pkg.dist, path=[str(site_packages)]))
    if not found:
        raise PackageCorpusError(f"{pkg.dist}=={pkg.version} is not installed; install the pinned "
                                 f"version (pip install -c constraints.txt {pkg.dist})")
    dist = found[0]
    if dist.version != pkg.version:
        raise PackageCorpusError(f"{pkg.dist} is installed at version {dist.version} but the corpus is pinned "
                                 f"to {pkg.version}: install {pkg.dist}=={pkg.version} (constraints.txt)")
    bad = [name for name in _licences(dist) if name not in PERMISSIVE]
    if bad:
        raise PackageCorpusError(f"{pkg.dist} {pkg.version} declares the licence {', '.join(bad)}, which the "
                                 "course may not redistribute (allowed: BSD, MIT, Apache-2.0, PSF, ...)")
    return dist


def parses(text: str) -> bool:
    """Whether ``text`` is Python that this interpreter's ``ast`` and ``tokenize`` accept."""
    try:
        ast.parse(text)
        list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (SyntaxError, tokenize.TokenError, ValueError, RecursionError, MemoryError):
        return False
    return True


def package_files(pkg: Package, root: Path) -> tuple[list[dict[str, str]], dict[str, int]]:
    """Records ``{"path", "text", "source"}`` of ``pkg``'s kept files (sorted), and counts of dropped ones."""
    source = f"{pkg.dist}-{pkg.version}"
    records, dropped = [], {"tests": 0, "generated": 0, "not_utf8": 0, "does_not_parse": 0}
    for f in sorted((root / pkg.module).rglob("*.py")):
        rel = f.relative_to(root).as_posix()
        if _SKIP_DIRS & set(rel.split("/")[:-1]):
            dropped["tests"] += 1
            continue
        if _SKIP_FILES.match(f.name):
            dropped["generated"] += 1
            continue
        try:
            text = f.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            dropped["not_utf8"] += 1
            continue
        if not parses(text):
            dropped["does_not_parse"] += 1
            continue
        records.append({"path": rel, "text": text, "source": source})
    return records, dropped


def _digest(records: list[dict[str, str]]) -> str:
    h = hashlib.sha256()
    for r in records:
        h.update((json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    return h.hexdigest()


def copy_licences(pkg: Package, dist: metadata.Distribution, out: Path = LICENSE_DIR) -> list[Path]:
    """Copy the distribution's licence files into ``out/<dist>-<version>/`` (the shipped notices)."""
    names = dist.metadata.get_all("License-File") or []
    files = [f for f in dist.files or [] if f.name in ("LICENSE", "LICENSE.txt", "COPYING", "LICENSE.md")
             or any(str(f).endswith(n) for n in names)]
    dest = out / f"{pkg.dist}-{pkg.version}"
    copied = []
    for f in files:
        src = Path(dist.locate_file(f))
        if ".dist-info" not in str(f) or not src.is_file():
            continue
        rel = str(f).split(".dist-info/", 1)[1].removeprefix("licenses/")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        copied.append(target)
    if not copied:
        raise PackageCorpusError(f"{pkg.dist} {pkg.version} ships no licence file to redistribute")
    return copied


def build_snapshot(out_dir: Path | None = None, packages: tuple[Package, ...] = PACKAGES,
                   site_packages: Path | None = None, expected: dict[str, str] | None = None) -> Path:
    """Build the snapshot (stdlib + ``packages``) into ``out_dir`` and check every source's SHA-256.

    Writes ``python-corpus-v1.jsonl`` (one record per file) and ``manifest.json`` (per-source digests,
    file counts and dropped counts). ``expected`` defaults to :data:`SOURCE_SHA256`; a source missing
    from it is recorded, not checked (how the digests are measured the first time)."""
    expected = SOURCE_SHA256 if expected is None else expected
    out_dir = Path(out_dir) if out_dir is not None else cache_dir()
    dists = [check_package(p, site_packages) for p in packages]
    stdlib = [{"path": f.path, "text": f.text, "source": f.source} for f in load_corpus("all")]
    sources: dict[str, list[dict[str, str]]] = {"stdlib-3.11.7": stdlib}
    manifest: dict[str, dict[str, object]] = {}
    for pkg, dist in zip(packages, dists):
        root = Path(site_packages) if site_packages is not None else Path(dist.locate_file(""))
        records, dropped = package_files(pkg, root)
        sources[f"{pkg.dist}-{pkg.version}"] = records
        manifest[f"{pkg.dist}-{pkg.version}"] = {"dropped": dropped}
    for name, records in sources.items():
        digest = _digest(records)
        if name in expected and expected[name] != digest:
            raise PackageCorpusError(f"the {name} source files differ from the recorded snapshot (sha256 "
                                     f"{digest[:12]}..., expected {expected[name][:12]}...): not the pinned "
                                     "files, or they were modified after installation")
        manifest.setdefault(name, {}).update(sha256=digest, files=len(records),
                                             chars=sum(len(r["text"]) for r in records))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SNAPSHOT_NAME
    with path.open("w", encoding="utf-8") as fh:
        for records in sources.values():
            for r in records:
                fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _load_snapshot.cache_clear()
    return path


@lru_cache(maxsize=2)
def _load_snapshot(path: Path, expected: tuple[tuple[str, str], ...]) -> tuple[SourceFile, ...]:
    if not path.exists():
        raise PackageCorpusError(f"corpus snapshot missing: {path}; build it with "
                                 "`python -m course_utils.package_corpus build`")
    by_source: dict[str, list[dict[str, str]]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            by_source.setdefault(r["source"], []).append(r)
    extra = sorted(set(by_source) - {name for name, _ in expected})
    if extra:
        raise PackageCorpusError(f"corpus snapshot {path} was altered: it holds files of {', '.join(extra)}, "
                                 "which the course's snapshot does not include; rebuild it")
    for name, digest in expected:
        got = _digest(by_source.get(name, []))
        if got != digest:
            raise PackageCorpusError(f"corpus snapshot {path} was altered: the {name} files have sha256 "
                                     f"{got[:12]}..., expected {digest[:12]}...; rebuild it with "
                                     "`python -m course_utils.package_corpus build`")
    return tuple(SourceFile(**r) for rs in by_source.values() for r in rs)


def load_python_corpus(split: Split = "train", path: Path | None = None,
                       expected: dict[str, str] | None = None) -> list[SourceFile]:
    """The larger corpus's files in a split: ``train``, ``validation`` (the stdlib's original validation
    files), ``validation_packages`` (held-out package files) or ``all``."""
    if split not in ("train", "validation", "validation_packages", "all"):
        raise ValueError(f"split must be 'train', 'validation', 'validation_packages' or 'all', got {split!r}")
    path = Path(path) if path is not None else cache_dir() / SNAPSHOT_NAME
    if expected is None:
        expected = {name: SOURCE_SHA256[name] for name in source_names()}
    files = _load_snapshot(path, tuple(sorted(expected.items())))
    return list(files) if split == "all" else [f for f in files if f.split == split]


def corpus_manifest(path: Path | None = None) -> dict[str, dict[str, object]]:
    """The built snapshot's manifest: per source its sha256, file and character counts, dropped files."""
    path = Path(path) if path is not None else cache_dir() / SNAPSHOT_NAME
    manifest = path.parent / "manifest.json"
    if not manifest.exists():
        raise PackageCorpusError(f"no manifest next to {path}; build it with "
                                 "`python -m course_utils.package_corpus build`")
    return json.loads(manifest.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.package_corpus",
                                     description="Build the larger course corpus from the pinned packages.")
    parser.add_argument("command", choices=["build", "licences"])
    parser.add_argument("--out", type=Path, default=None, help="folder (default: $COURSE_CACHE)")
    args = parser.parse_args(argv)
    if args.command == "licences":
        for pkg in PACKAGES:
            for f in copy_licences(pkg, check_package(pkg)):
                print(f)
        return 0
    path = build_snapshot(args.out)
    manifest = json.loads((path.parent / "manifest.json").read_text())
    for name, m in manifest.items():
        print(f"{name:24s} {m['files']:5d} files {m['chars'] / 1e6:6.1f}M chars  sha256 {m['sha256']}  "
              f"dropped {m.get('dropped', {})}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
