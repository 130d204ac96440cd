"""How much of a question a text covers: its content words and character bigrams.

Shared by the extractive answerer (which sentence answers), the abstention
policy (does any sentence cover the question) and retrieval's last stage (which
of near-duplicate passages holds the sentence that matches).
"""
from __future__ import annotations

import re
from typing import Sequence

from rag.text import body_start, normalize, sentence_spans
from rag.tokenize_zh import jieba_tokenizer

#: Words that say what kind of answer is wanted; they carry no topic.
QUESTION_WORDS = {
    "什么", "多少", "哪些", "哪里", "哪儿", "哪个", "哪位", "哪一年", "哪年", "哪", "谁", "几",
    "如何", "怎么", "怎样", "怎么样", "为什么", "为何", "是否", "是不是", "有没有", "何时",
    "什么时候", "何地", "吗", "呢", "吧", "啊", "的", "了", "是", "有", "在", "和", "与", "及",
    "请问", "请", "一下", "介绍", "哪些方面", "主要", "情况", "方面", "内容", "那", "那么",
    "这个", "那个", "这些", "我", "你", "他", "她", "它", "们", "都", "也", "还", "被", "把",
    "对", "从", "到", "给", "让", "为", "以", "中", "上", "下", "里", "之", "其", "该", "等",
}
PUNCT_RE = re.compile(r"[\W_]+", re.UNICODE)


def keywords(text: str) -> list[str]:
    """Content words of a question (jieba, search mode), question words dropped."""
    segmenter = jieba_tokenizer()

    seen: dict[str, None] = {}
    for word in segmenter.lcut_for_search(normalize(text).lower()):
        word = word.strip()
        if not word or word in QUESTION_WORDS or PUNCT_RE.fullmatch(word):
            continue
        if len(word) == 1 and not word.isalnum():
            continue
        if len(word) == 1 and "\u4e00" <= word <= "\u9fff":
            continue  # single Chinese characters match almost anything
        seen[word] = None
    return list(seen)


def bigrams(text: str) -> set[str]:
    """Character bigrams of the normalised text, punctuation removed."""
    clean = PUNCT_RE.sub("", normalize(text).lower())
    if len(clean) < 2:
        return {clean} if clean else set()
    return {clean[i:i + 2] for i in range(len(clean) - 1)}


def question_bigrams(question: str) -> set[str]:
    """Character bigrams of the question without its question words (什么, 多少, ...)."""
    text = normalize(question)
    for word in sorted(QUESTION_WORDS, key=len, reverse=True):
        if len(word) >= 2:
            text = text.replace(word, " ")
    return {b for b in bigrams(text.replace(" ", "|")) if "|" not in b}


def lexical_overlap(words: Sequence[str], q_bigrams: set[str], text: str) -> float:
    """Share of the question's keywords (by length) and bigrams found in ``text``."""
    norm = normalize(text).lower()
    total = sum(len(w) for w in words)
    word_cov = sum(len(w) for w in words if w in norm) / total if total else 0.0
    if q_bigrams:
        # The same as ``len(q_bigrams & bigrams(text))`` from one normalisation, without building
        # the text's bigram set: a two-character string is one of its bigrams iff it occurs in it.
        clean = PUNCT_RE.sub("", norm)
        if len(clean) < 2:
            found = len(q_bigrams & ({clean} if clean else set()))
        else:
            found = sum(1 for b in q_bigrams if len(b) == 2 and b in clean)
        bigram_cov = found / len(q_bigrams)
    else:
        bigram_cov = word_cov
    return 0.5 * word_cov + 0.5 * bigram_cov


def best_sentence_overlap(words: Sequence[str], q_bigrams: set[str], text: str, header: str = "",
                          window: int = 1) -> float:
    """The highest ``lexical_overlap`` of one sentence of ``text`` (with ``header``, its
    heading path, in front), an article's date line left out. With ``window`` > 1, of
    up to that many consecutive sentences read together (a fact and its subject are
    often told in two sentences: ``…队长阿古斯丁·马雷罗告诉记者。“我们抵达后……”``)."""
    spans = []
    for start, end in sentence_spans(text):
        start = body_start(text, start, end)
        if start < end:
            spans.append((start, end))
    best = 0.0
    step = max(1, int(window))
    for i, (start, _) in enumerate(spans):
        end = spans[min(i + step, len(spans)) - 1][1]
        best = max(best, lexical_overlap(words, q_bigrams, f"{header} {text[start:end]}"))
    return best
