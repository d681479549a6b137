"""Warm-up checks accept the reference and reject plausible wrong answers with the right diagnosis."""

from __future__ import annotations

import pytest
import torch

from course_utils.checks import CheckFailed
from course_utils.checks import warmup as checks
from course_utils.checks.warmup import (
    _affine,
    _cosine_similarity_matrix,
    _mean_activation_by_class,
    _record_activations,
    _top_k_examples,
)


def test_references_pass(capsys):
    checks.check_affine(_affine)
    checks.check_cosine_similarity_matrix(_cosine_similarity_matrix)
    checks.check_top_k_examples(_top_k_examples)
    checks.check_mean_activation_by_class(_mean_activation_by_class)
    checks.check_record_activations(_record_activations)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and all(ln.startswith("\u2714") for ln in lines)


def test_stub_passes_through_as_not_implemented():
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise 0.1 (affine)")

    with pytest.raises(NotImplementedError, match="Exercise 0.1"):
        checks.check_affine(stub)


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda x, W, b: x @ W.T, "forgot to add the bias"),
    (lambda x, W, b: x @ W + b, "instead of its transpose|shape"),
    (lambda x, W, b: torch.relu(x @ W.T + b), "applied a ReLU"),
    (lambda x, W, b: (x @ W.T + b).float(), "dtype"),
    (lambda x, W, b: (x @ W.T + b).T, "transposed"),
])
def test_affine_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_affine(wrong)


def _unsafe_cos(W):
    W_hat = W / W.norm(dim=-1, keepdim=True)
    return W_hat @ W_hat.T


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda W: W @ W.T, "did not normalise"),
    (lambda W: (W / W.norm(dim=0, keepdim=True)) @ (W / W.norm(dim=0, keepdim=True)).T, "normalised the columns"),
    (lambda W: _cosine_similarity_matrix(W.T), "compared the columns|shape"),
    (_unsafe_cos, "NaN"),
])
def test_cosine_similarity_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_cosine_similarity_matrix(wrong)


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda acts, k: tuple(acts.topk(k, dim=0, largest=False)), "smallest"),
    (lambda acts, k: tuple(acts.topk(k, dim=1)), "shape|neuron dimension"),
    (lambda acts, k: tuple(t.flip(0) for t in acts.topk(k, dim=0)), "ascending"),
    (lambda acts, k: acts.topk(k, dim=0).indices, "tuple"),
    (lambda acts, k: (acts.gather(0, acts.abs().topk(k, dim=0).indices), acts.abs().topk(k, dim=0).indices),
     "absolute value"),
])
def test_top_k_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_top_k_examples(wrong)


def _summed(acts, labels, n_classes):
    return torch.nn.functional.one_hot(labels, n_classes).to(acts.dtype).T @ acts


def _nan_for_empty(acts, labels, n_classes):
    onehot = torch.nn.functional.one_hot(labels, n_classes).to(acts.dtype)
    return (onehot.T @ acts) / onehot.sum(0)[:, None]


@pytest.mark.parametrize("wrong, diagnosis", [
    (_summed, "summed"),
    (lambda acts, labels, n_classes: _summed(acts, labels, n_classes) / acts.shape[0], "total number of examples"),
    (_nan_for_empty, "NaN"),
    (lambda acts, labels, n_classes: torch.stack([acts[labels == c].mean(0) for c in range(n_classes)]).float(),
     "dtype|NaN"),
])
def test_mean_by_class_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_mean_activation_by_class(wrong)


def _leaves_hook(model, module_name, x):
    store = []
    model.get_submodule(module_name).register_forward_hook(lambda m, i, o: store.append(o.detach()))
    model(x)
    return store[0]


def _records_input(model, module_name, x):
    store = []
    h = model.get_submodule(module_name).register_forward_hook(lambda m, i, o: store.append(i[0].detach()))
    model(x)
    h.remove()
    return store[0]


def _not_detached(model, module_name, x):
    store = []
    h = model.get_submodule(module_name).register_forward_hook(lambda m, i, o: store.append(o))
    model(x)
    h.remove()
    return store[0]


def _final_output(model, module_name, x):
    return model(x).detach()


@pytest.mark.parametrize("wrong, diagnosis", [
    (_leaves_hook, "left a hook registered"),
    (_records_input, "module's input"),
    (_not_detached, "require grad"),
    (_final_output, "final output|shape"),
])
def test_record_activations_rejects(wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_record_activations(wrong)


def test_learner_exception_becomes_a_diagnosis():
    def broken(x, W, b):
        return x @ W  # shape error for non-square W

    with pytest.raises(CheckFailed, match="raised RuntimeError.*inputs: x: \\[5, 3\\]"):
        checks.check_affine(broken)


def test_in_place_modification_is_caught():
    def mutates(W):
        W /= W.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return W @ W.T

    with pytest.raises(CheckFailed, match="in place"):
        checks.check_cosine_similarity_matrix(mutates)
