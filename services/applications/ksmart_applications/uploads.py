"""Who uploaded which document: the `uploads` table.

The gateway stores the bytes (document storage, by sha256) and then records
the upload here under the uploader's id. An application may attach only
uploads of its own applicant, so knowing a document's hash is not enough to
attach someone else's document to a file.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from ksmart_common.domain.documents import MAX_FILENAME_LENGTH, check_sha256
from ksmart_common.domain.intake import Upload

uploads = sa.table(
    "uploads",
    sa.column("sha256"),
    sa.column("uploaded_by"),
    sa.column("media_type"),
    sa.column("size_bytes"),
    sa.column("filename"),
)


def record_upload(engine: sa.Engine, uploaded_by: str, upload: Upload) -> Upload:
    """Record the upload (once: the same content again is the same upload)."""
    check_sha256(upload.sha256)
    filename = (upload.filename or "")[:MAX_FILENAME_LENGTH] or None
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO uploads (sha256, uploaded_by, media_type, size_bytes, filename)"
                " VALUES (:sha256, :uploaded_by, :media_type, :size_bytes, :filename)"
                " ON CONFLICT (uploaded_by, sha256) DO NOTHING"
            ),
            {
                "sha256": upload.sha256,
                "uploaded_by": uploaded_by,
                "media_type": upload.media_type,
                "size_bytes": upload.size_bytes,
                "filename": filename,
            },
        )
    # The same content uploaded again is the upload made the first time.
    return find_uploads(engine, uploaded_by, {"": upload.sha256})[""]


def find_uploads(
    engine: sa.Engine, uploaded_by: str, hashes: Mapping[str, str]
) -> dict[str, Upload | None]:
    """document code -> the uploader's upload with that hash, or None when
    there is none (never another person's upload)."""
    wanted = {code: sha for code, sha in hashes.items() if isinstance(sha, str)}
    found: dict[str, Upload] = {}
    if wanted:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(uploads).where(
                    uploads.c.uploaded_by == uploaded_by,
                    uploads.c.sha256.in_(set(wanted.values())),
                )
            ).all()
        found = {
            row.sha256: Upload(row.sha256, row.media_type, row.size_bytes, row.filename)
            for row in rows
        }
    return {code: found.get(sha) if isinstance(sha, str) else None for code, sha in hashes.items()}
