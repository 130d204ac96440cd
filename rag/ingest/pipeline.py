"""``ingest(paths)``: load every file, clean it, find its headings and chunk it."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterator

from rag.ingest.chunking import ChunkSettings, assign_ids, chunk_sections
from rag.ingest.documents import Document, Problem, collect_paths, iter_or_note, load_documents
from rag.ingest.headings import Heading, Structure, analyse
from rag.types import Chunk


@dataclass
class FileReport:
    """What ingestion made of one document: the per-file line of ``rag chunks``/``rag index``."""

    doc: str
    kind: str
    pages: int
    ocr_pages: int
    headings: int
    chunks: int
    chars: int
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """``name: pdf, 12 pages (3 OCR), 8 headings, 40 chunks``."""
        parts = [self.kind]
        if self.pages:
            pages = f"{self.pages} page{'s' if self.pages != 1 else ''}"
            if self.ocr_pages:
                pages += f" ({self.ocr_pages} OCR)"
            parts.append(pages)
        parts += [f"{self.headings} headings", f"{self.chunks} chunks"]
        return f"{self.doc}: {', '.join(parts)}"


@dataclass
class IngestResult:
    """Everything ingestion produced for a set of paths.

    ``headings`` maps a document name to the roots of its heading tree;
    ``structures`` holds the full analysis (lines, blocks, sections, dropped
    boilerplate lines) for callers that need more; ``reports`` one summary per
    document, in document order.
    """

    documents: list[Document] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    headings: dict[str, list[Heading]] = field(default_factory=dict)
    structures: dict[str, Structure] = field(default_factory=dict)
    reports: list[FileReport] = field(default_factory=list)

    def chunks_of(self, doc: str) -> list[Chunk]:
        return [chunk for chunk in self.chunks if chunk.doc == doc]

    def document(self, name: str) -> Document:
        for document in self.documents:
            if document.name == name:
                return document
        raise KeyError(name)


def chunk_document(document: Document, settings: ChunkSettings | None = None) -> list[Chunk]:
    """Chunks of one document (for instance a single uploaded file)."""
    return _chunks(document, analyse(document), settings)


def _chunks(document: Document, structure: Structure, settings: ChunkSettings | None) -> list[Chunk]:
    chunks = chunk_sections(document.name, structure.sections, settings)
    for chunk in chunks:
        chunk.page = document.page_at(chunk.start)
    return chunks


def report(document: Document, structure: Structure, chunks: list[Chunk]) -> FileReport:
    return FileReport(doc=document.name, kind=document.kind, pages=document.pages,
                      ocr_pages=len(document.ocr_pages), headings=len(structure.all_headings()),
                      chunks=len(chunks), chars=len(document.text), notes=list(document.notes))


def ingest(paths: list[str | os.PathLike] | str | os.PathLike,
           settings: ChunkSettings | None = None, progress: bool = False,
           keep_structures: bool = True) -> IngestResult:
    """Load, clean and chunk every supported file under ``paths``.

    Unsupported, unreadable, encrypted, corrupt or empty files end up in
    ``problems`` (with a message naming the file and why) and do not stop the
    run; a path that does not exist raises ``RagError``. Chunk ids are unique
    across the result. ``progress`` shows per-page bars while long files load.
    ``keep_structures=False`` drops each document's line/block analysis once it is
    chunked (``structures``/``headings`` stay empty): what an index build does, since
    for a collection of 60,000 articles those analyses outweigh the text.
    """
    settings = settings or ChunkSettings()
    documents, problems = load_documents(paths, progress=progress)
    result = IngestResult(documents=documents, problems=problems)
    from tqdm.auto import tqdm

    # a bar (rate, ETA) only for collections: a few files chunk in a blink
    for document in tqdm(documents, desc="chunking", unit="doc", leave=False,
                         disable=not progress or len(documents) < 500):
        structure = analyse(document)
        chunks = _chunks(document, structure, settings)
        if keep_structures:
            result.structures[document.name] = structure
            result.headings[document.name] = structure.headings
        result.chunks.extend(chunks)
        result.reports.append(report(document, structure, chunks))
    assign_ids(result.chunks)
    return result


class IngestStream:
    """``ingest`` in batches, for collections too big to hold at once (an index build).

    Iterating yields ``IngestResult`` batches (documents, their chunks and reports; no
    structures) of whole documents, each batch closed once it holds ``batch_chunks``
    chunks or more. Files are read one at a time, and a file of one record per line
    (``--one-doc-per-line`` text, JSON Lines) record by record, so memory holds one
    batch of documents and chunks (plus one file's documents for the other formats
    that make several documents of a file). Chunk ids are exactly those ``ingest``
    gives the same paths. ``problems`` fills up as files are read; ``documents_seen``
    counts the documents read so far, and ``documents_expected`` (set when iteration
    starts, with ``progress``) how many there will be, for a progress bar's total and ETA.
    """

    def __init__(self, paths: list[str | os.PathLike] | str | os.PathLike,
                 settings: ChunkSettings | None = None, progress: bool = False, batch_chunks: int = 4096,
                 on_chunks: Callable[[list[Chunk]], None] | None = None):
        self.on_chunks = on_chunks  # called with each document's chunks as soon as it is chunked
        self.settings = settings or ChunkSettings()
        self.progress = progress
        self.batch_chunks = max(1, int(batch_chunks))
        self._pairs, self.problems = collect_paths(paths)
        self.documents_seen = 0
        self.documents_expected = 0

    def expected_documents(self) -> int:
        """About how many documents the files hold, cheaply: one per file, and per file of one
        record per line (JSON Lines; ``.txt`` read one document per line) its non-blank lines,
        counted without decoding (news-63k's 123 MB: 0.6-1.0 s on the busy 2-core machine).
        An estimate: a skipped record or a file that fails still counts. Call it where the
        files will be read (inside ``one_doc_per_line()`` when that applies)."""
        from rag.ingest.loaders import loader_for

        total = 0
        for path, _ in self._pairs:
            loader = loader_for(path)
            if loader is None or not hasattr(loader, "iter_load"):
                total += 1
                continue
            try:
                with open(path, "rb") as fh:
                    total += max(1, sum(1 for line in fh if line.strip()))
            except OSError:
                total += 1
        return total

    def __iter__(self) -> Iterator[IngestResult]:
        from rag.ingest.loaders import show_progress

        seen_ids: set[str] = set()
        batch = IngestResult()
        self.documents_expected = self.expected_documents() if self.progress else 0  # only a bar needs it
        with show_progress(self.progress):
            for path, name in self._pairs:
                first: tuple[Document, FileReport] | None = None
                for document in iter_or_note(path, name, self.problems):
                    self.documents_seen += 1
                    structure = analyse(document)
                    chunks = _chunks(document, structure, self.settings)
                    assign_ids(chunks, seen_ids)
                    if self.on_chunks is not None:
                        self.on_chunks(chunks)
                    batch.documents.append(document)
                    batch.chunks.extend(chunks)
                    batch.reports.append(report(document, structure, chunks))
                    first = first or (document, batch.reports[-1])
                    del structure, document
                    if len(batch.chunks) >= self.batch_chunks:
                        yield batch
                        batch = IngestResult()
                if first is not None:  # a record file notes its skipped lines once it is read
                    first[1].notes = list(first[0].notes)
        if batch.documents:
            yield batch
