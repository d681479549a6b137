# %% [markdown]
# Chapters 4 to 7 of the course take a trained transformer apart with sparse
# autoencoders, transcoders and parameter decomposition. Most courses download GPT-2 for that, which fails offline and drifts with every
# release of the model hubs. This course ships its own model instead: small enough to train on one
# CPU thread in an hour and a half, trained on code that may be redistributed, and reproducible
# from the repository with three commands. This page shows what it is, how well it works, what its residual
# stream encodes, and a first look at its neurons.

# %% tags=["remove-output"]
import json

import numpy as np

from course_utils import course_lm, probes, set_seed
from course_utils.corpus import load_corpus
from course_utils.labels import score_units
from course_utils.plotting import readable_tokens

set_seed(0)
model, tokenizer = course_lm.load_course_lm()
log = json.loads((course_lm.MODEL_DIR / "training_log.json").read_text())
stage1 = json.loads((course_lm.STAGE1_DIR / "training_log.json").read_text())
first = stage1["previous"]  # the first course model (standard library only)

# %% [markdown]
# ## The corpus and the tokenizer
#
# The training text is real Python under permissive licences: the source code of Python 3.11.7's
# standard library (PSF licence; shipped compressed in the package with its checksum, so every
# machine sees the same bytes whatever its own Python version) and the Python source of five packages
# the course installs anyway, at their pinned versions and under the BSD licence: numpy, scipy,
# scikit-learn, networkx and pandas. `python -m course_utils.package_corpus build` reads them from
# the installed files, offline, and checks every source against a recorded SHA-256. It refuses a
# version that differs from the pin or a licence the course may not redistribute, and leaves out test
# folders and generated files; the package's `data/licenses/` folder holds the notices. About one
# file in twenty is held out by a hash of its path: the standard library's held-out files are exactly
# the first course model's validation set, so losses stay comparable, and the packages' held-out
# files form a second validation set.

# %% tags=["hide-input"]
rows = [(name, m["files"], m["chars"] / 1e6, m.get("dropped", {}).get("tests", 0))
        for name, m in log["corpus_sources"].items()]
rows.sort(key=lambda r: r[0] != "stdlib-3.11.7")
print(f"{'source':<20} {'files':>6} {'M chars':>8} {'test files left out':>20}")
for name, files, chars, tests in rows:
    print(f"{name:<20} {files:>6} {chars:>8.1f} {tests:>20}")
print(f"{'total':<20} {sum(r[1] for r in rows):>6} {sum(r[2] for r in rows):>8.1f}")

# %% [markdown]
# A byte-level BPE tokenizer with 4,096 entries, trained on the training files, cuts the text into
# tokens.

# %%
line = "    def __init__(self, name=None):"
print(readable_tokens(tokenizer.encode(line).tokens))  # ␣ marks a leading space
print(f"{log['train_tokens']:,} training tokens; validation: "
      f"{log['val_tokens']:,} (standard library), "
      f"{log['val_packages_tokens']:,} (packages)")

# %% [markdown]
# ## The model
#
# A two-layer transformer in TransformerLens {cite}`nanda2022transformerlens`, so every internal
# activation has a hook with a readable name.

# %%
cfg = model.cfg
print(f"{cfg.n_layers} layers, d_model={cfg.d_model}, "
      f"{cfg.n_heads} heads of d_head={cfg.d_head}, d_mlp={cfg.d_mlp},")
print(f"context {cfg.n_ctx}, vocabulary {cfg.d_vocab}; "
      f"{sum(p.numel() for p in model.parameters()):,} parameters")
[name for name in model.hook_dict if name.startswith("blocks.0.")]

# %% [markdown]
# ## How well it learned
#
# The model was trained in two stages on the same files. The first ran 3,500 steps of 32 windows
# of 128 tokens from random weights, its learning rate warmed up to 3e-3 and decayed by a cosine to a
# tenth of that; it stopped while its validation loss was still falling. The second starts from the
# first stage's weights and tokenizer (so token ids do not change) and runs 5,000 more steps with a
# fresh AdamW optimiser, warmed up over 100 steps to 1.5e-3 and decayed to a tenth of that. Its peak
# is half the first stage's: a judgement (high enough to move on, low enough not to undo the first
# stage), not a tuned value. Together the stages saw 34.8 million tokens, 2.75 passes over the 12.7
# million training tokens, in 89 minutes on one CPU thread (two threads were no faster on the shared
# machine it ran on, and not bit-repeatable).
#
# Loss is cross-entropy in nats per token on held-out files. For scale, the dotted and dashed lines are
# what a unigram model (token frequencies) and a bigram model (the previous token only) reach on the
# same validation text. (The curves use the first 256 windows of the standard library's validation
# files; the numbers below use all of them.)

# %% tags=["hide-input"]
course_lm.plot_training(log, earlier=stage1)

# %% [markdown] figure="training-curve"
# Training loss (per batch) and validation loss of the course model over its two stages, with the
# unigram and bigram baselines measured on the same validation text.

# %% [markdown]
# The first course model, trained on the standard library alone, saw 8.2 million tokens drawn from
# 2.3 million distinct ones and memorised: its loss on training text was far below its validation
# loss. The table sets it beside the two stages of this one, with the targets set for this model
# (0.5 nats per token below the first model, and a smaller gap). The two tokenizers cut the same
# validation text into slightly different numbers of tokens, so nats per *character* is the fairer
# comparison; the target per character is the one the same 0.5 nats would mean for the first model's
# tokenizer. The gap compares the loss on 1,024 windows of training text with the validation loss.

# %% tags=["hide-input"]
models = {"first": first, "stage 1": stage1, "shipped": log}
target = first["val_loss_full"] - 0.5
per_char = target / first["val_loss_full"] * first["val_nats_per_char"]
rows = [("val nats/token", "val_loss_full", f"<= {target:.2f}"),
        ("val nats/char", "val_nats_per_char", f"<= {per_char:.3f}"),
        ("train-text loss", "train_loss_sample", ""),
        ("packages val", "val_packages_loss_full", ""),
        ("bigram baseline", "bigram_baseline", "")]
print(f"{'':<16}" + "".join(f"{m:>10}" for m in models) + f"{'target':>10}")
for name, key, goal in rows:
    vals = "".join(f"{m[key]:>10.3f}" if key in m else f"{'-':>10}"
                   for m in models.values())
    print(f"{name:<16}{vals}{goal:>10}")
gaps = {k: m["val_loss_full"] - m["train_loss_sample"] for k, m in models.items()}
print(f"{'gap':<16}" + "".join(f"{g:>10.3f}" for g in gaps.values())
      + f"{'< ' + format(gaps['first'], '.2f'):>10}")
print(f"distinct training tokens: {first['train_tokens']:,} (first), "
      f"{log['train_tokens']:,} (this model)")

# %% [markdown]
# Per token, the shipped model meets its target: 3.43 nats against 3.51, 0.58 below the first
# model's 4.01. Per character it is 1.065 against a target of 1.048: 11% below the first model,
# close to the target, not at it; part of the per-token gain comes from the tokenizer, which cuts
# the same text into 4% more, shorter tokens. The gap between training and validation text is half
# the first model's (0.59 against 1.25) and was set by the larger corpus in stage 1 (0.61): the second
# stage lowered the loss on held-out text about as much as on training text. On the held-out
# package files the loss fell from 3.47 after stage 1 to 3.19.

# %% [markdown]
# Greedy completions show what that loss buys: the model has learned much of Python's surface syntax
# (an open parameter list gets closed and followed by a colon and an indented body or a docstring,
# an import by another import), not much meaning: it repeats itself (the same keyword argument
# twice, which Python rejects), invents plausible-looking identifiers, and imports `os` from `os`.

# %%
prompts = ["def get_name(self", "    def __init__(self", "    for i in range(",
           "from os import"]
for prompt in prompts:
    completion = course_lm.complete(model, tokenizer, prompt, max_new_tokens=12)
    print(repr(prompt), "->")
    print("   ", repr(completion))

# %% [markdown]
# ## Attention patterns
#
# Each head of the first layer on a short function. Hover a token to see where it attends; this is
# circuitsvis's own widget {cite}`cooney2023circuitsvis`, rendered from its bundled JavaScript
# (nothing is fetched).

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
for c, v in list(labels.items())[:8]:  # share of tokens carrying each label
    print(f"{c:>20}: {v.mean():.1%}")

# %% [markdown]
# ## What the residual stream encodes: linear probes
#
# Before asking whether single units match these concepts, ask whether the concepts are there at
# all. A linear probe {cite}`alain2016probes` is a logistic regression from the activations at one
# hook point to one concept, fitted on 30,000 tokens of training files and scored by F1 on 15,000
# tokens of held-out files (at most 1,024 tokens from each file, so that the samples span many
# files). High F1 means the concept can be read off that point linearly. The heat
# maps show every concept at every residual-stream, attention-output and MLP hook point, for the
# first course model and for this one; the report was computed when the model was trained
# (`course_utils.probes.probe_report`) and is stored in its training log.

# %% tags=["hide-input"]
shown = list(log["probe"]["f1"]["blocks.1.hook_resid_post"])
probes.plot_probe_report({"first model": first["probe"], "this model": log["probe"]},
                         shown)

# %% [markdown] figure="probe-report"
# Linear-probe F1 for each labelled concept (rows) at each hook point (columns), for the first
# course model (left) and this one (right).

# %% tags=["hide-input"]
last = "blocks.1.hook_resid_post"
print(f"probe F1 at {last}")
print(f"  {'':<14}{'first':>8}{'stage 1':>9}{'this model':>12}")
for c in ["in_string", "in_docstring", "in_comment", "stmt:def", "bracket>=1",
          "indent>=2"]:
    f1 = [m["probe"]["f1"][last][c] for m in (first, stage1, log)]
    print(f"  {c:<14}{f1[0]:>8.2f}{f1[1]:>9.2f}{f1[2]:>12.2f}")

# %% [markdown]
# Read the heat maps of {fig}`probe-report` from left to right. At the embeddings only the token itself is known and the
# probes do poorly; each attention layer lifts every concept, and the second layer's attention output
# (`blocks.1.hook_attn_out`) is where most of them read best: 0.85, 0.82 and 0.82 for the string,
# docstring and comment concepts in this model (0.81, 0.81 and 0.78 in the first). The residual stream right after it (`blocks.1.hook_resid_mid`)
# already reads worse: summed with everything else the stream carries, the concept is less cleanly
# separable. Neither the larger corpus nor the longer training made these concepts more linear
# where the model reads them out: at the last residual stream this model is within 0.04 of the first
# one for these three, and lower for `in_docstring` and `in_comment` (0.71 against 0.74, 0.64
# against 0.67). The targets set for this model (0.9 for `in_comment`, 0.8 for `in_string` and
# `in_docstring`) are not reached. A two-layer transformer could get there in principle: on these
# files the `in_comment` label is exactly "a `#` outside a string earlier on the same line", which
# one attention head can compute. This model, trained only to predict the next token, has not learned
# it as a direction; a probe with one hidden layer at the same point did not recover it either (F1
# 0.73, measured on a checkpoint two thirds of the way through the first stage).

# %% [markdown]
# ### What limits the probes
#
# The second stage did not move the probes: at the last residual stream it is within 0.01 of the
# first stage for the string, docstring and comment concepts (up to 0.02 below it under the second
# protocol below), and short of the targets. Before asking the model for more, ask what a probe can
# be expected to find. The table reads the probe report under two protocols, on the same validation
# tokens, and sets two measurements beside it. *windows* is the report's protocol: each file cut into
# non-overlapping 128-token windows, so a token near a window's start sees little before it.
# *64 before* slides the windows by 64 tokens and scores only tokens that see at least 64 tokens
# before them (`probe_report(..., min_context=64)`). *lexer* is the F1 of `probes.window_lexer`, a
# reader that knows Python's lexical rules (quotes, escapes, `#` to the end of the line; a docstring
# taken as a triple-quoted string that opens its line) and sees only the window. *opened* is the
# share of the concept's tokens whose string, docstring or comment opened before their window, so
# that nothing in the window shows it open.

# %%
k = "probe_min_context64"
ceil0 = log["window_ceiling_min_context0"]
ceil64 = log["window_ceiling_min_context64"]
goal = {"in_string": 0.8, "in_docstring": 0.8, "in_comment": 0.9}
print("probe F1 at the last residual stream, blocks.1.hook_resid_post")
print(f"{'':<15}{'first':>7}{'stage 1':>9}{'this':>7}{'target':>8}"
      f"{'lexer':>7}{'opened':>8}")
for proto, rep, ceil in (("windows", "probe", ceil0), ("64 before", k, ceil64)):
    print(proto)
    for c in goal:
        f1 = [m[rep]["f1"][last][c] if rep in m else None
              for m in (first, stage1 | log["previous"], log)]
        cells = "".join(f"{v:>{w}.2f}" if v is not None else f"{'-':>{w}}"
                        for v, w in zip(f1, (7, 9, 7)))
        print(f"  {c:<13}{cells}{goal[c]:>8.1f}{ceil[c]['lexer_f1']:>7.2f}"
              f"{ceil[c]['opened_before_window']:>8.0%}")
att = "blocks.1.hook_attn_out"
print(f"this model at {att}, 64 before:")
print("  " + "  ".join(f"{c} {log[k]['f1'][att][c]:.2f}" for c in goal))

# %% [markdown]
# For `in_comment` the window is not the limit: the lexer reads it at 0.94 from the window alone,
# and under the second protocol no comment token has its `#` outside the window. The target of 0.9
# is within what a 128-token window allows; the model falls far short of it (0.67 with the sliding
# protocol). For strings and docstrings the window is a real limit: with non-overlapping windows 41%
# of the string tokens and 58% of the docstring tokens lie in a string that opened before their
# window, and with 64 tokens of context still 34% and 49%, because docstrings run long. There only
# the content can tell, and the lexer, which reads such a window inside out, scores far below the
# probes. The model's second-layer attention output carries both: there its probes pass the 0.8
# target under the sliding protocol (last lines of the table), and they fall below it once that
# output is added to the residual stream.

# %%
conf = {"stage 1": log["previous"]["comment_confusion"],
        "this model": log["comment_confusion"]}
print(f"the in_comment probe at {last}")
print(f"{'':<29}{'stage 1':>9}{'this':>7}")
for key in ("in_comment_f1", "false_positives", "fp_in_docstring",
            "fp_in_other_string", "fp_in_code", "false_negatives",
            "comment_or_docstring_f1"):
    a, b = conf["stage 1"][key], conf["this model"][key]
    fmt = ".2f" if isinstance(a, float) else "d"
    print(f"  {key:<27}{a:>9{fmt}}{b:>7{fmt}}")

# %% [markdown]
# Where does the `in_comment` probe go wrong? Most of its false positives are docstring tokens
# (506 of 615 on this model), and a probe for the union, "in a comment or a docstring", reads at
# 0.91 from the same stream. The residual stream carries "this is English, not code" cleanly, and
# hardly *which* kind of English text it is (a distinction that, we suspect, matters little for
# predicting the next token). That is the measured limit, and it is not the window (the lexer gets
# 0.94) and not a lack of training on the same objective (the second stage's 20 million tokens left it
# unchanged).
#
# ### Cannot, or does not?
#
# A two-layer model of this width could fail the targets because it *cannot* keep these concepts
# apart in its last residual stream, or because next-token training gives it no reason to. To tell
# which, `course_utils.probe_objective` fine-tunes six copies of the shipped weights for 600 steps
# (batches of 16 windows; about 300,000 labelled tokens of training files the probes do not use).
# One copy gets the next-token loss alone, as a control. The others add an auxiliary loss: a linear
# head reads the three concepts from `blocks.1.hook_resid_post` and is trained with a logistic loss,
# weighted 0.03, 0.1, 0.3, 0.5 or 1 against the next-token loss. A seventh copy changes the model
# instead of the objective: `probe_objective.deepen` stacks a third block on the shipped two, its
# attention and MLP output weights zero so that it starts as exactly the same function, and it is
# fine-tuned on the next-token loss alone like the control. Afterwards every copy is probed afresh
# under the report's protocol (the deeper one at its own last residual stream,
# `blocks.2.hook_resid_post`), so the head itself is never scored.

# %%
po = json.loads((course_lm.MODEL_DIR / "probe_objective.json").read_text())
rows = {"shipped": po["shipped"]}
for w, r in po["runs"].items():
    rows["next-token only" if w == "0" else f"probe loss x {w}"] = r
print(f"probe F1 at {po['hook']} after {po['steps']} fine-tuning steps")
print(f"{'':<19}" + "".join(f"{c:>14}" for c in po["targets"]) + f"{'val loss':>10}")
for name, r in rows.items():
    print(f"{name:<19}" + "".join(f"{r['probe_f1'][c]:>14.2f}" for c in po["targets"])
          + f"{r['val_loss']:>10.3f}")
print(f"{'target':<19}" + "".join(f"{v:>14.1f}" for v in po["targets"].values()))
print(f"smallest weight that reaches every target: {po['smallest_passing_weight']}")
deep = po["deeper"]
print(f"one more block, next-token only, probed at {deep['hook']}:")
print(f"{'':<19}" + "".join(f"{deep['probe_f1'][c]:>14.2f}" for c in po["targets"])
      + f"{deep['val_loss']:>10.3f}")

# %% [markdown]
# Measured (one run per weight, seed 0; a second invocation of the command gave the same numbers
# to the fourth decimal for the control and weight 1): the probes climb with the weight. At 0.1 only
# the string probe reaches its target (0.80); at 0.3 all three are within 0.05 of theirs (0.88, 0.85,
# 0.86); 0.5 is the smallest weight tried that reaches all three, with 0.91, 0.89 and 0.91 for
# strings, docstrings and comments, and weight 1 gives 0.93, 0.92 and 0.93. The control stays where
# the shipped model is (0.76, 0.71, 0.62). The price in validation loss is small: weights up to 0.1
# cost nothing measurable (3.406 and 3.407 nats per token against 3.408 for the control), 0.5 costs
# 0.012 nats (3.420) and 1 costs 0.026 (3.434). The extra block, trained on next tokens alone,
# changes nothing: 0.76, 0.71 and 0.62 at its last residual stream, the control's numbers, at a
# validation loss of 3.416 (600 steps is a short run for a new block, so this says that depth is not
# a quick fix, not what a three-layer model trained from scratch would reach). So the architecture
# *can* carry these concepts linearly at its last residual stream; next-token prediction alone does
# not make it, and the smallest change found that reaches the targets is a change of objective (an
# auxiliary probe loss of weight 0.5 for 600 steps), not of the model. The course still ships the
# model trained on next tokens only: chapters 4 to 7 judge SAE latents against these very labels,
# and a model trained to encode them would make that test circular.

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

# %% [markdown] figure="neuron-best-f1"
# Each layer-0 MLP neuron's best F1 over the labelled concepts (left) and which concept gives it
# (right).

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
# Five commands rebuild everything this page loaded (the second stage's exact command is in its
# log, `command_current_paths`):
#
# ```bash
# python -m course_utils.package_corpus build    # the snapshot, into ~/.cache/course_utils
# python -m course_utils.course_lm train --corpus python --steps 3500 --checkpoint-dir ckpt \
#     --out course_utils/data/course_lm_stage1
# python -m course_utils.course_lm train --corpus python \
#     --init-from course_utils/data/course_lm_stage1 --steps 5000 --lr 1.5e-3 \
#     --warmup-steps 100 --seed 1 --checkpoint-dir ckpt2 \
#     --previous course_utils/data/course_lm_stage1
# python -m course_utils.course_lm probe --previous course_utils/data/course_lm_stage1 \
#     --min-context 64 --concepts in_string,in_docstring,in_comment
# python -m course_utils.probe_objective --steps 600 --weights 0 0.03 0.1 0.3 0.5 1 \
#     --max-tokens 400000 --n-train 30000 --deeper
# ```
#
# The second trains the tokenizer and the first stage (about 45 minutes on one CPU thread), the third
# the second stage from it (about 50 minutes; the seed and the thread count make both repeatable); each
# runs the probe report and writes the safetensors weights, config and training log; the fourth
# adds the report under the sliding protocol, and the last runs the experiment with an auxiliary
# probe loss and with one more block (about 19 minutes; it keeps the report, not the fine-tuned
# weights). `--previous` also probes the model it names and
# records it beside the new one. With `--checkpoint-dir` it saves a checkpoint every 250 steps; rerun after an
# interruption, it continues from the last one and ends with the same weights, bit for bit, as an
# uninterrupted run (every batch is a function of the seed and the step alone). Online learners can
# also load GPT-2 with `course_lm.load_pretrained("gpt2-small")`; offline that raises an error that
# points back here.
