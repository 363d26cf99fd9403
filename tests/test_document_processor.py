"""Text extraction from uploaded resumes and job descriptions, and the refusal of hostile files.

Every document is generated in memory by `docgen`. Each `extract_text` call parses in a child
process, so the malicious files here are refused by the same isolation the web process relies on.
"""

from __future__ import annotations

import os
import re
import resource

import pytest

import docgen
from document_processor import (
    DEFAULT_LIMITS,
    MB,
    DocumentKind,
    DocumentRejected,
    Limits,
    check_docx_archive,
    detect_kind,
    extract_text,
    run_isolated,
)

RESUME_PAGES = [
    ["Jane Doe", "Senior Software Engineer"],
    ["Experience", "Acme Corp, 2019-2023: led the payments team"],
    ["Education", "MIT, BSc Computer Science"],
]


@pytest.fixture(scope="module")
def resume_pdf() -> bytes:
    return docgen.pdf_with_pages(RESUME_PAGES)


@pytest.fixture(scope="module")
def small_docx() -> bytes:
    return docgen.docx_document(["Jane Doe", "Senior Software Engineer"])


def refusal(data: bytes, filename: str | None = None, limits: Limits = DEFAULT_LIMITS) -> str:
    with pytest.raises(DocumentRejected) as rejected:
        extract_text(data, filename, limits=limits)
    return str(rejected.value)


# --- Documents that are read ---


def test_multi_page_resume_is_read_page_by_page_in_order(resume_pdf):
    extraction = extract_text(resume_pdf, "resume.pdf")

    assert extraction.kind is DocumentKind.PDF
    assert extraction.page_count == 3
    assert extraction.truncated is False
    assert extraction.notice is None
    assert extraction.text == (
        "Jane Doe\nSenior Software Engineer\n\n"
        "Experience\nAcme Corp, 2019-2023: led the payments team\n\n"
        "Education\nMIT, BSc Computer Science"
    )


def test_two_column_pdf_yields_the_text_of_both_columns():
    sidebar = ["SKILLS", "Python, Go, PostgreSQL", "LANGUAGES", "English, German"]
    main_column = ["EXPERIENCE", "Staff Engineer at Initech, 2020-2024", "Built the billing platform"]

    extraction = extract_text(docgen.two_column_pdf(sidebar, main_column), "cv.pdf")

    lines = extraction.text.splitlines()
    assert all(line in lines for line in sidebar + main_column)
    assert extraction.page_count == 1


def test_docx_paragraphs_and_tables_come_out_in_document_order():
    document = docgen.docx_document(
        paragraphs_before=["Jane Doe", "Work history"],
        table_rows=[
            ["Employment", "", ""],
            ["Acme Corp", "Senior Engineer", "2019-2023"],
            ["Initech", "Engineer", "2016-2019"],
        ],
        paragraphs_after=["References on request"],
        merge_first_row=True,
    )

    extraction = extract_text(document, "resume.docx")

    assert extraction.kind is DocumentKind.DOCX
    assert extraction.page_count is None
    # The merged first row spans three grid cells but is shown once.
    assert extraction.text == (
        "Jane Doe\nWork history\nEmployment\n"
        "Acme Corp | Senior Engineer | 2019-2023\nInitech | Engineer | 2016-2019\n"
        "References on request"
    )


@pytest.mark.parametrize(
    ("encoded", "filename", "kind"),
    [
        ("Zoë Ångström — Résumé\n日本語 skills\n".encode("utf-16"), "resume.txt", DocumentKind.TEXT),
        ("\ufeffZoë Ångström — Résumé\n日本語 skills\n".encode("utf-16-be"), "resume.txt", DocumentKind.TEXT),
        ("Zoë Ångström — Résumé\n日本語 skills\n".encode("utf-8-sig"), "resume.md", DocumentKind.MARKDOWN),
    ],
    ids=["utf-16-le-bom", "utf-16-be-bom", "utf-8-bom-markdown"],
)
def test_unicode_text_files_are_decoded(encoded, filename, kind):
    extraction = extract_text(encoded, filename)

    assert extraction.text == "Zoë Ångström — Résumé\n日本語 skills"
    assert extraction.kind is kind


def test_latin1_text_file_falls_back_from_utf8():
    extraction = extract_text("Café Müller, Zürich\r\nSkills: façades, jalapeños".encode("latin-1"), "cv.txt")

    assert extraction.text == "Café Müller, Zürich\nSkills: façades, jalapeños"


def test_windows_1252_punctuation_is_read_as_such():
    extraction = extract_text("“Quoted” – 5 €".encode("cp1252"), "cv.txt")

    assert extraction.text == "“Quoted” – 5 €"


def test_pdf_renamed_to_docx_is_read_as_the_pdf_it_is(resume_pdf):
    extraction = extract_text(resume_pdf, "resume.docx")

    assert extraction.kind is DocumentKind.PDF
    assert extraction.text.startswith("Jane Doe\nSenior Software Engineer")


def test_pdf_that_opens_without_a_password_is_read(resume_pdf):
    restricted = docgen.encrypted_pdf(resume_pdf, user_password="", owner_password="owner-secret")

    assert extract_text(restricted, "resume.pdf").text.startswith("Jane Doe")


def test_pdf_at_the_page_limit_is_read():
    extraction = extract_text(docgen.numbered_pdf(DEFAULT_LIMITS.max_pdf_pages), "long.pdf")

    assert extraction.page_count == 30
    assert extraction.text.endswith("Page 30 of 30")


# --- Caps ---


def test_text_over_the_character_cap_is_truncated_and_says_so():
    long_text = ("experience " * 10_000).encode()

    extraction = extract_text(long_text, "cv.txt")

    assert len(extraction.text) == 40_000
    assert extraction.text == long_text.decode()[:40_000]
    assert extraction.truncated is True
    assert extraction.notice == "The text was cut to its first 40,000 characters, the limit."


def test_text_exactly_at_the_character_cap_is_not_truncated():
    extraction = extract_text(b"x" * 40_000, "cv.txt")

    assert len(extraction.text) == 40_000
    assert extraction.truncated is False


def test_pdf_text_is_cut_at_the_character_cap():
    pages = [[f"page {number} line {line:02d}" for line in range(10)] for number in range(1, 6)]

    extraction = extract_text(docgen.pdf_with_pages(pages), "cv.pdf", limits=Limits(max_chars=300))

    assert extraction.truncated is True
    assert len(extraction.text) <= 300
    assert "page 1 line 00" in extraction.text
    assert "page 5" not in extraction.text


def test_file_over_5_mb_is_refused_before_parsing():
    message = refusal(b"a" * (5 * MB + 1), "cv.txt")

    assert message == "The file is 5.1 MB; the limit is 5 MB."


def test_file_of_exactly_5_mb_is_accepted():
    extraction = extract_text(b"resume text " * (5 * MB // 12) + b"x" * (5 * MB % 12), "cv.txt")

    assert extraction.truncated is True


def test_empty_file_is_refused():
    assert refusal(b"", "cv.txt") == "The file is empty."


# --- Refusals ---


def test_pdf_needing_a_password_is_refused(resume_pdf):
    locked = docgen.encrypted_pdf(resume_pdf, user_password="open-sesame", owner_password="owner-secret")

    assert refusal(locked, "resume.pdf").startswith("This PDF is password-protected.")


def test_pdf_far_over_the_page_limit_is_refused():
    assert refusal(docgen.numbered_pdf(300), "book.pdf") == "The PDF has 300 pages; the limit is 30."


def test_image_only_pdf_asks_for_pasted_text():
    message = refusal(docgen.image_only_pdf(), "scan.pdf")

    assert message.startswith("No text found")
    assert message.endswith("paste your resume as text.")


def test_docx_zip_bomb_is_refused_by_the_archive_checks(small_docx):
    bomb = docgen.with_zeros_entry(small_docx, "word/media/image1.png", 64 * MB)

    assert re.fullmatch(r"The Word file unpacks to 64\.\d MB; the limit is 30 MB\.", refusal(bomb, "cv.docx"))


def test_docx_with_a_parent_directory_entry_is_refused(small_docx):
    evil = docgen.with_extra_entries(small_docx, {"../evil": b"payload"})

    assert refusal(evil, "cv.docx") == "The Word file contains an unsafe path ('../evil') and was refused."


@pytest.mark.parametrize(
    "name", ["word/../../evil", "/etc/cron.d/evil", "..\\evil", "C:\\Windows\\evil", "C:evil"]
)
def test_unsafe_entry_names_are_refused(small_docx, name):
    with pytest.raises(DocumentRejected, match="unsafe path"):
        check_docx_archive(docgen.with_extra_entries(small_docx, {name: b"payload"}), DEFAULT_LIMITS)


def test_entry_names_merely_containing_dots_are_allowed(small_docx):
    check_docx_archive(docgen.with_extra_entries(small_docx, {"word/..notes..xml": b"<x/>"}), DEFAULT_LIMITS)


def test_docx_with_too_many_entries_is_refused(small_docx):
    crowded = docgen.with_extra_entries(
        small_docx, {f"word/part{index}.xml": b"<x/>" for index in range(1000)}
    )

    with pytest.raises(DocumentRejected, match=r"^The Word file has 1,0\d\d parts; the limit is 1,000\.$"):
        check_docx_archive(crowded, DEFAULT_LIMITS)


def test_docx_with_an_extreme_compression_ratio_is_refused(small_docx):
    dense = docgen.with_zeros_entry(small_docx, "word/media/image1.png", 8 * MB)

    with pytest.raises(
        DocumentRejected, match=r"^The Word file is compressed [\d,]+ to 1; the limit is 100 to 1\.$"
    ):
        check_docx_archive(dense, DEFAULT_LIMITS)


def test_zip_that_is_not_a_word_document_is_refused():
    archive = docgen.zip_archive({"notes.txt": b"hello"})

    assert refusal(archive, "cv.docx").startswith("This ZIP file is not a Word document;")


@pytest.mark.parametrize(
    ("damaged", "expected_start"),
    [
        (lambda pdf, docx: docx[: len(docx) // 2], "The Word file could not be read;"),
        (lambda pdf, docx: b"%PDF-1.7\n" + bytes(range(256)) * 8, "The file could not be read;"),
        (lambda pdf, docx: pdf[:40], "The file could not be read;"),
    ],
    ids=["truncated-docx", "pdf-header-then-garbage", "pdf-cut-after-header"],
)
def test_damaged_files_are_refused(resume_pdf, small_docx, damaged, expected_start):
    assert refusal(damaged(resume_pdf, small_docx), "cv.pdf").startswith(expected_start)


def test_binary_data_without_a_known_signature_is_refused():
    message = refusal(bytes(range(256)) * 16, "cv.txt")

    assert message.startswith("This file is not a PDF, Word document or text file;")


@pytest.mark.parametrize(
    ("header", "expected_start"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "This is an old-style Word (.doc) file;"),
        (b"{\\rtf1\\ansi", "This is an RTF file;"),
        (b"\x89PNG\r\n\x1a\n", "This is an image (PNG);"),
        (b"\xff\xd8\xff\xe0", "This is an image (JPEG);"),
    ],
)
def test_recognised_unsupported_formats_are_refused_by_signature(header, expected_start):
    with pytest.raises(DocumentRejected) as rejected:
        detect_kind(header + b"\x00" * 64, "resume.pdf")

    assert str(rejected.value).startswith(expected_start)


def test_kind_comes_from_the_content_and_the_name_only_marks_markdown(resume_pdf, small_docx):
    assert detect_kind(resume_pdf, "cv.txt") is DocumentKind.PDF
    assert detect_kind(small_docx, "cv.pdf") is DocumentKind.DOCX
    assert detect_kind(b"# Jane Doe", "cv.pdf") is DocumentKind.TEXT
    assert detect_kind(b"# Jane Doe", "CV.MD") is DocumentKind.MARKDOWN
    assert detect_kind(b"# Jane Doe", None) is DocumentKind.TEXT


# --- The child process's limits ---


def test_parser_that_hangs_is_killed_at_the_time_limit(tmp_path):
    with pytest.raises(DocumentRejected) as rejected:
        run_isolated(docgen.stall_and_leave_marks, str(tmp_path).encode(), Limits(timeout_s=1))

    assert str(rejected.value).startswith("Reading the file took longer than the 1-second limit;")
    # Killed rather than left to finish, and already reaped.
    assert not (tmp_path / "finished").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(int((tmp_path / "pid").read_text()), 0)


def test_parser_that_swells_hits_the_memory_limit_and_the_web_process_does_not_grow():
    limits = Limits(max_memory_bytes=256 * MB)
    peak_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    resident_before_kb = _resident_kb()

    with pytest.raises(DocumentRejected) as rejected:
        run_isolated(docgen.allocate_four_times_the_limit, b"%PDF-1.7", limits)

    assert str(rejected.value).startswith("Reading the file needed more than the 256 MB memory limit;")
    # The hostile parser tries to allocate 1 GB; none of it may land in this process.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kb < 32 * 1024
    assert _resident_kb() - resident_before_kb < 32 * 1024


def _resident_kb() -> int:
    with open("/proc/self/status") as status:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.MULTILINE).group(1))
