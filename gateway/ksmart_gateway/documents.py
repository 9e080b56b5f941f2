"""Document bytes at the gateway: stored on upload, streamed on download.

The gateway writes the bytes itself (to the storage volume, or an
S3-compatible store behind the same interface) rather than passing up to
25 MiB through RPC; the applications service records whose upload it is and
decides who may read it.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from nameko.extensions import DependencyProvider

from ksmart_common.domain.documents import (
    DOCUMENT_FORMATS,
    DOCUMENT_TYPES,
    MAX_DOCUMENT_BYTES,
    MAX_FILENAME_LENGTH,
)
from ksmart_gateway.document_storage import DocumentStorage, storage_from_config

__all__ = [
    "DOCUMENT_FORMATS",
    "MAX_DOCUMENT_BYTES",
    "DocumentStorageProvider",
    "download_name",
    "safe_filename",
]

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
