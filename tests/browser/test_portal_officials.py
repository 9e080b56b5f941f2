"""An official's journey through the portal, in English and Malayalam, on a
360 px phone and at desktop width (and once with JavaScript off), with
axe-core on every page: a citizen's file made through the API is in the
clerk's inbox; its page shows the answers, a document opens inline, the
clerk returns it to the applicant with remarks; once the citizen has
answered, someone else verifies it between the clerk's reading and
deciding, and the clerk's stale decision is refused in words with the file
as it now is, nothing recorded twice."""

from __future__ import annotations

import secrets

import requests
from playwright.sync_api import expect

from tests.browser.test_portal_files import text
from tests.support import actions, citizen
from tests.support.inbox import phone_number, sign_in_by_phone
from tests.support.waiting import wait_for

# A service no other browser journey files, so the inbox's service filter
# leaves this journey's files only.
SERVICE = "residence-certificate"
CLERK = "clerk.kochi"


def _filed(platform, inbox) -> tuple[str, dict]:
    """A new citizen's phone and the file they made through the API, once
    the clerk's inbox has it."""
    phone = phone_number()
    sign_in_by_phone(platform, inbox, phone)
    body = citizen.application(platform, SERVICE, user=phone)
    reply = citizen.submit(platform, body, user=phone)
    assert reply.status_code == 201, reply.text
    file_id = reply.json()["file_id"]

    def in_the_inbox() -> bool:
        listed = requests.get(
            f"{platform.base_url}/api/v1/inbox",
            params={"service": SERVICE, "limit": 200},
            headers=platform.as_user(CLERK),
            timeout=10,
        )
        return file_id in {entry["file_id"] for entry in listed.json()["files"]}

    wait_for(in_the_inbox, timeout=30, message="the file in the clerk's inbox")
    return phone, reply.json()


def _another_clerk(platform) -> str:
    """A second clerk of Kochi (the demo has one), made by the administrator
    once a platform: the "someone" who acts first."""
    username = getattr(platform, "_second_clerk", None)
    if username is None:
        username = f"clerk2.kochi.{secrets.token_hex(3)}"
        made = requests.post(
            f"{platform.base_url}/api/v1/admin/staff",
            json={
                "username": username,
                "display_name": "Second clerk, Kochi Corporation",
                "kind": "official",
                "roles": ["clerk"],
                "local_body": citizen.KOCHI,
                "password": platform.password,
            },
            headers=platform.as_user("admin"),
            timeout=10,
        )
        assert made.status_code == 201, made.text
        platform._second_clerk = username
    return username


def _staff_sign_in(page, language: str, url: str, platform) -> None:
    page.goto(f"{url}/staff/sign-in")
    page.get_by_label(text(language, "Username"), exact=True).fill(CLERK)
    page.get_by_label(text(language, "Password"), exact=True).fill(platform.password)
    page.get_by_role("button", name=text(language, "Sign in"), exact=True).click()
    page.get_by_role("navigation", name=text(language, "Account")).get_by_role(
        "link", name=text(language, "Inbox")
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Inbox"))


def _find_in_inbox(page, language: str, name: str, number: str) -> None:
    page.get_by_label(text(language, "Service"), exact=True).select_option(label=name)
    page.get_by_role("button", name=text(language, "Show files")).click()
    expect(page.locator("#counts")).to_be_visible()
    link = page.get_by_role("link", name=number, exact=True)
    while not link.is_visible():  # on a later page when the inbox is long
        page.get_by_role("link", name=text(language, "Files due later")).click()
    expect(page.locator("#inbox")).to_contain_text(name)


def test_an_officials_inbox_a_files_page_a_return_and_a_stale_decision(visit, portal_platform):
    page, language = visit.page, visit.language
    url, inbox, platform = portal_platform
    phone, file = _filed(platform, inbox)
    definition = citizen.definition_of(platform, SERVICE)
    name = definition["name"][language]
    action = {spec["name"]: spec["label"][language] for spec in definition["workflow"]["actions"]}
    states = definition["workflow"]["states"].items()
    state = {code: spec["label"][language] for code, spec in states}

    _staff_sign_in(page, language, url, platform)
    _find_in_inbox(page, language, name, file["file_number"])
    visit.check("inbox", whole_page=True)

    page.get_by_role("link", name=file["file_number"], exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.locator("#file-state")).to_contain_text(state["submitted"])
    expect(page.locator("#timeline")).to_contain_text(text(language, "Application submitted"))
    visit.check("official-file", whole_page=True)

    document = page.locator("#documents a").first
    shown = page.context.request.get(f"{url}{document.get_attribute('href')}")
    assert shown.status == 200
    assert shown.headers["content-type"] in ("application/pdf", "image/jpeg", "image/png")
    assert shown.headers["content-disposition"].startswith("inline;")
    assert shown.headers["x-content-type-options"] == "nosniff"

    # The clerk asks the applicant something: remarks are needed for it.
    page.get_by_role("button", name=action["return_for_clarification"]).click()
    expect(page.locator("#remarks-error-1")).to_contain_text(
        text(language, "Write your remarks: this decision needs them.")
    )
    visit.check()
    page.get_by_label(text(language, "Remarks"), exact=True).fill("Attach a recent bill, please.")
    page.get_by_role("button", name=action["return_for_clarification"]).click()
    expect(page.locator("#notice")).to_contain_text(action["return_for_clarification"])
    expect(page.locator("#file-state")).to_contain_text(state["clarification_requested"])
    expect(page.get_by_role("button", name=action["verify"])).to_have_count(0)

    # The citizen answers; the clerk reads the file again, and before the
    # clerk decides, someone else verifies it.
    actions.take(platform, phone, file["file_id"], "resubmit", remarks="Attached.")
    page.reload()
    expect(page.get_by_role("button", name=action["verify"])).to_be_visible()
    actions.take(platform, _another_clerk(platform), file["file_id"], "verify")
    page.get_by_label(text(language, "Remarks"), exact=True).fill("All in order.")
    page.get_by_role("button", name=action["verify"]).click()
    expect(page.locator(".error-summary")).to_contain_text(
        text(
            language,
            "Someone acted on this file first. Here it is as it is now. "
            "Your decision was not recorded: read the file again, "
            "then decide if you still need to.",
        )
    )
    expect(page.locator("#stale")).to_contain_text(state["verified"])
    expect(page.locator("#unsent-remarks")).to_have_text("All in order.")
    visit.check()

    now = requests.get(
        f"{platform.base_url}/api/v1/files/{file['file_id']}",
        headers=platform.as_user(CLERK),
        timeout=10,
    ).json()
    verifications = [entry for entry in now["timeline"] if entry["action"] == "verify"]
    assert len(verifications) == 1, "the stale decision recorded nothing"
