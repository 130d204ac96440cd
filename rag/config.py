"""Defaults and settings shared by the CLI, the UI and the library: the one place
``rag`` reads the environment.

Every default can be overridden by an environment variable, so the same
settings reach ``rag`` subcommands, ``make run`` and embedding programs. (The
``embeddings`` package, below ``rag``, reads its own RAG_EMBED_* variables.)
"""
from __future__ import annotations

import os
from pathlib import Path

#: Where ``rag index``/``search``/``ask``/``serve`` keep the index unless --index is given.
DEFAULT_INDEX_DIR = Path(os.environ.get("RAG_INDEX", ".rag/index"))

#: Where materialized models and other derived artefacts are cached.
CACHE_DIR = Path(os.environ.get("RAG_CACHE_DIR", Path.home() / ".cache" / "rag-zh"))

#: Embedding model: a sentence-transformers name or a local directory.
DEFAULT_MODEL = os.environ.get("RAG_MODEL", "intfloat/multilingual-e5-small")

#: Milvus for ``rag index --store milvus`` when --milvus-uri is not given: a file path
#: (Milvus Lite) or http(s)://host:port (a server or cluster).
MILVUS_URI = os.environ.get("RAG_MILVUS_URI", "")


def milvus_token() -> str:
    """Credentials for a Milvus server (``user:password`` or an API key): $RAG_MILVUS_TOKEN.
    Read when connecting and never written to the index manifest."""
    return os.environ.get("RAG_MILVUS_TOKEN", "")


def env(*names: str) -> str | None:
    """The first of the environment variables ``names`` that is set and not empty."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def llm_model() -> str | None:
    """The local chat model for ``--generator local/llamacpp/transformers``: $RAG_LLM_MODEL."""
    return env("RAG_LLM_MODEL")


def verifier_model() -> str | None:
    """The GGUF model that checks borderline extractive evidence (``rag.answering.verifier``):
    $RAG_VERIFIER_MODEL. Unset: no verifier, the rules decide alone."""
    return env("RAG_VERIFIER_MODEL")


def verifier_score(name: str, default: float | None) -> float | None:
    """A verifier threshold from the environment ($RAG_VERIFIER_RESCUE, $RAG_VERIFIER_DECLINE): a number,
    or ``off``/``none`` for no threshold; ``default`` when unset."""
    value = env(name)
    if value is None:
        return default
    if value.strip().lower() in ("off", "none"):
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number or 'off', not {value!r}") from None


def local_backend(default: str = "auto") -> str:
    """Which engine runs the local LLM (llamacpp, transformers or auto): $RAG_LOCAL_BACKEND."""
    return env("RAG_LOCAL_BACKEND") or default


#: Longest question accepted as-is; longer ones are truncated with a notice.
MAX_QUERY_CHARS = 2000

#: Most passages one question may retrieve through the Assistant, the CLI and the UI/API
#: (k=100000 made a 2.2 MB reply; 50 is far past what any prompt or reader uses).
MAX_K = 50


def index_dir(value: str | os.PathLike | None = None) -> Path:
    """The index directory to use: the explicit value, else $RAG_INDEX, else .rag/index."""
    if value:
        return Path(value)
    return Path(os.environ.get("RAG_INDEX", str(DEFAULT_INDEX_DIR)))
