"""``rag bench``: run the benchmark suite (same as ``python -m bench.run``)."""
from __future__ import annotations

import argparse
from pathlib import Path


def _import_bench_run():
    try:
        from bench import run as bench_run
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench", "bench.run"):
            raise
        from rag.errors import RagError

        raise RagError("the benchmark suite (bench/) is not installed; install the project "
                       "from a source checkout (pip install -e .)") from exc
    return bench_run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark speed, memory and scaling; print a table, write JSON and Markdown",
        description="Benchmark index build, query latency per stage, memory, the local LLM "
                    "and how FAISS/BM25 scale to 1M chunks. Sections: scale, index, query, "
                    "memory, llm, formats; collection (news-63k builds) and gpu (embedding on a "
                    "CUDA GPU) only when named in --only.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``rag bench`` and ``python -m bench.run`` (defined here, where the CLI can
    import them without the bench/ folder installed)."""
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few repetitions: runs in seconds (used by CI)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where results.json and results.md go (default: bench/out)")
    parser.add_argument("--only", metavar="LIST", default=None,
                        help="comma-separated sections: scale,index,query,memory,llm,formats (default: all), "
                             "collection, gpu (only when named)")
    parser.add_argument("--repeats", type=int, default=None, metavar="N",
                        help="runs per build/pass figure (default 3; 1 with --quick)")
    parser.add_argument("--queries", type=int, default=None, metavar="N",
                        help="questions per latency/memory measurement (default 200)")
    parser.add_argument("--collection", metavar="FILE", default=None,
                        help="collection and gpu sections: a one-document-per-line file, .xz read as is "
                             "(default ../shared/corpora/news-63k.txt.xz)")
    parser.add_argument("--limit", metavar="N[,N...]", default=None,
                        help="collection and gpu sections: build the first N articles (all: the whole file; "
                             "a list builds each; default 10000)")
    parser.add_argument("--collection-dense", action="store_true",
                        help="collection section: also the real dense + BM25 `rag index` of the slice, then "
                             "search latency and `rag serve` RSS on it (about half an hour per 10,000 "
                             "articles on 2 cores)")
    parser.add_argument("--random-weights", metavar="DIR", default=None,
                        help="gpu section: embed with randomly initialised weights of the shape of the model "
                             "folder DIR (configuration + tokenizer; same speed, for a machine the weights "
                             "cannot be copied to)")


def run(args: argparse.Namespace) -> int:
    from rag.errors import RagError

    bench_run = _import_bench_run()
    try:
        sections = bench_run.parse_sections(args.only)
    except ValueError as exc:
        raise RagError(str(exc)) from exc
    bench_run.apply_overrides(args)
    out = Path(args.out) if args.out else bench_run.DEFAULT_OUT
    bench_run.run_suite(sections, args.quick, out)
    return 0
