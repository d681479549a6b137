"""Ground-truth labels for Python source, from Python's own ``tokenize`` and ``ast`` modules.

Every character of a source text gets known concepts: its token type (name, keyword, string, comment,
number, operator), whether it lies inside a string / docstring / comment, the indentation depth of its
line, the bracket depth at that point, and the kind of the innermost statement that contains it.
Any unit (a neuron, an SAE latent, a transcoder feature) can then be scored against these concepts
automatically (precision / recall / F1 of "fires" against "label holds").

:func:`char_labels` labels characters; :func:`align_to_tokens` carries the labels over to the tokens of
any tokenizer, given each token's character span.
"""

from __future__ import annotations

import ast
import io
import keyword
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TOKEN_TYPES = ("none", "name", "keyword", "string", "comment", "number", "operator")
_TT = {name: i for i, name in enumerate(TOKEN_TYPES)}
STATEMENTS = ("none", "def", "class", "import", "return", "if", "for", "while", "with", "try", "assign",
              "expr", "raise", "other")
_STMT = {ast.FunctionDef: "def", ast.AsyncFunctionDef: "def", ast.ClassDef: "class", ast.Import: "import",
         ast.ImportFrom: "import", ast.Return: "return", ast.If: "if", ast.For: "for", ast.AsyncFor: "for",
         ast.While: "while", ast.With: "with", ast.AsyncWith: "with", ast.Try: "try", ast.Assign: "assign",
         ast.AugAssign: "assign", ast.AnnAssign: "assign", ast.Expr: "expr", ast.Raise: "raise"}
_STRING_TOKENS = {tokenize.STRING} | {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
                                      if hasattr(tokenize, n)}


class LabelError(ValueError):
    """The text cannot be labelled (empty, or not valid Python)."""


@dataclass
class CharLabels:
    """Per-character labels, each an array of length ``len(text)``."""

    text: str
    token_type: np.ndarray  # int8 index into TOKEN_TYPES
    in_string: np.ndarray  # bool
    in_docstring: np.ndarray  # bool
    in_comment: np.ndarray  # bool
    indent_depth: np.ndarray  # int16: indentation level of the character's line
    bracket_depth: np.ndarray  # int16: open (, [, { before this character (a bracket counts inside itself)
    statement: np.ndarray  # int8 index into STATEMENTS: innermost statement containing the character

    def concept(self, name: str) -> np.ndarray:
        """A boolean concept by name: ``"in_string"``, ``"token:keyword"``, ``"stmt:def"``,
        ``"indent>=2"``, ``"bracket>=1"``."""
        if name in ("in_string", "in_docstring", "in_comment"):
            return getattr(self, name).copy()
        kind, _, value = name.partition(":")
        if kind == "token" and value in _TT:
            return self.token_type == _TT[value]
        if kind == "stmt" and value in STATEMENTS:
            return self.statement == STATEMENTS.index(value)
        for attr in ("indent", "bracket"):
            if name.startswith(f"{attr}>="):
                return getattr(self, f"{attr}_depth") >= int(name.split(">=")[1])
        raise ValueError(f"unknown concept {name!r}; see concepts() for the list")


def concepts() -> list[str]:
    """Every boolean concept name :meth:`CharLabels.concept` understands."""
    return (["in_string", "in_docstring", "in_comment"] + [f"token:{t}" for t in TOKEN_TYPES[1:]]
            + [f"stmt:{s}" for s in STATEMENTS[1:]] + [f"indent>={d}" for d in (1, 2, 3)]
            + [f"bracket>={d}" for d in (1, 2)])


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def char_labels(text: str) -> CharLabels:
    """Label every character of a Python source ``text`` (which must parse)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise LabelError("text is empty: there is nothing to label")
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise LabelError(f"text is not valid Python (line {err.lineno}: {err.msg}); labels need parsable source") from None
    n = len(text)
    starts = _line_starts(text)

    def off(line: int, col: int) -> int:  # tokenize/ast columns: tokenize counts characters; ast bytes
        return min(starts[line - 1] + col, n) if line - 1 < len(starts) else n

    token_type = np.zeros(n, np.int8)
    in_string = np.zeros(n, bool)
    in_comment = np.zeros(n, bool)
    bracket_depth = np.zeros(n, np.int16)
    indent_depth = np.zeros(n, np.int16)
    depth_at = []  # (offset, bracket depth from there on)
    indent = 0
    line_indent: dict[int, int] = {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        a, b = off(*tok.start), off(*tok.end)
        if tok.type == tokenize.INDENT:
            indent += 1
        elif tok.type == tokenize.DEDENT:
            indent -= 1
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.COMMENT):
            for line in range(tok.start[0], tok.end[0] + 1):
                line_indent.setdefault(line, indent)
        if tok.type == tokenize.NAME:
            # soft keywords (match, case, _) stay names: telling them apart needs the parser
            token_type[a:b] = _TT["keyword" if keyword.iskeyword(tok.string) else "name"]
        elif tok.type in _STRING_TOKENS:
            token_type[a:b] = _TT["string"]
            in_string[a:b] = True
        elif tok.type == tokenize.COMMENT:
            token_type[a:b] = _TT["comment"]
            in_comment[a:b] = True
        elif tok.type == tokenize.NUMBER:
            token_type[a:b] = _TT["number"]
        elif tok.type == tokenize.OP:
            token_type[a:b] = _TT["operator"]
            if tok.string in "([{":
                depth_at.append((a, 1))
            elif tok.string in ")]}":
                depth_at.append((b, -1))
    delta = np.zeros(n + 1, np.int32)
    for pos, d in depth_at:
        delta[pos] += d
    bracket_depth[:] = np.cumsum(delta)[:n]
    for line, d in line_indent.items():
        if line - 1 < len(starts):
            a = starts[line - 1]
            b = starts[line] if line < len(starts) else n
            indent_depth[a:b] = d

    byte_lines = [ln.encode("utf-8") for ln in text.splitlines(keepends=True)] or [b""]

    def node_off(line: int, col_bytes: int) -> int:  # ast columns are UTF-8 byte offsets
        if line - 1 >= len(byte_lines):
            return n
        return off(line, len(byte_lines[line - 1][:col_bytes].decode("utf-8", errors="ignore")))

    in_docstring = np.zeros(n, bool)
    statement = np.zeros(n, np.int8)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                a = node_off(first.lineno, first.col_offset)
                b = node_off(first.end_lineno, first.end_col_offset)
                in_docstring[a:b] = True
    _innermost_statements(tree, statement, node_off)
    return CharLabels(text, token_type, in_string, in_docstring, in_comment, indent_depth, bracket_depth, statement)


def _innermost_statements(tree: ast.AST, statement: np.ndarray, node_off) -> None:
    """Depth-first, parents before children, so the innermost statement's kind wins."""

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                a = node_off(child.lineno, child.col_offset)
                b = node_off(child.end_lineno, child.end_col_offset)
                statement[a:b] = STATEMENTS.index(_STMT.get(type(child), "other"))
            visit(child)

    visit(tree)


def align_to_tokens(labels: CharLabels, spans: Sequence[tuple[int, int]], concept: str) -> np.ndarray:
    """A boolean concept per token: true when it holds on the majority of the token's non-whitespace
    characters (a whitespace-only token uses all its characters). ``spans[i] = (start, end)`` are the
    character offsets of token ``i`` in ``labels.text`` (e.g. a tokenizer's offset mapping)."""
    values = labels.concept(concept)
    n = len(labels.text)
    out = np.zeros(len(spans), bool)
    for i, (a, b) in enumerate(spans):
        if not (0 <= a <= b <= n):
            raise ValueError(f"token {i} has span ({a}, {b}) outside the text of length {n}")
        if a == b:
            continue
        chars = labels.text[a:b]
        keep = np.array([not c.isspace() for c in chars]) if not chars.isspace() else np.ones(b - a, bool)
        v = values[a:b][keep]
        out[i] = v.sum() * 2 > len(v)
    return out


@dataclass
class TokenLabels:
    """Concepts per BPE token of a text: ``values[concept]`` is a bool array over ``tokens``."""

    tokens: list[str]
    spans: list[tuple[int, int]]
    values: dict[str, np.ndarray]


def token_labels(text: str, tokenizer, names: Sequence[str] | None = None) -> TokenLabels:
    """Label each token of ``text`` (tokenised by a ``tokenizers.Tokenizer``) with every concept in
    ``names`` (default: all of :func:`concepts`), by the majority rule of :func:`align_to_tokens`."""
    lab = char_labels(text)
    enc = tokenizer.encode(text)
    spans = [tuple(s) for s in enc.offsets]
    names = list(concepts() if names is None else names)
    return TokenLabels([text[a:b] for a, b in spans], spans,  # type: ignore[misc]
                       {c: align_to_tokens(lab, spans, c) for c in names})


def score_units(acts: np.ndarray, labels: dict[str, np.ndarray], threshold: float | np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
    """Precision, recall and F1 of "unit fires" against "concept holds", for every unit and concept.

    ``acts: [n_tokens, n_units]``; ``labels[c]: [n_tokens]`` bools. A unit fires on a token when its
    activation exceeds ``threshold`` (default: per unit, half of its maximum over these tokens). Returns
    arrays ``[n_units, n_concepts]`` under ``"precision"``, ``"recall"``, ``"f1"`` and the concept names.
    """
    acts = np.asarray(acts, dtype=np.float64)
    if acts.ndim != 2:
        raise ValueError(f"acts must be [n_tokens, n_units], got shape {acts.shape}")
    if not labels:
        raise ValueError("labels must hold at least one concept")
    for c, v in labels.items():
        if np.asarray(v).shape != (acts.shape[0],):
            raise ValueError(f"labels[{c!r}] has shape {np.asarray(v).shape}, expected ({acts.shape[0]},)")
    if threshold is None:
        threshold = 0.5 * np.maximum(acts.max(0), 1e-12)
    fires = acts > threshold  # [tokens, units]
    names = list(labels)
    holds = np.stack([np.asarray(labels[c], bool) for c in names], 1)  # [tokens, concepts]
    tp = fires.T.astype(np.float64) @ holds.astype(np.float64)  # [units, concepts]
    precision = tp / np.maximum(fires.sum(0)[:, None], 1)
    recall = tp / np.maximum(holds.sum(0)[None, :], 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {"precision": precision, "recall": recall, "f1": f1, "concepts": np.array(names)}
