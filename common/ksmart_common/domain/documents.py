"""Documents as the platform knows them: which types it takes (judged by
their content's first bytes, never by their name or the Content-Type the
client sent: both are the client's claim, and a script renamed `.pdf` must
not be served back as a PDF), how large, and how one is named (the SHA-256
of its content).

A file's events refer to a document by its hash only, so the hash chain
covers the document too: the bytes can't change without the reference going
stale. The bytes themselves are stored by the gateway
(ksmart_gateway.document_storage).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from ksmart_common.errors import InvalidInput, PayloadTooLarge


# What the platform takes as a document at all; a service's definition may
# narrow both for each of its documents. One table: each accepted type with
# the magic bytes its content starts with, its name for people, and the
# extension a download is saved with.
@dataclass(frozen=True)
class DocumentType:
    media_type: str
    magic: bytes
    name: str
    extension: str


DOCUMENT_TYPES = {
    kind.media_type: kind
    for kind in (
        DocumentType("application/pdf", b"%PDF-", "PDF", "pdf"),
        DocumentType("image/jpeg", b"\xff\xd8\xff", "JPEG", "jpg"),
        DocumentType("image/png", b"\x89PNG\r\n\x1a\n", "PNG", "png"),
    )
}
DOCUMENT_FORMATS = tuple(DOCUMENT_TYPES)
MAX_DOCUMENT_BYTES = 25 * 1024 * 1024
# A sha256 as documents are named by: 64 lowercase hexadecimal digits.
SHA256_PATTERN = r"^[0-9a-f]{64}$"
MAX_FILENAME_LENGTH = 255

# Long enough for every signature above; the sniffer is given this many bytes.
SNIFF_BYTES = 8

_SHA256_HEX = re.compile(SHA256_PATTERN)


def sniff_media_type(head: bytes) -> str | None:
    """The media type the content's magic bytes announce, or None if unknown."""
    for kind in DOCUMENT_TYPES.values():
        if head.startswith(kind.magic):
            return kind.media_type
    return None


def check_sha256(sha256: str) -> str:
    """The hash unchanged, if it is one; InvalidInput otherwise."""
    if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
        raise InvalidInput(
            "not a document hash",
            [{"field": "sha256", "message": "must be 64 lowercase hexadecimal digits"}],
        )
    return sha256


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "the document is too large",
        [{"field": "document", "message": f"must be at most {max_bytes} bytes"}],
    )


def unsupported(accepted: Collection[str]) -> InvalidInput:
    allowed = ", ".join(sorted(accepted)) or "none"
    return InvalidInput(
        "the document is not of an accepted type",
        [
            {
                "field": "document",
                "message": f"content must be one of: {allowed} (judged by content, not name)",
            }
        ],
    )
