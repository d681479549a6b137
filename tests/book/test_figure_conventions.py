"""Figure conventions every chapter shares (course_utils.plotting): one signed colour scale."""

from __future__ import annotations

import pytest
import torch

from course_utils import plotting, tms


def test_signed_heatmap_is_symmetric_red_positive_with_a_titled_colour_bar():
    h = plotting.signed_heatmap([[0.5, -2.0], [1.0, 0.0]], colorbar_title="weight")
    assert (h.zmin, h.zmax) == (-2.0, 2.0)  # symmetric about zero: white means 0
    assert h.colorscale[0][1] == "rgb(5,48,97)" and h.colorscale[-1][1] == "rgb(103,0,31)"  # blue -, red +
    assert h.colorbar.title.text == "weight" and h.showscale
    assert "%{z:.3f}" in h.hovertemplate  # formatted hover numbers
    with pytest.raises(ValueError, match="zmax must be positive"):
        plotting.signed_heatmap([[1.0]], zmax=0.0)


def test_chapter_heatmaps_use_the_shared_convention():
    W = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(0))
    for fig in (tms.plot_wtw(W, ["a", "b"]), tms.plot_neuron_weights(W, ["a", "b"])):
        heat = [t for t in fig.data if t.type == "heatmap"]
        assert heat and all(t.colorscale == heat[0].colorscale for t in heat)
        assert heat[0].colorscale[-1][1] == "rgb(103,0,31)"  # positive = red everywhere
        assert sum(bool(t.showscale) for t in heat) == 1  # one colour bar per figure


def _chapter_heatmap_figures():
    """Every figure of chapters 1 and 3 that draws signed values as a heatmap."""
    import torch.nn as nn

    from course_utils import incidental
    from course_utils import polysemanticity as poly

    g = torch.Generator().manual_seed(0)
    M = torch.randn(4, 3, generator=g)
    xy = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    return {
        "poly.circuit_figure": poly.circuit_figure(M, M.abs()),
        "poly.feature_matrix_figure": poly.feature_matrix_figure(M, -M),
        "poly.correlated_figure": poly.correlated_figure({"a": M, "b": M.T}),
        "poly.xy_figure": poly.xy_figure(xy, n_grid=5),
        "incidental.plot_weights": incidental.plot_weights(M.numpy()),
    }


def test_chapter_1_and_3_heatmaps_use_the_shared_convention():
    reference = plotting.signed_heatmap([[1.0]]).colorscale
    for name, fig in _chapter_heatmap_figures().items():
        heat = [t for t in fig.data if t.type == "heatmap"]
        assert heat, name
        for t in heat:
            assert t.colorscale == reference, f"{name}: its own colour scale, not plotting.SIGNED_COLORSCALE"
            assert t.zmin == -t.zmax, f"{name}: not symmetric about zero (white must mean 0)"
            assert "%{z:." in t.hovertemplate, f"{name}: unformatted hover numbers"
        shown = [t for t in heat if t.showscale]
        assert len(shown) == 1 and shown[0].colorbar.title.text, f"{name}: one titled colour bar"


def test_readable_tokens_replace_byte_level_markers():
    assert plotting.readable_tokens(["Ġdef", "Ġ__", "init", "Ċ", "ĉĉx", "plain"]) == [
        "␣def", "␣__", "init", "↵", "⇥⇥x", "plain"]
    with pytest.raises(TypeError, match="sequence of strings"):
        plotting.readable_tokens("Ġdef")  # a bare string is one token's characters, not tokens
