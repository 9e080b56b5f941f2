"""The fake payment provider's callback, posted to the gateway as the
provider would post it: by `ksmart-admin fake-pay` and by make run's
checkout page (ksmart_ops.dev_checkout). Only the standard library and the
provider itself: `ksmart-admin` runs in an image without development
dependencies."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from ksmart_applications.payments import FakePaymentProvider
from ksmart_common import signatures

CALLBACK_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class GatewayAnswer:
    status: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def post_callback(
    provider: FakePaymentProvider,
    gateway: str,
    file_id: str,
    amount_paise: int,
    payment_id: str | None = None,
    status: str = "captured",
) -> GatewayAnswer:
    """Post the callback the fake provider sends when a payment ends (as
    `ksmart-admin fake-pay` and the checkout page do) to the gateway at
    host:port, signed with the provider's secret."""
    body = provider.callback_body(file_id, amount_paise, payment_id, status)
    request = urllib.request.Request(
        f"http://{gateway}/api/v1/payments/callback",
        data=body,
        headers={
            "Content-Type": "application/json",
            signatures.PAYMENT_SIGNATURE_HEADER: provider.sign(body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=CALLBACK_TIMEOUT_SECONDS) as response:
            return GatewayAnswer(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        return GatewayAnswer(error.code, error.read().decode())
