# %% [markdown]
# # Applications: exercises
#
# Six functions behind the chapter's measurements: the steering edit, the dose-response effect,
# attribution of a probe's output to SAE latents, ablation with the SAE error term kept,
# worst-group accuracy, and the loss of the best monosemantic model (the yardstick for what
# superposition saves). For each one: read the instructions, replace the
# `raise NotImplementedError(...)` line with your code, then run the check cell below it. A check
# prints one line when your function is right; otherwise it names the likely mistake.
#
# Grade the whole notebook at any time with
# `python -m course_utils.grade exercises/ch07_applications.ipynb`.

# %%
import math

import torch

from course_utils import set_seed
from course_utils.checks import applications as checks

set_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## Exercise 7.1: the steering edit
#
# Steering adds a direction to an activation at every position: $x \leftarrow x + s\,u/\lVert u
# \rVert$, so that the strength $s$ is the norm of what is added whichever direction is used.
# `act: [batch, pos, d_model]`, `direction: [d_model]`, `strength` a float. Return a new tensor
# (do not edit `act` in place: the model may reuse it). Raise a `ValueError` when `strength` is not
# finite (NaN or infinite).
#
# <details><summary>Hint</summary>
#
# Broadcasting adds a `[d_model]` vector to every position. `math.isfinite` tells NaN and infinity
# apart from numbers.
# </details>


# %% exercise="add_steering"
def add_steering(
    act: torch.Tensor, direction: torch.Tensor, strength: float
) -> torch.Tensor:
    """act: [batch, pos, d_model], direction: [d_model]
    -> act + strength * unit(direction)."""
    ### BEGIN SOLUTION
    if not math.isfinite(strength):
        raise ValueError(f"strength must be finite, got {strength}")
    return act + strength * direction / direction.norm()
    ### END SOLUTION


# %% check="add_steering"
checks.check_add_steering(add_steering)

# %% [markdown]
# ## Exercise 7.2: the dose-response effect
#
# For each strength the page generates continuations of a batch of prompts and labels every
# generated token: `in_concept: [n_strengths, n_prompts, n_new]` (bool) says whether a generated
# token lies inside a string. Return the effect of each strength, the fraction of generated tokens
# in the concept minus that fraction at strength 0 (the unsteered baseline), as a float32 tensor
# `[n_strengths]`. Strength 0 may be anywhere in `strengths: [n_strengths]`; raise a `ValueError`
# if it is missing.


# %% exercise="dose_response"
def dose_response(in_concept: torch.Tensor, strengths: torch.Tensor) -> torch.Tensor:
    """in_concept: [n_strengths, n_prompts, n_new] bool, strengths: [n_strengths]
    -> fraction in concept minus the fraction at strength 0: [n_strengths] float32."""
    ### BEGIN SOLUTION
    zero = (strengths == 0).nonzero()
    if len(zero) == 0:
        raise ValueError("strengths must include 0, the unsteered baseline")
    frac = in_concept.float().mean(dim=(1, 2))
    return frac - frac[zero[0, 0]]
    ### END SOLUTION


# %% check="dose_response"
checks.check_dose_response(dose_response)

# %% [markdown]
# ## Exercise 7.3: which latents does a probe read?
#
# A linear probe scores an activation by $w \cdot x + b$. With $x = \sum_j f_j W_{\text{dec},j} +
# \text{error}$, latent $j$ contributes $f_j\,(W_{\text{dec},j} \cdot w)$. SAEBench's attribution of
# latent $j$ to the probe is the size of the difference that contribution makes between the classes:
#
# $$\text{attr}_j = \big|(\bar f^{\,+}_j - \bar f^{\,-}_j)\,(W_{\text{dec},j} \cdot w)\big|,$$
#
# with $\bar f^{\,\pm}_j$ the latent's mean activation over the positive and the negative examples.
# `f_pos: [n_pos, d_sae]`, `f_neg: [n_neg, d_sae]`, `W_dec: [d_sae, d]`, `w: [d]`; return
# `[d_sae]`. Raise a `ValueError` when the probe's width is not the decoder's output width.


# %% exercise="latent_attribution"
def latent_attribution(
    f_pos: torch.Tensor, f_neg: torch.Tensor, W_dec: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    """|(mean f_pos - mean f_neg) * (W_dec @ w)|: [d_sae]."""
    ### BEGIN SOLUTION
    if W_dec.shape[1] != w.shape[0]:
        raise ValueError(
            f"probe of width {w.shape[0]} for a decoder of width {W_dec.shape[1]}"
        )
    return ((f_pos.mean(0) - f_neg.mean(0)) * (W_dec @ w)).abs()
    ### END SOLUTION


# %% check="latent_attribution"
checks.check_latent_attribution(latent_attribution)

# %% [markdown]
# ## Exercise 7.4: ablate latents, keep the error term
#
# To remove latents $S$ from an activation without also removing everything the SAE fails to
# reconstruct, subtract only their contribution: $x' = x - \sum_{j \in S} f_j W_{\text{dec},j}$.
# The SAE's error $x - \hat x$ stays in $x'$. `x: [n, d]`, `f: [n, d_sae]` (the latents of `x`),
# `W_dec: [d_sae, d]`, `latents`: a list of ids (possibly empty). Raise a `ValueError` for an id
# outside `0 .. d_sae - 1`.


# %% exercise="ablate_latents"
def ablate_latents(
    x: torch.Tensor, f: torch.Tensor, W_dec: torch.Tensor, latents: list[int]
) -> torch.Tensor:
    """x - f[:, latents] @ W_dec[latents]: [n, d]."""
    ### BEGIN SOLUTION
    bad = [j for j in latents if not 0 <= j < W_dec.shape[0]]
    if bad:
        raise ValueError(f"unknown latent ids {bad}")
    return x - f[:, latents] @ W_dec[latents]
    ### END SOLUTION


# %% check="ablate_latents"
checks.check_ablate_latents(ablate_latents)

# %% [markdown]
# ## Exercise 7.5: worst-group accuracy
#
# With an intended label $y$ and a spurious label $z$, the tokens fall into four groups
# $(y, z) \in \{0, 1\}^2$. A probe that reads $z$ instead of $y$ is right on the groups where the
# two agree and wrong on the others, so its *worst-group* accuracy, the smallest accuracy on $y$
# within a group, exposes it even when its overall accuracy looks fine. `pred, y, z: [n]` bool;
# skip groups with no tokens; return a 0-d float32 tensor. Raise a `ValueError` when the lengths
# differ.


# %% exercise="worst_group_accuracy"
def worst_group_accuracy(
    pred: torch.Tensor, y: torch.Tensor, z: torch.Tensor
) -> torch.Tensor:
    """min over non-empty groups (y, z) of the accuracy of pred on y
    (a 0-d float32 tensor)."""
    ### BEGIN SOLUTION
    if not len(pred) == len(y) == len(z):
        raise ValueError(f"pred, y and z have lengths {len(pred)}, {len(y)}, {len(z)}")
    accs = []
    for a in (True, False):
        for c in (True, False):
            group = (y == a) & (z == c)
            if group.any():
                accs.append((pred[group] == a).float().mean())
    return torch.stack(accs).min()
    ### END SOLUTION


# %% check="worst_group_accuracy"
checks.check_worst_group_accuracy(worst_group_accuracy)

# %% [markdown]
# ## Exercise 7.6: the best monosemantic model
#
# In the toy model of superposition feature $i$ is 0 with probability $1 - p_i$ and uniform on
# $[0, 1]$ otherwise, and the loss is $\frac1n \sum_i I_i\,\mathbb{E}[(x_i - \hat x_i)^2]$. A
# *monosemantic* model with $k$ hidden dimensions gives each dimension one feature: the best one
# keeps the $k$ most important features exactly and, for every other feature, outputs the constant
# that minimises its squared error, its mean $p_i/2$, leaving its variance $p_i/3 - p_i^2/4$. Return
#
# $$L_\text{mono}(k) = \frac1n \sum_{i \notin \text{top-}k\text{ by } I} I_i \left(\frac{p_i}{3} - \frac{p_i^2}{4}\right)$$
#
# as a 0-d tensor. `importance, feature_probability: [n]` (not sorted), `0 <= k <= n`.
#
# <details><summary>Hint</summary>
#
# `importance.argsort(descending=True)` orders the features; drop the first `k` of that order.
# </details>


# %% exercise="monosemantic_loss"
def monosemantic_loss(
    importance: torch.Tensor, feature_probability: torch.Tensor, k: int
) -> torch.Tensor:
    """(1/n) * sum, over features outside the top-k by importance,
    of I * (p/3 - p^2/4)."""
    ### BEGIN SOLUTION
    p = feature_probability
    dropped = importance.argsort(descending=True)[k:]
    return (importance * (p / 3 - p**2 / 4))[dropped].sum() / len(importance)
    ### END SOLUTION


# %% check="monosemantic_loss"
checks.check_monosemantic_loss(monosemantic_loss)

# %% [markdown]
# The chapter's page uses these six to measure steering on the course model, to remove a spurious
# concept from a probe, and to count the dimensions superposition saves in the toy models.
