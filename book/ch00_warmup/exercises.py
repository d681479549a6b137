# %% [markdown]
# # Warm-up: tensors for interpretability
#
# Five small functions that every later chapter relies on. For each: read the instructions, replace the
# `raise NotImplementedError(...)` line with your code, then run the check cell below it. A check prints
# one line when your function is right; otherwise it tells you what looks wrong.
#
# Grade the whole notebook at any time with
# `python -m course_utils.grade exercises/ch00_warmup.ipynb`.

# %%
import torch
from torch import nn

from course_utils.checks import warmup as checks

# %% [markdown]
# ## Exercise 0.1: a linear map with einsum
#
# Implement `affine(x, W, b)` for `x: [batch, d_in]`, `W: [d_out, d_in]` (PyTorch's `nn.Linear` layout)
# and `b: [d_out]`, returning $y_{bo} = \sum_i W_{oi} x_{bi} + b_o$ of shape `[batch, d_out]`. Write it
# with `torch.einsum` (it names every index; `x @ W.T + b` is the same map). The check also back-propagates
# through your function, as training will, so compute it from the inputs with torch operations.
#
# <details><summary>Hint</summary>
#
# Name the indices: `o` for outputs, `i` for inputs, `b` for the batch. The index that appears in both
# operands but not in the output is summed.
# </details>

# %% exercise="affine"
def affine(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x: [batch, d_in], W: [d_out, d_in], b: [d_out] -> [batch, d_out]."""
    ### BEGIN SOLUTION
    return torch.einsum("oi,bi->bo", W, x) + b
    ### END SOLUTION


# %% check="affine"
checks.check_affine(affine)

# %% [markdown]
# ## Exercise 0.2: cosine-similarity matrix
#
# `W: [n, d]` holds one direction per row. Return the `[n, n]` matrix of cosine similarities
# $\hat W_i \cdot \hat W_j$ with $\hat W_i = W_i / \lVert W_i \rVert$. A row of zeros has no direction:
# its similarities must come out as 0, not NaN.
#
# <details><summary>Hint</summary>
#
# `W.norm(dim=-1, keepdim=True)` gives `[n, 1]` norms; `.clamp_min(1e-8)` avoids dividing by zero.
# </details>

# %% exercise="cosine_similarity_matrix"
def cosine_similarity_matrix(W: torch.Tensor) -> torch.Tensor:
    """W: [n, d] -> [n, n] cosine similarities between rows."""
    ### BEGIN SOLUTION
    W_hat = W / W.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return W_hat @ W_hat.T
    ### END SOLUTION


# %% check="cosine_similarity_matrix"
checks.check_cosine_similarity_matrix(cosine_similarity_matrix)

# %% [markdown]
# ## Exercise 0.3: top-k activating examples
#
# `acts: [n_examples, n_neurons]`. For every neuron at once, return the `k` largest activations and the
# indices of the examples they come from, both `[k, n_neurons]`, sorted from the largest down.

# %% exercise="top_k_examples"
def top_k_examples(acts: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """acts: [n_examples, n_neurons] -> (values [k, n_neurons], indices [k, n_neurons])."""
    ### BEGIN SOLUTION
    values, indices = acts.topk(k, dim=0)
    return values, indices
    ### END SOLUTION


# %% check="top_k_examples"
checks.check_top_k_examples(top_k_examples)

# %% [markdown]
# ## Exercise 0.4: mean activation per class
#
# `acts: [n, n_neurons]`, integer `labels: [n]` in `range(n_classes)`. Return `[n_classes, n_neurons]`:
# the mean activation of each neuron over the examples of each class. A class with no examples gets 0.
#
# <details><summary>Hint</summary>
#
# A one-hot matrix `[n, n_classes]` turns the per-class sum into one matrix product; then divide by the
# per-class counts.
# </details>

# %% exercise="mean_activation_by_class"
def mean_activation_by_class(acts: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """acts: [n, n_neurons], labels: [n] -> [n_classes, n_neurons] per-class means."""
    ### BEGIN SOLUTION
    onehot = torch.nn.functional.one_hot(labels, n_classes).to(acts.dtype)  # [n, n_classes]
    counts = onehot.sum(0).clamp_min(1)  # [n_classes]
    return (onehot.T @ acts) / counts[:, None]
    ### END SOLUTION


# %% check="mean_activation_by_class"
checks.check_mean_activation_by_class(mean_activation_by_class)

# %% [markdown]
# ## Exercise 0.5: record activations with a forward hook
#
# Return the output of the submodule called `module_name` (e.g. `"act"` for the ReLU of
# `course_utils.warmup.TinyMLP`) when `model` runs on `x`. Use `register_forward_hook`, store the
# output detached, and remove the hook before returning, even if the forward pass fails. Leave the
# model as you found it: hooks that were already there stay, and its train/eval mode is unchanged.
#
# <details><summary>Hint</summary>
#
# `model.get_submodule(name)` finds the module; the hook's signature is `hook(module, inputs, output)`;
# `handle = module.register_forward_hook(hook)` and `handle.remove()` in a `finally:` block.
# </details>

# %% exercise="record_activations"
def record_activations(model: nn.Module, module_name: str, x: torch.Tensor) -> torch.Tensor:
    """The output of model.<module_name> on input x, recorded with a forward hook."""
    ### BEGIN SOLUTION
    stored: list[torch.Tensor] = []
    handle = model.get_submodule(module_name).register_forward_hook(
        lambda module, inputs, output: stored.append(output.detach())
    )
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return stored[0]
    ### END SOLUTION


# %% check="record_activations"
checks.check_record_activations(record_activations)

# %% [markdown]
# ## Putting it together
#
# With all five in hand: train the tiny model, record its hidden activations with your hook, and look
# at which classes excite each neuron.

# %%
from course_utils import warmup

x, y = warmup.make_blobs(n=512, seed=0)
model = warmup.train_tiny_mlp(x, y, steps=300, seed=0)
acts = record_activations(model, "act", x)
values, indices = top_k_examples(acts, k=10)
profile = mean_activation_by_class(acts, y, n_classes=4)
for neuron in range(4):
    print(f"neuron {neuron}: top-10 classes {y[indices[:, neuron]].tolist()}, "
          f"class means {[round(v, 2) for v in profile[:, neuron].tolist()]}")
