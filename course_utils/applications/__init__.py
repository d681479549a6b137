"""Chapter 7: applications and open questions — steering, removing a spurious concept (SHIFT),
polysemanticity as compression.

Pages import from here::

    from course_utils.applications import dose_response, run_shift, superposition_savings
"""

from course_utils.applications.compression import (
    Savings,
    matching_width,
    monosemantic_loss,
    spliced_loss,
    superposition_savings,
)
from course_utils.applications.figures import (
    plot_dose_response,
    plot_savings,
    plot_shift,
    plot_steering_cost,
    steering_explorer,
)
from course_utils.applications.shift import (
    OrthonormalDictionary,
    Probe,
    ShiftResult,
    ablate_latents,
    biased_and_balanced,
    concept_precision,
    fit_probe,
    group_accuracy,
    latent_attribution,
    planted_task,
    run_shift,
    spurious_units,
)
from course_utils.applications.steering import (
    add_hook,
    best_latent,
    clamp_hook,
    clamp_response,
    compare_to_random,
    concept_fraction,
    concept_of_generated,
    dose_response,
    dose_response_many,
    generate_ids,
    latent_direction,
    mean_difference_direction,
    probe_direction,
    prompt_windows,
    rowwise_add_hook,
    spread,
    steered_loss,
    tolerant_labels,
)

__all__ = [
    "OrthonormalDictionary", "Probe", "Savings", "ShiftResult", "ablate_latents", "add_hook", "best_latent", "biased_and_balanced",
    "clamp_hook", "clamp_response", "compare_to_random", "concept_fraction", "concept_of_generated", "concept_precision", "dose_response", "dose_response_many",
    "fit_probe", "generate_ids", "group_accuracy", "latent_attribution", "latent_direction",
    "matching_width", "mean_difference_direction", "monosemantic_loss", "planted_task", "plot_dose_response",
    "plot_savings", "plot_shift", "plot_steering_cost", "probe_direction", "prompt_windows", "rowwise_add_hook", "run_shift",
    "spliced_loss", "spread", "spurious_units", "steered_loss", "steering_explorer", "superposition_savings",
    "tolerant_labels",
]
