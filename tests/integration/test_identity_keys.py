"""Signing keys on a real PostgreSQL: generated on first use, trusted once
the deployment's key root endorses them, rotated, retired (the private half
destroyed), or given by the operator in the environment."""

import json
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ksmart_common import ed25519
from ksmart_common.errors import ServiceUnavailable, Unauthenticated
from ksmart_common.key_anchor import ROOT_PUBLIC_KEY_ENV, TOKEN, KeyAnchor, root_public_text
from ksmart_gateway.auth import TokenVerifier
from ksmart_identity import keys, tokens
from ksmart_identity.config import SIGNING_KEY_ENV
from ksmart_ops.key_root import endorse_keys

CLERK = {"user_id": "u-1", "username": "clerk.kochi", "roles": ["clerk"], "local_body": "KL-X"}


@pytest.fixture
def engine(identity_db):
    engine = sa.create_engine(identity_db.service_url)
    yield engine
    engine.dispose()


@pytest.fixture
def root():
    return ed25519.generate_private_key()


@pytest.fixture
def anchored(root):
    """The environment with the root pinned and no environment key."""
    return {ROOT_PUBLIC_KEY_ENV: root_public_text(root)}


def _stored_kids(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT kid FROM signing_keys ORDER BY kid")).scalars())


def _endorse(root, engine, *kids):
    assert endorse_keys(root, TOKEN, engine, kids) == []


def _first_key(root, engine, anchored) -> keys.SigningKey:
    """The first key, made on first use and endorsed by the operator."""
    with pytest.raises(ServiceUnavailable, match="endorse-keys token"):
        keys.active_signing_key(engine, anchored)
    (kid,) = _stored_kids(engine)
    _endorse(root, engine, kid)
    return keys.active_signing_key(engine, anchored)


def _token(key: keys.SigningKey) -> str:
    session_id = "5d1f7a4e-2b1c-4c0e-8f3a-9e6b7c8d9a01"
    return tokens.issue_access_token(
        key.private_key, key.kid, CLERK, 900, datetime.now(UTC), session_id
    )


def _verifier(root, engine, anchored) -> TokenVerifier:
    """As the gateway builds it: the published keys the root endorses."""
    return TokenVerifier.from_jwks(keys.jwks(engine, anchored), anchor=KeyAnchor(root.public_key()))


def test_the_first_key_is_generated_on_first_use_and_signs_once_endorsed(root, engine, anchored):
    assert _stored_kids(engine) == []
    first = _first_key(root, engine, anchored)
    again = keys.active_signing_key(engine, anchored)
    assert again.kid == first.kid
    assert again.public_jwk == first.public_jwk
    assert _stored_kids(engine) == [first.kid]
    assert first.kid == ed25519.key_id(first.private_key.public_key())


def test_replicas_starting_together_create_one_first_key(engine, anchored):
    replicas = 4
    barrier = threading.Barrier(replicas)
    refused = []

    def start_replica():
        barrier.wait()
        try:
            keys.active_signing_key(engine, anchored)
        except ServiceUnavailable as error:
            refused.append(str(error))

    threads = [threading.Thread(target=start_replica) for _ in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (kid,) = _stored_kids(engine)
    assert len(refused) == replicas and all(kid in message for message in refused)


def test_the_jwks_holds_the_active_key_with_its_endorsement(root, engine, anchored):
    active = _first_key(root, engine, anchored)
    published = keys.jwks(engine, anchored)
    assert [jwk["kid"] for jwk in published["keys"]] == [active.kid]
    assert published["keys"][0]["endorsement"]
    assert _verifier(root, engine, anchored).verify(_token(active)).username == "clerk.kochi"


def test_a_key_inserted_by_the_identity_role_is_neither_published_nor_trusted(
    root, engine, anchored
):
    genuine = _first_key(root, engine, anchored)
    inserted = keys.SigningKey.generate()
    with engine.begin() as conn:  # the service's own role, as an insider holding it
        conn.execute(
            sa.text(
                "INSERT INTO signing_keys (kid, private_key_pem, public_jwk, created_at)"
                " VALUES (:kid, :pem, CAST(:jwk AS jsonb), clock_timestamp())"
            ),
            {
                "kid": inserted.kid,
                "pem": ed25519.private_key_to_pem(inserted.private_key),
                "jwk": json.dumps(inserted.public_jwk),
            },
        )
    assert keys.active_signing_key(engine, anchored).kid == genuine.kid
    assert [jwk["kid"] for jwk in keys.jwks(engine, anchored)["keys"]] == [genuine.kid]
    # Even were it published, the gateway would not trust it.
    unendorsed = {"keys": [inserted.public_jwk, *keys.jwks(engine, anchored)["keys"]]}
    verifier = TokenVerifier.from_jwks(unendorsed, anchor=KeyAnchor(root.public_key()))
    with pytest.raises(Unauthenticated, match="unknown key"):
        verifier.verify(_token(inserted))


def test_rotation_signs_with_the_new_key_once_endorsed_while_the_old_one_verifies(
    root, engine, anchored
):
    old = _first_key(root, engine, anchored)
    old_token = _token(old)
    new = keys.rotate_signing_key(engine)
    assert keys.active_signing_key(engine, anchored).kid == old.kid
    _endorse(root, engine, new.kid)

    assert keys.active_signing_key(engine, anchored).kid == new.kid
    published = keys.jwks(engine, anchored)
    assert [jwk["kid"] for jwk in published["keys"]] == [new.kid, old.kid]
    verifier = _verifier(root, engine, anchored)
    assert verifier.verify(old_token).user_id == "u-1"
    assert verifier.verify(_token(new)).user_id == "u-1"


def _private_key_pem(engine, kid):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT private_key_pem FROM signing_keys WHERE kid = :kid"), {"kid": kid}
        ).scalar_one()


def test_a_retired_key_is_no_longer_published_nor_used_and_its_private_half_is_gone(
    root, engine, anchored
):
    old = _first_key(root, engine, anchored)
    new = keys.rotate_signing_key(engine)
    _endorse(root, engine, new.kid)
    assert keys.retire_signing_key(engine, old.kid, datetime.now(UTC)) is True
    assert keys.retire_signing_key(engine, old.kid, datetime.now(UTC)) is False
    assert _private_key_pem(engine, old.kid) is None

    assert [jwk["kid"] for jwk in keys.jwks(engine, anchored)["keys"]] == [new.kid]
    with pytest.raises(Unauthenticated, match="unknown key"):
        _verifier(root, engine, anchored).verify(_token(old))
    # The database itself refuses a private half written back: a stored key
    # is never rewritten, and a retired one keeps none.
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE signing_keys SET private_key_pem = :pem WHERE kid = :kid"),
            {"pem": ed25519.private_key_to_pem(old.private_key), "kid": old.kid},
        )
    assert keys.retire_signing_key(engine, new.kid, datetime.now(UTC)) is True
    with pytest.raises(ServiceUnavailable):
        keys.active_signing_key(engine, anchored)  # a replacement, awaiting endorsement
    assert set(_stored_kids(engine)) - {old.kid, new.kid}


def _pem(private_key) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_a_key_from_the_environment_signs_once_endorsed_and_its_private_half_is_never_stored(
    root, engine, anchored
):
    private_key = ed25519.generate_private_key()
    environ = {**anchored, SIGNING_KEY_ENV: _pem(private_key)}
    kid = ed25519.key_id(private_key.public_key())
    with pytest.raises(ServiceUnavailable, match=kid):
        keys.active_signing_key(engine, environ)
    _endorse(root, engine, kid)

    active = keys.active_signing_key(engine, environ)
    assert active.kid == kid
    assert [jwk["kid"] for jwk in keys.jwks(engine, environ)["keys"]] == [kid]
    assert _stored_kids(engine) == [kid] and _private_key_pem(engine, kid) is None


def test_stored_keys_stay_published_after_moving_to_an_environment_key(root, engine, anchored):
    stored = _first_key(root, engine, anchored)
    private_key = ed25519.generate_private_key()
    environ = {**anchored, SIGNING_KEY_ENV: _pem(private_key)}
    with pytest.raises(ServiceUnavailable):
        keys.active_signing_key(engine, environ)
    _endorse(root, engine, ed25519.key_id(private_key.public_key()))
    published = [jwk["kid"] for jwk in keys.jwks(engine, environ)["keys"]]
    assert published == [keys.active_signing_key(engine, environ).kid, stored.kid]


def test_an_environment_key_that_is_not_ed25519_is_refused(engine, anchored):
    environ = {**anchored, SIGNING_KEY_ENV: _pem(ec.generate_private_key(ec.SECP256R1()))}
    with pytest.raises(ValueError, match="Ed25519"):
        keys.active_signing_key(engine, environ)
