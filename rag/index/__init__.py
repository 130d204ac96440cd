"""Indexing: what an index is made of and where it is kept.

* ``settings``: ``IndexSettings``, the typed settings an index is built with and
  that its manifest records (read back in one place, ``IndexSettings.from_manifest``;
  the rest of the manifest, counts and the store's section, is ``rag.index_store.IndexInfo``).
* ``embedding``: passages and sentence views through the embedding cache.
* ``embedding_cache``: the shared SQLite cache of vectors and BM25 tokens.
* ``stores``: where the vectors and the keyword index live (FAISS + bm25s files
  in the index directory, or a Milvus collection).

Importing this package loads nothing heavy.
"""
