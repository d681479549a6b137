# %% [markdown]
# # SAEs on the course language model: exercises
#
# Seven pieces of this chapter's evaluation and interpretation code, each checked on random inputs
# (several shapes, float32 and float64) or, for the splice hook, on tiny seeded transformers. Replace
# each `raise NotImplementedError(...)` with your code and run the check below it: it prints one line
# when your function is right and otherwise names the likely mistake. At the end your functions run
# on the course model and its shipped SAEs.
#
# Shapes follow SAELens: activations `x: [n_tokens, d_in]`, latents `f: [n_tokens, d_sae]`,
# `W_dec: [d_sae, d_in]` (row `i` is latent `i`'s direction).
#
# Grade the whole notebook at any time with
# `python -m course_utils.grade exercises/ch04b_saes_course_model.ipynb`.

# %%
import torch

from course_utils import set_seed
from course_utils.checks import saes_lm as checks

set_seed(0)
torch.set_num_threads(1)  # small models: one thread avoids synchronisation overhead

# %% [markdown]
# ## Exercise 4b.1: CE loss recovered with a splice hook
#
# Run the model three times on `tokens: [batch, seq]` with `return_type="loss"` (the mean next-token
# cross-entropy): clean; with the activation at `hook_name` replaced by the SAE's reconstruction
# `sae(x)` (a *splice* hook: a TransformerLens forward hook `hook(act, hook) -> new act`, passed as
# `model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, fn)])`); and with the
# activation replaced by zeros. Return the float (CE_zero − CE_sae) / (CE_zero − CE_clean), computed
# under `torch.no_grad()`. `act` has shape `[batch, seq, d_in]`; the SAE reads `[n, d_in]` rows.
#
# <details><summary>Hint</summary>
#
# `act.reshape(-1, act.shape[-1])` gives the rows; reshape the reconstruction back to `act.shape`.
# `run_with_hooks` removes its hooks when it returns, so nothing is left on the model.
# </details>


# %% exercise="ce_loss_recovered"
def ce_loss_recovered(model, sae, hook_name: str, tokens: torch.Tensor) -> float:
    """Zero-ablation CE loss recovered of `sae` spliced in at `hook_name`."""
    ### BEGIN SOLUTION
    def splice(act, hook):
        return sae(act.reshape(-1, act.shape[-1])).reshape(act.shape)

    with torch.no_grad():
        clean = model(tokens, return_type="loss")
        spliced = model.run_with_hooks(tokens, return_type="loss", fwd_hooks=[(hook_name, splice)])
        zero = model.run_with_hooks(
            tokens, return_type="loss", fwd_hooks=[(hook_name, lambda act, hook: act * 0)]
        )
    return float((zero - spliced) / (zero - clean))
    ### END SOLUTION


# %% check="ce_loss_recovered"
checks.check_ce_loss_recovered(ce_loss_recovered)

# %% [markdown]
# ## Exercise 4b.2: explained variance
#
# $1 - \sum_t \lVert x_t - \hat x_t\rVert^2 / \sum_t \lVert x_t - \bar x\rVert^2$, with $\bar x$ the
# mean activation over tokens: the share of the activations' variance the reconstruction keeps
# (FVU is one minus it). Pool the squared errors over all dimensions before dividing, and return a
# 0-d tensor in the inputs' dtype.


# %% exercise="explained_variance"
def explained_variance(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """x, x_hat: [n_tokens, d_in] -> 0-d tensor."""
    ### BEGIN SOLUTION
    return 1 - (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    ### END SOLUTION


# %% check="explained_variance"
checks.check_explained_variance(explained_variance)

# %% [markdown]
# ## Exercise 4b.3: firing density
#
# The fraction of tokens on which each latent is non-zero (`!= 0`: a latent that can go negative
# fires there too), as a tensor of the latents' dtype. A density of 0 is a dead latent, above 0.1
# a dense one.


# %% exercise="firing_density"
def firing_density(latents: torch.Tensor) -> torch.Tensor:
    """latents: [n_tokens, d_sae] -> [d_sae]."""
    ### BEGIN SOLUTION
    return (latents != 0).to(latents.dtype).mean(0)
    ### END SOLUTION


# %% check="firing_density"
checks.check_firing_density(firing_density)

# %% [markdown]
# ## Exercise 4b.4: top-activating contexts
#
# A dashboard shows where a latent is largest. Given one latent's activations over documents,
# `acts: [n_docs, seq]`, return its `k` largest values over every position of every document,
# largest first, with the document index and the position of each (both `long`).


# %% exercise="top_activating"
def top_activating(acts: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """acts: [n_docs, seq] -> (values [k], doc [k], pos [k])."""
    ### BEGIN SOLUTION
    values, flat = acts.reshape(-1).topk(k)
    return values, flat // acts.shape[1], flat % acts.shape[1]
    ### END SOLUTION


# %% check="top_activating"
checks.check_top_activating(top_activating)

# %% [markdown]
# ## Exercise 4b.5: logit effects of a latent
#
# Latent `latent` writes its decoder row into the residual stream; through the unembedding its
# direct effect on the logits is `W_dec[latent] @ W_U`. Softmax ignores a constant added to every
# logit, so centre the effects over the vocabulary (subtract their mean).


# %% exercise="logit_effects"
def logit_effects(W_dec: torch.Tensor, W_U: torch.Tensor, latent: int) -> torch.Tensor:
    """W_dec: [d_sae, d_model], W_U: [d_model, d_vocab] -> [d_vocab]."""
    ### BEGIN SOLUTION
    e = W_dec[latent] @ W_U
    return e - e.mean()
    ### END SOLUTION


# %% check="logit_effects"
checks.check_logit_effects(logit_effects)

# %% [markdown]
# ## Exercise 4b.6: scoring a unit against labels
#
# `acts: [n_tokens]` are one unit's activations, `concepts: bool [n_tokens, n_concepts]` the labels.
# The unit *fires* where `acts > 0.5 * acts.max()` (nowhere when the maximum is ≤ 0). For each
# concept $c$: precision $P(c\mid\text{fires})$, recall $P(\text{fires}\mid c)$ and base rate
# $P(c)$ (its mean over tokens). The score is the largest chance-corrected precision
# $(P(c\mid\text{fires}) - P(c)) / (1 - P(c))$ among concepts with recall ≥ `recall_floor`, clipped
# at 0 from below. Return `(score, best)`: the score as a 0-d tensor in `acts`' dtype and the
# index of the best concept as a 0-d `long`; when the unit never fires or no concept reaches the
# floor, `(0, -1)`. Break ties between equal scores towards the higher recall (add `1e-6 * recall`
# before the `argmax`).


# %% exercise="unit_score"
def unit_score(
    acts: torch.Tensor, concepts: torch.Tensor, recall_floor: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """acts: [n_tokens], concepts: bool [n_tokens, n_concepts] -> (score, best)."""
    ### BEGIN SOLUTION
    top = acts.max()
    fires = (acts > 0.5 * top) & (top > 0)
    c = concepts.to(acts.dtype)
    tp = fires.to(acts.dtype) @ c
    precision = tp / fires.sum().clamp_min(1)
    recall = tp / c.sum(0).clamp_min(1)
    base = c.mean(0)
    corrected = (precision - base) / (1 - base).clamp_min(1e-12)
    corrected = torch.where(recall >= recall_floor, corrected, torch.full_like(corrected, -torch.inf))
    if fires.sum() == 0 or not torch.isfinite(corrected).any():
        return acts.new_zeros(()), torch.tensor(-1, device=acts.device)
    j = (corrected + 1e-6 * recall).argmax()
    return corrected[j].clamp_min(0), j
    ### END SOLUTION


# %% check="unit_score"
checks.check_unit_score(unit_score)

# %% [markdown]
# ## Exercise 4b.7: matching latents across dictionary sizes
#
# For each latent of a smaller dictionary, find the latent of a larger one with the most similar
# decoder direction: normalise each row, take the (signed) cosines, and return the best cosine and
# the index of its latent for every row of `W_small`.


# %% exercise="match_latents"
def match_latents(
    W_small: torch.Tensor, W_large: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """W_small: [m1, d], W_large: [m2, d] -> (cosine [m1], index [m1] long)."""
    ### BEGIN SOLUTION
    unit_small = W_small / W_small.norm(dim=-1, keepdim=True)
    unit_large = W_large / W_large.norm(dim=-1, keepdim=True)
    cos = unit_small @ unit_large.T
    values, indices = cos.max(dim=1)
    return values, indices
    ### END SOLUTION


# %% check="match_latents"
checks.check_match_latents(match_latents)

# %% [markdown]
# ## Your functions on the course model
#
# The shipped layer-0 TopK SAE spliced into the course model, and the residual-stream family
# matched 2048 → 8192, with your functions.

# %%
from course_utils.course_lm import load_course_lm  # noqa: E402
from course_utils.saes.course import MLP0, corpus_windows, load_course_sae  # noqa: E402

model, tokenizer = load_course_lm()
tokens = corpus_windows(tokenizer, "validation", 2048, model.cfg.n_ctx, seed=1)
sae = load_course_sae("mlp0-topk-2048", model)
print(f"CE loss recovered on {tokens.numel():,} tokens: "
      f"{ce_loss_recovered(model, sae, MLP0, tokens):.3f}")
with torch.no_grad():
    W_2048 = load_course_sae("resid1-topk-2048").W_dec
    W_8192 = load_course_sae("resid1-topk-8192").W_dec
    cos, idx = match_latents(W_2048, W_8192)
print(f"2048 -> 8192: median best cosine {float(cos.median()):.2f}, "
      f"{int((cos > 0.9).sum())} latents with a near-copy (cosine > 0.9)")
