"""Chapter 7 benchmarks: the cost of one steering dose-response curve on the course model, and the
SHIFT numbers of the page (planted toy and course model).

Run with ``python -m course_utils.bench -k 'ch07/*'``.
"""

from __future__ import annotations

import time

import torch

from course_utils import applications as app
from course_utils.bench import benchmark

HOOK = "blocks.1.hook_resid_pre"


def _setup(n_train: int = 12_000, n_test: int = 6_000):
    from course_utils.course_lm import load_course_lm
    from course_utils.saes.course import load_course_sae
    from course_utils.saes.interp import labelled_activations

    model, tok = load_course_lm()
    sae = load_course_sae("resid1-topk-2048", model)
    train = labelled_activations(model, tok, HOOK, n_train, "train", seed=0)
    test = labelled_activations(model, tok, HOOK, n_test, "validation", seed=1)
    return model, tok, sae, train, test


@benchmark("ch07/steering_dose_response")
@torch.no_grad()
def steering_dose_response() -> dict[str, float]:
    """Seconds for one dose-response curve (12 prompts, 20 new tokens, 5 strengths) and the in-string
    fractions of the difference-of-means direction at strengths 0 and 32."""
    from course_utils.corpus import load_corpus

    model, tok, _, train, _ = _setup(6_000, 1_000)
    prompts = app.prompt_windows(tok, [f.text for f in load_corpus("validation")], 12, 48, seed=0)
    d = app.mean_difference_direction(train.acts, train.labels["in_string"])
    t0 = time.perf_counter()
    f = app.dose_response(model, tok, prompts, HOOK, d, [0.0, 8.0, 16.0, 32.0, 48.0], "in_string", 20)
    return {"seconds": round(time.perf_counter() - t0, 1), "fraction_at_0": round(float(f[0]), 3),
            "fraction_at_32": round(float(f[3]), 3)}


@benchmark("ch07/steering_random_draws")
@torch.no_grad()
def steering_random_draws() -> dict[str, float]:
    """The page's dose-response run (12 prompts, 20 new tokens, prompt seed 0) against four draws of
    eight random directions (seeds 0-3): per draw, the distance of the difference of means and of the
    best SAE latent from the random mean at strength 32 (in random standard deviations) and the
    largest random fraction there. The page quotes seeds 1-3 from this benchmark."""
    from course_utils.corpus import load_corpus
    from course_utils.saes.interp import random_directions

    model, tok, sae, train, _ = _setup(12_000, 1_000)
    y = train.labels["in_string"]
    md = app.mean_difference_direction(train.acts, y)
    latent = app.latent_direction(sae, app.best_latent(sae.encode(train.acts).numpy(), y))
    prompts = app.prompt_windows(tok, [f.text for f in load_corpus("validation")], 12, 48, seed=0)
    out: dict[str, float] = {}
    for seed in range(4):
        rand = random_directions(model.cfg.d_model, 8, seed=seed).T
        t = app.dose_response_many(model, tok, prompts, HOOK, torch.stack([md, latent, *rand]), [0.0, 32.0],
                                   "in_string", 20)
        out[f"seed{seed}_z_mean_difference"] = round(float(app.compare_to_random(t[0], t[2:])["z"][1]), 2)
        out[f"seed{seed}_z_sae_latent"] = round(float(app.compare_to_random(t[1], t[2:])["z"][1]), 2)
        out[f"seed{seed}_random_max"] = round(float(t[2:, 1].max()), 3)
    return out


@benchmark("ch07/shift")
@torch.no_grad()
def shift_numbers() -> dict[str, float]:
    """SHIFT on the course model (intended: in a string; spurious: in brackets) and on the planted toy:
    worst-group accuracy before / after, and the SCR score."""
    _, _, sae, train, test = _setup()
    res = app.run_shift(train.acts, train.labels["in_string"], train.labels["bracket>=1"], test.acts,
                        test.labels["in_string"], test.labels["bracket>=1"], sae, n_per_group=700, top_n=50)
    X, y, z, toy_sae = app.planted_task(seed=0)
    toy = app.run_shift(X[:6000], y[:6000], z[:6000], X[6000:], y[6000:], z[6000:], toy_sae,
                        n_per_group=400, top_n=4)
    return {"course_worst_before": round(res.base["worst_group"], 3),
            "course_worst_after": round(res.shift["worst_group"], 3), "course_scr": round(res.scr, 3),
            "toy_worst_before": round(toy.base["worst_group"], 3),
            "toy_worst_retrained": round(toy.shift_retrain["worst_group"], 3)}


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(shift_numbers())
