"""Offline evaluation of the retrieval and answering pipeline.

* ``eval/qa.jsonl``: the hand-written Chinese Q&A set (schema in ``eval.qa``);
* ``eval.validate``: checks a Q&A file against the corpus (``rag eval --validate``);
* ``eval.metrics``: pure metric functions (retrieval, answers, citations, abstention);
* ``eval.scorer``: ``RagEvaluator``, runs a retriever/assistant over any Q&A file;
* ``eval.report``: JSON, Markdown and PNG outputs; ``eval.gate``: the baseline check.

Nothing here is imported by the pipeline: the dependency runs eval -> rag only.
"""
