# %% [markdown]
# # Incidental polysemanticity: exercises
#
# Six functions that rebuild the chapter's argument: the model's loss, the polysemantic-neuron count,
# one step of the per-feature dynamics, the birthday expectation (exact and by simulation) and the
# noisy forward pass. For each: read the instructions, replace the `raise NotImplementedError(...)`
# line with your code, then run the check cell below it. A check prints one line when your function is
# right; otherwise it says what looks wrong.
#
# Grade the whole notebook at any time with
# `python -m course_utils.grade exercises/ch03_incidental.ipynb`.

# %%
import torch

from course_utils import incidental as inc
from course_utils.checks import incidental as checks

torch.set_num_threads(1)  # small tensors: one thread is faster than several on a shared CPU

# %% [markdown]
# ## Exercise 3.1: the model and its loss
#
# The model is $y = \mathrm{ReLU}(W W^\top x)$ with $W \in \mathbb{R}^{n \times m}$: row $i$ of $W$,
# written $w_i \in \mathbb{R}^m$, is how feature $i$ is spread over the $m$ neurons. Each training
# step feeds all $n$ basis vectors $e_1, \dots, e_n$ (features never occur together), so the $n$
# outputs stacked as rows form the matrix $\mathrm{ReLU}(W W^\top)$.
#
# Implement `toy_loss(W, lam)` for a batch of runs `W: [run, n, m]`: per run, the **summed** squared
# error $\sum_i \lVert e_i - \mathrm{ReLU}(W W^\top e_i)\rVert^2$ plus $\lambda \sum |W|$. Return shape
# `[run]`.
#
# <details><summary>Hint</summary>
#
# `W @ W.transpose(1, 2)` is `[run, n, n]`; compare it with `torch.eye(n, dtype=W.dtype, device=W.device)`
# and sum over the last two axes.
# </details>

# %% exercise="toy_loss"
def toy_loss(W: torch.Tensor, lam: float) -> torch.Tensor:
    """W: [run, n, m] -> [run]: Σᵢ ‖eᵢ − ReLU(W Wᵀ eᵢ)‖² + λ‖W‖₁ for each run."""
    ### BEGIN SOLUTION
    eye = torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
    Y = torch.relu(W @ W.transpose(1, 2))
    return ((eye - Y) ** 2).sum((1, 2)) + lam * W.abs().sum((1, 2))
    ### END SOLUTION


# %% check="toy_loss"
checks.check_toy_loss(toy_loss)

# %% [markdown]
# Your loss has the gradient the course's trainer uses (it computes it in closed form, and the two
# agree to rounding error):

# %%
W = inc.init_weights(n=8, m=16, n_seeds=2, dtype=torch.float64).requires_grad_(True)
toy_loss(W, 1e-3).sum().backward()
print("largest difference from the closed form:", (W.grad - inc.gradient(W.detach(), 1e-3)).abs().max().item())

# %% [markdown]
# ## Exercise 3.2: counting polysemantic neurons
#
# After training, a weight is either near 0 or near ±1. Lecomte et al. call a neuron polysemantic when
# at least two features have a weight of size $|w| \in [0.8, 1.2]$ on it. Implement
# `count_polysemantic(W, lo, hi)` for `W: [run, n, m]`, returning the number of such neurons per run,
# shape `[run]`.
#
# <details><summary>Hint</summary>
#
# Build a boolean `[run, n, m]` mask of strong weights, count strong features per neuron (which axis?),
# then count neurons with two or more.
# </details>

# %% exercise="count_polysemantic"
def count_polysemantic(W: torch.Tensor, lo: float = 0.8, hi: float = 1.2) -> torch.Tensor:
    """W: [run, n, m] -> [run]: neurons on which >= 2 features have |w| in [lo, hi]."""
    ### BEGIN SOLUTION
    strong = (W.abs() >= lo) & (W.abs() <= hi)
    return (strong.sum(1) >= 2).sum(1)
    ### END SOLUTION


# %% check="count_polysemantic"
checks.check_count_polysemantic(count_polysemantic)

# %% [markdown]
# The band is only meaningful once training has converged. Here is a small run counted at several
# points: early on no weight is in the band yet and the count is 0, which says nothing about
# monosemanticity. `inc.count_winner_collisions` needs no band (a neuron is counted when it is the
# largest-|w| neuron of two features) and agrees with your count once every feature has converged.

# %%
res = inc.train(inc.init_weights(16, 32, 4), lam=1e-3, steps=4000, lr=1e-2, record_every=800)
for step, Ws in zip(res.snapshot_steps, res.snapshots):
    print(f"step {step:4d}: band count {count_polysemantic(Ws).tolist()}, "
          f"winner collisions {inc.count_winner_collisions(Ws).tolist()}, "
          f"converged runs {inc.run_converged(Ws).tolist()}")

# %% [markdown]
# **Question.** Why would counting *before* convergence with the band criterion under-count, and the
# winner criterion over- or under-count? Which would you report, and what would you check first?

# %% [markdown] only="solutions"
# *Answer.* Before convergence most weights are far from 1, so the band sees nothing and reports 0.
# The winner criterion always finds a largest weight, but early on the winner can still change, so its
# count is a guess. Report counts only for converged runs (`inc.run_converged`: one weight in the band
# per feature, all others below 0.2); then the two criteria agree.

# %% [markdown]
# ## Exercise 3.3: one step of the per-feature dynamics
#
# Ignoring the interference between features, gradient flow on one feature's loss is
# $\dot w = (1 - \lVert w\rVert^2)\, w - \lambda\, \mathrm{sign}(w)$. A plain Euler step makes a weight
# smaller than $\lambda\,dt$ jump across 0 and chatter. Integrate in two parts instead:
#
# 1. Euler step of the smooth part: $w \leftarrow w + dt\,(1 - \lVert w\rVert^2)\, w$;
# 2. exact step of the L1 part (soft-thresholding): $w \leftarrow \mathrm{sign}(w)\max(|w| - \lambda\,dt, 0)$.
#
# Implement `ode_step(w, lam, dt)` for `w: [..., m]` (any number of leading axes; the norm is over the
# last axis).

# %% exercise="ode_step"
def ode_step(w: torch.Tensor, lam: float, dt: float) -> torch.Tensor:
    """w: [..., m] -> [..., m]: Euler on (1 − ‖w‖²)w, then soft-threshold by λ·dt."""
    ### BEGIN SOLUTION
    w = w + dt * (1 - (w * w).sum(-1, keepdim=True)) * w
    return torch.sign(w) * torch.clamp(w.abs() - lam * dt, min=0)
    ### END SOLUTION


# %% check="ode_step"
checks.check_ode_step(ode_step)

# %% [markdown]
# Integrate 512 random features (m = 64 neurons each) with your step and see winner-take-all: every
# feature ends with one non-zero weight, on the neuron where its weight was largest at the start.

# %%
w0 = inc.init_weights(1, 64, 512)[:, 0]  # [512 features, 64]
w = w0.clone()
for _ in range(2000):
    w = ode_step(w, lam=0.03, dt=0.1)
nonzero = (w.abs() > 1e-6).sum(-1)
print("features with exactly one non-zero weight:", (nonzero == 1).float().mean().item())
print("winner = initially largest:", (w.abs().argmax(-1) == w0.abs().argmax(-1)).float().mean().item())

# %% [markdown]
# ## Exercise 3.4: the birthday expectation
#
# Suppose each of $n$ features ends on one of $m$ neurons chosen uniformly at random, independently.
# A neuron is polysemantic when it receives at least two features. Implement
# `expected_polysemantic(n, m)`: the **exact** expected number of such neurons. (Linearity of
# expectation: add up, over neurons, the probability that one neuron receives at least two.)
#
# <details><summary>Hint</summary>
#
# For one neuron the number of features it receives is Binomial(n, 1/m). Subtract the probabilities of
# receiving none and exactly one from 1.
# </details>

# %% exercise="expected_polysemantic"
def expected_polysemantic(n: int, m: int) -> float:
    """Expected neurons receiving >= 2 of n features placed uniformly at random on m neurons."""
    ### BEGIN SOLUTION
    q = 1 - 1 / m
    return m * (1 - q**n - (n / m) * q ** (n - 1))
    ### END SOLUTION


# %% check="expected_polysemantic"
checks.check_expected_polysemantic(expected_polysemantic)

# %% [markdown]
# ## Exercise 3.5: the same number by simulation
#
# Implement `simulate_polysemantic(n, m, trials, seed)`: draw `trials` independent placements (each
# feature picks a neuron uniformly, with replacement), count the neurons with at least two features in
# each, and return the **mean** over trials as a float. Draw from a `torch.Generator` seeded with
# `seed` (not the global generator), so the same seed gives the same number and the notebook's other
# random numbers are not disturbed.
#
# <details><summary>Hint</summary>
#
# A Python loop over trials works but is slow (the next cell asks for 20000 trials);
# `torch.randint(0, m, (trials, n), generator=g)` places all features of all trials at once;
# `scatter_add_` (or `torch.nn.functional.one_hot(...).sum(1)`) turns placements into per-neuron counts.
# </details>

# %% exercise="simulate_polysemantic"
def simulate_polysemantic(n: int, m: int, trials: int, seed: int = 0) -> float:
    """Mean number of neurons receiving >= 2 features over `trials` random placements."""
    ### BEGIN SOLUTION
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, m, (trials, n), generator=g)
    hits = torch.zeros(trials, m, dtype=torch.long).scatter_add_(1, picks, torch.ones_like(picks))
    return float((hits >= 2).sum(1).double().mean())
    ### END SOLUTION


# %% check="simulate_polysemantic"
checks.check_simulate_polysemantic(simulate_polysemantic)

# %%
for m in (64, 256, 1024):
    print(f"n=64, m={m:4d}: simulated {simulate_polysemantic(64, m, 20000):6.2f}, "
          f"exact {expected_polysemantic(64, m):6.2f}, C(n,2)/m {64 * 63 / (2 * m):6.2f}, n²/4m {64**2 / (4 * m):6.2f}")

# %% [markdown]
# **Question.** Trained models land close to $n^2/(4m)$, half the birthday count. Which pairs of
# colliding features does training pull apart, and why does the ReLU on the output matter? (Look at
# the signs of the two strong weights on a polysemantic neuron with `inc.opposite_sign_fraction`.)

# %% [markdown] only="solutions"
# *Answer.* Two features with the same sign on a shared neuron have a positive overlap
# $w_i \cdot w_j > 0$, which the ReLU passes to the output as an error, so the gradient separates them.
# With opposite signs the overlap is negative, the ReLU outputs 0, and nothing separates them. Half the
# collisions have opposite signs, hence about $\tfrac12 \binom{n}{2}/m \approx n^2/(4m)$.

# %% [markdown]
# ## Exercise 3.6: noise in the hidden layer
#
# The second sparsifier adds noise to the hidden layer instead of penalising the weights. For input
# $e_i$ the hidden vector becomes $w_i + \xi_i$ and the output is
# $y_j = \mathrm{ReLU}\big(w_j \cdot (w_i + \xi_i)\big)$. Implement `noisy_outputs(W, xi)` for
# `W: [run, n, m]` and one noise vector per input `xi: [run, n, m]`: return `[run, n, n]` whose row
# $i$ is the output for input $e_i$.

# %% exercise="noisy_outputs"
def noisy_outputs(W: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
    """W, xi: [run, n, m] -> [run, n, n]; row i = ReLU(W (wᵢ + ξᵢ))."""
    ### BEGIN SOLUTION
    return torch.relu((W + xi) @ W.transpose(1, 2))
    ### END SOLUTION


# %% check="noisy_outputs"
checks.check_noisy_outputs(noisy_outputs)

# %% [markdown]
# With your forward pass and autograd, one gradient-descent step matches the trainer's closed form:

# %%
W = inc.init_weights(8, 16, 2, dtype=torch.float64).requires_grad_(True)
xi = 0.1 * torch.randn(2, 1, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
Y = noisy_outputs(W, xi.expand(2, 8, 16))
((torch.eye(8, dtype=torch.float64) - Y) ** 2).sum().backward()
print("largest difference from the closed form:", (W.grad - inc.gradient(W.detach(), 0.0, xi)).abs().max().item())

# %% [markdown]
# **Question.** Gaussian noise of the same variance leaves the features spread out, Bernoulli ±σ noise
# makes them sparse (the page shows both). The expected loss is the same for both. What differs?

# %% [markdown] only="solutions"
# *Answer.* The mean of the hidden noise's effect is the same, its fluctuations are not. The noise that
# reaches feature $i$'s own output is $w_i \cdot \xi$: its variance is $\sigma^2 \lVert w_i\rVert^2$ for
# every distribution, but its fourth moment is
# $3\sigma^4\lVert w_i\rVert^4 + (\kappa - 3)\,\sigma^4 \sum_k w_{ik}^4$ with $\kappa = E[\xi^4]/\sigma^4$.
# For Gaussian noise ($\kappa = 3$) the second term vanishes and nothing depends on how $w_i$ is spread
# over neurons, so no neuron basis is singled out. For Bernoulli noise ($\kappa = 1$) the fluctuations
# are smallest when one neuron carries the whole feature ($\sum_k w_{ik}^4$ largest), and gradient
# descent with a finite step drifts there. Negative excess kurtosis ($\kappa < 3$) sparsifies.
