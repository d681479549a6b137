# %% [markdown]
# Every chapter of this course reads the inside of a network: which {term}`neurons <Neuron>` fire,
# which weight directions point the same way, which inputs excite a unit most. Five tensor moves do
# almost all of that work. This page shows them on a tiny trained network; the exercise notebook asks
# you to write each one, and checks your answer.

# %%
import torch

from course_utils import set_seed, warmup
from course_utils.plotting import html_tabs, signed_heatmap, style

set_seed(0)
x, y = warmup.make_blobs(n=512, d_in=8, n_classes=4, seed=0)
model = warmup.train_tiny_mlp(x, y, d_hidden=16, steps=300, seed=0)
print(f"accuracy on its training blobs: {warmup.accuracy(model, x, y):.3f}")

# %% [markdown]
# ## Linear maps as einsum
#
# A linear layer computes $y_{bo} = \sum_i W_{oi} x_{bi} + b_o$. `torch.einsum` lets the code say
# exactly that: the string `"oi,bi->bo"` names the indices of each operand and of the result, and every
# index missing from the result is summed over {cite}`rogozhnikov2022einops`.

# %%
W, b = model.hidden.weight.detach(), model.hidden.bias.detach()  # W: [d_hidden, d_in]
pre = torch.einsum("oi,bi->bo", W, x) + b  # [batch, d_hidden]
torch.allclose(pre, model.hidden(x).detach(), atol=1e-6)

# %% [markdown]
# ## Which weight directions point the same way?
#
# Row $i$ of `W` is the direction in input space that neuron $i$ reads. The
# {term}`cosine similarity <Cosine similarity>` matrix $\hat W \hat W^\top$ compares all pairs at once:
# 1 means the same direction, 0 orthogonal, −1 opposite. In later chapters the same picture, applied to
# feature directions, is how superposition becomes visible.

# %% tags=["hide-input"]
import plotly.graph_objects as go

W_hat = W / W.norm(dim=1, keepdim=True)
cos = (W_hat @ W_hat.T).numpy()
fig = go.Figure(signed_heatmap(cos, zmax=1, colorbar_title="cosine"))
fig.update_layout(xaxis_title="neuron", yaxis_title="neuron",
                  yaxis_autorange="reversed")
style(fig, title="Cosine similarity between the 16 hidden neurons' input weights",
      height=430)

# %% [markdown] figure="cosine-matrix"
# Cosine similarity between the input-weight rows of the 16 hidden neurons, $\hat W \hat W^\top$
# (red positive, blue negative, white zero). The diagonal is 1 by definition.

# %% [markdown]
# ## Top-activating examples and class profiles
#
# To guess what a neuron does, look at the inputs that excite it most
# ({term}`top-k activating examples <Top-k activating examples>`) and at its mean activation per class.
# A neuron whose top examples all share a class looks {term}`monosemantic <Monosemantic>` with respect
# to the labels; one that mixes classes is a candidate {term}`polysemantic <Polysemantic>` neuron
# ([chapter 1](../ch01_polysemanticity/index.ipynb) makes this precise). The tabs below are an ipywidgets control that works on this page
# without a kernel: switch neurons to compare them.

# %% tags=["hide-input"]
with torch.no_grad():
    acts = model.act(model.hidden(x))  # [n_examples, d_hidden]
top = acts.topk(10, dim=0)
pages = {}
for neuron in range(6):
    classes = y[top.indices[:, neuron]].tolist()
    means = [acts[y == c, neuron].mean().item() for c in range(4)]
    per_class = ", ".join(f"class {c}: {m:.2f}" for c, m in enumerate(means))
    pages[f"neuron {neuron}"] = (
        f"<p><b>Top-10 example classes:</b> {classes}</p>"
        f"<p><b>Mean activation per class:</b> {per_class}</p>")
html_tabs(pages)

# %% [markdown] figure="neuron-tabs"
# The first six hidden neurons, one tab each: the classes of a neuron's ten top-activating examples
# and its mean activation on each of the four classes. The tabs switch without a kernel.

# %% [markdown]
# ## Reading activations with a hook
#
# The model above has no method that returns its hidden activations, and real models rarely do. A
# {term}`forward hook <Forward hook>` is a function PyTorch calls after a module's forward pass with
# the module's input and output; storing the output records the activations without editing the model.
# Always remove the hook when done (`handle.remove()`), or every later forward pass keeps recording.

# %%
stored = []
def record(module, inputs, output):  # called by PyTorch after model.act's forward pass
    stored.append(output.detach())


handle = model.act.register_forward_hook(record)
try:
    with torch.no_grad():
        model(x[:4])
finally:
    handle.remove()
stored[0].shape, len(model.act._forward_hooks)

# %% [markdown]
# ## Your turn
#
# The exercise notebook asks for all five moves as functions. Each check runs your function and the
# reference on random inputs in float32 and float64, and if they differ it tells you the likely mistake
# (a missing bias, a transposed weight, a sum where a mean was meant, a hook left behind).
#
# ## Summary
#
# * A linear layer is an einsum over named dimensions; writing the dimensions out keeps batch,
#   neuron and feature axes apart.
# * Cosine similarity between weight rows shows which units point the same way.
# * Top-activating examples and per-class means are the first look at what a unit responds to.
# * A forward hook records a module's activations without editing the model; remove it afterwards.
#
# **Next:** the exercise notebook (link in the box at the top) asks you to write these five moves;
# then [chapter 1](../ch01_polysemanticity/index.ipynb) uses them on a trained digits network.
