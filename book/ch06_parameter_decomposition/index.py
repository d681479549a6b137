# %% [markdown]
# A {term}`sparse autoencoder <Sparse autoencoder>` finds directions in a layer's activations that
# behave like features: it says *what* the layer represents. It does not say *how* the network
# computes its output from them; the weights that do the computing are left as one dense matrix per
# layer. {term}`Parameter decomposition <Parameter decomposition>` works on the weights instead. It
# writes each weight matrix as a sum of pieces meant to be one mechanism each, chosen so that
# {cite}`braun2025apd`:
#
# * **faithfulness**: the pieces add up to the network's weights;
# * **minimality**: on any input, only a few pieces are needed to produce the output; the others
#   can be removed without changing it;
# * **simplicity**: each piece is as simple as possible (low rank, few layers).
#
# This chapter builds the newer of the two methods, Stochastic Parameter Decomposition (SPD)
# {cite}`bushnaq2025spd`, trains it live on the toy model of superposition from
# [chapter 2](../ch02_superposition/index.ipynb), and measures it against the paper's Table 1. Then
# it runs the earlier method (APD) on the same model, looks at the residual-MLP model whose
# decomposition is disputed, and puts an SAE next to SPD.
#
# Every run below is sized for a laptop CPU; on a GPU the `pick(cpu=..., gpu=...)` switch runs the
# authors' sizes.

# %% tags=["remove-output"]
import torch

from course_utils import pick, set_seed
from course_utils.decomposition import (
    causal_importances,
    configs,
    figures,
    mmcs_ml2r,
    n_alive,
    one_hot_causal_importances,
    train_spd,
    train_tms_target,
)

set_seed(0)
torch.set_num_threads(1)  # tiny models: one thread avoids synchronisation overhead

# %% [markdown]
# ## The target: five features in two dimensions
#
# The target is chapter 2's toy model $\hat x = \mathrm{ReLU}(W^\top W x + b)$ with five features
# in two hidden dimensions ("TMS 5-2"), each feature present with probability 0.05. The authors
# load theirs from a tracking service; here chapter 2's batched trainer trains it in a few seconds.
# At this sparsity it stores all five features as a pentagon: five columns of equal norm, 72°
# apart, and a negative bias that hides the interference behind the ReLU.

# %%
exp = configs.experiment("tms_5_2")
target = train_tms_target(**exp.target)
norms = target.W.norm(dim=0)
print("column norms ‖W_i‖:", [round(v, 2) for v in norms.tolist()])
print("bias b:           ", [round(v, 2) for v in target.b.tolist()])

# %% [markdown]
# The ground truth is known: there is one mechanism per feature, and in $W$ it is the column $W_i$
# (a rank-one matrix $W_i e_i^\top$). A good decomposition of $W$ should find exactly these five.
#
# ## SPD in five lines
#
# SPD writes each weight matrix $W \in \mathbb{R}^{d_\text{out} \times d_\text{in}}$ as $C$ rank-one
# {term}`subcomponents <Subcomponent>`, $W \approx \sum_c U_c^\top V_c^\top$, and learns for each
# subcomponent a tiny MLP that predicts its {term}`causal importance <Causal importance>`
# $g_c(x) \in [0, 1]$ from its inner activation $h_c = V_c \cdot a$ {cite}`bushnaq2025spd`:
#
# 1. $g_c(x) = \sigma_H(\gamma_c(h_c(x)))$, with leaky hard sigmoids (slope 0.01 outside $[0, 1]$);
# 2. masks $m_c = g_c + (1 - g_c)\, r_c$ with $r_c \sim \mathcal{U}(0, 1)$: a subcomponent with
#    $g_c = 0$ may be scaled by anything in $[0, 1]$;
# 3. $\mathcal{L}_\text{stochastic-recon}$: the model with every layer masked must reproduce the
#    target's output; $\mathcal{L}_\text{stochastic-recon-layerwise}$: the same with one layer
#    masked at a time;
# 4. $\mathcal{L}_\text{importance-minimality} = \sum_{l,c} |g^l_c(x)|^p$ pushes the importances
#    down, so that each input uses as few subcomponents as possible;
# 5. faithfulness: $\sum_c U_c^\top V_c^\top$ must equal $W$.
#
# The exercises build each piece. Two choices follow the authors' code rather than the paper's
# text: the **delta component** (the masked forward passes add $W - \sum_c U_c^\top V_c^\top$ with
# its own random mask, in place of the faithfulness loss) with a 200-step faithfulness warm-up,
# and **tying**: the toy model uses $W$ twice ($x \to Wx$, $h \to W^\top h$), and the two
# decompositions share one set of numbers, $(V, U)$ for $W$ and $(U^\top, V^\top)$ for $W^\top$.
#
# The CPU run differs from the paper in size: batch 1024 for 3k steps (the paper: 4096 for 40k),
# C = 20 per matrix as in the paper, and importance coefficient β = 1e-2 instead of 3e-3. At this
# small budget β = 3e-3 split a feature over two subcomponents on 2 of the 4 seeds we tried;
# β = 1e-2 split none of 3 (the GPU switch restores the authors' β and sizes).

# %%
snap = pick(cpu=250, gpu=1000)
for seed in range(4):  # the page's acceptance test; each run also prints its numbers
    res = train_spd(target, exp.spd, seed=seed, snapshot_every=snap)
    V, U = res.factors("linear1")
    mmcs, ml2r = (t.item() for t in mmcs_ml2r(target.W, V, U))
    probe = target.sample(4096, torch.Generator().manual_seed(99))
    alive = {k: n_alive(g) for k, g in causal_importances(res.model, probe).items()}
    print(f"seed {seed}: MMCS {mmcs:.3f}  ML2R {ml2r:.3f}  alive {alive}",
          f"({res.seconds:.0f} s)")
    if min(alive.values()) == 5 and ml2r >= 0.95:
        break

# %% [markdown]
# How close is that to the paper? **MMCS** (mean max cosine similarity) asks, for each feature $j$,
# whether some subcomponent's column $V_{j,c} U_c$ points along $W_{:,j}$; **ML2R** (mean L2 ratio)
# compares that column's length with $W_{:,j}$'s. Both are computed exactly as the authors' code
# does (exercise 6.7).

# %%
print(f"{'':18}{'MMCS':>8}{'ML2R':>8}")
print(f"{'paper, SPD':18}{1.000:8.3f}{0.993:8.3f}")
print(f"{'paper, APD':18}{0.998:8.3f}{0.893:8.3f}")
print(f"{'this run, SPD':18}{mmcs:8.3f}{ml2r:8.3f}")

# %% [markdown]
# MMCS is **reproduced** (1.000). ML2R lands within the tests' tolerance of ±0.02 around the paper's
# 0.993 but **measured to differ** slightly: on seeds 0, 1 and 2 it came out 1.006, 1.007 and
# 1.008, i.e. our subcomponents are about 1.4% *longer* than the paper's, not shorter. The delta
# component lets the subcomponents' sum drift from $W$ a little; the paper's own number comes from
# longer runs.
#
# Scrub through training to watch the decomposition form ({fig}`spd-training`). At step 0 every
# subcomponent is a random mixture; by the end, five of them each carry exactly one feature's arrow
# and the remaining fifteen have shrunk to nothing.

# %% tags=["hide-input"]
figures.subcomponent_frames(target.W, res.snapshots)

# %% [markdown] figure="spd-training"
# SPD on TMS 5-2 during training, one frame per snapshot (the slider: training step) of the last
# run above. First panel: the target's five columns $W_{:,i}$ in the 2-d hidden space, one colour
# per feature; the other panels: the six subcomponents of $W$ with the largest norm, each drawn by
# its five columns $V_{j,c} U_c$ in the same colours (axes: hidden dimensions 0 and 1).

# %% [markdown]
# Causal importance is what makes the decomposition *minimal*: for an input with only feature $i$
# active ($x = 0.75\, e_i$), only feature $i$'s subcomponent should be needed, in both layers
# ({fig}`tms-causal-importance`).

# %% tags=["hide-input"]
figures.plot_causal_importance(one_hot_causal_importances(res.model),
                               title="Causal importance on one-hot inputs x = 0.75·e_i")

# %% [markdown] figure="tms-causal-importance"
# Causal importance $g_c(x)$ of the SPD run above on the five one-hot inputs $x = 0.75\, e_i$
# (rows), for each subcomponent (columns, sorted by the input they respond to most, alive ones
# first), in $W$ (left, `linear1`) and $W^\top$ (right, `linear2`). White is 0, dark blue 1
# (colour bar: $g$).

# %% [markdown]
# ## A diagnostic: features split over co-active subcomponents
#
# MMCS alone can look perfect on a failed decomposition. If feature $i$'s mechanism is split into
# two subcomponents that always switch on together, each points along $W_{:,i}$ (MMCS ≈ 1) but
# each carries only part of its length, so ML2R drops. Minimality is what should prevent this: two
# co-active subcomponents pay the importance penalty twice. Make the penalty ten times weaker
# (β = 1e-3) and it stops paying to merge them:

# %%
split = train_spd(target, exp.spd, beta=1e-3, seed=0)
Vs, Us = split.factors("linear1")
mm_s, ml_s = (t.item() for t in mmcs_ml2r(target.W, Vs, Us))
alive_s = {k: n_alive(g) for k, g in causal_importances(split.model, probe).items()}
print(f"β = 1e-3: MMCS {mm_s:.3f}  ML2R {ml_s:.3f}  alive {alive_s}")

# %% tags=["hide-input"]
figures.plot_subcomponents_2d(
    target.W, Vs, Us, n_show=7,
    title="β = 1e-3: some features are split over two subcomponents")

# %% [markdown] figure="split-features"
# The run with a ten times weaker importance penalty (β = 1e-3, seed 0), drawn as in
# {fig}`spd-training` at the end of training: the target's columns, then the seven subcomponents
# with the largest norm, each panel titled with the subcomponent's norm.

# %% [markdown]
# More than five subcomponents stay alive (seven and six in the run we measured, ML2R 0.76), and
# a split feature's arrow can appear in two panels of {fig}`split-features`, each shorter than the target's. The same signature (ML2R 0.41 to 0.79 with MMCS ≥ 0.99) appeared with the
# paper's β = 3e-3 on two of four seeds at our short CPU budget. So read MMCS and ML2R together,
# and count the alive subcomponents: for TMS 5-2 the answer must be five per matrix.

# %% [markdown]
# ## APD on the same model
#
# SPD's predecessor, Attribution-based Parameter Decomposition (APD) {cite}`braun2025apd`, decomposes
# $W$ into full-rank parameter components and decides which ones an input needs from **gradient
# attributions**: the first-order effect $A_c(x)$ of component $c$ on the output. The top-$k$
# components of a batch (batch top-k 0.211: 432 of 2048 × 5 slots) must reproduce the output
# (minimality), the active ones pay a Schatten-norm penalty (simplicity), and all must sum to $W$
# (faithfulness). The paper reports MMCS 0.998 and ML2R 0.893 on TMS 5-2 (**quoted**): the
# directions are right but the components are about 11% too short, a shrinkage the authors trace
# to the trade-off between the top-k reconstruction and the simplicity penalty. They also report
# that the 5-2 setting was brittle: it needed attributions taken from the APD model instead of the
# target, and in general "extensive hyperparameter tuning" {cite}`braun2025apd`. SPD's stochastic
# masks replace both the attributions and the top-k.
#
# The course's APD (`course_utils.decomposition.apd`) follows the paper's settings for 5-2
# (Adam at lr 0.03 with 5% warm-up, batch 2048, coefficients 1 / 1 / 0.7, Schatten p = 1, model
# attributions) with C = 5 (the paper does not state C for 5-2) and 4k steps on the CPU instead of
# 20k. One choice is ours: the simplicity term is divided by the number of entries of $W$ (10), as
# the mean-squared faithfulness loss is. The paper's formula has no such factor, and without it
# every run we made shrank the components into mixtures of features (MMCS 0.943, ML2R 0.36 after
# 20k steps); with it the paper's numbers come out. We believe the authors' code normalises this
# way but have not checked it there.

# %%
from course_utils.decomposition import apd  # noqa: E402

apd_res = apd.train_apd(target, apd.APDConfig(steps=pick(cpu=4_000, gpu=20_000)))
mm_a, ml_a = (t.item() for t in apd.apd_mmcs_ml2r(target.W, apd_res.P))
print(f"APD, this run: MMCS {mm_a:.3f}  ML2R {ml_a:.3f}   (paper: 0.998 / 0.893)")
comp_norms = apd_res.P.flatten(1).norm(dim=1).tolist()
print("component norms:", [round(v, 2) for v in comp_norms],
      f"(a single feature's column: {norms.mean().item():.2f})")

# %% [markdown]
# On seeds 0 and 2 this **reproduces** the paper's numbers within the tests' tolerance (MMCS 0.998
# and 0.996, ML2R 0.897 and 0.888): five components, one per feature, each about 10% shorter than
# its feature's column. That is APD's **shrinkage**, and SPD does not have it (ML2R ≈ 1 above).
# {fig}`training-curves` shows how it gets there: on seed 0 APD's ML2R rises and falls (0.54, 0.74,
# 0.49, 0.61, 0.80 at steps 500 to 2500) before it settles in the last quarter of the run;
# compare SPD's curve.
#
# APD is also **unstable**. Seed 1, with the same settings, ends at MMCS 0.967 and ML2R 0.762: one
# feature split over two components of norm 0.54 each, and one component carrying two features
# (norm 1.31). Giving APD spare components makes it worse: with C = 20 it splits every feature over
# several components (ML2R 0.06 after 5k steps; 0.15 after 20k steps without the normalisation
# above). These numbers come from `apd.train_apd(target, apd.APDConfig(seed=1, steps=4000))` and
# `apd.APDConfig(C=20, steps=5000)` on the target above (the tests rerun the seeds).

# %% tags=["hide-input"]
spd_curve = [mmcs_ml2r(target.W, *c["linear1"]) for _, c in res.snapshots]
figures.plot_curves({
    "SPD ML2R": ([s for s, _ in res.snapshots], [m[1].item() for m in spd_curve]),
    "APD ML2R": (apd_res.metric_history["step"], apd_res.metric_history["ml2r"]),
    "SPD MMCS": ([s for s, _ in res.snapshots], [m[0].item() for m in spd_curve]),
    "APD MMCS": (apd_res.metric_history["step"], apd_res.metric_history["mmcs"]),
}, title="TMS 5-2: MMCS and ML2R during training", yaxis="value", reference=0.993,
    reference_label="paper SPD ML2R")

# %% [markdown] figure="training-curves"
# MMCS and ML2R against training step for the SPD run of {fig}`spd-training` (at its snapshots)
# and the APD run above (seed 0); the dotted line is the paper's SPD ML2R, 0.993.

# %% [markdown]
# ## SAE and SPD on the same model
#
# Chapter 4's sparse autoencoders look at the same model from the activation side. Train TopK SAEs
# with five latents on the hidden activations $h = Wx$ of inputs with at least one feature present,
# one with $k = 1$ active latent per input and one with $k = 2$, and score them next to the SPD run
# above on three questions:
#
# * **directions**: MMCS of the SAE's decoder rows, or of SPD's subcomponent columns, against
#   $W$'s columns;
# * **which units an input uses**: on the 15 probe inputs with one or two features at 0.75, do the
#   active units (latents $> 0$; subcomponents of $W$ with $g > 0.1$) stand for exactly the features
#   present? Each unit stands for the feature whose column its decoder row is closest to (SAE) or
#   whose input it reads, $\arg\max_j |V_{j,c}|$ (SPD);
# * **output error**: the target's output recomputed through each account (SAE: $\hat h$ in place
#   of $h$; SPD: both layers' subcomponents masked by $g$), $\sum\|f' - f\|^2 / \sum\|f\|^2$ on
#   random inputs with at least one feature.

# %%
from course_utils.decomposition import compare  # noqa: E402

sae_steps = pick(cpu=800, gpu=3000)
saes = {k: compare.train_tms_sae(target, k=k, steps=sae_steps) for k in (1, 2)}
accounts = [compare.spd_account("SPD", res.model),
            compare.spd_account("SPD, 0/1", res.model, binary=True)]
accounts += [compare.sae_account(f"SAE k={k}", sae, target) for k, sae in saes.items()]
print(compare.format_table(accounts))

# %% [markdown]
# "SPD, 0/1" keeps the subcomponents with $g > 0.1$ whole and drops the rest. In the run we
# measured (seed 0; the tests hold these within one probe): SPD 5/5 and 10/10, output error 0.057
# (0.026 with 0/1 masks); SAE $k = 1$ 5/5 and 0/10, error 0.039; SAE $k = 2$ 0/5 and 6/10 with
# MMCS 0.945, error 0.0015. {fig}`units-used` shows the probes one by one.

# %% tags=["hide-input"]
probe_x, probe_labels = compare.probe_inputs(target.n_feat)
ci_probe = causal_importances(res.model, probe_x)["linear1"]
used = (ci_probe > compare.CI_THRESHOLD).any(0)
panels = {f"SAE, k = {k}": (compare.sae_activity(sae, target, probe_x),
                            compare.sae_unit_features(sae, target.W))
          for k, sae in saes.items()}
spd_feats = compare.spd_unit_features(V)[used]
panels["SPD, subcomponents of W"] = (ci_probe[:, used], spd_feats)
figures.plot_unit_activity(
    panels, probe_labels,
    title="Units used on inputs with one or two features (each panel ÷ its max)")

# %% [markdown] figure="units-used"
# How strongly each unit is used on the 15 probe inputs (rows: the one or two features present, at
# 0.75 each): the latents of the TopK SAEs with $k = 1$ and $k = 2$, and the causal importances of
# the SPD run's subcomponents of $W$ that are ever above 0.1. Columns are units labelled with the
# feature each stands for; each panel is divided by its own maximum (colour bar: white 0, dark blue 1).

# %% [markdown]
# The three accounts agree on the directions and disagree on everything else:
#
# * the **TopK SAE** is told how many latents to use. With $k = 1$ it names the right feature
#   whenever one is present and can only name one of two; with $k = 2$ it always names two, so a
#   lone feature comes with a spurious partner, and the decoder tilts away from the true directions
#   (MMCS 0.945). Yet $k = 2$ reproduces the output best: in a 2-d hidden space two latents can
#   rebuild any $h$. Low reconstruction error is not evidence that the latents are the features. A
#   ReLU or JumpReLU SAE chooses its number of active latents per input; we have not compared those
#   here.
# * **SPD** is not told how many subcomponents an input needs: causal importance is computed per
#   input, and it switches on one subcomponent for a lone feature and two for a pair. Its pieces
#   are pieces of the weights: each reads one input feature ($V_c$ is one-hot up to scale), writes
#   one hidden direction ($U_c$) and is used again, transposed, in $W^\top$. So it also says how
#   the output is computed, which the SAE leaves to the unexplained $W^\top$, bias and ReLU. Its
#   output error with $g$ as the mask (0.057) is larger than the SAE's: needed subcomponents often
#   have $g$ below 1 (down to about 0.8 in $W^\top$ on some pairs), and training asks for the right
#   output under masks drawn between $g$ and 1, not under every mask set to its lower end at once.
#
# In this model features and mechanisms coincide one to one, so the two pictures can be matched
# unit by unit. The residual MLP below is a case where they need not.

# %% [markdown]
# ## The residual MLP: compressed computation
#
# The second toy model is Braun et al.'s "compressed computation" model {cite}`braun2025apd`: $n$
# sparse input features $x_i \in [-1, 1]$ are embedded by a fixed random matrix $W_E$ with unit-norm
# columns into a wider residual stream, one MLP block with fewer neurons than features adds its
# output, and $W_U = W_E^\top$ reads the result out. The labels are $y_i = x_i + \mathrm{ReLU}(x_i)$:
# the residual stream carries $x_i$ through, and the MLP must supply the ReLUs, more of them than
# it has neurons. The paper's model has 100 features, a 1000-dimensional residual stream and 50
# neurons (feature probability 0.01). On the CPU the course uses one four times smaller in every
# width (25 features, 250 dimensions, 12 neurons) with probability 0.04, so that one feature is
# active per input on average as in the paper.
#
# Training the targets and the decomposition took about 18 minutes on our busy 2-core CPU (the
# two targets side by side 12 minutes, the decomposition 6), more than a page may spend, so the
# course ships them, trained by `python -m course_utils.decomposition.shipped` (checksummed;
# loading refuses files from different runs; `--spd-only` retrains only the decomposition and
# reproduces the shipped file exactly).

# %%
from course_utils.decomposition import ci_l0, shipped  # noqa: E402
from course_utils.decomposition.metrics import (  # noqa: E402
    neuron_contributions,
    subcomponent_contributions,
)

resid, resid_clean, resid_spd, info = shipped.load_resid_mlp()
print(f"target loss           {resid.loss():.5f}")
print(f"naive: {resid.d_mlp} monosemantic neurons, {resid.naive_loss():.5f}")
print(f"residual stream only  {resid.feature_probability / 6:.5f}")

# %% [markdown]
# The trained model beats the naive solution that spends one neuron on each of 12 features and
# gives up on the other 13. SPD's account of *how*: decompose $W_\text{in}$ and $W_\text{out}$ into
# 25 subcomponents each and look at the causal importances on one-hot inputs
# ({fig}`resid-causal-importance`).

# %% tags=["hide-input"]
ci_res = one_hot_causal_importances(resid_spd)
for name, g in ci_res.items():
    print(f"{name}: {n_alive(g)} alive, {ci_l0(g):.1f} subcomponents per one-hot input")
figures.plot_causal_importance(
    ci_res, title="Residual MLP: causal importance, x = 0.75·e_i", height=380)

# %% [markdown] figure="resid-causal-importance"
# Causal importance of the shipped decomposition of the residual MLP on its 25 one-hot inputs
# $x = 0.75\, e_i$ (rows), for the 25 subcomponents of $W_\text{in}$ (left) and of $W_\text{out}$
# (right), sorted as in {fig}`tms-causal-importance` (colour bar: $g$, white 0, dark blue 1).

# %% [markdown]
# At full size the paper reports two clean patterns {cite}`bushnaq2025spd`: $W_\text{in}$ splits
# into one subcomponent per input feature, each feeding its feature to many neurons, while the
# subcomponents of $W_\text{out}$ switch on together, so that $W_\text{out}$ behaves more like a
# single mechanism writing the whole MLP output back (APD had split $W_\text{out}$ per feature too;
# the SPD authors consider their own result the more accurate one).
#
# The shipped CPU decomposition (3k steps instead of the authors' 30k, C = 25 per matrix, β = 1e-3)
# comes close to the first pattern. $W_\text{in}$ uses about one subcomponent per one-hot input,
# and 21 of the 25 features have one of their own, important on that feature's input and no
# other; features 5 and 24 share one and each borrows a second. The importance coefficient decides
# this: at this size β = 1e-5 (the paper's appendix value) for 2k steps left about 12
# subcomponents important per one-hot input, β = 1e-4 for 3k steps about 3, and β = 1e-3 (the value
# in the authors' current configuration, which uses the same delta component as this course) about
# one. The paper's figure 8 shows the same failure for a too-small coefficient: features spread
# over many subcomponents. $W_\text{out}$ keeps 12 subcomponents alive, as many as the model has
# neurons, and several switch on together for each input (3.6 per one-hot input on average). So the
# subcomponents co-activate, as in the paper, but not all of them on every input.

# %%
from course_utils.decomposition import own_subcomponents  # noqa: E402

print(f"W_in features with a subcomponent of their own: "
      f"{own_subcomponents(ci_res['W_in'])} of {resid.n_feat}")

# %% [markdown]
# The paper's figure 7 gives a second check. Take each feature's contribution to its own output
# through each neuron, in the target and in that feature's most important $W_\text{in}$
# subcomponent (with $W_\text{out}$ whole). If the subcomponent is the feature's mechanism, the
# points lie on the diagonal ({fig}`neuron-contributions`).

# %% tags=["hide-input"]
V_in, U_in = resid_spd.factors("W_in")
V_out, U_out = resid_spd.factors("W_out")
with torch.no_grad():
    target_c = neuron_contributions(resid.W_E, resid.W_in, resid.W_out)
    sub_c = subcomponent_contributions(resid.W_E, V_in, U_in, (V_out @ U_out).T,
                                       ci_res["W_in"].argmax(1))
corr = torch.corrcoef(torch.stack([target_c.flatten(), sub_c.flatten()]))[0, 1]
print(f"correlation of contributions, target vs subcomponent: {corr:.3f}")
figures.plot_neuron_contributions(target_c, sub_c)

# %% [markdown] figure="neuron-contributions"
# One point per (feature, neuron) pair of the residual MLP: the feature's contribution to its own
# output through that neuron in the target (horizontal) and through the feature's most important
# $W_\text{in}$ subcomponent with $W_\text{out}$ whole (vertical); the dotted line is $y = x$.

# %% [markdown]
# In the shipped run the correlation is 0.994: for each feature, one rank-one piece of
# $W_\text{in}$ carries what the target's neurons do with that feature.
#
# ### An open question: is this computation in superposition?
#
# A 2026 preprint {cite}`cc2026notcis` argues that the model does not compute more ReLUs than it
# has neurons in the sense the name suggests. Because $W_E$ is random, $W_E^\top W_E = I + \text{noise}$:
# the residual stream itself mixes the features, which amounts to an unintended mixing matrix in
# the labels, and the preprint finds that the model's advantage over the naive solution grows with
# the size of that mixing. The course does not settle this. A cheap version of the check it
# suggests: train the same MLP with an *orthogonal* embedding ($W_E^\top W_E = I$ exactly, no
# mixing; shipped alongside) and compare with the naive solution.

# %%
print(f"{'random embedding (paper)':30}{resid.loss():.5f}")
print(f"{'orthogonal embedding':30}{resid_clean.loss():.5f}")
print(f"{'naive solution':30}{resid.naive_loss():.5f}")

# %% [markdown]
# With the random embedding the model beats the naive solution by about 15%; with the orthogonal
# one it is within 1% of it (0.00345 against 0.00347 at this size). So in this small model the
# advantage disappears together with the residual mixing, as the preprint argues; one size and
# one seed, so read it as a check that agrees with the critique, not a settlement of it. Nor does
# SPD's result settle it: one $W_\text{in}$ subcomponent per feature says how each feature enters
# the MLP, not whether the MLP's advantage comes from computing ReLUs in superposition or from
# exploiting the mixing.
#
# ## Summary
#
# * SPD on TMS 5-2 **reproduces** the paper's MMCS (1.000) and comes within 0.02 of its ML2R
#   (1.006 to 1.008 on three seeds against 0.993) in 3k steps at batch 1024, with five alive
#   subcomponents per matrix, one per feature.
# * A low ML2R with MMCS ≈ 1 and too many alive subcomponents means features split over co-active
#   subcomponents; a too-weak importance penalty causes it (β = 1e-3 here).
# * TMS 40-10 is not on this page: one CPU-sized run (`configs.experiment("tms_40_10")`: C = 80
#   per matrix, batch 1024, 6k steps, β = 1e-4, p = 2; seed 0, 25 minutes on our busy CPU) gave
#   MMCS 0.985 and ML2R 0.963 with 49 and 42 alive subcomponents instead of 40, **measured to
#   differ** from the paper's 1.000 / 1.010 (a shorter run, C = 60 for 2k steps, gave 0.755 /
#   0.42). The authors' settings (C = 200, batch 4096, 10k steps) run under the GPU switch and
#   are untested at size.
# * APD **reproduces** the paper's 0.998 / 0.893 on two of three seeds (with the simplicity term
#   divided by the number of weights, our reading of the authors' code): components about 10% too
#   short. The third seed splits a feature, and spare components (C = 20) split all of them.
# * Next to SPD, TopK SAEs find the same five directions but not which features an input uses:
#   with $k = 1$ they miss one of every pair, with $k = 2$ they add a spurious feature to every
#   lone one while reproducing the output best. SPD names the right features on all 15 probes
#   and, being made of the weights, also says how the output is computed.
# * On the residual MLP at a quarter of the paper's widths, SPD with β = 1e-3 gives $W_\text{in}$
#   about one subcomponent per feature (21 of 25 exclusively their own; β = 1e-5 for 2k steps
#   gave about 12 per feature) and $W_\text{out}$ co-active subcomponents, as many as neurons. A
#   no-mixing control agrees with the 2026 critique of the model, which stays an open question.
#
# **Next:** the exercise notebook (link in the box at the top) asks you to write the pieces of
# parameter decomposition used on this page.
