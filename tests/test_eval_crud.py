"""The quality gate on an outside set: a fixed subset of ../shared/crud-dev (news nobody on the project wrote).

CI has ../shared beside the clone (read-only); the subset is unpacked into a
temporary folder, indexed and scored against eval/baseline_crud.json. Elsewhere
set RAG_SHARED_DIR to the folder holding crud-dev/.
"""
from __future__ import annotations

import json

import pytest

from eval.qa import load_qa
from eval.subset import CRUD_BASELINE, CRUD_EXTRA_QA, CRUD_SUBSET, materialize, shared_dir
from rag.cli import main
from rag.errors import RagError

needs_shared = pytest.mark.skipif(not (shared_dir() / "crud-dev" / "corpus.tar.xz").is_file(),
                                  reason="../shared/crud-dev is not here (set RAG_SHARED_DIR)")


@needs_shared
def test_the_subset_unpacks_its_articles_and_writes_one_qa_file(tmp_path):
    spec = json.loads(CRUD_SUBSET.read_text(encoding="utf-8"))
    docs, qa = materialize(tmp_path)
    assert sorted(p.name for p in docs.iterdir()) == sorted(spec["articles"])
    items = load_qa(qa)
    assert [i.id for i in items][: len(spec["questions"])] == spec["questions"]
    assert len(items) == len(spec["questions"]) + len(load_qa(CRUD_EXTRA_QA))
    # every answerable question's evidence is in an article of the subset
    for item in items:
        if item.answerable:
            assert item.evidence in (docs / item.source).read_text(encoding="utf-8")


def test_a_missing_shared_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RagError, match="RAG_SHARED_DIR"):
        materialize(tmp_path / "out", shared=tmp_path / "nothing-here")


@needs_shared
@pytest.mark.slow
def test_quality_gate_on_the_crud_dev_subset(tmp_path, capsys):
    """CI quality gate on the outside set: `rag eval --check` against eval/baseline_crud.json."""
    docs, qa = materialize(tmp_path / "crud")
    code = main(["eval", "--check", "--qa", str(qa), "--docs", str(docs), "--index", str(tmp_path / "index"),
                 "--generator", "extractive", "--modes", "hybrid", "--out", str(tmp_path / "out"),
                 "--baseline", str(CRUD_BASELINE), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "quality gate passed" in captured.out
