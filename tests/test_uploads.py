"""Uploads through the start form: size limit, type by content, refusals next to the field, CSRF."""

from __future__ import annotations

import io
import re

from conftest import fetch_csrf_token
from docgen import docx_document, numbered_pdf, pdf_with_pages, with_zeros_entry

FORM = {
    "candidate_name": "Ada",
    "role": "Backend engineer",
    "level": "mid",
    "company": "",
    "track": "behavioral",
    "length": "standard",
    "language": "en",
    "resume_text": "",
    "job_description_text": "",
    "action": "extract",
}


def upload(client, filename: str, data: bytes, field: str = "resume_file"):
    token = fetch_csrf_token(client, "/interviews/new")
    form = {**FORM, "csrf_token": token, field: (io.BytesIO(data), filename)}
    return client.post("/interviews/new", data=form, content_type="multipart/form-data")


def textarea(page: str, name: str) -> str:
    match = re.search(rf'<textarea id="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, f"no {name} box on the page"
    return match.group(1)


def test_pdf_resume_is_extracted_into_the_editable_box(client):
    pdf = pdf_with_pages([["Ada Lovelace", "Led the analytical engine project."], ["Wrote the first program."]])
    response = upload(client, "resume.pdf", pdf)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "analytical engine project" in textarea(page, "resume_text")
    assert "first program" in textarea(page, "resume_text")


def test_job_description_docx_with_a_table_is_extracted(client):
    docx = docx_document(["Backend role"], [["Skill", "Level"], ["Python", "Expert"]])
    response = upload(client, "jd.docx", docx, field="job_description_file")
    assert response.status_code == 200
    assert "Python | Expert" in textarea(response.get_data(as_text=True), "job_description_text")


def test_a_pdf_renamed_docx_is_read_as_what_it_is(client):
    response = upload(client, "resume.docx", pdf_with_pages([["Renamed but still a PDF."]]))
    assert response.status_code == 200
    assert "Renamed but still a PDF." in textarea(response.get_data(as_text=True), "resume_text")


def test_a_docx_zip_bomb_is_refused_next_to_the_field(client):
    bomb = with_zeros_entry(docx_document(["Hello"]), "word/media/zeros.bin", 200 * 1024 * 1024)
    response = upload(client, "bomb.docx", bomb)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    error = re.search(r'id="error-resume_text"[^>]*>([^<]+)<', page)
    assert error and ("limit" in error.group(1).lower() or "compress" in error.group(1).lower())
    assert textarea(page, "resume_text") == ""


def test_a_pdf_over_the_page_limit_names_the_limit(client):
    response = upload(client, "long.pdf", numbered_pdf(45))
    assert response.status_code == 400
    assert "30" in re.search(r'id="error-resume_text"[^>]*>([^<]+)<', response.get_data(as_text=True)).group(1)


def test_a_body_over_the_size_limit_answers_413(client):
    response = upload(client, "huge.txt", b"a" * (6 * 1024 * 1024))
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)


def test_upload_needs_a_csrf_token(client):
    form = {**FORM, "resume_file": (io.BytesIO(b"plain text resume"), "cv.txt")}
    response = client.post("/interviews/new", data=form, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "plain text resume" not in response.get_data(as_text=True)
