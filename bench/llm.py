"""The offline LLM: load time, time to first token and decoding speed.

Uses the project's local generator (llama.cpp via xllamacpp when installed, else
transformers) on real retrieval prompts. Tokens are counted as streamed pieces
(llama.cpp streams one token per piece).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from bench.pipeline import _query_index, benchmark_questions


def run(quick: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    from bench.run import SectionSkipped

    try:
        from rag.answering.local_model import default_local_generator, llamacpp_available
        from rag.answering.prompts import answer_messages
        from rag.errors import RagError
    except ImportError as exc:
        raise SectionSkipped(f"local LLM support not importable: {exc}") from exc
    try:
        generator = default_local_generator(max_tokens=64 if quick else 160)
    except RagError as exc:
        raise SectionSkipped(f"local LLM not installed: {exc}") from exc

    from rag import Retriever

    retriever = Retriever.load(_query_index(quick, log))
    questions = benchmark_questions(2 if quick else 5)
    prompts = [answer_messages(q, retriever.search(q, k=5)) for q in questions]
    t0 = time.perf_counter()
    if hasattr(generator, "load"):
        generator.load()
    load_s = time.perf_counter() - t0
    log(f"  {generator.name}: loaded in {load_s:.1f} s")
    rows = []
    for q, messages in zip(questions, prompts):
        start = time.perf_counter()
        first, pieces = None, 0
        for piece in generator.stream(messages):
            if first is None:
                first = time.perf_counter() - start
            pieces += 1
        total = time.perf_counter() - start
        decode_s = total - (first or total)
        tps = (pieces - 1) / decode_s if pieces > 1 and decode_s > 0 else float("nan")
        rows.append({"question": q, "ttft_s": first, "tokens": pieces, "total_s": total, "tokens_per_s": tps})
        log(f"  TTFT {first:.2f} s, {pieces} tokens, {tps:.1f} tokens/s")
    ttft = float(np.median([r["ttft_s"] for r in rows]))
    tps = float(np.nanmedian([r["tokens_per_s"] for r in rows]))
    return {
        "backend": generator.name, "model": str(getattr(generator, "model_path", "")),
        "threads": getattr(generator, "n_threads", None),
        "llamacpp": llamacpp_available(), "load_s": load_s, "ttft_s_median": ttft,
        "tokens_per_s_median": tps, "runs": rows,
        "tables": [{"title": f"{generator.name} ({getattr(generator, 'model_path', '')}), "
                             f"{len(rows)} RAG prompts with 5 passages each; medians",
                    "headers": ["load s", "first token s", "tokens/s", "prompts"],
                    "rows": [[load_s, ttft, tps, len(rows)]]}],
    }
