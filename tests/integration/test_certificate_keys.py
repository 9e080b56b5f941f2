"""The keys that sign certificates (ksmart_applications.certificate_keys),
over the kernel's key store, on a throwaway database: only the keys the
deployment's key root endorses sign and are published."""

import json
import uuid

import pytest
import sqlalchemy as sa

from ksmart_applications import certificate_keys
from ksmart_applications.certificate_keys import CertificateKeys, certificate_key_store
from ksmart_common import config, ed25519, migrations
from ksmart_common.domain import certificate as cert
from ksmart_common.errors import ServiceUnavailable
from ksmart_common.key_anchor import (
    CERTIFICATE,
    ENDORSEMENT_MEMBER,
    ROOT_PUBLIC_KEY_ENV,
    endorse,
    root_public_text,
)
from ksmart_ops.key_root import endorse_keys
from tests.support import certificates

# -- keys --------------------------------------------------------------------------


def test_the_environment_key_is_read_from_pem():
    key = certificates.key()
    pem = ed25519.private_key_to_pem(key.private_key)
    one_line = {certificate_keys.SIGNING_KEY_ENV: pem.replace("\n", "\\n")}
    assert CertificateKeys(one_line).environment_key() == key
    assert CertificateKeys({certificate_keys.SIGNING_KEY_ENV: " "}).environment_key() is None
    assert CertificateKeys({}).environment_key() is None


def test_jwk_and_kid():
    key = certificates.key()
    jwk = key.public_jwk
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["kid"] == key.kid
    assert ed25519.key_id(key.public_key) == key.kid
    keys = cert.public_keys_from_jwks({"keys": [jwk, {"kty": "RSA", "kid": "r"}, {"kid": "z"}]})
    assert list(keys) == [key.kid]


@pytest.fixture
def engine():
    """A throwaway database holding only the certificate_keys table, as its
    migrations leave it."""
    admin_url = config.admin_database_url()
    name = f"kt{uuid.uuid4().hex[:10]}_certificates"
    migrations.ensure_database(admin_url, name)
    engine = sa.create_engine(migrations.url_for_database(admin_url, name))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(certificate_keys.CERTIFICATE_KEYS_DDL)
            conn.exec_driver_sql("ALTER TABLE certificate_keys ADD COLUMN endorsement text NULL")
        yield engine
    finally:
        engine.dispose()
        migrations.drop_database(admin_url, name)


@pytest.fixture
def root():
    return ed25519.generate_private_key()


def _anchored(root, **environ):
    return {ROOT_PUBLIC_KEY_ENV: root_public_text(root), **environ}


def _endorse(root, engine, *kids):
    assert endorse_keys(root, CERTIFICATE, engine, kids) == []


def _kids(jwks):
    return [jwk["kid"] for jwk in jwks["keys"]]


def test_stored_keys_sign_once_endorsed_are_rotated_and_never_dropped(engine, root):
    keys = CertificateKeys(_anchored(root))
    with pytest.raises(ServiceUnavailable, match="endorse-keys certificate"):
        keys.active_key(engine)  # the first key is made, and awaits its endorsement
    (waiting,) = certificate_key_store().live_keys(engine)
    assert keys.public_jwks(engine) == {"keys": []}
    _endorse(root, engine, waiting["kid"])
    first = keys.active_key(engine)
    assert first.kid == waiting["kid"] and keys.active_key(engine) == first
    assert _kids(keys.public_jwks(engine)) == [first.kid]
    old_certificate = certificates.issue(first)

    second = keys.rotate(engine)
    assert keys.active_key(engine) == first  # not endorsed yet: never signs
    _endorse(root, engine, second.kid)
    assert keys.active_key(engine) == second
    jwks = CertificateKeys(_anchored(root)).public_jwks(engine)
    assert _kids(jwks) == [second.kid, first.kid]
    assert all(ENDORSEMENT_MEMBER in jwk for jwk in jwks["keys"])
    published = cert.public_keys_from_jwks(jwks)
    assert cert.verify_certificate(old_certificate, published, certificates.now("2026-02-01")) == []
    assert (
        cert.verify_certificate(
            certificates.issue(second), published, certificates.now("2026-02-01")
        )
        == []
    )


def test_a_key_inserted_into_the_table_is_never_published_nor_trusted(engine, root):
    keys = CertificateKeys(_anchored(root))
    with pytest.raises(ServiceUnavailable):
        keys.active_key(engine)
    (genuine,) = certificate_key_store().live_keys(engine)
    _endorse(root, engine, genuine["kid"])
    genuine_endorsement = keys.public_jwks(engine)["keys"][0][ENDORSEMENT_MEMBER]

    # An insider's keys: one bare, one with the genuine key's endorsement
    # copied, one endorsed by a root of their own.
    insider = [certificates.key(seed) for seed in (31, 32, 33)]
    endorsements = [
        None,
        genuine_endorsement,
        endorse(ed25519.generate_private_key(), CERTIFICATE, insider[2].public_jwk),
    ]
    with engine.begin() as conn:
        for key, endorsement in zip(insider, endorsements, strict=True):
            conn.execute(
                sa.text(
                    "INSERT INTO certificate_keys (kid, private_key_pem, public_jwk, endorsement)"
                    " VALUES (:kid, :pem, CAST(:jwk AS jsonb), :endorsement)"
                ),
                {
                    "kid": key.kid,
                    "pem": ed25519.private_key_to_pem(key.private_key),
                    "jwk": json.dumps(key.public_jwk),
                    "endorsement": endorsement,
                },
            )
    fresh = CertificateKeys(_anchored(root))
    assert _kids(fresh.public_jwks(engine)) == [genuine["kid"]]
    assert fresh.active_key(engine).kid == genuine["kid"]  # the newest row does not sign
    for key in insider:
        problems = fresh.problems(certificates.issue(key), engine)
        assert any(problem.startswith("unknown_kid") for problem in problems), problems


def test_without_a_configured_root_nothing_signs_or_is_published(engine, root):
    keys = CertificateKeys({})
    with pytest.raises(ServiceUnavailable):
        keys.active_key(engine)
    (waiting,) = certificate_key_store().live_keys(engine)
    _endorse(root, engine, waiting["kid"])
    assert keys.public_jwks(engine) == {"keys": []}


def test_an_environment_key_signs_once_endorsed_and_stays_published_after_it_is_replaced(
    engine, root
):
    with pytest.raises(ServiceUnavailable):
        CertificateKeys(_anchored(root)).active_key(engine)
    (stored,) = certificate_key_store().live_keys(engine)
    _endorse(root, engine, stored["kid"])
    given = certificates.key(7)
    environ = _anchored(
        root, **{certificate_keys.SIGNING_KEY_ENV: ed25519.private_key_to_pem(given.private_key)}
    )
    with pytest.raises(ServiceUnavailable, match=given.kid):
        CertificateKeys(environ).active_key(engine)  # recorded, not yet endorsed
    _endorse(root, engine, given.kid)
    assert CertificateKeys(environ).active_key(engine) == given
    signed_then = certificates.issue(given)
    with engine.connect() as conn:
        pem = conn.execute(
            sa.text("SELECT private_key_pem FROM certificate_keys WHERE kid = :kid"),
            {"kid": given.kid},
        ).scalar_one()
    assert pem is None  # the environment's private key is never stored

    # The operator moves to a new key: the old one still verifies.
    replacement = certificates.key(8)
    environ = _anchored(
        root,
        **{certificate_keys.SIGNING_KEY_ENV: ed25519.private_key_to_pem(replacement.private_key)},
    )
    with pytest.raises(ServiceUnavailable):
        CertificateKeys(environ).active_key(engine)
    _endorse(root, engine, replacement.kid)
    jwks = CertificateKeys(environ).public_jwks(engine)
    assert _kids(jwks)[0] == replacement.kid
    assert set(_kids(jwks)) == {replacement.kid, given.kid, stored["kid"]}
    published = cert.public_keys_from_jwks(jwks)
    assert cert.verify_certificate(signed_then, published, certificates.now("2026-02-01")) == []
    # Without an environment key, the stored key (never the recorded public
    # half) signs again.
    assert CertificateKeys(_anchored(root)).active_key(engine).kid == stored["kid"]
