"""Retrieval: the texts that are embedded and keyword-indexed (``passages``), how the
dense and BM25 lists are combined (``fusion``), and the ``Retriever`` above a store."""
