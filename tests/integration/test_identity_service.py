"""The identity service's RPC methods, run by nameko's worker_factory against a
real PostgreSQL (the same plain functions a container would call)."""

import json
import os

import jwt
import pytest
import sqlalchemy as sa
from nameko.exceptions import deserialize, serialize
from nameko.testing.services import worker_factory

from ksmart_common.errors import Unauthenticated
from ksmart_common.key_anchor import ROOT_PUBLIC_KEY_ENV
from ksmart_gateway.auth import Principal, TokenVerifier
from ksmart_identity.config import ACCESS_TOKEN_TTL_ENV, SIGNING_KEY_ENV
from ksmart_identity.service import IdentityService
from ksmart_identity.users import seed_demo_users
from ksmart_ops.key_root import anchor_development_keys, key_root_environment

DEMO_PASSWORD = "demo-password"


@pytest.fixture
def service(identity_db, monkeypatch, tmp_path):
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    monkeypatch.delenv(ACCESS_TOKEN_TTL_ENV, raising=False)
    monkeypatch.setenv(ROOT_PUBLIC_KEY_ENV, key_root_environment(tmp_path, {})[ROOT_PUBLIC_KEY_ENV])
    anchor_development_keys(tmp_path, {"identity": identity_db.service_url}, os.environ)
    engine = sa.create_engine(identity_db.service_url)
    seed_demo_users(engine, DEMO_PASSWORD)
    yield worker_factory(IdentityService, db=engine)
    engine.dispose()


def test_login_returns_a_bearer_token_the_gateway_accepts(service):
    response = service.login("secretary.kochi", DEMO_PASSWORD)
    assert json.loads(json.dumps(response)) == response  # crosses RPC as JSON
    assert response["token_type"] == "Bearer"
    assert response["expires_in"] == 900

    principal = TokenVerifier.from_jwks(service.jwks()).verify(response["access_token"])
    assert principal == Principal(
        user_id=principal.user_id,
        username="secretary.kochi",
        roles=("secretary",),
        local_body="KL-EKM-KOC",
        session_id=principal.session_id,
    )
    assert principal.session_id is not None
    assert response["refresh_token"]


def test_the_token_lifetime_comes_from_the_environment(service, monkeypatch):
    monkeypatch.setenv(ACCESS_TOKEN_TTL_ENV, "60")
    response = service.login("citizen", DEMO_PASSWORD)
    claims = jwt.decode(response["access_token"], options={"verify_signature": False})
    assert response["expires_in"] == 60 == claims["exp"] - claims["iat"]


@pytest.mark.parametrize(
    ("username", "password"),
    [("clerk.kochi", "wrong"), ("nobody", DEMO_PASSWORD), ("nobody", "wrong"), ("", "")],
)
def test_a_failed_login_never_says_what_was_wrong(service, username, password):
    with pytest.raises(Unauthenticated) as refused:
        service.login(username, password)
    assert refused.value.detail == "wrong username or password"


def test_the_login_refusal_reaches_the_caller_as_the_same_type():
    crossed = deserialize(serialize(Unauthenticated("wrong username or password")))
    assert isinstance(crossed, Unauthenticated)
    assert crossed.detail == "wrong username or password"


def test_the_jwks_is_stable_between_calls_and_has_no_private_part(service):
    published = service.jwks()
    assert service.jwks() == published
    assert json.loads(json.dumps(published)) == published
    [jwk] = published["keys"]
    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use", "endorsement"}


def test_health_checks_the_database(service):
    assert service.health() == {"status": "ok"}
