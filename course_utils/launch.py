"""Where the course lives and which release a notebook installs: Colab links and setup cells.

One place names each fact, and everything else is generated from it:

* the repository: ``_config.yml`` ``repository.url`` (also the website's repository button);
* the release: ``course_utils.__version__`` (``pyproject.toml`` reads it as the package version).

A notebook generated for release ``X`` opens in Colab from the git tag ``vX`` and its setup cell
installs release ``X``: from the package index (``polysemanticity-course==X``) when it is published
there, otherwise from git at the tag ``vX``. Notebook and package therefore never drift apart.
Releasing = bump ``__version__``, ``make notebooks``, commit, tag ``vX`` and push the tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

DIST = "polysemanticity-course"
COLAB = "https://colab.research.google.com"
BADGE = f"{COLAB}/assets/colab-badge.svg"


class LaunchConfigError(ValueError):
    """``_config.yml`` does not name a usable repository."""


@dataclass(frozen=True)
class Release:
    url: str  # https://github.com/<org>/<repo>
    org: str
    repo: str
    branch: str
    version: str

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    def pip_specs(self, extras: list[str] | None = None) -> list[str]:
        """What the setup cell tries, in order: the package index, then git at the release tag."""
        name = DIST + (f"[{','.join(extras)}]" if extras else "")
        return [f"{name}=={self.version}", f"{name} @ git+{self.url}@{self.tag}"]

    def colab_url(self, rel_path: str) -> str:
        """Open ``rel_path`` (repository-relative) in Colab, at this release's tag."""
        return f"{COLAB}/github/{self.org}/{self.repo}/blob/{self.tag}/{rel_path.lstrip('/')}"

    def blob_url(self, rel_path: str) -> str:
        return f"{self.url}/blob/{self.tag}/{rel_path.lstrip('/')}"

    def badge(self, rel_path: str, text: str = "Open In Colab") -> str:
        return f"[![{text}]({BADGE})]({self.colab_url(rel_path)})"


def release(root: Path, version: str | None = None) -> Release:
    """Read the repository from ``root/_config.yml``; the version defaults to the package's."""
    path = Path(root) / "_config.yml"
    if not path.exists():
        raise LaunchConfigError(f"{path} is missing: it names the repository (repository.url)")
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    repo = cfg.get("repository") or {}
    url = str(repo.get("url", "")).rstrip("/")
    m = re.match(r"https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$", url)
    if not m:
        raise LaunchConfigError(f"{path}: repository.url must be a GitHub URL "
                                f"(https://github.com/<org>/<repo>), got {url!r}")
    if version is None:
        from course_utils import __version__ as version
    if not re.fullmatch(r"\d+(\.\d+)*([a-z]+\d+)?", version):
        raise LaunchConfigError(f"the release version must look like 1.2.3, got {version!r}")
    return Release(url, m.group(1), m.group(2), str(repo.get("branch", "main")), version)


_SETUP = '''\
# @title Setup: run this cell first
# Works in JupyterLab and on Colab. On Colab it installs the course package, release {version}
# (the release this notebook belongs to), and keeps Colab's own torch. Elsewhere it installs nothing.
import subprocess
import sys

RELEASE = "{version}"
INSTALL = [  # tried in order: the package index, then git at the release tag
{specs}
]


class SetupError(Exception):
    def _render_traceback_(self):  # IPython: show the message, not a traceback
        return [str(self)]


def pip_install(spec):
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--retries", "1", "--timeout", "20", spec]
    run = subprocess.run(cmd, capture_output=True, text=True)
    said = [line.strip() for line in (run.stderr + run.stdout).splitlines() if line.strip()]
    return run.returncode == 0, (said[-1] if said else f"pip exited with status {{run.returncode}}")


if "google.colab" in sys.modules:
    failures = []
    for spec in INSTALL:
        ok, why = pip_install(spec)
        if ok:
            break
        failures.append(f"  {{spec}}\\n      failed: {{why}}")
    else:
        raise SetupError(
            f"Setup failed: could not install the course package (release {{RELEASE}}).\\n"
            + "\\n".join(failures) + "\\n"
            "Either the package index or GitHub is unreachable from this runtime (check the network), or "
            f"release {{RELEASE}} is not published yet. Run one of these in a cell, then run this cell again:\\n"
            + "\\n".join(f'  %pip install "{{spec}}"' for spec in INSTALL))
try:
    import course_utils
except ModuleNotFoundError:
    raise SetupError(
        f"Setup failed: the course package is not installed in this kernel's Python ({{sys.executable}}).\\n"
        "From a clone of the course repository run `make lab` (JupyterLab with the course installed), or "
        f'install it here: %pip install "{{INSTALL[0]}}"') from None
if course_utils.__version__ != RELEASE:
    print(f"note: this notebook belongs to release {{RELEASE}}, the installed course package is "
          f"{{course_utils.__version__}}; if a cell fails, regenerate the notebooks (make notebooks)")

from course_utils import SCALE, get_device, set_seed

DEVICE = get_device()  # CUDA if present (Colab: Runtime > Change runtime type > GPU), else CPU
set_seed(0)
print(f"device: {{DEVICE}}, run size: {{SCALE}}")'''


def setup_cell_source(root: Path, extras: list[str] | None = None) -> str:
    """The first code cell of every notebook: install on Colab (with ``extras``), import, seed."""
    if extras is not None and (not isinstance(extras, list) or not all(isinstance(e, str) and
                                                                        re.fullmatch(r"[a-z0-9_-]+", e)
                                                                        for e in extras)):
        raise LaunchConfigError(f"pip_extras must be a list of extra names such as [lm], got {extras!r}")
    rel = release(root)
    specs = "\n".join(f'    "{s}",' for s in rel.pip_specs(extras))
    return _SETUP.format(version=rel.version, specs=specs)


def setup_cell_metadata() -> dict[str, object]:
    """Collapsed in JupyterLab (``source_hidden``) and shown as a titled form on Colab."""
    return {"cellView": "form", "jupyter": {"source_hidden": True}, "tags": ["setup"]}


def install_targets(setup_source: str) -> tuple[str, list[str]]:
    """Read back ``RELEASE`` and the ``INSTALL`` specs from a generated setup cell."""
    rel = re.search(r'^RELEASE = "([^"]+)"$', setup_source, flags=re.M)
    block = re.search(r"^INSTALL = \[[^\n]*\n(.*?)^\]", setup_source, flags=re.M | re.S)
    if not rel or not block:
        raise LaunchConfigError("not a course setup cell: no RELEASE / INSTALL lines")
    return rel.group(1), re.findall(r'^\s*"([^"]+)",', block.group(1), flags=re.M)


def release_problems(nb_json: dict, rel_path: str, rel: Release) -> list[str]:
    """Where a generated notebook (as JSON) installs or links to another release than ``rel``."""
    problems = []
    setup = next(("".join(c["source"]) for c in nb_json["cells"]
                  if c["cell_type"] == "code" and "INSTALL = [" in "".join(c["source"])), None)
    if setup is None:
        return [f"{rel_path}: no setup cell"]
    version, specs = install_targets(setup)
    if version != rel.version:
        problems.append(f"{rel_path}: setup cell is for release {version}, the package is {rel.version}")
    for spec in specs:
        if not (spec.endswith(f"=={rel.version}") or spec.endswith(f"@{rel.tag}")):
            problems.append(f"{rel_path}: installs {spec!r}, not release {rel.version}")
        if not spec.startswith(DIST) or "torch" in spec:
            problems.append(f"{rel_path}: installs {spec!r}: only the course package may be installed")
    links = re.findall(rf"{re.escape(COLAB)}/github/[^)\s]+", "".join("".join(c["source"]) for c in nb_json["cells"]))
    for link in links:
        if f"/blob/{rel.tag}/" not in link:
            problems.append(f"{rel_path}: Colab link {link} is not at the release tag {rel.tag}")
    return problems
