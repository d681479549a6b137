"""The chapter 1 checks accept the reference, let a stub through, and reject plausible wrong answers with
the right diagnosis (at least three per check). Every wrong answer states its mistake kind (values,
shapes, dtypes, parameters, boundaries, stated requirements, side effects)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_utils import polysemanticity as P
from course_utils.checks import CheckFailed
from course_utils.checks import polysemanticity as checks

# ------------------------------------------------------------------------------------------------
# learners' versions: right ones written differently from the reference, and wrong ones


def collect_ok(model, module_name, inputs, batch_size):
    chunks = []
    handle = dict(model.named_modules())[module_name].register_forward_hook(
        lambda m, i, o: chunks.append(o.detach().clone()))
    try:
        with torch.no_grad():
            for batch in inputs.split(batch_size):
                model(batch)
    finally:
        handle.remove()
    return torch.cat(chunks)


def collect_input(model, module_name, inputs, batch_size):
    chunks = []
    handle = model.get_submodule(module_name).register_forward_hook(lambda m, i, o: chunks.append(i[0].detach()))
    try:
        with torch.no_grad():
            for batch in inputs.split(batch_size):
                model(batch)
    finally:
        handle.remove()
    return torch.cat(chunks)


def collect_last_batch(model, module_name, inputs, batch_size):
    box = {}
    handle = model.get_submodule(module_name).register_forward_hook(lambda m, i, o: box.update(out=o.detach()))
    try:
        with torch.no_grad():
            for batch in inputs.split(batch_size):
                model(batch)
    finally:
        handle.remove()
    return box["out"]


def collect_leaks_hook(model, module_name, inputs, batch_size):
    chunks = []
    model.get_submodule(module_name).register_forward_hook(lambda m, i, o: chunks.append(o.detach()))
    with torch.no_grad():
        for batch in inputs.split(batch_size):
            model(batch)
    return torch.cat(chunks)


def collect_no_finally(model, module_name, inputs, batch_size):
    chunks = []
    handle = model.get_submodule(module_name).register_forward_hook(lambda m, i, o: chunks.append(o.detach()))
    with torch.no_grad():
        for batch in inputs.split(batch_size):
            model(batch)
    handle.remove()
    return torch.cat(chunks)


def collect_not_detached(model, module_name, inputs, batch_size):
    chunks = []
    handle = model.get_submodule(module_name).register_forward_hook(lambda m, i, o: chunks.append(o))
    try:
        for batch in inputs.split(batch_size):
            model(batch)
    finally:
        handle.remove()
    return torch.cat(chunks)


def collect_logits(model, module_name, inputs, batch_size):
    with torch.no_grad():
        return torch.cat([model(b) for b in inputs.split(batch_size)])


def counts_ok(acts, labels, k, n_classes):
    idx = torch.argsort(acts, dim=0, descending=True)[:k]
    out = torch.zeros(acts.shape[1], n_classes, dtype=torch.long, device=acts.device)
    for unit in range(acts.shape[1]):
        out[unit] = torch.bincount(labels[idx[:, unit]], minlength=n_classes)
    return out


def counts_smallest(acts, labels, k, n_classes):
    idx = acts.topk(k, dim=0, largest=False).indices
    return nn.functional.one_hot(labels[idx], n_classes).sum(0)


def counts_all_examples(acts, labels, k, n_classes):
    return torch.bincount(labels, minlength=n_classes).repeat(acts.shape[1], 1)


def counts_shares(acts, labels, k, n_classes):
    idx = acts.topk(k, dim=0).indices
    return nn.functional.one_hot(labels[idx], n_classes).sum(0).float() / k


def counts_max_label(acts, labels, k, n_classes):
    idx = acts.topk(k, dim=0).indices
    return nn.functional.one_hot(labels[idx]).sum(0)  # one_hot infers the number of classes


def counts_transposed(acts, labels, k, n_classes):
    idx = acts.topk(k, dim=0).indices
    return nn.functional.one_hot(labels[idx], n_classes).sum(0).T


def score_ok(counts):
    p = counts / counts.sum(-1, keepdim=True)
    return torch.exp(-torch.special.xlogy(p, p).sum(-1))


def score_entropy(counts):
    p = counts / counts.sum(-1, keepdim=True)
    return -torch.special.xlogy(p, p).sum(-1)


def score_nan(counts):
    p = counts / counts.sum(-1, keepdim=True)
    return torch.exp(-(p * p.log()).sum(-1))


def score_log2(counts):
    p = counts / counts.sum(-1, keepdim=True)
    return torch.exp(-torch.where(p > 0, p * torch.log2(p), 0.0).sum(-1))


def score_distinct(counts):
    return (counts > 0).sum(-1).to(counts.dtype)


def score_unnormalised(counts):
    return torch.exp(-torch.special.xlogy(counts, counts).sum(-1))


def purity_ok(M):
    w = M.pow(2)
    return (w / w.sum(dim=1, keepdim=True)).max(dim=1).values


def purity_abs(M):
    return M.abs().max(1).values / M.abs().sum(1)


def purity_signed_max(M):
    return M.max(1).values ** 2 / (M ** 2).sum(1)


def purity_unnormalised(M):
    return (M ** 2).max(1).values


def purity_columns(M):
    return (M ** 2).max(0).values / (M ** 2).sum(0)


def procrustes_ok(H, F):
    U, S, V = torch.svd(H.T @ F)  # the old API returns V, not Vh
    return U @ V.T


def procrustes_transposed(H, F):
    U, S, Vh = torch.linalg.svd(H.T @ F)
    return Vh.T @ U.T


def procrustes_vh_twice(H, F):
    U, S, Vh = torch.linalg.svd(H.T @ F)
    return U @ Vh.T


def procrustes_lstsq(H, F):
    return torch.linalg.pinv(H) @ F


def procrustes_keeps_s(H, F):
    U, S, Vh = torch.linalg.svd(H.T @ F)
    return U @ torch.diag(S) @ Vh


def alignment_ok(W1):
    diag = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=W1.dtype, device=W1.device)
    cos = nn.functional.cosine_similarity(W1[:, None, :], diag[None, :, :], dim=-1)
    return cos.abs().amax(dim=1)


def alignment_no_abs(W1):
    diag = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=W1.dtype, device=W1.device) / math.sqrt(2)
    return ((W1 / W1.norm(dim=1, keepdim=True)) @ diag.T).max(1).values


def alignment_unnormalised_rows(W1):
    diag = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=W1.dtype, device=W1.device) / math.sqrt(2)
    return (W1 @ diag.T).abs().max(1).values


def alignment_raw_diagonals(W1):
    diag = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=W1.dtype, device=W1.device)
    return ((W1 / W1.norm(dim=1, keepdim=True)) @ diag.T).abs().max(1).values


def alignment_one_diagonal(W1):
    d = torch.tensor([1.0, 1.0], dtype=W1.dtype, device=W1.device) / math.sqrt(2)
    return ((W1 / W1.norm(dim=1, keepdim=True)) @ d).abs()


def collect_hard_coded_batch(model, module_name, inputs, batch_size):
    return collect_ok(model, module_name, inputs, 256)


def collect_detach_only(model, module_name, inputs, batch_size):
    chunks = []
    handle = model.get_submodule(module_name).register_forward_hook(lambda m, i, o: chunks.append(o.detach()))
    try:
        for batch in inputs.split(batch_size):
            model(batch)
    finally:
        handle.remove()
    return torch.cat(chunks)


def collect_hook_per_batch(model, module_name, inputs, batch_size):
    chunks = []
    with torch.no_grad():
        for batch in inputs.split(batch_size):
            handle = model.get_submodule(module_name).register_forward_hook(
                lambda m, i, o: chunks.append(o.detach()))
            try:
                model(batch)
            finally:
                handle.remove()
    return torch.cat(chunks)


def collect_drops_last_batch(model, module_name, inputs, batch_size):
    n = inputs.shape[0]
    return collect_ok(model, module_name, inputs[: n - n % batch_size or n], batch_size)


def collect_clears_hooks(model, module_name, inputs, batch_size):
    out = collect_ok(model, module_name, inputs, batch_size)
    model.get_submodule(module_name)._forward_hooks.clear()
    return out


def collect_sets_eval(model, module_name, inputs, batch_size):
    model.eval()
    return collect_ok(model, module_name, inputs, batch_size)


def collect_float32(model, module_name, inputs, batch_size):
    return collect_ok(model, module_name, inputs, batch_size).float()


def counts_float(acts, labels, k, n_classes):
    return counts_ok(acts, labels, k, n_classes).float()


def counts_ten_classes(acts, labels, k, n_classes):
    idx = acts.topk(k, dim=0).indices
    return nn.functional.one_hot(labels[idx], 10).sum(0)


def counts_k_hard_coded(acts, labels, k, n_classes):
    idx = acts.topk(min(7, acts.shape[0]), dim=0).indices
    return nn.functional.one_hot(labels[idx], n_classes).sum(0)


def score_in_place(counts):
    counts /= counts.sum(-1, keepdim=True)
    return torch.exp(-torch.special.xlogy(counts, counts).sum(-1))


def score_float32_inside(counts):
    return score_ok(counts.float()).to(counts.dtype if counts.is_floating_point() else torch.float32)


def score_double(counts):
    return score_ok(counts.double())


def score_squeezed(counts):
    return score_ok(counts).squeeze()


def purity_squeezed(M):
    return purity_ok(M).squeeze()


def purity_float32_inside(M):
    return purity_ok(M.float()).to(M.dtype)


def purity_global_max(M):
    return (M ** 2).max() / (M ** 2).sum(1)


def procrustes_float32_svd(H, F):
    U, S, Vh = torch.linalg.svd((H.T @ F).float())
    return (U @ Vh).to(H.dtype)


def alignment_float32_constant(W1):
    diag = (torch.tensor([[1.0, 1.0], [1.0, -1.0]]) / math.sqrt(2)).to(W1)
    return ((W1 / W1.norm(dim=1, keepdim=True)) @ diag.T).abs().max(1).values


def alignment_squeezed(W1):
    return alignment_ok(W1).squeeze()


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 1.x: replace this line with your implementation")


# ------------------------------------------------------------------------------------------------
# name: (check, right answers, [(mistake kind, wrong answer, expected diagnosis), ...])

CHECKS = {
    "collect_activations": (checks.check_collect_activations, [P.collect_activations, collect_ok], [
        ("values", collect_input, "module's input"),
        ("values", collect_last_batch, "only the last batch"),
        ("values", collect_logits, "model's output"),
        ("shapes: last partial batch dropped", collect_drops_last_batch, "shape"),
        ("dtypes: float64 returned as float32", collect_float32, "dtype"),
        ("stated: batch size hard-coded", collect_hard_coded_batch, "rows at once"),
        ("stated: no torch.no_grad, detach only", collect_detach_only, "autograd on"),
        ("stated: not detached", collect_not_detached, "requires grad"),
        ("stated: one hook per batch", collect_hook_per_batch, "registered 3 hooks"),
        ("side effects: hook left behind", collect_leaks_hook, "left its hook registered"),
        ("side effects: hook left behind on error", collect_no_finally, "finally"),
        ("side effects: caller's hooks cleared", collect_clears_hooks, "removed a hook it did not register"),
        ("side effects: model switched to eval", collect_sets_eval, "eval mode"),
    ]),
    "top_k_class_counts": (checks.check_top_k_class_counts, [P.top_k_class_counts, counts_ok], [
        ("values", counts_smallest, "smallest"),
        ("values", counts_all_examples, "every example's class"),
        ("dtypes: shares (float)", counts_shares, "shares"),
        ("dtypes: float counts", counts_float, "expected an integer tensor"),
        ("parameters: classes from the labels", counts_max_label, "labels.max"),
        ("parameters: n_classes hard-coded to 10", counts_ten_classes, "shape"),
        ("parameters: k hard-coded to 7", counts_k_hard_coded, "sum to 7, not k = 12"),
        ("shapes: transposed", counts_transposed, r"\[n_units, n_classes\]"),
    ]),
    "polysemanticity_score": (checks.check_polysemanticity_score, [P.polysemanticity_score, score_ok], [
        ("values", score_entropy, "entropy H itself"),
        ("values", score_log2, "log2"),
        ("values", score_distinct, "stray example"),
        ("values", score_unnormalised, "normalise the counts"),
        ("boundaries: 0 log 0 gives NaN", score_nan, "0·log 0"),
        ("shapes: one unit squeezed to a scalar", score_squeezed, "shape"),
        ("dtypes: float64 computed in float32", score_float32_inside, "float32 precision"),
        ("dtypes: always float64", score_double, "dtype"),
        ("dtypes, side effects: integer counts divided in place", score_in_place, "raised RuntimeError|in place"),
    ]),
    "neuron_purity": (checks.check_neuron_purity, [P.neuron_purity, purity_ok], [
        ("values", purity_abs, r"\|M\| instead of M²"),
        ("values", purity_signed_max, "signed"),
        ("values", purity_unnormalised, "divide by the row's total"),
        ("values", purity_global_max, "whole matrix"),
        ("shapes: normalised over neurons", purity_columns, r"dim=0|shape"),
        ("shapes: one neuron squeezed", purity_squeezed, "shape"),
        ("dtypes: float64 computed in float32", purity_float32_inside, "float32 precision"),
    ]),
    "procrustes_rotation": (checks.check_procrustes_rotation, [P.procrustes_rotation, procrustes_ok], [
        ("values", procrustes_transposed, "transposed"),
        ("values", procrustes_vh_twice, "Vh = Vᵀ already"),
        ("values", procrustes_lstsq, "least squares"),
        ("values", procrustes_keeps_s, "singular values"),
        ("dtypes: SVD in float32 on float64 input", procrustes_float32_svd, "float32 precision"),
    ]),
    "diagonal_alignment": (checks.check_diagonal_alignment, [P.diagonal_alignment, alignment_ok], [
        ("values", alignment_no_abs, "absolute value"),
        ("values", alignment_unnormalised_rows, "normalise the weight rows"),
        ("values", alignment_raw_diagonals, "length √2"),
        ("values", alignment_one_diagonal, r"\(1, 1\) only"),
        ("dtypes: float32 diagonals on float64 input", alignment_float32_constant, "float32 precision"),
        ("shapes: one neuron squeezed", alignment_squeezed, "shape"),
    ]),
}

RIGHT = [(name, fn) for name, (_, rights, _) in CHECKS.items() for fn in rights]
WRONG = [(name, kind, fn, msg) for name, (_, _, wrongs) in CHECKS.items() for kind, fn, msg in wrongs]


@pytest.mark.parametrize(("name", "fn"), RIGHT, ids=[f"{n}-{f.__name__}" for n, f in RIGHT])
def test_right_answers_pass(name, fn, capsys):
    CHECKS[name][0](fn)
    assert capsys.readouterr().out.startswith(f"\u2714 {name}: correct")


@pytest.mark.parametrize("name", list(CHECKS))
def test_stub_passes_through(name):
    with pytest.raises(NotImplementedError):
        CHECKS[name][0](stub)


@pytest.mark.parametrize(("name", "kind", "fn", "msg"), WRONG,
                         ids=[f"{n}-{k}-{f.__name__}" for n, k, f, _ in WRONG])
def test_wrong_answers_rejected_with_diagnosis(name, kind, fn, msg):
    with pytest.raises(CheckFailed, match=msg):
        CHECKS[name][0](fn)


@pytest.mark.parametrize("name", list(CHECKS))
def test_every_check_rejects_at_least_three_mistakes(name):
    assert len(CHECKS[name][2]) >= 3


def test_leaked_hooks_are_cleaned_up_by_the_check():
    """A learner's leaked hook must not make the next check run record twice."""
    with pytest.raises(CheckFailed):
        checks.check_collect_activations(collect_leaks_hook)
    checks.check_collect_activations(P.collect_activations)
