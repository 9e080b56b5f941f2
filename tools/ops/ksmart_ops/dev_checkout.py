"""The fake payment provider's checkout page, for `make run` and the tests:
what a newcomer pays a fee on, with no command to type.

A real provider (PayGov, Razorpay) takes the citizen to its own page, sends
them back to the return URL the payment was created with, and confirms by a
signed server-to-server callback. This page does the same for the fake
provider (ksmart_applications.payments): the dev inbox serves it at
/checkout (`python -m ksmart_ops.dev_checkout` runs the inbox with it), the
applications service links to it (KSMART_FAKE_PAYMENT_CHECKOUT_URL), and
"Pay" or "Decline" posts the provider's signed callback (captured or failed)
to the gateway, then sends the browser back with a 303.

It holds the payment secret, as the provider would. The link's parameters
are signed with it (FakePaymentProvider.checkout_parameters), so the page
takes no other amount or file and sends the browser to no other address than
the ones the platform gave it: it is no open redirect.
"""

from __future__ import annotations

import html
import os
import sys
from collections.abc import Mapping
from urllib.parse import urlencode

from ksmart_applications.payments import (
    PAYMENT_SECRET_ENV,
    STATUSES,
    Checkout,
    FakePaymentProvider,
)
from ksmart_common import config
from ksmart_common.errors import InvalidInput, Unauthenticated
from ksmart_notifications.channels.fake_sms import PageReply
from ksmart_ops.fake_payments import GatewayAnswer, post_callback

CHECKOUT_PATH = "/checkout"
# Plain HTML, no script or style at all; the page is never framed and
# never cached (its address carries a signature).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
PROVIDER_NAME = "Test payment provider"


class CheckoutPage:
    """GET shows the payment with Pay and Decline; POST (either button)
    tells the platform and sends the browser back. Both believe nothing in
    the address that the provider did not sign."""

    def __init__(self, provider: FakePaymentProvider, gateway: str) -> None:
        self._provider = provider
        self._gateway = gateway

    def __call__(self, method: str, query: Mapping[str, str], form: Mapping[str, str]) -> PageReply:
        try:
            checkout = self._provider.read_checkout(query)
        except (Unauthenticated, InvalidInput):
            return _page(
                403,
                "This payment link is not valid",
                "<p>It was changed, or not made by this test provider. Go back to the"
                " site you came from and start the payment again.</p>",
            )
        if method == "GET":
            title = f"Pay {rupees(checkout.amount_paise)}"
            return _page(200, title, _payment_form(checkout, query))
        outcome = form.get("outcome", "")
        if outcome not in STATUSES:
            return _page(400, "Choose Pay or Decline", _payment_form(checkout, query))
        return self._finish(checkout, outcome)

    def _finish(self, checkout: Checkout, outcome: str) -> PageReply:
        try:
            answer = post_callback(
                self._provider,
                self._gateway,
                checkout.file_id,
                checkout.amount_paise,
                checkout.payment_id,
                outcome,
            )
        except OSError as error:
            answer = GatewayAnswer(0, f"the platform could not be reached: {error}")
        if not answer.ok:
            return _page(
                502,
                "The platform did not take the payment's result",
                f"<p>It answered:</p><pre>{html.escape(answer.text)}</pre>",
            )
        if checkout.return_url is not None:
            return PageReply(303, headers={**PAGE_HEADERS, "Location": checkout.return_url})
        done = "Paid" if outcome == "captured" else "Declined"
        return _page(200, done, "<p>The platform has been told. You can close this page.</p>")


def rupees(paise: int) -> str:
    whole, part = divmod(paise, 100)
    return f"₹{whole:,}" if part == 0 else f"₹{whole:,}.{part:02d}"


def _payment_form(checkout: Checkout, link: Mapping[str, str]) -> str:
    # The form posts to the very address it came from: the signed parameters
    # travel in the query, and the body says only which button was pressed.
    action = f"{CHECKOUT_PATH}?{urlencode(link)}"
    back = (
        f"<p>Either way, you then go back to {html.escape(checkout.return_url)}</p>"
        if checkout.return_url
        else ""
    )
    return (
        "<p><strong>A test provider: no money moves.</strong> It stands in for the"
        " payment service a real K-Smart site sends you to.</p>\n"
        "<dl>\n"
        f"<dt>Amount</dt><dd>{rupees(checkout.amount_paise)}</dd>\n"
        f"<dt>File</dt><dd>{html.escape(checkout.reference)}</dd>\n"
        f"<dt>Payment</dt><dd>{html.escape(checkout.payment_id)}</dd>\n"
        "</dl>\n"
        f'<form method="post" action="{html.escape(action)}">\n'
        '<button type="submit" name="outcome" value="captured">Pay</button>\n'
        '<button type="submit" name="outcome" value="failed">Decline</button>\n'
        "</form>\n"
        f"{back}\n"
    )


def _page(status: int, title: str, content: str) -> PageReply:
    document = (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)} · {PROVIDER_NAME}</title>\n</head>\n<body>\n"
        f"<header><p>{PROVIDER_NAME}</p></header>\n"
        f"<main>\n<h1>{html.escape(title)}</h1>\n{content}</main>\n</body>\n</html>\n"
    )
    return PageReply(status, document.encode("utf-8"), headers=PAGE_HEADERS)


def main(argv: list[str] | None = None) -> None:
    """The dev inbox (ksmart_notifications.dev_inbox, same arguments) with
    this page at /checkout, for the gateway at KSMART_GATEWAY_ADDRESS and
    with the secret in KSMART_PAYMENT_SECRET (`make run` gives both)."""
    secret = os.environ.get(PAYMENT_SECRET_ENV, "")
    if not secret:
        sys.exit(f"{PAYMENT_SECRET_ENV} is required: the checkout signs what it posts with it")
    page = CheckoutPage(FakePaymentProvider(secret.encode("utf-8")), config.gateway_address())
    # Here, not at the top: the inbox needs aiosmtpd (a development
    # dependency), and the devserver imports this module for CHECKOUT_PATH.
    from ksmart_notifications import dev_inbox

    dev_inbox.main(argv, pages={CHECKOUT_PATH: page})


if __name__ == "__main__":
    main()
