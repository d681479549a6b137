"""Vendor the JavaScript the website needs at view time, so pages render with no network.

MathJax 3, require.js and @jupyter-widgets/html-manager come from the npm registry (`npm pack`, pinned
versions, checked against recorded SHA-256 sums); plotly.js is copied from the pinned plotly package.
They land in book/_assets/vendor/ (not committed; Sphinx copies it to _build/html/_static/vendor/).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "book" / "_assets" / "vendor"

PACKAGES = {
    "mathjax@3.2.2": "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09",
    "requirejs@2.3.7": "31f3330c978fb28684622fe71165dc946432cf0210b2ea8a1ca0233e70f2737d",
    "@jupyter-widgets/html-manager@1.0.15": "2b9d65cb7913e1c7d671757a10008b32c9c2448d4429513371e55c07d6107638",
}


def npm_pack(spec: str, dest: Path) -> Path:
    out = subprocess.run(["npm", "pack", spec, "--silent", "--pack-destination", str(dest)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"npm pack {spec} failed (is npm installed and the npm registry reachable?):\n{out.stderr}")
    tgz = dest / out.stdout.strip().splitlines()[-1]
    digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
    if digest != PACKAGES[spec]:
        sys.exit(f"{spec}: checksum mismatch (got {digest}, expected {PACKAGES[spec]})")
    return tgz


def extract(tgz: Path, member_prefix: str, target: Path) -> None:
    with tarfile.open(tgz) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(member_prefix) and m.isfile()]
        for m in members:
            rel = m.name[len(member_prefix):].lstrip("/")
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(m) as src:  # type: ignore[union-attr]
                out.write_bytes(src.read())


def main() -> None:
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    VENDOR.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        extract(npm_pack("mathjax@3.2.2", tmpd), "package/es5", VENDOR / "mathjax")
        req = tmpd / "req"
        extract(npm_pack("requirejs@2.3.7", tmpd), "package", req)
        shutil.copy(req / "require.js", VENDOR / "require.min.js")
        widgets = npm_pack("@jupyter-widgets/html-manager@1.0.15", tmpd)
        extract(widgets, "package/dist", VENDOR)
        # where the widget manager looks for its fonts, relative to require.js's baseUrl
        extract(widgets, "package/dist", VENDOR / "@jupyter-widgets" / "html-manager" / "dist")
    import plotly

    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", VENDOR / "plotly.min.js")
    (VENDOR / ".fetched").write_text("\n".join(PACKAGES) + "\n")
    size = sum(p.stat().st_size for p in VENDOR.rglob("*") if p.is_file()) / 1e6
    print(f"vendored MathJax, require.js, html-manager and plotly.js into {VENDOR.relative_to(ROOT)} ({size:.0f} MB)")


if __name__ == "__main__":
    main()
