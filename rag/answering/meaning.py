"""Whether a sentence names the asked attribute, by meaning rather than by a word list.

The lexical check (``lexical.attribute_near``: the attribute's own word, a half of it or a
Cilin synonym next to the value) misses what users write otherwise than the news does: an
abbreviation (军援 for 军事援助, 批捕 for 批准逮捕), a synonym no thesaurus lists (新措施 for
举措), another form (满意度 for 满意率). ``AttributeMeaning`` compares the asked attribute
terms (``lexical.attribute_terms``) with the words and word pairs around a candidate
sentence's answer spans in the embedding space of the index's own model (multilingual-e5-small,
``query: `` prefix on both sides: a symmetric comparison).

Raw cosines of short words in e5 all lie between 0.83 and 1.0, and some words are close to
everything (举行, 近日, 比赛: "hubs"), so the score is the cosine corrected for hubness (CSLS,
Conneau et al. 2018): ``2·cos(t, w) − r(t) − r(w)``, where ``r(x)`` is the mean cosine of ``x`` to
its ``HUB_K`` nearest words of ``BACKGROUND`` (common words of news text). The best score over the
sentence's words is its ``attribute_similarity``; from ``ATTRIBUTE_SIMILARITY`` on the sentence
counts as naming the attribute. Examples (raw cosine → score): 军援 ~ 军事援助 0.964 → 0.18,
满意度 ~ 满意率 0.962 → 0.18, 批捕 ~ 批准逮捕 0.934 → 0.12, 营业收入 ~ 营收 0.936 → 0.07; and
below the cut-off 大会 ~ 举行 0.920 → 0.01, 最后 ~ 近日 0.923 → 0.02, 负责人 ~ 董事长 0.924 → 0.04,
冬天 ~ 夏天 0.896 → 0.03.

Cost: one batched ``encode_queries`` call per question for the words not seen before (a word's
vector is cached, so a serving process mostly embeds nothing), only for the few best candidate
sentences that the lexical check did not already accept (see ``ExtractiveAnswerer``).

Word vectors of e5 place words of one kind close together too (营业收入 ~ 营业利润 0.95, 出口 ~
进口 0.90): a similar word is not always the same attribute. The cut-off accepts near-identical
meanings (军援 ~ 军事援助 0.96, 新措施 ~ 举措 0.92) and the siblings that pass are left to the checks
made for them (``abstention.CONTRASTS``, ``abstention.SIBLINGS``).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Sequence

import numpy as np

from rag.text import normalize

#: From this hubness-corrected similarity of an asked attribute term to a word (or word pair) next to a
#: sentence's answer, the sentence counts as naming the attribute (chosen on the development sets, checked
#: across them: see README "Meaning check").
ATTRIBUTE_SIMILARITY = 0.06
#: The score of a sentence that names the attribute by its own word (about a word's score with itself).
NAMED_SCORE = 0.25
#: Neighbours of a word among ``BACKGROUND`` whose mean cosine is its hubness ``r``.
HUB_K = 10
#: Common words of news text, the background a word's hubness is measured against.
BACKGROUND = tuple(dict.fromkeys(
    "工作 发展 建设 服务 企业 公司 市场 经济 社会 国家 地区 政府 部门 项目 活动 会议 产业 技术 管理 问题 情况 方面 "
    "时间 今年 去年 近日 目前 同时 表示 介绍 提供 进行 开展 举行 召开 发布 增长 下降 提高 实现 完成 推进 加强 "
    "人员 群众 职工 记者 专家 单位 机构 中心 平台 系统 数据 信息 资金 价格 数量 规模 比例 水平 质量 安全 环境 "
    "文化 教育 医疗 健康 生活 城市 农村 地方 全国 中国 美国 国际 世界 全球 比赛 运动员 学生 学校 医院 法院 银行 "
    "政策 措施 方案 计划 目标 要求 标准 任务 成果 作用 影响 领域 行业 生产 销售 投资 收入 利润 成本 公布 报道 "
    "网友 微博 视频 新闻 消息 现场 当地 相关 主要 重要 有关 具体 一些 这些 其中 以及 通过 根据 对于 由于 因为".split()))
#: Characters around an answer span whose words are compared (the lexical check's ``NEAR`` plus the
#: length of a word: the attribute stands next to its value).
WINDOW = 16
#: The longest word pair compared (军事援助, 批准逮捕); longer runs are phrases, not attribute words.
LONGEST_PHRASE = 6

#: One-character modifiers that make another thing of a noun (新措施 is not any 措施; see ``lexical._MODIFIERS``).
MODIFIERS = frozenset("女男副新老前原现首正")
_CJK_RE = re.compile(r"[\u4e00-\u9fffA-Za-z]")
_DIGIT_RE = re.compile(r"[\d０-９]")


def phrases(text: str) -> list[str]:
    """The words of ``text`` that may name an attribute: jieba's words of two or more characters and
    adjacent pairs of words up to ``LONGEST_PHRASE`` characters (军事 + 援助), no figures, each once."""
    from rag.overlap import QUESTION_WORDS
    from rag.tokenize_zh import jieba_tokenizer

    tokens = [t.strip() for t in jieba_tokenizer().lcut(normalize(text))]
    words = [t if t and _CJK_RE.match(t) and not _DIGIT_RE.search(t) else "" for t in tokens]
    out: dict[str, None] = {}
    for i, w in enumerate(words):
        if len(w) >= 2 and w not in QUESTION_WORDS:
            out[w] = None
        if w and i + 1 < len(words) and words[i + 1] and len(w) + len(words[i + 1]) <= LONGEST_PHRASE \
                and len(w + words[i + 1]) >= 3:
            out[w + words[i + 1]] = None
    return list(out)


#: The farthest a compared word stands from its answer span, in characters, however long the clause.
REACH = 40
_CLAUSE_BREAK_RE = re.compile(r"[，,；;。！？!?：:]")


def window(sentence: str, spans: Sequence[tuple[int, int]], width: int = WINDOW) -> list[str]:
    """The text around each answer span of ``sentence``: its clause, and at least ``width`` characters on
    either side (at most ``REACH``); the whole sentence when there is no span."""
    if not spans:
        return [sentence]
    out = []
    for s, e in spans:
        left = max((m.end() for m in _CLAUSE_BREAK_RE.finditer(sentence, 0, s)), default=0)
        right = next((m.start() for m in _CLAUSE_BREAK_RE.finditer(sentence, e)), len(sentence))
        left, right = max(s - REACH, min(left, s - width), 0), min(e + REACH, max(right, e + width))
        out.append(sentence[left:s] + " " + sentence[e:right])
    return out


class AttributeMeaning:
    """Hubness-corrected cosines between asked attribute terms and a sentence's words, with the embedder's
    word vectors and hubness cached (``cache_size`` words, the oldest dropped first)."""

    def __init__(self, embedder, cache_size: int = 50_000) -> None:
        self.embedder = embedder
        self.cache_size = cache_size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._hubs: dict[str, float] = {}
        self._background: np.ndarray | None = None

    def vectors(self, words: Sequence[str]) -> np.ndarray:
        """Normalised vectors of ``words`` (``query: `` prefix), the missing ones embedded in one batch. Safe to
        call from several threads: what one call reads is held locally, whatever another one evicts."""
        found = {w: self._vectors.get(w) for w in dict.fromkeys(words)}
        missing = [w for w, v in found.items() if v is None]
        if missing:
            encoded = np.asarray(self.embedder.encode_queries(missing), dtype=np.float32)
            for w, v in zip(missing, encoded):
                found[w] = self._vectors[w] = v
            while len(self._vectors) > self.cache_size:  # oldest first
                try:
                    self._vectors.popitem(last=False)
                except KeyError:
                    break
        if not words:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[w] for w in words])

    def hubness(self, words: Sequence[str]) -> np.ndarray:
        """``r(w)`` of each word: the mean cosine to its ``HUB_K`` nearest ``BACKGROUND`` words."""
        if self._background is None:
            self._background = np.asarray(self.embedder.encode_queries(list(BACKGROUND)), dtype=np.float32)
        found = {w: self._hubs.get(w) for w in dict.fromkeys(words)}
        todo = [w for w, r in found.items() if r is None]
        if todo:
            sims = self.vectors(todo) @ self._background.T
            if len(self._hubs) > self.cache_size:
                self._hubs = {}
            for w, r in zip(todo, np.sort(sims, axis=1)[:, -HUB_K:].mean(axis=1)):
                found[w] = self._hubs[w] = float(r)
        return np.array([found[w] for w in words], dtype=np.float32)

    def similarities(self, terms: Sequence[str], texts: Sequence[Sequence[str]]) -> list[float | None]:
        """For each entry of ``texts`` (the pieces of one sentence, see ``window``): how well its words name
        every term of ``terms`` — per term the best score of one of its ``phrases`` (``NAMED_SCORE`` for
        the term's own word), the lowest over the terms (None when it has no words). Asking for all terms
        keeps 研发投入 (研发, 投入) from being named by a sentence about 研发 alone. One embedding call for all."""
        words = [[p for piece in pieces for p in phrases(piece)] for pieces in texts]
        every = list(dict.fromkeys(list(terms) + [w for ws in words for w in ws]))
        if not terms or len(every) == len(set(terms)):
            return [None] * len(texts)
        matrix = self.vectors(every)
        hubs = self.hubness(every)
        index = {w: i for i, w in enumerate(every)}
        rows = [index[w] for w in terms]
        out: list[float | None] = []
        for pieces, ws in zip(texts, words):
            if not ws:
                out.append(None)
                continue
            cols = [index[w] for w in ws]
            csls = 2 * (matrix[rows] @ matrix[cols].T) - hubs[rows][:, None] - hubs[cols][None, :]
            for i, t in enumerate(terms):  # 女劳模 is not named by 劳模 or 劳动模范: its modifier is what is asked
                if len(t) == 3 and t[0] in MODIFIERS:
                    csls[i, [k for k, w in enumerate(ws) if t[0] not in w]] = -1.0
            best = np.minimum(csls.max(axis=1), NAMED_SCORE)
            text = normalize(" ".join(pieces)).lower()
            best[[i for i, t in enumerate(terms) if t.lower() in text]] = NAMED_SCORE
            out.append(float(best.min()))
        return out
