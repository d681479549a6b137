"""Dashboard contexts drawn by circuitsvis (the notebook's live widget) and by the course's own HTML
(the website's static twin): the circuitsvis rendering carries circuitsvis's own bundle inlined,
reaches no network and no CDN, and shows the tokens readably; the default rendering is unchanged."""

from __future__ import annotations

import json
import re
import socket
import sys
import urllib.request
from importlib import resources

import numpy as np
import pytest

from course_utils._optional import MissingDependency
from course_utils.saes import dashboards

# two contexts: byte-level space marker, an HTML-special token, a newline (show_tokens output)
CONTEXTS = [(["␣return", "␣a", "<", "b", "↵"], [0.0, 0.5, 2.0, 0.25, 0.0], 2),
            (["if", "␣x", "&", "y"], [0.0, 1.5, 0.0, 0.0], 1)]


def _dashboard(contexts=CONTEXTS) -> dashboards.LatentDashboard:
    return dashboards.LatentDashboard(7, np.array([0.25, 0.5, 1.5, 2.0]), 100, list(contexts),
                                      [("␣b", 0.5)], [("(", -0.25)], "in_string", 0.5, 0.75, 0.25)


@pytest.fixture
def no_network(monkeypatch):
    """Record (and refuse) every connection and every name lookup during the test."""
    tried: list[str] = []

    def connect(self, address):
        tried.append(f"connect {address!r}")
        raise OSError("no network in this test")

    def getaddrinfo(host, *args, **kwargs):
        tried.append(f"lookup {host!r}")
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return tried


def _props(src: str) -> dict:
    """The properties circuitsvis passes to its TopkSamples element."""
    m = re.search(r"CircuitsVis\.TopkSamples,\s*(\{.*\})\s*\)\s*</script>", src, re.S)
    assert m, "no CircuitsVis.render(..., CircuitsVis.TopkSamples, props) call in the rendering"
    return json.loads(m.group(1))


def test_the_guard_sees_a_network_call(no_network):
    # circuitsvis's own probe (what RenderedHTML._repr_html_ runs) swallows every error, so the
    # tests below rely on the record, not on an exception: check that the record catches it
    with pytest.raises(OSError):
        urllib.request.urlopen("http://google.com", timeout=1)
    assert no_network


def test_circuitsvis_contexts_are_offline_and_readable(no_network):
    pytest.importorskip("circuitsvis", reason="circuitsvis is in the [lm] extra, not installed here")
    bundle = resources.files("circuitsvis").joinpath("dist/cdn/iife.js").read_text(encoding="utf-8")
    page = dashboards.dashboard_html(_dashboard(), backend="circuitsvis")
    assert not no_network, f"rendering reached for the network: {no_network}"
    # circuitsvis's bundle is inlined (its one change: closing script tags removed)
    assert bundle.replace("</script>", "") in page and len(page) > 1_000_000
    assert "unpkg" not in page
    assert not re.search(r"<script[^>]*\bsrc=", page), "a script loads from a URL"
    assert not re.search(r"""(?:from|import)\s*\(?\s*["']https?:""", page), "a module imports from a URL"
    # the contexts, largest first, as circuitsvis receives them: readable markers, HTML escaped
    # (circuitsvis writes each token as raw HTML), with their activations
    props = _props(page)
    assert props["tokens"] == [[[["␣return", "␣a", "&lt;", "b", "↵"], ["if", "␣x", "&amp;", "y"]]]]
    assert props["activations"] == [[[a for _, a, _ in CONTEXTS]]]
    assert props["firstDimensionLabels"] == ["7"]
    # the element's container is closed, so the logit table after it stays outside it
    assert re.search(r'<div id="circuits-vis-[^"]+"[^>]*></div>\s*<script', page)
    assert page.index("</script>") < page.index("Logit effects")
    assert "drawn by circuitsvis" in page and "in_string" in page


def test_default_backend_is_the_course_html():
    d = _dashboard()
    page = dashboards.dashboard_html(d)
    assert page == dashboards.dashboard_html(d, backend="html")
    assert "<script" not in page and "http" not in page
    vmax = 2.0
    expected = "<ol>" + "".join(f"<li>{dashboards.context_html(t, a, f, vmax)}</li>" for t, a, f in CONTEXTS) + "</ol>"
    assert expected in page and "activation as red; the top token underlined" in page
    assert "&lt;" in page and "␣return" in page and "↵" in page


def test_a_dead_latent_needs_no_script():
    d = _dashboard(contexts=[])
    assert "<script" not in dashboards.contexts_html(d, backend="circuitsvis")
    assert "none" in dashboards.contexts_html(d, backend="circuitsvis")


def test_bad_backend():
    with pytest.raises(ValueError, match=r"backend must be one of \('html', 'circuitsvis'\), got 'cdn'"):
        dashboards.dashboard_html(_dashboard(), backend="cdn")


def test_missing_circuitsvis_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "circuitsvis", None)  # import circuitsvis now fails
    with pytest.raises(MissingDependency, match=r"circuitsvis is not installed.*backend='circuitsvis'.*\[lm\]"):
        dashboards.contexts_html(_dashboard(), backend="circuitsvis")
    assert "<script" not in dashboards.dashboard_html(_dashboard())  # the default needs no circuitsvis


def test_widget_runs_the_scripts_of_circuitsvis_pages():
    pytest.importorskip("ipywidgets", reason="the live widget needs ipywidgets (a notebook dependency)")
    page = {i: f"<div>latent {i}</div><script>var x = {i};</script>" for i in range(10)}
    w = dashboards.dashboard_widget(page.__getitem__, d_sae=10, value=3, scripts=True)
    box, out = w.children
    # an Output's display data is rendered like a cell's output (scripts run); an HTML widget's
    # value is set as innerHTML, where they never would
    assert type(out).__name__ == "Output"
    assert [o["data"]["text/html"] for o in out.outputs] == [page[3]]
    box.value = 8
    assert [o["data"]["text/html"] for o in out.outputs] == [page[8]] and box.max == 9
