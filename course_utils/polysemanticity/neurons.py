"""Chapter 1: polysemantic neurons in a trained network and the privileged basis.

An MLP on scikit-learn's bundled 8×8 digits (offline), hidden activations collected with a forward
hook, top-k activating digits, class counts and a polysemanticity score (the effective number of
classes), compared with random and read-out directions of the same layer; and the rotation /
permutation test of a ReLU layer (why the neuron basis is privileged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from course_utils._validate import check_float as _check_float
from course_utils._validate import check_int as _check_int
from course_utils._validate import check_tensor as _check_tensor
from course_utils.device import one_thread
from course_utils.polysemanticity._args import _check_acts, _check_k, _check_labels
from course_utils.warmup import TinyMLP, accuracy, train_tiny_mlp

N_DIGIT_CLASSES = 10

# ----------------------------------------------------------------------------------------------
# Data: scikit-learn's bundled 8x8 digits (no download)


@dataclass(frozen=True)
class Digits:
    """The 1,797 bundled 8×8 digits: ``X: [n, 64]`` in [0, 1], ``y: [n]``, ``images: [n, 8, 8]``, and a
    fixed train / test split (indices)."""

    X: torch.Tensor
    y: torch.Tensor
    images: torch.Tensor
    train_idx: torch.Tensor
    test_idx: torch.Tensor


def load_digits_data(test_fraction: float = 0.2, split_seed: int = 0) -> Digits:
    """Load scikit-learn's ``load_digits`` (shipped with the package, read from disk), scale pixels to
    [0, 1] and split it reproducibly."""
    test_fraction = _check_float(test_fraction, "test_fraction", 0.0, 0.9)
    _check_int(split_seed, "split_seed", 0)
    from sklearn.datasets import load_digits

    raw = load_digits()
    X = torch.tensor(raw.data / 16.0, dtype=torch.float32)
    y = torch.tensor(raw.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(split_seed))
    n_test = int(round(test_fraction * len(y)))
    return Digits(X, y, X.reshape(-1, 8, 8), perm[n_test:].sort().values, perm[:n_test].sort().values)


@dataclass
class DigitsRun:
    """A trained digits MLP (``course_utils.warmup.TinyMLP``: ``hidden`` → ``act`` (ReLU) → ``readout``)."""

    model: TinyMLP
    seed: int
    train_accuracy: float
    test_accuracy: float


def train_digits_mlp(data: Digits, d_hidden: int = 32, steps: int = 800, lr: float = 3e-3,
                     seed: int = 0) -> DigitsRun:
    """Train a 64 → ``d_hidden`` (ReLU) → 10 MLP on the training split with full-batch Adam.

    Deterministic for a given seed; about a second on a laptop CPU at the default size.
    """
    if not isinstance(data, Digits):
        raise TypeError(f"data must be the Digits returned by load_digits_data(), got {type(data).__name__}")
    _check_int(d_hidden, "d_hidden")
    _check_int(steps, "steps")
    _check_float(lr, "lr", 1e-8, 10.0)
    _check_int(seed, "seed", 0)
    Xtr, ytr = data.X[data.train_idx], data.y[data.train_idx]
    with one_thread():
        model = train_tiny_mlp(Xtr, ytr, d_hidden=d_hidden, steps=steps, lr=lr, seed=seed)
    return DigitsRun(model, seed, accuracy(model, Xtr, ytr),
                     accuracy(model, data.X[data.test_idx], data.y[data.test_idx]))


# ----------------------------------------------------------------------------------------------
# Activations, top-k, class counts, the polysemanticity score


def collect_activations(model: nn.Module, module_name: str, inputs: torch.Tensor,
                        batch_size: int = 256) -> torch.Tensor:
    """Run ``model`` over ``inputs`` in batches and return the output of ``model.<module_name>`` for
    every input, concatenated in input order (detached). The forward hook is registered once and
    removed before returning, even if the forward pass fails."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(module_name, str):
        raise TypeError(f"module_name must be the name of a submodule (a str), got {type(module_name).__name__}")
    try:
        module = model.get_submodule(module_name)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        raise ValueError(f"model has no submodule {module_name!r}; expected one of {names}") from None
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError("inputs must be a tensor [n_examples, ...] with at least one example")
    _check_int(batch_size, "batch_size")
    stored: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda mod, inp, out: stored.append(out.detach()))
    try:
        with torch.no_grad():
            for start in range(0, inputs.shape[0], batch_size):
                model(inputs[start:start + batch_size])
    finally:
        handle.remove()
    return torch.cat(stored, dim=0)


def top_k_indices(acts: torch.Tensor, k: int) -> torch.Tensor:
    """``acts: [n_examples, n_units]`` → ``[k, n_units]``: the examples with the k largest activations of
    each unit, largest first."""
    acts = _check_acts(acts)
    k = _check_k(k, acts.shape[0])
    return acts.topk(k, dim=0).indices


def top_k_class_counts(acts: torch.Tensor, labels: torch.Tensor, k: int,
                       n_classes: int = N_DIGIT_CLASSES) -> torch.Tensor:
    """How many of each unit's ``k`` top-activating examples belong to each class.

    ``acts: [n_examples, n_units]``, ``labels: [n_examples]`` → ``[n_units, n_classes]`` integer counts;
    every row sums to ``k``.
    """
    acts = _check_acts(acts)
    n_classes = _check_int(n_classes, "n_classes")
    labels = _check_labels(labels, acts.shape[0], n_classes)
    idx = top_k_indices(acts, k)  # [k, n_units]
    onehot = nn.functional.one_hot(labels.to(acts.device)[idx], n_classes)  # [k, n_units, n_classes]
    return onehot.sum(0)


def polysemanticity_score(counts: torch.Tensor) -> torch.Tensor:
    """The effective number of classes of each unit: ``exp(H(p))`` with ``p`` = counts / row sum and
    ``H`` the Shannon entropy in nats (0·log 0 = 0).

    ``counts: [n_units, n_classes]`` (non-negative, each row with a positive sum) → ``[n_units]``.
    1 when all top examples share one class; m when they are spread evenly over m classes.
    """
    counts = _check_tensor(counts, "counts", 2, "[n_units, n_classes]")
    if not counts.is_floating_point():
        counts = counts.to(torch.get_default_dtype())
    if (counts < 0).any():
        raise ValueError("counts must be non-negative (how many top examples fall in each class)")
    if (counts.sum(1) <= 0).any():
        raise ValueError("every row of counts must have a positive sum: each unit needs some examples")
    p = counts / counts.sum(1, keepdim=True)
    plogp = torch.where(p > 0, p * p.clamp_min(1e-300).log(), torch.zeros_like(p))
    return torch.exp(-plogp.sum(1))


def classes_above(counts: torch.Tensor, min_share: float = 0.1) -> torch.Tensor:
    """Number of classes holding at least ``min_share`` of each unit's top examples: ``[n_units]`` ints."""
    counts = _check_tensor(counts, "counts", 2, "[n_units, n_classes]")
    _check_float(min_share, "min_share", 0.0, 1.0)
    if (counts.sum(1) <= 0).any():
        raise ValueError("every row of counts must have a positive sum")
    share = counts / counts.sum(1, keepdim=True)
    return (share >= min_share - 1e-12).sum(1)


def active_units(acts: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean ``[n_units]``: units with at least ``k`` positive activations, whose top-k is meaningful
    (a dead ReLU neuron's top-k is a tie among zeros)."""
    acts = _check_acts(acts)
    k = _check_k(k, acts.shape[0])
    return (acts > 0).sum(0) >= k


def random_unit_directions(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """``[n, d]`` directions drawn uniformly from the unit sphere (normalised Gaussians)."""
    _check_int(n, "n")
    _check_int(d, "d")
    _check_int(seed, "seed", 0)
    D = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return D / D.norm(dim=1, keepdim=True)


def project(acts: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Activations along directions: ``acts: [n, d]``, ``directions: [m, d]`` (normalised here) → ``[n, m]``."""
    acts = _check_acts(acts)
    directions = _check_tensor(directions, "directions", 2, "[n_directions, d]")
    if directions.shape[1] != acts.shape[1]:
        raise ValueError(f"directions must live in the same space as acts: expected [m, {acts.shape[1]}], "
                         f"got {list(directions.shape)}")
    norms = directions.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        raise ValueError("every direction must be non-zero")
    return acts @ (directions / norms).to(acts.dtype).T


def readout_directions(model: TinyMLP) -> torch.Tensor:
    """The read-out weight rows ``[n_classes, d_hidden]``: the hidden-layer direction each logit reads."""
    if not isinstance(model, TinyMLP):
        raise TypeError(f"model must be a course_utils.warmup.TinyMLP, got {type(model).__name__}")
    return model.readout.weight.detach().clone()


@dataclass
class DirectionStudy:
    """Scores of the neurons, of random directions and of the read-out directions of one hidden layer."""

    neuron_scores: torch.Tensor  # [n_active_neurons]
    random_scores: torch.Tensor  # [n_random]
    readout_scores: torch.Tensor  # [n_classes]
    neuron_multi_class: torch.Tensor  # [n_active_neurons] bool: >= 2 classes with >= min_share
    n_neurons: int
    n_active: int

    def summary(self) -> dict[str, float]:
        return {"neurons_active": self.n_active, "neurons_total": self.n_neurons,
                "neuron_score_median": self.neuron_scores.median().item(),
                "random_score_median": self.random_scores.median().item(),
                "readout_score_median": self.readout_scores.median().item(),
                "frac_neurons_multi_class": self.neuron_multi_class.float().mean().item()}


def direction_study(acts: torch.Tensor, labels: torch.Tensor, readout: torch.Tensor, k: int = 50,
                    n_random: int = 200, min_share: float = 0.1, seed: int = 0) -> DirectionStudy:
    """Score every active neuron, ``n_random`` random unit directions and each read-out direction of the
    same layer with :func:`polysemanticity_score` of their top-``k`` examples."""
    acts = _check_acts(acts)
    labels = _check_labels(labels, acts.shape[0], N_DIGIT_CLASSES)
    k = _check_k(k, acts.shape[0])
    alive = active_units(acts, k)
    if not alive.any():
        raise ValueError(f"no neuron has {k} positive activations: the layer is dead or k is too large")
    neuron_counts = top_k_class_counts(acts[:, alive], labels, k)
    random_acts = project(acts, random_unit_directions(n_random, acts.shape[1], seed))
    readout_acts = project(acts, readout)
    return DirectionStudy(
        neuron_scores=polysemanticity_score(neuron_counts),
        random_scores=polysemanticity_score(top_k_class_counts(random_acts, labels, k)),
        readout_scores=polysemanticity_score(top_k_class_counts(readout_acts, labels, k)),
        neuron_multi_class=classes_above(neuron_counts, min_share) >= 2,
        n_neurons=acts.shape[1], n_active=int(alive.sum()))


def digits_seed_study(data: Digits, seeds: Sequence[int], d_hidden: int = 32, steps: int = 800,
                      k: int = 50, n_random: int = 200) -> list[dict[str, float]]:
    """Train one digits MLP per seed and summarise its hidden layer (:class:`DirectionStudy`)."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    rows = []
    with one_thread():
        for s in seeds:
            run = train_digits_mlp(data, d_hidden=d_hidden, steps=steps, seed=s)
            acts = collect_activations(run.model, "act", data.X)
            study = direction_study(acts, data.y, readout_directions(run.model), k=k, n_random=n_random,
                                    seed=1000 + s)
            rows.append({"seed": s, "test_accuracy": run.test_accuracy, **study.summary()})
    return rows


# ----------------------------------------------------------------------------------------------
# The privileged basis: rotate or permute the hidden layer


def random_rotation(d: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A random orthogonal ``[d, d]`` matrix (Haar distributed: QR of a Gaussian with sign fix)."""
    _check_int(d, "d")
    _check_int(seed, "seed", 0)
    A = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    Q, R = torch.linalg.qr(A)
    Q = Q * torch.sign(torch.diagonal(R))[None, :]
    return Q.to(dtype)


def change_hidden_basis(model: TinyMLP, Q: torch.Tensor, relu: bool = True) -> TinyMLP:
    """A copy of ``model`` whose hidden pre-activations are ``Q (W₁x + b₁)`` and whose read-out undoes it
    (``W₂ Qᵀ``). Without the ReLU (``relu=False``) that is the same function for any orthogonal Q; with
    it, only permutations (and positive scalings) leave the function unchanged."""
    if not isinstance(model, TinyMLP):
        raise TypeError(f"model must be a course_utils.warmup.TinyMLP, got {type(model).__name__}")
    d = model.hidden.out_features
    Q = _check_tensor(Q, "Q", 2, f"[{d}, {d}]")
    if Q.shape != (d, d):
        raise ValueError(f"Q must be [{d}, {d}] (the hidden width of model), got {list(Q.shape)}")
    eye = torch.eye(d, dtype=torch.float64)
    if not torch.allclose(Q.double() @ Q.double().T, eye, atol=1e-4):
        raise ValueError("Q must be orthogonal (Q Qᵀ = I)")
    new = TinyMLP(model.hidden.in_features, d, model.readout.out_features)
    with torch.no_grad():
        Qf = Q.to(model.hidden.weight.dtype)
        new.hidden.weight.copy_(Qf @ model.hidden.weight)
        new.hidden.bias.copy_(Qf @ model.hidden.bias)
        new.readout.weight.copy_(model.readout.weight @ Qf.T)
        new.readout.bias.copy_(model.readout.bias)
    if not relu:
        new.act = nn.Identity()
    return new.eval()


def basis_test(model: TinyMLP, X: torch.Tensor, y: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Accuracy of the model, of a copy with permuted neurons and of a copy with rotated neurons; and
    the largest logit change the rotation causes when the ReLU is removed (a linear hidden layer)."""
    if not isinstance(model, TinyMLP):
        raise TypeError(f"model must be a course_utils.warmup.TinyMLP, got {type(model).__name__}")
    X = _check_tensor(X, "X", 2, "[n, d_in]")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X and y must have the same number of examples, got {X.shape[0]} and {y.shape[0]}")
    d = model.hidden.out_features
    P = torch.eye(d)[torch.randperm(d, generator=torch.Generator().manual_seed(seed))]
    Q = random_rotation(d, seed)
    linear = change_hidden_basis(model, torch.eye(d), relu=False)
    with torch.no_grad():
        lin_change = (change_hidden_basis(model, Q, relu=False)(X) - linear(X)).abs().max().item()
    return {"original": accuracy(model, X, y), "permuted": accuracy(change_hidden_basis(model, P), X, y),
            "rotated": accuracy(change_hidden_basis(model, Q), X, y), "linear_rotated_max_logit_change": lin_change}


# ----------------------------------------------------------------------------------------------
