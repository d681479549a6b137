"""Optional dependencies say what to install; versions outside the declared ranges are named."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from course_utils import _optional
from course_utils._optional import (
    MissingDependency,
    UnsupportedVersion,
    UntestedVersionWarning,
    check_versions,
    parse_requirement,
    parse_version,
    require,
    version_problems,
)

ROOT = Path(__file__).resolve().parents[1]


def test_require_returns_the_module_when_installed():
    assert require("json").dumps([1]) == "[1]"


def test_missing_optional_dependency_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import now raises ModuleNotFoundError
    with pytest.raises(MissingDependency, match=r'pip install "polysemanticity-course\[lm\]"') as info:
        require("tokenizers", purpose="the course language model")
    assert "tokenizers is not installed" in str(info.value) and "restart the kernel" in str(info.value)
    assert isinstance(info.value, ModuleNotFoundError), "code catching ModuleNotFoundError still works"
    # in a notebook the error is one line, not a traceback dump
    assert info.value._render_traceback_() == [f"MissingDependency: {info.value}"]


def test_course_lm_import_sites_use_the_helper(monkeypatch):
    """The error a learner sees after a plain install (no [lm] extra), for each optional module."""
    from course_utils import course_lm

    for module in ("tokenizers", "transformer_lens"):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, module, None)
            with pytest.raises(MissingDependency, match=rf"{module.replace('_', '-')} is not installed.*\[lm\]"):
                course_lm.load_course_lm()


def test_a_missing_dependency_of_the_dependency_is_not_renamed(monkeypatch, tmp_path):
    (tmp_path / "fakepkg_course").mkdir()
    (tmp_path / "fakepkg_course" / "__init__.py").write_text("import not_a_real_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        require("fakepkg_course")
    assert not isinstance(info.value, MissingDependency) and info.value.name == "not_a_real_module_xyz"


def test_require_rejects_a_bad_name():
    with pytest.raises(TypeError, match="non-empty import name"):
        require("")


@pytest.mark.parametrize("text, expected", [("2.13.0+cpu", (2, 13, 0)), ("1.0rc1", (1, 0)), ("6", (6,)),
                                            ("v3.9.0", (3, 9, 0))])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


def test_parse_version_rejects_garbage():
    with pytest.raises(ValueError, match="cannot read a version"):
        parse_version("latest")


def test_parse_requirement_reads_metadata_lines():
    r = parse_requirement('sae-lens<7,>=6.54; extra == "lm"')
    assert (r.dist, r.lower, r.upper, r.extra) == ("sae-lens", (6, 54), (7,), "lm")
    r = parse_requirement("torch<3,>=2.1")
    assert (r.lower, r.upper, r.extra) == ((2, 1), (3,), None)
    assert parse_requirement("x==1.2").upper == (1, 2, 1)


def test_versions_outside_the_range_are_named_with_the_range():
    reqs = [parse_requirement("numpy<3,>=1.24"), parse_requirement("torch<3,>=2.1"),
            parse_requirement('tokenizers<1,>=0.15; extra == "lm"')]
    # boundaries: lower bound inclusive, upper exclusive; a missing optional package is not a problem
    assert version_problems(reqs, {"numpy": "1.24.0", "torch": "2.99", "tokenizers": None}) == ([], [])
    old, new = version_problems(reqs, {"numpy": "1.23.5", "torch": "3.0.0", "tokenizers": "0.14.1"})
    assert len(old) == 2 and len(new) == 1
    assert "numpy 1.23.5 is older" in old[0] and "(tested range <3,>=1.24)" in old[0]
    assert "tokenizers 0.14.1" in old[1] and "[lm]" in old[1]
    assert new[0].startswith("torch 3.0.0 is newer") and 'pip install "torch<3,>=2.1"' in new[0]


def test_check_versions_raises_for_old_and_warns_for_new(monkeypatch):
    reqs = [parse_requirement("numpy<3,>=1.24"), parse_requirement("plotly<8,>=5.18")]
    monkeypatch.setattr(_optional, "_installed_version", {"numpy": "1.20.0", "plotly": "9.1.0"}.get)
    with pytest.warns(UntestedVersionWarning, match="plotly 9.1.0 is newer"):
        with pytest.raises(UnsupportedVersion, match=r"numpy 1.20.0 is older.*>=1.24"):
            check_versions(reqs)


def test_installed_environment_is_inside_the_declared_ranges():
    """The pinned environment (requirements.txt) is the tested one: it must satisfy pyproject's ranges."""
    reqs = _optional.declared_requirements()
    assert {r.dist for r in reqs} >= {"torch", "numpy", "sae-lens", "transformer-lens"}
    assert all(r.upper is not None for r in reqs), [r.dist for r in reqs if r.upper is None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_versions()


def test_import_time_check_reports_an_old_version_in_one_line(tmp_path):
    """`import course_utils` with a too-old numpy: the message, not a traceback through the package."""
    fake = tmp_path / "numpy-1.0.0.dist-info"
    fake.mkdir()
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.0.0\n")
    code = "import course_utils"
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode != 0
    assert "UnsupportedVersion: numpy 1.0.0 is older than the course supports" in r.stderr
