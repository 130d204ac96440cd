"""The Assistant: question (+ chat history) -> retrieval -> answer with checked citations.

::

    from rag import Retriever, Assistant
    assistant = Assistant(Retriever.load(".rag/index"))          # extractive, no LLM
    answer = assistant.ask("甘肃省工会开展了多少项劳动竞赛？")
    print(answer.text, [c.quote for c in answer.citations])
    for piece in assistant.stream("那江西呢？", history=[...]):  # str pieces, then the Answer
        ...

``Citation.n`` is the number of the ``[n]`` marker in ``Answer.text``. For the
extractive generator markers count the quoted sentences (1, 2, 3); for LLM
generators they are the passage numbers shown to the model (``hits[n-1]``).
"""
from __future__ import annotations

import time
from typing import Any, Iterator, Sequence

from rag import config
from rag.answering import followup
from rag.answering.abstention import (REFUSAL_THRESHOLD, AbstentionPolicy, declines, drop_refusal_sentences,
                                      gather_evidence, has_answer_text, is_refusal, only_restates)
from rag.answering.citations import SUPPORT_THRESHOLD, check_answer, numbers_supported
from rag.answering.extractive import ExtractiveAnswerer, ExtractiveResult
from rag.answering.generators import Generator, make_generator
from rag.answering.lexical import question_parts
from rag.answering.prompts import NOT_FOUND, PromptBudget, answer_messages
from rag.answering.relations import context_of
from rag.answering.verifier import EvidenceVerifier
from rag.errors import EmptyQueryError, GeneratorError, RagError
from rag.types import Answer, Hit
from rag.text import drop_invalid_characters, normalize

__all__ = ["Assistant", "InvalidKError", "NOT_FOUND", "check_k", "validate_question"]


class InvalidKError(RagError, ValueError):
    """``k`` (passages to retrieve) is not a whole number between 1 and ``config.MAX_K``."""


def check_k(k: Any) -> int:
    """``k`` as an int, or ``InvalidKError`` unless it is a whole number in 1..``config.MAX_K``."""
    try:
        value = int(k)
        whole = not isinstance(k, bool) and value == k
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or not 1 <= value <= config.MAX_K:
        raise InvalidKError(f"k（检索段落数）须为 1 到 {config.MAX_K} 的整数 "
                            f"(k must be a whole number from 1 to {config.MAX_K}), not {k!r}")
    return value


def validate_question(question: Any) -> tuple[str, list[str]]:
    """The stripped question and notices (truncation); ``EmptyQueryError`` if it is empty.

    Cheap, so callers check a question before loading an index or a model.
    """
    notices = []
    if isinstance(question, str):
        question, dropped = drop_invalid_characters(question)
        if dropped:
            notices.append(f"问题中有 {dropped} 个无效字符，已忽略。 ({dropped} invalid characters dropped)")
    if not isinstance(question, str) or not question.strip():
        raise EmptyQueryError("the question is empty: please type a question about the documents")
    question = question.strip()
    if len(question) > config.MAX_QUERY_CHARS:
        notices.append(f"问题过长（{len(question)} 字），只使用了前 {config.MAX_QUERY_CHARS} 字。"
                       f" (question truncated to {config.MAX_QUERY_CHARS} characters)")
        question = question[: config.MAX_QUERY_CHARS]
    return question, notices

#: Generators that run a small model on this machine get a compact prompt.
_LOCAL_GENERATORS = ("local", "llamacpp", "transformers")
LLM_REFUSED_NOTICE = ("本地模型未能作答，以下为原文摘录。"
                      " (the language model gave no answer; quoting the sources instead)")


class Assistant:
    """Answers questions about the indexed documents, with cited sources.

    ``generator`` is a name (``"extractive"`` (default), ``"transformers"``,
    ``"openai"``, ``"llamacpp"``, ``"local"``) or an object with the
    ``Generator`` interface; ``settings`` go to the generator (e.g.
    ``model=...``, ``base_url=...``). ``abstention`` replaces the calibrated
    ``AbstentionPolicy``; ``support_threshold`` is the citation check's.

    ``budget`` (a ``PromptBudget``) limits the passages shown to an LLM: by
    default 4 trimmed passages for local models, whole passages otherwise.
    When the model refuses (``资料中没有找到相关信息。``) although the evidence
    passed every abstention check, the assistant abstains only if the
    extractive evidence is below ``refusal_threshold``; otherwise it shows the
    extractive answer with a notice (``Answer.generator`` is then
    ``"extractive"``), because a small model's refusals are often wrong.

    ``verifier`` (an ``EvidenceVerifier``; by default one that is on only when
    ``$RAG_VERIFIER_MODEL`` names a model) lets a local model judge the parts the
    abstention rules leave in doubt, for every generator.

    ``judge`` (a ``judge.SentenceJudge``; by default the shipped one, loaded on the first question unless
    ``RAG_JUDGE=0``; None: off) reads which candidate sentence states the answer (see ``rag.answering.judge``).
    """

    def __init__(self, retriever, generator: str | Generator | None = "extractive", k: int = 5,
                 mode: str = "hybrid", abstention: AbstentionPolicy | None = None,
                 support_threshold: float = SUPPORT_THRESHOLD, budget: PromptBudget | None = None,
                 refusal_threshold: float = REFUSAL_THRESHOLD, verifier: EvidenceVerifier | None = None,
                 judge: Any = "default", **settings: Any) -> None:
        self.retriever = retriever
        self.k = check_k(k)
        self.mode = mode
        if generator is None or isinstance(generator, str):
            self.generator: Generator | None = make_generator(generator or "extractive", **settings)
        else:
            self.generator = generator
        self.generator_name = self.generator.name if self.generator else "extractive"
        query_vector = getattr(retriever, "query_vector", None)  # absent on minimal retrievers
        self.extractive = ExtractiveAnswerer(getattr(retriever, "embedder", None), query_vector=query_vector,
                                             judge=judge)
        self.policy = abstention or AbstentionPolicy()
        self.support_threshold = support_threshold
        self.refusal_threshold = refusal_threshold
        self.verifier = verifier if verifier is not None else EvidenceVerifier()
        if budget is None:
            local = self.generator_name in _LOCAL_GENERATORS
            budget = PromptBudget() if local else PromptBudget.unlimited(self.k)
        self.budget = budget

    # public API ---------------------------------------------------------------
    def ask(self, question: str, history: Sequence[Any] | None = None) -> Answer:
        """Answer ``question`` (resolved against ``history``) with cited sources."""
        answer = None
        for item in self.stream(question, history):
            answer = item
        assert isinstance(answer, Answer)
        return answer

    def stream(self, question: str, history: Sequence[Any] | None = None) -> Iterator[str | Answer]:
        """Yield the answer's text pieces as they are produced, then the full ``Answer``.

        The final ``Answer.text`` is authoritative: for LLM generators it is the
        streamed reply after the citation check (unsupported markers removed).
        """
        t0 = time.perf_counter()
        question, notices = validate_question(question)
        search_query = followup.resolve(question, history, self.generator)
        t1 = time.perf_counter()
        hits = self.retriever.search(search_query, k=self.k, mode=self.mode)
        questions = question_parts(search_query)
        if len(questions) > 1:  # each part of a multi-part question gets passages of its own
            hits = self._with_part_hits(hits, questions)
        t2 = time.perf_counter()
        parts = self.extractive.analyze(search_query, hits, self._source_text)
        evidence = [gather_evidence(part, hits, self._source_text) for part in parts]
        reasons = [self.policy.reason(e) for e in evidence] if hits else ["missing"] * len(parts)
        if hits and self.verifier.enabled:
            reasons = self.verifier.review(search_query, parts, evidence, reasons, self._titles(hits))
        extractive = self.extractive.render(parts, hits, self._source_text,
                                            unsupported=[r is not None for r in reasons])
        answer = Answer(question=question, text="", hits=list(hits), generator=self.generator_name,
                        search_query=search_query, notices=notices)
        if declines(reasons):
            missing = list(dict.fromkeys(m for e in evidence for m in e.missing))
            if missing:
                answer.notices.append(f"资料中没有提到：{'、'.join(missing)}。 (not in the documents: {', '.join(missing)})")
            self._abstain(answer)
            yield answer.text
        elif self.generator is None:
            answer.text, answer.citations = extractive.text, extractive.citations
            yield answer.text
        else:
            first: list[float] = []
            for piece in self._generate(answer, search_query, hits, extractive):
                if not first:
                    first.append(time.perf_counter())
                yield piece
            if first:
                answer.timings["first_token"] = round(first[0] - t0, 4)
        self._paginate(answer)
        t3 = time.perf_counter()
        answer.timings.update({"condense": round(t1 - t0, 4), "retrieve": round(t2 - t1, 4),
                               "answer": round(t3 - t2, 4), "total": round(t3 - t0, 4)})
        yield answer

    # steps ----------------------------------------------------------------------
    def _source_text(self, doc: str) -> str | None:
        getter = getattr(self.retriever, "source_text", None)
        return getter(doc) if getter else None

    def _titles(self, hits: Sequence[Hit]):
        """hit index -> the title line and headings above that passage (for the verifier's prompt)."""
        found: dict[int, str] = {}

        def title(i: int) -> str:
            if i not in found:
                found[i] = context_of(hits[i], self._source_text).titles
            return found[i]
        return title

    def _paginate(self, answer: Answer) -> None:
        """Each citation's page: where its quote starts in the original (PDF, scans)."""
        page_at = getattr(self.retriever, "page_at", None)
        for citation in answer.citations:
            page = page_at(citation.doc, citation.start) if page_at is not None else None
            if page is not None:
                citation.page = page

    def _with_part_hits(self, hits: Sequence[Hit], parts: Sequence[str], per_part: int = 3) -> list[Hit]:
        """``hits`` followed by the best passages for each part that are not among them yet."""
        merged = list(hits)
        seen = {h.chunk_id for h in merged}
        for part in parts:
            for hit in self.retriever.search(part, k=per_part, mode=self.mode):
                if hit.chunk_id not in seen:
                    seen.add(hit.chunk_id)
                    merged.append(hit)
        return merged

    @staticmethod
    def _abstain(answer: Answer) -> None:
        """Say the documents do not hold the answer; the hits stay as "may be related"."""
        answer.text = NOT_FOUND
        answer.abstained = True
        answer.citations = []

    def _shown(self, hits: Sequence[Hit], extractive: ExtractiveResult) -> tuple[list[Hit], dict[int, tuple[int, int]]]:
        """The passages shown to the model and, per shown passage, the extractive sentence to keep.

        The first ``budget.passages`` hits; if the extractive answer's best
        sentence lies in a later hit, that hit replaces the last one shown.
        """
        order = list(range(min(len(hits), self.budget.passages)))
        best = extractive.sentences[0].hit_index if extractive.sentences else None
        if best is not None and best not in order and order:
            order[-1] = best
        focus: dict[int, tuple[int, int]] = {}
        for s in extractive.sentences:
            if s.hit_index in order:
                focus.setdefault(order.index(s.hit_index), s.span)
        return [hits[i] for i in order], focus

    def _fallback(self, answer: Answer, extractive: ExtractiveResult, notice: str) -> None:
        answer.notices.append(notice)
        answer.generator = "extractive"
        answer.text, answer.citations = extractive.text, extractive.citations

    def _generate(self, answer: Answer, question: str, hits: Sequence[Hit],
                  extractive: ExtractiveResult) -> Iterator[str]:
        shown, focus = self._shown(hits, extractive)
        answer.hits = shown  # [n] in the reply is shown[n-1]
        pieces: list[str] = []
        try:
            for piece in self.generator.stream(answer_messages(question, shown, self.budget, focus)):
                pieces.append(piece)
                yield piece
        except GeneratorError as exc:
            self._fallback(answer, extractive,
                           f"生成模型出错，改用摘录式回答：{exc} (generator failed; showing the extractive answer)")
            yield ("\n\n" if pieces else "") + answer.text
            return
        self._record_stats(answer)
        reply = "".join(pieces).strip()
        if is_refusal(reply):
            if extractive.confidence < self.refusal_threshold:
                self._abstain(answer)
            else:
                self._fallback(answer, extractive, LLM_REFUSED_NOTICE)
            return
        if not has_answer_text(reply) or only_restates(reply, question):  # "", "[2]", the question again
            self._fallback(answer, extractive, LLM_REFUSED_NOTICE)
            return
        checked = check_answer(drop_refusal_sentences(reply), shown, self.support_threshold, self._source_text)
        answer.text, answer.citations, answer.unsupported = checked.text, checked.citations, checked.unsupported
        if checked.unsupported:
            answer.notices.append(
                f"回答中有 {len(checked.unsupported)} 句话在资料中找不到依据，已标出，请谨慎参考。"
                " (some sentences are not supported by the sources)")
        if not checked.citations:
            # Nothing the model said is backed by a shown passage: show the quotes instead.
            self._fallback(answer, extractive,
                           "生成的回答没有可核实的出处，改用摘录式回答。 (no verifiable citation; extractive answer shown)")
            answer.unsupported = checked.unsupported
            return
        # Never worse than the extractive answer: a number no shown passage states, or a
        # dropped fact the extractive answer leads with, and the quotes are shown instead.
        invented = [s for s in checked.unsupported if not any(numbers_supported(s, h.text) for h in shown)]
        dropped = [lead for lead in extractive.leads if normalize(lead) not in normalize(checked.text)]
        if invented or dropped:
            what = f"资料中没有的数字：{invented[0]}" if invented else f"缺少关键事实：{dropped[0]}"
            self._fallback(answer, extractive, f"生成的回答{what}，改用摘录式回答。"
                           " (the model's answer stated a number no passage has, or left out the asked fact;"
                           " extractive answer shown)")
            answer.unsupported = checked.unsupported

    def _record_stats(self, answer: Answer) -> None:
        """Token counts and speed the generator reported (llama.cpp does), into the timings."""
        stats = getattr(self.generator, "last_stats", None) or {}
        for key, name in (("prompt_tokens", "prompt_tokens"), ("prompt_n", "prompt_tokens_processed"),
                          ("predicted_n", "generated_tokens"), ("predicted_per_second", "tokens_per_second")):
            value = stats.get(key)
            if isinstance(value, (int, float)):
                answer.timings[name] = round(float(value), 2)
