from pathlib import Path

import pytest

from rag.ingest.documents import load_documents
from rag.ingest.plaintext import decode_bytes
from rag.errors import DocumentError, RagError
from rag.ingest import ingest

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def test_seeds_load_in_sorted_order_with_names_relative_to_the_folder():
    documents, problems = load_documents([SEEDS])
    assert problems == []
    assert [d.name for d in documents] == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert all(d.encoding == "utf-8" for d in documents)


def test_folders_are_walked_recursively_and_names_keep_subfolders(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "二.md").write_text("# 标题\n\n正文。", encoding="utf-8")
    (tmp_path / "a.txt").write_text("第一篇。", encoding="utf-8")
    (tmp_path / "notes.xyz").write_bytes(b"?")
    (tmp_path / ".hidden.txt").write_text("隐藏。", encoding="utf-8")
    documents, problems = load_documents(tmp_path)
    assert [d.name for d in documents] == ["a.txt", "b/二.md"]
    # Nothing is skipped in silence: the file no loader reads is listed by name.
    assert [p.path.name for p in problems] == ["notes.xyz"]
    assert "unsupported file type '.xyz'" in problems[0].message


def test_gbk_encoded_file_decodes_with_the_gb18030_fallback(tmp_path):
    path = tmp_path / "gbk.txt"
    path.write_bytes("工会服务职工热线全面建成。".encode("gbk"))
    documents, problems = load_documents([path])
    assert problems == []
    assert documents[0].text == "工会服务职工热线全面建成。"
    assert documents[0].encoding == "gb18030"


def test_utf8_bom_is_stripped_and_offsets_refer_to_the_text_without_it(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff拍卖公告\n\n受委托，定于三月拍卖。".encode("utf-8"))
    result = ingest([path])
    document = result.documents[0]
    assert document.encoding == "utf-8-sig"
    assert document.text.startswith("拍卖公告")
    chunk = result.chunks[0]
    assert document.text[chunk.start:chunk.start + 4] == "拍卖公告"


def test_undecodable_and_empty_files_become_problems_naming_the_file_while_others_load(tmp_path):
    (tmp_path / "good.txt").write_text("正文。", encoding="utf-8")
    (tmp_path / "broken.txt").write_bytes(b"\x80\xff\xfe\x81\xff" * 20)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text(" \n\u3000\r\n", encoding="utf-8")
    result = ingest([tmp_path])
    assert [d.name for d in result.documents] == ["good.txt"]
    messages = {p.path.name: p.message for p in result.problems}
    assert set(messages) == {"broken.txt", "empty.txt", "blank.md"}
    assert "broken.txt" in messages["broken.txt"] and "cannot decode" in messages["broken.txt"]
    assert "empty.txt" in messages["empty.txt"] and "empty" in messages["empty.txt"]
    assert "empty" in messages["blank.md"]
    assert result.chunks and all(c.doc == "good.txt" for c in result.chunks)


def test_binary_data_is_refused_rather_than_decoded_into_garbage():
    with pytest.raises(DocumentError, match="binary"):
        decode_bytes(b"PK\x03\x04\x00\x00binary", "x.txt")


def test_a_missing_path_is_a_clear_error():
    with pytest.raises(RagError, match="no such file or folder"):
        load_documents(["/nonexistent/folder/x.txt"])


def test_unsupported_file_given_directly_is_reported(tmp_path):
    path = tmp_path / "report.xyz"
    path.write_bytes(b"zip")
    documents, problems = load_documents([path])
    assert documents == []
    assert "report.xyz" in problems[0].message and "unsupported file type" in problems[0].message
    assert ".txt" in problems[0].message  # the message says what is supported


def test_the_same_file_name_in_two_folders_gets_distinct_names(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.txt").write_text(f"{folder}文档。", encoding="utf-8")
    documents, _ = load_documents([tmp_path / "x", tmp_path / "y"])
    assert len({d.name for d in documents}) == 2
