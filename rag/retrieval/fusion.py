"""Combining the dense and BM25 result lists into one ranking.

* ``rrf``: reciprocal rank fusion, ``sum 1 / (k + rank)``. Uses ranks only, so it
  ignores how far ahead the leader of one list is.
* ``score_fusion``: normalise each list's scores over the candidate pool
  (``minmax`` to [0, 1] or ``zscore``) and add them with weights. A chunk that
  one retriever did not return gets that retriever's floor (0 after min-max).

Both take ``{position: score}`` maps (one per retriever) and return
``[(position, fused score)]`` best first, each position once.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rag.vocabulary import FUSION_METHODS as METHODS

RRF_K = 60

#: Fusion used by ``hybrid`` unless the index or the caller says otherwise.
#: Chosen on eval/qa.jsonl (100 answerable questions, seeds/, e5-small). With TOC
#: entry chunks and sentence views (R@1/R@5/MRR@10): zscore 1:1 0.91/0.98/0.943;
#: zscore dense weight 1.25 0.88/0.99/0.924, 1.5 0.86/0.99/0.914, 0.8 0.91/0.97/0.940;
#: minmax 1:1 0.90/0.97/0.936, 1.25 0.88/0.98/0.925; rrf 0.84/0.97/0.898. Plain chunks:
#: rrf 0.79/0.96/0.862, minmax 0.85/0.96/0.890, zscore 0.86/0.97/0.897. BM25 k1/b
#: (0.9-2.0 / 0.5-0.9) and the bm25s variants (robertson, atire, bm25l, bm25+)
#: moved hybrid by at most 0.01, so Lucene k1=1.5, b=0.75 stays.
DEFAULT_FUSION = "zscore"
#: Weights of (dense, bm25) in the fusion.
DEFAULT_FUSION_WEIGHTS = (1.0, 1.0)
#: Each retriever contributes at least this many candidates to the fusion.
CANDIDATES = 50


def rrf(results: Sequence[Mapping[int, float]], k: int = RRF_K,
        weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of several ``{position: score}`` result maps."""
    weights = weights or [1.0] * len(results)
    fused: dict[int, float] = {}
    for result, weight in zip(results, weights):
        ranked = sorted(result.items(), key=lambda item: (-item[1], item[0]))
        for rank, (pos, _) in enumerate(ranked, start=1):
            fused[pos] = fused.get(pos, 0.0) + weight / (k + rank)
    return _sorted(fused)


def _normalise(values: np.ndarray, method: str) -> np.ndarray:
    if values.size == 0:
        return values
    if method == "minmax":
        low, high = float(values.min()), float(values.max())
        return (values - low) / (high - low) if high > low else np.ones_like(values)
    mean, std = float(values.mean()), float(values.std())
    return (values - mean) / std if std > 0 else np.zeros_like(values)


def score_fusion(results: Sequence[Mapping[int, float]], weights: Sequence[float] | None = None,
                 method: str = "minmax") -> list[tuple[int, float]]:
    """Weighted sum of per-retriever normalised scores over the union of candidates.

    Each map should hold the scores of the whole candidate pool when available
    (the retriever fills in exact dense and BM25 scores for every candidate);
    a missing candidate counts as that retriever's lowest normalised score.
    """
    if method not in ("minmax", "zscore"):
        raise ValueError(f"unknown score normalisation {method!r}")
    weights = weights or [1.0] * len(results)
    pool = sorted(set().union(*[r.keys() for r in results]))
    fused = {pos: 0.0 for pos in pool}
    for result, weight in zip(results, weights):
        if not result:
            continue
        keys = list(result)
        normed = _normalise(np.array([result[p] for p in keys], dtype=np.float64), method)
        floor = float(normed.min())
        values = dict(zip(keys, normed.tolist()))
        for pos in pool:
            fused[pos] += weight * values.get(pos, floor)
    return _sorted(fused)


def fuse(results: Sequence[Mapping[int, float]], method: str = "minmax",
         weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Dispatch to ``rrf`` or ``score_fusion`` by ``method``."""
    if method == "rrf":
        return rrf(results, weights=weights)
    if method in ("minmax", "zscore"):
        return score_fusion(results, weights=weights, method=method)
    raise ValueError(f"unknown fusion method {method!r}; choose one of {', '.join(METHODS)}")


def _sorted(fused: dict[int, float]) -> list[tuple[int, float]]:
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
