# %% [markdown]
# # Sparse autoencoders: exercises
#
# Fifteen pieces of the SAE architectures of this chapter, each checked on random inputs (several
# shapes, float32 and float64, gradients where training needs them). Replace each
# `raise NotImplementedError(...)` with your code and run the check below it: it prints one line when
# your function is right and otherwise names the likely mistake. At the end, your functions train an
# SAE on the toy data and recover its features.
#
# Shapes follow SAELens: `x: [batch, d_in]`, `W_enc: [d_in, d_sae]`, `b_enc: [d_sae]`,
# `W_dec: [d_sae, d_in]` (row `i` is latent `i`'s direction), `b_dec: [d_in]`, latents `f: [batch, d_sae]`.
#
# Grade the whole notebook at any time with `python -m course_utils.grade exercises/ch04_saes.ipynb`.

# %%
import torch

from course_utils import pick, set_seed
from course_utils.checks import saes as checks
from course_utils.saes import TopKConfig, TopKSAE, TrainConfig, sharkey_toy, train_sae

torch.set_num_threads(1)  # small SAEs: one thread avoids synchronisation overhead

# %% [markdown]
# ## Exercise 4.1: the ReLU SAE's encoder
#
# $f = \mathrm{ReLU}((x - b_\text{dec}) W_\text{enc} + b_\text{enc})$: subtract the decoder bias (the
# *pre-encoder bias*, so the encoder sees inputs centred where the decoder puts its origin), project,
# add the encoder bias, ReLU.


# %% exercise="relu_encode"
def relu_encode(
    x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, b_dec: torch.Tensor
) -> torch.Tensor:
    """x: [batch, d_in] -> f: [batch, d_sae]."""
    ### BEGIN SOLUTION
    return torch.relu((x - b_dec) @ W_enc + b_enc)
    ### END SOLUTION


# %% check="relu_encode"
checks.check_relu_encode(relu_encode)

# %% [markdown]
# ## Exercise 4.2: the L1 loss
#
# $L = \lVert x - \hat x\rVert_2^2 + \lambda \sum_i f_i$, the squared error **summed over dimensions**
# and the penalty summed over latents, both averaged over the batch (SAELens's convention; with
# `F.mse_loss`, which averages over dimensions too, the same λ would mean something else).


# %% exercise="sae_loss"
def sae_loss(
    x: torch.Tensor, x_hat: torch.Tensor, f: torch.Tensor, l1_coefficient: float
) -> torch.Tensor:
    """x, x_hat: [batch, d_in], f: [batch, d_sae] (non-negative) -> scalar."""
    ### BEGIN SOLUTION
    return (x_hat - x).pow(2).sum(-1).mean() + l1_coefficient * f.abs().sum(-1).mean()
    ### END SOLUTION


# %% check="sae_loss"
checks.check_sae_loss(sae_loss)

# %% [markdown]
# ## Exercise 4.3: keeping decoder rows unit-norm
#
# With an L1 penalty the SAE could shrink every $f_i$ and grow $\lVert W_{\text{dec},i}\rVert$ to
# compensate, so the rows are held at norm 1: renormalised after each step, and, before it, the part of
# the gradient that only changes a row's norm is removed, $g_i \leftarrow g_i - (g_i\cdot\hat W_i)\hat W_i$
# with $\hat W_i = W_i/\lVert W_i\rVert$ (Gao et al. 2024). Return the projected gradient.


# %% exercise="remove_parallel_component"
def remove_parallel_component(grad: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
    """grad, W_dec: [d_sae, d_in] -> [d_sae, d_in]."""
    ### BEGIN SOLUTION
    W_hat = W_dec / W_dec.norm(dim=-1, keepdim=True)
    return grad - (grad * W_hat).sum(-1, keepdim=True) * W_hat
    ### END SOLUTION


# %% check="remove_parallel_component"
checks.check_remove_parallel_component(remove_parallel_component)

# %% [markdown]
# ## Exercise 4.4: the TopK activation
#
# Keep the `k` largest pre-activations of each example, pass them through a ReLU, set the rest to 0.
#
# <details><summary>Hint</summary>
#
# `pre.topk(k, dim=-1)` gives values and indices; `torch.zeros_like(pre).scatter(-1, indices, values)`
# puts them back.
# </details>


# %% exercise="topk_activation"
def topk_activation(pre: torch.Tensor, k: int) -> torch.Tensor:
    """pre: [batch, d_sae] -> [batch, d_sae] with at most k non-zeros per row."""
    ### BEGIN SOLUTION
    top = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    ### END SOLUTION


# %% check="topk_activation"
checks.check_topk_activation(topk_activation)

# %% [markdown]
# ## Exercise 4.5: the AuxK loss
#
# Latents that have not fired for a long time (`dead: bool [d_sae]`) get no gradient from the main
# loss. AuxK gives them one: take the top `k_aux` pre-activations **among the dead latents only**
# (ReLU'd), decode them without a bias, $\hat e = \text{TopK}_\text{aux}(\text{pre}) W_\text{dec}$, and
# return $\lVert e - \hat e\rVert^2$ (summed over dimensions, averaged over the batch) where
# $e$ = `residual` $= x - \hat x$, **detached** (it is a target). If no latent is dead, return 0. If
# fewer than `k_aux` are dead, use them all.


# %% exercise="auxk_loss"
def auxk_loss(
    pre: torch.Tensor,
    residual: torch.Tensor,
    W_dec: torch.Tensor,
    dead: torch.Tensor,
    k_aux: int,
) -> torch.Tensor:
    """pre: [batch, d_sae], residual: [batch, d_in], W_dec: [d_sae, d_in],
    dead: bool [d_sae] -> scalar."""
    ### BEGIN SOLUTION
    n_dead = int(dead.sum())
    if n_dead == 0:
        return pre.new_zeros(())
    masked = torch.where(dead, pre, torch.full_like(pre, -torch.inf))
    top = masked.topk(min(k_aux, n_dead), dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    return (acts @ W_dec - residual.detach()).pow(2).sum(-1).mean()
    ### END SOLUTION


# %% check="auxk_loss"
checks.check_auxk_loss(auxk_loss)

# %% [markdown]
# ## Exercise 4.6: BatchTopK
#
# Instead of `k` per example, keep the `k × batch_size` largest ReLU'd pre-activations of the **whole
# batch**: easy examples use fewer latents, hard ones more, and the mean is still `k`.


# %% exercise="batch_topk_activation"
def batch_topk_activation(pre: torch.Tensor, k: int) -> torch.Tensor:
    """pre: [batch, d_sae] -> [batch, d_sae], at most k·batch non-zeros in all."""
    ### BEGIN SOLUTION
    flat = torch.relu(pre).flatten()
    top = flat.topk(min(k * pre.shape[0], flat.numel()))
    return torch.zeros_like(flat).scatter(0, top.indices, top.values).reshape(pre.shape)
    ### END SOLUTION


# %% check="batch_topk_activation"
checks.check_batch_topk_activation(batch_topk_activation)

# %% [markdown]
# ## Exercise 4.7: BatchTopK's inference threshold
#
# At inference there is no batch to rank, so the SAE uses one threshold θ: a running average of the
# smallest activation kept in training, $\theta \leftarrow (1-\text{lr})\,\theta + \text{lr}\cdot
# \min\{a : a > 0\}$. A negative θ means "not set yet": return that minimum. If nothing fired,
# return θ unchanged. Do not modify `threshold` in place.


# %% exercise="update_threshold"
def update_threshold(
    threshold: torch.Tensor, acts: torch.Tensor, lr: float
) -> torch.Tensor:
    """threshold: scalar tensor, acts: [batch, d_sae] (BatchTopK output)
    -> the new scalar threshold."""
    ### BEGIN SOLUTION
    positive = acts[acts > 0]
    if positive.numel() == 0:
        return threshold
    if threshold < 0:
        return positive.min().reshape(threshold.shape)
    return (1 - lr) * threshold + lr * positive.min()
    ### END SOLUTION


# %% check="update_threshold"
checks.check_update_threshold(update_threshold)

# %% [markdown]
# ## Exercise 4.8: the JumpReLU function and its pseudo-gradient
#
# $\text{JumpReLU}_\theta(z) = z\,H(z-\theta)$ has no useful derivative in θ. Rajamanoharan et al.
# (2024) use a straight-through estimator with the rectangle kernel $K(u) = 1[|u| < 1/2]$ and
# bandwidth ε: in `backward`, the gradient for `z` is $g\,H(z-\theta)$ and the one for θ is
# $-\frac{\theta}{\varepsilon}K\!\left(\frac{z-\theta}{\varepsilon}\right) g$ **summed over the
# batch** (θ has shape `[d_sae]`). `bandwidth` gets no gradient (return `None`).


# %% exercise="jumprelu_function"
class JumpReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, z: torch.Tensor, theta: torch.Tensor, bandwidth: float
    ) -> torch.Tensor:
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        ### BEGIN SOLUTION
        return z * (z > theta).to(z.dtype)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        z, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        ### BEGIN SOLUTION
        kernel = (((z - theta) / eps).abs() < 0.5).to(z.dtype)
        return (
            grad * (z > theta).to(z.dtype),
            (-(theta / eps) * kernel * grad).sum(0),
            None,
        )
        ### END SOLUTION


# %% check="jumprelu_function"
checks.check_jumprelu_function(JumpReLUFunction)

# %% [markdown]
# ## Exercise 4.9: the step function for the L0 penalty
#
# The penalty λ‖f‖₀ counts $H(z - \theta)$. Its straight-through gradient gives `z` nothing and θ
# $-\frac{1}{\varepsilon}K\!\left(\frac{z-\theta}{\varepsilon}\right) g$, summed over the batch.


# %% exercise="step_function"
class StepFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, z: torch.Tensor, theta: torch.Tensor, bandwidth: float
    ) -> torch.Tensor:
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        ### BEGIN SOLUTION
        return (z > theta).to(z.dtype)
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        z, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        ### BEGIN SOLUTION
        kernel = (((z - theta) / eps).abs() < 0.5).to(z.dtype)
        return torch.zeros_like(z), (-(1.0 / eps) * kernel * grad).sum(0), None
        ### END SOLUTION


# %% check="step_function"
checks.check_step_function(StepFunction)

# %% [markdown]
# ## Exercise 4.10: the Gated SAE's encoder
#
# Both paths read $x - b_\text{dec}$ and share $W_\text{enc}$: the gate
# $\pi_\text{gate} = (x - b_\text{dec})W_\text{enc} + b_\text{gate}$ decides which latents are on, the
# magnitude $\pi_\text{mag} = (x - b_\text{dec})(W_\text{enc} \odot e^{r_\text{mag}}) + b_\text{mag}$
# how much: $f = 1[\pi_\text{gate} > 0] \odot \mathrm{ReLU}(\pi_\text{mag})$ (Rajamanoharan et al. 2024).


# %% exercise="gated_encode"
def gated_encode(
    x: torch.Tensor,
    W_enc: torch.Tensor,
    b_gate: torch.Tensor,
    b_mag: torch.Tensor,
    r_mag: torch.Tensor,
    b_dec: torch.Tensor,
) -> torch.Tensor:
    """x: [batch, d_in], W_enc: [d_in, d_sae], b_gate, b_mag, r_mag: [d_sae]
    -> f: [batch, d_sae]."""
    ### BEGIN SOLUTION
    xc = x - b_dec
    gate = (xc @ W_enc + b_gate > 0).to(x.dtype)
    return gate * torch.relu(xc @ (W_enc * r_mag.exp()) + b_mag)
    ### END SOLUTION


# %% check="gated_encode"
checks.check_gated_encode(gated_encode)

# %% [markdown]
# ## Exercise 4.11: the Matryoshka loss
#
# Every prefix of the dictionary must reconstruct on its own: return
# $\sum_j \lVert x - (f_{:, :m_j} W_{\text{dec}, :m_j} + b_\text{dec})\rVert^2$ over `prefixes`
# $m_1 < m_2 < \dots$ (each term summed over dimensions and averaged over the batch).


# %% exercise="matryoshka_loss"
def matryoshka_loss(
    x: torch.Tensor,
    f: torch.Tensor,
    W_dec: torch.Tensor,
    b_dec: torch.Tensor,
    prefixes: tuple[int, ...],
) -> torch.Tensor:
    """x: [batch, d_in], f: [batch, d_sae], W_dec: [d_sae, d_in] -> scalar."""
    ### BEGIN SOLUTION
    total = x.new_zeros(())
    for m in prefixes:
        total = total + (f[:, :m] @ W_dec[:m] + b_dec - x).pow(2).sum(-1).mean()
    return total
    ### END SOLUTION


# %% check="matryoshka_loss"
checks.check_matryoshka_loss(matryoshka_loss)

# %% [markdown]
# ## Exercise 4.12: MMCS
#
# On toy data we know the true features. The mean max cosine similarity (Sharkey et al. 2022) asks,
# for each true feature, how well the best decoder row matches it, and averages: 1 means every feature
# was found.


# %% exercise="mmcs"
def mmcs(W_dec: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """W_dec: [d_sae, d], features: [n_features, d] -> scalar."""
    ### BEGIN SOLUTION
    a = W_dec / W_dec.norm(dim=1, keepdim=True)
    b = features / features.norm(dim=1, keepdim=True)
    return (b @ a.T).max(dim=1).values.mean()
    ### END SOLUTION


# %% check="mmcs"
checks.check_mmcs(mmcs)

# %% [markdown]
# ## Exercise 4.13: fraction of variance unexplained
#
# $\text{FVU} = \sum_b \lVert x_b - \hat x_b\rVert^2 / \sum_b \lVert x_b - \bar x\rVert^2$ with
# $\bar x$ the batch mean of each dimension.


# %% exercise="fvu"
def fvu(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """x, x_hat: [batch, d] -> scalar."""
    ### BEGIN SOLUTION
    return (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    ### END SOLUTION


# %% check="fvu"
checks.check_fvu(fvu)

# %% [markdown]
# ## Exercise 4.14: dead fraction
#
# The fraction of latents that are zero on **every** example of the batch. `acts` may hold integers.


# %% exercise="dead_fraction"
def dead_fraction(acts: torch.Tensor) -> torch.Tensor:
    """acts: [batch, d_sae] -> scalar in [0, 1]."""
    ### BEGIN SOLUTION
    return ((acts != 0).sum(0) == 0).double().mean()
    ### END SOLUTION


# %% check="dead_fraction"
checks.check_dead_fraction(dead_fraction)

# %% [markdown]
# ## Exercise 4.15: resampling dead latents
#
# Bricken et al. (2023) revive dead latents by pointing them at inputs the SAE reconstructs badly. For
# the dead latents in increasing order (`torch.nonzero(dead).flatten()`): draw one input each with
# `torch.multinomial(sq_error, n_dead, replacement=True, generator=generator)`; set the latent's
# decoder row to the input's direction $x/\lVert x\rVert$, its encoder column to the same direction
# times 0.2 × the mean encoder-column norm of the **alive** latents, and its `b_enc` to 0. Return new
# `(W_enc, W_dec, b_enc)`; leave the inputs untouched.


# %% exercise="resample_dead_latents"
def resample_dead_latents(
    W_enc: torch.Tensor,
    W_dec: torch.Tensor,
    b_enc: torch.Tensor,
    dead: torch.Tensor,
    x: torch.Tensor,
    sq_error: torch.Tensor,
    generator: torch.Generator,
):
    """W_enc: [d_in, d_sae], W_dec: [d_sae, d_in], b_enc: [d_sae], dead: bool [d_sae],
    x: [batch, d_in],
    sq_error: [batch] -> (W_enc, W_dec, b_enc)."""
    ### BEGIN SOLUTION
    W_enc, W_dec, b_enc = W_enc.clone(), W_dec.clone(), b_enc.clone()
    idx = torch.nonzero(dead).flatten()
    rows = torch.multinomial(
        sq_error, idx.numel(), replacement=True, generator=generator
    )
    directions = x[rows] / x[rows].norm(dim=-1, keepdim=True)
    alive_norm = W_enc[:, ~dead].norm(dim=0).mean()
    W_dec[idx] = directions
    W_enc[:, idx] = directions.T * 0.2 * alive_norm
    b_enc[idx] = 0.0
    return W_enc, W_dec, b_enc
    ### END SOLUTION


# %% check="resample_dead_latents"
checks.check_resample_dead_latents(resample_dead_latents)

# %% [markdown]
# ## Putting it together
#
# Your TopK activation inside the course's TopK SAE, trained on the toy (64 dimensions, 128 known
# features): your MMCS should say it found them.

# %%
set_seed(0)
toy = sharkey_toy(d=pick(cpu=64, gpu=256), n_features=pick(cpu=128, gpu=512))


class MyTopKSAE(TopKSAE):
    def activation(self, pre: torch.Tensor) -> torch.Tensor:  # training and inference
        return topk_activation(pre, self.cfg.k)


sae = MyTopKSAE(
    TopKConfig(d_in=toy.d, d_sae=2 * toy.features.shape[0], k=5),
    generator=torch.Generator().manual_seed(0),
)
log = train_sae(sae, toy, TrainConfig(steps=pick(cpu=600, gpu=3_000), seed=0))
print(
    f"MMCS {mmcs(sae.W_dec.detach(), toy.features).item():.3f} "
    f"after {log.steps[-1]} steps"
)
