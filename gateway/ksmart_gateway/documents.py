"""The gateway's document endpoints: a citizen uploads a document and
attaches it to a file (or counter staff upload the scans of one they file
for a citizen), and those who may read the file download it. A
mixin of GatewayService (service.py), which holds the applications proxy
they call.

The gateway writes the bytes itself (to the storage volume, or an
S3-compatible store behind the same interface) rather than passing up to
25 MiB through RPC; the applications service records whose upload it is and
decides who may read it.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from eventlet import tpool
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from ksmart_common.domain.documents import (
    DOCUMENT_FORMATS,
    DOCUMENT_TYPES,
    MAX_DOCUMENT_BYTES,
    MAX_FILENAME_LENGTH,
    check_sha256,
)
from ksmart_common.domain.roles import CITIZEN, COUNTER_ROLES
from ksmart_common.errors import PayloadTooLarge
from ksmart_common.rpc import call
from ksmart_gateway import schemas
from ksmart_gateway.api import PREFIX, ApiResult, api, instance, request_meta
from ksmart_gateway.document_storage import DocumentStorage, storage_from_config
from ksmart_gateway.files import FILE_READERS, file_answer

DOWNLOAD_CHUNK_BYTES = 64 * 1024

# Letters (any script, with their vowel signs), digits, and a little
# punctuation; nothing else survives into a stored file name.
_KEPT_PUNCTUATION = frozenset(".-_ ()")


class DocumentStorageProvider(DependencyProvider):
    def setup(self) -> None:
        self.storage = storage_from_config()

    def get_dependency(self, worker_ctx) -> DocumentStorage:
        return self.storage


def safe_filename(name: str | None) -> str | None:
    """The uploader's file name as a label only: no folders, no control or
    direction characters, nothing a path or a header could trip on."""
    if name is None:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        char if unicodedata.category(char)[0] in "LMN" or char in _KEPT_PUNCTUATION else "_"
        for char in base
    ).strip(" .")
    return cleaned[:MAX_FILENAME_LENGTH] or None


def download_name(code: str, upload: dict[str, Any]) -> str:
    """The name a download is saved as: the document's code and its real
    type, never the uploader's name (which a header must not carry)."""
    kind = DOCUMENT_TYPES.get(upload["media_type"])
    return f"{code}.{kind.extension if kind else 'bin'}"


class DocumentEndpoints:
    documents = DocumentStorageProvider()

    @api(
        "POST",
        f"{PREFIX}/documents",
        summary="Upload a document (the raw bytes as the body: PDF, JPEG or PNG, judged by "
        "content, at most 25 MiB); attach it by its sha256 when applying (a citizen) or "
        "when filing for a citizen at a counter (counter staff's scans)",
        allowed_roles=(CITIZEN, *COUNTER_ROLES),
        query=schemas.UploadQuery,
        response=schemas.UploadResponse,
        status=201,
        tag="documents",
        raw_body=True,
    )
    def upload_document(self, request, principal, query):
        filename = safe_filename(query["filename"])
        if (request.content_length or 0) > MAX_DOCUMENT_BYTES:
            raise PayloadTooLarge(
                "the document is too large",
                [{"field": "body", "message": f"at most {MAX_DOCUMENT_BYTES} bytes"}],
            )
        # Hashing and fsync are blocking work: a real thread, so the gateway's
        # other requests (green threads) are not held up meanwhile.
        stored = tpool.execute(
            self.documents.put, request.stream, MAX_DOCUMENT_BYTES, DOCUMENT_FORMATS
        )
        upload = call(
            self.applications.record_upload,
            stored.sha256,
            stored.media_type,
            stored.size_bytes,
            filename,
            principal.as_actor(),
        )
        return ApiResult(instance(schemas.UploadResponse).dump(upload), status=201)

    @api(
        "POST",
        f"{PREFIX}/files/<uuid:file_id>/documents",
        summary="Attach one of your uploads to your open file (as a clarification asks)",
        allowed_roles=(CITIZEN,),
        body=schemas.AttachDocumentRequest,
        response=schemas.FileResponse,
        tag="documents",
    )
    def attach_document(self, request, principal, file_id, body):
        document = call(
            self.applications.attach_document,
            str(file_id),
            body["code"],
            body["sha256"],
            principal.as_actor(),
            request_meta(request),
        )
        return file_answer(document)

    @api(
        "GET",
        f"{PREFIX}/files/<uuid:file_id>/documents/<string:code>",
        summary="Download a document of a file: for those who may read the file",
        allowed_roles=FILE_READERS,
        tag="documents",
        binary_response=True,
    )
    def download_document(self, request, principal, file_id, code):
        upload = call(
            self.applications.document_for_reader, str(file_id), code, principal.as_actor()
        )
        sha256 = check_sha256(upload["sha256"])
        return Response(
            wrap_file(request.environ, self.documents.open(sha256), DOWNLOAD_CHUNK_BYTES),
            direct_passthrough=True,
            content_type=upload["media_type"],
            headers={
                "Content-Length": str(upload["size_bytes"]),
                "Content-Disposition": f'attachment; filename="{download_name(code, upload)}"',
                "ETag": f'"{sha256}"',
                "Cache-Control": "private, max-age=3600",
                # Served as the type it was judged to be, never re-guessed.
                "X-Content-Type-Options": "nosniff",
            },
        )
