"""Optional dependencies and tested version ranges, with errors that say what to install.

* :func:`require` imports an optional dependency (``tokenizers``, ``transformer_lens``, ``sae_lens``,
  ``circuitsvis``: the ``[lm]`` extra) or raises :class:`MissingDependency` naming the
  ``pip install "polysemanticity-course[lm]"`` line.
* :func:`check_versions` compares the installed versions with the ranges the package declares
  (``pyproject.toml``, read back from the installed distribution's metadata): a version below a range
  raises :class:`UnsupportedVersion`, one above it (newer than anything tested) warns with
  :class:`UntestedVersionWarning`. ``import course_utils`` runs it once.

Both exceptions print as one readable line in a notebook (IPython's ``_render_traceback_``), never as
a traceback dump.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import re
import warnings
from dataclasses import dataclass
from types import ModuleType

DIST = "polysemanticity-course"

# import name -> (distribution name, extra that provides it)
OPTIONAL: dict[str, tuple[str, str]] = {
    "tokenizers": ("tokenizers", "lm"),
    "transformer_lens": ("transformer-lens", "lm"),
    "sae_lens": ("sae-lens", "lm"),
    "circuitsvis": ("circuitsvis", "lm"),
}


class _OneLine:
    """Mixin: IPython shows the message alone instead of a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class MissingDependency(_OneLine, ModuleNotFoundError):
    """An optional dependency is not installed; the message gives the pip command."""


class UnsupportedVersion(_OneLine, ImportError):
    """An installed dependency is older than the range the course declares."""


class UntestedVersionWarning(UserWarning):
    """An installed dependency is newer than the range the course was tested with."""


def install_command(extra: str) -> str:
    return f'pip install "{DIST}[{extra}]"'


def require(module: str, extra: str | None = None, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming the extra that installs it.

    ``extra`` defaults to the one listed in :data:`OPTIONAL`; ``purpose`` says what needs it
    (e.g. ``"the course language model"``).
    """
    if not isinstance(module, str) or not module:
        raise TypeError(f"module must be a non-empty import name, got {module!r}")
    dist, default_extra = OPTIONAL.get(module, (module, "lm"))
    extra = extra or default_extra
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is not None and err.name.split(".")[0] != module.split(".")[0]:
            raise  # the module exists but one of *its* dependencies is missing: not ours to rename
        need = f" for {purpose}" if purpose else ""
        raise MissingDependency(
            f"{dist} is not installed; it is needed{need}. Install the course with its "
            f"[{extra}] extra: {install_command(extra)} (in a notebook: %pip install \"{DIST}[{extra}]\"), "
            "then restart the kernel.", name=module) from None


# ----------------------------------------------------------------------------------------------
# Version ranges


@dataclass(frozen=True)
class Requirement:
    dist: str
    lower: tuple[int, ...] | None  # inclusive (>=)
    upper: tuple[int, ...] | None  # exclusive (<)
    spec: str  # as declared, e.g. ">=2.1,<3"
    extra: str | None


def parse_version(text: str) -> tuple[int, ...]:
    """'2.13.0+cpu' -> (2, 13, 0); '1.0rc1' -> (1, 0); the release numbers only."""
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    if not m:
        raise ValueError(f"cannot read a version number from {text!r}")
    return tuple(int(p) for p in m.group(1).split("."))


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def parse_requirement(line: str) -> Requirement:
    """Read one ``Requires-Dist`` line such as ``'torch<3,>=2.1'`` or ``'sae-lens<7,>=6.54; extra == "lm"'``."""
    req, _, marker = line.partition(";")
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*\(?([^)]*)\)?\s*$", req)
    if not m:
        raise ValueError(f"cannot read the requirement {line!r}")
    dist, spec = m.group(1), m.group(2).replace(" ", "")
    extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
    lower = upper = None
    for part in filter(None, spec.split(",")):
        op, ver = re.match(r"(>=|<=|==|~=|!=|<|>)(.*)", part).groups()
        if op in (">=", "~=", "=="):
            lower = parse_version(ver)
        if op == "<" or op == "==":
            upper = parse_version(ver) + ((1,) if op == "==" else ())
    return Requirement(dist, lower, upper, spec, extra.group(1) if extra else None)


def declared_requirements() -> list[Requirement]:
    """The ranges of the installed course package (empty when it is not installed as a distribution)."""
    try:
        lines = metadata.requires(DIST) or []
    except metadata.PackageNotFoundError:
        return []
    return [parse_requirement(line) for line in lines]


def version_problems(requirements: list[Requirement], installed: dict[str, str | None]
                     ) -> tuple[list[str], list[str]]:
    """(too old, too new) messages for the installed versions outside the declared ranges."""
    old, new = [], []
    for r in requirements:
        have = installed.get(r.dist)
        if have is None:
            continue  # not installed: a missing extra is reported by require() when it is needed
        v = parse_version(have)
        where = f" [{r.extra}]" if r.extra else ""
        if r.lower is not None and _cmp(v, r.lower) < 0:
            old.append(f"{r.dist} {have} is older than the course supports{where} (tested range {r.spec}); "
                       f'upgrade it: pip install "{r.dist}{r.spec}"')
        elif r.upper is not None and _cmp(v, r.upper) >= 0:
            new.append(f"{r.dist} {have} is newer than the range the course was tested with{where} "
                       f"({r.spec}); if something breaks, install a tested version: "
                       f'pip install "{r.dist}{r.spec}"')
    return old, new


def _installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_versions(requirements: list[Requirement] | None = None) -> None:
    """Raise :class:`UnsupportedVersion` for too-old dependencies, warn for untested newer ones."""
    reqs = declared_requirements() if requirements is None else requirements
    old, new = version_problems(reqs, {r.dist: _installed_version(r.dist) for r in reqs})
    for msg in new:
        warnings.warn(msg, UntestedVersionWarning, stacklevel=3)
    if old:
        raise UnsupportedVersion("; ".join(old))
