# %% [markdown]
# [Chapter 2](../ch02_superposition/index.ipynb) showed networks packing more {term}`features <Feature>`
# than dimensions into their activations. A {term}`sparse autoencoder <Sparse autoencoder>` (SAE) tries to
# undo that packing: it learns an overcomplete dictionary of directions, $W_\text{dec}$, such that each
# activation is a sparse non-negative combination of a few of them. If the features really are sparse
# and the dictionary is large enough, the learned directions should be the features themselves
# {cite}`sharkey2022taking,bricken2023monosemanticity`.
#
# That "should" can be tested only where the true features are known. This chapter therefore trains
# every SAE architecture in common use on a toy with known features, side by side, and measures what
# each recovers. The code lives in `course_utils.saes` (one class per architecture, one training loop);
# the exercises have you write the pieces.

# %% tags=["remove-output"]
import torch

from course_utils import pick, saes, set_seed, tms
from course_utils.plotting import explorer, frames_figure
from course_utils.saes import figures, metrics
from course_utils.saes.explorer import explore
from course_utils.saes.toy import recovery_by_active_count

set_seed(0)
torch.set_num_threads(1)  # small models: one thread is faster on a shared CPU
size = pick(
    cpu=dict(d=64, n_features=128, d_sae=256, cap=1600),
    gpu=dict(d=256, n_features=512, d_sae=1024, cap=6000),
)
toy = saes.sharkey_toy(d=size["d"], n_features=size["n_features"], n_active=5, seed=0)
print(size)

# %% [markdown]
# ## The toy: sparse combinations of known directions
#
# Following Sharkey et al. {cite}`sharkey2022taking`, the toy has `n_features` random unit vectors in
# $\mathbb{R}^d$ (128 in 64 dimensions here; 512 in 256 in the paper and under the GPU switch). Feature
# $i$ is present with probability $p_i \propto 0.99^i$, scaled so that about five are present at once,
# with a coefficient uniform on $[0, 1)$. An activation is $x = \sum_i c_i F_i$: twice as many features
# as dimensions, so no basis of $\mathbb{R}^{64}$ can hold them all, but sparse, so a dictionary can.
#
# The score is the {term}`mean max cosine similarity <MMCS>` (MMCS): for each true feature, the cosine
# of the decoder row closest to it, averaged over features. It is 1 when every feature has a matching
# row. A random dictionary of 256 directions scores about 0.34 here (printed below).

# %%
print(
    f"feature probabilities: {toy.probabilities[0]:.3f} … "
    f"{toy.probabilities[-1]:.3f}, "
    f"mean present {toy.probabilities.sum():.1f}"
)
random_dict = saes.make_sae("relu", toy.d, size["d_sae"], seed=0).W_dec.detach()
print(f"MMCS of a random dictionary: {saes.mmcs(random_dict, toy.features):.3f}")

# %% [markdown]
# ## Every architecture on the same data
#
# Each SAE encodes $f = \sigma((x - b_\text{dec}) W_\text{enc} + b_\text{enc})$ and decodes
# $\hat x = f W_\text{dec} + b_\text{dec}$; they differ in the sparsifying $\sigma$ and the loss:
#
# | architecture | how it is sparse | problem it addresses |
# |---|---|---|
# | ReLU + L1 {cite}`bricken2023monosemanticity` | penalty $\lambda\sum_i f_i$ | the baseline |
# | TopK + AuxK {cite}`gao2024scaling` | keep the $k$ largest | tuning λ; dead latents (AuxK) |
# | BatchTopK {cite}`bussmann2024batchtopk` | keep the $k\cdot B$ largest of a batch | a fixed L0 for every example |
# | JumpReLU {cite}`rajamanoharan2024jumprelu` | learned thresholds, L0 penalty | L1's shrinkage |
# | Gated {cite}`rajamanoharan2024gated` | a gate path decides, a magnitude path sizes | L1's shrinkage |
# | Matryoshka {cite}`bussmann2025matryoshka` | BatchTopK + nested prefixes | absorption of general features |
# | Group bias adaptation {cite}`chen2025taming` | biases steered to target firing rates | no penalty to tune |
#
# Each run below uses the hyperparameters shipped in `saes.SHIPPED` (and, for group bias adaptation,
# the larger learning rate in `saes.SHIPPED_TRAIN`) and stops as soon as MMCS reaches 0.99 (checked
# every 50 steps of 1024 examples).


# %%
def train(arch, cap=size["cap"], data=toy, d_sae=size["d_sae"], stop=True, **overrides):
    """Train with the shipped settings; stop at MMCS 0.99 unless stop=False."""
    kwargs = {**saes.SHIPPED[arch], **overrides}
    if "prefixes" in kwargs:  # Matryoshka's prefixes grow with the dictionary
        kwargs["prefixes"] = tuple(m * d_sae // 256 for m in kwargs["prefixes"])
    sae = saes.make_sae(arch, data.d, d_sae, seed=0, **kwargs)
    log = saes.train_sae(
        sae,
        data,
        saes.shipped_train_config(arch, steps=cap, eval_every=50, seed=0),
        stop_when=(lambda s: saes.mmcs(s.W_dec, data.features).item() >= 0.99)
        if stop
        else None,
    )
    return sae, log


def measure(sae, data=toy):
    x = data.sample(4096, torch.Generator().manual_seed(1))
    with torch.no_grad():
        f = sae.encode(x)
        x_hat = sae.decode(f)
    return dict(
        mmcs=saes.mmcs(sae.W_dec, data.features).item(),
        fvu=saes.fvu(x, x_hat).item(),
        l0=saes.l0(f).item(),
        ratio=saes.norm_ratio(x, x_hat).item(),
        dead=saes.dead_fraction(f).item(),
        freqs=saes.firing_frequencies(f),
    )


runs = {}
for arch in saes.ARCHITECTURES:
    sae, log = train(arch)
    runs[arch] = dict(sae=sae, steps=log.stopped_at or log.steps[-1], **measure(sae))
print(
    f"{'architecture':<12}{'steps':>7}{'MMCS':>8}{'FVU':>8}{'L0':>7}"
    f"{'‖x̂‖/‖x‖':>10}{'dead':>7}"
)
for arch, r in runs.items():
    print(
        f"{arch:<12}{r['steps']:>7}{r['mmcs']:>8.3f}{r['fvu']:>8.3f}{r['l0']:>7.2f}"
        f"{r['ratio']:>10.3f}{r['dead']:>7.2f}"
    )

# %% [markdown]
# All seven recover the 128 features (MMCS ≥ 0.99), within 250 to 1200 steps (the tests assert it
# for each, with a step cap about twice the measured step). They are *not*
# equally good reconstructions at that moment, and the differences are the reasons the later
# architectures exist.
#
# {term}`Group bias adaptation` {cite}`chen2025taming` gets there without any sparsity penalty: its loss is
# the reconstruction alone, and its encoder biases are steered, not trained. Its 256 latents form
# four groups with target firing frequencies from 0.07 down to 0.02 (spanning the toy's feature
# frequencies, 0.069 to 0.019). Every five steps a latent that fired more often than its group's
# target lowers its bias by $\gamma\,r_m$ ($r_m$ its largest recent pre-activation), and a latent
# that never fired raises it by $\gamma$ times its group's mean $r$; biases stay in $[-1, 0]$. We could
# read only the paper's abstract; the rule follows a third-party reimplementation, not the authors'
# code (`course_utils/saes/gba.py` says exactly what is ours).
#
# ## Shrinkage: what L1 costs
#
# An L1 penalty charges for the size of every active latent, so the SAE under-reports each one: the
# reconstruction is pulled towards zero {cite}`wright2024addressing`. The mean ratio
# $\lVert\hat x\rVert/\lVert x\rVert$ shows it. Gated and JumpReLU SAEs penalise *whether* a latent is
# active, not how much, and shrink far less ({fig}`shrinkage`):

# %% tags=["hide-input"]
figures.shrinkage_figure(
    {a: r["ratio"] for a, r in runs.items()}, {a: r["l0"] for a, r in runs.items()}
)

# %% [markdown] figure="shrinkage"
# Mean $\lVert\hat x\rVert/\lVert x\rVert$ on 4096 fresh toy inputs (vertical; the dotted line at 1
# is no shrinkage) for each architecture's shipped run above (horizontal), taken when the run first
# reached MMCS 0.99. The hover gives each run's L0.

# %% [markdown]
# These runs stop at different L0s (the hover in {fig}`shrinkage` shows each), so the comparison is
# not at equal L0; the tests assert only that ReLU + L1 stays below 0.85 and that Gated and JumpReLU
# beat it by at least 0.1. The TopK family also shrinks less than L1 (it has no penalty on sizes at
# all); what remains is the early stop: these SAEs have found the directions but not yet fitted the
# magnitudes.
#
# ## Dead latents and AuxK
#
# A latent that stops firing gets no gradient from the reconstruction and stays dead. Gao et al.
# {cite}`gao2024scaling` add AuxK: the top $k_\text{aux}$ *dead* latents must reconstruct the residual
# $x - \hat x$, which gives them a gradient towards what the live latents miss. Below, half the latents
# of a TopK SAE start with a bias of −0.4 (a bad start), with and without AuxK
# ({fig}`firing-frequencies`):

# %%
dead_runs = {}
for aux in (0.0, 1.0):
    sae = saes.make_sae(
        "topk",
        toy.d,
        size["n_features"],
        seed=0,
        k=5,
        aux_coefficient=aux,
        dead_tokens=5_000,
    )
    with torch.no_grad():
        sae.b_enc[size["n_features"] // 2 :] = -0.4
    saes.train_sae(sae, toy, saes.TrainConfig(steps=300, seed=0))
    dead_runs[f"AuxK α = {aux:g}"] = measure(sae)
for name, r in dead_runs.items():
    print(f"{name}: dead fraction {r['dead']:.3f}, MMCS {r['mmcs']:.3f}")

# %% tags=["hide-input"]
figures.frequency_figure({name: r["freqs"] for name, r in dead_runs.items()})

# %% [markdown] figure="firing-frequencies"
# Histogram of the latents' firing frequencies (horizontal: log10 of the fraction of 4096 fresh
# inputs on which a latent is active; −7 collects the latents that never fired; vertical: number of
# latents) for the two 128-latent TopK SAEs above, half of whose latents started with bias −0.4:
# without AuxK (α = 0) and with it (α = 1), 300 steps each.

# %% [markdown]
# The paper's coefficient is 1/32 on a loss normalised by the residual's variance; on the plain
# squared error used here that was too weak (dead fraction 0.086 in the same run), so the course
# ships α = 1, SAELens's default.
#
# ## BatchTopK: sparsity per batch, not per example
#
# TopK gives every example exactly $k$ latents. BatchTopK keeps the $k\cdot B$ largest activations of
# a whole batch {cite}`bussmann2024batchtopk`, so an example with three features present can use three
# latents and one with eight can use eight. At inference it replaces the batch by one threshold, a
# running average of the smallest activation it kept in training.

# %%
bt = runs["batchtopk"]["sae"]
x = toy.sample(1024, torch.Generator().manual_seed(3))
with torch.no_grad():
    per_example_train = (bt.train().encode(x) != 0).sum(-1).float()
    per_example_eval = (bt.eval().encode(x) != 0).sum(-1).float()
print(
    f"training (batch selection): L0 mean {per_example_train.mean():.2f}, "
    f"range {per_example_train.min():.0f}–{per_example_train.max():.0f}"
)
print(
    f"inference (threshold {bt.threshold.item():.3f}): "
    f"L0 mean {per_example_eval.mean():.2f}"
)

# %% [markdown]
# ## Matryoshka SAEs: nested dictionaries
#
# A {term}`Matryoshka SAE` {cite}`bussmann2025matryoshka` reads its dictionary as nested prefixes
# $m_1 < m_2 < \dots$ and must reconstruct from each prefix alone: the loss is the sum of the
# prefixes' squared errors. Its shipped run above has prefixes 192 and 256: the first prefix is
# larger than the 128 true features, so it can hold them all. With smaller prefixes, the first
# latents *have* to merge features. Here are prefixes 32, 64, 128 and 256 on the flat toy (600 steps),
# and each true feature's best cosine within each prefix ({fig}`prefix-recovery`):

# %%
prefixes = (32, 64, 128, 256)
nested = saes.make_sae("matryoshka", toy.d, 256, seed=0, k=5, prefixes=prefixes)
saes.train_sae(nested, toy, saes.TrainConfig(steps=pick(cpu=600, gpu=3000), seed=0))
W_nested = nested.W_dec.detach()
best_in_prefix = metrics.prefix_max_cosines(W_nested, toy.features, prefixes)
for m, row in zip(prefixes, best_in_prefix):
    print(
        f"first {m:>3} latents: MMCS {row.mean():.3f}, "
        f"32 most frequent {row[:32].mean():.3f}, 64 rarest {row[64:].mean():.3f}"
    )

# %% tags=["hide-input"]
figures.prefix_figure(best_in_prefix, prefixes, toy.probabilities)

# %% [markdown] figure="prefix-recovery"
# The Matryoshka SAE with prefixes 32, 64, 128 and 256 (600 steps on the flat toy): for each true
# feature (horizontal, most frequent first), its best cosine with a decoder row among the first $m$
# latents (vertical), one line per prefix $m$; the dotted line marks 0.99.

# %% [markdown]
# The first 32 latents match the frequent features well and the rare ones poorly: a latent that must
# serve alone is worth most on a feature that is often present, and the rare features end up as
# blends inside it (each of these 32 latents has a cosine above 0.3 with about three features; the
# tests assert the gap between frequent and rare). Even the full dictionary suffers: after 600
# steps it lags well behind the shipped run with prefixes 192 and 256. Merging is the design, not
# a bug: on a flat toy it costs recovery, on data with structure it buys something.
#
# ## Feature hierarchy and absorption
#
# The structure Matryoshka is built for is a hierarchy. The hierarchical toy has 16 *parent*
# features, each with 4 mutually exclusive *children*: a parent is present with probability 0.15,
# and when it is, exactly one of its children is present too, each with its own direction and its
# own coefficient. Children never occur without their parent. An SAE under sparsity pressure can
# then save a latent per example by folding the parent's direction into each child's latent:
# {term}`feature absorption <Feature absorption>` {cite}`chanin2024absorption`. We read absorption off
# the decoder: the cosine between the latent that best matches a child and that child's *parent*.
# An SAE that kept the two apart scores the true child–parent cosine (about 0 for random
# directions); a child latent that absorbed its parent scores much higher.
#
# Both SAEs below have 128 latents and $k = 3$ (fewer than the 4.8 features present on average, so
# there is pressure to merge); the Matryoshka one has a first prefix of 16, one latent per parent.

# %%
hier = saes.hierarchical_toy(
    d=size["d"], n_parents=16, n_children=4, p_parent=0.15, seed=0
)
# the children's own directions as the "dictionary": the no-absorption baseline
true_cos = metrics.child_parent_cosines(
    hier.features[16:], hier.features, hier.parent_of
)
absorption = {"batchtopk": [], "matryoshka": []}
for seed in pick(cpu=(0, 1), gpu=(0, 1, 2, 3)):
    for arch, kw in (
        ("batchtopk", dict(k=3)),
        ("matryoshka", dict(k=3, prefixes=(16, 128))),
    ):
        sae = saes.make_sae(arch, hier.d, 128, seed=seed, **kw)
        saes.train_sae(sae, hier, saes.TrainConfig(steps=800, seed=seed))
        W = sae.W_dec.detach()
        cos = metrics.child_parent_cosines(W, hier.features, hier.parent_of)
        absorption[arch].append(cos.mean().item())
        best = metrics.max_cosines(W, hier.features)
        print(
            f"seed {seed} {arch:<10} child→parent {cos.mean():.3f}, "
            f"MMCS parents {best[:16].mean():.3f}, children {best[16:].mean():.3f}"
        )
print(f"true child–parent cosine (no absorption): {true_cos.mean():.3f}")

# %% tags=["hide-input"]
figures.absorption_figure(absorption, true_cos.mean().item())

# %% [markdown] figure="absorption"
# Absorption on the hierarchical toy (16 parents with 4 children each): for BatchTopK and Matryoshka
# SAEs with 128 latents and $k = 3$ (horizontal), the mean cosine between each child's best-matching
# latent and that child's parent direction (vertical; bars the mean over seeds, black dots single
# seeds). The dotted line is the true child–parent cosine, what a dictionary without absorption
# scores.

# %% [markdown]
# BatchTopK's child latents carry a clear share of their parent's direction ({fig}`absorption`);
# Matryoshka's carry much less. Over seeds 0–3 we measured a mean child→parent cosine of 0.31–0.36
# for BatchTopK against 0.11–0.14 for Matryoshka; the test asserts a gap of at least 0.1 on seed 0.
# This *reproduces* the qualitative claim of Bussmann et al. {cite}`bussmann2025matryoshka` (less
# absorption of children into parents) on our toy; their numbers come from other toys and language
# models and are not compared here. The price is visible too: Matryoshka's parent latents match
# their parents a little less well than BatchTopK's, because the first 16 latents must also stand in
# for the children when the rest of the dictionary is cut off.
#
# ## How big a dictionary, how strong a penalty
#
# Sharkey et al. {cite}`sharkey2022taking` found the true features only in a band of settings. Below,
# ReLU + L1 SAEs trained for 400 steps each, first at λ = 0.3 with dictionaries from 32 to 512
# latents, then with 256 latents and λ from 0.03 to 3. Besides MMCS, each run counts the true
# features it *missed* (no decoder row within cosine 0.9: merged into a blend or lost) and its
# *duplicate* latents (matching rows beyond one per feature: a feature split over several latents).

# %%
def sweep_point(d_sae, lam):
    sae, _ = train(
        "relu", cap=pick(cpu=400, gpu=2000), d_sae=d_sae, stop=False, l1_coefficient=lam
    )
    r = measure(sae)
    alive = r["freqs"] > 0
    counts = metrics.matched_counts(sae.W_dec.detach(), toy.features, alive)
    return dict(r, sae=sae, **counts)


sizes = [n * size["d_sae"] // 256 for n in (32, 64, 128, 256, 512)]
lambdas = [0.03, 0.1, 0.3, 1.0, 3.0]
by_size = {n: sweep_point(n, 0.3) for n in sizes}
by_lambda = {lam: sweep_point(size["d_sae"], lam) for lam in lambdas if lam != 0.3}
by_lambda = dict(sorted({**by_lambda, 0.3: by_size[size["d_sae"]]}.items()))
rows = [(n, 0.3, by_size[n]) for n in sizes]
rows += [(size["d_sae"], lam, r) for lam, r in by_lambda.items() if lam != 0.3]
print(f"{'latents':>8}{'λ':>6}{'MMCS':>7}{'FVU':>7}{'L0':>7}{'missed':>8}{'dupl.':>7}")
for n, lam, r in rows:
    print(
        f"{n:>8}{lam:>6g}{r['mmcs']:>7.3f}{r['fvu']:>7.3f}{r['l0']:>7.1f}"
        f"{r['missed']:>8}{r['duplicates']:>7}"
    )

# %% tags=["hide-input"]
figures.sweep_figure(
    sizes, list(by_size.values()),
    "dictionary size (latents)", "MMCS against dictionary size (ReLU + L1, λ = 0.3)",
)

# %% [markdown] figure="sweep-size"
# ReLU + L1 SAEs (λ = 0.3, 400 steps each) with 32 to 512 latents (horizontal, log scale): MMCS
# (solid, left axis), and on the right axis the true features with no decoder row within cosine 0.9
# (missed) and the matching rows beyond one per feature (duplicates), both dashed.

# %% tags=["hide-input"]
figures.sweep_figure(
    list(by_lambda), list(by_lambda.values()),
    "L1 coefficient λ", "MMCS against the sparsity coefficient (256 latents)",
)

# %% [markdown] figure="sweep-lambda"
# The same measures as {fig}`sweep-size` for ReLU + L1 SAEs with 256 latents and λ from 0.03 to 3
# (horizontal, log scale), 400 steps each.

# %% [markdown]
# Too small a dictionary cannot give every feature its own row ({fig}`sweep-size`): at 32 and 64
# latents most features are missed, because each latent is a blend of several. At 256 and 512 every
# feature is found, and the spare latents start to *duplicate* features (several rows near one
# feature) or sit on no feature at all. The penalty has its own band ({fig}`sweep-lambda`): with λ
# too small the code is dense (L0 near 100) and the decoder rows need not be features at all, so
# MMCS collapses although the reconstruction is good (compare the FVU column); with λ = 1 the code
# is too sparse (L0 below 3, about half the features missed) and at λ = 3 almost nothing fires.
# These runs are short (400 steps), so the duplicates are partly unfinished latents.
#
# ## The sparsity–reconstruction frontier
#
# Every run above is one point of L0 against FVU. Sparser codes reconstruct worse; an architecture is
# better if its points lie lower at the same L0. The λ sweep traces one curve for ReLU + L1, and
# TopK at three values of k traces another ({fig}`frontier`):

# %%
points = [
    dict(architecture=a, l0=r["l0"], fvu=r["fvu"], label=a) for a, r in runs.items()
]
points += [
    dict(architecture="relu (λ sweep)", l0=r["l0"], fvu=r["fvu"], label=f"λ = {lam:g}")
    for lam, r in by_lambda.items()
]
topk_runs = {}
for k in (2, 5, 10):
    sae, _ = train("topk", cap=300, k=k)
    topk_runs[k] = sae
    r = measure(sae)
    points.append(
        dict(architecture="topk (k sweep)", l0=r["l0"], fvu=r["fvu"], label=f"k = {k}")
    )

# %% tags=["hide-input"]
figures.frontier_figure(points)

# %% [markdown] figure="frontier"
# L0 (horizontal, active latents per example) against the fraction of variance unexplained
# (vertical, log scale) on 4096 fresh inputs: one marker per shipped run of {fig}`shrinkage`, the
# ReLU + L1 runs of the λ sweep ({fig}`sweep-lambda`) joined as one curve, and TopK with k = 2, 5
# and 10 (at most 300 steps) as another. The hover names each point.

# %% [markdown]
# And what each of those TopK SAEs recovered: each true feature's best cosine with a decoder row,
# sorted (slide through k, {fig}`topk-recovery`):

# %% tags=["hide-input"]
frames_figure(
    lambda k: figures.recovery_figure(
        topk_runs[k].W_dec, toy.features, f"TopK, k = {k}"
    ),
    list(topk_runs),
    "k",
)

# %% [markdown] figure="topk-recovery"
# For the TopK SAE with the k chosen on the slider (the runs of {fig}`frontier`), each true feature's
# best cosine with a decoder row (vertical), features sorted from best to worst matched
# (horizontal); the dotted line marks 0.99 and the title gives the MMCS.

# %% [markdown]
# ## Back to chapter 2: an SAE on a toy model's hidden states
#
# The flat toy was built for SAEs. [Chapter 2](../ch02_superposition/index.ipynb)'s toy model of
# superposition {cite}`elhage2022toy` was not: it learned to store 5 features in 2 dimensions as a
# pentagon. Its hidden states $h = Wx$ are exactly a toy of this chapter's kind, with the columns
# $W_i$ as the true features, so an SAE can be asked to find them. Below: the chapter 2 model
# (5 features, feature probability 0.05, equal importance, 1000 steps), then TopK SAEs with 10
# latents (twice the number of features) on its hidden states, with $k = 1$ and $k = 2$.

# %%
tms_run = tms.train_toy_model(
    5, 2, torch.full((1, 5), 0.05), torch.ones(5),
    steps=1_000, batch_size=512, lr=1e-2, seed=0,
)
W_tms = tms_run.W[0]  # [2, 5]: column i is feature i's direction
print("feature norms ‖W_i‖:", [round(v, 2) for v in W_tms.norm(dim=0).tolist()])
hidden = saes.ToyData(W_tms.T.contiguous(), torch.full((5,), 0.05))  # h = W x
pentagon = {}
for k in (1, 2):
    sae = saes.make_sae("topk", 2, 10, seed=0, k=k)
    saes.train_sae(sae, hidden, saes.TrainConfig(steps=600, seed=0))
    pentagon[k] = sae
    print(f"TopK k = {k}: MMCS {saes.mmcs(sae.W_dec, hidden.features):.3f}")
    for r in recovery_by_active_count(sae, hidden, max_active=2):
        print(
            f"  {r['n_active']} feature(s) present ({r['share']:.1%} of inputs): "
            f"rel. error {r['rel_error']:.3f}, right features named "
            f"{r['exact_support']:.0%}"
        )

# %% tags=["hide-input"]
h_sample = hidden.sample(2000, torch.Generator().manual_seed(0))
figures.hidden_state_figure(
    h_sample, hidden.features, pentagon[1].W_dec.detach(),
    "Chapter 2's pentagon and the decoder rows of a TopK (k = 1) SAE",
)

# %% [markdown] figure="pentagon"
# The 2-dimensional hidden space of chapter 2's toy model: 2000 sampled hidden states $h = Wx$
# (grey), the model's five feature directions (solid spokes) and the ten decoder rows of the TopK
# SAE with $k = 1$, seed 0 (dotted spokes), all spokes drawn at unit length.

# %% [markdown]
# What an SAE **can** recover here: the five directions. With $k = 1$ the decoder rows sit on the
# pentagon's spokes (MMCS 0.96–1.00 over seeds 0–2; {fig}`pentagon` shows seed 0), and an input with
# one feature present is reconstructed almost exactly and usually attributed to the right feature.
# (With only 5 latents, one per feature, seeds 1 and 2 left spokes unmatched: MMCS 0.82 and 0.57.)
#
# What it **cannot** recover is the *code* once two features are present at once. Five directions in
# a plane are not linearly independent: any point between two spokes is a non-negative combination of
# its two neighbouring spokes, so a sum of two non-neighbouring features has a second, equally sparse
# explanation. With $k = 1$ such inputs cannot be reconstructed (relative error 0.24–0.54 over
# seeds 0–2, against under 0.03 with one feature present). With $k = 2$ the SAE names the right pair
# on only 23–48% of them, and on single-feature inputs it mostly switches on a second, spurious
# latent (the right single feature alone on 15–39%). The ambiguity
# is in the hidden states themselves, not in the training: $h$ alone often does not determine which
# pair of features was present. The chapter 2 model
# copes because it does not need to name the features, only to read each one back through its ReLU
# and bias, tolerating the interference. (A feature the model does not store at all, as happens at
# higher density in chapter 2, is invisible to any SAE on $h$.)
#
# %% [markdown]
# ## Explore
#
# Choose an architecture, a dictionary size and a sparsity level; the explorer trains that SAE on
# the toy for 150 steps (a few seconds on a CPU) and redraws which features it recovered
# ({fig}`sae-explorer`). On the
# website only the architecture slider moves (its frames were computed when the page was built,
# with 256 latents at medium sparsity); in a live notebook all three controls work.

# %% tags=["hide-input"]
def explore_toy(architecture, d_sae, sparsity):
    return explore(toy, architecture, d_sae, sparsity)


explorer(explore_toy,
         dict(architecture=["topk", "batchtopk", "relu", "jumprelu", "gated"],
              d_sae=[128, 256, 512], sparsity=["medium", "dense", "sparse"]),
         static="architecture", value=dict(d_sae=256))

# %% [markdown] figure="sae-explorer"
# The SAE explorer: an SAE of the chosen architecture, dictionary size and sparsity level (k, λ or
# the L0 coefficient at dense, medium or sparse) trained for 150 steps on the toy, and each true
# feature's best cosine with its decoder rows, sorted as in {fig}`topk-recovery`; the title gives
# its L0 and FVU, and the MMCS.

# %% [markdown]
# Things to try (in a live notebook): a dictionary of 128 latents, exactly the number of features,
# leaves little slack and some features go unmatched; "sparse" ReLU + L1 (λ = 1) kills latents and
# merges features; "dense" TopK (k = 10) still finds them, at a higher L0.
#
# ## Saving in SAELens's format
#
# `sae.save(folder)` writes `cfg.json` and `sae_weights.safetensors` as SAELens does, so the
# SAEs trained here load with `sae_lens.SAE.load_from_disk` (the tests check that the encodings agree)
# and SAELens's own SAEs load here with `saes.load_sae`.
#
# ## Summary
#
# * On a toy with known features, all seven architectures (ReLU + L1, TopK, BatchTopK, JumpReLU,
#   Gated, Matryoshka, group bias adaptation) recover every feature (MMCS ≥ 0.99) with the shipped
#   hyperparameters; the tests assert it. Group bias adaptation does it with no sparsity penalty.
# * L1 shrinks reconstructions ($\lVert\hat x\rVert/\lVert x\rVert \approx 0.7$ here); Gated and
#   JumpReLU, which penalise whether a latent fires rather than how much, shrink far less.
# * AuxK gives dead latents a gradient and revives them; BatchTopK lets the number of active latents
#   vary per example.
# * Matryoshka's small prefixes merge rare features on the flat toy by design; on a hierarchical toy
#   its child latents absorb far less of their parents' directions than BatchTopK's (reproduced).
# * Recovery needs a dictionary at least as large as the feature set and a penalty in a band: too
#   small merges features, too large duplicates them; too weak a penalty gives a dense code.
# * On chapter 2's pentagon an SAE finds the five directions but cannot name two features present at
#   once: in two dimensions that code is ambiguous.
# * `course_utils.saes` saves every architecture in SAELens's format, loadable by sae-lens.
#
# **Next:** write the pieces yourself in the exercise notebook (`exercises/ch04_saes.ipynb`): the
# ReLU encoder and loss, the decoder projection, TopK, AuxK, BatchTopK and its threshold, the JumpReLU
# pseudo-gradients, the Gated encoder, the Matryoshka loss, MMCS, FVU, dead fraction and resampling.
# Then part 2, [SAEs on the course model](../ch04b_saes_course_model/index.ipynb), trains these
# architectures on the course language model and measures them there.
