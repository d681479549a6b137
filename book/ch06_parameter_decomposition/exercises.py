# %% [markdown]
# # Parameter decomposition: exercises
#
# Seven functions: the pieces of Stochastic Parameter Decomposition (SPD) and the two numbers that
# say whether a decomposition recovered the toy model's mechanisms. For each one: read the
# instructions, replace the `raise NotImplementedError(...)` line with your code, then run the check
# cell below it. A check prints one line when your function is right; otherwise it names the likely
# mistake.
#
# Shapes follow the SPD authors' layout. A decomposed matrix is `W: [d_out, d_in]` (a layer computes
# $a \mapsto W a$, in code `a @ W.T`). Its $C$ rank-one subcomponents are stored as `V: [d_in, C]`
# and `U: [C, d_out]`: subcomponent $c$ is the matrix $U_c^\top V_c^\top$ (the outer product of
# row `U[c]` and column `V[:, c]`), and $W \approx \sum_c U_c^\top V_c^\top = (VU)^\top$.
#
# Grade the whole notebook at any time with
# `python -m course_utils.grade exercises/ch06_parameter_decomposition.ipynb`.

# %%
import torch
import torch.nn.functional as F

from course_utils import set_seed
from course_utils.checks import decomposition as checks

set_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## Exercise 6.1: the masked rank-one layer
#
# SPD replaces a layer $W$ by its subcomponents, each scaled by a mask $m_c \in [0, 1]$ that can
# differ for every example:
#
# $$\text{out} = \sum_c m_c \,(a \cdot V_c)\, U_c .$$
#
# The scalar $a \cdot V_c$ is subcomponent $c$'s *inner activation*. With all masks 1 this is exactly
# `a @ W.T`. Inputs: `x: [batch, d_in]`, `V: [d_in, C]`, `U: [C, d_out]`, `mask: [batch, C]`;
# return `[batch, d_out]`.
#
# <details><summary>Hint</summary>
#
# Two matrix products with an element-wise product between them: `x @ V` gives the inner activations
# `[batch, C]`.
# </details>

# %% exercise="rank_one_forward"
def rank_one_forward(x: torch.Tensor, V: torch.Tensor, U: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
    """x: [batch, d_in], V: [d_in, C], U: [C, d_out], mask: [batch, C]
    -> [batch, d_out]."""
    ### BEGIN SOLUTION
    return (x @ V * mask) @ U
    ### END SOLUTION


# %% check="rank_one_forward"
checks.check_rank_one_forward(rank_one_forward)

# %% [markdown]
# ## Exercise 6.2: causal importance with the leaky hard sigmoids
#
# Each subcomponent has its own tiny MLP $\gamma_c$ (1 → `d_gate` GELU neurons → 1) that reads the
# inner activation $h_c$ and predicts how much the subcomponent matters on this input:
#
# $$\gamma_c(h) = \sum_k W^{\text{out}}_{c,k}\,\mathrm{GELU}(W^{\text{in}}_{c,k} h + b^{\text{in}}_{c,k}) + b^{\text{out}}_c .$$
#
# Its output goes through two *leaky* hard sigmoids (slope 0.01 outside $[0, 1]$):
#
# * the **lower-leaky** one, $0.01x$ for $x \le 0$, $x$ on $[0, 1]$, $1$ above: the gate $g$ that
#   sets the masks (a mask may go slightly below 0, never above 1);
# * the **upper-leaky** one, $0$ for $x \le 0$, $x$ on $[0, 1]$, $1 + 0.01(x - 1)$ above: the gate
#   the importance penalty sees (it must never be negative).
#
# The leaks matter for training: a plain clamp has zero gradient outside $[0, 1]$, and a gate stuck
# there would never recover. Inputs: `inner: [batch, C]`, `W_in, b_in, W_out: [C, d_gate]`,
# `b_out: [C]`. Return `(g_lower, g_upper)`, each `[batch, C]`.
#
# <details><summary>Hint</summary>
#
# `inner[..., None] * W_in + b_in` has shape `[batch, C, d_gate]`. For the sigmoids,
# `torch.where(x > 0, x.clamp(max=1), 0.01 * x)` is the lower-leaky one.
# </details>

# %% exercise="causal_importance"
def causal_importance(inner: torch.Tensor, W_in: torch.Tensor, b_in: torch.Tensor,
                      W_out: torch.Tensor, b_out: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """inner: [batch, C]; W_in, b_in, W_out: [C, d_gate]; b_out: [C]
    -> (g_lower, g_upper): [batch, C] each."""
    ### BEGIN SOLUTION
    pre = (F.gelu(inner[..., None] * W_in + b_in) * W_out).sum(-1) + b_out
    g_lower = torch.where(pre > 0, pre.clamp(max=1.0), 0.01 * pre)
    g_upper = torch.where(pre > 1, 1 + 0.01 * (pre - 1), pre.clamp(min=0.0))
    return g_lower, g_upper
    ### END SOLUTION


# %% check="causal_importance"
checks.check_causal_importance(causal_importance)

# %% [markdown]
# ## Exercise 6.3: stochastic masks
#
# A subcomponent with causal importance $g$ must be ablatable down to $g$ without changing the
# output. SPD checks that on random masks between the two: $m = g + (1 - g)\,r$ with
# $r \sim \mathcal{U}(0, 1)$, one $r$ per example and subcomponent. Written this way (the
# reparametrisation trick) the gradient reaches $g$ and trains the causal-importance MLPs. Draw $r$
# with `torch.rand(g.shape, generator=generator, dtype=g.dtype)` (then move it to `g.device`), so
# that the generator's seed decides the masks.

# %% exercise="stochastic_mask"
def stochastic_mask(g: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """g: [batch, C] -> m = g + (1 - g) r: [batch, C], r ~ U(0, 1) from generator."""
    ### BEGIN SOLUTION
    r = torch.rand(g.shape, generator=generator, dtype=g.dtype).to(g.device)
    return g + (1 - g) * r
    ### END SOLUTION


# %% check="stochastic_mask"
checks.check_stochastic_mask(stochastic_mask)

# %% [markdown]
# ## Exercise 6.4: the faithfulness loss
#
# The subcomponents must add up to the target's weights:
#
# $$\mathcal{L}_{\text{faithfulness}} = \frac{1}{N} \sum_l \sum_{i,j} \Big(W^l_{ij} - \big(\textstyle\sum_c U^l_c{}^\top V^l_c{}^\top\big)_{ij}\Big)^2,$$
#
# where $N$ counts the weights of all decomposed matrices together. `weights[l]: [d_out, d_in]`,
# `components[l] = (V, U)`. Return a scalar tensor.

# %% exercise="faithfulness_loss"
def faithfulness_loss(weights: dict[str, torch.Tensor],
                      components: dict[str, tuple[torch.Tensor, torch.Tensor]]
                      ) -> torch.Tensor:
    """Mean squared difference between every W and (V @ U).T, over all weights."""
    ### BEGIN SOLUTION
    total = 0.0
    for name, W in weights.items():
        V, U = components[name]
        total = total + ((W - (V @ U).T) ** 2).sum()
    return total / sum(W.numel() for W in weights.values())
    ### END SOLUTION


# %% check="faithfulness_loss"
checks.check_faithfulness_loss(faithfulness_loss)

# %% [markdown]
# ## Exercise 6.5: stochastic reconstruction on the toy model of superposition
#
# The toy model $\hat x = \mathrm{ReLU}(W^\top W x + b)$ uses one matrix twice, so its two layers are
# decomposed *tied*: the first ($W$: $x \to h$) has factors $(V, U)$, the second ($W^\top$:
# $h \to \hat x$) has factors $(U^\top, V^\top)$, the same subcomponents transposed. Each layer
# has its own masks. Compute the masked forward pass
#
# $$h = \sum_c m^{(1)}_c (x\cdot V_c)\,U_c, \qquad \hat x = \mathrm{ReLU}\Big(\sum_c m^{(2)}_c (h\cdot U_c)\,V_c + b\Big)$$
#
# and return the mean squared error to `target_out` (the target model's output), averaged over all
# entries. `x: [batch, n_feat]`, `V: [n_feat, C]`, `U: [C, d_hidden]`, `b: [n_feat]`,
# `mask1, mask2: [batch, C]`.
#
# <details><summary>Hint</summary>
#
# Reuse `rank_one_forward`: the second layer is `rank_one_forward(h, U.T, V.T, mask2)`.
# </details>

# %% exercise="tms_stochastic_recon_loss"
def tms_stochastic_recon_loss(x: torch.Tensor, V: torch.Tensor, U: torch.Tensor,
                              b: torch.Tensor, mask1: torch.Tensor, mask2: torch.Tensor,
                              target_out: torch.Tensor) -> torch.Tensor:
    """Tied TMS decomposition, both layers masked; MSE to target_out."""
    ### BEGIN SOLUTION
    h = rank_one_forward(x, V, U, mask1)
    out = torch.relu(rank_one_forward(h, U.T, V.T, mask2) + b)
    return ((out - target_out) ** 2).mean()
    ### END SOLUTION


# %% check="tms_stochastic_recon_loss"
checks.check_tms_stochastic_recon_loss(tms_stochastic_recon_loss)

# %% [markdown]
# ## Exercise 6.6: importance minimality
#
# Reconstruction alone is satisfied by declaring every subcomponent important everywhere. The
# penalty pushes the (upper-leaky) causal importances down:
#
# $$\mathcal{L}_{\text{importance-minimality}} = \mathbb{E}_x \sum_l \sum_c \big|g^l_c(x)\big|^p .$$
#
# `g_upper` is a list with one `[batch, C]` tensor per layer (its entries are ≥ 0); `p > 0`. Average
# over the batch, sum over subcomponents and layers.

# %% exercise="importance_minimality_loss"
def importance_minimality_loss(g_upper: list[torch.Tensor], p: float) -> torch.Tensor:
    """Σ_l mean_batch Σ_c g^p."""
    ### BEGIN SOLUTION
    return sum((g**p).sum(-1).mean() for g in g_upper)
    ### END SOLUTION


# %% check="importance_minimality_loss"
checks.check_importance_minimality_loss(importance_minimality_loss)

# %% [markdown]
# ## Exercise 6.7: MMCS and ML2R
#
# How close is a decomposition to the target's mechanisms? For the toy model the ground truth is
# known: one mechanism per feature, the column $W_{:,j}$. The authors compare column $j$ of every
# subcomponent, $V_{j,c}\,U_c$ (a vector of length `d_out`), with $W_{:,j}$:
#
# * **MMCS** (mean max cosine similarity): for each feature $j$ take the largest cosine similarity
#   over subcomponents $c$, then average over features. Signed: an anti-aligned column does not match.
# * **ML2R** (mean L2 ratio): for each feature, the norm of the best-matching column divided by
#   $\lVert W_{:,j} \rVert$, averaged. Below 1 means shrinkage; a feature split over two co-active
#   subcomponents shows up here too, with MMCS still ≈ 1.
#
# Add `1e-12` to the norms in the cosine (a subcomponent can be exactly zero), as the authors' code
# does. Return `(mmcs, ml2r)` as 0-d tensors.
#
# <details><summary>Hint</summary>
#
# `torch.einsum("fc,ch->cfh", V, U)` gives all columns of all subcomponents, `[C, d_in, d_out]`;
# compare them with `W.T: [d_in, d_out]`. `.max(dim=0)` returns the values and the indices.
# </details>

# %% exercise="mmcs_ml2r"
def mmcs_ml2r(W: torch.Tensor, V: torch.Tensor, U: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """W: [d_out, d_in], V: [d_in, C], U: [C, d_out] -> (MMCS, ML2R)."""
    ### BEGIN SOLUTION
    sub = torch.einsum("fc,ch->cfh", V, U)  # [C, d_in, d_out]
    target = W.T
    cos = torch.einsum("cfh,fh->cf", sub / (sub.norm(dim=-1, keepdim=True) + 1e-12),
                       target / (target.norm(dim=-1, keepdim=True) + 1e-12))
    best = cos.max(dim=0)
    matched = sub[best.indices, torch.arange(W.shape[1])]
    return best.values.mean(), (matched.norm(dim=-1) / target.norm(dim=-1)).mean()
    ### END SOLUTION


# %% check="mmcs_ml2r"
checks.check_mmcs_ml2r(mmcs_ml2r)

# %% [markdown]
# That is all of SPD except the training loop. `course_utils.decomposition.train_spd` puts these
# pieces together (with the layerwise version of the reconstruction loss and the authors' "delta
# component"); the chapter page runs it on the toy model and reads the result with your
# `mmcs_ml2r`'s twin, `course_utils.decomposition.mmcs_ml2r`.
