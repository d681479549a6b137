"""Checks for chapter 2 (superposition): toy-model forward passes, batches, loss, geometry, packing.

Deterministic functions are compared with the reference on seeded random inputs (float32, float64,
and the GPU when present). The batch generators are random, so their checks are statistical: a large
batch must show the right marginal frequencies, the right co-occurrences and U[0, 1) values, and each
known mistake leaves a signature that gets its own diagnosis.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from course_utils import packing, tms
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


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rand(shape: tuple[int, ...], g: torch.Generator, dt: torch.dtype, dev: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dt).to(dev)


# ----------------------------------------------------------------------------------------------
# Forward passes


def _tms_cases() -> list[Case]:
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for inst, m, n in ((3, 2, 5), (2, 3, 6)):
            g = _gen(100 + k)
            cases.append(Case(dict(W=_rand((inst, m, n), g, dt, dev), b=_rand((inst, n), g, dt, dev) * 0.5,
                                   x=torch.rand((7, inst, n), generator=g, dtype=torch.float64).to(dt).to(dev))))
    return cases


def check_tms_forward(fn: Callable[..., torch.Tensor]) -> None:
    """x' = ReLU(WᵀWx + b) for W: [inst, m, n], b: [inst, n], x: [batch, inst, n]."""

    def lin(W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("imf,img,big->bif", W, W, x)

    mistakes = [
        Mistake("the ReLU is missing on the output: x' = ReLU(WᵀWx + b)", lambda W, b, x: lin(W, x) + b),
        Mistake("the bias is added after the ReLU; add it before: ReLU(WᵀWx + b)",
                lambda W, b, x: torch.relu(lin(W, x)) + b),
        Mistake("the bias b is missing", lambda W, b, x: torch.relu(lin(W, x))),
        Mistake("every instance used instance 0's weights: keep the instance index in your einsum",
                lambda W, b, x: torch.relu(lin(W[:1].expand_as(W), x) + b)),
    ]
    n = check_function("tms_forward", fn, tms.tms_forward, _tms_cases(), mistakes)
    passed("tms_forward", f"{n} random cases")


def check_neuron_forward(fn: Callable[..., torch.Tensor]) -> None:
    """h = ReLU(Wx), x' = ReLU(Wᵀh + b)."""

    def hidden(W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("imf,bif->bim", W, x)

    def out(W: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.einsum("imf,bim->bif", W, h)

    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(200 + k)
        inst, m, n = 3, 4, 6
        cases.append(Case(dict(W=_rand((inst, m, n), g, dt, dev), b=_rand((inst, n), g, dt, dev) * 0.5,
                               x=torch.rand((9, inst, n), generator=g, dtype=torch.float64).to(dt).to(dev))))
    mistakes = [
        Mistake("the hidden ReLU is missing (that is the plain toy model): h = ReLU(Wx)",
                lambda W, b, x: torch.relu(out(W, hidden(W, x)) + b)),
        Mistake("the ReLU is missing on the output: x' = ReLU(Wᵀh + b)",
                lambda W, b, x: out(W, torch.relu(hidden(W, x))) + b),
        Mistake("the bias is added after the output ReLU",
                lambda W, b, x: torch.relu(out(W, torch.relu(hidden(W, x)))) + b),
        Mistake("the bias b is missing", lambda W, b, x: torch.relu(out(W, torch.relu(hidden(W, x))))),
    ]
    n = check_function("neuron_forward", fn, tms.neuron_forward, cases, mistakes)
    passed("neuron_forward", f"{n} random cases")


def check_abs_forward(fn: Callable[..., torch.Tensor]) -> None:
    """y' = ReLU(W₂ ReLU(W₁x) + b) with W1: [inst, m, n], W2: [inst, n, m]."""

    def hidden(W1: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("imf,bif->bim", W1, x)

    def out(W2: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ifm,bim->bif", W2, h)

    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(250 + k)
        inst, m, n = 2, 4, 6
        cases.append(Case(dict(W1=_rand((inst, m, n), g, dt, dev), W2=_rand((inst, n, m), g, dt, dev),
                               b=_rand((inst, n), g, dt, dev) * 0.5,
                               x=(2 * torch.rand((9, inst, n), generator=g, dtype=torch.float64) - 1).to(dt).to(dev))))
    mistakes = [
        Mistake("the hidden ReLU is missing: h = ReLU(W₁x); without it the model is linear until the output "
                "and cannot compute |x|", lambda W1, W2, b, x: torch.relu(out(W2, hidden(W1, x)) + b)),
        Mistake("the ReLU is missing on the output: y' = ReLU(W₂h + b)",
                lambda W1, W2, b, x: out(W2, torch.relu(hidden(W1, x))) + b),
        Mistake("you read out with W₁ᵀ (tied weights); this model has its own output matrix W2",
                lambda W1, W2, b, x: torch.relu(out(W1.transpose(1, 2), torch.relu(hidden(W1, x))) + b)),
        Mistake("the bias b is missing", lambda W1, W2, b, x: torch.relu(out(W2, torch.relu(hidden(W1, x))))),
    ]
    n = check_function("abs_forward", fn, tms.abs_forward, cases, mistakes)
    passed("abs_forward", f"{n} random cases")


# ----------------------------------------------------------------------------------------------
# Loss


def check_importance_weighted_loss(fn: Callable[..., torch.Tensor]) -> None:
    """L = Σ_inst mean_{batch, feat} I (target − out)²."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(300 + k)
        batch, inst, n = 8, 3, 5
        cases.append(Case(dict(out=torch.rand((batch, inst, n), generator=g, dtype=torch.float64).to(dt).to(dev),
                               target=torch.rand((batch, inst, n), generator=g, dtype=torch.float64).to(dt).to(dev),
                               importance=(0.1 + torch.rand((inst, n), generator=g, dtype=torch.float64)).to(dt).to(dev))))

    def err(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (target - out) ** 2

    mistakes = [
        Mistake("you averaged over instances; sum the per-instance losses (each instance is an "
                "independent model, and a mean would shrink every instance's gradient)",
                lambda out, target, importance: (importance * err(out, target)).mean()),
        Mistake("the importance is applied before squaring, so it counts as I²; weight the squared error: "
                "I·(x − x')²", lambda out, target, importance: (((importance * (target - out)) ** 2).mean(dim=(0, 2)).sum())),
        Mistake("the importance multiplies a root-mean-square error (applied after a square root); the loss "
                "is the plain mean of I·(x − x')², with no square root",
                lambda out, target, importance: (importance * err(out, target).mean(dim=0).sqrt()).mean(-1).sum()),
        Mistake("you weighted the absolute error |x − x'|; the loss uses the squared error (x − x')²",
                lambda out, target, importance: (importance * (target - out).abs()).mean(dim=(0, 2)).sum()),
        Mistake("the importance weights are missing", lambda out, target, importance: err(out, target).mean(dim=(0, 2)).sum()),
        Mistake("you summed over features; average over the batch and the features",
                lambda out, target, importance: (importance * err(out, target)).mean(dim=0).sum()),
        Mistake("you summed over the batch; average over the batch and the features",
                lambda out, target, importance: (importance * err(out, target)).mean(dim=2).sum()),
    ]
    n = check_function("importance_weighted_loss", fn, tms.importance_weighted_loss, cases, mistakes)
    passed("importance_weighted_loss", f"{n} random cases")


# ----------------------------------------------------------------------------------------------
# Geometry


def _dim_mistake_unnormalised(W: torch.Tensor) -> torch.Tensor:
    return W.norm(dim=1) ** 2 / (torch.einsum("imf,img->ifg", W, W) ** 2).sum(-1)


def _dim_with(W: torch.Tensor, W_hat: torch.Tensor, power: int = 2, skip_self: bool = False,
              num_power: int = 2) -> torch.Tensor:
    dots = torch.einsum("imf,img->ifg", W_hat, W)
    terms = dots.abs() ** power
    denom = terms.sum(-1) - (terms.diagonal(dim1=-2, dim2=-1) if skip_self else 0)
    return W.norm(dim=1) ** num_power / denom


def check_feature_dimensionality(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)² for W: [inst, m, n] -> [inst, n]."""
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(400 + k)
        cases.append(Case(dict(W=_rand((3, 2, 5), g, dt, dev))))
        cases.append(Case(dict(W=_rand((2, 4, 7), g, dt, dev))))
    g = _gen(499)
    W0 = _rand((2, 3, 6), g, torch.float64, torch.device("cpu"))
    W0[1, :, 2] = 0.0
    cases.append(Case(dict(W=W0), label="feature 2 of instance 1 is all zeros (not learned): its D must be 0, not NaN"))

    def unit(W: torch.Tensor) -> torch.Tensor:
        return W / W.norm(dim=1, keepdim=True)

    mistakes = [
        Mistake("the directions are not normalised: use Ŵ_i = W_i/‖W_i‖ in the denominator (Ŵ_i·W_j)²",
                _dim_mistake_unnormalised),
        Mistake("you normalised over the wrong axis: feature i's direction is the column W[:, :, i], so "
                "divide by W.norm(dim=1)",
                lambda W: _dim_with(W, W / W.norm(dim=2, keepdim=True))),
        Mistake("the numerator should be the squared norm ‖W_i‖², not ‖W_i‖",
                lambda W: _dim_with(W, unit(W), num_power=1)),
        Mistake("the dot products (Ŵ_i·W_j) must be squared before summing",
                lambda W: _dim_with(W, unit(W), power=1)),
        Mistake("the sum over j must include j = i (that term is ‖W_i‖², so a lone feature gets D = 1)",
                lambda W: _dim_with(W, unit(W), skip_self=True)),
    ]
    n = check_function("feature_dimensionality", fn, tms.feature_dimensionality, cases, mistakes, atol=1e-4)
    passed("feature_dimensionality", f"{n} cases, including a zero feature")


def _phase_cases() -> list[Case]:
    # Hand-built instances whose phases are known. 1-D: W [inst, 1, 2]; the last feature is classified.
    one_d = torch.tensor([[[1.0, 0.1]],      # not learned
                          [[1.0, -0.9]],     # superposed (antipodal)
                          [[0.05, 1.0]],     # dedicated
                          [[0.6, 0.45]]],    # not learned although it interferes
                         dtype=torch.float64)
    two_d = torch.tensor([[[1.0, 0.0, 0.2], [0.0, 1.0, 0.2]],                    # not learned
                          [[1.0, -0.5, -0.5], [0.0, 0.87, -0.87]],               # superposed (triangle)
                          [[1.0, 0.0, 0.0], [0.0, 0.05, 1.0]],                   # dedicated (feature 1 dropped)
                          [[0.8, 0.0, 0.6], [0.0, 1.0, 0.0]],                    # superposed, |cos| 1 with f0
                          [[1.0, 0.0, 0.15], [0.0, 1.0, 0.8]],                   # superposed, small overlap
                          [[1.0, 0.0, 0.3], [0.0, 0.05, 0.52]]],                 # superposed, ‖W_last‖ = 0.6
                         dtype=torch.float64)
    cases = []
    for dt, dev in dtypes_and_devices():
        cases += [Case(dict(W=one_d.to(dt).to(dev)), label="2 features in 1 dimension"),
                  Case(dict(W=two_d.to(dt).to(dev)), label="3 features in 2 dimensions")]
    return cases


def check_classify_phase(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """0 = not learned (‖W_last‖ ≤ 0.5), 1 = superposed (Σ_{j≠last}(Ŵ_last·W_j)² > 0.1), 2 = dedicated."""

    def reference(W: torch.Tensor) -> torch.Tensor:
        return tms.classify_phase(W, -1)

    def interf_unnormalised(W: torch.Tensor) -> torch.Tensor:
        dots = torch.einsum("im,imj->ij", W[:, :, -1], W[:, :, :-1])
        return (dots**2).sum(-1)

    def phase(learned: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        return torch.where(learned, torch.where(shared, 1, 2), 0).long()

    norms = lambda W: W.norm(dim=1)[:, -1]  # noqa: E731
    mistakes = [
        Mistake("a feature that is not learned must be 'not learned' (0) even when it overlaps others: "
                "test the norm first",
                lambda W: torch.where(tms.interference(W)[:, -1] > 0.1, 1,
                                      torch.where(norms(W) > 0.5, 2, 0)).long()),
        Mistake("the interference uses unnormalised W_last; project the others onto Ŵ_last = W_last/‖W_last‖",
                lambda W: phase(norms(W) > 0.5, interf_unnormalised(W) > 0.1)),
        Mistake("you classified the first feature; the question is about the last one (feature=-1)",
                lambda W: tms.classify_phase(W, 0)),
        Mistake("the threshold is on the squared norm; compare ‖W_last‖ itself with 0.5",
                lambda W: phase(norms(W) ** 2 > 0.5, tms.interference(W)[:, -1] > 0.1)),
        Mistake("the phase codes are swapped: 1 = superposed, 2 = dedicated",
                lambda W: phase(norms(W) > 0.5, tms.interference(W)[:, -1] <= 0.1)),
    ]
    n = check_function("classify_phase", fn, reference, _phase_cases(), mistakes)
    passed("classify_phase", f"{n} hand-built sets of instances")


# ----------------------------------------------------------------------------------------------
# Packing


def check_max_abs_cosine(fn: Callable[[torch.Tensor], object]) -> None:
    """max_{i≠j} |cos(V_i, V_j)| over the rows of V: [N, d]."""

    def reference(V: torch.Tensor) -> float:
        return float(packing.max_abs_cosine(V))

    def gram(V: torch.Tensor) -> torch.Tensor:
        U = V / V.norm(dim=1, keepdim=True)
        return U @ U.T

    def off_diag(G: torch.Tensor) -> torch.Tensor:
        return G - torch.diag(torch.diagonal(G))

    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(500 + k)
        cases.append(Case(dict(V=(_rand((40, 12), g, dt, dev) * (0.5 + torch.rand(40, 1, generator=g, dtype=torch.float64)).to(dt).to(dev)))))
        cases.append(Case(dict(V=_rand((9, 30), g, dt, dev) * 3.0)))
    mistakes = [
        Mistake("the diagonal is included: every vector has cos = 1 with itself; exclude i = j",
                lambda V: float(gram(V).abs().max())),
        Mistake("the vectors are not normalised: divide each row by its norm before the dot products",
                lambda V: float(off_diag(V @ V.T).abs().max())),
        Mistake("you took the largest signed cosine; take the absolute value (|cos| near 1 for near-opposite "
                "vectors also means interference)", lambda V: float(off_diag(gram(V)).max())),
        Mistake("you compared columns (dimensions) instead of rows (vectors)",
                lambda V: float(off_diag(gram(V.T)).abs().max())),
    ]
    n = check_function("max_abs_cosine", fn, reference, cases, mistakes, atol=1e-5)
    passed("max_abs_cosine", f"{n} random cases")


def check_welch_bound(fn: Callable[[int, int], float]) -> None:
    """√((N − d)/(d(N − 1))) for N > d, else 0."""
    cases = [Case(dict(n_vectors=n, d=d)) for n, d in ((10, 3), (512, 256), (4096, 768), (3, 2))]
    mistakes = [
        Mistake("the square root is missing", lambda n_vectors, d: (n_vectors - d) / (d * (n_vectors - 1))),
        Mistake("the denominator is d·(N − 1), not d·N",
                lambda n_vectors, d: math.sqrt((n_vectors - d) / (d * n_vectors))),
        Mistake("that is the N → ∞ limit 1/√d; the bound depends on N",
                lambda n_vectors, d: 1 / math.sqrt(d)),
        Mistake("N and d are swapped", lambda n_vectors, d: math.sqrt(abs(d - n_vectors) / (n_vectors * (d - 1)))),
    ]
    n = check_function("welch_bound", fn, packing.welch_bound, cases, mistakes)
    try:
        got = call_learner(fn, dict(n_vectors=4, d=10), "welch_bound")
    except CheckFailed as err:
        raise CheckFailed(f"{err}. When N ≤ d the vectors can be exactly orthogonal, so return 0.0") from None
    compare(got, 0.0, what="welch_bound(n_vectors=4, d=10)",
            context="N ≤ d: N orthogonal vectors fit, so the bound is 0")
    passed("welch_bound", f"{n + 1} cases")


# ----------------------------------------------------------------------------------------------
# Batch generators (statistical checks)


_P_PLAIN = [[0.5, 0.3, 0.05, 1.0, 0.0], [0.5, 0.3, 0.05, 1.0, 0.0], [0.2, 0.7, 0.5, 0.1, 0.9]]
_P_PAIRS = [[0.4, 0.1, 0.25], [0.4, 0.1, 0.25]]
_BATCH = 20_000


def _fail(name: str, msg: str) -> CheckFailed:
    return CheckFailed(f"{name}(...) is wrong: {msg}")


def _basic_batch_checks(name: str, fn: Callable[..., torch.Tensor], p: torch.Tensor, n_out: int,
                        marginal: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(0)
    x = call_learner(fn, dict(batch_size=_BATCH, feature_probability=p.clone()), name)
    inst = p.shape[0]
    if not isinstance(x, torch.Tensor):
        raise _fail(name, f"it should return a torch.Tensor, got {type(x).__name__}")
    want = [_BATCH, inst, n_out]
    if list(x.shape) != want:
        hint = ""
        if sorted(x.shape) == sorted(want):
            hint = ": the dimensions are in the wrong order; the layout is [batch, inst, n_feat]"
        raise _fail(name, f"shape {list(x.shape)}, expected {want} (batch_size={_BATCH}, "
                          f"feature_probability: {list(p.shape)}){hint}")
    if x.dtype != p.dtype:
        raise _fail(name, f"dtype {x.dtype}, expected {p.dtype}: use feature_probability's dtype")
    if x.device.type != p.device.type:
        raise _fail(name, f"on {x.device.type}, expected {p.device.type}: create it on feature_probability's device")
    x = x.detach().to("cpu", torch.float64)
    if torch.isnan(x).any():
        raise _fail(name, "it contains NaN")
    present = x > 0
    active_vals = x[present]
    if active_vals.numel() > 1 and active_vals.std() < 1e-6:
        raise _fail(name, f"every present feature has the same value ({active_vals[0].item():.3g}); present "
                          "features take a uniform random value in [0, 1) (torch.rand)")
    if (x < 0).any() or (x >= 1).any():
        raise _fail(name, f"values range from {x.min().item():.3g} to {x.max().item():.3g}; present features "
                          "take values in [0, 1) and absent ones are exactly 0")
    freq = present.double().mean(0)  # [inst, n_out]
    m = marginal.to(torch.float64).cpu()
    inner = (m > 0) & (m < 1)
    if inner.any() and ((freq[inner] == 0) | (freq[inner] == 1)).all():
        raise _fail(name, "each feature is either present in every example or absent in every example: you drew "
                          "one coin per batch; draw a fresh coin for every example")
    tol = 5 * torch.sqrt(m * (1 - m) / _BATCH) + 2e-3
    if ((freq - m).abs() > tol).any():
        if ((freq - (1 - m)).abs() <= tol).all():
            raise _fail(name, "features are present with probability 1 − p: feature_probability is the chance a "
                              "feature is *present* (sparsity S = 1 − p is the chance it is zero)")
        i, j = [int(v) for v in torch.nonzero((freq - m).abs() > tol)[0]]
        raise _fail(name, f"feature {j} of instance {i} is present in {freq[i, j].item():.3f} of the examples; "
                          f"expected {m[i, j].item():.3f}")
    mean_val = active_vals.mean().item()
    if abs(mean_val - 0.5) > 0.02:
        raise _fail(name, f"present features average {mean_val:.3f}; values should be uniform on [0, 1) (mean 0.5)")
    return present


def _co(present: torch.Tensor, a: tuple[int, int], b: tuple[int, int]) -> float:
    return (present[:, a[0], a[1]] & present[:, b[0], b[1]]).double().mean().item()


def check_generate_batch(fn: Callable[..., torch.Tensor]) -> None:
    """x_i ~ U[0, 1) with probability p_i, else 0, independently per example, instance and feature."""
    n_cases = 0
    for dt, dev in dtypes_and_devices():
        p = torch.tensor(_P_PLAIN, dtype=dt, device=dev)
        present = _basic_batch_checks("generate_batch", fn, p, 5, p)
        # features 0 and 1 of instance 0: p = 0.5 and 0.3, so both present in 15% of the examples
        both = _co(present, (0, 0), (0, 1))
        if abs(both - 0.15) > 0.02:
            msg = (" (one coin per example shared by all features?) Each feature needs its own coin"
                   if abs(both - 0.3) < 0.02 else "")
            raise _fail("generate_batch", f"features 0 and 1 (p = 0.5, 0.3) are both present in {both:.3f} of the "
                                          f"examples, expected 0.5 × 0.3 = 0.15{msg}")
        # feature 0 in instances 0 and 1 (both p = 0.5): independent instances -> 0.25
        both = _co(present, (0, 0), (1, 0))
        if abs(both - 0.25) > 0.02:
            raise _fail("generate_batch", f"instances 0 and 1 switch feature 0 on together in {both:.3f} of the "
                                          "examples, expected 0.25: every instance needs its own coins")
        n_cases += 1
    passed("generate_batch", f"{n_cases} batches of {_BATCH}: frequencies, independence and values as expected")


def check_generate_correlated_batch(fn: Callable[..., torch.Tensor]) -> None:
    """Pairs (2k, 2k+1) present together with probability p_k; independent U[0, 1) values."""
    n_cases = 0
    for dt, dev in dtypes_and_devices():
        p = torch.tensor(_P_PAIRS, dtype=dt, device=dev)
        marginal = p.repeat_interleave(2, dim=-1)
        present = _basic_batch_checks("generate_correlated_batch", fn, p, 6, marginal)
        together = (present[:, :, 0::2] == present[:, :, 1::2]).double().mean().item()
        if together < 0.999:
            raise _fail("generate_correlated_batch",
                        f"the two features of a pair agree (both present or both absent) in only {together:.3f} "
                        "of the examples: draw one coin per pair and use it for both features")
        both_pairs = _co(present, (0, 0), (0, 2))  # pair 0 (p .4) and pair 1 (p .1)
        if abs(both_pairs - 0.04) > 0.01:
            raise _fail("generate_correlated_batch",
                        f"pairs 0 and 1 are active together in {both_pairs:.3f} of the examples, expected "
                        "0.4 × 0.1 = 0.04: different pairs need independent coins")
        torch.manual_seed(1)
        vals = call_learner(fn, dict(batch_size=2000, feature_probability=p.clone()), "generate_correlated_batch")
        vals = vals.detach().to("cpu", torch.float64)
        on = vals[:, :, 0::2] > 0
        same = (vals[:, :, 0::2][on] == vals[:, :, 1::2][on]).double().mean().item() if on.any() else 0.0
        if same > 0.5:
            raise _fail("generate_correlated_batch", "both features of a pair have the same value; the pair shares "
                                                     "its coin, but each feature draws its own value")
        n_cases += 1
    passed("generate_correlated_batch", f"{n_cases} batches of {_BATCH}: pairs switch on together, values independent")


def check_generate_anticorrelated_batch(fn: Callable[..., torch.Tensor]) -> None:
    """Pairs never both present; each feature present with probability p_k (pair active w.p. 2p_k)."""
    n_cases = 0
    for dt, dev in dtypes_and_devices():
        p = torch.tensor(_P_PAIRS, dtype=dt, device=dev)
        marginal = p.repeat_interleave(2, dim=-1)
        torch.manual_seed(0)
        x = call_learner(fn, dict(batch_size=_BATCH, feature_probability=p.clone()), "generate_anticorrelated_batch")
        if isinstance(x, torch.Tensor) and list(x.shape) == [_BATCH, 2, 6]:
            pr = x.detach().cpu() > 0
            both = (pr[:, :, 0::2] & pr[:, :, 1::2]).double().mean().item()
            if both > 0:
                raise _fail("generate_anticorrelated_batch",
                            f"both features of a pair are present in {both:.4f} of the examples; anticorrelated "
                            "features are never present together: activate the pair, then pick one of the two")
            freq = pr.double().mean(0)
            half = marginal.cpu().double() / 2
            if ((freq - half).abs() < 5 * torch.sqrt(half * (1 - half) / _BATCH) + 2e-3).all():
                raise _fail("generate_anticorrelated_batch",
                            "each feature is present with probability p/2: the pair must be active with "
                            "probability 2p so that each of its two features is present with probability p")
        _basic_batch_checks("generate_anticorrelated_batch", fn, p, 6, marginal)
        n_cases += 1
    passed("generate_anticorrelated_batch", f"{n_cases} batches of {_BATCH}: never both, marginals p")
