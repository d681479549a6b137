"""Chapter 7 functions without the course model: the tolerant labeller against the course labeller,
hooks, the SHIFT pieces on known inputs, the monosemantic-width loss in closed form, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_utils.applications import compression, shift, steering
from course_utils.labels import char_labels


class FakeSAE:
    def __init__(self, W_dec: torch.Tensor) -> None:
        self.W_dec = W_dec

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.W_dec.T)


def test_tolerant_labels_agree_with_the_labeller_on_parsable_code():
    from course_utils.corpus import load_corpus

    files = [f.text for f in load_corpus("validation")[:12]]
    checked = 0
    for text in files:
        try:
            ref = char_labels(text)
        except ValueError:
            continue
        got = steering.tolerant_labels(text)
        for c in ("in_comment", "in_string"):
            assert np.array_equal(got.concept(c), ref.concept(c)), c
        checked += 1
    assert checked >= 8


def test_tolerant_labels_on_broken_code():
    text = 'x = f(1,\n# a comment\ns = """open docstring\nmore'
    lab = steering.tolerant_labels(text)
    assert lab.in_comment[text.index("# a")] and not lab.in_comment[0]
    assert lab.in_string[text.index("more")] and lab.in_string[text.index('"""')]
    single = "y = 'unterminated\nz = 1\n"
    lab = steering.tolerant_labels(single)
    assert lab.in_string[single.index("unterminated")] and not lab.in_string[single.index("z =")]


def test_concept_of_generated_rejects_unknown_concept():
    with pytest.raises(ValueError, match="in_comment"):
        steering.concept_of_generated(None, [1], [2], "stmt:def")


@pytest.mark.parametrize("bad, err", [(float("nan"), ValueError), (math.inf, ValueError), ("1", TypeError),
                                      (True, TypeError)])
def test_non_finite_or_non_numeric_strength_is_rejected(bad, err):
    with pytest.raises(err, match="strength"):
        steering.add_hook(torch.ones(4), bad)


def test_unknown_latent_ids_are_rejected():
    sae = FakeSAE(torch.randn(6, 4))
    for bad in (6, -1):
        with pytest.raises(ValueError, match="unknown latent id"):
            steering.latent_direction(sae, bad)
    with pytest.raises(TypeError, match="latent"):
        steering.clamp_hook(sae, 1.5, 3.0)
    with pytest.raises(ValueError, match="unknown latent ids"):
        shift.ablate_latents(torch.zeros(2, 4), torch.zeros(2, 6), sae.W_dec, [0, 9])


def test_add_hook_is_out_of_place_and_unit_scaled():
    act = torch.zeros(2, 3, 4)
    d = torch.tensor([3.0, 4.0, 0.0, 0.0])
    out = steering.add_hook(steering.unit(d), 5.0)(act)
    assert torch.equal(act, torch.zeros(2, 3, 4))
    assert torch.allclose(out[1, 2], torch.tensor([3.0, 4.0, 0.0, 0.0]))


def test_clamp_hook_sets_the_latent_and_keeps_the_error():
    W = torch.eye(4)[:3]  # 3 latents reading the first 3 coordinates; coordinate 3 is pure error
    sae = FakeSAE(W)
    act = torch.tensor([[[1.0, 2.0, 0.5, 7.0]]])
    out = steering.clamp_hook(sae, 1, 9.0)(act)
    assert torch.allclose(out, torch.tensor([[[1.0, 9.0, 0.5, 7.0]]]))


def test_direction_errors():
    with pytest.raises(ValueError, match="non-zero"):
        steering.unit(torch.zeros(3))
    with pytest.raises(ValueError, match=r"shape \[4\]"):
        steering.check_direction(torch.ones(3), 4)


def test_mean_difference_and_probe_directions_find_a_planted_direction():
    g = torch.Generator().manual_seed(0)
    y = torch.rand(2000, generator=g) < 0.3
    u = torch.zeros(16)
    u[3] = 1.0
    X = torch.randn(2000, 16, generator=g) + 2.0 * y[:, None] * u
    assert float(steering.mean_difference_direction(X, y.numpy()) @ u) > 0.95
    assert float(steering.probe_direction(X, y.numpy()) @ u) > 0.95
    with pytest.raises(ValueError, match="one label per token"):
        steering.mean_difference_direction(X, y.numpy()[:-1])
    with pytest.raises(ValueError, match="both classes"):
        steering.probe_direction(X, np.zeros(2000, bool))


def test_group_accuracy_on_a_known_case():
    y = np.array([1, 1, 0, 0, 1, 0], bool)
    z = np.array([1, 0, 1, 0, 1, 0], bool)
    pred = z.copy()  # reads the spurious label
    acc = shift.group_accuracy(pred, y, z)
    assert acc["y=1,z=0"] == 0.0 and acc["y=0,z=1"] == 0.0 and acc["y=1,z=1"] == 1.0
    assert acc["worst_group"] == 0.0 and acc["spurious"] == 1.0 and acc["intended"] == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="lengths differ"):
        shift.group_accuracy(pred, y, z[:-1])


def test_probe_width_is_checked():
    probe = shift.Probe(torch.ones(5), 0.0)
    with pytest.raises(ValueError, match="wrong width"):
        probe.logits(torch.ones(3, 4))
    with pytest.raises(ValueError, match="decoder writes"):
        shift.latent_attribution(torch.ones(2, 3), torch.ones(2, 3), torch.ones(3, 4), torch.ones(5))


def test_fit_probe_returns_raw_coordinates():
    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(1)
    X = torch.randn(500, 6, generator=g) * torch.tensor([1.0, 10.0, 0.1, 1.0, 3.0, 1.0]) + 2.0
    y = (X[:, 0] + 0.1 * X[:, 1] + torch.randn(500, generator=g) > 2.2).numpy()
    probe = shift.fit_probe(X, y)
    Xn = X.double().numpy()
    mu, sd = Xn.mean(0), Xn.std(0) + 1e-6
    ref = LogisticRegression(max_iter=3000, random_state=0).fit((Xn - mu) / sd, y)
    assert np.array_equal(probe.predict(X), ref.predict((Xn - mu) / sd))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shift_on_a_planted_spurious_latent(seed):
    """Where the spurious concept is one latent, the automatic choice finds it and only it; ablating
    it alone leaves the probe's threshold where the louder spurious latent put it (worst group stays
    below 0.2: every example falls on one side), and retraining on the ablated data fixes the probe
    (worst group above 0.9, spurious accuracy within 0.05 of chance)."""
    X, y, z, sae = shift.planted_task(seed=seed)
    res = shift.run_shift(X[:6000], y[:6000], z[:6000], X[6000:], y[6000:], z[6000:], sae,
                          n_per_group=400, top_n=4, seed=seed)
    assert 1 in res.ablated and 0 not in res.ablated
    assert res.base["worst_group"] < 0.2 and res.base["spurious"] > 0.9
    assert res.shift["worst_group"] < 0.2
    assert res.shift_retrain["worst_group"] > 0.9 and abs(res.shift_retrain["spurious"] - 0.5) < 0.05
    assert res.oracle["intended"] > 0.95


def test_orthonormal_dictionary_is_checked():
    with pytest.raises(ValueError, match="orthonormal"):
        shift.OrthonormalDictionary(torch.ones(2, 3))


def test_monosemantic_loss_closed_form():
    imp = torch.tensor([0.5, 1.0, 0.25])
    p = torch.tensor([0.2, 0.5, 1.0])
    var = p / 3 - p**2 / 4
    assert float(compression.monosemantic_loss(imp, p, 3)) == 0.0
    assert float(compression.monosemantic_loss(imp, p, 0)) == pytest.approx(float((imp * var).sum() / 3))
    assert float(compression.monosemantic_loss(imp, p, 1)) == pytest.approx(float((imp * var)[[0, 2]].sum() / 3))
    for bad in (-1, 4, 1.0, True):
        with pytest.raises(ValueError, match="k must be"):
            compression.monosemantic_loss(imp, p, bad)
    with pytest.raises(ValueError, match="differ"):
        compression.monosemantic_loss(imp, p[:2], 1)
    assert compression.matching_width(imp, p, 0.0) == 3
    assert compression.matching_width(imp, p, 1.0) == 0


def test_spliced_loss_rejects_bad_modes():
    with pytest.raises(ValueError, match="mode"):
        compression.spliced_loss(None, torch.zeros(1, 2, dtype=torch.long), "h", None, "mean")
    with pytest.raises(ValueError, match="needs an sae"):
        compression.spliced_loss(None, torch.zeros(1, 2, dtype=torch.long), "h", None, "sae")


def test_figures_have_titles_and_axis_labels():
    from course_utils.applications import figures

    figs = [figures.plot_dose_response([0, 8], {"a": [0.4, 0.5]}, "in_string", 0.4),
            figures.plot_steering_cost([0, 8], {"a": [3.1, 3.5]}, 3.1),
            figures.plot_shift({"probe": {"intended": 0.6, "spurious": 0.7, "worst_group": 0.1}})]
    sav = compression.Savings([0.0, 0.9], 5, [0.02, 0.004], [8, 14], [4, 9], [-1, 4], [0.01, 0.002])
    figs.append(figures.plot_savings(sav))
    for fig in figs:
        assert fig.layout.title.text
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_steering_explorer_static_twin_has_one_tab_per_strength(monkeypatch):
    import ipywidgets

    from course_utils import plotting
    from course_utils.applications import figures

    monkeypatch.setattr(plotting, "in_book_build", lambda: True)
    calls = []

    def generate(latent, strength):
        calls.append((latent, strength))
        return f"<{latent} {strength}>"

    tab = figures.steering_explorer(generate, ["a", "b"], [0.0, 8.0, 16.0], "x = 1\n")
    assert isinstance(tab, ipywidgets.Tab) and tab.titles == ("0", "8", "16")
    assert calls == [("a", 0.0), ("a", 8.0), ("a", 16.0)]
    assert "&lt;a 8.0&gt;" in tab.children[1].value  # escaped text of the continuation
    with pytest.raises(ValueError, match="at least one"):
        figures.steering_explorer(generate, [], [0.0], "x")


class _FakeCfg:
    d_model = 4
    n_ctx = 16


class FakeModel:
    """Only what the argument checks read: ``cfg.d_model`` and ``hook_dict`` (no forward pass)."""

    cfg = _FakeCfg()
    hook_dict = {"blocks.0.hook_resid_pre": None}


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(directions=torch.ones(2, 3)), ValueError, r"\[n_directions, 4\]"),
    (dict(directions=torch.ones(4)), ValueError, r"\[n_directions, 4\]"),
    (dict(directions=torch.zeros(0, 4)), ValueError, r"\[n_directions, 4\]"),
    (dict(directions=torch.tensor([[1.0, 0, 0, 0], [0.0, 0, 0, 0]])), ValueError, "non-zero"),
    (dict(directions=torch.tensor([[float("nan"), 0, 0, 0]])), ValueError, "finite"),
    (dict(directions=[[1.0, 0, 0, 0]]), TypeError, "torch.Tensor"),
    (dict(strengths=[0.0, float("inf")]), ValueError, "finite"),
    (dict(strengths=[0.0, "8"]), TypeError, "real number"),
    (dict(concept="stmt:def"), ValueError, "in_comment"),
])
def test_dose_response_many_rejects_bad_input_before_generating(kwargs, err, match):
    args = dict(model=FakeModel(), tokenizer=None, prompts=torch.zeros(2, 3, dtype=torch.long),
                hook_name="blocks.0.hook_resid_pre", directions=torch.eye(4)[:2], strengths=[0.0, 8.0],
                concept="in_string", max_new_tokens=2)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        steering.dose_response_many(**args)


def test_dose_response_rejects_a_non_finite_strength_or_unknown_concept_before_generating():
    args = dict(model=FakeModel(), tokenizer=None, prompts=torch.zeros(2, 3, dtype=torch.long),
                hook_name="blocks.0.hook_resid_pre", direction=torch.ones(4), concept="in_string")
    with pytest.raises(ValueError, match="finite"):
        steering.dose_response(**args, strengths=[0.0, float("nan")])
    with pytest.raises(ValueError, match="in_comment"):
        steering.dose_response(**{**args, "concept": "comment"}, strengths=[0.0])
    with pytest.raises(ValueError, match=r"shape \[4\]"):
        steering.dose_response(**{**args, "direction": torch.ones(5)}, strengths=[0.0])


def test_unknown_hook_names_are_rejected():
    with pytest.raises(ValueError, match="unknown hook name 'blocks.9.resid'"):
        steering.steered_loss(FakeModel(), torch.zeros(1, 2, dtype=torch.long),
                              [("blocks.9.resid", steering.add_hook(torch.ones(4), 1.0))])
    with pytest.raises(ValueError, match="unknown hook name"):
        steering.generate_ids(FakeModel(), torch.zeros(1, 2, dtype=torch.long), 1, [("nope", lambda a, hook=None: a)])


def test_rowwise_add_hook_gives_each_block_of_prompts_its_direction():
    d = torch.eye(3)[:2] * torch.tensor([[1.0], [1.0]])  # two unit directions
    act = torch.zeros(6, 2, 3)  # 2 directions x 3 prompts, 2 positions
    out = steering.rowwise_add_hook(d, 2.0, 3)(act)
    assert torch.equal(act, torch.zeros(6, 2, 3))  # out of place
    assert torch.equal(out[:3], torch.tensor([2.0, 0, 0]).expand(3, 2, 3))
    assert torch.equal(out[3:], torch.tensor([0, 2.0, 0]).expand(3, 2, 3))
    with pytest.raises(ValueError, match="finite"):
        steering.rowwise_add_hook(d, float("nan"), 3)


def test_check_directions_scales_rows_to_unit_norm():
    units = steering.check_directions(torch.tensor([[3.0, 4.0, 0, 0], [0, 0, 0, -2.0]]), 4)
    assert torch.allclose(units.norm(dim=1), torch.ones(2))
    assert torch.allclose(units[0], torch.tensor([0.6, 0.8, 0, 0]))


def test_spread_and_compare_to_random_on_a_known_case():
    rand = np.array([[0.5, 0.2, 0.4], [0.5, 0.4, 0.2], [0.5, 0.3, 0.3]])  # std 0.1 at strengths 1, 2
    band = steering.spread(rand)
    assert np.allclose(band["mean"], [0.5, 0.3, 0.3]) and np.allclose(band["std"], [0.0, 0.1, 0.1])
    assert np.allclose(band["min"], [0.5, 0.2, 0.2]) and np.allclose(band["max"], [0.5, 0.4, 0.4])
    cmp = steering.compare_to_random([0.5, 0.6, 0.25], rand)
    assert np.allclose(cmp["z"], [0.0, 3.0, -0.5]) and cmp["position"] == ["inside", "above", "inside"]
    assert steering.compare_to_random([0.5, 0.1, 0.5], rand)["position"] == ["inside", "below", "above"]
    # rows that agree up to rounding (one shared unsteered run) give z = 0, not noise / 1e-17
    same = np.full((8, 1), 0.4666666666666667)
    assert steering.compare_to_random([0.4666666666666667], same)["z"][0] == 0.0
    with pytest.raises(ValueError, match="n_directions >= 2"):
        steering.spread(rand[:1])
    with pytest.raises(ValueError, match="3 strengths"):
        steering.compare_to_random([0.5, 0.6], rand)


def test_figures_draw_the_random_band():
    from course_utils.applications import figures

    rand = np.array([[0.5, 0.2], [0.5, 0.4], [0.5, 0.3]])
    fig = figures.plot_dose_response([0, 8], {"probe": [0.5, 0.6]}, "in_string", 0.5, random=rand)
    band, mean = fig.data[0], fig.data[1]
    assert band.fill == "toself" and list(band.y) == [0.5, 0.4, 0.2, 0.5]  # max out, min back
    assert np.allclose(mean.y, [0.5, 0.3]) and "n = 3" in mean.name
    cost = figures.plot_steering_cost([0, 8], {"probe": [3.1, 3.6]}, 3.1, random=rand + 3)
    assert cost.data[0].fill == "toself" and cost.layout.yaxis.title.text
    with pytest.raises(ValueError, match="random must be"):
        figures.plot_dose_response([0, 8], {"probe": [0.5, 0.6]}, "in_string", random=rand[:, :1])


def test_shift_inputs_of_mismatched_length_or_width_are_rejected():
    X, y, z, sae = shift.planted_task(n=400, seed=0)
    with pytest.raises(ValueError, match="lengths differ"):
        shift.biased_and_balanced(y, z[:-1], 10)
    with pytest.raises(ValueError, match="n_per_group"):
        shift.biased_and_balanced(y, z, 0)
    with pytest.raises(ValueError, match="lengths differ"):
        shift.concept_precision(np.ones((5, 2)), np.ones(4, bool))
    with pytest.raises(ValueError, match="reads 24-wide"):
        shift.run_shift(X[:, :20], y, z, X, y, z, sae, n_per_group=10)
    with pytest.raises(ValueError, match="lengths differ"):
        shift.run_shift(X, y[:-1], z, X, y, z, sae, n_per_group=10)
    with pytest.raises(ValueError, match="one label per token"):
        steering.best_latent(np.ones((5, 3)), np.ones(4, bool))


class _CharTokenizer:
    """One token per character (enough for prompt_windows)."""

    class _Enc:
        def __init__(self, text: str) -> None:
            self.ids = [ord(c) for c in text]

    def encode(self, text: str) -> "_CharTokenizer._Enc":
        return self._Enc(text)


def test_prompt_windows_takes_further_starts_when_the_texts_run_out():
    texts = ["x = 1\ny = 2\nz = 3\nw = 4\n", "def f():\n    return 1\na = f()\n"]
    tok = _CharTokenizer()
    one_round = steering.prompt_windows(tok, texts, 2, length=6, seed=0)
    more = steering.prompt_windows(tok, texts, 5, length=6, seed=0)
    assert more.shape == (5, 6) and torch.equal(more[:2], one_round)  # the first round is unchanged
    assert len({tuple(r) for r in more.tolist()}) == 5  # no start is taken twice
    decoded = ["".join(map(chr, r)) for r in more.tolist()]
    assert all(d[0] not in " \t#" for d in decoded)  # every prompt starts at a top-level line
    assert steering.prompt_windows(tok, texts, 6, length=6, seed=0).shape == (6, 6)  # 4 + 2 top-level lines
    with pytest.raises(ValueError, match="only 6 6-token prompts"):
        steering.prompt_windows(tok, texts, 7, length=6, seed=0)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="n_prompts"):
            steering.prompt_windows(tok, texts, bad)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(latent=3), ValueError, "unknown latent id 3"),
    (dict(latent=1.0), TypeError, "int id"),
    (dict(values=[0.0, float("nan")]), ValueError, "value must be finite"),
    (dict(values=[1.0, "2"]), TypeError, "value must be a real number"),
    (dict(values=[]), ValueError, "non-empty sequence"),
    (dict(values=5.0), ValueError, "non-empty sequence"),
    (dict(concept="stmt:def"), ValueError, "in_comment"),
])
def test_clamp_response_rejects_bad_input_before_generating(kwargs, err, match):
    args = dict(model=FakeModel(), tokenizer=None, prompts=torch.zeros(2, 3, dtype=torch.long),
                hook_name="blocks.0.hook_resid_pre", sae=FakeSAE(torch.eye(4)[:3]), latent=1,
                values=[0.0, 8.0], concept="in_string", max_new_tokens=2)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        steering.clamp_response(**args)
