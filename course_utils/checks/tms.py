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


_SHAPES = ((7, 3, 2, 5), (7, 2, 3, 6), (1, 1, 4, 4))  # (batch, inst, m, n): batch 1, one instance, m = n


def _tms_cases() -> list[Case]:
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        for batch, inst, m, n in _SHAPES:
            g = _gen(100 + k)
            cases.append(Case(dict(W=_rand((inst, m, n), g, dt, dev), b=_rand((inst, n), g, dt, dev) * 0.5,
                                   x=torch.rand((batch, inst, n), generator=g, dtype=torch.float64).to(dt).to(dev))))
    return cases


def check_tms_forward(fn: Callable[..., torch.Tensor]) -> None:
    """x' = ReLU(WᵀWx + b) for W: [inst, m, n], b: [inst, n], x: [batch, inst, n].

    Kinds covered: shapes (batch 1, one instance, m < n and m = n), independence of the instances,
    float64 at float64 tolerance, differentiability (gradients to W and b, as training needs).
    """

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
    n = check_function("tms_forward", fn, tms.tms_forward, _tms_cases(), mistakes, grad=("W", "b"))
    passed("tms_forward", f"{n} random cases, gradients included")


def check_neuron_forward(fn: Callable[..., torch.Tensor]) -> None:
    """h = ReLU(Wx), x' = ReLU(Wᵀh + b).

    Kinds covered: shapes (batch 1, one instance, m < n and m = n), float64 at float64 tolerance,
    differentiability (gradients to W and b).
    """

    def hidden(W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("imf,bif->bim", W, x)

    def out(W: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.einsum("imf,bim->bif", W, h)

    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(200 + k)
        for batch, inst, m, n in ((9, 3, 4, 6), (1, 1, 3, 3)):
            cases.append(Case(dict(W=_rand((inst, m, n), g, dt, dev), b=_rand((inst, n), g, dt, dev) * 0.5,
                                   x=torch.rand((batch, inst, n), generator=g, dtype=torch.float64).to(dt).to(dev))))
    mistakes = [
        Mistake("the hidden ReLU is missing (that is the plain toy model): h = ReLU(Wx)",
                lambda W, b, x: torch.relu(out(W, hidden(W, x)) + b)),
        Mistake("the ReLU is missing on the output: x' = ReLU(Wᵀh + b)",
                lambda W, b, x: out(W, torch.relu(hidden(W, x))) + b),
        Mistake("the bias is added after the output ReLU",
                lambda W, b, x: torch.relu(out(W, torch.relu(hidden(W, x)))) + b),
        Mistake("the bias b is missing", lambda W, b, x: torch.relu(out(W, torch.relu(hidden(W, x))))),
    ]
    n = check_function("neuron_forward", fn, tms.neuron_forward, cases, mistakes, grad=("W", "b"))
    passed("neuron_forward", f"{n} random cases")


def check_abs_forward(fn: Callable[..., torch.Tensor]) -> None:
    """y' = ReLU(W₂ ReLU(W₁x) + b) with W1: [inst, m, n], W2: [inst, n, m].

    Kinds covered: shapes (batch 1, one instance, m ≠ n and m = n), float64 at float64 tolerance,
    differentiability (gradients to W1, W2 and b).
    """

    def hidden(W1: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("imf,bif->bim", W1, x)

    def out(W2: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ifm,bim->bif", W2, h)

    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(250 + k)
        for batch, inst, m, n in ((9, 2, 4, 6), (1, 1, 3, 3)):
            cases.append(Case(dict(W1=_rand((inst, m, n), g, dt, dev), W2=_rand((inst, n, m), g, dt, dev),
                                   b=_rand((inst, n), g, dt, dev) * 0.5,
                                   x=(2 * torch.rand((batch, inst, n), generator=g, dtype=torch.float64) - 1)
                                   .to(dt).to(dev))))
    mistakes = [
        Mistake("the hidden ReLU is missing: h = ReLU(W₁x); without it the model is linear until the output "
                "and cannot compute |x|", lambda W1, W2, b, x: torch.relu(out(W2, hidden(W1, x)) + b)),
        Mistake("the ReLU is missing on the output: y' = ReLU(W₂h + b)",
                lambda W1, W2, b, x: out(W2, torch.relu(hidden(W1, x))) + b),
        Mistake("you read out with W₁ᵀ (tied weights); this model has its own output matrix W2",
                lambda W1, W2, b, x: torch.relu(out(W1.transpose(1, 2), torch.relu(hidden(W1, x))) + b)),
        Mistake("the bias b is missing", lambda W1, W2, b, x: torch.relu(out(W2, torch.relu(hidden(W1, x))))),
    ]
    n = check_function("abs_forward", fn, tms.abs_forward, cases, mistakes, grad=("W1", "W2", "b"))
    passed("abs_forward", f"{n} random cases")


# ----------------------------------------------------------------------------------------------
# Loss


def check_importance_weighted_loss(fn: Callable[..., torch.Tensor]) -> None:
    """L = Σ_inst mean_{batch, feat} I (target − out)².

    Kinds covered: shapes (batch 1, one instance, one feature, batch ≠ features), float64 at float64
    tolerance, differentiability (the gradient to ``out`` is what trains the model).
    """
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(300 + k)
        for batch, inst, n in ((8, 3, 5), (1, 2, 4), (6, 1, 1)):
            cases.append(Case(dict(
                out=torch.rand((batch, inst, n), generator=g, dtype=torch.float64).to(dt).to(dev),
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
    n = check_function("importance_weighted_loss", fn, tms.importance_weighted_loss, cases, mistakes,
                       grad=("out",))
    passed("importance_weighted_loss", f"{n} random cases, gradients included")


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
    """D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)² for W: [inst, m, n] -> [inst, n].

    Kinds covered: shapes (one instance, m = 1, m > n), a zero feature (boundary: D = 0, not NaN),
    float64 at float64 tolerance, inputs left unmodified.
    """
    cases = []
    for k, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(400 + k)
        cases.append(Case(dict(W=_rand((3, 2, 5), g, dt, dev))))
        cases.append(Case(dict(W=_rand((2, 4, 7), g, dt, dev))))
        cases.append(Case(dict(W=_rand((1, 1, 3), g, dt, dev)), label="one instance, one hidden dimension"))
        cases.append(Case(dict(W=_rand((2, 5, 3), g, dt, dev)), label="more dimensions than features"))
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
    n = check_function("feature_dimensionality", fn, tms.feature_dimensionality, cases, mistakes, atol=1e-4,
                       atol64=1e-9, rtol64=1e-8)
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
    # boundaries: ‖W_last‖ exactly 0.5 is *not learned*, whatever the overlap
    edge = torch.tensor([[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]],
                         [[1.0, 0.0, 0.0], [0.0, 1.0, 0.5]],
                         [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    one = torch.tensor([[[0.9, 0.1, 0.0, 0.7], [0.0, 1.0, 0.0, 0.0], [0.1, 0.0, 1.0, 0.0]]], dtype=torch.float64)
    cases = []
    for dt, dev in dtypes_and_devices():
        cases += [Case(dict(W=one_d.to(dt).to(dev)), label="2 features in 1 dimension"),
                  Case(dict(W=two_d.to(dt).to(dev)), label="3 features in 2 dimensions"),
                  Case(dict(W=edge.to(dt).to(dev)), label="norms exactly 0.5 (not learned) and 0"),
                  Case(dict(W=one.to(dt).to(dev)), label="one instance, 4 features in 3 dimensions")]
    return cases


def check_classify_phase(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """0 = not learned (‖W_last‖ ≤ 0.5), 1 = superposed (Σ_{j≠last}(Ŵ_last·W_j)² > 0.1), 2 = dedicated.

    Kinds covered: boundaries (‖W_last‖ exactly 0.5, a zero feature), values (each phase, the test
    order), shapes (one instance, more dimensions), dtypes (a long tensor, as the text says).
    """

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
        Mistake("a norm of exactly 0.5 counts as learned in your code: 'not learned' is ‖W_last‖ ≤ 0.5, so "
                "learned needs ‖W_last‖ > 0.5 (not >=)",
                lambda W: phase(norms(W) >= 0.5, tms.interference(W)[:, -1] > 0.1)),
    ]
    n = check_function("classify_phase", fn, reference, _phase_cases(), mistakes)
    passed("classify_phase", f"{n} hand-built sets of instances")


# ----------------------------------------------------------------------------------------------
# Packing


def check_max_abs_cosine(fn: Callable[[torch.Tensor], object]) -> None:
    """max_{i≠j} |cos(V_i, V_j)| over the rows of V: [N, d].

    Kinds covered: shapes (N > d, N < d, a single pair, d = 1), rows of different norms, float64 at
    float64 tolerance, inputs left unmodified.
    """

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
        cases.append(Case(dict(V=_rand((2, 3), g, dt, dev)), label="a single pair"))
        cases.append(Case(dict(V=_rand((4, 1), g, dt, dev)), label="d = 1: every |cos| is 1"))
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
    """√((N − d)/(d(N − 1))) for N > d, else 0.

    Kinds covered: boundaries (N = d + 1, N = d, N < d, d = 1), stated requirement (a Python float,
    also for N ≤ d), parameters across three orders of magnitude.
    """
    sizes = ((10, 3), (512, 256), (4096, 768), (3, 2), (7, 1), (6, 6))
    def require_float(got: object, n_vectors: int, d: int) -> None:
        if not isinstance(got, float):
            hint = ("a tensor: use math.sqrt (or float(...))" if isinstance(got, torch.Tensor)
                    else f"{type(got).__name__}" + (": return 0.0, not 0" if got == 0 else ""))
            raise CheckFailed(f"welch_bound(n_vectors={n_vectors}, d={d}) should return a float, got {hint}")

    for n_vectors, d in sizes[:1]:
        require_float(call_learner(fn, dict(n_vectors=n_vectors, d=d), "welch_bound"), n_vectors, d)
    cases = [Case(dict(n_vectors=n, d=d)) for n, d in sizes]
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
    for n_vectors, d in sizes[1:] + ((4, 10),):
        require_float(call_learner(fn, dict(n_vectors=n_vectors, d=d), "welch_bound"), n_vectors, d)
    passed("welch_bound", f"{n + 1} cases, from d = 1 to N ≤ d")


# ----------------------------------------------------------------------------------------------
# Batch generators (statistical checks)
#
# Kinds covered, for each of the three generators: shapes (another [inst, n] and batch size 1, so a
# hard-coded shape fails), dtypes/devices, values (U[0, 1): range, mean, variance, quartiles),
# frequencies within 5 standard errors (a wrong probability fails), independence across examples,
# features, instances and pairs (every covariance that should be 0 is within 5.5 standard errors),
# randomness (torch.manual_seed is honoured; two calls give different batches, so a generator that
# reseeds or caches fails). Statistical tolerances hold for the reference on several seeds (tests).


_P_PLAIN = [[0.5, 0.3, 0.05, 1.0, 0.0], [0.5, 0.3, 0.05, 1.0, 0.0], [0.2, 0.7, 0.5, 0.1, 0.9]]
_P_PAIRS = [[0.4, 0.1, 0.25], [0.4, 0.1, 0.25]]
_BATCH = 20_000
_Z = 5.0  # standard errors allowed for a frequency or a mean
_Z_COV = 5.5  # for the (many) covariances that must vanish


def _fail(name: str, msg: str) -> CheckFailed:
    return CheckFailed(f"{name}(...) is wrong: {msg}")


def _call_batch(name: str, fn: Callable[..., torch.Tensor], batch_size: int, p: torch.Tensor, n_out: int,
                seed: int | None = 0) -> torch.Tensor:
    """Call the generator (after torch.manual_seed(seed) unless None) and check type, shape, dtype, device."""
    if seed is not None:
        torch.manual_seed(seed)
    x = call_learner(fn, dict(batch_size=batch_size, feature_probability=p.clone()), name)
    if not isinstance(x, torch.Tensor):
        raise _fail(name, f"it should return a torch.Tensor, got {type(x).__name__}")
    want = [batch_size, p.shape[0], n_out]
    if list(x.shape) != want:
        hint = ": a size is hard-coded, or taken from the wrong argument"
        if sorted(x.shape) == sorted(want):
            hint = ": the dimensions are in the wrong order; the layout is [batch, inst, n_feat]"
        raise _fail(name, f"shape {list(x.shape)}, expected {want} (batch_size={batch_size}, "
                          f"feature_probability: {list(p.shape)}){hint}")
    if x.dtype != p.dtype:
        raise _fail(name, f"dtype {x.dtype}, expected {p.dtype}: use feature_probability's dtype")
    if x.device.type != p.device.type:
        raise _fail(name, f"on {x.device.type}, expected {p.device.type}: create it on feature_probability's device")
    return x


def _check_values(name: str, x: torch.Tensor) -> None:
    """Present features take U[0, 1) values: range, mean, variance and quartiles within 5 standard errors."""
    if torch.isnan(x).any():
        raise _fail(name, "it contains NaN")
    v = x[x > 0]
    if v.numel() > 1 and v.std() < 1e-6:
        raise _fail(name, f"every present feature has the same value ({v[0].item():.3g}); present "
                          "features take a uniform random value in [0, 1) (torch.rand)")
    if (x < 0).any() or (x >= 1).any():
        raise _fail(name, f"values range from {x.min().item():.3g} to {x.max().item():.3g}; present features "
                          "take values in [0, 1) and absent ones are exactly 0")
    n = v.numel()
    if n < 1000:  # too few values for the statistics below (a batch of 1 checks shape and range only)
        return
    if abs(v.mean().item() - 0.5) > _Z * math.sqrt(1 / 12 / n):
        raise _fail(name, f"present features average {v.mean().item():.4f}; values should be uniform on [0, 1) "
                          "(mean 0.5): torch.rand, not randn, and not scaled by p")
    if abs(v.var().item() - 1 / 12) > _Z * math.sqrt(1 / 180 / n):
        raise _fail(name, f"present features have variance {v.var().item():.4f}, expected 1/12 = 0.0833 for "
                          "U[0, 1)")
    for q in (0.25, 0.75):
        frac = (v < q).double().mean().item()
        if abs(frac - q) > _Z * math.sqrt(q * (1 - q) / n):
            raise _fail(name, f"{frac:.3f} of the present values are below {q}, expected {q} for U[0, 1)")


def _check_frequencies(name: str, present: torch.Tensor, marginal: torch.Tensor) -> None:
    """Each feature is present with its marginal probability, within 5 standard errors (exactly for 0, 1)."""
    freq = present.double().mean(0)  # [inst, n_out]
    m = marginal.to("cpu", torch.float64)
    inner = (m > 0) & (m < 1)
    if inner.any() and ((freq[inner] == 0) | (freq[inner] == 1)).all():
        raise _fail(name, "each feature is either present in every example or absent in every example: you drew "
                          "one coin per batch; draw a fresh coin for every example")
    tol = _Z * torch.sqrt(m * (1 - m) / present.shape[0])
    bad = (freq - m).abs() > tol
    if bad.any():
        if ((freq - (1 - m)).abs() <= tol).all():
            raise _fail(name, "features are present with probability 1 − p: feature_probability is the chance a "
                              "feature is *present* (sparsity S = 1 − p is the chance it is zero)")
        i, j = [int(v) for v in torch.nonzero(bad)[0]]
        raise _fail(name, f"feature {j} of instance {i} is present in {freq[i, j].item():.4f} of the examples; "
                          f"expected {m[i, j].item():.4f} ± {tol[i, j].item():.4f} (5 standard errors)")


def _independence(name: str, z: torch.Tensor, what: str, allowed: torch.Tensor | None = None) -> None:
    """Every pair of columns of ``z: [batch, inst, k]`` (other than ``allowed`` [inst·k, inst·k]) has a
    covariance within 5.5 standard errors of 0. ``what`` names the columns (features, pairs)."""
    b, inst, k = z.shape
    flat = z.reshape(b, inst * k).to(torch.float64)
    centred = flat - flat.mean(0)
    cov = centred.T @ centred / b
    var = cov.diagonal()
    se = torch.sqrt(var[:, None] * var[None, :] / b)
    mask = ~torch.eye(inst * k, dtype=torch.bool) & (var[:, None] > 0) & (var[None, :] > 0)
    if allowed is not None:
        mask &= ~allowed
    bad = mask & (cov.abs() > _Z_COV * se + 1e-12)
    if not bad.any():
        return
    a, c = [int(v) for v in torch.nonzero(bad)[0]]
    (ia, ja), (ic, jc) = divmod(a, k), divmod(c, k)
    corr = (cov[a, c] / torch.sqrt(var[a] * var[c])).item()
    if ia == ic:
        hint = (f"{what} {ja} and {jc} of instance {ia} are correlated (correlation {corr:.3f}, should be 0): each "
                f"of the {what} needs its own coin and its own value")
    else:
        hint = (f"instance {ia} ({what[:-1]} {ja}) and instance {ic} ({what[:-1]} {jc}) are correlated (correlation "
                f"{corr:.3f}, should be 0): every instance needs its own coins and values")
    raise _fail(name, hint)


def _pair_block(inst: int, k: int) -> torch.Tensor:
    """[inst·2k, inst·2k]: True for the two features of the same pair (their covariance is by design)."""
    idx = torch.arange(inst * 2 * k)
    same_inst = (idx[:, None] // (2 * k)) == (idx[None, :] // (2 * k))
    same_pair = ((idx[:, None] % (2 * k)) // 2) == ((idx[None, :] % (2 * k)) // 2)
    return same_inst & same_pair


def _check_randomness(name: str, fn: Callable[..., torch.Tensor], p: torch.Tensor, n_out: int) -> None:
    """Randomness: the same torch.manual_seed gives the same batch, and consecutive calls differ."""
    a = _call_batch(name, fn, 64, p, n_out, seed=5)
    b = _call_batch(name, fn, 64, p, n_out, seed=None)
    again = _call_batch(name, fn, 64, p, n_out, seed=5)
    if torch.equal(a, b):
        raise _fail(name, "two calls in a row returned the same batch: do not call torch.manual_seed (or create a "
                          "fixed torch.Generator) inside the function, training would see one batch over and over")
    if not torch.equal(a, again):
        raise _fail(name, "torch.manual_seed does not make the batch reproducible: draw with torch.rand (PyTorch's "
                          "global generator), not numpy or Python's random")


def _check_other_shapes(name: str, fn: Callable[..., torch.Tensor], p_other: torch.Tensor, n_out: int) -> None:
    """Shapes: another number of instances and features, and batch size 1 (a hard-coded shape fails)."""
    for batch in (1, 257):
        _check_values(name, _call_batch(name, fn, batch, p_other, n_out).to("cpu", torch.float64))


def _co(present: torch.Tensor, a: tuple[int, int], b: tuple[int, int]) -> float:
    return (present[:, a[0], a[1]] & present[:, b[0], b[1]]).double().mean().item()


def check_generate_batch(fn: Callable[..., torch.Tensor]) -> None:
    """x_i ~ U[0, 1) with probability p_i, else 0, independently per example, instance and feature."""
    name = "generate_batch"
    n_cases = 0
    for dt, dev in dtypes_and_devices():
        p = torch.tensor(_P_PLAIN, dtype=dt, device=dev)
        x = _call_batch(name, fn, _BATCH, p, 5).to("cpu", torch.float64)
        _check_values(name, x)
        present = x > 0
        _check_frequencies(name, present, p)
        both = _co(present, (0, 0), (0, 1))  # features 0 and 1 of instance 0: p = 0.5 and 0.3
        if abs(both - 0.3) < 0.02:
            raise _fail(name, f"features 0 and 1 (p = 0.5, 0.3) are both present in {both:.3f} of the examples, "
                              "expected 0.5 × 0.3 = 0.15 (one coin per example shared by all features?) Each "
                              "feature needs its own coin")
        _independence(name, present.double(), "features")
        _independence(name, x, "features")
        _check_other_shapes(name, fn, torch.full((2, 7), 0.4, dtype=dt, device=dev), 7)
        _check_randomness(name, fn, p, 5)
        n_cases += 1
    passed(name, f"{n_cases} batches of {_BATCH}: frequencies, independence, values and seeding as expected")


def check_generate_correlated_batch(fn: Callable[..., torch.Tensor]) -> None:
    """Pairs (2k, 2k+1) present together with probability p_k; independent U[0, 1) values."""
    name = "generate_correlated_batch"
    n_cases = 0
    for dt, dev in dtypes_and_devices():
        p = torch.tensor(_P_PAIRS, dtype=dt, device=dev)
        x = _call_batch(name, fn, _BATCH, p, 6).to("cpu", torch.float64)
        _check_values(name, x)
        present = x > 0
        together = (present[:, :, 0::2] == present[:, :, 1::2]).double().mean().item()
        if together < 1.0:
            raise _fail(name, f"the two features of a pair agree (both present or both absent) in only "
                              f"{together:.3f} of the examples: draw one coin per pair and use it for both features")
        _check_frequencies(name, present, p.repeat_interleave(2, dim=-1))
        _independence(name, present[:, :, 0::2].double(), "pairs")
        _independence(name, x, "features", allowed=_pair_block(*p.shape))
        on = present[:, :, 0::2]
        first, second = x[:, :, 0::2][on], x[:, :, 1::2][on]
        if on.any() and (first == second).double().mean().item() > 0.5:
            raise _fail(name, "both features of a pair have the same value; the pair shares its coin, but each "
                              "feature draws its own value")
        r = torch.corrcoef(torch.stack([first, second]))[0, 1].item()
        if abs(r) > _Z_COV / math.sqrt(first.numel()):
            raise _fail(name, f"the values of the two features of a pair are correlated (correlation {r:.3f}) when "
                              "the pair is present: each feature draws its own value")
        _check_other_shapes(name, fn, torch.full((1, 4), 0.3, dtype=dt, device=dev), 8)
        _check_randomness(name, fn, p, 6)
        n_cases += 1
    passed(name, f"{n_cases} batches of {_BATCH}: pairs switch on together, values independent")


def check_generate_anticorrelated_batch(fn: Callable[..., torch.Tensor]) -> None:
    """Pairs never both present; each feature present with probability p_k (pair active w.p. 2p_k)."""
    name = "generate_anticorrelated_batch"
    n_cases = 0
    for dt, dev in dtypes_and_devices():
        p = torch.tensor(_P_PAIRS, dtype=dt, device=dev)
        marginal = p.repeat_interleave(2, dim=-1)
        x = _call_batch(name, fn, _BATCH, p, 6).to("cpu", torch.float64)
        pr = x > 0
        both = (pr[:, :, 0::2] & pr[:, :, 1::2]).double().mean().item()
        if both > 0:
            raise _fail(name, f"both features of a pair are present in {both:.4f} of the examples; anticorrelated "
                              "features are never present together: activate the pair, then pick one of the two")
        freq = pr.double().mean(0)
        half = marginal.to("cpu", torch.float64) / 2
        if ((freq - half).abs() < _Z * torch.sqrt(half * (1 - half) / _BATCH)).all():
            raise _fail(name, "each feature is present with probability p/2: the pair must be active with "
                              "probability 2p so that each of its two features is present with probability p")
        _check_values(name, x)
        _check_frequencies(name, pr, marginal)
        active = (pr[:, :, 0::2] | pr[:, :, 1::2]).double()
        _independence(name, active, "pairs")
        _independence(name, x, "features", allowed=_pair_block(*p.shape))
        _check_other_shapes(name, fn, torch.full((3, 2), 0.2, dtype=dt, device=dev), 4)
        _check_randomness(name, fn, p, 6)
        n_cases += 1
    passed(name, f"{n_cases} batches of {_BATCH}: never both, marginals p, independent pairs and instances")
