# %% [markdown]
# The course's later parts (in preparation) take a trained transformer apart with sparse
# autoencoders, transcoders and parameter decomposition. Most courses download GPT-2 for that, which fails offline and drifts with every
# release of the model hubs. This course ships its own model instead: small enough to train on a
# laptop CPU in about half an hour, trained on text that may be redistributed, and reproducible from
# the repository with one command. This page shows what it is, how well it works, and a first look
# inside it.

# %% tags=["remove-output"]
import json

import numpy as np

from course_utils import course_lm, set_seed
from course_utils.corpus import load_corpus
from course_utils.labels import score_units
from course_utils.plotting import readable_tokens

set_seed(0)
model, tokenizer = course_lm.load_course_lm()
log = json.loads((course_lm.MODEL_DIR / "training_log.json").read_text())

# %% [markdown]
# ## The corpus and the tokenizer
#
# The training text is the source code of Python 3.11.7's standard library (453 files, about 9 MB of
# code, docstrings and comments, under the PSF licence), stored compressed in the package with its
# checksum, so every machine trains on the same bytes whatever its own Python version. About one file
# in twenty is held out for validation. A byte-level BPE tokenizer with 4,096 entries, trained on the
# training files, cuts it into tokens: `Ġ` marks a leading space and `Ċ` a newline.

# %%
line = "    def __init__(self, name=None):"
print(readable_tokens(tokenizer.encode(line).tokens))  # ␣ marks a leading space
print(f"{log['train_tokens']:,} training tokens, "
      f"{log['val_tokens']:,} validation tokens")

# %% [markdown]
# ## The model
#
# A two-layer transformer in TransformerLens {cite}`nanda2022transformerlens`, so every internal
# activation has a hook with a readable name.

# %%
cfg = model.cfg
print(f"{cfg.n_layers} layers, d_model={cfg.d_model}, "
      f"{cfg.n_heads} heads of d_head={cfg.d_head}, "
      f"d_mlp={cfg.d_mlp}, context {cfg.n_ctx}, vocabulary {cfg.d_vocab}; "
      f"{sum(p.numel() for p in model.parameters()):,} parameters")
[name for name in model.hook_dict if name.startswith("blocks.0.")]

# %% [markdown]
# ## How well it learned
#
# Loss is cross-entropy in nats per token on held-out files. For scale, the dotted and dashed lines are
# what a unigram model (token frequencies) and a bigram model (the previous token only) reach on the
# same validation text.

# %% tags=["hide-input"]
course_lm.plot_training(log)

# %%
print(f"validation loss {log['val_loss_full']:.3f} nats/token; "
      f"unigram {log['unigram_baseline']:.3f}, bigram {log['bigram_baseline']:.3f}")

# %% [markdown]
# Greedy completions show what that loss buys: the model has learned Python's surface syntax (an open
# parameter list gets closed and followed by a colon and an indented body, `from os import` gets a
# name), not much meaning: it invents plausible-looking identifiers.

# %%
prompts = ["def get_name(self", "    def __init__(self", "    for i in range(",
           "from os import"]
for prompt in prompts:
    completion = course_lm.complete(model, tokenizer, prompt, max_new_tokens=12)
    print(repr(prompt), "->", repr(completion))

# %% [markdown]
# ## Attention patterns
#
# Each head of the first layer on a short function. Hover a token to see where it attends; this is
# circuitsvis's own widget, rendered from its bundled JavaScript (nothing is fetched).

# %% tags=["hide-input"]
import circuitsvis as cv

snippet = "def area(width, height):\n    return width * height\n"
ids = course_lm.encode(tokenizer, snippet, cfg.n_ctx)
_, cache = model.run_with_cache(ids, names_filter="blocks.0.attn.hook_pattern")
tokens = readable_tokens(tokenizer.encode(snippet).tokens)  # ␣ marks a leading space
cv.attention.attention_patterns(tokens=tokens,
                                attention=cache["blocks.0.attn.hook_pattern"][0])

# %% [markdown]
# ## Ground truth: what every token is
#
# Python's own `tokenize` and `ast` modules say, for every character of the corpus, what it is: a
# keyword, a name, part of a string or a docstring or a comment, how deeply indented, inside how many
# brackets, and in what kind of statement. `course_utils.labels.token_labels` carries these labels over
# to the BPE tokens. They are known concepts, so any unit (a neuron here, a sparse-autoencoder latent later)
# can be scored against them automatically, instead of by eye.

# %%
from course_utils.labels import concepts as all_concepts

texts = [f.text for f in load_corpus("validation")]
# token:string and token:comment duplicate in_string and in_comment;
# indent>=1 holds almost everywhere
skip = ("token:string", "token:comment", "indent>=1")
names = [c for c in all_concepts() if c not in skip]
acts, data = course_lm.unit_activations(model, tokenizer, texts,
                                        "blocks.0.mlp.hook_post",
                                        max_tokens=20_000, concepts=names)
labels = data["labels"]
print(f"{acts.shape[0]:,} validation tokens, {acts.shape[1]} neurons, "
      f"{len(labels)} concepts")
print({c: f"{v.mean():.1%}" for c, v in list(labels.items())[:8]})

# %% [markdown]
# ## Are the neurons monosemantic?
#
# Say a neuron *fires* on a token when its activation exceeds half of its maximum. For every neuron
# and concept we compute precision (how often the concept holds when the neuron fires), recall (how
# often the neuron fires when the concept holds) and their harmonic mean F1. A neuron that *is* a
# concept would have F1 near 1 for it.

# %%
scores = score_units(acts.numpy(), labels)
f1, concepts = scores["f1"], list(scores["concepts"])
best = f1.max(1)
print(f"median best F1 over the {len(best)} neurons: {np.median(best):.2f}; "
      f"neurons with best F1 above 0.8: {(best > 0.8).sum()}")
course_lm.plot_best_f1(f1, concepts, "Layer-0 MLP neurons against known concepts")

# %% [markdown]
# No neuron is a clean match for any labelled concept: the best F1 of any neuron stays far below 1.
# The table lists the neurons that come closest, with their three best concepts: most split their
# firing across concepts that have little to do with each other (an operator *and* an indented
# line, a comment *and* a string). Two readings fit, and the rest of the course is about telling them
# apart: the neurons are polysemantic, mixing several features as chapter 1 showed on images, or they
# track concepts our labels do not name. The same labels and scores apply unchanged to the latents of
# a sparse autoencoder, the subject of the course's later parts.

# %% tags=["hide-input"]
from IPython.display import HTML

rows = []
for n in np.argsort(-best)[:12]:
    top = np.argsort(-f1[n])[:3]
    cells = "".join(f"<td>{concepts[c]} ({f1[n, c]:.2f})</td>" for c in top)
    rows.append(f"<tr><td>{n}</td>{cells}</tr>")
head = "<tr><th>neuron</th><th>best concept (F1)</th><th>second</th><th>third</th></tr>"
HTML("<table>" + head + "".join(rows) + "</table>")

# %% [markdown]
# ## Activations for the later chapters
#
# The dictionary-learning chapters need millions of activation vectors, shuffled across documents.
# `course_utils.activations.ActivationStore` streams them from the corpus at any hook point, through a
# shuffle buffer, optionally caching them on disk, and reports its throughput.

# %%
from course_utils.activations import ActivationStore

store = ActivationStore(model, tokenizer, "blocks.0.hook_resid_post",
                        split="validation", batch_size=1024, max_batches=4, seed=0)
batches = list(store)
print(f"{len(batches)} batches of shape {tuple(batches[0].shape)}; "
      f"{store.tokens_per_second:,.0f} tokens/s")

# %% [markdown]
# ## Reproducing the model
#
# `python -m course_utils.course_lm train` retrains tokenizer and model from the shipped corpus
# (about 30 minutes on one CPU thread; the seed and the thread count make it repeatable) and writes
# the safetensors weights, config and training log that this page loaded. Online learners can also load
# GPT-2 with `course_lm.load_pretrained("gpt2-small")`; offline that raises an error that points back
# here.
