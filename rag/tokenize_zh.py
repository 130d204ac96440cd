"""Chinese tokenization for the BM25 keyword index.

jieba's search mode (words plus their dictionary sub-words) does the segmenting;
on top of it this module

* folds width and case (NFKC, lower-case) so ``１２３５１``/``12351`` and ``GDP``/``gdp`` match,
* drops punctuation, whitespace and a short list of function/question words,
* keeps numbers intact (``13.08``, ``5.2%``) and also emits a number glued to the
  one or two CJK characters after it (``13.08万``, ``13.08万个``, ``12351热``,
  ``12351热线``), so a question saying ``13.08万`` matches a text saying
  ``13.08万个`` on more than the bare number,
* optionally adds character bigrams of CJK runs (``bigrams=True``), which helps
  when a question words a name differently from the text.

The jieba dictionary is loaded once, on first use (about 1 s), and shared with every
other jieba user in the program (``jieba_tokenizer``, ``jieba_pos_tokenizer``).
"""
from __future__ import annotations

import contextlib
import logging
import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any, Iterable, Iterator

#: Bumped whenever the tokens produced for the same text change: an index built
#: with other tokens cannot be queried correctly, so the manifest records this.
TOKENIZER_VERSION = "jieba-search+num+ji/2"

#: Function words and question words: frequent, or never in the documents.
STOPWORDS = frozenset(
    """
    的 了 和 与 及 或 是 在 也 都 就 而 并 且 等 之 其 这 那 着 把 被 对 于 为 以 由 从
    吗 呢 吧 啊 呀 么 哦 嘛 得 地 个 该 此 有 没有 一个 一些 这个 那个 这些 那些 它 它们
    什么 哪些 哪个 哪 哪里 哪儿 多少 几 怎么 怎样 如何 是否 为什么 谁 何时 何 请问 请
    the a an of to in on for and or is are was were be by with what which who how when where why
    does do did
    """.split()
)

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN_RE = re.compile(f"[{_CJK}]+")
# A number (integer or decimal, optional percent/permille) and up to two CJK characters after it.
_NUMBER_RE = re.compile(rf"(?<![\d.])(\d+(?:\.\d+)?[%‰]?)([{_CJK}]{{0,2}})")
# Thousands separators inside numbers: 1,335 -> 1335.
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_WORD_CHAR_RE = re.compile(rf"[\w{_CJK}]")
# A question for a number with its measure word: 第几页, 几届, 多少名 -> 页, 届, 名.
_ASKED_MEASURE_RE = re.compile(rf"^(?:第?几|多少)([{_CJK}])$")

_lock = threading.Lock()


@lru_cache(maxsize=1)
def jieba_tokenizer():
    """The one jieba tokenizer of this program, its dictionary loaded once (thread-safe).

    Every jieba user in rag goes through it: BM25 tokens (``tokenize``), line joins in
    ingestion (``rag.ingest.cleaning``) and the answering stage's words and tags
    (``jieba_pos_tokenizer``). A dictionary costs ~1 s to load and ~60 MB held, so a
    serving process used to pay twice (jieba's global tokenizer for answering and a
    private one for BM25), a build twice as well. It is private, not jieba's global
    ``jieba.dt``: words another library adds there must not change an index's tokens.
    """
    import jieba

    jieba.setLogLevel(logging.WARNING)
    with _lock:
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
    return tokenizer


@lru_cache(maxsize=1)
def jieba_pos_tokenizer():
    """jieba's part-of-speech tagger over ``jieba_tokenizer()``'s dictionary (words and
    tags exactly as ``jieba.posseg.cut``'s with the default dictionary).

    ``jieba.posseg`` builds its word-tag table (from the same dictionary file) when it
    is imported; this tagger shares that table rather than reading a second one, and
    segments with the shared tokenizer instead of initialising ``jieba.dt``.
    """
    import jieba.posseg as pseg

    class _SharedPOSTokenizer(pseg.POSTokenizer):
        def __init__(self, tokenizer, word_tag_tab):  # no second read of the dictionary file
            self.tokenizer = tokenizer
            self.word_tag_tab = word_tag_tab

    return _SharedPOSTokenizer(jieba_tokenizer(), pseg.dt.word_tag_tab)


def normalize_text(text: str) -> str:
    """NFKC, lower-case, thousands separators removed."""
    return _THOUSANDS_RE.sub("", unicodedata.normalize("NFKC", text).lower())


def _keep(token: str) -> bool:
    return bool(_WORD_CHAR_RE.search(token)) and token not in STOPWORDS


def number_tokens(text: str) -> list[str]:
    """Extra tokens for numbers: the number with its next one and two CJK characters."""
    out: list[str] = []
    for match in _NUMBER_RE.finditer(text):
        number, unit = match.groups()
        for width in range(1, len(unit) + 1):
            out.append(number + unit[:width])
    return out


def asked_measure_words(tokens: Iterable[str]) -> list[str]:
    """The measure word of each "how many/which number" token (``第几页`` -> ``页``).

    jieba keeps ``第几页`` whole, so without this a page question never meets
    the ``页`` of ``第25页``; the question word itself matches no passage.
    """
    tokens = list(tokens)
    out: list[str] = []
    for token in tokens:
        match = _ASKED_MEASURE_RE.match(token)
        measure = match.group(1) if match else None
        if measure and measure not in STOPWORDS and measure not in out and measure not in tokens:
            out.append(measure)
    return out


def cjk_bigrams(text: str) -> list[str]:
    """Overlapping character bigrams of every run of CJK characters."""
    out: list[str] = []
    for run in _CJK_RUN_RE.findall(text):
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def tokenize(text: str, bigrams: bool = False) -> list[str]:
    """BM25 tokens of ``text`` (see the module docstring). Order is not meaningful."""
    text = normalize_text(text)
    tokens = [t.strip() for t in jieba_tokenizer().cut_for_search(text)]
    tokens = [t for t in tokens if t and _keep(t)]
    tokens.extend(asked_measure_words(tokens))
    tokens.extend(number_tokens(text))
    if bigrams:
        tokens.extend(b for b in cjk_bigrams(text) if b not in STOPWORDS)
    return tokens


#: From this many texts on, ``tokenize_many`` spreads jieba over worker processes
#: (jieba is pure Python: one process tokenizes ~1 M-chunk collections in ~26 min).
PARALLEL_MIN_TEXTS = 4000
#: Texts per task sent to a worker (amortises the inter-process copy).
_TASK_TEXTS = 500


def tokenize_many(texts: Iterable[str], bigrams: bool = False, workers: int | None = None,
                  show_progress: bool = False, parallel_min: int | None = None,
                  pool=None) -> list[list[str]]:
    """``tokenize`` applied to each text; the same tokens, in order.

    With ``parallel_min`` (default ``PARALLEL_MIN_TEXTS``) texts or more and more than one
    core, the work is split over ``workers`` processes (default: the usable cores);
    ``show_progress`` shows a bar with rate and ETA. ``pool``: a ``tokenizer_pool()``
    kept across calls (a streaming build tokenizes batch after batch), so its workers
    start once, not for every batch.
    """
    texts = list(texts)
    workers = workers or _usable_cores()
    threshold = PARALLEL_MIN_TEXTS if parallel_min is None else parallel_min
    from tqdm.auto import tqdm

    with tqdm(total=len(texts), desc="tokenizing for BM25", unit="passage",
              disable=not show_progress or len(texts) < 1000) as bar:
        if (pool is None and workers <= 1) or len(texts) < max(threshold, 2):
            out = []
            for text in texts:
                out.append(tokenize(text, bigrams=bigrams))
                bar.update(1)
            return out
        from functools import partial

        tasks = [texts[i:i + _TASK_TEXTS] for i in range(0, len(texts), _TASK_TEXTS)]
        out = []
        with contextlib.ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(tokenizer_pool(min(workers, len(tasks))))
            for tokens in pool.map(partial(_tokenize_task, bigrams=bigrams), tasks):
                out.extend(tokens)
                bar.update(len(tokens))
        return out


@contextlib.contextmanager
def tokenizer_pool(workers: int | None = None) -> Iterator[Any]:
    """Worker processes for ``tokenize_many(..., pool=)``, started on first use (a small
    build never starts them) and shut down when the block ends; None (tokenize in this
    process) when only one core is usable."""
    workers = workers or _usable_cores()
    if workers <= 1:
        yield None
        return
    pool = _LazyPool(workers)
    try:
        yield pool
    finally:
        pool.shutdown()


class _LazyPool:
    """A spawn-process pool whose processes start with its first ``map``."""

    def __init__(self, workers: int):
        self.workers = workers
        self._executor = None

    def map(self, fn, tasks):
        if self._executor is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: the parent may hold torch/OpenMP threads and open SQLite handles
            self._executor = ProcessPoolExecutor(max_workers=self.workers,
                                                 mp_context=multiprocessing.get_context("spawn"))
        return self._executor.map(fn, tasks)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None


def _tokenize_task(texts: list[str], bigrams: bool) -> list[list[str]]:
    return [tokenize(text, bigrams=bigrams) for text in texts]


def _usable_cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
