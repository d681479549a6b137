# %% [markdown]
# Interpretability would be easy if every {term}`neuron <Neuron>` stood for one thing: find out what
# each one detects, then read the network's algorithm off the weights between them. This chapter
# looks at what trained networks actually do. Neurons often respond to several unrelated things: they
# are {term}`polysemantic <Polysemantic>`. We measure that in a small trained network, see why it gets
# in the way of reading circuits, and then build three small networks that are polysemantic for
# reasons that have nothing to do with {term}`superposition <Superposition>`. Keep two things apart
# throughout: polysemanticity is something we *observe*; superposition is one *explanation* of it.
#
# The numbers printed on this page come from runs on this page; where the text quotes runs with
# more seeds or restarts than the page trains, it says so and gives the code that made them. The
# run sizes follow the course switch: small on a CPU, larger on a GPU.

# %% tags=["remove-output"]
import torch

from course_utils import SCALE, pick, set_seed
from course_utils import polysemanticity as poly
from course_utils.plotting import explorer

CFG = pick(
    cpu=dict(d_hidden=32, steps=800, seeds=[0, 1, 2], n_random=200,
             xy_restarts=32, xy_steps=2000),
    gpu=dict(d_hidden=128, steps=2000, seeds=list(range(16)), n_random=1000,
             xy_restarts=64, xy_steps=4000),
)
set_seed(0)
print(f"run size: {SCALE}")
for key, value in CFG.items():
    print(f"  {key}: {value}")

# %% [markdown]
# ## Features, neurons and directions
#
# A {term}`feature <Feature>` is a property of the input that a network represents and uses: "this digit
# has a closed loop", "this word refers to royalty". A unit is **monosemantic** when one feature
# explains its activation wherever that activation is large, and **polysemantic** when several
# unrelated features do. Whether a unit is monosemantic therefore depends on which features we have
# in mind; we will come back to that when we choose a score.
#
# ### Features as directions: embedding arithmetic on a model we train
#
# The classic hint that networks represent features as *directions* is word-embedding arithmetic:
# $v(\text{king}) - v(\text{man}) + v(\text{woman}) \approx v(\text{queen})$ {cite}`mikolov2013linguistic`.
# Rather than quote it, we reproduce it on a model small enough to see whole. Eight words differ in
# three properties (gender, royalty, age). A synthetic corpus draws each word's context words (*he*,
# *she*, *crown*, *farm*, *school*, ...) from a distribution in which every property makes some
# contexts likelier. We then fit 3-dimensional word vectors by maximum likelihood, as word2vec does,
# and never tell the model what the properties are.

# %%
counts = poly.word_context_counts(n_per_word=5000, seed=0)  # [8 words, 12 contexts]
E = poly.train_word_embeddings(counts, dim=3, seed=0)  # [8, 3]
triples = [("man", "king", "woman"), ("boy", "girl", "prince"),
           ("queen", "princess", "king")]
for a, b, c in triples:
    word, cos = poly.analogy(E, a, b, c)
    print(f"{b} - {a} + {c} = {word}  (cosine {cos:.3f})")
acc, n_analogies = poly.analogy_accuracy(E)
print(f"all one-property analogies: {acc:.0%} of {n_analogies} solved")

# %% [markdown]
# Arithmetic works because each property became one direction: the difference between a word and its
# twin of the other gender is (nearly) the same vector for all four pairs. The next cell measures it,
# and also asks whether that direction is one of the embedding's three coordinates.

# %%
dirs = poly.attribute_directions(E)  # [3 properties, 4 word pairs, 3 dims], unit
for name, D in zip(["female", "royal", "child"], dirs):
    mean = D.mean(0) / D.mean(0).norm()
    lowest = (D @ D.T).min()
    print(f"{name:>6}: lowest cosine of its 4 pair differences {lowest:.3f};"
          f" largest |cos| with an axis {mean.abs().max():.2f}")

# %% tags=["hide-input"]
poly.embedding_figure(E)

# %% [markdown] figure="word-embeddings"
# The eight trained 3-dimensional word vectors, projected on their top two principal components. The
# red arrows join each male word to its female counterpart (man → woman, boy → girl, king → queen,
# prince → princess).

# %% [markdown]
# Each property is a direction, and none of those directions is a coordinate axis: every coordinate of
# this embedding mixes gender, royalty and age. Nothing in this model cares about its coordinates. The
# loss depends on word and context vectors only through their dot products, which any rotation leaves
# unchanged. The embedding has no {term}`privileged basis <Privileged basis>`, so asking what
# "coordinate 2" means is the wrong question. The right question is which *directions* carry
# features.
#
# ### Why a ReLU makes the neuron basis privileged
#
# Hidden layers with an element-wise nonlinearity are different. Take a layer
# $h = \mathrm{ReLU}(W_1 x + b_1)$ read by $W_2 h + b_2$. Change the hidden basis with an orthogonal
# matrix $Q$ ($W_1 \to Q W_1$, $b_1 \to Q b_1$) and undo it in the read-out ($W_2 \to W_2 Q^\top$).
# Without the ReLU the network computes exactly the same function for *every* $Q$. With it,
# $\mathrm{ReLU}(Qz) \ne Q\,\mathrm{ReLU}(z)$ in general. Only permutations (and positive rescalings)
# commute with an element-wise function. So the ReLU singles out the neuron axes: a feature aligned
# with a neuron can be switched off by that neuron's threshold without disturbing the others
# {cite}`elhage2022toy`. Here is the test on a digits classifier that the next section studies in detail.

# %%
data = poly.load_digits_data()  # scikit-learn's bundled 8x8 digits, read from disk
run = poly.train_digits_mlp(data, d_hidden=CFG["d_hidden"], steps=CFG["steps"], seed=0)
model = run.model  # hidden (Linear 64 -> d_hidden), act (ReLU), readout (-> 10)
print(f"{CFG['d_hidden']} hidden neurons; accuracy: train {run.train_accuracy:.3f}, "
      f"test {run.test_accuracy:.3f}")
basis = poly.basis_test(model, data.X[data.test_idx], data.y[data.test_idx], seed=0)
print(f"test accuracy: original {basis['original']:.3f}, "
      f"neurons permuted {basis['permuted']:.3f}, "
      f"neurons rotated {basis['rotated']:.3f}")
change = basis["linear_rotated_max_logit_change"]
print(f"without the ReLU, rotating changes the logits by at most {change:.1e}")

# %% tags=["hide-input"]
poly.basis_figure(basis)

# %% [markdown] figure="basis-test"
# Test accuracy of the digits MLP as trained, with its hidden neurons permuted, and with its hidden
# layer rotated by a random orthogonal matrix; each change is undone in the read-out, so only the
# ReLU between the two layers sees it.

# %% [markdown]
# A permutation of the neurons changes nothing, while a random rotation, undone exactly in the read-out,
# costs a large share of the accuracy. Without the ReLU the same rotation is invisible, up to float32
# rounding. In this layer the neuron basis really is special, so it is fair to ask what each neuron
# means.
#
# ## Polysemantic neurons in a trained network
#
# The classifier is a 64 → 32 → 10 MLP (128 hidden neurons on a GPU) trained on the 1,797 8×8 digits
# that ship with scikit-learn {cite}`pedregosa2011scikit`, so nothing is downloaded.
# We read its hidden layer the way one reads neurons in a large model: record the
# activations on every input, then look at each neuron's top-activating inputs. The activations come
# from a {term}`forward hook <Forward hook>` on the ReLU module, which collects them batch by batch and
# is removed afterwards (exercise 1.1 asks you to write it).

# %%
acts = poly.collect_activations(model, "act", data.X)  # [1797 digits, d_hidden]
K = 50  # top examples per neuron; a class has about 180 digits
alive = poly.active_units(acts, K)
print(f"activations {list(acts.shape)}; {int(alive.sum())} of {acts.shape[1]} neurons "
      f"fire on at least {K} digits")
print("(the others are dead or nearly so and are left out below)")

# %% [markdown]
# ### A score for polysemanticity
#
# The digits come with labels, and we use the ten classes as candidate features (a proxy: see the
# caveat below). For neuron $i$ let $p_{ic}$ be the fraction of its top-$k$ digits that belong to
# class $c$. The **polysemanticity score** is the effective number of classes
#
# $$ s_i = \exp\Big(-\sum_c p_{ic} \log p_{ic}\Big), $$
#
# the exponential of the entropy of the class distribution (a Hill number, also called perplexity). Why
# this one:
#
# * it reads as a count: $s_i = 1$ when all top digits share one class, and $s_i = m$ when they are
#   spread evenly over $m$ classes, so "2.3" means "about two classes";
# * it weighs classes by their share. A single stray digit among 50 barely moves it, while "number of
#   classes present" would count that digit as much as the main class;
# * it uses the whole top-$k$ distribution, unlike $1/\max_c p_{ic}$, which only looks at the top class.
#
# We also report a cruder count: how many classes hold at least 10% of a neuron's top 50.
#
# The caveat is that *classes are not features*. A neuron that detects "a vertical stroke on the right"
# fires on 1s, 4s, 7s and 9s. It is monosemantic for the stroke, yet scores as polysemantic for
# classes. The score measures how far neurons line up with *our* candidate features. The comparison
# below, with random directions, is what makes it informative.

# %%
class_counts = poly.top_k_class_counts(acts[:, alive], data.y, K)  # [alive neurons, 10]
scores = poly.polysemanticity_score(class_counts)
multi = poly.classes_above(class_counts, 0.1) >= 2
print(f"effective number of classes in the top {K}: median {scores.median():.2f}, "
      f"range {scores.min():.2f} to {scores.max():.2f}")
print(f"neurons with two or more classes at >= 10% of their top {K}: "
      f"{int(multi.sum())} of {len(multi)}")
alive_ids = alive.nonzero().flatten()
most_mono = alive_ids[scores.argmin()].item()
most_poly = alive_ids[scores.argmax()].item()

# %% tags=["hide-input"]
poly.neuron_figure(acts, data.y, data.images, most_mono, k=K)

# %% [markdown] figure="most-selective-neuron"
# The most class-selective live neuron (lowest polysemanticity score): its twelve top-activating
# digits, largest first, and the classes of its top 50 examples.

# %% tags=["hide-input"]
poly.neuron_figure(acts, data.y, data.images, most_poly, k=K)

# %% [markdown] figure="least-selective-neuron"
# The least class-selective live neuron (highest score), drawn as in {fig}`most-selective-neuron`.

# %% [markdown]
# {fig}`most-selective-neuron` shows the most class-selective neuron and {fig}`least-selective-neuron`
# the least. Most neurons sit between the two, and most of them give at least a tenth of their top
# digits to two or more classes.
# To browse them all, use the explorer below. In JupyterLab or Colab it is a live slider; on this
# website it is a precomputed slider over every neuron.

# %% tags=["hide-input"]
explorer(lambda neuron: poly.neuron_figure(acts, data.y, data.images, neuron, k=K),
         {"neuron": [int(i) for i in alive_ids]})

# %% [markdown] figure="neuron-explorer"
# Every live neuron, drawn as in {fig}`most-selective-neuron`. On this website the slider moves
# through frames drawn when the page was built; in a live notebook it redraws the figure.

# %% [markdown]
# ### Are neurons more interpretable than random directions?
#
# An old and uncomfortable observation is that single units of a vision model did not look more
# interpretable than random directions in the same layer {cite}`szegedy2014intriguing`. We can test that
# here. Project the activations on random unit directions of the hidden layer, score each direction's top-50
# digits exactly like a neuron's, and add the 10 read-out directions (row $c$ of $W_2$ is the direction
# whose activation the logit for class $c$ reads).

# %%
study = poly.direction_study(acts, data.y, poly.readout_directions(model), k=K,
                             n_random=CFG["n_random"], seed=1)
for key, value in study.summary().items():
    shown = f"{value:.3f}" if isinstance(value, float) else value
    print(f"{key:>26}: {shown}")

# %% tags=["hide-input"]
poly.score_comparison_figure(study.neuron_scores, study.random_scores,
                             study.readout_scores)

# %% [markdown] figure="score-comparison"
# Polysemanticity score (effective number of classes among the top 50 examples) of every live
# neuron, of random unit directions of the same layer (200 in the CPU run, 1,000 at GPU size) and of
# the 10 read-out directions; one point each.

# %% [markdown]
# One network is one sample, so here are several seeds (3 on a CPU, 16 on a GPU).

# %%
rows = poly.digits_seed_study(data, CFG["seeds"], d_hidden=CFG["d_hidden"],
                              steps=CFG["steps"], k=K, n_random=CFG["n_random"])
print("seed  test acc  neurons  median score: neuron  random  read-out  >=2 classes")
for r in rows:
    print(f"{r['seed']:>4}  {r['test_accuracy']:>8.3f}  {r['neurons_active']:>7}"
          f"  {r['neuron_score_median']:>20.2f}  {r['random_score_median']:>6.2f}"
          f"  {r['readout_score_median']:>8.2f}"
          f"  {r['frac_neurons_multi_class']:>11.0%}")

# %% [markdown]
# What we find. The table shows three seeds; the spread below is from 16 seeds at this size
# (`poly.digits_seed_study(data, range(16))`, the same code), and the chapter's tests check three:
#
# * **Neurons are polysemantic with respect to classes.** The median neuron spreads its top 50
#   digits over about two effective classes (medians 1.96 to 2.97 over the 16 seeds), and on every
#   seed 68% to 93% of the neurons give at least 10% of them to two or more classes.
# * **Neurons are no more class-selective than random directions.** The neuron median minus the
#   random-direction median ranges from −0.15 to +0.91 over the 16 seeds (its median is +0.10), so
#   the neurons are the *less* selective of the two on 12 seeds of 16, and the gap is not always
#   small. Although the ReLU privileges the neuron basis, this network did not line its neurons up
#   with the classes.
# * **Directions that are class-selective exist in the same layer.** The read-out directions score
#   about one class each on every seed. The class information is there, along directions that mix
#   many neurons.
#
# That pattern (features along directions that are not neurons) is the starting point for the rest of
# the course. It also shows how much the result depends on the candidate features: a stroke detector
# would look polysemantic here.
#
# ## Why polysemanticity blocks circuit analysis
#
# Circuits-style interpretability reads an algorithm off the weights between understood units
# {cite}`olah2020zoom`. Take an upstream neuron A that responds to five features $a_1..a_5$ and a
# downstream neuron B that is read as five features $b_1..b_5$, joined by a single weight $w$. That one
# number stands for 5 × 5 = 25 feature-to-feature connections, and they cannot be set independently: all
# 25 share the same $w$. Below we build both networks and *measure* the feature-level connections by
# switching on one upstream feature at a time. The intended wiring is "$a_i$ drives $b_i$".

# %%
circuit = poly.circuit_example(n_features=5, weight=0.8, seed=0)
mono = poly.effective_connections(circuit.monosemantic_forward, 5)  # [down 5, up 5]
polyc = poly.effective_connections(circuit.polysemantic_forward, 5)
print(f"one neuron per feature: {int((mono.abs() > 1e-6).sum())} non-zero connections, "
      "25 weights")
n_poly = int((polyc.abs() > 1e-6).sum())
print(f"two polysemantic neurons: {n_poly} non-zero connections, "
      "1 weight between them;")
print(f"rank of the connection matrix {torch.linalg.matrix_rank(polyc).item()}")

# %% tags=["hide-input"]
poly.circuit_figure(mono, polyc)

# %% [markdown] figure="circuit-connections"
# Feature-to-feature connections measured by switching on one upstream feature $a_i$ at a time and
# reading every downstream feature $b_j$: one neuron per feature (left) against two polysemantic
# neurons joined by a single weight (right).

# %% [markdown]
# In the monosemantic network, reading the weights *is* reading the circuit. In the polysemantic one,
# knowing $w = 0.8$ tells us little. Every $a_i$ drives every $b_j$, the connection matrix has rank 1,
# and to find which of the 25 connections the network actually relies on we must go back to
# features, which the neuron basis does not give us. A real layer has thousands of neurons, and each
# polysemantic weight multiplies in the same way.
#
# ## Polysemanticity without superposition
#
# The best-known explanation of polysemanticity is **superposition**: a network represents more
# features than it has dimensions by giving them almost orthogonal directions, so some neurons must
# carry several features {cite}`elhage2022toy`. Superposition implies polysemanticity, but the converse
# does not hold. The three experiments below show polysemantic neurons in networks that represent
# *no more features than they have neurons* {cite}`chan2024superposition`.
#
# ### 1. Orthogonal features that are not aligned with the neurons
#
# A ReLU autoencoder with 6 hidden neurons learns to reconstruct 3 sparse signed features (tied weights:
# $h = \mathrm{ReLU}(W x + b)$, $\hat x = W^\top h + c$). Three features fit easily into six neurons.
# The positive biases keep every pre-activation above zero, so the ReLU never bends on this data.
# Training then finds a zero-loss solution in which the privileged basis plays no part: the features
# come out orthogonal, each spread over several neurons. Neural networks often settle in such
# low-loss solutions that are not the tidy one.

# %%
orth = poly.train_orthogonal_autoencoder(n_features=3, n_neurons=6, seed=0)
gram = orth.W.T @ orth.W  # [3, 3]: feature directions' dot products
purity_before = poly.neuron_purity(orth.W)  # [6]: share of each neuron's main feature
off = (gram - torch.eye(3)).abs().max()
print(f"loss {orth.loss:.1e}; feature directions orthonormal up to {off:.1e}")
print("neuron purity:", [round(v, 2) for v in purity_before.tolist()])
print(f"neurons with purity below 0.9 (a second feature holds over 10% of the neuron): "
      f"{int((purity_before < 0.9).sum())} of 6")

# %% [markdown]
# **Neuron purity** is the share of a neuron's squared weights held by its main feature:
# $\max_j M_{ij}^2 / \sum_j M_{ij}^2$, where $M_{ij}$ is feature $j$'s weight on neuron $i$. It is 1 for
# a monosemantic neuron and $1/n$ for an even mix of $n$ features. For independent unit-variance
# features it is also the share of the neuron's activation variance that its main feature explains.
# Several neurons here mix features. Because there are fewer features than neurons, though, there is a
# rotation of the hidden space that lines every feature up with its own axis. With the feature values
# known, the **orthogonal Procrustes** problem finds it: the orthogonal $Q$ minimising
# $\lVert HQ - F\rVert$ is $Q = UV^\top$, where $U S V^\top$ is the SVD of $H^\top F$
# {cite}`schonemann1966procrustes`. Here $H$ holds the centred activations and $F$ the centred
# features, padded with zero columns to the layer width.

# %%
rec = poly.recover_features(orth, seed=1)
purity_after = poly.neuron_purity(rec["rotated_W"])
print("purity after rotation:", [round(v, 3) for v in purity_after[:3].tolist()])
unused = rec["rotated_W"][3:].norm()
print(f"the other 3 rotated axes carry weight norm {unused:.1e}: unused")
print(f"activation variance the rotated features leave unexplained: "
      f"{rec['residual']:.1e}")

# %% tags=["hide-input"]
poly.feature_matrix_figure(orth.W, rec["rotated_W"])

# %% [markdown] figure="orthogonal-rotation"
# The weight of each of the 3 features on each of the 6 neurons of the trained autoencoder (left),
# and the same after the rotation of neuron space that orthogonal Procrustes recovers
# (`poly.recover_features`, right); each neuron's purity in brackets.

# %% [markdown]
# After the rotation, each of three axes carries exactly one feature and the other three carry nothing.
# The polysemanticity was a matter of basis, and a change of basis removes it.
#
# **With superposition, no such rotation exists.** In a 2-neuron layer we can try every rotation. Two
# orthogonal features reach purity 1 at the right angle. Five features spread around the circle (the
# pentagon a toy model of superposition learns for sparse features; chapter 2 trains it) never get
# close. The reason is a short calculation. For any unit vector $q$, $\sum_j (q\cdot w_j)^2 = q^\top W W^\top q = 5/2$ for the pentagon,
# while any single term is at most 1, so every axis has purity at most $2/5$ whatever the rotation.
# More generally, $n$ features spread evenly in $d$ dimensions cap purity at $d/n$.

# %%
curves = {}
for n_feat in (2, 3, 5):
    M = poly.polygon_features(n_feat, angle=0.4)
    angles, purity = poly.best_purity_over_rotations(M)
    curves[f"{n_feat} features in 2 neurons"] = (angles, purity)
    print(f"{n_feat} features in 2 neurons: best mean purity over all rotations "
          f"{purity.max():.3f}")

# %% tags=["hide-input"]
poly.purity_sweep_figure(curves)

# %% [markdown] figure="purity-rotations"
# Mean neuron purity of a 2-neuron layer against the rotation of its basis, for 2 orthogonal
# features and for 3 and 5 features spread evenly around the circle. Only the orthogonal pair
# reaches purity 1.

# %% [markdown]
# ### 2. A 4-neuron network that computes x·y
#
# Some computations *require* neurons that mix inputs. Multiplying two numbers with one ReLU layer has a
# natural solution based on
#
# $$ xy = \tfrac14\big((x+y)^2 - (x-y)^2\big): $$
#
# approximate each square by a piecewise-linear function of $x+y$ or $x-y$, then subtract. We train
# networks $2 \to 4 \to 1$ on $y = x_1 x_2$ with standard normal inputs. Training this tiny network is
# harder than it looks: most random restarts settle in a worse local minimum. So we train many restarts
# at once and keep the best, and we count how many found it.

# %%
xy = poly.train_xy_network(hidden=4, restarts=CFG["xy_restarts"], steps=CFG["xy_steps"],
                            seed=0)
print(f"relative test error (MSE / E[(xy)^2]; a linear model gets 1.0): "
      f"{xy.relative_error:.3f}")
errors = xy.restart_errors.tolist()
n_good = sum(e < 0.05 for e in errors)
print(f"restarts that reached a relative error below 0.05: {n_good} of {len(errors)}")
print(f"the others stopped at {sorted({round(e, 2) for e in errors if e >= 0.05})}")
readings = poly.xy_neuron_readings(xy.model)
print("                                   top 1% of inputs")
print("neuron  diagonal  |cos|  out weight  mean|x|  mean|y|  mean sign(xy)")
for i in range(4):
    diagonal = "(1, 1)" if readings["diagonal"][i] > 0 else "(1,-1)"
    print(f"{i:>6}  {diagonal:>8}  {readings['alignment'][i]:.3f}"
          f"  {readings['output_weight'][i]:>+10.2f}  {readings['mean_abs_x'][i]:>7.2f}"
          f"  {readings['mean_abs_y'][i]:>7.2f}  {readings['mean_sign_xy'][i]:>+13.2f}")

# %% tags=["hide-input"]
poly.xy_figure(xy.model)

# %% [markdown] figure="xy-function"
# The best restart of the 4-neuron network: its function $f(x, y)$ (left), the target $xy$ (middle),
# and the network along the two diagonals, $f(t, t)$ and $f(t, -t)$, against $\pm t^2$ (right).

# %% tags=["hide-input"]
poly.xy_neurons_figure(xy.model)

# %% [markdown] figure="xy-neurons"
# Each hidden neuron's activation over the $(x, y)$ plane for the network of {fig}`xy-function`,
# with its weight in the output. Each neuron reads one diagonal direction, so it is on over a
# half-plane bounded by a line across that diagonal.

# %% [markdown]
# Only a minority of restarts get there; the rest stop in local minima. This page's seed finds it
# in a handful of its restarts (printed above). Over 16 seeds of 32 restarts at this size
# (`poly.train_xy_network(restarts=32, seed=s)`, seeds 0 to 15) 90 of 512 restarts reached a
# relative error below 0.05, about one in six (18%), from 0 to 9 per seed: seed 2 found it in
# none of its 32 restarts. At the GPU size (64 restarts, 4,000 steps, seeds 0 to 3) it was 47 of
# 256. A common local minimum keeps a neuron
# always on, as a purely linear piece, which leaves a single kink for one of the two squares. That is the
# "low-loss but suboptimal solution" route to messy neurons in miniature. The best network finds the
# textbook solution. Each first-layer weight vector lies on the (1, 1) or
# the (1, −1) diagonal, two neurons per diagonal, one for each sign. The (1, 1) neurons enter the output
# with a positive weight and the (1, −1) neurons with a negative one. Along each diagonal the network
# is a piecewise-linear stand-in for $\pm t^2$ (right panel of {fig}`xy-function`). Compared with the
# standard normal inputs, whose mean $|x|$ is 0.80, each neuron's top inputs have $|x|$ and $|y|$ both
# near 1.9: the neuron fires when *x and y are both large*. An interpreter who probed it with contrast pairs that vary $x$ alone or
# $y$ alone would find a neuron that responds to both and call it polysemantic. Yet the problem is
# exactly two-dimensional and four neurons hold no superposition. The "natural" variables of this
# computation are $x+y$ and $x-y$, not $x$ and $y$.
#
# ### 3. Correlated features share a neuron
#
# When two features usually move together, a network short of capacity can represent their *sum* with one
# neuron. We train $h = \mathrm{ReLU}(Wx)$, $\hat x = \mathrm{ReLU}(W^\top h + b)$ with 2 neurons and 4
# features (importance $0.9^i$) on three datasets: independent dense features; two correlated pairs, where
# each pair shares one value plus small noise; and independent *sparse* features, which give
# superposition for comparison.

# %%
neuron_runs = {}
for kind in ("independent", "correlated", "sparse"):
    W, loss = poly.train_neuron_model(kind, n_features=4, n_neurons=2, instances=4,
                                      seed=0)
    neuron_runs[kind] = W
    pur = torch.stack([poly.neuron_purity(w) for w in W])
    print(f"{kind:>11}: neuron purity over 4 instances {pur.min():.2f} to "
          f"{pur.max():.2f}; loss {loss.mean():.4f}")

# %% tags=["hide-input"]
poly.correlated_figure({k: W[0] for k, W in neuron_runs.items()})

# %% [markdown] figure="correlated-neurons"
# The weights $W$ (2 neurons × 4 features) of the first of four instances trained on each dataset:
# independent dense, correlated pairs, independent sparse; the mean neuron purity is in each title.

# %% [markdown]
# * **Independent dense features**: each neuron takes one feature (purity 1) and the other two features
#   are dropped. This is the monosemantic solution the privileged basis invites.
# * **Correlated pairs**: each neuron reads one pair with equal weights (purity 0.5). It is polysemantic,
#   firing for $x_0$ and for $x_1$, yet the layer represents two directions in two dimensions. No
#   superposition: the model found the pairs' principal component, which is what a rate-limited code
#   should keep. Real data are full of correlations that humans do not notice, from camera artefacts in
#   images to statistical regularities of text.
# * **Sparse independent features** (for comparison): in most instances each neuron mixes three or more
#   features, with weights of both signs. That is superposition, the subject of chapter 2.
#
# ### 4. Non-linear representations and memorisation (reading)
#
# Two more routes need no experiment here. First, a network need not represent a feature as a direction
# at all. With enough precision it can pack information into the *digits* of an activation: extract
# bit $k$ of a number with a few ReLUs, or store a lookup table in the low-order bits of weights. Such
# bit-extraction constructions underlie classic results on the expressive power of ReLU networks,
# including networks with one neuron per layer
# {cite}`bartlett2019nearly,lin2018resnet`. A neuron that holds "the third bit of something" responds to
# inputs with nothing in common to us. Second, a network that memorises individual training examples
# can spend a neuron on an arbitrary set of them. Neither looks like superposition, and our tools
# would have trouble telling them apart from it. Chapter 3 (*Incidental polysemanticity*) adds a
# further origin: polysemanticity that arises although there are more neurons than features, from random
# initialisation and a pressure towards sparsity {cite}`lecomte2023incidental`.
#
# ## Observation versus explanation
#
# Polysemanticity is an empirical finding about units: their top activations mix things we consider
# unrelated. Superposition is a hypothesis about *why*: more sparse features than dimensions, packed in
# nearly orthogonal directions. This chapter showed polysemantic neurons arising from a basis that is not
# neuron-aligned, from a computation whose natural variables are mixtures, and from correlated features,
# all without superposition. Each case calls for a different remedy: a rotation, a change of variables,
# or nothing at all. Mixing the two terms up hides these choices. [Chapter 2](../ch02_superposition/index.ipynb) (*Superposition*)
# studies the superposition hypothesis in toy models, where we know the true features and can watch them
# pack into fewer dimensions. [Chapter 3](../ch03_incidental/index.ipynb) (*Incidental polysemanticity*) shows polysemanticity appearing
# even when capacity is ample.
#
# ## Summary
#
# * A feature is a property of the input the network represents. In layers without an element-wise
#   nonlinearity features are directions with no preferred basis; a ReLU privileges the neuron basis
#   (rotating a trained ReLU layer costs accuracy, permuting it costs nothing).
# * In a digits MLP most neurons are polysemantic with respect to classes, and no more class-selective
#   than random directions, while the read-out directions are. The class features live in directions.
# * One weight between two polysemantic neurons stands for many feature-level connections, so circuits
#   cannot be read from neuron-to-neuron weights.
# * Polysemanticity without superposition: non-aligned orthogonal features (an orthogonal rotation
#   recovers them; under superposition none exists), computations such as x·y whose natural variables
#   mix inputs, correlated features, and non-linear or memorised representations.
#
# **Next:** the exercise notebook (link in the box at the top) asks you to write the tools used
# here: the activation hook, class counts, the score, neuron purity, the Procrustes rotation and
# the reading of the x·y network. Then [chapter 2](../ch02_superposition/index.ipynb) builds the
# smallest model in which superposition happens.
