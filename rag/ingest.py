"""Ingestion: files -> documents -> cleaned, heading-aware chunks.

This is the one entry point the retriever, ``rag chunks`` and uploads use::

    from rag.ingest import ingest, chunk_document
    result = ingest(["seeds/"])            # IngestResult
    result.chunks, result.problems, result.headings["002_….txt"]
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from rag.chunking import ChunkSettings, assign_ids, chunk_sections
from rag.documents import Document, Problem, load_documents
from rag.headings import Heading, Structure, analyse
from rag.types import Chunk


@dataclass
class IngestResult:
    """Everything ingestion produced for a set of paths.

    ``headings`` maps a document name to the roots of its heading tree;
    ``structures`` holds the full analysis (lines, blocks, sections, dropped
    boilerplate lines) for callers that need more.
    """

    documents: list[Document] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    headings: dict[str, list[Heading]] = field(default_factory=dict)
    structures: dict[str, Structure] = field(default_factory=dict)

    def chunks_of(self, doc: str) -> list[Chunk]:
        return [chunk for chunk in self.chunks if chunk.doc == doc]

    def document(self, name: str) -> Document:
        for document in self.documents:
            if document.name == name:
                return document
        raise KeyError(name)


def chunk_document(document: Document, settings: ChunkSettings | None = None) -> list[Chunk]:
    """Chunks of one document (for instance a single uploaded file)."""
    return chunk_sections(document.name, analyse(document).sections, settings)


def ingest(paths: list[str | os.PathLike] | str | os.PathLike,
           settings: ChunkSettings | None = None) -> IngestResult:
    """Load, clean and chunk every .txt/.md file under ``paths``.

    Unreadable or empty files end up in ``problems`` (with a message naming the
    file) and do not stop the run; a path that does not exist raises
    ``RagError``. Chunk ids are unique across the result.
    """
    settings = settings or ChunkSettings()
    documents, problems = load_documents(paths)
    result = IngestResult(documents=documents, problems=problems)
    for document in documents:
        structure = analyse(document)
        result.structures[document.name] = structure
        result.headings[document.name] = structure.headings
        result.chunks.extend(chunk_sections(document.name, structure.sections, settings))
    assign_ids(result.chunks)
    return result
