"""Resolving elliptical follow-up questions against the chat history.

``那江西呢？`` after ``甘肃省工会开展了多少项劳动竞赛？`` means
``江西省工会开展了多少项劳动竞赛？``. Two ways to get there:

* rule-based (the extractive path, and the fallback): when the follow-up is
  of the form 那X呢 / X呢 / X怎么样 / X的呢, substitute X for the entity of
  the same kind in the previous question; other short follow-ups that lean on
  the previous turn (它/这/那…, or only a few characters) are prefixed with it;
* with the model (LLM paths): ask it to rewrite the follow-up as a standalone
  question; fall back to the rule when that fails or returns something odd.

History may be OpenAI/Gradio "messages" (``{"role", "content"}`` dicts) or
``(user, assistant)`` pairs; ``normalize_history`` accepts both.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from rag.answering.prompts import NOT_FOUND, condense_messages
from rag.tokenize_zh import jieba_pos_tokenizer

_ELLIPSIS_RE = re.compile(
    r"^(?:那么?|那在|还有|再看看|换成|至于|关于)?\s*(?P<x>[^，,。？?！!]{1,16}?)\s*"
    r"(?:的情况|方面|那边|这边)?\s*(?:呢|怎么样|如何|又如何|又怎样|怎样|情况如何|的呢|有哪些呢)\s*[？?。！!]*$"
)
_DEPENDENT_RE = re.compile(r"^(?:那|那么|还有|另外|此外|并且|而且|具体|详细|为什么|为何)|它|他们|她们|其中|这些|那些|上述|该|此|这个|那个|前者|后者")
_PROVINCES = (
    "北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 海南 "
    "四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门"
).split()
_SUFFIXES = ("省", "市", "县", "区", "自治区", "工会", "公司", "集团", "大学", "医院", "部门", "委员会")
_MAX_CONDENSED_CHARS = 200


def normalize_history(history: Sequence[Any] | None) -> list[dict]:
    """History as a list of ``{"role": "user"|"assistant", "content": str}`` dicts."""
    out: list[dict] = []
    for turn in history or []:
        if isinstance(turn, dict):
            role = turn.get("role")
            content = _text_of(turn.get("content"))
            if role in ("user", "assistant") and content:
                out.append({"role": role, "content": content})
        elif isinstance(turn, (list, tuple)) and len(turn) == 2:
            user, assistant = turn
            if _text_of(user):
                out.append({"role": "user", "content": _text_of(user)})
            if _text_of(assistant):
                out.append({"role": "assistant", "content": _text_of(assistant)})
    return out


def _text_of(content: Any) -> str:
    """Text of a message content: a string, or Gradio/OpenAI content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "").strip()
    if isinstance(content, (list, tuple)):
        return " ".join(t for t in (_text_of(c) for c in content) if t).strip()
    return str(content).strip()


def _entity_kind(word: str) -> str:
    if any(word.startswith(p) for p in _PROVINCES):
        return "province"
    tagger = jieba_pos_tokenizer()

    flags = [p.flag for p in tagger.cut(word)]
    return flags[0] if len(flags) == 1 else "other"


def _find_entity(question: str, new: str) -> tuple[int, int] | None:
    """Span in ``question`` of the entity that ``new`` replaces."""
    kind = _entity_kind(new)
    if kind == "province":
        spans = [m.span() for p in _PROVINCES for m in re.finditer(p, question)]
        if spans:
            return min(spans)
    for suffix in _SUFFIXES:
        if new.endswith(suffix):
            m = re.search(rf"[\u4e00-\u9fffA-Za-z0-9]{{1,8}}{suffix}", question)
            if m:
                return m.span()
    tagger = jieba_pos_tokenizer()

    pos = 0
    for pair in tagger.cut(question):
        start, pos = pos, pos + len(pair.word)
        if kind != "other" and pair.flag == kind and kind[0] in "n" and len(pair.word) >= 2:
            return start, pos
    return None


def is_followup(question: str) -> bool:
    """Whether a question probably depends on the previous turn."""
    q = question.strip()
    content = re.sub(r"[\W_]+", "", q)
    return bool(_ELLIPSIS_RE.match(q)) or bool(_DEPENDENT_RE.search(q)) or len(content) <= 4


def rewrite_with_rule(question: str, previous: str) -> str:
    """Resolve ``question`` against the previous (standalone) question by rule."""
    q = question.strip()
    match = _ELLIPSIS_RE.match(q)
    if match:
        new = match.group("x").strip()
        span = _find_entity(previous, new)
        if span:
            rest = previous[span[1]:]
            # 甘肃省 with 江西省: the province span is 甘肃, so do not double the 省.
            for suffix in ("省", "市", "自治区"):
                if new.endswith(suffix) and rest.startswith(suffix):
                    new = new[: -len(suffix)]
            return previous[:span[0]] + new + previous[span[1]:]
        return f"{new} {previous}"
    if is_followup(q):
        return f"{previous} {q}"
    return q


def resolve(question: str, history: Sequence[Any] | None, generator=None) -> str:
    """The standalone question to search for.

    Without history, or when the question stands on its own, it is returned
    unchanged. With an LLM ``generator`` the model condenses the question;
    any failure falls back to the rule.
    """
    turns = normalize_history(history)
    users = [t["content"] for t in turns if t["role"] == "user"]
    if not users or not is_followup(question):
        return question
    # Resolve earlier follow-ups too, so a chain 甘肃…? -> 那江西呢？ -> 那福建呢？ works.
    previous = users[0]
    for earlier in users[1:]:
        previous = rewrite_with_rule(earlier, previous) if is_followup(earlier) else earlier
    if generator is not None:
        condensed = _condense(question, turns, generator)
        if condensed:
            return condensed
    return rewrite_with_rule(question, previous)


def _condense(question: str, turns: list[dict], generator) -> str | None:
    from rag.answering.generators.base import collect
    from rag.errors import GeneratorError

    try:
        text = collect(generator, condense_messages(question, turns))
    except GeneratorError:
        return None
    text = text.strip().splitlines()[0].strip() if text.strip() else ""
    text = re.sub(r"^(?:独立问题|改写后的问题|问题)\s*[:：]\s*", "", text).strip("「」“”\"' ")
    if not text or len(text) > _MAX_CONDENSED_CHARS or NOT_FOUND[:6] in text:
        return None
    return text
