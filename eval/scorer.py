"""Run a retriever and an assistant over a Q&A file and score them.

``RagEvaluator`` works like a sentence-transformers evaluator: build it once
from the questions and the corpus, then call it with the system under test::

    evaluator = RagEvaluator.from_files("eval/qa.jsonl", "seeds")
    metrics = evaluator(retriever)            # assistants: rag.Assistant(retriever, generator=g)

The pipeline only ever receives the question string: answers, key facts and
evidence stay inside the evaluator and are used for scoring alone.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

from eval import metrics as M
from eval.qa import TYPES, QAItem, gold_spans, load_qa, load_sources, source_key, sources_from_index
from rag.errors import RagError

DEFAULT_MODES = ("dense", "bm25", "hybrid")
DEFAULT_GENERATORS = ("extractive",)
RETRIEVAL_KEYS = ("R@1", "R@3", "R@5", "R@10", "MRR@10", "nDCG@10")
ANSWER_KEYS = ("key_fact_accuracy", "char_f1", "citation_hit", "citation_precision", "grounded",
               "abstention_precision", "abstention_recall", "false_abstention_rate", "answer_chars_p50",
               "shown_extractive")
TOP_HITS_IN_FAILURES = 3

AssistantFactory = Callable[[Any, str], Any]


def default_assistant_factory(retriever: Any, generator: str) -> Any:
    """``rag.Assistant(retriever, generator=generator)`` (imported only when needed)."""
    from rag import Assistant

    return Assistant(retriever, generator=generator)


def _span(obj: Any) -> M.Span:
    return (str(getattr(obj, "doc", "")), int(getattr(obj, "start", 0)), int(getattr(obj, "end", 0)))


def _hit_summary(hit: Any, golds) -> dict[str, Any]:
    span = _span(hit)
    return {
        "doc": span[0], "start": span[1], "end": span[2],
        "heading_path": list(getattr(hit, "heading_path", []) or []),
        "score": round(float(getattr(hit, "score", 0.0)), 4),
        "relevant": any(M.covers(span, g) for g in golds),
        "text": str(getattr(hit, "text", ""))[:80],
    }


class RagEvaluator:
    """Scores retrieval modes and answer generators on one Q&A set."""

    def __init__(self, items: Sequence[QAItem], sources: dict[str, str],
                 modes: Sequence[str] = DEFAULT_MODES, generators: Sequence[str] = DEFAULT_GENERATORS,
                 k: int = 10, show_progress: bool = True, name: str = "") -> None:
        if not items:
            raise RagError("the Q&A set has no questions")
        self.items = list(items)
        self.sources = sources
        self.modes = list(modes)
        self.generators = list(generators)
        self.k = k
        self.show_progress = show_progress
        self.name = name
        self.golds = {item.id: gold_spans(item, sources) for item in self.items}
        missing = [item.id for item in self.items if item.answerable and not self.golds[item.id]]
        if missing:
            raise RagError(f"evidence not found in the corpus for {', '.join(missing[:10])} "
                           f"(run `rag eval --validate` on the Q&A file)")

    @classmethod
    def from_files(cls, qa_path: str | Path | Sequence[str | Path], docs_dir: str | Path,
                   **options: Any) -> "RagEvaluator":
        """An evaluator for the Q&A file(s) ``qa_path`` (several are scored as one set) over
        the documents in ``docs_dir``."""
        paths = _paths(qa_path)
        return cls(_load_all(paths), load_sources(docs_dir), name=",".join(map(str, paths)), **options)

    @classmethod
    def from_index(cls, qa_path: str | Path | Sequence[str | Path], retriever: Any, **options: Any) -> "RagEvaluator":
        """An evaluator whose gold spans are found in the texts the index stores: for a
        corpus of PDF, Word, HTML or scanned files (matched to the Q&A file by stem)."""
        paths = _paths(qa_path)
        return cls(_load_all(paths), sources_from_index(retriever), name=",".join(map(str, paths)), **options)

    def check_index(self, retriever: Any) -> None:
        """Raise when the index does not hold the documents the questions' evidence is in
        (an index of another corpus would score every question as a miss)."""
        indexed = {source_key(d) for d in getattr(retriever, "documents", [])}
        needed = {g.source for golds in self.golds.values() for g in golds}
        if indexed and needed and not needed & indexed:
            where = getattr(retriever, "index_dir", "the index")
            raise RagError(f"the index at {where} holds none of the documents the Q&A set's evidence is in "
                           f"(e.g. {sorted(needed)[0]}); build one of them with --docs and a new --index")

    # --- running ---------------------------------------------------------------

    def __call__(self, retriever: Any, assistant_factory: AssistantFactory | None = None) -> dict[str, Any]:
        """Run every mode and generator; return the metrics dict (see ``eval.report``)."""
        factory = assistant_factory or default_assistant_factory
        total = len(self.items) * (len(self.modes) + len(self.generators))
        bar = self._progress(total)
        try:
            retrieval = {mode: self.run_retrieval(retriever, mode, bar) for mode in self.modes}
            answers = {}
            for generator in self.generators:
                answers[generator] = self.run_answers(factory(retriever, generator), generator, bar)
        finally:
            if bar is not None:
                bar.close()
        return self.aggregate(retrieval, answers)

    def _progress(self, total: int):
        if not self.show_progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc="rag eval", unit="q", leave=False)

    def run_retrieval(self, retriever: Any, mode: str, bar=None) -> list[dict[str, Any]]:
        """One record per question: scores (answerable only), latency, top hits."""
        records = []
        for item in self.items:
            if bar is not None:
                bar.set_postfix_str(f"search {mode}")
            started = time.perf_counter()
            hits = list(retriever.search(item.question, k=self.k, mode=mode))
            elapsed = (time.perf_counter() - started) * 1000
            golds = self.golds[item.id]
            record = {"id": item.id, "type": item.type, "latency_ms": elapsed,
                      "top": [_hit_summary(h, golds) for h in hits[:TOP_HITS_IN_FAILURES]]}
            if item.answerable:
                record["scores"] = M.retrieval_scores([_span(h) for h in hits], golds)
            records.append(record)
            if bar is not None:
                bar.update(1)
        return records

    def run_answers(self, assistant: Any, generator: str, bar=None) -> list[dict[str, Any]]:
        """One record per question with the answer and its per-question scores."""
        records, errors = [], []
        for item in self.items:
            if bar is not None:
                bar.set_postfix_str(f"answer {generator}")
            started = time.perf_counter()
            try:
                answer = assistant.ask(item.question)
                error = None
            except Exception as exc:  # one failing question must not hide the others
                answer, error = None, f"{type(exc).__name__}: {exc}"
                errors.append(error)
            elapsed = (time.perf_counter() - started) * 1000
            records.append(self.score_answer(item, answer, elapsed, error))
            if bar is not None:
                bar.update(1)
        if errors and len(errors) == len(self.items):
            raise RagError(f"generator '{generator}' failed on every question: {errors[0]}")
        return records

    def score_answer(self, item: QAItem, answer: Any, latency_ms: float, error: str | None = None) -> dict[str, Any]:
        """Per-question answer scores (``None`` where a score does not apply)."""
        text = str(getattr(answer, "text", "") or "") if answer is not None else ""
        abstained = bool(getattr(answer, "abstained", False)) if answer is not None else False
        citations = list(getattr(answer, "citations", []) or []) if answer is not None else []
        hits = list(getattr(answer, "hits", []) or []) if answer is not None else []
        golds = self.golds[item.id]
        answered = not abstained
        record: dict[str, Any] = {
            "id": item.id, "type": item.type, "answerable": item.answerable,
            "abstained": abstained, "latency_ms": latency_ms, "error": error,
            "text": text,
            "answered_by": str(getattr(answer, "generator", "") or "") if answer is not None else "",
            "citations": [{"doc": c[0], "start": c[1], "end": c[2], "quote": str(getattr(cit, "quote", ""))}
                          for cit, c in ((cit, _span(cit)) for cit in citations)],
            "top": [_hit_summary(h, golds) for h in hits[:TOP_HITS_IN_FAILURES]],
        }
        if item.answerable:
            record["key_fact"] = answered and M.key_facts_present(text, item.must_contain)
            record["char_f1"] = M.char_f1(text, item.answer) if answered else 0.0
            record["citation_hit"] = (M.citation_hits_gold([_span(c) for c in citations], golds)
                                      if answered else None)
            record["citation_precision"] = (M.citation_precision([_span(c) for c in citations], golds)
                                            if answered else None)
        quotes = [str(getattr(c, "quote", "")) for c in citations]
        record["grounded"] = (M.is_grounded(text, item.question, item.must_contain, quotes)
                              if answered and text.strip() else None)
        return record

    # --- aggregation -------------------------------------------------------------

    @staticmethod
    def retrieval_metrics(records: Sequence[dict[str, Any]]) -> dict[str, float | None]:
        scored = [r["scores"] for r in records if "scores" in r]
        return {key: M.mean(s[key] for s in scored) for key in RETRIEVAL_KEYS}

    @staticmethod
    def answer_metrics(records: Sequence[dict[str, Any]]) -> dict[str, float | None]:
        answerable = [r for r in records if r["answerable"]]
        out: dict[str, float | None] = {
            "key_fact_accuracy": M.mean(1.0 if r["key_fact"] else 0.0 for r in answerable),
            "char_f1": M.mean(r["char_f1"] for r in answerable),
            "citation_hit": M.mean(None if r["citation_hit"] is None else float(r["citation_hit"])
                                   for r in answerable),
            # per answer: the share of its citations on the gold evidence; averaged over
            # answered answerable questions that cite something
            "citation_precision": M.mean(r.get("citation_precision") for r in answerable),
            "grounded": M.mean(None if r["grounded"] is None else float(r["grounded"]) for r in records),
            # how long the answers are (characters, [n] markers left out), next to how often they are right
            "answer_chars_p50": M.percentile([len(M.strip_markers(r["text"])) for r in answerable
                                              if not r["abstained"] and r["text"]], 50),
            # share of answers shown as extractive quotes: for an LLM generator, those it fell back on
            # (a refusal, an invented number, a dropped fact, no verifiable citation)
            "shown_extractive": M.mean(1.0 if r.get("answered_by") == "extractive" else 0.0
                                               for r in records if not r["abstained"] and r.get("answered_by")),
        }
        out.update(M.abstention_scores([r["abstained"] for r in records], [r["answerable"] for r in records]))
        return out

    @staticmethod
    def latency(records: Sequence[dict[str, Any]]) -> dict[str, float | None]:
        values = [r["latency_ms"] for r in records]
        return {"p50_ms": M.percentile(values, 50), "p95_ms": M.percentile(values, 95)}

    def aggregate(self, retrieval: dict[str, list[dict[str, Any]]],
                  answers: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        """The metrics dict from per-question records."""
        counts = Counter(item.type for item in self.items)
        result: dict[str, Any] = {
            "meta": {"qa_file": self.name, "questions": len(self.items),
                     "per_type": {t: counts[t] for t in TYPES if counts[t]},
                     "modes": self.modes, "generators": self.generators, "k": self.k},
            "retrieval": {m: self.retrieval_metrics(r) for m, r in retrieval.items()},
            "multi_both": {},
            "answer": {g: self.answer_metrics(r) for g, r in answers.items()},
            "latency": {"retrieval": {m: self.latency(r) for m, r in retrieval.items()},
                        "answer": {g: self.latency(r) for g, r in answers.items()}},
            "by_type": {},
            "failures": [],
        }
        for mode, records in retrieval.items():
            multi = [r["scores"] for r in records if r["type"] == "multi" and "scores" in r]
            result["multi_both"][mode] = {"questions": len(multi),
                                          "both@5": M.mean(s["both@5"] for s in multi),
                                          "both@10": M.mean(s["both@10"] for s in multi)}
        for kind in TYPES:
            if not counts[kind]:
                continue
            entry: dict[str, Any] = {"questions": counts[kind]}
            if kind != "unanswerable":
                entry["retrieval"] = {m: self.retrieval_metrics([x for x in r if x["type"] == kind])
                                      for m, r in retrieval.items()}
            entry["answer"] = {g: self.answer_metrics([x for x in r if x["type"] == kind])
                               for g, r in answers.items()}
            result["by_type"][kind] = entry
        result["failures"] = self.failures(answers)
        return result

    def failures(self, answers: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """Wrong answers, for reading: question, expected, got, citations, top hits."""
        by_id = {item.id: item for item in self.items}
        out = []
        for generator, records in answers.items():
            for r in records:
                item = by_id[r["id"]]
                reasons = []
                if r["error"]:
                    reasons.append("error")
                if item.answerable:
                    if r["abstained"]:
                        reasons.append("false abstention")
                    else:
                        if not r["key_fact"]:
                            reasons.append("missing key facts")
                        if not r["citation_hit"]:
                            reasons.append("gold evidence not cited")
                elif not r["abstained"]:
                    reasons.append("answered an unanswerable question")
                if r["grounded"] is False:
                    reasons.append("ungrounded facts")
                if not reasons:
                    continue
                out.append({
                    "generator": generator, "id": item.id, "type": item.type,
                    "question": item.question, "reasons": reasons,
                    "expected": {"answer": item.answer, "must_contain": item.must_contain,
                                 "source": item.source, "source2": item.source2},
                    "got": {"text": r["text"], "abstained": r["abstained"], "error": r["error"],
                            "citations": r["citations"]},
                    "top_hits": r["top"],
                })
        return out


def _paths(qa_path: str | Path | Sequence[str | Path]) -> list[Path]:
    return [Path(qa_path)] if isinstance(qa_path, (str, Path)) else [Path(p) for p in qa_path]


def _load_all(paths: Sequence[Path]) -> list[QAItem]:
    items = [item for path in paths for item in load_qa(path)]
    seen: set[str] = set()
    duplicates = [i.id for i in items if i.id in seen or seen.add(i.id)]
    if duplicates:
        raise RagError(f"question ids repeat across the Q&A files: {', '.join(duplicates[:10])}")
    return items
