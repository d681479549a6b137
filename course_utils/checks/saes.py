"""Checks for chapter 4 (sparse autoencoders): forward passes, losses, activations, thresholds,
pseudo-gradients, metrics and resampling.

Every check compares the learner's function with the reference in :mod:`course_utils.saes` on seeded
random inputs of several shapes (batch 1, d_in ≠ d_sae, other k), in float32 and float64 (and on the
GPU when present), checks gradients where training needs them, and matches a wrong answer against a
catalogue of plausible mistakes to name it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from course_utils.checks._core import Case, CheckFailed, Mistake, check_function, dtypes_and_devices, passed
from course_utils.saes import batchtopk, gated, jumprelu, matryoshka, metrics, relu, topk, train
from course_utils.saes.base import remove_parallel_component

SHAPES = ((7, 6, 10), (1, 5, 12), (9, 8, 8))  # (batch, d_in, d_sae): batch 1, non-square, square


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rand(shape: Sequence[int], g: torch.Generator, dt: torch.dtype, dev: torch.device, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(tuple(shape), generator=g, dtype=torch.float64) * scale).to(dt).to(dev)


def _params(seed: int, B: int, d: int, m: int, dt: torch.dtype, dev: torch.device) -> dict[str, torch.Tensor]:
    g = _g(seed)
    return dict(x=_rand((B, d), g, dt, dev), W_enc=_rand((d, m), g, dt, dev, 0.5), b_enc=_rand((m,), g, dt, dev, 0.3),
                W_dec=_rand((m, d), g, dt, dev, 0.5), b_dec=_rand((d,), g, dt, dev, 0.3))


# ---------------------------------------------------------------------------------------------- ReLU


def check_relu_encode(fn: Callable[..., torch.Tensor]) -> None:
    """f = ReLU((x − b_dec) @ W_enc + b_enc)."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (B, d, m) in enumerate(SHAPES):
            p = _params(10 * k + j, B, d, m, dt, dev)
            cases.append(Case(dict(x=p["x"], W_enc=p["W_enc"], b_enc=p["b_enc"], b_dec=p["b_dec"])))
    mistakes = [
        Mistake("the pre-encoder bias is missing: subtract b_dec from x before encoding",
                lambda x, W_enc, b_enc, b_dec: torch.relu(x @ W_enc + b_enc)),
        Mistake("you added b_dec to x; the pre-encoder bias is subtracted: (x − b_dec) @ W_enc",
                lambda x, W_enc, b_enc, b_dec: torch.relu((x + b_dec) @ W_enc + b_enc)),
        Mistake("the ReLU is missing", lambda x, W_enc, b_enc, b_dec: (x - b_dec) @ W_enc + b_enc),
        Mistake("b_enc is added after the ReLU; add it before", lambda x, W_enc, b_enc, b_dec: torch.relu((x - b_dec) @ W_enc) + b_enc),
    ]
    n = check_function("relu_encode", fn, relu.relu_encode, cases, mistakes, grad=("W_enc", "b_enc", "b_dec"))
    passed("relu_encode", f"{n} random cases, gradients included")


def _sae_loss(x: torch.Tensor, x_hat: torch.Tensor, f: torch.Tensor, l1_coefficient: float) -> torch.Tensor:
    return (x_hat - x).pow(2).sum(-1).mean() + l1_coefficient * f.abs().sum(-1).mean()


def check_sae_loss(fn: Callable[..., torch.Tensor]) -> None:
    """‖x − x̂‖² summed over dimensions + λ Σ_i f_i, both averaged over the batch."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (B, d, m) in enumerate(SHAPES):
            g = _g(100 + 10 * k + j)
            for lam in (0.3, 0.0) if j == 0 else (0.05,):
                cases.append(Case(dict(x=_rand((B, d), g, dt, dev), x_hat=_rand((B, d), g, dt, dev),
                                       f=_rand((B, m), g, dt, dev).abs(), l1_coefficient=lam)))
    mse = lambda x, x_hat: (x_hat - x).pow(2)  # noqa: E731
    mistakes = [
        Mistake("you averaged the squared error over dimensions (F.mse_loss); sum it over d_in and average "
                "over the batch, as SAELens does", lambda x, x_hat, f, l1_coefficient: mse(x, x_hat).mean()
                + l1_coefficient * f.sum(-1).mean()),
        Mistake("you summed over the batch; average both terms over the batch",
                lambda x, x_hat, f, l1_coefficient: mse(x, x_hat).sum() + l1_coefficient * f.sum()),
        Mistake("the L1 penalty is averaged over latents; sum it over latents (Σ_i f_i) and average over "
                "the batch", lambda x, x_hat, f, l1_coefficient: mse(x, x_hat).sum(-1).mean()
                + l1_coefficient * f.mean()),
        Mistake("the L1 coefficient is missing or misapplied (λ multiplies the penalty only)",
                lambda x, x_hat, f, l1_coefficient: mse(x, x_hat).sum(-1).mean() + f.sum(-1).mean()),
        Mistake("you penalised Σ f_i² (an L2 penalty); the sparsity penalty is the L1 norm Σ |f_i|",
                lambda x, x_hat, f, l1_coefficient: mse(x, x_hat).sum(-1).mean()
                + l1_coefficient * f.pow(2).sum(-1).mean()),
    ]
    n = check_function("sae_loss", fn, _sae_loss, cases, mistakes, grad=("x_hat", "f"))
    passed("sae_loss", f"{n} random cases incl. λ = 0, gradients included")


# ---------------------------------------------------------------------------------------------- decoder


def check_remove_parallel_component(fn: Callable[..., torch.Tensor]) -> None:
    """grad − (grad·Ŵ_i)Ŵ_i for each decoder row i (W need not be unit-norm)."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (_, d, m) in enumerate(SHAPES):
            g = _g(200 + 10 * k + j)
            cases.append(Case(dict(grad=_rand((m, d), g, dt, dev), W_dec=_rand((m, d), g, dt, dev, 2.0))))

    def unit(W: torch.Tensor) -> torch.Tensor:
        return W / W.norm(dim=-1, keepdim=True)

    mistakes = [
        Mistake("you projected with the unnormalised rows: use Ŵ_i = W_i/‖W_i‖ (the rows are not unit "
                "norm right after an optimiser step)",
                lambda grad, W_dec: grad - (grad * W_dec).sum(-1, keepdim=True) * W_dec),
        Mistake("you returned the parallel component; return the gradient minus it",
                lambda grad, W_dec: (grad * unit(W_dec)).sum(-1, keepdim=True) * unit(W_dec)),
        Mistake("you normalised the columns (dim=0); each latent's direction is a row W_dec[i]",
                lambda grad, W_dec: grad - (grad * (W_dec / W_dec.norm(dim=0, keepdim=True))).sum(-1, keepdim=True)
                * (W_dec / W_dec.norm(dim=0, keepdim=True))),
        Mistake("you used one dot product for all rows (a sum over the whole matrix); each row gets its own "
                "(grad_i · Ŵ_i)", lambda grad, W_dec: grad - (grad * unit(W_dec)).sum() * unit(W_dec)),
    ]
    n = check_function("remove_parallel_component", fn, remove_parallel_component, cases, mistakes)
    passed("remove_parallel_component", f"{n} random cases")


# ---------------------------------------------------------------------------------------------- TopK


def _pre_cases(seed: int, ks: Sequence[int]) -> list[Case]:
    cases = []
    for k_, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (B, _, m) in enumerate(SHAPES):
            g = _g(seed + 10 * k_ + j)
            pre = _rand((B, m), g, dt, dev)
            for k in ks:
                cases.append(Case(dict(pre=pre, k=min(k, m))))
    return cases


def check_topk_activation(fn: Callable[..., torch.Tensor]) -> None:
    """Keep each row's k largest pre-activations (ReLU'd), zeros elsewhere."""
    cases = _pre_cases(300, (3, 1, 12))
    mistakes = [
        Mistake("the ReLU on the kept values is missing: a negative pre-activation among the top k must "
                "become 0", lambda pre, k: torch.zeros_like(pre).scatter(-1, pre.topk(k, -1).indices, pre.topk(k, -1).values)),
        Mistake("you took the top k by absolute value; TopK keeps the k largest pre-activations",
                lambda pre, k: torch.zeros_like(pre).scatter(-1, pre.abs().topk(k, -1).indices,
                                                             torch.relu(pre.gather(-1, pre.abs().topk(k, -1).indices)))),
        Mistake("you took the top k along the batch (dim=0); select within each example (dim=-1)",
                lambda pre, k: torch.zeros_like(pre).scatter(0, pre.topk(k, 0).indices, torch.relu(pre.topk(k, 0).values))),
        Mistake("off by one: comparing with > the k-th largest value keeps only k − 1 latents",
                lambda pre, k: torch.relu(pre) * (pre > pre.topk(k, -1).values[..., -1:])),
    ]
    n = check_function("topk_activation", fn, topk.topk_activation, cases, mistakes, grad=("pre",))
    passed("topk_activation", f"{n} random cases incl. k = 1 and k = d_sae")


def _auxk_cases() -> list[Case]:
    cases = []
    for k_, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (B, d, m) in enumerate(SHAPES):
            g = _g(400 + 10 * k_ + j)
            dead = torch.rand(m, generator=g) < 0.5
            dead[0], dead[1] = True, False
            for k_aux in (2, m):
                cases.append(Case(dict(pre=_rand((B, m), g, dt, dev), residual=_rand((B, d), g, dt, dev),
                                       W_dec=_rand((m, d), g, dt, dev, 0.5), dead=dead.to(dev), k_aux=k_aux)))
    return cases


def _auxk_none_dead() -> list[Case]:
    cases = []
    for dt, dev in dtypes_and_devices():
        g = _g(499)
        cases.append(Case(dict(pre=_rand((4, 6), g, dt, dev), residual=_rand((4, 5), g, dt, dev),
                               W_dec=_rand((6, 5), g, dt, dev), dead=torch.zeros(6, dtype=torch.bool, device=dev),
                               k_aux=3), label="no latent is dead: the loss is 0"))
    return cases


def _auxk_with(pre: torch.Tensor, residual: torch.Tensor, W_dec: torch.Tensor, dead: torch.Tensor, k_aux: int,
               mask_dead: bool = True, detach: bool = True, relu_: bool = True) -> torch.Tensor:
    n_dead = int(dead.sum()) if mask_dead else pre.shape[-1]
    if n_dead == 0:
        return pre.new_zeros(())
    masked = torch.where(dead, pre, torch.full_like(pre, -torch.inf)) if mask_dead else pre
    top = masked.topk(min(k_aux, n_dead), dim=-1)
    vals = torch.relu(top.values) if relu_ else top.values
    acts = torch.zeros_like(pre).scatter(-1, top.indices, vals)
    r = residual.detach() if detach else residual
    return (acts @ W_dec - r).pow(2).sum(-1).mean()


def _check_residual_detached(fn: Callable[..., torch.Tensor]) -> None:
    """The residual is a target: AuxK must not push the main reconstruction towards the dead latents."""
    kw = dict(_auxk_cases()[0].kwargs)
    residual = kw["residual"].clone().requires_grad_(True)
    out = fn(**{**kw, "residual": residual})
    if isinstance(out, torch.Tensor) and out.requires_grad:
        out.backward()
        if residual.grad is not None and residual.grad.abs().sum() > 0:
            raise CheckFailed("auxk_loss sends gradient into the residual: detach it (residual.detach()), so "
                              "that the auxiliary loss trains only the dead latents, not the main reconstruction")


def check_auxk_loss(fn: Callable[..., torch.Tensor]) -> None:
    """‖e − ê‖², ê = TopK_aux(pre on dead latents) @ W_dec, e the detached residual; 0 when none is dead."""
    mistakes = [
        Mistake("you chose the top k_aux among *all* latents; AuxK uses the dead latents only (mask the "
                "alive ones with −inf before topk)", lambda **kw: _auxk_with(**kw, mask_dead=False)),
        Mistake("the ReLU on the auxiliary activations is missing",
                lambda **kw: _auxk_with(**kw, relu_=False)),
        Mistake("you reconstructed x instead of the residual? ê must approximate e = x − x̂ (the residual "
                "argument)", lambda pre, residual, W_dec, dead, k_aux: _auxk_with(pre, residual * 0, W_dec, dead, k_aux)),
        Mistake("you averaged the squared error over dimensions; sum over d_in, average over the batch",
                lambda **kw: _auxk_with(**kw) / kw["residual"].shape[-1]),
    ]
    n = check_function("auxk_loss", fn, topk.auxk_loss, _auxk_cases(), mistakes, grad=("pre", "W_dec", "residual"))
    n += check_function("auxk_loss", fn, topk.auxk_loss, _auxk_none_dead(), mistakes)
    _check_residual_detached(fn)
    passed("auxk_loss", f"{n} random cases incl. no dead latents, gradients included (none into the residual)")


# ---------------------------------------------------------------------------------------------- BatchTopK


def check_batch_topk_activation(fn: Callable[..., torch.Tensor]) -> None:
    """Keep the k·batch largest ReLU'd pre-activations of the whole batch."""
    cases = _pre_cases(500, (2, 1))
    for c in _pre_cases(550, (4,))[:3]:  # mostly negative pre-activations: fewer than k·batch positives
        cases.append(Case(dict(pre=c.kwargs["pre"] - 1.5, k=c.kwargs["k"]), label="few positive pre-activations"))

    def per_row(pre: torch.Tensor, k: int) -> torch.Tensor:
        return topk.topk_activation(pre, k)

    mistakes = [
        Mistake("you kept the top k of each example (plain TopK); BatchTopK keeps the top k·batch over the "
                "whole batch, so examples get different numbers of latents", per_row),
        Mistake("you kept only the top k of the whole batch; keep k × batch_size entries",
                lambda pre, k: _flat_top(pre, k)),
        Mistake("the ReLU is missing: negative pre-activations must never be kept",
                lambda pre, k: _flat_top(pre, k * pre.shape[0], relu_=False)),
    ]
    n = check_function("batch_topk_activation", fn, batchtopk.batch_topk_activation, cases, mistakes, grad=("pre",))
    passed("batch_topk_activation", f"{n} random cases incl. batch 1 and k = 1")


def _flat_top(pre: torch.Tensor, n: int, relu_: bool = True) -> torch.Tensor:
    flat = (torch.relu(pre) if relu_ else pre).flatten()
    top = flat.topk(min(n, flat.numel()))
    return torch.zeros_like(flat).scatter(0, top.indices, top.values).reshape(pre.shape)


def check_update_threshold(fn: Callable[..., torch.Tensor]) -> None:
    """θ ← (1 − lr)θ + lr·min(acts > 0); a negative θ is replaced by that minimum; no firing: unchanged."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _g(600 + k)
        acts = torch.relu(_rand((6, 9), g, dt, dev))
        for theta, lr in ((0.2, 0.01), (0.05, 0.5), (-1.0, 0.01), (0.3, 1.0)):
            cases.append(Case(dict(threshold=torch.tensor(theta, dtype=dt, device=dev), acts=acts, lr=lr)))
        cases.append(Case(dict(threshold=torch.tensor(0.2, dtype=dt, device=dev), acts=torch.zeros(4, 5, dtype=dt, device=dev),
                               lr=0.1), label="nothing fired: the threshold stays"))

    def smallest_all(threshold: torch.Tensor, acts: torch.Tensor, lr: float) -> torch.Tensor:
        m = acts.min()
        return m.reshape(threshold.shape) if threshold < 0 else (1 - lr) * threshold + lr * m

    def swapped(threshold: torch.Tensor, acts: torch.Tensor, lr: float) -> torch.Tensor:
        m = acts[acts > 0].min()
        return m.reshape(threshold.shape) if threshold < 0 else lr * threshold + (1 - lr) * m

    def no_init(threshold: torch.Tensor, acts: torch.Tensor, lr: float) -> torch.Tensor:
        return (1 - lr) * threshold + lr * acts[acts > 0].min()

    mistakes = [
        Mistake("you took the minimum over all activations (0 for any latent that did not fire); take the "
                "smallest *positive* activation", smallest_all),
        Mistake("the EMA weights are swapped: θ ← (1 − lr)·θ + lr·min", swapped),
        Mistake("a negative threshold means 'not set yet': replace it by the minimum instead of averaging "
                "with it", no_init),
    ]
    n = check_function("update_threshold", fn, batchtopk.update_threshold, cases, mistakes)
    passed("update_threshold", f"{n} cases incl. the first update and a batch where nothing fired")


# ---------------------------------------------------------------------------------------------- JumpReLU


def _run_autograd(fn_cls: Any, z: torch.Tensor, theta: torch.Tensor, bandwidth: float, grad: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z = z.clone().requires_grad_(True)
    theta = theta.clone().requires_grad_(True)
    out = fn_cls.apply(z, theta, bandwidth)
    out.backward(grad)
    gz = z.grad if z.grad is not None else torch.zeros_like(z)
    gt = theta.grad if theta.grad is not None else torch.zeros_like(theta)
    return out.detach(), gz, gt


def _jump_cases() -> list[Case]:
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (B, _, m) in enumerate(SHAPES):
            g = _g(700 + 10 * k + j)
            theta = (torch.rand(m, generator=g, dtype=torch.float64) * 0.4 + 0.1).to(dt).to(dev)
            z = (theta + (torch.rand((B, m), generator=g, dtype=torch.float64).to(dt).to(dev) - 0.5) * 0.3)
            for eps in (0.1, 0.05):
                cases.append(Case(dict(z=z, theta=theta, bandwidth=eps, grad=_rand((B, m), g, dt, dev))))
    return cases


def _pseudo(z: torch.Tensor, theta: torch.Tensor, eps: float, grad: torch.Tensor, jump: bool, scale: str = "ok",
            width: float = 0.5, sign: float = -1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    on = (z > theta).to(z.dtype)
    kern = ((z - theta) / eps).abs() < width
    factor = {"ok": (theta / eps) if jump else 1.0 / eps, "no_theta": 1.0 / eps, "no_eps": theta if jump else 1.0}[scale]
    gt = (sign * factor * kern.to(z.dtype) * grad).sum(0)
    out = z * on if jump else on
    gz = grad * on if jump else torch.zeros_like(z)
    return out, gz, gt


def check_jumprelu_function(fn_cls: Any) -> None:
    """JumpReLU_θ(z) = z·H(z − θ): ∂/∂z = H(z − θ)·g, ∂/∂θ = Σ_batch −(θ/ε)K((z − θ)/ε)·g."""
    _check_autograd("JumpReLUFunction", fn_cls, True, "−(θ/ε)·K((z − θ)/ε)")


def check_step_function(fn_cls: Any) -> None:
    """H(z − θ): ∂/∂z = 0, ∂/∂θ = Σ_batch −(1/ε)K((z − θ)/ε)·g."""
    _check_autograd("StepFunction", fn_cls, False, "−(1/ε)·K((z − θ)/ε)")


def _check_autograd(name: str, fn_cls: Any, jump: bool, formula: str) -> None:
    if not (isinstance(fn_cls, type) and issubclass(fn_cls, torch.autograd.Function)):
        raise TypeError(f"pass your {name} class itself (a torch.autograd.Function subclass), got {type(fn_cls).__name__}")
    ref = jumprelu.JumpReLUFunction if jump else jumprelu.StepFunction

    def learner(z: torch.Tensor, theta: torch.Tensor, bandwidth: float, grad: torch.Tensor) -> Any:
        return _run_autograd(fn_cls, z, theta, bandwidth, grad)

    def reference(z: torch.Tensor, theta: torch.Tensor, bandwidth: float, grad: torch.Tensor) -> Any:
        return _run_autograd(ref, z, theta, bandwidth, grad)

    mistakes = [
        Mistake(f"the pseudo-gradient for θ has the wrong sign: it is {formula}·g (raising θ switches latents off)",
                lambda z, theta, bandwidth, grad: _pseudo(z, theta, bandwidth, grad, jump, sign=1.0)),
        Mistake("the rectangle kernel is too wide: K(u) = 1 for |u| < 1/2, i.e. |z − θ| < ε/2",
                lambda z, theta, bandwidth, grad: _pseudo(z, theta, bandwidth, grad, jump, width=1.0)),
        Mistake(f"the 1/ε factor is missing: ∂/∂θ = {formula}·g",
                lambda z, theta, bandwidth, grad: _pseudo(z, theta, bandwidth, grad, jump, scale="no_eps")),
    ]
    if jump:
        mistakes.append(Mistake("the θ/ε factor is wrong: the jump's pseudo-gradient is −(θ/ε)·K(...)·g (the "
                                "jump has height θ); −(1/ε)·K is the step's",
                                lambda z, theta, bandwidth, grad: _pseudo(z, theta, bandwidth, grad, jump, scale="no_theta")))
    mistakes.append(Mistake("the gradient for z is wrong: the jump passes g where z > θ (0 elsewhere); the step "
                            "gives z no gradient",
                            lambda z, theta, bandwidth, grad: (_pseudo(z, theta, bandwidth, grad, jump)[0], grad,
                                                               _pseudo(z, theta, bandwidth, grad, jump)[2])))
    n = check_function(name, learner, reference, _jump_cases(), mistakes, names=("output", "grad_z", "grad_theta"))
    passed(name, f"{n} random cases: forward and both pseudo-gradients")


# ---------------------------------------------------------------------------------------------- Gated


def check_gated_encode(fn: Callable[..., torch.Tensor]) -> None:
    """f = 1[π_gate > 0] ⊙ ReLU(π_mag), sharing W_enc (magnitude path: W_enc ⊙ exp(r_mag)); returns f."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (B, d, m) in enumerate(SHAPES):
            p = _params(800 + 10 * k + j, B, d, m, dt, dev)
            g = _g(850 + 10 * k + j)
            cases.append(Case(dict(x=p["x"], W_enc=p["W_enc"], b_gate=_rand((m,), g, dt, dev, 0.3),
                                   b_mag=_rand((m,), g, dt, dev, 0.3), r_mag=_rand((m,), g, dt, dev, 0.3),
                                   b_dec=p["b_dec"])))

    def ref(**kw: torch.Tensor) -> torch.Tensor:
        return gated.gated_encode(**kw)[0]

    def variant(x, W_enc, b_gate, b_mag, r_mag, b_dec, mag_scale: str = "exp", gate_relu: bool = False,
                centre: bool = True) -> torch.Tensor:
        xc = x - b_dec if centre else x
        pg = xc @ W_enc + b_gate
        W_mag = W_enc * {"exp": r_mag.exp(), "lin": r_mag, "none": torch.ones_like(r_mag)}[mag_scale]
        pm = xc @ W_mag + b_mag
        gate = torch.relu(pg) if gate_relu else (pg > 0).to(x.dtype)
        return gate * torch.relu(pm)

    mistakes = [
        Mistake("the magnitude path scales W_enc by r_mag; it scales by exp(r_mag) (so r_mag = 0 means "
                "equal weights)", lambda **kw: variant(**kw, mag_scale="lin")),
        Mistake("the magnitude path ignores r_mag: use W_enc ⊙ exp(r_mag)", lambda **kw: variant(**kw, mag_scale="none")),
        Mistake("you multiplied by ReLU(π_gate); the gate is the step 1[π_gate > 0]",
                lambda **kw: variant(**kw, gate_relu=True)),
        Mistake("the pre-encoder bias is missing: both paths read x − b_dec", lambda **kw: variant(**kw, centre=False)),
    ]
    n = check_function("gated_encode", fn, ref, cases, mistakes, grad=("W_enc", "b_mag", "r_mag"))
    passed("gated_encode", f"{n} random cases, gradients included")


# ---------------------------------------------------------------------------------------------- Matryoshka


def check_matryoshka_loss(fn: Callable[..., torch.Tensor]) -> None:
    """Σ_j ‖x − (f[:, :m_j] @ W_dec[:m_j] + b_dec)‖² over the prefixes m_j (the last one = d_sae)."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (B, d, m) in enumerate(SHAPES):
            g = _g(900 + 10 * k + j)
            for prefixes in ((2, m // 2, m), (m,)):
                cases.append(Case(dict(x=_rand((B, d), g, dt, dev), f=torch.relu(_rand((B, m), g, dt, dev)),
                                       W_dec=_rand((m, d), g, dt, dev, 0.5), b_dec=_rand((d,), g, dt, dev, 0.3),
                                       prefixes=prefixes)))

    def se(x: torch.Tensor, xh: torch.Tensor) -> torch.Tensor:
        return (xh - x).pow(2).sum(-1).mean()

    mistakes = [
        Mistake("you used only the full dictionary; sum the loss of every prefix",
                lambda x, f, W_dec, b_dec, prefixes: se(x, f @ W_dec + b_dec)),
        Mistake("each prefix's reconstruction needs b_dec too: f[:, :m] @ W_dec[:m] + b_dec",
                lambda x, f, W_dec, b_dec, prefixes: sum(se(x, f[:, :m] @ W_dec[:m]) for m in prefixes)),
        Mistake("you averaged over prefixes; the Matryoshka loss sums them",
                lambda x, f, W_dec, b_dec, prefixes: sum(se(x, f[:, :m] @ W_dec[:m] + b_dec) for m in prefixes) / len(prefixes)),
        Mistake("off by one: prefix m means latents 0 … m−1, f[:, :m]",
                lambda x, f, W_dec, b_dec, prefixes: sum(se(x, f[:, :m - 1] @ W_dec[:m - 1] + b_dec) for m in prefixes)),
        Mistake("you used disjoint groups (latents m_{j−1} … m_j) instead of nested prefixes 0 … m_j",
                lambda x, f, W_dec, b_dec, prefixes: sum(se(x, f[:, a:m] @ W_dec[a:m] + b_dec)
                                                         for a, m in zip((0, *prefixes[:-1]), prefixes))),
    ]
    n = check_function("matryoshka_loss", fn, matryoshka.matryoshka_loss, cases, mistakes, grad=("f", "W_dec", "b_dec"))
    passed("matryoshka_loss", f"{n} random cases incl. a single prefix, gradients included")


# ---------------------------------------------------------------------------------------------- metrics


def check_mmcs(fn: Callable[..., torch.Tensor]) -> None:
    """Mean over true features of the max over decoder rows of the cosine similarity."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (m, n, d) in enumerate(((12, 5, 6), (3, 7, 4), (1, 1, 3))):
            g = _g(1000 + 10 * k + j)
            cases.append(Case(dict(W_dec=_rand((m, d), g, dt, dev, 2.0), features=_rand((n, d), g, dt, dev, 0.5))))

    def cos(W: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
        return (F / F.norm(dim=1, keepdim=True)) @ (W / W.norm(dim=1, keepdim=True)).T  # [n, m]

    mistakes = [
        Mistake("you averaged over the decoder rows (max over true features); MMCS asks, for each *true* "
                "feature, for its best decoder row", lambda W_dec, features: cos(W_dec, features).max(0).values.mean()),
        Mistake("you used dot products, not cosines: normalise both sets of vectors",
                lambda W_dec, features: (features @ W_dec.T).max(1).values.mean()),
        Mistake("you took |cos|; a decoder row pointing the opposite way does not recover a feature "
                "(activations are non-negative)", lambda W_dec, features: cos(W_dec, features).abs().max(1).values.mean()),
        Mistake("you averaged the cosines instead of taking the max over decoder rows",
                lambda W_dec, features: cos(W_dec, features).mean()),
    ]
    n = check_function("mmcs", fn, metrics.mmcs, cases, mistakes, grad=("W_dec",))
    passed("mmcs", f"{n} random cases incl. fewer decoder rows than features")


def check_fvu(fn: Callable[..., torch.Tensor]) -> None:
    """Σ‖x − x̂‖² / Σ‖x − x̄‖² with x̄ the batch mean per dimension."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (B, d) in enumerate(((8, 5), (2, 7), (30, 3))):
            g = _g(1100 + 10 * k + j)
            x = _rand((B, d), g, dt, dev) + 3.0
            cases.append(Case(dict(x=x, x_hat=x + _rand((B, d), g, dt, dev, 0.4))))
    mistakes = [
        Mistake("you divided by Σ‖x‖² (no centring); the variance is around the batch mean x̄",
                lambda x, x_hat: (x - x_hat).pow(2).sum() / x.pow(2).sum()),
        Mistake("you centred with the mean over dimensions (dim=1 or the global mean); use the batch mean "
                "of each dimension, x.mean(0)", lambda x, x_hat: (x - x_hat).pow(2).sum() / (x - x.mean()).pow(2).sum()),
        Mistake("you returned the explained fraction 1 − FVU",
                lambda x, x_hat: 1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()),
        Mistake("you averaged per-example ratios; FVU is a ratio of sums over the batch",
                lambda x, x_hat: ((x - x_hat).pow(2).sum(-1) / (x - x.mean(0)).pow(2).sum(-1)).mean()),
    ]
    n = check_function("fvu", fn, metrics.fvu, cases, mistakes, grad=("x_hat",))
    passed("fvu", f"{n} random cases incl. batch 2")


def check_dead_fraction(fn: Callable[..., torch.Tensor]) -> None:
    """Fraction of latents that are zero on every example of acts: [batch, d_sae]."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (B, m) in enumerate(((20, 10), (1, 6), (5, 9))):
            g = _g(1200 + 10 * k + j)
            acts = torch.relu(_rand((B, m), g, dt, dev) - 0.8)
            acts[:, 0] = 0.0
            acts[0, 1] = 0.5
            cases.append(Case(dict(acts=acts)))
        cases.append(Case(dict(acts=torch.tensor([[0, 2, 0], [0, 0, 0]], device=dev)), label="integer counts"))

    mistakes = [
        Mistake("you counted dead latents per example and averaged (the fraction of zero entries); a latent "
                "is dead only if it is zero on *every* example", lambda acts: (acts == 0).double().mean()),
        Mistake("you returned the number of dead latents; return the fraction",
                lambda acts: ((acts != 0).sum(0) == 0).double().sum()),
        Mistake("you returned the fraction of latents that fired (alive)",
                lambda acts: ((acts != 0).sum(0) > 0).double().mean()),
        Mistake("you reduced over the latents (dim=1); a latent's activations are a column acts[:, i]",
                lambda acts: ((acts != 0).sum(1) == 0).double().mean()),
    ]

    def ref(acts: torch.Tensor) -> torch.Tensor:
        return metrics.dead_fraction(acts.double() if not acts.is_floating_point() else acts).to(torch.float64)

    def learner(acts: torch.Tensor) -> Any:
        out = fn(acts=acts)
        return out.to(torch.float64) if isinstance(out, torch.Tensor) else out

    n = check_function("dead_fraction", learner, ref, cases, mistakes)
    passed("dead_fraction", f"{n} cases incl. batch 1 and integer activations")


# ---------------------------------------------------------------------------------------------- resampling


def check_resample_dead_latents(fn: Callable[..., Any]) -> None:
    """Bricken et al.'s resampling, drawing inputs with torch.multinomial(sq_error, n_dead,
    replacement=True, generator=generator); returns new (W_enc, W_dec, b_enc), inputs untouched."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for j, (B, d, m) in enumerate(SHAPES):
            p = _params(1300 + 10 * k + j, B, d, m, dt, dev)
            g = _g(1350 + 10 * k + j)
            dead = torch.rand(m, generator=g) < 0.4
            dead[1], dead[2] = True, False
            err = (torch.rand(B, generator=g, dtype=torch.float64) + 0.1).to(dt).to(dev)
            cases.append(Case(dict(W_enc=p["W_enc"], W_dec=p["W_dec"], b_enc=p["b_enc"], dead=dead.to(dev),
                                   x=p["x"], sq_error=err, seed=7 + j)))

    def ref(seed: int, **kw: Any) -> Any:
        return train.resample_dead_latents(**kw, generator=_g(seed))

    def learner(seed: int, **kw: Any) -> Any:
        return fn(**kw, generator=_g(seed))

    def variant(W_enc, W_dec, b_enc, dead, x, sq_error, seed, scale_alive=True, unit=True, uniform=False,
                enc_dir=True, use_gen=True):
        W_enc, W_dec, b_enc = W_enc.clone(), W_dec.clone(), b_enc.clone()
        idx = torch.nonzero(dead).flatten()
        w = torch.ones_like(sq_error) if uniform else sq_error
        if use_gen:
            rows = torch.multinomial(w, idx.numel(), replacement=True, generator=_g(seed))
        else:
            rows = torch.multinomial(w, idx.numel(), replacement=True, generator=_g(seed + 1))
        v = x[rows] / x[rows].norm(dim=-1, keepdim=True) if unit else x[rows]
        norm = W_enc[:, ~dead].norm(dim=0).mean() if scale_alive else W_enc.norm(dim=0).mean()
        W_dec[idx] = v
        W_enc[:, idx] = (v.T * 0.2 * norm) if enc_dir else 0.0
        b_enc[idx] = 0.0
        return W_enc, W_dec, b_enc

    mistakes = [
        Mistake("you drew the inputs uniformly; draw them with probability ∝ the squared error (sq_error)",
                lambda **kw: variant(**kw, uniform=True)),
        Mistake("the new decoder rows are not unit-norm: use the input's direction x/‖x‖",
                lambda **kw: variant(**kw, unit=False)),
        Mistake("the encoder column should be the same direction scaled to 0.2 × the mean encoder norm of the "
                "*alive* latents (not of all latents)", lambda **kw: variant(**kw, scale_alive=False)),
        Mistake("the dead latent's encoder bias must be reset to 0",
                lambda **kw: tuple(o if i != 2 else kw["b_enc"] for i, o in enumerate(variant(**kw)))),
        Mistake("the draw ignores the generator you were given (or uses the global RNG): pass "
                "generator=generator to torch.multinomial", lambda **kw: variant(**kw, use_gen=False)),
    ]
    n = check_function("resample_dead_latents", learner, ref, cases, mistakes, names=("W_enc", "W_dec", "b_enc"))
    passed("resample_dead_latents", f"{n} random cases, seeded draws compared exactly")


__all__ = [
    "CheckFailed", "check_auxk_loss", "check_batch_topk_activation", "check_dead_fraction", "check_fvu",
    "check_gated_encode", "check_jumprelu_function", "check_matryoshka_loss", "check_mmcs", "check_relu_encode",
    "check_remove_parallel_component", "check_resample_dead_latents", "check_sae_loss", "check_step_function",
    "check_topk_activation", "check_update_threshold",
]
