"""BM25 keyword index over Chinese tokens (bm25s with rag.tokenize_zh)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from rag.tokenize_zh import TOKENIZER_VERSION, tokenize, tokenize_many


class KeywordIndex:
    """BM25 (Lucene variant, k1=1.5, b=0.75) over ``tokenize_zh`` tokens.

    ``scores(query)`` gives the BM25 score of every chunk, in chunk order, so the
    hybrid search can fuse it with dense scores; ``search`` gives the top k.
    """

    def __init__(self, bm25, num_docs: int, bigrams: bool = False):
        self._bm25 = bm25
        self.num_docs = num_docs
        self.bigrams = bigrams

    @classmethod
    def build(cls, texts: Sequence[str], bigrams: bool = False,
              tokens: Sequence[list[str]] | None = None) -> "KeywordIndex":
        """Index ``texts`` (or their precomputed ``tokens``)."""
        import bm25s

        corpus_tokens = list(tokens) if tokens is not None else tokenize_many(texts, bigrams)
        # bm25s needs at least one token per corpus; an empty chunk gets a placeholder.
        corpus_tokens = [t if t else [""] for t in corpus_tokens] or [[""]]
        bm25 = bm25s.BM25()
        bm25.index(corpus_tokens, show_progress=False)
        return cls(bm25, num_docs=len(texts), bigrams=bigrams)

    def query_tokens(self, query: str) -> list[str]:
        return tokenize(query, bigrams=self.bigrams)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every indexed text for ``query`` (zeros when no token is known)."""
        ids = self._bm25.get_tokens_ids(self.query_tokens(query))
        ids = [i for i in ids if i != self._bm25.vocab_dict.get("")]
        if not ids or self.num_docs == 0:
            return np.zeros(self.num_docs, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)[: self.num_docs]

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Top ``k`` (position, score) with a positive score, best first."""
        scores = self.scores(query)
        return top_k(scores, k, positive_only=True)

    def save(self, directory: str | Path) -> None:
        self._bm25.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: str | Path, num_docs: int, bigrams: bool = False) -> "KeywordIndex":
        import bm25s

        bm25 = bm25s.BM25.load(str(directory), show_progress=False, verbosity=0)
        return cls(bm25, num_docs=num_docs, bigrams=bigrams)

    @property
    def indexed_docs(self) -> int:
        """Number of documents bm25s holds (a sanity check against the chunk count)."""
        return int(self._bm25.scores["num_docs"])

    @staticmethod
    def describe(bigrams: bool) -> dict:
        return {"library": "bm25s", "method": "lucene", "k1": 1.5, "b": 0.75,
                "tokenizer": TOKENIZER_VERSION, "bigrams": bigrams}


def top_k(scores: np.ndarray, k: int, positive_only: bool = False) -> list[tuple[int, float]]:
    """Positions and values of the ``k`` largest scores, best first (ties by position)."""
    if k <= 0 or scores.size == 0:
        return []
    k = min(k, scores.size)
    part = np.argpartition(-scores, k - 1)[:k]
    order = part[np.lexsort((part, -scores[part]))]
    out = [(int(i), float(scores[i])) for i in order]
    if positive_only:
        out = [(i, s) for i, s in out if s > 0]
    return out
