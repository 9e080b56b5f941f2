"""Uploaded documents, stored once by the SHA-256 of their content.

Storing by hash makes uploads idempotent (a retried upload is the same
object) and lets any number of files share one copy. What a document is, and
how large it may be, is the domain's (ksmart_common.domain.documents).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from ksmart_common.config import env
from ksmart_common.domain.documents import (
    SNIFF_BYTES,
    check_sha256,
    sniff_media_type,
    too_large,
    unsupported,
)
from ksmart_common.errors import NotFound

DOCUMENTS_DIR_ENV = "KSMART_DOCUMENTS_DIR"
DEFAULT_DOCUMENTS_DIR = "var/documents"

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class StoredDocument:
    sha256: str
    size_bytes: int
    media_type: str


class DocumentStorage(Protocol):
    """Content-addressed document storage.

    Small enough to be implemented over an S3-compatible object store: the key
    is `sha256/<first 2 hex>/<sha256>` and the object metadata holds the media
    type and size. `put` then uploads a temporary object (or a local temporary
    file) while hashing, and copies it to its key only once it is accepted.

    Every method that takes a hash raises InvalidInput unless it is 64
    lowercase hex digits, so a hash from a URL can never name another path.
    """

    def put(self, stream: BinaryIO, max_bytes: int, accepted: Collection[str]) -> StoredDocument:
        """Store the stream's content; return what was stored.

        Reads at most max_bytes + 1 bytes, so an oversized upload costs no
        more than the limit. Content larger than max_bytes or whose sniffed
        type is not in `accepted` raises InvalidInput and leaves nothing
        behind. Storing content that is already stored changes nothing.
        """
        ...

    def open(self, sha256: str) -> BinaryIO:
        """The stored bytes, for reading; NotFound if absent."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def stat(self, sha256: str) -> StoredDocument | None:
        """What is stored under the hash, or None if nothing is."""
        ...


class FilesystemDocumentStorage:
    """Documents as files: `<root>/<first 2 hex>/<sha256>`.

    The media type is not kept in a sidecar: it is sniffed again from the first
    bytes on `stat`. `put` only stores content the sniffer recognises, so this
    always gives the type it was accepted as, and one file per document means
    there is no pair of files that a crash could leave half-written.

    A document appears under its name only complete: it is written and
    fsynced to a temporary file in the root (same file system), then moved
    into place with os.replace, which is atomic.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256

    def put(self, stream: BinaryIO, max_bytes: int, accepted: Collection[str]) -> StoredDocument:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.root.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        temp_path = Path(temp_name)
        try:
            with os.fdopen(descriptor, "wb") as temp:
                sha256, size, media_type = _copy_checked(stream, temp, max_bytes, accepted)
                temp.flush()
                os.fsync(temp.fileno())
            stored = StoredDocument(sha256, size, media_type)
            target = self.path_for(sha256)
            if target.exists():
                # Same hash, same bytes: the upload is a repeat.
                temp_path.unlink()
                return stored
            target.parent.mkdir(exist_ok=True)
            os.replace(temp_path, target)
            _fsync_directory(target.parent)
            return stored
        except BaseException:
            temp_path.unlink(missing_ok=True)
            raise

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.path_for(sha256).open("rb")
        except FileNotFoundError:
            raise NotFound(f"no document {sha256}") from None

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def stat(self, sha256: str) -> StoredDocument | None:
        try:
            with self.path_for(sha256).open("rb") as stored:
                head = stored.read(SNIFF_BYTES)
                size = os.fstat(stored.fileno()).st_size
        except FileNotFoundError:
            return None
        media_type = sniff_media_type(head)
        if media_type is None:
            # Only recognised content is ever stored: someone else wrote this.
            raise RuntimeError(f"stored document {sha256} is of no known type")
        return StoredDocument(sha256, size, media_type)


def _copy_checked(
    stream: BinaryIO, out: BinaryIO, max_bytes: int, accepted: Collection[str]
) -> tuple[str, int, str]:
    """Copy stream to out while hashing; (sha256, size, media type).

    Refuses unaccepted content as soon as its first bytes are in, and never
    asks the stream for more than max_bytes + 1 bytes in all.
    """
    digest = hashlib.sha256()
    head = b""
    media_type: str | None = None
    size = 0
    while True:
        chunk = stream.read(min(CHUNK_BYTES, max_bytes + 1 - size))
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        digest.update(chunk)
        out.write(chunk)
        if media_type is None and len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
            if len(head) == SNIFF_BYTES:
                media_type = _accepted_type(head, accepted)
    if media_type is None:
        media_type = _accepted_type(head, accepted)
    return digest.hexdigest(), size, media_type


def _accepted_type(head: bytes, accepted: Collection[str]) -> str:
    media_type = sniff_media_type(head)
    if media_type is None or media_type not in accepted:
        raise unsupported(accepted)
    return media_type


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable, not only the file's bytes."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def storage_from_config() -> FilesystemDocumentStorage:
    """The storage configured by KSMART_DOCUMENTS_DIR.

    Read here rather than in config.py because only this module needs it. A
    relative path is taken from the current directory now, so a later chdir
    does not move the documents.
    """
    return FilesystemDocumentStorage(Path(env(DOCUMENTS_DIR_ENV, DEFAULT_DOCUMENTS_DIR)).resolve())
