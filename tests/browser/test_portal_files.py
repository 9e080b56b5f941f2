"""A citizen's files through the portal, in English and Malayalam, on a
360 px phone and at desktop width, with axe-core on every page: a file
made through the API is in "My files" once the citizen signs in by code,
its page tells where it is and its timeline; once an official approves it
the certificate downloads as a PDF; and anyone tracks it by its number
without signing in."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from ksmart_common.domain import certificate
from ksmart_portal import i18n
from ksmart_portal.security import SESSION_COOKIE
from tests.support import actions, citizen
from tests.support.inbox import phone_number, sign_in_by_phone
from tests.support.waiting import wait_for

CATALOGUES = i18n.load_catalogues()
# The sign-in code in either language's SMS (a file's number has six digits too).
SIGN_IN_CODE = re.compile(r"(?:code is|കോഡ്) (\d{6})")
SERVICE_NAMES = {
    "en": "Birth registration and certificate",
    "ml": "ജനന രജിസ്ട്രേഷനും സർട്ടിഫിക്കറ്റും",
}


def text(language: str, message: str) -> str:
    return CATALOGUES[language].gettext(message)


def _applied(platform, inbox) -> tuple[str, dict]:
    """A new citizen's phone and the file they made through the API, once
    their list shows it."""
    phone = phone_number()
    sign_in_by_phone(platform, inbox, phone)
    reply = citizen.submit(platform, citizen.application(platform, user=phone), user=phone)
    assert reply.status_code == 201, reply.text

    def listed() -> bool:
        files = requests.get(
            f"{platform.base_url}/api/v1/files", headers=platform.as_user(phone), timeout=10
        )
        return reply.json()["file_id"] in {entry["file_id"] for entry in files.json()["files"]}

    wait_for(listed, timeout=30, message="the file in the citizen's list")
    return phone, reply.json()


def _sign_in(page, language: str, inbox, phone: str) -> None:
    already = len(inbox.sms.messages(phone))
    page.get_by_role("link", name=text(language, "Sign in"), exact=True).click()
    page.get_by_label(text(language, "Mobile number or email address")).fill(phone)
    page.get_by_role("button", name=text(language, "Send me a code")).click()

    def code() -> str | None:
        for message in inbox.sms.messages(phone)[already:]:
            found = SIGN_IN_CODE.search(message["text"])
            if found:
                return found.group(1)
        return None

    page.get_by_label(text(language, "Code"), exact=True).fill(
        wait_for(code, timeout=30, message="the sign-in code")
    )
    page.get_by_role("button", name=text(language, "Sign in")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Your files"))


def test_my_files_a_files_timeline_its_certificate_and_tracking_it(visit, portal_platform):
    page, language = visit.page, visit.language
    _url, inbox, platform = portal_platform
    phone, file = _applied(platform, inbox)
    _sign_in(page, language, inbox, phone)

    page.get_by_role("navigation", name=text(language, "Account")).get_by_role(
        "link", name=text(language, "Your files")
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Your files"))
    expect(page.locator("#files")).to_contain_text(file["file_number"])
    visit.check("my-files")

    page.get_by_role("link", name=SERVICE_NAMES[language]).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(SERVICE_NAMES[language])
    expect(page.locator("#timeline")).to_contain_text(text(language, "Application submitted"))
    expect(page.locator("#next-step")).to_have_text(
        text(
            language,
            "The office is working on it. We will send you a message when something changes.",
        )
    )
    visit.check()

    actions.take(platform, "clerk.kochi", file["file_id"], "verify")
    granted = actions.take(platform, "secretary.kochi", file["file_id"], "approve")
    page.reload()
    expect(page.locator("#timeline")).to_contain_text(text(language, "Certificate issued"))
    with page.expect_download() as downloading:
        page.get_by_role("link", name=text(language, "Download your certificate")).click()
    pdf = downloading.value
    with open(pdf.path(), "rb") as content:
        assert content.read(5) == b"%PDF-"
    assert pdf.suggested_filename.endswith(".pdf")
    visit.check("file")

    page.context.clear_cookies(name=SESSION_COOKIE)  # anyone: nobody signed in
    page.goto(f"{visit.url}/")
    page.get_by_role("link", name=text(language, "Track an application by its number")).click()
    page.get_by_label(text(language, "File number"), exact=True).fill(file["file_number"])
    page.get_by_role("button", name=text(language, "Track"), exact=True).click()
    tracked = page.locator("#tracked")
    expect(tracked).to_contain_text(file["file_number"])
    expect(tracked).to_contain_text(text(language, "Nobody: it has been decided."))
    expect(page.get_by_role("link", name=text(language, "Sign in"), exact=True)).to_be_visible()
    visit.check("track")

    # Anyone checks the certificate this journey produced: by its number,
    # then by the text of its QR code, as a bank or a school would; once a
    # checkpoint includes its issue (twice a second here), the page shows
    # the proof it verified.
    _wait_until_checkpointed(platform, file["file_number"])
    page.get_by_role("link", name=text(language, "K-Smart")).first.click()
    page.get_by_role("link", name=text(language, "Check a certificate")).click()
    page.get_by_label(text(language, "Certificate number"), exact=True).fill(file["file_number"])
    page.get_by_role("button", name=text(language, "Check the number")).click()
    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text(text(language, "This certificate is genuine and valid"))
    expect(verdict).to_contain_text(file["file_number"])
    _expect_recorded(page, language)
    page.get_by_label(text(language, "Text of the QR code")).fill(
        certificate.qr_text(granted["certificate"])
    )
    page.get_by_role("button", name=text(language, "Check the QR code")).click()
    expect(verdict).to_contain_text(text(language, "This certificate is genuine and valid"))
    expect(verdict).to_contain_text(file["file_number"])
    _expect_recorded(page, language)
    visit.check("certificate-genuine")


RECORDED = (
    "Recorded in the public log: entry %(index)s of the checkpoint of size %(size)s, "
    "signed by the platform."
)


def _wait_until_checkpointed(platform, number: str) -> None:
    """Until the certificate check carries its issue's proof (a checkpoint
    includes it), as the API answers anyone."""

    def proved():
        reply = requests.get(f"{platform.base_url}/api/v1/certificates/{number}", timeout=10)
        return (reply.json().get("transparency") or {}).get("certificate")

    wait_for(proved, timeout=30, message="a checkpoint holding the certificate's issue")


def _expect_recorded(page, language: str) -> None:
    """The page says the certificate is recorded in the public log, having
    checked the proof itself (log_proof): the words before the entry."""
    standing = page.locator("#log-standing")
    expect(standing).to_have_attribute("data-status", "recorded")
    expect(standing).to_contain_text(text(language, RECORDED).partition(":")[0])
