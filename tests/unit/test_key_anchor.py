"""The deployment's key root (ksmart_common.key_anchor): a key is trusted
only with the root's endorsement for its purpose, whatever a table says."""

import pytest

from ksmart_common import ed25519
from ksmart_common.key_anchor import (
    CERTIFICATE,
    ENDORSEMENT_MEMBER,
    ROOT_PUBLIC_KEY_ENV,
    TOKEN,
    KeyAnchor,
    endorse,
    root_public_text,
)
from ksmart_common.keystore import SigningKey


@pytest.fixture
def root():
    return ed25519.generate_private_key()


@pytest.fixture
def anchor(root):
    return KeyAnchor.from_environment({ROOT_PUBLIC_KEY_ENV: root_public_text(root)})


def _endorsed(root, purpose, key: SigningKey) -> dict:
    return {**key.public_jwk, ENDORSEMENT_MEMBER: endorse(root, purpose, key.public_jwk)}


def test_a_key_endorsed_by_the_root_is_trusted_for_that_purpose_only(root, anchor):
    key = SigningKey.generate()
    jwk = _endorsed(root, TOKEN, key)
    assert anchor.endorses(TOKEN, jwk)
    assert not anchor.endorses(CERTIFICATE, jwk)
    assert anchor.endorsed(TOKEN, [jwk, key.public_jwk]) == [jwk]


def test_a_key_without_an_endorsement_or_with_anothers_is_not_trusted(root, anchor):
    key, other = SigningKey.generate(), SigningKey.generate()
    assert not anchor.endorses(TOKEN, key.public_jwk)
    # Another key's endorsement copied onto this one.
    borrowed = {**key.public_jwk, ENDORSEMENT_MEMBER: endorse(root, TOKEN, other.public_jwk)}
    assert not anchor.endorses(TOKEN, borrowed)
    # The endorsed key's kid kept, its x swapped for the insider's own key.
    swapped = {**_endorsed(root, TOKEN, other), "x": key.public_jwk["x"]}
    assert not anchor.endorses(TOKEN, swapped)
    for garbage in ("", "!!", "AAAA", 5, None):
        assert not anchor.endorses(TOKEN, {**key.public_jwk, ENDORSEMENT_MEMBER: garbage})


def test_an_endorsement_by_another_root_is_not_trusted(anchor):
    key = SigningKey.generate()
    assert not anchor.endorses(TOKEN, _endorsed(ed25519.generate_private_key(), TOKEN, key))


def test_the_root_refuses_to_endorse_a_jwk_whose_kid_is_not_its_own(root):
    key = SigningKey.generate()
    with pytest.raises(ValueError, match="kid"):
        endorse(root, TOKEN, {**key.public_jwk, "kid": "0123456789abcdef"})
    forged = {**key.public_jwk, "kid": "0123456789abcdef"}
    with pytest.raises(ValueError):
        endorse(root, TOKEN, {**forged, "x": "AAAA"})


def test_no_root_configured_is_none_and_a_malformed_one_an_error():
    assert KeyAnchor.from_environment({}) is None
    assert KeyAnchor.from_environment({ROOT_PUBLIC_KEY_ENV: "  "}) is None
    with pytest.raises(ValueError, match="32 bytes"):
        KeyAnchor.from_environment({ROOT_PUBLIC_KEY_ENV: "AAAA"})
