"""What the portal reads from the environment, in one place."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass

GATEWAY_URL_ENV = "KSMART_PORTAL_GATEWAY_URL"
SECRET_KEY_ENV = "KSMART_PORTAL_SECRET_KEY"
DEVELOPMENT_ENV = "KSMART_PORTAL_DEVELOPMENT"
# Where browsers reach the portal (https://ksmart.example.org), for addresses
# given to others: a payment provider sends the citizen back to it. Unset:
# the address the request came to, right when nothing stands in between.
PUBLIC_URL_ENV = "KSMART_PORTAL_PUBLIC_URL"
ADDRESS_ENV = "KSMART_PORTAL_ADDRESS"
DEFAULT_ADDRESS = "127.0.0.1:8080"
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"
MAX_REQUEST_BYTES_ENV = "KSMART_PORTAL_MAX_REQUEST_BYTES"
# An application's documents together (a service asks for a few, each up
# to a few MB); a larger request is refused before it is read.
DEFAULT_MAX_REQUEST_BYTES = 30 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    gateway_url: str
    secret_key: str
    # Development serves plain HTTP on loopback, so its cookies cannot be
    # Secure; everywhere else they are.
    development: bool
    gateway_timeout_seconds: float = 10.0
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    public_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        development = environ.get(DEVELOPMENT_ENV, "") == "1"
        secret_key = environ.get(SECRET_KEY_ENV, "")
        if not secret_key:
            if not development:
                raise SystemExit(f"{SECRET_KEY_ENV} is required (32 random bytes, hex)")
            # A key for this process only: sessions end when it restarts.
            print(f"{SECRET_KEY_ENV} is not set: a key for this process only", file=sys.stderr)
            secret_key = secrets.token_hex(32)
        return cls(
            gateway_url=environ.get(GATEWAY_URL_ENV, DEFAULT_GATEWAY_URL).rstrip("/"),
            secret_key=secret_key,
            development=development,
            max_request_bytes=int(
                environ.get(MAX_REQUEST_BYTES_ENV, "") or DEFAULT_MAX_REQUEST_BYTES
            ),
            public_url=environ.get(PUBLIC_URL_ENV, "").rstrip("/") or None,
        )
