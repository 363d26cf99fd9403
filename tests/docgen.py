"""Builders for the documents the document_processor tests feed in, made in memory on demand.

Also the hostile parsers handed to `document_processor.run_isolated`: they live in an importable
module because the child process imports them by name.
"""

from __future__ import annotations

import io
import os
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path

from docx import Document
from fpdf import FPDF
from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter

from document_processor import Limits, ParsedDocument

LINE_HEIGHT_MM = 6


def _new_pdf() -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", size=11)
    return pdf


def pdf_with_pages(pages: Sequence[Sequence[str]]) -> bytes:
    """A PDF with one page per entry, each page holding its lines top to bottom."""
    pdf = _new_pdf()
    for lines in pages:
        pdf.add_page()
        for line in lines:
            pdf.cell(text=line, h=LINE_HEIGHT_MM, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def numbered_pdf(page_count: int) -> bytes:
    """A PDF of `page_count` pages, each saying which page it is."""
    return pdf_with_pages([[f"Page {number} of {page_count}"] for number in range(1, page_count + 1)])


def two_column_pdf(left_lines: Sequence[str], right_lines: Sequence[str]) -> bytes:
    """One page laid out as a sidebar on the left and the main column on the right, side by side."""
    pdf = _new_pdf()
    pdf.add_page()
    for column_x, width, lines in ((10, 65, left_lines), (80, 120, right_lines)):
        pdf.set_xy(column_x, 20)
        for line in lines:
            pdf.set_x(column_x)
            pdf.cell(w=width, h=LINE_HEIGHT_MM, text=line, new_y="NEXT")
    return bytes(pdf.output())


def image_only_pdf() -> bytes:
    """A 'scanned' resume: one page holding a picture of text lines and no text objects."""
    picture = Image.new("RGB", (600, 800), "white")
    drawing = ImageDraw.Draw(picture)
    for top in range(40, 760, 30):
        drawing.rectangle((40, top, 560, top + 12), fill="black")
    pdf = _new_pdf()
    pdf.add_page()
    pdf.image(picture, x=10, y=10, w=190)
    return bytes(pdf.output())


def encrypted_pdf(pdf: bytes, *, user_password: str, owner_password: str) -> bytes:
    """`pdf` encrypted with AES-256; an empty user password means it opens without asking."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def docx_document(
    paragraphs_before: Sequence[str] = (),
    table_rows: Sequence[Sequence[str]] = (),
    paragraphs_after: Sequence[str] = (),
    merge_first_row: bool = False,
) -> bytes:
    """A Word document: paragraphs, an optional table, more paragraphs.

    With `merge_first_row`, the whole first table row is one merged cell holding the first row's
    first value.
    """
    document = Document()
    for text in paragraphs_before:
        document.add_paragraph(text)
    if table_rows:
        table = document.add_table(rows=len(table_rows), cols=len(table_rows[0]))
        for row, values in zip(table.rows, table_rows, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
        if merge_first_row:
            merged = table.cell(0, 0).merge(table.cell(0, len(table_rows[0]) - 1))
            merged.text = table_rows[0][0]
    for text in paragraphs_after:
        document.add_paragraph(text)
    output = io.BytesIO()
    document.save(output)
    return output.getvalue()


def with_extra_entries(archive: bytes, entries: dict[str, bytes]) -> bytes:
    """A copy of a ZIP archive with more entries appended (names written exactly as given)."""
    output = io.BytesIO(archive)
    with zipfile.ZipFile(output, "a", compression=zipfile.ZIP_DEFLATED) as target:
        for name, content in entries.items():
            target.writestr(zipfile.ZipInfo(name), content, compress_type=zipfile.ZIP_DEFLATED)
    return output.getvalue()


def with_zeros_entry(archive: bytes, name: str, size: int) -> bytes:
    """A copy of a ZIP archive with an entry of `size` zero bytes, deflated at the highest ratio."""
    output = io.BytesIO(archive)
    chunk = bytes(1024 * 1024)
    with (
        zipfile.ZipFile(output, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as target,
        target.open(name, "w") as entry,
    ):
        for start in range(0, size, len(chunk)):
            entry.write(chunk[: size - start])
    return output.getvalue()


def zip_archive(entries: dict[str, bytes]) -> bytes:
    """A ZIP archive holding exactly these entries."""
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w"):
        pass
    return with_extra_entries(output.getvalue(), entries)


# --- Hostile parsers, standing in for a PDF that makes the real parser hang or swell. ---

STALL_SECONDS = 5
HOG_CHUNK_BYTES = 16 * 1024 * 1024


def stall_and_leave_marks(data: bytes, limits: Limits) -> ParsedDocument:
    """A parser stuck for STALL_SECONDS, longer than the time limit the tests set.

    `data` names a directory: the parser writes its pid to `pid` there before it stalls and creates
    `finished` if it ever gets to the end, which only happens if nobody kills it. It waits rather than
    spins so that nothing but the kill can stop it early (the child's CPU limit would end a busy loop).
    """
    marks = Path(data.decode())
    (marks / "pid").write_text(str(os.getpid()))
    threading.Event().wait(STALL_SECONDS)
    (marks / "finished").touch()
    return ParsedDocument("finished", None, False)


def allocate_four_times_the_limit(data: bytes, limits: Limits) -> ParsedDocument:
    """A parser that keeps allocating (and touching) memory, up to four times the memory limit.

    It stops there rather than never, so a broken limit fails the test instead of the machine.
    """
    chunks = []
    while len(chunks) * HOG_CHUNK_BYTES < 4 * limits.max_memory_bytes:
        chunks.append(bytearray(b"x" * HOG_CHUNK_BYTES))
    return ParsedDocument(f"allocated {len(chunks) * HOG_CHUNK_BYTES} bytes", None, False)
