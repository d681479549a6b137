# %% [markdown]
# A layer with $m$ neurons can give $m$ {term}`features <Feature>` a direction each, with no overlap.
# [Chapter 1](../ch01_polysemanticity/index.ipynb) showed neurons that respond to several unrelated things. One explanation is that a network
# represents **more** features than it has dimensions, by giving them directions that are not quite
# orthogonal: {term}`superposition <Superposition>`. This chapter builds the smallest model in which
# that happens, the toy model of Elhage et al. {cite}`elhage2022toy`, and measures when and how it does.
#
# Everything below is a run, sized to finish in seconds on a laptop CPU. On a GPU the same cells run at
# the paper's sizes (the `pick(cpu=..., gpu=...)` calls).

# %% tags=["remove-output"]
import math

import torch

from course_utils import packing, pick, set_seed, tms
from course_utils.plotting import explorer

set_seed(0)
torch.set_num_threads(1)  # tiny models: one thread avoids synchronisation overhead

# %% [markdown]
# ## The toy model
#
# Take $n$ features $x \in \mathbb{R}^n$. Each is zero with probability $S$, the
# {term}`sparsity <Sparsity>`, and otherwise uniform on $[0, 1)$. The model squeezes $x$ into $m < n$ dimensions with
# a matrix $W \in \mathbb{R}^{m \times n}$ and tries to read it back with the same matrix:
#
# $$h = Wx, \qquad x' = \mathrm{ReLU}(W^\top h + b) = \mathrm{ReLU}(W^\top W x + b).$$
#
# Column $W_i$ is the direction feature $i$ gets in the hidden space. Features differ in
# {term}`importance <Importance>` $I_i$, and the loss weights each feature's squared error by it:
# $L = \mathbb{E}_x \sum_i I_i (x_i - x'_i)^2$ (averaged over features in the code).
#
# Without the ReLU this is a linear autoencoder, and the best it can do is keep the $m$ most important
# features and drop the rest. The ReLU changes that: it can throw away small negative "leaks" from
# other features. Whether keeping extra features pays then depends on how often they collide.
#
# **Many models at once.** We want the same model at ten sparsities and several seeds. Instead of ten
# training runs, `course_utils.tms` stores one weight tensor `W: [inst, m, n]` and sums the instances'
# losses: every instance gets the gradient it would get alone, and one AdamW step updates all of them.
# The whole sweep below is a single training run.

# %% [markdown]
# ## From orthogonal features to a pentagon
#
# Five features, two dimensions, importance $0.9^i$, and ten sparsities from dense ($p = 1 - S = 1$)
# to $p = 0.05$, three seeds each. For every sparsity we keep the seed with the lowest loss, all
# seeds scored on the same evaluation samples (scored on separate batches, the noise of the score,
# about ±10%, is as large as the gap between competing geometries): at the sparse end a run
# sometimes settles on four features instead of five.

# %%
sparsity = [1 - 20 ** (-k / 9) for k in range(10)]  # p = 1 - S from 1 down to 1/20
pent = tms.sparsity_sweep(
    n_feat=5, d_hidden=2, sparsity=sparsity, importance_decay=0.9,
    n_seeds=pick(cpu=3, gpu=8), steps=pick(cpu=1_000, gpu=10_000),
    batch_size=pick(cpu=512, gpu=1024), lr=pick(cpu=1e-2, gpu=1e-3), seed=0)
print("features represented (‖W_i‖ > 0.5):", tms.n_represented(pent.W).tolist())

# %% tags=["hide-input"]
show = [0, 2, 4, 6, 9]
titles = [f"1−S = {1 - sparsity[k]:.2f}" for k in show]
fig = tms.plot_features_2d(pent.W[show], titles, importance=pent.importance)
fig.update_layout(margin=dict(t=70), title=dict(
    text="Feature directions W_i (darker = more important)", x=0.02))

# %% [markdown] figure="pentagon-sweep"
# Feature directions $W_i$ of the five features in two hidden dimensions at five of the ten
# densities $1 - S$, from dense (left) to sparse (right); darker arrows are more important features.
# At each density, the seed with the lowest loss.

# %% [markdown]
# Dense features get two orthogonal directions: the two most important ones win and the other three
# are dropped. As features get sparser the model first packs four (two antipodal pairs: a pair on
# one line costs nothing extra, because at most one of its two members is usually present and the
# ReLU removes the negative side), and at the sparse end all five sit at the corners of a regular
# pentagon. The numbers at the sparsest level:

# %%
W_sparse, b_sparse = pent.W[-1:], pent.b[-1]
def rounded(t: torch.Tensor, digits: int = 2) -> list[float]:
    return [round(v, digits) for v in t.tolist()]


print("norms ‖W_i‖:       ", rounded(tms.feature_norms(W_sparse)[0]))
print("biases b_i:        ", rounded(b_sparse))
print("dimensionality D_i:", rounded(tms.feature_dimensionality(W_sparse)[0], 3))
print("D* = m / ‖W‖²_F:   ", round(tms.dimensions_per_feature(W_sparse).item(), 3))
angles = torch.atan2(W_sparse[0, 1], W_sparse[0, 0]).rad2deg().sort().values
gaps = angles.diff().tolist() + [360 + angles[0].item() - angles[-1].item()]
print("angles between neighbours:", [round(v) for v in gaps])

# %% [markdown]
# Each feature gets two fifths of a dimension: the **feature dimensionality** $D_i$ (defined below)
# is $2/5$ for all five, and neighbours sit about $72°$ apart. Two details matter:
#
# * The norms are above 1 (about 1.1) and the biases are negative (about $-0.24$). The model
#   overshoots on purpose: the bias subtracts a constant from every output, which silences small
#   interference, and the longer vectors make up for what the bias takes away from the true feature.
# * A global count, $D^* = m / \lVert W \rVert_F^2$ ("dimensions per feature"), gives about 0.31
#   here, not $0.4$: it is not the mean of the $D_i$. $D^*$ counts squared norm, so with norms near
#   1.13 the Frobenius norm is inflated by $1.13^2 \approx 1.28$ and $0.4 / 1.28 \approx 0.31$. The
#   per-feature $D_i$ divides the norm out, so it is the one that shows the fraction.

# %% [markdown]
# ## Why sparsity makes superposition pay
#
# Put five features in two dimensions and feature $j$ leaks into feature $i$'s output by
# $W_i \cdot W_j \, x_j$. In the pentagon, neighbours have $\cos 72° \approx 0.31$ and the next ones
# $\cos 144° \approx -0.81$. Negative leaks are removed by the ReLU. Positive leaks survive only if they
# beat the bias. The run above tells us when:

# %%
Wp, bp = pent.W[-1], pent.b[-1]  # [2, 5], [5]
gram = Wp.T @ Wp
i = 0
for j in range(1, 5):
    leak = gram[i, j].item()
    head = f"feature {j} → output {i}: leak {leak:+.2f}·x_{j}"
    if leak > 0:
        print(f"{head}; beats the bias {bp[i].item():.2f} only when "
              f"x_{j} > {-bp[i].item() / leak:.2f}")
    else:
        print(f"{head}; negative, the ReLU removes it")

# %% [markdown]
# So a lone active feature is read back almost exactly, and the cost of superposition appears only
# when **two** features are active together. That is the whole trade. Think of radio stations
# sharing a frequency: sharing is harmless when two stations rarely broadcast at the same time. With
# each feature present independently with probability $p$, a given feature is present with probability
# $p$, but it collides with one of the others with probability about $(n-1)p^2$. Representing a feature
# gains something in proportion to $p$; the interference it causes costs something in proportion to
# $p^2$. For small $p$ the gain wins:

# %% tags=["hide-input"]
print("P(two or more of 5 features active | at least one is active)")
for p in (1.0, 0.3, 0.1, 0.05, 0.01):
    one = 5 * p * (1 - p) ** 4
    at_least_one = 1 - (1 - p) ** 5
    print(f"p = {p:<5}: {(at_least_one - one) / at_least_one:.3f}")

# %% [markdown]
# ## Twenty features in five dimensions
#
# With more room the same story plays out in more ways. Here $n = 20$, $m = 5$, importance $0.7^i$.
# The top row shows $W^\top W$ for each sparsity: a diagonal entry is a feature's squared norm, an
# off-diagonal entry is the interference between two features (red positive, blue negative). The bottom
# row shows each feature's norm; the redder the bar, the more of the feature's direction is shared with
# others ($\sum_{j \ne i} (\hat W_i \cdot W_j)^2$ relative to $\lVert W_i\rVert^2$), black means it has a
# direction to itself.

# %%
S20 = [0.0, 0.7, 0.9, 0.97, 0.99, 0.997, 0.999]
sweep20 = tms.sparsity_sweep(
    n_feat=20, d_hidden=5, sparsity=S20, importance_decay=0.7,
    n_seeds=pick(cpu=1, gpu=4), steps=pick(cpu=2_000, gpu=10_000),
    batch_size=pick(cpu=512, gpu=1024), lr=pick(cpu=1e-2, gpu=1e-3), seed=0)
print("sparsity S:          ", S20)
print("features represented:", tms.n_represented(sweep20.W).tolist())

# %% tags=["hide-input"]
fig = tms.plot_wtw(sweep20.W, [f"S = {s}" for s in S20])
fig.update_layout(margin=dict(t=80), title=dict(
    text="WᵀW (top) and feature norms coloured by interference (bottom)", x=0.02))

# %% [markdown] figure="wtw-sweep"
# Twenty features in five dimensions at seven sparsities: $W^\top W$ (top; red positive, blue
# negative) and each feature's norm $\lVert W_i \rVert$, coloured by how much of it is shared with
# other features (bottom; black: a direction to itself).

# %% [markdown]
# Dense: five features, each with its own dimension (an identity block). As $S$ grows the model takes
# on less important features and the off-diagonal entries fill in; by $S = 0.99$ it represents more
# than twice as many features as it has dimensions, nearly all of them in superposition. The least
# important features come last, and at the sparsest levels the count can stall or drop at this
# training length: rare features give rare gradients.

# %% [markdown]
# ## How many nearly orthogonal directions fit?
#
# Superposition needs many directions with small pairwise overlaps. How many fit in $d$ dimensions?
# Exactly orthogonal: $d$. Allowing $|\cos| < \varepsilon$ changes the answer from linear to
# exponential in $d$. For two random unit vectors, $P(|u \cdot v| \ge \varepsilon) \le
# 2 e^{-d\varepsilon^2/2}$; a union bound over all pairs then shows that
# $\lfloor e^{d\varepsilon^2/4} \rfloor$ random vectors have every pairwise $|\cos| < \varepsilon$
# with positive probability, the counting argument behind the Johnson–Lindenstrauss lemma
# {cite}`johnson1984extensions`. That count is a **floor**, an existence guarantee: random sets
# do several times better (below), and it beats the $d$ orthogonal directions only when
# $d\varepsilon^2/4 > \ln d$. In the other direction, no arrangement at all can beat the Welch
# bound {cite}`welch1974lower`: $\max_{i \ne j} |\cos| \ge \sqrt{(N - d) / (d (N - 1))}$.
#
# How large is the largest $|\cos|$ among $N$ random directions? A common rule of thumb is
# $\sqrt{2 \ln N^2 / d}$ (a Gaussian tail over about $N^2/2$ pairs). A better estimate uses the
# exact law of the cosine of two random unit vectors, $(u \cdot v)^2 \sim
# \mathrm{Beta}(\tfrac12, \tfrac{d-1}{2})$, and treats the $N(N-1)/2$ pairs as independent
# (`packing.estimated_max_cosine`). {fig}`max-cosine` and the table compare both with the mean of three
# random draws.

# %%
def max_cos_rows(sizes: list[tuple[int, int]]) -> list[dict[str, float]]:
    return packing.measure_max_cosine(sizes, seeds=(0, 1, 2))


d = 256
counts = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, pick(cpu=8192, gpu=16384)]
rows = max_cos_rows([(d, N) for N in counts])
packing.plot_max_cosine(d, counts, [r["measured"] for r in rows])

# %% [markdown] figure="max-cosine"
# The largest $|\cos|$ between $N$ random unit vectors in $d = 256$ dimensions (mean of three draws)
# against $N$, with the exact-law estimate, the rule of thumb $\sqrt{2 \ln N^2 / d}$ and the Welch
# bound, below which no arrangement of $N$ unit vectors can go.

# %%
rows += max_cos_rows([(768, 4096), (1000, pick(cpu=4000, gpu=10_000))])
print("    d      N  measured (3 seeds)  exact-law estimate  √(2 ln N²/d)   Welch")
for r in rows:
    est, rule = r["estimate"], r["predicted"]
    print(f"{r['d']:>5} {r['N']:>6}  {r['measured']:.3f} ± {r['spread'] / 2:.3f}"
          f"       {est:.3f} ({est / r['measured'] - 1:+.0%})"
          f"    {rule:.3f} ({rule / r['measured'] - 1:+.0%})   {r['welch']:.3f}")
worst = max(abs(r["estimate"] / r["measured"] - 1) for r in rows)
print(f"largest error of the exact-law estimate: {worst:.1%}")

# %% [markdown]
# The exact-law estimate is within about 6% of the measured maxima at every size shown, which is
# about the spread between draws (the ± column is half the range of the three draws). The rule of
# thumb runs 2–20% high, most at small $N$, where the Gaussian approximation of the tail is crude.
#
# How many directions fit at a given $\varepsilon$? The guarantee against what half of all random
# sets of that size achieve (`packing.random_packing_count`, same estimate), in $d = 1000$:

# %%
for eps in (0.1, 0.2, 0.3):
    floor = packing.jl_packing_count(1000, eps)
    rand = packing.random_packing_count(1000, eps)
    beats_d = "beats" if 1000 * eps**2 / 4 > math.log(1000) else "is below"
    print(f"ε = {eps}: guaranteed {floor:.3g}, random sets {rand:.3g} "
          f"({rand / floor:.1f}×); the guarantee {beats_d} d = 1000")

# %% [markdown]
# Random directions are far from the Welch bound, but that alone does not show that better
# arrangements exist: the bound is met only by equiangular tight frames, which exist in
# $\mathbb{R}^d$ for special $(d, N)$ only and never for $N > d(d+1)/2$. Better arrangements do
# exist at these sizes, though. When $d$ is a power of 4, there are $d/2 + 1$ mutually unbiased
# orthonormal bases of $\mathbb{R}^d$ (vectors from different bases have $|\cos| = 1/\sqrt d$)
# {cite}`calderbank1997kerdock`: for $d = 256$, 33,024 directions with $\max |\cos| = 0.0625$,
# against 0.27 for 512 random directions, and close to the Welch bound for that $N$ (0.062).
#
# **What the "exponentially many features" claim does and does not say.** A popular explainer puts
# it as: with polysemantic neurons a layer of $n$ neurons can pack roughly $e^{Cn}$ features, where
# $C$ depends on the overlap allowed {cite}`aisafetyinfo_polysemantic`. As a statement about
# *directions* that is right. The argument above gives $C = \varepsilon^2/4$, which is a lower
# bound on the best constant (random sets already do better, and the exact constant is not known).
# Three things limit what it implies:
#
# 1. The constant is small for useful $\varepsilon$. At $\varepsilon = 0.1$ and $d = 1000$ the
#    guarantee is twelve directions and random sets reach about thirty, both far fewer than the
#    thousand orthogonal ones; the exponential only bites when $d\varepsilon^2/4 > \ln d$, for
#    large $d$ or sloppy overlaps.
# 2. Directions are not features a network can use. Whether packing pays depends on how often
#    features co-occur and how the network suppresses interference: the toy model above stores five
#    features in two dimensions only because they are sparse, and stores two when they are dense.
# 3. It says nothing about *computing* with those features. Reading them out is one thing; building
#    circuits on top of superposed features adds interference at every step, and how far that goes is
#    an open research question. The count is a floor on how many nearly orthogonal directions
#    exist, not evidence that trained networks use that many.

# %% [markdown]
# ## Feature dimensionality
#
# The pentagon gave each feature $2/5$ of a dimension. In general, Elhage et al. measure the share of a
# dimension feature $i$ gets as
#
# $$D_i = \frac{\lVert W_i \rVert^2}{\sum_j (\hat W_i \cdot W_j)^2},$$
#
# its squared norm divided by everything that lands on its direction, itself included. A feature with
# its own direction has $D_i = 1$; an antipodal pair $1/2$ each; a feature not learned $0$. The
# global count $D^* = m / \lVert W \rVert_F^2$ is the number of dimensions per unit of squared
# norm: it equals the mean of the $D_i$ only when every feature has norm 1 and no overlaps (the
# pentagon above: $D^* = 0.31$, every $D_i \approx 0.40$).
#
# Now take many features with equal importance and sweep the sparsity: $n = 100$ features in
# $m = 10$ dimensions, 12 levels, at this size. On a GPU the cell runs $n = 200$, $m = 20$,
# 20 levels and 10,000 steps: the sizes of the feature-geometry experiment in the authors'
# released notebook (read in its code; not checked against the paper's text or figures). The
# notebook keeps the learning rate constant at
# $10^{-3}$; ours decays it on a cosine schedule.

# %%
levels = pick(cpu=12, gpu=20)
S_dim = [1 - 20 ** (-k / (levels - 1)) for k in range(levels)]
geom = tms.sparsity_sweep(
    n_feat=pick(cpu=100, gpu=200), d_hidden=pick(cpu=10, gpu=20), sparsity=S_dim,
    importance_decay=1.0, n_seeds=1, steps=pick(cpu=1_500, gpu=10_000),
    batch_size=pick(cpu=256, gpu=1024), lr=pick(cpu=1e-2, gpu=1e-3), seed=0)
D_star = tms.dimensions_per_feature(geom.W)
print("D* per level:", [round(v, 2) for v in D_star.tolist()])

# %% tags=["hide-input"]
fig = tms.plot_dimensionality(S_dim, tms.feature_dimensionality(geom.W), D_star)
fig.update_layout(title=dict(text="Dimensions per feature as features get sparser",
                             x=0.02))

# %% [markdown] figure="dimensionality"
# Dimensions per feature: each feature's $D_i$ (dots) and $D^*$ (line) against the inverse density
# $1/(1 - S)$, with the fractions 1, 3/4, 2/3, 1/2, 2/5 and 3/8 as dotted guides.

# %% [markdown]
# Dense features get one dimension each ($D^* \approx 1$: the model keeps $m$ features, or spreads
# $m$ dimensions' worth of norm over all of them). Then $D^*$ does not fall smoothly: it sticks near
# $1/2$ over a range of sparsities, where features pair up antipodally, two per dimension, before
# dropping further. In the paper's larger runs the individual $D_i$ cluster on the lines $1$, $3/4$,
# $2/3$, $1/2$, $2/5$, $3/8$: a digon (an antipodal pair, $1/2$), a triangle in a plane ($2/3$), a
# tetrahedron in three dimensions ($3/4$), a pentagon in a plane ($2/5$), a square antiprism in three
# dimensions ($3/8$). The model splits its space into orthogonal subspaces, each holding one of these
# small, highly symmetric arrangements, the kind of configuration the Thomson problem (placing charges
# on a sphere to minimise their repulsion) produces. Only a minority of features sit exactly on those
# lines; many are between arrangements. At this size the plateau at $1/2$ is the clearest of them.

# %% [markdown]
# ## Phase diagrams: when does a feature get superposed?
#
# Which of three things happens to a feature depends on how important it is relative to the others
# and on how sparse all of them are: it is **not learned**, it gets a **dedicated** dimension (pushing
# another feature out), or it is **superposed** with others. Here every point of a grid of relative
# importance $\times$ density is an instance of one batched model (two seeds each, the better one kept),
# for two features in one dimension and three in two. Hover a cell for the trained norm.

# %%
grid = pick(cpu=7, gpu=15)
rel = [10 ** (-1 + 2 * k / (grid - 1)) for k in range(grid)]
dens = [10 ** (-2 * k / (grid - 1)) for k in range(grid)]
steps = pick(cpu=1_000, gpu=10_000)
phase_1d = tms.phase_diagram(2, 1, rel, dens, n_seeds=2, steps=steps, seed=0)
phase_2d = tms.phase_diagram(3, 2, rel, dens, n_seeds=2, steps=steps, seed=0)

# %% tags=["hide-input"]
tms.plot_phase_diagram(phase_1d, "2 features in 1 dimension: what happens to the 2nd?")

# %% [markdown] figure="phase-1d"
# What happens to the second of two features in one dimension, over its relative importance and the
# feature density: not learned, a dedicated dimension, or superposed (hover a cell for its norm).

# %% tags=["hide-input"]
tms.plot_phase_diagram(phase_2d, "3 features in 2 dimensions: what happens to the 3rd?")

# %% [markdown] figure="phase-2d"
# The same for the third of three features in two dimensions.

# %% [markdown]
# With dense features (left edge) there is no superposition: a less important extra feature is not
# learned, a more important one takes a dimension for itself and the other feature is dropped. As the
# density falls, superposition (here an antipodal pair, or a triangle in two dimensions) takes over a
# widening band around equal importance. The boundaries are sharp: a small change of sparsity flips the
# solution, which is why Elhage et al. call them phase changes. The three-feature diagram is noisier at
# this training length, and it has a fourth outcome that the labels fold into *dedicated*: the two
# other features share one dimension antipodally while the third keeps the other.

# %% [markdown]
# ## A privileged basis: when neurons become polysemantic
#
# In the toy model nothing singles out the hidden coordinates: rotate $W$ by any orthogonal matrix and
# the loss is unchanged, so "neuron" means nothing there. Put a ReLU on the hidden layer,
# $h = \mathrm{ReLU}(Wx)$, $x' = \mathrm{ReLU}(W^\top h + b)$, and the coordinates become a
# {term}`privileged basis <Privileged basis>`: each now has its own nonlinearity, and features have a reason to align
# with them. Ten features, five neurons, importance $0.75^i$, seven densities:

# %%
dens_nb = [0.75, 0.35, 0.15, 0.1, 0.06, 0.02, 0.01]
neuron_run = tms.train_toy_model(
    10, 5, torch.tensor(dens_nb).unsqueeze(1), tms.importance_profile(10, 0.75),
    kind="neuron", steps=pick(cpu=1_500, gpu=10_000), batch_size=512,
    lr=pick(cpu=1e-2, gpu=1e-3), seed=0)
per_neuron = tms.features_per_neuron(neuron_run.W)
for dens_k, row in zip(dens_nb, per_neuron.tolist()):
    print(f"density {dens_k:<5}: features with weight > 0.5 on each neuron {row}")

# %% tags=["hide-input"]
show_nb = [0, 3, 6]
titles = [f"density {dens_nb[k]}" for k in show_nb]
fig = tms.plot_neuron_weights(neuron_run.W[show_nb], titles)
fig.update_layout(margin=dict(t=70), title=dict(
    text="Neuron × feature weights W (rows: neurons)", x=0.02))

# %% [markdown] figure="neuron-weights"
# Weights of the model with a ReLU on its five hidden neurons (rows) for ten features (columns) at
# three of the seven densities (red positive, blue negative).

# %% [markdown]
# Dense features: each neuron carries exactly one feature, the five most important ones. The neurons
# are {term}`monosemantic <Monosemantic>`, and the basis is privileged in the strongest sense. As the
# features get sparser the model packs more of them onto each neuron: the same neuron now answers to
# several unrelated features, which is what a {term}`polysemantic <Polysemantic>` neuron in a real
# network looks like. Here we know why: superposition, forced by more sparse features than neurons.

# %% [markdown]
# ## Computing in superposition: absolute values
#
# So far the model only stores features. Can it compute on them while they are superposed? Let each
# feature be uniform on $[-1, 1]$ when present and ask for $|x_i|$: $h = \mathrm{ReLU}(W_1 x)$,
# $y' = \mathrm{ReLU}(W_2 h + b)$. Exactly, $|x| = \mathrm{ReLU}(x) + \mathrm{ReLU}(-x)$: two neurons per
# feature. With twenty features (importance $0.8^i$) and ten neurons, dense inputs allow five features
# computed exactly. What happens as they get sparse?

# %%
S_abs = [0.0, 0.7, 0.9, 0.97]
abs_run = tms.train_toy_model(
    20, 10, torch.tensor([[1 - s] for s in S_abs]), tms.importance_profile(20, 0.8),
    kind="abs", steps=pick(cpu=1_500, gpu=10_000), batch_size=512,
    lr=pick(cpu=1e-2, gpu=1e-3), seed=0)
strong = abs_run.W.abs() > 0.5  # [inst, neuron, feature]: W1 entries that matter
for s_k, st in zip(S_abs, strong):
    print(f"S = {s_k:<4}: {int((st.sum(0) > 0).sum())} features with a neuron; "
          f"neurons per feature 0-11:")
    print("     ", st.sum(0)[:12].tolist())

# %% [markdown]
# Dense, the model spends its ten neurons on five features, about two each (one per sign), and
# ignores the rest. Sparse, it computes $|x|$ for more features than it could with two neurons apiece:
# some features get a single neuron, others share neurons with other features, and the cross-talk
# between features that share a neuron is tolerated because they are rarely active together. Elhage
# et al. study this model at larger size and catalogue recurring arrangements of neurons, among them one
# they call *asymmetric superposition*; our small run shows the more basic fact that computation, not
# only storage, can be superposed.

# %% [markdown]
# ## Correlated and anticorrelated features
#
# Sparsity was independent so far. Real features co-occur, or exclude each other. Take four features in
# two dimensions, grouped into pairs $(0, 1)$ and $(2, 3)$, and train once with pairs that are present
# together (**correlated**) and once with pairs whose members never appear together
# (**anticorrelated**), each feature present with probability 0.1.

# %%
best = {}
for data in ("correlated", "anticorrelated"):  # six seeds as instances; keep the best
    run = tms.train_toy_model(
        4, 2, torch.full((6, 2), 0.1), torch.ones(4), data=data,
        steps=pick(cpu=1_000, gpu=10_000), batch_size=512,
        lr=pick(cpu=1e-2, gpu=1e-3), seed=0)
    best[data] = run.W[run.loss.argmin()].unsqueeze(0)  # [1, 2, 4]
    Wc = best[data][0] / best[data][0].norm(dim=0, keepdim=True)
    cos = Wc.T @ Wc
    print(f"{data:>14}: cos within pair (0,1) {cos[0, 1].item():+.2f}, "
          f"within pair (2,3) {cos[2, 3].item():+.2f}")

# %% tags=["hide-input"]
both = torch.cat([best["correlated"], best["anticorrelated"]])
titles = ["correlated pairs (0,1), (2,3)", "anticorrelated pairs"]
fig = tms.plot_features_2d(both, titles)
fig.update_layout(margin=dict(t=70), height=360, title=dict(
    text="Where correlated and anticorrelated pairs go", x=0.02))

# %% [markdown] figure="correlated-pairs"
# Feature directions of the best of six instances for four features in two dimensions, with
# correlated pairs (left) and anticorrelated pairs (right); each arrow is labelled with its feature.

# %% [markdown]
# Members of a correlated pair are often active together, so any overlap between them would hurt
# often: they take orthogonal directions, and the superposition happens *across* pairs (each feature
# is antipodal to a member of the other pair). Members of an anticorrelated pair are never active
# together, so sharing a line costs nothing: they sit antipodally. Elhage et al. push this further: when
# there is not enough room for every correlated feature, the model stops keeping them separate and
# represents their common direction, something like a principal component of the group, accepting the
# loss of what distinguishes them. A correlated feature set is therefore less likely to be superposed
# and more likely to be merged.

# %% [markdown]
# ## Explore it yourself
#
# In a live notebook (JupyterLab or Colab) the sliders below retrain a small batched model, one
# instance per sparsity value, whenever you change the importance decay, $n$ or $m$ (one to three
# seconds on a 2-core CPU); moving the sparsity slider only switches between the trained instances. On this
# website the figure ({fig}`tms-explorer`) is a static twin: drag the sparsity slider over runs trained when the page was
# built (five features in two dimensions, importance $0.9^i$).

# %% tags=["hide-input"]
explorer(tms.explorer_figure, dict(
    sparsity=list(tms.EXPLORER_SPARSITY), importance_decay=[0.9, 0.95, 1.0],
    n_feat=[5, 8, 12, 20], d_hidden=[2, 3, 5]),
    labels=dict(sparsity="feature sparsity", importance_decay="importance decay",
                n_feat="features n", d_hidden="hidden dimensions m"))

# %% [markdown] figure="tms-explorer"
# The explorer: the geometry a small model learns at one sparsity (feature directions for $m = 2$,
# $W^\top W$ for $m > 2$) and its feature norms coloured by interference. On this website only the
# sparsity slider moves.

# %% [markdown]
# Things to try in a live notebook (on this website the static twin moves the sparsity slider
# only; the other controls need a kernel): with importance decay 1.0 all features are equal and the dense model spreads its
# norm over all of them; with $m = 5$ and $n = 20$ watch the $W^\top W$ matrix go from an identity
# block to a dense pattern.
#
# ## Summary
#
# * A ReLU after a compressing linear map lets a model store more features than dimensions, at the
#   price of interference; the negative bias hides small interference behind the ReLU.
# * Whether that trade pays is set by sparsity: collisions cost in proportion to $p^2$, features gain
#   in proportion to $p$. Dense features get orthogonal directions; sparse ones pairs, triangles,
#   pentagons.
# * Random directions in $d$ dimensions overlap by about $\sqrt{2\ln N^2/d}$: exponentially many fit
#   at a fixed overlap, but with a small constant, and packing directions is not the same as using them.
# * Feature dimensionality makes the geometry measurable: $D_i = 2/5$ in the pentagon, and $D^*$ sticks
#   at $1/2$ as sparsity grows.
# * Superposition is a phase: it appears abruptly as importance and sparsity cross a boundary.
#
# * A ReLU on the hidden layer privileges the neuron basis: dense features get monosemantic neurons,
#   sparse ones share them. Superposition extends to computation (absolute values), and correlation
#   decides whether features are kept apart (correlated: orthogonal) or share a line (anticorrelated).
#
# **Next:** the exercise notebook (link in the box at the top) asks you to write the pieces: the
# forward pass, the three batch generators, the loss, $D_i$, the packing measurements, the phase
# classifier, the privileged-basis model and the absolute-value model. Then
# [chapter 3](../ch03_incidental/index.ipynb), *Incidental polysemanticity*, shows that
# polysemantic neurons can appear even with more neurons than features, where superposition is not
# needed at all.
