"""``rag index PATH...`` builds an index; ``rag search "问题"`` queries it."""
from __future__ import annotations

import argparse
import sys

from rag.commands.common import TerminalWriter, add_index_argument, prepare_judge, terminal_json
from rag.vocabulary import DENSE_KINDS, MODES, STORES, VIEW_HEADERS, VIEW_METHODS

SNIPPET_CHARS = 80
#: Per-document lines printed after a build; a collection of 60,000 records gets a count.
MAX_FILE_LINES = 50


def register(subparsers) -> None:
    index = subparsers.add_parser(
        "index",
        help="build the search index of documents (files or folders: .txt .md .pdf .docx .html, images, ...)",
        description="Read, chunk, embed and index documents. Unchanged passages are taken from "
                    "the embedding cache, so rebuilding is fast. The index is replaced atomically.",
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="document files or folders")
    add_index_argument(index)
    index.add_argument("--model", default=None,
                       help="embedding model: sentence-transformers name or local path "
                            "(default: $RAG_MODEL or intfloat/multilingual-e5-small)")
    index.add_argument("--max-chars", type=int, default=None, metavar="N",
                       help="longest chunk in characters (default: the chunker's, 400); alone it "
                            "also caps documents without headings")
    index.add_argument("--plain-max-chars", type=int, default=None, metavar="N",
                       help="longest chunk of a document without headings, such as a news article "
                            "(default 800)")
    index.add_argument("--dense", choices=DENSE_KINDS, default="auto",
                       help="dense index: auto (default: exact flat below 100,000 chunk and view vectors, "
                            "ivf from there), flat, ivf (8-bit codes in inverted lists, candidates re-scored "
                            "exactly; recall@10 0.99 on real news vectors) or hnsw")
    index.add_argument("--no-sentence-views", action="store_true",
                       help="embed whole chunks only, not also each sentence (embeds about 2x faster; "
                            "dense search finds answers buried in long chunks less often)")
    index.add_argument("--view-method", choices=VIEW_METHODS, default=None,
                       help="how sentence views are embedded: separate (default: each sentence embedded on "
                            "its own; best retrieval) or late (pooled from the chunk's own forward pass: "
                            "about 2x faster cold builds, hybrid R@1 0.87 instead of 0.91 on eval)")
    index.add_argument("--view-header", choices=VIEW_HEADERS, default=None,
                       help="what each sentence view carries before its sentence: path (the chunk's whole "
                            "heading path), title (the document title, its first heading) or none; "
                            "default: see the README's sentence-views table")
    index.add_argument("--store", choices=STORES, default=None,
                       help="where vectors and keywords live: local (default: FAISS + BM25 files in the "
                            "index folder) or milvus (a Milvus collection; see --milvus-uri)")
    index.add_argument("--milvus-uri", default=None, metavar="URI",
                       help="with --store milvus: a file path (Milvus Lite, embedded) or http(s)://host:port "
                            "(a Milvus server or cluster; credentials in $RAG_MILVUS_TOKEN); "
                            "default $RAG_MILVUS_URI")
    index.add_argument("--collection", default=None, metavar="NAME",
                       help="with --store milvus: the collection (default: rag_ plus the index folder's "
                            "name); one collection per knowledge base")
    index.add_argument("--one-doc-per-line", action="store_true",
                       help="read .txt files one document per line (a news dump such as news-63k): each "
                            "line is the document FILE:LINE, or FILE:ID when it starts with ID and a tab. "
                            ".jsonl files ({\"text\", \"id\", \"title\", \"metadata\"} per line) need no flag")
    index.add_argument("--no-cache", action="store_true", help="embed everything, ignoring the embedding cache")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.set_defaults(func=run_index)

    search = subparsers.add_parser(
        "search",
        help="show the passages most relevant to a question (no answer generation)",
        description="Retrieve the best matching passages from the index.",
    )
    search.add_argument("query", help="question or keywords, e.g. \"12351热线什么时候全面建成？\"")
    search.add_argument("--k", type=int, default=5, help="number of passages (default 5)")
    search.add_argument("--mode", choices=MODES, default="hybrid",
                        help="hybrid (default): embeddings and keywords fused; dense; bm25")
    search.add_argument("--json", action="store_true", help="print the hits as JSON")
    add_index_argument(search)
    search.set_defaults(func=run_search)


def run_index(args: argparse.Namespace) -> int:
    from rag import config
    from rag.memory import limit_memory_growth

    limit_memory_growth()  # a build of a big collection embeds for hours
    from rag.retrieval.retriever import Retriever

    index_dir = config.index_dir(args.index)
    settings = {"dense": args.dense, "show_progress": not args.quiet}
    if args.model:
        settings["model"] = args.model
    if args.max_chars is not None:
        settings["max_chars"] = args.max_chars
    if args.plain_max_chars is not None:
        settings["plain_max_chars"] = args.plain_max_chars
    if args.no_cache:
        settings["cache"] = None
    if args.no_sentence_views:
        settings["views"] = False
    if args.view_method:
        settings["view_method"] = args.view_method
    if args.view_header:
        settings["view_header"] = args.view_header
    if args.store == "milvus" or (args.store is None and (args.milvus_uri or args.collection)):
        settings.update(store="milvus", milvus_uri=args.milvus_uri or config.MILVUS_URI or None,
                        collection=args.collection)
    from rag.ingest.records import one_doc_per_line

    with one_doc_per_line(args.one_doc_per_line):
        retriever = Retriever.build(args.paths, index_dir, **settings)
    s = retriever.build_summary
    print(f"indexed {s.documents} documents, {s.chunks} chunks into {index_dir} "
          f"in {s.seconds:.1f} s")
    print(f"  embedded {s.embedded} passages, {s.cached} from the cache; "
          f"{s.views} sentence views ({s.views_embedded} embedded); "
          f"model {retriever.model_name}; dense index {s.dense_kind}")
    if s.store == "milvus":
        print(f"  store: Milvus collection {retriever.settings.collection!r} at {retriever.settings.store_uri}")
    for n, report in enumerate(s.files):
        if n < MAX_FILE_LINES or report.notes:
            print(f"  {report.line()}")
        for note in report.notes:
            print(f"    note: {note}")
    if len(s.files) > MAX_FILE_LINES:
        print(f"  ... and {len(s.files) - MAX_FILE_LINES} more documents")
    if s.problems:
        print(f"not indexed: {len(s.problems)} file(s)", file=sys.stderr)
    for problem in s.problems:
        print(f"  skipped: {problem}", file=sys.stderr)
    prepare_judge(retriever.settings.embedding_engine)
    return 0



def run_search(args: argparse.Namespace) -> int:
    from rag.retrieval.retriever import Retriever

    from rag.answering.assistant import check_k

    check_k(args.k)
    retriever = Retriever.load(args.index)
    hits, notices = retriever.search_with_notices(args.query, k=args.k, mode=args.mode)
    for notice in notices:
        print(f"note: {notice}", file=sys.stderr)
    if args.json:
        print(terminal_json([h.to_dict() for h in hits]))
        return 0
    out = TerminalWriter(sys.stdout)  # passages come from documents: no control sequences
    if not hits:
        print("no matching passages")
        return 0
    for rank, hit in enumerate(hits, 1):
        heading = " > ".join(hit.heading_path) or "(no heading)"
        snippet = " ".join(hit.text.split())
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[:SNIPPET_CHARS] + "…"
        page = f" · p. {hit.page}" if hit.page is not None else ""
        print(f"{rank}. [{hit.score:.3f}] {hit.doc}{page} · {heading}  ({hit.start}-{hit.end})", file=out)
        print(f"   {snippet}", file=out)
    return 0
