"""Checks for the chapter 1 exercises (polysemanticity).

Each check compares the learner's function with the reference in :mod:`course_utils.polysemanticity` on
seeded random inputs (float32 and float64, plus the GPU when present) and names the likely mistake.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from course_utils import polysemanticity as ref
from course_utils.checks._core import (
    ATOL64,
    RTOL64,
    Case,
    CheckFailed,
    Mistake,
    call_learner,
    check_function,
    compare,
    dtypes_and_devices,
    passed,
)
from course_utils.checks._hooks import FailsAfter, assert_untouched, call_on_failing_model, snapshot
from course_utils.warmup import TinyMLP


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------
# Exercise 1.1: collect activations over a dataset with one forward hook


def _collect_wrong(model: nn.Module, module_name: str, inputs: torch.Tensor, batch_size: int,
                   what: str) -> torch.Tensor:
    """Plausible wrong versions of collect_activations, for diagnoses."""
    stored: list[torch.Tensor] = []
    module = model.get_submodule(module_name)
    if what == "input":
        handle = module.register_forward_hook(lambda m, i, o: stored.append(i[0].detach()))
    else:
        handle = module.register_forward_hook(lambda m, i, o: stored.append(o.detach()))
    outputs = []
    try:
        with torch.no_grad():
            for start in range(0, inputs.shape[0], batch_size):
                outputs.append(model(inputs[start:start + batch_size]))
    finally:
        handle.remove()
    if what == "last":
        return stored[-1]
    if what == "first":
        return stored[0]
    if what == "model_output":
        return torch.cat(outputs)
    return torch.cat(stored)


class _RecordingMLP(TinyMLP):
    """TinyMLP that records, for every forward pass, the batch size and whether autograd was on."""

    def __init__(self, d_in: int, d_hidden: int, n_classes: int) -> None:
        super().__init__(d_in=d_in, d_hidden=d_hidden, n_classes=n_classes)
        self.calls: list[tuple[int, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((int(x.shape[0]), torch.is_grad_enabled()))
        return super().forward(x)


def _count_registrations(module: nn.Module) -> list[int]:
    """Count the forward hooks registered on ``module`` (undo with ``del module.register_forward_hook``)."""
    count = [0]
    original = module.register_forward_hook

    def counting(*args: object, **kwargs: object) -> object:
        count[0] += 1
        return original(*args, **kwargs)

    module.register_forward_hook = counting  # type: ignore[method-assign]
    return count


def _check_batching(name: str, calls: list[tuple[int, bool]], registrations: int, n: int, batch_size: int,
                    context: str) -> None:
    """Stated requirements of 1.1: batches of batch_size rows, each input once, no_grad, one hook."""
    sizes = [c[0] for c in calls]
    if sizes and max(sizes) > batch_size:
        raise CheckFailed(f"{name} ran the model on {max(sizes)} rows at once ({context}): run it on batch_size "
                          "rows at a time (inputs.split(batch_size)); is the batch size hard-coded?")
    if sum(sizes) != n:
        raise CheckFailed(f"{name} ran the model on {sum(sizes)} rows in total for {n} inputs ({context}): run "
                          "every input through the model exactly once, batch by batch")
    if any(grad for _, grad in calls):
        raise CheckFailed(f"{name} ran the forward passes with autograd on ({context}): wrap the loop in "
                          "`with torch.no_grad():` (detaching alone still builds the graph of every batch)")
    if registrations > 1:
        raise CheckFailed(f"{name} registered {registrations} hooks (one per batch?) ({context}): register the "
                          "hook once, before the loop, and remove it once at the end")


def check_collect_activations(collect_activations: Callable[..., torch.Tensor]) -> None:
    """``collect_activations(model, module_name, inputs, batch_size) -> [n, ...]``: the module's output for
    every input, batch by batch, concatenated in order; the hook removed afterwards, even on error.

    Kinds covered: parameters (batch sizes 1, 32, n exactly, larger than n), shapes (n not a multiple
    of batch_size), float64 at float64 tolerance, stated requirements (batches of batch_size rows, each
    input once, under no_grad, one hook, detached output), side effects (hook removed also on error,
    the caller's hooks kept, train/eval mode, parameters and autograd unchanged).
    """
    name = "collect_activations"
    n_cases = 0
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        torch.manual_seed(seed)
        model = _RecordingMLP(d_in=6, d_hidden=5, n_classes=3).to(dtype=dt, device=dev).train(seed % 2 == 1)
        model.act.register_forward_hook(lambda m, i, o: None)  # the caller's own hook: it must survive
        inputs = torch.randn(70, 6, generator=_gen(seed), dtype=dt).to(dev)
        tol = (ATOL64, RTOL64) if dt == torch.float64 else (1e-5, 1e-4)
        for module_name, batch_size, n in (("act", 32, 70), ("hidden", 32, 70), ("act", 128, 70), ("act", 70, 70),
                                           ("readout", 1, 5)):
            x = inputs[:n]
            kwargs = dict(model=model, module_name=module_name, inputs=x, batch_size=batch_size)
            context = f"module_name={module_name!r}, inputs: {list(x.shape)}, batch_size={batch_size}"
            module = model.get_submodule(module_name)
            before = snapshot(model)
            model.calls.clear()
            registrations = _count_registrations(module)
            try:
                actual = call_learner(collect_activations, kwargs, name)
            finally:
                del module.register_forward_hook
            assert_untouched(name, model, before)
            calls = list(model.calls)
            if isinstance(actual, torch.Tensor) and actual.requires_grad:
                raise CheckFailed(f"{name} returned a tensor that still requires grad ({context}): store "
                                  "output.detach() in the hook, and run the model under torch.no_grad()")
            expected = ref.collect_activations(model, module_name, x, batch_size)
            mistakes = [
                ("you stored the module's input (the hook's second argument, a tuple), not its output (the third)",
                 _collect_wrong(model, module_name, x, batch_size, "input")),
                ("you kept only the last batch: append every batch's activations to a list and torch.cat them",
                 _collect_wrong(model, module_name, x, batch_size, "last")),
                ("you kept only the first batch: the hook runs once per batch, keep them all",
                 _collect_wrong(model, module_name, x, batch_size, "first")),
                ("you returned the model's output (the logits), not what the hook recorded",
                 _collect_wrong(model, module_name, x, batch_size, "model_output")),
            ]
            if module_name == "act":  # the ReLU's input is the pre-activation: same shape, different values
                mistakes.append(("you recorded model.hidden (the pre-activations) instead of the module asked for",
                                 model.hidden(x).detach()))
            mistakes = [(m, o) for m, o in mistakes if not (o.shape == expected.shape and torch.equal(o, expected))]
            compare(actual, expected, what=f"{name}(...)", mistakes=mistakes, context=context, atol=tol[0],
                    rtol=tol[1])
            _check_batching(name, calls, registrations[0], n, batch_size, context)
            n_cases += 1
    call_on_failing_model(collect_activations, dict(model=FailsAfter(), module_name="layer",
                                                    inputs=torch.randn(4, 3), batch_size=2), name)
    passed(name, f"{n_cases} cases, several batch sizes, and a model that fails mid-way")


# ------------------------------------------------------------------------------------------------
# Exercise 1.2: class counts among each unit's top-k examples


def _distinct_acts(n: int, units: int, g: torch.Generator, dt: torch.dtype) -> torch.Tensor:
    return (torch.randperm(n * units, generator=g).reshape(n, units).to(dt) - n * units / 3) / 10


def check_top_k_class_counts(top_k_class_counts: Callable[..., torch.Tensor]) -> None:
    """``top_k_class_counts(acts: [n, n_units], labels: [n], k, n_classes) -> [n_units, n_classes]``.

    Kinds covered: parameters (k = 1, k = n, n_classes larger than the labels use), shapes (one unit),
    dtypes (integer counts, float64 activations), inputs left unmodified.
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(100 + seed)
        acts = _distinct_acts(40, 6, g, dt)
        labels = torch.randint(0, 5, (40,), generator=g)
        cases.append(Case(dict(acts=acts.to(dev), labels=labels.to(dev), k=7, n_classes=5)))
        cases.append(Case(dict(acts=acts.to(dev), labels=labels.to(dev), k=12, n_classes=8),
                          label="n_classes=8 although the labels only use 0..4"))
        cases.append(Case(dict(acts=acts[:, :1].to(dev), labels=labels.to(dev), k=1, n_classes=5),
                          label="one unit, k = 1"))
        cases.append(Case(dict(acts=acts[:9].to(dev), labels=labels[:9].to(dev), k=9, n_classes=5),
                          label="k = n_examples"))
    mistakes = [
        Mistake("you counted the k *smallest* activations: topk's largest=True (the default) is what you want",
                lambda acts, labels, k, n_classes: ref.top_k_class_counts(-acts, labels, k, n_classes)),
        Mistake("you counted every example's class, not only the top k: the result is the same for every unit",
                lambda acts, labels, k, n_classes: nn.functional.one_hot(labels, n_classes).sum(0)[None]
                .expand(acts.shape[1], n_classes)),
        Mistake("you returned shares (counts divided by k); return the counts themselves",
                lambda acts, labels, k, n_classes: ref.top_k_class_counts(acts, labels, k, n_classes) / k),
        Mistake("you ranked by absolute value: a large negative activation is not a top activation",
                lambda acts, labels, k, n_classes: ref.top_k_class_counts(acts.abs(), labels, k, n_classes)),
        Mistake("you inferred the number of classes from labels.max() + 1: use the n_classes argument (a class "
                "may have no examples)",
                lambda acts, labels, k, n_classes: ref.top_k_class_counts(acts, labels, k, int(labels.max()) + 1)),
        Mistake("you returned [n_classes, n_units]: the expected layout is one row per unit, [n_units, n_classes]",
                lambda acts, labels, k, n_classes: ref.top_k_class_counts(acts, labels, k, n_classes).T),
    ]
    def row_sums(actual: object, kwargs: dict) -> str | None:
        if not isinstance(actual, torch.Tensor) or actual.ndim != 2 or actual.numel() == 0:
            return None
        sums = actual.sum(1)
        k = kwargs["k"]
        if bool((sums == sums[0]).all()) and sums[0].item() != k:
            return (f"every unit's counts sum to {sums[0].item():g}, not k = {k}: count the k top examples given "
                    "by the k argument (is k hard-coded?)")
        return None

    n = check_function("top_k_class_counts", top_k_class_counts, ref.top_k_class_counts, cases, mistakes,
                       hints=[row_sums])
    passed("top_k_class_counts", f"{n} random cases")


# ------------------------------------------------------------------------------------------------
# Exercise 1.3: the polysemanticity score (effective number of classes)


def _entropy(counts: torch.Tensor, log: Callable[[torch.Tensor], torch.Tensor] = torch.log) -> torch.Tensor:
    p = counts / counts.sum(1, keepdim=True)
    return -torch.where(p > 0, p * log(p.clamp_min(1e-300)), torch.zeros_like(p)).sum(1)


def check_polysemanticity_score(polysemanticity_score: Callable[..., torch.Tensor]) -> None:
    """``polysemanticity_score(counts: [n_units, n_classes]) -> [n_units]`` = exp(entropy of counts/row sum).

    Kinds covered: dtypes (integer counts, as top_k_class_counts returns them: float32 out; float64 at
    float64 tolerance), boundaries (empty classes, a one-class unit scoring 1, an even unit scoring
    m), shapes (one unit, one class), inputs left unmodified.
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(200 + seed)
        counts = torch.randint(0, 6, (6, 10), generator=g).to(dt)
        counts[counts < 2] = 0  # plenty of empty classes
        counts[:, 0] += 1  # every row has a positive sum
        counts[1] = 0
        counts[1, 3] = 50  # a monosemantic unit: score 1
        counts[2] = 5  # an even spread over 10 classes: score 10
        cases.append(Case(dict(counts=counts.to(dev))))
    g = _gen(250)
    cases.append(Case(dict(counts=torch.randint(0, 5, (7, 10), generator=g) + torch.eye(7, 10, dtype=torch.long)),
                      label="integer counts, as top_k_class_counts returns them"))
    cases.append(Case(dict(counts=torch.tensor([[0, 3, 0, 1]])), label="one unit, integer counts"))
    cases.append(Case(dict(counts=torch.tensor([[4.0], [1.0]], dtype=torch.float64)), label="one class"))
    name = "polysemanticity_score"
    zero = cases[0].kwargs["counts"]
    out = call_learner(polysemanticity_score, dict(counts=zero.clone()), name)
    if isinstance(out, torch.Tensor) and out.is_floating_point() and torch.isnan(out).any():
        raise CheckFailed(f"{name} returned NaN for units with empty classes: 0·log 0 must count as 0 "
                          "(mask the zeros with torch.where, or use torch.special.xlogy)")
    mistakes = [
        Mistake("you returned the entropy H itself: the score is exp(H), the effective number of classes",
                lambda counts: _entropy(counts)),
        Mistake("you mixed bases: the entropy is in nats (natural log), so invert it with exp, not 2**",
                lambda counts: 2 ** _entropy(counts)),
        Mistake("you took the entropy with log2 but exponentiated with exp: use the same base for both",
                lambda counts: torch.exp(_entropy(counts, torch.log2))),
        Mistake("you counted the classes with at least one top example: one stray example would then count as "
                "much as the main class; weight classes by their share (entropy)",
                lambda counts: (counts > 0).sum(1).to(counts.dtype)),
        Mistake("you returned 1 / (largest share): that only looks at the top class; use the entropy of all shares",
                lambda counts: counts.sum(1) / counts.max(1).values),
        Mistake("you did not normalise the counts to probabilities (divide each row by its sum) before the entropy",
                lambda counts: torch.exp(-torch.where(counts > 0, counts * counts.clamp_min(1e-300).log(),
                                                      torch.zeros_like(counts)).sum(1))),
    ]
    n = check_function(name, polysemanticity_score, ref.polysemanticity_score, cases, mistakes)
    passed(name, f"{n} random cases including a one-class and an evenly spread unit")


# ------------------------------------------------------------------------------------------------
# Exercise 1.4: neuron purity


def check_neuron_purity(neuron_purity: Callable[..., torch.Tensor]) -> None:
    """``neuron_purity(M: [n_neurons, n_features]) -> [n_neurons]`` = max_j M_ij² / Σ_j M_ij².

    Kinds covered: shapes (more and fewer features than neurons, one neuron, one feature), values (a
    dominant negative weight), float64 at float64 tolerance, inputs left unmodified.
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(300 + seed)
        M = torch.randn(5, 7, generator=g, dtype=dt)
        M[0, 2] = -4.0  # the dominant weight is negative
        cases.append(Case(dict(M=M.to(dev))))
        cases.append(Case(dict(M=torch.randn(4, 3, generator=g, dtype=dt).to(dev))))
        cases.append(Case(dict(M=torch.randn(1, 6, generator=g, dtype=dt).to(dev)), label="one neuron"))
        cases.append(Case(dict(M=torch.randn(3, 1, generator=g, dtype=dt).to(dev)),
                          label="one feature: every purity is 1"))
    sq = lambda M: M ** 2  # noqa: E731
    mistakes = [
        Mistake("you used |M| instead of M²: purity compares squared weights (variance shares)",
                lambda M: M.abs().max(1).values / M.abs().sum(1)),
        Mistake("you normalised over neurons (dim=0): each neuron (row) is split over features (dim=1)",
                lambda M: sq(M).max(0).values / sq(M).sum(0)),
        Mistake("you did not divide by the row's total Σ_j M_ij²", lambda M: sq(M).max(1).values),
        Mistake("you took the largest *signed* weight: a large negative weight is the neuron's main feature too; "
                "square first, then take the max",
                lambda M: M.max(1).values ** 2 / sq(M).sum(1)),
        Mistake("you returned the ratio of norms max|M_ij| / ‖M_i‖: square it",
                lambda M: M.abs().max(1).values / M.norm(dim=1)),
        Mistake("you took the largest squared weight of the whole matrix: take each neuron's own max (dim=1)",
                lambda M: sq(M).max() / sq(M).sum(1)),
    ]
    n = check_function("neuron_purity", neuron_purity, ref.neuron_purity, cases, mistakes)
    passed("neuron_purity", f"{n} random cases")


# ------------------------------------------------------------------------------------------------
# Exercise 1.5: the rotation that recovers non-aligned features (orthogonal Procrustes)


def _svd_parts(H: torch.Tensor, F: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.linalg.svd(H.T @ F)


def check_procrustes_rotation(procrustes_rotation: Callable[..., torch.Tensor]) -> None:
    """``procrustes_rotation(H: [n, d], F: [n, d]) -> Q: [d, d]``, orthogonal, minimising ‖H Q − F‖.

    Kinds covered: shapes (d = 2, 4, 5; n much larger than d), values (an exact rotation recovered,
    unrelated H and F), float64 at float64 tolerance (up to the SVD's rounding), inputs left unmodified.
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(400 + seed)
        H = torch.randn(40, 4, generator=g, dtype=dt)
        Q_true = ref.random_rotation(4, seed=seed, dtype=dt)
        cases.append(Case(dict(H=H.to(dev), F=(H @ Q_true + 0.1 * torch.randn(40, 4, generator=g, dtype=dt)).to(dev)),
                          label="F is a rotation of H plus noise"))
        cases.append(Case(dict(H=torch.randn(30, 5, generator=g, dtype=dt).to(dev),
                               F=torch.randn(30, 5, generator=g, dtype=dt).to(dev)), label="unrelated H and F"))
        H2 = torch.randn(12, 2, generator=g, dtype=dt) * torch.tensor([3.0, 1.0], dtype=dt)
        cases.append(Case(dict(H=H2.to(dev), F=(H2 @ ref.random_rotation(2, seed=7 + seed, dtype=dt)).to(dev)),
                          label="F is an exact rotation of H, d = 2"))
    mistakes = [
        Mistake("your Q is transposed (V Uᵀ): with U, S, Vh = svd(Hᵀ F) the rotation from H to F is U @ Vh "
                "(or you took the SVD of Fᵀ H)",
                lambda H, F: (_svd_parts(H, F)[0] @ _svd_parts(H, F)[2]).T),
        Mistake("torch.linalg.svd returns Vh = Vᵀ already: use U @ Vh, not U @ Vh.T",
                lambda H, F: _svd_parts(H, F)[0] @ _svd_parts(H, F)[2].T),
        Mistake("you kept the singular values (U S Vᵀ = Hᵀ F): drop S, a rotation has all singular values 1",
                lambda H, F: H.T @ F),
        Mistake("you solved the unconstrained least squares H Q ≈ F: Q must be orthogonal (a rotation or "
                "reflection), which is what the SVD construction guarantees",
                lambda H, F: torch.linalg.lstsq(H, F).solution),
        Mistake("you took the SVD of Hᵀ H (or Fᵀ F): the cross-covariance Hᵀ F is the matrix to decompose",
                lambda H, F: torch.linalg.svd(H.T @ H)[0] @ torch.linalg.svd(H.T @ H)[2]),
    ]
    n = check_function("procrustes_rotation", procrustes_rotation, ref.procrustes_rotation, cases, mistakes,
                       atol=1e-4, rtol=1e-3, atol64=1e-9, rtol64=1e-8)
    passed("procrustes_rotation", f"{n} random cases")


# ------------------------------------------------------------------------------------------------
# Exercise 1.6: read the x·y network's first layer


def check_diagonal_alignment(diagonal_alignment: Callable[..., torch.Tensor]) -> None:
    """``diagonal_alignment(W1: [n_neurons, 2]) -> [n_neurons]`` = max(|cos(w, (1,1))|, |cos(w, (1,−1))|).

    Kinds covered: values (negative cosines, either diagonal), shapes (one neuron), float64 at float64
    tolerance, inputs left unmodified.
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(500 + seed)
        W1 = 2 * torch.randn(6, 2, generator=g, dtype=dt)
        W1[0] = torch.tensor([-1.5, -1.4], dtype=dt)  # reads −(x + y): aligned, negative cosine
        W1[1] = torch.tensor([0.3, -0.35], dtype=dt)
        cases.append(Case(dict(W1=W1.to(dev))))
        cases.append(Case(dict(W1=torch.tensor([[-0.2, 0.9]], dtype=dt).to(dev)), label="one neuron"))
    s2 = math.sqrt(2.0)

    def cosines(W1: torch.Tensor) -> torch.Tensor:  # [n, 2] signed cosines with the two diagonals
        return (W1 / W1.norm(dim=1, keepdim=True)) @ (torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=W1.dtype,
                                                                   device=W1.device) / s2).T

    mistakes = [
        Mistake("you forgot the absolute value: a neuron reading −(x + y) lies on the diagonal too",
                lambda W1: cosines(W1).max(1).values),
        Mistake("you did not normalise the weight rows: divide each neuron's weights by their norm",
                lambda W1: (W1 @ (torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=W1.dtype, device=W1.device) / s2).T)
                .abs().max(1).values),
        Mistake("you did not normalise the diagonal directions: (1, 1) has length √2",
                lambda W1: (cosines(W1) * s2).abs().max(1).values),
        Mistake("you compared with (1, 1) only: the (1, −1) diagonal counts as well",
                lambda W1: cosines(W1)[:, 0].abs()),
        Mistake("you averaged over the two diagonals: take the larger of the two",
                lambda W1: cosines(W1).abs().mean(1)),
    ]
    n = check_function("diagonal_alignment", diagonal_alignment, ref.diagonal_alignment, cases, mistakes)
    passed("diagonal_alignment", f"{n} random cases")


__all__ = ["check_collect_activations", "check_top_k_class_counts", "check_polysemanticity_score",
           "check_neuron_purity", "check_procrustes_rotation", "check_diagonal_alignment"]
