"""The portal: what its pages add to the API calls they make, at 20
concurrent users, and what each page weighs.

The reference, measured side by side in the same run: for each page, the
same gateway calls the page makes, made directly by the same user right
after the page, one after another as the portal makes them, as a plain API
client would (with keep-alive, without a cache). A page's added time is its
time less its reference's, at the median and at p99 (the difference of
the two percentiles). The portal runs as `make run` and its container run
it (gunicorn, ksmart_ops.devserver), with its HTTP cache of the gateway's
public answers warm, as it is after the first few pages.

A page's weight is its HTML with the stylesheets and scripts it loads, as
sent (no fonts, no images), against the issue's target of 100 KB.

The load is a pool of threads with requests, one thread a user, each
signed in to the portal beforehand with the code the dev inbox received
and holding a token of its own for the reference. Not locust: each sample
is a pair (a page, then its calls made directly) timed by the same user at
the same moment, a page's reference is several requests timed as one, the
sign-in reads codes from the inbox in this process, and the figures are
exact milliseconds, where locust rounds to two significant figures.
"""

from __future__ import annotations

import os
import resource
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import requests

from bench.core import Progress, Ratio, Section, Settings

# The house's helpers for percentiles and for a process's CPU time.
from bench.e2e import _cpu_seconds, _pids_running, percentile, rounded
from tests.support import actions, citizen
from tests.support.inbox import phone_number, sign_in_by_phone
from tests.support.portal import portal_over_platform, sign_in_to_portal
from tests.support.waiting import wait_for

USERS = 20
TARGET_BYTES = 100_000  # a page, without fonts and images (issue 17)
SERVICE_CODE = "birth-certificate"
SEARCH = "birth"
LANGUAGE = "en"
REQUEST_TIMEOUT = 30


@dataclass(frozen=True)
class Call:
    """One gateway call a page makes."""

    path: str
    params: dict[str, str] | None = None
    as_user: bool = False


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    calls: tuple[Call, ...]


@dataclass
class Citizen:
    phone: str
    token: str
    file_id: str
    file_number: str
    portal: requests.Session = field(default_factory=requests.Session)
    gateway: requests.Session = field(default_factory=requests.Session)


def pages_of(person: Citizen, certificate_number: str) -> list[Page]:
    """Each page a citizen reads, with the gateway calls the portal makes
    for it with a cold cache (ksmart_portal.public_pages and citizen_pages;
    tests/unit/test_portal_cache.py checks that they still are)."""
    service = Call(f"/services/{SERVICE_CODE}")
    categories = Call("/categories")
    office = Call(f"/local-bodies/{citizen.KOCHI}")
    return [
        Page("home", "/", ()),
        Page(
            f"find a service ('{SEARCH}')",
            f"/services?q={SEARCH}",
            (categories, Call("/services", {"q": SEARCH})),
        ),
        Page("a service's checklist", f"/services/{SERVICE_CODE}", (service, categories)),
        Page("the apply form", f"/services/{SERVICE_CODE}/apply", (service, Call("/local-bodies"))),
        Page("Your files", "/files", (Call("/files", {"limit": "20"}, as_user=True), service)),
        Page(
            "a file's page",
            f"/files/{person.file_id}",
            (Call(f"/files/{person.file_id}", as_user=True), service),
        ),
        Page(
            "track by number",
            f"/track?number={quote(person.file_number, safe='')}",
            (
                Call(f"/track/{quote(person.file_number, safe='/')}"),
                service,
                office,
            ),
        ),
        Page(
            "certificate check",
            f"/certificates?number={quote(certificate_number, safe='')}",
            (Call(f"/certificates/{quote(certificate_number, safe='/')}"), office),
        ),
    ]


# -- the citizens ------------------------------------------------------------------


def prepare_citizen(platform, inbox, portal_url: str) -> Citizen:
    """A citizen with a file of their own, signed in twice by a code sent
    to their phone: to the gateway (the reference's token) and to the portal."""
    phone = phone_number()
    token = sign_in_by_phone(platform, inbox, phone)
    portal = requests.Session()
    # Before filing: the acknowledgement SMS holds a six-digit run too.
    sign_in_to_portal(portal, portal_url, inbox, phone)
    filed = citizen.submit(
        platform, citizen.application(platform, SERVICE_CODE, user=phone), user=phone
    )
    assert filed.status_code == 201, filed.text
    person = Citizen(phone, token, filed.json()["file_id"], filed.json()["file_number"], portal)
    # The workflow's projection answers the file's pages and tracking.
    wait_for(
        lambda: (
            person.gateway.get(
                f"{platform.base_url}/api/v1/track/{person.file_number}", timeout=REQUEST_TIMEOUT
            ).ok
        ),
        timeout=30,
        message="the file to be tracked",
    )
    return person


def prepare_citizens(platform, inbox, portal_url: str, count: int) -> list[Citizen]:
    # A few at a time: each signs in twice and uploads documents.
    with ThreadPoolExecutor(max_workers=5) as pool:
        return list(pool.map(lambda _: prepare_citizen(platform, inbox, portal_url), range(count)))


def certificate_of(platform, person: Citizen) -> str:
    """The citizen's file granted by the office; its certificate's number."""
    actions.take(platform, "clerk.kochi", person.file_id, "verify")
    granted = actions.take(platform, "secretary.kochi", person.file_id, "approve")
    return granted["file_number"]


# -- timing ---------------------------------------------------------------------


@dataclass
class Samples:
    page_ms: list[float] = field(default_factory=list)
    calls_ms: list[float] = field(default_factory=list)
    failures: int = 0

    def at(self, which: str, fraction: float) -> float | None:
        return rounded(percentile(getattr(self, which), fraction))

    def added(self, fraction: float) -> float | None:
        page, calls = percentile(self.page_ms, fraction), percentile(self.calls_ms, fraction)
        return None if page is None or calls is None else round(page - calls, 1)


def _ok(session: requests.Session, url: str, **arguments: Any) -> bool:
    try:
        return session.get(url, timeout=REQUEST_TIMEOUT, **arguments).status_code == 200
    except requests.RequestException:
        return False


def _timed(attempt, *arguments: Any) -> float | None:
    """Milliseconds attempt(*arguments) took, None when it failed."""
    started = time.perf_counter()
    succeeded = attempt(*arguments)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return elapsed_ms if succeeded else None


def _view(person: Citizen, portal_url: str, page: Page) -> bool:
    return _ok(person.portal, f"{portal_url}{page.path}")


def _direct(person: Citizen, gateway_url: str, page: Page) -> bool:
    for call in page.calls:
        headers = {"Accept-Language": LANGUAGE, "Accept": "application/json"}
        if call.as_user:
            headers["Authorization"] = f"Bearer {person.token}"
        if not _ok(
            person.gateway, f"{gateway_url}/api/v1{call.path}", params=call.params, headers=headers
        ):
            return False
    return True


def measure(
    people: list[tuple[Citizen, list[Page]]], portal_url: str, gateway_url: str, seconds: float
) -> dict[str, Samples]:
    """Each user in a thread of their own, reading page after page (each
    starting at a different page), each page followed by its reference,
    until `seconds` have passed."""
    samples = {page.name: Samples() for page in people[0][1]}
    lock = threading.Lock()
    until = time.monotonic() + seconds

    def user(index: int, person: Citizen, pages: list[Page]) -> None:
        turn = index
        while time.monotonic() < until:
            page = pages[turn % len(pages)]
            turn += 1
            page_ms = _timed(_view, person, portal_url, page)
            calls_ms = _timed(_direct, person, gateway_url, page)
            with lock:
                if page_ms is None or calls_ms is None:
                    samples[page.name].failures += 1
                else:
                    samples[page.name].page_ms.append(page_ms)
                    samples[page.name].calls_ms.append(calls_ms)

    threads = [
        threading.Thread(target=user, args=(index, person, pages), name=f"user-{index}")
        for index, (person, pages) in enumerate(people)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return samples


# -- weight -----------------------------------------------------------------------


class _Assets(HTMLParser):
    """The stylesheets and scripts a page loads (not its images or fonts)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "link" and "stylesheet" in (attributes.get("rel") or "").split():
            self.found.append(attributes.get("href") or "")
        elif tag == "script" and attributes.get("src"):
            self.found.append(attributes["src"] or "")


def weigh(person: Citizen, portal_url: str, page: Page) -> tuple[int, int]:
    """(the HTML's bytes, its stylesheets' and scripts' bytes), as sent."""
    html = person.portal.get(f"{portal_url}{page.path}", timeout=REQUEST_TIMEOUT)
    html.raise_for_status()
    assets = _Assets()
    assets.feed(html.text)
    loaded = 0
    for href in dict.fromkeys(href for href in assets.found if href):
        asset = person.portal.get(
            urljoin(f"{portal_url}{page.path}", href), timeout=REQUEST_TIMEOUT
        )
        asset.raise_for_status()
        loaded += len(asset.content)
    return len(html.content), loaded


# -- the section --------------------------------------------------------------------


@dataclass
class Measured:
    loaded: dict[str, Samples]
    alone: dict[str, Samples]
    weights: dict[str, tuple[int, int]]
    seconds: float
    portal_cpu_ms_per_view: float
    bench_cpu_share: float


def run(settings: Settings, progress: Progress) -> Section:
    seconds = settings.pick(60.0, 10.0)
    alone_seconds = settings.pick(15.0, 3.0)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ksmart-bench-portal-") as tmp:
        progress("portal: starting the platform and the portal (fresh databases and vhost)")
        with portal_over_platform(Path(tmp)) as (portal_url, inbox, platform):
            progress(f"portal: {USERS} citizens sign in by code and file an application each")
            citizens = prepare_citizens(platform, inbox, portal_url, USERS)
            certificate_number = certificate_of(platform, citizens[0])
            people = [(person, pages_of(person, certificate_number)) for person in citizens]
            progress("portal: every page once per user (the portal's cache filled), and weighed")
            for person, pages in people:
                for page in pages:
                    _view(person, portal_url, page)
            weights = {page.name: weigh(citizens[0], portal_url, page) for page in people[0][1]}
            progress(f"portal: 1 user for {alone_seconds:.0f} s")
            alone = measure(people[:1], portal_url, platform.base_url, alone_seconds)
            progress(f"portal: {USERS} users for {seconds:.0f} s")
            portal_pids = _pids_running("ksmart_portal.wsgi")
            portal_cpu, bench_cpu = _cpu_seconds(portal_pids), _own_cpu_seconds()
            started = time.monotonic()
            loaded = measure(people, portal_url, platform.base_url, seconds)
            elapsed = time.monotonic() - started
            views = sum(len(samples.page_ms) for samples in loaded.values())
            measured = Measured(
                loaded,
                alone,
                weights,
                seconds,
                (_cpu_seconds(portal_pids) - portal_cpu) * 1000 / max(views, 1),
                (_own_cpu_seconds() - bench_cpu) / elapsed,
            )
            progress("portal: stopping")
    return _section(settings, measured, load_before)


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _kb(size: int) -> float:
    return round(size / 1000, 1)


def _section(settings: Settings, measured: Measured, load_before: float) -> Section:
    rows: list[list[Any]] = []
    for name, samples in measured.loaded.items():
        html, assets = measured.weights[name]
        rows.append(
            [
                name,
                len(samples.page_ms),
                samples.failures,
                samples.at("page_ms", 0.50),
                samples.at("page_ms", 0.99),
                samples.at("calls_ms", 0.50),
                samples.at("calls_ms", 0.99),
                samples.added(0.50),
                samples.added(0.99),
                measured.alone[name].added(0.50),
                _kb(html),
                _kb(assets),
                _kb(html + assets),
            ]
        )
    heaviest = max(sum(weight) for weight in measured.weights.values())
    views = sum(len(samples.page_ms) for samples in measured.loaded.values())
    notes = [
        f"{USERS} users for {measured.seconds:.0f} s of closed-loop load ({views} page views, "
        f"{views / measured.seconds:.0f} a second), each user reading the pages in turn, each "
        "page followed at once by its reference: the same gateway calls made directly, one "
        "after another, by the same user with a token of their own. Added time is the page's "
        "percentile less its reference's. Signed-in pages (the apply form, Your files, a "
        "file's page) are read by citizens signed in beforehand with the code the dev inbox "
        "received; each reads their own file, tracks it by its number, and checks one granted "
        "certificate.",
        "The portal runs as in its container: gunicorn with 2 workers of 8 threads, so a "
        "page waiting on the gateway does not hold up the others; the '1 user' column is "
        "what a page adds on an idle portal. A negative figure is a page faster than its "
        "reference, its public answers served from the portal's cache. Portal CPU per "
        f"page view at {USERS} users: {measured.portal_cpu_ms_per_view:.1f} ms.",
        "The portal keeps the gateway's public answers (a service's definition, the "
        "categories, a search, the local-body directory) in its HTTP cache "
        "(ksmart_portal.http_cache), so pages built from them may make fewer calls than their "
        "reference; the cache was warm before the window opened.",
        f"Weight: the HTML and every stylesheet and script the page loads, uncompressed as "
        f"gunicorn sends them, without fonts and images; KB is 1,000 bytes. Target: under "
        f"{TARGET_BYTES // 1000} KB a page.",
        f"The load generator (this process, {USERS} threads with requests) used "
        f"{measured.bench_cpu_share:.0%} of one core, on the same {os.cpu_count()} cores as the "
        f"platform, PostgreSQL, RabbitMQ and the portal. Load average (1 min) before the run: "
        f"{load_before:.1f}.",
    ]
    failures = sum(samples.failures for samples in measured.loaded.values())
    if failures:
        notes.append(f"{failures} page views or references failed (not counted in the times).")
    if settings.quick:
        notes.append("Quick mode: a short window; a smoke run, not a measurement.")
    return Section(
        key="portal",
        title=f"The portal: each page's time over its API calls at {USERS} users, and its weight",
        columns=[
            "page",
            "views",
            "failures",
            "page p50 ms",
            "page p99 ms",
            "its API calls p50 ms",
            "its API calls p99 ms",
            "added p50 ms",
            "added p99 ms",
            "added p50 ms, 1 user",
            "HTML KB",
            "CSS+JS KB",
            "page KB",
        ],
        rows=rows,
        ratios=[
            Ratio(
                f"heaviest portal page (HTML+CSS+JS) vs {TARGET_BYTES // 1000} KB",
                ours=_kb(heaviest),
                reference=TARGET_BYTES / 1000,
                target=1.0,
                unit="KB",
                higher_is_better=False,
            )
        ],
        notes=notes,
    )
