"""A local LLM as the judge of borderline evidence: does this sentence state the answer?

The extractive answerer's checks are word- and rule-level. On questions nobody tuned
for, they answer some unanswerable ones (the value of another role, period or measure)
and decline some answerable, user-worded ones. ``EvidenceVerifier`` asks a small
local model, for the parts the rules leave in doubt (see ``Borderline``), one short
question: given the sentences the answer would quote and their title, does the text
state the answer to the question? It reads no decoded text: one forward pass over a
~150-token prompt, and the score is the next token's ``log p(是) - log p(否)``.

What ships is the direction that carried over from one family of evaluation sets to
the other: a part declined because its sentence does not name the asked attribute by
the question's word is answered when the model confirms it (``rescue_above``).
Declining answered parts the model doubts (``decline_below``) is off by default: on
crud-dev it declined more right answers than unanswerable ones at every useful
threshold (README, *Answers*).

Only a ChatML model (the Qwen2.5 family) is prompted this way. The verifier is off
unless a model is set (``VerifierSettings.model`` or ``$RAG_VERIFIER_MODEL``); when
the llama.cpp binding or the model file is missing, it logs one line and the rules
decide alone.
"""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from rag import config

__all__ = ["Borderline", "EvidenceVerifier", "UNVERIFIED", "VerifierSettings", "verifier_prompt"]

log = logging.getLogger(__name__)

#: The abstention reason of a part the rules answered and the verifier did not confirm.
UNVERIFIED = "unverified"

YES_TOKENS = ("是",)
NO_TOKENS = ("否", "不是", "不")
#: Alternatives read from the next token's distribution (是/否 are always among them).
TOP_TOKENS = 30
SENTENCE_CHARS = 140
TITLE_CHARS = 40
SENTENCES = 2


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def verifier_prompt(question: str, sentences: Sequence[str], title: str = "") -> str:
    """The ChatML prompt that asks whether ``sentences`` (under ``title``) state the answer to ``question``."""
    material = "\n".join(f"- {_clip(s, SENTENCE_CHARS)}" for s in sentences[:SENTENCES])
    user = (f"判断资料是否直接给出了问题所问的答案。\n"
            f"资料（{_clip(title, TITLE_CHARS)}）：\n{material}\n问题：{question}\n"
            f"资料是否直接给出了问题所问的答案（对象、时间、职务、指标都要对得上）？只回答“是”或“否”。")
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


#: Above this score a rescuable declined part is answered: fit on the seeds sets (eval/qa.jsonl, seeds_natural,
#: seeds_heldout2-5) with Qwen2.5-Coder-1.5B-Instruct Q4_K_M, checked on the crud sets (README, *Answers*).
RESCUE_ABOVE = 1.8


@dataclass
class VerifierSettings:
    """Settings of the evidence verifier (off while ``model`` is None).

    ``rescue_above``: a part the rules decline for a ``Borderline.rescuable`` reason is
    answered when its score is above it (None: never). ``decline_below``: a part the
    rules answer from a sentence that covers little of the question is declined when
    its score is below it (None, the default: never; measured, it did not carry over
    from one family of sets to the other). ``n_threads``: llama.cpp threads (default:
    the CPUs).
    """

    model: str | None = field(default_factory=lambda: config.verifier_model())
    rescue_above: float | None = field(default_factory=lambda: config.verifier_score("RAG_VERIFIER_RESCUE", RESCUE_ABOVE))
    decline_below: float | None = field(default_factory=lambda: config.verifier_score("RAG_VERIFIER_DECLINE", None))
    n_threads: int | None = None
    n_ctx: int = 1024

    @property
    def enabled(self) -> bool:
        return bool(self.model)


@dataclass
class Borderline:
    """Which parts the verifier reads: those where the rules' own signals leave doubt.

    An answered part is borderline when its stating sentence covers less than
    ``coverage_below`` of the question's words (``Evidence.coverage``): a sentence that
    repeats the question almost word for word is left to the rules, so most questions
    never wait for the model. A declined part is borderline when its reason is one of
    ``rescuable`` (a sentence of the passages may state it in other words than the
    question's) and the sentence the answer would quote is in one of the first
    ``rescue_hits`` passages.
    """

    coverage_below: float = 0.6
    rescuable: tuple[str, ...] = ("no_attribute", "no_span", "low_coverage")
    rescue_hits: int = 2

    def answered(self, evidence) -> bool:
        return evidence.coverage < self.coverage_below

    def declined(self, reason: str | None, part) -> bool:
        return (reason in self.rescuable and bool(part.chosen)
                and part.chosen[0].hit_index < self.rescue_hits)


class EvidenceVerifier:
    """Scores whether the quoted sentences state a question's answer (see the module docstring)."""

    def __init__(self, settings: VerifierSettings | None = None, borderline: Borderline | None = None) -> None:
        self.settings = settings or VerifierSettings()
        self.borderline = borderline or Borderline()
        self._generator = None
        self._failed: str | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.settings.enabled and self._failed is None

    def _server(self) -> Any | None:
        """The loaded llama.cpp server, or None (logged once) when it cannot be loaded."""
        if self._failed is not None:
            return None
        if self._generator is None:
            from rag.answering.generators.llamacpp import LlamaCppGenerator
            from rag.errors import GeneratorError

            try:
                generator = LlamaCppGenerator(model_path=self.settings.model, n_ctx=self.settings.n_ctx,
                                              n_threads=self.settings.n_threads)
                generator.load()
            except (GeneratorError, OSError) as exc:
                self._failed = str(exc)
                log.warning("evidence verifier off, the rules decide alone: %s", exc)
                return None
            self._generator = generator
        return self._generator.load()

    def score(self, question: str, sentences: Sequence[str], title: str = "") -> float | None:
        """``log p(是) - log p(否)`` of the model's next token, or None when no model is available."""
        if not sentences:
            return None
        server = self._server()
        if server is None:
            return None
        request = {"prompt": verifier_prompt(question, sentences, title), "n_predict": 1,
                   "n_probs": TOP_TOKENS, "temperature": 0, "cache_prompt": True}
        with self._lock:  # one slot: requests of several threads take turns
            reply = server.handle_completions(request)
        try:
            top = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        except (KeyError, IndexError, TypeError):
            log.warning("evidence verifier: unexpected reply from llama.cpp: %.200r", reply)
            return None
        return _yes_minus_no(top)

    def review(self, question: str, parts: Sequence, evidence: Sequence, reasons: Sequence[str | None],
               title: Callable[[int], str]) -> list[str | None]:
        """``reasons`` after the verifier read the borderline parts of ``question``: an answered part it
        does not confirm gets ``UNVERIFIED``; a rescuable declined part it confirms gets None.
        ``title(hit_index)`` is the heading or title line above a passage."""
        reasons = list(reasons)
        if not self.enabled:
            return reasons
        for i, (part, ev, reason) in enumerate(zip(parts, evidence, reasons)):
            if reason is None:
                check = self.settings.decline_below is not None and bool(part.chosen) and self.borderline.answered(ev)
            else:
                check = self.settings.rescue_above is not None and self.borderline.declined(reason, part)
            if not check:
                continue
            sentences = [s.text for s in part.chosen[:SENTENCES]]
            asked = question if len(parts) == 1 else part.question
            value = self.score(asked, sentences, title(part.chosen[0].hit_index))
            if value is None:
                continue
            if reason is None and self.settings.decline_below is not None and value < self.settings.decline_below:
                reasons[i] = UNVERIFIED
            elif reason is not None and value > self.settings.rescue_above:
                reasons[i] = None
        return reasons


def _yes_minus_no(top: Sequence[dict]) -> float:
    """``log p(yes) - log p(no)`` from the top alternatives of one token (a missing side counts as
    just below the least likely alternative shown)."""
    floor = min(t["logprob"] for t in top) - 0.5
    best: dict[str, float] = {}
    for t in top:
        token = str(t.get("token", "")).strip()
        best[token] = max(best.get(token, -math.inf), float(t["logprob"]))

    def mass(tokens: Sequence[str]) -> float:
        values = [best[t] for t in tokens if t in best]
        return math.log(sum(math.exp(v) for v in values)) if values else floor

    return mass(YES_TOKENS) - mass(NO_TOKENS)

