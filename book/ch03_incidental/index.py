# %% [markdown]
# [Chapter 2](../ch02_superposition/index.ipynb) explained {term}`polysemantic <Polysemantic>` neurons by a shortage of room: with more
# features than dimensions, a network that wants to represent them all must share neurons
# ({term}`superposition <Superposition>`). That suggests a cure: give the network enough neurons. This
# chapter shows, with runs you can repeat, that the cure does not work. In a model with *more* neurons
# than features, trained with a sparsity pressure, some neurons still end up carrying two unrelated
# features. Nothing forces them to; it happens by the luck of the initialisation, and the training
# dynamics lock it in. Lecomte et al. call this
# {term}`incidental polysemanticity <Incidental polysemanticity>` {cite}`lecomte2023incidental`.
#
# The plan: set up their toy model; derive the dynamics of one feature and see winner-take-all; count
# collisions with a birthday argument and check the count against trained models; replace the L1
# penalty by noise; and compare the two origin stories of polysemanticity.

# %% tags=["remove-output"]
import numpy as np
import torch

from course_utils import incidental as inc
from course_utils import pick, set_seed
from course_utils.plotting import explorer

set_seed(0)
torch.set_num_threads(1)  # small tensors: one thread is faster on a shared CPU
cfg = pick(cpu=dict(n=64, ms=[64, 128, 256, 512, 1024], seeds=8, lr=1e-2,
                    max_steps=8000),
           gpu=dict(n=256, ms=[256, 512, 1024, 2048, 4096], seeds=16, lr=1e-3,
                    max_steps=40_000))
for key, value in cfg.items():
    print(f"{key}: {value}")

# %% [markdown]
# ## The setup
#
# There are $n$ features and $m \ge n$ neurons. The model is a one-layer autoencoder with tied weights,
#
# $$ y = \mathrm{ReLU}(W W^\top x), \qquad W \in \mathbb{R}^{n \times m}, $$
#
# so the hidden layer $h = W^\top x$ is linear and the ReLU acts on the output. Row $i$ of $W$, written
# $w_i \in \mathbb{R}^m$, says how feature $i$ is spread over the neurons. The features never occur
# together: the training set is the $n$ basis vectors $e_1, \dots, e_n$, all fed at every step. The
# loss is the summed squared error plus an L1 penalty on the weights,
#
# $$ L(W) = \sum_{i=1}^{n} \lVert e_i - \mathrm{ReLU}(W W^\top e_i) \rVert^2 + \lambda \lVert W \rVert_1 . $$
#
# Any $W$ whose rows are orthonormal reaches zero error, and because $m \ge n$ there are many such $W$
# with one neuron per feature: a perfectly {term}`monosemantic <Monosemantic>` solution exists. Without
# the L1 term nothing would prefer it, because the error is unchanged by rotating the neurons; the L1
# term breaks that symmetry and makes the neuron basis {term}`privileged <Privileged basis>`.
#
# Following the authors, the weights start as independent $N(0, 1/m)$ draws, so every row starts with
# norm close to 1, and $\lambda = 10^{-3}$. Their code trains with AdamW (PyTorch's default weight
# decay) at learning rate $10^{-3}$ for a fixed 7,500 steps. We use Adam without weight decay, train
# until every feature has converged, and on the CPU use a learning rate of $10^{-2}$, which reaches
# the same end-state statistics (polysemantic counts, signs, convergence; not the same weights) in
# about a tenth of the steps (the closing note compares the two; the GPU configuration keeps
# $10^{-3}$). Here is one run with $n = 16$, $m = 32$:

# %% tags=["hide-input"]
small = inc.train(inc.init_weights(16, 32, 1), lam=1e-3, steps=6000, lr=1e-2,
                  stop_when_converged=True)
print("polysemantic neurons:", inc.count_polysemantic(small.W).item(),
      "| every feature converged:", bool(inc.run_converged(small.W).item()))
inc.plot_weights(small.W[0], "W after training (n = 16 features, m = 32 neurons)")

# %% [markdown] figure="weights-after-training"
# The weights $W$ (16 features × 32 neurons) at the end of the run: red positive, blue negative.

# %% [markdown]
# Each row ends with a single weight of size about 1 and zeros elsewhere. Where two rows put their
# weight on the same column, that neuron carries two features: it is polysemantic although 16 neurons
# are unused. We count a neuron as polysemantic when at least two features have $|w| \in [0.8, 1.2]$ on
# it, the authors' criterion. The band is only meaningful after training has converged (before, most
# weights lie between 0 and 1), so every count on this page comes with a convergence check: each feature
# has exactly one weight in the band and all its other weights below 0.2.
#
# ## Winner-take-all dynamics
#
# Why does each feature end on one neuron, and which one? Feed $e_i$. Output $i$ is
# $\mathrm{ReLU}(\lVert w_i \rVert^2)$ and output $j \ne i$ is $\mathrm{ReLU}(w_j \cdot w_i)$, so the
# part of the loss that involves feature $i$ alone is
#
# $$ \big(1 - \lVert w_i\rVert^2\big)^2 + 2\sum_{j \ne i} \mathrm{ReLU}(w_i \cdot w_j)^2 + \lambda \lVert w_i \rVert_1 , $$
#
# where the factor 2 counts each overlap once as output $j$ for input $e_i$ and once as output $i$ for
# input $e_j$. Drop the {term}`interference <Interference>` sum for a moment. The gradient of the rest is
# $-4(1 - \lVert w\rVert^2)w + \lambda\,\mathrm{sign}(w)$, so gradient descent with step $\eta$ follows,
# in the time $t = 4\eta \cdot \text{step}$,
#
# $$ \frac{dw}{dt} = \big(1 - \lVert w \rVert^2\big)\, w - \lambda'\, \mathrm{sign}(w), \qquad \lambda' = \lambda/4 . $$
#
# Look at one coordinate: $\frac{d}{dt}|w_k| = (1 - \lVert w\rVert^2)|w_k| - \lambda'$. The growth term is
# proportional to $|w_k|$, the shrinkage is the same for every coordinate. Small weights therefore
# shrink first and hit 0, which frees norm for the others, which raises the threshold
# $\lambda'/(1 - \lVert w\rVert^2)$ below which a weight shrinks. A state with two non-zero coordinates
# needs $(1 - \lVert w\rVert^2)|w_k| = \lambda'$ for both, hence $|w_1| = |w_2|$, and it is unstable:
# the larger one wins. The order of the coordinates never changes along the way, so the prediction is
# that **each feature ends on the neuron where its weight was largest at initialisation**.
#
# The ODE is exact for a feature that interferes with no other, e.g. a model with $n = 1$. Integrated
# from the same initial weights (with `inc.integrate_ode`, an Euler step followed by soft-thresholding),
# it lies on top of gradient descent:

# %% tags=["hide-input"]
lr_gd, lam_gd, steps_gd, every = 0.1, 0.02, 2000, 50
w0 = inc.init_weights(1, 64, 1, seed=3)
gd = inc.train(w0, lam_gd, steps_gd, lr_gd, optimizer="gd", record_every=every)
w_end, ode_traj = inc.integrate_ode(w0, lam_gd / 4, 4 * lr_gd * steps_gd, dt=4 * lr_gd,
                                    record_every=every)
t_grid = 4 * lr_gd * np.asarray(gd.snapshot_steps)
print(f"largest gap between ODE and training over the run: "
      f"{(ode_traj - gd.snapshots).abs().max().item():.4f}")
inc.plot_ode_vs_training(t_grid, ode_traj[:, 0, 0].numpy(),
                         gd.snapshots[:, 0, 0].numpy())

# %% [markdown] figure="ode-vs-training"
# The four initially largest weights of a single feature ($n = 1$, $m = 64$): the ODE (lines)
# against gradient descent (circles) on the same time axis.

# %% [markdown]
# With many features the interference term is back. Early in training the rows overlap by about
# $1/\sqrt{m}$, and the overlaps with a positive sign are penalised, so the gradient also pushes each
# feature away from the others. That push is small, but so is the initial lead of the largest weight
# over the second largest. The table compares the winner the ODE predicts (the initially largest
# weight) with the winner training finds, for $m = 256$ neurons and $n = 1, 8, 64$ features, under
# plain gradient descent and under Adam:

# %% tags=["hide-input"]
agree = inc.winner_agreement([1, 8, 64], m=256, n_seeds=8)
print("features whose trained winner is the ODE's (initially largest) neuron")
print("m = 256, 8 seeds")
print(f"{'n':>4} {'gradient descent':>17} {'Adam':>6}")
for n_ in (1, 8, 64):
    print(f"{n_:>4} {agree['gd'][n_]:>17.0%} {agree['adam'][n_]:>6.0%}")

# %% [markdown]
# This is where careful runs depart from the clean story. Winner-take-all itself holds: every feature
# ends on a single neuron (in these runs all but one or two features in a thousand had converged). But *which* neuron wins is the initially largest one only when the
# feature is alone, or nearly so. With 64 features, interference reshuffles about half of the
# near-ties under gradient descent. Under Adam fewer than one feature in ten ends on its initially
# largest neuron. Our reading: Adam rescales every coordinate's step to about the same size, so the
# initial ordering of magnitudes carries little weight, and the early steps, driven by interference,
# decide the winner.
#
# For the counting argument below this matters less than it seems. The winner is an accident of the
# initialisation either way, just not the accident the ODE names, and what the argument needs is only
# that the winners are scattered over the neurons roughly uniformly and independently. The trained
# models below test that assumption.
#
# ## Counting collisions
#
# If each feature's winner is a uniformly random neuron, two given features share a winner with
# probability $1/m$: the birthday problem. The expected number of colliding pairs is
# $\binom{n}{2}/m \approx n^2/(2m)$, and the exact expected number of neurons that receive two or more
# features is
#
# $$ \mathbb{E}[\#\text{polysemantic}] = m\Big[1 - \big(1 - \tfrac1m\big)^n - \tfrac{n}{m}\big(1 - \tfrac1m\big)^{n-1}\Big] . $$
#
# Monte Carlo draws agree with both numbers. The first line checks the pair probability directly on
# the initialisation (two $N(0, 1/m)$ rows share their largest-|w| neuron with probability $1/m$); the
# rest compare the expectation with a simulation, the pair count and the authors' line. The last column
# is the probability that there is any collision at all.

# %% tags=["hide-input"]
shared = inc.simulate_shared_initial_winner(64, 100_000, seed=0)
print(f"m = 64: two initial rows share their largest neuron in {shared:.4f} of draws "
      f"(1/m = {1 / 64:.4f})")
print("n = 64      exact  simulated  C(n,2)/m  n²/(4m)  P(any collision)")
for m_ in (64, 256, 1024):
    print(f"m = {m_:4d}  {inc.expected_polysemantic(64, m_):6.2f}"
          f"  {inc.simulate_polysemantic(64, m_, 20_000, seed=0):9.2f}"
          f"  {inc.birthday_pairs(64, m_):8.2f}  {inc.law(64, m_):7.2f}"
          f"  {inc.p_any_collision(64, m_):16.3f}")

# %% [markdown]
# Now the trained models. All seeds of one width train together as one batched tensor
# `W: [seed, n, m]`; each width stops as soon as every one of its runs has converged. (The chapter's
# benchmark compares this with a loop over single runs and with one padded batch of all widths. On a
# 2-core CPU at these sizes the matrix products dominate, so batching the seeds buys little, and
# padding every width to $m = 1024$ costs 3 to 4 times more; for a small model such as the explorer's,
# one batch of 64 seeds trains about 40 times faster than a loop. On a GPU, where small products leave
# the device idle, batching should pay off more; we have not measured that.)

# %% tags=["hide-input"]
grid = inc.train_grid(cfg["n"], cfg["ms"], cfg["seeds"], lam=1e-3, lr=cfg["lr"],
                      max_steps=cfg["max_steps"])
counts = grid.counts().float()
slope, _ = inc.fit_loglog_slope(grid.ms, counts.mean(1).tolist())
n = cfg["n"]
print(f"{'m':>5} {'steps':>6} {'converged':>10} {'mean count':>11} {'n²/(4m)':>8} "
      f"{'ratio':>6} {'birthday':>9}")
for k, m_ in enumerate(grid.ms):
    mean, line = counts[k].mean().item(), inc.law(n, m_)
    conv = grid.converged()[k].float().mean().item()
    print(f"{m_:>5} {grid.steps_run[m_]:>6} {conv:>10.0%} {mean:>11.2f} {line:>8.2f} "
          f"{mean / line:>6.2f} {inc.expected_polysemantic(n, m_):>9.2f}")
print(f"fitted log-log slope: {slope:.2f}")
inc.plot_loglog(grid.ms, counts.numpy(), n, slope)

# %% [markdown] figure="counts-vs-width"
# Polysemantic neurons against the width $m$ on log-log axes: every run, the mean over seeds, the
# authors' line $n^2/(4m)$, the birthday count $\binom{n}{2}/m$ and the exact birthday expectation.

# %% [markdown]
# The counts fall roughly like $1/m$ (a little faster) and sit below the line $n^2/(4m)$ that the
# authors drew next to their measurements (they drew it; they did not fit it): the ratio column
# gives measured count over line: 0.8 to 0.95 up to $m = 256$, 0.5 to 0.65 at $m = 512$ and
# $1024$ (the closing note has more seeds). From $m = 128$ on they
# are well below the birthday expectation, which for large $m$ approaches $\binom n2/m \approx n^2/(2m)$,
# twice the line. (At $m = n = 64$ so many features collide that a neuron often receives three or more;
# the exact expectation of neurons with at least two, 16.9, is then far below the pair count, 31.5,
# and it happens to sit close to the line.) Where does the factor of two go? Look at the signs. Two features that share a
# neuron with the **same** sign overlap positively, $w_i \cdot w_j > 0$; the ReLU passes that overlap to
# the output as an error, and the interference term pushes them apart until one moves to another
# neuron. Two features with **opposite** signs overlap negatively; the ReLU outputs 0, the loss does not
# see them, and they stay. When collisions are rare ($m \gg n$), half of them have opposite signs,
# hence about $\tfrac12\binom n2/m \approx n^2/(4m)$. The trained weights confirm the first half of the argument:

# %% tags=["hide-input"]
fractions = [inc.opposite_sign_fraction(grid.W[m_]) for m_ in grid.ms]
print("fraction of polysemantic neurons whose two features have opposite signs:")
print(", ".join(f"m={m_}: {f:.0%}" for m_, f in zip(grid.ms, fractions)))

# %% [markdown]
# So the polysemantic neurons of this model hold antipodal pairs, $w_j \approx -w_i$ on one neuron: the
# antipodal pairs that Elhage et al. found when sparse features are squeezed into too few dimensions
# {cite}`elhage2022toy`, but here no shortage of dimensions forced them. The authors state the
# scaling as $\Theta(n^2/m)$ and draw the line $n^2/(4m)$ beside their counts; the sign argument
# is our reading of where the constant $1/4$ comes from, checked on these runs. At the largest widths our mean counts fall below $n^2/(4m)$, to about half the line at
# $m = 1024$ (see the closing note).
#
# What "$m = \Omega(n^2)$" means in practice: to expect fewer than one polysemantic neuron you need
# $n^2/(4m) < 1$, i.e. $m > n^2/4$ neurons. Even then a collision is likely: at $n = 64$, $m = 1024$
# the birthday probability of at least one shared winner is 0.87 (the table above).

# %% tags=["hide-input"]
for n_ in (64, 1_000, 100_000):
    print(f"n = {n_:>7,} features: m > {n_**2 // 4:>13,} neurons "
          f"({n_ // 4:,} neurons per feature)")

# %% [markdown]
# *If* a real layer behaved like this toy model (features that never co-occur, one tied-weight
# ReLU layer trained with an L1 penalty to convergence, winners that land uniformly at random), a
# layer that has to represent a hundred thousand features would need billions of neurons to avoid
# incidental collisions entirely. Real layers break every one of those assumptions, so the numbers
# are an illustration of the scaling, not a prediction for a real network. Within the toy model,
# enough capacity ($m \ge n$) is far from enough to be monosemantic.
#
# ## Noise instead of L1
#
# L1 is not the only pressure towards sparse weights. The second mechanism in the paper is noise added
# to the hidden layer: for input $e_i$ the hidden vector becomes $w_i + \xi$, with one fresh noise
# vector per step ($\lambda = 0$, plain gradient descent, $n = 8$, $m = 16$, $\sigma = 0.15$, as in the
# authors' experiment but shorter). The noise that reaches feature $i$'s own output is $w_i\cdot\xi$.
# Its variance, $\sigma^2\lVert w_i\rVert^2$, is the same for every noise distribution and does not
# depend on how $w_i$ is spread over neurons. Its fourth moment does:
# $E[(w_i\cdot\xi)^4] = 3\sigma^4\lVert w_i\rVert^4 + (\kappa - 3)\,\sigma^4 \sum_k w_{ik}^4$, with
# $\kappa = E[\xi^4]/\sigma^4$ and $\kappa - 3$ the excess kurtosis. For Gaussian noise that term is
# zero and no neuron basis is singled out; for noise with negative excess kurtosis the fluctuations are
# smallest when $w_i$ sits on one neuron, and gradient descent with a finite step drifts there. The
# paper's claim is that negative excess kurtosis sparsifies {cite}`lecomte2023incidental`; the runs
# below test it on four distributions of equal variance, measuring $\sum_k w_{ik}^4 / (\sum_k w_{ik}^2)^2$
# (1 when a feature uses one neuron, $1/m$ when it is spread evenly):

# %% tags=["hide-input"]
kinds = ("bernoulli", "uniform", "gaussian", "laplace")
noise = inc.noise_experiment(kinds=kinds, steps=20_000)
print("final sparsity:", ", ".join(f"{k} {noise[k][-1]:.2f}" for k in kinds))
inc.plot_noise_sparsity(noise)

# %% [markdown] figure="noise-sparsity"
# Mean sparsity $\sum_k w_{ik}^4 / (\sum_k w_{ik}^2)^2$ of the features over training, for hidden
# noise of four distributions with equal variance and different excess kurtosis, without L1.

# %% [markdown]
# Bernoulli noise ($\pm\sigma$, excess kurtosis $-2$) makes the features sparse, uniform noise ($-1.2$)
# does too but more slowly, Gaussian noise ($0$) leaves them where they started, and Laplace noise
# ($+3$) spreads them slightly further. The effect is slow: it comes from the fluctuations of the
# gradient, not from its mean, and takes thousands of steps. It also needs small noise: with
# $\sigma = 0.3$ we saw no sparsification for any distribution within 20,000 steps.
# Once the features are sparse, the same birthday argument applies to where they land.
#
# ## Explore
#
# Rerun a small model ($n = 16$) and watch $W$ during training. On the website the slider moves through
# training steps of one setting; in a notebook you can also change the width $m/n$, the L1 coefficient
# $\lambda$ and the size $\sigma$ of Bernoulli hidden noise added on top of the L1 penalty.

# %% tags=["hide-input"]
explorer(inc.explorer_figure,
         {"step": list(range(0, 3001, 200)), "m_over_n": [1, 2, 4],
          "lam": [1e-3, 3e-3, 1e-2], "noise_sigma": [0.0, 0.03, 0.1]},
         static="step", value={"m_over_n": 2, "lam": 1e-2},
         labels={"step": "training step", "m_over_n": "width m/n",
                 "lam": "L1 coefficient λ", "noise_sigma": "noise σ"})

# %% [markdown] figure="incidental-explorer"
# The explorer: $W$ during training, titled with its count of polysemantic neurons. On this website
# only the step slider moves.

# %% [markdown]
# Things to try in a live notebook (on this website only the step slider moves; the other
# controls retrain the model and need a kernel): with $m/n = 4$ collisions become rarer ($n^2/(4m) = 1$ expected for $n = 16$), with
# $m/n = 1$ more common; a smaller $\lambda$ takes longer to converge (at $\lambda = 10^{-3}$ not within
# these 3,000 steps, so the band count at the end is not yet meaningful); noise on top of L1 slows
# convergence and changes which neurons win.
#
# ## Incidental or capacity-driven?
#
# Chapter 2 and this chapter both end with polysemantic neurons, for different reasons:
#
# | | capacity-driven (chapter 2) | incidental (this chapter) |
# |---|---|---|
# | features vs neurons | more features than neurons, $n > m$ | fewer features than neurons, $n \le m$ |
# | why neurons are shared | forced: there is no room otherwise | chance: initialisation plus winner-take-all |
# | what decides it | {term}`sparsity <Sparsity>` and {term}`importance <Importance>` of features | the random initialisation (and the optimiser) |
# | how it scales | with the excess of features over dimensions | like $n^2/m$: falls only slowly with width |
# | does a zero-loss monosemantic solution exist? | no | yes, many |
# | does adding neurons remove it? | yes, once $m \ge n$ | only at $m \gtrsim n^2/4$ |
#
# This bears on a debate about words. Polysemanticity is an *observation* about neurons; superposition
# is one *explanation* of it, representing more features than dimensions. Chan argues that the two
# should not be identified, and lists ways a neuron can be polysemantic without superposition; one of
# them is that training finds low-loss solutions that mix unrelated features incidentally, and he points
# to this line of work {cite}`chan2024superposition`. The toy model here is such a case: the network has
# room for every feature on its own neuron and still shares some. The lesson for interpretability is
# practical. Finding a polysemantic neuron does not tell you the network is short of capacity, and
# making a layer wider is not a dependable way to make its neurons monosemantic. Methods that look for
# features as directions rather than neurons ({term}`sparse autoencoders <Sparse autoencoder>`, for
# instance) do not care why a neuron is mixed, but they do need the mixing to be linear, which it
# is here.
#
# ## Closing note: what these runs measured
#
# * **The count law holds up to $m = 4n$, and the counts then fall below it.** With $n = 64$ and 8
#   seeds per width, every run converged before it was counted. Up to $m = 256$ the mean counts are
#   within 30% of $n^2/(4m)$. At the largest widths they are lower: relative to the line we measured
#   0.50, 0.56 and 0.84 at $m = 512$ and 0.63, 0.44 and 0.59 at $m = 1024$ on three independent sets of
#   8, 16 and 32 seeds. At $m = 1024$ that is about half the line, the edge of the factor-of-two band
#   the published figure suggests. The fitted log-log slope is $-1.17$ (8 seeds) and $-1.24$ (16 seeds),
#   steeper than $-1$ but inside $[-1.3, -0.7]$. The tests assert these measured values rather than the
#   law. We have no explanation for the shortfall yet; a first thing to check is whether Adam's choice
#   of winners is less uniform than the birthday argument assumes. With the authors'
#   learning rate $10^{-3}$ (8 seeds, $m = 64$ and $128$) the counts after 10,000 steps were 15.25 and
#   6.9, as here; at 5,000 steps the $m = 64$ count was only 2.4 because three quarters of the features
#   had not converged. Counting before convergence under-counts badly, which is why every count on this
#   page is gated on it.
# * **The factor of two is the sign.** Every polysemantic neuron we found holds two features of
#   opposite signs (100% at every width).
# * **The winner is not always the initially largest weight.** The per-feature ODE matches training
#   for an isolated feature and predicts that the initially largest weight wins. With 64 features
#   interference changes the winner for about half of the features under gradient descent, and Adam
#   follows the initial ordering for fewer than one feature in ten. The randomness of the winner, not
#   its identity, is what the count needs, so the law survives, up to the shortfall at large $m$.
# * **Noise:** negative excess kurtosis sparsifies, Gaussian noise does not, as the paper says.
#
# ## Summary
#
# * With more neurons than features and an L1 penalty, each feature ends on a single neuron
#   (winner-take-all), and which neuron wins is an accident of the initialisation and the optimiser.
# * Winners collide like birthdays: about $n^2/(4m)$ polysemantic neurons once only the
#   opposite-sign collisions survive; our counts sit at 0.5 to 0.95 of that line.
# * Avoiding collisions takes $m \gtrsim n^2/4$ neurons in this toy model, so room alone does not
#   make neurons monosemantic; noise with negative excess kurtosis sparsifies like L1 does.
#
# **Next:** the exercise notebook (link in the box at the top) asks you to write the model's loss,
# the polysemantic count, the ODE step, the birthday expectation and its simulation, and the
# noisy forward pass. The
# [appendix](../appA_course_model/index.ipynb) introduces the small language model that later parts
# of the course take apart.
