"""Near-orthogonal packing: how many unit vectors fit in ℝ^d with small pairwise |cos|?

* Random unit vectors u, v in ℝ^d: P(|u·v| ≥ ε) ≤ 2 e^{−dε²/2}; a union bound over pairs shows that
  ⌊e^{dε²/4}⌋ random vectors have all pairwise |cos| < ε with positive probability (Johnson and
  Lindenstrauss 1984; the form used here is the standard concentration argument).
* The largest |cos| among N random unit vectors is close to √(2 ln(N²) / d) (a Gaussian tail over
  about N²/2 pairs): a rule of thumb, 2-20% high at the sizes the chapter shows.
* A better estimate uses the exact law of the cosine t of two random unit vectors, t² ~ Beta(1/2,
  (d−1)/2), and treats the N(N−1)/2 pairs as independent: P(max |cos| < ε) ≈ (1 − P(|t| ≥ ε))^{N(N−1)/2}
  (:func:`estimated_max_cosine`, within the seed-to-seed spread of the measured maxima).
* Welch (1974): any N > d unit vectors have max |cos| ≥ √((N − d) / (d (N − 1))).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from scipy import special

from course_utils._validate import check_int
from course_utils.plotting import style


def random_unit_vectors(n_vectors: int, d: int, generator: torch.Generator | None = None,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """N vectors uniform on the unit sphere of ℝ^d (normalised Gaussians): [n_vectors, d]."""
    check_int(n_vectors, "n_vectors")
    check_int(d, "d")
    V = torch.randn((n_vectors, d), generator=generator, dtype=dtype)
    return V / V.norm(dim=1, keepdim=True)


def max_abs_cosine(V: torch.Tensor, block: int = 2048) -> torch.Tensor:
    """max_{i≠j} |cos(V_i, V_j)| over the rows of V: [n_vectors, d] -> 0-d tensor. Computed in row
    blocks so that N = 10,000 needs no N × N matrix."""
    if not isinstance(V, torch.Tensor) or V.ndim != 2:
        raise ValueError(f"V must be a tensor of shape [n_vectors, d], got {getattr(V, 'shape', type(V))}")
    if V.shape[0] < 2:
        raise ValueError(f"V needs at least 2 rows to have a pair, got {V.shape[0]}")
    U = V / V.norm(dim=1, keepdim=True).clamp_min(1e-12)
    best = torch.zeros((), dtype=V.dtype, device=V.device)
    for start in range(0, U.shape[0], block):
        c = (U[start:start + block] @ U.T).abs()
        rows = torch.arange(c.shape[0], device=V.device)
        c[rows, rows + start] = 0.0  # a vector's cosine with itself is not a pair
        best = torch.maximum(best, c.max())
    return best


def predicted_max_cosine(n_vectors: int, d: int) -> float:
    """√(2 ln(N²) / d): the typical largest |cos| among N random unit vectors in ℝ^d."""
    check_int(n_vectors, "n_vectors")
    check_int(d, "d")
    return math.sqrt(2 * math.log(n_vectors**2) / d)


def _check_eps(eps: float) -> None:
    if not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise ValueError(f"eps must lie in (0, 1), got {eps!r}")


def cosine_tail(eps: float | np.ndarray, d: int) -> np.ndarray:
    """P(|u·v| ≥ ε) for independent uniform unit vectors u, v in ℝ^d, exactly: (u·v)² follows
    Beta(1/2, (d−1)/2), so the tail is the regularised incomplete beta I_{1−ε²}((d−1)/2, 1/2)."""
    check_int(d, "d", 2)
    eps = np.asarray(eps, dtype=np.float64)
    return special.betainc((d - 1) / 2, 0.5, np.clip(1 - eps**2, 0.0, 1.0))


def estimated_max_cosine(n_vectors: int, d: int, grid: int = 4000) -> float:
    """Expected largest |cos| among N random unit vectors in ℝ^d, from the exact pair law
    (:func:`cosine_tail`) with the N(N−1)/2 pairs treated as independent:
    E[max] = ∫₀¹ 1 − (1 − q(ε))^{N(N−1)/2} dε. Not a bound: the pairs are only nearly independent."""
    check_int(n_vectors, "n_vectors", 2)
    check_int(d, "d", 2)
    pairs = n_vectors * (n_vectors - 1) / 2
    eps = np.linspace(0.0, 1.0, grid + 1)
    q = np.minimum(cosine_tail(eps, d), 1 - 1e-16)
    p_max_above = -np.expm1(pairs * np.log1p(-q))  # P(max ≥ ε)
    return float(np.trapezoid(p_max_above, eps))


def random_packing_count(d: int, eps: float) -> int:
    """The largest N for which a set of N random unit vectors in ℝ^d has all pairwise |cos| < ε with
    probability at least 1/2 (same independent-pairs estimate as :func:`estimated_max_cosine`)."""
    check_int(d, "d", 2)
    _check_eps(eps)
    pairs = math.log(2) / -math.log1p(-float(cosine_tail(eps, d)))  # (1 − q)^pairs = 1/2
    return int((1 + math.sqrt(1 + 8 * pairs)) / 2)


def jl_packing_count(d: int, eps: float) -> int:
    """⌊e^{dε²/4}⌋: how many unit vectors with pairwise |cos| < ε the union bound guarantees in ℝ^d.
    A floor (an existence guarantee), not a capacity: it exceeds the d orthogonal directions only
    when dε²/4 > ln d, and random sets beat it several-fold (:func:`random_packing_count`)."""
    check_int(d, "d")
    _check_eps(eps)
    return math.floor(math.exp(d * eps**2 / 4))


def welch_bound(n_vectors: int, d: int) -> float:
    """Welch's lower bound on max |cos| for N unit vectors in ℝ^d: √((N − d)/(d(N − 1))), 0 if N ≤ d."""
    check_int(n_vectors, "n_vectors")
    check_int(d, "d")
    if n_vectors <= d:
        return 0.0
    return math.sqrt((n_vectors - d) / (d * (n_vectors - 1)))


def measure_max_cosine(pairs: Sequence[tuple[int, int]], seeds: Sequence[int] = (0, 1, 2)) -> list[dict[str, float]]:
    """For each (d, N): mean measured max |cos| of N random unit vectors over ``seeds`` (and their
    spread), with the rule of thumb, the exact-tail estimate and the Welch bound."""
    rows = []
    for d, n in pairs:
        vals = [max_abs_cosine(random_unit_vectors(n, d, torch.Generator().manual_seed(s))).item() for s in seeds]
        rows.append(dict(d=d, N=n, measured=sum(vals) / len(vals), spread=max(vals) - min(vals),
                         predicted=predicted_max_cosine(n, d), estimate=estimated_max_cosine(n, d),
                         welch=welch_bound(n, d)))
    return rows


def plot_max_cosine(d: int, counts: Sequence[int], measured: Sequence[float], height: int = 400) -> go.Figure:
    """Measured max |cos| of N random unit vectors in ℝ^d against N, with √(2 ln N²/d), the exact-tail
    estimate and Welch's bound."""
    counts = list(counts)
    if len(counts) != len(measured):
        raise ValueError("counts and measured must have the same length")
    fine = sorted({int(x) for x in torch.logspace(math.log10(min(counts)), math.log10(max(counts)), 60).tolist()})
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=counts, y=list(measured), mode="markers", name="measured (random vectors)",
                             marker=dict(size=8)))
    fig.add_trace(go.Scatter(x=fine, y=[predicted_max_cosine(n, d) for n in fine], mode="lines",
                             name="√(2 ln N² / d)"))
    fig.add_trace(go.Scatter(x=fine, y=[estimated_max_cosine(n, d) for n in fine], mode="lines",
                             name="exact pair law, pairs independent"))
    fig.add_trace(go.Scatter(x=fine, y=[welch_bound(n, d) for n in fine], mode="lines",
                             name="Welch bound (no arrangement beats it)", line=dict(dash="dash")))
    fig.update_xaxes(type="log", title="number of vectors N")
    fig.update_yaxes(title="largest |cos| between two of them", rangemode="tozero")
    return style(fig, title=f"Packing N directions into d = {d} dimensions", height=height)
