"""Checks for chapter 6 (parameter decomposition): the rank-one layer, causal importance with the
leaky hard sigmoids, stochastic masks, the faithfulness, stochastic-reconstruction and
importance-minimality losses, and MMCS / ML2R.

Every check compares the learner's function with the reference on seeded inputs in float32 and
float64 (float64 at float64 tolerances), with batch 1, non-square matrices and several C, checks that
gradients reach the inputs training needs, and names known mistakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from course_utils.checks._core import (
    Case,
    CheckFailed,
    Mistake,
    call_learner,
    check_function,
    compare,
    dtypes_and_devices,
    passed,
)
from course_utils.decomposition import metrics, spd

ATOL64, RTOL64 = 1e-10, 1e-9


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(shape: tuple[int, ...], g: torch.Generator, dt: torch.dtype, dev: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dt).to(dev)


def _rand(shape: tuple[int, ...], g: torch.Generator, dt: torch.dtype, dev: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=g, dtype=torch.float64).to(dt).to(dev)


def _run(name: str, fn: Callable[..., Any], ref: Callable[..., Any], cases: Sequence[Case],
         mistakes: Sequence[Mistake], grad: Sequence[str] = (), atol: float = 1e-5, rtol: float = 1e-4) -> int:
    """check_function per dtype (float64 cases at float64 tolerances), then the gradient check."""
    n = 0
    for case in cases:
        f64 = any(isinstance(v, torch.Tensor) and v.dtype == torch.float64 for v in _flat(case.kwargs))
        tol = (ATOL64, RTOL64) if f64 else (atol, rtol)
        n += check_function(name, fn, ref, [case], mistakes, atol=tol[0], rtol=tol[1])
    if grad:
        _check_gradients(name, fn, ref, cases[0].kwargs, grad)
    return n


def _flat(kwargs: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = []
    for v in kwargs.values():
        if isinstance(v, Mapping):
            out.extend(_flat(v))
        elif isinstance(v, (list, tuple)):
            for item in v:
                out.extend(_flat({"_": item}) if isinstance(item, (list, tuple, Mapping)) else [item])
        else:
            out.append(v)
    return out


def _leaves(kwargs: dict[str, Any], wrt: Sequence[str]) -> list[torch.Tensor]:
    """Make the inputs named in ``wrt`` ("V", or "components.layer.0") require grad; return them."""
    leaves = []
    for path in wrt:
        keys = path.split(".")
        holder: Any = kwargs
        for k in keys[:-1]:
            holder = holder[int(k)] if isinstance(holder, (list, tuple)) else holder[k]
        last = keys[-1]
        key: Any = int(last) if isinstance(holder, (list, tuple)) else last
        t = holder[key].detach().clone().requires_grad_(True)
        if isinstance(holder, tuple):
            raise TypeError("tuples are immutable: pass lists in gradient-checked inputs")
        holder[key] = t
        leaves.append(t)
    return leaves


def _deep_clone(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, Mapping):
        return {k: _deep_clone(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_deep_clone(v) for v in x]
    return x


def _check_gradients(name: str, fn: Callable[..., Any], ref: Callable[..., Any], kwargs: Mapping[str, Any],
                     wrt: Sequence[str]) -> None:
    """Differentiability: the output must carry the reference's gradients to every input in ``wrt``."""
    def run(f: Callable[..., Any], learner: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        kw = _deep_clone(dict(kwargs))
        leaves = _leaves(kw, wrt)
        out = call_learner(f, kw, name) if learner else f(**kw)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        return outs, leaves

    exp, exp_leaves = run(ref, False)
    act, act_leaves = run(fn, True)
    for e, a in zip(exp, act):
        if isinstance(a, torch.Tensor) and not a.requires_grad and e.requires_grad:
            raise CheckFailed(f"{name}'s output does not carry gradients: it was computed under torch.no_grad(), "
                              ".detach()ed, or rebuilt from .item()/numpy, so SPD could not train through it")
    w = [torch.randn(e.shape, generator=_gen(7), dtype=torch.float64).to(e.dtype) for e in exp]
    g_exp = torch.autograd.grad(sum((e * wi).sum() for e, wi in zip(exp, w)), exp_leaves, allow_unused=True)
    try:
        g_act = torch.autograd.grad(sum((a * wi).sum() for a, wi in zip(act, w)), act_leaves, allow_unused=True)
    except RuntimeError as err:
        raise CheckFailed(f"back-propagating through {name} failed: {err}") from None
    for k, ge, ga in zip(wrt, g_exp, g_act):
        if ge is None:
            continue
        if ga is None or (ga.abs().sum() == 0 and ge.abs().sum() > 0):
            raise CheckFailed(f"no gradient reaches {k!r} through {name}: the part of your computation that uses "
                              f"it is detached (.detach(), .data, torch.no_grad(), or a tensor rebuilt from values)")
        if not torch.allclose(ga.double(), ge.double(), atol=1e-5, rtol=1e-4):
            raise CheckFailed(f"the gradient of {name} with respect to {k!r} is wrong although the values are right: "
                              "part of the computation is detached, or a function with the right values but the "
                              "wrong slope was used (e.g. torch.clamp where the leaky sigmoid's slope matters)")


# ----------------------------------------------------------------------------------------------
# 6.1 rank-one forward


def check_rank_one_forward(fn: Callable[..., torch.Tensor]) -> None:
    """``rank_one_forward(x: [batch, d_in], V: [d_in, C], U: [C, d_out], mask: [batch, C])``
    = Σ_c m_c (x·V_c) U_c. Kinds: shapes (batch 1, d_in ≠ d_out, several C), independence (one mask
    per example), float64, differentiability (x, V, U, mask), inputs left unmodified."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(600 + k)
        for batch, d_in, d_out, C in ((6, 5, 2, 7), (1, 3, 4, 2), (4, 2, 5, 10)):
            cases.append(Case(dict(x=_rand((batch, d_in), g, dt, dev), V=_randn((d_in, C), g, dt, dev),
                                   U=_randn((C, d_out), g, dt, dev), mask=_rand((batch, C), g, dt, dev))))
    mistakes = [
        Mistake("the mask is not applied: multiply each inner activation x·V_c by its mask m_c before U",
                lambda x, V, U, mask: x @ V @ U),
        Mistake("you averaged the mask over the batch: each example has its own mask [batch, C]",
                lambda x, V, U, mask: (x @ V * mask.mean(0)) @ U),
        Mistake("the mask multiplies V's rows (input dimensions), not the subcomponents",
                lambda x, V, U, mask: ((x * mask[:, : x.shape[1]]) @ V) @ U),
        Mistake("you masked twice (mask²)", lambda x, V, U, mask: (x @ V * mask**2) @ U),
    ]
    n = _run("rank_one_forward", fn, spd.rank_one_forward, cases, mistakes, grad=("x", "V", "U", "mask"))
    passed("rank_one_forward", f"{n} random cases, float32 and float64, gradients included")


# ----------------------------------------------------------------------------------------------
# 6.2 causal importance


def _ci_cases() -> list[Case]:
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(620 + k)
        for batch, C, d_gate in ((8, 5, 4), (1, 3, 16), (6, 1, 2)):
            cases.append(Case(dict(inner=_randn((batch, C), g, dt, dev) * 2, W_in=_randn((C, d_gate), g, dt, dev),
                                   b_in=_randn((C, d_gate), g, dt, dev), W_out=_randn((C, d_gate), g, dt, dev),
                                   b_out=_randn((C,), g, dt, dev))))
    return cases


def _pre(inner: torch.Tensor, W_in: torch.Tensor, b_in: torch.Tensor, W_out: torch.Tensor, b_out: torch.Tensor,
         act: Callable[[torch.Tensor], torch.Tensor] = torch.nn.functional.gelu) -> torch.Tensor:
    return (act(inner[..., None] * W_in + b_in) * W_out).sum(-1) + b_out


def check_causal_importance(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``causal_importance(inner, W_in, b_in, W_out, b_out) -> (g_lower, g_upper)``. Kinds:
    shapes (batch 1, C = 1, d_gate 2..16), independence (each subcomponent its own MLP), values
    on both sides of 0 and 1 (boundaries of the hard sigmoids), float64, differentiability (the
    leaky slopes are what lets dead gates recover: gradients to inner, W_in, b_in, W_out, b_out)."""
    lo, up = spd.lower_leaky_hard_sigmoid, spd.upper_leaky_hard_sigmoid

    def both(f_lo: Callable, f_up: Callable, act: Callable = torch.nn.functional.gelu) -> Callable:
        return lambda inner, W_in, b_in, W_out, b_out: (
            f_lo(_pre(inner, W_in, b_in, W_out, b_out, act)), f_up(_pre(inner, W_in, b_in, W_out, b_out, act)))

    mistakes = [
        Mistake("the two gates are swapped: g_lower (for masks) leaks below 0, g_upper (for the penalty) above 1",
                both(up, lo)),
        Mistake("g_lower is a plain clamp to [0, 1]: the lower-leaky sigmoid is 0.01·x below 0",
                both(lambda z: z.clamp(0, 1), up)),
        Mistake("g_upper is a plain clamp to [0, 1]: the upper-leaky sigmoid is 1 + 0.01(x − 1) above 1",
                both(lo, lambda z: z.clamp(0, 1))),
        Mistake("the leak slope is not 0.01", both(lambda z: spd.lower_leaky_hard_sigmoid(z, 0.1),
                                                    lambda z: spd.upper_leaky_hard_sigmoid(z, 0.1))),
        Mistake("the hidden nonlinearity is a ReLU; the paper's γ uses GELU", both(lo, up, torch.relu)),
        Mistake("you used a logistic sigmoid; SPD uses (leaky) hard sigmoids",
                both(torch.sigmoid, torch.sigmoid)),
        Mistake("every subcomponent used subcomponent 0's MLP: index W_in, b_in, W_out, b_out by c",
                lambda inner, W_in, b_in, W_out, b_out: both(lo, up)(
                    inner, W_in[:1].expand_as(W_in), b_in[:1].expand_as(b_in), W_out[:1].expand_as(W_out),
                    b_out[:1].expand_as(b_out))),
    ]
    n = _run("causal_importance", fn, spd.causal_importance, _ci_cases(), mistakes,
             grad=("inner", "W_in", "b_in", "W_out", "b_out"))
    passed("causal_importance", f"{n} random cases, both gates, gradients included")


# ----------------------------------------------------------------------------------------------
# 6.3 stochastic masks


def check_stochastic_mask(fn: Callable[..., torch.Tensor]) -> None:
    """``stochastic_mask(g: [batch, C], generator) -> g + (1 − g) r`` with r ~ U(0, 1) drawn as
    ``torch.rand(g.shape, generator=generator, dtype=g.dtype)``. Kinds: randomness (the generator's
    seed must decide r; no global RNG; a new r for every entry), shapes (batch 1), float64 (draw in
    g's dtype), differentiability (gradient to g: the reparametrisation trick), boundaries (g = 0, 1)."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        gg = _gen(640 + k)
        for batch, C in ((7, 5), (1, 3), (64, 20)):
            g = _rand((batch, C), gg, dt, dev)
            g[0, 0] = 0.0
            g[-1, -1] = 1.0
            cases.append((g, 900 + 10 * k + batch))

    def draw(shape: tuple[int, ...], seed: int, dtype: torch.dtype) -> torch.Tensor:
        return torch.rand(shape, generator=_gen(seed), dtype=dtype)

    wrong: list[tuple[str, Callable[[torch.Tensor, int], torch.Tensor]]] = [
        ("m = g·r samples U(0, g); the mask must lie in [g, 1]: m = g + (1 − g) r",
         lambda g, s: g * draw(g.shape, s, g.dtype).to(g.device)),
        ("m = g + r can exceed 1; use m = g + (1 − g) r", lambda g, s: g + draw(g.shape, s, g.dtype).to(g.device)),
        ("m = r ignores the causal importance g", lambda g, s: draw(g.shape, s, g.dtype).to(g.device)),
        ("one random number per subcomponent shared by the whole batch: draw r with g's full shape",
         lambda g, s: g + (1 - g) * draw(g.shape[-1:], s, g.dtype).to(g.device)),
        ("r was drawn in float32 and cast: draw it in g's dtype (dtype=g.dtype)",
         lambda g, s: g + (1 - g) * draw(g.shape, s, torch.float32).to(g.dtype).to(g.device)),
    ]
    for g, seed in cases:
        expected = spd.stochastic_mask(g.clone(), _gen(seed))
        torch.manual_seed(12345)
        pristine = g.clone()
        actual = call_learner(fn, dict(g=g, generator=_gen(seed)), "stochastic_mask")
        if not torch.equal(g, pristine):
            raise CheckFailed("stochastic_mask modified its input 'g' in place; use out-of-place operations")
        f64 = g.dtype == torch.float64
        tol = (ATOL64, RTOL64) if f64 else (1e-6, 1e-5)
        if isinstance(actual, torch.Tensor) and actual.shape == expected.shape and not torch.allclose(
                actual.double(), expected.double(), atol=tol[0], rtol=tol[1]):
            torch.manual_seed(999)
            again = call_learner(fn, dict(g=g.clone(), generator=_gen(seed)), "stochastic_mask")
            if not torch.allclose(again.double(), actual.double()):
                raise CheckFailed("stochastic_mask gave different masks for the same generator seed: you drew r "
                                  "from the global RNG (torch.rand_like / torch.rand without generator=generator)")
        compare(actual, expected, what="stochastic_mask(...)", atol=tol[0], rtol=tol[1],
                mistakes=[(m, f(g.clone(), seed)) for m, f in wrong],
                context=f"g: {list(g.shape)} {str(g.dtype).replace('torch.', '')}")
    g0 = cases[0][0].clone().requires_grad_(True)
    out = call_learner(fn, dict(g=g0, generator=_gen(1)), "stochastic_mask")
    if not out.requires_grad:
        raise CheckFailed("stochastic_mask's output does not carry gradients to g (.detach() or torch.no_grad()?): "
                          "the reparametrisation m = g + (1 − g) r exists so that the causal-importance MLPs learn")
    r = torch.rand(g0.shape, generator=_gen(1), dtype=g0.dtype)
    (grad,) = torch.autograd.grad(out.sum(), g0)
    if not torch.allclose(grad.double(), (1 - r).double(), atol=1e-5):
        raise CheckFailed("the gradient of the mask with respect to g is wrong: dm/dg = 1 − r (is r detached from "
                          "nothing but g? did you detach g in one of its two uses?)")
    passed("stochastic_mask", f"{len(cases)} cases, seeded generator, gradients included")


# ----------------------------------------------------------------------------------------------
# 6.4 faithfulness loss and 6.5 stochastic reconstruction


def check_faithfulness_loss(fn: Callable[..., torch.Tensor]) -> None:
    """``faithfulness_loss(weights: {l: W [d_out, d_in]}, components: {l: (V, U)})`` = Σ_l Σ ΔW² / N.
    Kinds: one and two layers of different sizes (N counts all weights), non-square W, float64,
    differentiability (V and U of every layer)."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(660 + k)
        for shapes in (((2, 5, 7),), ((3, 4, 6), (8, 2, 3))):
            weights, comps = {}, {}
            for i, (d_out, d_in, C) in enumerate(shapes):
                weights[f"layer{i}"] = _randn((d_out, d_in), g, dt, dev)
                comps[f"layer{i}"] = [_randn((d_in, C), g, dt, dev), _randn((C, d_out), g, dt, dev)]
            cases.append(Case(dict(weights=weights, components=comps)))

    def deltas(weights: Mapping, components: Mapping) -> list[torch.Tensor]:
        return [W - (components[k][0] @ components[k][1]).T for k, W in weights.items()]

    mistakes = [
        Mistake("you summed the squared errors; divide by the number of weights N (a mean)",
                lambda weights, components: sum((d**2).sum() for d in deltas(weights, components))),
        Mistake("you averaged each layer and then averaged the layers; divide the total by the total count N",
                lambda weights, components: sum((d**2).mean() for d in deltas(weights, components)) / len(weights)),
        Mistake("you added the per-layer means; divide the total by the total count N",
                lambda weights, components: sum((d**2).mean() for d in deltas(weights, components))),
        Mistake("the errors are not squared", lambda weights, components: sum(
            d.abs().sum() for d in deltas(weights, components)) / sum(W.numel() for W in weights.values())),
    ]
    n = _run("faithfulness_loss", fn, spd.faithfulness_loss, cases, mistakes,
             grad=("components.layer0.0", "components.layer0.1"))
    passed("faithfulness_loss", f"{n} cases, gradients included")


def tms_stochastic_recon_loss(x: torch.Tensor, V: torch.Tensor, U: torch.Tensor, b: torch.Tensor,
                              mask1: torch.Tensor, mask2: torch.Tensor, target_out: torch.Tensor) -> torch.Tensor:
    """Reference: the tied TMS decomposition with both layers masked, MSE to the target's output."""
    h = spd.rank_one_forward(x, V, U, mask1)
    out = torch.relu(spd.rank_one_forward(h, U.T, V.T, mask2) + b)
    return ((out - target_out) ** 2).mean()


def check_tms_stochastic_recon_loss(fn: Callable[..., torch.Tensor]) -> None:
    """``tms_stochastic_recon_loss(x, V, U, b, mask1, mask2, target_out)``: h = Σ_c m1_c (x·V_c) U_c,
    x̂ = ReLU(Σ_c m2_c (h·U_c) V_c + b), MSE to target_out. Kinds: shapes (batch 1, several C), masks
    per layer and per example (independence), float64, differentiability (V, U, both masks)."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(680 + k)
        for batch, n_feat, d_hidden, C in ((9, 5, 2, 6), (1, 4, 3, 2), (5, 6, 2, 11)):
            cases.append(Case(dict(
                x=_rand((batch, n_feat), g, dt, dev), V=_randn((n_feat, C), g, dt, dev),
                U=_randn((C, d_hidden), g, dt, dev), b=_randn((n_feat,), g, dt, dev) * 0.3,
                mask1=_rand((batch, C), g, dt, dev), mask2=_rand((batch, C), g, dt, dev),
                target_out=_rand((batch, n_feat), g, dt, dev))))
    ref = tms_stochastic_recon_loss

    def fwd(x, V, U, b, m1, m2, relu=True, bias=True):  # noqa: ANN001, ANN202
        h = (x @ V * m1) @ U
        pre = ((h @ U.T) * m2) @ V.T + (b if bias else 0)
        return torch.relu(pre) if relu else pre

    mistakes = [
        Mistake("the output ReLU is missing: x̂ = ReLU(Wᵀh + b)", lambda x, V, U, b, mask1, mask2, target_out: (
            (fwd(x, V, U, b, mask1, mask2, relu=False) - target_out) ** 2).mean()),
        Mistake("the bias b is missing", lambda x, V, U, b, mask1, mask2, target_out: (
            (fwd(x, V, U, b, mask1, mask2, bias=False) - target_out) ** 2).mean()),
        Mistake("both layers used mask1: each layer has its own causal importances and mask",
                lambda x, V, U, b, mask1, mask2, target_out: ref(x, V, U, b, mask1, mask1, target_out)),
        Mistake("the second layer (Wᵀ) is not masked", lambda x, V, U, b, mask1, mask2, target_out: ref(
            x, V, U, b, mask1, torch.ones_like(mask2), target_out)),
        Mistake("you summed the squared errors; the paper's D is the mean squared error",
                lambda x, V, U, b, mask1, mask2, target_out: (
                    (fwd(x, V, U, b, mask1, mask2) - target_out) ** 2).sum()),
        Mistake("you averaged over the batch but summed over features; take the mean over all entries",
                lambda x, V, U, b, mask1, mask2, target_out: (
                    (fwd(x, V, U, b, mask1, mask2) - target_out) ** 2).sum(-1).mean()),
    ]
    n = _run("tms_stochastic_recon_loss", fn, ref, cases, mistakes, grad=("V", "U", "mask1", "mask2"))
    passed("tms_stochastic_recon_loss", f"{n} random cases, gradients included")


# ----------------------------------------------------------------------------------------------
# 6.6 importance minimality


def check_importance_minimality_loss(fn: Callable[..., torch.Tensor]) -> None:
    """``importance_minimality_loss(g_upper: list of [batch, C], p)`` = Σ_l mean_batch Σ_c g^p.
    Kinds: p varied (0.5, 1, 2, the boundary-ish 0.05), one and two layers with different C, batch 1,
    float64, differentiability (every layer's gates)."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(700 + k)
        for p, shapes in ((1.0, ((6, 5),)), (2.0, ((4, 3), (4, 7))), (0.5, ((1, 4), (1, 2))), (0.05, ((5, 3),))):
            gs = [_rand(s, g, dt, dev) * 1.2 + 0.01 for s in shapes]
            cases.append(Case(dict(g_upper=gs, p=p)))

    def ref(g_upper: list[torch.Tensor], p: float) -> torch.Tensor:
        return spd.importance_minimality_loss(g_upper, p)

    mistakes = [
        Mistake("you took the mean over subcomponents; the penalty sums over subcomponents and layers",
                lambda g_upper, p: sum((gl**p).mean() for gl in g_upper)),
        Mistake("you summed over the batch; average over the batch (sum over subcomponents)",
                lambda g_upper, p: sum((gl**p).sum() for gl in g_upper)),
        Mistake("p is ignored (an L1 penalty): raise each g to the power p",
                lambda g_upper, p: sum(gl.sum(-1).mean() for gl in g_upper)),
        Mistake("you averaged the layers; the penalty sums over layers",
                lambda g_upper, p: sum((gl**p).sum(-1).mean() for gl in g_upper) / len(g_upper)),
        Mistake("you raised the sum over subcomponents to the power p (a norm of the vector); raise each g_c",
                lambda g_upper, p: sum((gl.sum(-1) ** p).mean() for gl in g_upper)),
    ]
    n = _run("importance_minimality_loss", fn, ref, cases, mistakes, grad=("g_upper.0",))
    passed("importance_minimality_loss", f"{n} cases, p from 0.05 to 2, gradients included")


# ----------------------------------------------------------------------------------------------
# 6.7 MMCS and ML2R


def check_mmcs_ml2r(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``mmcs_ml2r(W: [d_out, d_in], V: [d_in, C], U: [C, d_out]) -> (MMCS, ML2R)`` as the authors'
    code computes them. Kinds: shapes (non-square, C < d_in and C > d_in), signed cosines (a component
    anti-aligned with a column must not count), the matched column's norm (not the whole
    subcomponent's), float64."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(720 + k)
        for d_out, d_in, C in ((2, 5, 20), (3, 4, 3), (6, 6, 8)):
            W = _randn((d_out, d_in), g, dt, dev)
            V = _randn((d_in, C), g, dt, dev) * 0.3
            U = _randn((C, d_out), g, dt, dev) * 0.3
            n = min(C, d_in)
            # plant near-copies of W's columns (one with flipped sign and a larger norm, to punish |cos|)
            for j in range(n):
                V[:, j] = 0.05 * V[:, j]
                V[j, j] = 1.0
                U[j] = W[:, j] * (1.0 + 0.1 * j) + 0.05 * U[j]
            if n > 1:
                U[n - 1] = -2.0 * W[:, 0]
                V[:, n - 1] = 0.0
                V[0, n - 1] = 1.0
            cases.append(Case(dict(W=W, V=V, U=U)))

    def sub(V: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        return torch.einsum("fc,ch->cfh", V, U)

    def cos(W: torch.Tensor, V: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        s = sub(V, U)
        return torch.einsum("cfh,fh->cf", s / (s.norm(dim=-1, keepdim=True) + 1e-12),
                            W.T / W.T.norm(dim=-1, keepdim=True))

    def with_index(W: torch.Tensor, V: torch.Tensor, U: torch.Tensor, c: torch.Tensor,
                   whole: bool = False, invert: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        best_vals = c.max(0)
        s = sub(V, U)
        idx = best_vals.indices
        norms = (s[idx].flatten(1).norm(dim=-1) if whole
                 else s[idx, torch.arange(W.shape[1])].norm(dim=-1))
        ratio = W.T.norm(dim=-1) / norms if invert else norms / W.T.norm(dim=-1)
        return best_vals.values.mean(), ratio.mean()

    mistakes = [
        Mistake("you took |cos|: the authors' code takes the signed maximum, so an anti-aligned component "
                "does not count as a match", lambda W, V, U: with_index(W, V, U, cos(W, V, U).abs())),
        Mistake("ML2R used the norm of the whole subcomponent; use the norm of its j-th column V[j, c] U[c, :]",
                lambda W, V, U: with_index(W, V, U, cos(W, V, U), whole=True)),
        Mistake("ML2R is inverted: it is ‖matched column‖ / ‖W's column‖",
                lambda W, V, U: with_index(W, V, U, cos(W, V, U), invert=True)),
        Mistake("you took the max over input features for each subcomponent; MMCS is a mean over features "
                "of the max over subcomponents", lambda W, V, U: (cos(W, V, U).max(1).values.mean(),
                                                               with_index(W, V, U, cos(W, V, U))[1])),
    ]
    n = _run("mmcs_ml2r", fn, metrics.mmcs_ml2r, cases, mistakes)
    passed("mmcs_ml2r", f"{n} cases, signed cosines, matched columns")
