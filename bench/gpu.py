"""Embedding on a GPU: ``rag bench --only gpu`` (opt-in; skipped where torch sees no CUDA device).

What a build on a GPU machine embeds, embedded by the product's own embedder
(``SentenceTransformerEmbedder``: CUDA chosen without any setting, bf16 where the GPU
computes it, else fp16, batches of ``GPU_TOKENS_PER_BATCH`` padded tokens, longest
texts first):

* the texts: chunks and sentence views of the first ``--limit`` articles (default
  10,000) of ``--collection`` (default news-63k), made by the product's streaming
  ingestion, exactly as ``rag index FILE --one-doc-per-line`` makes them;
* the GPU's own bf16 matmul rate (8192^3), so embedding is reported as a fraction of it;
* passage throughput end to end (tokenizing on the CPU included), tokens/s at a few
  batch sizes, and the embedding part of a full build of the whole collection.

``--random-weights DIR``: the model is built from ``DIR``'s configuration and tokenizer
(a sentence-transformers folder; its weights, if any, are not read) with randomly
initialised weights: the same shape computes at the same speed, for a machine the
weights cannot be copied to. Without it the configured model is loaded as a build
loads it.
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

#: Padded tokens per forward pass tried besides the default (``st_embedder.GPU_TOKENS_PER_BATCH``).
BATCH_TOKENS_SWEEP = (16384, 65536, 262144)
#: Texts in the batch-size sweep (a sample spread over the whole slice).
SWEEP_TEXTS = 40000
DEFAULT_LIMIT = 10000


def random_weight_model(shape_dir: Path, target: Path, seed: int = 0) -> Path:
    """A sentence-transformers folder at ``target``: ``shape_dir``'s configuration, tokenizer
    and pooling modules, with randomly initialised transformer weights of the same shape."""
    import torch
    from transformers import AutoConfig, AutoModel

    shape_dir = Path(shape_dir)
    if not (shape_dir / "config.json").exists():
        raise FileNotFoundError(f"{shape_dir} has no config.json: --random-weights needs the model's "
                                "folder (configuration and tokenizer)")
    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(shape_dir, target,
                    ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx", "*.gguf", "*.pt"))
    torch.manual_seed(seed)
    model = AutoModel.from_config(AutoConfig.from_pretrained(shape_dir))
    model.save_pretrained(target)
    return target


def collection_passages(path: Path, limit: int | None, log: Callable[[str], None] = print
                        ) -> tuple[list[str], dict[str, Any]]:
    """The chunk passages and sentence views a one-document-per-line build of the first
    ``limit`` lines of ``path`` embeds, in build order, with counts and the time taken."""
    from bench.collection import slice_of
    from rag.ingest import IngestStream
    from rag.ingest.records import one_doc_per_line
    from rag.retrieval.passages import passage_text, sentence_views

    source = slice_of(path, limit, Path(tempfile.mkdtemp(prefix="rag-bench-gpu-")))
    texts: list[str] = []
    counts = {"documents": 0, "characters": 0, "chunks": 0, "views": 0}
    t0 = time.perf_counter()
    with one_doc_per_line(True):
        for batch in IngestStream([source], progress=False):
            counts["documents"] += len(batch.documents)
            counts["characters"] += sum(len(d.text) for d in batch.documents)
            for chunk in batch.chunks:
                texts.append(passage_text(chunk))
                views = sentence_views(chunk)
                texts.extend(views)
                counts["chunks"] += 1
                counts["views"] += len(views)
    counts["read_chunk_s"] = time.perf_counter() - t0
    counts["characters_to_embed"] = sum(map(len, texts))
    log(f"  {counts['documents']:,} articles, {counts['characters']:,} characters -> {counts['chunks']:,} chunks "
        f"+ {counts['views']:,} sentence views ({counts['read_chunk_s']:.0f} s to read and chunk, on the CPU)")
    return texts, counts


def gpu_matmul_tflops(torch, size: int = 8192, repeats: int = 10) -> float:
    """bf16 (fp16 where bf16 is missing) matmul rate of the current CUDA device, TFLOP/s."""
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    a = torch.randn(size, size, device="cuda", dtype=dtype)
    b = torch.randn(size, size, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / repeats
    del a, b
    return 2 * size ** 3 / seconds / 1e12


def token_lengths(embedder, texts: list[str], chunk: int = 8192) -> list[int]:
    """Model tokens of each text as the embedder feeds it (passage prompt, specials, truncation)."""
    tokenizer = embedder.model.tokenizer
    limit = embedder.model.max_seq_length
    out: list[int] = []
    for i in range(0, len(texts), chunk):
        batch = [embedder.passage_prompt + t for t in texts[i:i + chunk]]
        ids = tokenizer(batch, add_special_tokens=True, truncation=True, max_length=limit)["input_ids"]
        out.extend(len(x) for x in ids)
    return out


def _timed_encode(torch, embedder, texts: list[str]) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    embedder.encode_passages(texts)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def timed_parts(embedder, run: Callable[[], float]) -> dict[str, Any]:
    """``run()``'s wall time and, from the embedder's own timings (``EmbedTimings``; absent for an
    embedder without them), where it went: tokenizing (and padding) on the CPU, the model's loop
    waiting for tokens, the model (and copying the vectors back), padded tokens."""
    before = replace(embedder.timings) if hasattr(embedder, "timings") else None
    wall = run()
    parts: dict[str, Any] = {"s": wall}
    if before is not None:
        spent = embedder.timings.since(before)
        parts.update(tokenize_s=spent.tokenize_s, wait_s=spent.wait_s, model_s=spent.model_s,
                     batches=spent.batches, tokens=spent.tokens, padded_tokens=spent.padded_tokens)
    return parts


def describe_parts(parts: dict[str, Any]) -> str:
    """One line for a ``timed_parts`` result."""
    if "tokenize_s" not in parts:
        return f"{parts['s']:.1f} s (no breakdown: the embedder does not time its parts)"
    padding = 1 - parts["tokens"] / max(parts["padded_tokens"], 1)
    return (f"{parts['s']:.1f} s: tokenizing {parts['tokenize_s']:.1f} s on the CPU, model loop waiting for "
            f"tokens {parts['wait_s']:.1f} s, model {parts['model_s']:.1f} s; {parts['batches']:,} batches, "
            f"{padding:.0%} of padded tokens are padding")


def run_section(quick: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The ``gpu`` section of ``rag bench`` (see the module docstring)."""
    from bench.collection import DEFAULT_COLLECTION
    from bench.run import SectionSkipped

    try:
        import torch
    except ImportError as exc:
        raise SectionSkipped("torch is not installed") from exc
    if not torch.cuda.is_available():
        raise SectionSkipped("torch sees no CUDA device")
    collection = Path(os.environ.get("RAG_BENCH_COLLECTION") or DEFAULT_COLLECTION)
    raw_limit = os.environ.get("RAG_BENCH_COLLECTION_LIMIT") or str(200 if quick else DEFAULT_LIMIT)
    limit = None if raw_limit.split(",")[0] == "all" else int(raw_limit.split(",")[0])
    shape = os.environ.get("RAG_BENCH_RANDOM_WEIGHTS")
    return measure(collection, limit, Path(shape) if shape else None, quick, log)


def measure(collection: Path, limit: int | None, random_weights: Path | None, quick: bool,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Embed ``collection``'s first ``limit`` articles on the GPU; figures as a dict."""
    import torch

    from bench.pipeline import flops_per_token
    from embeddings.materialize import E5_SMALL
    from embeddings.st_embedder import GPU_TOKENS_PER_BATCH, SentenceTransformerEmbedder

    props = torch.cuda.get_device_properties(0)
    out: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                           "cuda": torch.version.cuda, "gpu_memory_gib": props.total_memory / 2 ** 30,
                           "multiprocessors": props.multi_processor_count, "cpu_cores": os.cpu_count(),
                           "collection": str(collection), "limit": limit,
                           "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    log(f"  {out['device']}, {out['gpu_memory_gib']:.0f} GiB, torch {out['torch']} (CUDA {out['cuda']})")
    out["matmul_tflops"] = gpu_matmul_tflops(torch)
    log(f"  measured matmul peak: {out['matmul_tflops']:.0f} TFLOP/s (8192^3, bf16)")

    texts, counts = collection_passages(collection, limit, log)
    out.update(counts)
    t0 = time.perf_counter()
    if random_weights:
        model_dir = random_weight_model(random_weights, Path(tempfile.mkdtemp(prefix="rag-bench-gpu-")) / "model")
        embedder = SentenceTransformerEmbedder(str(model_dir), name=E5_SMALL)
        out["weights"] = f"random, the shape of {random_weights}"
    else:
        from embeddings.loading import load

        embedder = load()
        out["weights"] = getattr(embedder, "name", "configured model")
    out["model_load_s"] = time.perf_counter() - t0
    out["embedder_device"] = getattr(embedder, "device", "?")
    out["precision"] = getattr(embedder, "precision", "?")
    out["tokens_per_batch"] = getattr(embedder, "tokens_per_batch", GPU_TOKENS_PER_BATCH)
    out["texts_per_batch"] = getattr(embedder, "batch_size", None)
    out["tokenizes_once"] = bool(getattr(embedder, "tokenizes_once", False))
    out["prefetch"] = bool(getattr(embedder, "prefetch", False))
    out["texts_per_window"] = getattr(embedder, "texts_per_window", None)
    log(f"  embedder: device {out['embedder_device']}, {out['precision']} (chosen without settings), "
        f"{out['tokens_per_batch']:,} padded tokens and at most {out['texts_per_batch']:,} texts a batch; model ready in {out['model_load_s']:.1f} s")
    log(f"  each text tokenized once: {out['tokenizes_once']}; tokenized on a second thread: {out['prefetch']} "
        f"({out['texts_per_window'] or 'all'} texts per tokenizer call)")

    t0 = time.perf_counter()
    lengths = token_lengths(embedder, texts)
    out["tokenize_s"] = time.perf_counter() - t0
    out["tokens"] = sum(lengths)
    out["mean_tokens"] = statistics.fmean(lengths) if lengths else 0.0
    log(f"  {out['tokens']:,} model tokens (mean {out['mean_tokens']:.0f} a text); the fast tokenizer alone "
        f"took {out['tokenize_s']:.1f} s on the CPU")

    _timed_encode(torch, embedder, texts[:2000])  # CUDA context, cuBLAS handles, kernel choice
    torch.cuda.reset_peak_memory_stats()
    parts = [timed_parts(embedder, lambda: _timed_encode(torch, embedder, texts)) for _ in range(1 if quick else 2)]
    runs = [p["s"] for p in parts]
    wall = statistics.median(runs)
    out["embed_runs_s"] = runs
    out["embed_parts"] = parts
    out["embed_s"] = wall
    out["tokens_per_s"] = out["tokens"] / wall
    out["passages_per_s"] = len(texts) / wall
    out["seconds_per_million_characters"] = wall / max(counts["characters"], 1) * 1e6
    out["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
    achieved = out["tokens_per_s"] * flops_per_token(out["mean_tokens"])
    out["tflops"] = achieved / 1e12
    out["fraction_of_matmul_peak"] = achieved / (out["matmul_tflops"] * 1e12)
    log(f"  embedded {len(texts):,} passages in {wall:.1f} s (runs {', '.join(f'{r:.1f}' for r in runs)}): "
        f"{out['tokens_per_s'] / 1e6:.2f} M tokens/s, {out['passages_per_s']:,.0f} passages/s, "
        f"{out['seconds_per_million_characters']:.2f} s per M characters of articles; "
        f"{out['tflops']:.1f} TFLOP/s = {out['fraction_of_matmul_peak']:.1%} of the matmul peak; "
        f"peak GPU memory {out['peak_gpu_memory_gib']:.1f} GiB")
    for i, p in enumerate(parts, 1):
        log(f"    pass {i}: {describe_parts(p)}")
    if out["prefetch"] and not quick:  # what the second thread brings, same texts, same run
        embedder.prefetch = False
        try:
            out["without_prefetch"] = timed_parts(embedder, lambda: _timed_encode(torch, embedder, texts))
        finally:
            embedder.prefetch = True
        log(f"    tokenizing on the same thread instead: {describe_parts(out['without_prefetch'])}")

    sample = texts[:: max(1, len(texts) // SWEEP_TEXTS)]
    sample_tokens = sum(lengths[:: max(1, len(texts) // SWEEP_TEXTS)])
    sweep = []
    default = embedder.tokens_per_batch
    for tokens_per_batch in BATCH_TOKENS_SWEEP:
        embedder.tokens_per_batch = tokens_per_batch
        seconds = min(_timed_encode(torch, embedder, sample) for _ in range(2))
        sweep.append({"tokens_per_batch": tokens_per_batch, "texts": len(sample), "s": seconds,
                      "tokens_per_s": sample_tokens / seconds})
        log(f"  {tokens_per_batch:>7,} padded tokens a batch: {sample_tokens / seconds / 1e6:.2f} M tokens/s "
            f"({len(sample):,} texts)")
    embedder.tokens_per_batch = default
    out["batch_sweep"] = sweep

    full_chars = _collection_characters(collection)
    if full_chars and full_chars > counts["characters"]:  # a slice: extrapolate; the whole file is measured above
        tokens_per_article_char = out["tokens"] / max(counts["characters"], 1)
        out["full_collection_characters"] = full_chars
        out["full_collection_embed_s"] = full_chars * tokens_per_article_char / out["tokens_per_s"]
        log(f"  the whole collection ({full_chars / 1e6:.1f} M characters, {full_chars * tokens_per_article_char / 1e6:.0f} M "
            f"tokens at this slice's tokens per character): embedding ~{out['full_collection_embed_s'] / 60:.1f} min")
    out["tables"] = tables(out)
    return out


def tables(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The section's rows for ``bench.report``."""
    gpu = f"{out['device']} ({out['precision']}, weights: {out['weights']})"
    articles = f"first {out['limit']:,}" if isinstance(out.get("limit"), int) else "all"
    rows = [
        ["GPU matmul peak (8192^3, bf16)", f"{out['matmul_tflops']:.0f} TFLOP/s", out["device"]],
        ["texts embedded", f"{out['chunks']:,} chunks + {out['views']:,} views = {out['tokens']:,} tokens",
         f"{articles} articles of {Path(out['collection']).name}, "
         f"{out['characters']:,} characters; read and chunked on the CPU in {out['read_chunk_s']:.0f} s"],
        ["passage embedding, end to end", f"{out['tokens_per_s'] / 1e6:.2f} M tokens/s, "
         f"{out['passages_per_s']:,.0f} passages/s",
         f"{gpu}; {out['tokens_per_batch']:,} padded tokens, at most {out.get('texts_per_batch') or '?'} texts a batch; median of {len(out['embed_runs_s'])} "
         f"({', '.join(f'{r:.1f}' for r in out['embed_runs_s'])} s); tokenizing included "
         f"(the HF tokenizer alone: {out['tokenize_s']:.1f} s)"],
        ["fraction of the matmul peak", f"{out['fraction_of_matmul_peak']:.1%}",
         f"{out['tflops']:.1f} TFLOP/s at {out['mean_tokens']:.0f} tokens a text"],
        ["seconds per million characters of articles", f"{out['seconds_per_million_characters']:.2f} s",
         f"peak GPU memory {out['peak_gpu_memory_gib']:.1f} GiB"],
    ]
    for i, parts in enumerate(out.get("embed_parts", []), 1):
        rows.append([f"pass {i}: where the time went", f"{parts['s']:.1f} s", describe_parts(parts)])
    if out.get("without_prefetch"):
        rows.append(["tokenizing on the same thread instead", f"{out['without_prefetch']['s']:.1f} s",
                     describe_parts(out["without_prefetch"])])
    rows += [[f"batches of {s['tokens_per_batch']:,} padded tokens", f"{s['tokens_per_s'] / 1e6:.2f} M tokens/s",
              f"{s['texts']:,} texts sampled over the slice, best of 2"] for s in out.get("batch_sweep", [])]
    if out.get("full_collection_embed_s"):
        rows.append(["embedding the whole collection (extrapolated by characters)",
                     f"{out['full_collection_embed_s'] / 60:.1f} min",
                     f"{out['full_collection_characters'] / 1e6:.1f} M characters"])
    return [{"title": "Embedding on a GPU", "headers": ["what", "figure", "how"], "rows": rows}]


def _collection_characters(path: Path) -> int | None:
    """Characters of article text in a one-document-per-line file (.xz read as is)."""
    import lzma

    try:
        opener = lzma.open if path.suffix == ".xz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            return sum(len(line.rstrip("\n")) for line in f)
    except OSError:
        return None
