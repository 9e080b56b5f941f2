"""Which token keys the gateway trusts (ksmart_gateway.token_keys): only
those the identity service publishes live and the key root endorses, and a
retired one no longer once the next refresh is due, told with a fake clock."""

from datetime import UTC, datetime

import pytest

from ksmart_common import ed25519
from ksmart_common.errors import ServiceUnavailable, Unauthenticated
from ksmart_common.key_anchor import ENDORSEMENT_MEMBER, TOKEN, KeyAnchor, endorse
from ksmart_common.keystore import SigningKey
from ksmart_gateway.token_keys import MAX_STALENESS_SECONDS, TokenKeys
from ksmart_identity import tokens

CLERK = {"user_id": "u-1", "username": "clerk.kochi", "roles": ["clerk"], "local_body": "KL-X"}
REFRESH = 30.0


class Identity:
    """The identity service's JWKS, as a test changes it, counting fetches."""

    def __init__(self) -> None:
        self.published: list[dict] = []
        self.fetches = 0
        self.down = False

    def jwks(self) -> dict:
        if self.down:
            raise ConnectionError("identity is not answering")
        self.fetches += 1
        return {"keys": list(self.published)}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def root():
    return ed25519.generate_private_key()


def _endorsed(root, key: SigningKey) -> dict:
    return {**key.public_jwk, ENDORSEMENT_MEMBER: endorse(root, TOKEN, key.public_jwk)}


def _token(key: SigningKey) -> str:
    session = "5d1f7a4e-2b1c-4c0e-8f3a-9e6b7c8d9a01"
    return tokens.issue_access_token(
        key.private_key, key.kid, CLERK, 900, datetime.now(UTC), session
    )


def _keys(identity, root, clock) -> TokenKeys:
    anchor = KeyAnchor(root.public_key())
    return TokenKeys(identity.jwks, anchor, REFRESH, on_demand_seconds=5, clock=clock)


def _accepted(keys: TokenKeys, token: str) -> bool:
    try:
        keys.verifier_for(token).verify(token)
    except Unauthenticated:
        return False
    return True


def test_a_published_key_without_the_roots_endorsement_is_refused(root):
    identity, clock = Identity(), Clock()
    genuine, inserted = SigningKey.generate(), SigningKey.generate()
    identity.published = [_endorsed(root, genuine), inserted.public_jwk]
    keys = _keys(identity, root, clock)
    assert _accepted(keys, _token(genuine))
    assert not _accepted(keys, _token(inserted))
    # Endorsed by some other root: no better.
    identity.published.append(_endorsed(ed25519.generate_private_key(), inserted))
    clock.now += 6
    assert not _accepted(keys, _token(inserted))


def test_a_retired_key_is_refused_once_the_next_refresh_is_due(root):
    identity, clock = Identity(), Clock()
    old, new = SigningKey.generate(), SigningKey.generate()
    identity.published = [_endorsed(root, new), _endorsed(root, old)]
    keys = _keys(identity, root, clock)
    old_token = _token(old)
    assert _accepted(keys, old_token)

    identity.published = [_endorsed(root, new)]  # retired
    clock.now += REFRESH - 1
    assert _accepted(keys, old_token)  # within the bound: not fetched yet
    clock.now += 1
    keys.refresh()  # the background refresh, due now
    assert not _accepted(keys, old_token)
    assert _accepted(keys, _token(new))


def test_an_unknown_kid_fetches_again_but_not_more_often_than_allowed(root):
    identity, clock = Identity(), Clock()
    first, rotated_in = SigningKey.generate(), SigningKey.generate()
    identity.published = [_endorsed(root, first)]
    keys = _keys(identity, root, clock)
    assert _accepted(keys, _token(first)) and identity.fetches == 1
    identity.published.insert(0, _endorsed(root, rotated_in))
    assert not _accepted(keys, _token(rotated_in))  # fetched a moment ago: not again
    assert identity.fetches == 1
    clock.now += 5
    assert _accepted(keys, _token(rotated_in)) and identity.fetches == 2


def test_keys_too_old_to_trust_refuse_every_token(root):
    identity, clock = Identity(), Clock()
    key = SigningKey.generate()
    identity.published = [_endorsed(root, key)]
    keys = _keys(identity, root, clock)
    token = _token(key)
    assert _accepted(keys, token)
    identity.down = True
    clock.now += REFRESH + MAX_STALENESS_SECONDS + 1
    with pytest.raises(ConnectionError):
        keys.refresh()
    with pytest.raises(ServiceUnavailable, match="refreshed"):
        keys.verifier_for(token)


def test_without_a_configured_root_no_token_is_trusted(root):
    identity = Identity()
    key = SigningKey.generate()
    identity.published = [_endorsed(root, key)]
    keys = TokenKeys(identity.jwks, None, REFRESH)
    with pytest.raises(ServiceUnavailable, match="KSMART_KEY_ROOT_PUBLIC"):
        keys.verifier_for(_token(key))
