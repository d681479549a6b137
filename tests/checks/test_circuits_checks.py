"""Chapter 5 checks accept the reference and a differently written right answer, and reject plausible
wrong answers with the right diagnosis. Each wrong implementation is labelled with its mistake kind.

Mistake kinds (CONTRIBUTING.md): differentiability, shapes, independence, parameters, dtypes, side
effects, randomness, stated. Randomness applies to none of chapter 5's exercises: none draws random
numbers (no sampler, no generator argument). Where another kind does not apply to a check, the comment
above that check's table says why."""

from __future__ import annotations

import pytest
import torch

from course_utils.checks import CheckFailed
from course_utils.checks import circuits as checks
from course_utils.circuits.graph import compute_influence, normalize_matrix

ALL = [checks.check_transcoder_loss, checks.check_skip_forward, checks.check_frozen_layernorm,
       checks.check_error_node, checks.check_edge_from_backward, checks.check_adjacency,
       checks.check_influence, checks.check_keep_by_cumulative, checks.check_ablation_hook]


def _acts(x, W_enc, b_enc, k):
    return checks._topk_acts(x, W_enc, b_enc, k)


def test_references_pass(capsys):
    checks.check_transcoder_loss(checks.ref_transcoder_loss)
    checks.check_skip_forward(checks.ref_skip_forward)
    checks.check_frozen_layernorm(checks.ref_frozen_layernorm)
    checks.check_error_node(checks.ref_error_node)
    checks.check_edge_from_backward(checks.ref_edge_from_backward)
    checks.check_adjacency(checks.ref_adjacency)
    checks.check_influence(checks.ref_influence)
    checks.check_keep_by_cumulative(checks.ref_keep_by_cumulative)
    checks.check_ablation_hook(checks.make_ablation_hook)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 9 and all(ln.startswith("\u2714") for ln in lines)


def test_other_right_answers_pass():
    def loss(x, y, W_enc, b_enc, W_dec, b_dec, k):  # mask instead of scatter
        pre = torch.relu(x @ W_enc + b_enc)
        kth = pre.topk(k, -1).values[:, -1:]
        acts = pre * (pre >= kth)
        return ((acts @ W_dec + b_dec - y) ** 2).sum(1).mean()

    def influence(A, w):  # the series, term by term
        return compute_influence(normalize_matrix(A), w)

    def keep(scores, threshold):
        s, order = scores.sort(descending=True)
        cum = s.cumsum(0) / s.sum()
        i = int((cum < threshold).sum().clamp(max=len(s) - 1))
        return scores >= s[i]

    def hook_maker(pos, act, w_dec):
        def hook(t, hook):
            delta = torch.zeros_like(t)
            delta[:, pos] = act * w_dec
            return t - delta
        return hook

    checks.check_transcoder_loss(loss)
    checks.check_influence(influence)
    checks.check_keep_by_cumulative(keep)
    checks.check_ablation_hook(hook_maker)
    checks.check_adjacency(lambda G, pos, vecs: torch.einsum("tsd,sd->ts", G[:, pos], vecs))


@pytest.mark.parametrize("check", ALL)
def test_stub_passes_through_as_not_implemented(check):
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise 5.1 (stub)")

    with pytest.raises(NotImplementedError, match="Exercise 5.1"):
        check(stub)


def _detached_loss(x, y, W_enc, b_enc, W_dec, b_dec, k):
    with torch.no_grad():
        return checks.ref_transcoder_loss(x, y, W_enc, b_enc, W_dec, b_dec, k)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("stated: target is y", lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
     ((_acts(x, W_enc, b_enc, k) @ W_dec + b_dec - x) ** 2).sum(-1).mean(), "input x|raised"),
    ("stated: sum over dimensions", lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
     ((_acts(x, W_enc, b_enc, k) @ W_dec + b_dec - y) ** 2).mean(), "averaged the squared error"),
    ("stated: TopK", lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
     ((torch.relu(x @ W_enc + b_enc) @ W_dec + b_dec - y) ** 2).sum(-1).mean(), "k largest"),
    ("stated: no pre-encoder bias", lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
     ((_acts(x - b_dec, W_enc, b_enc, k) @ W_dec + b_dec - y) ** 2).sum(-1).mean(), "pre-encoder bias"),
    ("shapes: k hard-coded", lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
     checks.ref_transcoder_loss(x, y, W_enc, b_enc, W_dec, b_dec, 4), "wrong|raised"),
    ("differentiability: no_grad", _detached_loss, "gradient"),
    ("dtypes: float32 inside", lambda x, y, W_enc, b_enc, W_dec, b_dec, k: checks.ref_transcoder_loss(
        x.float(), y.float(), W_enc.float(), b_enc.float(), W_dec.float(), b_dec.float(), k), "dtype|float"),
    ("side effects: x modified", lambda x, y, W_enc, b_enc, W_dec, b_dec, k: checks.ref_transcoder_loss(
        x.mul_(1.01), y, W_enc, b_enc, W_dec, b_dec, k), "in place"),
    ("independence: TopK over the whole batch", lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
     ((checks._batch_topk_acts(x, W_enc, b_enc, k) @ W_dec + b_dec - y) ** 2).sum(-1).mean(), "BatchTopK"),
    ("parameters: k ignored (every feature kept)", lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
     checks.ref_transcoder_loss(x, y, W_enc, b_enc, W_dec, b_dec, W_enc.shape[1]), "k largest"),
])
def test_transcoder_loss_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_transcoder_loss(wrong)


@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("stated: skip missing", lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k:
     _acts(x, W_enc, b_enc, k) @ W_dec + b_dec, "skip term is missing"),
    ("shapes: W_skip transposed", lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k:
     _acts(x, W_enc, b_enc, k) @ W_dec + b_dec + x @ W_skip.T, "transposed|raised"),
    ("differentiability: skip detached", lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k:
     _acts(x, W_enc, b_enc, k) @ W_dec + b_dec + (x @ W_skip).detach(), "gradient"),
    ("stated: skip replaces the features", lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k:
     x @ W_skip + b_dec, "replaced the sparse prediction"),
    ("independence: TopK over the whole batch", lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k:
     checks._batch_topk_acts(x, W_enc, b_enc, k) @ W_dec + b_dec + x @ W_skip, "BatchTopK"),
    ("parameters: k hard-coded", lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k:
     checks.ref_skip_forward(x, W_enc, b_enc, W_dec, b_dec, W_skip, 4), "wrong|raised"),
    ("dtypes: float32 inside", lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k: checks.ref_skip_forward(
        x.float(), W_enc.float(), b_enc.float(), W_dec.float(), b_dec.float(), W_skip.float(), k), "dtype"),
    ("side effects: x scaled in place", lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k:
     checks.ref_skip_forward(x, W_enc, b_enc, W_dec, b_dec, W_skip, k) + 0 * x.mul_(1.0).add_(1.0).sum(),
     "in place"),
])
def test_skip_forward_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_skip_forward(wrong)


def _live_ln(x, scale):
    c = x - x.mean(-1, keepdim=True)
    return c / (c.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()


# parameters, randomness: frozen_layernorm takes only the two tensors and draws nothing
@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("stated: scale recomputed (not frozen)", _live_ln, "recomputed the scale"),
    ("independence: one scale for every position", lambda x, scale: (x - x.mean(-1, keepdim=True)) /
     scale.detach().mean(), "one scale"),
    ("stated: not centred", lambda x, scale: x / scale, "mean"),
    ("stated: gradient into the frozen scale", lambda x, scale: (x - x.mean(-1, keepdim=True)) / scale,
     "flow into scale"),
    ("differentiability: x detached", lambda x, scale: (x - x.mean(-1, keepdim=True)).detach() / scale.detach(),
     "gradient"),
    ("shapes: last position only", lambda x, scale: (x - x.mean(-1, keepdim=True))[:, -1:] / scale.detach()[:, -1:],
     "shape"),
    ("independence: centred over positions", lambda x, scale: (x - x.mean(-2, keepdim=True)) / scale.detach(),
     "entries differ"),
    ("dtypes: always float32", lambda x, scale: ((x - x.mean(-1, keepdim=True)) / scale.detach()).float(),
     "dtype"),
    ("side effects: centres x in place", lambda x, scale: x.sub_(x.mean(-1, keepdim=True)) / scale.detach(),
     "modified its input"),
])
def test_frozen_layernorm_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_frozen_layernorm(wrong)


# differentiability: error nodes are frozen constants (nothing is trained through them);
# parameters, randomness: no scalar argument, nothing drawn
@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("independence: one error for every position", lambda y, x, acts, W_dec, b_dec, W_skip:
     (y - (acts @ W_dec + b_dec + x @ W_skip)).mean(0, keepdim=True).expand_as(y).clone(), "averaged the error"),
    ("dtypes: float32 inside", lambda y, x, acts, W_dec, b_dec, W_skip: checks.ref_error_node(
        y.float(), x.float(), acts.float(), W_dec.float(), b_dec.float(), W_skip.float()), "dtype"),
    ("stated: sign", lambda y, x, acts, W_dec, b_dec, W_skip: acts @ W_dec + b_dec + x @ W_skip - y, "sign"),
    ("stated: skip left out", lambda y, x, acts, W_dec, b_dec, W_skip: y - acts @ W_dec - b_dec, "skip path"),
    ("stated: b_dec left out", lambda y, x, acts, W_dec, b_dec, W_skip: y - acts @ W_dec - x @ W_skip, "b_dec"),
    ("side effects: y modified", lambda y, x, acts, W_dec, b_dec, W_skip: y.sub_(acts @ W_dec + b_dec + x @ W_skip),
     "in place"),
    ("shapes: first position only", lambda y, x, acts, W_dec, b_dec, W_skip:
     (y - (acts @ W_dec + b_dec + x @ W_skip))[:1], "shape"),
])
def test_error_node_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_error_node(wrong)


def _grad(target_fn, n, d, dt):
    delta = torch.zeros(n, d, dtype=dt, requires_grad=True)
    return torch.autograd.grad(target_fn(delta), delta)[0]


def _scaled_in_place(target_fn, n, d, pos, act, w_dec):
    w_dec.mul_(act)  # "the source's output": overwrites the caller's decoder row
    return _grad(target_fn, n, d, w_dec.dtype)[pos] @ w_dec


# differentiability: an edge weight is read off the graph, not trained through (the gradient is what
# the exercise computes); randomness: nothing drawn
@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("shapes: delta hard-coded [5, 8]", lambda target_fn, n, d, pos, act, w_dec:
     act * (_grad(target_fn, 5, 8, w_dec.dtype)[pos] @ w_dec), "raised"),
    ("side effects: w_dec scaled in place", _scaled_in_place, "in place"),
    ("stated: a Python float, not a 0-d tensor", lambda target_fn, n, d, pos, act, w_dec:
     float(act * (_grad(target_fn, n, d, w_dec.dtype)[pos] @ w_dec)), "torch.Tensor"),
    ("stated: activation left out", lambda target_fn, n, d, pos, act, w_dec:
     _grad(target_fn, n, d, w_dec.dtype)[pos] @ w_dec, "activation"),
    ("independence: all positions", lambda target_fn, n, d, pos, act, w_dec:
     act * (_grad(target_fn, n, d, w_dec.dtype).sum(0) @ w_dec), "all positions"),
    ("parameters: position 0", lambda target_fn, n, d, pos, act, w_dec:
     act * (_grad(target_fn, n, d, w_dec.dtype)[0] @ w_dec), "position 0"),
    ("dtypes: float32 gradient", lambda target_fn, n, d, pos, act, w_dec: (act * (
        _grad(lambda t: target_fn(t.to(w_dec.dtype)), n, d, torch.float32)[pos] @ w_dec.float())).to(w_dec.dtype),
     "float32|float64|dtype|wrong"),
])
def test_edge_from_backward_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_edge_from_backward(wrong)


# differentiability: the matrix is read, not trained through; parameters: none but the tensors;
# randomness: nothing drawn
@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("dtypes: float32 inside", lambda G, pos, vecs: checks.ref_adjacency(G.float(), pos, vecs.float()), "dtype"),
    ("shapes: transposed", lambda G, pos, vecs: checks.ref_adjacency(G, pos, vecs).T, "transposed|shape"),
    ("independence: position 0 for all", lambda G, pos, vecs: G[:, 0] @ vecs.T, "position 0"),
    ("independence: positions summed", lambda G, pos, vecs: G.sum(1) @ vecs.T, "summed"),
    ("side effects: G modified", lambda G, pos, vecs: (G.mul_(1.0).add_(1.0)[:, pos] * vecs).sum(-1), "in place"),
])
def test_adjacency_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_adjacency(wrong)


def _solve(M, w):
    return torch.linalg.solve((torch.eye(len(M), dtype=M.dtype) - M).T, w)


def _abs_in_place(A, w):
    M = A.abs_()  # overwrites the caller's adjacency matrix
    return _solve(M / M.sum(1, keepdim=True).clamp_min(1e-10), w) - w


def _triangular(A, w):
    eye = torch.eye(len(A), dtype=A.dtype)
    return torch.linalg.solve_triangular((eye - normalize_matrix(A)).T, w[:, None], upper=True)[:, 0] - w


def _six_nodes(A, w):
    M = normalize_matrix(A)
    return torch.linalg.solve((torch.eye(6, dtype=A.dtype) - M).T, w) - w


# differentiability: influence ranks nodes for pruning, nothing is trained through it; randomness:
# nothing drawn
@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("shapes: 6 nodes hard-coded", _six_nodes, "raised"),
    ("independence: one normaliser for all rows", lambda A, w: _solve(A.abs() / A.abs().sum(), w) - w,
     "each row by its own sum"),
    ("parameters: one-hot output weights", lambda A, w: _solve(normalize_matrix(A), (w == w.max()).to(w.dtype))
     - (w == w.max()).to(w.dtype), "largest output weight"),
    ("stated: nodes assumed in topological order", _triangular, "lower triangular"),
    ("stated: three terms of the series", lambda A, w: checks._series(normalize_matrix(A), w, 3),
     "only 3 terms"),
    ("side effects: |A| taken in place", _abs_in_place, "in place"),
    ("stated: no abs", lambda A, w: _solve(A / A.sum(1, keepdim=True).clamp_min(1e-10), w) - w, "abs|\\|A\\|"),
    ("stated: identity kept", lambda A, w: _solve(normalize_matrix(A), w), "identity"),
    ("stated: wrong side", lambda A, w: torch.linalg.solve(torch.eye(len(A), dtype=A.dtype) - normalize_matrix(A), w) - w,
     "wrong side"),
    ("stated: direct only", lambda A, w: w @ normalize_matrix(A), "direct edges only"),
    ("stated: columns normalised", lambda A, w: _solve(A.abs() / A.abs().sum(0, keepdim=True).clamp_min(1e-10), w) - w,
     "columns"),
    ("dtypes: float32 inside", lambda A, w: checks.ref_influence(A.float(), w.float()).to(A.dtype), "float"),
])
def test_influence_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_influence(wrong)


def _strict(scores, threshold):
    s, order = scores.sort(descending=True)
    cum = s.cumsum(0) / s.sum()
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask[order] = cum < threshold
    return mask


def _by_rank(scores, threshold):
    s, order = scores.sort(descending=True)
    i = int((s.cumsum(0) / s.sum() < threshold).sum().clamp(max=len(s) - 1))
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask[order[: i + 1]] = True
    return mask


def _normalise_in_place(scores, threshold):
    scores /= scores.sum()
    return checks.ref_keep_by_cumulative(scores, threshold)


# independence: one vector of scores (no rows or examples); differentiability, randomness: a mask,
# nothing trained or drawn
@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("stated: a node tied with the cut-off dropped", _by_rank, "equals the cut-off"),
    ("shapes: indices of the kept nodes, not a mask", lambda scores, threshold:
     checks.ref_keep_by_cumulative(scores, threshold).nonzero()[:, 0], "indices"),
    ("stated: mask in sorted order", lambda scores, threshold: scores.sort(descending=True).values
     >= checks.find_threshold(scores, threshold), "sorted order"),
    ("side effects: scores normalised in place", _normalise_in_place, "in place"),
    ("parameters: boundary node dropped", _strict, "crosses the threshold"),
    ("stated: not normalised", lambda scores, threshold: scores >= scores.sort(descending=True).values[
        min(int((scores.sort(descending=True).values.cumsum(0) < threshold).sum()), len(scores) - 1)], "total"),
    ("stated: ascending", lambda scores, threshold: scores <= scores.sort().values[
        min(int(torch.searchsorted(scores.sort().values.cumsum(0) / scores.sum(),
                                   torch.tensor(threshold, dtype=scores.dtype))), len(scores) - 1)], "ascending"),
    ("dtypes: float mask", lambda scores, threshold: checks.ref_keep_by_cumulative(scores, threshold).float(),
     "dtype|bool"),
    ("parameters: threshold ignored", lambda scores, threshold: checks.ref_keep_by_cumulative(scores, 0.8), "wrong"),
])
def test_keep_by_cumulative_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_keep_by_cumulative(wrong)


def _inplace_maker(pos, act, w_dec):
    def hook(t, hook):
        t[:, pos] -= act * w_dec
        return t
    return hook


def _batch_indexed(pos, act, w_dec):
    def hook(t, hook):
        out = t.clone()
        out[pos] = out[pos] - act * w_dec  # t[pos] is a batch item, not a position
        return out
    return hook


# differentiability: interventions run without gradients, nothing is trained through the hook;
# randomness: nothing drawn
@pytest.mark.parametrize("kind, wrong, diagnosis", [
    ("dtypes: float32 inside", lambda pos, act, w_dec: lambda t, hook: checks.make_ablation_hook(
        pos, act.float(), w_dec.float())(t.float()), "dtype"),
    ("shapes: batch dimension indexed", _batch_indexed, "batch dimension|raised"),
    ("parameters: last position always", lambda pos, act, w_dec: lambda t, hook: checks.make_ablation_hook(
        t.shape[1] - 1, act, w_dec)(t), "last position"),
    ("independence: every position", lambda pos, act, w_dec: lambda t, hook: t - act * w_dec, "every position"),
    ("stated: added", lambda pos, act, w_dec: checks.make_ablation_hook(pos, -act, w_dec), "subtract"),
    ("stated: activation left out", lambda pos, act, w_dec: checks.make_ablation_hook(pos, 1.0, w_dec),
     "without its activation"),
    ("independence: first batch item", lambda pos, act, w_dec: lambda t, hook: torch.cat(
        [checks.make_ablation_hook(pos, act, w_dec)(t[:1]), t[1:]]), "first item"),
    ("side effects: in place", _inplace_maker, "in place"),
    ("stated: returns a tensor, not a hook", lambda pos, act, w_dec: act * w_dec, "hook function"),
])
def test_ablation_hook_rejects(kind, wrong, diagnosis):
    with pytest.raises(CheckFailed, match=diagnosis):
        checks.check_ablation_hook(wrong)
