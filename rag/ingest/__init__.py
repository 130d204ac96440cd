"""Ingestion, as a pipeline: files -> documents -> cleaned lines -> headings -> chunks.

Stages, one module each:

* ``loaders``   which loader reads which suffix (a small registry; ``Loader`` protocol)
* ``plaintext`` ``pdf`` ``ocr`` ``image`` ``docx`` ``html`` ``tables``: one loader per format,
  each turning a file into the same ``documents.Document`` (text, marks, pages)
* ``documents`` the document model; finding files and loading them, problems by name
* ``cleaning``  provenance-keeping line cleaning, boilerplate, re-joining broken lines
* ``headings``  the heading tree (marks from the format first, then Chinese patterns)
* ``chunking``  heading-aware chunks with offsets into the document text
* ``pipeline``  ``ingest(paths)``: all of the above, with a per-file report

The one entry point the retriever, ``rag chunks`` and uploads use::

    from rag.ingest import ingest
    result = ingest(["seeds/"])            # IngestResult
    result.chunks, result.problems, result.reports

An index build reads a collection as a stream instead: ``for batch in IngestStream(paths)``
(batches of whole documents, each released once yielded; same chunks and ids).
"""
from __future__ import annotations

from rag.ingest.pipeline import FileReport, IngestResult, IngestStream, chunk_document, ingest

__all__ = ["FileReport", "IngestResult", "IngestStream", "chunk_document", "ingest"]
