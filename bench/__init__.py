"""Benchmarks: speed, memory and how cost grows (``python -m bench.run`` or ``rag bench``).

Sections (``--only``):

- ``scale``:  synthetic corpora (10k/100k/1M chunks): FAISS Flat/HNSW/IVF/IVF-PQ and bm25s.
- ``index``:  building the index of ``seeds/`` cold, warm and with one document changed;
              embedding throughput against the machine's peak; engines compared.
- ``query``:  per-stage query latency (embedding, dense, BM25, fusion, extractive answer).
- ``memory``: resident memory of ``rag serve`` after load and after 200 queries.
- ``llm``:    local LLM load time, time to first token, tokens/s (when installed).

Every figure is a median over repeated runs; comparisons are ratios measured in the
same run. Results go to a printed table, ``results.json`` and ``results.md``.
"""
