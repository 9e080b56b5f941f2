"""Content-addressed document storage on the file system (the gateway's), and
what a document is (ksmart_common.domain.documents)."""

import hashlib
import io

import pytest

from ksmart_common.domain.documents import sniff_media_type
from ksmart_common.errors import InvalidInput, NotFound, PayloadTooLarge
from ksmart_gateway import document_storage as documents
from ksmart_gateway.document_storage import (
    FilesystemDocumentStorage,
    StoredDocument,
    storage_from_config,
)

PDF = b"%PDF-1.7\n" + b"x" * 1000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
ACCEPTED = ("application/pdf", "image/png", "image/jpeg")


class CountingStream(io.BytesIO):
    """Remembers how many bytes were handed out, to prove the limit is kept."""

    def __init__(self, content: bytes) -> None:
        super().__init__(content)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


@pytest.fixture
def storage(tmp_path):
    return FilesystemDocumentStorage(tmp_path / "documents")


def files_under(root):
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


@pytest.mark.parametrize(
    "head, expected",
    [
        (PDF, "application/pdf"),
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (b"hello, this is text", None),
        (b"", None),
        (b"\x89PNG", None),
        (b"%PDF", None),
    ],
)
def test_media_type_comes_from_magic_bytes(head, expected):
    assert sniff_media_type(head) == expected


def test_a_png_named_pdf_is_stored_as_png(tmp_path, storage):
    upload = tmp_path / "scan.pdf"
    upload.write_bytes(PNG)
    with upload.open("rb") as stream:
        stored = storage.put(stream, 10_000, ACCEPTED)
    assert stored.media_type == "image/png"


def test_text_renamed_pdf_is_refused_and_nothing_is_left(tmp_path, storage):
    upload = tmp_path / "invoice.pdf"
    upload.write_bytes(b"#!/bin/sh\nrm -rf /\n")
    with upload.open("rb") as stream, pytest.raises(InvalidInput) as refused:
        storage.put(stream, 10_000, ACCEPTED)
    assert [p["field"] for p in refused.value.problems] == ["document"]
    assert files_under(storage.root) == []


def test_a_known_type_not_accepted_here_is_refused(storage):
    with pytest.raises(InvalidInput):
        storage.put(io.BytesIO(JPEG), 10_000, ["application/pdf"])
    assert files_under(storage.root) == []


def test_empty_content_is_refused(storage):
    with pytest.raises(InvalidInput):
        storage.put(io.BytesIO(b""), 10_000, ACCEPTED)
    assert files_under(storage.root) == []


def test_too_large_is_refused_after_reading_at_most_one_byte_over(storage, monkeypatch):
    monkeypatch.setattr(documents, "CHUNK_BYTES", 7)  # many chunks, not one read
    limit = 100
    stream = CountingStream(PDF)
    with pytest.raises(PayloadTooLarge) as refused:
        storage.put(stream, limit, ACCEPTED)
    assert stream.bytes_read <= limit + 1
    assert "at most 100 bytes" in refused.value.problems[0]["message"]
    assert files_under(storage.root) == []


def test_content_exactly_at_the_limit_is_accepted(storage):
    stored = storage.put(io.BytesIO(PDF), len(PDF), ACCEPTED)
    assert stored.size_bytes == len(PDF)


def test_the_hash_is_sha256_of_the_content(storage):
    stored = storage.put(io.BytesIO(PDF), 10_000, ACCEPTED)
    assert stored == StoredDocument(hashlib.sha256(PDF).hexdigest(), len(PDF), "application/pdf")


def test_the_same_content_twice_is_one_object(storage):
    first = storage.put(io.BytesIO(PDF), 10_000, ACCEPTED)
    second = storage.put(io.BytesIO(PDF), 10_000, ACCEPTED)
    assert first == second
    assert files_under(storage.root) == [storage.root / first.sha256[:2] / first.sha256]


def test_open_and_stat_round_trip(storage):
    stored = storage.put(io.BytesIO(PNG), 10_000, ACCEPTED)
    assert storage.exists(stored.sha256)
    assert storage.stat(stored.sha256) == stored
    with storage.open(stored.sha256) as stream:
        assert stream.read() == PNG


def test_an_absent_document(storage):
    absent = "0" * 64
    assert not storage.exists(absent)
    assert storage.stat(absent) is None
    with pytest.raises(NotFound):
        storage.open(absent)


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "../" + "a" * 61,
        hashlib.sha256(PDF).hexdigest().upper(),
        "ab" * 10,
        "g" * 64,
        "a" * 64 + "\n",
        "",
    ],
)
def test_a_bad_hash_is_refused_everywhere(storage, bad):
    for use in (storage.open, storage.exists, storage.stat):
        with pytest.raises(InvalidInput):
            use(bad)


def test_storage_from_config(monkeypatch, tmp_path):
    monkeypatch.setenv(documents.DOCUMENTS_DIR_ENV, str(tmp_path / "docs"))
    assert storage_from_config().root == tmp_path / "docs"
    monkeypatch.delenv(documents.DOCUMENTS_DIR_ENV)
    monkeypatch.chdir(tmp_path)
    assert storage_from_config().root == tmp_path / "var" / "documents"
    assert not (tmp_path / "var").exists()  # nothing is created until a put
