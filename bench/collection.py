"""A big collection (news-63k): builds measured end to end, serving on the result, extrapolations.

``rag bench --only collection`` (opt-in: never part of the default or ``--quick`` runs; a
dense build of 10,000 articles takes about half an hour on 2 cores):

* a keyword-only build (read, chunk, BM25-tokenize, BM25 index; the product's own
  streaming pieces, no embedding) of the first ``--limit`` articles of ``--collection``
  (a one-document-per-line file, ``.xz`` read as is; ``--limit all``: the whole file),
  in a child process: wall time and peak RSS of its process tree;
* with ``--collection-dense``: the real ``rag index FILE --one-doc-per-line`` of the same
  slice (embedding through the configured cache; the passages that came from the cache
  are reported), wall time, tokens/s, peak RSS of the tree; then hybrid search latency
  with the query embedding and ``rag serve`` RSS after the questions, on that index;
* an extrapolation of a full dense build of the whole file on this CPU (measured
  keyword side of the slice scaled by characters, plus embedding at the measured rate)
  and on a GPU (at the rate `rag bench --only gpu` measured on an H200).

Builds of earlier runs in the same ``--out`` are kept (by kind and slice), so the
BM25-only build of all 63,668 articles and a 10k dense build can be run separately.
Alone, the keyword side only::

    python -m bench.collection news-63k.txt --one-doc-per-line [--limit 10000] \
        [--tokens-per-s 6000] [--out bench/out/collection.json]
"""
from __future__ import annotations

import argparse
import json
import lzma
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_COLLECTION = ROOT.parent / "shared" / "corpora" / "news-63k.txt.xz"
CRUD_QUESTIONS = ROOT.parent / "shared" / "crud-dev" / "qa.jsonl"
#: Model tokens per character of embedded text (XLM-R unigram on seeds/: 118,616 tokens
#: for 176,246 characters of chunk passages).
TOKENS_PER_CHAR = 0.67
#: The product's embedder on one H200 (bf16, e5-small's exact shape with random weights),
#: end to end (tokenizing included) over all 853,264 chunks and views of news-63k (61.5 M
#: tokens): `rag bench --only gpu --limit all`, 2026-11-27, 1.28 M tokens/s in the first of two
#: passes (CUDA warm-up included; the second ran at 1.54 M). The code before texts were
#: tokenized once ran at 0.28 M (2026-11-26). Used for the GPU row of the extrapolation.
GPU_TOKENS_PER_S = 1.28e6
GPU_MEASURED = "H200, rag bench --only gpu --limit all, 2026-11-27"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def slice_of(path: Path, limit: int | None, workdir: Path) -> Path:
    """The first ``limit`` lines of ``path`` (decompressed if ``.xz``) as a plain .txt file;
    ``path`` itself when it is plain text and no limit is given."""
    if not limit and path.suffix != ".xz":
        return path
    stem = path.name.removesuffix(".xz").removesuffix(".txt")
    target = workdir / f"{stem}-{limit or 'all'}.txt"
    if target.exists():
        return target
    opener = lzma.open if path.suffix == ".xz" else open
    part = target.with_suffix(".part")
    with opener(path, "rt", encoding="utf-8") as fin, open(part, "w", encoding="utf-8") as fout:
        for n, line in enumerate(fin):
            if limit and n >= limit:
                break
            fout.write(line)
    part.rename(target)
    return target


def run(path: Path, one_doc_per_line: bool, limit: int | None, tokens_per_s: float | None,
        log=print) -> dict[str, Any]:
    """The keyword side of a build, as the product's streaming build does it (``IngestStream``
    batches, BM25 tokens in a kept worker pool, ids in a ``KeywordIndexBuilder``), timed per
    stage, with this process's peak RSS."""
    from bench import machine
    from rag.index.stores.bm25_keyword import KeywordIndexBuilder
    from rag.ingest import IngestStream
    from rag.ingest.records import one_doc_per_line as lines_mode
    from rag.retrieval.passages import passage_text, sentence_views
    from rag.retrieval.retriever import BUILD_BATCH_CHUNKS
    from rag.tokenize_zh import tokenize_many, tokenizer_pool

    source = slice_of(path, limit, Path(os.environ.get("TMPDIR", "/tmp")))
    stages = {"read + chunk": 0.0, "BM25 tokenize (parallel)": 0.0, "BM25 index": 0.0}
    counts = {"documents": 0, "characters": 0, "chunks": 0, "views": 0, "characters_to_embed": 0}
    builder = KeywordIndexBuilder()
    with lines_mode(one_doc_per_line), tokenizer_pool() as pool:
        stream = IngestStream([source], progress=True, batch_chunks=BUILD_BATCH_CHUNKS)
        t0 = time.perf_counter()
        for batch in stream:
            t1 = time.perf_counter()
            stages["read + chunk"] += t1 - t0
            texts = [passage_text(c) for c in batch.chunks]
            views = [v for c in batch.chunks for v in sentence_views(c)]
            counts["documents"] += len(batch.documents)
            counts["characters"] += sum(len(d.text) for d in batch.documents)
            counts["chunks"] += len(texts)
            counts["views"] += len(views)
            counts["characters_to_embed"] += sum(map(len, texts)) + sum(map(len, views))
            builder.add(tokenize_many(texts, pool=pool))
            del batch, texts, views
            t0 = time.perf_counter()
            stages["BM25 tokenize (parallel)"] += t0 - t1
    log(f"  {counts['documents']:,} documents, {counts['characters']:,} characters -> {counts['chunks']:,} "
        f"chunks, {counts['views']:,} sentence views; {builder.tokens:,} BM25 tokens, "
        f"vocabulary {len(builder.vocab):,}")
    t0 = time.perf_counter()
    builder.build()
    stages["BM25 index"] = time.perf_counter() - t0
    out: dict[str, Any] = {
        "machine": machine.describe(), "file": str(path), "limit": limit, **counts,
        "bm25_tokens": builder.tokens, "stages_s": stages, "peak_rss_mib": _rss_mib(),
        "seconds_per_million_characters_without_embedding": sum(stages.values()) / max(counts["characters"], 1) * 1e6,
    }
    if tokens_per_s:
        out["extrapolated_embedding_s"] = counts["characters_to_embed"] * TOKENS_PER_CHAR / tokens_per_s
        out["extrapolation"] = (f"{counts['characters_to_embed']:,} characters x {TOKENS_PER_CHAR} tokens/char / "
                                f"{tokens_per_s:,.0f} tokens/s (not measured end to end)")
    for name, seconds in stages.items():
        log(f"  {name:<26} {seconds:8.1f} s")
    log(f"  peak RSS {out['peak_rss_mib']:.0f} MiB; load {os.getloadavg()}")
    return out


# ----------------------------------------------------------------------------- child processes

def measured_child(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
                   log_path: Path | None = None) -> dict[str, Any]:
    """Run ``cmd`` to completion: wall time, peak RSS of its whole process tree (sampled
    every 0.2 s: tokenizer workers included), its output, the load before and after."""
    from bench.memory import PeakSampler

    load_before = list(os.getloadavg())
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(log_path or os.devnull, "w") as err:
        proc = subprocess.Popen(cmd, env=env, cwd=str(cwd or ROOT), stdout=subprocess.PIPE, stderr=err, text=True)
        sampler = PeakSampler(proc.pid, interval=0.2)
        sampler.start()
        stdout, _ = proc.communicate()
        peak = sampler.stop()
    wall = time.perf_counter() - t0
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited with {proc.returncode}: {tail}")
    # CPU seconds of the child and its reaped workers: unlike wall time, barely moved by other load
    cpu_s = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu_s, "peak_rss_tree_mib": peak / 2 ** 20, "stdout": stdout,
            "load_before": load_before, "load_after": list(os.getloadavg())}


def _cpu_label() -> str:
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return f"{isa} (emulated: ONEDNN_MAX_CPU_ISA)" if isa else "native"


def keyword_build(source: Path, log, workdir: Path) -> dict[str, Any]:
    """``run`` in a child process (so its peak RSS is the build's alone)."""
    out = workdir / f"keyword-{source.stem}.json"
    r = measured_child([sys.executable, "-m", "bench.collection", str(source), "--one-doc-per-line",
                        "--out", str(out)], env={**os.environ, "TMPDIR": str(workdir)},
                       log_path=workdir / f"keyword-{source.stem}.log")
    figures = json.loads(out.read_text())
    row = {"kind": "keyword only (BM25)", "documents": figures["documents"], "characters": figures["characters"],
           "chunks": figures["chunks"], "views": figures["views"],
           "characters_to_embed": figures["characters_to_embed"], "wall_s": r["wall_s"],
           "stages_s": figures["stages_s"], "peak_rss_tree_mib": r["peak_rss_tree_mib"],
           "peak_rss_main_mib": figures["peak_rss_mib"], "cpu_s": r["cpu_s"], "load_before": r["load_before"],
           "load_after": r["load_after"], "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "cpu": "native"}
    log(f"  keyword-only build of {row['documents']:,} articles: {row['wall_s']:.0f} s, "
        f"peak RSS {row['peak_rss_tree_mib']:.0f} MiB (tree); load {row['load_before']} -> {row['load_after']}")
    return row


def dense_build(source: Path, index: Path, log, workdir: Path) -> dict[str, Any]:
    """The real ``rag index SOURCE --one-doc-per-line`` (dense + BM25) in a child process."""
    rag = Path(sys.executable).with_name("rag")
    cmd = ([str(rag)] if rag.exists() else [sys.executable, "-m", "rag.cli"]) + [
        "index", str(source), "--one-doc-per-line", "--index", str(index), "--quiet"]
    r = measured_child(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
                       log_path=workdir / f"dense-{source.stem}.log")
    found = re.search(r"indexed (\d+) documents, (\d+) chunks.*?embedded (\d+) passages, (\d+) from the cache; "
                      r"(\d+) sentence views \((\d+) embedded", r["stdout"], re.S)
    if not found:
        raise RuntimeError(f"unexpected rag index output: {r['stdout'][-500:]}")
    documents, chunks, embedded, cached, views, views_embedded = map(int, found.groups())
    row = {"kind": "dense + BM25 (rag index)", "documents": documents, "chunks": chunks, "views": views,
           "embedded": embedded + views_embedded, "from_cache": cached + (views - views_embedded),
           "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_tree_mib": r["peak_rss_tree_mib"],
           "load_before": r["load_before"], "load_after": r["load_after"],
           "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "cpu": _cpu_label(), "engine": _index_engine(index), "index": str(index)}
    log(f"  dense build of {documents:,} articles: {row['wall_s']:.0f} s, peak RSS "
        f"{row['peak_rss_tree_mib']:.0f} MiB (tree), {row['from_cache']:,} of {chunks + views:,} passages "
        f"from the cache; load {row['load_before']} -> {row['load_after']}")
    return row


def _index_engine(index: Path) -> str:
    """The embedding engine the built index records (``model.engine`` in its manifest)."""
    try:
        return json.loads((index / "manifest.json").read_text())["model"].get("engine") or "?"
    except (OSError, ValueError, KeyError):
        return "?"


def serving(index: Path, log) -> dict[str, Any]:
    """Hybrid search latency with the query embedding (in-process, warm) and ``rag serve``
    RSS after the questions, on the built index; news questions (crud-dev) when present."""
    from bench import memory, pipeline
    from rag.retrieval.retriever import Retriever

    questions = pipeline.benchmark_questions(pipeline.n_queries(False), qa_file=CRUD_QUESTIONS)
    retriever = Retriever.load(index)
    for q in questions[:5]:
        retriever.search(q)

    def search_uncached(q):
        retriever.clear_query_cache()
        return retriever.search(q, k=5)

    runs = [pipeline.percentiles_ms(pipeline.time_each(search_uncached, questions)) for _ in range(3)]
    latency = pipeline.median_of_runs(runs)
    log(f"  hybrid search incl. query embedding over {len(retriever):,} chunks: p50 {latency['p50_ms']:.1f} ms, "
        f"p95 {latency['p95_ms']:.1f} ms")
    query_vectors = [retriever.query_vector(q) for q in questions]
    del retriever
    serve = memory.serve_rss(index, questions, log)
    return {"chunks_questions": len(questions), "search": latency, "serve": serve,
            "load": list(os.getloadavg()), "dense_recall": dense_recall(index, query_vectors, log)}


HNSW_EF_SWEEP = (128, 256, 512, 1024)
#: The HNSW rows are a comparison (``auto`` builds ``ivf`` at this size; README "Scale"), measured on
#: the 10,000-article slice's 162k vectors; above this many vectors they are left out: two graphs over
#: all of news-63k's ~853k (M=32) would take hours of the 2-core machine (395 s for 100k random ones).
HNSW_MAX_VECTORS = int(os.environ.get("RAG_BENCH_HNSW_MAX_VECTORS") or 300_000)
#: Lists probed by the ivf rows, as shares of its lists (1/6 is the default, ``ivf_nprobe``).
IVF_PROBE_SHARES = (16, 8, 6, 4)
#: What hybrid search asks the dense index for: 50 candidate chunks x 8 rows per chunk
#: (a chunk and its sentence views; ``LocalStore.dense_ranked``).
HYBRID_REQUEST = 400


def dense_recall(index: Path, queries, log, ef_sweep=HNSW_EF_SWEEP,
                 probe_shares=IVF_PROBE_SHARES, hnsw_max_vectors: int | None = None) -> dict[str, Any]:
    """Approximate dense search on the built index's *real* vectors (chunks and sentence views),
    against exact search: recall@10 and one-thread latency per setting, for ``queries``
    (question vectors from the index's own engine: random vectors would say little, and issue 12
    asks for real ones). Kinds: ``hnsw`` per efSearch and ``ivf`` (8-bit codes, candidates
    re-scored from the index's own .npy files as when served) per share of lists probed.
    Latency at k=10 and at the 400 rows hybrid search asks for. The HNSW rows only up to
    ``hnsw_max_vectors`` (default ``HNSW_MAX_VECTORS``); ``skipped`` says when they were left out."""
    import numpy as np

    from bench.stats import percentiles_ms
    from rag.index.stores.faiss_dense import DenseIndex, ivf_nlist
    from rag.index.stores.local import NpyRows

    queries = np.asarray(queries, dtype=np.float32)
    mapped = [np.load(index / name, mmap_mode="r") for name in ("vectors.npy", "views.npy")
              if (index / name).exists()]
    vectors = np.concatenate(mapped).astype(np.float32)
    files = [NpyRows.of(m) for m in mapped]
    n_first = len(mapped[0])

    def file_rows(positions: np.ndarray) -> np.ndarray:  # as a served index reads them (pread)
        out = np.empty((len(positions), vectors.shape[1]), np.float32)
        first = positions < n_first
        if first.any():
            out[first] = files[0][positions[first]]
        if (~first).any():
            out[~first] = files[1][positions[~first] - n_first]
        return out

    def ranked(dense: DenseIndex) -> tuple[list[list[float]], list[float], list[float]]:
        scores, times, wide = [], [], []
        for q in queries:
            t0, c0 = time.perf_counter(), time.thread_time()
            hits = dense.search(q, 10)
            times.append((time.perf_counter() - t0, time.thread_time() - c0))
            # exact scores of what was found (an approximate index may report approximate ones)
            scores.append(sorted((float(vectors[pos] @ q) for pos, _ in hits), reverse=True))
        for q in queries:  # a pass of its own: right after the same question's search, caches are warm
            t0, c0 = time.perf_counter(), time.thread_time()
            dense.search(q, HYBRID_REQUEST)
            wide.append((time.perf_counter() - t0, time.thread_time() - c0))
        return scores, times, wide

    def recall(found: list[list[float]]) -> float:
        # by score, not id: a collection repeats sentences (news-63k's first 10,000 articles: 18,486
        # of 162,136 vectors are copies), and which copy ranks 10th among equals is arbitrary
        hits = [sum(s >= t[-1] - 1e-5 for s in f[:len(t)]) / max(1, len(t)) for f, t in zip(found, truth)]
        return float(np.mean(hits))

    def row(kind, setting, found, times, wide, build_s=None):
        # wall time, and the CPU time of the searching thread: on a shared machine a search of a few
        # ms is often pre-empted, and wall time then measures the scheduler more than the search
        wide_ms = percentiles_ms([w for w, _ in wide])
        r = {"kind": kind, "setting": setting, "recall_at_10": recall(found), **percentiles_ms([w for w, _ in times]),
             f"p50_ms_at_{HYBRID_REQUEST}": wide_ms["p50_ms"], f"p95_ms_at_{HYBRID_REQUEST}": wide_ms["p95_ms"],
             "cpu_p50_ms": percentiles_ms([c for _, c in times])["p50_ms"],
             f"cpu_p50_ms_at_{HYBRID_REQUEST}": percentiles_ms([c for _, c in wide])["p50_ms"], "build_s": build_s}
        log(f"  {kind} {setting or ''} on {len(vectors):,} real vectors: recall@10 {r['recall_at_10']:.4f}, "
            f"p50 {r['p50_ms']:.2f} ms (k={HYBRID_REQUEST}: {wide_ms['p50_ms']:.2f} ms)")
        return r

    exact = DenseIndex.build(vectors, "flat")
    truth, exact_times, exact_wide = ranked(exact)
    del exact
    rows = [row("flat (exact)", None, truth, exact_times, exact_wide)]
    skipped = None
    limit = HNSW_MAX_VECTORS if hnsw_max_vectors is None else hnsw_max_vectors
    if len(vectors) <= limit:
        rows += _hnsw_rows(vectors, ef_sweep, ranked, row)
    else:
        skipped = (f"HNSW rows left out at {len(vectors):,} vectors (more than {limit:,}: building the graphs "
                   f"would take hours here; RAG_BENCH_HNSW_MAX_VECTORS raises the limit)")
        log(f"  {skipped}")
    t0 = time.perf_counter()
    ivf = DenseIndex.build(vectors, "ivf")
    build_s = time.perf_counter() - t0
    ivf.attach_rows(file_rows)
    nlist = ivf_nlist(len(vectors))
    for share in probe_shares:
        ivf.index.nprobe = max(1, -(-nlist // share))
        rows.append(row(f"ivf {nlist} lists, sq8, re-scored", f"nprobe {ivf.index.nprobe} (1/{share})",
                        *ranked(ivf), build_s))
    return {"vectors": len(vectors), "questions": len(queries), "kinds": rows, "load": list(os.getloadavg()),
            "skipped": skipped}


def _hnsw_rows(vectors, ef_sweep, ranked, row) -> list[dict[str, Any]]:
    """``dense_recall``'s HNSW rows: the graph as a build makes it, per efSearch, and the same graph
    over one node per distinct vector, each found node standing for all its copies (not a product
    kind: HNSW keeps float32 vectors in memory; README "Scale")."""
    from rag.index.stores.faiss_dense import HNSW_M, DenseIndex

    rows = []
    t0 = time.perf_counter()
    hnsw = DenseIndex.build(vectors, "hnsw")
    build_s = time.perf_counter() - t0
    for ef in ef_sweep:
        hnsw.index.hnsw.efSearch = ef
        rows.append(row(f"hnsw M={HNSW_M}", f"efSearch {ef}", *ranked(hnsw), build_s))
    del hnsw
    distinct = _DistinctRows(vectors)
    t0 = time.perf_counter()
    distinct.dense = DenseIndex.build(vectors[distinct.first], "hnsw")
    build_s = time.perf_counter() - t0
    for ef in ef_sweep[:3]:
        distinct.dense.index.hnsw.efSearch = ef
        rows.append(row(f"hnsw M={HNSW_M}, one node per distinct vector", f"efSearch {ef}", *ranked(distinct),
                        build_s))
    return rows


# ----------------------------------------------------------------------------- the section

def _limits() -> list[int | None]:
    raw = os.environ.get("RAG_BENCH_COLLECTION_LIMIT") or "10000"
    return [None if part.strip() in ("all", "0") else int(part) for part in raw.split(",") if part.strip()]


def run_section(quick: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    from bench.pipeline import _workdir
    from bench.run import SectionSkipped

    if quick:
        raise SectionSkipped("collection builds take tens of minutes; not part of --quick")
    path = Path(os.environ.get("RAG_BENCH_COLLECTION") or DEFAULT_COLLECTION)
    if not path.exists():
        raise SectionSkipped(f"{path} not found (--collection FILE)")
    workdir = Path(os.environ.get("RAG_BENCH_COLLECTION_WORKDIR") or _workdir() / "collection")
    workdir.mkdir(parents=True, exist_ok=True)
    builds, serve, notes = [], None, []
    for limit in _limits():
        source = slice_of(path, limit, workdir)
        builds.append({**keyword_build(source, log, workdir), "slice": limit or "all"})
        if os.environ.get("RAG_BENCH_COLLECTION_DENSE"):
            try:  # a dense build stopped or failed must not lose the keyword figures
                row = dense_build(source, workdir / f"index-{source.stem}", log, workdir)
            except (RuntimeError, KeyboardInterrupt) as exc:
                log(f"  dense build of the {limit or 'all'} slice did not finish: {exc}")
                notes.append(f"dense build of the {limit or 'all'} slice did not finish ({str(exc)[:200]}); "
                             "its embeddings committed so far are in the cache, so a rerun resumes")
                continue
            builds.append({**row, "slice": limit or "all"})
            try:  # a failure here must not lose the build figures above
                serve = {"slice": limit or "all", **serving(Path(row["index"]), log)}
            except Exception as exc:
                log(f"  serving figures failed: {type(exc).__name__}: {exc}")
                serve = None
    return finish_section({"file": str(path), "builds": builds, "serving": serve, "notes": notes,
                           "full_file_characters": _characters(path)})


def _characters(path: Path) -> int:
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return sum(len(line.rstrip("\n")) for line in fh)


def merge(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """``current`` plus the builds (and serving figures) of ``previous`` it did not redo."""
    redone = {(b["kind"], str(b["slice"])) for b in current.get("builds", [])}
    kept = [b for b in previous.get("builds", []) if (b["kind"], str(b["slice"])) not in redone]
    merged = {**current, "builds": kept + current.get("builds", [])}
    if not merged.get("serving") and previous.get("serving"):
        merged["serving"] = previous["serving"]
    return finish_section(merged)


def finish_section(section: dict[str, Any]) -> dict[str, Any]:
    """Tables and the extrapolation from the builds the section holds."""
    builds = section.get("builds", [])
    rows = []
    for b in builds:
        tokens = b.get("characters_to_embed") or _to_embed(builds, b)
        rate = tokens * TOKENS_PER_CHAR / b["wall_s"] if "dense" in b["kind"] and tokens else None
        rows.append([b["kind"], b["slice"], b["documents"], b.get("chunks"), b.get("views"), b["wall_s"] / 60,
                     b.get("characters") and b["wall_s"] / b["characters"] * 1e6, rate, b["peak_rss_tree_mib"],
                     b.get("cpu_s") and b["cpu_s"] / 60, b.get("from_cache"),
                     (b.get("cpu") or "") + (f", {b['engine']}" if b.get("engine") else ""),
                     f"{b['load_before'][0]:.1f} -> {b['load_after'][0]:.1f}",
                     b.get("when")])
    tables = [{"title": "Builds of news-63k (slices: first N articles); s/M chars = wall seconds per million "
                        "characters of articles; tokens/s = model tokens of chunks + views (0.67 per character) "
                        "over the whole build's wall time; CPU min = CPU time of the build's processes (user + system; "
                        "two cores busy give ~2x wall, and other load barely moves it); RSS = peak of the process tree",
               "headers": ["build", "slice", "articles", "chunks", "views", "wall min", "s / M chars",
                           "tokens/s", "peak RSS MiB", "CPU min", "from cache", "CPU, engine", "load 1-min", "when"],
               "rows": rows}]
    serve = section.get("serving")
    if serve:
        s = serve["serve"]
        tables.append({"title": f"Serving the {serve['slice']}-article dense index ({serve['chunks_questions']} "
                                f"crud-dev questions; load {serve['load'][0]:.1f})",
                       "headers": ["measure", "value"],
                       "rows": [["hybrid search incl. query embedding p50 ms", serve["search"]["p50_ms"]],
                                ["hybrid search incl. query embedding p95 ms", serve["search"]["p95_ms"]],
                                ["rag serve RSS after load MB", s["rss_after_load_mb"]],
                                [f"rag serve RSS after {s['questions']} questions MB", s["rss_after_queries_mb"]],
                                ["rag serve peak RSS MB", s["peak_rss_mb"]],
                                ["HTTP /ask p50 / p95 ms", f"{s['http_p50_ms']:.0f} / {s['http_p95_ms']:.0f}"]]})
    recall = (serve or {}).get("dense_recall")
    if recall:
        tables.append(recall_table(recall, serve["slice"]))
    extrapolation = _extrapolate(builds, section.get("full_file_characters"))
    if extrapolation:
        section["extrapolation"] = extrapolation
        tables.append({"title": "Full dense build of the whole file, extrapolated (NOT measured end to end)",
                       "headers": ["where", "hours", "how"], "rows": extrapolation})
    section["tables"] = tables
    return section


class _DistinctRows:
    """Search over one copy of each distinct vector (``dense``, built on ``vectors[first]``) whose
    hits are expanded to every row holding that vector, best first, as a ``DenseIndex`` answers."""

    def __init__(self, vectors):
        import numpy as np

        _, first, inverse, counts = np.unique(vectors, axis=0, return_index=True, return_inverse=True,
                                              return_counts=True)
        order = np.argsort(first)  # distinct vectors in the order of their first row
        self.first = first[order]
        rows = np.argsort(inverse.reshape(-1), kind="stable")  # rows grouped by distinct vector
        groups = np.split(rows, np.cumsum(counts)[:-1])
        self.rows_of = [groups[i] for i in order]
        self.dense = None

    def search(self, query, k: int) -> list[tuple[int, float]]:
        out: list[tuple[int, float]] = []
        for node, score in self.dense.search(query, k):
            out.extend((int(r), score) for r in self.rows_of[node])
            if len(out) >= k:
                break
        return out[:k]


def recall_table(recall: dict[str, Any], slice_name: Any) -> dict[str, Any]:
    """The table of ``dense_recall``'s rows (older results: HNSW rows by efSearch only)."""
    wide, cpu_wide = f"p50_ms_at_{HYBRID_REQUEST}", f"cpu_p50_ms_at_{HYBRID_REQUEST}"
    rows = [[r["kind"], r.get("setting") or (f"efSearch {r['ef_search']}" if r.get("ef_search") else ""),
             r["recall_at_10"], r["p50_ms"], r["p95_ms"], r.get(wide), r.get("cpu_p50_ms"), r.get(cpu_wide),
             r.get("build_s")] for r in recall["kinds"]]
    skipped = f"; {recall['skipped']}" if recall.get("skipped") else ""
    return {"title": f"Exact and approximate dense search on the {slice_name}-article index's real vectors "
                     f"({recall['vectors']:,} chunk and view vectors, {recall['questions']} crud-dev questions, "
                     f"one thread; recall@10 against exact search, by score; load {recall['load'][0]:.1f}{skipped})",
            "headers": ["index", "setting", "recall@10", "p50 ms (k=10)", "p95 ms (k=10)",
                        f"p50 ms (k={HYBRID_REQUEST}, hybrid's request)", "CPU ms p50 (k=10)",
                        f"CPU ms p50 (k={HYBRID_REQUEST})", "build s"],
            "rows": rows}


def _to_embed(builds, build) -> int | None:
    """Characters a dense build embedded: from the keyword build of the same slice."""
    for b in builds:
        if b["slice"] == build["slice"] and b.get("characters_to_embed"):
            build.setdefault("characters", b["characters"])
            return b["characters_to_embed"]
    return None


#: A dense build that took more than this share of its passages from the embedding cache says too
#: little about the embedding rate to extrapolate from (its wall time is mostly everything else).
MIN_EMBEDDED_SHARE = 0.5


def _fresh_share(build: dict[str, Any]) -> float:
    return build["embedded"] / max(build["embedded"] + build["from_cache"], 1)


def _extrapolate(builds, full_chars: int | None) -> list[list[Any]]:
    keyword = {str(b["slice"]): b for b in builds if "keyword" in b["kind"]}
    dense = [b for b in builds if "dense" in b["kind"] and str(b["slice"]) in keyword]
    if not dense or not full_chars:
        return []
    measured = [b for b in dense if _fresh_share(b) >= MIN_EMBEDDED_SHARE]
    d = max(measured or dense, key=lambda b: b["documents"])
    k = keyword[str(d["slice"])]
    full_keyword = keyword.get("all")
    keyword_s = (full_keyword["wall_s"] if full_keyword else k["wall_s"] * full_chars / k["characters"])
    embed_ratio = k["characters_to_embed"] / k["characters"]
    full_embed_chars = (full_keyword or {}).get("characters_to_embed") or full_chars * embed_ratio
    gpu_embed_s = full_embed_chars * TOKENS_PER_CHAR / GPU_TOKENS_PER_S
    how_keyword = ("measured keyword-only build of the whole file" if full_keyword
                   else f"keyword side of the {k['slice']} slice scaled by characters")
    fresh = _fresh_share(d)
    if measured:
        embed_s = max(d["wall_s"] - k["wall_s"], 1.0) / fresh  # cold-equivalent embedding time
        per_char = embed_s / k["characters_to_embed"]
        cpu_row = [f"this CPU ({d.get('cpu')})", (keyword_s + full_embed_chars * per_char) / 3600,
                   f"{how_keyword} + {full_embed_chars / 1e6:.0f} M characters to embed at the {d['slice']}-slice "
                   f"rate ({per_char * 1e6:.0f} s per M characters: dense wall minus keyword wall"
                   + (f", scaled to a cold cache: {fresh:.0%} embedded" if fresh < 0.999 else "") + ")"]
    else:
        cpu_row = [f"this CPU ({d.get('cpu')})", None,
                   f"not extrapolated: every dense build here took most of its passages from the embedding cache "
                   f"({'the whole file' if str(d['slice']) == 'all' else 'the ' + str(d['slice']) + '-article slice'}: "
                   f"{1 - fresh:.0%}); measure one with an empty cache "
                   f"(RAG_CACHE_DIR=an empty folder)"]
    return [
        cpu_row,
        ["one GPU (H200), embedding rate measured on a slice", (keyword_s + gpu_embed_s) / 3600,
         f"the same keyword side on this CPU + {full_embed_chars * TOKENS_PER_CHAR / 1e6:.0f} M tokens at "
         f"{GPU_TOKENS_PER_S / 1e6:.2f} M tokens/s (the product's embedder end to end, bf16, e5-small's shape "
         f"with random weights: {GPU_MEASURED})"],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.collection", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--one-doc-per-line", action="store_true")
    parser.add_argument("--limit", type=int, default=None, help="first N lines only")
    parser.add_argument("--tokens-per-s", type=float, default=None,
                        help="embedding rate to extrapolate the dense part with (from `rag bench --only index`)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    result = run(args.file, args.one_doc_per_line, args.limit, args.tokens_per_s)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
