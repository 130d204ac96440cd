"""Which abstention checks decide what, on Q&A sets: the questions each check alone declines.

For every question the evidence that ``rag.answering.abstention`` decides on is gathered once (as
``eval.calibrate.gather`` does, or read from ``python -m eval.fit_abstention --save-cases``). Then, for
each check of the cascade, the evidence that check reads is set to "no objection" and every question
is decided again by the shipped policy. An unanswerable question that is then answered is one the check
alone declines (a right decline it owns); an answerable one is a false abstention it alone causes.

Run it on sets whose questions the rules were not written on: a check whose own declines there are
as often answerable as unanswerable does not generalise, however well it does on the sets it was
written on (see README, *Abstention*).

    python -m eval.abstention_checks --set eval/qa.jsonl seeds .rag/index \\
        --set ../shared/crud-dev/qa.jsonl,eval/crud_unanswerable.jsonl DOCS INDEX [--save-cases cases.json]
    python -m eval.abstention_checks --cases cases.json [--json report.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from eval.calibrate import Case

#: check name -> what it reads set to "no objection". Names follow the cascade's order
#: (``AbstentionPolicy._cascade``); a cascade reason that several checks give is split by check.
NEUTRAL: dict[str, dict[str, Any]] = {
    "missing": {"missing": []},
    "off_topic": {"topic": None},
    "no_span": {"typed": True},
    "other_time": {"timely": True},
    "no_event": {"event": None},
    "other_subject": {"subject": True},
    "planned": {"factual": None},
    "other_organisation": {"organisations": None},
    "other_event": {"own_event": None},
    "sibling_measure": {"measure": None},
    "sibling_kind": {"kind_of_thing": None},
    "relation": {"relation": None},
    "award_unnamed": {"award_named": None},
    "named_nowhere": {"named": None},
    "role_unnamed": {"role": False},
    "attribute_unnamed": {"attribute": None},
}
#: Checks that are policy cut-offs rather than evidence: the cut-off set to zero.
CUTOFFS: dict[str, dict[str, float]] = {
    "coverage_without_attribute": {"min_coverage_without_attribute": 0.0},
    "low_coverage": {"min_coverage": 0.0},
}
CHECKS = tuple(NEUTRAL) + tuple(CUTOFFS)


def without_check(check: str, policy) -> Callable[[Case], bool]:
    """Whether ``policy`` declines a question once ``check`` raises no objection (every part unsupported,
    as ``abstention.declines``; a question without parts stays declined)."""
    from rag.answering.abstention import declines

    if check in NEUTRAL:
        fields = NEUTRAL[check]
        return lambda case: declines([policy.reason(replace(e, **fields)) for e in case.evidence])
    if check in CUTOFFS:
        relaxed = replace(policy, **CUTOFFS[check])
        return lambda case: declines([relaxed.reason(e) for e in case.evidence])
    raise ValueError(f"unknown check {check!r} (choose from {', '.join(CHECKS)})")


def check_report(cases: Sequence[Case], policy=None) -> dict[str, Any]:
    """For one set: how many answerable / unanswerable questions the policy declines, and per check how
    many of those declines only that check makes (``right``: unanswerable, ``false``: answerable)."""
    from rag.answering.abstention import AbstentionPolicy, declines

    policy = policy or AbstentionPolicy()
    # a question without evidence (no passages) is declined whatever the checks say
    declined = [declines([policy.reason(e) for e in c.evidence]) for c in cases]
    result: dict[str, Any] = {
        "answerable": sum(c.answerable for c in cases),
        "unanswerable": sum(not c.answerable for c in cases),
        "right": sum(d and not c.answerable for c, d in zip(cases, declined)),
        "false": sum(d and c.answerable for c, d in zip(cases, declined)),
        "checks": {},
    }
    for check in CHECKS:
        still = without_check(check, policy)
        owned = [c for c, d in zip(cases, declined) if d and not still(c)]
        result["checks"][check] = {"right": sum(not c.answerable for c in owned),
                                   "false": sum(c.answerable for c in owned),
                                   "ids": [c.id for c in owned]}
    return result


def report(sets: dict[str, Sequence[Case]], policy=None) -> dict[str, dict[str, Any]]:
    """``check_report`` of every set, and of all of them pooled (``all``)."""
    out = {name: check_report(cases, policy) for name, cases in sets.items()}
    if len(sets) > 1:
        out["all"] = check_report([c for cases in sets.values() for c in cases], policy)
    return out


def markdown(result: dict[str, dict[str, Any]]) -> str:
    """One row per check that owns a decline somewhere; cells ``right / false`` per set."""
    names = list(result)
    lines = ["| check | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|",
             "| declined by the policy (right / false of unanswerable / answerable) | " + " | ".join(
                 f"{r['right']} / {r['false']} of {r['unanswerable']} / {r['answerable']}" for r in result.values())
             + " |"]
    for check in CHECKS:
        cells = [result[n]["checks"][check] for n in names]
        if any(c["right"] or c["false"] for c in cells):
            lines.append(f"| {check} | " + " | ".join(f"{c['right']} / {c['false']}" for c in cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from eval.fit_abstention import evidence_sets

    parser = argparse.ArgumentParser(prog="python -m eval.abstention_checks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", nargs=3, action="append", metavar=("QA_FILES", "DOCS", "INDEX"), default=[],
                        help="comma-separated Q&A files, their documents folder, and an index of it (repeat)")
    parser.add_argument("--cases", help="evidence saved by --save-cases (here or by eval.fit_abstention)")
    parser.add_argument("--save-cases", metavar="FILE", help="save the gathered evidence as JSON")
    parser.add_argument("--json", metavar="FILE", help="also write the report, with the ids per check, as JSON")
    args = parser.parse_args(argv)
    if not args.set and not args.cases:
        parser.error("give --set (one or more) or --cases")
    sets = evidence_sets(args.set, args.cases, args.save_cases)
    result = report(sets)
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
