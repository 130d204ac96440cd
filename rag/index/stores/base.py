"""The ``Store`` interface: what the Retriever needs from wherever an index keeps its data.

A store holds, for every chunk: the chunk itself, its vector, the vectors of its
sentence views and its keyword (BM25) text. It answers the two first-stage
searches (dense, keyword) and scores a given pool of chunks exactly, which is
what score fusion needs. The Retriever above it embeds, fuses and dedupes.

A store object is a snapshot: ``updated`` returns a *new* store with documents
removed and chunks added and leaves the old one answering searches, so a reader
never sees half an update. What an update writes becomes part of the index only
when the index directory's manifest naming it is in place (see ``Retriever``),
after which ``commit`` may drop what the old snapshot alone still used.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

import numpy as np

from rag.types import Chunk

#: A first-stage result: the chunk and its score (higher is better), best first.
Scored = tuple[Chunk, float]


@dataclass(frozen=True)
class NewChunks:
    """Chunks to add to a store, with everything it indexes about them.

    ``vectors[i]`` is the vector of ``chunks[i]``; its sentence views are
    ``views[view_offsets[i]:view_offsets[i + 1]]``; ``keyword_texts[i]`` is the text
    its keyword index sees (the passage text: heading path, then body).
    """

    chunks: Sequence[Chunk]
    vectors: np.ndarray
    views: np.ndarray
    view_offsets: np.ndarray
    keyword_texts: Sequence[str]

    def __post_init__(self) -> None:
        n = len(self.chunks)
        if self.vectors.shape[0] != n or len(self.keyword_texts) != n or len(self.view_offsets) != n + 1:
            raise ValueError(f"NewChunks: {n} chunks, {self.vectors.shape[0]} vectors, "
                             f"{len(self.keyword_texts)} keyword texts, {len(self.view_offsets)} view offsets")
        if int(self.view_offsets[-1]) != len(self.views):
            raise ValueError(f"NewChunks: view offsets end at {int(self.view_offsets[-1])}, "
                             f"there are {len(self.views)} views")


class Store(Protocol):
    """Where an index keeps chunk vectors, sentence views and its keyword index."""

    #: ``"local"`` or ``"milvus"`` (see rag.vocabulary.STORES).
    kind: str

    def __len__(self) -> int:
        """Number of chunks."""

    def chunks(self) -> list[Chunk]:
        """Every chunk, in index order."""

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        """The chunk with this id, or None."""

    def dense_candidates(self, query_vector: np.ndarray, depth: int) -> list[Scored]:
        """The ``depth`` chunks closest to the query: each chunk's score is the best
        cosine of its own vector and its sentence views."""

    def dense_scores(self, chunk_ids: Sequence[str], query_vector: np.ndarray) -> dict[str, float]:
        """The exact dense score (as in ``dense_candidates``) of each given chunk."""

    def keyword_candidates(self, query: str, depth: int) -> list[Scored]:
        """The ``depth`` best chunks by BM25 with a positive score."""

    def keyword_scores(self, chunk_ids: Sequence[str], query: str) -> dict[str, float]:
        """The BM25 score of each given chunk (0 where no query word occurs)."""

    def updated(self, remove_docs: Iterable[str], new: NewChunks | None) -> "Store":
        """A new snapshot: the chunks of ``remove_docs`` gone, ``new`` added.
        This snapshot stays valid and unchanged."""

    def save(self, directory: Path) -> dict[str, Any]:
        """Write what the store keeps in the index directory (a fresh temporary one)
        and return its manifest section (merged into the manifest's ``store``)."""

    def commit(self) -> None:
        """Called once the manifest naming this snapshot is in place: drop what only
        older snapshots used (nothing for the local store)."""

    def describe(self) -> dict[str, Any]:
        """A few facts for summaries and benchmarks (kind, dense index kind, counts)."""
