"""Run the benchmark suite: ``python -m bench.run [--quick] [--out DIR] [--only a,b]``.

Prints a table, writes ``results.json`` and ``results.md`` (the README table) into
``--out`` (default ``bench/out``). A section that cannot run here (a component not
installed or not built yet) is recorded under ``skipped`` with the reason, and the
others still run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

SECTIONS = ["scale", "index", "query", "memory", "llm", "formats", "collection", "gpu"]
#: Run only when named in --only: builds of tens of thousands of articles (bench/collection.py)
#: and embedding on a GPU (bench/gpu.py).
OPT_IN = {"collection", "gpu"}
DEFAULT_OUT = Path(__file__).resolve().parent / "out"


class SectionSkipped(Exception):
    """A section cannot run on this installation (reason in the message)."""


def _section_runner(name: str) -> Callable[[bool, Callable[[str], None]], dict[str, Any]]:
    """Import a section lazily, so ``--only scale`` never loads torch."""
    if name == "scale":
        from bench import scale

        return lambda quick, log: scale.run(scale.ScaleConfig.quick() if quick else None, log)
    if name == "index":
        from bench import pipeline

        return pipeline.run_index
    if name == "query":
        from bench import pipeline

        return pipeline.run_query
    if name == "memory":
        from bench import memory

        return memory.run
    if name == "llm":
        from bench import llm

        return llm.run
    if name == "formats":
        from bench import formats

        return formats.run
    if name == "collection":
        from bench import collection

        return collection.run_section
    if name == "gpu":
        from bench import gpu

        return gpu.run_section
    raise ValueError(name)


def parse_sections(value: str | None) -> list[str]:
    """``"scale,query"`` -> ["scale", "query"], validated against SECTIONS."""
    if not value:
        return [n for n in SECTIONS if n not in OPT_IN]
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return names


def run_suite(sections: list[str], quick: bool, out: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the chosen sections; write results.json and results.md into ``out``."""
    from bench import machine, report

    started = time.time()
    results: dict[str, Any] = {"machine": machine.describe(), "quick": quick,
                               "sections": sections, "skipped": {}}
    for name in sections:
        log(f"== {name}")
        t0 = time.perf_counter()
        try:
            results[name] = _section_runner(name)(quick, log)
        except SectionSkipped as exc:
            results["skipped"][name] = str(exc)
            log(f"   skipped: {exc}")
        except Exception as exc:  # a broken section must not lose the others' figures
            results["skipped"][name] = f"error: {type(exc).__name__}: {exc}"
            log(traceback.format_exc())
        results.setdefault("section_seconds", {})[name] = time.perf_counter() - t0
    results["machine"]["load_avg_end"] = machine.describe()["load_avg"]
    _carry_over(results, out / "results.json")
    results["wall_seconds"] = time.time() - started
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))
    markdown = report.markdown(results)
    (out / "results.md").write_text(markdown, encoding="utf-8")
    log("")
    log(report.text_table(results))
    log(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return results


def _carry_over(results: dict[str, Any], previous_path: Path) -> None:
    """Keep sections of an earlier run in the same --out that this run did not redo.

    So ``--only query`` refreshes one section without losing the (slow) scale figures;
    ``carried_over`` lists what came from the earlier file; each such section keeps the
    machine and load it was measured on (``measured_on``), which the report prints with it.
    """
    try:
        previous = json.loads(previous_path.read_text())
    except (OSError, ValueError):
        return
    if previous.get("quick") != results["quick"]:
        return
    carried = []
    for name in SECTIONS:
        if name not in results["sections"] and name in previous:
            section = previous[name]
            if isinstance(section, dict):  # where it was measured: another run, maybe another machine
                section.setdefault("measured_on", previous.get("machine"))
            results[name] = section
            carried.append(name)
    if "collection" in results["sections"] and "collection" in results and "collection" in previous:
        from bench import collection  # builds are long: keep the earlier runs' builds it did not redo

        results["collection"] = collection.merge(previous["collection"], results["collection"])
    if carried:
        results["carried_over"] = carried
        results["sections"] = [n for n in SECTIONS if n in results]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``python -m bench.run`` and ``rag bench`` (see rag.commands.bench)."""
    from rag.commands import bench as command

    command.add_arguments(parser)


def apply_overrides(args: argparse.Namespace) -> None:
    """--repeats/--queries reach the sections through the environment."""
    if getattr(args, "repeats", None):
        os.environ["RAG_BENCH_REPEATS"] = str(max(1, args.repeats))
    if getattr(args, "queries", None):
        os.environ["RAG_BENCH_QUERIES"] = str(max(1, args.queries))
    if getattr(args, "collection", None):
        os.environ["RAG_BENCH_COLLECTION"] = str(Path(args.collection).resolve())
    if getattr(args, "limit", None):
        os.environ["RAG_BENCH_COLLECTION_LIMIT"] = args.limit
    if getattr(args, "collection_dense", False):
        os.environ["RAG_BENCH_COLLECTION_DENSE"] = "1"
    if getattr(args, "random_weights", None):
        os.environ["RAG_BENCH_RANDOM_WEIGHTS"] = str(Path(args.random_weights).resolve())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        sections = parse_sections(args.only)
    except ValueError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    apply_overrides(args)
    run_suite(sections, args.quick, Path(args.out) if args.out else DEFAULT_OUT)
    return 0


if __name__ == "__main__":
    from bench import run as this_module  # as bench.run, so sections raise the SectionSkipped caught here

    sys.exit(this_module.main())
