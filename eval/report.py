"""Outputs of an evaluation run: JSON, Markdown and a PNG chart, plus a console table.

JSON keys: ``retrieval.<mode>`` (R@1, R@3, R@5, R@10, MRR@10, nDCG@10),
``answer.<generator>`` (key_fact_accuracy, char_f1, citation_hit, grounded,
abstention_precision, abstention_recall, false_abstention_rate), ``latency``
(p50/p95 ms of retrieval per mode and of answering per generator),
``multi_both`` (both evidences in the top 5/10 for multi questions),
``by_type`` (the same per question type), ``failures`` and ``meta``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.scorer import ANSWER_KEYS, RETRIEVAL_KEYS

ANSWER_SHORT = {"key_fact_accuracy": "key facts", "char_f1": "char F1", "citation_hit": "cite hit", "citation_precision": "cite prec",
                "grounded": "grounded", "abstention_precision": "abst P", "abstention_recall": "abst R",
                "false_abstention_rate": "false abst", "answer_chars_p50": "length p50",
                "shown_extractive": "as quotes"}


def fmt(value: Any) -> str:
    """A metric for display: 3 decimals, ``n/a`` when undefined."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.0f}" if value >= 10 else f"{value:.3f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def retrieval_rows(result: dict[str, Any]) -> list[list[str]]:
    return [[mode] + [fmt(m.get(k)) for k in RETRIEVAL_KEYS] for mode, m in result["retrieval"].items()]


def answer_rows(result: dict[str, Any]) -> list[list[str]]:
    return [[gen] + [fmt(m.get(k)) for k in ANSWER_KEYS] for gen, m in result["answer"].items()]


def latency_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = [[f"search {m}", fmt(v["p50_ms"]), fmt(v["p95_ms"])] for m, v in result["latency"]["retrieval"].items()]
    rows += [[f"answer {g}", fmt(v["p50_ms"]), fmt(v["p95_ms"])] for g, v in result["latency"]["answer"].items()]
    return rows


def to_markdown(result: dict[str, Any], max_failures: int = 30) -> str:
    """A human-readable report of one run."""
    meta = result.get("meta", {})
    per_type = ", ".join(f"{k} {v}" for k, v in meta.get("per_type", {}).items())
    lines = [f"# Evaluation: {meta.get('qa_file', '')}", "",
             f"{meta.get('questions', 0)} questions ({per_type}); top k = {meta.get('k', 10)}.", ""]
    index = meta.get("index")
    if index:
        where = f", Milvus collection {index.get('collection')}" if index.get("store") == "milvus" else ""
        lines += [f"Index {index.get('dir')}: {index.get('store')} store{where}, model {index.get('model')}.", ""]
    lines += ["## Retrieval (answerable questions)", ""]
    lines += _table(["mode", *RETRIEVAL_KEYS], retrieval_rows(result))
    if result.get("multi_both"):
        lines += ["", "Multi questions, both evidences retrieved:", ""]
        lines += _table(["mode", "questions", "both@5", "both@10"],
                        [[m, str(v["questions"]), fmt(v["both@5"]), fmt(v["both@10"])]
                         for m, v in result["multi_both"].items()])
    lines += ["", "## Answers", ""]
    lines += _table(["generator", *[ANSWER_SHORT[k] for k in ANSWER_KEYS]], answer_rows(result))
    lines += ["", "## Latency (ms)", ""]
    lines += _table(["stage", "p50", "p95"], latency_rows(result))
    lines += ["", "## By question type", ""]
    for kind, entry in result.get("by_type", {}).items():
        lines += [f"### {kind} ({entry['questions']})", ""]
        if "retrieval" in entry:
            lines += _table(["mode", *RETRIEVAL_KEYS],
                            [[m] + [fmt(v.get(k)) for k in RETRIEVAL_KEYS] for m, v in entry["retrieval"].items()])
            lines.append("")
        lines += _table(["generator", *[ANSWER_SHORT[k] for k in ANSWER_KEYS]],
                        [[g] + [fmt(v.get(k)) for k in ANSWER_KEYS] for g, v in entry["answer"].items()])
        lines.append("")
    failures = result.get("failures", [])
    lines += [f"## Failures ({len(failures)}, first {min(len(failures), max_failures)})", ""]
    for f in failures[:max_failures]:
        got = f["got"]
        lines += [f"- **{f['id']}** [{f['type']}, {f['generator']}] {f['question']}",
                  f"  - why: {', '.join(f['reasons'])}",
                  f"  - expected: {f['expected']['answer']} (key facts: {', '.join(f['expected']['must_contain']) or '-'})",
                  f"  - got: {'(abstained) ' if got['abstained'] else ''}{_one_line(got['text'])}"]
        for hit in f["top_hits"]:
            mark = "✓" if hit["relevant"] else "✗"
            lines.append(f"  - hit {mark} {hit['doc']} {hit['start']}-{hit['end']}: {_one_line(hit['text'])}")
    return "\n".join(lines) + "\n"


def _one_line(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def write_chart(result: dict[str, Any], path: str | Path) -> Path:
    """A PNG with grouped bars: retrieval metrics per mode, answer metrics per generator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    _bars(axes[0], result["retrieval"], list(RETRIEVAL_KEYS), "Retrieval")
    rates = [k for k in ANSWER_KEYS if k != "answer_chars_p50"]  # a length, not a 0..1 rate
    _bars(axes[1], result["answer"], rates, "Answers", labels=[ANSWER_SHORT[k] for k in rates])
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bars(ax, groups: dict[str, dict[str, Any]], keys: list[str], title: str, labels=None) -> None:
    names = list(groups)
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        values = [groups[name].get(k) or 0.0 for k in keys]
        ax.bar([x + i * width for x in range(len(keys))], values, width, label=name)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(keys))])
    ax.set_xticklabels(labels or keys, rotation=20)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)


def write_outputs(result: dict[str, Any], out_dir: str | Path, json_path: str | Path | None = None) -> dict[str, Path]:
    """Write ``metrics.json``, ``report.md`` and ``chart.png`` in ``out_dir`` (and ``json_path``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "metrics.json", "markdown": out_dir / "report.md", "chart": out_dir / "chart.png"}
    text = json.dumps(result, ensure_ascii=False, indent=2)
    paths["json"].write_text(text, encoding="utf-8")
    paths["markdown"].write_text(to_markdown(result), encoding="utf-8")
    write_chart(result, paths["chart"])
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(text, encoding="utf-8")
        paths["extra_json"] = Path(json_path)
    return paths


def console_table(result: dict[str, Any]) -> str:
    """The compact table ``rag eval`` prints at the end."""
    def block(header: list[str], rows: list[list[str]]) -> list[str]:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [header, *rows]]

    lines = block(["mode", *RETRIEVAL_KEYS], retrieval_rows(result)) + [""]
    lines += block(["generator", *[ANSWER_SHORT[k] for k in ANSWER_KEYS]], answer_rows(result)) + [""]
    lines += block(["latency ms", "p50", "p95"], latency_rows(result))
    return "\n".join(lines)
