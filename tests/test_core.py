"""Shared machinery: devices and the run-size switch, seeds, figures, offline guard, checks core."""

from __future__ import annotations

import socket

import plotly.graph_objects as go
import pytest
import torch

from course_utils import device, plotting
from course_utils.checks import CheckFailed, compare
from course_utils.offline import NetworkBlocked, force_local_circuitsvis


def test_device_defaults_to_cpu_here_and_validates_prefer():
    assert device.get_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'mps'"):
        device.get_device("tpu")
    with pytest.raises(TypeError, match="device name"):
        device.get_device(3)  # type: ignore[arg-type]
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            device.get_device("cuda")


def test_scale_switch(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "gpu")
    assert device.get_scale() == "gpu" and device.pick(cpu=1, gpu=2) == 2
    monkeypatch.setenv("COURSE_SCALE", "cpu")
    assert device.pick(cpu=1, gpu=2) == 1
    monkeypatch.setenv("COURSE_SCALE", "huge")
    with pytest.raises(ValueError, match="COURSE_SCALE must be one of"):
        device.get_scale()
    with pytest.raises(ValueError, match="scale must be one of"):
        device.pick(cpu=1, gpu=2, scale="tpu")  # type: ignore[arg-type]


def test_set_seed_is_deterministic_and_validates():
    device.set_seed(3)
    a = torch.randn(4)
    device.set_seed(3)
    assert torch.equal(a, torch.randn(4))
    with pytest.raises(ValueError, match="non-negative"):
        device.set_seed(-1)
    with pytest.raises(TypeError, match="seed must be an int"):
        device.set_seed(1.5)  # type: ignore[arg-type]


def _fig(v: float) -> go.Figure:
    return go.Figure(go.Scatter(x=[0, 1], y=[0, v]), layout=dict(title=f"v={v}"))


def test_frames_figure_is_a_static_twin_with_one_frame_per_value():
    fig = plotting.frames_figure(_fig, [1, 2, 3], "slope")
    assert len(fig.frames) == 3 and [f.name for f in fig.frames] == ["1", "2", "3"]
    assert fig.layout.sliders[0].currentvalue.prefix == "slope: "
    assert list(fig.frames[2].data[0].y) == [0, 3]


def test_frames_figure_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        plotting.frames_figure(_fig, [], "v")
    with pytest.raises(TypeError, match="make_fig must be a function"):
        plotting.frames_figure("nope", [1], "v")  # type: ignore[arg-type]

    def uneven(v):
        return go.Figure([go.Scatter(y=[v])] * int(v))

    with pytest.raises(ValueError, match="same traces"):
        plotting.frames_figure(uneven, [1, 2], "v")


def test_explorer_is_static_on_the_website_and_live_in_a_kernel(monkeypatch):
    monkeypatch.setenv("COURSE_BOOK_BUILD", "1")
    static = plotting.explorer(lambda slope, c: _fig(slope + c), {"slope": [1, 2], "c": [0, 5]})
    assert isinstance(static, go.Figure) and len(static.frames) == 2
    monkeypatch.delenv("COURSE_BOOK_BUILD")
    import ipywidgets

    live = plotting.explorer(lambda slope, c: _fig(slope + c), {"slope": [1, 2], "c": [0, 5]})
    assert isinstance(live, ipywidgets.VBox)
    with pytest.raises(ValueError, match="is empty"):
        plotting.explorer(_fig, {"v": []})
    with pytest.raises(ValueError, match="not one of the controls"):
        plotting.explorer(_fig, {"v": [1]}, static="w")


def test_book_renderer_writes_deterministic_html_without_plotly_js():
    import plotly.io as pio

    old = pio.renderers.default
    try:
        plotting.register_book_renderer()
        bundle = pio.renderers[plotting.BOOK_RENDERER].to_mimebundle(_fig(1).to_dict())
        html = bundle["text/html"]
        assert "Plotly.newPlot" in html and "plotly.js v" not in html and len(html) < 20_000
        again = pio.renderers[plotting.BOOK_RENDERER].to_mimebundle(_fig(1).to_dict())["text/html"]
        strip = lambda s: s.split('id="')[1].split("-")[1]  # noqa: E731 - the content hash part of the id
        assert strip(html) == strip(again)
    finally:
        pio.renderers.default = old


def test_book_renderer_does_not_autoplay_static_twins():
    """A slider figure must open on its first frame: autoplay would run it to the end on page load."""
    import plotly.io as pio

    old = pio.renderers.default
    try:
        plotting.register_book_renderer()
        fig = plotting.frames_figure(_fig, [1, 2, 3], "slope")
        html = pio.renderers[plotting.BOOK_RENDERER].to_mimebundle(fig.to_dict())["text/html"]
        assert "Plotly.addFrames" in html and "Plotly.animate" not in html
    finally:
        pio.renderers.default = old


def test_network_is_blocked_in_tests_but_loopback_works():
    with pytest.raises(NetworkBlocked, match="runs offline"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(NetworkBlocked, match="look up"):
        socket.getaddrinfo("example.org", 443)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname(), timeout=1)
    cli.close()
    srv.close()


def test_kernels_started_by_the_suite_are_offline_too():
    """A Jupyter kernel started with the suite's environment loads the startup file and is blocked."""
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=1)\n"
        "except ConnectionError as e:\n    print(type(e).__name__)")])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0]["text"].strip() == "NetworkBlocked"


def test_circuitsvis_renders_locally_and_deterministically():
    assert force_local_circuitsvis()
    from circuitsvis.tokens import colored_tokens

    a = colored_tokens(["def", " f", "(x)"], [0.1, 0.9, 0.3])._repr_html_()
    b = colored_tokens(["def", " f", "(x)"], [0.1, 0.9, 0.3])._repr_html_()
    assert "unpkg.com" not in a and "CircuitsVis.render" in a
    assert a.split('id="')[1].split('"')[0].rsplit("-", 1)[0] == b.split('id="')[1].split('"')[0].rsplit("-", 1)[0]


def test_compare_diagnoses_generic_patterns():
    e = torch.arange(1.0, 7.0).reshape(2, 3)
    with pytest.raises(CheckFailed, match="transposed"):
        compare(e.T, e, what="f")
    with pytest.raises(CheckFailed, match="wrong sign"):
        compare(-e, e, what="f")
    with pytest.raises(CheckFailed, match="3 times the expected"):
        compare(3 * e, e, what="f")
    with pytest.raises(CheckFailed, match="reduced over a dimension"):
        compare(e.sum(0), e, what="f")
    with pytest.raises(CheckFailed, match="should return a torch.Tensor"):
        compare(e.tolist(), e, what="f")
    compare(e + 1e-7, e, what="f")
