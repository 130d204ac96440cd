"""``rag eval``: score retrieval and answers on a Q&A set; validate a set; gate on a baseline."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

from rag.commands.common import add_index_argument


def _csv(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score retrieval, answers, citations and abstention on a Q&A set",
        description=(
            "Run the pipeline over a Q&A file (eval/qa.jsonl by default) and report retrieval "
            "(R@k, MRR, nDCG per mode), answer (key facts, char F1, citations, grounding, "
            "abstention) and latency metrics. Builds the index of --docs when it is missing."),
    )
    parser.add_argument("--qa", metavar="FILES", type=_csv, default=None,
                        help="comma-separated Q&A files in the eval schema, scored as one set (default: eval/qa.jsonl)")
    parser.add_argument("--generator", metavar="NAMES", type=_csv, default=["extractive"],
                        help="comma-separated answer generators (default: extractive)")
    parser.add_argument("--modes", metavar="MODES", type=_csv, default=["dense", "bm25", "hybrid"],
                        help="comma-separated retrieval modes (default: dense,bm25,hybrid)")
    parser.add_argument("--out", metavar="DIR", default="eval/out",
                        help="where metrics.json, report.md and chart.png go (default: eval/out)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the metrics JSON here")
    parser.add_argument("--docs", metavar="DIR", default=None,
                        help="documents the Q&A set refers to, indexed when needed (default: seeds/)")
    add_index_argument(parser)
    parser.add_argument("--check", action="store_true",
                        help="fail (exit 1) when a headline metric falls below the baseline by more than its tolerance")
    parser.add_argument("--baseline", metavar="FILE", default=None,
                        help="baseline for --check / --write-baseline (default: eval/baseline.json)")
    parser.add_argument("--write-baseline", action="store_true",
                        help="store this run's headline metrics as the new baseline")
    parser.add_argument("--validate", metavar="FILE", default=None,
                        help="only check a Q&A file against the schema and the documents, listing every violation")
    parser.add_argument("--no-minimums", action="store_true",
                        help="with --validate: skip the set-size minimums (for small or partial sets)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from eval.qa import DEFAULT_DOCS_DIR, DEFAULT_QA_FILE

    docs = Path(args.docs) if args.docs else DEFAULT_DOCS_DIR
    if args.validate:
        return _validate(Path(args.validate), docs, not args.no_minimums)
    return _evaluate(args, [Path(q) for q in args.qa] if args.qa else [DEFAULT_QA_FILE], docs)


def _validate(path: Path, docs: Path, minimums: bool) -> int:
    from eval.validate import DEFAULT_MINIMUMS, statistics, validate_file

    violations = validate_file(path, docs, DEFAULT_MINIMUMS if minimums else None)
    for violation in violations:
        print(violation)
    if violations:
        print(f"{path}: {len(violations)} violation(s)", file=sys.stderr)
        return 1
    stats = statistics(path)
    print(f"{path}: OK, {stats['questions']} questions; per type {stats['per_type']}; "
          f"per source {stats['per_source']}; no run of more than 6 shared characters: "
          f"{stats['no_long_overlap']} ({stats['no_long_overlap_share']:.0%} of answerable)")
    return 0


def _evaluate(args: argparse.Namespace, qa_paths: list[Path], docs: Path) -> int:
    from eval import gate
    from eval.qa import DEFAULT_DOCS_DIR
    from eval.report import console_table, write_outputs
    from eval.scorer import RagEvaluator
    from rag import Retriever, config

    options = {"modes": args.modes, "generators": args.generator, "show_progress": not args.no_progress}
    if args.index is None and docs.resolve() != DEFAULT_DOCS_DIR.resolve() and not os.environ.get("RAG_INDEX"):
        # Another corpus gets its own index, never the default one of seeds/.
        index_dir = eval_index_dir(docs)
    else:
        index_dir = config.index_dir(args.index)
    text_only = all(p.suffix.lower() in (".txt", ".md") for p in docs.rglob("*") if p.is_file())
    retriever = Retriever.load_or_build(index_dir, [docs])
    if text_only:
        evaluator = RagEvaluator.from_files(qa_paths, docs, **options)
    else:  # PDF, Word, HTML, scans: the gold spans are found in the text the index extracted
        evaluator = RagEvaluator.from_index(qa_paths, retriever, **options)
    evaluator.check_index(retriever)
    result = evaluator(retriever)
    result["meta"]["qa_file"] = ",".join(p.name for p in qa_paths)
    settings = retriever.settings
    result["meta"]["index"] = {"dir": str(index_dir), "store": settings.store, "model": settings.model,
                               "collection": settings.collection}
    paths = write_outputs(result, args.out, args.json)
    print(console_table(result))
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    baseline_path = Path(args.baseline) if args.baseline else gate.DEFAULT_BASELINE
    if args.write_baseline:
        baseline_path.write_text(json.dumps(gate.make_baseline(result), ensure_ascii=False, indent=2) + "\n",
                                 encoding="utf-8")
        print(f"baseline written to {baseline_path}")
    if args.check:
        problems = gate.check(result, gate.load_baseline(baseline_path))
        for problem in problems:
            print(f"REGRESSION {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"quality gate passed ({baseline_path})")
    return 0


def eval_index_dir(docs: Path) -> Path:
    """Where ``rag eval --docs DOCS`` keeps the index of a corpus other than seeds/ (``.rag/eval/NAME-HASH``)."""
    digest = hashlib.sha256(str(docs.resolve()).encode("utf-8")).hexdigest()[:8]
    return Path(".rag") / "eval" / f"{docs.resolve().name}-{digest}"
