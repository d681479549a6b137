"""Steering the course model along a direction, measured with ground-truth labels of what it writes.

Activation steering (Turner et al., 2023, "Activation addition"; Templeton et al., 2024, "Scaling
monosemanticity", feature clamping) edits one hook during generation:

* **add**: ``x <- x + s * u`` at every position, ``u`` a unit direction ``[d_model]`` and ``s`` the
  strength (the same norm for every direction compared);
* **clamp** (an SAE latent ``i``): ``x <- x + (c - f_i(x)) * W_dec[i]``, which sets the latent to ``c``
  and keeps the SAE's error term ``x - x_hat`` untouched.

The effect is read off the generated text by the course's labeller: the fraction of generated tokens
inside a comment (or a string) against the unsteered baseline, over a grid of strengths (a
dose-response curve), for an SAE decoder direction, a linear-probe direction, a difference of class
means and random directions of the same norm (or, for a clamped latent, over a grid of clamp values,
:func:`clamp_response`). The cost is the next-token loss on held-out text with
the edit applied at every position.

Generated code need not parse, and :func:`course_utils.labels.char_labels` needs parsable source, so
:func:`tolerant_labels` reads the two lexical concepts (``in_comment``, ``in_string``) from Python's
tokenizer alone, which keeps going on broken code; on parsable text it agrees with the labeller.
"""

from __future__ import annotations

import io
import math
import tokenize
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from course_utils.labels import CharLabels, align_to_tokens

LEXICAL = ("in_comment", "in_string")
Hook = Callable[[torch.Tensor, Any], torch.Tensor]


def check_strength(strength: object, name: str = "strength") -> float:
    """A finite real strength (TypeError / ValueError otherwise)."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(strength).__name__}")
    if not math.isfinite(float(strength)):
        raise ValueError(f"{name} must be finite, got {strength}")
    return float(strength)


def check_latent(sae: Any, latent: object) -> int:
    """A latent id of ``sae`` (0 <= id < d_sae)."""
    d_sae = sae.W_dec.shape[0]
    if isinstance(latent, bool) or not isinstance(latent, (int, np.integer)):
        raise TypeError(f"latent must be an int id in [0, {d_sae}), got {type(latent).__name__}")
    if not 0 <= int(latent) < d_sae:
        raise ValueError(f"unknown latent id {latent}: this SAE has latents 0 .. {d_sae - 1}")
    return int(latent)


def check_direction(direction: object, d_model: int | None = None) -> torch.Tensor:
    """A finite 1-d direction ``[d_model]`` with non-zero norm."""
    if not isinstance(direction, torch.Tensor):
        raise TypeError(f"direction must be a torch.Tensor [d_model], got {type(direction).__name__}")
    if direction.ndim != 1 or (d_model is not None and direction.shape[0] != d_model):
        want = f"[{d_model}]" if d_model is not None else "[d_model]"
        raise ValueError(f"direction must have shape {want}, got {list(direction.shape)}")
    if not torch.isfinite(direction).all() or float(direction.norm()) == 0:
        raise ValueError("direction must be finite and non-zero")
    return direction


def unit(v: torch.Tensor) -> torch.Tensor:
    """``v / ||v||`` (float32)."""
    v = check_direction(v).float()
    return v / v.norm()


def latent_direction(sae: Any, latent: int) -> torch.Tensor:
    """The unit decoder direction ``W_dec[latent] / ||W_dec[latent]||``: ``[d_in]``."""
    return unit(sae.W_dec[check_latent(sae, latent)].detach())


def add_hook(direction: torch.Tensor, strength: float) -> Hook:
    """A TransformerLens hook that returns ``act + strength * direction`` (every position; out of
    place, so the cached activation is not modified)."""
    direction = check_direction(direction)
    s = check_strength(strength)

    def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
        return act + s * direction.to(act.device, act.dtype)

    return hook


def clamp_hook(sae: Any, latent: int, value: float) -> Hook:
    """A hook that sets SAE latent ``latent`` to ``value`` at every position and keeps the SAE error:
    ``act + (value - f_latent(act)) * W_dec[latent]``."""
    i = check_latent(sae, latent)
    c = check_strength(value, "value")

    def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
        with torch.no_grad():
            f = sae.encode(act.to(sae.W_dec.dtype))[..., i]  # [batch, pos]
        return act + ((c - f)[..., None] * sae.W_dec[i].detach()).to(act.dtype)

    return hook


def check_hook_names(model: Any, fwd_hooks: Sequence[tuple[str, Hook]]) -> None:
    """Every hook name is one of the model's hook points (ValueError naming the unknown one)."""
    for name, _ in fwd_hooks:
        if name not in model.hook_dict:
            raise ValueError(f"unknown hook name {name!r}; e.g. 'blocks.1.hook_resid_pre'")


def check_concept(concept: object) -> str:
    """``in_comment`` or ``in_string``, the concepts :func:`tolerant_labels` reads."""
    if concept not in LEXICAL:
        raise ValueError(f"concept must be one of {LEXICAL} (labels of text that need not parse), got {concept!r}")
    return str(concept)


@torch.no_grad()
def generate_ids(model: Any, prompts: torch.Tensor, max_new_tokens: int,
                 fwd_hooks: Sequence[tuple[str, Hook]] = ()) -> torch.Tensor:
    """Greedy continuations ``[batch, max_new_tokens]`` of equal-length prompts ``[batch, pos]`` with
    ``fwd_hooks`` applied at every forward pass (deterministic)."""
    if not isinstance(prompts, torch.Tensor) or prompts.ndim != 2 or prompts.dtype != torch.long:
        raise ValueError("prompts must be a long tensor [batch, pos] of token ids")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
    check_hook_names(model, fwd_hooks)
    n_ctx = model.cfg.n_ctx
    ids = prompts
    with model.hooks(fwd_hooks=list(fwd_hooks)):
        for _ in range(max_new_tokens):
            nxt = model(ids[:, -n_ctx:])[:, -1].argmax(-1)  # [batch]
            ids = torch.cat([ids, nxt[:, None]], 1)
    return ids[:, prompts.shape[1]:]


def tolerant_labels(text: str) -> CharLabels:
    """Per-character ``in_comment`` / ``in_string`` of possibly broken Python, from ``tokenize`` only
    (the other concepts are left empty). An unterminated string runs to the end of its line (or of
    the text, for a triple-quoted one), as an editor would colour it."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    n = len(text)
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def off(pos: tuple[int, int]) -> int:
        line, col = pos
        return min(starts[line - 1] + col, n) if line - 1 < len(starts) else n

    in_string, in_comment = np.zeros(n, bool), np.zeros(n, bool)
    string_types = {tokenize.STRING} | {getattr(tokenize, k) for k in ("FSTRING_START", "FSTRING_MIDDLE",
                                                                        "FSTRING_END") if hasattr(tokenize, k)}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            a, b = off(tok.start), off(tok.end)
            if tok.type in string_types:
                in_string[a:b] = True
            elif tok.type == tokenize.COMMENT:
                in_comment[a:b] = True
            elif tok.type == tokenize.ERRORTOKEN and tok.string in ("'", '"'):
                end = text.find("\n", a)
                in_string[a:n if end < 0 else end] = True
    except tokenize.TokenError as err:  # EOF inside a multi-line string or statement
        if "string" in str(err.args[0]) and len(err.args) > 1:
            in_string[off(err.args[1]):] = True
    except (IndentationError, SyntaxError):
        pass
    z8, z16 = np.zeros(n, np.int8), np.zeros(n, np.int16)
    return CharLabels(text, z8, in_string, np.zeros(n, bool), in_comment, z16, z16.copy(), z8.copy())


def token_spans(tokenizer: Any, ids: Sequence[int]) -> tuple[str, list[tuple[int, int]]]:
    """The decoded text of ``ids`` and each token's character span in it."""
    ends = [len(tokenizer.decode(list(ids[:k + 1]))) for k in range(len(ids))]
    return tokenizer.decode(list(ids)), list(zip([0] + ends[:-1], ends))


def concept_of_generated(tokenizer: Any, prompt: Sequence[int], generated: Sequence[int],
                         concept: str) -> np.ndarray:
    """Bool ``[len(generated)]``: which generated tokens lie in ``concept`` (``in_comment`` or
    ``in_string``), labelled in the context of the prompt."""
    check_concept(concept)
    ids = list(prompt) + list(generated)
    text, spans = token_spans(tokenizer, ids)
    return align_to_tokens(tolerant_labels(text), spans[len(prompt):], concept)


def concept_fraction(tokenizer: Any, prompts: torch.Tensor, generated: torch.Tensor, concept: str) -> float:
    """Fraction of all generated tokens (``generated: [batch, new]``) that lie in ``concept``."""
    if generated.shape[0] != prompts.shape[0]:
        raise ValueError(f"generated has {generated.shape[0]} rows but there are {prompts.shape[0]} prompts")
    hits = [concept_of_generated(tokenizer, p.tolist(), g.tolist(), concept) for p, g in zip(prompts, generated)]
    return float(np.concatenate(hits).mean())


def dose_response(model: Any, tokenizer: Any, prompts: torch.Tensor, hook_name: str, direction: torch.Tensor,
                  strengths: Sequence[float], concept: str = "in_comment", max_new_tokens: int = 24
                  ) -> np.ndarray:
    """Fraction of generated tokens in ``concept`` when ``strength * direction`` is added at
    ``hook_name``, one entry per strength: ``[n_strengths]``."""
    direction = check_direction(direction, model.cfg.d_model)
    check_concept(concept)
    hooks = [add_hook(direction, check_strength(s)) for s in strengths]
    return _fractions(model, tokenizer, prompts, hook_name, hooks, concept, max_new_tokens)


def clamp_response(model: Any, tokenizer: Any, prompts: torch.Tensor, hook_name: str, sae: Any,
                   latent: int, values: Sequence[float], concept: str = "in_string",
                   max_new_tokens: int = 24) -> np.ndarray:
    """Fraction of generated tokens in ``concept`` when SAE latent ``latent`` is clamped to each of
    ``values`` at ``hook_name`` (:func:`clamp_hook`, every position; the error term kept):
    ``[n_values]``, the clamping counterpart of :func:`dose_response`."""
    check_concept(concept)
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"values must be a non-empty sequence of clamp values, got {values!r}")
    hooks = [clamp_hook(sae, latent, v) for v in values]  # checks the latent and every value first
    return _fractions(model, tokenizer, prompts, hook_name, hooks, concept, max_new_tokens)


def _fractions(model: Any, tokenizer: Any, prompts: torch.Tensor, hook_name: str,
               hooks: Sequence[Hook], concept: str, max_new_tokens: int) -> np.ndarray:
    """``[n_hooks]``: the fraction of generated tokens in ``concept``, one greedy run per hook."""
    out = []
    for hook in hooks:
        gen = generate_ids(model, prompts, max_new_tokens, [(hook_name, hook)])
        out.append(concept_fraction(tokenizer, prompts, gen, concept))
    return np.array(out)


def check_directions(directions: object, d_model: int) -> torch.Tensor:
    """Finite directions ``[n_directions, d_model]``, none of them zero, scaled to unit norm."""
    if not isinstance(directions, torch.Tensor):
        raise TypeError(f"directions must be a torch.Tensor [n_directions, d_model], got {type(directions).__name__}")
    if directions.ndim != 2 or directions.shape[1] != d_model or directions.shape[0] == 0:
        raise ValueError(f"directions must have shape [n_directions, {d_model}], got {list(directions.shape)}")
    if not torch.isfinite(directions).all() or bool((directions.norm(dim=1) == 0).any()):
        raise ValueError("every direction must be finite and non-zero")
    d = directions.detach().float()
    return d / d.norm(dim=1, keepdim=True)


def rowwise_add_hook(directions: torch.Tensor, strength: float, n_prompts: int) -> Hook:
    """A hook for a batch of ``n_directions`` copies of ``n_prompts`` prompts (direction-major):
    row ``r`` gets ``strength * directions[r // n_prompts]`` at every position (out of place)."""
    s = check_strength(strength)

    def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
        rows = directions.to(act.device, act.dtype).repeat_interleave(n_prompts, 0)  # [batch, d]
        return act + s * rows[:, None, :]

    return hook


def dose_response_many(model: Any, tokenizer: Any, prompts: torch.Tensor, hook_name: str,
                       directions: torch.Tensor, strengths: Sequence[float], concept: str = "in_comment",
                       max_new_tokens: int = 24) -> np.ndarray:
    """:func:`dose_response` for several directions at once: ``[n_directions, n_strengths]``.

    The directions (rows of ``[n_directions, d_model]``) are scaled to unit norm, so every one is
    added with the same norm; all of them are generated in one batch per strength (greedy decoding
    is per row, so each row is the continuation :func:`dose_response` gives, up to float rounding),
    and strength 0 (the unsteered model, the same for every direction) is generated once."""
    units = check_directions(directions, model.cfg.d_model)
    check_concept(concept)
    strengths = [check_strength(s) for s in strengths]
    n_dir, n_p = units.shape[0], prompts.shape[0]
    out = np.zeros((n_dir, len(strengths)))
    baseline: float | None = None
    for j, s in enumerate(strengths):
        if check_strength(s) == 0.0:
            if baseline is None:
                baseline = concept_fraction(tokenizer, prompts, generate_ids(model, prompts, max_new_tokens), concept)
            out[:, j] = baseline
            continue
        gen = generate_ids(model, prompts.repeat(n_dir, 1), max_new_tokens,
                           [(hook_name, rowwise_add_hook(units, s, n_p))])
        out[:, j] = [concept_fraction(tokenizer, prompts, gen[i * n_p:(i + 1) * n_p], concept) for i in range(n_dir)]
    return out


def spread(values: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, standard deviation, minimum and maximum over directions (rows) of
    ``[n_directions, n_strengths]``: each ``[n_strengths]``."""
    v = np.asarray(values, float)
    if v.ndim != 2 or v.shape[0] < 2:
        raise ValueError(f"values must be [n_directions >= 2, n_strengths], got shape {list(v.shape)}")
    return {"mean": v.mean(0), "std": v.std(0, ddof=1), "min": v.min(0), "max": v.max(0)}


def compare_to_random(values: Sequence[float], random: np.ndarray) -> dict[str, Any]:
    """Where one direction's curve ``[n_strengths]`` lies against random directions
    ``[n_directions, n_strengths]`` at each strength: ``z`` (distance from the random mean in random
    standard deviations; 0 where the random rows agree, as at strength 0) and ``position`` ("above" every random
    direction, "below" every one, or "inside" their range)."""
    v = np.asarray(values, float)
    band = spread(random)
    if v.shape != band["mean"].shape:
        raise ValueError(f"values have shape {list(v.shape)} but random has {band['mean'].shape[0]} strengths")
    sd = band["std"]
    spread_zero = sd <= 1e-9 * np.maximum(np.abs(band["mean"]), 1.0)  # identical rows, up to rounding
    z = np.divide(v - band["mean"], sd, out=np.zeros_like(v), where=~spread_zero)
    position = ["above" if a > hi else "below" if a < lo else "inside"
                for a, lo, hi in zip(v, band["min"], band["max"])]
    return {"z": z, "position": position}


@torch.no_grad()
def steered_loss(model: Any, windows: torch.Tensor, fwd_hooks: Sequence[tuple[str, Hook]] = ()) -> float:
    """Mean next-token loss (nats) on ``windows: [n, pos]`` with ``fwd_hooks`` applied."""
    check_hook_names(model, fwd_hooks)
    with model.hooks(fwd_hooks=list(fwd_hooks)):
        return float(model(windows, return_type="loss"))


def mean_difference_direction(acts: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    """Unit ``mean(acts | concept) - mean(acts | not concept)``: ``[d]``."""
    y = _check_labels(acts, labels)
    return unit(acts[y].mean(0) - acts[~y].mean(0))


def probe_direction(acts: torch.Tensor, labels: np.ndarray, C: float = 1.0) -> torch.Tensor:
    """Unit weight vector (in activation coordinates) of a logistic-regression probe for the concept."""
    from sklearn.linear_model import LogisticRegression

    y = _check_labels(acts, labels)
    X = acts.double().numpy()
    mu, sd = X.mean(0), X.std(0) + 1e-6
    clf = LogisticRegression(C=C, max_iter=2000).fit((X - mu) / sd, y)
    return unit(torch.tensor(clf.coef_[0] / sd, dtype=torch.float32))


def _check_labels(acts: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    if not isinstance(acts, torch.Tensor) or acts.ndim != 2:
        raise ValueError("acts must be a tensor [n_tokens, d]")
    y = np.asarray(labels)
    if y.shape != (acts.shape[0],):
        raise ValueError(f"labels have shape {y.shape} but acts has {acts.shape[0]} rows: one label per token")
    y = torch.as_tensor(y.astype(bool))
    if y.all() or not y.any():
        raise ValueError("labels must contain both classes")
    return y


def best_latent(latent_acts: np.ndarray, labels: np.ndarray, min_precision: float = 0.9) -> int:
    """The latent with the highest F1 for the concept among those whose precision (fires on more than
    half its maximum only where the concept holds) is at least ``min_precision``."""
    from course_utils.labels import score_units

    n_rows, n_labels = np.shape(latent_acts)[0], len(np.asarray(labels))
    if n_rows != n_labels:
        raise ValueError(f"labels have {n_labels} entries but latent_acts has {n_rows} rows: one label per token")
    s = score_units(latent_acts, {"c": np.asarray(labels, bool)})
    f1 = np.where(s["precision"][:, 0] >= min_precision, s["f1"][:, 0], -1.0)
    return int(np.argmax(f1))


def prompt_windows(tokenizer: Any, texts: Sequence[str], n_prompts: int, length: int = 48, seed: int = 0
                   ) -> torch.Tensor:
    """``[n_prompts, length]`` token ids: each the first ``length`` tokens of a text from a random
    top-level line start (not indented, and outside any string or comment by the course labeller) of a
    random parsable text (seeded), so that labels of prompt + continuation start in a known state.

    One round takes one start from each text, in a seeded random order; when more prompts are asked
    for than one round gives, further rounds take other starts of the same texts (so prompts of one
    text may overlap)."""
    from course_utils.labels import LabelError, char_labels

    if isinstance(n_prompts, bool) or not isinstance(n_prompts, int) or n_prompts < 1:
        raise ValueError(f"n_prompts must be a positive int, got {n_prompts!r}")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(texts), generator=g).tolist()
    unused: dict[int, list[int]] = {}  # text -> line starts not yet taken
    out: list[list[int]] = []
    while True:
        took = False
        for i in order:
            if i not in unused:
                unused[i] = _top_level_starts(texts[i], char_labels, LabelError)
            starts = unused[i]
            if not starts:
                continue
            a = starts.pop(int(torch.randint(len(starts), (1,), generator=g)))
            took = True
            ids = tokenizer.encode(texts[i][a:]).ids
            if len(ids) >= length:
                out.append(ids[:length])
            if len(out) == n_prompts:
                return torch.tensor(out)
        if not took:
            raise ValueError(f"the texts give only {len(out)} {length}-token prompts; pass more texts")


def _top_level_starts(text: str, char_labels: Any, LabelError: type[Exception]) -> list[int]:
    """Offsets of the lines of ``text`` that start at top level outside strings (none if it does not
    parse)."""
    try:
        lab = char_labels(text)
    except LabelError:
        return []
    starts = [0] + [k + 1 for k, ch in enumerate(text[:-1]) if ch == "\n"]
    return [a for a in starts if text[a] not in " \t\n#" and not lab.in_string[a]]
