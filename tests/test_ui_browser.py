"""The chat UI in a real browser: `rag serve` on the seeds index, driven by Playwright.

Debian's chromium is used (scripts/install-browser.sh; Playwright's own browser
download needs the internet). The test starts `rag serve` on a free port against
the session's seeds index, asks a question from the Q&A set and an unanswerable
one, checks what the page shows and saves a screenshot (path printed; also
copied into $RAG_SCREENSHOT_DIR when that is set).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from serving import rag_serve

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path(os.environ.get("RAG_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# From eval/qa.jsonl (q033): the answer is in seeds/004 ("149万通").
QUESTION = "2024年12351热线全年接了多少个职工群众来电？"
EXPECTED = "149万"
UNANSWERABLE = "量子计算机的工作原理是什么？"
ANSWER_TIMEOUT_MS = 240_000  # the first question loads the embedding model


@pytest.fixture(scope="module")
def server(seeds_index, tmp_path_factory):
    """`rag serve` as a user starts it, on a free port, against the seeds index."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with rag_serve(["--index", str(seeds_index)], log) as base:
        yield base + "/"


@pytest.fixture
def page(tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: run scripts/install-browser.sh (make test does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000}, locale="zh-CN",
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def screenshot(page, path: Path) -> Path:
    """Save a full-page screenshot, print its path, copy it to $RAG_SCREENSHOT_DIR if set."""
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    if os.environ.get("RAG_SCREENSHOT_DIR"):
        target = Path(os.environ["RAG_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)
        print(f"screenshot copied to: {target / path.name}")
    return path


def ask(page, question: str) -> None:
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")


def test_chat_streams_a_cited_answer_and_shows_an_abstention(server, page, tmp_path):
    page.goto(server)
    page.wait_for_selector("#question textarea", timeout=60_000)
    assert "来源" in page.inner_text("#sources-col")

    # A question from the Q&A set: a streamed answer with [n] markers ...
    ask(page, QUESTION)
    page.wait_for_selector("#sources .src-card[id^='src-1-']", timeout=ANSWER_TIMEOUT_MS)
    bot = page.locator("#chat .bot").last
    assert EXPECTED in bot.inner_text()
    marker = bot.locator("a.cite").first
    assert marker.inner_text() == "[1]"
    title = marker.get_attribute("title") or ""
    assert ".txt" in title and EXPECTED in title  # hovering shows document and quote

    # ... and the sources panel: document, heading path, highlighted sentence, score.
    card = page.locator("#src-1-1")
    assert card.locator(".src-doc").inner_text().endswith(".txt")
    heading_path = card.locator(".src-path").inner_text().strip()
    assert heading_path and heading_path != "（正文）"
    assert EXPECTED in card.locator("mark").first.inner_text()
    assert card.locator(".score").inner_text().strip()
    assert "检索" in page.inner_text("#status") and "回答" in page.inner_text("#status")

    marker.hover()
    assert "hovered" in (card.get_attribute("class") or "")
    marker.click()
    page.wait_for_function("document.querySelector('#src-1-1').classList.contains('flash')")
    assert len(page.context.pages) == 1  # the marker did not open a new tab

    shots = [screenshot(page, tmp_path / "chat-cited-answer.png")]

    # An unanswerable question is shown as such, with "may be related" passages.
    ask(page, UNANSWERABLE)
    page.wait_for_selector("#chat .abstain", timeout=ANSWER_TIMEOUT_MS)
    page.wait_for_selector("#sources .src-abstain")
    assert "未找到答案" in page.locator("#chat .bot").last.inner_text()
    assert "可能相关" in page.inner_text("#sources")
    assert page.locator("#sources details.older #src-1-1").count() == 1  # earlier answer folded

    shots.append(screenshot(page, tmp_path / "chat-abstention.png"))
    assert all(shot.stat().st_size > 10_000 for shot in shots)

    # The user's own text is shown as typed: a Markdown image in it is never fetched.
    from openai_recorder import recording_endpoint

    with recording_endpoint() as pixel:
        image = f"![p]({pixel.base_url}/pixel.png)"
        ask(page, f"{image} 12351热线是什么？")
        page.wait_for_selector("#sources .sources[data-turn='3']", timeout=ANSWER_TIMEOUT_MS)
        user = page.locator("#chat .user").last
        assert image in user.inner_text()
        assert page.locator("#chat img").count() == 0
        page.wait_for_timeout(500)
    assert pixel.requests == []


# ------------------------------------------------------------------ documents tab

LOGIN = ("reader", "browser-test-password")


@pytest.fixture(scope="module")
def docs_server(seeds_index, tmp_path_factory):
    """`rag serve` with a UI login on two copies of the seeds index (this test deletes from one):
    knowledge bases "seeds" and "other"."""
    root = tmp_path_factory.mktemp("docs-serve")
    index, other = root / "index", root / "other"
    shutil.copytree(seeds_index, index)
    shutil.copytree(seeds_index, other)
    log = root / "serve.log"
    with rag_serve(["--index", f"seeds={index}", "--index", f"other={other}", "--auth", ":".join(LOGIN)],
                   log) as base:
        yield base + "/", index


def choose(page, dropdown: str, name: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.locator(f'{dropdown} li[role=option][aria-label="{name}"]').click()
    page.wait_for_function(f"document.querySelector('{dropdown} input').value === '{name}'")


def choose_document(page, name: str) -> None:
    choose(page, "#doc-pick", name)


def wait_for_doc_status(page, done: str, log: Path) -> str:
    """Wait for the documents tab's status to report `done`, failing at once (with the text)
    when it reports an error instead, and with the server's log when nothing comes."""
    try:
        page.wait_for_function(
            f"(s => s && (s.innerText.includes('{done}') || s.querySelector('.status-error')))"
            "(document.querySelector('#doc-status'))", timeout=ANSWER_TIMEOUT_MS)
    except Exception as exc:  # playwright's TimeoutError; playwright is imported only by the fixture
        if type(exc).__name__ != "TimeoutError":
            raise
        pytest.fail(f"no {done!r} in the status ({page.inner_text('#doc-status')!r}); the picker shows "
                    f"{page.input_value('#doc-pick input')!r}; server log:\n{log.read_text(errors='replace')[-3000:]}")
    status = page.inner_text("#doc-status")
    assert done in status, status
    return status


def test_documents_tab_needs_the_login_deletes_re_indexes_and_follows_the_knowledge_base(docs_server, page, tmp_path):
    from rag import Retriever

    url, index = docs_server  # knowledge base "seeds"
    names = sorted(Retriever.load(index).documents)
    assert len(names) == 5
    gone, again = names[0], names[1]

    page.goto(url)  # the UI asks for its login first
    page.wait_for_selector("input[type=password]", timeout=60_000)
    assert page.locator("#question").count() == 0
    page.locator("input[type=text]").first.fill(LOGIN[0])
    page.locator("input[type=password]").fill(LOGIN[1])
    page.locator("input[type=password]").press("Enter")
    page.wait_for_selector("#question textarea", timeout=60_000)

    page.get_by_role("tab", name="文档 Documents").click()
    page.wait_for_function(
        f"document.querySelector('#doc-table') && document.querySelector('#doc-table').innerText.includes('{gone}')",
        timeout=60_000)
    table = page.inner_text("#doc-table")
    assert all(name in table for name in names)

    # Re-index one: its passages are rebuilt from the file, the document stays.
    choose_document(page, again)
    page.locator("#doc-reindex").click()
    log = index.parent / "serve.log"
    assert again in wait_for_doc_status(page, "已重新索引", log)

    # Delete another: gone from the table, the header and the index on disk.
    choose_document(page, gone)
    page.locator("#doc-delete").click()
    wait_for_doc_status(page, "已删除", log)
    page.wait_for_function(
        f"!document.querySelector('#doc-table').innerText.includes('{gone}')", timeout=60_000)
    page.wait_for_function("document.querySelector('#doc-pick input').value === ''", timeout=60_000)
    assert again in page.inner_text("#doc-table")
    assert "<b>4</b>" in page.inner_html("#topbar") or "4 篇" in page.inner_text("#topbar")
    on_disk = Retriever.load(index).documents
    assert gone not in on_disk and again in on_disk and len(on_disk) == 4

    shot = screenshot(page, tmp_path / "documents-tab.png")
    assert shot.stat().st_size > 10_000

    # The other knowledge base, chosen in the selector, still holds all five.
    choose(page, "#kb", "other")
    page.wait_for_function(
        f"document.querySelector('#doc-table').innerText.includes('{gone}')", timeout=60_000)
    assert "<b>5</b>" in page.inner_html("#topbar")
    page.get_by_role("tab", name="问答 Chat").click()
    ask(page, QUESTION)
    page.wait_for_selector("#sources .src-card[id^='src-1-']", timeout=ANSWER_TIMEOUT_MS)
    assert EXPECTED in page.locator("#chat .bot").last.inner_text()
