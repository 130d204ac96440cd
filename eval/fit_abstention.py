"""Fit the learned abstention decision on several Q&A sets together, validated leave-one-set-out.

For every question of every set the evidence that ``rag.answering.abstention`` decides on is
gathered once (retrieval and the extractive analysis, as ``Assistant.stream`` does them; see
``eval.calibrate.gather``) and turned into numbers by ``abstention.features``. A class-weighted,
L2-regularised logistic regression (numpy, Newton steps) is fitted on the parts of all questions
(an unanswerable question's parts are the positives; each question weighs 1 however many parts it
has). A question is declined when *every* part is unsupported, as the assistant does, so its
score is the lowest probability over its parts.

The decision threshold is chosen on pooled out-of-fold predictions: each set is predicted by a
model fitted on all the other sets (leave-one-set-out), and the threshold is the one with the best
pooled abstention recall whose pooled false-abstention rate stays within ``--max-false``. The
report gives, per set, today's cascade (``AbstentionPolicy(decision="cascade")``) next to the
learned decision's leave-one-set-out figures, and the two cross-set directions (fit on the first
set, measure on the second, and the reverse).

    python -m eval.fit_abstention \\
        --set eval/qa.jsonl seeds .rag/index \\
        --set ../shared/crud-dev/qa.jsonl,eval/crud_unanswerable.jsonl DOCS INDEX \\
        [--set ...] --save-cases cases.json --out rag/answering/abstention_model.json

``--cases cases.json`` refits from saved evidence without retrieving again (seconds).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from eval.calibrate import MAX_FALSE_ABSTENTION, Case, gather
from eval.qa import load_qa

#: L2 penalty on the standardised weights (the intercept is not penalised): strong, because a softened
#: rule is fitted on few parts (38 other_subject parts on the development sets); 1-30 give the same
#: leave-one-set-out figures but for one eval/qa.jsonl question (see README).
L2 = 100.0


def _in_scope(evidence, scope: Sequence[str]) -> bool:
    """Whether a model of ``scope`` decides this part (``ALL``: every part; else the parts that the
    cascade declines for one of these reasons)."""
    from rag.answering.abstention import ALL, AbstentionPolicy

    return tuple(scope) == ALL or AbstentionPolicy(decision="cascade").reason(evidence) in scope


def _rows(cases: Sequence[Case], names: Sequence[str],
          scope: Sequence[str] = ("*",)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The feature matrix of the parts of ``cases`` in ``scope``, per row the index of its case, and
    per case its number of parts."""
    from rag.answering.abstention import features

    rows, owner = [], []
    for i, case in enumerate(cases):
        for evidence in case.evidence:
            if not _in_scope(evidence, scope):
                continue
            f = features(evidence)
            rows.append([f[n] for n in names])
            owner.append(i)
    return (np.asarray(rows, dtype=np.float64).reshape(-1, len(names)), np.asarray(owner, dtype=np.int64),
            np.asarray([len(c.evidence) for c in cases], dtype=np.float64))


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float = L2,
                 steps: int = 100) -> tuple[np.ndarray, float]:
    """Weighted L2-regularised logistic regression by Newton's method: (weights, bias)."""
    n, d = x.shape
    beta = np.zeros(d + 1)
    a = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(d + 1, l2)
    penalty[-1] = 1e-9
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ beta, -50, 50)))
        grad = a.T @ (weight * (p - y)) + penalty * beta
        hess = (a.T * (weight * p * (1 - p))) @ a + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return beta[:-1], float(beta[-1])


def _model(cases: Sequence[Case], gates: Sequence[str], threshold: float, l2: float, info: dict | None = None,
           scope: Sequence[str] = ("*",)):
    """A model fitted on the parts of ``cases`` in ``scope`` (parts a gate decides are left out)."""
    from rag.answering.abstention import FEATURES, AbstentionModel

    names = [n for n in FEATURES if n not in gates]
    x, owner, nparts = _rows(cases, FEATURES, scope)
    keep = np.ones(len(x), dtype=bool)
    for gate in gates:
        keep &= x[:, FEATURES.index(gate)] == 0
    x = x[keep][:, [FEATURES.index(n) for n in names]]
    owner = owner[keep]
    y = np.array([0.0 if cases[i].answerable else 1.0 for i in owner])
    weight = 1.0 / nparts[owner]
    if y.any() and (1 - y).any():  # each class weighs the same in all
        weight = np.where(y == 1, weight * weight[y == 0].sum() / weight[y == 1].sum(), weight)
    weight = weight / weight.mean()
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    w, b = fit_logistic((x - mean) / scale, y, weight, l2)
    return AbstentionModel(tuple(names), tuple(mean.tolist()), tuple(scale.tolist()), tuple(w.tolist()), b,
                           threshold, tuple(gates), tuple(scope), info or {})


def question_score(model, case: Case) -> float:
    """How strongly the policy with ``model`` says the question is unanswerable: the lowest score of its
    parts (it is answered when any part is, as the assistant does), 1 for a question without evidence.
    A part's score is the model's probability when the model decides it, else 1 (the cascade or a
    gate declines it) or 0 (the cascade answers it)."""
    from rag.answering.abstention import AbstentionPolicy, features

    cascade = AbstentionPolicy(decision="cascade")
    scores = []
    for evidence in case.evidence:
        if _in_scope(evidence, model.scope):
            f = features(evidence)
            scores.append(1.0 if any(f[g] for g in model.gates) else model.probability(evidence))
        else:
            scores.append(0.0 if cascade.reason(evidence) is None else 1.0)
    return min(scores) if scores else 1.0


def rates_at(scores: Sequence[float], cases: Sequence[Case], threshold: float) -> dict[str, float]:
    """Abstention recall and false-abstention rate when questions scoring >= ``threshold`` are declined."""
    ans = [s >= threshold for s, c in zip(scores, cases) if c.answerable]
    una = [s >= threshold for s, c in zip(scores, cases) if not c.answerable]
    return {"recall": sum(una) / len(una) if una else 1.0, "false_abstention": sum(ans) / len(ans) if ans else 0.0,
            "answerable": len(ans), "unanswerable": len(una)}


def choose_threshold(scores: Sequence[float], cases: Sequence[Case], max_false: float) -> float:
    """The threshold with the best recall whose false-abstention rate is within ``max_false``, the
    highest among equals; 1.0 (decline only what is certain) when none gets there."""
    candidates = sorted(set(s for s in scores if 0.0 < s < 1.0)) + [1.0]
    feasible = [(r["recall"], t) for t in candidates
                for r in [rates_at(scores, cases, t)] if r["false_abstention"] <= max_false]
    return max(feasible)[1] if feasible else 1.0


def softening_threshold(oof: dict[str, Sequence[float]], sets: dict[str, Sequence[Case]]) -> float:
    """For a softened cascade: the threshold with the fewest false abstentions, pooled, among those that
    keep every set's recall at the cascade's (out of fold; fewer unanswerable answered, then the highest
    threshold, among equals). 1.0 (the cascade itself) when softening costs recall at every threshold."""
    floors = {name: cascade_rates(cases)["recall"] for name, cases in sets.items()}
    pooled = [s for name in sets for s in oof[name]]
    candidates = sorted(set(s for s in pooled if 0.0 < s < 1.0)) + [1.0]
    best, best_key = 1.0, None
    for t in candidates:
        per_set = {name: rates_at(oof[name], cases, t) for name, cases in sets.items()}
        if any(per_set[name]["recall"] < floors[name] - 1e-9 for name in sets):
            continue
        declined = sum(r["false_abstention"] * r["answerable"] for r in per_set.values())
        missed = sum((1 - r["recall"]) * r["unanswerable"] for r in per_set.values())
        key = (-round(declined), -round(missed), t)  # ties: the highest threshold
        if best_key is None or key > best_key:
            best, best_key = t, key
    return best


def out_of_fold(sets: dict[str, Sequence[Case]], gates: Sequence[str], l2: float, scope: Sequence[str] = ("*",),
                folds: int = 5) -> dict[str, list[float]]:
    """Each set's question scores from a model fitted without it (leave-one-set-out); a single set
    is split into ``folds`` folds instead."""
    if len(sets) == 1:
        (name, cases), = sets.items()
        scores = [0.0] * len(cases)
        for k in range(folds):
            train = [c for i, c in enumerate(cases) if i % folds != k]
            model = _model(train, gates, 0.5, l2, scope=scope)
            for i in range(k, len(cases), folds):
                scores[i] = question_score(model, cases[i])
        return {name: scores}
    out = {}
    for name, cases in sets.items():
        model = _model([c for other, cs in sets.items() if other != name for c in cs], gates, 0.5, l2, scope=scope)
        out[name] = [question_score(model, c) for c in cases]
    return out


def fit(sets: dict[str, Sequence[Case]], max_false: float = MAX_FALSE_ABSTENTION, gates: Sequence[str] = (),
        l2: float = L2, scope: Sequence[str] = ("*",)):
    """The model fitted on all ``sets`` with its threshold chosen on out-of-fold scores (``choose_threshold``
    for a model over every part, ``softening_threshold`` for a softened cascade), and those scores per set."""
    from rag.answering.abstention import ALL

    oof = out_of_fold(sets, gates, l2, scope)
    pooled_scores = [s for name in sets for s in oof[name]]
    pooled_cases = [c for name in sets for c in sets[name]]
    if tuple(scope) == ALL:
        threshold = choose_threshold(pooled_scores, pooled_cases, max_false)
    else:
        threshold = softening_threshold(oof, sets)
    info = {"fitted_on": {name: len(cases) for name, cases in sets.items()}, "max_false": max_false, "l2": l2,
            "pooled_out_of_fold": rates_at(pooled_scores, pooled_cases, threshold),
            "pooled_cascade": cascade_rates(pooled_cases)}
    return _model(pooled_cases, gates, threshold, l2, info, scope), oof


def cascade_rates(cases: Sequence[Case]) -> dict[str, float]:
    """Today's hand-ordered cascade on ``cases``."""
    from eval.calibrate import abstains
    from rag.answering.abstention import AbstentionPolicy

    cascade = AbstentionPolicy(decision="cascade")
    return rates_at([1.0 if abstains(cascade, c) else 0.0 for c in cases], cases, 1.0)


def _cross(sets, max_false, gates, l2, scope) -> dict:
    """Fit on the first set alone and measure on the second, and the reverse."""
    names = list(sets)
    cross = {}
    for a, b in ((names[0], names[1]), (names[1], names[0])) if len(names) >= 2 else ():
        single, _ = fit({a: sets[a]}, max_false, gates, l2, scope)
        cross[f"{a} -> {b}"] = {
            "fitted_on": rates_at([question_score(single, c) for c in sets[a]], sets[a], single.threshold),
            "measured": rates_at([question_score(single, c) for c in sets[b]], sets[b], single.threshold)}
    return cross


def report(sets: dict[str, Sequence[Case]], max_false: float = MAX_FALSE_ABSTENTION, gates: Sequence[str] = (),
           l2: float = L2, soften: Sequence[str] = ()) -> dict:
    """Leave-one-set-out figures per set for today's cascade, for the learned decision over every part
    and, when ``soften`` names cascade reasons, for the cascade whose declines for those reasons the
    learned score decides; both cross-set directions between the first two sets for each; and the
    model to ship (the softened one when ``soften`` is given)."""
    from rag.answering.abstention import ALL

    scopes = {"learned": ALL}
    if soften:
        scopes["softened"] = tuple(soften)
    pooled = [c for cs in sets.values() for c in cs]
    table = {name: {"cascade": cascade_rates(cases)} for name, cases in sets.items()}
    table["all (pooled)"] = {"cascade": cascade_rates(pooled)}
    models, cross = {}, {}
    for label, scope in scopes.items():
        model, oof = fit(sets, max_false, gates, l2, scope)
        models[label] = model
        for name, cases in sets.items():
            table[name][label] = rates_at(oof[name], cases, model.threshold)
        table["all (pooled)"][label] = rates_at([s for n in sets for s in oof[n]], pooled, model.threshold)
        cross[label] = _cross(sets, max_false, gates, l2, scope)
    return {"model": models["softened" if soften else "learned"], "models": models, "leave_one_set_out": table,
            "cross": cross}


def markdown(result: dict) -> str:
    """The report as Markdown tables."""
    def cell(r):
        return f"{r['recall']:.3f} / {r['false_abstention']:.3f}"

    labels = list(result["models"])
    heads = {"learned": "learned, every part", "softened": "cascade softened (" + ", ".join(
        result["models"].get("softened").scope if "softened" in result["models"] else ()) + ")"}
    lines = ["Abstention recall / false abstention; learned columns leave-one-set-out (each set predicted by a "
             "model fitted on all the others).", "",
             "| set (answerable + unanswerable) | cascade | " + " | ".join(heads[k] for k in labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for name, row in result["leave_one_set_out"].items():
        n = row["cascade"]
        lines.append(f"| {name} ({n['answerable']} + {n['unanswerable']}) | {cell(row['cascade'])} | "
                     + " | ".join(cell(row[k]) for k in labels) + " |")
    for label in labels:
        if result["cross"].get(label):
            lines += ["", f"| {heads[label]}: fitted on -> measured on | on its own set | on the other |", "|---|---|---|"]
            for name, row in result["cross"][label].items():
                lines.append(f"| {name} | {cell(row['fitted_on'])} | {cell(row['measured'])} |")
    for label in labels:
        model = result["models"][label]
        lines += ["", f"{heads[label]}: threshold {model.threshold:.4f}; gates: {', '.join(model.gates) or 'none'}; "
                  "weights (standardised):",
                  ", ".join(f"{n} {w:+.2f}" for n, w in sorted(zip(model.features, model.weights), key=lambda p: -abs(p[1])))]
    return "\n".join(lines)


def write_model(model, path: str | Path) -> None:
    """``model`` as JSON, one key per line (``AbstentionModel.load`` reads it)."""
    data = model.to_dict()
    lines = [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in data.items()]
    Path(path).write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")


def save_cases(sets: dict[str, Sequence[Case]], path: str | Path) -> None:
    """The gathered evidence as JSON, so a refit needs no retrieval (``load_cases``)."""
    data = {name: [{"id": c.id, "answerable": c.answerable, "evidence": [asdict(e) for e in c.evidence]}
                   for c in cases] for name, cases in sets.items()}
    Path(path).write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")


def load_cases(path: str | Path) -> dict[str, list[Case]]:
    """Evidence saved by ``save_cases`` (fields an older file lacks take their defaults)."""
    from dataclasses import fields

    from rag.answering.abstention import Evidence

    known = {f.name for f in fields(Evidence)}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {name: [Case(c["id"], c["answerable"], [Evidence(**{k: v for k, v in e.items() if k in known})
                                                   for e in c["evidence"]]) for c in cases]
            for name, cases in data.items()}


def evidence_sets(specs: Sequence[Sequence[str]], cases: str | None = None,
                  save: str | None = None) -> dict[str, list[Case]]:
    """The evidence of each ``--set`` (comma-separated Q&A files, their documents folder, an index of it), after
    any read from ``cases`` (``load_cases``); saved to ``save`` when given (``save_cases``)."""
    sets: dict[str, list[Case]] = load_cases(cases) if cases else {}
    if specs:
        from rag import Retriever

        for qa_files, docs, index in specs:
            first = Path(qa_files.split(",")[0])
            items = [item for f in qa_files.split(",") for item in load_qa(f)]
            sets[first.parent.name + "/" + first.name] = gather(items, Retriever.load_or_build(index, [docs]))
    if save:
        save_cases(sets, save)
    return sets


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.fit_abstention", description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", nargs=3, action="append", metavar=("QA_FILES", "DOCS", "INDEX"), default=[],
                        help="comma-separated Q&A files, their documents folder, and an index of it (repeat)")
    parser.add_argument("--cases", help="refit from evidence saved by --save-cases instead of --set")
    parser.add_argument("--save-cases", metavar="FILE", help="save the gathered evidence as JSON")
    parser.add_argument("--max-false", type=float, default=MAX_FALSE_ABSTENTION)
    parser.add_argument("--gate", action="append", default=[], help="a feature that declines alone (repeatable)")
    parser.add_argument("--l2", type=float, default=L2)
    parser.add_argument("--soften", action="append", default=[], metavar="REASON",
                        help="a cascade reason whose declines the learned score decides (repeatable); the model "
                             "written is then this softened cascade's, else the learned decision over every part")
    parser.add_argument("--out", metavar="FILE", help="write the fitted model here (JSON)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    args = parser.parse_args(argv)
    if not args.set and not args.cases:
        parser.error("give --set (one or more) or --cases")
    sets = evidence_sets(args.set, args.cases, args.save_cases)
    result = report(sets, args.max_false, args.gate, args.l2, args.soften)
    print(markdown(result))
    if args.out:
        write_model(result["model"], args.out)
    if args.json:
        out = dict(result, model=result["model"].to_dict(), models={k: m.to_dict() for k, m in result["models"].items()})
        Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
