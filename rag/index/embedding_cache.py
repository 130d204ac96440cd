"""A persistent cache of passage embeddings keyed by model and content hash.

Modelled on simonw/llm's ``Collection``: each embedded text is identified by a
hash of its content, so embedding the same text again with the same model is a
lookup instead of a forward pass, and identical texts inside one batch are
embedded once.

Where it lives: one SQLite file in ``config.CACHE_DIR`` (``embeddings.sqlite3``),
shared by every index directory. An index is always rebuilt in a fresh temporary
directory (atomic writes), and the same documents are often indexed into several
directories (tests, ``--index`` variants), so a cache inside one index directory
would be thrown away or duplicated; the shared file survives all of that. SQLite
gives safe concurrent access from several processes for free.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from rag import config
from rag.memory import release_freed_memory

CACHE_FILENAME = "embeddings.sqlite3"
#: Fresh vectors are written to the cache after every this many texts: a killed
#: build loses at most one such batch (a few seconds to a minute of CPU work),
#: and one SQLite transaction per batch costs nothing next to the forward passes.
#: An embedder may ask for larger calls (``texts_per_call``: on a GPU 256 texts are a
#: fraction of one batch); ``RAG_EMBED_COMMIT_EVERY`` set explicitly wins over that.
_COMMIT_OVERRIDE = config.env("RAG_EMBED_COMMIT_EVERY")
COMMIT_EVERY = int(_COMMIT_OVERRIDE or 256)


def content_hash(text: str) -> str:
    """The cache key of a text: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_cache_path() -> Path:
    from rag import config

    return Path(config.CACHE_DIR) / CACHE_FILENAME


@dataclass
class EmbedResult:
    """Vectors for the requested texts (in order) and where they came from."""

    vectors: np.ndarray
    embedded: int  # texts sent to the model (after de-duplication)
    cached: int    # texts answered by the cache


class EmbeddingCache:
    """SQLite table ``(model, hash) -> float32 vector``."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._full_warned = False
        self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        with self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings ("
                " model TEXT NOT NULL, hash TEXT NOT NULL, dim INTEGER NOT NULL,"
                " vector BLOB NOT NULL, PRIMARY KEY (model, hash))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS models ("
                " requested TEXT PRIMARY KEY, cache_key TEXT NOT NULL, name TEXT NOT NULL, dim INTEGER NOT NULL)"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS tokens ("
                " tokenizer TEXT NOT NULL, hash TEXT NOT NULL, tokens TEXT NOT NULL,"
                " PRIMARY KEY (tokenizer, hash))"
            )

    def get_many(self, model: str, hashes: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        """Cached vectors of ``dim`` floats for those of ``hashes`` that are present."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), 500):  # SQLite's parameter limit
                part = unique[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT hash, vector FROM embeddings WHERE model=? AND dim=? AND hash IN ({marks})",
                    [model, dim, *part],
                ).fetchall()
                for key, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.size == dim:  # a damaged row is ignored and re-embedded
                        found[key] = vector
        return found

    def put_many(self, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors[i]`` under ``hashes[i]``."""
        vectors = np.asarray(vectors, dtype=np.float32)
        rows = [(model, h, int(v.size), v.tobytes()) for h, v in zip(hashes, vectors)]
        self._write_many("INSERT OR REPLACE INTO embeddings (model, hash, dim, vector) VALUES (?, ?, ?, ?)", rows)

    def _write_many(self, sql: str, rows: list[tuple]) -> None:
        """Write rows; on a full disk warn once and go on without caching them (the cache
        only saves time, so it must not make a build fail)."""
        try:
            with self._lock, self._db:
                self._db.executemany(sql, rows)
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "full" not in text and "disk i/o" not in text:
                raise
            if not self._full_warned:
                self._full_warned = True
                print(f"warning: cannot write the embedding cache {self.path} ({exc}); "
                      "going on without caching", file=sys.stderr)

    def model_info(self, requested: str) -> tuple[str, str, int] | None:
        """``(cache_key, name, dim)`` of the model last loaded for the name ``requested``."""
        with self._lock:
            row = self._db.execute("SELECT cache_key, name, dim FROM models WHERE requested=?",
                                   (requested,)).fetchone()
        return (row[0], row[1], int(row[2])) if row else None

    def put_model_info(self, requested: str, key: str, name: str, dim: int) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO models (requested, cache_key, name, dim) VALUES (?, ?, ?, ?)",
                             (requested, key, name, int(dim)))

    def get_meta(self, key: str) -> str | None:
        """A remembered fact about a model (e.g. what it can do), or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put_meta(self, key: str, value: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get_tokens(self, tokenizer: str, hashes: Sequence[str]) -> dict[str, list[str]]:
        """Cached keyword tokens (made by ``tokenizer``) of the texts with these hashes."""
        found: dict[str, list[str]] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), 500):
                part = unique[start : start + 500]
                rows = self._db.execute(
                    f"SELECT hash, tokens FROM tokens WHERE tokenizer=? AND hash IN ({','.join('?' * len(part))})",
                    [tokenizer, *part],
                ).fetchall()
                found.update((key, json.loads(tokens)) for key, tokens in rows)
        return found

    def put_tokens(self, tokenizer: str, items: dict[str, list[str]]) -> None:
        rows = [(tokenizer, key, json.dumps(tokens, ensure_ascii=False)) for key, tokens in items.items()]
        self._write_many("INSERT OR REPLACE INTO tokens (tokenizer, hash, tokens) VALUES (?, ?, ?)", rows)

    def count(self, model: str | None = None) -> int:
        """Number of cached vectors (for one model, or all)."""
        with self._lock:
            if model is None:
                return self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM embeddings WHERE model=?", (model,)).fetchone()[0]

    def embed_passages(self, embedder, texts: Sequence[str], show_progress: bool = False) -> EmbedResult:
        """Vectors for ``texts``: from the cache, else from ``embedder`` (then cached)."""
        return embed_passages(embedder, texts, cache=self, show_progress=show_progress)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "EmbeddingCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cache_key(embedder) -> str:
    """What cached vectors are filed under: ``embedder.cache_key`` if it has one, else its name.

    Two engines running the same model (say a 4-bit and an fp32 one) give slightly
    different vectors; an embedder can tell them apart with ``cache_key``.
    """
    return str(getattr(embedder, "cache_key", None) or embedder.name)


def embed_passages(embedder, texts: Sequence[str], cache: EmbeddingCache | None = None,
                   show_progress: bool = False, label: str = "embedding",
                   commit_every: int | None = None) -> EmbedResult:
    """Embed ``texts`` as passages, embedding only what ``cache`` does not hold.

    Identical texts are embedded once. Without a cache every distinct text is embedded.
    Fresh vectors are committed to the cache every ``commit_every`` texts (default: the
    embedder's ``texts_per_call`` where it has one, else ``COMMIT_EVERY``) as they are
    computed, so a build killed after hours and run again embeds only what is still missing. The texts go to the model longest
    first (similar lengths share a batch, and the progress bar's ETA only improves).
    """
    dim = int(embedder.dim)
    model = cache_key(embedder)
    hashes = [content_hash(t) for t in texts]
    known = cache.get_many(model, hashes, dim) if cache is not None else {}
    missing: dict[str, str] = {}
    for key, text in zip(hashes, texts):
        if key not in known and key not in missing:
            missing[key] = text
    if missing:
        preferred = None if _COMMIT_OVERRIDE else getattr(embedder, "texts_per_call", None)
        step = max(1, int(commit_every or preferred or COMMIT_EVERY))
        todo = sorted(missing.items(), key=lambda item: -len(item[1]))
        from tqdm.auto import tqdm

        with tqdm(total=len(todo), desc=label, unit="passage", disable=not show_progress,
                  dynamic_ncols=True, smoothing=0.05) as bar:
            for start in range(0, len(todo), step):
                part = todo[start : start + step]
                fresh = np.asarray(embedder.encode_passages([t for _, t in part], show_progress=False),
                                   dtype=np.float32)
                if fresh.shape != (len(part), dim):
                    raise ValueError(f"embedder {embedder.name} returned shape {fresh.shape}, "
                                     f"expected {(len(part), dim)}")
                keys = [k for k, _ in part]
                if cache is not None:
                    cache.put_many(model, keys, fresh)
                known.update(zip(keys, fresh))
                bar.update(len(part))
                release_freed_memory()
    vectors = np.stack([known[h] for h in hashes]) if hashes else np.zeros((0, dim), np.float32)
    cached = sum(1 for h in dict.fromkeys(hashes) if h not in missing)
    return EmbedResult(vectors=np.ascontiguousarray(vectors, dtype=np.float32),
                       embedded=len(missing), cached=cached)


def tokenize_passages(texts: Sequence[str], bigrams: bool = False,
                      cache: EmbeddingCache | None = None, show_progress: bool = False,
                      pool=None) -> list[list[str]]:
    """BM25 tokens of ``texts``, from the cache when the same tokenizer already saw them.

    jieba is the slowest step of a rebuild after the embeddings, so its output is
    cached next to them, keyed by tokenizer version (+ bigrams) and content hash.
    Many new texts are tokenized in parallel processes (``tokenize_many``; ``pool``:
    a ``tokenizer_pool()`` kept across calls).
    """
    from rag.tokenize_zh import TOKENIZER_VERSION, tokenize_many

    if cache is None:
        return tokenize_many(texts, bigrams=bigrams, show_progress=show_progress, pool=pool)
    tokenizer = f"{TOKENIZER_VERSION}{'+bigrams' if bigrams else ''}"
    hashes = [content_hash(t) for t in texts]
    known = cache.get_tokens(tokenizer, hashes)
    todo = {h: t for h, t in zip(hashes, texts) if h not in known}
    fresh = dict(zip(todo, tokenize_many(list(todo.values()), bigrams=bigrams, show_progress=show_progress,
                                         pool=pool)))
    if fresh:
        cache.put_tokens(tokenizer, fresh)
        known.update(fresh)
    return [known[h] for h in hashes]
