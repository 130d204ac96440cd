"""Resident memory of ``rag serve``: after load, and after 200 questions over HTTP.

The server is started as a child process on a free 127.0.0.1 port against an index
of the seeds; questions go through its REST API (``POST /api/knowledge-bases/<kb>/ask``,
the same backend and gates as the UI), so the measurement includes the web stack. RSS is summed over the process tree and sampled every 0.1 s for the peak.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from bench.pipeline import ROOT, _doc_dir, _query_index, _workdir, benchmark_questions, n_queries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class PeakSampler(threading.Thread):
    """Samples a process tree's RSS in the background; ``peak`` is the maximum seen."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(timeout=2)
        return self.peak


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rag serve exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"rag serve did not answer on {url} within {timeout:.0f} s")


#: The knowledge base name the benchmark serves its index under.
KNOWLEDGE_BASE = "bench"


def ask_http(base: str, question: str, timeout: float = 120) -> dict[str, Any]:
    """One question through the REST API (``POST /api/knowledge-bases/<kb>/ask``); the answer dict."""
    body = json.dumps({"question": question, "generator": "extractive", "mode": "hybrid", "k": 5}).encode()
    req = urllib.request.Request(f"{base}/api/knowledge-bases/{KNOWLEDGE_BASE}/ask", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def run(quick: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    return serve_rss(_query_index(quick, log), benchmark_questions(n_queries(quick)), log,
                     docs=_doc_dir(quick), cache_dir=_workdir() / "cache-index")


def serve_rss(index: Path, questions: list[str], log: Callable[[str], None] = print, docs: Path | None = None,
              cache_dir: Path | None = None) -> dict[str, Any]:
    """``rag serve`` on ``index`` as a child process: RSS of its tree after start, after the
    first question, after ``questions`` (HTTP, one at a time), and the peak."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    if cache_dir is not None:
        env["RAG_CACHE_DIR"] = str(cache_dir)
    cmd = [str(Path(sys.executable).with_name("rag")), "serve", "--index", f"{KNOWLEDGE_BASE}={index}",
           "--docs", str(docs or index), "--host", "127.0.0.1", "--port", str(port)]
    if not Path(cmd[0]).exists():
        cmd = [sys.executable, "-m", "rag.cli", *cmd[1:]]
    log_path = _workdir() / "serve.log"
    with log_path.open("w") as logf:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=logf, stderr=subprocess.STDOUT)
    sampler = PeakSampler(proc.pid)
    sampler.start()
    try:
        _wait_ready(base + "/", proc, timeout=600)
        ready_s = time.perf_counter() - t0
        time.sleep(1.0)
        after_start = tree_rss(proc.pid)
        ask_http(base, questions[0])  # the first question loads the embedding model
        after_load = tree_rss(proc.pid)
        peak_load = sampler.peak
        latencies, failures = [], 0
        for q in questions:
            t = time.perf_counter()
            try:
                ask_http(base, q)
            except Exception:
                failures += 1
            latencies.append(time.perf_counter() - t)
        after_queries = tree_rss(proc.pid)
        peak = sampler.stop()
    except Exception as exc:
        sampler.stop()
        tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
        raise RuntimeError(f"{exc}; server log tail: {tail}") from exc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    import numpy as np

    mb = 1024 * 1024
    rows = [["started (UI up, before first question)", after_start / mb],
            ["after load (first question answered)", after_load / mb],
            ["peak during start-up and load", peak_load / mb],
            [f"after {len(questions)} questions", after_queries / mb],
            ["peak overall", peak / mb]]
    log(f"  serve ready in {ready_s:.1f} s; RSS after load {after_load / mb:.0f} MB, "
        f"after {len(questions)} questions {after_queries / mb:.0f} MB, peak {peak / mb:.0f} MB")
    return {
        "process": "rag serve (HTTP, REST /api/knowledge-bases/<kb>/ask)", "ready_s": ready_s,
        "rss_started_mb": after_start / mb, "rss_after_load_mb": after_load / mb,
        "rss_after_queries_mb": after_queries / mb, "peak_rss_mb": peak / mb,
        "peak_rss_load_mb": peak_load / mb, "questions": len(questions), "failures": failures,
        "http_p50_ms": float(np.percentile(latencies, 50) * 1000),
        "http_p95_ms": float(np.percentile(latencies, 95) * 1000),
        "tables": [{"title": f"rag serve, resident memory of the process tree (MB); ready in {ready_s:.1f} s; "
                             f"HTTP /ask p50 {np.percentile(latencies, 50) * 1000:.0f} ms, "
                             f"p95 {np.percentile(latencies, 95) * 1000:.0f} ms, {failures} failures",
                    "headers": ["moment", "RSS MB"], "rows": rows}],
    }
