"""A signed-in citizen applies for a birth certificate in the browser, in
English and Malayalam on a 360 px phone and at desktop width, and with
JavaScript off, with axe-core on every page: the
form is built from the service's definition; an incomplete form shows
every problem at once, in a summary and beside each field, keeping what was
chosen; filled from the definition's examples with the documents attached,
it is filed, the confirmation gives the file number, and the file is in
"Your files"."""

from __future__ import annotations

from playwright.sync_api import expect

from ksmart_catalogue.samples import documents_needed, sample_form
from tests.browser.test_portal_files import _sign_in, text
from tests.support import citizen
from tests.support.inbox import phone_number

SERVICE = "birth-certificate"


def test_a_citizen_applies_sees_every_problem_at_once_then_files(visit, portal_platform, tmp_path):
    page, language = visit.page, visit.language
    _url, inbox, platform = portal_platform
    phone = phone_number()
    _sign_in(page, language, inbox, phone)

    page.goto(f"{visit.url}/services/{SERVICE}")
    page.get_by_role("link", name=text(language, "Apply now")).click()
    form = page.locator("form[enctype='multipart/form-data']")
    expect(form).to_be_visible()
    visit.check()

    # Incomplete: only the office chosen. Every problem at once.
    page.locator("#local_body").select_option(citizen.KOCHI)
    page.get_by_role("button", name=text(language, "Send application")).click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    for field in ("field-sex", "field-date_of_birth", "field-mother_name", "field-phone"):
        expect(summary.locator(f'a[href="#{field}"]')).to_have_count(1)
        expect(page.locator(f"#{field}-error-1")).to_be_visible()
    expect(summary.locator('a[href="#document-parent_identity_proof"]')).to_have_count(1)
    expect(page.locator("#local_body")).to_have_value(citizen.KOCHI)
    visit.check("apply-problems")

    definition = citizen.definition_of(platform, SERVICE)
    answers = sample_form(definition)
    for spec in definition["fields"]:  # choices first (sample_form's order): they settle the rest
        if spec["name"] not in answers:
            continue
        value = answers[spec["name"]]
        if spec["type"] in ("choice", "boolean"):
            chosen = ("yes" if value else "no") if isinstance(value, bool) else value
            page.locator(f'input[name="field-{spec["name"]}"][value="{chosen}"]').check()
    for spec in definition["fields"]:
        if spec["name"] in answers and spec["type"] not in ("choice", "boolean"):
            page.locator(f"#field-{spec['name']}").fill(str(answers[spec["name"]]))
    for spec in documents_needed(definition, answers):
        document = tmp_path / f"{spec['code']}.pdf"
        document.write_bytes(citizen.SAMPLE_CONTENT["application/pdf"] + spec["code"].encode())
        page.locator(f"#document-{spec['code']}").set_input_files(document)
    page.get_by_role("button", name=text(language, "Send application")).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Application sent"))
    number = page.locator("#file-number").inner_text().strip()
    assert number.startswith("KL-EKM-KOC/")
    visit.check("applied")

    page.locator("main").get_by_role("link", name=text(language, "Your files")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Your files"))
    expect(page.locator("#files")).to_contain_text(number)
