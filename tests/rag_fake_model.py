"""Run the ``rag`` command line with the tests' FakeEmbedder as the embedding model.

For tests that need a real second process (``rag index`` while another process
holds the same index) without loading the real model::

    python tests/rag_fake_model.py index DOCS --index I --quiet

``RAG_CACHE_DIR`` must point at a private folder: the fake model must never
land in the shared embedding cache.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    if not os.environ.get("RAG_CACHE_DIR"):
        sys.exit("set RAG_CACHE_DIR to a private folder")
    import rag.index.embedding
    from conftest import FakeEmbedder
    from rag.cli import main

    rag.index.embedding.load_embedder = lambda name, engine=None: FakeEmbedder()
    sys.exit(main(sys.argv[1:]))
