"""Signing keys on a real PostgreSQL: generated on first use, rotated, retired,
or given by the operator in the environment."""

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ksmart_common import ed25519
from ksmart_gateway.auth import TokenVerifier
from ksmart_identity import keys, tokens
from ksmart_identity.config import SIGNING_KEY_ENV

NO_ENVIRONMENT_KEY: dict[str, str] = {}
CLERK = {"user_id": "u-1", "username": "clerk.kochi", "roles": ["clerk"], "local_body": "KL-X"}


@pytest.fixture
def engine(identity_db):
    engine = sa.create_engine(identity_db.service_url)
    yield engine
    engine.dispose()


def _stored_kids(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT kid FROM signing_keys ORDER BY kid")).scalars())


def _token(key: keys.SigningKey) -> str:
    session_id = "5d1f7a4e-2b1c-4c0e-8f3a-9e6b7c8d9a01"
    return tokens.issue_access_token(
        key.private_key, key.kid, CLERK, 900, datetime.now(UTC), session_id
    )


def test_the_first_key_is_generated_on_first_use_and_then_reused(engine):
    assert _stored_kids(engine) == []
    first = keys.active_signing_key(engine, NO_ENVIRONMENT_KEY)
    again = keys.active_signing_key(engine, NO_ENVIRONMENT_KEY)
    assert again.kid == first.kid
    assert again.public_jwk == first.public_jwk
    assert _stored_kids(engine) == [first.kid]
    assert first.kid == ed25519.key_id(first.private_key.public_key())


def test_replicas_starting_together_create_one_first_key(engine):
    replicas = 4
    barrier = threading.Barrier(replicas)
    found = []

    def start_replica():
        barrier.wait()
        found.append(keys.active_signing_key(engine, NO_ENVIRONMENT_KEY).kid)

    threads = [threading.Thread(target=start_replica) for _ in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == replicas and len(set(found)) == 1
    assert _stored_kids(engine) == found[:1]


def test_the_jwks_holds_the_active_key_even_before_the_first_sign_in(engine):
    published = keys.jwks(engine, NO_ENVIRONMENT_KEY)
    active = keys.active_signing_key(engine, NO_ENVIRONMENT_KEY)
    assert published == {"keys": [active.public_jwk]}
    assert TokenVerifier.from_jwks(published).verify(_token(active)).username == "clerk.kochi"


def test_rotation_signs_with_the_new_key_while_the_old_one_still_verifies(engine):
    old = keys.active_signing_key(engine, NO_ENVIRONMENT_KEY)
    old_token = _token(old)
    new = keys.rotate_signing_key(engine)

    assert keys.active_signing_key(engine, NO_ENVIRONMENT_KEY).kid == new.kid
    published = keys.jwks(engine, NO_ENVIRONMENT_KEY)
    assert [jwk["kid"] for jwk in published["keys"]] == [new.kid, old.kid]
    verifier = TokenVerifier.from_jwks(published)
    assert verifier.verify(old_token).user_id == "u-1"
    assert verifier.verify(_token(new)).user_id == "u-1"


def test_a_retired_key_is_no_longer_published_nor_used(engine):
    old = keys.active_signing_key(engine, NO_ENVIRONMENT_KEY)
    new = keys.rotate_signing_key(engine)
    assert keys.retire_signing_key(engine, old.kid, datetime.now(UTC)) is True
    assert keys.retire_signing_key(engine, old.kid, datetime.now(UTC)) is False

    assert keys.jwks(engine, NO_ENVIRONMENT_KEY) == {"keys": [new.public_jwk]}
    assert keys.retire_signing_key(engine, new.kid, datetime.now(UTC)) is True
    replacement = keys.active_signing_key(engine, NO_ENVIRONMENT_KEY)
    assert replacement.kid not in {old.kid, new.kid}


def _pem(private_key) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_a_key_from_the_environment_signs_and_is_never_stored(engine):
    private_key = ed25519.generate_private_key()
    environ = {SIGNING_KEY_ENV: _pem(private_key)}

    active = keys.active_signing_key(engine, environ)
    assert active.kid == ed25519.key_id(private_key.public_key())
    assert keys.jwks(engine, environ) == {"keys": [ed25519.public_jwk(private_key, active.kid)]}
    assert _stored_kids(engine) == []


def test_stored_keys_stay_published_after_moving_to_an_environment_key(engine):
    stored = keys.active_signing_key(engine, NO_ENVIRONMENT_KEY)
    environ = {SIGNING_KEY_ENV: _pem(ed25519.generate_private_key())}
    published = [jwk["kid"] for jwk in keys.jwks(engine, environ)["keys"]]
    assert published == [keys.active_signing_key(engine, environ).kid, stored.kid]


def test_an_environment_key_that_is_not_ed25519_is_refused(engine):
    environ = {SIGNING_KEY_ENV: _pem(ec.generate_private_key(ec.SECP256R1()))}
    with pytest.raises(ValueError, match="Ed25519"):
        keys.active_signing_key(engine, environ)
