"""Warm-up checks accept the reference and reject plausible wrong answers with the right diagnosis.

Each wrong implementation is listed with its mistake kind (values, shapes, dtypes, differentiability,
side effects, parameters, stated requirement): the id of every case starts with the kind.
"""

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


def _run(wrong, check, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        check(wrong)


# --- 0.1 affine ------------------------------------------------------------------------------


def _affine_no_grad(x, W, b):
    with torch.no_grad():
        return x @ W.T + b


def _affine_fixed_shape(x, W, b):
    return (x.reshape(-1, 3) @ W.reshape(-1, 3).T + b)  # works only for d_in = 3


def _affine_mutates(x, W, b):
    y = x @ W.T + b
    x.zero_()
    return y


AFFINE = [
    ("values: bias forgotten", lambda x, W, b: x @ W.T, "forgot to add the bias"),
    ("values: W not transposed", lambda x, W, b: x @ W + b, "instead of its transpose|shape"),
    ("values: ReLU applied", lambda x, W, b: torch.relu(x @ W.T + b), "applied a ReLU"),
    ("values: summed bias", lambda x, W, b: x @ W.T + b.sum(), "sum of the biases"),
    ("shapes: output transposed", lambda x, W, b: (x @ W.T + b).T, "transposed"),
    ("shapes: d_in hard-coded", _affine_fixed_shape, "raised|shape"),
    ("dtypes: float32 result", lambda x, W, b: (x @ W.T + b).float(), "dtype"),
    ("dtypes: float64 computed in float32", lambda x, W, b: (x.float() @ W.float().T + b.float()).to(x.dtype),
     "float32 precision"),
    ("differentiability: computed under no_grad", _affine_no_grad, "does not carry gradients"),
    ("differentiability: bias detached", lambda x, W, b: x @ W.T + b.detach(), "no gradient reaches 'b'"),
    ("side effects: input modified in place", _affine_mutates, "modified its input 'x' in place"),
]


@pytest.mark.parametrize("wrong, diagnosis", [c[1:] for c in AFFINE], ids=[c[0] for c in AFFINE])
def test_affine_rejects(wrong, diagnosis):
    _run(wrong, checks.check_affine, diagnosis)


# --- 0.2 cosine_similarity_matrix -------------------------------------------------------------


def _unsafe_cos(W):
    W_hat = W / W.norm(dim=-1, keepdim=True)
    return W_hat @ W_hat.T


def _cos_mutates(W):
    W /= W.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return W @ W.T


def _cos_float32_norms(W):
    norms = W.float().norm(dim=-1, keepdim=True).clamp_min(1e-8).to(W.dtype)
    return (W / norms) @ (W / norms).T


def _cos_fixed_n(W):
    W_hat = W / W.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return (W_hat @ W_hat.T)[:6, :6] if W.shape[0] >= 6 else torch.zeros(6, 6)


COSINE = [
    ("values: rows not normalised", lambda W: W @ W.T, "did not normalise"),
    ("values: columns normalised", lambda W: (W / W.norm(dim=0, keepdim=True)) @ (W / W.norm(dim=0, keepdim=True)).T,
     "normalised the columns"),
    ("values: one side normalised", lambda W: (W / W.norm(dim=-1, keepdim=True).clamp_min(1e-8)) @ W.T,
     "only one side"),
    ("shapes: columns compared", lambda W: _cosine_similarity_matrix(W.T), "compared the columns|shape"),
    ("shapes: n hard-coded to 6", _cos_fixed_n, "shape"),
    ("boundaries: zero row gives NaN", _unsafe_cos, "NaN"),
    ("dtypes: float64 norms computed in float32", _cos_float32_norms, "float32 precision"),
    ("side effects: input normalised in place", _cos_mutates, "in place"),
]


@pytest.mark.parametrize("wrong, diagnosis", [c[1:] for c in COSINE], ids=[c[0] for c in COSINE])
def test_cosine_similarity_rejects(wrong, diagnosis):
    _run(wrong, checks.check_cosine_similarity_matrix, diagnosis)


# --- 0.3 top_k_examples -----------------------------------------------------------------------


def _topk_sorts_in_place(acts, k):
    res = acts.topk(k, dim=0)
    acts.copy_(acts.sort(0, descending=True).values)
    return res.values, res.indices


TOPK = [
    ("values: smallest", lambda acts, k: tuple(acts.topk(k, dim=0, largest=False)), "smallest"),
    ("values: absolute value", lambda acts, k: (acts.gather(0, acts.abs().topk(k, dim=0).indices),
                                                acts.abs().topk(k, dim=0).indices), "absolute value"),
    ("values: ascending", lambda acts, k: tuple(t.flip(0) for t in acts.topk(k, dim=0)), "ascending"),
    ("values: positions instead of indices",
     lambda acts, k: (acts.topk(k, dim=0).values, torch.arange(k)[:, None].expand(k, acts.shape[1])),
     "positions 0..k-1"),
    ("shapes: ranked along neurons", lambda acts, k: tuple(acts.topk(k, dim=1)), "shape|neuron dimension"),
    ("parameters: k hard-coded to 5", lambda acts, k: tuple(acts.topk(min(5, acts.shape[0]), dim=0)), "shape"),
    ("stated: indices only", lambda acts, k: acts.topk(k, dim=0).indices, "tuple of 2 items \\(values, indices\\)"),
    ("dtypes: swapped (indices, values) tuple", lambda acts, k: tuple(acts.topk(k, dim=0))[::-1],
     "wrong order: expected \\(values, indices\\)"),
    ("dtypes: indices as float", lambda acts, k: (acts.topk(k, dim=0).values, acts.topk(k, dim=0).indices.float()),
     "expected an integer tensor"),
    ("side effects: input sorted in place", _topk_sorts_in_place, "in place"),
]


@pytest.mark.parametrize("wrong, diagnosis", [c[1:] for c in TOPK], ids=[c[0] for c in TOPK])
def test_top_k_rejects(wrong, diagnosis):
    _run(wrong, checks.check_top_k_examples, diagnosis)


# --- 0.4 mean_activation_by_class -------------------------------------------------------------


def _summed(acts, labels, n_classes):
    return torch.nn.functional.one_hot(labels, n_classes).to(acts.dtype).T @ acts


def _nan_for_empty(acts, labels, n_classes):
    onehot = torch.nn.functional.one_hot(labels, n_classes).to(acts.dtype)
    return (onehot.T @ acts) / onehot.sum(0)[:, None]


def _classes_from_labels(acts, labels, n_classes):
    return _mean_activation_by_class(acts, labels, int(labels.max()) + 1)


def _four_classes(acts, labels, n_classes):
    return _mean_activation_by_class(acts, labels.clamp_max(3), 4)


def _float32_counts(acts, labels, n_classes):
    onehot = torch.nn.functional.one_hot(labels, n_classes).float()
    return ((onehot.T @ acts.float()) / onehot.sum(0).clamp_min(1)[:, None]).to(acts.dtype)


MEAN = [
    ("values: summed", _summed, "summed"),
    ("values: divided by n", lambda acts, labels, n_classes: _summed(acts, labels, n_classes) / acts.shape[0],
     "total number of examples"),
    ("boundaries: empty class gives NaN", _nan_for_empty, "NaN"),
    ("parameters: n_classes from the labels", _classes_from_labels, "n_classes argument"),
    ("parameters: n_classes hard-coded to 4", _four_classes, "shape"),
    ("dtypes: float32 result", lambda acts, labels, n_classes: _mean_activation_by_class(acts, labels,
                                                                                        n_classes).float(),
     "dtype"),
    ("dtypes: float64 computed in float32", _float32_counts, "float32 precision"),
]


@pytest.mark.parametrize("wrong, diagnosis", [c[1:] for c in MEAN], ids=[c[0] for c in MEAN])
def test_mean_by_class_rejects(wrong, diagnosis):
    _run(wrong, checks.check_mean_activation_by_class, diagnosis)


# --- 0.5 record_activations -------------------------------------------------------------------


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


def _no_finally(model, module_name, x):
    store = []
    h = model.get_submodule(module_name).register_forward_hook(lambda m, i, o: store.append(o.detach()))
    with torch.no_grad():
        model(x)
    h.remove()
    return store[0]


def _clears_hooks(model, module_name, x):
    store = []
    module = model.get_submodule(module_name)
    module.register_forward_hook(lambda m, i, o: store.append(o.detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for m in model.modules():
            m._forward_hooks.clear()
    return store[0]


def _sets_eval(model, module_name, x):
    model.eval()
    return _record_activations(model, module_name, x)


def _grad_switched_off(model, module_name, x):
    torch.set_grad_enabled(False)
    return _record_activations(model, module_name, x)


def _freezes_params(model, module_name, x):
    for p in model.parameters():
        p.requires_grad_(False)
    return _record_activations(model, module_name, x)


def _float32_model_output(model, module_name, x):
    return _record_activations(model.float(), module_name, x.float())


RECORD = [
    ("values: module input recorded", _records_input, "module's input"),
    ("values: final output", _final_output, "final output|shape"),
    ("stated: output not detached", _not_detached, "require grad"),
    ("side effects: hook left behind", _leaves_hook, "left its hook registered"),
    ("side effects: hook left behind when the forward pass raises", _no_finally, "when the forward pass raises"),
    ("side effects: caller's hooks cleared", _clears_hooks, "removed a hook it did not register"),
    ("side effects: model switched to eval", _sets_eval, "eval mode"),
    ("side effects: autograd left off", _grad_switched_off, "autograd switched off"),
    ("side effects: parameters frozen", _freezes_params, "requires_grad"),
    ("dtypes, side effects: float64 model cast to float32 in place", _float32_model_output,
     "converted the model's parameter"),
]


@pytest.mark.parametrize("wrong, diagnosis", [c[1:] for c in RECORD], ids=[c[0] for c in RECORD])
def test_record_activations_rejects(wrong, diagnosis):
    try:
        _run(wrong, checks.check_record_activations, diagnosis)
    finally:
        torch.set_grad_enabled(True)
    assert torch.is_grad_enabled()


def test_learner_exception_becomes_a_diagnosis():
    def broken(x, W, b):
        return x @ W  # shape error for non-square W

    with pytest.raises(CheckFailed, match="raised RuntimeError.*inputs: x: \\[5, 3\\]"):
        checks.check_affine(broken)
