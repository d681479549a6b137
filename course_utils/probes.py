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


def windows(n_tokens: int, n_ctx: int, min_context: int = 0) -> list[tuple[int, int]]:
    """``(start, keep)`` of the context windows :func:`collect` cuts a text of ``n_tokens`` into: the
    window is tokens ``start .. start + n_ctx - 1`` and its positions ``keep ..`` are scored."""
    if not 0 <= min_context < n_ctx:
        raise ValueError(f"min_context must be in [0, n_ctx={n_ctx}), got {min_context}")
    return [(s, 0 if s == 0 else min_context) for s in range(0, max(1, n_tokens - min_context), n_ctx - min_context)]


@torch.no_grad()
def collect(model: Any, tokenizer: Any, texts: list[str], hooks: tuple[str, ...] = PROBE_HOOKS,
            max_tokens: int = 30_000, concepts: list[str] | None = None, per_text: int = 1024,
            min_context: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Activations ``{hook: [n_tokens, d]}`` over the first ``per_text`` tokens of each of ``texts``
    (cut into context windows, as :func:`course_utils.course_lm.unit_activations` does; the cap spreads
    the sample over many files) and the labels ``{concept: [n_tokens]}``.

    ``min_context=0`` cuts each text into non-overlapping windows, so a token early in a window sees
    few tokens before it (a token inside a docstring that opened in the previous window cannot see it
    open). ``min_context=k`` slides the windows by ``n_ctx - k`` instead and keeps only the tokens that
    see at least ``k`` tokens before them in their window, or the whole file before them (the first
    window): every token of the text's first ``per_text`` is still taken once."""
    from course_utils.labels import LabelError, token_labels

    unknown = [h for h in hooks if h not in model.hook_dict]
    if unknown:
        raise ValueError(f"unknown hook names {unknown}; e.g. 'blocks.1.hook_resid_post'")
    if max_tokens < 1 or per_text < 1:
        raise ValueError(f"max_tokens and per_text must be positive, got {max_tokens} and {per_text}")
    n_ctx = model.cfg.n_ctx
    if not 0 <= min_context < n_ctx:
        raise ValueError(f"min_context must be in [0, n_ctx={n_ctx}), got {min_context}")
    acts: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    labs: list[dict[str, np.ndarray]] = []
    total = 0
    for text in texts:
        try:
            tl = token_labels(text, tokenizer, concepts)
        except LabelError:
            continue
        ids = torch.tensor(tokenizer.encode(text).ids)[:per_text]
        for start, keep in windows(len(ids), n_ctx, min_context):
            window = ids[start:start + n_ctx][: keep + max_tokens - total]
            _, cache = model.run_with_cache(window[None], names_filter=list(hooks))
            for h in hooks:
                acts[h].append(cache[h][0, keep:].reshape(len(window) - keep, -1).float())
            labs.append({c: v[start + keep:start + len(window)] for c, v in tl.values.items()})
            total += len(window) - keep
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
    from sklearn.metrics import f1_score

    for y in (y_train, y_val):
        if min(int(y.sum()), int((~y.astype(bool)).sum())) < MIN_POSITIVES:
            return None
    return float(f1_score(y_val, _fit_predict(X_train, y_train, X_val, C, seed)))


def _fit_predict(X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, C: float = 1.0, seed: int = 0
                 ) -> np.ndarray:
    """Predictions on ``X_val`` of a logistic-regression probe fitted on standardised ``X_train``."""
    from sklearn.linear_model import LogisticRegression

    mu, sd = X_train.mean(0), X_train.std(0) + 1e-6
    clf = LogisticRegression(C=C, max_iter=1000, random_state=seed)
    clf.fit((X_train - mu) / sd, y_train)
    return clf.predict((X_val - mu) / sd).astype(bool)


def probe_report(model: Any, tokenizer: Any, train_texts: list[str], val_texts: list[str],
                 hooks: tuple[str, ...] = PROBE_HOOKS, concepts: list[str] | None = None,
                 n_train: int = 30_000, n_val: int = 15_000, min_context: int = 0) -> dict[str, Any]:
    """``{"f1": {hook: {concept: F1 or None}}, "n_train", "n_val", "positives_val": {concept: n}}``:
    a probe per (hook, concept), fitted on ``n_train`` tokens of ``train_texts`` and scored on
    ``n_val`` tokens of ``val_texts`` (at most 1,024 tokens from each text; ``min_context``: see
    :func:`collect`)."""
    from course_utils.labels import concepts as all_concepts

    names = list(all_concepts() if concepts is None else concepts)
    Xtr, ytr = collect(model, tokenizer, train_texts, hooks, n_train, names, min_context=min_context)
    Xva, yva = collect(model, tokenizer, val_texts, hooks, n_val, names, min_context=min_context)
    f1 = {h: {c: (None if (v := probe_f1(Xtr[h], ytr[c], Xva[h], yva[c])) is None else round(v, 4))
              for c in names} for h in hooks}
    return {"f1": f1, "n_train": len(ytr[names[0]]), "n_val": len(yva[names[0]]), "min_context": min_context,
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


_PREFIXES = {"", "r", "u", "b", "f", "br", "rb", "fr", "rf"}
WINDOW_CONCEPTS = ("in_string", "in_docstring", "in_comment")


def window_lexer(text: str) -> dict[str, np.ndarray]:
    """What a reader that sees only ``text`` (a context window), from its first character on, can know:
    per character, is it inside a string, a docstring (here: a triple-quoted string that opens its
    line) or a comment (``#`` outside a string, to the end of the line). A window that starts inside a
    string reads it inside out; that is the point: it measures what the window alone allows."""
    n = len(text)
    out = {c: np.zeros(n, bool) for c in WINDOW_CONCEPTS}
    i, line = 0, 0  # line: offset of the current line's first character
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out["in_comment"][i:j] = True
            i = j
            continue
        if ch in "'\"":
            q = ch * 3 if text.startswith(ch * 3, i) else ch
            j = i + len(q)
            while j < n and not text.startswith(q, j) and not (len(q) == 1 and text[j] == "\n"):
                j += 2 if text[j] == "\\" else 1
            end = min(n, j + len(q)) if j < n and text[j] != "\n" else min(n, j)
            out["in_string"][i:end] = True
            out["in_docstring"][i:end] = len(q) == 3 and text[line:i].strip().lower() in _PREFIXES
            nl = text.rfind("\n", i, end)
            line = line if nl < 0 else nl + 1
            i = end
            continue
        if ch == "\n":
            line = i + 1
        i += 1
    return out


def window_ceiling(tokenizer: Any, texts: list[str], n_ctx: int = 128, max_tokens: int = 15_000,
                   per_text: int = 1024, min_context: int = 0) -> dict[str, Any]:
    """On the tokens :func:`collect` takes (same windows): per concept of :data:`WINDOW_CONCEPTS`, the
    F1 of :func:`window_lexer` run on each window alone, and the share of positive tokens whose string,
    docstring or comment opened before their window (nothing in the window shows it open)."""
    from course_utils.labels import CharLabels, LabelError, align_to_tokens, token_labels

    got: dict[str, list[np.ndarray]] = {c: [] for c in WINDOW_CONCEPTS}
    true: dict[str, list[np.ndarray]] = {c: [] for c in WINDOW_CONCEPTS}
    before: dict[str, list[np.ndarray]] = {c: [] for c in WINDOW_CONCEPTS}
    total = 0
    for text in texts:
        try:
            tl = token_labels(text, tokenizer, list(WINDOW_CONCEPTS))
        except LabelError:
            continue
        spans = tl.spans[:per_text]
        for start, keep in windows(len(spans), n_ctx, min_context):
            end = min(start + n_ctx, len(spans), start + keep + max_tokens - total)
            a0 = spans[start][0]
            lex = window_lexer(text[a0:spans[end - 1][1]])
            z = np.zeros(len(lex["in_string"]), np.int8)
            cl = CharLabels(text[a0:spans[end - 1][1]], z, lex["in_string"], lex["in_docstring"],
                            lex["in_comment"], z.astype(np.int16), z.astype(np.int16), z)
            rel = [(a - a0, b - a0) for a, b in spans[start + keep:end]]
            for c in WINDOW_CONCEPTS:
                y = tl.values[c]
                got[c].append(align_to_tokens(cl, rel, c))
                true[c].append(y[start + keep:end])
                # a positive token's run of positives reaches back past the window's first token
                run_start = np.array([k + 1 - np.argmin(y[k::-1]) if not y[:k + 1].all() else 0
                                      for k in range(start + keep, end)])
                before[c].append(y[start + keep:end] & (run_start < start))
            total += end - start - keep
            if total >= max_tokens:
                break
        if total >= max_tokens:
            break
    from sklearn.metrics import f1_score

    out: dict[str, Any] = {"n_tokens": total, "min_context": min_context}
    for c in WINDOW_CONCEPTS:
        y, g, b = (np.concatenate(v) for v in (true[c], got[c], before[c]))
        out[c] = {"lexer_f1": round(float(f1_score(y, g)), 4), "positives": int(y.sum()),
                  "opened_before_window": round(float(b.sum() / max(y.sum(), 1)), 4)}
    return out


def comment_confusion(model: Any, tokenizer: Any, hook: str = "blocks.1.hook_resid_post", n_train: int = 30_000,
                      n_val: int = 15_000) -> dict[str, Any] | None:
    """Where the ``in_comment`` probe at ``hook`` errs (the report's texts and protocol): its false
    positives inside docstrings, inside other strings and in code; and the F1 of a probe for the union
    "in a comment or a docstring" (text in English rather than code). None when either set has fewer
    than :data:`MIN_POSITIVES` comment tokens or non-comment tokens."""
    from sklearn.metrics import f1_score

    names = list(WINDOW_CONCEPTS)
    train_texts, val_texts = probe_texts()
    Xtr, ytr = collect(model, tokenizer, train_texts, (hook,), n_train, names)
    Xva, yva = collect(model, tokenizer, val_texts, (hook,), n_val, names)
    y, doc, string = yva["in_comment"], yva["in_docstring"], yva["in_string"]
    for v in (ytr["in_comment"], y):
        if min(int(v.sum()), int((~v).sum())) < MIN_POSITIVES:
            return None
    pred = _fit_predict(Xtr[hook], ytr["in_comment"], Xva[hook])
    fp = pred & ~y
    prose = _fit_predict(Xtr[hook], ytr["in_comment"] | ytr["in_docstring"], Xva[hook])
    return {"in_comment_f1": round(float(f1_score(y, pred)), 4), "false_positives": int(fp.sum()),
            "false_negatives": int((~pred & y).sum()), "fp_in_docstring": int((fp & doc).sum()),
            "fp_in_other_string": int((fp & string & ~doc).sum()), "fp_in_code": int((fp & ~string).sum()),
            "comment_or_docstring_f1": round(float(f1_score(y | doc, prose)), 4)}
