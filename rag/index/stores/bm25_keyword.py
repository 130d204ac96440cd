"""BM25 keyword index over Chinese tokens (bm25s with rag.tokenize_zh)."""
from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence

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


class KeywordIndexBuilder:
    """Builds a ``KeywordIndex`` from token lists given batch by batch, in bounded memory.

    A collection's tokens as Python lists of strings are the biggest thing a build
    holds (news-63k: 150k chunks, 3.7 GB peak RSS). Here each token becomes an id of
    a vocabulary grown as batches arrive and the ids are kept in one int32 array, so
    150k chunks of tokens take ~4 bytes per token; ``build`` hands them to bm25s
    (its ``build_index_from_ids``, one document's id list at a time). The index is
    the one ``KeywordIndex.build`` makes from the same tokens: same vocabulary, scores
    and saved files (up to the numbering of the vocabulary).
    """

    def __init__(self, bigrams: bool = False):
        from array import array

        self.bigrams = bigrams
        self.vocab: dict[str, int] = {}
        self._ids = array("i")
        self._ends = array("q")

    def add(self, token_lists: Sequence[list[str]]) -> None:
        """Append the tokens of the next documents (an empty list gets a placeholder, as
        in ``KeywordIndex.build``)."""
        vocab, ids = self.vocab, self._ids
        for tokens in token_lists:
            ids.extend(vocab.setdefault(t, len(vocab)) for t in (tokens or ("",)))
            self._ends.append(len(ids))

    def __len__(self) -> int:
        return len(self._ends)

    @property
    def tokens(self) -> int:
        return len(self._ids)

    def build(self) -> KeywordIndex:
        """The BM25 index of every document added so far (the builder can be dropped)."""
        import bm25s

        if not len(self):
            return KeywordIndex.build([], bigrams=self.bigrams)
        ids = np.frombuffer(self._ids, dtype=np.int32)
        ends = np.frombuffer(self._ends, dtype=np.int64)
        bm25 = bm25s.BM25()
        # What bm25s.BM25.index does for a (token ids, vocabulary) corpus, on a lazy corpus.
        bm25.scores = bm25.build_index_from_ids(unique_token_ids=list(range(len(self.vocab))),
                                                corpus_token_ids=_TokenIdLists(ids, ends), show_progress=False)
        vocab = dict(self.vocab)
        if "" not in vocab:
            vocab[""] = max(vocab.values()) + 1
        bm25.vocab_dict = vocab
        bm25.unique_token_ids_set = set(vocab.values())
        return KeywordIndex(bm25, num_docs=len(self), bigrams=self.bigrams)


class _TokenIdLists(Sequence):
    """Documents' token ids as Python lists, made one at a time from the flat array."""

    def __init__(self, ids: np.ndarray, ends: np.ndarray):
        self._ids, self._ends = ids, ends

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = i + len(self) if i < 0 else i
        start = int(self._ends[i - 1]) if i > 0 else 0
        return self._ids[start:int(self._ends[i])].tolist()

    def __iter__(self):
        start = 0
        for end in self._ends.tolist():
            yield self._ids[start:end].tolist()
            start = end


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
