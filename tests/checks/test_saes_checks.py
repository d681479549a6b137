"""Chapter 4 checks accept the reference and reject plausible wrong answers with the right diagnosis.

Each wrong implementation is labelled with the kind of mistake it stands for (the developers' guide's
list): formula, differentiability, shapes, independence, parameters/boundaries, dtypes, side effects,
randomness.
"""

from __future__ import annotations

import pytest
import torch

from course_utils.checks import CheckFailed
from course_utils.checks import saes as checks
from course_utils.saes import base, batchtopk, gated, jumprelu, matryoshka, metrics, relu, topk, train

REFERENCES = [
    (checks.check_relu_encode, relu.relu_encode),
    (checks.check_sae_loss, checks._sae_loss),
    (checks.check_remove_parallel_component, base.remove_parallel_component),
    (checks.check_topk_activation, topk.topk_activation),
    (checks.check_auxk_loss, topk.auxk_loss),
    (checks.check_batch_topk_activation, batchtopk.batch_topk_activation),
    (checks.check_update_threshold, batchtopk.update_threshold),
    (checks.check_jumprelu_function, jumprelu.JumpReLUFunction),
    (checks.check_step_function, jumprelu.StepFunction),
    (checks.check_gated_encode, lambda **kw: gated.gated_encode(**kw)[0]),
    (checks.check_matryoshka_loss, matryoshka.matryoshka_loss),
    (checks.check_mmcs, metrics.mmcs),
    (checks.check_fvu, metrics.fvu),
    (checks.check_dead_fraction, metrics.dead_fraction),
    (checks.check_resample_dead_latents, train.resample_dead_latents),
]


def test_references_pass(capsys):
    for check, ref in REFERENCES:
        check(ref)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(REFERENCES) and all(ln.startswith("\u2714") for ln in lines)


@pytest.mark.parametrize("check", [c for c, _ in REFERENCES if c not in (checks.check_jumprelu_function,
                                                                          checks.check_step_function)])
def test_stub_passes_through_as_not_implemented(check):
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise 4.1 (stub)")

    with pytest.raises(NotImplementedError, match="Exercise 4.1"):
        check(stub)


def _fn_class(forward, backward):
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z, theta, bandwidth):
            ctx.save_for_backward(z, theta)
            ctx.bandwidth = bandwidth
            return forward(z, theta)

        @staticmethod
        def backward(ctx, grad):
            z, theta = ctx.saved_tensors
            gz, gt = backward(z, theta, ctx.bandwidth, grad)
            return gz, gt, None

    return Wrong


def test_autograd_stub_passes_through():
    stub = _fn_class(lambda z, t: (_ for _ in ()).throw(NotImplementedError("Exercise 4.8 (stub)")), None)
    with pytest.raises(NotImplementedError, match="Exercise 4.8"):
        checks.check_jumprelu_function(stub)
    with pytest.raises(TypeError, match="torch.autograd.Function"):
        checks.check_step_function(lambda z: z)


def _k(u):
    return (u.abs() < 0.5).to(u.dtype)


# ------------------------------------------------------------------------------------------ ReLU


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("formula", lambda x, W_enc, b_enc, b_dec: torch.relu(x @ W_enc + b_enc), "pre-encoder bias is missing"),
    ("formula", lambda x, W_enc, b_enc, b_dec: (x - b_dec) @ W_enc + b_enc, "ReLU is missing"),
    ("differentiability", lambda x, W_enc, b_enc, b_dec: torch.relu((x - b_dec) @ W_enc + b_enc).detach(),
     "does not carry gradients"),
    ("differentiability", lambda x, W_enc, b_enc, b_dec: torch.relu((x - b_dec.detach()) @ W_enc + b_enc),
     "gradient .* 'b_dec'"),
    ("shapes", lambda x, W_enc, b_enc, b_dec: torch.relu((x - b_dec) @ W_enc[:, :10] + b_enc[:10]), "shape"),
    ("dtypes", lambda x, W_enc, b_enc, b_dec: torch.relu((x - b_dec) @ W_enc + b_enc).float(), "dtype"),
    ("side effects", lambda x, W_enc, b_enc, b_dec: torch.relu(x.sub_(b_dec) @ W_enc + b_enc), "in place"),
])
def test_relu_encode_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_relu_encode(wrong)


def _mse(x, x_hat):
    return (x_hat - x).pow(2)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("formula", lambda x, x_hat, f, l1_coefficient: _mse(x, x_hat).mean() + l1_coefficient * f.sum(-1).mean(),
     "averaged the squared error over dimensions"),
    ("formula", lambda x, x_hat, f, l1_coefficient: _mse(x, x_hat).sum(-1).mean() + l1_coefficient * f.pow(2).sum(-1).mean(),
     "L2 penalty"),
    ("independence", lambda x, x_hat, f, l1_coefficient: _mse(x, x_hat).sum() + l1_coefficient * f.sum(),
     "summed over the batch"),
    ("parameters", lambda x, x_hat, f, l1_coefficient: _mse(x, x_hat).sum(-1).mean() + f.sum(-1).mean(),
     "L1 coefficient is missing"),
    ("differentiability", lambda x, x_hat, f, l1_coefficient: _mse(x, x_hat).sum(-1).mean()
     + l1_coefficient * f.detach().sum(-1).mean(), "gradient .* 'f'"),
    ("differentiability", lambda x, x_hat, f, l1_coefficient: torch.tensor(
        (_mse(x, x_hat).sum(-1).mean() + l1_coefficient * f.sum(-1).mean()).item(), dtype=x.dtype),
     "does not carry gradients"),
])
def test_sae_loss_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_sae_loss(wrong)


def _unit(W, dim=-1):
    return W / W.norm(dim=dim, keepdim=True)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("formula", lambda grad, W_dec: grad - (grad * W_dec).sum(-1, keepdim=True) * W_dec, "unnormalised rows"),
    ("formula", lambda grad, W_dec: (grad * _unit(W_dec)).sum(-1, keepdim=True) * _unit(W_dec),
     "returned the parallel component"),
    ("independence", lambda grad, W_dec: grad - (grad * _unit(W_dec)).sum() * _unit(W_dec), "one dot product"),
    ("shapes", lambda grad, W_dec: grad - (grad * _unit(W_dec, 0)).sum(-1, keepdim=True) * _unit(W_dec, 0),
     "columns"),
    ("side effects", lambda grad, W_dec: grad.sub_((grad * _unit(W_dec)).sum(-1, keepdim=True) * _unit(W_dec)),
     "in place"),
])
def test_remove_parallel_component_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_remove_parallel_component(wrong)


# ------------------------------------------------------------------------------------------ TopK


def _topk_rows(pre, k, dim=-1, relu_=True):
    t = pre.topk(k, dim)
    return torch.zeros_like(pre).scatter(dim, t.indices, torch.relu(t.values) if relu_ else t.values)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("formula", lambda pre, k: _topk_rows(pre, k, relu_=False), "ReLU on the kept values is missing"),
    ("independence", lambda pre, k: _topk_rows(pre, k, dim=0), "shape|along the batch"),
    ("parameters (off by one)", lambda pre, k: torch.relu(pre) * (pre > pre.topk(k, -1).values[..., -1:]),
     "k − 1"),
    ("parameters (hard-coded k)", lambda pre, k: _topk_rows(pre, 3), "wrong"),
    ("differentiability", lambda pre, k: _topk_rows(pre, k).detach(), "does not carry gradients"),
    ("dtypes", lambda pre, k: _topk_rows(pre.float(), k), "dtype"),
])
def test_topk_activation_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_topk_activation(wrong)


def _aux(pre, residual, W_dec, dead, k_aux, **kw):
    return checks._auxk_with(pre, residual, W_dec, dead, k_aux, **kw)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("formula", lambda **kw: _aux(**kw, mask_dead=False), "among \\*all\\* latents"),
    ("formula", lambda **kw: _aux(**kw, relu_=False), "ReLU on the auxiliary"),
    ("differentiability", lambda **kw: _aux(**kw, detach=False), "detach it"),
    ("parameters (hard-coded k_aux)", lambda pre, residual, W_dec, dead, k_aux: _aux(pre, residual, W_dec, dead, 2),
     "wrong"),
    ("boundaries (no dead latent)", lambda pre, residual, W_dec, dead, k_aux: _aux(
        pre, residual, W_dec, dead if dead.any() else torch.ones_like(dead), k_aux), "no latent is dead"),
    ("dtypes", lambda **kw: _aux(**kw).float(), "dtype"),
])
def test_auxk_loss_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_auxk_loss(wrong)


# ------------------------------------------------------------------------------------------ BatchTopK


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("independence", lambda pre, k: topk.topk_activation(pre, k), "plain TopK"),
    ("parameters", lambda pre, k: checks._flat_top(pre, k), "only the top k of the whole batch"),
    ("formula", lambda pre, k: checks._flat_top(pre, k * pre.shape[0], relu_=False), "ReLU is missing"),
    ("shapes (hard-coded batch)", lambda pre, k: checks._flat_top(pre, k * 7), "wrong"),
    ("differentiability", lambda pre, k: batchtopk.batch_topk_activation(pre, k).detach(), "does not carry"),
])
def test_batch_topk_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_batch_topk_activation(wrong)


def _ema(threshold, acts, lr):
    return (1 - lr) * threshold + lr * acts[acts > 0].min()


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("formula", lambda threshold, acts, lr: acts.min().reshape(threshold.shape) if threshold < 0
     else (1 - lr) * threshold + lr * acts.min(), "smallest \\*positive\\*"),
    ("formula", lambda threshold, acts, lr: acts[acts > 0].min().reshape(()) if threshold < 0
     else lr * threshold + (1 - lr) * acts[acts > 0].min(), "swapped"),
    ("boundaries (first update)", _ema, "not set yet"),
    ("boundaries (nothing fired)", lambda threshold, acts, lr: _ema(threshold, acts, lr) if threshold >= 0
     else acts[acts > 0].min(), "raised|nothing fired"),
    ("parameters (hard-coded lr)", lambda threshold, acts, lr: batchtopk.update_threshold(threshold, acts, 0.01),
     "wrong"),
    ("side effects", lambda threshold, acts, lr: threshold.mul_(1 - lr).add_(lr * acts[acts > 0].min())
     if threshold >= 0 and (acts > 0).any() else batchtopk.update_threshold(threshold, acts, lr), "in place"),
])
def test_update_threshold_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_update_threshold(wrong)


# ------------------------------------------------------------------------------------------ JumpReLU


def _jump_fwd(z, t):
    return z * (z > t).to(z.dtype)


def _step_fwd(z, t):
    return (z > t).to(z.dtype)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("formula (sign)", _fn_class(_jump_fwd, lambda z, t, e, g: (g * (z > t), ((t / e) * _k((z - t) / e) * g).sum(0))),
     "wrong sign"),
    ("parameters (kernel width)", _fn_class(_jump_fwd, lambda z, t, e, g: (
        g * (z > t), (-(t / e) * ((z - t).abs() < e).to(z.dtype) * g).sum(0))), "too wide"),
    ("formula (jump height)", _fn_class(_jump_fwd, lambda z, t, e, g: (g * (z > t), (-(1 / e) * _k((z - t) / e) * g).sum(0))),
     "θ/ε factor"),
    ("formula (grad z)", _fn_class(_jump_fwd, lambda z, t, e, g: (g, (-(t / e) * _k((z - t) / e) * g).sum(0))),
     "gradient for z"),
    ("shapes (θ grad not summed over the batch)", _fn_class(_jump_fwd, lambda z, t, e, g: (
        g * (z > t), (-(t / e) * _k((z - t) / e) * g).mean(0))), "wrong|every entry"),
    ("formula (forward)", _fn_class(lambda z, t: torch.relu(z - t), lambda z, t, e, g: (
        g * (z > t), (-(t / e) * _k((z - t) / e) * g).sum(0))), "output"),
])
def test_jumprelu_function_rejects(kind, wrong, diagnosis):
    with pytest.raises((CheckFailed, RuntimeError), match=diagnosis):
        checks.check_jumprelu_function(wrong)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("formula (sign)", _fn_class(_step_fwd, lambda z, t, e, g: (torch.zeros_like(z), ((1 / e) * _k((z - t) / e) * g).sum(0))),
     "wrong sign"),
    ("formula (1/ε)", _fn_class(_step_fwd, lambda z, t, e, g: (torch.zeros_like(z), (-_k((z - t) / e) * g).sum(0))),
     "1/ε factor is missing"),
    ("formula (grad z)", _fn_class(_step_fwd, lambda z, t, e, g: (g, (-(1 / e) * _k((z - t) / e) * g).sum(0))),
     "gradient for z"),
    ("parameters (kernel width)", _fn_class(_step_fwd, lambda z, t, e, g: (
        torch.zeros_like(z), (-(1 / e) * ((z - t).abs() < e).to(z.dtype) * g).sum(0))), "too wide"),
])
def test_step_function_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_step_function(wrong)


# ------------------------------------------------------------------------------------------ Gated


def _gated(x, W_enc, b_gate, b_mag, r_mag, b_dec, scale="exp", gate_relu=False, centre=True, detach=False):
    xc = x - b_dec if centre else x
    W_mag = W_enc * {"exp": r_mag.exp(), "lin": r_mag, "none": torch.ones_like(r_mag)}[scale]
    pg = xc @ W_enc + b_gate
    gate = torch.relu(pg) if gate_relu else (pg > 0).to(x.dtype)
    out = gate * torch.relu(xc @ (W_mag.detach() if detach else W_mag) + b_mag)
    return out


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("formula", lambda **kw: _gated(**kw, scale="lin"), "exp\\(r_mag\\)"),
    ("formula", lambda **kw: _gated(**kw, scale="none"), "ignores r_mag"),
    ("formula", lambda **kw: _gated(**kw, gate_relu=True), "the gate is the step"),
    ("formula", lambda **kw: _gated(**kw, centre=False), "pre-encoder bias"),
    ("differentiability", lambda **kw: _gated(**kw, detach=True), "gradient .* 'W_enc'|'r_mag'"),
])
def test_gated_encode_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_gated_encode(wrong)


# ------------------------------------------------------------------------------------------ Matryoshka


def _se(x, xh):
    return (xh - x).pow(2).sum(-1).mean()


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("formula", lambda x, f, W_dec, b_dec, prefixes: _se(x, f @ W_dec + b_dec), "only the full dictionary"),
    ("formula", lambda x, f, W_dec, b_dec, prefixes: sum(_se(x, f[:, :m] @ W_dec[:m]) for m in prefixes), "b_dec too"),
    ("parameters (off by one)", lambda x, f, W_dec, b_dec, prefixes: sum(
        _se(x, f[:, :m - 1] @ W_dec[:m - 1] + b_dec) for m in prefixes), "off by one"),
    ("independence (disjoint groups)", lambda x, f, W_dec, b_dec, prefixes: sum(
        _se(x, f[:, a:m] @ W_dec[a:m] + b_dec) for a, m in zip((0, *prefixes[:-1]), prefixes)), "disjoint"),
    ("parameters (mean)", lambda x, f, W_dec, b_dec, prefixes: sum(
        _se(x, f[:, :m] @ W_dec[:m] + b_dec) for m in prefixes) / len(prefixes), "averaged over prefixes"),
    ("differentiability", lambda x, f, W_dec, b_dec, prefixes: matryoshka.matryoshka_loss(
        x, f, W_dec.detach(), b_dec, prefixes), "gradient .* 'W_dec'"),
])
def test_matryoshka_loss_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_matryoshka_loss(wrong)


# ------------------------------------------------------------------------------------------ metrics


def _cos(W, F):
    return _unit(F) @ _unit(W).T


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("independence (wrong axis)", lambda W_dec, features: _cos(W_dec, features).max(0).values.mean(),
     "averaged over the decoder rows"),
    ("formula", lambda W_dec, features: (features @ W_dec.T).max(1).values.mean(), "not cosines"),
    ("formula", lambda W_dec, features: _cos(W_dec, features).abs().max(1).values.mean(), "\\|cos\\|"),
    ("shapes (hard-coded count)", lambda W_dec, features: _cos(W_dec, features).max(1).values[:5].mean(), "wrong"),
    ("dtypes", lambda W_dec, features: _cos(W_dec, features).max(1).values.mean().float(), "dtype"),
])
def test_mmcs_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_mmcs(wrong)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("formula", lambda x, x_hat: (x - x_hat).pow(2).sum() / x.pow(2).sum(), "no centring"),
    ("independence (wrong axis)", lambda x, x_hat: (x - x_hat).pow(2).sum() / (x - x.mean()).pow(2).sum(),
     "batch mean"),
    ("formula", lambda x, x_hat: 1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum(), "1 − FVU"),
    ("independence", lambda x, x_hat: ((x - x_hat).pow(2).sum(-1) / (x - x.mean(0)).pow(2).sum(-1)).mean(),
     "ratio of sums"),
    ("differentiability", lambda x, x_hat: metrics.fvu(x, x_hat.detach()), "does not carry"),
])
def test_fvu_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_fvu(wrong)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("independence", lambda acts: (acts == 0).double().mean(), "on \\*every\\* example"),
    ("formula", lambda acts: ((acts != 0).sum(0) == 0).double().sum(), "number of dead latents"),
    ("formula", lambda acts: ((acts != 0).sum(0) > 0).double().mean(), "fired \\(alive\\)"),
    ("shapes (wrong axis)", lambda acts: ((acts != 0).sum(1) == 0).double().mean(), "dim=1"),
    ("dtypes (float32 on a float64 case)", lambda acts: ((acts != 0).sum(0) == 0).float().mean(),
     "float32 precision"),
    ("dtypes (integer input)", lambda acts: (acts.abs().sum(0) < 1e-12).double().mean() if acts.is_floating_point()
     else acts.sum() * 0, "wrong|returned"),
])
def test_dead_fraction_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_dead_fraction(wrong)


# ------------------------------------------------------------------------------------------ resampling


def _resample(W_enc, W_dec, b_enc, dead, x, sq_error, generator, **kw):
    W_enc, W_dec, b_enc = W_enc.clone(), W_dec.clone(), b_enc.clone()
    idx = torch.nonzero(dead).flatten()
    w = torch.ones_like(sq_error) if kw.get("uniform") else sq_error
    rows = torch.multinomial(w, idx.numel(), replacement=True, generator=None if kw.get("global_rng") else generator)
    v = x[rows] if kw.get("raw") else x[rows] / x[rows].norm(dim=-1, keepdim=True)
    norm = W_enc.norm(dim=0).mean() if kw.get("all_norm") else W_enc[:, ~dead].norm(dim=0).mean()
    W_dec[idx] = v
    W_enc[:, idx] = v.T * 0.2 * norm
    if not kw.get("keep_bias"):
        b_enc[idx] = 0.0
    return W_enc, W_dec, b_enc


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("randomness (weights)", lambda **kw: _resample(**kw, uniform=True), "uniformly"),
    ("randomness (global RNG)", lambda **kw: _resample(**kw, global_rng=True), "generator|wrong"),
    ("formula", lambda **kw: _resample(**kw, raw=True), "unit-norm"),
    ("formula", lambda **kw: _resample(**kw, all_norm=True), "alive"),
    ("formula", lambda **kw: _resample(**kw, keep_bias=True), "b_enc"),
    ("side effects", lambda W_enc, W_dec, b_enc, **kw: (W_dec.__setitem__(kw["dead"], 0.0),
                                                        _resample(W_enc, W_dec, b_enc, **kw))[1], "in place"),
])
def test_resample_rejects(kind, wrong, diagnosis):
    torch.manual_seed(123)
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_resample_dead_latents(wrong)
