"""Attribution graphs of the local replacement model (Ameisen et al. 2025; circuit-tracer's algorithm,
reimplemented for the course model).

Nodes, in circuit-tracer's order: the active features (layer, position, feature; every position,
since the course tokenizer prepends no BOS token), the error nodes (layer × position), the token
nodes (one per position: token + positional embedding) and the logit nodes (the most probable next
tokens at the last position until their probability reaches ``logit_prob``, at most ``max_logits``;
or the tokens asked for).

Edge ``A[target, source]`` is the direct effect of the source on the target in the replacement model
(:mod:`.replacement`): the target's input direction (a feature's encoder column ``W_enc[:, i]`` at its
MLP input, or a logit's mean-centred unembedding) is injected as the gradient and read, in one
backward pass through the frozen linear path, at each source's output, contracted with the source's
vector (``a_s · W_dec[s]`` for a feature, the error vector, the embedding). Feature activations are
frozen, so an edge never runs through another node; the backward passes of many targets run as one
batch.

Pruning (circuit-tracer's ``prune_graph``): |A| is row-normalised, each node's influence on the logits
is ``w ((I − A)⁻¹ − I)`` with ``w`` the logit probabilities; nodes are kept in order of influence until
a fraction ``node_threshold`` (0.8) of the total, then edges, scored by normalised weight × the
influence of their target, until ``edge_threshold`` (0.98); nodes left without an outgoing edge (and
features without an incoming one) are dropped until nothing changes; tokens and logits always stay.
Scores (circuit-tracer's ``compute_graph_scores``): *replacement* = token influence / (token + error
influence); *completeness* = the influence-weighted share of each node's normalised input that does
not come from error nodes.

Public: :class:`AttributionGraph`, :func:`build_graph`, :func:`normalize_matrix`,
:func:`compute_influence`, :func:`node_influence`, :func:`find_threshold`, :func:`prune_graph`,
:class:`PruneResult`, :func:`graph_scores`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from course_utils._validate import check_float, check_int
from course_utils.circuits.replacement import LocalReplacement, build_replacement, source_gradients


@dataclass
class AttributionGraph:
    """An attribution graph. Node order: features, errors, tokens, logits.

    features ``[n_features, 3]`` (layer, position, feature id); activations ``[n_features]``;
    adjacency ``[n_nodes, n_nodes]`` (rows targets, columns sources); logit_tokens ``[n_logits]``;
    logit_probs ``[n_logits]``; tokens ``[n_tokens]``.
    """

    features: torch.Tensor
    activations: torch.Tensor
    adjacency: torch.Tensor
    tokens: torch.Tensor
    logit_tokens: torch.Tensor
    logit_probs: torch.Tensor
    n_layers: int
    replacement: LocalReplacement | None = None

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def n_errors(self) -> int:
        return self.n_layers * len(self.tokens)

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def n_logits(self) -> int:
        return len(self.logit_tokens)

    @property
    def n_nodes(self) -> int:
        return self.n_features + self.n_errors + self.n_tokens + self.n_logits

    def kind(self, node: int) -> str:
        """"feature", "error", "token" or "logit"."""
        edges = (self.n_features, self.n_features + self.n_errors,
                 self.n_features + self.n_errors + self.n_tokens)
        return "feature" if node < edges[0] else "error" if node < edges[1] else \
            "token" if node < edges[2] else "logit"

    def error_index(self, layer: int, pos: int) -> int:
        return self.n_features + layer * self.n_tokens + pos

    def token_index(self, pos: int) -> int:
        return self.n_features + self.n_errors + pos

    def logit_weights(self) -> torch.Tensor:
        """w ``[n_nodes]``: the logit probabilities on the logit nodes, zero elsewhere."""
        w = torch.zeros(self.n_nodes, dtype=self.adjacency.dtype)
        w[-self.n_logits:] = self.logit_probs.to(w.dtype)
        return w


# ------------------------------------------------------------------------------------------------
# Construction


def select_logits(logits: torch.Tensor, logit_prob: float = 0.95, max_logits: int = 10,
                  targets: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, probabilities) of the logit nodes from the last position's logits ``[d_vocab]``."""
    probs = torch.softmax(logits.double(), -1).float()
    if targets is not None:
        ids = torch.as_tensor(list(targets), dtype=torch.long)
        if ids.ndim != 1 or len(ids) == 0 or ids.min() < 0 or ids.max() >= len(probs):
            raise ValueError(f"target tokens must be ids in [0, {len(probs)}), got {list(targets)}")
        return ids, probs[ids]
    top = probs.sort(descending=True)
    n = int((top.values.cumsum(0) < logit_prob).sum()) + 1
    n = min(n, max_logits)
    return top.indices[:n], top.values[:n]


def build_graph(model: Any, transcoders: Sequence[Any], prompt: object, tokenizer: Any = None,
                logit_prob: float = 0.95, max_logits: int = 10, target_tokens: Sequence[int] | None = None,
                batch_size: int = 256) -> AttributionGraph:
    """The attribution graph of ``prompt`` (text with ``tokenizer``, or token ids) through the model's
    transcoders (one per layer): see the module docstring."""
    check_float(logit_prob, "logit_prob", low=1e-9, high=1.0)
    check_int(max_logits, "max_logits")
    check_int(batch_size, "batch_size")
    rep = build_replacement(model, transcoders, prompt, tokenizer)
    tcs, n = rep.transcoders, rep.n_tokens
    logit_tokens, logit_probs = select_logits(rep.logits[-1], logit_prob, max_logits, target_tokens)

    feats = []
    for layer, a in enumerate(rep.acts):
        pos, fid = (a != 0).nonzero(as_tuple=True)
        feats.append(torch.stack([torch.full_like(pos, layer), pos, fid], 1))
    features = torch.cat(feats)  # [n_features, 3] ordered by layer, position, feature
    activations = torch.stack([rep.acts[int(layer)][p, f] for layer, p, f in features.tolist()]) \
        if len(features) else torch.zeros(0)
    n_f, n_err = len(features), len(tcs) * n
    n_nodes = n_f + n_err + n + len(logit_tokens)
    A = torch.zeros(n_nodes, n_nodes)

    # targets: every feature (its encoder column at its position) and every logit node
    targets = [("feature", int(layer), int(p), int(f)) for layer, p, f in features.tolist()]
    targets += [("logit", -1, n - 1, int(t)) for t in logit_tokens.tolist()]
    rows = list(range(n_f)) + list(range(n_nodes - len(logit_tokens), n_nodes))
    W_U = model.W_U.detach()
    W_U = W_U - W_U.mean(1, keepdim=True)  # mean-centred: a logit node explains logit − mean logit
    start = 0
    while start < len(targets):  # batches of targets of one kind and layer
        stop = start + 1
        while stop < len(targets) and stop - start < batch_size and targets[stop][:2] == targets[start][:2]:
            stop += 1
        chunk = targets[start:stop]
        A[rows[start:stop]] = _rows(model, rep, chunk, features, W_U, len(logit_tokens))
        start = stop
    return AttributionGraph(features, activations.float(), A, rep.tokens, logit_tokens, logit_probs,
                            len(tcs), rep)


def _rows(model: Any, rep: LocalReplacement, chunk: list[tuple[str, int, int, int]],
          features: torch.Tensor, W_U: torch.Tensor, n_logit_nodes: int) -> torch.Tensor:
    """Edge rows ``[len(chunk), n_nodes]`` for a batch of targets, from one batched backward pass.
    ``W_U`` ``[d_model, d_vocab]`` is the mean-centred unembedding."""
    tcs, n, B = rep.transcoders, rep.n_tokens, len(chunk)
    d = rep.embed.shape[-1]
    kinds = torch.tensor([c[0] == "feature" for c in chunk])
    layer_t, pos_t, idx_t = (torch.tensor([c[i] for c in chunk]) for i in (1, 2, 3))
    with torch.no_grad():
        top = int(layer_t[0]) if bool(kinds[0]) else len(tcs)
        if bool((kinds != kinds[0]).any()) or (bool(kinds[0]) and bool((layer_t != top).any())):
            raise ValueError("a batch of targets must share one kind and layer")
        rows = torch.arange(B)
        if top < len(tcs):  # feature targets: the encoder column at the target's MLP input
            g_x = torch.zeros(B, n, tcs[top].cfg.d_in)
            g_x[rows, pos_t] = tcs[top].W_enc.detach()[:, idx_t].T
            grads = source_gradients(model, rep, top, g_x_in=g_x)
        else:  # logit targets: the mean-centred unembedding column at the last position
            g_f = torch.zeros(B, n, d)
            g_f[rows, n - 1] = W_U[:, idx_t].T
            grads = source_gradients(model, rep, top, g_final=g_f)
    feat_cols = []
    for layer, tc in enumerate(tcs):  # a_s · (g[b, pos_s] · W_dec[s]), one matmul per position
        sel = features[features[:, 0] == layer]
        cols = torch.zeros(B, len(sel))
        W_dec = tc.W_dec.detach()
        for p in (sel[:, 1].unique().tolist() if layer < top else []):  # later layers: no edges
            j = (sel[:, 1] == p).nonzero()[:, 0]
            f = sel[j, 2]
            cols[:, j] = grads[layer + 1][:, p] @ (W_dec[f] * rep.acts[layer][p, f, None]).T
        feat_cols.append(cols)
    err_cols = [(grads[layer + 1] * rep.errors[layer]).sum(-1) for layer in range(len(tcs))]  # [B, n]
    tok_cols = (grads[0] * rep.embed).sum(-1)  # [B, n]
    return torch.cat(feat_cols + err_cols + [tok_cols, tok_cols.new_zeros(B, n_logit_nodes)], 1)


# ------------------------------------------------------------------------------------------------
# Influence and pruning


def normalize_matrix(A: torch.Tensor) -> torch.Tensor:
    """|A| with each row divided by its sum (rows of zeros stay zero)."""
    M = A.abs()
    return M / M.sum(1, keepdim=True).clamp_min(1e-10)


def compute_influence(A: torch.Tensor, w: torch.Tensor, max_iter: int = 1000) -> torch.Tensor:
    """w (A + A² + A³ + …) = w ((I − A)⁻¹ − I) for a nilpotent A (a DAG), by repeated products."""
    current = w @ A
    total = current.clone()
    for _ in range(max_iter):
        if not current.any():
            return total
        current = current @ A
        total += current
    raise ValueError("the influence series did not terminate: the adjacency matrix has a cycle")


def node_influence(graph: AttributionGraph) -> torch.Tensor:
    """Each node's total (direct and indirect) influence on the logit nodes: ``[n_nodes]``."""
    return compute_influence(normalize_matrix(graph.adjacency), graph.logit_weights())


def find_threshold(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """The smallest score among the top scores whose sum first reaches ``threshold`` of the total."""
    s = scores.flatten().sort(descending=True).values
    cum = s.cumsum(0) / s.sum().clamp_min(1e-30)
    i = min(int(torch.searchsorted(cum, torch.tensor(threshold, dtype=cum.dtype))), len(s) - 1)
    return s[i]


@dataclass
class PruneResult:
    """node_mask ``[n_nodes]`` and edge_mask ``[n_nodes, n_nodes]`` (bool) of the pruned graph, and the
    node influences it ranked by."""

    node_mask: torch.Tensor
    edge_mask: torch.Tensor
    influence: torch.Tensor


def check_threshold(value: object, name: str) -> float:
    v = check_float(value, name)
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{name} must lie in (0, 1] (a cumulative fraction of influence), got {value}")
    return v


def prune_graph(graph: AttributionGraph, node_threshold: float = 0.8, edge_threshold: float = 0.98
                ) -> PruneResult:
    """circuit-tracer's pruning (module docstring); thresholds are cumulative fractions in (0, 1]."""
    node_threshold = check_threshold(node_threshold, "node_threshold")
    edge_threshold = check_threshold(edge_threshold, "edge_threshold")
    n_keep = graph.n_tokens + graph.n_logits
    w = graph.logit_weights()
    influence = node_influence(graph)
    node_mask = influence >= find_threshold(influence, node_threshold)
    node_mask[-n_keep:] = True
    pruned = graph.adjacency.clone()
    pruned[~node_mask] = 0
    pruned[:, ~node_mask] = 0
    M = normalize_matrix(pruned)
    edge_scores = M * (compute_influence(M, w) + w)[:, None]
    edge_mask = edge_scores >= find_threshold(edge_scores, edge_threshold)
    edge_mask &= edge_scores > 0
    nf, inner = graph.n_features, graph.n_nodes - n_keep
    old = torch.zeros_like(node_mask)
    while not torch.equal(old, node_mask):
        old = node_mask.clone()
        edge_mask[~node_mask] = False
        edge_mask[:, ~node_mask] = False
        node_mask[:inner] &= edge_mask[:, :inner].any(0)  # features and errors need an outgoing edge
        node_mask[:nf] &= edge_mask[:nf].any(1)  # features need an incoming edge
    return PruneResult(node_mask, edge_mask, influence)


def graph_scores(graph: AttributionGraph) -> tuple[float, float]:
    """(replacement score, completeness score) as circuit-tracer computes them (module docstring)."""
    M = normalize_matrix(graph.adjacency)
    w = graph.logit_weights()
    infl = compute_influence(M, w)
    e0, e1 = graph.n_features, graph.n_features + graph.n_errors
    t1 = e1 + graph.n_tokens
    tok, err = infl[e1:t1].sum(), infl[e0:e1].sum()
    replacement = tok / (tok + err).clamp_min(1e-30)
    non_error = 1 - M[:, e0:e1].sum(1)
    out = infl + w
    completeness = (non_error * out).sum() / out.sum()
    return float(replacement), float(completeness)
