"""The training loop's fast paths compute what the plain reference functions compute.

TopK and BatchTopK select with :func:`~course_utils.saes.topk.top_indices` (grouped maxima, then a small
top-k), AuxK selects among the dead columns only, JumpReLU computes its mask and kernel window once for
the activation and the L0 penalty, the Gated SAE adds its biases inside the products and gives b_dec
its encoder gradient as one vector product, and the firing statistics and the parallel-gradient
projection avoid dense temporaries. Each is compared here,
forward and gradients, with the plain formula it replaces (written out in the test where the package
no longer uses it), on inputs that reach the fast path and the fallback.
"""

from __future__ import annotations

import pytest
import torch

from course_utils.saes import SHIPPED, make_sae
from course_utils.saes.base import remove_parallel_component, remove_parallel_component_
from course_utils.saes.batchtopk import batch_topk_activation, batch_topk_select
from course_utils.saes.gated import CentredAffine, gated_encode
from course_utils.saes.jumprelu import JumpReLUFunction, JumpReLUWithL0, StepFunction
from course_utils.saes.topk import auxk_loss, top_indices, topk_activation, topk_select


def _pre(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("shape,k", [((64, 256), 5), ((7, 256), 1), ((3, 5, 128), 4),  # grouped path
                                     ((16, 96), 20), ((16, 100), 3), ((4, 12), 12)])  # torch.topk fallback
def test_top_indices_selects_the_topk_set(shape, k):
    v = _pre(shape, 1)
    got = top_indices(v, k).sort(-1).values
    assert torch.equal(got, v.topk(k, -1).indices.sort(-1).values)


def test_top_indices_on_one_flat_batch_like_batchtopk():
    v = torch.relu(_pre((512 * 256,), 2))
    got = v[top_indices(v, 5 * 512)].sort().values
    assert torch.equal(got, v.topk(5 * 512).values.sort().values)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_topk_select_matches_topk_activation_and_its_gradient(dtype):
    pre_a = _pre((128, 256), 3, dtype).requires_grad_()
    pre_b = pre_a.detach().clone().requires_grad_()
    w = _pre((128, 256), 4, dtype)
    fa, fb = topk_activation(pre_a, 5), topk_select(pre_b, 5)
    assert torch.equal(fa, fb) and fb.dtype == dtype
    (fa * w).sum().backward()
    (fb * w).sum().backward()
    assert torch.equal(pre_a.grad, pre_b.grad)


@pytest.mark.parametrize("shift", [0.0, -2.5])  # -2.5: fewer positives than k·batch
def test_batch_topk_select_matches_batch_topk_activation(shift):
    pre_a = (_pre((256, 256), 5) + shift).requires_grad_()
    pre_b = pre_a.detach().clone().requires_grad_()
    fa = batch_topk_activation(pre_a, 5)
    fb, kept = batch_topk_select(pre_b, 5)
    assert torch.equal(fa, fb)
    assert kept.shape == (5 * 256,) and torch.equal(kept[kept > 0].min(), fa[fa > 0].min())
    w = _pre((256, 256), 6)
    (fa * w).sum().backward()
    (fb * w).sum().backward()
    assert torch.equal(pre_a.grad, pre_b.grad)


def _auxk_masked(pre, residual, W_dec, dead, k_aux):
    """AuxK as first written: mask the living latents with −inf, then a top-k over the whole row."""
    masked = torch.where(dead, pre, torch.full_like(pre, -torch.inf))
    top = masked.topk(min(k_aux, int(dead.sum())), dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    return (acts @ W_dec - residual.detach()).pow(2).sum(-1).mean()


@pytest.mark.parametrize("n_dead,k_aux", [(40, 32), (10, 32), (1, 4)])
def test_auxk_on_dead_columns_matches_the_masked_topk(n_dead, k_aux):
    g = torch.Generator().manual_seed(7)
    dead = torch.zeros(256, dtype=torch.bool)
    dead[torch.randperm(256, generator=g)[:n_dead]] = True
    grads = []
    for fn in (auxk_loss, _auxk_masked):
        pre = _pre((64, 256), 8).requires_grad_()
        W_dec = _pre((256, 32), 9).requires_grad_()
        loss = fn(pre, _pre((64, 32), 10), W_dec, dead, k_aux)
        loss.backward()
        grads.append((loss.detach(), pre.grad, W_dec.grad))
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_jumprelu_with_l0_matches_the_two_functions():
    eps, lam = 0.05, 0.03
    z0 = torch.relu(_pre((128, 64), 11, torch.float64) * 0.1 + 0.03)  # many entries near θ
    th0 = torch.full((64,), 0.05, dtype=torch.float64) + 0.01 * _pre((64,), 12, torch.float64)
    w = _pre((128, 64), 13, torch.float64)
    outs = []
    for fused in (False, True):
        z, th = z0.clone().requires_grad_(), th0.clone().requires_grad_()
        if fused:
            f, active = JumpReLUWithL0.apply(z, th, eps)
        else:
            f, active = JumpReLUFunction.apply(z, th, eps), StepFunction.apply(z, th, eps)
        ((f * w).sum() + lam * active.sum(-1).mean()).backward()
        outs.append((f.detach(), active.detach(), z.grad, th.grad))
    assert (outs[0][3] != 0).sum() > 10  # the window caught entries: θ's pseudo-gradient is exercised
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def test_gated_encoder_matches_gated_encode_and_its_gradients():
    sae = make_sae("gated", 32, 96, seed=0, **SHIPPED["gated"])
    with torch.no_grad():
        for p in (sae.b_dec, sae.b_gate, sae.b_mag, sae.r_mag):
            p.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(14))
    x = _pre((64, 32), 15)
    w = _pre((64, 96), 16)
    params = [sae.W_enc, sae.b_gate, sae.b_mag, sae.r_mag, sae.b_dec]
    f_ref, gate_ref = gated_encode(x, *params)
    g_ref = torch.autograd.grad((f_ref * w).sum() + gate_ref.relu().sum(), params)
    f, gate = sae._encode(x)
    g = torch.autograd.grad((f * w).sum() + gate.relu().sum(), params)
    torch.testing.assert_close(f, f_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gate, gate_ref, rtol=1e-6, atol=1e-6)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_centred_affine_gradients_including_the_input():
    x = _pre((6, 2, 4), 17, torch.float64).requires_grad_()
    b = _pre((4,), 18, torch.float64).requires_grad_()
    W = _pre((4, 5), 19, torch.float64).requires_grad_()
    bias = _pre((5,), 20, torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(CentredAffine.apply, (x, b, W, bias))
    out = CentredAffine.apply(x.detach(), b, W, bias)  # data without a gradient: only b, W, bias get one
    torch.testing.assert_close(out, (x.detach() - b) @ W + bias)
    assert out.shape == (6, 2, 5)


def test_gated_loss_matches_the_plain_formula():
    """The loss with its addmm decodes and the penalty as a vector product, against the paper's terms
    written out (gate path L1 weighted by decoder norms, auxiliary loss through a frozen decoder)."""
    sae = make_sae("gated", 32, 96, seed=0, **SHIPPED["gated"])
    with torch.no_grad():
        sae.b_dec.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(21))
        sae.W_dec.mul_(1.5)  # rows not of unit norm: the weighting by ‖W_dec,i‖ matters
    x = _pre((64, 32), 22)
    parts = sae.loss(x)
    f, pi_gate = gated_encode(x, sae.W_enc, sae.b_gate, sae.b_mag, sae.r_mag, sae.b_dec)
    gate = torch.relu(pi_gate)
    mse = (f @ sae.W_dec + sae.b_dec - x).pow(2).sum(-1).mean()
    sparsity = 0.3 * (gate * sae.W_dec.norm(dim=1)).sum(-1).mean()
    aux = (gate @ sae.W_dec.detach() + sae.b_dec.detach() - x).pow(2).sum(-1).mean()
    for got, want in ((parts.mse, mse), (parts.sparsity, sparsity), (parts.aux, aux)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(parts.total, [sae.W_dec, sae.b_dec, sae.W_enc, sae.r_mag])
    grads_ref = torch.autograd.grad(mse + sparsity + aux, [sae.W_dec, sae.b_dec, sae.W_enc, sae.r_mag])
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_record_firing_matches_the_dense_comparison():
    sae = make_sae("topk", 16, 40, seed=0, k=3)
    acts = torch.relu(_pre((2, 30, 40), 20))
    acts[..., :7] = 0.0  # seven latents silent in this batch
    sae.tokens_since_fired[:] = torch.arange(40)
    expected = torch.arange(40) + 60
    expected[(acts.reshape(-1, 40) > 0).any(0)] = 0
    sae.record_firing(acts)
    assert torch.equal(sae.tokens_since_fired, expected) and (expected[:7] > 0).all()
    sae.record_firing(acts[:, :0])  # an empty batch changes nothing
    assert torch.equal(sae.tokens_since_fired, expected)


def test_in_place_parallel_projection_is_the_out_of_place_one():
    grad, W = _pre((256, 64), 21), _pre((256, 64), 22)
    expected = remove_parallel_component(grad, W)
    out = remove_parallel_component_(grad, W)
    assert out.data_ptr() == grad.data_ptr() and torch.equal(out, expected)
