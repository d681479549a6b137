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

from course_utils import pick, saes, set_seed
from course_utils.plotting import explorer, frames_figure
from course_utils.saes import figures
from course_utils.saes.explorer import explore

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
# Each run below uses the hyperparameters shipped in `saes.SHIPPED` and stops as soon as MMCS reaches
# 0.99 (checked every 50 steps of 1024 examples).


# %%
def train(arch, cap=size["cap"], data=toy, d_sae=size["d_sae"], **overrides):
    kwargs = {**saes.SHIPPED[arch], **overrides}
    sae = saes.make_sae(arch, data.d, d_sae, seed=0, **kwargs)
    log = saes.train_sae(
        sae,
        data,
        saes.TrainConfig(steps=cap, eval_every=50, seed=0),
        stop_when=lambda s: saes.mmcs(s.W_dec, data.features).item() >= 0.99,
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
for arch in ("relu", "topk", "batchtopk", "jumprelu", "gated"):
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
# All five recover the 128 features (MMCS ≥ 0.99) within a few hundred steps. They are *not* equally
# good reconstructions at that moment, and the differences are the reasons the later architectures
# exist.
#
# ## Shrinkage: what L1 costs
#
# An L1 penalty charges for the size of every active latent, so the SAE under-reports each one: the
# reconstruction is pulled towards zero {cite}`wright2024addressing`. The mean ratio
# $\lVert\hat x\rVert/\lVert x\rVert$ shows it. Gated and JumpReLU SAEs penalise *whether* a latent is
# active, not how much, and shrink far less:

# %% tags=["hide-input"]
figures.shrinkage_figure(
    {a: r["ratio"] for a, r in runs.items()}, {a: r["l0"] for a, r in runs.items()}
)

# %% [markdown]
# These runs stop at different L0s (the hover shows each), so the comparison is not at equal L0; the
# tests assert only that ReLU + L1 stays below 0.85 and that Gated and JumpReLU beat it by at least
# 0.1. The TopK family also shrinks less than L1 (it has no penalty on sizes at all); what remains is
# the early stop: these SAEs have found the directions but not yet fitted the magnitudes.
#
# ## Dead latents and AuxK
#
# A latent that stops firing gets no gradient from the reconstruction and stays dead. Gao et al.
# {cite}`gao2024scaling` add AuxK: the top $k_\text{aux}$ *dead* latents must reconstruct the residual
# $x - \hat x$, which gives them a gradient towards what the live latents miss. Below, half the latents
# of a TopK SAE start with a bias of −0.4 (a bad start), with and without AuxK:

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
# ## Matryoshka SAEs and feature hierarchy
#
# A Matryoshka SAE {cite}`bussmann2025matryoshka` must reconstruct from every nested prefix of its
# dictionary (here the first 16 latents alone, then all 128). On the flat toy this is a handicap by
# design: 16 latents cannot hold 128 unrelated features, so the first prefix merges them, and with
# prefixes 128/256 our run (seed 0) reached MMCS 0.986 rather than 0.99 within 3000 steps.
#
# Its purpose shows on a hierarchical toy: 16 *parent* features, each with 4 mutually exclusive
# *children* that occur only with their parent. An SAE can save latents by folding the parent's
# direction into each child's latent ({term}`feature absorption <Feature absorption>`); a small prefix
# that must work alone has to learn the parents.

# %%
hier = saes.hierarchical_toy(
    d=size["d"], n_parents=16, n_children=4, p_parent=0.15, seed=0
)
hier_runs = {}
for arch, kw in (
    ("batchtopk", dict(k=3)),
    ("matryoshka", dict(k=3, prefixes=(16, 128))),
):
    sae = saes.make_sae(arch, hier.d, 128, seed=0, **kw)
    saes.train_sae(sae, hier, saes.TrainConfig(steps=pick(cpu=400, gpu=3000), seed=0))
    best = saes.metrics.max_cosines(sae.W_dec, hier.features)
    hier_runs[arch] = best
    print(f"{arch:<11} parents {best[:16].mean():.3f}  children {best[16:].mean():.3f}")

# %% [markdown]
# On this toy the advantage is **not reproduced**. Parent MMCS after 400 steps, two seeds:
# Matryoshka 0.961 and 0.929, BatchTopK 0.939 and 0.973; after 1000 steps (seed 0) 0.968 against
# 0.955. The seed matters more than the architecture, and neither reaches 0.99 in these budgets.
# The toy is probably too easy for absorption to pay (each child has its own random direction,
# nearly orthogonal to its parent's); a toy where children are small perturbations of the parent
# is the next thing to try.
#
# ## The sparsity–reconstruction frontier
#
# Every run above is one point of L0 against FVU. Sparser codes reconstruct worse; an architecture is
# better if its points lie lower at the same L0. TopK at three values of k traces one curve:

# %%
points = [
    dict(architecture=a, l0=r["l0"], fvu=r["fvu"], label=a) for a, r in runs.items()
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

# %% [markdown]
# And what each of those TopK SAEs recovered: each true feature's best cosine with a decoder row,
# sorted (slide through k):

# %% tags=["hide-input"]
frames_figure(
    lambda k: figures.recovery_figure(
        topk_runs[k].W_dec, toy.features, f"TopK, k = {k}"
    ),
    list(topk_runs),
    "k",
)

# %% [markdown]
# ## Explore
#
# Choose an architecture, a dictionary size and a sparsity level; the explorer trains that SAE on
# the toy for 150 steps (a few seconds on a CPU) and redraws which features it recovered. On the
# website only the architecture slider moves (its frames were computed when the page was built,
# with 256 latents at medium sparsity); in a live notebook all three controls work.

# %% tags=["hide-input"]
def explore_toy(architecture, d_sae, sparsity):
    return explore(toy, architecture, d_sae, sparsity)


explorer(explore_toy,
         dict(architecture=["topk", "batchtopk", "relu", "jumprelu", "gated"],
              d_sae=[128, 256, 512], sparsity=["medium", "dense", "sparse"]),
         static="architecture", value=dict(d_sae=256))

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
# ## Not on this page yet
#
# Group bias adaptation is implemented (`saes.GBASAE`), but its update rule is the course's reading
# of the paper's description, not checked against the authors' code, and on this toy it has not
# reached MMCS 0.99 (0.969 after 1200 steps in our runs: *measured to differ* from the other
# architectures). MMCS against dictionary size and sparsity coefficient as a figure, and SAEs on
# the hidden states of chapter 2's toy models, are still to come.
#
# ## Summary
#
# * On a toy with known features, ReLU + L1, TopK, BatchTopK, JumpReLU and Gated SAEs all recover
#   every feature (MMCS ≥ 0.99) with the shipped hyperparameters; the tests assert it.
# * L1 shrinks reconstructions ($\lVert\hat x\rVert/\lVert x\rVert \approx 0.7$ here); Gated and
#   JumpReLU, which penalise whether a latent fires rather than how much, shrink far less.
# * AuxK gives dead latents a gradient and revives them; BatchTopK lets the number of active latents
#   vary per example. Matryoshka's nested prefixes cost recovery on the flat toy, and its promised
#   advantage on parent features was not reproduced on our hierarchical toy.
# * `course_utils.saes` saves every architecture in SAELens's format, loadable by sae-lens.
#
# **Next:** write the pieces yourself in the exercise notebook (`exercises/ch04_saes.ipynb`): the
# ReLU encoder and loss, the decoder projection, TopK, AuxK, BatchTopK and its threshold, the JumpReLU
# pseudo-gradients, the Gated encoder, the Matryoshka loss, MMCS, FVU, dead fraction and resampling.
