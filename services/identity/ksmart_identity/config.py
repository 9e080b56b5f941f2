"""The identity service's settings, from the environment with local defaults."""

from __future__ import annotations

from ksmart_common.config import env

SIGNING_KEY_ENV = "KSMART_IDENTITY_SIGNING_KEY"
ACCESS_TOKEN_TTL_ENV = "KSMART_ACCESS_TOKEN_TTL_SECONDS"
DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 900


def access_token_ttl_seconds() -> int:
    """Short on purpose: an access token carries roles as they were when it
    was issued; a revoked session's tokens are refused by the gateway, and
    every other token is at most this old."""
    ttl = int(env(ACCESS_TOKEN_TTL_ENV, str(DEFAULT_ACCESS_TOKEN_TTL_SECONDS)))
    if ttl <= 0:
        raise ValueError(f"{ACCESS_TOKEN_TTL_ENV} must be a positive number of seconds")
    return ttl
