"""Keys anchored outside what a service can write (issue 18, item 6), on the
real platform: a certificate key or a token key inserted with the service's
own database role is not trusted, and a retired token key is refused by the
gateway once the configured bound has passed, its private half destroyed."""

import json
from datetime import UTC, datetime

import jwt
import pytest
import requests
import sqlalchemy as sa

from ksmart_common import ed25519
from ksmart_common.domain import certificate as cert
from ksmart_common.key_anchor import TOKEN, KeyAnchor, root_public_text
from ksmart_common.keystore import SigningKey
from ksmart_identity import keys, tokens
from ksmart_ops.key_root import development_root, endorse_keys
from tests.support import certificates
from tests.support.platform import running_platform
from tests.support.waiting import wait_for

REFRESH_SECONDS = 2


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    environ = {"KSMART_TOKEN_KEYS_REFRESH_SECONDS": str(REFRESH_SECONDS)}
    with running_platform(tmp_path_factory.mktemp("anchoring"), environ=environ) as running:
        yield running


def _url(platform, path):
    return f"{platform.base_url}/api/v1{path}"


def _insert_key(database_url: str, table: str, key: SigningKey) -> None:
    """As an insider holding the service's own database credentials would."""
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"INSERT INTO {table} (kid, private_key_pem, public_jwk, created_at)"
                    " VALUES (:kid, :pem, CAST(:jwk AS jsonb), clock_timestamp())"
                ),
                {
                    "kid": key.kid,
                    "pem": ed25519.private_key_to_pem(key.private_key),
                    "jwk": json.dumps(key.public_jwk),
                },
            )
    finally:
        engine.dispose()


def _inbox(platform, token):
    return requests.get(
        _url(platform, "/inbox"), headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def _token_like(platform, username, key: SigningKey) -> str:
    """A token with a genuine token's claims (its user, its live session),
    signed with `key`."""
    claims = jwt.decode(platform.token(username), options={"verify_signature": False})
    user = {
        "user_id": claims["sub"],
        "username": claims["preferred_username"],
        "roles": claims["roles"],
        "local_body": claims["local_body"],
        "wards": claims["wards"],
    }
    return tokens.issue_access_token(
        key.private_key, key.kid, user, 900, datetime.now(UTC), claims["sid"]
    )


def test_a_certificate_key_inserted_by_the_applications_role_is_not_trusted(platform):
    inserted = SigningKey.generate()
    _insert_key(platform.databases["applications"].service_url, "certificate_keys", inserted)
    forged = certificates.issue(inserted)

    answer = requests.post(
        _url(platform, "/certificates/verify"), json={"qr_text": cert.qr_text(forged)}, timeout=10
    ).json()
    assert answer["valid"] is False
    assert any(problem.startswith("unknown_kid") for problem in answer["problems"])

    published = requests.get(_url(platform, "/certificate-keys"), timeout=10).json()
    assert inserted.kid not in [jwk["kid"] for jwk in published["keys"]]
    # Every published key is the root's; an offline verifier checks so.
    anchor = KeyAnchor.from_environment(platform.env)
    assert published["keys"] and all(
        anchor.endorses("certificate", jwk) for jwk in published["keys"]
    )
    assert inserted.kid not in cert.public_keys_from_jwks(published, anchor)


def test_a_token_key_inserted_by_the_identity_role_is_not_trusted(platform):
    genuine = platform.token("clerk.kochi")
    assert _inbox(platform, genuine).status_code == 200
    inserted = SigningKey.generate()
    _insert_key(platform.databases["identity"].service_url, "signing_keys", inserted)

    refused = _inbox(platform, _token_like(platform, "clerk.kochi", inserted))
    assert refused.status_code == 401
    assert "unknown key" in refused.json()["detail"]


def test_a_retired_token_key_is_refused_within_the_bound_and_its_private_half_is_gone(platform):
    engine = sa.create_engine(platform.databases["identity"].service_url)
    try:
        root = development_root(platform.run_dir)
        assert root_public_text(root) == platform.env["KSMART_KEY_ROOT_PUBLIC"]
        old_kid = keys.active_signing_key(engine, platform.env).kid
        old_token = platform.token("clerk.kochi")
        assert jwt.get_unverified_header(old_token)["kid"] == old_kid
        new = keys.rotate_signing_key(engine)
        assert endorse_keys(root, TOKEN, engine, [new.kid]) == []
        assert _inbox(platform, old_token).status_code == 200

        assert keys.retire_signing_key(engine, old_kid, datetime.now(UTC))
        wait_for(
            lambda: _inbox(platform, old_token).status_code == 401,
            # The bound, and a little for the fetch itself.
            timeout=REFRESH_SECONDS + 3,
            message="the retired key's token refused",
        )
        with engine.connect() as conn:
            private_key_pem = conn.execute(
                sa.text("SELECT private_key_pem FROM signing_keys WHERE kid = :kid"),
                {"kid": old_kid},
            ).scalar_one()
        assert private_key_pem is None

        # Sign-ins go on, with the endorsed key rotated in.
        platform.tokens.clear()
        fresh = platform.token("clerk.kochi")
        assert jwt.get_unverified_header(fresh)["kid"] == new.kid
        assert _inbox(platform, fresh).status_code == 200
    finally:
        engine.dispose()
