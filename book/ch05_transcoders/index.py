# %% [markdown]
# A {term}`sparse autoencoder <Sparse autoencoder>` explains a *representation*: it writes one
# layer's activation as a sparse sum of dictionary directions. It says nothing about how the next
# layer computes with them; between two SAEs sits the whole dense MLP. A {term}`transcoder <Transcoder>` explains a
# *computation* instead {cite}`dunefsky2024transcoders`: it is trained to read an MLP's input and
# predict the MLP's output through sparse features,
#
# $$\mathrm{MLP}(x) \approx \sum_i a_i(x)\, w^{dec}_i + b^{dec}, \qquad
# a_i(x) = \sigma\!\left(x \cdot w^{enc}_i + b^{enc}_i\right),$$
#
# so that the MLP becomes a sparse sum of features whose connections to each other are fixed
# weights. A *skip transcoder* adds an affine path $x\,W_{skip}$ for the part of the MLP that is
# nearly linear {cite}`paulo2025skip`. With transcoders in place of every MLP, the attention patterns
# and LayerNorm denominators frozen, and an error term for what the transcoders miss, a model becomes
# linear on one prompt, and the path from the input tokens to the next-token prediction can be drawn
# as an {term}`attribution graph <Attribution graph>` {cite}`ameisen2025circuit`.
#
# This chapter does that end to end on the course language model (the two-layer transformer of
# [Appendix A](../appA_course_model/index.ipynb)): transcoders for both MLPs, the local replacement
# model, the graph of one behaviour, and interventions on the real model that test what the graph
# claims. The code is `course_utils.circuits`; the algorithm follows circuit-tracer
# {cite}`hanna2025circuittracer`, reimplemented for this model (its own package pins versions that
# conflict with the course's).

# %% tags=["remove-output"]
import re
import tempfile
from pathlib import Path

import torch

from course_utils import pick, set_seed
from course_utils.circuits import comparison_table, figures, format_comparison
from course_utils.circuits.casestudy import (
    error_share,
    feature_notes,
    measured_logit_change,
    predicted_logit_change,
    supernodes,
)
from course_utils.circuits.explorer import graph_explorer
from course_utils.circuits.export import save_graph_json
from course_utils.circuits.graph import build_graph, graph_scores, prune_graph
from course_utils.circuits.replacement import (
    build_replacement,
    course_transcoders,
    frozen_forward,
)
from course_utils.corpus import load_corpus
from course_utils.course_lm import load_course_lm
from course_utils.plotting import readable_tokens

set_seed(0)
torch.set_num_threads(1)  # a small model: one thread is fastest on a shared CPU
size = pick(cpu=dict(notes_tokens=8192, n_methods=200),
            gpu=dict(notes_tokens=65536, n_methods=1000))
model, tok = load_course_lm()
# one skip TopK transcoder per MLP (1,024 features, k = 16)
tcs = course_transcoders("skip-topk-1024", model)
print(size)
print("transcoders read", [tc.cfg.hook_name for tc in tcs])

# %% [markdown]
# ## Transcoders against SAEs at equal L0
#
# The course ships, for each MLP, a TopK and a JumpReLU transcoder with and without a skip path
# (1,024 features, TopK $k = 16$), and a TopK SAE with the same $k$ trained on the MLP's output. The
# table reads their recorded evaluations on held-out text: the share of the language-modelling loss
# recovered when the MLP's output is replaced by the reconstruction (against zero and mean ablation),
# the fraction of the MLP output's variance left unexplained (FVU), and the features'
# monosemanticity against the ground-truth code labels of chapter 4 (median score, share above 0.5).
# Dunefsky et al. report transcoders on par with SAEs on loss and interpretability
# {cite}`dunefsky2024transcoders` (Pythia-410M; quoted); the rows below are the course model's.

# %%
print(format_comparison(comparison_table()))

# %% [markdown]
# Only the TopK rows are at equal L0 (16); the JumpReLU models settled at other sparsities. At
# that L0, on these recorded runs, the skip transcoder recovers more of the loss than the SAE on
# layer 0 (0.986 against 0.949, zero ablation) and a little less on layer 1 (0.926 against
# 0.940), and its features' share above 0.5 in monosemanticity is close to the SAE's (0.24
# against 0.25 on layer 0, 0.17 against 0.13 on layer 1): on par, as Dunefsky et al. found for
# plain transcoders, with the skip path helping the loss on layer 0 as Paulo et al. report. The
# plain TopK transcoders lose more than the SAEs here, a little on layer 0 (0.944 against 0.949)
# and 0.04 on layer 1 (0.900 against 0.940).

# %% [markdown]
# ## A connection factorises into activation × fixed weight
#
# Take a feature $i$ of the layer-0 transcoder and a feature $j$ of the layer-1 transcoder. Along the
# residual stream, feature $i$ adds $a_i\, w^{dec}_i$ at its position; feature $j$ reads its
# position's normalised residual with $w^{enc}_j$. LayerNorm first subtracts the mean over
# dimensions and divides by a scale $s$, so the direct contribution is
#
# $$a_i \cdot \frac{1}{s} \cdot \underbrace{\bar w^{dec}_i \cdot w^{enc}_j}_{\text{input-invariant}},$$
#
# with $\bar w^{dec}_i$ the mean-centred decoder row. The input decides only $a_i$ and $s$; the
# *virtual weight* $\bar w^{dec}_i \cdot w^{enc}_j$ is the same on every prompt
# {cite}`dunefsky2024transcoders`. (Attention adds a second, pattern-dependent path between
# positions; the graph of {fig}`self-graph` includes it.) The strongest virtual weights of the course
# transcoders:

# %%
W_dec0 = tcs[0].W_dec.detach()
W_dec0 = W_dec0 - W_dec0.mean(1, keepdim=True)  # LayerNorm removes the mean
virtual = W_dec0 @ tcs[1].W_enc.detach()  # [1024 layer-0, 1024 layer-1 features]
top = virtual.abs().flatten().topk(8)
print(" layer-0 f -> layer-1 f   weight")
for v, k in zip(top.values, top.indices.tolist()):
    i, j = divmod(k, virtual.shape[1])
    print(f"{i:>10} -> {j:<10} {float(virtual[i, j]):+8.3f}")

# %% tags=["hide-input"]
rows = virtual.abs().max(1).values.topk(12).indices
cols = virtual[rows].abs().max(0).values.topk(12).indices
fig = figures.connections_figure(virtual[rows][:, cols], [f"L0 {int(i)}" for i in rows],
                                 [f"L1 {int(j)}" for j in cols],
                                 title="The strongest fixed connections")
fig

# %% [markdown] figure="fixed-connections"
# Virtual weights $\bar w^{dec}_i \cdot w^{enc}_j$ of the course's skip TopK transcoders
# (`skip-topk-1024`, 1,024 features per layer, k = 16): rows are the 12 layer-0 features with the
# largest |weight| to any layer-1 feature, columns the 12 layer-1 features most strongly connected
# to those rows. Red is positive, blue negative, white zero (colour bar: W_dec · W_enc, symmetric
# about zero).

# %% [markdown]
# ## The behaviour: `self` after `def name(` in a class
#
# A graph is worth drawing only for something the model does reliably. The course model completes
# a method header with `self`: over the first methods of the validation files (each prompt is up
# to 100 tokens of text ending in `def name(`), it is the top prediction almost every time:

# %%
self_id = tok.encode("self").ids[0]
prompts = []
for f in load_corpus("validation"):
    for m in re.finditer(r"\n    def \w+\(self", f.text):
        prompts.append(f.text[max(0, m.start() - 200):m.end() - 4])
prompts = prompts[: size["n_methods"]]
hits, p_self = 0, 0.0
with torch.no_grad():
    for p in prompts:
        probs = model(torch.tensor([tok.encode(p).ids[-100:]]))[0, -1].softmax(-1)
        hits += int(probs.argmax() == self_id)
        p_self += float(probs[self_id]) / len(prompts)
print(f"{len(prompts)} methods: 'self' is the top prediction in "
      f"{hits / len(prompts):.0%},"
      f" mean p(self) = {p_self:.2f}")

# %% [markdown]
# ## The local replacement model is exact on its prompt
#
# For one prompt, `build_replacement` runs the model once and freezes what is not linear: every
# attention pattern, every LayerNorm scale, and each transcoder's feature activations; it keeps
# each layer's error, what the transcoder misses, as a constant. Run with these frozen pieces, the
# replacement reproduces the model's logits to float precision:

# %%
prompt = ("class Stack:\n    def __init__(self):\n        self.items = []\n\n"
          "    def push(")
rep = build_replacement(model, tcs, prompt, tok)
with torch.no_grad():
    _, logits = frozen_forward(model, rep)
    real = model(rep.tokens[None])[0]
gap = float((logits[0] - real).abs().max())
print(f"{rep.n_tokens} tokens; max |Δlogit| = {gap:.1e}")
err = [float(e.norm(dim=-1).mean() / y.norm(dim=-1).mean())
       for e, y in zip(rep.errors, rep.mlp_out)]
print("mean ‖error‖ / ‖MLP output‖ per layer:", [round(v, 3) for v in err])

# %% [markdown]
# ## The attribution graph
#
# `build_graph` makes a node of every active feature (16 per layer and position), one error node
# per layer and position, one node per input token (its token and positional embedding) and one per
# likely next token. The edge $A_{t,s}$ is the direct effect of source $s$ on target $t$ in the
# frozen model: one backward pass from the target's input direction (a feature's encoder column,
# or a logit's mean-centred unembedding), read at the source and multiplied by what the source
# writes ($a_s w^{dec}_s$ for a feature). The tests in `tests/circuits` check every kind of edge by
# intervention: removing a source in the frozen model changes each target by exactly $-A_{t,s}$.
#
# Pruning follows circuit-tracer: with $|A|$ row-normalised, a node's influence on the output is
# $w\,((I - A)^{-1} - I)$, $w$ the logit probabilities; nodes are kept in order of influence until
# 80% of the total, then edges until 98%, and nodes left without edges are dropped.

# %%
graph = build_graph(model, tcs, prompt, tok)
pruned = prune_graph(graph, node_threshold=0.8, edge_threshold=0.98)
tokens = [tok.id_to_token(t) for t in graph.tokens.tolist()]  # byte-level BPE strings
shown = readable_tokens(tokens)  # ␣ for a space, ↵ for a newline
names = [tok.decode([t]) for t in graph.logit_tokens.tolist()]
print(f"{graph.n_nodes} nodes, {int((graph.adjacency != 0).sum())} edges; kept "
      f"{int(pruned.node_mask.sum())} nodes, {int(pruned.edge_mask.sum())} edges")
print("logit nodes:", [(n, round(float(p), 2))
                       for n, p in zip(names, graph.logit_probs)])

# %% [markdown]
# To read the nodes, `feature_notes` runs both transcoders over validation text and records each
# feature's three strongest contexts and its best concept among chapter 4's ground-truth labels
# (with its monosemanticity score). Hover over a node to see them; the bracketed token is where the
# feature fires.

# %% tags=["hide-input"]
notes = feature_notes(model, tok, tcs, n_tokens=size["notes_tokens"])
kept = pruned.node_mask.nonzero()[:, 0].tolist()
groups = supernodes(graph, kept, notes)  # features by best concept (next section)
fig = figures.graph_figure(graph, pruned, tokens, names, notes, groups=groups,
                           title="The pruned graph of 'self'")
fig

# %% [markdown] figure="self-graph"
# The pruned attribution graph of the `Stack` prompt ending in `def push(` (node threshold
# 0.8, edge threshold 0.98). Horizontal: token position (␣ a space, ↵ a newline); vertical: input
# tokens, layer 0, layer 1 and the candidate next tokens. Circles are transcoder features (coloured
# by supernode for the six largest groups, dark grey otherwise), grey crosses error nodes, green
# squares token nodes and purple diamonds logit nodes; a node's size grows with its influence.
# Lines are the 300 strongest kept edges, red positive and blue negative, thicker for a larger
# |weight|. Hover over a feature for its activation, best concept and top contexts.

# %% [markdown]
# ### Supernodes
#
# Features that respond to the same concept play one role. Grouped by their best concept (score at
# least 0.2), the kept feature nodes form these supernodes (coloured in {fig}`self-graph`), with their
# summed influence:

# %%
for name, members in list(groups.items())[:8]:
    where = sorted({shown[int(graph.features[i, 1])] for i in members})
    print(f"{name[:28]:<28} {len(members):>3} features, influence "
          f"{float(pruned.influence[members].sum()):.3f}, at {where[:4]}")

# %% [markdown]
# The nodes with the largest influence on the `self` logit, features, errors and tokens alike:

# %%
for i in sorted(kept, key=lambda i: -float(pruned.influence[i]))[:10]:
    label = figures.node_label(graph, i, shown).split(", act")[0]
    print(f"{float(pruned.influence[i]):.3f}  {label}")

# %% [markdown]
# ## The hypothesis, tested on the real model
#
# Read together, {fig}`self-graph` and the list suggest a hypothesis: the prediction is made at the last
# position, from the `(` token itself and from `def` a few tokens back (moved there by attention),
# partly directly and partly through a handful of features of both layers that fire on that `(`;
# the earlier `self` tokens of the class contribute less. If the features carry
# the prediction, removing them from the real model (attention and LayerNorm live, later features
# free to change) should move the `self` logit as the graph predicts. For each supernode and for the most influential single features,
# {fig}`self-interventions` compares two predictions with the measurement: the direct edges to the logit, and the
# linear total through all paths, $-((I - A)^{-1} - I)_{\text{logit}, S}$ summed over the removed
# set $S$.

# %%
feat_kept = [i for i in kept if graph.kind(i) == "feature"]
by_infl = sorted(feat_kept, key=lambda i: -float(pruned.influence[i]))
tests = {f"top {k}": by_infl[:k] for k in (1, 3, 10)}
tests |= {name[:14]: members for name, members in list(groups.items())[:3]}
labels, direct, total, measured = [], [], [], []
for name, members in tests.items():
    d, t = predicted_logit_change(graph, members)
    labels.append(name)
    direct.append(d)
    total.append(t)
    measured.append(measured_logit_change(model, graph, members))
print(f"{'ablated':<16} {'direct':>7} {'linear':>7} {'measured':>8} {'ratio':>6}")
for name, d, t, m in zip(labels, direct, total, measured):
    print(f"{name:<16} {d:>7.2f} {t:>7.2f} {m:>8.2f} {m / d:>6.2f}")

# %% tags=["hide-input"]
fig = figures.intervention_figure(labels, direct, total, measured,
                                  title="Predicted and measured change")
fig

# %% [markdown] figure="self-interventions"
# For each ablated set of features of {fig}`self-graph` (horizontal: the 1, 3 and 10 most
# influential kept features and the three largest supernodes), the change of the centred `self`
# logit predicted from the direct edges, predicted linearly through all paths of the graph, and
# measured by ablating the features in the real model (vertical).

# %% [markdown]
# The last column, measured divided by the direct prediction, is the test. For the most influential features the measured change has the
# predicted sign and a large part of the predicted size, so the graph's account holds up on the
# real model for them. Where the measurement falls short of the prediction, or has the other sign
# (as for some of the small concept groups), the effect was absorbed by what the replacement model
# froze: other features switching on, attention re-routing, LayerNorm rescaling. A graph is a
# hypothesis about one prompt, and only interventions like these turn parts of it into findings.

# %% [markdown]
# ## Explore other prompts
#
# Type a prompt (at most the model's 128 tokens), optionally a target token, and move the
# thresholds; the graph is rebuilt in a couple of seconds. On the website {fig}`graph-explorer` offers four
# precomputed prompts at the default thresholds.

# %% tags=["hide-input"]
examples = [prompt, "x = len(items", "y = data[key", "name = 'abc"]
graph_explorer(model, tcs, tok, examples, notes)

# %% [markdown] figure="graph-explorer"
# The graph explorer: the pruned attribution graph of a prompt, drawn as in {fig}`self-graph`
# but without supernode colours. In a live notebook a prompt box, a target token and the node and
# edge thresholds; on the website a menu over four graphs precomputed at thresholds 0.8 / 0.98:
# the case-study prompt, `x = len(items`, `y = data[key` and `name = 'abc`.

# %% [markdown]
# Things to try (the thresholds and the target need a live notebook; the website's twin switches
# between prompts only): lower the node threshold to 0.5 and see which nodes carry the first half of
# the influence; set the target to `x` in the method prompt to ask why the model did *not* predict
# it; compare the bracket-closing prompts with `self`.

# %% [markdown]
# ## What the graph misses
#
# Two things bound every story read from these graphs. First, the error nodes: what the transcoders
# do not reconstruct enters the graph as opaque nodes. The *replacement score* is the share of the
# influence that reaches the logits from tokens rather than error nodes, the *completeness score*
# the influence-weighted share of every node's input that is not error (both as circuit-tracer
# computes them). Second, attention: patterns are frozen, so the graph says which values attention
# moved, not why it attended there (the query-key computation is not explained at all). On the
# case-study prompt and the explorer's other prompts:

# %%
rep_score, comp_score = graph_scores(graph)
print(f"replacement score {rep_score:.3f}, completeness {comp_score:.3f}")
print(f"error nodes carry {error_share(graph):.1%} of the influence")
for p in examples[1:]:  # the explorer's other prompts
    g = build_graph(model, tcs, p, tok)
    r, c = graph_scores(g)
    e = error_share(g)
    print(f"{p!r:<18} replacement {r:.3f}, completeness {c:.3f}, error {e:.1%}")

# %% [markdown]
# On these short prompts the error nodes carry a few percent of the influence, so the graphs are
# mostly made of features. The share is the number to check on any new prompt before reading a
# story into its graph.

# %% [markdown]
# The graph also exports to circuit-tracer's graph JSON (schema version 1), the file its own graph
# viewer reads {cite}`hanna2025circuittracer`; only the kept nodes and edges are written:

# %%
with tempfile.TemporaryDirectory() as folder:
    path = save_graph_json(graph, Path(folder) / "self.json", tokenizer=tok,
                           slug="course-self", prompt=prompt)
    print(f"{path.name}: {path.stat().st_size // 1024} KiB")

# %% [markdown]
# ## Summary
#
# * A transcoder rewrites an MLP as a sparse sum of features; a skip transcoder adds an affine path.
#   The table above compares them with SAEs on the same MLPs of the course model at the same L0.
# * A connection between features of two transcoders factorises into the source's activation, the
#   reading position's LayerNorm scale, and a fixed virtual weight $\bar w^{dec}_i \cdot w^{enc}_j$.
# * With attention patterns, LayerNorm scales and feature activations frozen and error nodes added,
#   the replacement model reproduces the logits exactly, and edges are direct effects computed with
#   one backward pass per target.
# * The course model predicts `self` after `def name(` in a class in almost every case; its pruned
#   graph names the features and tokens that carry the prediction, and ablating them on the real
#   model tests the graph's linear predictions.
# * Error nodes and frozen attention are the graph's blind spots: its story is only as complete as
#   its completeness score, and says nothing about why attention looked where it did.
#
# **Next:** the exercise notebook (link in the box at the top) has you write the pieces used on
# this page, from the transcoder's loss to the ablation hook.
# [Chapter 6](../ch06_parameter_decomposition/index.ipynb) decomposes the weights themselves
# instead of the activations.
