"""``rag chunks PATH... [--jsonl] [--max-chars N]``: show how documents are chunked."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import TextIO

EXAMPLES_PER_DOC = 4


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chunks",
        help="load, clean and chunk documents; print a summary or the chunks as JSON lines",
        description=(
            "Load documents (.txt .md .pdf .docx .html .csv .xlsx and images; folders are searched "
            "recursively; scans are read by OCR), detect headings and cut "
            "the text into chunks. Prints a summary per document (headings with examples, "
            "chunk count and sizes, problems), or with --jsonl one JSON object per chunk "
            "with the fields id, doc, heading_path, text, start, end, page (None without pages)."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to read")
    parser.add_argument("--jsonl", action="store_true", help="print one JSON object per chunk")
    parser.add_argument("--max-chars", type=int, default=None, metavar="N",
                        help="largest chunk, in characters of cleaned text (default 400; 800 for a "
                             "document without headings)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag.ingest.chunking import ChunkSettings
    from rag.errors import RagError
    from rag.ingest import ingest

    try:
        settings = (ChunkSettings() if args.max_chars is None
                    else ChunkSettings(max_chars=args.max_chars, plain_max_chars=None))
    except ValueError as exc:
        raise RagError(f"--max-chars: {exc}") from exc
    result = ingest(args.paths, settings, progress=not args.jsonl)
    if args.jsonl:
        try:
            for chunk in result.chunks:
                print(json.dumps(chunk.to_dict(), ensure_ascii=False))
            sys.stdout.flush()
        except BrokenPipeError:  # `rag chunks … --jsonl | head`
            sys.stdout = open(os.devnull, "w")
            return 0
        for problem in result.problems:
            print(f"skipped: {problem.message}", file=sys.stderr)
    else:
        print_summary(result, sys.stdout)
    return 0 if result.documents or not result.problems else 1


def size_stats(sizes: list[int]) -> dict[str, int]:
    """min / median / p90 / max of chunk sizes (all 0 for no chunks)."""
    if not sizes:
        return {"min": 0, "median": 0, "p90": 0, "max": 0}
    ordered = sorted(sizes)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"min": ordered[0], "median": int(statistics.median(ordered)), "p90": p90, "max": ordered[-1]}


def _format_stats(sizes: list[int]) -> str:
    s = size_stats(sizes)
    return f"chars min {s['min']} / median {s['median']} / p90 {s['p90']} / max {s['max']}"


def print_summary(result, out: TextIO) -> None:
    """Readable per-document summary of an ``IngestResult``."""
    print(f"{len(result.documents)} document(s), {len(result.chunks)} chunk(s), "
          f"{len(result.problems)} problem(s)", file=out)
    for report in result.reports:
        print(f"  {report.line()}", file=out)
    for document in result.documents:
        structure = result.structures[document.name]
        headings = structure.all_headings()
        chunks = result.chunks_of(document.name)
        kinds: dict[str, int] = {}
        for heading in headings:
            kinds[heading.kind] = kinds.get(heading.kind, 0) + 1
        kind_text = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "none"
        pages = f", {document.pages} pages" if document.pages else ""
        ocr = f" ({len(document.ocr_pages)} OCR)" if document.ocr_pages else ""
        print(f"\n{document.name}  ({document.kind}{pages}{ocr}, {len(document.text)} chars, "
              f"{document.encoding})", file=out)
        for note in document.notes:
            print(f"  note: {note}", file=out)
        print(f"  headings: {len(headings)} ({kind_text}); top level: {len(structure.headings)}", file=out)
        for heading in headings[:EXAMPLES_PER_DOC]:
            print(f"    {'  ' * (heading.level - 1)}L{heading.line} [{heading.kind}] {heading.title[:40]}", file=out)
        if len(headings) > EXAMPLES_PER_DOC:
            print(f"    … {len(headings) - EXAMPLES_PER_DOC} more", file=out)
        if structure.toc:
            print(f"  table of contents: chars {structure.toc[0]}-{structure.toc[1]}", file=out)
        if structure.dropped:
            print(f"  repeated boilerplate lines dropped: {len(structure.dropped)}", file=out)
        print(f"  chunks: {len(chunks)}; {_format_stats([len(c.text) for c in chunks])}", file=out)
    if result.chunks:
        print(f"\nall chunks: {_format_stats([len(c.text) for c in result.chunks])}", file=out)
    for problem in result.problems:
        print(f"not indexed: {problem.message}", file=out)
