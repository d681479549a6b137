"""The larger corpus (issue 12): pins and licences are checked, files that are not Python 3.11 are
dropped and counted, and a missing or altered snapshot fails with an error that names it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from course_utils import corpus
from course_utils import package_corpus as pc

ROOT = Path(__file__).resolve().parents[1]
STDLIB = {"stdlib-3.11.7": pc.SOURCE_SHA256["stdlib-3.11.7"]}


def _fake_site(tmp_path: Path, version: str = "1.0", licence: str = "License-Expression: MIT") -> Path:
    """A site-packages folder with one distribution, ``fakepkg``, and a few source files."""
    site = tmp_path / "site"
    info = site / f"fakepkg-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.4\nName: fakepkg\nVersion: {version}\n{licence}\n")
    (info / "LICENSE").write_text("MIT License\n")
    (info / "RECORD").write_text(f"fakepkg-{version}.dist-info/LICENSE,,\nfakepkg-{version}.dist-info/METADATA,,\n")
    src = site / "fakepkg"
    (src / "tests").mkdir(parents=True)
    (src / "core.py").write_text("def f(x):\n    return x + 1\n")
    (src / "a.py").write_text('"""Doc."""\nX = 1\n')
    (src / "py2.py").write_text("print 'hello'\n")
    (src / "latin.py").write_bytes("# caf\xe9\nx = 1\n".encode("latin-1"))
    (src / "__config__.py").write_text("CONFIG = {}\n")
    (src / "tests" / "test_core.py").write_text("def test_f():\n    assert True\n")
    return site


FAKE = pc.Package("fakepkg", "1.0", "fakepkg")


def test_pins_are_the_course_constraints():
    """Every package's pin is the version constraints.txt installs (so the default build can succeed)."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M))
    for pkg in (*pc.PACKAGES, pc.SYMPY):
        assert pins.get(pkg.dist) == pkg.version, pkg
        assert f"{pkg.dist}-{pkg.version}" in pc.SOURCE_SHA256


def test_licence_notices_ship_for_every_package():
    for pkg in pc.PACKAGES:
        folder = pc.LICENSE_DIR / f"{pkg.dist}-{pkg.version}"
        texts = [f.read_text(errors="replace") for f in folder.rglob("*") if f.is_file()]
        assert any("Redistribution and use in source and binary forms" in t for t in texts), pkg.dist


def test_installed_packages_pass_the_checks():
    for pkg in pc.PACKAGES:
        assert pc.check_package(pkg).version == pkg.version


def test_good_fake_package_is_read_and_bad_files_are_counted(tmp_path):
    site = _fake_site(tmp_path)
    assert pc.check_package(FAKE, site).version == "1.0"
    records, dropped = pc.package_files(FAKE, site)
    assert [r["path"] for r in records] == ["fakepkg/a.py", "fakepkg/core.py"]
    assert {r["source"] for r in records} == {"fakepkg-1.0"}
    assert dropped == {"tests": 1, "generated": 1, "not_utf8": 1, "does_not_parse": 1}


def test_unpinned_version_is_an_error_naming_the_package(tmp_path):
    site = _fake_site(tmp_path, version="1.1")
    with pytest.raises(pc.PackageCorpusError, match=r"fakepkg is installed at version 1\.1 .* pinned to 1\.0"):
        pc.check_package(FAKE, site)
    with pytest.raises(pc.PackageCorpusError, match="fakepkg is installed at version 1.1"):
        pc.build_snapshot(tmp_path / "out", packages=(FAKE,), site_packages=site)


def test_missing_package_is_an_error_naming_it(tmp_path):
    with pytest.raises(pc.PackageCorpusError, match=r"nosuchpkg==2\.0 is not installed"):
        pc.check_package(pc.Package("nosuchpkg", "2.0", "nosuchpkg"), tmp_path)


@pytest.mark.parametrize("licence, named", [
    ("License-Expression: GPL-3.0-only", "GPL-3.0-only"),
    ("License-Expression: MIT AND LGPL-2.1-or-later", "LGPL-2.1-or-later"),
    ("Classifier: License :: OSI Approved :: GNU General Public License v3 (GPLv3)",
     "GNU General Public License v3"),
    ("License: Proprietary", "Proprietary"),
])
def test_non_redistributable_licence_is_an_error_naming_it(tmp_path, licence, named):
    site = _fake_site(tmp_path, licence=licence)
    with pytest.raises(pc.PackageCorpusError, match=re.escape(named)) as err:
        pc.check_package(FAKE, site)
    assert "fakepkg" in str(err.value) and "may not redistribute" in str(err.value)


def test_licence_files_are_copied(tmp_path):
    site = _fake_site(tmp_path)
    (copied,) = pc.copy_licences(FAKE, pc.check_package(FAKE, site), tmp_path / "lic")
    assert copied.read_text() == "MIT License\n" and copied.parent.name == "fakepkg-1.0"


@pytest.fixture(scope="module")
def small_snapshot(tmp_path_factory):
    """The stdlib plus the fake package, built and checked against digests measured on first build."""
    tmp = tmp_path_factory.mktemp("snap")
    site = _fake_site(tmp)
    first = pc.build_snapshot(tmp / "a", packages=(FAKE,), site_packages=site, expected=STDLIB)
    digests = {k: v["sha256"] for k, v in json.loads((first.parent / "manifest.json").read_text()).items()}
    return {"path": first, "digests": digests, "site": site, "tmp": tmp}


def test_snapshot_splits_keep_the_original_validation_files(small_snapshot):
    s = small_snapshot
    files = pc.load_python_corpus("all", s["path"], s["digests"])
    assert [f.path for f in files][:3] == [f.path for f in corpus.load_corpus("all")][:3]
    val = pc.load_python_corpus("validation", s["path"], s["digests"])
    assert [f.path for f in val] == [f.path for f in corpus.load_corpus("validation")]
    assert {f.source for f in files} == {"stdlib-3.11.7", "fakepkg-1.0"}
    train = pc.load_python_corpus("train", s["path"], s["digests"])
    held = pc.load_python_corpus("validation_packages", s["path"], s["digests"])
    assert len(train) + len(val) + len(held) == len(files)
    with pytest.raises(ValueError, match="split must be"):
        pc.load_python_corpus("test", s["path"], s["digests"])  # type: ignore[arg-type]


def test_rebuild_is_byte_identical(small_snapshot):
    s = small_snapshot
    again = pc.build_snapshot(s["tmp"] / "b", packages=(FAKE,), site_packages=s["site"], expected=s["digests"])
    assert again.read_bytes() == s["path"].read_bytes()


def test_changed_source_files_fail_the_build_naming_the_package(small_snapshot, tmp_path):
    s = small_snapshot
    site = _fake_site(tmp_path)
    (site / "fakepkg" / "core.py").write_text("def f(x):\n    return x + 2\n")
    with pytest.raises(pc.PackageCorpusError, match="the fakepkg-1.0 source files differ"):
        pc.build_snapshot(tmp_path / "out", packages=(FAKE,), site_packages=site, expected=s["digests"])


def test_altered_snapshot_is_detected_naming_the_source(small_snapshot, tmp_path):
    s = small_snapshot
    bad = tmp_path / pc.SNAPSHOT_NAME
    bad.write_text(s["path"].read_text().replace("return x + 1", "return x - 1"))
    with pytest.raises(pc.PackageCorpusError, match="was altered: the fakepkg-1.0 files have sha256"):
        pc.load_python_corpus("train", bad, s["digests"])
    lines = s["path"].read_text().splitlines(keepends=True)
    bad.write_text("".join(lines[1:]))  # one stdlib file dropped
    with pytest.raises(pc.PackageCorpusError, match="the stdlib-3.11.7 files have sha256"):
        pc.load_python_corpus("train", bad, s["digests"])
    extra = json.dumps({"path": "evil.py", "text": "x = 1\n", "source": "evil-0.1"}) + "\n"
    bad.write_text(s["path"].read_text() + extra)
    with pytest.raises(pc.PackageCorpusError, match="holds files of evil-0.1"):
        pc.load_python_corpus("train", bad, s["digests"])


def test_missing_snapshot_says_how_to_build_it(tmp_path):
    with pytest.raises(pc.PackageCorpusError, match="corpus snapshot missing: .*package_corpus build"):
        pc.load_python_corpus("train", tmp_path / "nothing.jsonl")


def test_full_snapshot_builds_with_the_recorded_digests(tmp_path):
    """The default build (stdlib + pinned packages) on this installation reproduces every recorded
    sha256 (build_snapshot raises otherwise); sizes are those measured for the training run."""
    path = pc.build_snapshot(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert list(manifest) == pc.source_names()[1:] + ["stdlib-3.11.7"]
    assert sum(m["chars"] for m in manifest.values()) > 45_000_000
    assert all(m["dropped"]["does_not_parse"] == 0 for k, m in manifest.items() if k != "stdlib-3.11.7")
    held = pc.load_python_corpus("validation_packages", path)
    assert 0.03 < len(held) / len(pc.load_python_corpus("all", path)) < 0.07


def test_manifest_is_read_back_and_its_absence_named(small_snapshot, tmp_path):
    m = pc.corpus_manifest(small_snapshot["path"])
    assert m["fakepkg-1.0"]["files"] == 2 and m["fakepkg-1.0"]["dropped"]["tests"] == 1
    with pytest.raises(pc.PackageCorpusError, match="no manifest next to"):
        pc.corpus_manifest(tmp_path / pc.SNAPSHOT_NAME)
