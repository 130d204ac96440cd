"""Stores: where an index keeps its chunk vectors, sentence views and keyword index.

``local`` (rag.index.stores.local): FAISS + bm25s files in the index directory, the
default. ``milvus`` (rag.index.stores.milvus): a Milvus collection, Lite or a
server. Both implement ``rag.index.stores.base.Store``; the index's settings say
which one it uses, and these two functions make or open it.
"""
from __future__ import annotations

from pathlib import Path
from rag.index.stores.base import NewChunks, Scored, Store

__all__ = ["NewChunks", "Scored", "Store", "create_store", "open_store"]


def create_store(settings, token_cache=None) -> Store:
    """An empty store for a new index with ``settings`` (an IndexSettings with ``dim`` set)."""
    if settings.store == "milvus":
        from rag.index.stores.milvus import MilvusStore

        return MilvusStore.create(settings.store_uri, settings.collection, int(settings.dim), settings.model,
                                  with_views=settings.views)
    from rag.index.stores.local import LocalStore

    return LocalStore.empty(int(settings.dim), dense_kind=settings.dense_kind, ef_search=settings.ef_search,
                            nprobe=settings.nprobe, bigrams=settings.bigrams, token_cache=token_cache)


def open_store(index_dir: Path, settings, info, token_cache=None) -> Store:
    """The store of the index at ``index_dir`` (its files already verified), from its
    ``settings`` (IndexSettings) and ``info`` (rag.index_store.IndexInfo: counts, the
    dense kind built, the store's own manifest section)."""
    if settings.store == "milvus":
        from rag.index.stores.milvus import MilvusStore

        return MilvusStore.open(info.store_section, settings.model, int(settings.dim),
                                with_views=settings.views)
    from rag.index.stores.local import LocalStore

    return LocalStore.load(Path(index_dir), dim=int(settings.dim), chunks_count=info.chunks,
                           views_count=info.views, dense_kind=info.dense_built,
                           requested_kind=settings.dense_kind, ef_search=settings.ef_search,
                           nprobe=settings.nprobe, bigrams=settings.bigrams, tokenizer=settings.tokenizer,
                           token_cache=token_cache)
