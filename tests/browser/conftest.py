"""The portal in a real headless Chromium (Debian's `chromium`, driven by
Playwright for Python; `playwright install` is never called) against the
whole platform as real processes, with the dev inbox as the citizens'
phones. Installs Chromium and a Malayalam font with apt when they are
missing and this runs as root; otherwise says how."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import sync_playwright

from tests.support.portal import portal_over_platform

CHROMIUM = "/usr/bin/chromium"
PACKAGES = ("chromium", "fonts-smc-manjari")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SERIOUS = {"serious", "critical"}


def _missing() -> list[str]:
    missing = [] if Path(CHROMIUM).exists() else ["chromium"]
    fonts = subprocess.run(["fc-list", ":lang=ml"], capture_output=True, text=True)
    if "Manjari" not in fonts.stdout:
        missing.append("fonts-smc-manjari")
    return missing


@pytest.fixture(scope="session")
def browser_installed() -> None:
    if not _missing():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            "the browser tests need Debian's Chromium and a Malayalam font: "
            f"apt-get install -y {' '.join(PACKAGES)}"
        )
    subprocess.run(["apt-get", "update"], check=True, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", *PACKAGES],
        check=True,
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    assert _missing() == [], "apt-get installed them, yet they are missing"


@pytest.fixture(scope="session")
def portal_platform(tmp_path_factory, browser_installed):
    """(the portal's URL, the dev inbox, the platform)."""
    with portal_over_platform(tmp_path_factory.mktemp("portal")) as served:
        yield served


@pytest.fixture(scope="session")
def browser(browser_installed):
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def axe() -> Axe:
    return Axe()


class Visit:
    """A browser page at one width, that checks accessibility on each page."""

    def __init__(
        self, page, axe: Axe, url: str, width: int, language: str, javascript: bool = True
    ) -> None:
        self.page, self.axe, self.url = page, axe, url
        self.width, self.language, self.javascript = width, language, javascript

    def check(self, screenshot: str | None = None, whole_page: bool = False) -> None:
        """axe-core on the page and, at 360 px, its screenshot (of the first
        screen, or of the whole page when what matters is further down).
        Both need the page's JavaScript (axe runs in the page): a visit with
        JavaScript off checks that the journey works, and the same pages
        are checked and pictured on the visits with it on."""
        if not self.javascript:
            return
        self._accessible()
        if screenshot and self.width == 360:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(
                path=SCREENSHOTS / f"{screenshot}-{self.language}-360.png", full_page=whole_page
            )

    def _accessible(self) -> None:
        results = self.axe.run(self.page)
        serious = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in results.response["violations"]
            if v["impact"] in SERIOUS
        ]
        assert serious == [], f"{self.page.url}: {serious}"


# Each journey in both languages, on a phone and a desk; and once more with
# JavaScript off, as every page must work without it.
VISITS = [("en", 360), ("ml", 360), ("en", 1280), ("ml", 1280), ("en", 360, "no-js")]


@pytest.fixture(params=VISITS, ids=str)
def visit(request, browser, axe, portal_platform):
    language, width, *how = request.param
    javascript = "no-js" not in how
    url = portal_platform[0]
    context = browser.new_context(
        viewport={"width": width, "height": 800}, java_script_enabled=javascript
    )
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto(f"{url}/")
    if language == "ml":
        page.get_by_role("link", name="മലയാളം").click()
    yield Visit(page, axe, url, width, language, javascript)
    context.close()
