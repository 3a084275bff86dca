"""Document text: detection by content, PDF, DOCX, plain text, budgets and bad files."""

from __future__ import annotations

import pytest

from bot.llm.tokens import TokenCounter
from bot.media import documents
from bot.media.types import BOMB, BROKEN, EMPTY, ENCRYPTED, SCANNED, DocumentError
from emulators import media_samples as samples

COUNTER = TokenCounter("gpt-4o-mini")


def read(raw: bytes, budget: int = 10_000, **kwargs: int) -> documents.DocumentText:
    kind = documents.detect_kind(raw, None)
    assert kind is not None
    return documents.extract(raw, kind=kind, budget=budget, counter=COUNTER, **kwargs)


def test_kind_is_judged_by_content_not_by_name() -> None:
    assert documents.detect_kind(samples.pdf_bytes(["x"]), "text/plain") == "pdf"
    assert documents.detect_kind(samples.docx_bytes(["x"]), "application/zip") == "docx"
    assert documents.detect_kind(b"def f():\n    return 1\n", "application/octet-stream") == "text"
    assert documents.detect_kind('{"a": "é"}'.encode(), None) == "text"
    assert documents.detect_kind(b"\x00\x01\x02binary", None) is None
    assert documents.detect_kind(samples.image_bytes(10, 10, "PNG"), "text/plain") is None
    zip_without_word = samples.zip_bomb_docx(10).replace(b"word/document.xml", b"other/thing.xml")
    assert documents.detect_kind(zip_without_word, None) is None


def test_latin1_text_with_a_text_mime_is_read() -> None:
    raw = "caf\xe9 cr\xe8me".encode("cp1252")
    assert documents.detect_kind(raw, None) is None
    assert documents.detect_kind(raw, "text/plain; charset=windows-1252") == "text"
    text = documents.extract(raw, kind="text", budget=100, counter=COUNTER).text
    assert text == "café crème"


def test_pdf_text_of_every_page() -> None:
    result = read(samples.pdf_bytes(["Hello from page one", "And page two"]))
    assert "Hello from page one" in result.text and "And page two" in result.text
    assert (result.pages, result.pages_read, result.truncated) == (2, 2, False)


def test_docx_paragraphs_and_tables() -> None:
    result = read(samples.docx_bytes(["First paragraph", "Second"], [["cell a", "cell b"]]))
    assert "First paragraph\nSecond" in result.text
    assert "cell a\tcell b" in result.text


def test_text_over_budget_is_cut_at_a_line_with_the_share_kept() -> None:
    raw = "\n".join(f"line {n} of the log file" for n in range(2000)).encode()
    result = read(raw, budget=100)
    assert result.truncated and result.tokens <= 100
    assert result.text.endswith("of the log file")  # cut at a line boundary
    assert 0 < result.kept_percent < 10


def test_pdf_over_budget_stops_reading_and_says_how_many_pages() -> None:
    raw = samples.pdf_bytes([f"Page {n} " + "words " * 40 for n in range(1, 51)])
    result = read(raw, budget=300)
    assert result.truncated and result.tokens <= 300
    assert result.pages == 50 and result.pages_read is not None and result.pages_read < 10


def test_pdf_page_cap() -> None:
    result = read(samples.pdf_bytes([f"page {n}" for n in range(1, 11)]), max_pages=3)
    assert (result.pages, result.pages_read, result.truncated) == (10, 3, True)
    assert "page 3" in result.text and "page 4" not in result.text


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (samples.encrypted_pdf(), ENCRYPTED),
        (samples.scanned_pdf(), SCANNED),
        (b"%PDF-1.4\n garbage that is no PDF", BROKEN),
        (samples.zip_bomb_docx(), BOMB),
        (b"   \n\n  ", EMPTY),
    ],
    ids=["encrypted", "scanned", "broken_pdf", "zip_bomb", "blank"],
)
def test_bad_documents_give_a_code(raw: bytes, code: str) -> None:
    kind = documents.detect_kind(raw, None) or "text"
    with pytest.raises(DocumentError) as caught:
        documents.extract(raw, kind=kind, budget=100, counter=COUNTER, zip_max_bytes=1024 * 1024)
    assert caught.value.code == code


def test_scanned_pdf_reports_its_page_count_and_gives_its_scans() -> None:
    raw = samples.scanned_pdf(3)
    with pytest.raises(DocumentError) as caught:
        read(raw)
    assert caught.value.values == {"pages": 3}
    scans = documents.page_scans(raw, 2)
    assert [number for number, _ in scans] == [1, 2]


def test_broken_docx() -> None:
    raw = samples.docx_bytes(["x"])
    broken = raw[: len(raw) // 2]
    with pytest.raises(DocumentError) as caught:
        documents.extract(broken, kind="docx", budget=100, counter=COUNTER)
    assert caught.value.code == BROKEN
