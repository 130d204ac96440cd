"""Calibrate the abstention policy on several Q&A sets together, and check it across sets.

For every question of every set the evidence that ``rag.answering.abstention``
decides on is gathered once (retrieval, extractive analysis); then each pair of
coverage cut-offs of ``AbstentionPolicy`` on a grid is scored. The chosen pair
is the one with the best abstention recall whose false-abstention rate stays
within the limit on *every* set it is fitted on (so one set cannot buy recall
with the other's wrong abstentions). The cross-set table fits on each set alone
and measures on the others: a cut-off that only works on the set it was fitted
on shows there.

    python -m eval.calibrate --set eval/qa.jsonl seeds .rag/index \\
                             --set ../shared/crud-dev/qa.jsonl,eval/crud_unanswerable.jsonl DOCS INDEX
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from eval.qa import load_qa

#: Grid of (min_coverage, min_coverage_without_attribute) tried.
COVERAGE_GRID = [round(0.05 * i, 2) for i in range(0, 21)]
MAX_FALSE_ABSTENTION = 0.03


@dataclass
class Case:
    """One question of a set: whether it is answerable and the evidence of each of its parts."""

    id: str
    answerable: bool
    evidence: list[Any]


def gather(items, retriever, k: int = 5, mode: str = "hybrid") -> list[Case]:
    """The evidence the assistant would decide on, for every question (same steps as ``Assistant.stream``)."""
    from rag import Assistant
    from rag.answering.abstention import gather_evidence
    from rag.answering.lexical import question_parts

    assistant = Assistant(retriever, generator="extractive", k=k, mode=mode)
    cases = []
    for item in items:
        hits = retriever.search(item.question, k=k, mode=mode)
        questions = question_parts(item.question)
        if len(questions) > 1:
            hits = assistant._with_part_hits(hits, questions)
        parts = assistant.extractive.analyze(item.question, hits, assistant._source_text)
        cases.append(Case(item.id, item.answerable,
                          [gather_evidence(p, hits, assistant._source_text) for p in parts] if hits else []))
    return cases


def abstains(policy, case: Case) -> bool:
    """Whether ``policy`` abstains on the whole question (every part unsupported; see ``abstention.declines``)."""
    from rag.answering.abstention import declines

    return declines([policy.reason(e) for e in case.evidence])


def rates(policy, cases: Sequence[Case]) -> dict[str, float]:
    """Abstention recall and false-abstention rate of ``policy`` on ``cases``."""
    answerable = [c for c in cases if c.answerable]
    unanswerable = [c for c in cases if not c.answerable]
    false = sum(abstains(policy, c) for c in answerable) / len(answerable) if answerable else 0.0
    recall = sum(abstains(policy, c) for c in unanswerable) / len(unanswerable) if unanswerable else 1.0
    return {"recall": recall, "false_abstention": false}


def candidates(base) -> Iterable:
    for low, without in itertools.product(COVERAGE_GRID, COVERAGE_GRID):
        if without >= low:
            yield replace(base, min_coverage=low, min_coverage_without_attribute=without)


def fit(sets: dict[str, Sequence[Case]], max_false: float = MAX_FALSE_ABSTENTION):
    """The policy with the best mean recall over ``sets`` whose false-abstention rate is within
    ``max_false`` on each; ties go to the lower cut-offs (fewer wrong abstentions elsewhere)."""
    from rag.answering.abstention import AbstentionPolicy

    best, best_key = None, None
    for policy in candidates(AbstentionPolicy()):
        measured = [rates(policy, cases) for cases in sets.values()]
        if any(m["false_abstention"] > max_false for m in measured):
            continue
        key = (sum(m["recall"] for m in measured) / len(measured),
               -sum(m["false_abstention"] for m in measured), -policy.min_coverage_without_attribute,
               -policy.min_coverage)
        if best_key is None or key > best_key:
            best, best_key = policy, key
    return best


def report(sets: dict[str, Sequence[Case]], max_false: float = MAX_FALSE_ABSTENTION) -> dict[str, Any]:
    """Fit on all sets together and on each alone; measure every fit on every set."""
    from rag.answering.abstention import AbstentionPolicy

    fits = {"all sets": fit(sets, max_false)}
    for name, cases in sets.items():
        fits[name] = fit({name: cases}, max_false)
    fits["shipped default"] = AbstentionPolicy()
    table = {}
    for fitted_on, policy in fits.items():
        if policy is None:
            table[fitted_on] = None
            continue
        table[fitted_on] = {
            "min_coverage": policy.min_coverage,
            "min_coverage_without_attribute": policy.min_coverage_without_attribute,
            "measured": {name: rates(policy, cases) for name, cases in sets.items()},
        }
    return table


def markdown(table: dict[str, Any]) -> str:
    """The report as a Markdown table: one row per fit, recall / false abstention per set."""
    names = next(iter(v for v in table.values() if v))["measured"].keys()
    lines = ["| fitted on | cut-offs | " + " | ".join(f"{n}: recall / false" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for fitted_on, row in table.items():
        if row is None:
            lines.append(f"| {fitted_on} | (no cut-off keeps false abstention within the limit) |" + " |" * len(names))
            continue
        cells = [f"{row['measured'][n]['recall']:.2f} / {row['measured'][n]['false_abstention']:.3f}" for n in names]
        lines.append(f"| {fitted_on} | {row['min_coverage']:.2f}, {row['min_coverage_without_attribute']:.2f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", nargs=3, action="append", metavar=("QA_FILES", "DOCS", "INDEX"), required=True,
                        help="comma-separated Q&A files, their documents folder, and an index of it")
    parser.add_argument("--max-false", type=float, default=MAX_FALSE_ABSTENTION)
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    args = parser.parse_args(argv)
    from rag import Retriever

    sets = {}
    for qa_files, docs, index in args.set:
        items = [item for f in qa_files.split(",") for item in load_qa(f)]
        retriever = Retriever.load_or_build(index, [docs])
        sets[Path(qa_files.split(",")[0]).parent.name + "/" + Path(qa_files.split(",")[0]).name] = gather(items, retriever)
    table = report(sets, args.max_false)
    print(markdown(table))
    if args.json:
        Path(args.json).write_text(json.dumps(table, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
