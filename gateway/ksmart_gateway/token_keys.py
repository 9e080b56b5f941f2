"""The token keys the gateway trusts, and how fresh they are.

Trusted: the keys the identity service publishes as live (its JWKS) that
also carry the deployment key root's endorsement (ksmart_common.key_anchor,
KSMART_KEY_ROOT_PUBLIC): a key row inserted by identity's own database role
is published by nobody's authority and refused here. Without a configured
root no token is accepted (fail closed).

Fresh: a retired key must stop being accepted by every gateway replica
within a bound. Each replica fetches the JWKS every `refresh_seconds`
(KSMART_TOKEN_KEYS_REFRESH_SECONDS, 30 by default) in the background, and a
retired kid is gone from the next fetch; the verifier (and its cache of
verified tokens) is rebuilt from each fetch, so nothing outlives it. If the
keys could not be fetched for `refresh_seconds + MAX_STALENESS_SECONDS`, every
token is refused (503) rather than checked against keys too old to trust.
An unknown kid also makes a fetch, at most every `on_demand_seconds`
(KSMART_JWKS_REFRESH_SECONDS), so a key rotated in is trusted at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ksmart_common import config
from ksmart_common.errors import ServiceUnavailable
from ksmart_common.key_anchor import KeyAnchor
from ksmart_gateway.auth import TokenVerifier

REFRESH_SECONDS_ENV = "KSMART_TOKEN_KEYS_REFRESH_SECONDS"
DEFAULT_REFRESH_SECONDS = 30.0
# How long past a missed refresh the keys are still used: the identity
# service restarting is no outage, a minute without it is.
MAX_STALENESS_SECONDS = 60.0


class TokenKeys:
    def __init__(
        self,
        fetch_jwks: Callable[[], dict[str, Any]],
        anchor: KeyAnchor | None,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        on_demand_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch_jwks = fetch_jwks
        self._anchor = anchor
        self.refresh_seconds = refresh_seconds
        self._on_demand_seconds = on_demand_seconds
        self._clock = clock
        self._verifier: TokenVerifier | None = None
        self._fetched_at = 0.0

    @classmethod
    def from_environment(
        cls, fetch_jwks: Callable[[], dict[str, Any]], on_demand_seconds: float
    ) -> TokenKeys:
        """With the root from KSMART_KEY_ROOT_PUBLIC and the refresh interval
        from KSMART_TOKEN_KEYS_REFRESH_SECONDS."""
        refresh_seconds = float(config.env(REFRESH_SECONDS_ENV, str(DEFAULT_REFRESH_SECONDS)))
        if refresh_seconds <= 0:
            raise ValueError(f"{REFRESH_SECONDS_ENV} must be a positive number of seconds")
        return cls(
            fetch_jwks, KeyAnchor.from_environment(os.environ), refresh_seconds, on_demand_seconds
        )

    def refresh(self) -> None:
        """Fetch the published keys now and trust the endorsed ones."""
        if self._anchor is None:
            return  # nothing could be trusted: verifier_for says so
        self._verifier = TokenVerifier.from_jwks(self._fetch_jwks(), anchor=self._anchor)
        self._fetched_at = self._clock()

    def verifier_for(self, token: str) -> TokenVerifier:
        """The verifier to check `token` with: the keys fetched last, fetched
        first if there are none yet or (rate-limited) if the token names a
        key they lack; ServiceUnavailable when no root is configured or the
        keys are too old to trust."""
        if self._anchor is None:
            raise ServiceUnavailable(
                "no key root is configured (KSMART_KEY_ROOT_PUBLIC): no token key is trusted"
            )
        now = self._clock()
        if self._verifier is None or (
            not self._verifier.knows_key_of(token)
            and now - self._fetched_at >= self._on_demand_seconds
        ):
            # Perhaps signed with a key that was rotated in since we fetched.
            self.refresh()
        elif now - self._fetched_at > self.refresh_seconds + MAX_STALENESS_SECONDS:
            raise ServiceUnavailable("the token keys could not be refreshed lately")
        return self._verifier
