"""Checks for chapter 5 (transcoders and attribution graphs): the transcoder loss, the skip path, the
frozen LayerNorm of the replacement model, error nodes, one edge from a backward pass, the adjacency
matrix, influence via (I − A)⁻¹, pruning by cumulative threshold, and an ablation hook.

Every check compares the learner's function with the reference on seeded inputs in float32 and
float64 (float64 at float64 tolerance), on several shapes (batch 1, non-square d_in ≠ d_out, several
k, one and many positions), checks gradients where something is trained through, checks that inputs
are not modified, and names known mistakes. Kinds covered per check are listed in its docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from course_utils.checks._core import Case, CheckFailed, Mistake, call_learner, check_function, passed
from course_utils.circuits.graph import compute_influence, find_threshold, normalize_matrix


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, g: torch.Generator, dt: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dt)


DTYPES = (torch.float32, torch.float64)

# ------------------------------------------------------------------------------------------------
# 5.1 transcoder forward and loss


def _topk_acts(x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, k: int) -> torch.Tensor:
    pre = x @ W_enc + b_enc
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))


def _batch_topk_acts(x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, k: int) -> torch.Tensor:
    """The per-example TopK done wrong: the batch × k largest pre-activations of the whole batch."""
    pre = x @ W_enc + b_enc
    top = pre.flatten().topk(min(k * pre.shape[0], pre.numel()))
    return torch.zeros_like(pre).flatten().scatter(0, top.indices, torch.relu(top.values)).view_as(pre)


BATCH_TOPK = ("you took the k largest pre-activations of the whole batch (BatchTopK): TopK keeps the k "
              "largest of each example, so one example's features do not depend on the others")


def ref_transcoder_loss(x: torch.Tensor, y: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor,
                        W_dec: torch.Tensor, b_dec: torch.Tensor, k: int) -> torch.Tensor:
    y_hat = _topk_acts(x, W_enc, b_enc, k) @ W_dec + b_dec
    return (y_hat - y).pow(2).sum(-1).mean()


def _tc_cases(square_too: bool = True, skip: bool = False) -> list[Case]:
    cases = []
    shapes = [(16, 8, 24, 8, 3), (32, 12, 40, 9, 4), (1, 12, 40, 9, 4), (16, 8, 24, 8, 1), (20, 6, 30, 6, 30)]
    for i, (batch, d_in, d_sae, d_out, k) in enumerate(shapes):
        if not square_too and d_in == d_out:
            continue
        for dt in DTYPES:
            g = _g(10 * i + (dt == torch.float64))
            kw: dict[str, Any] = dict(x=_randn(batch, d_in, g=g, dt=dt), W_enc=_randn(d_in, d_sae, g=g, dt=dt),
                                      b_enc=0.1 * _randn(d_sae, g=g, dt=dt), W_dec=_randn(d_sae, d_out, g=g, dt=dt),
                                      b_dec=_randn(d_out, g=g, dt=dt), k=k)
            if skip:
                kw["W_skip"] = _randn(d_in, d_out, g=g, dt=dt)
            else:
                kw = dict(x=kw.pop("x"), y=_randn(batch, d_out, g=g, dt=dt), **kw)
            label = f"batch {batch}, d_in {d_in} -> {d_sae} features -> d_out {d_out}, k = {k}"
            cases.append(Case(kw, label=label + (" (k = d_sae)" if k == d_sae else "")))
    return cases


def check_transcoder_loss(fn: Callable[..., Any]) -> None:
    """Covers: shapes (batch 1, d_in ≠ d_out, k = 1 and k = d_sae), independence (TopK per example,
    not over the batch), parameters (k varied), dtypes (float64 at float64 tolerance),
    differentiability (gradients to W_enc, W_dec, b_dec), side effects (inputs unchanged), stated (the
    target is y, not x; squared error summed over dimensions, mean over the batch; ReLU after TopK; no
    pre-encoder bias). Randomness: not applicable (nothing is drawn)."""
    mistakes = [
        Mistake("you reconstructed the input x: a transcoder predicts the MLP's output y",
                lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
                (_topk_acts(x, W_enc, b_enc, k) @ W_dec + b_dec - x).pow(2).sum(-1).mean()),
        Mistake("you averaged the squared error over dimensions too: sum over the output dimension, "
                "then average over the batch", lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
                (_topk_acts(x, W_enc, b_enc, k) @ W_dec + b_dec - y).pow(2).mean()),
        Mistake("you kept every positive pre-activation: keep only the k largest (TopK), then ReLU",
                lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
                (torch.relu(x @ W_enc + b_enc) @ W_dec + b_dec - y).pow(2).sum(-1).mean()),
        Mistake("you kept the k largest pre-activations without the ReLU: negative ones must become 0",
                lambda x, y, W_enc, b_enc, W_dec, b_dec, k: (torch.zeros(x.shape[0], W_enc.shape[1], dtype=x.dtype)
                .scatter(-1, (x @ W_enc + b_enc).topk(k, -1).indices, (x @ W_enc + b_enc).topk(k, -1).values)
                @ W_dec + b_dec - y).pow(2).sum(-1).mean()),
        Mistake("you subtracted b_dec from the input (an autoencoder's pre-encoder bias): a transcoder's "
                "b_dec lives in the output space; encode x as it is",
                lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
                (_topk_acts(x - b_dec, W_enc, b_enc, k) @ W_dec + b_dec - y).pow(2).sum(-1).mean()),
        Mistake("you left out b_dec from the prediction", lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
                (_topk_acts(x, W_enc, b_enc, k) @ W_dec - y).pow(2).sum(-1).mean()),
        Mistake(BATCH_TOPK, lambda x, y, W_enc, b_enc, W_dec, b_dec, k:
                (_batch_topk_acts(x, W_enc, b_enc, k) @ W_dec + b_dec - y).pow(2).sum(-1).mean()),
    ]
    cases = _tc_cases()
    n = check_function("transcoder_loss", fn, ref_transcoder_loss, cases, mistakes, grad=("W_enc", "W_dec", "b_dec"))
    passed("transcoder_loss", f"{n} random cases")


# ------------------------------------------------------------------------------------------------
# 5.2 the skip path


def ref_skip_forward(x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor,
                     b_dec: torch.Tensor, W_skip: torch.Tensor, k: int) -> torch.Tensor:
    return _topk_acts(x, W_enc, b_enc, k) @ W_dec + b_dec + x @ W_skip


def check_skip_forward(fn: Callable[..., Any]) -> None:
    """Covers: shapes (d_in ≠ d_out, so W_skip is not square; batch 1; k = d_sae), independence (TopK
    per example), parameters (k varied), dtypes, differentiability (gradient to W_skip and x), side
    effects, stated (the skip reads x, not the features; it is added to the sparse prediction).
    Randomness: not applicable."""
    mistakes = [
        Mistake("the skip term is missing: add x @ W_skip", lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k:
                _topk_acts(x, W_enc, b_enc, k) @ W_dec + b_dec),
        Mistake("you used W_skip transposed: W_skip is [d_in, d_out], so the skip is x @ W_skip",
                lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k:
                _topk_acts(x, W_enc, b_enc, k) @ W_dec + b_dec + x @ W_skip.T),
        Mistake("you replaced the sparse prediction by the skip term: add them",
                lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k: x @ W_skip + b_dec),
        Mistake(BATCH_TOPK, lambda x, W_enc, b_enc, W_dec, b_dec, W_skip, k:
                _batch_topk_acts(x, W_enc, b_enc, k) @ W_dec + b_dec + x @ W_skip),
    ]
    n = check_function("skip_forward", fn, ref_skip_forward, _tc_cases(skip=True), mistakes,
                       grad=("x", "W_skip"))
    passed("skip_forward", f"{n} random cases")


# ------------------------------------------------------------------------------------------------
# 5.3 freezing: LayerNorm with a frozen scale


def ref_frozen_layernorm(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(-1, keepdim=True)) / scale.detach()


def _ln_cases() -> list[Case]:
    cases = []
    for i, shape in enumerate([(2, 5, 16), (1, 1, 8), (3, 7, 12)]):
        for dt in DTYPES:
            g = _g(100 + 2 * i + (dt == torch.float64))
            x = _randn(*shape, g=g, dt=dt)
            # the scale frozen on the clean prompt; x is a perturbed input, so its own scale differs
            scale = ((x - x.mean(-1, keepdim=True)).pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()
            x = x + 0.5 * _randn(*shape, g=g, dt=dt)
            cases.append(Case(dict(x=x, scale=scale), label=f"x {list(shape)}"))
    return cases


def check_frozen_layernorm(fn: Callable[..., Any]) -> None:
    """Covers: stated (divide by the given frozen scale, do not recompute it; centre x), shapes (one
    position, several batches), independence (each position has its own scale; centre each position
    over its own features), dtypes, differentiability (the gradient reaches x as for a linear map),
    side effects, and that no gradient flows into the frozen scale. Parameters and randomness: not
    applicable (no argument but the tensors, nothing drawn)."""
    mistakes = [
        Mistake("you recomputed the scale from x: the replacement model divides by the scale frozen on the "
                "prompt (the argument scale)", lambda x, scale: (x - x.mean(-1, keepdim=True)) /
                ((x - x.mean(-1, keepdim=True)).pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()),
        Mistake("you did not subtract the mean over the last dimension", lambda x, scale: x / scale),
        Mistake("you multiplied by the scale: divide by it", lambda x, scale: (x - x.mean(-1, keepdim=True)) * scale),
        Mistake("you divided every position by one scale: each position has its own frozen scale "
                "(scale is [..., 1])", lambda x, scale: (x - x.mean(-1, keepdim=True)) / scale.mean()),
    ]
    cases = _ln_cases()
    n = check_function("frozen_layernorm", fn, ref_frozen_layernorm, cases, mistakes, grad=("x",))
    x, scale = cases[0].kwargs["x"].clone(), cases[0].kwargs["scale"].clone().requires_grad_(True)
    out = call_learner(fn, dict(x=x, scale=scale), "frozen_layernorm")
    if out.requires_grad:
        raise CheckFailed("frozen_layernorm lets gradients flow into scale: a frozen scale is a constant "
                          "(use scale.detach()), or the attribution edges would run through the normalisation")
    passed("frozen_layernorm", f"{n} random cases")


# ------------------------------------------------------------------------------------------------
# 5.4 error nodes


def ref_error_node(y: torch.Tensor, x: torch.Tensor, acts: torch.Tensor, W_dec: torch.Tensor,
                   b_dec: torch.Tensor, W_skip: torch.Tensor) -> torch.Tensor:
    return y - (acts @ W_dec + b_dec + x @ W_skip)


def check_error_node(fn: Callable[..., Any]) -> None:
    """Covers: stated (error = true MLP output − full reconstruction, skip and b_dec included), shapes
    (d_in ≠ d_out, one position), independence (each position its own error), dtypes, side effects.
    Differentiability: not applicable (error nodes are frozen constants of the replacement model,
    nothing is trained through them); parameters and randomness: not applicable (no scalar argument,
    nothing drawn)."""
    cases = []
    for i, (n, d_in, d_sae, d_out) in enumerate([(6, 10, 30, 8), (1, 8, 16, 8), (9, 5, 12, 7)]):
        for dt in DTYPES:
            g = _g(200 + 2 * i + (dt == torch.float64))
            acts = torch.relu(_randn(n, d_sae, g=g, dt=dt))
            cases.append(Case(dict(y=_randn(n, d_out, g=g, dt=dt), x=_randn(n, d_in, g=g, dt=dt), acts=acts,
                                   W_dec=_randn(d_sae, d_out, g=g, dt=dt), b_dec=_randn(d_out, g=g, dt=dt),
                                   W_skip=_randn(d_in, d_out, g=g, dt=dt)), label=f"{n} positions"))
    mistakes = [
        Mistake("the error has the wrong sign: it is what the transcoder misses, y − reconstruction",
                lambda y, x, acts, W_dec, b_dec, W_skip: (acts @ W_dec + b_dec + x @ W_skip) - y),
        Mistake("you left the skip path out of the reconstruction", lambda y, x, acts, W_dec, b_dec, W_skip:
                y - (acts @ W_dec + b_dec)),
        Mistake("you left b_dec out of the reconstruction", lambda y, x, acts, W_dec, b_dec, W_skip:
                y - (acts @ W_dec + x @ W_skip)),
        Mistake("you averaged the error over positions: every position has its own error vector",
                lambda y, x, acts, W_dec, b_dec, W_skip:
                (y - (acts @ W_dec + b_dec + x @ W_skip)).mean(0, keepdim=True).expand_as(y)),
    ]
    n = check_function("error_node", fn, ref_error_node, cases, mistakes)
    passed("error_node", f"{n} random cases")


# ------------------------------------------------------------------------------------------------
# 5.5 one edge from a backward pass


def ref_edge_from_backward(target_fn: Callable[[torch.Tensor], torch.Tensor], n: int, d: int, pos: int,
                           act: torch.Tensor, w_dec: torch.Tensor) -> torch.Tensor:
    delta = torch.zeros(n, d, dtype=w_dec.dtype, requires_grad=True)
    (grad,) = torch.autograd.grad(target_fn(delta), delta)
    return act * (grad[pos] @ w_dec)


def _linear_target(M: torch.Tensor, c: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda delta: (M * delta).sum() + c


def check_edge_from_backward(fn: Callable[..., Any]) -> None:
    """Covers: stated (gradient at the source's position, times its decoder row, times its activation;
    a 0-d tensor), independence (the gradient at the source's position only), parameters (first and
    last positions, one position), dtypes (float64 sources), shapes (n and d from the arguments), side
    effects, the target value itself (a constant offset) not entering the edge. Differentiability:
    not applicable (an edge weight is read off the graph, not trained through; the gradient is what it
    computes); randomness: not applicable."""
    cases = []
    for i, (n, d, pos) in enumerate([(5, 8, 2), (5, 8, 4), (1, 6, 0), (7, 3, 0)]):
        for dt in DTYPES:
            g = _g(300 + 2 * i + (dt == torch.float64))
            M = _randn(n, d, g=g, dt=dt)
            cases.append(Case(dict(target_fn=_linear_target(M, 3.0), n=n, d=d, pos=pos,
                                   act=(1.5 + torch.rand((), generator=g, dtype=torch.float64)).to(dt),
                                   w_dec=_randn(d, g=g, dt=dt)), label=f"{n} positions, source at {pos}"))

    def grad_of(target_fn: Callable[..., Any], n: int, d: int, dt: torch.dtype) -> torch.Tensor:
        delta = torch.zeros(n, d, dtype=dt, requires_grad=True)
        return torch.autograd.grad(target_fn(delta), delta)[0]

    mistakes = [
        Mistake("you left out the source's activation: an edge is a_s · (gradient · W_dec[s])",
                lambda target_fn, n, d, pos, act, w_dec: grad_of(target_fn, n, d, w_dec.dtype)[pos] @ w_dec),
        Mistake("you summed the gradient over all positions: the source writes only at its own position",
                lambda target_fn, n, d, pos, act, w_dec: act * (grad_of(target_fn, n, d, w_dec.dtype).sum(0) @ w_dec)),
        Mistake("you read the gradient at position 0: use the source's position pos",
                lambda target_fn, n, d, pos, act, w_dec: act * (grad_of(target_fn, n, d, w_dec.dtype)[0] @ w_dec)),
        Mistake("you used the target's value: the edge is its derivative times the source's output",
                lambda target_fn, n, d, pos, act, w_dec:
                act * target_fn(torch.zeros(n, d, dtype=w_dec.dtype)).detach()),
    ]
    n = check_function("edge_from_backward", fn, ref_edge_from_backward, cases, mistakes)
    passed("edge_from_backward", f"{n} random cases")


# ------------------------------------------------------------------------------------------------
# 5.6 the adjacency matrix


def ref_adjacency(G: torch.Tensor, pos: torch.Tensor, vecs: torch.Tensor) -> torch.Tensor:
    return (G[:, pos] * vecs).sum(-1)


def check_adjacency(fn: Callable[..., Any]) -> None:
    """Covers: shapes (as many targets as sources, so a transposed answer has the right shape; one
    source; one position), independence (each source reads its own position), dtypes (integer pos,
    float64 at float64 tolerance), side effects. Differentiability: not applicable (the matrix is read,
    not trained through); parameters: none besides the tensors; randomness: not applicable."""
    cases = []
    for i, (nt, npos, d, ns) in enumerate([(6, 4, 5, 6), (3, 5, 4, 8), (2, 1, 3, 1), (5, 7, 6, 5)]):
        for dt in DTYPES:
            g = _g(400 + 2 * i + (dt == torch.float64))
            pos = torch.randint(npos, (ns,), generator=g)
            cases.append(Case(dict(G=_randn(nt, npos, d, g=g, dt=dt), pos=pos, vecs=_randn(ns, d, g=g, dt=dt)),
                              label=f"{nt} targets, {ns} sources over {npos} positions"))
    mistakes = [
        Mistake("your matrix is transposed: rows are targets, columns sources (A[target, source])",
                lambda G, pos, vecs: ref_adjacency(G, pos, vecs).T),
        Mistake("every source read the gradient at position 0: index G by each source's position",
                lambda G, pos, vecs: G[:, 0] @ vecs.T),
        Mistake("you summed the gradient over positions: each source writes at its own position only",
                lambda G, pos, vecs: G.sum(1) @ vecs.T),
    ]
    n = check_function("adjacency", fn, ref_adjacency, cases, mistakes)
    passed("adjacency", f"{n} random cases")


# ------------------------------------------------------------------------------------------------
# 5.7 influence via (I − A)^-1


def _solve_influence(M: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """w ((I − M)⁻¹ − I) for an already normalised M."""
    eye = torch.eye(len(M), dtype=M.dtype)
    return torch.linalg.solve((eye - M).T, w) - w


def ref_influence(A: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return _solve_influence(normalize_matrix(A), w)


def _dag(n: int, g: torch.Generator, dt: torch.dtype) -> torch.Tensor:
    """A random strictly lower-triangular adjacency (targets after sources) with signed weights and
    some rows of zeros."""
    A = _randn(n, n, g=g, dt=dt).tril(-1)
    A[: max(1, n // 4)] = 0  # the first nodes have no inputs (like tokens)
    return A


def _influence_cases() -> list[Case]:
    """DAGs in topological order (2, 6 and 30 nodes) and DAGs whose nodes are shuffled, as in
    circuit-tracer's graphs (features first, tokens and logits after), so that A is not triangular."""
    cases = []
    for i, n in enumerate([6, 2, 30]):
        for dt in DTYPES:
            g = _g(500 + 2 * i + (dt == torch.float64))
            w = torch.zeros(n, dtype=dt)
            w[-min(3, n - 1):] = torch.tensor([0.6, 0.3, 0.1][: min(3, n - 1)], dtype=dt)
            cases.append(Case(dict(A=_dag(n, g, dt), w=w), label=f"{n} nodes"))
    for i, n in enumerate([7, 12]):
        for dt in DTYPES:
            g = _g(550 + 2 * i + (dt == torch.float64))
            A, w = _dag(n, g, dt), torch.zeros(n, dtype=dt)
            w[-3:] = torch.tensor([0.5, 0.3, 0.2], dtype=dt)
            perm = torch.randperm(n, generator=g)
            cases.append(Case(dict(A=A[perm][:, perm], w=w[perm]),
                              label=f"{n} nodes, not in topological order (A not triangular)"))
    return cases


def _series(M: torch.Tensor, w: torch.Tensor, terms: int) -> torch.Tensor:
    """w (M + M² + … + M^terms)."""
    total, current = torch.zeros_like(w), w
    for _ in range(terms):
        current = current @ M
        total = total + current
    return total


def _truncated_series_hint(actual: Any, kwargs: dict[str, Any]) -> str | None:
    """A series summed to a fixed number of terms (more than one: one is the direct-edges mistake)."""
    A, w = kwargs["A"], kwargs["w"]
    if not isinstance(actual, torch.Tensor) or actual.shape != w.shape:
        return None
    M, full = normalize_matrix(A), ref_influence(A, w)
    for terms in range(2, len(A)):
        partial = _series(M, w, terms)
        if torch.allclose(partial, full, atol=1e-5, rtol=1e-4):
            return None  # paths are no longer than this: further terms add nothing
        if torch.allclose(actual.detach().to(A.dtype), partial, atol=1e-5, rtol=1e-4):
            return (f"you summed only {terms} terms of the series (paths of up to {terms} edges): "
                    "(I − A)⁻¹ − I = A + A² + … counts paths of every length")
    return None


def check_influence(fn: Callable[..., Any]) -> None:
    """Covers: stated (|A| row-normalised; w((I − A)⁻¹ − I): indirect paths included, the identity
    removed; any DAG, not only a triangular A), shapes (2 to 30 nodes, so a hard-coded size fails),
    independence (each row normalised by its own sum), parameters (weights on several output nodes,
    not one-hot), dtypes, side effects (A not made absolute in place). Differentiability and
    randomness: not applicable (influence ranks nodes; nothing is trained through it or drawn)."""

    def norm_cols(A: torch.Tensor) -> torch.Tensor:
        M = A.abs()
        return M / M.sum(0, keepdim=True).clamp_min(1e-10)

    def one_hot(w: torch.Tensor) -> torch.Tensor:
        return (w == w.max()).to(w.dtype)

    mistakes = [
        Mistake("you did not take |A| before normalising: influence counts magnitudes",
                lambda A, w: compute_influence(A / A.sum(1, keepdim=True).clamp_min(1e-10), w)),
        Mistake("you normalised columns: each row (a target's inputs) must sum to 1",
                lambda A, w: compute_influence(norm_cols(A), w)),
        Mistake("you divided |A| by one number (its total or its largest row sum): normalise each row by "
                "its own sum, so that every target's inputs become shares",
                lambda A, w: _solve_influence(A.abs() / A.abs().sum(), w)),
        Mistake("you kept the identity: w (I − A)⁻¹ includes w itself; subtract it",
                lambda A, w: ref_influence(A, w) + w),
        Mistake("you multiplied on the wrong side: influence flows from targets back to sources, "
                "w (I − A)⁻¹ (a row vector), not (I − A)⁻¹ w",
                lambda A, w: torch.linalg.solve(torch.eye(len(A), dtype=A.dtype) - normalize_matrix(A), w) - w),
        Mistake("you counted direct edges only: (I − A)⁻¹ − I = A + A² + …", lambda A, w: w @ normalize_matrix(A)),
        Mistake("you used only the largest output weight: w weights every output node (the logit "
                "probabilities); use w as given", lambda A, w: ref_influence(A, one_hot(w))),
        Mistake("you assumed A is lower triangular (nodes in topological order): a graph's nodes need not "
                "be ordered, so solve with the whole matrix (torch.linalg.solve)",
                lambda A, w: torch.linalg.solve_triangular(
                    (torch.eye(len(A), dtype=A.dtype) - normalize_matrix(A).tril()).T,
                    w[:, None], upper=True)[:, 0] - w),
    ]
    n = check_function("influence", fn, ref_influence, _influence_cases(), mistakes,
                       hints=(_truncated_series_hint,))
    passed("influence", f"{n} random cases")


# ------------------------------------------------------------------------------------------------
# 5.8 pruning by cumulative threshold


def ref_keep_by_cumulative(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    return scores >= find_threshold(scores, threshold)


def check_keep_by_cumulative(fn: Callable[..., Any]) -> None:
    """Covers: parameters (a threshold exactly on a cumulative sum, threshold 1, a tiny threshold),
    stated (largest first; keep the node that crosses the threshold and every node with an equal
    score; fractions of the total; the mask in the nodes' own order), shapes (one node, 20 and 50
    nodes; a mask over every node, not the kept indices), dtypes (bool output; float32
    and float64 scores), side effects (scores not normalised in place). Independence: not applicable
    (one vector of scores, no rows or examples); differentiability and randomness: not applicable
    (a mask, nothing drawn)."""
    exact = torch.tensor([0.125, 0.5, 0.25, 0.0625, 0.0625])
    cases = [Case(dict(scores=exact, threshold=0.75), label="threshold exactly on a cumulative sum"),
             Case(dict(scores=exact, threshold=0.8), label="threshold between two sums"),
             Case(dict(scores=exact * 8, threshold=0.8), label="scores that do not sum to 1"),
             Case(dict(scores=exact, threshold=0.9), label="the node that crosses the threshold ties with "
                                                         "the next one"),
             Case(dict(scores=exact, threshold=1.0), label="threshold 1"),
             Case(dict(scores=exact, threshold=0.01), label="a tiny threshold"),
             Case(dict(scores=torch.tensor([2.0]), threshold=0.5), label="one node")]
    for i, n in enumerate([20, 50]):
        g = _g(600 + i)
        cases.append(Case(dict(scores=torch.rand(n, generator=g, dtype=torch.float64), threshold=0.8),
                          label=f"{n} random scores (float64)"))

    def cum_mask(scores: torch.Tensor, threshold: float, strict: bool) -> torch.Tensor:
        s, order = scores.sort(descending=True)
        cum = s.cumsum(0) / s.sum()
        keep_sorted = cum <= threshold if not strict else cum < threshold
        mask = torch.zeros_like(scores, dtype=torch.bool)
        mask[order] = keep_sorted
        return mask

    def by_rank(scores: torch.Tensor, threshold: float) -> torch.Tensor:
        s, order = scores.sort(descending=True)
        i = min(int(torch.searchsorted(s.cumsum(0) / s.sum(), torch.tensor(threshold, dtype=s.dtype))),
                len(s) - 1)
        mask = torch.zeros_like(scores, dtype=torch.bool)
        mask[order[: i + 1]] = True
        return mask

    def sorted_order(scores: torch.Tensor, threshold: float) -> torch.Tensor:
        s = scores.sort(descending=True).values
        return s >= find_threshold(scores, threshold)

    mistakes = [
        Mistake("your mask is in sorted order: return it over the nodes in their original order",
                sorted_order),
        Mistake("you kept the first nodes of the sorted order only: a node whose score equals the cut-off "
                "is kept too (compare the scores with the cut-off score)", by_rank),
        Mistake("you stopped before the node that crosses the threshold: keep nodes until the cumulative "
                "share first reaches the threshold, that node included",
                lambda scores, threshold: cum_mask(scores, threshold, strict=True)),
        Mistake("you compared with the raw cumulative sum: divide it by the total first",
                lambda scores, threshold: scores >= scores.sort(descending=True).values[
                    min(int((scores.sort(descending=True).values.cumsum(0) < threshold).sum()), len(scores) - 1)]),
        Mistake("you sorted in ascending order: rank by influence, largest first",
                lambda scores, threshold: scores <= scores.sort().values[
                    min(int(torch.searchsorted(scores.sort().values.cumsum(0) / scores.sum(),
                                               torch.tensor(threshold, dtype=scores.dtype))), len(scores) - 1)]),
    ]
    def indices_hint(actual: Any, kwargs: Any) -> str | None:
        if isinstance(actual, torch.Tensor) and actual.dtype in (torch.long, torch.int32) and actual.ndim == 1:
            return ("you returned the kept nodes' indices: return a bool mask with one entry per node "
                    "(True = kept)")
        return None

    n = check_function("keep_by_cumulative", fn, ref_keep_by_cumulative, cases, mistakes, hints=(indices_hint,))
    passed("keep_by_cumulative", f"{n} cases")


# ------------------------------------------------------------------------------------------------
# 5.9 a graph-guided intervention: an ablation hook


def make_ablation_hook(pos: int, act: torch.Tensor, w_dec: torch.Tensor) -> Callable[..., torch.Tensor]:
    """The reference: a hook that removes a feature's output a · W_dec[s] at one position."""
    def hook(t: torch.Tensor, hook: Any = None) -> torch.Tensor:
        out = t.clone()
        out[:, pos] = out[:, pos] - act * w_dec
        return out
    return hook


def check_ablation_hook(fn: Callable[..., Any]) -> None:
    """``fn(pos, act, w_dec)`` returns a hook ``(t, hook) -> t'``. Covers: stated (subtract, at one
    position, scaled by the activation; return a hook), independence (every batch item; one position
    only), parameters (first, middle and last positions), shapes (batch 1, one position; positions
    are t's second dimension), dtypes (float64 at float64 tolerance), side effects (the hook must not
    change the tensor it is given: TransformerLens passes a tensor other code may still read).
    Differentiability: not applicable (interventions run under no_grad; nothing is trained through
    the hook); randomness: not applicable."""
    cases = []
    for i, (b, n, d, pos) in enumerate([(3, 6, 8, 2), (1, 6, 8, 5), (2, 1, 4, 0), (4, 5, 3, 0)]):
        for dt in DTYPES:
            g = _g(700 + 2 * i + (dt == torch.float64))
            cases.append(Case(dict(t=_randn(b, n, d, g=g, dt=dt), pos=pos, act=torch.tensor(1.7, dtype=dt),
                                   w_dec=_randn(d, g=g, dt=dt)), label=f"batch {b}, {n} positions, at {pos}"))

    def applied(make: Callable[..., Any]) -> Callable[..., Any]:
        return lambda t, pos, act, w_dec: make(pos, act, w_dec)(t, None)

    def learner(t: torch.Tensor, pos: int, act: torch.Tensor, w_dec: torch.Tensor) -> Any:
        hook = call_learner(fn, dict(pos=pos, act=act, w_dec=w_dec), "ablation_hook")
        if not callable(hook):
            raise CheckFailed(f"ablation_hook must return a hook function (t, hook) -> tensor, got "
                              f"{type(hook).__name__}")
        return hook(t, None)

    def at_all(t: torch.Tensor, pos: int, act: torch.Tensor, w_dec: torch.Tensor) -> torch.Tensor:
        return t - act * w_dec

    def first_item(t: torch.Tensor, pos: int, act: torch.Tensor, w_dec: torch.Tensor) -> torch.Tensor:
        out = t.clone()
        out[0, pos] -= act * w_dec
        return out

    mistakes = [
        Mistake("you changed every position: a feature writes only at its own position pos", at_all),
        Mistake("you added the feature's output: ablating removes it (subtract)",
                lambda t, pos, act, w_dec: make_ablation_hook(pos, -act, w_dec)(t)),
        Mistake("you removed W_dec[s] without its activation: the feature wrote a · W_dec[s]",
                lambda t, pos, act, w_dec: make_ablation_hook(pos, torch.ones_like(act), w_dec)(t)),
        Mistake("you changed only the first item of the batch", first_item),
        Mistake("you indexed the batch dimension (t[pos]): t is [batch, n, d], the position is t[:, pos]",
                lambda t, pos, act, w_dec: torch.cat([t[:pos], t[pos:pos + 1] - act * w_dec, t[pos + 1:]])),
        Mistake("you changed the last position: ablate at the feature's position pos",
                lambda t, pos, act, w_dec: make_ablation_hook(t.shape[1] - 1, act, w_dec)(t)),
    ]
    n = check_function("ablation_hook", learner, applied(make_ablation_hook), cases, mistakes)
    passed("ablation_hook", f"{n} random cases")
