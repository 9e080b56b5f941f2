"""The auditor's and the administrator's journeys through the portal, in
English and Malayalam, on a 360 px phone and at desktop width (and once
with JavaScript off), with axe-core on every page.

The auditor opens a file made through the API by its number, reads that
its chain was verified, downloads the export and verifies it offline with
the ksmart-audit command the page names. The administrator creates an
official after a first try with every problem shown at once, changes their
role, disables the account, and the official can no longer sign in."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import requests
from playwright.sync_api import expect

from ksmart_portal.staff_pages import NOTICES
from tests.browser.test_portal_files import _applied, text

KSMART_AUDIT = Path(sys.executable).with_name("ksmart-audit")


def _staff_sign_in(page, language: str, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/staff/sign-in")
    page.get_by_label(text(language, "Username"), exact=True).fill(username)
    page.get_by_label(text(language, "Password"), exact=True).fill(password)
    page.get_by_role("button", name=text(language, "Sign in"), exact=True).click()


def test_the_auditor_opens_a_files_events_verified_and_downloads_the_export(
    visit, portal_platform, tmp_path
):
    page, language = visit.page, visit.language
    _url, inbox, platform = portal_platform
    _phone, file = _applied(platform, inbox)
    _staff_sign_in(page, language, visit.url, "auditor", platform.password)
    # An auditor's first page is the audit.
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Audit a file"))
    visit.check()

    page.get_by_label(text(language, "File number or ID")).fill("KL-EKM-KOC/BR/1999/999999")
    page.get_by_role("button", name=text(language, "Show its events")).click()
    expect(page.locator(".error-summary")).to_contain_text(
        text(language, "No file has this number. Check it and try again.")
    )
    visit.check()

    page.get_by_label(text(language, "File number or ID")).fill(file["file_number"])
    page.get_by_role("button", name=text(language, "Show its events")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Events of a file"))
    verdict = page.locator("#chain-verdict")
    expect(verdict).to_contain_text(text(language, "Chain verified"))
    expect(verdict).to_contain_text(
        text(language, "The platform's own check agrees that the chain verifies.")
    )
    expect(page.locator("#events")).to_contain_text("ApplicationSubmitted")
    visit.check("audit-file")

    with page.expect_download() as downloading:
        page.get_by_role("link", name=text(language, "Download the events (JSON lines)")).click()
    export = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(export)
    events = [json.loads(line) for line in export.read_text().splitlines()]
    assert [event["stream_version"] for event in events] == list(range(1, len(events) + 1))
    assert events[0]["stream_id"] == f"file-{file['file_id']}"
    # The command the page names verifies the download offline.
    command = page.locator("#verify-command").inner_text().split()
    assert command[:2] == ["ksmart-audit", "verify"] and command[-1] == export.name
    verified = subprocess.run(
        [str(KSMART_AUDIT), *command[1:], "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr


def test_the_administrator_creates_an_official_changes_their_role_and_disables_them(
    visit, portal_platform
):
    page, language = visit.page, visit.language
    _url, _inbox, platform = portal_platform
    _staff_sign_in(page, language, visit.url, "admin", platform.password)
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Staff"))
    expect(page.locator("#staff")).to_contain_text("clerk.kochi")
    visit.check("staff")

    page.get_by_role("link", name=text(language, "Add a staff member")).click()
    username_field = page.get_by_label(text(language, "Username"), exact=True)
    wards_field = page.get_by_label(text(language, "Wards (optional)"))
    # A first try wrong in every way the form can be: each problem at once.
    username_field.fill("X")
    wards_field.fill("three")
    page.get_by_role("button", name=text(language, "Create the account")).click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary.locator("li")).to_have_count(5)
    for field in ("username", "display_name", "roles", "local_body", "wards"):
        expect(page.locator(f"#{field}-error-1")).to_be_visible()
    expect(wards_field).to_have_value("three")
    visit.check()

    # Unique across the parametrized runs, which share one platform.
    username = f"clerk.{secrets.token_hex(4)}"
    username_field.fill(username)
    page.get_by_label(text(language, "Their full name")).fill("Anitha Menon")
    page.get_by_label(text(language, "Clerk"), exact=True).check()
    page.get_by_label(text(language, "Local body the official works in")).select_option(
        "KL-EKM-KOC"
    )
    wards_field.fill("")
    page.get_by_role("button", name=text(language, "Create the account")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Anitha Menon")
    expect(page.locator("#notice")).to_contain_text(text(language, NOTICES["created"]))
    password = page.locator("#first-password code").inner_text().strip()
    visit.check()
    page.reload()
    expect(page.locator("#first-password")).to_have_count(0)  # shown once

    page.get_by_label(text(language, "Clerk"), exact=True).uncheck()
    page.get_by_label(text(language, "Secretary"), exact=True).check()
    page.get_by_role("button", name=text(language, "Save roles and jurisdiction")).click()
    expect(page.locator("#notice")).to_contain_text(text(language, NOTICES["changed"]))
    expect(page.locator("#member")).to_contain_text(text(language, "Secretary"))
    token = requests.post(
        f"{platform.base_url}/api/v1/auth/token",
        json={"username": username, "password": password},
        timeout=10,
    )
    assert token.status_code == 200, "the first password works"
    me = requests.get(
        f"{platform.base_url}/api/v1/me",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    assert me.json()["roles"] == ["secretary"] and me.json()["local_body"] == "KL-EKM-KOC"

    page.get_by_role("button", name=text(language, "Disable the account")).click()
    expect(page.locator("#notice")).to_contain_text(text(language, NOTICES["disabled"]))
    expect(page.locator("#standing-now")).to_have_text(text(language, "Disabled: cannot sign in"))
    visit.check()

    page.goto(f"{visit.url}/account")
    page.get_by_role("button", name=text(language, "Sign out")).click()
    _staff_sign_in(page, language, visit.url, username, password)
    expect(page.locator("#password-error-1")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(text(language, "Sign in as staff"))
