"""A fixed subset of an outside Q&A set, unpacked for a quick evaluation (the CI gate on crud-dev).

``eval/crud_subset.json`` names the corpus archive and Q&A file (relative to the
shared data folder, ``../shared`` beside the repository), the question ids and the
articles to keep. ``materialize`` unpacks those articles and writes one Q&A file
with the chosen questions plus the project's own extra questions over them
(``eval/crud_unanswerable.jsonl``), so ``rag eval --check`` runs on it like on
any other set.
"""
from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

from eval.qa import REPO_ROOT, load_qa
from rag.errors import RagError

CRUD_SUBSET = Path(__file__).resolve().parent / "crud_subset.json"
CRUD_EXTRA_QA = Path(__file__).resolve().parent / "crud_unanswerable.jsonl"
CRUD_BASELINE = Path(__file__).resolve().parent / "baseline_crud.json"


def shared_dir() -> Path:
    """The shared data folder: ``$RAG_SHARED_DIR``, else ``../shared`` beside the repository."""
    return Path(os.environ.get("RAG_SHARED_DIR") or REPO_ROOT.parent / "shared")


def materialize(out_dir: str | Path, spec_path: str | Path = CRUD_SUBSET, shared: str | Path | None = None,
                extra_qa: str | Path | None = CRUD_EXTRA_QA) -> tuple[Path, Path]:
    """Unpack the subset into ``out_dir/docs`` and write ``out_dir/qa.jsonl``; returns both paths.

    Raises ``RagError`` when the shared data is missing or the spec names an
    article or question that is not there.
    """
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    shared = Path(shared) if shared else shared_dir()
    archive, qa_file = shared / spec["corpus"], shared / spec["qa"]
    for path in (archive, qa_file):
        if not path.is_file():
            raise RagError(f"{path} not found: the subset {spec_path} needs the shared data "
                           f"(set RAG_SHARED_DIR to the folder that holds {spec['corpus']})")
    out_dir = Path(out_dir)
    docs = out_dir / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    wanted = set(spec["articles"])
    with tarfile.open(archive, "r:*") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and Path(m.name).name in wanted]
        missing = wanted - {Path(m.name).name for m in members}
        if missing:
            raise RagError(f"{archive} lacks {len(missing)} article(s) of the subset, e.g. {sorted(missing)[0]}")
        for member in members:
            source = tar.extractfile(member)
            (docs / Path(member.name).name).write_bytes(source.read() if source else b"")
    by_id = {item.id: item for item in load_qa(qa_file)}
    absent = [i for i in spec["questions"] if i not in by_id]
    if absent:
        raise RagError(f"{qa_file} lacks question(s) {', '.join(absent[:5])} of the subset")
    lines = [_line(by_id[i]) for i in spec["questions"]]
    if extra_qa:
        lines += [_line(item) for item in load_qa(extra_qa)]
    qa = out_dir / "qa.jsonl"
    qa.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return docs, qa


def _line(item) -> str:
    record = {"id": item.id, "question": item.question, "answer": item.answer, "must_contain": item.must_contain,
              "evidence": item.evidence, "source": item.source, "type": item.type}
    if item.evidence2:
        record.update(evidence2=item.evidence2, source2=item.source2)
    return json.dumps(record, ensure_ascii=False)
