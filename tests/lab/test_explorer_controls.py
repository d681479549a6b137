"""Explorer controls read as words, keep their options in order, and start where the page says."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from course_utils import plotting


def _fig(a: int = 0, b_over_c: int = 1) -> go.Figure:
    return go.Figure(go.Scatter(x=[0, 1], y=[a, b_over_c]))


def _sliders(box):
    return box.children[0].children


def test_live_controls_use_labels_ordered_options_and_start_values(monkeypatch):
    monkeypatch.setattr(plotting, "in_book_build", lambda: False)
    box = plotting.explorer(_fig, {"a": [0, 1], "b_over_c": [1, 2, 4]}, labels={"b_over_c": "width b/c"},
                            value={"b_over_c": 2})
    a, b = _sliders(box)
    assert (a.description, b.description) == ("a", "width b/c")
    assert list(b.options) == [1, 2, 4] and b.value == 2 and a.value == 0


def test_default_label_is_the_name_in_words(monkeypatch):
    monkeypatch.setattr(plotting, "in_book_build", lambda: False)
    (s,) = _sliders(plotting.explorer(_fig, {"b_over_c": [1, 2]}))
    assert s.description == "b over c"


def test_static_twin_uses_the_label_and_the_start_values(monkeypatch):
    monkeypatch.setattr(plotting, "in_book_build", lambda: True)
    seen = []
    fig = plotting.explorer(lambda a, b_over_c: seen.append(b_over_c) or _fig(a, b_over_c),
                            {"a": [0, 1], "b_over_c": [1, 2, 4]}, labels={"a": "alpha"}, value={"b_over_c": 4})
    assert set(seen) == {4} and fig.layout.sliders[0].currentvalue.prefix == "alpha: "


@pytest.mark.parametrize("kwargs, match", [
    (dict(labels={"zz": "x"}), r"labels names \['zz'\]"),
    (dict(value={"zz": 1}), r"value names \['zz'\]"),
    (dict(value={"a": 7}), r"value\['a'\]=7 is not one of its options \[0, 1\]"),
])
def test_bad_labels_or_values_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plotting.explorer(_fig, {"a": [0, 1]}, **kwargs)
