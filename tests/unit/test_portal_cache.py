"""The portal's HTTP cache: anonymous public answers of the gateway kept in
the process, fresh within their max-age and revalidated with If-None-Match
after; nothing asked with a token, nothing private. The gateway is faked at
the HTTP boundary (tests.unit.test_portal's FakeGateway) and counted; time
is a clock the test moves, never a sleep."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests

from ksmart_portal import create_app
from ksmart_portal.gateway import Gateway
from ksmart_portal.http_cache import HttpCache, shared_lifetime
from ksmart_portal.settings import Settings
from tests.unit.test_portal import (
    DEFINITION,
    FILE_ID,
    LISTED,
    NUMBER,
    FakeGateway,
    _file,
    signed_in,
)

GATEWAY_URL = "http://gateway.invalid"
PUBLIC = "public, max-age=300"
CATEGORIES = {"categories": [{"code": "civil-registration", "name": {"en": "Births"}}]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TaggingGateway(FakeGateway):
    """The fake gateway, answering as caching.py does: each path's
    Cache-Control and an ETag, and 304 to an If-None-Match that matches."""

    def __init__(self, routes, cache_control: dict[str, str], etag: str = '"v1"') -> None:
        super().__init__(routes)
        self.cache_control = cache_control
        self.etag = etag

    def send(self, request, **kwargs):
        path = request.path_url.split("?")[0].removeprefix("/api/v1")
        if request.headers.get("If-None-Match") == self.etag:
            self.sent.append(request)
            response = requests.Response()
            response.status_code = 304
            response._content = b""
        else:
            response = super().send(request, **kwargs)
        response.headers["ETag"] = self.etag
        if path in self.cache_control:
            response.headers["Cache-Control"] = self.cache_control[path]
        return response

    def reached(self, path: str) -> list[requests.PreparedRequest]:
        return [sent for sent in self.sent if sent.path_url.startswith(f"/api/v1{path}")]


def gateway_over(fake: FakeGateway, clock: Clock, max_entries: int = 64) -> Gateway:
    def session() -> requests.Session:
        made = requests.Session()
        made.mount(GATEWAY_URL, fake)
        return made

    return Gateway(GATEWAY_URL, session_factory=session, cache=HttpCache(max_entries, clock))


def catalogue(cache_control: str = PUBLIC) -> TaggingGateway:
    return TaggingGateway(
        {
            ("GET", "/services/birth-certificate"): (200, DEFINITION),
            ("GET", "/categories"): (200, CATEGORIES),
            ("GET", "/services"): (200, {"services": [DEFINITION]}),
        },
        {"/services/birth-certificate": cache_control, "/categories": cache_control},
    )


# -- what may be kept, and for how long ------------------------------------------


@pytest.mark.parametrize(
    "cache_control, lifetime",
    [
        ("public, max-age=300", 300.0),
        ("public, max-age=31536000, immutable", 31536000.0),
        ("Public, S-MaxAge=10, max-age=300", 10.0),
        ("private, max-age=3600", None),
        ("private, no-store", None),
        ("public, no-store, max-age=60", None),
        ("public, no-cache, max-age=60", None),
        ("max-age=60", None),
        ("public", None),
        ("public, max-age=0", None),
        ("public, max-age=soon", None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_public_answer_with_a_lifetime_may_be_kept(cache_control, lifetime):
    assert shared_lifetime(cache_control) == lifetime


def test_an_answer_is_fresh_for_its_lifetime_on_the_caches_clock():
    clock = Clock()
    cache = HttpCache(clock=clock)
    kept = cache.put(("/categories", "en"), b"{}", '"v1"', 300)
    clock.now += 299.9
    assert cache.is_fresh(kept)
    clock.now += 0.1
    assert not cache.is_fresh(kept)
    assert cache.get(("/categories", "en")) == kept, "a stale answer is kept for revalidation"


def test_the_cache_holds_at_most_its_bound_dropping_the_least_recently_used():
    cache = HttpCache(max_entries=2, clock=Clock())
    cache.put(("a", "en"), b"{}", None, 60)
    cache.put(("b", "en"), b"{}", None, 60)
    cache.get(("a", "en"))  # now b is the least recently used
    cache.put(("c", "en"), b"{}", None, 60)
    assert len(cache) == 2
    assert cache.get(("b", "en")) is None
    assert cache.get(("a", "en")) is not None and cache.get(("c", "en")) is not None
    with pytest.raises(ValueError):
        HttpCache(max_entries=0)


# -- the gateway client through the cache -----------------------------------------


def test_a_fresh_answer_is_served_without_asking_the_gateway():
    fake = catalogue()
    gateway = gateway_over(fake, Clock())
    first = gateway.call("GET", "/services/birth-certificate", language="en")
    again = gateway.call("GET", "/services/birth-certificate", language="en")
    assert first == again and again.body == DEFINITION
    assert len(fake.reached("/services/birth-certificate")) == 1


def test_a_stale_answer_is_asked_for_with_its_etag_and_a_304_serves_it_fresh_again():
    fake, clock = catalogue(), Clock()
    gateway = gateway_over(fake, clock)
    gateway.call("GET", "/categories", language="en")
    clock.now += 301
    revalidated = gateway.call("GET", "/categories", language="en")
    asked = fake.reached("/categories")
    assert len(asked) == 2 and asked[-1].headers["If-None-Match"] == '"v1"'
    assert revalidated.status == 200 and revalidated.body == CATEGORIES
    clock.now += 299
    gateway.call("GET", "/categories", language="en")
    assert len(fake.reached("/categories")) == 2, "the 304 renewed the answer's lifetime"


def test_a_changed_answer_replaces_the_kept_one():
    fake, clock = catalogue(), Clock()
    gateway = gateway_over(fake, clock)
    gateway.call("GET", "/services/birth-certificate", language="en")
    fake.etag = '"v2"'
    fake.routes[("GET", "/services/birth-certificate")] = (200, {**DEFINITION, "version": 2})
    clock.now += 301
    assert gateway.call("GET", "/services/birth-certificate", language="en").body["version"] == 2
    assert gateway.call("GET", "/services/birth-certificate", language="en").body["version"] == 2
    assert len(fake.reached("/services/birth-certificate")) == 2


@pytest.mark.parametrize("cache_control", ["private, max-age=3600", "private, no-store", ""])
def test_an_answer_not_marked_public_is_always_fetched(cache_control):
    fake = catalogue(cache_control)
    gateway = gateway_over(fake, Clock())
    for _ in range(3):
        gateway.call("GET", "/categories", language="en")
    assert len(fake.reached("/categories")) == 3
    assert "If-None-Match" not in fake.sent[-1].headers
    assert len(gateway.cache) == 0


def test_a_call_with_a_token_is_never_cached_nor_served_from_the_cache():
    fake = catalogue()
    gateway = gateway_over(fake, Clock())
    for _ in range(2):
        gateway.call("GET", "/categories", language="en", token="access-1")
    assert len(gateway.cache) == 0
    gateway.call("GET", "/categories", language="en")  # now kept, anonymously
    gateway.call("GET", "/categories", language="en", token="access-1")
    sent = fake.reached("/categories")
    assert len(sent) == 4 and sent[-1].headers["Authorization"] == "Bearer access-1"
    assert "If-None-Match" not in sent[-1].headers


def test_only_gets_are_cached_and_an_error_is_not():
    fake = catalogue()
    fake.routes[("GET", "/services/unknown")] = (404, {"title": "Not found"})
    fake.cache_control["/services/unknown"] = PUBLIC
    gateway = gateway_over(fake, Clock())
    for _ in range(2):
        assert gateway.call("GET", "/services/unknown", language="en").status == 404
        gateway.call("POST", "/categories", language="en", json={})
    assert len(fake.reached("/services/unknown")) == 2
    assert len([sent for sent in fake.sent if sent.method == "POST"]) == 2


def test_the_key_holds_the_language_and_the_query():
    fake = catalogue()
    gateway = gateway_over(fake, Clock())
    for language in ("en", "ml", "en"):
        gateway.call("GET", "/categories", language=language)
    assert [sent.headers["Accept-Language"] for sent in fake.reached("/categories")] == ["en", "ml"]
    fake.cache_control["/services"] = PUBLIC
    searches = [{"q": "birth"}, {"q": "death"}, {"q": "birth"}]
    for params in searches:
        gateway.call("GET", "/services", language="en", params=params)
    assert len(fake.reached("/services?")) == 2


def test_each_caller_gets_its_own_copy_of_a_kept_answer():
    gateway = gateway_over(catalogue(), Clock())
    gateway.call("GET", "/categories", language="en").body["categories"].clear()
    assert gateway.call("GET", "/categories", language="en").body == CATEGORIES


def test_a_bounded_cache_asks_again_for_what_it_dropped():
    fake = catalogue()
    fake.cache_control["/services"] = PUBLIC
    gateway = gateway_over(fake, Clock(), max_entries=2)
    for query in ("a", "b", "c", "a"):
        gateway.call("GET", "/services", language="en", params={"q": query})
    assert len(gateway.cache) == 2
    assert len(fake.reached("/services?")) == 4


# -- the pages ------------------------------------------------------------------


def test_a_services_checklist_read_again_costs_the_gateway_nothing():
    fake = catalogue()
    settings = Settings(gateway_url=GATEWAY_URL, secret_key="k" * 64, development=True)
    client = create_app(settings, gateway_over(fake, Clock())).test_client()
    for _ in range(3):
        page = client.get("/services/birth-certificate")
        assert page.status_code == 200
        assert DEFINITION["name"]["en"] in page.data.decode()
    assert len(fake.reached("/services/birth-certificate")) == 1
    assert len(fake.reached("/categories")) == 1


def test_the_benchmarks_reference_makes_the_calls_each_page_makes():
    """bench/portal.py times each page against its gateway calls made
    directly: they must be the calls the page makes (with a cold cache)."""
    from bench.portal import Citizen, pages_of

    office = {"code": "KL-EKM-KOC", "type": "corporation", "name": {"en": "Kochi Corporation"}}
    verdict = {
        "found": True,
        "valid": True,
        "problems": [],
        "certificate": {"local_body": "KL-EKM-KOC"},
    }
    client, fake = signed_in(
        {
            ("GET", "/categories"): (200, CATEGORIES),
            ("GET", "/services"): (200, {"services": []}),
            ("GET", "/services/birth-certificate"): (200, DEFINITION),
            ("GET", "/local-bodies"): (200, {"local_bodies": [office]}),
            ("GET", "/local-bodies/KL-EKM-KOC"): (200, office),
            ("GET", "/files"): (200, {"files": [LISTED], "next_cursor": None}),
            ("GET", f"/files/{FILE_ID}"): (200, _file()),
            ("GET", f"/track/{NUMBER}"): (200, _file()),
            ("GET", f"/certificates/{NUMBER}"): (200, verdict),
        }
    )
    person = Citizen("+971501234567", "access-1", FILE_ID, NUMBER)
    for page in pages_of(person, NUMBER):
        fake.sent.clear()
        assert client.get(page.path).status_code == 200, page.name
        made = [
            (sent.path_url.removeprefix("/api/v1"), "Authorization" in sent.headers)
            for sent in fake.sent
        ]
        expected = [
            (call.path + (f"?{urlencode(call.params)}" if call.params else ""), call.as_user)
            for call in page.calls
        ]
        assert made == expected, page.name
