"""Small timing and statistics helpers shared by the benchmark sections."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean of a list of durations in seconds, in milliseconds."""
    arr = np.asarray(seconds, dtype=np.float64) * 1000.0
    if arr.size == 0:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan"), "count": 0}
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p95_ms": float(np.percentile(arr, 95)),
        "mean_ms": float(arr.mean()),
        "count": int(arr.size),
    }


def median_of_runs(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Field-wise median of several runs' figures (e.g. the p50 of three passes)."""
    keys = runs[0].keys()
    out: dict[str, float] = {}
    for key in keys:
        values = [r[key] for r in runs]
        out[key] = float(statistics.median(values)) if isinstance(values[0], (int, float)) else values[0]
    out["runs"] = len(runs)
    return out


def time_each(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[float]:
    """Call ``fn(item)`` for every item; return each call's wall time in seconds."""
    durations = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        durations.append(time.perf_counter() - t0)
    return durations


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn()`` once; return (seconds, result)."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Run ``fn()`` ``repeats`` times; return (median seconds, all seconds, last result)."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        seconds, result = timed(fn)
        times.append(seconds)
    return float(statistics.median(times)), times, result
