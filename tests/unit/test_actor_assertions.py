"""The actor of a command crosses RPC signed, for one method, for a minute:
signing and verifying (ksmart_common.actor_assertions), and how `call` signs
and the `rpc` entrypoint verifies (ksmart_common.rpc)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import jwt
import pytest

from ksmart_common import ed25519, rpc
from ksmart_common.actor_assertions import (
    ActingAs,
    ActorSigner,
    ActorVerifier,
    public_key_text,
)
from ksmart_common.errors import Unauthenticated

CLERK = {"actor_id": "u-1", "roles": ["clerk"], "local_body": "KL-EKM-KOC", "wards": [3]}
GATEWAY_KEY = ed25519.generate_private_key()
APPLICATIONS_KEY = ed25519.generate_private_key()
VERIFIER = ActorVerifier(
    {"gateway": GATEWAY_KEY.public_key(), "applications": APPLICATIONS_KEY.public_key()}
)


def signed(key=GATEWAY_KEY, issuer="gateway", service="applications", method="take_action", **how):
    return ActorSigner(issuer, key, **how).sign(CLERK, service, method, "r-1")


def verify(assertion, service="applications", method="take_action", issuers=("gateway",)):
    return VERIFIER.verify(assertion, service, method, issuers)


def test_a_signed_actor_is_the_actor_it_names():
    assert verify(signed()) == CLERK


def test_an_unsigned_actor_is_refused():
    with pytest.raises(Unauthenticated, match="signed assertion"):
        verify(CLERK)
    with pytest.raises(Unauthenticated, match="malformed"):
        verify("not.a.token")


def test_an_actor_signed_with_another_key_is_refused():
    forger = ed25519.generate_private_key()
    with pytest.raises(Unauthenticated, match="signature is invalid"):
        verify(signed(key=forger))


def test_an_actor_with_its_claims_changed_after_signing_is_refused():
    header, payload, signature = signed().split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["actor"]["roles"] = ["administrator"]
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    with pytest.raises(Unauthenticated, match="signature is invalid"):
        verify(f"{header}.{forged}.{signature}")


def test_an_expired_actor_is_refused():
    an_hour_ago = signed(clock=lambda: 1_700_000_000.0)
    with pytest.raises(Unauthenticated, match="expired"):
        verify(an_hour_ago)


def test_an_actor_lives_a_minute():
    claims = jwt.decode(signed(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60
    assert claims["rid"] == "r-1" and claims["sub"] == "u-1" and claims["jti"]


def test_an_actor_signed_for_another_service_or_method_is_refused():
    with pytest.raises(Unauthenticated, match="not meant for 'applications'"):
        verify(signed(service="notifications"))
    with pytest.raises(Unauthenticated, match="'get_file', not 'take_action'"):
        verify(signed(method="get_file"))


def test_a_method_takes_actors_only_from_the_signers_it_names():
    forwarded = signed(key=APPLICATIONS_KEY, issuer="applications")
    with pytest.raises(Unauthenticated, match="does not take actors from 'applications'"):
        verify(forwarded)
    assert verify(forwarded, issuers=("gateway", "applications")) == CLERK


def test_a_signer_whose_key_is_not_pinned_is_refused():
    stranger = ed25519.generate_private_key()
    with pytest.raises(Unauthenticated, match="no key is configured"):
        verify(signed(key=stranger, issuer="workflow"), issuers=("workflow",))


def test_only_eddsa_assertions_are_taken():
    hmac = jwt.encode({"iss": "gateway", "actor": CLERK}, "s" * 32, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="not an EdDSA actor assertion"):
        verify(hmac)


def test_pinned_keys_load_from_the_configuration_text():
    text = json.dumps({"gateway": public_key_text(GATEWAY_KEY)})
    verifier = ActorVerifier.from_config(text)
    assert verifier.verify(signed(), "applications", "take_action", ("gateway",)) == CLERK
    nothing_pinned = ActorVerifier.from_config("")
    with pytest.raises(Unauthenticated, match="no key is configured"):
        nothing_pinned.verify(signed(), "applications", "take_action", ("gateway",))


# -- call signs, the entrypoint verifies ----------------------------------


class MethodProxy:
    """As nameko's: names the service and method, and the calling worker."""

    def __init__(self, caller: str, service: str, method: str) -> None:
        self.service_name, self.method_name = service, method
        self.worker_ctx = SimpleNamespace(
            container=SimpleNamespace(service_name=caller), context_data={"request_id": "r-9"}
        )

    def __call__(self, *args, **kwargs):
        return args, kwargs


def test_call_signs_an_acting_as_for_the_method_it_calls(monkeypatch):
    monkeypatch.setattr(rpc, "process_signer", lambda issuer: ActorSigner(issuer, GATEWAY_KEY))
    args, kwargs = rpc.call(
        MethodProxy("gateway", "applications", "take_action"), "f-1", ActingAs(CLERK), note="x"
    )
    assert args[0] == "f-1" and kwargs == {"note": "x"}
    assert verify(args[1]) == CLERK
    assert jwt.decode(args[1], options={"verify_signature": False})["rid"] == "r-9"


def test_a_process_without_a_key_cannot_send_an_actor(monkeypatch):
    monkeypatch.setattr(rpc, "process_signer", lambda issuer: None)
    with pytest.raises(RuntimeError, match="no key to sign actors"):
        rpc.call(MethodProxy("notifications", "applications", "get_file"), ActingAs(CLERK))


class Service:
    def take_action(self, file_id, action, actor, request=None): ...

    def escalate(self, file_id, seen_version): ...


def entrypoint(method: str, **options) -> rpc.Rpc:
    provider = rpc.Rpc(**options)
    provider.container = SimpleNamespace(service_name="applications", service_cls=Service)
    provider.method_name = method
    return provider


def test_the_entrypoint_hands_the_method_the_verified_actor(monkeypatch):
    monkeypatch.setattr(rpc, "process_verifier", lambda: VERIFIER)
    args, kwargs = entrypoint("take_action").with_verified_actor(
        ["f-1", "verify"], {"actor": signed(), "request": {"lang": "en"}}
    )
    assert args == ["f-1", "verify", CLERK, {"lang": "en"}] and kwargs == {}


def test_the_entrypoint_refuses_a_plain_or_forged_actor(monkeypatch):
    monkeypatch.setattr(rpc, "process_verifier", lambda: VERIFIER)
    with pytest.raises(Unauthenticated):
        entrypoint("take_action").with_verified_actor(["f-1", "verify", CLERK], {})
    forwarded = signed(key=APPLICATIONS_KEY, issuer="applications")
    with pytest.raises(Unauthenticated):
        entrypoint("take_action").with_verified_actor(["f-1", "verify", forwarded], {})
    taken = entrypoint("take_action", actor_signers=("gateway", "applications"))
    assert taken.with_verified_actor(["f-1", "verify", forwarded], {})[0][2] == CLERK


def test_a_method_without_an_actor_is_left_alone(monkeypatch):
    monkeypatch.setattr(rpc, "process_verifier", lambda: VERIFIER)
    assert entrypoint("escalate").with_verified_actor(["f-1", 3], {}) == (["f-1", 3], {})
