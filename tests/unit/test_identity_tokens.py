"""Access tokens, as the identity service issues them and the gateway verifies them.

Every refusal is checked through the gateway's TokenVerifier, the only code
that decides whether a caller is who the token says.
"""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from ksmart_common import ed25519
from ksmart_common.errors import Unauthenticated
from ksmart_gateway import auth
from ksmart_gateway.auth import Principal, TokenVerifier
from ksmart_identity import tokens

SESSION = "3f0b1c52-6e8a-4d3e-9a51-2b7c9d0e1f24"
CLERK = {
    "user_id": "0b6f3c1e-8d2a-4c55-9a51-3f7f0d9e2a10",
    "username": "clerk.kochi",
    "roles": ["clerk"],
    "local_body": "KL-EKM-KOC",
}


def _signing_key():
    private_key = ed25519.generate_private_key()
    return private_key, ed25519.key_id(private_key.public_key())


@pytest.fixture
def key():
    return _signing_key()


@pytest.fixture
def verifier(key):
    private_key, kid = key
    return TokenVerifier.from_jwks({"keys": [ed25519.public_jwk(private_key, kid)]})


def _now():
    return datetime.now(UTC)


def _issue(key, user=CLERK, ttl_seconds=900, now=None):
    private_key, kid = key
    return tokens.issue_access_token(private_key, kid, user, ttl_seconds, now or _now(), SESSION)


def _claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _forge(header, claims, sign=None):
    """A token assembled by hand, as an attacker would, without PyJWT's guards."""
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode("ascii")) if sign else b""
    return f"{signing_input}.{_b64url(signature)}"


def _refusal(verifier, token) -> str:
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify(token)
    return refused.value.detail


def test_issued_token_verifies_and_names_the_user(key, verifier):
    assert verifier.verify(_issue(key)) == Principal(
        user_id=CLERK["user_id"],
        username="clerk.kochi",
        roles=("clerk",),
        local_body="KL-EKM-KOC",
        session_id=SESSION,
    )


def test_a_token_without_a_session_cannot_be_revoked_so_it_is_refused(key, verifier):
    claims = tokens.access_token_claims(CLERK, 900, _now())
    assert "sid" not in claims
    token = jwt.encode(claims, key[0], "EdDSA", headers={"kid": key[1]})
    with pytest.raises(Unauthenticated, match="sid"):
        verifier.verify(token)


def test_issued_token_carries_the_agreed_claims_and_header(key):
    private_key, kid = key
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    token = _issue(key, ttl_seconds=600, now=now)

    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": kid, "typ": "JWT"}
    claims = _claims(token)
    assert claims["iss"] == "ksmart-identity"
    assert claims["aud"] == "ksmart"
    assert claims["sub"] == CLERK["user_id"]
    assert claims["preferred_username"] == "clerk.kochi"
    assert claims["roles"] == ["clerk"]
    assert claims["local_body"] == "KL-EKM-KOC"
    assert claims["iat"] == int(now.timestamp())
    assert claims["exp"] - claims["iat"] == 600
    assert claims["jti"] != _claims(_issue(key, now=now))["jti"]


def test_a_citizen_token_has_a_null_local_body(key, verifier):
    citizen = {"user_id": "u-1", "username": "citizen", "roles": ["citizen"], "local_body": None}
    principal = verifier.verify(_issue(key, user=citizen))
    assert principal.local_body is None
    assert principal.has_role("citizen") and not principal.has_role("clerk")
    assert _claims(_issue(key, user=citizen))["local_body"] is None


def test_public_jwk_is_an_okp_ed25519_key_with_a_kid_derived_from_it(key):
    private_key, kid = key
    jwk = ed25519.public_jwk(private_key, kid)
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(raw),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    }
    assert kid == hashlib.sha256(raw).hexdigest()[:16]
    assert "d" not in jwk


def test_issuing_refuses_a_naive_clock_or_a_non_positive_lifetime(key):
    with pytest.raises(ValueError, match="timezone-aware"):
        _issue(key, now=datetime.now())
    with pytest.raises(ValueError, match="positive"):
        _issue(key, ttl_seconds=0)


def test_gateway_and_identity_agree_on_the_contract():
    assert (auth.ISSUER, auth.AUDIENCE, auth.ALGORITHM) == (
        tokens.ISSUER,
        tokens.AUDIENCE,
        tokens.ALGORITHM,
    )


def test_an_expired_token_is_refused(key, verifier):
    token = _issue(key, ttl_seconds=900, now=_now() - timedelta(hours=1))
    assert _refusal(verifier, token) == "the access token has expired"


def test_expiry_tolerates_small_clock_skew_only(key):
    private_key, kid = key
    jwks = {"keys": [ed25519.public_jwk(private_key, kid)]}
    token = _issue(key, ttl_seconds=900, now=_now() - timedelta(seconds=905))
    assert TokenVerifier.from_jwks(jwks).verify(token).username == "clerk.kochi"
    strict = TokenVerifier.from_jwks(jwks, leeway_seconds=0)
    assert _refusal(strict, token) == "the access token has expired"


def test_a_token_issued_in_the_future_is_refused(key, verifier):
    token = _issue(key, now=_now() + timedelta(hours=1))
    assert "not valid yet" in _refusal(verifier, token)


def test_a_tampered_payload_is_refused(key, verifier):
    header, _, signature = _issue(key).split(".")
    promoted = tokens.access_token_claims({**CLERK, "roles": ["secretary"]}, 900, _now(), SESSION)
    tampered = ".".join([header, _b64url(json.dumps(promoted).encode()), signature])
    assert _refusal(verifier, tampered) == "the access token's signature is invalid"


def test_a_token_signed_by_another_key_under_a_trusted_kid_is_refused(key, verifier):
    _, kid = key
    other_private_key, _ = _signing_key()
    token = _issue((other_private_key, kid))
    assert _refusal(verifier, token) == "the access token's signature is invalid"


@pytest.mark.parametrize("algorithm", ["none", "None", "NONE", None])
def test_an_unsigned_token_is_refused(key, verifier, algorithm):
    _, kid = key
    token = _forge(
        {"alg": algorithm, "kid": kid}, tokens.access_token_claims(CLERK, 900, _now(), SESSION)
    )
    assert "not accepted" in _refusal(verifier, token)


def _public_key_as_secrets(private_key, kid):
    public_key = private_key.public_key()
    return {
        "raw bytes": public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        ),
        "PEM": public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "JWK x": ed25519.public_jwk(private_key, kid)["x"].encode(),
        "JWK JSON": json.dumps(ed25519.public_jwk(private_key, kid)).encode(),
    }


@pytest.mark.parametrize("secret_form", ["raw bytes", "PEM", "JWK x", "JWK JSON"])
def test_hs256_signed_with_the_public_key_is_refused(key, verifier, secret_form):
    """The classic forgery: the public key is public, so an HMAC keyed with it
    must never be accepted."""
    private_key, kid = key
    secret = _public_key_as_secrets(private_key, kid)[secret_form]
    token = _forge(
        {"alg": "HS256", "kid": kid, "typ": "JWT"},
        tokens.access_token_claims(CLERK, 900, _now(), SESSION),
        sign=lambda signing_input: hmac.new(secret, signing_input, hashlib.sha256).digest(),
    )
    assert _refusal(verifier, token) == (
        "access tokens signed with 'HS256' are not accepted (only EdDSA)"
    )


def test_a_token_with_an_unknown_or_missing_kid_is_refused(verifier):
    stranger = _signing_key()
    assert _refusal(verifier, _issue(stranger)) == "the access token was signed with an unknown key"
    private_key, _ = stranger
    no_kid = jwt.encode(
        tokens.access_token_claims(CLERK, 900, _now(), SESSION), private_key, "EdDSA"
    )
    assert _refusal(verifier, no_kid) == "the access token was signed with an unknown key"


@pytest.mark.parametrize(
    ("claim", "value", "detail"),
    [
        ("aud", "somewhere-else", "the access token is not meant for 'ksmart'"),
        ("iss", "someone-else", "the access token was not issued by 'ksmart-identity'"),
    ],
)
def test_a_token_for_another_audience_or_from_another_issuer_is_refused(
    key, verifier, claim, value, detail
):
    private_key, kid = key
    claims = {**tokens.access_token_claims(CLERK, 900, _now(), SESSION), claim: value}
    token = jwt.encode(claims, private_key, "EdDSA", headers={"kid": kid})
    assert _refusal(verifier, token) == detail


@pytest.mark.parametrize("claim", auth.REQUIRED_CLAIMS)
def test_a_token_missing_a_required_claim_is_refused(key, verifier, claim):
    private_key, kid = key
    claims = tokens.access_token_claims(CLERK, 900, _now(), SESSION)
    del claims[claim]
    token = jwt.encode(claims, private_key, "EdDSA", headers={"kid": kid})
    assert _refusal(verifier, token) == f"the access token lacks the {claim!r} claim"


@pytest.mark.parametrize(
    ("claim", "value"),
    [("roles", "clerk"), ("roles", [1]), ("local_body", 7), ("preferred_username", ["x"])],
)
def test_a_token_with_malformed_claims_is_refused(key, verifier, claim, value):
    private_key, kid = key
    claims = {**tokens.access_token_claims(CLERK, 900, _now(), SESSION), claim: value}
    token = jwt.encode(claims, private_key, "EdDSA", headers={"kid": kid})
    assert _refusal(verifier, token) == "the access token's claims are malformed"


@pytest.mark.parametrize("garbage", ["", "not-a-token", "a.b.c", "...", "eyJ9.eyJ9.x"])
def test_garbage_is_refused(verifier, garbage):
    assert _refusal(verifier, garbage)


def test_during_a_rotation_both_published_keys_verify():
    old_key, new_key = _signing_key(), _signing_key()
    jwks = {"keys": [ed25519.public_jwk(*new_key), ed25519.public_jwk(*old_key)]}
    verifier = TokenVerifier.from_jwks(jwks)
    assert verifier.kids == {old_key[1], new_key[1]}
    assert verifier.verify(_issue(old_key)).username == "clerk.kochi"
    assert verifier.verify(_issue(new_key)).username == "clerk.kochi"

    after_retirement = TokenVerifier.from_jwks({"keys": [ed25519.public_jwk(*new_key)]})
    assert _refusal(after_retirement, _issue(old_key)) == (
        "the access token was signed with an unknown key"
    )


def test_from_jwks_skips_keys_it_could_never_use():
    usable = _signing_key()
    jwks = {
        "keys": [
            {"kty": "RSA", "kid": "rsa-1", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "kid": "hmac-1", "k": "c2VjcmV0"},
            {**ed25519.public_jwk(*_signing_key()), "use": "enc"},
            {
                name: value
                for name, value in ed25519.public_jwk(*_signing_key()).items()
                if name != "kid"
            },
            ed25519.public_jwk(*usable),
        ]
    }
    assert TokenVerifier.from_jwks(jwks).kids == {usable[1]}


def test_from_jwks_refuses_what_is_not_a_jwks_or_a_broken_ed25519_key():
    with pytest.raises(ValueError, match="'keys' list"):
        TokenVerifier.from_jwks({"kty": "OKP"})
    with pytest.raises(ValueError, match="not a valid Ed25519"):
        TokenVerifier.from_jwks({"keys": [{**ed25519.public_jwk(*_signing_key()), "x": "AAAA"}]})


def test_a_private_part_in_the_jwks_is_never_used_for_signing_or_verifying(key):
    """The verifier builds public keys from "x" alone, whatever else a JWK holds."""
    private_key, kid = key
    jwk = {**ed25519.public_jwk(private_key, kid), "d": "leaked"}
    assert TokenVerifier.from_jwks({"keys": [jwk]}).verify(_issue(key)).user_id == CLERK["user_id"]


_names = st.text(min_size=1, max_size=40).filter(lambda text: text.strip() == text)


@settings(max_examples=50, deadline=None)
@given(
    user_id=st.uuids().map(str),
    username=_names,
    roles=st.lists(_names, max_size=5),
    local_body=st.none() | _names,
)
def test_any_user_survives_the_round_trip(user_id, username, roles, local_body):
    """Unicode names (Malayalam included), no roles, many roles: what the
    identity service signs is exactly what the gateway reads back."""
    key = _signing_key()
    verifier = TokenVerifier.from_jwks({"keys": [ed25519.public_jwk(*key)]})
    user = {"user_id": user_id, "username": username, "roles": roles, "local_body": local_body}
    assert verifier.verify(_issue(key, user=user)) == Principal(
        user_id, username, tuple(roles), local_body, SESSION
    )
