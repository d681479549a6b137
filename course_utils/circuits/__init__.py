"""Transcoders and attribution graphs (chapter 5): the course model's MLPs as sparse feature circuits.

Public API::

    from course_utils.circuits import TopKTranscoder, TopKTranscoderConfig, make_transcoder

    tc = make_transcoder("topk", d_in=128, d_sae=1024, d_out=128, k=16, skip=True,
                         hook_name="blocks.0.ln2.hook_normalized", hook_name_out="blocks.0.hook_mlp_out")
    acts = tc.encode(x)            # [..., d_in] -> [..., d_sae]
    y = tc.decode(acts, x)         # [..., d_out] (x feeds the skip path; x=None leaves it out)

Transcoders (:mod:`.transcoders`): :class:`TopKTranscoder` / :class:`TopKTranscoderConfig`,
:class:`JumpReLUTranscoder` / :class:`JumpReLUTranscoderConfig` (``skip=True`` adds ``W_skip``),
:func:`make_transcoder`, :func:`train_transcoder`, :func:`mlp_hooks`. Files in SAELens's transcoder
format (:mod:`.transcoder_io`): :func:`save_transcoder`, :func:`load_transcoder`,
:func:`register_sae_lens_topk_transcoders`. Cross-layer transcoder (:mod:`.clt`):
:class:`CrossLayerTranscoder` / :class:`CLTConfig`, :func:`train_clt`, :func:`save_clt`, :func:`load_clt`.
Evaluation (:mod:`.transcoder_evals`): :func:`evaluate_replacement` (CE recovered, KL, FVU, L0 with MLP
outputs replaced). Shipped models (:mod:`.course`): :data:`COURSE_TRANSCODERS`,
:func:`load_course_transcoder`, :func:`shipped_transcoders`, :func:`transcoder_log`,
:func:`comparison_table` / :func:`format_comparison` (transcoders vs SAEs at equal L0, from the logs),
:func:`clt_comparison` (the CLT vs per-layer transcoders, both MLPs replaced).
"""

from __future__ import annotations

from course_utils.circuits.clt import CLTConfig, CrossLayerTranscoder, load_clt, save_clt, train_clt
from course_utils.circuits.course import (
    COURSE_TRANSCODERS,
    CourseTranscoderError,
    clt_comparison,
    comparison_table,
    format_comparison,
    load_course_transcoder,
)
from course_utils.circuits.course import shipped_names as shipped_transcoders
from course_utils.circuits.course import training_log as transcoder_log
from course_utils.circuits.export import graph_json, save_graph_json
from course_utils.circuits.graph import (
    AttributionGraph,
    PruneResult,
    build_graph,
    compute_influence,
    graph_scores,
    prune_graph,
)
from course_utils.circuits.replacement import (
    LocalReplacement,
    build_replacement,
    course_transcoders,
    frozen_forward,
)
from course_utils.circuits.transcoder_evals import evaluate_replacement
from course_utils.circuits.transcoder_io import load_transcoder, register_sae_lens_topk_transcoders, save_transcoder
from course_utils.circuits.transcoders import (
    TRANSCODERS,
    JumpReLUTranscoder,
    JumpReLUTranscoderConfig,
    TopKTranscoder,
    TopKTranscoderConfig,
    Transcoder,
    make_transcoder,
    mlp_hooks,
    train_transcoder,
)

__all__ = [
    "COURSE_TRANSCODERS", "CourseTranscoderError", "clt_comparison", "comparison_table", "evaluate_replacement",
    "format_comparison", "load_course_transcoder", "shipped_transcoders", "transcoder_log",
    "CLTConfig", "CrossLayerTranscoder", "JumpReLUTranscoder", "JumpReLUTranscoderConfig", "TRANSCODERS",
    "TopKTranscoder", "TopKTranscoderConfig", "Transcoder", "load_clt", "load_transcoder", "make_transcoder",
    "mlp_hooks", "register_sae_lens_topk_transcoders", "save_clt", "save_transcoder", "train_clt",
    "train_transcoder",
    "AttributionGraph", "LocalReplacement", "PruneResult", "build_graph", "build_replacement",
    "compute_influence", "course_transcoders", "frozen_forward", "graph_json", "graph_scores", "prune_graph",
    "save_graph_json",
]
