"""Chapter 4 part 2: dashboards, feature splitting and absorption on the course model, and the
numbers its page states (measured on the page's 8,192 validation tokens with the shipped SAEs;
one run each, deterministic; the bounds are a little outside the measured values)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from course_utils.saes import absorption, dashboards, interp, splitting
from course_utils.saes.course import MLP0, RESID1, load_course_sae

N_TOKENS = 8_192


@pytest.fixture(scope="module")
def mlp0(lm):
    model, tok = lm
    data = interp.labelled_activations(model, tok, MLP0, N_TOKENS)
    sae = load_course_sae("mlp0-topk-2048", model)
    with torch.no_grad():
        f = sae.encode(data.acts)
    return data, sae, f


@pytest.fixture(scope="module")
def resid(lm):
    model, tok = lm
    data = interp.labelled_activations(model, tok, RESID1, N_TOKENS)
    fam = [load_course_sae(n, model) for n in ("resid1-topk-512", "resid1-topk-2048", "resid1-topk-8192")]
    with torch.no_grad():
        fs = [s.encode(data.acts) for s in fam]
    return data, fam, fs


# ---------------------------------------------------------------------------------------------- dashboards


def test_dashboard_of_a_shipped_latent(lm, mlp0):
    model, tok = lm
    data, sae, f = mlp0
    with torch.no_grad():
        eff = dashboards.decoder_to_model(model, MLP0, sae.W_dec) @ model.W_U
        eff = eff - eff.mean(1, keepdim=True)
    scores = interp.monosemanticity(f, interp.concept_vocabulary(data.tokens, data.prev, data.labels))
    i = int(np.argmax(scores.score))
    vocab = [tok.id_to_token(j) for j in range(model.cfg.d_vocab)]
    d = dashboards.build_dashboard(i, f, data.tokens, data.prev, eff, vocab, scores, k=5)
    assert d.concept == scores.best[i] and d.score == pytest.approx(1.0)
    assert len(d.contexts) == 5 and len(d.values) == int((f[:, i] != 0).sum())
    top_ctx = d.contexts[0]
    assert top_ctx[1][top_ctx[2]] == pytest.approx(float(f[:, i].max()))  # the top token is the maximum
    assert d.top_logits[0][1] >= d.top_logits[-1][1] and d.bottom_logits[0][1] <= d.bottom_logits[-1][1]
    # effects: the same as the exercise's reference through W_out
    W = sae.W_dec.detach() @ model.blocks[0].mlp.W_out.detach()
    assert torch.allclose(eff[i], dashboards.logit_effects(W, model.W_U.detach(), i), atol=1e-5)
    html = dashboards.dashboard_html(d)
    assert "<script" not in html and "http" not in html  # renders offline, no CDN
    assert "Ġ" not in html and "Ċ" not in html


def test_tokens_are_shown_readably():
    assert dashboards.show_tokens(["Ġdef", "Ċ", "\n", "a\tb", " x"]) == ["␣def", "↵", "↵", "a⇥b", " x"]
    html = dashboards.context_html(["<a>", "b"], [1.0, 0.0], 0, 1.0)
    assert "&lt;a&gt;" in html and "rgba(214,39,40,1.00)" in html and "rgba(214,39,40,0.00)" in html


def test_contexts_stop_at_text_boundaries():
    toks = ["a", "b", "c", "x", "y"]
    prev = ["", "a", "b", "", "x"]  # two texts: a b c | x y
    acts = torch.tensor([[0.0], [0.0], [1.0], [2.0], [0.0]])
    eff = torch.zeros(1, 3)
    d = dashboards.build_dashboard(0, acts, toks, prev, eff, ["p", "q", "r"], k=2, before=5, after=5)
    assert d.contexts[0] == (["x", "y"], [2.0, 0.0], 0)
    assert d.contexts[1] == (["a", "b", "c"], [0.0, 0.0, 1.0], 2)


def test_widget_redraws_on_a_new_latent():
    w = dashboards.dashboard_widget(lambda i: f"<p>latent {i}</p>", d_sae=10, value=3)
    box, out = w.children
    assert out.value == "<p>latent 3</p>"
    box.value = 7
    assert out.value == "<p>latent 7</p>" and box.max == 9


def test_bad_input(lm):
    model, _ = lm
    W = torch.randn(6, 4)
    with pytest.raises(ValueError, match="out of range: this SAE has 6 latents"):
        dashboards.logit_effects(W, torch.randn(4, 9), 6)
    with pytest.raises(TypeError, match="latent must be an int"):
        dashboards.logit_effects(W, torch.randn(4, 9), 1.5)
    with pytest.raises(ValueError, match="W_U"):
        dashboards.logit_effects(W, torch.randn(5, 9), 0)
    with pytest.raises(ValueError, match="k must be"):
        dashboards.top_activating(torch.randn(2, 3), 7)
    with pytest.raises(ValueError, match="n_docs, seq"):
        dashboards.top_activating(torch.randn(6), 2)
    with pytest.raises(ValueError, match="no hook 'blocks.9.mlp.hook_post'"):
        dashboards.decoder_to_model(model, "blocks.9.mlp.hook_post", torch.randn(3, 512))
    with pytest.raises(ValueError, match="512 wide"):
        dashboards.decoder_to_model(model, MLP0, torch.randn(3, 128))
    with pytest.raises(ValueError, match="residual stream is 128"):
        dashboards.decoder_to_model(model, RESID1, torch.randn(3, 512))
    with pytest.raises(ValueError, match="residual-stream"):
        dashboards.decoder_to_model(model, "blocks.0.attn.hook_pattern", torch.randn(3, 128))
    with pytest.raises(ValueError, match="same d"):
        splitting.match_latents(torch.randn(3, 4), torch.randn(5, 6))
    with pytest.raises(ValueError, match="root 9 is out of range"):
        splitting.split_family([torch.randn(3, 4), torch.randn(5, 4)], [torch.rand(7, 3), torch.rand(7, 5)], 9,
                               ["3", "5"])
    with pytest.raises(ValueError, match="too few to probe"):
        absorption.probe(np.random.default_rng(0).normal(size=(40, 3)), np.zeros(40, bool))
    with pytest.raises(ValueError, match="shapes do not fit"):
        absorption.absorption("c", torch.randn(10, 4), torch.rand(10, 6), torch.randn(6, 5), np.zeros(10, bool))


# ---------------------------------------------------------------------------------------------- splitting


def test_matching_finds_planted_children():
    g = torch.Generator().manual_seed(0)
    parent = torch.randn(4, 16, generator=g)
    kids = torch.cat([parent[1:2] + 0.2 * torch.randn(3, 16, generator=g), torch.randn(5, 16, generator=g)])
    cos, idx = splitting.match_latents(parent, kids * 5)  # scale does not matter
    assert int(idx[1]) in (0, 1, 2) and float(cos[1]) > 0.9
    n = splitting.children_per_parent(parent, kids, min_cos=0.8)
    assert n[1] == 3 and n.sum() == 3
    f_parent = torch.tensor([1.0, 1.0, 0.0, 1.0])
    f_kids = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    assert torch.allclose(splitting.coactivation(f_parent, f_kids), torch.tensor([2 / 3, 0.0]))


def test_the_family_splits(resid):
    """512 → 2048 → 8192 on the residual stream: most latents have a close decoder match in the next
    size, some parents have several children, and the page's chosen root splits into children that
    share its tokens."""
    data, fam, fs = resid
    W = [s.W_dec.detach() for s in fam]
    for a, b in ((0, 1), (1, 2)):
        cos, _ = splitting.match_latents(W[a], W[b])
        assert 0.5 < float(cos.median()) < 0.75  # measured 0.55 and 0.64
        assert splitting.children_per_parent(W[a], W[b]).max() >= 4
    scores = interp.monosemanticity(fs[0], interp.concept_vocabulary(data.tokens, data.prev, data.labels))
    kids = splitting.children_per_parent(W[0], W[1])
    good = np.nonzero(scores.score > 0.5)[0]
    root = int(good[np.argmax(kids[good])])
    s = splitting.split_family(W, fs, root, ["512", "2048", "8192"])
    # the page's example: latent 202 fires on 'M'; three 2048-children on 'M' share its tokens
    assert root == 202 and scores.best[root] == "tok='M'" and scores.score[root] > 0.5
    scores2 = interp.monosemanticity(fs[1], interp.concept_vocabulary(data.tokens, data.prev, data.labels))
    eq = [(j, c) for j, c in zip(s.children[0], s.coact[0]) if scores2.best[j] == "tok='M'"]
    # measured 0.24, 0.14, 0.13 in the 2048 SAE and 0.19, 0.11 in the 8192
    assert len(eq) >= 3 and 0.4 <= sum(c for _, c in eq) <= 0.7 and max(c for _, c in eq) < 0.35
    assert len(s.children[1]) >= 2 and 0.15 < max(s.coact[1]) < 0.3
    assert all(0 <= c <= 1 for cs in s.coact for c in cs)
    fig = splitting.plot_split(s)
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


# ---------------------------------------------------------------------------------------------- absorption


def test_absorption_on_a_planted_case():
    """Concept direction p; latent 0 is the main latent, latent 1 a specific latent along p that fires
    instead of it on some tokens: those are absorbed; latent 2 (orthogonal to p) never absorbs."""
    rng = np.random.default_rng(0)
    n, d = 400, 8
    p = np.eye(d)[0]
    y = rng.random(n) < 0.4
    spec = y & (rng.random(n) < 0.5)  # tokens of the specific case
    f = np.zeros((n, 3))
    f[y & ~spec, 0] = 1.0
    f[spec, 1] = 1.0
    f[:, 2] = rng.random(n)
    W_dec = np.stack([p, 0.8 * p + 0.6 * np.eye(d)[1], np.eye(d)[2]])
    x = f @ W_dec + 0.01 * rng.normal(size=(n, d))
    r = absorption.absorption("c", torch.tensor(x), torch.tensor(f), torch.tensor(W_dec), y)
    assert r.main_latent == 0 and r.probe_f1 > 0.95
    assert r.main_recall + r.absorption_rate == pytest.approx(1.0, abs=0.02)
    assert r.absorption_rate == pytest.approx(spec.sum() / y.sum(), abs=0.05)
    assert r.absorbers[0][0] == 1


def test_absorption_as_stated(resid):
    """The page's table at resid1-topk-2048: with SAEBench's cosine 0.025 nearly every missed true
    positive counts as absorbed; with cosine 0.2 keywords (0.32) and numbers (0.37) stay partly
    absorbed, strings a little (0.11) and names and comments nearly not (0.03, 0.03)."""
    data, fam, fs = resid
    W = fam[1].W_dec.detach()
    got = {}
    for c in ("token:keyword", "token:number", "token:name", "in_string", "in_comment"):
        y = data.labels[c].astype(bool)
        loose = absorption.absorption(c, data.acts, fs[1], W, y)
        strict = absorption.absorption(c, data.acts, fs[1], W, y, cos_min=0.2)
        assert 0.25 <= loose.main_recall <= 0.85, c
        assert loose.main_recall + loose.absorption_rate == pytest.approx(1.0, abs=0.05), c
        got[c] = strict.absorption_rate
    assert 0.25 <= got["token:keyword"] <= 0.45 and 0.3 <= got["token:number"] <= 0.45
    assert 0.05 <= got["in_string"] <= 0.17 and max(got["token:name"], got["in_comment"]) <= 0.06


# ---------------------------------------------------------------------------------------------- interpretation


def test_probe_ceiling_as_stated(mlp0):
    """No single latent or neuron comes near the recorded probe F1 on the page's broad concepts
    (best latent F1 at most about 0.5; probe 0.6 to 0.93; measured 0.51, 0.61 to 0.93)."""
    from course_utils.course_lm import MODEL_DIR

    data, _, f = mlp0
    probe = json.loads((MODEL_DIR / "training_log.json").read_text())["probe"]["f1"][MLP0]
    fires_n = (data.acts > 0.5 * data.acts.max(0).values).float()
    for c in ("token:name", "token:keyword", "token:number", "token:operator", "in_string", "in_comment",
              "stmt:def", "stmt:import", "bracket>=1"):
        y = data.labels[c].astype(bool)
        lat = absorption.best_f1_latent(f, y)[1]
        neu = absorption.best_f1_latent(fires_n, y)[1]
        assert max(lat, neu) <= 0.56 and probe[c] >= 0.6 and probe[c] - max(lat, neu) >= 0.1, c


def test_score_distributions_as_stated(mlp0):
    """Bimodal latents: ≥ 18% of firing latents above 0.5 (measured 22.5%) against about 1% of neurons
    and fewer random directions (1.0%, 0.2%); the median firing latent scores 0, below the median
    neuron (0.10)."""
    data, sae, _ = mlp0
    s = interp.score_units_at_hook(sae, data)
    lat = s["latents"].summary()
    assert lat["frac_above_0.5"] >= 0.18 and lat["median"] == 0.0
    assert s["neurons"].summary()["frac_above_0.5"] <= 0.015 and s["random"].summary()["frac_above_0.5"] < 0.01
    assert 0.07 <= s["neurons"].summary()["median"] <= 0.13


# ---------------------------------------------------------------------------------------------- online path


def test_pretrained_sae_offline_error(monkeypatch):
    from course_utils import course_lm

    monkeypatch.setattr(course_lm, "_hub_reachable", lambda *a, **k: False)
    with pytest.raises(course_lm.OfflineError, match="offline"):
        course_lm.load_pretrained_sae()


def test_dashboard_on_gpt2_with_a_pretrained_sae():
    """Online only: the same dashboard functions on GPT-2 small and a SAELens SAE."""
    from course_utils import course_lm

    if not course_lm._hub_reachable():
        pytest.skip("offline: the model hub is unreachable, so GPT-2 small and its SAE cannot be downloaded")
    model = course_lm.load_pretrained("gpt2-small")
    sae = course_lm.load_pretrained_sae()
    tokens = model.to_tokens("def add(a, b):\n    return a + b\n")
    _, cache = model.run_with_cache(tokens, names_filter="blocks.8.hook_resid_pre")
    f = sae.encode(cache["blocks.8.hook_resid_pre"][0])
    eff = dashboards.decoder_to_model(model, "blocks.8.hook_resid_pre", sae.W_dec) @ model.W_U
    strs = model.to_str_tokens(tokens)
    d = dashboards.build_dashboard(int(f.sum(0).argmax()), f, strs, [""] + strs[:-1], eff,
                                   model.to_str_tokens(torch.arange(model.cfg.d_vocab)), k=2)
    assert d.contexts


def test_firing_fractions_as_stated(lm, mlp0):
    """Figure 'firing': on the page's tokens the TopK has about 8% dead latents and almost no dense
    ones; the JumpReLU none dead and about 7% dense (measured 8.0%, 0.10%; 0%, 7.37%)."""
    model, _ = lm
    data, _, f = mlp0
    with torch.no_grad():
        g = load_course_sae("mlp0-jumprelu-2048", model).encode(data.acts)
    for lat, dead, dense in ((f, (0.06, 0.11), (0.0, 0.005)), (g, (0.0, 0.005), (0.055, 0.09))):
        freq = (lat != 0).float().mean(0)
        assert dead[0] <= float((freq == 0).float().mean()) <= dead[1]
        assert dense[0] <= float((freq > 0.1).float().mean()) <= dense[1]
    assert float((f != 0).float().sum(1).mean()) == pytest.approx(16.0)


def test_figures_have_titles_and_axis_titles():
    from course_utils.saes import lm_figures

    recs = {"a": {"hook_name": MLP0, "architecture": "topk", "d_sae": 8, "l0": 4.0, "ce_recovered_zero": 0.9},
            "b": {"hook_name": RESID1, "architecture": "jumprelu", "d_sae": 8, "l0": 9.0, "ce_recovered_zero": 0.8}}
    d = dashboards.LatentDashboard(3, np.array([0.5, 1.0, 2.0]), 10, [], [], [], "", 0.0, 0.0, 0.0)
    figs = [lm_figures.plot_frontier(recs),
            lm_figures.plot_score_distributions({"x": np.array([0.1, 0.9])}, "t"),
            lm_figures.plot_probe_ceiling(["c"], [None], [0.2], [0.3], MLP0),
            dashboards.plot_firing_histogram({"s": torch.tensor([0.0, 0.1, 0.01])}),
            dashboards.plot_activation_histogram(d)]
    for fig in figs:
        assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert figs[0].layout.xaxis.type == "log" and len(figs[0].data) == 2
    assert "never fires" in dashboards.dashboard_html(
        dashboards.LatentDashboard(0, np.array([]), 10, [], [], [], "", 0.0, 0.0, 0.0))
