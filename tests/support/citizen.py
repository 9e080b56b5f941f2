"""What a citizen's app does over HTTP: read a service's checklist, upload
the documents it asks for, and apply; built from the published definition,
so no test hard-codes a service's form."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from ksmart_catalogue.samples import documents_needed, sample_form

KOCHI = "KL-EKM-KOC"

# The smallest content each format is recognised by (its magic bytes).
SAMPLE_CONTENT = {
    "application/pdf": b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n",
    "image/png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    "image/jpeg": b"\xff\xd8\xff\xe0" + b"\x00" * 64,
}


def definition_of(platform, service_code: str, version: int | None = None) -> dict[str, Any]:
    params = {"version": version} if version else None
    reply = requests.get(
        f"{platform.base_url}/api/v1/services/{service_code}", params=params, timeout=10
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def upload(platform, content: bytes, user: str = "citizen", filename: str | None = None):
    return requests.post(
        f"{platform.base_url}/api/v1/documents",
        params={"filename": filename} if filename else None,
        data=content,
        headers={**platform.as_user(user), "Content-Type": "application/octet-stream"},
        timeout=30,
    )


def upload_documents(platform, definition, form, user: str = "citizen") -> dict[str, str]:
    """Upload a fitting document for each one the form needs: code -> sha256."""
    hashes = {}
    for spec in documents_needed(definition, form):
        # Distinct content per document, so each is its own upload.
        content = SAMPLE_CONTENT[spec["formats"][0]] + spec["code"].encode()
        reply = upload(platform, content, user, f"{spec['code']}.bin")
        assert reply.status_code == 201, reply.text
        assert reply.json()["sha256"] == hashlib.sha256(content).hexdigest()
        hashes[spec["code"]] = reply.json()["sha256"]
    return hashes


def application(platform, service_code="birth-certificate", answers=None, user="citizen"):
    """A complete application body for the service, its documents uploaded."""
    definition = definition_of(platform, service_code)
    form = sample_form(definition, answers)
    return {
        "service_code": service_code,
        "local_body": KOCHI,
        "form": form,
        "documents": upload_documents(platform, definition, form, user),
    }


def submit(platform, body, key=None, user="citizen", lang=None):
    headers = platform.as_user(user)
    if key:
        headers["Idempotency-Key"] = key
    if lang:
        headers["Accept-Language"] = lang
    return requests.post(
        f"{platform.base_url}/api/v1/files", json=body, headers=headers, timeout=10
    )
