"""The load bench/e2e.py puts on the gateway (or on the bare ceiling), run by
locust headless as a subprocess. Configured by environment variables:

- KSMART_BENCH_MODE: "submit" (citizens submitting applications through the
  gateway) or "ceiling" (POST /noop on bench/ceiling.py);
- KSMART_BENCH_BODY_FILE: the JSON body each request sends;
- KSMART_BENCH_PASSWORD: the demo citizen's password (submit mode);
- KSMART_BENCH_MEASURE_SECONDS: how long the measured window lasts;
- KSMART_BENCH_RATE_PER_USER: requests per second per user (0: as fast as
  each user can go, one request in flight per user).

Each user signs in once. The measured window opens when every user has
signed in: the statistics are reset then, so sign-ins (argon2 on the
identity service) are not counted, and locust quits after
KSMART_BENCH_MEASURE_SECONDS. The one row of requests is named "submit".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import gevent
import gevent.event
import locust.stats
from locust import FastHttpUser, constant, constant_throughput, events, task

# Write the CSV often, so the file read after the run holds the final counts.
locust.stats.CSV_STATS_INTERVAL_SEC = 0.2

MODE = os.environ.get("KSMART_BENCH_MODE", "submit")
BODY = Path(os.environ["KSMART_BENCH_BODY_FILE"]).read_bytes()
PASSWORD = os.environ.get("KSMART_BENCH_PASSWORD", "")
MEASURE_SECONDS = float(os.environ.get("KSMART_BENCH_MEASURE_SECONDS", "10"))
RATE_PER_USER = float(os.environ.get("KSMART_BENCH_RATE_PER_USER", "0"))

PATHS = {"submit": "/api/v1/files", "ceiling": "/noop"}
SIGN_IN_TIMEOUT_SECONDS = 60.0


class _Window:
    """Opens the measured window once every user is signed in."""

    def __init__(self) -> None:
        self.signed_in = 0
        self.opened = gevent.event.Event()

    def user_ready(self, environment) -> None:
        self.signed_in += 1
        if self.signed_in >= environment.parsed_options.num_users and not self.opened.is_set():
            environment.stats.reset_all()
            gevent.spawn_later(MEASURE_SECONDS, environment.runner.quit)
            self.opened.set()


window = _Window()


@events.init.add_listener
def _check_mode(environment, **kwargs) -> None:
    if MODE not in PATHS:
        raise SystemExit(f"KSMART_BENCH_MODE must be one of {', '.join(PATHS)}")


class Citizen(FastHttpUser):
    wait_time = constant_throughput(RATE_PER_USER) if RATE_PER_USER > 0 else constant(0)

    def on_start(self) -> None:
        self.headers = {"Content-Type": "application/json"}
        if MODE == "submit":
            reply = self.client.post(
                "/api/v1/auth/token",
                json={"username": "citizen", "password": PASSWORD},
                name="sign in",
            )
            if reply.status_code == 200:
                self.headers["Authorization"] = f"Bearer {json.loads(reply.text)['access_token']}"
            # A failed sign-in leaves the user without a token: every submit
            # it makes then fails (401) and is counted as a failure.
        window.user_ready(self.environment)
        window.opened.wait(SIGN_IN_TIMEOUT_SECONDS)

    @task
    def submit(self) -> None:
        expected = 201
        with self.client.post(
            PATHS[MODE], data=BODY, headers=self.headers, name="submit", catch_response=True
        ) as reply:
            if reply.status_code != expected:
                reply.failure(f"HTTP {reply.status_code}")
