"""The page-weight figure of `make bench` (course_utils.bench.page_weight), on a synthetic site."""

from __future__ import annotations

import pytest

from course_utils import bench


def _site(tmp_path, with_plotly: bool):
    static = tmp_path / "_static"
    (static / "fonts").mkdir(parents=True)
    (static / "plotly.min.js").write_bytes(b"x" * 4096)
    (static / "theme.js").write_bytes(b"x" * 1024)
    (static / "fonts" / "icons.woff2").write_bytes(b"x" * 2048)
    (static / "theme.css").write_text("@font-face { src: url('fonts/icons.woff2'); }" + " " * 979)
    scripts = '<script src="../_static/theme.js"></script>'
    if with_plotly:
        scripts += '<script src="../_static/plotly.min.js?v=1"></script>'
    page = tmp_path / "book" / "page.html"
    page.parent.mkdir()
    page.write_text(f'<link rel="stylesheet" href="../_static/theme.css">{scripts}'
                    '<a href="other.html">x</a><script src="https://cdn.example/x.js"></script>')
    return page


@pytest.mark.parametrize("with_plotly", [False, True])
def test_page_weight_counts_what_a_page_loads(tmp_path, with_plotly):
    page = _site(tmp_path, with_plotly)
    w = bench.page_weight(tmp_path, page)
    assert w["plotly_js"] == int(with_plotly)
    assert w["script_kb"] == (5.0 if with_plotly else 1.0)  # query strings stripped; CDN not counted
    assert w["css_kb"] == pytest.approx(1.0, abs=0.1) and w["font_kb"] == 2.0  # fonts via the CSS
    assert w["total_kb"] == pytest.approx(w["html_kb"] + w["script_kb"] + w["css_kb"] + w["font_kb"],
                                          abs=0.2)


def test_page_weight_refuses_a_missing_page(tmp_path):
    with pytest.raises(ValueError, match="no built page"):
        bench.page_weight(tmp_path, tmp_path / "nope.html")
