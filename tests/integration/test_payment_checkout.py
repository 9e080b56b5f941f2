"""Paying a fee as on a real provider, with make run's test provider: the
gateway starts a payment with a return URL on an allowed origin, the dev
inbox's checkout page takes it ("Pay" or "Decline"), tells the gateway by the
provider's signed callback and sends the browser back with a 303; a return
URL on another origin, or a checkout link changed in any way, is refused."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from ksmart_gateway.return_urls import RETURN_ORIGINS_ENV
from tests.support import citizen
from tests.support.inbox import served_inbox
from tests.support.platform import running_platform
from tests.support.waiting import wait_for

PORTAL = "http://portal.test:8080"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with served_inbox() as (inbox, inbox_environ):
        with running_platform(
            tmp_path_factory.mktemp("checkout"),
            environ={**inbox_environ, RETURN_ORIGINS_ENV: PORTAL},
        ) as platform:
            yield platform, inbox


def _owing_file(platform) -> dict:
    file = citizen.submit(platform, citizen.application(platform, "residence-certificate")).json()
    assert file["fee_due_paise"] > 0
    return file


def _start(platform, file_id: str, **body) -> requests.Response:
    return requests.post(
        f"{platform.base_url}/api/v1/files/{file_id}/payments",
        json=body or None,
        headers=platform.as_user("citizen"),
        timeout=10,
    )


def _file(platform, file_id: str) -> dict:
    reply = requests.get(
        f"{platform.base_url}/api/v1/files/{file_id}",
        headers=platform.as_user("citizen"),
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def _press(checkout_url: str, outcome: str) -> requests.Response:
    """What the checkout page's form sends: back to its own address, with
    the button pressed."""
    return requests.post(checkout_url, data={"outcome": outcome}, allow_redirects=False, timeout=15)


def test_the_citizen_pays_on_the_checkout_page_and_is_sent_back(served):
    platform, inbox = served
    file = _owing_file(platform)
    return_url = f"{PORTAL}/files/{file['file_id']}/payment"
    started = _start(platform, file["file_id"], return_url=return_url)
    assert started.status_code == 201, started.text
    checkout_url = started.json()["checkout_url"]
    assert checkout_url.startswith(f"{inbox.sms.base_url}/checkout?")

    page = requests.get(checkout_url, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "no money moves" in page.text and "₹10" in page.text
    assert file["file_number"] in page.text
    assert "script" not in page.headers["Content-Security-Policy"]

    paid = _press(checkout_url, "captured")
    assert paid.status_code == 303, paid.text
    assert paid.headers["Location"] == return_url
    settled = wait_for(
        lambda: (f := _file(platform, file["file_id"]))["fee_due_paise"] == 0 and f,
        timeout=15,
        message="the fee recorded as paid",
    )
    assert settled["paid_paise"] == file["fee_due_paise"]
    assert started.json()["payment_id"] in settled["payments"]


def test_a_declined_payment_sends_the_citizen_back_with_the_fee_still_owed(served):
    platform, _ = served
    file = _owing_file(platform)
    return_url = f"{PORTAL}/files/{file['file_id']}/payment"
    checkout_url = _start(platform, file["file_id"], return_url=return_url).json()["checkout_url"]
    declined = _press(checkout_url, "failed")
    assert declined.status_code == 303 and declined.headers["Location"] == return_url
    assert _file(platform, file["file_id"])["fee_due_paise"] == file["fee_due_paise"]


@pytest.mark.parametrize(
    "return_url",
    [
        "https://evil.example/files/x/payment",
        "http://portal.test:8081/",
        "/files/x/payment",
        "javascript:alert(1)",
        "http://evil.example@portal.test:8080/",
    ],
)
def test_a_return_url_on_an_origin_not_allowed_is_refused(served, return_url):
    platform, _ = served
    file = _owing_file(platform)
    refused = _start(platform, file["file_id"], return_url=return_url)
    assert refused.status_code == 422, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert [problem["field"] for problem in refused.json()["problems"]] == ["return_url"]


def test_a_checkout_link_changed_in_any_way_is_refused_and_pays_nothing(served):
    platform, _ = served
    file = _owing_file(platform)
    return_url = f"{PORTAL}/files/{file['file_id']}/payment"
    checkout_url = _start(platform, file["file_id"], return_url=return_url).json()["checkout_url"]
    address, query = checkout_url.split("?", 1)
    genuine = dict(parse_qsl(query))
    for change in (
        {"return_url": "https://evil.example/"},
        {"amount_paise": "1"},
        {"file_id": _owing_file(platform)["file_id"]},
    ):
        tampered = f"{address}?{urlencode({**genuine, **change})}"
        assert requests.get(tampered, timeout=10).status_code == 403
        pressed = _press(tampered, "captured")
        assert pressed.status_code == 403 and "Location" not in pressed.headers
    assert _file(platform, file["file_id"])["fee_due_paise"] == file["fee_due_paise"]


def test_without_a_body_a_payment_starts_as_before_and_its_page_says_it_is_done(served):
    platform, _ = served
    file = _owing_file(platform)
    started = _start(platform, file["file_id"])
    assert started.status_code == 201, started.text
    checkout_url = started.json()["checkout_url"]
    assert "return_url" not in dict(parse_qsl(urlsplit(checkout_url).query))
    done = _press(checkout_url, "captured")
    assert done.status_code == 200 and "Paid" in done.text
    assert _file(platform, file["file_id"])["fee_due_paise"] == 0
