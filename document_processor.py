"""Resume and job-description text extraction (PDF, DOCX, TXT, MD) with hard limits.

`extract_text(data, filename)` returns an `Extraction` or raises `DocumentRejected`, whose message is
written for the person who uploaded the file and names the limit that was hit.

How a file is handled:

- The parent process only checks the size and looks at the first bytes. Everything that interprets
  the content (ZIP checks, PDF and DOCX parsing, text decoding) runs in a child process started with
  the "spawn" context, with a wall-clock limit (the child is killed when it runs out), a CPU-time
  limit and an address-space limit (RLIMIT_AS). A hostile file can therefore neither hang nor swell
  the web process. `run_isolated` is that runner.
- The kind comes from the magic bytes, never from the name: a PDF renamed .docx is read as the PDF it
  is. Refusing the rename would punish a harmless mistake, and trusting the name would only hand a
  parser bytes it does not expect. The name only tells Markdown from plain text, which look the same.
- The bytes stay in memory (BytesIO, a pipe to the child); nothing is written to disk.
- Encrypted PDFs that open with an empty password (an owner password that only restricts printing
  or copying, as Word's "restrict editing" exports do) are read like any PDF: every viewer opens them
  without asking. PDFs that need a password to open are refused.
"""

from __future__ import annotations

import io
import logging
import math
import multiprocessing
import re
import resource
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

MB = 1024 * 1024
PASTE_INSTEAD = "or paste the text into the form instead"

T = TypeVar("T")


class DocumentRejected(ValueError):
    """A file that was refused; `str(error)` is the message to show to the person who uploaded it."""


class DocumentKind(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    TEXT = "text"
    MARKDOWN = "markdown"


@dataclass(frozen=True)
class Limits:
    """Hard limits on an upload and on the work spent reading it."""

    max_bytes: int = 5 * MB
    max_pdf_pages: int = 30
    max_chars: int = 40_000
    # Wall-clock time for the parsing itself; the child's start-up is not counted.
    timeout_s: float = 10.0
    # Address space of the child. The interpreter with pypdf and python-docx loaded takes about 70 MB.
    max_memory_bytes: int = 512 * MB
    max_zip_entries: int = 1000
    max_zip_uncompressed_bytes: int = 30 * MB
    max_zip_compression_ratio: int = 100


DEFAULT_LIMITS = Limits()

# Entries smaller than this cannot make a bomb whatever their ratio, and tiny XML parts compress far
# better than 100:1 in ordinary documents.
_RATIO_CHECK_MIN_BYTES = 1 * MB


@dataclass(frozen=True)
class ParsedDocument:
    """What a parser running in the child hands back: normalised, capped text."""

    text: str
    page_count: int | None
    truncated: bool


@dataclass(frozen=True)
class Extraction:
    """The text of an accepted document, its detected kind and whether the text was cut short."""

    text: str
    kind: DocumentKind
    page_count: int | None
    truncated: bool
    notice: str | None
    """A message for the user when the text was cut short, else None."""


_REFUSED_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "This is an old-style Word (.doc) file; save it as .docx or PDF"),
    (b"{\\rtf", "This is an RTF file; save it as .docx or PDF"),
    (b"\x89PNG\r\n\x1a\n", "This is an image (PNG); upload a PDF, Word or text file"),
    (b"\xff\xd8\xff", "This is an image (JPEG); upload a PDF, Word or text file"),
    (b"GIF8", "This is an image (GIF); upload a PDF, Word or text file"),
)
_PDF_HEADER_WINDOW = 1024
_MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})


def extract_text(data: bytes, filename: str | None = None, *, limits: Limits = DEFAULT_LIMITS) -> Extraction:
    """Extract the text of an uploaded resume or job description, or refuse it with a clear message.

    Raises DocumentRejected when the file breaks a limit, is of an unsupported kind, is damaged,
    is password-protected or holds no text.
    """
    if not data:
        raise DocumentRejected("The file is empty.")
    if len(data) > limits.max_bytes:
        size = _megabytes(len(data), math.ceil)
        raise DocumentRejected(f"The file is {size} MB; the limit is {_megabytes(limits.max_bytes)} MB.")
    kind = detect_kind(data, filename)
    parsed = run_isolated(_PARSERS[kind], data, limits)
    notice = None
    if parsed.truncated:
        notice = f"The text was cut to its first {limits.max_chars:,} characters, the limit."
    return Extraction(parsed.text, kind, parsed.page_count, parsed.truncated, notice)


def detect_kind(data: bytes, filename: str | None = None) -> DocumentKind:
    """The kind of a document from its magic bytes; anything without a known signature is text.

    Any ZIP counts as DOCX here; the archive checks refuse ZIPs that are not Word documents, and
    whether "text" really is text is decided when it is decoded. Raises DocumentRejected for
    recognised formats we do not read.
    """
    # PDF readers, pypdf included, accept bytes before the header, so a PDF is recognised the same way.
    if b"%PDF-" in data[:_PDF_HEADER_WINDOW]:
        return DocumentKind.PDF
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return DocumentKind.DOCX
    for signature, message in _REFUSED_SIGNATURES:
        if data.startswith(signature):
            raise DocumentRejected(f"{message}, {PASTE_INSTEAD}.")
    if filename and PurePosixPath(filename.replace("\\", "/")).suffix.lower() in _MARKDOWN_SUFFIXES:
        return DocumentKind.MARKDOWN
    return DocumentKind.TEXT


def run_isolated(parse: Callable[[bytes, Limits], T], data: bytes, limits: Limits) -> T:
    """Run `parse(data, limits)` in a fresh child process under the time and memory limits.

    DocumentRejected raised by `parse` is re-raised here; running out of time or memory, or any
    other failure, becomes a DocumentRejected naming the cause. `parse` must be importable by name.
    """
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe(duplex=True)
    child = context.Process(target=_child_main, args=(parse, limits, child_end))
    child.start()
    child_end.close()
    try:
        # The child reads the whole input before it parses anything, then acknowledges it. The time
        # limit starts with the parsing, so a slow interpreter start on a busy server cannot make a
        # good file fail.
        parent_end.send_bytes(data)
        try:
            parent_end.recv_bytes()
        except EOFError as error:
            raise RuntimeError("the document parser process exited before it read its input") from error
        if not parent_end.poll(limits.timeout_s):
            raise DocumentRejected(
                f"Reading the file took longer than the {limits.timeout_s:g}-second limit; "
                f"try a simpler file, {PASTE_INSTEAD}."
            )
        try:
            outcome, value = parent_end.recv()
        except EOFError:
            outcome, value = "crashed", None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        exit_code = child.exitcode
        parent_end.close()
        child.close()
    if outcome == "parsed":
        return value
    if outcome == "rejected":
        raise DocumentRejected(value)
    if outcome == "out_of_memory":
        raise DocumentRejected(
            f"Reading the file needed more than the {_megabytes(limits.max_memory_bytes)} MB memory limit; "
            f"try a simpler file, {PASTE_INSTEAD}."
        )
    # Logged so that a bug in a parser does not hide behind "the file may be damaged".
    logger.info("document parsing failed (%s, exit code %s): %s", outcome, exit_code, value)
    raise DocumentRejected(_unreadable("The file"))


def _child_main(parse: Callable[[bytes, Limits], Any], limits: Limits, connection: Any) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limits.max_memory_bytes, limits.max_memory_bytes))
    # A CPU limit as well, so the child ends even if the parent dies before it can kill it. The margin
    # covers the interpreter start, which the parent's clock does not count.
    cpu_seconds = math.ceil(limits.timeout_s) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    data = connection.recv_bytes()
    connection.send_bytes(b"")
    try:
        outcome: tuple[str, Any] = ("parsed", parse(data, limits))
    except DocumentRejected as rejection:
        outcome = ("rejected", str(rejection))
    except MemoryError:
        outcome = ("out_of_memory", None)
    except Exception as error:  # noqa: BLE001  (any failure on hostile or damaged input is a refusal)
        outcome = ("unreadable", f"{type(error).__name__}: {error}"[:300])
    connection.send(outcome)
    connection.close()


# --- Parsers. They run in the child only; the heavy imports stay out of the web process. ---


def parse_pdf(data: bytes, limits: Limits) -> ParsedDocument:
    """Text of a PDF, page by page, stopping once the character cap is reached."""
    from pypdf import PasswordType, PdfReader

    # pypdf logs every repair it makes to a damaged file; those are not ours to report.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise DocumentRejected(
            f"This PDF is password-protected. Save a copy without a password, {PASTE_INSTEAD}."
        )
    page_count = len(reader.pages)
    if page_count > limits.max_pdf_pages:
        raise DocumentRejected(f"The PDF has {page_count} pages; the limit is {limits.max_pdf_pages}.")
    text, truncated = _join_capped(
        (normalize_text(page.extract_text()) for page in reader.pages), "\n\n", limits
    )
    if not text:
        raise DocumentRejected(
            "No text found in this PDF (it may be a scanned image) — paste your resume as text."
        )
    return ParsedDocument(text, page_count, truncated)


def parse_docx(data: bytes, limits: Limits) -> ParsedDocument:
    """Text of a Word document, paragraphs and tables in document order, after the ZIP checks."""
    from docx import Document

    check_docx_archive(data, limits)
    document = Document(io.BytesIO(data))
    text, truncated = _join_capped((normalize_text(block) for block in _docx_blocks(document)), "\n", limits)
    if not text:
        raise DocumentRejected(f"No text found in this Word document — {PASTE_INSTEAD}.")
    return ParsedDocument(text, None, truncated)


def parse_plain_text(data: bytes, limits: Limits) -> ParsedDocument:
    """Text of a TXT or MD file: UTF-16 with a BOM, else UTF-8, else Windows-1252 / Latin-1."""
    text, truncated = _join_capped([normalize_text(decode_text(data))], "", limits)
    if not text:
        raise DocumentRejected(f"No text found in this file — {PASTE_INSTEAD}.")
    return ParsedDocument(text, None, truncated)


_PARSERS: dict[DocumentKind, Callable[[bytes, Limits], ParsedDocument]] = {
    DocumentKind.PDF: parse_pdf,
    DocumentKind.DOCX: parse_docx,
    DocumentKind.TEXT: parse_plain_text,
    DocumentKind.MARKDOWN: parse_plain_text,
}


def check_docx_archive(data: bytes, limits: Limits) -> None:
    """Refuse a ZIP that is not a Word document or that could hurt whoever unpacks it.

    Reads the central directory only; nothing is decompressed. The sizes checked are the declared
    ones, which is enough: Python's zipfile never inflates an entry past its declared size.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise DocumentRejected(_unreadable("The Word file")) from error
    with archive:
        entries = archive.infolist()
        if len(entries) > limits.max_zip_entries:
            raise DocumentRejected(
                f"The Word file has {len(entries):,} parts; the limit is {limits.max_zip_entries:,}."
            )
        for entry in entries:
            if _is_unsafe_entry_name(entry.filename):
                raise DocumentRejected(
                    f"The Word file contains an unsafe path ({entry.filename[:80]!r}) and was refused."
                )
        total = sum(entry.file_size for entry in entries)
        if total > limits.max_zip_uncompressed_bytes:
            raise DocumentRejected(
                f"The Word file unpacks to {_megabytes(total, math.ceil)} MB; "
                f"the limit is {_megabytes(limits.max_zip_uncompressed_bytes)} MB."
            )
        for entry in entries:
            ratio = entry.file_size / max(entry.compress_size, 1)
            if entry.file_size >= _RATIO_CHECK_MIN_BYTES and ratio > limits.max_zip_compression_ratio:
                raise DocumentRejected(
                    f"The Word file is compressed {ratio:,.0f} to 1; "
                    f"the limit is {limits.max_zip_compression_ratio} to 1."
                )
        names = set(archive.namelist())
        if "word/document.xml" not in names or "[Content_Types].xml" not in names:
            raise DocumentRejected(
                f"This ZIP file is not a Word document; upload a .docx, PDF or text file, {PASTE_INSTEAD}."
            )


def _is_unsafe_entry_name(name: str) -> bool:
    portable = name.replace("\\", "/")
    has_drive = len(portable) >= 2 and portable[1] == ":"
    return portable.startswith("/") or has_drive or ".." in portable.split("/")


def _docx_blocks(container: Any) -> Iterator[str]:
    """Paragraph texts and table rows ("cell | cell | cell") of a document or cell, in order."""
    from docx.table import Table

    for block in container.iter_inner_content():
        if not isinstance(block, Table):
            yield block.text
            continue
        # A merged cell is repeated for every grid position it covers; show its text once. `_tc` is
        # the cell's XML element, python-docx's only handle on cell identity; the set keeps the
        # element proxies alive so identity holds.
        seen_cells: set[Any] = set()
        for row in block.rows:
            cell_texts = []
            for cell in row.cells:
                if cell._tc in seen_cells:
                    continue
                seen_cells.add(cell._tc)
                cell_text = " ".join(part for part in _docx_blocks(cell) if part.strip())
                if cell_text:
                    cell_texts.append(cell_text)
            yield " | ".join(cell_texts)


def decode_text(data: bytes) -> str:
    """Decode an uploaded text file, refusing binary data that merely lacks a known signature."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise DocumentRejected(f"The file is not valid UTF-16 text, {PASTE_INSTEAD}.") from error
    else:
        text = _decode_8bit(data)
    if _looks_binary(text):
        raise DocumentRejected(
            f"This file is not a PDF, Word document or text file; upload one of those, {PASTE_INSTEAD}."
        )
    return text


def _decode_8bit(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Text that is not UTF-8 is almost always Windows-1252, which is Latin-1 with printable characters
    # (curly quotes, dashes, €) where Latin-1 has unused control codes. Latin-1 takes the rest.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_TEXT_CONTROLS = frozenset("\t\n\r\f\v")
_MAX_CONTROL_FRACTION = 0.01


def _looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    sample = text[:65536]
    controls = sum(1 for char in sample if unicodedata.category(char) == "Cc" and char not in _TEXT_CONTROLS)
    return controls > len(sample) * _MAX_CONTROL_FRACTION


_LINE_BREAKS = re.compile(r"\r\n?|[\v\f\u2028\u2029\x85]")
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\u200b\ufeff]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """Unify line breaks, drop control characters, trailing spaces and runs of blank lines."""
    text = _INVISIBLE.sub("", _LINE_BREAKS.sub("\n", text))
    return _BLANK_LINES.sub("\n\n", _TRAILING_SPACE.sub("\n", text)).strip()


def _join_capped(blocks: Iterable[str], separator: str, limits: Limits) -> tuple[str, bool]:
    """Join the non-empty blocks, cut to the character cap, and say whether anything was cut.

    Stops reading blocks (PDF pages, paragraphs) once the cap is passed, so a long document costs no
    more work than a document at the cap.
    """
    collected: list[str] = []
    joined_length = -len(separator)
    for block in blocks:
        if not block:
            continue
        collected.append(block)
        joined_length += len(separator) + len(block)
        if joined_length > limits.max_chars:
            break
    text = separator.join(collected)
    return text[: limits.max_chars].rstrip(), len(text) > limits.max_chars


def _unreadable(subject: str) -> str:
    return f"{subject} could not be read; it may be damaged or incomplete. Save it again, {PASTE_INSTEAD}."


def _megabytes(size: int, rounding: Callable[[float], float] = round) -> str:
    return f"{rounding(size / MB * 10) / 10:g}"
