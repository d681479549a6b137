"""Checks for the warm-up exercises (chapter 0)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

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

# ------------------------------------------------------------------------------------------------
# References (the answer key lives in solutions/; these are what the checks compare against)


def _affine(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.einsum("oi,bi->bo", W, x) + b


def _cosine_similarity_matrix(W: torch.Tensor) -> torch.Tensor:
    norms = W.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    W_hat = W / norms
    return W_hat @ W_hat.T


def _top_k_examples(acts: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    res = acts.topk(k, dim=0)
    return res.values, res.indices


def _mean_activation_by_class(acts: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    onehot = torch.nn.functional.one_hot(labels, n_classes).to(acts.dtype)  # [n, classes]
    counts = onehot.sum(0).clamp_min(1)[:, None]
    return (onehot.T @ acts) / counts


def _record_activations(model: nn.Module, module_name: str, x: torch.Tensor) -> torch.Tensor:
    store: list[torch.Tensor] = []
    handle = model.get_submodule(module_name).register_forward_hook(lambda m, i, o: store.append(o.detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return store[0]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------
# Exercise 0.1


def check_affine(affine: Callable[..., torch.Tensor]) -> None:
    """``affine(x: [batch, d_in], W: [d_out, d_in], b: [d_out]) -> [batch, d_out]`` = x Wᵀ + b.

    Kinds covered: shapes (batch 1, d_out 1, square and non-square), float64 at float64 tolerance,
    differentiability (gradients to x, W, b), inputs left unmodified.
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(seed)
        # the square case catches a transposed W; batch 1 and d_out 1 catch hard-coded sizes
        for batch, d_in, d_out in ((5, 3, 4), (7, 6, 6), (1, 4, 2), (3, 5, 1)):
            cases.append(Case(dict(x=torch.randn(batch, d_in, generator=g, dtype=dt).to(dev),
                                   W=torch.randn(d_out, d_in, generator=g, dtype=dt).to(dev),
                                   b=torch.randn(d_out, generator=g, dtype=dt).to(dev))))
    mistakes = [
        Mistake("you forgot to add the bias b", lambda x, W, b: x @ W.T),
        Mistake("you multiplied by W instead of its transpose: W has shape [d_out, d_in], so y = x Wᵀ + b",
                lambda x, W, b: x @ W + b),
        Mistake("you subtracted the bias instead of adding it", lambda x, W, b: x @ W.T - b),
        Mistake("you applied a ReLU: this exercise is the linear map only", lambda x, W, b: torch.relu(x @ W.T + b)),
        Mistake("you added the sum of the biases to every output (b.sum()): add b_o to output o",
                lambda x, W, b: x @ W.T + b.sum()),
    ]
    n = check_function("affine", affine, _affine, cases, mistakes, grad=("x", "W", "b"))
    passed("affine", f"{n} random cases, float32 and float64, gradients included")


# ------------------------------------------------------------------------------------------------
# Exercise 0.2


def check_cosine_similarity_matrix(cosine_similarity_matrix: Callable[..., torch.Tensor]) -> None:
    """``cosine_similarity_matrix(W: [n, d]) -> [n, n]`` with entries Ŵᵢ·Ŵⱼ, Ŵᵢ = Wᵢ/‖Wᵢ‖.

    Kinds covered: shapes (n < d, n > d, a single row), a zero row (boundary), rows of very different
    norms, float64 at float64 tolerance, inputs left unmodified.
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(100 + seed)
        W = torch.randn(6, 4, generator=g, dtype=dt) * torch.linspace(0.5, 3.0, 6, dtype=dt)[:, None]
        cases.append(Case(dict(W=W.to(dev))))
        cases.append(Case(dict(W=torch.randn(5, 9, generator=g, dtype=dt).to(dev))))
        cases.append(Case(dict(W=(3 * torch.randn(1, 3, generator=g, dtype=dt)).to(dev)), label="a single row"))
    zero_row = torch.randn(4, 3, generator=_gen(7))
    zero_row[2] = 0.0
    cases.append(Case(dict(W=zero_row), label="row 2 is all zeros: its similarities should be 0, not NaN"))
    mistakes = [
        Mistake("you did not normalise the rows: that is the Gram matrix W Wᵀ, not cosine similarities",
                lambda W: W @ W.T),
        Mistake("you normalised the columns (dim=0) instead of the rows (dim=-1)",
                lambda W: (W / W.norm(dim=0, keepdim=True)) @ (W / W.norm(dim=0, keepdim=True)).T),
        Mistake("you compared the columns (Wᵀ W): rows are the directions here",
                lambda W: _cosine_similarity_matrix(W.T)),
        Mistake("you divided by the squared norm instead of the norm", lambda W: (W / (W.norm(dim=-1, keepdim=True) ** 2))
                @ (W / (W.norm(dim=-1, keepdim=True) ** 2)).T),
        Mistake("you normalised only one side (Ŵ Wᵀ): normalise both factors",
                lambda W: (W / W.norm(dim=-1, keepdim=True).clamp_min(1e-8)) @ W.T),
    ]
    n = check_function("cosine_similarity_matrix", cosine_similarity_matrix, _cosine_similarity_matrix, cases,
                       mistakes)
    passed("cosine_similarity_matrix", f"{n} random cases including a zero row and a single row")


# ------------------------------------------------------------------------------------------------
# Exercise 0.3


def check_top_k_examples(top_k_examples: Callable[..., Any]) -> None:
    """``top_k_examples(acts: [n_examples, n_neurons], k) -> (values [k, n_neurons], indices [k, n_neurons])``,
    sorted from the largest activation down.

    Kinds covered: parameters (k = 1, k = n_examples), shapes (one neuron, few examples), the tuple's
    order and dtypes (float values, long indices), float64, inputs left unmodified.
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(200 + seed)
        # distinct values so the ranking is unambiguous
        acts = torch.randperm(40 * 6, generator=g).reshape(40, 6).to(dt) / 10 - 10
        cases.append(Case(dict(acts=acts.to(dev), k=5)))
        cases.append(Case(dict(acts=acts[:12].to(dev), k=1)))
        # values in [-12, 12]: ranking by |a| would mix in large negative pre-activations
        cases.append(Case(dict(acts=(acts - 2).to(dev), k=6)))
        cases.append(Case(dict(acts=acts[:7, 2:3].to(dev), k=7), label="k = n_examples, one neuron"))
    mistakes = [
        Mistake("you took the k smallest activations: use largest=True (the default) in topk",
                lambda acts, k: tuple(acts.topk(k, dim=0, largest=False))),
        Mistake("you ranked along the neuron dimension (dim=1): rank the examples, dim=0",
                lambda acts, k: tuple(t.T for t in acts.topk(k, dim=1))),
        Mistake("you ranked by absolute value: a large negative pre-activation is not a top activation",
                lambda acts, k: (acts.gather(0, acts.abs().topk(k, dim=0).indices), acts.abs().topk(k, dim=0).indices)),
        Mistake("you returned the indices in ascending order: sort from the largest down",
                lambda acts, k: tuple(t.flip(0) for t in acts.topk(k, dim=0))),
        Mistake("you sorted by activation but returned the positions 0..k-1 (the sort's output order), not "
                "the examples' indices",
                lambda acts, k: (acts.topk(k, dim=0).values,
                                 torch.arange(k, device=acts.device)[:, None].expand(k, acts.shape[1]))),
    ]
    n = check_function("top_k_examples", top_k_examples, _top_k_examples, cases, mistakes,
                       names=("values", "indices"))
    passed("top_k_examples", f"{n} random cases, k from 1 to n_examples")


# ------------------------------------------------------------------------------------------------
# Exercise 0.4


def check_mean_activation_by_class(mean_activation_by_class: Callable[..., torch.Tensor]) -> None:
    """``mean_activation_by_class(acts: [n, n_neurons], labels: [n], n_classes) -> [n_classes, n_neurons]``.

    Kinds covered: parameters (n_classes larger than the labels use, an empty class, one class),
    shapes (one example, one neuron), float64, inputs left unmodified.
    """
    cases = []
    for seed, (dt, dev) in enumerate(dtypes_and_devices()):
        g = _gen(300 + seed)
        n, neurons, classes = 30, 5, 4
        labels = torch.cat([torch.arange(classes), torch.randint(0, classes - 1, (n - classes,), generator=g)])
        # unequal class sizes so that 'summed' and 'divided by n' differ from the mean
        cases.append(Case(dict(acts=torch.rand(n, neurons, generator=g, dtype=dt).to(dev), labels=labels.to(dev),
                               n_classes=classes)))
        labels = torch.randint(0, 6, (20,), generator=g)
        cases.append(Case(dict(acts=torch.randn(20, 1, generator=g, dtype=dt).to(dev), labels=labels.to(dev),
                               n_classes=6), label="one neuron, six classes"))
    labels = torch.tensor([0, 0, 1, 1])
    cases.append(Case(dict(acts=torch.rand(4, 3, generator=_gen(9)), labels=labels, n_classes=3),
                      label="class 2 has no examples: its row should be 0, not NaN"))
    cases.append(Case(dict(acts=torch.rand(1, 3, generator=_gen(10)), labels=torch.tensor([1]), n_classes=2),
                      label="one example, of class 1; class 0 is empty"))

    def summed(acts, labels, n_classes):
        return torch.nn.functional.one_hot(labels, n_classes).to(acts.dtype).T @ acts

    mistakes = [
        Mistake("you summed the activations of each class instead of averaging them (divide by the class count)",
                summed),
        Mistake("you divided every class by the total number of examples, not by that class's count",
                lambda acts, labels, n_classes: summed(acts, labels, n_classes) / acts.shape[0]),
        Mistake("you averaged over neurons instead of over examples",
                lambda acts, labels, n_classes: _mean_activation_by_class(acts.mean(1, keepdim=True).expand_as(acts),
                                                                          labels, n_classes)),
        Mistake("you took the number of classes from the labels (labels.max() + 1 or unique()): use the "
                "n_classes argument, a class may have no examples",
                lambda acts, labels, n_classes: _mean_activation_by_class(acts, labels, int(labels.max()) + 1)),
    ]
    n = check_function("mean_activation_by_class", mean_activation_by_class, _mean_activation_by_class, cases,
                       mistakes)
    passed("mean_activation_by_class", f"{n} cases including empty classes")


# ------------------------------------------------------------------------------------------------
# Exercise 0.5


def check_record_activations(record_activations: Callable[..., torch.Tensor]) -> None:
    """``record_activations(model, module_name, x) -> activations`` with a forward hook that is removed.

    Kinds covered: shapes (batch 1, another model size), float64 models, side effects (the hook gone,
    also when the forward pass raises; the caller's hooks kept; train/eval mode, parameters and
    autograd left as they were), the output detached.
    """
    name = "record_activations"
    n_cases = 0
    for seed, (dt, train) in enumerate(((torch.float32, True), (torch.float64, False))):
        torch.manual_seed(seed)
        d_in, d_hidden = (5, 7) if seed == 0 else (3, 4)
        model = TinyMLP(d_in=d_in, d_hidden=d_hidden, n_classes=3).to(dt).train(train)
        model.hidden.register_forward_hook(lambda m, i, o: None)  # the caller's own hook: it must survive
        for batch in (11, 1):
            x = torch.randn(batch, d_in, generator=_gen(400 + seed), dtype=dt)
            for module_name in ("act", "hidden", "readout"):
                expected = _record_activations(model, module_name, x)
                before = snapshot(model)
                actual = call_learner(record_activations, dict(model=model, module_name=module_name, x=x), name)
                assert_untouched(name, model, before)
                mistakes = []
                if module_name == "act":
                    mistakes.append(("you recorded the module's input (the pre-activation) instead of its output",
                                     model.hidden(x).detach()))
                if module_name == "hidden":
                    mistakes.append(("you recorded the module's input (the data x) instead of its output", x))
                    mistakes.append(("you recorded the ReLU output: record the module that was named",
                                     torch.relu(expected)))
                mistakes.append(("you returned the model's final output, not the named module's",
                                 model(x).detach()))
                compare(actual, expected, what=f"{name}(model, {module_name!r}, x)", mistakes=mistakes,
                        context=f"x: {list(x.shape)}, {str(dt).replace('torch.', '')}",
                        atol=ATOL64 if dt == torch.float64 else 1e-5, rtol=RTOL64 if dt == torch.float64 else 1e-4)
                if isinstance(actual, torch.Tensor) and actual.requires_grad:
                    raise CheckFailed("the recorded activations still require grad: detach() them (or run under "
                                      "torch.no_grad()) so that storing them does not keep the graph alive")
                n_cases += 1
    call_on_failing_model(record_activations, dict(model=FailsAfter(), module_name="layer", x=torch.randn(4, 3)),
                          name)
    passed(name, f"{n_cases} cases, hooks removed afterwards (also on error), model left as it was")
