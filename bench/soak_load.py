"""The load of the soak (bench/soak.py): citizens submitting applications at
a steady pace and officials deciding files from their inboxes, each a
thread with a connection of its own; and the short closed-loop ramp that
finds the maximum submit rate first.

Threads and `requests`, not locust: the load is modest (half the maximum)
and `make soak` needs nothing beyond the test dependencies. Every request
is bounded by CLIENT_TIMEOUT and every loop by a stop event.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import requests

from bench.e2e import percentile
from bench.soak_verdict import RequestTally

CLIENT_TIMEOUT = 15
SERVICE_CODE = "birth-certificate"
# Who decides what: the role's demo official, the action it takes.
DECIDERS = {"clerk": ("clerk.kochi", "verify"), "secretary": ("secretary.kochi", "approve")}
INBOX_PAGE = 50
IDLE_SECONDS = 1.0  # an official with nothing to do looks again after this


class Tally:
    """What the clients saw, request by request (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.failures: dict[str, Counter] = defaultdict(Counter)
        self.throttled: Counter = Counter()

    def request(
        self, session: requests.Session, kind: str, expected: int, method: str, url: str, **kwargs
    ) -> requests.Response | None:
        """One request, recorded; the response if it was the expected one."""
        started = time.monotonic()
        try:
            reply = session.request(method, url, timeout=CLIENT_TIMEOUT, **kwargs)
        except requests.RequestException as error:
            with self.lock:
                self.latencies[kind].append(time.monotonic() - started)
                self.failures[kind][type(error).__name__] += 1
            return None
        with self.lock:
            self.latencies[kind].append(time.monotonic() - started)
            if reply.status_code == expected:
                return reply
            if reply.status_code == 429 and reply.headers.get("Retry-After"):
                self.throttled[kind] += 1
            else:
                self.failures[kind][f"HTTP {reply.status_code}: {reply.text[:120]}"] += 1
        return None

    def count(self, kind: str) -> int:
        with self.lock:
            return len(self.latencies[kind])

    def tallies(self) -> list[RequestTally]:
        with self.lock:
            return [
                RequestTally(
                    kind=kind,
                    requests=len(latencies),
                    failures=dict(self.failures[kind]),
                    throttled=self.throttled[kind],
                    p50_ms=_ms(percentile(latencies, 0.50)),
                    p99_ms=_ms(percentile(latencies, 0.99)),
                )
                for kind, latencies in self.latencies.items()
            ]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


# -- citizens by phone --------------------------------------------------------------------


# -- the ramp ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RampLevel:
    users: int
    seconds: float
    submitted: int
    failures: int
    p99_ms: float | None
    # How long the consumers took, once the load stopped, to finish its work.
    drain_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Submissions the platform finished a second: accepted, and then
        projected, told and delivered by every consumer. The gateway accepts
        bursts faster than the consumers finish them, so the acceptance rate
        alone is no rate the platform can hold."""
        return self.submitted / (self.seconds + self.drain_seconds)


def closed_loop(url: str, headers: dict[str, str], body: bytes, users: int, seconds: float):
    """`users` threads each keeping one submission in flight for `seconds`."""
    tally = Tally()
    stop = threading.Event()

    def user() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                tally.request(session, "submit", 201, "POST", url, data=body, headers=headers)

    threads = [threading.Thread(target=user, daemon=True) for _ in range(users)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(CLIENT_TIMEOUT + 5)
    elapsed = time.monotonic() - started
    (result,) = tally.tallies() or [RequestTally("submit", 0, {})]
    return RampLevel(users, elapsed, result.requests - result.failed, result.failed, result.p99_ms)


def ramp(
    url: str,
    headers: dict[str, str],
    body: bytes,
    levels: tuple[int, ...],
    seconds: float,
    drain: Callable[[], float],
    progress: Callable[[str], None],
) -> list[RampLevel]:
    """Closed-loop levels of rising concurrency, each followed by `drain`
    (which waits until every consumer has finished and says how long that
    took), stopped once the rate no longer rises (by 5 %) or requests fail:
    the best level's rate is the maximum."""
    measured: list[RampLevel] = []
    for users in levels:
        level = replace(closed_loop(url, headers, body, users, seconds), drain_seconds=drain())
        measured.append(level)
        progress(
            f"soak: ramp {users} users: {level.submitted / level.seconds:.1f} submissions/s"
            f" accepted, drained {level.drain_seconds:.1f} s later: {level.rate:.1f}/s finished;"
            f" p99 {level.p99_ms} ms, {level.failures} failures"
        )
        best_before = max((m.rate for m in measured[:-1]), default=0.0)
        if level.failures or level.rate < 1.05 * best_before:
            break
    return measured


# -- the mix ----------------------------------------------------------------------------------


class Mix:
    """Citizens submitting `submit_rate` applications a second (paced: each
    submission has its slot on one shared schedule; a thread late for its
    slot sends at once, so the rate holds while the platform keeps up), and
    per role `officials_per_role` officials working through their inbox
    without pause, each on its own share of the files (split by file id, so
    no two officials race for one file)."""

    def __init__(
        self,
        base_url: str,
        tokens: dict[str, str],
        bodies: dict[str, dict[str, Any]],
        submit_rate: float,
        submitters: int,
        officials_per_role: int = 2,
    ) -> None:
        self.api = f"{base_url}/api/v1"
        self.tokens = tokens  # citizens' phones and officials' usernames -> token
        self.bodies = bodies  # phone -> that citizen's complete application
        self.submit_rate = submit_rate
        self.submitters = submitters
        self.officials_per_role = officials_per_role
        self.tally = Tally()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.slot_lock = threading.Lock()
        self.next_slot = 0
        self.started = 0.0

    def start(self) -> Mix:
        self.started = time.monotonic()
        phones = list(self.bodies)
        targets: list[Callable[[], None]] = [
            partial(self._citizen, phones[n % len(phones)]) for n in range(self.submitters)
        ]
        for role in DECIDERS:
            for share in range(self.officials_per_role):
                targets.append(partial(self._official, role, share))
        for target in targets:
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> float:
        """Stop every client; the seconds the load ran."""
        self.stopping.set()
        stopped = time.monotonic()
        for thread in self.threads:
            thread.join(CLIENT_TIMEOUT + 5)
        return stopped - self.started

    def _slot(self) -> float:
        with self.slot_lock:
            slot = self.next_slot
            self.next_slot += 1
        return self.started + slot / self.submit_rate

    def _citizen(self, phone: str) -> None:
        headers = {
            "Authorization": f"Bearer {self.tokens[phone]}",
            "Content-Type": "application/json",
        }
        with requests.Session() as session:
            while not self.stopping.wait(max(0.0, self._slot() - time.monotonic())):
                body = copy.deepcopy(self.bodies[phone])
                marker = uuid.uuid4().hex[:12]
                body["form"]["child_name"] = f"Child {marker}"
                self.tally.request(
                    session,
                    "submit",
                    201,
                    "POST",
                    f"{self.api}/files",
                    data=json.dumps(body),
                    headers={**headers, "Idempotency-Key": f"soak-{marker}"},
                )

    def _official(self, role: str, share: int) -> None:
        username, action = DECIDERS[role]
        headers = {"Authorization": f"Bearer {self.tokens[username]}"}
        acted: dict[str, int] = {}  # file id -> the version this official acted on
        params = {"limit": INBOX_PAGE, "service": SERVICE_CODE}
        with requests.Session() as session:
            while not self.stopping.is_set():
                reply = self.tally.request(
                    session,
                    "inbox",
                    200,
                    "GET",
                    f"{self.api}/inbox",
                    params=params,
                    headers=headers,
                )
                files = reply.json()["files"] if reply is not None else []
                # The projection may not show an action just taken yet: a
                # file at a version already acted on is not taken again.
                mine = [
                    f
                    for f in files
                    if f["waits_on"] == role
                    and int(f["file_id"][:8], 16) % self.officials_per_role == share
                    and acted.get(f["file_id"], 0) < f["version"]
                ]
                if not mine:
                    self.stopping.wait(IDLE_SECONDS)
                    continue
                for summary in mine:
                    if self.stopping.is_set():
                        return
                    file_id, version = summary["file_id"], summary["version"]
                    acted[file_id] = version
                    self.tally.request(
                        session,
                        action,
                        200,
                        "POST",
                        f"{self.api}/files/{file_id}/actions",
                        json={"action": action},
                        headers={**headers, "If-Match": f'"{version}"'},
                    )
