"""Document bytes at the gateway: stored on upload, streamed on download.

The gateway writes the bytes itself (to the storage volume, or an
S3-compatible store behind the same interface) rather than passing up to
25 MiB through RPC; the applications service records whose upload it is and
decides who may read it.
"""

from __future__ import annotations

import re
from typing import Any

from nameko.extensions import DependencyProvider

from ksmart_common.documents import (
    DOCUMENT_FORMATS,
    MAX_DOCUMENT_BYTES,
    DocumentStorage,
    storage_from_config,
)

__all__ = [
    "DOCUMENT_FORMATS",
    "MAX_DOCUMENT_BYTES",
    "DocumentStorageProvider",
    "download_name",
    "safe_filename",
]

EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
_UNSAFE = re.compile(r"[^\w.\- ()]+", re.UNICODE)


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
    cleaned = _UNSAFE.sub("_", base).strip(" .")
    return cleaned[:255] or None


def download_name(code: str, upload: dict[str, Any]) -> str:
    """The name a download is saved as: the document's code and its real
    type, never the uploader's name (which a header must not carry)."""
    return f"{code}.{EXTENSIONS.get(upload['media_type'], 'bin')}"
