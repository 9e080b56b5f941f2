"""`ksmart-admin broker-users` (ksmart_ops.deployment_broker_users): a
deployment's users read from each process's URI and imported through a
management API, here a fake one that keeps what it was sent."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ksmart_common import config
from ksmart_ops.broker_users import MONITORING, PROCESSES, grant
from ksmart_ops.deployment_broker_users import (
    MANAGEMENT_URL_ENV,
    MONITORING_PASSWORD_ENV,
    MONITORING_USERNAME_ENV,
    BrokerUsersError,
    create_deployment_users,
    deployment_users,
    management_url,
)


def uri(user: str, password: str | None, vhost: str = "%2F") -> str:
    # Assembled, so that no URL with a password is written out in the code.
    credentials = user if password is None else ":".join((user, password))
    return "amqp://" + credentials + "@rabbitmq:5672/" + vhost


ADMIN_URI = uri("ksmart", "admin-pw")


def environment(**extra: str) -> dict[str, str]:
    uris = {
        config.amqp_uri_variable(process): uri(f"ksmart-{process}", f"pw-{process}")
        for process in PROCESSES
    }
    return {"KSMART_AMQP_URI": ADMIN_URI, **uris, **extra}


def test_each_process_is_its_uris_user_and_password():
    found = deployment_users(environment())
    assert found.vhost == "/"
    assert found.users == {process: f"ksmart-{process}" for process in PROCESSES}
    assert found.passwords == {process: f"pw-{process}" for process in PROCESSES}


def test_the_monitoring_user_only_where_keda_is_given_one():
    keda = {MONITORING_USERNAME_ENV: "keda", MONITORING_PASSWORD_ENV: "k"}
    found = deployment_users(environment(**keda))
    assert (found.users[MONITORING], found.passwords[MONITORING]) == ("keda", "k")
    assert MONITORING not in deployment_users(environment()).users
    with pytest.raises(BrokerUsersError, match="without"):
        deployment_users(environment(**{MONITORING_USERNAME_ENV: "keda"}))


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({config.amqp_uri_variable("relay"): ""}, "KSMART_RELAY_AMQP_URI"),
        ({config.amqp_uri_variable("relay"): uri("ksmart-gateway", "x")}, "ksmart-gateway named"),
        ({config.amqp_uri_variable("relay"): uri("ksmart", "x")}, "administrator"),
        ({config.amqp_uri_variable("relay"): uri("r", "x", "other")}, "several vhosts"),
        ({config.amqp_uri_variable("relay"): uri("r", None)}, "without a user name"),
        (
            {MONITORING_USERNAME_ENV: "ksmart-relay", MONITORING_PASSWORD_ENV: "x"},
            "ksmart-relay named twice",
        ),
    ],
)
def test_an_inconsistent_environment_is_refused(change, refusal):
    with pytest.raises(BrokerUsersError, match=refusal):
        deployment_users(environment(**change))


def test_the_management_api_is_the_brokers_unless_named():
    assert management_url(environment()) == "http://rabbitmq:15672"
    named = environment(**{MANAGEMENT_URL_ENV: "https://mq.example:443/"})
    assert management_url(named) == "https://mq.example:443"


@pytest.fixture
def management_api() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the standard library's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {
                    "path": self.path,
                    "authorization": self.headers["Authorization"],
                    "content_type": self.headers["Content-Type"],
                    "document": json.loads(body),
                }
            )
            # As RabbitMQ answers: 204 for an import, 404 for a path it lacks.
            known = self.path == "/api/definitions"
            self.send_response(204 if known else 404)
            self.end_headers()
            if not known:
                self.wfile.write(b'{"error":"Object Not Found"}')

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


def test_the_definitions_are_posted_as_the_administrator(management_api):
    url, received = management_api
    made = create_deployment_users(environment(**{MANAGEMENT_URL_ENV: url}))
    assert made == [f"ksmart-{process}" for process in PROCESSES]
    (request,) = received
    assert request["path"] == "/api/definitions"
    assert request["content_type"] == "application/json"
    assert request["authorization"] == "Basic " + base64.b64encode(b"ksmart:admin-pw").decode()
    document = request["document"]
    assert [user["name"] for user in document["users"]] == made
    assert all("pw-" not in user["password_hash"] for user in document["users"])
    relay = next(p for p in document["permissions"] if p["user"] == "ksmart-relay")
    assert (relay["vhost"], relay["write"]) == ("/", grant("relay").write)


def test_a_refusal_or_no_api_is_an_error_not_a_success(management_api):
    url, _ = management_api
    with pytest.raises(BrokerUsersError, match="refused the definitions: 404"):
        create_deployment_users(environment(**{MANAGEMENT_URL_ENV: url + "/elsewhere"}))
    closed = environment(**{MANAGEMENT_URL_ENV: "http://127.0.0.1:9"})  # discard: nothing listens
    with pytest.raises(BrokerUsersError, match="management API at"):
        create_deployment_users(closed)
