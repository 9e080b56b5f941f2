"""The keys that sign certificates (ksmart_applications.certificate_keys),
over the kernel's key store, on a throwaway database."""

import uuid

import pytest
import sqlalchemy as sa

from ksmart_applications import certificate_keys
from ksmart_applications.certificate_keys import CertificateKeys
from ksmart_common import config, ed25519, migrations
from ksmart_common.domain import certificate as cert
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
    """A throwaway database holding only the certificate_keys table."""
    admin_url = config.admin_database_url()
    name = f"kt{uuid.uuid4().hex[:10]}_certificates"
    migrations.ensure_database(admin_url, name)
    engine = sa.create_engine(migrations.url_for_database(admin_url, name))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(certificate_keys.CERTIFICATE_KEYS_DDL)
        yield engine
    finally:
        engine.dispose()
        migrations.drop_database(admin_url, name)


def _kids(jwks):
    return [jwk["kid"] for jwk in jwks["keys"]]


def test_stored_keys_are_generated_once_rotated_and_never_dropped(engine):
    keys = CertificateKeys({})
    first = keys.active_key(engine)
    assert keys.active_key(engine) == first
    assert _kids(keys.public_jwks(engine)) == [first.kid]
    old_certificate = certificates.issue(first)

    second = keys.rotate(engine)
    assert keys.active_key(engine) == second
    jwks = CertificateKeys({}).public_jwks(engine)
    assert _kids(jwks) == [second.kid, first.kid]
    published = cert.public_keys_from_jwks(jwks)
    assert cert.verify_certificate(old_certificate, published, certificates.now("2026-02-01")) == []
    assert (
        cert.verify_certificate(
            certificates.issue(second), published, certificates.now("2026-02-01")
        )
        == []
    )


def test_an_environment_key_signs_and_stays_published_after_it_is_replaced(engine):
    stored = CertificateKeys({}).active_key(engine)
    given = certificates.key(7)
    environ = {certificate_keys.SIGNING_KEY_ENV: ed25519.private_key_to_pem(given.private_key)}
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
    environ = {
        certificate_keys.SIGNING_KEY_ENV: ed25519.private_key_to_pem(replacement.private_key)
    }
    jwks = CertificateKeys(environ).public_jwks(engine)
    assert _kids(jwks)[0] == replacement.kid
    assert set(_kids(jwks)) == {replacement.kid, given.kid, stored.kid}
    published = cert.public_keys_from_jwks(jwks)
    assert cert.verify_certificate(signed_then, published, certificates.now("2026-02-01")) == []
    # Without an environment key, the stored key (never the recorded public
    # half) signs again.
    assert CertificateKeys({}).active_key(engine) == stored
