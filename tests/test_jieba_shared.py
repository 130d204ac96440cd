"""One jieba dictionary per process: BM25, ingestion and answering share rag's tokenizer.

jieba's dictionary costs ~1 s to load and tens of MB to hold; answering used jieba's
global tokenizer (and ``jieba.posseg``) while BM25 and line joining each had their own,
so a serving process loaded it twice and a build twice. These tests check that the
shared tokenizer and tagger give exactly the words and tags jieba's own functions
give, and that a whole build + answer cycle initialises one dictionary only.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _texts() -> list[str]:
    """Real text: every line of the seeds and every evaluation question."""
    lines = [line for path in sorted((ROOT / "seeds").iterdir()) if path.is_file()
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [json.loads(line)["question"] for line in
                 (ROOT / "eval" / "qa.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines + questions


def test_shared_tokenizer_gives_jiebas_own_words_and_tags():
    import jieba
    import jieba.posseg as pseg

    from rag.tokenize_zh import jieba_pos_tokenizer, jieba_tokenizer

    segmenter, tagger = jieba_tokenizer(), jieba_pos_tokenizer()
    assert segmenter is not jieba.dt  # private: words added to jieba's global one change nothing here
    assert tagger.tokenizer is segmenter
    texts = _texts()
    assert len(texts) > 300
    for text in texts:
        assert segmenter.lcut(text) == jieba.lcut(text)
        assert segmenter.lcut_for_search(text) == jieba.lcut_for_search(text)
        assert segmenter.lcut(text, HMM=False) == jieba.lcut(text, HMM=False)
        assert [(p.word, p.flag) for p in tagger.cut(text)] == [(p.word, p.flag) for p in pseg.cut(text)]


_ONE_DICTIONARY = r"""
import gc, sys
import jieba, jieba.posseg
sys.path.insert(0, sys.argv[1])
from tests.conftest import FakeEmbedder
from rag.answering.assistant import Assistant
from rag.answering.followup import _find_entity
from rag.retrieval.retriever import Retriever
from rag.tokenize_zh import jieba_pos_tokenizer, jieba_tokenizer

retriever = Retriever.build([sys.argv[2]], sys.argv[3], embedder=FakeEmbedder(), cache=None, show_progress=False)
assistant = Assistant(retriever)
for q in ["12351热线什么时候全面建成？", "成都大熊猫繁育研究基地成立于哪一年？", "京沪高铁全长多少公里？",
          "谁宣布热线全面建成？", "西湖龙井产于哪个省？"]:
    assert assistant.ask(q).text
_find_entity("成都大熊猫繁育研究基地成立于哪一年？", "北京")
loaded = [t for t in gc.get_objects() if isinstance(t, jieba.Tokenizer) and t.initialized]
assert loaded == [jieba_tokenizer()], loaded
assert not jieba.dt.initialized
assert jieba_pos_tokenizer().word_tag_tab is jieba.posseg.dt.word_tag_tab  # no second tag table
print("ok")
"""


def test_build_and_answers_load_one_dictionary(tmp_path, small_corpus):
    """A fresh process that builds an index (line joins, BM25 tokens) and answers questions
    (keywords, question entities and tags, follow-up entities) initialises one jieba
    tokenizer: rag's, never jieba's global one."""
    result = subprocess.run([sys.executable, "-c", _ONE_DICTIONARY, str(ROOT), str(small_corpus),
                             str(tmp_path / "index")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
