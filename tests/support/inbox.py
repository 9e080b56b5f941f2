"""The dev inbox (a fake SMS provider, an SMTP mailbox and the fake payment
provider's checkout page) in this process as the platform's outside world,
and citizens signed in by the code it receives: for the notifications tests,
the fault suite, the soak and the portal's journeys."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator

import requests

from ksmart_applications.payments import CHECKOUT_URL_ENV, PAYMENT_SECRET_ENV, FakePaymentProvider
from ksmart_notifications import dev_inbox
from ksmart_ops.dev_checkout import CHECKOUT_PATH, CheckoutPage
from tests.support.platform import free_port
from tests.support.waiting import wait_for

CODE = re.compile(r"\b(\d{6})\b")
CLIENT_TIMEOUT = 15


@contextlib.contextmanager
def served_inbox() -> Iterator[tuple[dev_inbox.DevInbox, dict[str, str]]]:
    """The inbox, and the environment that makes a platform use it: SMS to
    the fake provider, whose signed receipts go to the gateway (at the
    address chosen here), mail to the mailbox, fees paid on the checkout
    page (which tells the gateway, as make run's does)."""
    address = f"127.0.0.1:{free_port()}"
    receipt_secret = secrets.token_hex(32)
    payment_secret = secrets.token_hex(32)
    checkout = CheckoutPage(FakePaymentProvider(payment_secret.encode()), address)
    inbox = dev_inbox.serve(
        0,
        0,
        receipt_url=f"http://{address}/api/v1/notifications/sms-receipts",
        receipt_secret=receipt_secret.encode(),
        pages={CHECKOUT_PATH: checkout},
    )
    environ = {
        "KSMART_GATEWAY_ADDRESS": address,
        PAYMENT_SECRET_ENV: payment_secret,
        CHECKOUT_URL_ENV: f"{inbox.sms.base_url}{CHECKOUT_PATH}",
        "KSMART_SMS_URL": inbox.sms.send_url,
        "KSMART_SMS_RECEIPT_SECRET": receipt_secret,
        "KSMART_SMTP_HOST": "127.0.0.1",
        "KSMART_SMTP_PORT": str(inbox.smtp.port),
        "KSMART_SMTP_SECURITY": "none",
        "KSMART_MAIL_FROM": "K-Smart <no-reply@ksmart.invalid>",
    }
    try:
        yield inbox, environ
    finally:
        inbox.stop()


def phone_number() -> str:
    """A citizen's mobile, at home (+91) or in the Gulf (+971)."""
    prefix = secrets.choice(("+9198", "+9715"))
    return prefix + "".join(secrets.choice("0123456789") for _ in range(8))


def sign_in_by_phone(platform, inbox, phone: str) -> str:
    """Sign a citizen in with the code the fake SMS provider received; the
    token is also kept on the platform (for tests.support.citizen)."""
    api = f"{platform.base_url}/api/v1"
    reply = requests.post(f"{api}/auth/otp", json={"phone": phone}, timeout=CLIENT_TIMEOUT)
    assert reply.status_code == 202, reply.text
    text = wait_for(lambda: inbox.sms.messages(phone), timeout=30, message="the code")[-1]["text"]
    verified = requests.post(
        f"{api}/auth/otp/verify",
        json={"challenge_id": reply.json()["challenge_id"], "code": CODE.search(text).group(1)},
        timeout=CLIENT_TIMEOUT,
    )
    assert verified.status_code == 200, verified.text
    platform.tokens[phone] = verified.json()["access_token"]
    return platform.tokens[phone]
