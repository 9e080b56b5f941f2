"""The operations endpoints as a WSGI application: readiness names what
fails (never hiding a failure behind a crash), and checks are not repeated
on every probe."""

from __future__ import annotations

import json
from wsgiref.util import setup_testing_defaults

from ksmart_common import operations


def _get(app, path, method="GET"):
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method}
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, headers):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(headers)

    body = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], body


def test_ready_only_when_every_check_passes_and_each_failure_is_named():
    def broken():
        raise ConnectionRefusedError("secret-host:5432")

    app = operations.operations_app(
        {"database": lambda: None, "broker": lambda: "not connected", "cache": broken}
    )
    status, _, body = _get(app, "/health/ready")
    assert status == 503
    failing = json.loads(body)["failing"]
    assert failing == {"broker": "not connected", "cache": "ConnectionRefusedError"}
    assert _get(app, "/health/live")[0] == 200  # alive, though not ready


def test_metrics_are_prometheus_text_and_other_paths_and_methods_are_refused():
    app = operations.operations_app({})
    status, headers, body = _get(app, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b"# HELP ksmart_events_appended_total" in body
    assert _get(app, "/admin")[0] == 404
    assert _get(app, "/health/live", method="POST")[0] == 405


def test_a_check_is_reused_for_a_moment_rather_than_run_on_every_probe():
    calls = []

    def check():
        calls.append(1)
        return None

    cached = operations._cached(check)
    for _ in range(5):
        assert cached() is None
    assert len(calls) == 1
