"""The quality gate: compare headline metrics with the accepted baseline.

``eval/baseline.json``::

    {"tolerance": 0.03,
     "metrics": {"retrieval.hybrid.R@1": 0.6, "answer.extractive.false_abstention_rate": 0.1, ...}}

A metric fails when it is missing or undefined, or falls more than its
tolerance (absolute) below its baseline; for rates where lower is better
(``false_abstention_rate``) when it rises more than that above it. The
tolerance is ``tolerances[metric]`` when the baseline names one, else
``tolerance``. Abstention precision/recall rest on fewer questions (46
unanswerable in eval/qa.jsonl, 52 in the crud-dev subset), where one question
moves them by ~0.02, so they get two questions' worth instead of 0.03.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.errors import RagError

DEFAULT_BASELINE = Path(__file__).resolve().parent / "baseline.json"
DEFAULT_TOLERANCE = 0.03
#: Per-metric tolerances written into new baselines (see the module docstring).
DEFAULT_TOLERANCES = {
    "answer.extractive.abstention_precision": 0.05,
    "answer.extractive.abstention_recall": 0.05,
}
LOWER_IS_BETTER = {"false_abstention_rate"}
HEADLINE_METRICS = (
    "retrieval.hybrid.R@1", "retrieval.hybrid.R@5", "retrieval.hybrid.MRR@10",
    "answer.extractive.key_fact_accuracy", "answer.extractive.citation_hit",
    "answer.extractive.abstention_precision", "answer.extractive.abstention_recall",
    "answer.extractive.false_abstention_rate",
)


def lookup(result: dict[str, Any], path: str) -> Any:
    """``result["retrieval"]["hybrid"]["R@1"]`` for ``"retrieval.hybrid.R@1"`` (``None`` if absent)."""
    group, _, rest = path.partition(".")
    name, _, key = rest.partition(".")
    return result.get(group, {}).get(name, {}).get(key)


def load_baseline(path: str | Path = DEFAULT_BASELINE) -> dict[str, Any]:
    """The baseline file, checked for shape."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RagError(f"baseline file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise RagError(f"baseline file is not valid JSON: {path} ({exc.msg})") from None
    if not isinstance(data.get("metrics"), dict) or not data["metrics"]:
        raise RagError(f"baseline file has no 'metrics' mapping: {path}")
    return data


def check(result: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """One message per headline metric that regressed beyond the tolerance (empty: pass)."""
    default = float(baseline.get("tolerance", DEFAULT_TOLERANCE))
    per_metric = baseline.get("tolerances", {})
    problems = []
    for path, base in baseline["metrics"].items():
        tolerance = float(per_metric.get(path, default))
        value = lookup(result, path)
        if not isinstance(value, (int, float)):
            problems.append(f"{path}: missing from this run (baseline {base:.3f})")
            continue
        lower = path.rsplit(".", 1)[-1] in LOWER_IS_BETTER
        if lower and value > base + tolerance:
            problems.append(f"{path}: {value:.3f} rose above baseline {base:.3f} by more than {tolerance}")
        elif not lower and value < base - tolerance:
            problems.append(f"{path}: {value:.3f} fell below baseline {base:.3f} by more than {tolerance}")
    return problems


def make_baseline(result: dict[str, Any], tolerance: float = DEFAULT_TOLERANCE,
                  metrics: tuple[str, ...] = HEADLINE_METRICS) -> dict[str, Any]:
    """A baseline dict from a run (only the headline metrics it actually has)."""
    values = {p: round(float(lookup(result, p)), 4) for p in metrics
              if isinstance(lookup(result, p), (int, float))}
    tolerances = {p: t for p, t in DEFAULT_TOLERANCES.items() if p in values}
    return {"tolerance": tolerance, "tolerances": tolerances, "metrics": values,
            "qa_file": result.get("meta", {}).get("qa_file", "")}
