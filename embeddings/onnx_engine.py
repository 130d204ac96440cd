"""e5-small on ONNX Runtime with int8 weights: the fast CPU engine where bfloat16 is not native.

The materialized sentence-transformers model (see ``materialize``) is exported once
with ``torch.onnx`` (mean pooling and L2 normalisation inside the graph), its BERT
ops fused by onnxruntime's transformer optimizer, and its matrix products quantized
to int8 with per-channel weights (``quantize_dynamic``). The result is cached next to
the materialized model, named after the model format, the onnxruntime version and
this export's version, and written atomically (staged in a temporary folder, renamed
into place), so a killed export leaves nothing that is ever loaded.

At run time only ``onnxruntime`` and ``tokenizers`` are needed (no torch): passages go
through the int8 model on all cores, questions through the same export *before*
quantization (fp32) on ``QUERY_THREADS`` threads that sleep when idle. Why fp32 for questions: int8 activations are
quantized with one scale per batch, so an int8 vector depends on what was embedded with
it (a text alone vs in a batch: cosine 0.9985), and a question is always alone. Measured
on both full evaluation sets (eval/qa.jsonl, all of crud-dev; README "The embedding
model"), int8 passages with int8 questions lost 0.017 / 0.021 dense-only R@1 against
fp32, outside issue 12's 0.01 rule; with fp32 questions every mode stays within 0.01.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.errors import RagError

#: Bump when the exported graph or the quantization changes: older files are ignored.
EXPORT_VERSION = 1
#: Weights are quantized to 7 bits (``reduce_range``). On a CPU without VNNI (AVX2
#: only), ONNX Runtime's int8 kernel adds pairs of u8 x s8 products in 16 bits
#: (``vpmaddubsw``), which 8-bit weights can overflow (255 x 127 x 2 > 32,767) and
#: 7-bit ones cannot (255 x 64 x 2 < 32,767): the integer sums, hence the vectors,
#: are then the same as on the VNNI CPU where quality was measured. Measured there,
#: same run: 7-bit weights kept R@1/MRR within 0.01 of fp32 on eval/qa.jsonl and the
#: crud-dev CI subset, 8-bit ones lost 0.02 hybrid R@1 on eval/qa.jsonl (README "The
#: embedding model"; on the full sets 7-bit loses 0.017-0.021 dense-only R@1).
REDUCE_RANGE = True
#: Appended to the model name to file this engine's vectors in the embedding cache:
#: int8 vectors differ from fp32/bf16 ones (min cosine ~0.995) and never mix with them.
CACHE_SUFFIX = f"#onnx-int8r7-v{EXPORT_VERSION}"
ENGINE = "onnx-int8"
MAX_SEQ_LENGTH = 512
#: Padded tokens per ONNX Runtime call for passages (as ``st_embedder.CPU_TOKENS_PER_BATCH``).
TOKENS_PER_BATCH = 4096
#: Threads of the question session, which never spin while waiting for work. torch's OpenMP threads,
#: which do, made two threads ruinous for a question on a busy machine (``st_embedder.QUERY_THREADS``
#: stays 1); ONNX Runtime's pool with spinning off is faster either way. 200 questions on a real 2-core
#: AVX2 server (AMD EPYC Zen 3), p50 of three passes, same run: quiet 19.5 ms on one thread, 12 ms on two
#: that spin, 16 ms on two that sleep; with four busy processes on the two cores 52 / 61 / 36 ms.
QUERY_THREADS = 2
MAX_BATCH = 128
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
_INSTALL_HINT = ("pip install onnxruntime onnx onnxscript (the 'fast' extra: pip install -e '.[fast]'), "
                 "or set RAG_EMBED_PRECISION=fp32")


def onnxruntime_available() -> bool:
    """Whether the int8 engine can run here (checked without importing onnxruntime)."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx", "onnxscript"))
    except (ImportError, ValueError):  # a module blocked or half-installed
        return False


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise RagError(f"int8 embedding needs onnxruntime, which is not installed: {_INSTALL_HINT}") from exc
    return onnxruntime


def exported_path(model_dir: Path, ort_version: str | None = None, kind: str = "int8r7") -> Path:
    """Where the ``kind`` export (``int8r7``: quantized; ``fp32``: the fused graph it is made
    from) of the materialized model at ``model_dir`` lives (may not exist yet)."""
    from embeddings.materialize import FORMAT_VERSION

    version = ort_version or _import_onnxruntime().__version__
    return (Path(model_dir).parent / f"{Path(model_dir).name}.onnx"
            / f"model-f{FORMAT_VERSION}-ort{version}-{kind}-v{EXPORT_VERSION}.onnx")


def export_int8(model_dir: Path, target: Path | None = None) -> Path:
    """Return the int8 ONNX file for the sentence-transformers model at ``model_dir``,
    exporting and quantizing it first if it is not there (about a minute on 2 cores).
    The fp32 graph it is quantized from is kept too (``export_fp32``) when ``target`` is
    the default place."""
    default = target is None
    target = Path(target or exported_path(model_dir))
    return _exported(Path(model_dir), target, quantize=True,
                     fp32_target=exported_path(model_dir, kind="fp32") if default else None)


def export_fp32(model_dir: Path, target: Path | None = None) -> Path:
    """Return the fused fp32 ONNX file (the graph ``export_int8`` quantizes), exporting it
    first if it is not there: questions on an int8 index are embedded with it."""
    return _exported(Path(model_dir), Path(target or exported_path(model_dir, kind="fp32")), quantize=False)


def _exported(model_dir: Path, target: Path, quantize: bool, fp32_target: Path | None = None) -> Path:
    if target.is_file():
        return target
    ort = _import_onnxruntime()
    for module in ("onnx", "onnxscript"):
        if importlib.util.find_spec(module) is None:
            raise RagError(f"exporting the ONNX embedding model needs {module}, which is not installed: "
                           f"{_INSTALL_HINT}")
    del ort
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_exports(target.parent)
    _check_free_space(model_dir, target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".export.{os.getpid()}.", dir=target.parent))
    try:
        fused = export_fused(model_dir, staging)
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fused), str(staging / "int8.onnx"), weight_type=QuantType.QInt8,
                             per_channel=True, reduce_range=REDUCE_RANGE)
            os.replace(staging / "int8.onnx", target)  # atomic: the target is whole or absent
            if fp32_target is not None and not fp32_target.is_file():
                os.replace(fused, fp32_target)
        else:
            os.replace(fused, target)
    except OSError as exc:
        raise RagError(f"cannot write the ONNX embedding model to {target}: {exc}; "
                       f"set RAG_CACHE_DIR to a writable directory") from exc
    except Exception as exc:
        # A disk that fills up mid-way does not always raise OSError: onnx's shape inference
        # wrote a truncated file without an error, and quantizing it then failed with
        # protobuf's "Wire format was corrupt". Name the likely cause when space ran short.
        free = shutil.disk_usage(target.parent).free
        if free < _export_space_needed(model_dir):
            raise RagError(f"exporting the ONNX embedding model to {target.parent} failed with only "
                           f"{free / 2**20:,.0f} MB left on that disk ({type(exc).__name__}: {exc}); "
                           f"free some space or set RAG_CACHE_DIR to a disk with room") from exc
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


#: The export writes the raw graph, the fused graph and the int8 graph side by side before the
#: rename: about three copies of the fp32 weights (e5-small: 3 x ~470 MB), plus slack.
EXPORT_SPACE_FACTOR = 3.5


def _export_space_needed(model_dir: Path) -> int:
    """Bytes an export of ``model_dir`` needs free: ``EXPORT_SPACE_FACTOR`` x its weight files."""
    weights = sum(f.stat().st_size for pattern in ("*.safetensors", "*.bin")
                  for f in Path(model_dir).glob(pattern) if f.is_file())
    return int(EXPORT_SPACE_FACTOR * weights)


def _check_free_space(model_dir: Path, folder: Path) -> None:
    """Refuse an export that cannot fit, before writing anything (a full disk otherwise fails
    deep inside onnx with a message about corrupt protobuf, not about space)."""
    needed, free = _export_space_needed(model_dir), shutil.disk_usage(folder).free
    if free < needed:
        raise RagError(f"not enough free space in {folder} to export the ONNX embedding model: it needs "
                       f"about {needed / 2**20:,.0f} MB, {free / 2**20:,.0f} MB are free; free some space "
                       f"or set RAG_CACHE_DIR to a disk with room")


def remove_abandoned_exports(folder: Path) -> None:
    """Delete the staging folders (``.export.<pid>.*``) of exports whose process is gone (killed mid-way);
    the sentence judge's export (``rag.answering.judge_onnx``) stages in the same folders."""
    for staging in folder.glob(".export.*"):
        try:
            pid = int(staging.name.split(".")[2])
            os.kill(pid, 0)  # raises when no such process
        except ProcessLookupError:
            shutil.rmtree(staging, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def export_fused(model_dir: Path, out: Path) -> Path:
    """``out/fused.onnx``: the model exported with torch.onnx, mean pooling and L2
    normalisation inside the graph, its BERT ops fused by onnxruntime's optimizer (fp32)."""
    import logging
    import warnings

    import torch
    from onnxruntime.transformers import optimizer
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    class Pooled(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    cfg = AutoConfig.from_pretrained(str(model_dir))
    model = Pooled(AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval())
    enc = AutoTokenizer.from_pretrained(str(model_dir))(
        [PASSAGE_PREFIX + "你好", PASSAGE_PREFIX + "北京是中国的首都"], padding=True, return_tensors="pt")
    raw, fused = out / "raw.onnx", out / "fused.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        for name in ("torch.onnx", "onnxscript", "onnx_ir"):
            logging.getLogger(name).setLevel(logging.ERROR)
        torch.onnx.export(model, (enc["input_ids"], enc["attention_mask"]), str(raw), dynamo=True,
                          input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
                          dynamic_shapes={"input_ids": {0: "batch", 1: "seq"},
                                          "attention_mask": {0: "batch", 1: "seq"}},
                          verbose=False)
        optimized = optimizer.optimize_model(str(raw), model_type="bert", num_heads=cfg.num_attention_heads,
                                             hidden_size=cfg.hidden_size, opt_level=1)
        optimized.save_model_to_file(str(fused), use_external_data_format=False)
    return fused


def _hidden_size(model_dir: Path) -> int | None:
    """The model's vector size from its config.json (the pooled output is the hidden state),
    so a build does not create the one-thread query session only to read it (~0.3 s)."""
    import json

    try:
        return int(json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class OnnxInt8Embedder:
    """``Embedder`` for multilingual-e5-small on ONNX Runtime with int8 weights.

    ``model_dir``: the materialized sentence-transformers directory (its tokenizer.json
    and weights); the int8 export is made on first use and cached (``export_int8``).
    """

    precision = "int8"
    engine = ENGINE
    #: Whether the process runs torch for it: no (that is its point on a CPU without bf16).
    uses_torch = False

    def __init__(self, model_dir: str | Path, name: str, threads: int | None = None,
                 tokens_per_batch: int | None = None, batch_size: int | None = None) -> None:
        """``tokens_per_batch`` and ``batch_size`` default to ``$RAG_EMBED_BATCH_TOKENS`` and ``$RAG_EMBED_BATCH``
        (the same settings as the torch engine's), else ``TOKENS_PER_BATCH`` and ``MAX_BATCH``."""
        self._ort = _import_onnxruntime()
        from tokenizers import Tokenizer

        self.model_dir = Path(model_dir)
        self.name = name
        self.cache_key = name + CACHE_SUFFIX
        self.path = export_int8(self.model_dir)
        self.threads = int(threads or os.cpu_count() or 1)
        self.tokens_per_batch = int(tokens_per_batch or os.environ.get("RAG_EMBED_BATCH_TOKENS") or TOKENS_PER_BATCH)
        self.batch_size = max(1, int(batch_size or os.environ.get("RAG_EMBED_BATCH") or MAX_BATCH))
        self.tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        self.tokenizer.no_padding()
        self._pad_id = int(self.tokenizer.token_to_id("<pad>") or 1)
        self._untruncated = None
        self._sessions: dict[int, object] = {}
        self._questions = None
        self.dim = _hidden_size(self.model_dir) or int(self._session(1).get_outputs()[0].shape[-1] or 384)

    def _session(self, threads: int):
        """One session per thread count, made on first use (a server only ever needs the 1-thread one)."""
        session = self._sessions.get(threads)
        if session is None:
            options = self._ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = self._ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self._sessions[threads] = session
        return session

    def _query_session(self):
        """The session of the fp32 export for questions (``QUERY_THREADS``), made on first use (a build never
        needs it)."""
        if self._questions is None:
            options = self._ort.SessionOptions()
            options.intra_op_num_threads = max(1, min(QUERY_THREADS, os.cpu_count() or 1))
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._questions = self._ort.InferenceSession(str(export_fp32(self.model_dir)), options,
                                                         providers=["CPUExecutionProvider"])
        return self._questions

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Questions, L2-normalised float32 (n, dim): the fp32 graph (see module docs)."""
        return self._encode([QUERY_PREFIX + t for t in texts], self._query_session())

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Passages, in length-sorted batches of ``tokens_per_batch`` padded tokens, on all cores."""
        return self._encode([PASSAGE_PREFIX + t for t in texts], self._session(self.threads), show_progress)

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens (specials and prompt included, before truncation) for ``text``."""
        if self._untruncated is None:
            from tokenizers import Tokenizer

            self._untruncated = Tokenizer.from_str(self.tokenizer.to_str())
            self._untruncated.no_truncation()
        return len(self._untruncated.encode((QUERY_PREFIX if is_query else PASSAGE_PREFIX) + text).ids)

    def _encode(self, prompted: list[str], session, show_progress: bool = False) -> np.ndarray:
        from embeddings.st_embedder import token_batches

        out = np.zeros((len(prompted), self.dim), dtype=np.float32)
        if not prompted:
            return out
        from tqdm.auto import tqdm

        encoded = self.tokenizer.encode_batch(prompted)
        lengths = [len(e.ids) for e in encoded]
        with tqdm(total=len(prompted), desc="embedding", unit="text", disable=not show_progress) as bar:
            for idx in token_batches(lengths, self.tokens_per_batch, self.batch_size):
                width = max(lengths[i] for i in idx)
                ids = np.full((len(idx), width), self._pad_id, dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                for row, i in enumerate(idx):
                    ids[row, : lengths[i]] = encoded[i].ids
                    mask[row, : lengths[i]] = 1
                out[idx] = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
                bar.update(len(idx))
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
