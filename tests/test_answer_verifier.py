"""The evidence verifier: a local model judges the parts the abstention rules leave in doubt.

The model tests run the offline 0.5B model that the ``llm`` extra installs (the verifier's
measured model is the 1.5B one, see README; its judgement is not what these tests check,
except that even the small model ranks a stating sentence above an unrelated one).
"""
from __future__ import annotations

import logging
import math

import pytest

from rag.answering import verifier as V
from rag.answering.assistant import Assistant
from rag.answering.local_model import ensure_local_gguf
from rag.answering.prompts import NOT_FOUND
from test_answer_fakes import FakeRetriever, make_chunks

#: The rules answer it from a sentence that covers about half of its words (borderline).
BORDERLINE_ANSWERED = "江西工会有多少会员？"
#: The rules answer it from a sentence that repeats it almost word for word (not borderline).
CLEAR = "甘肃省工会开展了多少项劳动竞赛？"
#: The rules decline it for the attribute's word (覆盖 is not 参加), with the stating sentence first.
RESCUABLE = "甘肃工会的竞赛覆盖了多少人？"


class Counting(V.EvidenceVerifier):
    """The real verifier, recording what it was asked."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, list[str]]] = []

    def score(self, question, sentences, title=""):
        self.asked.append((question, list(sentences)))
        return super().score(question, sentences, title)


@pytest.fixture(scope="module")
def model_path() -> str:
    return str(ensure_local_gguf())


def _assistant(verifier: V.EvidenceVerifier | None = None) -> Assistant:
    """The rules and the verifier, without the sentence judge (it has its own tests, ``test_judge``)."""
    off = V.EvidenceVerifier(V.VerifierSettings(model=None))
    return Assistant(FakeRetriever(make_chunks()), verifier=verifier or off, judge=None)


def test_the_prompt_is_short_and_holds_question_sentences_and_title():
    long_sentence = "甲" * 400
    prompt = V.verifier_prompt("江西工会有多少会员？", ["第一句。", long_sentence, "第三句。"], "江西省工会五年工作综述")
    assert "江西工会有多少会员？" in prompt and "第一句。" in prompt and "江西省工会五年工作综述" in prompt
    assert "第三句" not in prompt  # two sentences at most
    assert len(prompt) < 400  # the long sentence is clipped
    assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\n")


def test_yes_minus_no_reads_both_answers_and_a_missing_one_as_below_the_shown_ones():
    top = [{"token": "否", "logprob": -0.4}, {"token": "是", "logprob": -1.1}, {"token": "不是", "logprob": -6.8}]
    assert V._yes_minus_no(top) == pytest.approx(-1.1 - math.log(math.exp(-0.4) + math.exp(-6.8)))
    assert V._yes_minus_no([{"token": "是", "logprob": -0.1}, {"token": "对", "logprob": -3.0}]) == pytest.approx(-0.1 + 3.5)


@pytest.mark.slow
def test_the_offline_model_scores_a_stating_sentence_above_an_unrelated_one(model_path):
    verifier = V.EvidenceVerifier(V.VerifierSettings(model=model_path))
    question = "全国工会建成多少个户外劳动者服务站点？"
    stating = verifier.score(question, ["全国工会已建成户外劳动者服务站点13万个。"], "工会工作综述")
    unrelated = verifier.score(question, ["今天天气晴朗，气温25度。"], "工会工作综述")
    assert stating is not None and unrelated is not None
    assert stating > unrelated


@pytest.mark.slow
def test_a_borderline_answer_the_model_does_not_confirm_is_declined_and_a_clear_one_is_not_asked(model_path):
    rules = _assistant().ask(BORDERLINE_ANSWERED)
    assert not rules.abstained  # the rules alone answer it (wrongly: no member count is given)
    strict = Counting(V.VerifierSettings(model=model_path, decline_below=100.0, rescue_above=None))
    answer = _assistant(strict).ask(BORDERLINE_ANSWERED)
    assert answer.abstained and answer.text == NOT_FOUND
    assert [q for q, _ in strict.asked] == [BORDERLINE_ANSWERED]
    clear = _assistant(strict).ask(CLEAR)
    assert not clear.abstained and "1.2万项" in clear.text
    assert [q for q, _ in strict.asked] == [BORDERLINE_ANSWERED]  # the clear question never reached the model
    lenient = Counting(V.VerifierSettings(model=model_path, decline_below=-100.0, rescue_above=None))
    assert _assistant(lenient).ask(BORDERLINE_ANSWERED).text == rules.text
    assert len(lenient.asked) == 1


@pytest.mark.slow
def test_a_rescuable_decline_the_model_confirms_is_answered_only_when_rescue_is_on(model_path):
    assert _assistant().ask(RESCUABLE).abstained  # the rules decline it
    off = Counting(V.VerifierSettings(model=model_path, rescue_above=None, decline_below=None))
    assert _assistant(off).ask(RESCUABLE).abstained and off.asked == []
    on = Counting(V.VerifierSettings(model=model_path, rescue_above=-100.0, decline_below=None))
    answer = _assistant(on).ask(RESCUABLE)
    assert not answer.abstained and "444.87万人" in answer.text and answer.citations
    assert len(on.asked) == 1
    assert not _assistant(on).ask(BORDERLINE_ANSWERED).abstained
    assert len(on.asked) == 1  # declining is off: an answered part is never sent to the model


def test_without_a_model_file_the_rules_decide_and_one_line_says_why(tmp_path, caplog):
    missing = tmp_path / "absent.gguf"
    verifier = V.EvidenceVerifier(V.VerifierSettings(model=str(missing), decline_below=100.0, rescue_above=-100.0))
    rules = _assistant()
    with caplog.at_level(logging.WARNING, logger="rag.answering.verifier"):
        for question in (BORDERLINE_ANSWERED, RESCUABLE, BORDERLINE_ANSWERED):
            assert _assistant(verifier).ask(question).text == rules.ask(question).text
    lines = [r.getMessage() for r in caplog.records if r.name == "rag.answering.verifier"]
    assert len(lines) == 1 and "rules decide alone" in lines[0] and "absent.gguf" in lines[0]
    assert not verifier.enabled


def test_the_verifier_is_off_unless_a_model_is_configured(monkeypatch, tmp_path):
    model_path = str(tmp_path / "verifier.gguf")
    monkeypatch.delenv("RAG_VERIFIER_MODEL", raising=False)
    assert not Assistant(FakeRetriever(make_chunks())).verifier.enabled
    monkeypatch.delenv("RAG_VERIFIER_RESCUE", raising=False)
    monkeypatch.delenv("RAG_VERIFIER_DECLINE", raising=False)
    monkeypatch.setenv("RAG_VERIFIER_MODEL", model_path)
    settings = Assistant(FakeRetriever(make_chunks())).verifier.settings
    assert settings.enabled and settings.model == model_path
    assert settings.rescue_above == V.RESCUE_ABOVE and settings.decline_below is None  # the measured defaults
    monkeypatch.setenv("RAG_VERIFIER_RESCUE", "off")
    monkeypatch.setenv("RAG_VERIFIER_DECLINE", "0.25")
    settings = V.VerifierSettings()
    assert settings.rescue_above is None and settings.decline_below == 0.25
    monkeypatch.setenv("RAG_VERIFIER_DECLINE", "high")
    with pytest.raises(ValueError, match="RAG_VERIFIER_DECLINE"):
        V.VerifierSettings()
