"""Linear probes: how linearly decodable each structural concept is at each hook point of a model.

For every concept of :mod:`course_utils.labels` (in a string, in a comment, statement kind, bracket
depth, ...) and every hook point in :data:`PROBE_HOOKS`, a logistic-regression probe (Alain & Bengio,
2016, "Understanding intermediate layers using linear classifier probes") is fitted on the
activations of training-file tokens and scored by F1 on tokens of held-out files. The course model's
training log records this report, old model against new (issue 12).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

# The residual stream before and after each block and between its attention and MLP, and the
# attention and MLP outputs (blocks.0.hook_resid_post is blocks.1.hook_resid_pre).
PROBE_HOOKS = ("hook_embed", "blocks.0.hook_resid_pre", "blocks.0.hook_attn_out", "blocks.0.hook_resid_mid",
               "blocks.0.mlp.hook_post", "blocks.0.hook_resid_post", "blocks.1.hook_attn_out",
               "blocks.1.hook_resid_mid", "blocks.1.mlp.hook_post", "blocks.1.hook_resid_post")
MIN_POSITIVES = 20  # fewer positive tokens in either set: no F1 is reported (None)


@torch.no_grad()
def collect(model: Any, tokenizer: Any, texts: list[str], hooks: tuple[str, ...] = PROBE_HOOKS,
            max_tokens: int = 30_000, concepts: list[str] | None = None, per_text: int = 1024
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Activations ``{hook: [n_tokens, d]}`` over the first ``per_text`` tokens of each of ``texts``
    (cut into context windows, as :func:`course_utils.course_lm.unit_activations` does; the cap spreads
    the sample over many files) and the labels ``{concept: [n_tokens]}``."""
    from course_utils.labels import LabelError, token_labels

    unknown = [h for h in hooks if h not in model.hook_dict]
    if unknown:
        raise ValueError(f"unknown hook names {unknown}; e.g. 'blocks.1.hook_resid_post'")
    if max_tokens < 1 or per_text < 1:
        raise ValueError(f"max_tokens and per_text must be positive, got {max_tokens} and {per_text}")
    n_ctx = model.cfg.n_ctx
    acts: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    labs: list[dict[str, np.ndarray]] = []
    total = 0
    for text in texts:
        try:
            tl = token_labels(text, tokenizer, concepts)
        except LabelError:
            continue
        ids = torch.tensor(tokenizer.encode(text).ids)[:per_text]
        for start in range(0, len(ids), n_ctx):
            window = ids[start:start + n_ctx][: max_tokens - total]
            _, cache = model.run_with_cache(window[None], names_filter=list(hooks))
            for h in hooks:
                acts[h].append(cache[h][0].reshape(len(window), -1).float())
            labs.append({c: v[start:start + len(window)] for c, v in tl.values.items()})
            total += len(window)
            if total >= max_tokens:
                break
        if total >= max_tokens:
            break
    if not labs:
        raise ValueError("none of the texts could be labelled (empty or not valid Python)")
    names = list(labs[0])
    return ({h: torch.cat(a).numpy() for h, a in acts.items()},
            {c: np.concatenate([lab[c] for lab in labs]) for c in names})


def probe_f1(X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
             C: float = 1.0, seed: int = 0) -> float | None:
    """F1 on ``(X_val, y_val)`` of a logistic-regression probe fitted on standardised ``X_train``
    (``[n, d]``); None when either set has fewer than :data:`MIN_POSITIVES` positives or negatives."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    for y in (y_train, y_val):
        if min(int(y.sum()), int((~y.astype(bool)).sum())) < MIN_POSITIVES:
            return None
    mu, sd = X_train.mean(0), X_train.std(0) + 1e-6
    clf = LogisticRegression(C=C, max_iter=1000, random_state=seed)
    clf.fit((X_train - mu) / sd, y_train)
    return float(f1_score(y_val, clf.predict((X_val - mu) / sd)))


def probe_report(model: Any, tokenizer: Any, train_texts: list[str], val_texts: list[str],
                 hooks: tuple[str, ...] = PROBE_HOOKS, concepts: list[str] | None = None,
                 n_train: int = 30_000, n_val: int = 15_000) -> dict[str, Any]:
    """``{"f1": {hook: {concept: F1 or None}}, "n_train", "n_val", "positives_val": {concept: n}}``:
    a probe per (hook, concept), fitted on ``n_train`` tokens of ``train_texts`` and scored on
    ``n_val`` tokens of ``val_texts`` (at most 1,024 tokens from each text)."""
    from course_utils.labels import concepts as all_concepts

    names = list(all_concepts() if concepts is None else concepts)
    Xtr, ytr = collect(model, tokenizer, train_texts, hooks, n_train, names)
    Xva, yva = collect(model, tokenizer, val_texts, hooks, n_val, names)
    f1 = {h: {c: (None if (v := probe_f1(Xtr[h], ytr[c], Xva[h], yva[c])) is None else round(v, 4))
              for c in names} for h in hooks}
    return {"f1": f1, "n_train": len(ytr[names[0]]), "n_val": len(yva[names[0]]),
            "positives_val": {c: int(yva[c].sum()) for c in names}}


def probe_texts() -> tuple[list[str], list[str]]:
    """The report's texts: every 5th stdlib training file and the stdlib validation files, held
    fixed so that old and new models are probed on the same code."""
    from course_utils.corpus import load_corpus

    return [f.text for f in load_corpus("train")[::5]], [f.text for f in load_corpus("validation")]


def plot_probe_report(reports: dict[str, dict[str, Any]], concepts: list[str]) -> Any:
    """Probe F1 per hook point (x) for each concept (one panel per model), as heat maps."""
    from plotly.subplots import make_subplots

    from course_utils.plotting import style

    fig = make_subplots(1, len(reports), subplot_titles=list(reports), shared_yaxes=True)
    for i, rep in enumerate(reports.values(), start=1):
        hooks = list(rep["f1"])
        z = [[np.nan if rep["f1"][h].get(c) is None else rep["f1"][h][c] for h in hooks] for c in concepts]
        fig.add_heatmap(z=z, x=hooks, y=concepts, zmin=0, zmax=1, colorscale="Viridis", row=1, col=i,
                        colorbar=dict(title="probe F1"), showscale=i == len(reports))
    fig.update_xaxes(tickangle=45)
    return style(fig, title="Linear probes: F1 per concept and hook point", height=650)
