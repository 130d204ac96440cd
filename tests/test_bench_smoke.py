"""The benchmark suite runs end to end in --quick mode and writes sane figures.

Nothing here is timed: the checks are on structure and on values that do not
depend on the machine (exact search agrees with itself, sizes are positive).
"""
from __future__ import annotations

import json

import pytest

from bench import run as bench_run
from bench import scale


@pytest.fixture(scope="module")
def quick_scale(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    bench_run.run_suite(["scale"], quick=True, out=out, log=lambda _msg: None)
    return out, json.loads((out / "results.json").read_text())


def test_quick_run_writes_json_and_markdown(quick_scale):
    out, results = quick_scale
    assert {"machine", "scale", "skipped", "wall_seconds"} <= results.keys()
    assert results["quick"] is True
    markdown = (out / "results.md").read_text()
    assert "Benchmark results" in markdown and "| data | n | index" in markdown


def test_machine_description_has_cpu_cores_and_peak(quick_scale):
    machine = quick_scale[1]["machine"]
    assert machine["cores"] >= 1 and machine["mhz"] > 0
    assert machine["peak"]["avx2_fp32_gflops"] == pytest.approx(
        machine["cores"] * machine["mhz"] * 1e6 * 32 / 1e9)
    assert "numpy" in machine["versions"]


def test_exact_search_has_perfect_recall_against_itself(quick_scale):
    flats = [r for r in quick_scale[1]["scale"]["dense"] if r["kind"] == "flat"]
    assert flats
    for row in flats:
        assert row["search"][0]["recall_at_10"] == 1.0


def test_every_dense_index_kind_is_measured_with_positive_size(quick_scale):
    dense = quick_scale[1]["scale"]["dense"]
    assert {"flat", "hnsw", "ivf_flat", "ivf_pq", "ivf_pq_refine"} <= {r["kind"] for r in dense}
    for row in dense:
        assert row["size_bytes"] > 0
        for point in row["search"]:
            assert 0.0 <= point["recall_at_10"] <= 1.0
            assert 0 < point["p50_ms"] <= point["p95_ms"]


def test_pq_index_is_smaller_than_flat_at_same_size(quick_scale):
    dense = quick_scale[1]["scale"]["dense"]
    n = max(r["n"] for r in dense if r["kind"] == "ivf_pq")
    size = {r["kind"]: r["size_bytes"] for r in dense if r["n"] == n and r.get("data") == "uniform"}
    assert size["ivf_pq"] < size["flat"] / 4


def test_bm25_rows_cover_every_size(quick_scale):
    results = quick_scale[1]["scale"]
    assert [r["n"] for r in results["bm25"]] == results["config"]["sizes"]
    for row in results["bm25"]:
        assert row["size_bytes"] > 0 and row["tokens"] > row["n"] and row["p50_ms"] > 0


def test_recommendation_names_a_threshold(quick_scale):
    rec = quick_scale[1]["scale"]["recommendation"]
    assert rec["auto_threshold"] > 0
    assert rec["flat_ms_per_100k"] > 0


def test_recall_counts_overlap_of_top_k():
    import numpy as np

    truth = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])
    found = np.array([[1, 2, 3, 4, 5, 60, 70, 80, 90, 100]])
    assert scale.recall_at_k(found, truth) == 0.5


def test_ivf_lists_have_enough_training_points():
    for n in (1_000, 10_000, 1_000_000):
        nlist = scale.ivf_nlist(n)
        assert n >= 39 * nlist and nlist & (nlist - 1) == 0


def test_unknown_section_is_rejected_with_the_valid_names():
    with pytest.raises(ValueError, match="scale, index, query, memory, llm"):
        bench_run.parse_sections("scale,speed")


def test_rag_bench_is_a_cli_subcommand():
    from rag.cli import build_parser

    args = build_parser().parse_args(["bench", "--quick", "--only", "scale"])
    assert args.quick and args.only == "scale" and callable(args.func)


def test_a_section_carried_over_says_where_it_was_measured(quick_scale, tmp_path):
    """``--only`` another section keeps the scale figures of the earlier run in the same --out, labelled
    with that run's machine and load: a later run may be on another CPU."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(quick_scale[0], out)
    earlier = json.loads((out / "results.json").read_text())
    earlier["machine"]["cpu_family"] = "99"  # as if measured on another machine
    (out / "results.json").write_text(json.dumps(earlier))
    results = bench_run.run_suite(["gpu"], quick=True, out=out, log=lambda _msg: None)
    assert results["carried_over"] == ["scale"]
    assert results["scale"]["measured_on"]["cpu_family"] == "99"
    text = (out / "results.md").read_text()
    assert "Carried over from an earlier run" in text and "family 99" in text
