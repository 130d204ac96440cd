"""Store comparison: the same documents in the local store (FAISS + bm25s) and in Milvus.

For each store: build time (embeddings from a warm cache, so the figure is ingestion
plus writing the store; ``embedded`` says how many were not cached), load time, query
latency per mode (query vectors cached: what the store and the fusion cost; p50/p95),
for Milvus the calls per search and where their time goes, and retrieval quality on a
Q&A set (R@1, R@5, MRR@10 per mode). For Milvus it also scores Milvus's own hybrid
search (RRF over the chunk vectors and BM25 inside Milvus) against our z-score fusion
over its two lists.

    python -m bench.stores --docs seeds --qa eval/qa.jsonl --work /tmp/stores-seeds
    python -m bench.stores --docs DIR --work DIR [--qa FILE] [--no-views] [--milvus-uri URI]
    python -m bench.stores --docs news-1k.txt --one-doc-per-line --questions QA.jsonl --work DIR

Without ``--milvus-uri`` Milvus Lite runs in a file under ``--work``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bench.stats import percentiles_ms, time_each

MODES = ("dense", "bm25", "hybrid")


def _evaluator(qa: Path, docs: Path, limit: int | None = None):
    from eval.qa import load_qa, load_sources
    from eval.scorer import RagEvaluator

    items = load_qa(qa)
    if limit:  # the first ``limit`` answerable questions
        items = [item for item in items if item.answerable][:limit]
    return RagEvaluator(items, load_sources(docs), modes=MODES, generators=[], show_progress=False)


def _quality(evaluator, retriever, modes=MODES) -> dict[str, dict[str, float]]:
    out = {}
    for mode in modes:
        metrics = evaluator.retrieval_metrics(evaluator.run_retrieval(retriever, mode))
        out[mode] = {k: round(float(metrics[k]), 3) for k in ("R@1", "R@5", "MRR@10")}
    return out


class MilvusNativeHybrid:
    """Milvus's own hybrid search (``hybrid_search`` with an RRF ranker over the chunk
    vectors and BM25) behind the retriever's ``search`` signature, for scoring only.
    Sentence views live in another collection, so this variant cannot use them."""

    def __init__(self, retriever, rrf_k: int = 60):
        self.retriever = retriever
        self.rrf_k = rrf_k

    def search(self, query: str, k: int = 5, mode: str = "hybrid"):
        from pymilvus import AnnSearchRequest, RRFRanker

        from rag.index.stores.milvus import CHUNK_FIELDS, CONSISTENCY, _chunk
        from rag.types import Hit

        store = self.retriever.store
        qvec = self.retriever.query_vector(query).tolist()
        depth = max(50, 2 * k)
        requests = [AnnSearchRequest(data=[qvec], anns_field="dense", param={"metric_type": "IP"}, limit=depth,
                                     expr=store._visible()),
                    AnnSearchRequest(data=[query], anns_field="sparse", param={"metric_type": "BM25"}, limit=depth,
                                     expr=store._visible())]
        result = store.client.hybrid_search(store.collection, requests, ranker=RRFRanker(self.rrf_k), limit=k,
                                            output_fields=CHUNK_FIELDS, consistency_level=CONSISTENCY)
        return [Hit.from_chunk(_chunk(h["entity"]), float(h["distance"]), "hybrid") for h in result[0]]


class HashEmbedder:
    """A stand-in for the model when only the stores are being timed: hashed character
    bigrams into ``dim`` floats, L2-normalised (no torch, no forward pass). Search
    quality with it means nothing; build and query latency of the stores do."""

    def __init__(self, dim: int = 384):
        self.name, self.dim = f"bench/hash-bigram-{dim}", dim

    def _vectors(self, texts) -> np.ndarray:
        import zlib

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for i in range(len(text) - 1):
                out[row, zlib.crc32(text[i:i + 2].encode("utf-8")) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def encode_queries(self, texts):
        return self._vectors(texts)

    def encode_passages(self, texts, show_progress: bool = False):
        return self._vectors(texts)


class CallCounter:
    """Stands in for a ``MilvusClient``: counts and times every call it passes on."""

    def __init__(self, client):
        self._client = client
        self.calls: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.calls[name] += 1
                self.seconds[name] += time.perf_counter() - started

        return counted

    def reset(self) -> None:
        self.calls.clear()
        self.seconds.clear()

    def per_search(self, searches: int) -> dict[str, Any]:
        """Calls per search, and milliseconds per search, by client method."""
        return {"calls": round(sum(self.calls.values()) / searches, 2),
                "by_method": {m: {"calls": round(n / searches, 2),
                                  "ms": round(1000 * self.seconds[m] / searches, 1)}
                              for m, n in sorted(self.calls.items())}}


def _log(message: str) -> None:
    print(message, flush=True)


def _build_context(one_doc_per_line: bool):
    from rag.ingest.records import one_doc_per_line as lines

    return lines() if one_doc_per_line else contextlib.nullcontext()


def run_store(store: str, docs: Path, work: Path, questions: list[str], evaluator=None, views: bool = True,
              milvus_uri: str | None = None, modes=MODES, embedder=None, log=_log,
              one_doc_per_line: bool = False, flush: bool = False) -> dict[str, Any]:
    from rag.index.embedding import DEFAULT_CACHE
    from rag.retrieval.retriever import Retriever

    index_dir = work / f"{store}-index"
    shutil.rmtree(index_dir, ignore_errors=True)
    options: dict[str, Any] = {"store": store, "views": views}
    if store == "milvus":
        if milvus_uri is None:
            shutil.rmtree(work / "milvus", ignore_errors=True)
            (work / "milvus").mkdir(parents=True)
            milvus_uri = str(work / "milvus" / "bench.db")
        options.update(milvus_uri=milvus_uri, collection="bench_" + docs.name.replace("-", "_"))
    started = time.perf_counter()
    with _build_context(one_doc_per_line):
        built = Retriever.build([docs], index_dir, show_progress=False, embedder=embedder,
                                cache=None if embedder is not None else DEFAULT_CACHE, **options)
    build_s = time.perf_counter() - started
    summary = built.build_summary
    if store == "milvus":
        if flush:  # seal what the build wrote, as a `rag index` process does when it exits
            for name in (built.store.collection, built.store.views_collection):
                built.store.client.flush(name)
        built.store.close()
    del built
    started = time.perf_counter()
    retriever = Retriever.load(index_dir, embedder=embedder)
    load_s = time.perf_counter() - started
    for q in questions:  # embed every query once: latency below is store + fusion
        retriever.query_vector(q)
    counter = None
    if store == "milvus":
        counter = retriever.store.client = CallCounter(retriever.store.client)
    latency, calls = {}, {}
    for mode in MODES:
        retriever.search(questions[0], k=5, mode=mode)  # warm-up
        if counter is not None:
            counter.reset()
        latency[mode] = percentiles_ms(time_each(lambda q: retriever.search(q, k=5, mode=mode), questions))
        if counter is not None:
            calls[mode] = counter.per_search(len(questions))
    row: dict[str, Any] = {
        "store": store, "documents": summary.documents, "chunks": summary.chunks, "views": summary.views,
        "embedded": summary.embedded, "build_s": round(build_s, 2), "load_s": round(load_s, 3),
        "latency": latency,
    }
    if calls:
        row["milvus_calls"] = calls
    log(f"  {store:<7} build {build_s:7.1f} s (embedded {summary.embedded}, {summary.chunks} chunks, "
        f"{summary.views} views)  load {load_s:.2f} s  "
        + "  ".join(f"{m} p50 {latency[m]['p50_ms']:.1f} p95 {latency[m]['p95_ms']:.1f} ms" for m in MODES))
    for mode, per in calls.items():
        log(f"          {mode}: {per['calls']} Milvus calls per search ("
            + ", ".join(f"{m} {v['calls']}x {v['ms']} ms" for m, v in per["by_method"].items()) + ")")
    if evaluator is not None:
        row["quality"] = _quality(evaluator, retriever, modes)
        log(f"          " + "  ".join(f"{m} R@1 {q['R@1']:.3f} R@5 {q['R@5']:.3f} MRR {q['MRR@10']:.3f}"
                                      for m, q in row["quality"].items()))
        if store == "milvus":
            native = _quality(evaluator, MilvusNativeHybrid(retriever), modes=("hybrid",))["hybrid"]
            row["quality_milvus_native_rrf"] = native
            log(f"          Milvus hybrid_search (RRF, chunk vectors only): R@1 {native['R@1']:.3f} "
                f"R@5 {native['R@5']:.3f} MRR {native['MRR@10']:.3f}")
    return row


def main(argv: list[str] | None = None) -> int:
    from bench import machine
    from bench.pipeline import benchmark_questions

    parser = argparse.ArgumentParser(prog="python -m bench.stores", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", required=True, type=Path)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--qa", type=Path, default=None, help="Q&A file for R@1 (optional)")
    parser.add_argument("--questions", type=Path, default=None,
                        help="time these questions (a Q&A .jsonl) without scoring them")
    parser.add_argument("--one-doc-per-line", action="store_true", help="--docs is one document per line")
    parser.add_argument("--flush", action="store_true",
                        help="flush the Milvus collections after the build (stores that do not flush "
                             "themselves leave Milvus Lite's rows in memory until the process exits)")

    parser.add_argument("--queries", type=int, default=100, help="questions timed per mode")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N answerable questions")
    parser.add_argument("--no-views", action="store_true")
    parser.add_argument("--milvus-uri", default=None)
    parser.add_argument("--hash-embedder", action="store_true",
                        help="vectors from a hashing stand-in (dim 384), not the model: times the stores only")
    parser.add_argument("--stores", default="local,milvus")
    parser.add_argument("--modes", default=",".join(MODES), help="modes scored on the Q&A set")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    evaluator = _evaluator(args.qa, args.docs, args.limit) if args.qa else None
    if args.qa:
        questions = [item.question for item in evaluator.items][: args.queries]
    elif args.questions:
        from eval.qa import load_qa

        questions = [item.question for item in load_qa(args.questions)][: args.queries]
    else:
        questions = benchmark_questions(args.queries)
    desc = machine.describe()
    _log(f"machine: {desc['cpu_model']}, {desc['cores']} cores, {' '.join(desc['simd'])}, load {desc['load_avg']}")
    rows = [run_store(s, args.docs, args.work, questions, evaluator, views=not args.no_views,
                      milvus_uri=args.milvus_uri, modes=tuple(args.modes.split(",")),
                      embedder=HashEmbedder() if args.hash_embedder else None,
                      one_doc_per_line=args.one_doc_per_line, flush=args.flush)
            for s in args.stores.split(",")]
    desc_end = machine.describe()
    _log(f"load at the end: {desc_end['load_avg']}")
    result = {"docs": str(args.docs), "qa": str(args.qa) if args.qa else None, "queries": len(questions),
              "load_avg_end": desc_end["load_avg"],
              "scored_questions": len(evaluator.items) if evaluator else 0,
              "views": not args.no_views, "hash_embedder": args.hash_embedder, "machine": desc, "stores": rows}
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
