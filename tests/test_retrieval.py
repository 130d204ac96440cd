"""The Retriever API, the embedding cache in builds, incremental adds and the CLI (fake model)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SEEDS, FakeEmbedder
from rag import config
from rag.errors import DocumentError, EmptyQueryError, InvalidArgumentError, RagError
from rag.retrieval.passages import passage_text, sentence_views
from rag.retrieval.retriever import Retriever
from rag.types import Chunk, Hit


# --------------------------------------------------------------------------- search API

@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_search_returns_hits_with_all_fields_best_first(small_retriever, mode):
    hits = small_retriever.search("12351热线什么时候全面建成运行？", k=3, mode=mode)
    assert 1 <= len(hits) <= 3
    assert all(isinstance(h, Hit) and h.mode == mode for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    top = hits[0]
    assert "12351" in top.text and top.doc.endswith("hotline.md")
    assert isinstance(top.heading_path, list) and top.chunk_id == small_retriever.get_chunk(top.chunk_id).id
    source = small_retriever.source_text(top.doc)
    assert "12351" in source[top.start:top.end]


def test_default_mode_is_hybrid_and_k_defaults_to_five(small_retriever):
    hits = small_retriever.search("大熊猫")
    assert len(hits) == min(5, len(small_retriever)) and {h.mode for h in hits} == {"hybrid"}


def test_k_larger_than_the_index_returns_every_chunk_once(small_retriever):
    hits = small_retriever.search("工会", k=1000, mode="hybrid")
    assert len({h.chunk_id for h in hits}) == len(hits) <= len(small_retriever)


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True, None])
def test_invalid_k_is_a_clear_error(small_retriever, k):
    with pytest.raises(InvalidArgumentError, match="k must be"):
        small_retriever.search("熊猫", k=k)


def test_unknown_mode_is_a_clear_error(small_retriever):
    with pytest.raises(InvalidArgumentError, match="unknown mode 'semantic'"):
        small_retriever.search("熊猫", mode="semantic")


@pytest.mark.parametrize("query", ["", "   ", "\n\t　"])
def test_empty_or_whitespace_query_raises_empty_query_error(small_retriever, query):
    with pytest.raises(EmptyQueryError):
        small_retriever.search(query)


def test_long_query_is_truncated_with_a_notice(small_retriever, fake_embedder):
    query = "大熊猫" + "的" * (config.MAX_QUERY_CHARS + 500)
    hits, notices = small_retriever.search_with_notices(query, mode="dense")
    assert hits and notices and str(config.MAX_QUERY_CHARS) in notices[0]
    assert len(fake_embedder.query_calls[-1][0]) == config.MAX_QUERY_CHARS
    small_retriever.search(query)
    assert small_retriever.last_notices == notices
    small_retriever.search("大熊猫")
    assert small_retriever.last_notices == []


def test_english_query_works_in_every_mode(small_retriever):
    for mode in ("dense", "bm25", "hybrid"):
        hits = small_retriever.search("When was the 12351 hotline completed?", mode=mode)
        assert hits
    assert small_retriever.search("12351 hotline", mode="bm25")[0].doc.endswith("hotline.md")


def test_number_with_unit_matches_in_keyword_search(small_retriever):
    top = small_retriever.search("服务站点13.08万", k=1, mode="bm25")[0]
    assert "13.08万个" in top.text


def test_identical_passages_are_returned_once(make_retriever, tmp_path):
    folder = tmp_path / "dup"
    folder.mkdir()
    notice = "拍卖公告：竞买人须于2024年5月10日前交纳保证金五万元。"
    (folder / "a.txt").write_text(f"甲报\n\n{notice}\n\n今日天气晴朗。", encoding="utf-8")
    (folder / "b.txt").write_text(f"乙报\n\n{notice}\n\n体育新闻：足球比赛。", encoding="utf-8")
    retriever = make_retriever([folder], tmp_path / "dup-index")
    hits = retriever.search("拍卖保证金", k=10)
    texts = [h.text for h in hits]
    assert sum(1 for t in texts if t == notice) <= 1


def test_embedded_text_starts_with_the_heading_path(small_retriever, fake_embedder):
    with_heading = [c for c in small_retriever.chunks if c.heading_path]
    assert with_heading
    chunk = with_heading[0]
    assert passage_text(chunk).startswith(" > ".join(chunk.heading_path) + "\n")
    embedded = [t for batch in fake_embedder.passage_calls for t in batch]
    assert passage_text(chunk) in embedded


def test_passage_text_without_headings_is_the_body():
    chunk = Chunk("d#0", "d.txt", [], "正文", 0, 2)
    assert passage_text(chunk) == "正文"
    assert passage_text(Chunk("d#1", "d.txt", ["标题", "小标题"], "正文", 0, 2)) == "标题 > 小标题\n正文"


def test_get_chunk_and_source_text_of_unknown_names_raise_key_error(small_retriever):
    with pytest.raises(KeyError):
        small_retriever.get_chunk("nope#1")
    with pytest.raises(KeyError):
        small_retriever.source_text("nope.txt")


def test_build_settings_are_validated(make_retriever, small_corpus):
    with pytest.raises(InvalidArgumentError, match="unknown dense"):
        make_retriever([small_corpus], dense="annoy")
    with pytest.raises(InvalidArgumentError, match="chunk settings"):
        make_retriever([small_corpus], max_chars=0)


def test_building_from_nothing_readable_is_a_document_error(make_retriever, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DocumentError):
        make_retriever([empty])


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "auto"])
def test_other_dense_kinds_build_search_and_reload(make_retriever, small_corpus, tmp_path, kind, fake_embedder):
    retriever = make_retriever([small_corpus], tmp_path / kind, dense=kind)
    assert retriever.search("大熊猫", k=1, mode="dense")[0].doc.endswith("panda.md")
    loaded = Retriever.load(tmp_path / kind, embedder=fake_embedder)
    assert loaded.search("大熊猫", k=1, mode="dense")[0].doc.endswith("panda.md")


# --------------------------------------------------------------------------- embedding cache in builds

def test_rebuild_with_nothing_changed_embeds_nothing(make_retriever, small_corpus, fake_embedder):
    first = make_retriever([small_corpus])
    assert first.build_summary.embedded > 0 and first.build_summary.cached == 0
    calls = fake_embedder.passages_encoded
    second = make_retriever([small_corpus])
    assert fake_embedder.passages_encoded == calls
    assert second.build_summary.embedded == 0 and second.build_summary.cached == first.build_summary.embedded


def test_editing_one_document_re_embeds_only_its_changed_chunks(make_retriever, small_corpus, fake_embedder):
    first = make_retriever([small_corpus])
    before = {passage_text(c) for c in first.chunks}
    path = small_corpus / "panda.md"
    path.write_text(path.read_text(encoding="utf-8").replace("二百多只", "三百多只"), encoding="utf-8")
    fake_embedder.passage_calls.clear()
    second = make_retriever([small_corpus])
    changed = [passage_text(c) for c in second.chunks if passage_text(c) not in before]
    assert len(changed) == 1 and "三百多只" in changed[0]
    assert fake_embedder.passage_calls == [changed]
    assert second.build_summary.embedded == 1


# --------------------------------------------------------------------------- incremental add

def test_add_embeds_only_the_new_document_and_persists(small_retriever, tmp_path, fake_embedder):
    new = tmp_path / "moon.md"
    new.write_text("# 嫦娥工程\n\n嫦娥六号于2024年6月25日携带月球背面样品返回地球。", encoding="utf-8")
    size = len(small_retriever)
    fake_embedder.passage_calls.clear()
    summary = small_retriever.add([new])
    assert summary.added == ["moon.md"] or summary.added[0].endswith("moon.md")
    assert summary.embedded == fake_embedder.passages_encoded == len(small_retriever) - size
    assert small_retriever.search("嫦娥六号", k=1)[0].doc.endswith("moon.md")
    reloaded = Retriever.load(small_retriever.index_dir, embedder=fake_embedder)
    assert len(reloaded) == len(small_retriever)
    assert reloaded.search("嫦娥六号", k=1)[0].doc.endswith("moon.md")
    assert "嫦娥六号" in reloaded.source_text(summary.added[0])


def test_adding_the_same_file_again_changes_nothing(small_retriever, small_corpus, fake_embedder):
    size = len(small_retriever)
    fake_embedder.passage_calls.clear()
    summary = small_retriever.add([small_corpus / "tea.txt"])
    assert summary.unchanged and not summary.added and not summary.replaced
    assert fake_embedder.passages_encoded == 0 and len(small_retriever) == size


def test_adding_an_edited_file_replaces_its_chunks(small_retriever, small_corpus):
    path = small_corpus / "tea.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("一千二百多年", "一千三百多年"), encoding="utf-8")
    summary = small_retriever.add([path])
    assert summary.replaced and not summary.added
    texts = " ".join(c.text for c in small_retriever.chunks)
    assert "一千三百多年" in texts and "一千二百多年" not in texts


def test_adding_a_bad_file_is_a_clear_error_and_keeps_the_index(small_retriever, tmp_path):
    bad = tmp_path / "broken.txt"
    bad.write_bytes(b"\x00\x01\x02\xff\xfe binary \x00" * 50)
    size = len(small_retriever)
    with pytest.raises(RagError, match="broken.txt"):
        small_retriever.add([bad])
    with pytest.raises(RagError, match="missing.txt"):
        small_retriever.add([tmp_path / "missing.txt"])
    assert len(small_retriever) == size
    assert len(Retriever.load(small_retriever.index_dir)) == size


def test_load_or_build_builds_when_missing_then_loads(tmp_path, small_corpus, fake_embedder):
    settings = {"embedder": fake_embedder, "cache": tmp_path / "c.sqlite3", "show_progress": False}
    built = Retriever.load_or_build(tmp_path / "idx", [small_corpus], **settings)
    assert built.build_summary is not None
    loaded = Retriever.load_or_build(tmp_path / "idx", [small_corpus], **settings)
    assert loaded.build_summary is None and len(loaded) == len(built)


# --------------------------------------------------------------------------- light imports

def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_public_api_imports_without_gradio_or_torch():
    code = (
        "import sys; sys.modules['gradio'] = None\n"
        "from rag import Retriever, Hit\n"
        "import rag.retriever, rag.index_store, rag.retrieval.fusion, rag.commands.index\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'gradio' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "print('ok')\n"
    )
    result = _run_python(code)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_bm25_search_of_a_saved_index_never_imports_torch(small_retriever):
    code = (
        "import sys\n"
        "from rag import Retriever\n"
        f"r = Retriever.load({str(small_retriever.index_dir)!r})\n"
        "hits = r.search('12351热线', mode='bm25')\n"
        "assert hits and 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules\n"
        "print('ok')\n"
    )
    result = _run_python(code)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


# --------------------------------------------------------------------------- CLI

@pytest.fixture
def cli_env(monkeypatch, tmp_path, fake_embedder):
    import rag.index.embedding as embedding_module

    monkeypatch.setattr(embedding_module, "load_embedder", lambda name, engine=None: fake_embedder)
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    return tmp_path / "cli-index"


def test_cli_index_then_search_readable_and_json(cli_env, small_corpus, capsys):
    from rag.cli import main

    assert main(["index", str(small_corpus), "--index", str(cli_env), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "4 documents" in out and "embedded" in out and "from the cache" in out
    assert main(["index", str(small_corpus), "--index", str(cli_env), "--quiet"]) == 0
    assert "embedded 0 passages" in capsys.readouterr().out

    assert main(["search", "12351热线", "--index", str(cli_env), "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. [") and "hotline.md" in out and "热线建设" in out

    assert main(["search", "12351热线", "--index", str(cli_env), "--json", "--mode", "bm25"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert set(hits[0]) >= {"chunk_id", "doc", "heading_path", "text", "start", "end", "score"}
    assert "12351" in hits[0]["text"]


def test_cli_index_without_sentence_views(cli_env, small_corpus, capsys):
    from rag.cli import main

    assert main(["index", str(small_corpus), "--index", str(cli_env), "--quiet", "--no-sentence-views"]) == 0
    assert "0 sentence views" in capsys.readouterr().out
    assert Retriever.load(cli_env).manifest["dense"]["sentence_views"] is False


def test_cli_index_with_a_view_header(cli_env, small_corpus, capsys):
    from rag.cli import main

    assert main(["index", str(small_corpus), "--index", str(cli_env), "--quiet", "--view-header", "title"]) == 0
    assert Retriever.load(cli_env).settings.view_header == "title"
    with pytest.raises(SystemExit):  # argparse refuses an unknown choice
        main(["index", str(small_corpus), "--index", str(cli_env), "--view-header", "subject"])
    assert "invalid choice: 'subject'" in capsys.readouterr().err


def test_cli_search_errors_are_clear(cli_env, capsys):
    from rag.cli import main

    assert main(["search", "熊猫", "--index", str(cli_env)]) == 1
    assert "rag index" in capsys.readouterr().err
    assert main(["search", "  ", "--index", str(cli_env)]) == 1


# --------------------------------------------------------------------------- seeds, keyword side (no model)

@pytest.fixture(scope="module")
def seeds_bm25(tmp_path_factory):
    """seeds/ indexed with the fake embedder: enough for keyword-only checks."""
    tmp = tmp_path_factory.mktemp("seeds-bm25")
    return Retriever.build([SEEDS], tmp / "index", embedder=FakeEmbedder(), cache=None, show_progress=False)


@pytest.mark.parametrize("query, needle", [
    ("13.08万个", "13.08万个"),
    ("13.08万", "13.08万个"),
    ("12351", "12351"),
    ("12351热线", "12351"),
    ("司机之家1335家", "1335家"),
])
def test_bm25_on_seeds_matches_numbers_and_names(seeds_bm25, query, needle):
    hits = seeds_bm25.search(query, k=3, mode="bm25")
    assert needle in hits[0].text, [h.text[:60] for h in hits]


def test_bm25_on_seeds_finds_a_worded_question_about_a_number(seeds_bm25):
    hits = seeds_bm25.search("全国工会建成的户外劳动者服务站点有多少个？", k=3, mode="bm25")
    assert any("13.08万个" in h.text for h in hits), [h.text[:60] for h in hits]


def test_rebuild_from_a_warm_cache_never_loads_the_model(monkeypatch, small_corpus, tmp_path, fake_embedder):
    import rag.index.embedding as embedding_module

    loads = []

    def load(name, engine=None):
        loads.append(name)
        return fake_embedder

    monkeypatch.setattr(embedding_module, "load_embedder", load)
    settings = {"model": "fake/char-bigram", "cache": tmp_path / "c.sqlite3", "show_progress": False}
    Retriever.build([small_corpus], tmp_path / "a", **settings)
    assert loads == ["fake/char-bigram"]
    again = Retriever.build([small_corpus], tmp_path / "b", **settings)
    assert loads == ["fake/char-bigram"] and again.build_summary.embedded == 0
    assert again.manifest["model"] == {"name": "fake/char-bigram", "dim": 64}
    assert again.search("大熊猫", k=1, mode="dense")[0].doc.endswith("panda.md")
    assert loads == ["fake/char-bigram", "fake/char-bigram"]


def test_a_toc_entry_is_indexed_with_its_page_written_out():
    chunk = Chunk("c#1", "c.txt", ["目录", "一、地方工会"], "夏季工作总结　　3", 0, 9)
    assert passage_text(chunk) == "目录 > 一、地方工会\n夏季工作总结 第3页"
    # Only one-line chunks under a TOC heading are entries.
    assert passage_text(Chunk("c#2", "c.txt", ["前言"], "夏季工作总结　　3", 0, 9)) == "前言\n夏季工作总结　　3"


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_a_page_question_finds_the_toc_line_of_that_article(make_retriever, tmp_path, mode):
    folder = tmp_path / "compilation"
    folder.mkdir()
    body = "".join(f"{season}季工作总结\n\n{season}天工会开展了很多活动，职工工作总结写得很认真。\n\n"
                   for season in "春夏秋冬")
    toc = "目录\n\n" + "".join(f"{season}季工作总结　　{page}\n" for season, page in zip("春夏秋冬", (1, 4, 9, 12)))
    (folder / "c.txt").write_text(toc + "\n" + body, encoding="utf-8")
    retriever = make_retriever([folder])
    top = retriever.search("秋季工作总结在第几页？", k=1, mode=mode)[0]
    assert top.heading_path == ["目录"] and top.text == "秋季工作总结 9"


# --------------------------------------------------------------------------- sentence views

def test_sentence_views_carry_the_heading_and_join_short_sentences():
    chunk = Chunk("v#1", "v.txt", ["标题", "小标题"],
                  "第一句话说的是一件很长很长的事情，足够长了。短句。第三句话同样说得足够长，也超过二十个字了吧。", 0, 50)
    assert sentence_views(chunk) == [
        "标题 > 小标题\n第一句话说的是一件很长很长的事情，足够长了。",
        "标题 > 小标题\n短句。第三句话同样说得足够长，也超过二十个字了吧。",
    ]
    assert sentence_views(Chunk("v#2", "v.txt", [], "只有一句话。", 0, 6)) == []


def test_sentence_views_carry_the_header_the_index_asks_for():
    chunk = Chunk("v#1", "v.txt", ["标题", "小标题"],
                  "第一句话说的是一件很长很长的事情，足够长了。第二句话同样说得足够长，也超过二十个字了吧。", 0, 46)
    sentences = ["第一句话说的是一件很长很长的事情，足够长了。", "第二句话同样说得足够长，也超过二十个字了吧。"]
    assert sentence_views(chunk, "path") == [f"标题 > 小标题\n{s}" for s in sentences]
    assert sentence_views(chunk, "title") == [f"标题\n{s}" for s in sentences]
    assert sentence_views(chunk, "none") == sentences
    no_heading = Chunk("v#3", "v.txt", [], chunk.text, 0, 46)
    assert sentence_views(no_heading, "path") == sentence_views(no_heading, "title") == sentences
    with pytest.raises(InvalidArgumentError, match="unknown view header 'sentence'"):
        sentence_views(chunk, "sentence")


def test_an_index_embeds_views_with_its_own_header_when_built_and_added_to(make_retriever, small_corpus, tmp_path,
                                                                          fake_embedder):
    retriever = make_retriever([small_corpus], view_header="none")
    assert retriever.manifest["dense"]["view_header"] == "none"
    headed = [c for c in retriever.chunks if c.heading_path and sentence_views(c)]
    assert headed, "the small corpus has chunks with headings and views"
    embedded = {t for batch in fake_embedder.passage_calls for t in batch}
    bare = {v for c in retriever.chunks for v in sentence_views(c, "none")}
    assert bare <= embedded and not {v for c in headed for v in sentence_views(c, "path")} & embedded
    assert {passage_text(c) for c in headed} <= embedded  # chunks keep their heading path
    # views stored are the bare sentences' vectors
    pos = retriever.chunks.index(headed[0])
    a, b = retriever.store.view_offsets[pos], retriever.store.view_offsets[pos + 1]
    assert np.allclose(retriever.store.views[a:b], fake_embedder.encode_passages(sentence_views(headed[0], "none")))
    # a document added later gets views like the rest of the index, not the default's
    reloaded = Retriever.load(retriever.index_dir, embedder=fake_embedder, cache=tmp_path / "cache.sqlite3")
    assert reloaded.settings.view_header == "none"
    new = tmp_path / "moon.md"
    new.write_text("# 嫦娥工程\n\n嫦娥六号于2024年6月25日携带月球背面样品返回地球。这是人类首次从月球背面采样返回。",
                   encoding="utf-8")
    fake_embedder.passage_calls.clear()
    reloaded.add([new])
    added = {t for batch in fake_embedder.passage_calls for t in batch}
    moon = [c for c in reloaded.chunks if c.doc == "moon.md"]
    assert moon[0].heading_path == ["嫦娥工程"] and len(sentence_views(moon[0], "none")) == 2
    assert {v for c in moon for v in sentence_views(c, "none")} <= added
    assert not {v for c in moon for v in sentence_views(c, "path")} & added


def test_a_chunk_scores_by_its_best_sentence_view(small_retriever, fake_embedder):
    retriever = small_retriever
    multi = [i for i in range(len(retriever)) if retriever.store.view_offsets[i + 1] > retriever.store.view_offsets[i]]
    assert multi and len(retriever.store.views) == retriever.store.view_offsets[-1]
    pos = multi[0]
    a, b = retriever.store.view_offsets[pos], retriever.store.view_offsets[pos + 1]
    query = sentence_views(retriever.chunks[pos])[-1]
    qvec = fake_embedder.encode_queries([query])[0]
    best = max(float(retriever.store.vectors[pos] @ qvec), float((retriever.store.views[a:b] @ qvec).max()))
    assert best > float(retriever.store.vectors[pos] @ qvec)   # the sentence beats the whole chunk
    assert retriever.store.dense_scores([retriever.chunks[pos].id], qvec)[retriever.chunks[pos].id] == pytest.approx(best)
    top = retriever.search(query, k=1, mode="dense")[0]
    assert top.chunk_id == retriever.chunks[pos].id and top.score == pytest.approx(best)


def test_sentence_views_survive_reload_and_add(small_retriever, tmp_path, fake_embedder):
    reloaded = Retriever.load(small_retriever.index_dir, embedder=fake_embedder)
    assert np.array_equal(reloaded.store.views, small_retriever.store.views)
    assert np.array_equal(reloaded.store.view_offsets, small_retriever.store.view_offsets)
    new = tmp_path / "moon.md"
    new.write_text("# 嫦娥工程\n\n嫦娥六号于2024年6月25日携带月球背面样品返回地球。这是人类首次从月球背面采样返回。",
                   encoding="utf-8")
    summary = reloaded.add([new])
    assert summary.views == len(reloaded.store.views) == reloaded.store.view_offsets[-1] == len(small_retriever.store.views) + 2
    assert reloaded.store.dense.ntotal == len(reloaded) + len(reloaded.store.views)
    top = reloaded.search("人类首次从月球背面采样返回", k=1, mode="dense")[0]
    assert top.doc.endswith("moon.md")


def test_an_index_can_be_built_without_sentence_views(make_retriever, small_corpus):
    retriever = make_retriever([small_corpus], views=False)
    assert len(retriever.store.views) == 0 and retriever.build_summary.views == 0
    assert retriever.manifest["dense"]["sentence_views"] is False
    assert retriever.search("大熊猫", k=1, mode="dense")
