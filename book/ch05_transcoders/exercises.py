# %% [markdown]
# # Transcoders and attribution graphs: exercises
#
# Nine functions, in the order the chapter builds them: a transcoder and its skip path, the local
# replacement model's frozen pieces and error nodes, one edge of an attribution graph from a backward
# pass, the whole adjacency matrix, influence through indirect paths, pruning, and the hook that
# tests a graph's prediction on the real model. For each one: read the instructions, replace the
# `raise NotImplementedError(...)` line with your code, then run the check cell below it. A check
# prints one line when your function is right; otherwise it names the likely mistake.
#
# Shapes follow SAELens: `W_enc: [d_in, d_sae]`, `W_dec: [d_sae, d_out]`, `W_skip: [d_in, d_out]`
# (a layer computes `x @ W`). Grade the whole notebook at any time with
# `python -m course_utils.grade exercises/ch05_transcoders.ipynb`.

# %%
import torch

from course_utils import set_seed
from course_utils.checks import circuits as checks

set_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## Exercise 5.1: a TopK transcoder's forward pass and loss
#
# A transcoder reads an MLP's input `x: [batch, d_in]` and predicts its output `y: [batch, d_out]`
# through sparse features:
#
# $$a = \mathrm{ReLU}(\mathrm{TopK}_k(x W_{enc} + b_{enc})), \qquad \hat y = a W_{dec} + b_{dec}.$$
#
# TopK keeps the $k$ largest pre-activations of each example and sets the others to zero. Unlike an
# SAE there is no pre-encoder bias: $b_{dec}$ lives in the output space, so $x$ is encoded as it is.
# Return the loss $\lVert y - \hat y\rVert^2$, summed over the output dimension and averaged over
# the batch (a scalar tensor that training can differentiate).
#
# <details><summary>Hint</summary>
#
# `pre.topk(k, dim=-1)` gives `values` and `indices`; `torch.zeros_like(pre).scatter(-1, indices,
# torch.relu(values))` puts them back in place.
# </details>

# %% exercise="transcoder_loss"
def transcoder_loss(x: torch.Tensor, y: torch.Tensor, W_enc: torch.Tensor,
                    b_enc: torch.Tensor, W_dec: torch.Tensor, b_dec: torch.Tensor,
                    k: int) -> torch.Tensor:
    """x: [batch, d_in], y: [batch, d_out] -> scalar loss."""
    ### BEGIN SOLUTION
    pre = x @ W_enc + b_enc
    top = pre.topk(k, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    return (acts @ W_dec + b_dec - y).pow(2).sum(-1).mean()
    ### END SOLUTION


# %% check="transcoder_loss"
checks.check_transcoder_loss(transcoder_loss)

# %% [markdown]
# ## Exercise 5.2: the skip path
#
# A *skip transcoder* (Paulo, Shabalin & Belrose 2025) adds an affine path from the input straight
# to the output, $\hat y = a W_{dec} + b_{dec} + x W_{skip}$, so that the features need not spend
# themselves on the part of the MLP that is nearly linear. Return $\hat y$: `[batch, d_out]`.

# %% exercise="skip_forward"
def skip_forward(x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor,
                 W_dec: torch.Tensor, b_dec: torch.Tensor, W_skip: torch.Tensor,
                 k: int) -> torch.Tensor:
    """x: [batch, d_in], W_skip: [d_in, d_out] -> [batch, d_out]."""
    ### BEGIN SOLUTION
    pre = x @ W_enc + b_enc
    top = pre.topk(k, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    return acts @ W_dec + b_dec + x @ W_skip
    ### END SOLUTION


# %% check="skip_forward"
checks.check_skip_forward(skip_forward)

# %% [markdown]
# ## Exercise 5.3: freezing a LayerNorm
#
# The local replacement model of a prompt freezes every attention pattern and every LayerNorm
# denominator at its value on that prompt. A frozen LayerNorm is then a *linear* map of its input:
# centre $x$ over the last dimension and divide by the frozen `scale` (given, `[..., 1]`); do not
# recompute the scale from `x`, and let no gradient flow into it. (This is the normalisation the
# course model's transcoders read, `blocks.L.ln2.hook_normalized`, before LayerNorm's affine part.)
#
# <details><summary>Hint</summary>
#
# `scale.detach()` makes a constant of it; the gradient with respect to `x` must still flow.
# </details>

# %% exercise="frozen_layernorm"
def frozen_layernorm(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x: [..., d], scale: [..., 1] -> [..., d]."""
    ### BEGIN SOLUTION
    return (x - x.mean(-1, keepdim=True)) / scale.detach()
    ### END SOLUTION


# %% check="frozen_layernorm"
checks.check_frozen_layernorm(frozen_layernorm)

# %% [markdown]
# ## Exercise 5.4: error nodes
#
# A transcoder does not reproduce its MLP exactly. The replacement model adds back, at every layer and
# position, what it misses: the *error* $e = y - (a W_{dec} + b_{dec} + x W_{skip})$, with $y$ the
# MLP's true output. Frozen, these error vectors make the replacement model's logits equal the
# model's on the prompt, and in the graph they are the error nodes. Inputs: `y: [n, d_out]`,
# `x: [n, d_in]`, `acts: [n, d_sae]`; return `[n, d_out]`.

# %% exercise="error_node"
def error_node(y: torch.Tensor, x: torch.Tensor, acts: torch.Tensor,
               W_dec: torch.Tensor, b_dec: torch.Tensor,
               W_skip: torch.Tensor) -> torch.Tensor:
    """y: [n, d_out], x: [n, d_in], acts: [n, d_sae] -> [n, d_out]."""
    ### BEGIN SOLUTION
    return y - (acts @ W_dec + b_dec + x @ W_skip)
    ### END SOLUTION


# %% check="error_node"
checks.check_error_node(error_node)

# %% [markdown]
# ## Exercise 5.5: one edge from a backward pass
#
# In the frozen model every path from a source to a target is linear, so the direct effect of a
# feature $s$ (active at position `pos` with activation $a_s$, decoder row $w_s$) on a target is
# $a_s \,(\partial t / \partial o_{pos}) \cdot w_s$, where $o$ is the source layer's output. One
# backward pass gives $\partial t / \partial o$ at every position: add a zero tensor
# `delta: [n, d]` that requires grad where the source writes, compute the target from it and ask
# autograd for its gradient. Here `target_fn(delta)` computes the target (a scalar tensor) from that
# tensor; `act` is a 0-d tensor and `w_dec: [d]`. Return the edge weight, a 0-d tensor.
#
# <details><summary>Hint</summary>
#
# `delta = torch.zeros(n, d, dtype=w_dec.dtype, requires_grad=True)`, then
# `(grad,) = torch.autograd.grad(target_fn(delta), delta)`.
# </details>

# %% exercise="edge_from_backward"
def edge_from_backward(target_fn, n: int, d: int, pos: int, act: torch.Tensor,
                       w_dec: torch.Tensor) -> torch.Tensor:
    """-> 0-d tensor: a_s · (dt/do[pos] · w_dec)."""
    ### BEGIN SOLUTION
    delta = torch.zeros(n, d, dtype=w_dec.dtype, requires_grad=True)
    (grad,) = torch.autograd.grad(target_fn(delta), delta)
    return act * (grad[pos] @ w_dec)
    ### END SOLUTION


# %% check="edge_from_backward"
checks.check_edge_from_backward(edge_from_backward)

# %% [markdown]
# ## Exercise 5.6: the adjacency matrix
#
# One backward pass per target gives a whole row of the graph. Stack the gradients of many targets:
# `G: [n_targets, n_pos, d]`, the gradient of each target at every position of the source layer's
# output. Source $s$ writes the vector `vecs[s]` (for a feature $a_s w_s$, for an error node its error
# vector) at position `pos[s]` (long, `[n_sources]`). Return `A: [n_targets, n_sources]` with
# `A[t, s] = G[t, pos[s]] · vecs[s]`: rows are targets, columns sources, as in circuit-tracer.

# %% exercise="adjacency"
def adjacency(G: torch.Tensor, pos: torch.Tensor, vecs: torch.Tensor) -> torch.Tensor:
    """G: [n_targets, n_pos, d], pos: [n_sources] (long), vecs: [n_sources, d]
    -> [n_targets, n_sources]."""
    ### BEGIN SOLUTION
    return (G[:, pos] * vecs).sum(-1)
    ### END SOLUTION


# %% check="adjacency"
checks.check_adjacency(adjacency)

# %% [markdown]
# ## Exercise 5.7: influence via $(I - A)^{-1}$
#
# An edge is a direct effect. A node can also matter through paths of several edges; circuit-tracer
# ranks nodes by their total influence on the output. Take absolute values and normalise every row
# of $A$ to sum to 1 (each target's inputs become shares; rows of zeros stay zero), giving $\tilde A$.
# With `w` the weights of the output nodes (the logit probabilities, zero elsewhere), the influence
# of every node through paths of any length is
#
# $$w (\tilde A + \tilde A^2 + \tilde A^3 + \dots) = w \left((I - \tilde A)^{-1} - I\right).$$
#
# Return it, `[n_nodes]`. The graph has no cycles, so the series ends and $I - \tilde A$ is
# invertible.
#
# <details><summary>Hint</summary>
#
# $x = w (I - \tilde A)^{-1}$ solves $(I - \tilde A)^\top x^\top = w^\top$:
# `torch.linalg.solve((I - M).T, w)`. Clamp the row sums (`clamp_min(1e-10)`) before dividing.
# </details>

# %% exercise="influence"
def influence(A: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A: [n_nodes, n_nodes] (rows targets), w: [n_nodes] -> [n_nodes]."""
    ### BEGIN SOLUTION
    M = A.abs()
    M = M / M.sum(1, keepdim=True).clamp_min(1e-10)
    eye = torch.eye(len(A), dtype=A.dtype)
    return torch.linalg.solve((eye - M).T, w) - w
    ### END SOLUTION


# %% check="influence"
checks.check_influence(influence)

# %% [markdown]
# ## Exercise 5.8: pruning by cumulative threshold
#
# circuit-tracer keeps the nodes that carry most of the influence: sort the scores from largest to
# smallest, take their cumulative sum divided by the total, and keep every node down to the first
# one at which that share reaches `threshold` (that node included, and any node with an equal
# score). Return a bool mask over the nodes in their original order.
#
# <details><summary>Hint</summary>
#
# `torch.searchsorted(cum, threshold)` finds the first index where `cum >= threshold`; the score
# there is the cut-off.
# </details>

# %% exercise="keep_by_cumulative"
def keep_by_cumulative(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """scores: [n] (non-negative), threshold in (0, 1] -> bool [n]."""
    ### BEGIN SOLUTION
    s = scores.sort(descending=True).values
    cum = s.cumsum(0) / s.sum()
    i = int(torch.searchsorted(cum, torch.tensor(threshold, dtype=cum.dtype)))
    i = min(i, len(s) - 1)
    return scores >= s[i]
    ### END SOLUTION


# %% check="keep_by_cumulative"
checks.check_keep_by_cumulative(keep_by_cumulative)

# %% [markdown]
# ## Exercise 5.9: a graph-guided intervention
#
# A graph is a hypothesis about the model; an intervention tests it. To ablate a feature in the real
# model, remove what it writes: $a_s w_s$ at its position, from the MLP output. Write
# `ablation_hook(pos, act, w_dec)` that returns a TransformerLens hook `hook(t, hook) -> tensor` for
# `blocks.L.hook_mlp_out` (`t: [batch, n, d]`). Return a new tensor: do not modify `t` in place.

# %% exercise="ablation_hook"
def ablation_hook(pos: int, act: torch.Tensor, w_dec: torch.Tensor):
    """-> a function (t: [batch, n, d], hook) -> [batch, n, d]."""
    ### BEGIN SOLUTION
    def hook(t: torch.Tensor, hook=None) -> torch.Tensor:
        out = t.clone()
        out[:, pos] = out[:, pos] - act * w_dec
        return out
    return hook
    ### END SOLUTION


# %% check="ablation_hook"
checks.check_ablation_hook(ablation_hook)

# %% [markdown]
# The chapter page uses these pieces with the shipped transcoders: `course_utils.circuits` builds the
# replacement model (`build_replacement`), the graph (`build_graph`, with your adjacency and
# influence inside), prunes it (`prune_graph`) and checks its predictions on the real model with
# ablation hooks like yours.
