"""An Akshaya centre files for a citizen through the portal, in English and
Malayalam, on a 360 px phone and at desktop width (and once with
JavaScript off), with axe-core on every page: the operator signs in,
starts a filing for a new citizen's phone, reads the consent code from
the citizen's SMS (the dev inbox), sends the form once with a wrong code
and a missing answer (both named at once, the scans kept), then right;
the acknowledgement gives the file number and prints without the page's
header. The citizen then signs in by code in a browser of their own and
finds the file in "Your files"."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from ksmart_catalogue.samples import documents_needed, sample_form
from tests.browser.test_portal_citizen import _document, _fill
from tests.browser.test_portal_files import _sign_in, text
from tests.support import citizen
from tests.support.inbox import phone_number
from tests.support.waiting import wait_for

SERVICE = "birth-certificate"
OPERATOR = "akshaya.edappally"
# The consent SMS in either language (counter_consent_code.json): "Code 123456".
CONSENT_CODE = re.compile(r"(?:Code|കോഡ്) (\d{6})")
# A required answer left out of the first try.
LEFT_OUT = "mother_name"


def _operator_signs_in(page, language: str, url: str, platform) -> None:
    page.goto(f"{url}/staff/sign-in")
    page.get_by_label(text(language, "Username"), exact=True).fill(OPERATOR)
    page.get_by_label(text(language, "Password"), exact=True).fill(platform.password)
    page.get_by_role("button", name=text(language, "Sign in"), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "File for a citizen"))


def _consent_code(inbox, phone: str) -> str:
    def code() -> str | None:
        for message in reversed(inbox.sms.messages(phone)):
            found = CONSENT_CODE.search(message["text"])
            if found:
                return found.group(1)
        return None

    return wait_for(code, timeout=30, message="the consent code")


def _fill_form(page, definition: dict, answers: dict, tmp_path) -> None:
    """The citizen's answers, and a scan of each document they need."""
    _fill(page, definition, answers)
    for spec in documents_needed(definition, answers):
        page.locator(f"#document-{spec['code']}").set_input_files(_document(tmp_path, spec["code"]))


def test_an_akshaya_operator_files_for_a_citizen_who_then_sees_it(
    visit, portal_platform, browser, tmp_path
):
    page, language = visit.page, visit.language
    url, inbox, platform = portal_platform
    phone = phone_number()
    _operator_signs_in(page, language, url, platform)
    visit.check()

    page.get_by_label(text(language, "Service"), exact=True).select_option(SERVICE)
    page.get_by_label(text(language, "The citizen's mobile number or email address")).fill(phone)
    page.get_by_role("button", name=text(language, "Send the citizen a code")).click()
    notice = page.locator("#consent-notice")
    expect(notice).to_contain_text(
        text(
            language,
            "Ask the citizen to read the code out to you only if they asked you to "
            "file this application for them.",
        )
    )
    expect(notice).not_to_contain_text(phone)  # masked
    visit.check()
    code = _consent_code(inbox, phone)

    # First try: a wrong code and an answer left out, both named at once.
    definition = citizen.definition_of(platform, SERVICE)
    answers = sample_form(definition)
    page.locator("#local_body").select_option(citizen.KOCHI)
    _fill_form(page, definition, {k: v for k, v in answers.items() if k != LEFT_OUT}, tmp_path)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    page.get_by_label(text(language, "Consent code"), exact=True).fill(wrong)
    page.get_by_role("button", name=text(language, "File the application")).click()
    summary = page.locator(".error-summary")
    expect(summary.locator(f'a[href="#field-{LEFT_OUT}"]')).to_have_count(1)
    expect(summary.locator('a[href="#consent_code"]')).to_have_count(1)
    expect(page.locator("#consent_code-error-1")).to_be_visible()
    expect(page.locator(f"#field-{LEFT_OUT}-error-1")).to_be_visible()
    for spec in documents_needed(definition, answers):  # the scans are kept
        expect(page.locator(f"#document-{spec['code']}-uploaded")).to_be_visible()
    visit.check("counter-file")

    # Corrected, with the right code (a right code is not used up by problems).
    page.locator(f"#field-{LEFT_OUT}").fill(str(answers[LEFT_OUT]))
    page.get_by_label(text(language, "Consent code"), exact=True).fill(code)
    page.get_by_role("button", name=text(language, "File the application")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        text(language, "Acknowledgement of an application")
    )
    number = page.locator("#file-number").inner_text().strip()
    assert number.startswith("KL-EKM-KOC/")
    expect(page.locator("#filed-by")).to_contain_text(text(language, "Akshaya centre operator"))
    expect(page.locator("#track-url")).to_contain_text(f"/track?number={number}")
    if visit.javascript:  # the button is the script's; without it the page says how
        expect(page.locator("#print-button")).to_be_visible()
    else:
        expect(page.locator("#print-button")).to_be_hidden()
        expect(page.locator("#print-hint")).to_be_visible()
    page.emulate_media(media="print")
    expect(page.locator("header.header")).to_be_hidden()
    expect(page.locator("#file-number")).to_be_visible()
    page.emulate_media(media="screen")
    visit.check("acknowledgement")

    # The citizen, in a browser of their own, finds it in "Your files".
    own = browser.new_context(
        viewport=page.viewport_size, java_script_enabled=visit.javascript
    ).new_page()
    try:
        own.goto(f"{url}/")
        if language == "ml":
            own.get_by_role("link", name="മലയാളം").click()
        _sign_in(own, language, inbox, phone)
        expect(own.locator("#files")).to_contain_text(number)
    finally:
        own.context.close()
