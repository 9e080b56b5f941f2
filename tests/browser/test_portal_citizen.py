"""The rest of a citizen's journey in the browser, in English and
Malayalam, at 360 px and desktop width and once with JavaScript off, with
axe-core on every page: applying for a service with a fee (a chosen file
over its limit named at once, a conditional document shown for the answer
that needs it, and every problem at once before an office is chosen),
paying it on the test provider's page that make run's dev inbox serves
(as on a real provider's, whose callback tells the platform) and seeing it
paid; the office returning the file for a document, attached
and sent back in the portal; notifications listed, marked read, and how
the citizen is told changed."""

from __future__ import annotations

from pathlib import Path

import requests
from playwright.sync_api import expect

from ksmart_catalogue.samples import documents_needed, sample_form
from tests.browser.test_portal_files import _sign_in, text
from tests.support import actions, citizen
from tests.support.inbox import phone_number, sign_in_by_phone
from tests.support.waiting import wait_for

SERVICE = "residence-certificate"  # a fee of ₹10 (the catalogue's definition)
FEE = "₹10"
ASKED = "Attach the ward member's recommendation."


def _document(tmp_path: Path, code: str, size: int | None = None) -> Path:
    """A PDF for a document (padded to `size` bytes when given)."""
    content = citizen.SAMPLE_CONTENT["application/pdf"] + code.encode()
    made = tmp_path / f"{code}.pdf"
    made.write_bytes(content.ljust(size or len(content), b" "))
    return made


def _fill(page, definition: dict, answers: dict) -> None:
    """The form filled with the answers: choices first (they settle which
    other questions and documents apply), then the rest."""
    for spec in definition["fields"]:
        if spec["name"] in answers and spec["type"] in ("choice", "boolean"):
            value = answers[spec["name"]]
            chosen = ("yes" if value else "no") if isinstance(value, bool) else value
            page.locator(f'input[name="field-{spec["name"]}"][value="{chosen}"]').check()
    for spec in definition["fields"]:
        if spec["name"] in answers and spec["type"] not in ("choice", "boolean"):
            page.locator(f"#field-{spec['name']}").fill(str(answers[spec["name"]]))


def _scripts_check_sizes_and_conditions(page, definition: dict, tmp_path: Path) -> None:
    """uploads.js names a file over its limit at once; conditions.js shows
    a document only for the answer that needs it."""
    proof = definition["documents"][0]
    too_large = page.locator(f"#document-{proof['code']}-too-large")
    page.locator(f"#document-{proof['code']}").set_input_files(
        _document(tmp_path, proof["code"], proof["max_bytes"] + 1)
    )
    expect(too_large).to_be_visible()
    expect(page.locator(f"#document-{proof['code']}")).to_have_attribute("aria-invalid", "true")
    page.locator(f"#document-{proof['code']}").set_input_files(_document(tmp_path, "small"))
    expect(too_large).to_be_hidden()

    rent = page.locator("#document-rent_agreement")
    expect(rent).to_be_hidden()
    page.locator('input[name="field-house_ownership"][value="rented"]').check()
    expect(rent).to_be_visible()
    expect(page.locator("#document-owner_consent")).to_be_hidden()
    page.locator('input[name="field-house_ownership"][value="family"]').check()
    expect(rent).to_be_hidden()
    expect(page.locator("#document-owner_consent")).to_be_visible()


def _apply(visit, platform, tmp_path: Path) -> None:
    page, language = visit.page, visit.language
    page.goto(f"{visit.url}/services/{SERVICE}/apply")
    definition = citizen.definition_of(platform, SERVICE)
    if visit.javascript:
        _scripts_check_sizes_and_conditions(page, definition, tmp_path)
    visit.check()

    # No office chosen: that, and every other problem, at once.
    page.get_by_role("button", name=text(language, "Send application")).click()
    summary = page.locator(".error-summary")
    for field in ("local_body", "field-applicant_name", "field-ward_number", "field-phone"):
        expect(summary.locator(f'a[href="#{field}"]')).to_have_count(1)
    expect(summary.locator('a[href="#document-residence_proof"]')).to_have_count(1)

    answers = sample_form(definition)
    page.locator("#local_body").select_option(citizen.KOCHI)
    _fill(page, definition, answers)
    for spec in documents_needed(definition, answers):
        page.locator(f"#document-{spec['code']}").set_input_files(_document(tmp_path, spec["code"]))
    page.get_by_role("button", name=text(language, "Send application")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Application sent"))
    page.get_by_role("link", name=text(language, "See your application's file")).click()


def _pay(visit) -> None:
    """Paying as on a real provider: the Pay button goes to the provider's
    page (make run's test provider, served by the dev inbox), its Pay
    button sends the platform the signed callback and the citizen back."""
    page, language = visit.page, visit.language
    expect(page.locator("#fee-due")).to_have_text(FEE)
    page.get_by_role("button", name=text(language, "Pay %(amount)s") % {"amount": FEE}).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Pay {FEE}")
    expect(page.get_by_text("A test provider: no money moves.")).to_be_visible()
    visit.check()
    page.get_by_role("button", name="Pay", exact=True).click()
    state = page.locator("#payment-state")
    expect(state).to_contain_text(text(language, "Paid"))
    expect(state).to_contain_text(FEE)
    visit.check("pay")
    page.get_by_role("link", name=text(language, "See your application's file")).click()
    expect(page.locator("#fee-paid")).to_have_text(FEE)


def _answer_with_a_document(visit, platform, tmp_path: Path) -> None:
    page, language = visit.page, visit.language
    file_id = page.url.rsplit("/", 1)[1]
    actions.take(platform, "clerk.kochi", file_id, "return_for_clarification", remarks=ASKED)
    page.reload()
    expect(page.get_by_role("heading", name=text(language, "Answer the office"))).to_be_visible()
    expect(page.locator(".inset")).to_contain_text(ASKED)
    page.get_by_label(text(language, "Your answer"), exact=True).fill("The recommendation.")
    page.locator("#document-ward_member_recommendation").set_input_files(
        _document(tmp_path, "ward_member_recommendation")
    )
    visit.check("answer-clarification")
    page.get_by_role("button", name=text(language, "Send your answer")).click()
    expect(page.locator(".notice")).to_contain_text(
        text(language, "Your answer has been sent to the office.")
    )
    expect(page.locator("#timeline")).to_contain_text(text(language, "Document attached"))
    visit.check()


def _notifications(visit, platform, phone: str) -> None:
    page, language = visit.page, visit.language

    def notified() -> bool:
        feed = requests.get(
            f"{platform.base_url}/api/v1/notifications",
            headers=platform.as_user(phone),
            timeout=10,
        )
        return feed.json()["unread_count"] > 0

    wait_for(notified, timeout=30, message="the citizen's notifications")
    page.get_by_role("navigation", name=text(language, "Account")).get_by_role(
        "link", name=text(language, "Notifications")
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Notifications"))
    expect(page.locator("#notifications li").first).to_be_visible()
    visit.check("notifications")
    page.get_by_role("button", name=text(language, "Mark all as read")).click()
    expect(page.locator("#unread-count")).to_have_text(
        text(language, "You have no unread notifications.")
    )

    page.get_by_role("link", name=text(language, "Choose how we tell you")).click()
    other = "ml" if language == "en" else "en"
    page.locator(f"#language-{other}").check()
    page.locator("#informational-no").check()
    visit.check()
    page.get_by_role("button", name=text(language, "Save your choices")).click()
    expect(page.locator(".notice")).to_contain_text(text(language, "Your choices are saved."))
    preferences = requests.get(
        f"{platform.base_url}/api/v1/notification-preferences",
        headers=platform.as_user(phone),
        timeout=10,
    ).json()
    assert preferences["language"] == other and preferences["informational"] is False


def test_a_citizen_pays_answers_the_office_with_a_document_and_reads_notifications(
    visit, portal_platform, tmp_path
):
    _url, inbox, platform = portal_platform
    phone = phone_number()
    sign_in_by_phone(platform, inbox, phone)  # the API's session, for the checks beside the pages
    _sign_in(visit.page, visit.language, inbox, phone)
    _apply(visit, platform, tmp_path)
    _pay(visit)
    _answer_with_a_document(visit, platform, tmp_path)
    _notifications(visit, platform, phone)
