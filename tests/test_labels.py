"""Ground-truth labels from tokenize/ast, on tricky inputs, and their alignment to token spans."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.labels import LabelError, align_to_tokens, char_labels, concepts

SRC = '''"""Module docstring."""
import os  # comment here


def f(x, y=(1, [2, 3])):
    """Doc of f
    spans lines."""
    s = f"value {x!r} and {{braces}}"
    if x:
        return [i for i in range(3)]
    return """not a
docstring"""
'''


def at(labels, needle, concept, nth=0):
    start = -1
    for _ in range(nth + 1):
        start = labels.text.index(needle, start + 1)
    return labels.concept(concept)[start:start + len(needle)]


@pytest.fixture(scope="module")
def lab():
    return char_labels(SRC)


def test_token_types(lab):
    assert at(lab, "import", "token:keyword").all()
    assert at(lab, "os", "token:name").all()
    assert at(lab, "# comment", "token:comment").all() and at(lab, "# comment", "in_comment").all()
    assert at(lab, "1", "token:number", nth=0).all()
    assert at(lab, "=", "token:operator").all()


def test_docstrings_vs_other_strings(lab):
    assert at(lab, '"""Module docstring."""', "in_docstring").all()
    assert at(lab, "spans lines.", "in_docstring").all(), "multi-line docstring"
    assert at(lab, "not a", "in_string").all() and not at(lab, "not a", "in_docstring").any()
    assert at(lab, "{braces}", "in_string").all(), "f-string contents are inside the string"


def test_brackets_and_indentation(lab):
    assert at(lab, "x, y", "bracket>=1").all()
    assert at(lab, "2, 3", "bracket>=2").all(), "nested list inside a tuple inside the parameter list"
    assert not at(lab, "def", "bracket>=1").any()
    assert at(lab, "return [i", "indent>=2").all() and not at(lab, "if x", "indent>=2").any()
    assert at(lab, "if x", "indent>=1").all()


def test_statement_kinds_are_innermost(lab):
    assert at(lab, "import os", "stmt:import").all()
    assert at(lab, "s = f", "stmt:assign").all()
    assert at(lab, "return [i", "stmt:return").all(), "return inside if: the innermost statement wins"
    assert at(lab, "if x:", "stmt:if").all()
    assert at(lab, "def f", "stmt:def").all()


def test_alignment_majority_rule_for_straddling_tokens(lab):
    start = SRC.index("# comment")
    # a token covering '  # co' -> whitespace ignored, all of '# co' is comment
    spans = [(start - 2, start + 4), (start - 6, start + 1), (0, 0)]
    got = align_to_tokens(lab, spans, "in_comment")
    assert got.tolist() == [True, False, False]  # the second token is mostly code, the third empty
    with pytest.raises(ValueError, match="outside the text"):
        align_to_tokens(lab, [(0, len(SRC) + 5)], "in_comment")


def test_every_listed_concept_is_computable(lab):
    for c in concepts():
        v = lab.concept(c)
        assert v.dtype == bool and v.shape == (len(SRC),)
    with pytest.raises(ValueError, match="unknown concept"):
        lab.concept("token:banana")


@pytest.mark.parametrize("text, error, match", [
    ("", LabelError, "empty"),
    ("   \n", LabelError, "empty"),
    ("def (:\n", LabelError, "not valid Python"),
    (b"x = 1", TypeError, "must be a str"),
])
def test_bad_input(text, error, match):
    with pytest.raises(error, match=match):
        char_labels(text)


def test_non_ascii_columns_are_mapped_to_characters():
    lab = char_labels('s = "héllo"  # ünïcode\nt = 1\n')
    assert at(lab, "# ünïcode", "in_comment").all()
    assert at(lab, "t = 1", "stmt:assign").all() and not at(lab, "t = 1", "in_comment").any()


def test_labels_whole_corpus_file():
    from course_utils.corpus import load_corpus

    f = next(f for f in load_corpus("validation") if len(f.text) > 2000)
    lab = char_labels(f.text)
    assert lab.in_string.any() and lab.in_comment.any() or lab.in_docstring.any()
    assert np.all(lab.bracket_depth >= 0)


def test_token_labels_on_real_bpe_tokens_that_straddle_boundaries():
    from course_utils.corpus import load_corpus
    from course_utils.course_lm import train_tokenizer
    from course_utils.labels import token_labels

    tok = train_tokenizer([f.text for f in load_corpus("validation")][:20], vocab_size=600)
    text = 'x = f"a{b}c"  # note\nif (y and\n        z):\n    pass\n'
    tl = token_labels(text, tok, ["in_string", "in_comment", "bracket>=1", "token:keyword"])
    assert "".join(tl.tokens) == text, "spans cover the text exactly"
    by_tok = dict(zip(tl.tokens, tl.values["in_comment"]))
    assert by_tok.get(" note", True) and not by_tok.get("x", False)
    for t, _s, kw in zip(tl.tokens, tl.spans, tl.values["token:keyword"]):
        if t.strip() in ("if", "and", "pass"):
            assert kw, f"{t!r} should be a keyword"
    # the newline+indent token inside the parenthesis is whitespace: judged on all its characters
    inside = [v for t, v in zip(tl.tokens, tl.values["bracket>=1"]) if t.strip() == "z"]
    assert inside == [True]


def test_score_units_precision_recall_f1():
    from course_utils.labels import score_units

    acts = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    labels = {"a": np.array([True, True, False, False]), "b": np.array([False, True, True, True])}
    s = score_units(acts, labels)
    assert s["f1"][0, 0] == 1.0  # unit 0 is exactly concept a
    assert np.isclose(s["precision"][1, 1], 1.0) and np.isclose(s["recall"][1, 1], 2 / 3)
    with pytest.raises(ValueError, match="expected \\(4,\\)"):
        score_units(acts, {"a": np.array([True])})
    with pytest.raises(ValueError, match="n_tokens, n_units"):
        score_units(acts[0], labels)
