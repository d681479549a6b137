"""The site ships font-awesome's SVG+JS bundle cut down to the icons its pages use
(book/_ext/coursebook.py: subset_fontawesome, run after every HTML build)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pydata_sphinx_theme
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = (Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme" / "static" / "scripts"
          / "fontawesome.js")


def _coursebook():
    spec = importlib.util.spec_from_file_location("coursebook_ext", ROOT / "book" / "_ext" / "coursebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _defined(js: str, name: str) -> bool:
    return f'"{name}":[' in js or f",{name}:[" in js or f"{{{name}:[" in js


def test_subset_keeps_the_runtime_and_the_named_icons_only():
    full = BUNDLE.read_text(encoding="utf-8")
    used = {"bars", "github", "search", "0"}  # "search" is an alias of magnifying-glass; "0" a digit icon
    small = _coursebook().subset_fontawesome(full, used)
    assert len(full) > 1_000_000 and len(small) < 100_000, (len(full), len(small))
    for name in ("bars", "github", "magnifying-glass", "0"):
        assert _defined(full, name) and _defined(small, name), f"icon {name} lost"
    for name in ("tree", "house", "python", "magnifying-glass-location"):
        assert _defined(full, name) and not _defined(small, name), f"unused icon {name} kept"
    assert "___FONT_AWESOME___" in small and "MutationObserver" in small  # the runtime stays


@pytest.mark.skipif(shutil.which("node") is None, reason="node parses the subset as JavaScript; not installed here")
def test_subset_is_valid_javascript(tmp_path):
    small = _coursebook().subset_fontawesome(BUNDLE.read_text(encoding="utf-8"), {"bars", "sun", "moon"})
    path = tmp_path / "fa.js"
    path.write_text(small, encoding="utf-8")
    run = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def test_icons_used_reads_pages_and_scripts(tmp_path):
    (tmp_path / "_static" / "scripts").mkdir(parents=True)
    (tmp_path / "page.html").write_text('<i class="fa-solid fa-bars"></i><span class="fab fa-github">')
    (tmp_path / "_static" / "theme.js").write_text('el.className = "fa-solid fa-circle-half-stroke"')
    (tmp_path / "_static" / "scripts" / "fontawesome.js").write_text('"fa-tree"')  # the bundle itself is not usage
    (tmp_path / "_static" / "vendor").mkdir()
    (tmp_path / "_static" / "vendor" / "embed-amd.js").write_text('"fa-tree fa-house"')  # widgets: own font
    assert _coursebook().icons_used(tmp_path) == {"solid", "bars", "github", "circle-half-stroke"}
