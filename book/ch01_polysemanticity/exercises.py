# %% [markdown]
# # Polysemanticity: exercises
#
# Six functions, from reading a trained network's neurons to finding the rotation that makes
# non-aligned features monosemantic. For each one, read the instructions, replace the
# `raise NotImplementedError(...)` line with your code, then run the check cell below it. A check prints
# one line when your function is right; otherwise it tells you what looks wrong. The cells after a check
# use your function on the chapter's networks.
#
# Grade the whole notebook at any time with
# `python -m course_utils.grade exercises/ch01_polysemanticity.ipynb`.

# %%
import torch
from torch import nn

from course_utils import pick
from course_utils import polysemanticity as poly
from course_utils.checks import polysemanticity as checks

CFG = pick(cpu=dict(d_hidden=32, steps=800, xy_restarts=32, xy_steps=2000),
           gpu=dict(d_hidden=128, steps=2000, xy_restarts=64, xy_steps=4000))
data = poly.load_digits_data()  # scikit-learn's bundled 8x8 digits: data.X [1797, 64], data.y, data.images
run = poly.train_digits_mlp(data, d_hidden=CFG["d_hidden"], steps=CFG["steps"], seed=0)
model = run.model  # model.hidden (Linear), model.act (ReLU), model.readout (Linear)
print(f"digits MLP with {CFG['d_hidden']} hidden neurons, test accuracy {run.test_accuracy:.3f}")

# %% [markdown]
# ## Exercise 1.1: collect a layer's activations over a dataset
#
# In the warm-up you recorded one forward pass with a hook. Now record a whole dataset, in batches.
# Return the output of the submodule `module_name` for every row of `inputs`, running the model on
# `batch_size` rows at a time and concatenating the batches in order. Register the hook **once**, store
# each output detached, run under `torch.no_grad()`, and remove the hook before returning, even if the
# forward pass raises. Leave the model as you found it (its other hooks, its train/eval mode).
#
# <details><summary>Hint</summary>
#
# `handle = model.get_submodule(module_name).register_forward_hook(lambda mod, inp, out: store.append(out.detach()))`,
# a loop over `inputs.split(batch_size)` (or `range(0, n, batch_size)`), `torch.cat(store)`, and
# `handle.remove()` in a `finally:` block.
# </details>

# %% exercise="collect_activations"
def collect_activations(model: nn.Module, module_name: str, inputs: torch.Tensor,
                        batch_size: int = 256) -> torch.Tensor:
    """The output of model.<module_name> for every input: [n_examples, ...], in input order."""
    ### BEGIN SOLUTION
    stored: list[torch.Tensor] = []
    handle = model.get_submodule(module_name).register_forward_hook(
        lambda module, inp, out: stored.append(out.detach()))
    try:
        with torch.no_grad():
            for batch in inputs.split(batch_size):
                model(batch)
    finally:
        handle.remove()
    return torch.cat(stored)
    ### END SOLUTION


# %% check="collect_activations"
checks.check_collect_activations(collect_activations)

# %%
acts = collect_activations(model, "act", data.X, batch_size=256)
print(f"hidden activations: {list(acts.shape)}; fraction of zeros (ReLU off): {(acts == 0).float().mean():.2f}")

# %% [markdown]
# ## Exercise 1.2: which classes are in each neuron's top k?
#
# `acts: [n_examples, n_units]`, integer `labels: [n_examples]` in `range(n_classes)`. For every unit at
# once, find its `k` top-activating examples and count how many of them fall in each class. Return
# `[n_units, n_classes]`; each row sums to `k`. Use `n_classes` as given: a class may be missing from
# the top k, or even from the labels.
#
# <details><summary>Hint</summary>
#
# `acts.topk(k, dim=0).indices` is `[k, n_units]`; `labels[indices]` has the same shape; a one-hot
# encoding with `n_classes` columns summed over the `k` dimension gives the counts.
# </details>

# %% exercise="top_k_class_counts"
def top_k_class_counts(acts: torch.Tensor, labels: torch.Tensor, k: int, n_classes: int) -> torch.Tensor:
    """acts: [n, n_units], labels: [n] -> [n_units, n_classes] counts over each unit's top-k examples."""
    ### BEGIN SOLUTION
    idx = acts.topk(k, dim=0).indices  # [k, n_units]
    return nn.functional.one_hot(labels[idx], n_classes).sum(0)
    ### END SOLUTION


# %% check="top_k_class_counts"
checks.check_top_k_class_counts(top_k_class_counts)

# %%
K = 50
alive = poly.active_units(acts, K)  # neurons with at least K positive activations
counts = top_k_class_counts(acts[:, alive], data.y, K, 10)
for i, row in zip(alive.nonzero().flatten()[:6].tolist(), counts[:6]):
    print(f"neuron {i:>2}: top-{K} class counts {row.tolist()}")

# %% [markdown]
# ## Exercise 1.3: the polysemanticity score
#
# Turn each row of counts into shares $p_c = \text{count}_c / \sum_c \text{count}_c$ and return the
# **effective number of classes** $\exp(H)$ with $H = -\sum_c p_c \log p_c$ (natural log; $0 \log 0 = 0$).
# A unit whose top examples all share one class scores 1; an even spread over $m$ classes scores $m$.
#
# <details><summary>Hint</summary>
#
# `torch.special.xlogy(p, p)` computes $p \log p$ with $0 \log 0 = 0$; or mask with `torch.where(p > 0, ...)`.
# Convert integer counts to float first.
# </details>

# %% exercise="polysemanticity_score"
def polysemanticity_score(counts: torch.Tensor) -> torch.Tensor:
    """counts: [n_units, n_classes] -> [n_units] effective number of classes exp(entropy)."""
    ### BEGIN SOLUTION
    counts = counts.to(torch.get_default_dtype()) if not counts.is_floating_point() else counts
    p = counts / counts.sum(1, keepdim=True)
    return torch.exp(-torch.special.xlogy(p, p).sum(1))
    ### END SOLUTION


# %% check="polysemanticity_score"
checks.check_polysemanticity_score(polysemanticity_score)

# %% [markdown]
# Now the comparison from the chapter: score the neurons, 200 random unit directions of the same
# hidden layer and the 10 read-out directions, all with your two functions.

# %%
neuron_scores = polysemanticity_score(counts)
random_acts = poly.project(acts, poly.random_unit_directions(200, acts.shape[1], seed=1))
random_scores = polysemanticity_score(top_k_class_counts(random_acts, data.y, K, 10))
readout_scores = polysemanticity_score(top_k_class_counts(poly.project(acts, poly.readout_directions(model)),
                                                          data.y, K, 10))
print(f"median effective number of classes: neurons {neuron_scores.median():.2f}, "
      f"random directions {random_scores.median():.2f}, read-out directions {readout_scores.median():.2f}")
poly.score_comparison_figure(neuron_scores, random_scores, readout_scores)

# %% [markdown]
# **Question.** Why is comparing with random directions more informative than the neurons' scores
# alone? What would it mean if neurons scored much *lower* than random directions?

# %% [markdown] only="solutions"
# **Answer.** A score of "2.3 classes" means little without a baseline: it depends on $k$, on how similar
# the classes look and on how well the network separates them. Random directions of the same layer share
# all of that, so the comparison isolates the question "does the neuron basis line up with the classes?".
# Much lower scores for neurons would mean the privileged basis attracts class features. Here it does
# not: neurons score about like random directions, and the read-out directions, which mix many neurons,
# are the class-selective ones.

# %% [markdown]
# ## Exercise 1.4: neuron purity
#
# `M: [n_neurons, n_features]` holds feature $j$'s weight on neuron $i$. Return, for each neuron, the
# share of its squared weights held by its main feature: $\max_j M_{ij}^2 / \sum_j M_{ij}^2$. This is 1
# for a monosemantic neuron and $1/n$ for an even mix of $n$ features.

# %% exercise="neuron_purity"
def neuron_purity(M: torch.Tensor) -> torch.Tensor:
    """M: [n_neurons, n_features] -> [n_neurons] purity in [1/n_features, 1]."""
    ### BEGIN SOLUTION
    sq = M ** 2
    return sq.max(dim=1).values / sq.sum(dim=1)
    ### END SOLUTION


# %% check="neuron_purity"
checks.check_neuron_purity(neuron_purity)

# %% [markdown]
# A ReLU autoencoder with 6 neurons and 3 features (tied weights, biases that keep the ReLU in its linear
# range): the features come out orthogonal but not neuron-aligned.

# %%
orth = poly.train_orthogonal_autoencoder(n_features=3, n_neurons=6, seed=0)
print("feature directions' dot products (W^T W):\n", (orth.W.T @ orth.W).round(decimals=3))
print("neuron purity:", [round(v, 2) for v in neuron_purity(orth.W).tolist()])

# %% [markdown]
# ## Exercise 1.5: find the rotation that makes the features monosemantic
#
# Given activations `H: [n, d]` and target values `F: [n, d]`, return the orthogonal `Q: [d, d]` that
# minimises $\lVert HQ - F\rVert_F$ (orthogonal Procrustes). With the SVD $H^\top F = U S V^\top$, the
# answer is $Q = U V^\top$.
#
# <details><summary>Hint</summary>
#
# `U, S, Vh = torch.linalg.svd(H.T @ F)`; note that `Vh` is already $V^\top$.
# </details>

# %% exercise="procrustes_rotation"
def procrustes_rotation(H: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
    """H, F: [n, d] -> orthogonal Q: [d, d] minimising ||H Q - F||."""
    ### BEGIN SOLUTION
    U, _, Vh = torch.linalg.svd(H.T @ F)
    return U @ Vh
    ### END SOLUTION


# %% check="procrustes_rotation"
checks.check_procrustes_rotation(procrustes_rotation)

# %% [markdown]
# Apply it: activations of the autoencoder on fresh data, centred, against the centred feature values
# padded with zeros to the layer width. The rotated feature matrix is $Q^\top W$.

# %%
x = poly.sparse_features(4000, 3, seed=1)
H = orth.hidden(x)
H = H - H.mean(0)
F = torch.zeros_like(H)
F[:, :3] = x - x.mean(0)
Q = procrustes_rotation(H, F)
rotated = Q.T @ orth.W
print("purity after rotation (first 3 axes):", [round(v, 3) for v in neuron_purity(rotated[:3]).tolist()])
print(f"weight left on the other 3 axes: {rotated[3:].norm():.1e}")
poly.feature_matrix_figure(orth.W, rotated)

# %% [markdown]
# **Question.** Try the same with 5 features in a 2-neuron layer arranged as a pentagon
# (`poly.polygon_features(5)`). Why can no rotation make both neurons monosemantic? What is the best
# purity any rotation can reach?

# %% only="solutions"
angles, purity = poly.best_purity_over_rotations(poly.polygon_features(5, angle=0.3))
print(f"pentagon: best mean purity over all rotations {purity.max():.3f} (bound 2/5 = 0.4)")

# %% [markdown] only="solutions"
# **Answer.** For the pentagon $W W^\top = \tfrac52 I$, so any unit vector $q$ (any neuron axis after any
# rotation) has $\sum_j (q \cdot w_j)^2 = 5/2$. A single feature contributes at most 1, so the purity
# is at most $1/(5/2) = 2/5$ whatever the rotation. More features than dimensions means that no basis
# gives each feature its own axis: that is superposition, and undoing it needs more than a rotation
# (an overcomplete dictionary, as sparse autoencoders learn).

# %% [markdown]
# ## Exercise 1.6: read the x·y network
#
# The chapter trains a 4-neuron ReLU network on $x \cdot y$. Its first-layer weights `W1: [4, 2]` tell us
# which direction of the input plane each neuron reads. Return, for each neuron, how well it lines up
# with a diagonal: the larger of $|\cos(w_i, (1, 1))|$ and $|\cos(w_i, (1, -1))|$.
#
# <details><summary>Hint</summary>
#
# Normalise the rows of `W1` and the two diagonal vectors, take the `[n, 2]` matrix of dot products, its
# absolute value, and the max over the two diagonals.
# </details>

# %% exercise="diagonal_alignment"
def diagonal_alignment(W1: torch.Tensor) -> torch.Tensor:
    """W1: [n_neurons, 2] -> [n_neurons] max(|cos(w, (1,1))|, |cos(w, (1,-1))|)."""
    ### BEGIN SOLUTION
    diagonals = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=W1.dtype, device=W1.device) / 2 ** 0.5
    W_hat = W1 / W1.norm(dim=1, keepdim=True)
    return (W_hat @ diagonals.T).abs().max(dim=1).values
    ### END SOLUTION


# %% check="diagonal_alignment"
checks.check_diagonal_alignment(diagonal_alignment)

# %%
xy = poly.train_xy_network(hidden=4, restarts=CFG["xy_restarts"], steps=CFG["xy_steps"], seed=0)
W1 = xy.model[0].weight.detach()
print(f"relative error {xy.relative_error:.3f}; alignment with a diagonal: "
      f"{[round(v, 3) for v in diagonal_alignment(W1).tolist()]}")
print("output weights:", [round(v, 2) for v in xy.model[2].weight.detach()[0].tolist()])
poly.xy_neurons_figure(xy.model)

# %% [markdown]
# **Question.** Which neurons have positive output weights, and which diagonal do they read? Explain
# with $xy = \tfrac14\big((x+y)^2 - (x-y)^2\big)$. Is this network in superposition?

# %% [markdown] only="solutions"
# **Answer.** The neurons on the (1, 1) diagonal (reading $\pm(x+y)$) have positive output weights: they
# build a piecewise-linear $(x+y)^2$. Those on (1, −1) have negative ones: $-(x-y)^2$. Each neuron
# fires when $x$ and $y$ are both large (same sign for (1, 1), opposite signs for (1, −1)), so probed
# with one input at a time it looks like it responds to both. The problem is two-dimensional and there
# are four neurons: no superposition, only a computation whose natural variables mix the inputs.
