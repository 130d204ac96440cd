"""A big collection through the keyword side of a build: read, chunk, tokenize, BM25.

No embedding (that is measured per token by the ``index`` section, and a dense build of
tens of thousands of articles takes hours on a CPU): this times everything else a build
does, with peak RSS, and extrapolates the dense part from a given embedding rate::

    python -m bench.collection news-63k.txt --one-doc-per-line [--limit 10000] \
        [--tokens-per-s 6000] [--out bench/out/collection.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

#: Model tokens per character of embedded text (XLM-R unigram on seeds/: 118,616 tokens
#: for 176,246 characters of chunk passages).
TOKENS_PER_CHAR = 0.67


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(path: Path, one_doc_per_line: bool, limit: int | None, tokens_per_s: float | None,
        log=print) -> dict[str, Any]:
    from bench import machine
    from rag.index.stores.bm25_keyword import KeywordIndex
    from rag.ingest import ingest
    from rag.ingest.records import one_doc_per_line as lines_mode
    from rag.retrieval.passages import passage_text, sentence_views
    from rag.tokenize_zh import tokenize_many

    source = path
    if limit:
        source = Path(os.environ.get("TMPDIR", "/tmp")) / f"{path.stem}-{limit}{path.suffix}"
        with open(path, encoding="utf-8") as fin, open(source, "w", encoding="utf-8") as fout:
            for n, line in enumerate(fin):
                if n >= limit:
                    break
                fout.write(line)
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    with lines_mode(one_doc_per_line):
        result = ingest([source], progress=True, keep_structures=False)
    stages["read + chunk"] = time.perf_counter() - t0
    chars = sum(len(d.text) for d in result.documents)
    texts = [passage_text(c) for c in result.chunks]
    view_chars = sum(len(v) for c in result.chunks for v in sentence_views(c))
    views = sum(len(sentence_views(c)) for c in result.chunks)
    log(f"  {len(result.documents):,} documents, {chars:,} characters -> {len(texts):,} chunks, "
        f"{views:,} sentence views in {stages['read + chunk']:.0f} s")
    t0 = time.perf_counter()
    tokens = tokenize_many(texts, show_progress=True)
    stages["BM25 tokenize (parallel)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    KeywordIndex.build(texts, tokens=tokens)
    stages["BM25 index"] = time.perf_counter() - t0
    embed_chars = sum(map(len, texts)) + view_chars
    out: dict[str, Any] = {
        "machine": machine.describe(), "file": str(path), "limit": limit,
        "documents": len(result.documents), "characters": chars, "chunks": len(texts), "views": views,
        "characters_to_embed": embed_chars, "stages_s": stages, "peak_rss_mib": _rss_mib(),
        "seconds_per_million_characters_without_embedding": sum(stages.values()) / chars * 1e6,
    }
    if tokens_per_s:
        out["extrapolated_embedding_s"] = embed_chars * TOKENS_PER_CHAR / tokens_per_s
        out["extrapolation"] = (f"{embed_chars:,} characters x {TOKENS_PER_CHAR} tokens/char / "
                                f"{tokens_per_s:,.0f} tokens/s (not measured end to end)")
    for name, seconds in stages.items():
        log(f"  {name:<26} {seconds:8.1f} s")
    log(f"  peak RSS {out['peak_rss_mib']:.0f} MiB; load {os.getloadavg()}")
    return out


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
