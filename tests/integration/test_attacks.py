"""What an attacker tries, against the real platform: forged, tampered,
expired and revoked tokens; guessing one-time codes; bursts of parallel
requests against the rate limits and the password lockout; and the
database roles the services run as, asked to rewrite history."""

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests
import sqlalchemy as sa

from ksmart_common import ed25519
from tests.support import citizen
from tests.support.events import EventTap
from tests.support.platform import running_platform
from tests.support.waiting import wait_for

PROBLEM = "application/problem+json"
PER_DESTINATION = 3
ADDRESSES = (f"198.51.100.{n}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    environ = {
        # Each request may speak from its own address (X-Forwarded-For from
        # the trusted 127.0.0.1), so only the limit under test applies.
        "KSMART_TRUSTED_PROXY": "127.0.0.1",
        "KSMART_OTP_PER_DESTINATION": str(PER_DESTINATION),
        "KSMART_REVOCATION_POLL_SECONDS": "0.5",
        "KSMART_JWKS_REFRESH_SECONDS": "1",
    }
    with running_platform(tmp_path_factory.mktemp("attacks"), environ=environ) as running:
        yield running


@pytest.fixture(scope="module")
def filed(platform):
    """One file in the event store, so there are events to attack."""
    reply = citizen.submit(platform, citizen.application(platform))
    assert reply.status_code == 201, reply.text
    return reply.json()


def _url(platform, path):
    return f"{platform.base_url}/api/v1{path}"


def _post(platform, path, body=None, headers=None, address=None):
    headers = {**(headers or {}), "X-Forwarded-For": address or next(ADDRESSES)}
    return requests.post(_url(platform, path), json=body, headers=headers, timeout=30)


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _inbox(platform, token):
    return requests.get(_url(platform, "/inbox"), headers=_bearer(token), timeout=10)


def _sign_in(platform, username, password):
    return _post(platform, "/auth/token", {"username": username, "password": password})


def _fresh_token(platform, username="clerk.kochi"):
    """A token of a session of its own (platform.token's may be shared)."""
    reply = _sign_in(platform, username, platform.password)
    assert reply.status_code == 200, reply.text
    return reply.json()["access_token"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parts(token):
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), signature


def _join(header: dict, payload: dict, signature: str) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}.{signature}"


def _hs256(header: dict, payload: dict, secret: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _refused(platform, token, detail_fragment, path="/inbox"):
    reply = requests.get(_url(platform, path), headers=_bearer(token), timeout=10)
    assert reply.status_code == 401, reply.text
    assert reply.headers["Content-Type"] == PROBLEM
    assert detail_fragment in reply.json()["detail"], reply.json()
    return reply


def _published_key(platform):
    """The identity service's signing key as the database holds it: its
    public JWK is what the gateway trusts; the private half lets this test
    stand in for the identity service and mint tokens with chosen claims."""
    with platform.engine("identity").connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT kid, private_key_pem, public_jwk FROM signing_keys"
                " WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1"
            )
        ).one()
    return row.kid, ed25519.private_key_from_pem(row.private_key_pem), row.public_jwk


# -- tokens --------------------------------------------------------------------


def test_a_token_with_alg_none_is_refused(platform):
    header, payload, _ = _parts(_fresh_token(platform))
    for alg in ("none", "None", "NONE"):
        _refused(platform, _join({**header, "alg": alg}, payload, ""), "not accepted")


def test_a_token_signed_hs256_with_the_public_key_is_refused(platform):
    token = _fresh_token(platform)
    header, payload, _ = _parts(token)
    kid, _, jwk = _published_key(platform)
    assert header["kid"] == kid
    public_key = ed25519.public_key_from_jwk(jwk)
    pem = public_key.public_bytes(
        ed25519.serialization.Encoding.PEM, ed25519.serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Every form the public key is published or commonly held in.
    for secret in (_unb64(jwk["x"]), jwk["x"].encode(), pem, json.dumps(jwk).encode()):
        forged = _hs256({**header, "alg": "HS256"}, payload, secret)
        _refused(platform, forged, "not accepted")


def test_a_token_whose_claims_were_changed_is_refused(platform):
    token = _fresh_token(platform)
    assert _inbox(platform, token).status_code == 200
    header, payload, signature = _parts(token)
    promoted = _join(header, {**payload, "roles": ["administrator"]}, signature)
    # 401, not 403: the token is not believed at all.
    _refused(platform, promoted, "signature is invalid", path="/admin/staff")
    prolonged = _join(header, {**payload, "exp": payload["exp"] + 86400}, signature)
    _refused(platform, prolonged, "signature is invalid")
    elsewhere = _join(header, {**payload, "local_body": "KL-TVM-TVC"}, signature)
    _refused(platform, elsewhere, "signature is invalid")


def test_an_expired_token_is_refused_and_the_same_token_in_date_is_not(platform):
    kid, private_key, _ = _published_key(platform)
    _, claims, _ = _parts(_fresh_token(platform))
    now = int(time.time())

    def minted(issued_at, expires_at):
        payload = {**claims, "iat": issued_at, "exp": expires_at, "jti": uuid.uuid4().hex}
        return jwt.encode(payload, private_key, algorithm="EdDSA", headers={"kid": kid})

    # The control: the same claims, signed the same way, but in date, pass.
    assert _inbox(platform, minted(now, now + 300)).status_code == 200
    # Beyond the gateway's 30 s of tolerated clock difference.
    _refused(platform, minted(now - 1000, now - 120), "expired")
    _refused(platform, minted(now + 600, now + 900), "not valid yet")


def test_a_token_accepted_while_in_date_is_refused_once_it_expires(platform):
    """The gateway remembers tokens it has verified: that memory must not
    outlive the token (exp, plus the 30 s of tolerated clock difference)."""
    kid, private_key, _ = _published_key(platform)
    _, claims, _ = _parts(_fresh_token(platform))
    now = int(time.time())
    payload = {**claims, "iat": now, "exp": now + 2, "jti": uuid.uuid4().hex}
    token = jwt.encode(payload, private_key, algorithm="EdDSA", headers={"kid": kid})
    assert _inbox(platform, token).status_code == 200
    wait_for(
        lambda: _inbox(platform, token).status_code == 401,
        timeout=2 + 30 + 15,
        interval=0.5,
        message="the expired token refused",
    )
    assert time.time() >= payload["exp"] + 30 - 1  # not refused before its time
    _refused(platform, token, "expired")


def test_a_token_of_an_unknown_key_is_refused(platform):
    _, claims, _ = _parts(_fresh_token(platform))
    stranger = ed25519.generate_private_key()
    own_kid = ed25519.key_id(stranger.public_key())
    unknown = jwt.encode(claims, stranger, algorithm="EdDSA", headers={"kid": own_kid})
    _refused(platform, unknown, "unknown key")
    # A known kid does not lend its trust to another key's signature.
    kid, _, _ = _published_key(platform)
    borrowed = jwt.encode(claims, stranger, algorithm="EdDSA", headers={"kid": kid})
    _refused(platform, borrowed, "signature is invalid")
    no_kid = jwt.encode(claims, stranger, algorithm="EdDSA")
    _refused(platform, no_kid, "unknown key")


def test_a_logged_out_token_is_refused_within_the_revocation_poll(platform):
    token = _fresh_token(platform)
    assert _inbox(platform, token).status_code == 200
    out = _post(platform, "/auth/logout", headers=_bearer(token))
    assert out.status_code == 200 and out.json() == {"ended": True}
    wait_for(
        lambda: _inbox(platform, token).status_code == 401,
        timeout=10,
        message="the logged-out token refused",
    )
    _refused(platform, token, "session has ended")
    # Another session of the same official is not affected.
    assert _inbox(platform, _fresh_token(platform)).status_code == 200


# -- one-time codes --------------------------------------------------------------


def _phone():
    return f"+9715{uuid.uuid4().int % 10**8:08d}"


def test_five_wrong_codes_void_the_challenge_even_for_the_right_code(platform):
    phone = _phone()
    with EventTap(platform.amqp_uri, "identity", "OtpRequested") as codes:
        asked = _post(platform, "/auth/otp", {"phone": phone})
        assert asked.status_code == 202, asked.text
        challenge = asked.json()["challenge_id"]
        code = codes.next(lambda event: event["challenge_id"] == challenge)["code"]
    guesses = [f"{(int(code) + offset) % 10**6:06d}" for offset in range(1, 6)]
    for guess in guesses:
        reply = _post(platform, "/auth/otp/verify", {"challenge_id": challenge, "code": guess})
        assert reply.status_code == 401, reply.text
    right = _post(platform, "/auth/otp/verify", {"challenge_id": challenge, "code": code})
    assert right.status_code == 401
    assert "too many wrong tries" in right.json()["detail"]


def _in_parallel(count, work):
    """Run work(index) on `count` threads released at the same moment."""
    start = threading.Barrier(count)

    def run(index):
        start.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_a_burst_of_code_requests_for_one_phone_gets_exactly_the_limit(platform):
    phone = _phone()
    replies = _in_parallel(30, lambda _: _post(platform, "/auth/otp", {"phone": phone}))
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [202] * PER_DESTINATION + [429] * (30 - PER_DESTINATION)
    for reply in replies:
        if reply.status_code == 429:
            assert int(reply.headers["Retry-After"]) > 0
            assert reply.headers["Content-Type"] == PROBLEM
    # The limit still holds after the burst, and other phones are not held back.
    assert _post(platform, "/auth/otp", {"phone": phone}).status_code == 429
    assert _post(platform, "/auth/otp", {"phone": _phone()}).status_code == 202


def test_a_burst_of_wrong_passwords_locks_the_official_out(platform):
    username = "assistant_engineer.kochi"
    replies = _in_parallel(
        10, lambda _: _sign_in(platform, username, f"wrong guess {uuid.uuid4()}")
    )
    statuses = sorted(reply.status_code for reply in replies)
    # The fifth wrong password locks the account; the rest are not even checked.
    assert statuses == [401] * 5 + [429] * 5
    locked = _sign_in(platform, username, platform.password)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 60
    assert "access_token" not in locked.json()
    assert _sign_in(platform, "clerk.kochi", platform.password).status_code == 200


# -- database roles --------------------------------------------------------------

REWRITES = (
    "UPDATE events SET event_type = 'Forged'",
    "DELETE FROM events",
    "TRUNCATE events",
)


def _event_count(platform):
    with platform.engine("applications").connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()


def _refused_statements(url, statements):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            for statement in statements:
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                    conn.execute(sa.text(statement))
                conn.rollback()
    finally:
        engine.dispose()


@pytest.mark.parametrize("role", ["applications", "relay"])
def test_no_service_role_can_rewrite_the_event_store(platform, filed, role):
    before = _event_count(platform)
    assert before >= 1
    statements = REWRITES
    if role == "relay":  # it only reads events: it cannot add one either
        statements = (
            *REWRITES,
            "INSERT INTO events (stream_id) VALUES ('file-forged')",
        )
    _refused_statements(platform.databases["applications"].url_as(role), statements)
    assert _event_count(platform) == before


def test_the_workflow_role_cannot_read_the_applications_events(platform, filed):
    url = platform.databases["applications"].url_as("workflow")
    _refused_statements(url, ("SELECT * FROM events", "SELECT count(*) FROM uploads"))
