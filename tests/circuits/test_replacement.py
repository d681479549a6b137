"""The local replacement model: exact logits on its prompt, frozen attention and LayerNorm scales,
error nodes, and clear errors for prompts and transcoders that do not fit."""

from __future__ import annotations

import pytest
import torch

from course_utils.circuits.replacement import (
    ReplacementError,
    build_replacement,
    check_transcoders,
    frozen_forward,
    prompt_tokens,
)
from tests.circuits.graph_helpers import PROMPT, course_model, random_transcoders

# float32 logits of size ~10: rounding differences of a few 1e-6; 1e-4 leaves room, 1e-2 would not
LOGIT_ATOL = 1e-4


@pytest.mark.parametrize("arch,skip", [("topk", True), ("topk", False), ("jumprelu", True)])
def test_replacement_reproduces_the_logits_exactly(arch: str, skip: bool) -> None:
    model, tok = course_model()
    tcs = random_transcoders(arch, skip)
    rep = build_replacement(model, tcs, PROMPT, tok)
    with torch.no_grad():
        _, logits = frozen_forward(model, rep)
        real = model(rep.tokens[None])[0]
    assert (logits[0] - real).abs().max() < LOGIT_ATOL
    # the error nodes are what the transcoders miss: without them the logits change visibly
    zero = [torch.zeros_like(e) for e in rep.errors]
    with torch.no_grad():
        _, no_err = frozen_forward(model, rep, errors=zero)
    assert (no_err[0] - real).abs().max() > 100 * LOGIT_ATOL


def test_error_nodes_are_mlp_out_minus_reconstruction() -> None:
    model, tok = course_model()
    tcs = random_transcoders()
    rep = build_replacement(model, tcs, PROMPT, tok)
    for layer, tc in enumerate(tcs):
        with torch.no_grad():
            recon = tc(rep.x_in[layer])
        torch.testing.assert_close(rep.errors[layer] + recon, rep.mlp_out[layer])
        assert rep.acts[layer].shape == (rep.n_tokens, tc.cfg.d_sae)


def test_attention_and_layernorm_are_frozen() -> None:
    """Replacing the embedding by twice itself: frozen LayerNorm scales and patterns make the whole
    replacement linear in its sources, so x_in(2e) − x_in(e) = x_in(e) − x_in(0) exactly; the real model's
    LayerNorm would undo the scaling."""
    model, tok = course_model()
    tcs = random_transcoders()
    rep = build_replacement(model, tcs, PROMPT, tok)
    with torch.no_grad():
        outs = [frozen_forward(model, rep, embed=c * rep.embed)[0] for c in (0.0, 1.0, 2.0)]
    for layer in range(2):
        torch.testing.assert_close(outs[2][layer] - outs[1][layer], outs[1][layer] - outs[0][layer],
                                   atol=1e-4, rtol=1e-4)
        assert (outs[2][layer] - outs[1][layer]).abs().max() > 1e-2  # the embedding does matter


def test_gradients_skip_the_attention_pattern() -> None:
    model, tok = course_model()
    rep = build_replacement(model, random_transcoders(), PROMPT, tok)
    assert all(not p.requires_grad for p in rep.patterns)
    assert all(not s.requires_grad for s in rep.scales.values())
    assert len(rep.scales) == 5  # ln1, ln2 of both blocks and ln_final


def test_bad_prompts() -> None:
    model, tok = course_model()
    tcs = random_transcoders()
    with pytest.raises(ValueError, match="empty"):
        build_replacement(model, tcs, "", tok)
    with pytest.raises(ValueError, match="context is 128"):
        build_replacement(model, tcs, "x = 1\n" * 200, tok)
    with pytest.raises(TypeError, match="tokenizer"):
        build_replacement(model, tcs, PROMPT)
    with pytest.raises(TypeError, match="long"):
        prompt_tokens(torch.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        prompt_tokens(torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[n\] or \[1, n\]"):
        prompt_tokens(torch.zeros(2, 3, dtype=torch.long))


def test_transcoders_that_do_not_fit_the_model() -> None:
    from course_utils.circuits.transcoders import make_transcoder

    model, _ = course_model()
    tcs = random_transcoders()
    with pytest.raises(ReplacementError, match="one transcoder per layer"):
        check_transcoders(model, tcs[:1])
    with pytest.raises(ReplacementError, match="block 0"):
        check_transcoders(model, tcs[::-1])
    wide = make_transcoder("topk", 64, 32, 64, k=2, hook_name="blocks.1.ln2.hook_normalized",
                           hook_name_out="blocks.1.hook_mlp_out")
    with pytest.raises(ReplacementError, match="64 -> 64 dimensions"):
        check_transcoders(model, [tcs[0], wide])
    other_out = make_transcoder("topk", 128, 32, 128, k=2, hook_name="blocks.1.ln2.hook_normalized",
                                hook_name_out="blocks.1.hook_resid_post")
    with pytest.raises(ReplacementError, match="hook_mlp_out"):
        check_transcoders(model, [tcs[0], other_out])
    with pytest.raises(TypeError, match="one transcoder per layer"):
        check_transcoders(model, tcs[0])
    with pytest.raises(TypeError, match="cfg.hook_name"):
        check_transcoders(model, [object(), object()])


@pytest.mark.parametrize("top", [0, 1, 2])
def test_written_out_backward_equals_autograd_through_the_hooked_model(top: int) -> None:
    """source_gradients (the graph's fast backward) against autograd through frozen_forward (the
    TransformerLens model with freezing hooks), for feature targets in each layer and for logits."""
    from course_utils.circuits.replacement import source_gradients

    model, tok = course_model()
    rep = build_replacement(model, random_transcoders(), PROMPT, tok)
    n, B = rep.n_tokens, 3
    gen = torch.Generator().manual_seed(top)
    deltas = [torch.zeros(B, n, 128, requires_grad=True) for _ in range(3)]
    x_in, logits = frozen_forward(model, rep, batch=B, deltas=deltas)
    if top < 2:
        g_x = torch.randn(B, n, 128, generator=gen)
        objective = (x_in[top] * g_x).sum()
        mine = source_gradients(model, rep, top, g_x_in=g_x)
    else:  # logits = final @ W_U + b_U: a gradient u on the logits is u @ W_U.T on the final output
        u = torch.randn(B, n, model.cfg.d_vocab, generator=gen)
        objective = (logits * u).sum()
        mine = source_gradients(model, rep, top, g_final=u @ model.W_U.T.detach())
    expected = torch.autograd.grad(objective, deltas, allow_unused=True)
    for g_mine, g_ref in zip(mine, expected):
        ref = torch.zeros_like(g_mine) if g_ref is None else g_ref
        torch.testing.assert_close(g_mine, ref, atol=1e-4 * float(ref.abs().max()) + 1e-6, rtol=1e-3)
    assert mine[0].abs().max() > 0
