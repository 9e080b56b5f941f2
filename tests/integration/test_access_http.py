"""Signing in and out over HTTP, on the real services: one-time codes for
citizens at home and abroad (code request, wrong code, expiry, reuse, rate
limits), passwords with lockout for officials, refresh, logout, key
rotation, and administrators managing officials."""

import itertools
import time
import uuid

import jwt
import pika
import pytest
import requests
import sqlalchemy as sa

from ksmart_common.key_anchor import TOKEN
from ksmart_common.messaging import OTP_QUEUE, declare_otp_queue
from ksmart_identity.keys import rotate_signing_key
from ksmart_ops.key_root import development_root, endorse_keys
from tests.support.events import EventTap
from tests.support.platform import running_platform
from tests.support.waiting import wait_for

OTP_TTL_SECONDS = 4
PER_CLIENT = 5
ADDRESSES = (f"203.0.113.{n}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    environ = {
        "KSMART_OTP_TTL_SECONDS": str(OTP_TTL_SECONDS),
        "KSMART_OTP_PER_CLIENT": str(PER_CLIENT),
        # Tests stand behind the "load balancer" 127.0.0.1, so each can speak
        # from an address of its own (X-Forwarded-For) and rate limits per
        # address do not leak from one test into another.
        "KSMART_TRUSTED_PROXY": "127.0.0.1",
        "KSMART_REVOCATION_POLL_SECONDS": "0.5",
        "KSMART_JWKS_REFRESH_SECONDS": "1",
    }
    with running_platform(tmp_path_factory.mktemp("access"), environ=environ) as running:
        yield running


@pytest.fixture
def codes(platform):
    with EventTap(platform.amqp_uri, "identity", "OtpRequested") as tap:
        yield tap


def _url(platform, path):
    return f"{platform.base_url}/api/v1{path}"


def _post(platform, path, body=None, headers=None, address=None):
    headers = {**(headers or {}), "X-Forwarded-For": address or next(ADDRESSES)}
    return requests.post(_url(platform, path), json=body, headers=headers, timeout=10)


def _ask_code(platform, address=None, **destination):
    return _post(platform, "/auth/otp", destination, address=address)


def _code_for(codes, challenge_id):
    return codes.next(lambda event: event["challenge_id"] == challenge_id)["code"]


def _sign_in(platform, codes, **destination):
    asked = _ask_code(platform, **destination)
    assert asked.status_code == 202, asked.text
    challenge = asked.json()["challenge_id"]
    reply = _post(
        platform,
        "/auth/otp/verify",
        {"challenge_id": challenge, "code": _code_for(codes, challenge)},
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _inbox(platform, token):
    return requests.get(_url(platform, "/inbox"), headers=_bearer(token), timeout=10)


def _phone():
    return f"+9715{uuid.uuid4().int % 10**8:08d}"


# -- one-time codes ------------------------------------------------------------


@pytest.mark.parametrize(
    "destination",
    [
        {"phone": "+971 50 123 4567"},  # Dubai, typed with spaces
        {"phone": "+1 416 555 0199"},  # Toronto
        {"phone": "+91 98470 12345"},  # Kochi
        {"email": "Asha.Menon@Example.org"},
    ],
    ids=["dubai", "toronto", "kochi", "email"],
)
def test_a_citizen_anywhere_signs_in_with_a_code_and_is_registered_the_first_time(
    platform, codes, destination
):
    with EventTap(platform.amqp_uri, "identity", "UserRegistered") as registrations:
        # Unique per run: a fresh platform has nobody, but the test may repeat.
        first = _sign_in(platform, codes, **destination)
        assert set(first) >= {"access_token", "refresh_token", "expires_in"}
        assert _inbox(platform, first["access_token"]).status_code == 200
        registered = registrations.next(timeout=10)
        assert registered["kind"] == "citizen"

    again = _sign_in(platform, codes, **destination)
    me = requests.get(_url(platform, "/inbox"), headers=_bearer(again["access_token"]), timeout=10)
    assert me.status_code == 200
    # The same person: the token's subject is the registered user.
    subject = jwt.decode(again["access_token"], options={"verify_signature": False})["sub"]
    assert subject == registered["user_id"]


def test_the_code_request_answers_where_it_went_without_giving_the_code(platform, codes):
    reply = _ask_code(platform, phone="+971509876543")
    assert reply.status_code == 202
    body = reply.json()
    assert body["sent_to"] == "+97150*****43" and body["channel"] == "sms"
    assert "code" not in body
    event = codes.next(lambda e: e["challenge_id"] == body["challenge_id"])
    assert len(event["code"]) == 6 and event["code"].isdigit()


def test_bad_destinations_are_named(platform):
    reply = _ask_code(platform, phone="9847012345")
    assert reply.status_code == 422
    assert reply.json()["problems"][0]["field"] == "phone"
    both = _ask_code(platform, phone="+971501234567", email="a@example.org")
    assert both.status_code == 422


def test_a_wrong_code_counts_and_five_void_the_challenge(platform, codes):
    challenge = _ask_code(platform, phone=_phone()).json()["challenge_id"]
    code = _code_for(codes, challenge)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    details = []
    for _ in range(5):
        reply = _post(platform, "/auth/otp/verify", {"challenge_id": challenge, "code": wrong})
        assert reply.status_code == 401
        details.append(reply.json()["detail"])
    assert details[0] == "the code is wrong; 4 tries left"
    assert "too many wrong tries" in details[-1]
    right = _post(platform, "/auth/otp/verify", {"challenge_id": challenge, "code": code})
    assert right.status_code == 401 and "too many wrong tries" in right.json()["detail"]


def test_a_code_is_used_once(platform, codes):
    challenge = _ask_code(platform, phone=_phone()).json()["challenge_id"]
    body = {"challenge_id": challenge, "code": _code_for(codes, challenge)}
    assert _post(platform, "/auth/otp/verify", body).status_code == 200
    again = _post(platform, "/auth/otp/verify", body)
    assert again.status_code == 401 and "used already" in again.json()["detail"]


def test_a_code_expires(platform, codes):
    asked = _ask_code(platform, phone=_phone()).json()
    body = {"challenge_id": asked["challenge_id"], "code": _code_for(codes, asked["challenge_id"])}
    expires = time.monotonic() + asked["expires_in"] + 1
    wait_for(lambda: time.monotonic() > expires, timeout=OTP_TTL_SECONDS + 5, message="expiry")
    late = _post(platform, "/auth/otp/verify", body)
    assert late.status_code == 401 and "expired" in late.json()["detail"]


def test_codes_are_rate_limited_per_destination(platform):
    phone = _phone()
    replies = [_ask_code(platform, phone=phone) for _ in range(4)]
    assert [reply.status_code for reply in replies] == [202, 202, 202, 429]
    assert int(replies[-1].headers["Retry-After"]) > 0
    assert replies[-1].headers["Content-Type"] == "application/problem+json"


def test_codes_are_rate_limited_per_client_address(platform):
    address = next(ADDRESSES)
    statuses = [
        _ask_code(platform, address=address, phone=_phone()).status_code
        for _ in range(PER_CLIENT + 1)
    ]
    assert statuses == [202] * PER_CLIENT + [429]
    # Another address is not held back by this one.
    assert _ask_code(platform, phone=_phone()).status_code == 202


# -- passwords, lockout --------------------------------------------------------


def _password_sign_in(platform, username, password):
    return _post(platform, "/auth/token", {"username": username, "password": password})


def test_repeated_wrong_passwords_lock_an_official_out_for_a_while(platform):
    for _ in range(5):
        assert _password_sign_in(platform, "overseer.kochi", "wrong password").status_code == 401
    locked = _password_sign_in(platform, "overseer.kochi", platform.password)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 60
    # Someone else's account is not affected.
    assert _password_sign_in(platform, "clerk.kochi", platform.password).status_code == 200


def test_a_citizen_has_no_password_to_guess(platform, codes):
    phone = _phone()
    _sign_in(platform, codes, phone=phone)
    assert _password_sign_in(platform, phone, "anything at all").status_code == 401


# -- sessions: refresh, logout, revocation -------------------------------------


def test_refresh_rotates_the_token_and_a_reused_one_ends_the_session(platform):
    first = _password_sign_in(platform, "clerk.kochi", platform.password).json()
    second = _post(platform, "/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    tokens = second.json()
    assert tokens["refresh_token"] != first["refresh_token"]
    assert _inbox(platform, tokens["access_token"]).status_code == 200

    reused = _post(platform, "/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    # The whole session ended: the newest tokens too.
    wait_for(
        lambda: _inbox(platform, tokens["access_token"]).status_code == 401,
        timeout=10,
        message="revoked access token refused",
    )
    latest = _post(platform, "/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert latest.status_code == 401


def test_me_says_who_the_token_speaks_for(platform):
    tokens = _password_sign_in(platform, "clerk.kochi", platform.password).json()
    me = requests.get(_url(platform, "/me"), headers=_bearer(tokens["access_token"]), timeout=10)
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "clerk.kochi"
    assert me.json()["roles"] == ["clerk"]
    assert me.json()["local_body"] == "KL-EKM-KOC"
    assert requests.get(_url(platform, "/me"), timeout=10).status_code == 401


def test_logout_ends_the_session_and_its_tokens(platform, codes):
    tokens = _sign_in(platform, codes, phone=_phone())
    access = tokens["access_token"]
    assert _inbox(platform, access).status_code == 200
    out = _post(platform, "/auth/logout", headers=_bearer(access))
    assert out.status_code == 200 and out.json() == {"ended": True}
    wait_for(
        lambda: _inbox(platform, access).status_code == 401,
        timeout=10,
        message="logged-out token refused",
    )
    assert (
        _post(platform, "/auth/refresh", {"refresh_token": tokens["refresh_token"]}).status_code
        == 401
    )


def test_a_rotated_signing_key_signs_new_tokens_while_old_ones_keep_working(platform):
    old = _password_sign_in(platform, "clerk.kochi", platform.password).json()["access_token"]
    engine = sa.create_engine(platform.databases["identity"].service_url)
    try:
        new_key = rotate_signing_key(engine)
        # The operator endorses it with the deployment's root; then it signs.
        endorse_keys(development_root(platform.run_dir), TOKEN, engine, [new_key.kid])
    finally:
        engine.dispose()
    new = _password_sign_in(platform, "clerk.kochi", platform.password).json()["access_token"]

    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    wait_for(
        lambda: _inbox(platform, new).status_code == 200, timeout=10, message="new key trusted"
    )
    assert _inbox(platform, old).status_code == 200


# -- administrators manage officials ------------------------------------------


def _admin(platform):
    return _bearer(platform.token("admin"))


def test_an_administrator_creates_an_official_who_then_works_in_their_body(platform):
    username = f"clerk.{uuid.uuid4().hex[:8]}"
    created = _post(
        platform,
        "/admin/staff",
        {
            "username": username,
            "display_name": "Clerk, Kochi",
            "kind": "official",
            "roles": ["clerk", "section_officer"],
            "local_body": "KL-EKM-KOC",
            "password": "a long first password",
        },
        headers=_admin(platform),
    )
    assert created.status_code == 201, created.text
    official = created.json()
    assert official["local_body"] == "KL-EKM-KOC"
    signed_in = _password_sign_in(platform, username, "a long first password")
    assert signed_in.status_code == 200
    access = signed_in.json()["access_token"]
    assert _inbox(platform, access).status_code == 200

    listed = requests.get(
        _url(platform, "/admin/staff"),
        params={"local_body": "KL-EKM-KOC"},
        headers=_admin(platform),
        timeout=10,
    ).json()["staff"]
    assert username in {member["username"] for member in listed}

    # Moved to another body: the tokens issued for Kochi stop working.
    moved = requests.patch(
        _url(platform, f"/admin/staff/{official['user_id']}"),
        json={"local_body": "KL-TVM-TVC"},
        headers=_admin(platform),
        timeout=10,
    )
    assert moved.status_code == 200, moved.text
    wait_for(lambda: _inbox(platform, access).status_code == 401, timeout=10, message="revoked")


def test_staff_are_created_only_in_bodies_and_roles_that_exist_and_only_by_administrators(
    platform,
):
    bad = _post(
        platform,
        "/admin/staff",
        {
            "username": "clerk.nowhere",
            "display_name": "Nobody",
            "kind": "official",
            "roles": ["clerk", "king"],
            "local_body": "KL-ZZZ-NOPE",
            "wards": [99999],
            "password": "a long first password",
        },
        headers=_admin(platform),
    )
    assert bad.status_code == 422
    assert {p["field"] for p in bad.json()["problems"]} >= {"roles", "local_body"}
    as_secretary = _post(
        platform,
        "/admin/staff",
        {
            "username": "clerk.sneaky",
            "display_name": "Sneaky",
            "kind": "official",
            "roles": ["clerk"],
            "local_body": "KL-EKM-KOC",
            "password": "a long first password",
        },
        headers=_bearer(platform.token("secretary.kochi")),
    )
    assert as_secretary.status_code == 403


def test_the_directory_lists_districts_and_local_bodies(platform):
    districts = requests.get(_url(platform, "/districts"), timeout=10).json()["districts"]
    assert len(districts) == 14
    corporations = requests.get(
        _url(platform, "/local-bodies"), params={"type": "corporation"}, timeout=10
    ).json()["local_bodies"]
    assert len(corporations) == 6
    kochi = requests.get(_url(platform, "/local-bodies/KL-EKM-KOC"), timeout=10).json()
    assert kochi["type"] == "corporation" and kochi["name"]["ml"]
    assert requests.get(_url(platform, "/local-bodies/KL-ZZZ-NOPE"), timeout=10).status_code == 404


def test_a_code_that_could_not_reach_the_notifications_queue_is_a_503_not_a_silent_loss(
    platform,
):
    connection = pika.BlockingConnection(pika.URLParameters(platform.amqp_uri))
    try:
        connection.channel().queue_delete(OTP_QUEUE)
        refused = _ask_code(platform, phone=_phone())
        assert refused.status_code == 503 and "Retry-After" in refused.headers
    finally:
        connection.close()
        declare_otp_queue(platform.amqp_uri, 900)
    assert _ask_code(platform, phone=_phone()).status_code == 202


def test_text_with_nul_characters_is_a_clear_refusal(platform):
    assert _ask_code(platform, email="a\u0000b@example.org").status_code == 400
    assert requests.get(_url(platform, "/local-bodies/KL-%00"), timeout=10).status_code == 404
