# %% [markdown]
# The earlier chapters took superposition apart: toy models that pack more features than dimensions,
# sparse autoencoders (SAEs) that unpack them, and a decomposition of the weights instead of the
# activations. This chapter asks what that buys. Three uses are measured on the course model, with
# the ground-truth labels of `course_utils.labels` as the referee: **steering** the model along a
# direction, **removing a spurious concept** from a classifier by ablating SAE latents (SHIFT,
# {cite}`marks2024sparse`), and the claim that **polysemanticity is compression**. The chapter ends
# with what interpretability has and has not shown for safety, and what is open.
#
# The code is in `course_utils.applications`; everything below runs on the shipped course model and
# its shipped SAEs (`resid1-topk-2048`: 2,048 TopK latents, $k = 16$, on the residual stream before
# block 1).

# %% tags=["remove-output"]
import torch

from course_utils import applications as app
from course_utils import pick, set_seed, tms
from course_utils.corpus import load_corpus
from course_utils.course_lm import load_course_lm
from course_utils.saes.course import corpus_windows, load_course_sae, spec
from course_utils.saes.interp import labelled_activations, random_directions

set_seed(0)
torch.set_num_threads(1)
torch.set_grad_enabled(False)  # the page only runs the model forward
size = pick(
    cpu=dict(train_tokens=12_000, test_tokens=6_000, prompts=12, new=20, per_group=700),
    gpu=dict(
        train_tokens=60_000, test_tokens=30_000, prompts=64, new=32, per_group=4000
    ),
)
HOOK = "blocks.1.hook_resid_pre"
model, tokenizer = load_course_lm()
sae = load_course_sae("resid1-topk-2048", model)
train = labelled_activations(
    model, tokenizer, HOOK, size["train_tokens"], "train", seed=0
)
test = labelled_activations(
    model, tokenizer, HOOK, size["test_tokens"], "validation", seed=1
)
print(", ".join(f"{k} {v}" for k, v in size.items()))

# %% [markdown]
# ## Steering, measured
#
# {term}`Activation steering` adds a vector to a hidden state at every position while the model generates
# {cite}`turner2023activation`; with an SAE the vector can be a latent's decoder direction, or the
# latent can be *clamped* to a value {cite}`templeton2024scaling`. Whether it works is usually judged
# by reading the output. Here the output is Python, so a labeller can judge it: the measure is the
# fraction of generated tokens that lie **inside a string**, read off the generated text by Python's
# own tokenizer (`app.tolerant_labels`: generated code need not parse, so only the tokenizer, not
# the parser, is used; on parsable code it agrees with the course labeller, which the tests check).
#
# Four unit directions in the 128-dimensional residual stream, and eight random ones, all added with
# the same norm (the *strength*; the residual stream's mean norm here is about 11):
#
# * the SAE latent with the best F1 for "in a string" among latents with precision ≥ 0.9, and the
#   latent whose decoder direction is nearest the difference of means (a supervised choice);
# * the weight vector of a logistic-regression probe for the concept;
# * the difference between the mean activation on string tokens and on other tokens;
# * eight random directions (seeded): a single random direction is one draw, and random directions
#   differ a lot from each other, so an effect counts only if it leaves their whole range.

# %%
CONCEPT = "in_string"
N_RANDOM = 8
y = train.labels[CONCEPT]
latents = sae.encode(train.acts).numpy()
string_latent = app.best_latent(latents, y)
mean_diff = app.mean_difference_direction(train.acts, y)
nearest = int((sae.W_dec @ mean_diff / sae.W_dec.norm(dim=1)).argmax())
directions = {
    f"SAE latent {string_latent}": app.latent_direction(sae, string_latent),
    f"SAE latent {nearest}": app.latent_direction(sae, nearest),
    "probe": app.probe_direction(train.acts, y),
    "mean difference": mean_diff,
}
randoms = random_directions(model.cfg.d_model, N_RANDOM, seed=0).T  # [8, d_model]
print("cosine with the mean difference:")
for k, v in directions.items():
    print(f"{k:>16}: {float(v @ mean_diff):5.2f}")
rand_cos = (randoms @ mean_diff).abs()
print(f"{'random (|cos|)':>16}: {rand_cos.mean():5.2f} mean, {rand_cos.max():.2f} max")
print(f"mean residual norm at {HOOK}: {train.acts.norm(dim=-1).mean():.1f}")

# %% [markdown]
# Each direction is added at every position while the model continues 12 prompts greedily (48-token
# windows of held-out standard-library files, starting at a top-level line), and the fraction of the
# new tokens inside a string is counted (`app.dose_response_many` runs all twelve directions as one
# batch per strength):

# %%
texts = [f.text for f in load_corpus("validation")]
prompts = app.prompt_windows(tokenizer, texts, size["prompts"], length=48, seed=0)
strengths = [0.0, 8.0, 16.0, 32.0, 48.0]
every = torch.stack([*directions.values(), *randoms])  # [12, d_model]
table = app.dose_response_many(
    model, tokenizer, prompts, HOOK, every, strengths, CONCEPT, size["new"]
)
fractions = dict(zip(directions, table[: len(directions)]))
random_fractions = table[len(directions) :]  # [8, n_strengths]
band = app.spread(random_fractions)
print(f"{'strength':>16}: " + "  ".join(f"{s:4g}" for s in strengths))
for name, f in fractions.items():
    print(f"{name:>16}: " + "  ".join(f"{v:.2f}" for v in f))
for stat in ("mean", "min", "max"):
    print(f"{'random ' + stat:>16}: " + "  ".join(f"{v:.2f}" for v in band[stat]))

# %% tags=["hide-input"]
app.plot_dose_response(
    strengths, fractions, CONCEPT, baseline=table[0, 0], random=random_fractions
)

# %% [markdown] figure="dose-response"
# Fraction of the generated tokens that lie inside a string (vertical) against the steering
# strength, the norm of the vector added at `blocks.1.hook_resid_pre` at every position
# (horizontal), one line per direction: the latent of the course SAE `resid1-topk-2048` best at "in
# a string", its latent nearest the mean difference, the probe and the difference of means. The
# grey band spans the eight random directions (minimum to maximum) and the dashed line is their
# mean. Greedy continuations of the 12 held-out prompts, 20 new tokens each (CPU size); the dotted
# line is the unsteered model.

# %% [markdown]
# Each direction against the random ones, strength by strength: the distance from the random mean
# in random standard deviations, and whether it lies above (`^`) or below (`v`) all eight random
# directions or inside their range (`=`):

# %%
print(f"{'strength':>16}: " + "  ".join(f"{s:6g}" for s in strengths[1:]))
for name, f in fractions.items():
    cmp = app.compare_to_random(f, random_fractions)
    mark = {"above": "^", "below": "v", "inside": "="}
    cells = [f"{z:+5.1f}{mark[p]}" for z, p in zip(cmp["z"], cmp["position"])]
    print(f"{name:>16}: " + "  ".join(cells[1:]))

# %% [markdown]
# Read the dose-response curves ({fig}`dose-response`) against the grey band, not against one random
# line: random directions of the same norm already move the fraction of string tokens, most of
# them *down* from the unsteered 0.35 (the model falls into repeating a few tokens), a few of them
# up at strengths 8 and 16. Against this draw of eight the difference of means lies above every
# random direction at every strength (0.64 at strength 32, 5.8 random standard deviations above
# the random mean, and still rising at 48), and so does the probe (0.66 at 32, before it falls
# back to 0.47 at 48). Both SAE latents stay inside the random range at every strength, within
# about one random standard deviation of the random mean: measured this way their decoder
# directions steer no better than a random direction of the same norm. The latent nearest the
# mean difference comes closest at strength 8 (0.46 against a random maximum of 0.47).
#
# Eight is still a small sample of random directions, and its maximum moves with the draw. Three
# more draws of eight (random seeds 1 to 3, the same code and prompts: the benchmark
# `ch07/steering_random_draws` in `benchmarks/bench_applications.py`, one run) put
# the difference of means 1.9 to 7.4 random standard deviations above the random mean at strength
# 32, but one of them (seed 1) holds a random direction that reaches 0.71, above it; the SAE
# latent stays within 0.6 standard deviations of the random mean in every draw. The robust reading
# is the distance from the random mean, not "above every random direction" (the tests assert the
# former, on a smaller run).
#
# Single SAE latents are weaker steering handles than a difference of means here, the same ordering
# AxBench found on large models {cite}`wu2025axbench`. The course's latents are narrow (the best one
# fires on few string tokens), which is one reason: a latent that marks one kind of string is not
# "the string feature".

# %% [markdown]
# ### What it costs
#
# The price of an edit is the damage it does elsewhere: the next-token loss on held-out code with the
# vector added at every position.

# %%
held_out = corpus_windows(tokenizer, "validation", 8 * 128, model.cfg.n_ctx, seed=2)
clean = app.steered_loss(model, held_out)


def cost(d: torch.Tensor) -> list[float]:
    return [
        app.steered_loss(model, held_out, [(HOOK, app.add_hook(d, s))])
        for s in strengths
    ]


costs = {name: cost(d) for name, d in directions.items()}
random_costs = torch.tensor([cost(d) for d in randoms]).numpy()  # [8, n_strengths]
cost_band = app.spread(random_costs)
print(f"clean held-out loss {clean:.3f} nats/token")
print(f"{'strength':>16}: " + "  ".join(f"{s:4g}" for s in strengths))
for name, c in costs.items():
    print(f"{name:>16}: " + "  ".join(f"{v:.2f}" for v in c))
for stat in ("mean", "min", "max"):
    print(f"{'random ' + stat:>16}: " + "  ".join(f"{v:.2f}" for v in cost_band[stat]))

# %% tags=["hide-input"]
app.plot_steering_cost(strengths, costs, clean, random=random_costs)

# %% [markdown] figure="steering-cost"
# Next-token loss on held-out code (nats per token, vertical) with each direction of
# {fig}`dose-response` added at every position, against the steering strength (horizontal), one
# line per direction; the grey band spans the eight random directions (minimum to maximum), the
# dashed line is their mean and the dotted line is the clean model's loss.

# %% [markdown]
# Cost grows with the norm of the edit for every direction, random included ({fig}`steering-cost`).
# At strength 8 (about three quarters of the residual norm) it is already 1.2 to 1.9 nats per
# token above the clean 2.91, and at 32, where the probe's string fraction peaks, 4.8 to 8.1. The
# eight random directions alone span 3.64 to 4.60 nats at strength 8 and 6.5 to 8.7 at 32. The SAE
# latents lie inside that band (latent 1178 just above it at 32, 8.74); the difference of means
# lies at its top and leaves it at strength 8 only; the probe lies above it at every strength (11.05
# at 32): the directions that change what the model writes cost as much as a random edit of the
# same size or more, not less. Steering a two-layer model this hard is a blunt instrument.
#
# ### Steering explorer
#
# Pick a latent (the string latent above, or the best "in a comment" latent) and a strength to see
# the steered continuation of one prompt. Things to try: raise the strength step by step and watch
# where the output stops being code. *On the website* the tabs show the string latent at each
# strength (precomputed by the same function); choosing another latent needs a live notebook.

# %%
comment_latent = app.best_latent(latents, train.labels["in_comment"])
steer_latents = {
    f"string latent {string_latent}": string_latent,
    f"comment latent {comment_latent}": comment_latent,
}
prompt = prompts[11:12]  # a prompt that ends in code, not in a docstring


def steered(name: str, strength: float) -> str:
    d = app.latent_direction(sae, steer_latents[name])
    ids = app.generate_ids(model, prompt, 24, [(HOOK, app.add_hook(d, strength))])
    return tokenizer.decode(ids[0].tolist())


app.steering_explorer(
    steered, list(steer_latents), strengths, tokenizer.decode(prompt[0].tolist())
)

# %% [markdown] figure="steering-explorer"
# The steering explorer: the last lines of one held-out prompt and its greedy 24-token
# continuation with a latent's decoder direction added at the chosen strength. In a live
# notebook a menu picks the string or the comment latent and a slider the strength; on the
# website one tab per strength (0 to 48) shows the string latent.

# %% [markdown]
# Clamping sets the latent's value instead of adding to it, and keeps the SAE's error term (what the
# SAE fails to reconstruct) untouched: `app.clamp_hook` computes $x + (c - f_i(x))\,W_{\text{dec},i}$.
# The latent's own activations set the scale: each SAE latent of {fig}`dose-response` is clamped to
# 0 (ablated) and to 1, 2, 5 and 10 times its largest activation on the training tokens, at every
# position, on the same 12 prompts, and the string fraction is counted as before
# (`app.clamp_response`). Its decoder rows have unit norm, so where the latent is silent the edit
# has norm $c$.

# %%
multiples = [0.0, 1.0, 2.0, 5.0, 10.0]
print(f"{'x max activation':>16}: " + "  ".join(f"{m:4g}" for m in multiples))
for lat in (string_latent, nearest):
    top = float(latents[:, lat].max())
    f = app.clamp_response(model, tokenizer, prompts, HOOK, sae, lat,
                           [m * top for m in multiples], CONCEPT, size["new"])
    cells = "  ".join(f"{v:.2f}" for v in f)
    print(f"{f'SAE latent {lat}':>16}: {cells}   (max {top:.1f})")

# %% [markdown]
# Measured (12 prompts, 20 new tokens each, one run): ablating either latent leaves the string
# fraction at the unsteered 0.35: removing it alone does not stop the model writing strings.
# At its maximum the string latent even lowers it (0.29). Clamped to twice its maximum (an edit of
# norm about 8 for latent 1178 and 4 for latent 1812) each
# lifts the fraction to 0.45 and 0.44, close to what adding the latents' directions at strength 8
# gives (0.40 and 0.46) and within the range of random directions of that norm (0.20 to 0.48); at
# five and ten times the maximum the continuations degenerate and every run lands on the same
# 0.33 as the added latent directions do from strength 16 on. Clamping these latents is no better
# a handle than adding them. One continuation, clamped to 20 at every position: the unsteered model
# continues this prompt with an import statement, the clamped one degenerates into a repeated
# token.

# %%
clamped = app.generate_ids(
    model, prompt, 24, [(HOOK, app.clamp_hook(sae, string_latent, 20.0))]
)
print(tokenizer.decode(clamped[0].tolist()))

# %% [markdown]
# ## Removing a spurious concept (SHIFT, made checkable)
#
# {term}`SHIFT` {cite}`marks2024sparse` starts from a classifier trained on data in which the intended label
# is perfectly confounded with a spurious one (in the original, profession with gender), finds the SAE
# latents the classifier reads, has a human mark the spurious ones and zero-ablates them while keeping
# the SAE error term. On Gemma-2-2B the authors report profession / gender / worst-group accuracy
# 67.7 / 81.9 / 18.2% before and 76.0 / 51.5 / 50.0% after (*quoted*). SAEBench turned the same
# idea into the SCR score, $(A_\text{abl} - A_\text{base}) / (A_\text{oracle} - A_\text{base})$
# {cite}`karvonen2025saebench`.
#
# The course's version replaces every judgement by a label:
#
# * **intended** label: the token is inside a string; **spurious** label: the token is inside
#   brackets. Both are properties of the context, not of the token's identity, so deleting tokens
#   cannot solve the task;
# * the **biased** training set holds only strings inside brackets and non-strings outside them; the
#   **test** set holds all four groups equally (held-out files), so that the
#   {term}`worst-group accuracy <Worst-group accuracy>` can be measured;
# * the probe is a logistic regression on the residual stream; latents are ranked by SAEBench's
#   attribution $|(\bar f^+_j - \bar f^-_j)(W_{\text{dec},j} \cdot w)|$; among the top 50, the
#   latents whose chance-corrected precision for "in brackets" exceeds that for "in a string"
#   (measured on natural, unconfounded text) are marked spurious, with no human in the loop;
# * the **neuron skyline** applies the same ranking and selection to the 128 residual dimensions
#   (mean-ablated); the **oracle** is a probe trained on balanced data.

# %%
res = app.run_shift(
    train.acts,
    train.labels["in_string"],
    train.labels["bracket>=1"],
    test.acts,
    test.labels["in_string"],
    test.labels["bracket>=1"],
    sae,
    n_per_group=size["per_group"],
    top_n=50,
)
rows = {
    "biased probe": res.base,
    "SHIFT": res.shift,
    "SHIFT + retrain": res.shift_retrain,
    "neuron skyline": res.neurons,
    "oracle": res.oracle,
}
print(f"{'':>16} intended spurious worst")
for name, acc in rows.items():
    print(
        f"{name:>16} {acc['intended']:8.3f} {acc['spurious']:8.3f}"
        f" {acc['worst_group']:5.3f}"
    )
print(
    f"ablated {len(res.ablated)} of the top {len(res.candidates)} latents; "
    f"{len(res.ablated_neurons)} neurons; SCR = {res.scr:.3f}"
)

# %% tags=["hide-input"]
app.plot_shift(rows)

# %% [markdown] figure="shift-accuracy"
# Intended (in a string), spurious (in brackets) and worst-group accuracy (horizontal) on the
# balanced held-out test set (vertical) of the biased probe, SHIFT, SHIFT with the probe retrained,
# the neuron skyline and the oracle probe, from the table above; the dotted line is chance.

# %%
yb = torch.as_tensor(train.labels["in_string"])
zb = torch.as_tensor(train.labels["bracket>=1"])
contrib = sae.encode(train.acts) * (sae.W_dec @ res.probe.w)  # [n_tokens, d_sae]
# the probe's bracket signal per latent: non-string tokens inside brackets minus outside
signal = contrib[~yb & zb].mean(0) - contrib[~yb & ~zb].mean(0)
order = signal.argsort(descending=True)
share = signal[order].cumsum(0) / signal.sum()
print(
    "share of the bracket signal in the top-k latents:",
    {k: round(float(share[k - 1]), 2) for k in (10, 50, 200)},
)
# an upper bound on selection: ablate the top 50 by this signal
# (it uses the unconfounded labels)
te_idx = app.biased_and_balanced(
    test.labels["in_string"],
    test.labels["bracket>=1"],
    size["per_group"] // 2,
    seed=1,
    balanced=True,
)
Xt = test.acts[te_idx]
Xt_abl = app.ablate_latents(Xt, sae.encode(Xt), sae.W_dec, order[:50].tolist())
best = app.group_accuracy(
    res.probe.predict(Xt_abl),
    test.labels["in_string"][te_idx],
    test.labels["bracket>=1"][te_idx],
)
print(
    "top 50 by bracket signal ablated: intended {intended:.3f}, "
    "spurious {spurious:.3f}, "
    "worst {worst_group:.3f}".format(**best)
)

# %% [markdown]
# The biased probe ({fig}`shift-accuracy`) does what a confounded probe does: it tracks brackets
# (spurious accuracy well above chance) and fails on the groups where the two labels disagree (worst group far below 0.5).
# **SHIFT's effect here is small**: ablating the automatically chosen latents moves intended accuracy
# up by one or two points and spurious accuracy down by about four, and the worst group does not
# recover; the SCR score is about 0.1, far from the paper's result (*measured to differ*). The
# neuron skyline and retraining the probe after the ablation do hardly better (worst group 0.17
# against 0.15).
#
# The last cell shows why the choice of latents is not the problem. The probe's bracket signal is
# fairly concentrated (the top 50 latents carry most of it), yet ablating exactly those 50, chosen
# with unconfounded labels and so an upper bound on any selection rule, lowers spurious accuracy by
# less than a tenth and leaves the worst group where it was.
# What remains, the other latents and the SAE error, still carries enough of "inside brackets" for
# the probe's decision: in this model the concept is represented redundantly, not by a few separable
# latents. SHIFT's premise is that the spurious concept lives in few, recognisable latents; ground
# truth makes that premise testable, and here it fails.

# %% [markdown]
# For contrast, a planted task where each label *is* one latent: activations built from 12 orthonormal
# directions, latent 0 the intended label, latent 1 three times the spurious label, the rest random
# sparse codes, and an exact dictionary in place of a trained SAE (`app.planted_task`):

# %%
X, y_toy, z_toy, toy_sae = app.planted_task(seed=0)
toy = app.run_shift(
    X[:6000],
    y_toy[:6000],
    z_toy[:6000],
    X[6000:],
    y_toy[6000:],
    z_toy[6000:],
    toy_sae,
    n_per_group=400,
    top_n=4,
)
print(f"ablated latents {toy.ablated}")
for name, acc in {
    "biased probe": toy.base,
    "SHIFT": toy.shift,
    "SHIFT + retrain": toy.shift_retrain,
    "oracle": toy.oracle,
}.items():
    print(
        f"{name:>16} {acc['intended']:8.3f} {acc['spurious']:8.3f}"
        f" {acc['worst_group']:5.3f}"
    )

# %% [markdown]
# The automatic choice finds the planted spurious latent. Ablating it alone is not enough: the
# probe's threshold was set where the louder spurious latent put it, so after ablation every example
# falls on one side (worst group 0). Retraining the probe on the ablated data, the paper's "SHIFT +
# retrain", fixes it completely. On the course model neither step helps, because there the spurious
# concept is not one latent.

# %% [markdown]
# ## Polysemanticity as compression, tested
#
# One argument in the debate (seed 000 of the course's reading list, an essay) runs: features are
# sparse, so networks pack several into a neuron (superposition); this is efficient compression;
# "fewer neurons may be required overall" and "smaller networks could potentially achieve comparable
# performance"; so perhaps we should design for polysemanticity rather than against it. The toy model
# of superposition {cite}`elhage2022toy` lets us price that efficiency exactly.
#
# The yardstick is the best **monosemantic** model with $k$ hidden dimensions: one feature per
# dimension, the $k$ most important kept exactly and every other feature replaced by its mean (the
# bias can output it), so its loss is $L_\text{mono}(k) = \frac1n\sum_{i \notin \text{top-}k} I_i
# (p/3 - p^2/4)$. Against a trained 20-feature, 5-dimension model at each sparsity $S$ (importance
# $0.9^i$), the table gives the features it represents (norm > 0.5), $k^*$, the smallest monosemantic
# width that matches its loss, the dimensions saved $k^* - 5$, and the interference cost: its loss
# minus that of a monosemantic model giving each represented feature its own dimension.

# %%
with torch.enable_grad():  # training the toy models needs gradients
    sweep = tms.sparsity_sweep(
        20,
        5,
        [0.0, 0.7, 0.9, 0.97, 0.99, 0.997],
        importance_decay=0.9,
        steps=pick(cpu=1500, gpu=10_000),
        seed=0,
    )
sav = app.superposition_savings(sweep)
print(" S      loss  repr  k*  saved  interference")
for i, s in enumerate(sav.sparsity):
    print(
        f"{s:5.3f} {sav.loss[i]:.5f} {sav.represented[i]:5d} "
        f"{sav.matching_width[i]:3d} "
        f"{sav.saved[i]:6d} {sav.interference_cost[i]:.5f}"
    )

# %% tags=["hide-input"]
app.plot_savings(sav)

# %% [markdown] figure="superposition-savings"
# The toy models of the table above (20 features, 5 hidden dimensions, importance $0.9^i$, seed 0)
# across sparsity S (horizontal). Left axis, in hidden dimensions: the superposed model's width
# (flat line), $k^*$, the monosemantic width that matches its loss, and the number of features it
# represents (dashed). Bars, right axis: the interference cost in units of $10^{-3}$.

# %% [markdown]
# And on the course model: replace an activation by its SAE reconstruction and drop the error term,
# which forces the computation through 2,048 sparse units, the closest the course has to a
# monosemantic replacement (the course-model SAE page found about a fifth of the firing latents of a
# course SAE monosemantic against ground-truth concepts, against about 1% of neurons). The loss it
# gives up,
# against the clean model and against deleting the activation altogether:

# %%
spliced = {}
for name in ("resid1-topk-2048", "mlp1out-topk-2048"):
    s, h = load_course_sae(name, model), spec(name).hook_name
    spliced[name] = {
        m: app.spliced_loss(model, held_out, h, s, m) for m in ("clean", "sae", "zero")
    }
for name, v in spliced.items():
    print(
        f"{name}: clean {v['clean']:.3f}, SAE without error {v['sae']:.3f}, "
        f"zero {v['zero']:.3f}"
    )

# %% [markdown]
# What the numbers say about the argument:
#
# * **Supported:** superposition saves dimensions, and more the sparser the features: at high sparsity
#   the 5-dimensional model matches a monosemantic model of about 13 dimensions (dimensions saved grow
#   from none when features are dense). The saving is real and is what training finds unprompted.
# * **Supported, with its price:** the saving is paid in interference; the superposed model is always
#   worse than a monosemantic model that gives the same represented features their own dimensions
#   (a positive interference cost at every sparsity).
# * **Not supported as stated:** "smaller networks with comparable performance" holds only for sparse
#   features; for dense features superposition saves nothing (in our 1,500-step CPU run the dense
#   model is even slightly worse than the 5-feature monosemantic one, an optimisation shortfall).
# * **Against "design for it":** networks already superpose wherever it pays, without being asked.
#   The reverse direction costs: the course model's residual stream forced through 2,048 sparse
#   latents, 16 times its width, still loses about 0.43 nats per token (the `mlp1out` SAE loses
#   0.05). On these numbers it is monosemanticity, not polysemanticity, that has to be
#   paid for.
# * **Not testable here:** the essay's safety claims (that removing polysemanticity would not make a
#   model safe) are arguments about large systems; nothing on this page measures them.

# %% [markdown]
# ## What interpretability has and has not shown
#
# **Found in large models.** Dictionary learning scales: SAEs with up to 34 million latents on Claude 3
# Sonnet {cite}`templeton2024scaling`, 16 million on GPT-4 {cite}`gao2024scaling`, and open SAEs on
# every layer of Gemma 2 2B and 9B {cite}`lieberum2024gemmascope`. Among the latents are safety-relevant ones
# (for example code with security vulnerabilities, deception, sycophancy), and clamping a latent
# changes behaviour in the expected direction {cite}`templeton2024scaling`.
#
# **Used in audits.** In a blind auditing game, teams given a model trained with a hidden objective
# found it; SAEs were among the tools that helped, alongside behavioural attacks and training-data
# search {cite}`marks2025auditing`.
#
# **Limits.** On downstream tasks simple baselines often match or beat SAEs: difference-of-means
# steering beats SAE steering {cite}`wu2025axbench`, and SAE-based probes rarely beat plain probes
# {cite}`kantamneni2025sparse`, as this page also found for steering. SAE errors are large: part of
# the unexplained variance is predictable "dark matter" {cite}`engels2024darkmatter`. Some features are
# not one-dimensional directions at all (days of the week on a circle) {cite}`engels2024notlinear`.
# Dictionaries split and absorb features as they grow {cite}`chanin2024absorption`.
#
# **What this course measured.** Chapter 2's toy models show superposition and its phase changes;
# chapter 3 shows polysemanticity arising with room to spare ({cite}`lecomte2023incidental`); the
# [course-model SAE page](../ch04b_saes_course_model/index.ipynb) measures the error share (FVU
# 0.11 to 0.25 for the shipped TopK SAEs), that only about a fifth of firing latents are monosemantic by a
# chance-corrected precision above 0.5, feature splitting across dictionary sizes and absorption; the
# [parameter-decomposition chapter](../ch06_parameter_decomposition/index.ipynb) recovers the toy's
# mechanisms from the weights. This page adds: SAE steering is weaker than a mean difference; SHIFT
# fails when the spurious concept is carried redundantly; and a forced-monosemantic replacement
# costs loss.
#
# **Open problems** {cite}`sharkey2025open`: the dark matter an SAE does not explain; non-linear and
# multi-dimensional features; feature splitting (which dictionary size is "right"?); and whether to
# decompose activations (SAEs, transcoders) or parameters (APD, SPD {cite}`braun2025apd,bushnaq2025spd`),
# which explain *how* an output is computed, not only what is represented.
#
# ### Claims checked before repeating them
#
# Seed 003 of the reading list was written with AI help. Each of its claims that this page
# mentions was looked up in the sources the course could search (stored copies of public pages,
# documentation and repositories; no live web). *Supported* means a source says the same;
# *contradicted* means a source says otherwise; *not checked* means no source was found here, and
# the page does not repeat the claim.
#
# | claim in seed 003 | status |
# |---|---|
# | 1M, 4M and 34M-feature SAEs on Claude 3 Sonnet; safety-relevant features | supported {cite}`templeton2024scaling` |
# | a 16-million-latent SAE on GPT-4, 40 billion training tokens | supported {cite}`gao2024scaling` |
# | Gemma Scope 2: SAEs and transcoders on every layer of the Gemma 3 family (up to 27B), "over 1 trillion" parameters, "110 petabytes" | supported: the announcement says producing it stored about 110 PB of data and trained over 1 trillion parameters, for all Gemma 3 sizes from 270M to 27B {cite}`deepmind2025gemmascope2` (read in stored copies of the post). The seed's "the 110-petabyte Gemma Scope 2 suite" misstates it: 110 PB is what was stored to make it, not the size of the suite |
# | narrow fine-tuning on insecure code made Qwen2.5-Coder-32B broadly misaligned | supported {cite}`betley2025emergent` (GPT-4o and Qwen2.5-Coder-32B-Instruct); "advanced AI systems regularly develop" it overstates the paper |
# | incidental polysemanticity "published at ICLR 2026" | the work is {cite}`lecomte2023incidental` (a 2023 preprint); the venue was not checked: no source found here |
# | "US\$4.6 million" of exploits found with "interpretability and agentic testing" of "Claude 3.5 Sonnet and GPT-5", and two zero-days | contradicted as stated. The source {cite}`anthropic2025smartcontracts` is an agentic exploitation benchmark (SCONE-bench, 405 exploited smart contracts) run in blockchain simulators: US\$4.6M is the simulated value of exploits that Claude Opus 4.5, Claude Sonnet 4.5 and GPT-5 wrote for contracts exploited after March 2025; the two zero-days (Sonnet 4.5 and GPT-5) were worth US\$3,694. No interpretability is involved and Claude 3.5 Sonnet is not among the models, so it is no evidence for interpretability |
# | interpretability in Anthropic's pre-deployment safety assessments of "Claude 3.5 and 4.5" | half supported: the Claude Sonnet 4.5 system card {cite}`anthropic2025sonnet45card` reports a pre-deployment white-box alignment assessment with SAE features and steering (as summarised by the pages found here; the card itself was not read); nothing was found for Claude 3.5: not checked, not repeated |
# | SAE training costs "20% of GPT-3 compute"; the frontier-model cost table | not checked (no source found here); not repeated |
# | clamping an "internal conflicts" feature to make the model honest in real time | not checked: the scaling paper {cite}`templeton2024scaling` reports deception-related features and clamping, but this case was not found in what could be read here; not repeated |

# %% [markdown]
# ## Summary
#
# * Steering is measurable with labels: on the course model a difference of means or a probe
#   direction raises the share of generated string tokens well above the mean of eight random
#   directions of the same norm (1.9 to 7.4 random standard deviations at strength 32, over four
#   draws of eight); the best single SAE latent stays inside the random range, and every direction
#   costs held-out loss that grows with its norm (the supervised ones as much as random or more).
# * SHIFT, with every judgement made by ground-truth labels, barely moves a confounded probe on the
#   course model (SCR about 0.1; the paper's result is *measured to differ*), nor does the neuron
#   skyline: "inside brackets" is carried redundantly, not by a few latents. On a planted task where
#   the spurious concept is one latent, SHIFT plus retraining fixes the probe completely.
# * Superposition saves dimensions in proportion to sparsity and always costs interference; forcing a
#   real model through monosemantic units costs loss even at 16 times the width.
# * The safety case rests on features found at scale and on audits, and is limited by SAE error,
#   non-linear features and the strength of simple baselines; claims that could not be checked are
#   left out.
#
# **Next:** write the six functions behind these measurements in the exercise notebook
# (`exercises/ch07_applications.ipynb`): the steering edit, the dose-response effect, attribution to
# latents, ablation with the error kept, worst-group accuracy and the monosemantic-width loss. This is
# the last chapter; the glossary and the bibliography, under *Reference* in the table of contents,
# collect the course's terms and sources.
