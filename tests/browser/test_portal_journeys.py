"""A person's first journeys through the portal, in English and Malayalam,
on a 360 px phone and at desktop width, with axe-core on every page:
finding a service and reading its checklist, signing in with a code sent
to a phone and signing out, checking an unknown certificate, and a
language choice that is remembered."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from ksmart_portal import i18n
from ksmart_portal.security import SESSION_COOKIE
from tests.support.inbox import CODE, phone_number
from tests.support.waiting import wait_for

CATALOGUES = i18n.load_catalogues()


def text(language: str, message: str) -> str:
    return CATALOGUES[language].gettext(message)


def test_find_a_service_and_read_its_whole_checklist(visit):
    page, language = visit.page, visit.language
    expect(page.locator("html")).to_have_attribute("lang", language)
    visit.check("home")
    page.get_by_role("link", name=text(language, "Find a service")).first.click()
    page.get_by_label(text(language, "What do you need?")).fill(
        "birth" if language == "en" else "ജനന"
    )
    page.get_by_label(text(language, "Kind of local body")).select_option("municipality")
    page.get_by_role("button", name=text(language, "Search")).click()
    name = (
        "Birth registration and certificate" if language == "en" else "ജനന രജിസ്ട്രേഷനും സർട്ടിഫിക്കറ്റും"
    )
    visit.check("find-a-service")
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    for heading in ("Who may apply", "What you will be asked", "Documents to upload", "Fees"):
        expect(page.get_by_role("heading", name=text(language, heading))).to_be_visible()
    expect(page.get_by_text("PDF, JPEG, PNG").first).to_be_visible()
    visit.check("service-checklist")


def test_sign_in_with_a_code_sent_to_a_phone_and_sign_out(visit, portal_platform):
    page, language = visit.page, visit.language
    inbox = portal_platform[1]
    phone = phone_number()
    page.get_by_role("link", name=text(language, "Sign in"), exact=True).click()
    page.get_by_label(text(language, "Mobile number or email address")).fill("12")
    page.get_by_role("button", name=text(language, "Send me a code")).click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text(text(language, "There is a problem"))
    expect(page.locator("#contact-error-1")).to_be_visible()
    visit.check("sign-in-problem")
    page.get_by_label(text(language, "Mobile number or email address")).fill(phone)
    page.get_by_role("button", name=text(language, "Send me a code")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Enter your code"))
    visit.check("enter-code")
    message = wait_for(lambda: inbox.sms.messages(phone), timeout=30, message="the code")[-1]
    page.get_by_label(text(language, "Code"), exact=True).fill(
        CODE.search(message["text"]).group(1)
    )
    page.get_by_role("button", name=text(language, "Sign in")).click()
    # A citizen's first page is their files; the account is one link away.
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Your files"))
    page.get_by_role("navigation", name=text(language, "Account")).get_by_role(
        "link", name=text(language, "Your account")
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Your account"))
    visit.check("account")
    session = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == "", "no cookie a script can read"
    assert not re.search(r"eyJ[\w-]+\.", page.content()), "a token in the page"
    assert (
        page.evaluate("Object.keys(localStorage).length + Object.keys(sessionStorage).length") == 0
    )
    page.get_by_role("button", name=text(language, "Sign out")).click()
    expect(page.get_by_role("status")).to_contain_text(text(language, "You have signed out."))
    page.goto(f"{visit.url}/account")
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Sign in"))


def test_an_unknown_certificate_number_gets_a_clear_answer(visit):
    page, language = visit.page, visit.language
    page.get_by_role("link", name=text(language, "Check a certificate")).click()
    page.get_by_label(text(language, "Certificate number"), exact=True).fill(
        "KL-EKM-KOC/BR/2026/999999"
    )
    page.get_by_role("button", name=text(language, "Check the number")).click()
    expect(page.locator("#verdict")).to_contain_text(
        text(language, "No certificate has this number")
    )
    visit.check("certificate-check")


def test_the_language_chosen_is_remembered_and_sets_lang(visit):
    page, language = visit.page, visit.language
    other = "en" if language == "ml" else "ml"
    page.get_by_role("link", name=i18n.LANGUAGE_NAMES[other]).click()
    expect(page.locator("html")).to_have_attribute("lang", other)
    page.goto(f"{visit.url}/services")
    expect(page.locator("html")).to_have_attribute("lang", other)
    expect(page.get_by_role("heading", level=1)).to_have_text(text(other, "Find a service"))
    switch = page.get_by_role("navigation", name=text(other, "Language"))
    expect(switch.locator(f'a[lang="{language}"]')).to_have_attribute("hreflang", language)
