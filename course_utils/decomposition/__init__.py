"""Chapter 6: parameter decomposition (APD and SPD) on the toy models.

Pages import from here::

    from course_utils.decomposition import train_tms_target, train_spd, SPDConfig, mmcs_ml2r

Submodules: ``apd`` (APD), ``compare`` (SAE vs SPD on the same toy model), ``configs`` (run sizes),
``figures``, ``shipped`` (the residual-MLP decomposition shipped with the course).
"""

from course_utils.decomposition.metrics import (
    ci_l0,
    column_cosines,
    mmcs_ml2r,
    n_alive,
    own_subcomponents,
    subcomponent_norms,
)
from course_utils.decomposition.spd import (
    CIFunctions,
    SPDConfig,
    SPDModel,
    SPDResult,
    causal_importance,
    causal_importances,
    faithfulness_loss,
    importance_minimality_loss,
    lower_leaky_hard_sigmoid,
    one_hot_causal_importances,
    rank_one_forward,
    stochastic_mask,
    train_spd,
    upper_leaky_hard_sigmoid,
)
from course_utils.decomposition.targets import (
    ResidualMLPTarget,
    Target,
    TMSTarget,
    train_residual_mlp,
    train_tms_target,
)

__all__ = [
    "CIFunctions", "ResidualMLPTarget", "SPDConfig", "SPDModel", "SPDResult", "TMSTarget", "Target",
    "causal_importance", "causal_importances", "ci_l0", "column_cosines", "faithfulness_loss",
    "importance_minimality_loss", "lower_leaky_hard_sigmoid", "mmcs_ml2r", "one_hot_causal_importances", "n_alive", "own_subcomponents",
    "rank_one_forward",
    "stochastic_mask", "subcomponent_norms", "train_residual_mlp", "train_spd", "train_tms_target",
    "upper_leaky_hard_sigmoid",
]
