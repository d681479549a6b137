"""Chapter 5 benchmarks: attribution-graph construction time and size for prompts of 16, 64 and 128
tokens of validation text (the goal: a 64-token graph in under 5 s on the course's 2-core CPU).

Run with ``python -m course_utils.bench -k 'ch05/graph*'``. Uses the shipped skip TopK transcoders
(1024 features, k = 16, both layers) when they are present, else random ones of the same shape (the
cost depends on the number of active features, 16 per layer and position, not on training). One CPU
thread; the time includes the model's forward pass, the batched backward passes and nothing else
(pruning is timed separately).
"""

from __future__ import annotations

import time

import torch

from course_utils.bench import benchmark
from course_utils.device import one_thread


def _transcoders(model: object) -> tuple[list[object], str]:
    from course_utils.circuits.replacement import course_transcoders
    from course_utils.circuits.transcoders import make_transcoder, mlp_hooks

    try:
        return course_transcoders("skip-topk-1024", model), "shipped skip-topk-1024"
    except Exception:  # noqa: BLE001 - the shipped files may not be built yet
        tcs = []
        for layer in range(2):
            hi, ho = mlp_hooks(layer)
            tcs.append(make_transcoder("topk", 128, 1024, 128, seed=layer, k=16, skip=True, hook_name=hi,
                                       hook_name_out=ho).eval())
        return tcs, "random skip TopK 1024, k = 16"


@benchmark("ch05/graph_construction")
def graph_construction() -> dict[str, float | str]:
    """Seconds to build (and, separately, to prune) the attribution graph of the first 16, 64 and 128
    tokens of a validation file, and the graph's node and edge counts before and after pruning."""
    from course_utils.circuits.graph import build_graph, prune_graph
    from course_utils.corpus import load_corpus
    from course_utils.course_lm import load_course_lm

    model, tok = load_course_lm()
    tcs, which = _transcoders(model)
    ids = torch.tensor(tok.encode(load_corpus("validation")[0].text).ids[:128])
    out: dict[str, float | str] = {"transcoders": which}
    with one_thread():
        build_graph(model, tcs, ids[:8])  # warm-up
        for n in (16, 64, 128):
            t0 = time.perf_counter()
            g = build_graph(model, tcs, ids[:n])
            t1 = time.perf_counter()
            pr = prune_graph(g)
            t2 = time.perf_counter()
            out |= {f"build_s_{n}tok": round(t1 - t0, 3), f"prune_s_{n}tok": round(t2 - t1, 3),
                    f"nodes_{n}tok": g.n_nodes, f"edges_{n}tok": int((g.adjacency != 0).sum()),
                    f"kept_nodes_{n}tok": int(pr.node_mask.sum()), f"kept_edges_{n}tok": int(pr.edge_mask.sum())}
    return out
