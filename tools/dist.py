"""Build, check and try the course package as a learner gets it (``make dist``).

    python tools/dist.py wheelhouse   # once, with the package index reachable: every wheel the install needs
    python tools/dist.py build        # sdist + wheel into dist/ (wheel built from the sdist), then check
    python tools/dist.py smoke        # fresh venv with only torch, install the wheel offline, run notebooks
    python tools/dist.py smoke-fast   # the variant make test runs: offline resolution + wheel in a venv that
                                      # borrows the tested packages; the same notebooks
    python tools/dist.py all          # build + smoke (what `make dist` runs)

The smoke test is Colab-like: a new virtualenv that holds only ``torch==2.13.0`` (from the
wheelhouse), then the course wheel with its ``[lm]`` extra installed **offline** (``--no-index`` from
``_build/wheelhouse``), checking that torch is left alone; then, from a folder outside the repository,
the solutions notebook of a toy chapter and the notebook version of the course-model appendix are
executed with that venv's Python. Offline at test time: the wheelhouse is prepared beforehand
(``make wheelhouse``, part of ``make test``'s set-up), so tests never reach the network.
"""

from __future__ import annotations

import argparse
import email
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
WHEELHOUSE = ROOT / "_build" / "wheelhouse"
TORCH = "torch==2.13.0"
NOTEBOOKS = ["solutions/ch03_incidental.ipynb", "notebooks/appA_course_model.ipynb"]
# files the wheel must carry (data inside the package: the corpus, the course model, licences)
WHEEL_MUST_HAVE = ["course_utils/__init__.py", "course_utils/data/stdlib-3.11.7.jsonl.xz",
                   "course_utils/data/LICENSE-PSF.txt", "course_utils/data/course_lm/model.safetensors",
                   "course_utils/data/course_lm/tokenizer.json", "course_utils/data/course_lm/config.json"]
SDIST_MUST_HAVE = ["pyproject.toml", "README.md", "LICENSE", "LICENSE-content.md", *WHEEL_MUST_HAVE]


class DistError(RuntimeError):
    """A distribution is missing something, or the smoke install failed; the message says what."""


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, timeout: int = 1200) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise DistError(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{(r.stdout + r.stderr)[-4000:]}")
    return r.stdout


def requirements(extras: tuple[str, ...] = ("lm",)) -> list[str]:
    """The package's declared requirements (pyproject.toml), with the given extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"])
    for e in extras:
        reqs += project["optional-dependencies"][e]
    return reqs


def wheelhouse() -> Path:
    """Wheels of torch and of every requirement, at the tested pins (constraints.txt)."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "-w", str(WHEELHOUSE),
          "-c", str(ROOT / "constraints.txt"), TORCH, "setuptools", "wheel", *requirements()], timeout=3000)
    (WHEELHOUSE / ".complete").write_text(" ".join(requirements()) + "\n")
    return WHEELHOUSE


def build(out: Path = DIST) -> tuple[Path, Path]:
    """sdist from the repository, then the wheel from the unpacked sdist (so the sdist is complete)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("polysemanticity_course-*")):
        old.unlink()
    code = "import sys; from setuptools import build_meta as b; print(getattr(b, sys.argv[1])(sys.argv[2]))"
    with tempfile.TemporaryDirectory() as tmp:
        sdist = out / _run([sys.executable, "-c", code, "build_sdist", str(out)], cwd=ROOT).strip().splitlines()[-1]
        with tarfile.open(sdist) as tf:
            tf.extractall(tmp, filter="data")
        src = next(Path(tmp).iterdir())
        wheel = out / _run([sys.executable, "-c", code, "build_wheel", str(out)], cwd=src).strip().splitlines()[-1]
    shutil.rmtree(ROOT / "polysemanticity_course.egg-info", ignore_errors=True)
    check(sdist, wheel)
    return sdist, wheel


def check(sdist: Path, wheel: Path) -> dict[str, object]:
    """What twine check would say and more: contents, metadata, version, licences, bounded ranges."""
    from course_utils import __version__

    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(zf.read(meta_name))
    missing = [f for f in WHEEL_MUST_HAVE if f not in names]
    if missing:
        raise DistError(f"{wheel.name} lacks {missing}")
    strays = [n for n in names if n.startswith(("tests/", "book/", "tools/", "exercises/"))]
    if strays:
        raise DistError(f"{wheel.name} carries files that are not the package: {strays[:5]}")
    licences = [n for n in names if "/licenses/" in n]
    if not {"LICENSE", "LICENSE-content.md"} <= {Path(n).name for n in licences}:
        raise DistError(f"{wheel.name}: licence files missing from .dist-info/licenses: {licences}")
    if meta["Version"] != __version__ or meta["Name"] != "polysemanticity-course":
        raise DistError(f"{wheel.name}: metadata says {meta['Name']} {meta['Version']}, package is {__version__}")
    if meta.get("Description-Content-Type") != "text/markdown" or len(meta.get_payload() or "") < 200:
        raise DistError(f"{wheel.name}: the long description (README, text/markdown) is missing")
    unbounded = [r for r in meta.get_all("Requires-Dist") or [] if "<" not in r.split(";")[0]]
    if unbounded:
        raise DistError(f"{wheel.name}: requirements without an upper bound: {unbounded}")
    if not any(r.startswith("sae-lens") and 'extra == "lm"' in r for r in meta.get_all("Requires-Dist")):
        raise DistError(f"{wheel.name}: sae-lens is not declared in the [lm] extra")
    with tarfile.open(sdist) as tf:
        snames = [n.split("/", 1)[1] for n in tf.getnames() if "/" in n]
    missing = [f for f in SDIST_MUST_HAVE if f not in snames]
    if missing:
        raise DistError(f"{sdist.name} lacks {missing}")
    size = wheel.stat().st_size / 2**20
    print(f"checked {sdist.name} ({len(snames)} files) and {wheel.name} ({len(names)} files, {size:.1f} MB): "
          f"version {__version__}, licences, data files, {len(meta.get_all('Requires-Dist'))} bounded requirements")
    return {"wheel_mb": size, "n_files": len(names)}


def _torch_record(py: Path) -> str:
    code = "import importlib.metadata as m; d = m.distribution('torch'); print(d.version, d.read_text('RECORD').__len__())"
    return _run([str(py), "-c", code]).strip()


def smoke(wheel: Path | None = None, notebooks: list[str] | None = None, keep: Path | None = None) -> list[str]:
    """Fresh venv with only torch; install the wheel [lm] offline; run notebooks outside the repository."""
    if not (WHEELHOUSE / ".complete").exists():
        raise DistError(f"no wheelhouse at {WHEELHOUSE}: run `make wheelhouse` once with the package index reachable")
    wheel = wheel or max(DIST.glob("polysemanticity_course-*.whl"), key=lambda p: p.stat().st_mtime, default=None)
    if wheel is None:
        raise DistError("no wheel in dist/: run `python tools/dist.py build` first")
    tmp = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="course-smoke-"))
    log = []
    try:
        venv, work = tmp / "venv", tmp / "learner"
        work.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH")}
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELHOUSE),
                   PIP_DISABLE_PIP_VERSION_CHECK="1", JUPYTER_PLATFORM_DIRS="1", OMP_NUM_THREADS="1",
                   HOME=str(tmp), PIP_CONSTRAINT="", IPYTHONDIR=_learner_ipython(tmp))
        t0 = time.time()
        _run([sys.executable, "-m", "venv", str(venv)], env=env)
        py = venv / "bin" / "python"
        _run([str(py), "-m", "pip", "install", "--quiet", TORCH], env=env)
        before = _torch_record(py)
        _run([str(py), "-m", "pip", "install", "--quiet", f"{wheel}[lm]"], env=env)
        after = _torch_record(py)
        if before != after:
            raise DistError(f"installing the course changed torch: {before} -> {after}")
        log.append(f"fresh venv: torch {before.split()[0]} only, then {wheel.name}[lm] offline "
                   f"({time.time() - t0:.0f} s); torch untouched")
        where = _run([str(py), "-c", "import course_utils, sys; print(course_utils.__file__)"], cwd=work, env=env)
        if str(venv) not in where:
            raise DistError(f"course_utils was imported from {where.strip()}, not from the fresh venv")
        runner = ("import sys, nbformat; from nbclient import NotebookClient\n"
                  "nb = nbformat.read(sys.argv[1], as_version=4)\n"
                  "NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': '.'}})"
                  ".execute()\nprint(sum(len(c.get('outputs', [])) for c in nb.cells))")
        for rel in notebooks or NOTEBOOKS:
            dst = work / Path(rel).name
            _notebook(rel, dst)
            t1 = time.time()
            n_out = _run([str(py), "-c", runner, dst.name], cwd=work, env=env, timeout=900).strip().splitlines()[-1]
            log.append(f"ran {rel} from {work} ({time.time() - t1:.0f} s, {n_out} outputs)")
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    for line in log:
        print(line)
    return log


def _notebook(rel: str, dst: Path) -> None:
    """Write the notebook ``rel`` as its source generates it now (so it matches the modules in the wheel)."""
    sys.path.insert(0, str(ROOT))
    from course_utils import authoring

    for src, kind, out in authoring.targets(ROOT):
        if out == ROOT / rel:
            dst.write_text(authoring.dumps(authoring.render(src, kind, ROOT)), encoding="utf-8")
            return
    raise DistError(f"{rel} is not a generated notebook of this repository")


def _learner_ipython(tmp: Path) -> str:
    """A learner's IPython profile (not the website build's), offline under the test suite."""
    startup = tmp / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    if os.environ.get("COURSE_OFFLINE_GUARD") == "1":
        (startup / "00-offline.py").write_text("from course_utils.offline import block_network\nblock_network()\n")
    return str(tmp / ".ipython")


def resolve_offline(wheel: Path, report: Path) -> list[str]:
    """What pip would install next to torch 2.13.0 (dry run, offline): torch must stay 2.13.0."""
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_CONSTRAINT="")
    _run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--no-index",
          "--find-links", str(WHEELHOUSE), "--report", str(report), TORCH, f"{wheel}[lm]"], env=env)
    import json

    chosen = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    if not chosen.get("torch", "").startswith("2.13.0"):
        raise DistError(f"the wheel's requirements do not resolve with torch 2.13.0: chose torch {chosen.get('torch')}")
    return sorted(chosen)


def smoke_fast(wheel: Path, notebooks: list[str] | None = None) -> list[str]:
    """The variant `make test` runs (minutes, not tens of minutes): resolve the wheel's requirements next
    to torch offline; install the wheel (no deps) into a fresh venv that borrows the tested environment's
    packages through a .pth file (not the repository, not the editable install); run the notebooks from a
    folder outside the repository with that venv's Python."""
    import site

    log = []
    with tempfile.TemporaryDirectory(prefix="course-smoke-fast-") as tmp_name:
        tmp = Path(tmp_name)
        names = resolve_offline(wheel, tmp / "report.json")
        log.append(f"resolved offline next to torch 2.13.0: {len(names)} packages, torch kept")
        venv, work = tmp / "venv", tmp / "learner"
        work.mkdir()
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        py = venv / "bin" / "python"
        fresh_site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
        borrowed = [p for p in site.getsitepackages() if Path(p).is_dir()]
        (fresh_site / "tested-env.pth").write_text("\n".join(borrowed) + "\n")  # deps only: no .pth inside run
        _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
              str(fresh_site), str(wheel)], env=dict(os.environ, PIP_CONFIG_FILE=os.devnull))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(OMP_NUM_THREADS="1", JUPYTER_PLATFORM_DIRS="1", IPYTHONDIR=_learner_ipython(tmp))
        where = _run([str(py), "-c", "import course_utils; print(course_utils.__file__)"], cwd=work, env=env)
        if not where.strip().startswith(str(fresh_site)):
            raise DistError(f"course_utils was imported from {where.strip()}, not from the installed wheel")
        log.append(f"wheel installed in a fresh venv: course_utils from {Path(where.strip()).parent}")
        runner = ("import sys, nbformat; from nbclient import NotebookClient\n"
                  "nb = nbformat.read(sys.argv[1], as_version=4)\n"
                  "NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': '.'}})"
                  ".execute()\nprint(sum(len(c.get('outputs', [])) for c in nb.cells))")
        for rel in notebooks or NOTEBOOKS:
            _notebook(rel, work / Path(rel).name)
            t1 = time.time()
            n_out = _run([str(py), "-c", runner, Path(rel).name], cwd=work, env=env, timeout=900).strip()
            log.append(f"ran {rel} from {work} ({time.time() - t1:.0f} s, {n_out.splitlines()[-1]} outputs)")
    for line in log:
        print(line)
    return log


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["wheelhouse", "build", "smoke", "smoke-fast", "all"])
    args = p.parse_args(argv)
    try:
        if args.command == "wheelhouse":
            print(f"wheelhouse: {wheelhouse()}")
        if args.command in ("build", "all"):
            build()
        if args.command in ("smoke", "all"):
            smoke()
        if args.command == "smoke-fast":
            smoke_fast(max(DIST.glob("polysemanticity_course-*.whl"), key=lambda p: p.stat().st_mtime))
    except DistError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
