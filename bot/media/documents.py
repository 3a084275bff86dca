"""The text of a document: plain-text files, PDF (pypdf) and DOCX (python-docx).

A document is recognised by its content first (PDF magic, a ZIP holding word/document.xml,
UTF-8 without NULs) and its name or MIME type second, so a `.txt` that is really a PDF is read
as a PDF and a source file with an odd MIME type is still text. Text past the token budget is
cut at a line boundary, and the result says how much was kept.

Reading is two steps: `load` parses the file (CPU-bound pure Python for PDF and DOCX, so the
bot runs it in a worker process, bot.media.workers), `fit` cuts its text to the budget with
the model's token counter (in the bot's process). `extract` does both at once. pypdf and
python-docx are imported by `load`, in the worker: the bot's own process never holds them.
"""

from __future__ import annotations

import codecs
import io
import logging
import zipfile
from dataclasses import dataclass
from typing import Literal

from bot.media.types import (
    BOMB,
    BROKEN,
    EMPTY,
    ENCRYPTED,
    SCANNED,
    UNSUPPORTED,
    DocumentError,
    TextCounter,
)

logger = logging.getLogger(__name__)

DocumentKind = Literal["text", "pdf", "docx"]
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_MIMES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/x-yaml",
        "application/yaml",
        "application/javascript",
        "application/x-sh",
        "application/x-python",
        "application/sql",
        "application/toml",
        "application/x-ndjson",
    }
)
SNIFF_BYTES = 64 * 1024
# Pages with fewer characters than this are taken as having no text layer.
MIN_PAGE_CHARS = 3
# A PDF's pages are read until their text is this many characters per token of the budget
# (no tokenizer packs more into one token), so a 500-page file is not read whole for 8k tokens.
CHARS_PER_TOKEN_READ = 16


@dataclass(frozen=True, slots=True)
class DocumentText:
    """What was read from a document, and how much of it fits the budget."""

    text: str  # the kept text (the whole text when `truncated` is False)
    tokens: int  # tokens of `text`
    truncated: bool
    kept_percent: int  # share of the read text that was kept, 1..100
    pages: int | None = None  # PDF: pages in the file
    pages_read: int | None = None  # PDF: pages whose text was read (a cap or the budget)


def detect_kind(raw: bytes, mime: str | None) -> DocumentKind | None:
    """Which reader a document needs, or None when it is not a document we can read."""
    if raw.startswith(b"%PDF-"):
        return "pdf"
    if raw.startswith(b"PK\x03\x04"):
        return "docx" if _is_docx(raw) else None
    if looks_like_text(raw):
        return "text"
    if is_text_mime(mime) and b"\x00" not in raw[:SNIFF_BYTES]:
        return "text"  # a legacy 8-bit encoding: read as Windows-1252
    return None


def looks_like_text(raw: bytes) -> bool:
    """UTF-8 (or UTF-16 with a BOM) text without NUL bytes, judged on its first 64 KiB."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    head = raw[:SNIFF_BYTES]
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the 64 KiB window is still text.
        return len(raw) > SNIFF_BYTES and exc.start >= len(head) - 3
    return True


def is_text_mime(mime: str | None) -> bool:
    """A MIME type that names text (text/*, JSON, XML, YAML, scripts)."""
    if not mime:
        return False
    mime = mime.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime in TEXT_MIMES or mime.endswith(("+json", "+xml"))


@dataclass(frozen=True, slots=True)
class PdfPages:
    """A PDF's page count and the text of its first pages, in order ("" for a page without)."""

    pages: int
    texts: tuple[str, ...]


Loaded = str | PdfPages


def load(
    raw: bytes,
    kind: DocumentKind,
    *,
    max_chars: int,
    max_pages: int = 500,
    zip_max_bytes: int = 200 * 1024 * 1024,
) -> Loaded:
    """The document's text (a PDF's: page by page, until `max_chars` are read)."""
    if kind == "pdf":
        return _pdf_pages(raw, max_pages, max_chars)
    return _docx_text(raw, zip_max_bytes) if kind == "docx" else _decode(raw)


def fit(loaded: Loaded, budget: int, counter: TextCounter) -> DocumentText:
    """What `load` read, cut to at most `budget` tokens."""
    if isinstance(loaded, PdfPages):
        return _pdf_text(loaded, budget, counter)
    if not loaded.strip():
        raise DocumentError(EMPTY)
    kept, tokens, truncated = cut_to_budget(loaded, budget, counter)
    percent = 100 if not truncated else max(1, min(99, len(kept) * 100 // len(loaded)))
    return DocumentText(kept, tokens, truncated, percent)


def extract(
    raw: bytes,
    *,
    kind: DocumentKind,
    budget: int,
    counter: TextCounter,
    max_pages: int = 500,
    zip_max_bytes: int = 200 * 1024 * 1024,
) -> DocumentText:
    """Read the document's text and keep at most `budget` tokens of it (`load`, then `fit`)."""
    loaded = load(
        raw,
        kind,
        max_chars=budget * CHARS_PER_TOKEN_READ,
        max_pages=max_pages,
        zip_max_bytes=zip_max_bytes,
    )
    return fit(loaded, budget, counter)


def cut_to_budget(text: str, budget: int, counter: TextCounter) -> tuple[str, int, bool]:
    """`text` cut at a line (or word) boundary to at most `budget` tokens: kept, tokens, cut."""
    tokens = counter.count_text(text)
    if tokens <= budget:
        return text, tokens, False
    kept = text
    while tokens > budget and kept:
        # Shrink in proportion, with a margin, then back to the last line or word boundary.
        end = int(len(kept) * budget / tokens * 0.95)
        cut = kept[:end]
        boundary = cut.rfind("\n")
        if boundary <= end // 2:
            boundary = cut.rfind(" ")
        kept = cut[:boundary] if boundary > end // 2 else cut
        tokens = counter.count_text(kept)
    return kept, tokens, True


def _decode(raw: bytes) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        return raw[3:].decode("utf-8", errors="replace")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _is_docx(raw: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _docx_text(raw: bytes, zip_max_bytes: int) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise DocumentError(BROKEN) from None
    if unpacked > zip_max_bytes:
        raise DocumentError(BOMB, size=unpacked, limit=zip_max_bytes)
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(raw))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise DocumentError(BROKEN) from None
    except Exception as exc:  # lxml's XMLSyntaxError and friends: a broken package
        logger.debug("unreadable DOCX: %s", type(exc).__name__)
        raise DocumentError(BROKEN) from None
    lines = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(lines)


def _pdf_pages(raw: bytes, max_pages: int, max_chars: int) -> PdfPages:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):  # an empty user password opens
            raise DocumentError(ENCRYPTED)
        pages = len(reader.pages)
    except DocumentError:
        raise
    except (DependencyError, FileNotDecryptedError):
        raise DocumentError(ENCRYPTED) from None
    except (PdfReadError, OSError, ValueError, KeyError, TypeError, AssertionError):
        raise DocumentError(BROKEN) from None
    texts: list[str] = []
    chars = 0
    for index in range(min(pages, max_pages)):
        try:
            text = reader.pages[index].extract_text() or ""
        except (DependencyError, FileNotDecryptedError):
            raise DocumentError(ENCRYPTED) from None
        except Exception as exc:  # a broken page: skip it, keep the others
            logger.debug("PDF page %d unreadable: %s", index + 1, type(exc).__name__)
            text = ""
        texts.append(text)
        chars += len(text.strip())
        if chars >= max_chars:
            break
    return PdfPages(pages, tuple(texts))


def _pdf_text(loaded: PdfPages, budget: int, counter: TextCounter) -> DocumentText:
    pages = loaded.pages
    texts: list[str] = []
    used = 0
    read = 0
    truncated = False
    for index, page_text in enumerate(loaded.texts):
        read = index + 1
        if len(page_text.strip()) < MIN_PAGE_CHARS:
            continue
        block = f"[page {index + 1}]\n{page_text.strip()}\n"
        cost = counter.count_text(block)
        if used + cost > budget:
            kept, cost, _ = cut_to_budget(block, budget - used, counter)
            texts.append(kept)
            used += cost
            truncated = True
            break
        texts.append(block)
        used += cost
    if not texts:
        raise DocumentError(SCANNED, pages=pages)
    truncated = truncated or pages > read
    percent = 100 if not truncated else max(1, min(99, read * 100 // max(pages, 1)))
    return DocumentText("".join(texts).rstrip(), used, truncated, percent, pages, read)


def page_scans(raw: bytes, max_pages: int) -> list[tuple[int, bytes]]:
    """The largest embedded image of each of the first `max_pages` pages (a scan's page)."""
    from pypdf import PdfReader

    scans: list[tuple[int, bytes]] = []
    try:
        reader = PdfReader(io.BytesIO(raw))
        for index, page in enumerate(reader.pages[:max_pages]):
            images = list(page.images)
            if images:
                largest = max(images, key=lambda image: len(image.data))
                scans.append((index + 1, largest.data))
    except Exception as exc:  # a broken file or image filter: fewer scans, never a crash
        logger.debug("PDF scans unreadable: %s", type(exc).__name__)
    return scans


def unsupported(mime: str | None) -> DocumentError:
    """The error for a file that is neither text, PDF nor DOCX."""
    return DocumentError(UNSUPPORTED, kind="document", mime=mime or "")
