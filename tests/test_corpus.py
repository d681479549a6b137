"""The shipped corpus snapshot: checksum, size, split by file, and the licence notice."""

from __future__ import annotations

import pytest

from course_utils import corpus


def test_corpus_loads_and_is_real_python_source():
    files = corpus.load_corpus("all")
    assert len(files) == 453
    assert sum(len(f.text) for f in files) > 8_000_000
    paths = [f.path for f in files]
    assert paths == sorted(paths) and "json/decoder.py" in paths
    assert not any(p.startswith(("test/", "idlelib/")) for p in paths)


def test_split_is_by_file_and_disjoint():
    train, val = corpus.load_corpus("train"), corpus.load_corpus("validation")
    assert {f.path for f in train}.isdisjoint({f.path for f in val})
    assert len(train) + len(val) == len(corpus.load_corpus("all"))
    assert 0.02 < len(val) / (len(train) + len(val)) < 0.10


def test_bad_split_is_rejected():
    with pytest.raises(ValueError, match="split must be"):
        corpus.load_corpus("test")  # type: ignore[arg-type]


def test_corrupted_file_is_detected(tmp_path, monkeypatch):
    bad = tmp_path / "c.jsonl.xz"
    bad.write_bytes(corpus.CORPUS_FILE.read_bytes()[:-10] + b"0123456789")
    monkeypatch.setattr(corpus, "CORPUS_FILE", bad)
    corpus._load_all.cache_clear()
    try:
        with pytest.raises(corpus.CorpusError, match="corrupted or was changed"):
            corpus.load_corpus()
    finally:
        corpus._load_all.cache_clear()


def test_licence_notice_ships_with_the_corpus():
    text = (corpus.DATA / "LICENSE-PSF.txt").read_text()
    assert "PYTHON SOFTWARE FOUNDATION LICENSE" in text
