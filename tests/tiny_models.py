"""Tiny sentence-transformers models built offline (hand-written vocabulary, random weights,
fixed seed), for tests of the embedder's own logic without the real model:
``tiny_bert`` (2-layer BERT, fast or slow tokenizer, mean pooling, normalisation) and
``static_model`` (a ``StaticEmbedding`` first module: not a Transformer)."""
from __future__ import annotations

from pathlib import Path

#: Texts whose characters make up the vocabulary (some are longer than 24 tokens).
TEXTS = ["北京是中国的首都。", "今天天气很好。", "大熊猫吃竹子，" * 12, "你好", "", "hello world",
         "中国的首都是北京，北京的天气今天很好。", "熊猫", "a", "竹子" * 30, "今天北京的大熊猫吃竹子。"]


def vocabulary() -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    chars = sorted(set("".join(TEXTS)) - set(letters) - {" "})
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":"] + chars + list(letters) + [f"##{c}" for c in letters]


def tiny_bert(folder: Path, slow: bool = False, max_tokens: int = 24) -> Path:
    """A sentence-transformers folder: a 2-layer BERT (random weights, seed 0) + mean pooling
    + normalisation, with a fast or a slow (pure Python) tokenizer."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
    from transformers import BertConfig, BertModel, BertTokenizer
    from transformers.models.bert import BertTokenizerLegacy

    raw = folder / "raw"
    raw.mkdir(parents=True)
    (raw / "vocab.txt").write_text("\n".join(vocabulary()) + "\n", encoding="utf-8")
    (BertTokenizerLegacy if slow else BertTokenizer)(str(raw / "vocab.txt")).save_pretrained(raw)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocabulary()), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=64)).save_pretrained(raw)
    first = Transformer(str(raw), max_seq_length=max_tokens)
    model = SentenceTransformer(modules=[first, Pooling(32, pooling_mode="mean"), Normalize()], device="cpu")
    model.save(str(folder / "st"))
    return folder / "st"


def static_model(folder: Path) -> Path:
    """A sentence-transformers folder whose only module is a ``StaticEmbedding`` (no Transformer)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from transformers import BertTokenizer

    (folder / "raw").mkdir(parents=True)
    (folder / "raw" / "vocab.txt").write_text("\n".join(vocabulary()) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(folder / "raw" / "vocab.txt"))
    torch.manual_seed(0)
    model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=16)], device="cpu")
    model.save(str(folder / "st"))
    return folder / "st"
