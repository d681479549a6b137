# %% [markdown]
# # Superposition: exercises
#
# Eleven functions, from the toy model's forward pass to the geometry of what it learns. For each one:
# read the instructions, replace the `raise NotImplementedError(...)` line with your code, then run the
# check cell below it. A check prints one line when your function is right; otherwise it names the
# likely mistake.
#
# Shapes follow one convention throughout: `W: [inst, d_hidden, n_feat]` (one weight matrix per
# instance; column `W[k, :, i]` is feature `i`'s direction in instance `k`), `b: [inst, n_feat]`, and
# batches `x: [batch, inst, n_feat]`. Instances are independent models trained side by side.
#
# Grade the whole notebook at any time with
# `python -m course_utils.grade exercises/ch02_superposition.ipynb`.

# %%
import math

import torch

from course_utils import packing, pick, set_seed, tms
from course_utils.checks import tms as checks

torch.set_num_threads(1)  # the toy models are tiny: one thread avoids synchronisation overhead on a CPU

# %% [markdown]
# ## Exercise 2.1: the toy model's forward pass
#
# Implement $x' = \mathrm{ReLU}(W^\top W x + b)$ for every instance at once: project each example
# into the `d_hidden`-dimensional space with $h = Wx$, map it back with $W^\top h$, add the bias and
# apply the ReLU. Return `[batch, inst, n_feat]`.
#
# <details><summary>Hint</summary>
#
# Two einsums: `"imf,bif->bim"` for $h$, then `"imf,bim->bif"` back. The instance index `i` appears
# in every operand and in the result, so it is never summed.
# </details>

# %% exercise="tms_forward"
def tms_forward(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """W: [inst, d_hidden, n_feat], b: [inst, n_feat], x: [batch, inst, n_feat] -> [batch, inst, n_feat]."""
    ### BEGIN SOLUTION
    h = torch.einsum("imf,bif->bim", W, x)
    return torch.relu(torch.einsum("imf,bim->bif", W, h) + b)
    ### END SOLUTION


# %% check="tms_forward"
checks.check_tms_forward(tms_forward)

# %% [markdown]
# ## Exercise 2.2: sparse feature batches
#
# Each feature is present with probability $p$ (its *feature probability*; the sparsity is
# $S = 1 - p$) and then takes a value uniform on $[0, 1)$; otherwise it is exactly 0. Coins are
# independent for every example, instance and feature. `feature_probability: [inst, n_feat]` gives
# $p$ for each instance and feature; return `[batch_size, inst, n_feat]` in its dtype and on its device.
#
# <details><summary>Hint</summary>
#
# Draw two tensors with `torch.rand((batch_size, *feature_probability.shape), ...)`: one for the
# values, one for the coins, and keep a value where its coin is below $p$ (`torch.where`). Broadcasting
# compares `[batch, inst, n_feat]` with `[inst, n_feat]` correctly.
# </details>

# %% exercise="generate_batch"
def generate_batch(batch_size: int, feature_probability: torch.Tensor) -> torch.Tensor:
    """feature_probability: [inst, n_feat] -> x: [batch_size, inst, n_feat]."""
    p = feature_probability
    ### BEGIN SOLUTION
    shape = (batch_size, *p.shape)
    values = torch.rand(shape, dtype=p.dtype, device=p.device)
    coins = torch.rand(shape, dtype=p.dtype, device=p.device)
    return torch.where(coins < p, values, torch.zeros_like(values))
    ### END SOLUTION


# %% check="generate_batch"
checks.check_generate_batch(generate_batch)

# %% [markdown]
# ## Exercise 2.3: the importance-weighted loss
#
# Each feature $i$ has an importance $I_i > 0$: how much the model is penalised for getting it wrong.
# The loss of one instance is the mean over the batch and the features of $I_i (x_i - x'_i)^2$; the
# loss of the whole batched model is the **sum** over instances, so that each instance receives exactly
# the gradient it would receive if it were trained alone. Return a scalar tensor.
#
# <details><summary>Hint</summary>
#
# `importance: [inst, n_feat]` broadcasts against `[batch, inst, n_feat]`. Reduce with
# `.mean(dim=(0, 2))` to get one number per instance, then `.sum()`.
# </details>

# %% exercise="importance_weighted_loss"
def importance_weighted_loss(out: torch.Tensor, target: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """out, target: [batch, inst, n_feat]; importance: [inst, n_feat] -> scalar."""
    ### BEGIN SOLUTION
    return (importance * (target - out) ** 2).mean(dim=(0, 2)).sum()
    ### END SOLUTION


# %% check="importance_weighted_loss"
checks.check_importance_weighted_loss(importance_weighted_loss)

# %% [markdown]
# ### Train a toy model with your three functions
#
# The loop below uses only your forward pass, batches and loss. It trains three instances of the
# five-feature, two-dimensional model (importance $0.9^i$) at three sparsities side by side. Dense
# features get two orthogonal directions; sparse features share the plane. Training takes a few seconds.

# %%
set_seed(0)
sparsities = [0.0, 0.8, 0.97]
n_feat, d_hidden = 5, 2
p = torch.tensor([[1 - s] * n_feat for s in sparsities])  # [inst, n_feat]
importance = (0.9 ** torch.arange(n_feat)).expand(len(sparsities), n_feat)  # [inst, n_feat]
W = torch.nn.Parameter(torch.randn(len(sparsities), d_hidden, n_feat) * math.sqrt(2 / (n_feat + d_hidden)))
b = torch.nn.Parameter(torch.zeros(len(sparsities), n_feat))
opt = torch.optim.AdamW([W, b], lr=1e-2)
for step in range(pick(cpu=1500, gpu=5000)):
    x = generate_batch(512, p)
    loss = importance_weighted_loss(tms_forward(W, b, x), x, importance)
    opt.zero_grad()
    loss.backward()
    opt.step()
print("features represented (‖W_i‖ > 0.5) per sparsity:", dict(zip(sparsities, tms.n_represented(W.detach()).tolist())))
tms.plot_features_2d(W.detach(), [f"S = {s}" for s in sparsities], importance=importance[0])

# %% [markdown]
# ## Exercise 2.4: correlated feature pairs
#
# Real features are not independent. Here features come in pairs $(2k, 2k+1)$ that are present
# together or absent together: one coin per pair, with probability $p_k$, and independent
# $U[0, 1)$ values for the two members. `feature_probability: [inst, n_pairs]`; return
# `[batch_size, inst, 2 * n_pairs]`, pair $k$ in columns $2k$ and $2k + 1$.
#
# <details><summary>Hint</summary>
#
# Draw coins of shape `[batch, inst, n_pairs]`, compare them with $p$, then
# `.repeat_interleave(2, dim=-1)` turns the pair mask into a feature mask.
# </details>

# %% exercise="generate_correlated_batch"
def generate_correlated_batch(batch_size: int, feature_probability: torch.Tensor) -> torch.Tensor:
    """feature_probability: [inst, n_pairs] -> x: [batch_size, inst, 2 * n_pairs]."""
    p = feature_probability
    ### BEGIN SOLUTION
    n_inst, n_pairs = p.shape
    values = torch.rand((batch_size, n_inst, 2 * n_pairs), dtype=p.dtype, device=p.device)
    coins = torch.rand((batch_size, n_inst, n_pairs), dtype=p.dtype, device=p.device)
    present = (coins < p).repeat_interleave(2, dim=-1)
    return torch.where(present, values, torch.zeros_like(values))
    ### END SOLUTION


# %% check="generate_correlated_batch"
checks.check_generate_correlated_batch(generate_correlated_batch)

# %% [markdown]
# ## Exercise 2.5: anticorrelated feature pairs
#
# Now the two members of a pair are never present together, yet each is present with probability
# $p_k$ on its own. Activate the pair with probability $2p_k$ (so $p_k \le 1/2$), then give the value
# to one of its two members, each chosen with probability $1/2$.
#
# <details><summary>Hint</summary>
#
# One coin decides whether the pair is active (`coins < 2 * p`), a second fair coin decides which
# member gets the value. Stack the two masks with `torch.stack([first, second], dim=-1).flatten(-2)`
# to interleave them as columns $2k$, $2k+1$.
# </details>

# %% exercise="generate_anticorrelated_batch"
def generate_anticorrelated_batch(batch_size: int, feature_probability: torch.Tensor) -> torch.Tensor:
    """feature_probability: [inst, n_pairs] (values <= 1/2) -> x: [batch_size, inst, 2 * n_pairs]."""
    p = feature_probability
    ### BEGIN SOLUTION
    n_inst, n_pairs = p.shape
    values = torch.rand((batch_size, n_inst, 2 * n_pairs), dtype=p.dtype, device=p.device)
    active = torch.rand((batch_size, n_inst, n_pairs), dtype=p.dtype, device=p.device) < 2 * p
    first = torch.rand((batch_size, n_inst, n_pairs), device=p.device) < 0.5
    present = torch.stack([active & first, active & ~first], dim=-1).flatten(-2)
    return torch.where(present, values, torch.zeros_like(values))
    ### END SOLUTION


# %% check="generate_anticorrelated_batch"
checks.check_generate_anticorrelated_batch(generate_anticorrelated_batch)

# %% [markdown]
# ## Exercise 2.6: feature dimensionality
#
# How much of a hidden dimension does feature $i$ get? Elhage et al. define
#
# $$D_i = \frac{\lVert W_i \rVert^2}{\sum_j (\hat W_i \cdot W_j)^2}, \qquad \hat W_i = \frac{W_i}{\lVert W_i \rVert},$$
#
# where the sum runs over all features **including** $j = i$ (that term is $\lVert W_i \rVert^2$). A
# feature alone in its direction gets $D_i = 1$; two antipodal features share one dimension and get
# $1/2$ each. A feature that was not learned ($W_i = 0$) gets $0$, not NaN. Return `[inst, n_feat]`.
#
# <details><summary>Hint</summary>
#
# Feature $i$'s direction is the column `W[:, :, i]`: normalise with `W.norm(dim=1, keepdim=True)`
# (clamped away from 0). `torch.einsum("imf,img->ifg", W_hat, W)` holds every $\hat W_i \cdot W_j$.
# </details>

# %% exercise="feature_dimensionality"
def feature_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """W: [inst, d_hidden, n_feat] -> D: [inst, n_feat]."""
    ### BEGIN SOLUTION
    norms = W.norm(dim=1)
    W_hat = W / norms.unsqueeze(1).clamp_min(1e-8)
    denom = (torch.einsum("imf,img->ifg", W_hat, W) ** 2).sum(-1)
    return norms**2 / denom.clamp_min(1e-12)
    ### END SOLUTION


# %% check="feature_dimensionality"
checks.check_feature_dimensionality(feature_dimensionality)

# %% [markdown]
# Apply it to the three models you trained above. At $S = 0.97$ the features that share the plane
# should have $D_i$ well below 1.

# %%
feature_dimensionality(W.detach()).round(decimals=2)

# %% [markdown]
# ## Exercise 2.7: how close are random directions?
#
# Return the largest $|\cos|$ between two different rows of `V: [N, d]` (a 0-d tensor or a float).
# Random unit vectors are the simplest way to put many nearly orthogonal directions in a space; this
# number says how nearly.
#
# <details><summary>Hint</summary>
#
# Normalise the rows, form the Gram matrix, and remove the diagonal (a vector's cosine with itself
# is 1) before taking `.abs().max()`.
# </details>

# %% exercise="max_abs_cosine"
def max_abs_cosine(V: torch.Tensor) -> torch.Tensor:
    """V: [N, d] -> max over i != j of |cos(V_i, V_j)|."""
    ### BEGIN SOLUTION
    U = V / V.norm(dim=1, keepdim=True)
    G = (U @ U.T).abs()
    G.fill_diagonal_(0.0)
    return G.max()
    ### END SOLUTION


# %% check="max_abs_cosine"
checks.check_max_abs_cosine(max_abs_cosine)

# %% [markdown]
# Compare with the rule of thumb $\sqrt{2 \ln N^2 / d}$ for a few sizes:

# %%
for d, N in [(256, 512), (256, 4096), (768, 4096)]:
    V = packing.random_unit_vectors(N, d, torch.Generator().manual_seed(0))
    print(f"d = {d:4d}, N = {N:5d}: measured {float(max_abs_cosine(V)):.3f}, "
          f"predicted {packing.predicted_max_cosine(N, d):.3f}")

# %% [markdown]
# ## Exercise 2.8: the Welch bound
#
# No arrangement of $N > d$ unit vectors in $\mathbb{R}^d$ can make every pairwise $|\cos|$ small:
# Welch (1974) showed $\max_{i \ne j} |\cos| \ge \sqrt{(N - d) / (d (N - 1))}$. When $N \le d$ the
# vectors can be exactly orthogonal and the bound is 0. Return a float.

# %% exercise="welch_bound"
def welch_bound(n_vectors: int, d: int) -> float:
    """Lower bound on max |cos| for n_vectors unit vectors in R^d."""
    ### BEGIN SOLUTION
    if n_vectors <= d:
        return 0.0
    return math.sqrt((n_vectors - d) / (d * (n_vectors - 1)))
    ### END SOLUTION


# %% check="welch_bound"
checks.check_welch_bound(welch_bound)

# %% [markdown]
# ## Exercise 2.9: which phase is a feature in?
#
# In the phase diagrams of the chapter, every trained model is labelled by what happened to its
# **last** feature: `0` *not learned* ($\lVert W_{\text{last}} \rVert \le 0.5$), `1` *superposed*
# (learned, and the other features project onto its direction:
# $\sum_{j \ne \text{last}} (\hat W_{\text{last}} \cdot W_j)^2 > 0.1$), or `2` *dedicated* (learned,
# with a direction of its own). Return a long tensor `[inst]`.

# %% exercise="classify_phase"
def classify_phase(W: torch.Tensor) -> torch.Tensor:
    """W: [inst, d_hidden, n_feat] -> phase of the last feature: [inst] in {0, 1, 2}."""
    ### BEGIN SOLUTION
    w = W[:, :, -1]  # [inst, d_hidden]
    norm = w.norm(dim=1)
    w_hat = w / norm.unsqueeze(1).clamp_min(1e-8)
    overlap = (torch.einsum("im,imj->ij", w_hat, W[:, :, :-1]) ** 2).sum(-1)
    learned, shared = norm > 0.5, overlap > 0.1
    return torch.where(learned, torch.where(shared, 1, 2), 0).long()
    ### END SOLUTION


# %% check="classify_phase"
checks.check_classify_phase(classify_phase)

# %% [markdown]
# ## Exercise 2.10: a privileged basis
#
# The toy model has no activation function in its hidden layer, so nothing favours one basis of the
# hidden space over another. Add a ReLU there and the neurons become a *privileged basis*: $h = \mathrm{ReLU}(Wx)$, $x' = \mathrm{ReLU}(W^\top h + b)$. Implement it with the
# same shapes as Exercise 2.1.

# %% exercise="neuron_forward"
def neuron_forward(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """W: [inst, d_hidden, n_feat], b: [inst, n_feat], x: [batch, inst, n_feat] -> [batch, inst, n_feat]."""
    ### BEGIN SOLUTION
    h = torch.relu(torch.einsum("imf,bif->bim", W, x))
    return torch.relu(torch.einsum("imf,bim->bif", W, h) + b)
    ### END SOLUTION


# %% check="neuron_forward"
checks.check_neuron_forward(neuron_forward)

# %% [markdown]
# ## Exercise 2.11: computing absolute values
#
# The last model computes rather than stores: inputs are uniform on $[-1, 1]$ when present and the
# target is $|x|$. It has a hidden ReLU layer and its **own** output matrix:
# $h = \mathrm{ReLU}(W_1 x)$, $y' = \mathrm{ReLU}(W_2 h + b)$, with `W1: [inst, d_hidden, n_feat]` and
# `W2: [inst, n_feat, d_hidden]`. Implement the forward pass.
#
# <details><summary>Hint</summary>
#
# The first einsum is the one from Exercise 2.10; for the second, `W2` is indexed
# `"ifm"` (feature, then hidden unit).
# </details>

# %% exercise="abs_forward"
def abs_forward(W1: torch.Tensor, W2: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """W1: [inst, d_hidden, n_feat], W2: [inst, n_feat, d_hidden], b: [inst, n_feat], x: [batch, inst, n_feat]."""
    ### BEGIN SOLUTION
    h = torch.relu(torch.einsum("imf,bif->bim", W1, x))
    return torch.relu(torch.einsum("ifm,bim->bif", W2, h) + b)
    ### END SOLUTION


# %% check="abs_forward"
checks.check_abs_forward(abs_forward)

# %% [markdown]
# With two hidden units per feature the model can be exact: $|x| = \mathrm{ReLU}(x) + \mathrm{ReLU}(-x)$.
# Check it with hand-set weights for three features and six neurons:

# %%
W1 = torch.zeros(1, 6, 3)
W2 = torch.zeros(1, 3, 6)
for i in range(3):
    W1[0, 2 * i, i], W1[0, 2 * i + 1, i] = 1.0, -1.0  # one neuron per sign
    W2[0, i, 2 * i] = W2[0, i, 2 * i + 1] = 1.0
x = 2 * torch.rand(5, 1, 3) - 1
torch.allclose(abs_forward(W1, W2, torch.zeros(1, 3), x), x.abs())

# %% [markdown]
# ## Where next
#
# The chapter page trains the same models at more sparsities and sizes: the pentagon, the
# twenty-feature sweep, the dimensionality plateau and the phase diagrams. Chapter 3, Incidental
# polysemanticity, asks whether polysemantic neurons need superposition at all.
