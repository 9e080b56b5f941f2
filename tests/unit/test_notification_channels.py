"""The SMS and email channels against real servers on loopback: the fake SMS
provider (HTTP) and aiosmtpd (SMTP, with STARTTLS and AUTH).

Every message carries a one-time code; an autouse fixture checks that the
code never reaches a log line, and the failure tests check every reason.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import json
import logging
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import structlog
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ksmart_common.canonical import canonical_json
from ksmart_common.errors import InvalidInput, Unauthenticated
from ksmart_common.signatures import SMS_RECEIPT_SIGNATURE_HEADER
from ksmart_notifications.channels import external_channels_from_environment, sms
from ksmart_notifications.channels.base import DeliveryFailed, OutgoingMessage
from ksmart_notifications.channels.email import SmtpSender, SmtpSettings
from ksmart_notifications.channels.fake_sms import FakeSmsServer
from ksmart_notifications.channels.sms import (
    HttpSmsProvider,
    Receipt,
    SmsSettings,
    parse_receipt,
    sign_receipt,
)
from ksmart_notifications.dev_inbox import SmtpController, serve
from tests.support.waiting import wait_for

CODE = "493817"
ENGLISH_TEXT = f"Your code is {CODE}. It expires in 10 minutes."
MALAYALAM_SUBJECT = "കെ-സ്മാർട്ട്: നിങ്ങളുടെ ഒറ്റത്തവണ കോഡ്"
MALAYALAM_TEXT = f"നിങ്ങളുടെ കോഡ് {CODE} ആണ്. ഇത് 10 മിനിറ്റിനുള്ളിൽ കാലഹരണപ്പെടും."
PHONE = "+971501234567"
ADDRESS = "citizen@example.org"
MAIL_FROM = "K-Smart <no-reply@ksmart.example>"
SECRET = b"r" * 32
SMTP_USER = "ksmart"
SMTP_PASSWORD = "correct horse battery staple"


def sms_message(text: str = ENGLISH_TEXT, destination: str = PHONE) -> OutgoingMessage:
    return OutgoingMessage(str(uuid.uuid4()), destination, None, text, "en")


def email_message(
    subject: str = MALAYALAM_SUBJECT, text: str = MALAYALAM_TEXT, destination: str = ADDRESS
) -> OutgoingMessage:
    return OutgoingMessage(str(uuid.uuid4()), destination, subject, text, "ml")


def assert_keeps_the_secret(failure: DeliveryFailed) -> None:
    assert CODE not in failure.reason
    assert CODE not in str(failure)
    assert CODE not in repr(failure)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def logs(caplog) -> Iterator[list]:
    """Everything our code and its HTTP client log, checked for the code."""
    caplog.set_level(logging.DEBUG, logger="ksmart_notifications")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    with structlog.testing.capture_logs() as structured:
        yield structured
    logged = [repr(entry) for entry in structured]
    records = caplog.get_records("setup") + caplog.get_records("call")
    logged += [record.getMessage() + repr(record.__dict__) for record in records]
    assert not [line for line in logged if CODE in line], "the one-time code was logged"


@pytest.fixture
def clean_environment(monkeypatch):
    for name in (
        "KSMART_SMS_URL",
        "KSMART_SMS_API_KEY",
        "KSMART_SMS_SENDER_ID",
        "KSMART_SMS_TIMEOUT_SECONDS",
        "KSMART_SMS_ATTEMPTS",
        "KSMART_SMS_RECEIPT_SECRET",
        "KSMART_SMTP_HOST",
        "KSMART_SMTP_PORT",
        "KSMART_SMTP_SECURITY",
        "KSMART_SMTP_USERNAME",
        "KSMART_SMTP_PASSWORD",
        "KSMART_SMTP_CA_FILE",
        "KSMART_SMTP_TIMEOUT_SECONDS",
        "KSMART_MAIL_FROM",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


class running:  # noqa: N801 - reads as a context manager
    """Serve an http.server on a daemon thread; yield its base URL."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- SMS ------------------------------------------------------------------


@pytest.fixture
def fake_sms() -> Iterator[FakeSmsServer]:
    with FakeSmsServer() as server:
        yield server


def provider_for(url: str, **overrides) -> HttpSmsProvider:
    options = {"timeout_seconds": 2, "attempts": 3, "backoff_seconds": 0.01}
    options.update(overrides)
    api_key = options.pop("api_key", None)
    return HttpSmsProvider(url, api_key, "KSMART", **options)


def test_a_message_reaches_the_fake_once_with_every_field(fake_sms):
    message = sms_message()
    result = provider_for(fake_sms.send_url).send(message)
    stored = fake_sms.messages()
    assert len(stored) == 1
    assert result.provider_message_id == stored[0]["id"]
    assert stored[0]["id"].startswith("fake-")
    assert stored[0]["to"] == PHONE
    assert stored[0]["text"] == ENGLISH_TEXT
    assert stored[0]["sender"] == "KSMART"
    assert stored[0]["reference"] == message.message_id
    assert stored[0]["unicode"] is False
    assert stored[0]["received_at"].endswith("Z")
    assert fake_sms.messages(to="+919999999999") == []


def test_messages_reuse_one_connection_to_the_provider(fake_sms):
    provider = provider_for(fake_sms.send_url)
    for _ in range(3):
        provider.send(sms_message())
    assert len(fake_sms.messages()) == 3
    assert fake_sms.connections_accepted == 1


def test_malayalam_is_flagged_unicode(fake_sms):
    provider_for(fake_sms.send_url).send(sms_message(MALAYALAM_TEXT))
    assert fake_sms.messages()[0]["unicode"] is True
    assert fake_sms.messages()[0]["text"] == MALAYALAM_TEXT


@pytest.mark.parametrize(
    ("text", "unicode"),
    [
        ("Code 1: [ok] €5 {x} ~y | ^z", False),
        ("Grüße, Ñoño à Øre", False),
        ("Ñandú", True),
        ("a `tick`", True),
    ],
)
def test_gsm7_decides_the_unicode_flag(text, unicode):
    assert sms.needs_unicode(text) is unicode


def test_transient_failures_are_retried_until_one_succeeds(fake_sms):
    fake_sms.fail_next(2)
    result = provider_for(fake_sms.send_url, attempts=3).send(sms_message())
    assert fake_sms.failures_answered == 2
    assert fake_sms.requests_received == 3
    assert [stored["id"] for stored in fake_sms.messages()] == [result.provider_message_id]


@pytest.mark.parametrize("status", [503, 500, 429])
def test_a_provider_that_keeps_failing_is_a_transient_failure(fake_sms, status, logs):
    fake_sms.fail_always(status)
    message = sms_message()
    with pytest.raises(DeliveryFailed) as raised:
        provider_for(fake_sms.send_url, attempts=3).send(message)
    assert raised.value.permanent is False
    retries = [entry for entry in logs if entry["event"] == "sms attempt failed"]
    assert [entry["attempt"] for entry in retries] == [1, 2, 3]
    assert retries[0]["message_id"] == message.message_id
    assert raised.value.reason == f"provider answered {status} (3 attempts)"
    assert_keeps_the_secret(raised.value)
    assert fake_sms.requests_received == 3
    assert fake_sms.messages() == []


def test_back_off_doubles_between_attempts(fake_sms, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(sms, "time", SimpleNamespace(sleep=sleeps.append))
    fake_sms.fail_always()
    with pytest.raises(DeliveryFailed):
        provider_for(fake_sms.send_url, attempts=4, backoff_seconds=0.5).send(sms_message())
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_refused_request_is_permanent_at_once(fake_sms):
    with pytest.raises(DeliveryFailed) as raised:
        provider_for(fake_sms.send_url).send(sms_message(destination="0501234567"))
    assert raised.value.permanent is True
    assert raised.value.reason == "provider answered 400"
    assert_keeps_the_secret(raised.value)
    assert fake_sms.requests_received == 1


def test_a_wrong_api_key_is_permanent_at_once():
    with FakeSmsServer(api_key="the-right-key") as fake:
        with pytest.raises(DeliveryFailed) as raised:
            provider_for(fake.send_url, api_key="a-wrong-key").send(sms_message())
        assert raised.value.permanent is True
        assert raised.value.reason == "provider answered 401"
        assert fake.requests_received == 1
        provider_for(fake.send_url, api_key="the-right-key").send(sms_message())
        assert len(fake.messages()) == 1


def test_a_provider_that_never_answers_times_out_as_transient():
    # The kernel accepts connections into the backlog; nobody ever answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/sms"
        provider = provider_for(url, timeout_seconds=0.2, attempts=2)
        with pytest.raises(DeliveryFailed) as raised:
            provider.send(sms_message())
    assert raised.value.permanent is False
    assert raised.value.reason == "timed out after 0.2s (2 attempts)"
    assert_keeps_the_secret(raised.value)


def test_nothing_listening_is_transient():
    provider = provider_for(f"http://127.0.0.1:{unused_port()}/sms", attempts=2)
    with pytest.raises(DeliveryFailed) as raised:
        provider.send(sms_message())
    assert raised.value.permanent is False
    assert raised.value.reason == "could not connect to the SMS provider (2 attempts)"


def test_the_same_reference_twice_is_stored_once(fake_sms):
    provider = provider_for(fake_sms.send_url)
    message = sms_message()
    first = provider.send(message)
    second = provider.send(message)
    assert first == second
    assert len(fake_sms.messages()) == 1
    assert fake_sms.duplicates == 1


def test_the_idempotency_key_and_bearer_token_are_sent():
    seen = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"id": "p-1"}')

        def log_message(self, *args):
            pass

    with running(ThreadingHTTPServer(("127.0.0.1", 0), Recorder)) as url:
        message = sms_message()
        result = provider_for(url, api_key="k-123").send(message)
    assert result.provider_message_id == "p-1"
    headers, body = seen[0]
    assert headers["Idempotency-Key"] == message.message_id
    assert headers["Authorization"] == "Bearer k-123"
    assert json.loads(body) == {
        "to": PHONE,
        "text": ENGLISH_TEXT,
        "sender": "KSMART",
        "reference": message.message_id,
        "unicode": False,
    }


def test_failures_can_be_injected_over_http(fake_sms):
    control = f"{fake_sms.base_url}/control"
    assert requests.post(control, json={"fail_next": 1, "status": 500}, timeout=5).ok
    with pytest.raises(DeliveryFailed, match="provider answered 500"):
        provider_for(fake_sms.send_url, attempts=1).send(sms_message())
    assert requests.post(control, json={"fail_always": True}, timeout=5).ok
    with pytest.raises(DeliveryFailed, match="provider answered 503"):
        provider_for(fake_sms.send_url, attempts=1).send(sms_message())
    assert requests.post(control, json={"recover": True}, timeout=5).ok
    provider_for(fake_sms.send_url, attempts=1).send(sms_message())
    assert requests.post(control, json={"fail_next": "many"}, timeout=5).status_code == 400


def test_the_phone_is_readable_over_http(fake_sms):
    provider_for(fake_sms.send_url).send(sms_message())
    provider_for(fake_sms.send_url).send(sms_message(destination="+919876543210"))
    # A literal '+', as a developer types it into curl.
    answer = requests.get(f"{fake_sms.base_url}/sms?to={PHONE}", timeout=5)
    assert [message["to"] for message in answer.json()] == [PHONE]
    assert answer.json()[0]["text"] == ENGLISH_TEXT


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"to": "+971501234567"}', b'{"to": 5, "text": "", "unicode": "y"}'],
)
def test_the_fake_refuses_malformed_sends(fake_sms, body):
    answer = requests.post(fake_sms.send_url, data=body, timeout=5)
    assert answer.status_code == 400
    assert fake_sms.messages() == []


# --- receipts ---------------------------------------------------------------


def test_receipts_arrive_signed_and_parse():
    received = []
    lock = threading.Lock()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                received.append((body, self.headers.get(SMS_RECEIPT_SIGNATURE_HEADER)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    with running(ThreadingHTTPServer(("127.0.0.1", 0), Receiver)) as receiver_url:
        with FakeSmsServer(receipt_url=f"{receiver_url}/receipts", receipt_secret=SECRET) as fake:
            message = sms_message()
            result = provider_for(fake.send_url).send(message)

            def first_receipt():
                with lock:
                    return received[0] if received else None

            body, signature = wait_for(first_receipt, timeout=5, message="a receipt")
    receipt = parse_receipt(body, signature, SECRET)
    assert receipt.provider_message_id == result.provider_message_id
    assert receipt.reference == message.message_id
    assert receipt.status == "delivered"
    assert receipt.error is None
    assert receipt.at and receipt.at.endswith("Z")
    assert CODE.encode() not in body


def test_an_unreachable_receipt_url_does_not_disturb_sending(logs):
    url = f"http://127.0.0.1:{unused_port()}/receipts"
    with FakeSmsServer(receipt_url=url, receipt_secret=SECRET) as fake:
        result = provider_for(fake.send_url).send(sms_message())
        assert len(fake.messages()) == 1
        [warning] = wait_for(
            lambda: [entry for entry in logs if entry["event"] == "could not deliver a receipt"],
            timeout=5,
            message="the receipt failure to be logged",
        )
    assert warning["id"] == result.provider_message_id


def test_a_genuine_receipt_parses():
    body = canonical_json(
        {"id": "p-1", "reference": "r-1", "status": "failed", "error": "absent", "at": None}
    )
    assert parse_receipt(body, sign_receipt(body, SECRET), SECRET) == Receipt(
        "p-1", "r-1", "failed", "absent", None
    )


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=" + "0" * 64, "md5=abc", "sha256=ünïcode", "SHA256=" + "0" * 64],
)
def test_a_receipt_without_the_right_signature_is_refused(signature):
    body = canonical_json({"id": "p-1", "status": "delivered"})
    with pytest.raises(Unauthenticated):
        parse_receipt(body, signature, SECRET)


def test_a_receipt_signed_with_another_secret_is_refused():
    body = canonical_json({"id": "p-1", "status": "delivered"})
    with pytest.raises(Unauthenticated):
        parse_receipt(body, sign_receipt(body, b"x" * 32), SECRET)


def test_the_signature_is_checked_before_the_body_is_read():
    with pytest.raises(Unauthenticated):
        parse_receipt(b"not json at all", "sha256=00", SECRET)


def test_every_problem_of_a_genuine_receipt_is_listed_at_once():
    body = canonical_json({"status": "lost", "reference": 7, "error": ["x"], "at": 1})
    with pytest.raises(InvalidInput) as raised:
        parse_receipt(body, sign_receipt(body, SECRET), SECRET)
    assert {problem["field"] for problem in raised.value.problems} == {
        "id",
        "status",
        "reference",
        "error",
        "at",
    }


@pytest.mark.parametrize("body", [b"\xff\xfe", b"[1, 2]", b"{"])
def test_a_genuine_receipt_that_is_not_a_json_object_is_invalid(body):
    with pytest.raises(InvalidInput) as raised:
        parse_receipt(body, sign_receipt(body, SECRET), SECRET)
    assert raised.value.problems[0]["field"] == "body"


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError):
        sign_receipt(b"{}", b"short")


# --- email ------------------------------------------------------------------


class RecordingHandler:
    """Keeps each mail's raw bytes and whether it came over TLS, authenticated."""

    def __init__(self, refuse_recipients_with: str | None = None) -> None:
        self.refuse_recipients_with = refuse_recipients_with
        self.received: list[SimpleNamespace] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse_recipients_with:
            return self.refuse_recipients_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.received.append(
            SimpleNamespace(
                raw=envelope.original_content,
                recipients=list(envelope.rcpt_tos),
                over_tls=server.transport.get_extra_info("ssl_object") is not None,
                authenticated=bool(session.authenticated),
            )
        )
        return "250 OK"


class Authenticator:
    def __init__(self) -> None:
        self.mechanisms: list[str] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.mechanisms.append(mechanism)
        genuine = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_USER.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        # handled=False: aiosmtpd then answers 535 itself (True means "I replied").
        return AuthResult(success=genuine, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> SimpleNamespace:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "K-Smart test mail server")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_file = directory / "server.pem"
    key_file = directory / "server.key"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return SimpleNamespace(certificate_file=certificate_file, key_file=key_file)


def server_tls_context(certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.certificate_file, certificate.key_file)
    return context


@pytest.fixture
def smtp_server():
    """Start an aiosmtpd server on a free loopback port: smtp_server(handler, **options)."""
    started: list[SmtpController] = []

    def start(handler, **options) -> SmtpController:
        controller = SmtpController(
            handler, hostname="127.0.0.1", port=0, server_hostname="test-mail", **options
        )
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


def settings_for(port: int, **overrides) -> SmtpSettings:
    options = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": None,
        "password": None,
        "ca_file": None,
        "mail_from": MAIL_FROM,
        "timeout_seconds": 5.0,
    }
    options.update(overrides)
    return SmtpSettings(**options)


def decoded(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_a_malayalam_mail_arrives_intact(smtp_server):
    handler = RecordingHandler()
    server = smtp_server(handler)
    message = email_message()
    result = SmtpSender(settings_for(server.port)).send(message)
    [mail] = handler.received
    assert mail.recipients == [ADDRESS]
    received = decoded(mail.raw)
    assert received["Subject"] == MALAYALAM_SUBJECT
    # MIME text travels with CRLF line ends (RFC 2045); a reader turns them back.
    body = received.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body == MALAYALAM_TEXT + "\n"
    assert received.get_content_charset() == "utf-8"
    assert received["From"] == MAIL_FROM
    assert received["To"] == ADDRESS
    assert received["Content-Language"] == "ml"
    assert received["Date"].datetime.tzinfo is not None
    assert received["Message-ID"] == f"<{message.message_id}@ksmart.example>"
    assert result.provider_message_id == received["Message-ID"]
    # Only ASCII on the wire: no relay can mangle it.
    assert mail.raw.isascii()


def test_a_resend_carries_the_same_message_id(smtp_server):
    handler = RecordingHandler()
    server = smtp_server(handler)
    sender = SmtpSender(settings_for(server.port))
    message = email_message(subject="Your code", text=ENGLISH_TEXT)
    assert sender.send(message) == sender.send(message)
    assert len({decoded(mail.raw)["Message-ID"] for mail in handler.received}) == 1


@pytest.mark.parametrize(
    ("security", "excluded_mechanism", "expected_mechanism"),
    [("starttls", "LOGIN", "PLAIN"), ("starttls", "PLAIN", "LOGIN"), ("ssl", None, "PLAIN")],
)
def test_tls_and_authentication(
    smtp_server, certificate, security, excluded_mechanism, expected_mechanism
):
    handler = RecordingHandler()
    authenticator = Authenticator()
    tls = server_tls_context(certificate)
    options = {
        "authenticator": authenticator,
        "auth_required": True,
        "auth_require_tls": True,
        "auth_exclude_mechanism": [excluded_mechanism] if excluded_mechanism else [],
    }
    if security == "starttls":
        options.update(tls_context=tls, require_starttls=True)
    else:
        # aiosmtpd counts only STARTTLS as TLS, so it would not offer AUTH
        # here; the implicit-TLS session is encrypted all the same.
        options.update(ssl_context=tls, auth_required=False, auth_require_tls=False)
    server = smtp_server(handler, **options)
    settings = settings_for(
        server.port,
        security=security,
        username=SMTP_USER,
        password=SMTP_PASSWORD,
        ca_file=str(certificate.certificate_file),
    )
    SmtpSender(settings).send(email_message())
    [mail] = handler.received
    assert mail.over_tls and mail.authenticated
    assert authenticator.mechanisms == [expected_mechanism]
    assert decoded(mail.raw)["Subject"] == MALAYALAM_SUBJECT


def test_wrong_credentials_are_transient(smtp_server, certificate):
    handler = RecordingHandler()
    server = smtp_server(
        handler,
        tls_context=server_tls_context(certificate),
        require_starttls=True,
        authenticator=Authenticator(),
        auth_required=True,
    )
    settings = settings_for(
        server.port,
        security="starttls",
        username=SMTP_USER,
        password="wrong",
        ca_file=str(certificate.certificate_file),
    )
    with pytest.raises(DeliveryFailed) as raised:
        SmtpSender(settings).send(email_message())
    assert raised.value.permanent is False
    assert raised.value.reason == "the mail server refused our credentials (535)"
    assert handler.received == []


def test_an_untrusted_certificate_is_refused_as_transient(smtp_server, certificate):
    handler = RecordingHandler()
    server = smtp_server(handler, tls_context=server_tls_context(certificate))
    settings = settings_for(server.port, security="starttls")  # system trust only
    with pytest.raises(DeliveryFailed) as raised:
        SmtpSender(settings).send(email_message())
    assert raised.value.permanent is False
    assert "certificate" in raised.value.reason
    assert handler.received == []


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("550 5.1.1 No such mailbox", True), ("451 4.3.0 Try again later", False)],
)
def test_a_refused_recipient(smtp_server, reply, permanent):
    handler = RecordingHandler(refuse_recipients_with=reply)
    server = smtp_server(handler)
    with pytest.raises(DeliveryFailed) as raised:
        SmtpSender(settings_for(server.port)).send(email_message())
    assert raised.value.permanent is permanent
    assert raised.value.reason == f"the mail server refused the recipient ({reply[:3]})"
    assert_keeps_the_secret(raised.value)


def test_a_refused_message_is_permanent(smtp_server):
    class Refusing(RecordingHandler):
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            return f"554 5.7.1 Rejected: {CODE}"  # a server quoting the message back

    server = smtp_server(Refusing())
    with pytest.raises(DeliveryFailed) as raised:
        SmtpSender(settings_for(server.port)).send(email_message(text=ENGLISH_TEXT))
    assert raised.value.permanent is True
    assert raised.value.reason == "the mail server refused the message (554)"
    assert_keeps_the_secret(raised.value)


def test_nothing_listening_is_transient_for_email():
    with pytest.raises(DeliveryFailed) as raised:
        SmtpSender(settings_for(unused_port())).send(email_message())
    assert raised.value.permanent is False
    assert raised.value.reason.startswith("could not reach the mail server")
    assert_keeps_the_secret(raised.value)


def test_a_mail_server_that_never_answers_times_out_as_transient():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings = settings_for(silent.getsockname()[1], timeout_seconds=0.2)
        with pytest.raises(DeliveryFailed) as raised:
            SmtpSender(settings).send(email_message())
    assert raised.value.permanent is False
    assert raised.value.reason == "timed out after 0.2s"


def test_the_text_is_not_in_a_message_repr():
    assert CODE not in repr(email_message())
    assert CODE not in repr(sms_message())


# --- settings ---------------------------------------------------------------


def test_nothing_configured_means_no_external_channels(clean_environment):
    assert external_channels_from_environment() == {}


def test_both_channels_from_the_environment(clean_environment, certificate):
    env = clean_environment
    env.setenv("KSMART_SMS_URL", "https://sms.example/v1/messages")
    env.setenv("KSMART_SMS_API_KEY", "k")
    env.setenv("KSMART_SMS_ATTEMPTS", "5")
    env.setenv("KSMART_SMS_RECEIPT_SECRET", "s" * 32)
    env.setenv("KSMART_SMTP_HOST", "smtp.example")
    env.setenv("KSMART_SMTP_USERNAME", SMTP_USER)
    env.setenv("KSMART_SMTP_PASSWORD", SMTP_PASSWORD)
    env.setenv("KSMART_SMTP_CA_FILE", str(certificate.certificate_file))
    env.setenv("KSMART_MAIL_FROM", MAIL_FROM)
    channels = external_channels_from_environment()
    assert sorted(channels) == ["email", "sms"]
    assert channels["sms"].name == "sms" and channels["sms"].attempts == 5
    assert channels["email"].name == "email"
    assert channels["email"].settings.port == 587
    assert SMTP_PASSWORD not in repr(channels["email"])
    assert SmsSettings.from_environment().receipt_secret == b"s" * 32
    assert SmsSettings.from_environment().sender_id == "KSMART"
    assert sms.receipt_secret_from_environment() == b"s" * 32


def test_the_receipt_secret_is_readable_without_sms_settings(clean_environment):
    assert sms.receipt_secret_from_environment() is None
    clean_environment.setenv("KSMART_SMS_RECEIPT_SECRET", "short")
    with pytest.raises(ValueError, match="KSMART_SMS_RECEIPT_SECRET"):
        sms.receipt_secret_from_environment()


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("ssl", 465), ("none", 25)])
def test_the_smtp_port_follows_the_security(clean_environment, security, port):
    clean_environment.setenv("KSMART_SMTP_HOST", "smtp.example")
    clean_environment.setenv("KSMART_SMTP_SECURITY", security)
    clean_environment.setenv("KSMART_MAIL_FROM", "no-reply@ksmart.example")
    assert SmtpSettings.from_environment().port == port


def test_every_settings_problem_is_named_at_once(clean_environment, tmp_path: Path):
    env = clean_environment
    env.setenv("KSMART_SMS_URL", "sms.example")
    env.setenv("KSMART_SMS_SENDER_ID", "K-SMART-KERALA")
    env.setenv("KSMART_SMS_TIMEOUT_SECONDS", "soon")
    env.setenv("KSMART_SMS_ATTEMPTS", "0")
    env.setenv("KSMART_SMS_RECEIPT_SECRET", "short")
    env.setenv("KSMART_SMTP_HOST", "smtp.example")
    env.setenv("KSMART_SMTP_PORT", "99999")
    env.setenv("KSMART_SMTP_SECURITY", "tls")
    env.setenv("KSMART_SMTP_USERNAME", SMTP_USER)
    env.setenv("KSMART_SMTP_CA_FILE", str(tmp_path / "missing.pem"))
    env.setenv("KSMART_SMTP_TIMEOUT_SECONDS", "-1")
    with pytest.raises(ValueError) as raised:
        external_channels_from_environment()
    problems = raised.value.problems
    for name in (
        "KSMART_SMS_URL",
        "KSMART_SMS_SENDER_ID",
        "KSMART_SMS_TIMEOUT_SECONDS",
        "KSMART_SMS_ATTEMPTS",
        "KSMART_SMS_RECEIPT_SECRET",
        "KSMART_SMTP_PORT",
        "KSMART_SMTP_SECURITY",
        "KSMART_SMTP_PASSWORD",
        "KSMART_SMTP_CA_FILE",
        "KSMART_SMTP_TIMEOUT_SECONDS",
        "KSMART_MAIL_FROM",
    ):
        assert any(problem.startswith(name) or f" {name} " in problem for problem in problems), name
        assert name in str(raised.value)


def test_smtp_credentials_need_tls(clean_environment):
    env = clean_environment
    env.setenv("KSMART_SMTP_HOST", "smtp.example")
    env.setenv("KSMART_SMTP_SECURITY", "none")
    env.setenv("KSMART_SMTP_USERNAME", SMTP_USER)
    env.setenv("KSMART_SMTP_PASSWORD", SMTP_PASSWORD)
    env.setenv("KSMART_MAIL_FROM", "not an address")
    with pytest.raises(ValueError) as raised:
        SmtpSettings.from_environment()
    assert len(raised.value.problems) == 2
    assert SMTP_PASSWORD not in str(raised.value)


# --- the developer's inbox --------------------------------------------------


def test_the_dev_inbox_is_a_phone_and_a_mailbox():
    inbox = serve(sms_port=0, smtp_port=0)
    try:
        provider_for(inbox.sms.send_url).send(sms_message())
        sender = SmtpSender(settings_for(inbox.smtp.port))
        message = email_message()
        sender.send(message)
        sender.send(email_message(destination="someone-else@example.org"))
        mails = requests.get(f"{inbox.sms.base_url}/mail?to=Citizen@Example.org", timeout=5)
        phone = requests.get(f"{inbox.sms.base_url}/sms?to={PHONE}", timeout=5)
    finally:
        inbox.stop()
    [mail] = mails.json()
    assert mail["to"] == ADDRESS
    assert mail["subject"] == MALAYALAM_SUBJECT
    assert mail["text"] == MALAYALAM_TEXT + "\n"
    assert mail["message_id"] == f"<{message.message_id}@ksmart.example>"
    assert mail["received_at"].endswith("Z")
    assert [sent["text"] for sent in phone.json()] == [ENGLISH_TEXT]


def test_a_server_without_starttls_is_a_transient_failure(smtp_server):
    # STARTTLS demanded of a server without it: a configuration fault, not the message's.
    server = smtp_server(RecordingHandler())
    settings = settings_for(server.port, security="starttls")
    with pytest.raises(DeliveryFailed) as raised:
        SmtpSender(settings).send(email_message())
    assert raised.value.permanent is False
    assert "extension" in raised.value.reason
