"""Chapter 1: neurons, features, and polysemanticity without superposition.

Everything the chapter runs, measures and draws, one module per idea; pages, checks and tests import
the names from here (``from course_utils import polysemanticity as poly``):

* :mod:`.embeddings`: **features as directions**, a tiny word-embedding model trained on a synthetic
  corpus (embedding arithmetic).
* :mod:`.neurons`: **polysemantic neurons in a trained network**, a one-hidden-layer MLP on
  scikit-learn's bundled 8×8 digits (offline), hidden activations collected with a forward hook,
  top-k activating digits, class counts and a polysemanticity score (the effective number of
  classes), compared with random and read-out directions; the rotation / permutation test of the
  **privileged basis**.
* :mod:`.connections`: **why it matters for circuits**, two polysemantic neurons joined by one weight
  make 25 feature-level connections, measured by intervention.
* :mod:`.without_superposition`: **polysemanticity without superposition**, orthogonal features that
  are not neuron-aligned (and the rotation that recovers them), a 4-neuron ReLU network computing
  x·y, correlated features read by one neuron.
* :mod:`.figures`: pure functions from data to plotly figures, including the neuron explorer's.

Every public function checks its arguments and raises ``ValueError`` / ``TypeError`` saying what it
expected.
"""

from course_utils.polysemanticity.connections import CircuitExample, circuit_example, effective_connections
from course_utils.polysemanticity.embeddings import (
    CONTEXTS,
    WORD_ATTRIBUTES,
    WORDS,
    analogy,
    analogy_accuracy,
    attribute_directions,
    train_word_embeddings,
    word_context_counts,
)
from course_utils.polysemanticity.figures import (
    basis_figure,
    circuit_figure,
    correlated_figure,
    embedding_figure,
    feature_matrix_figure,
    neuron_figure,
    purity_sweep_figure,
    score_comparison_figure,
    xy_figure,
    xy_neurons_figure,
)
from course_utils.polysemanticity.neurons import (
    N_DIGIT_CLASSES,
    Digits,
    DigitsRun,
    DirectionStudy,
    active_units,
    basis_test,
    change_hidden_basis,
    classes_above,
    collect_activations,
    digits_seed_study,
    direction_study,
    load_digits_data,
    polysemanticity_score,
    project,
    random_rotation,
    random_unit_directions,
    readout_directions,
    top_k_class_counts,
    top_k_indices,
    train_digits_mlp,
)
from course_utils.polysemanticity.without_superposition import (
    DIAGONALS,
    FeatureKind,
    OrthogonalRun,
    XYRun,
    best_purity_over_rotations,
    diagonal_alignment,
    feature_batch,
    neuron_purity,
    polygon_features,
    procrustes_rotation,
    recover_features,
    sparse_features,
    train_neuron_model,
    train_orthogonal_autoencoder,
    train_xy_network,
    xy_neuron_readings,
)

__all__ = [
    "active_units", "analogy", "analogy_accuracy", "attribute_directions", "basis_figure", "basis_test",
    "best_purity_over_rotations", "change_hidden_basis", "circuit_example", "circuit_figure",
    "CircuitExample", "classes_above", "collect_activations", "CONTEXTS", "correlated_figure",
    "diagonal_alignment", "DIAGONALS", "Digits", "digits_seed_study", "DigitsRun", "direction_study",
    "DirectionStudy", "effective_connections", "embedding_figure", "feature_batch", "feature_matrix_figure",
    "FeatureKind", "load_digits_data", "N_DIGIT_CLASSES", "neuron_figure", "neuron_purity", "OrthogonalRun",
    "polygon_features", "polysemanticity_score", "procrustes_rotation", "project", "purity_sweep_figure",
    "random_rotation", "random_unit_directions", "readout_directions", "recover_features",
    "score_comparison_figure", "sparse_features", "top_k_class_counts", "top_k_indices", "train_digits_mlp",
    "train_neuron_model", "train_orthogonal_autoencoder", "train_word_embeddings", "train_xy_network",
    "WORD_ATTRIBUTES", "word_context_counts", "WORDS", "xy_figure", "xy_neuron_readings", "xy_neurons_figure",
    "XYRun",
]
