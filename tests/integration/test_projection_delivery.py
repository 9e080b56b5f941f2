"""The workflow projection under at-least-once, any-order delivery, with the
real workflow service consuming from RabbitMQ: duplicates are dropped, gaps
are filled from the event store, poison messages are retried with back-off
and then dead-lettered, and two replicas reach the same projection."""

import json
import os
import random
import subprocess
import sys
import uuid
from dataclasses import dataclass, replace

import pika
import pytest
import requests
import sqlalchemy as sa

from ksmart_common.consumer import ATTEMPT_HEADER
from ksmart_common.domain.file import Actor, replay, take_action
from ksmart_common.envelope import file_stream_id
from ksmart_common.eventstore import EventStore
from ksmart_common.messaging import EVENTS_EXCHANGE, event_body, event_headers
from ksmart_ops.admin import dead_letter_count, replay_dead_letters
from ksmart_workflow.service import EVENTS_QUEUE
from tests.support import metrics
from tests.support.files import submission
from tests.support.platform import free_port, running_platform
from tests.support.waiting import wait_for

CITIZEN = Actor("citizen-1", ("citizen",))
CLERK = Actor("clerk-1", ("clerk",), "KL-EKM-KOC")
SECRETARY = Actor("secretary-1", ("secretary",), "KL-EKM-KOC")
METADATA = {"actor_id": "x", "actor_roles": [], "correlation_id": "test"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    # No relay: the tests publish events themselves, in the order they choose.
    names = ("identity", "catalogue", "applications", "workflow")
    with running_platform(tmp_path_factory.mktemp("delivery"), names=names) as running:
        yield running


@pytest.fixture(scope="module")
def definition():
    from ksmart_catalogue.catalogue import Catalogue

    return Catalogue.load().get_service("birth-certificate")


@pytest.fixture
def store(platform):
    engine = sa.create_engine(platform.databases["applications"].service_url)
    store = EventStore(engine)
    yield store
    store.close()
    engine.dispose()


@pytest.fixture
def publisher(platform):
    connection = pika.BlockingConnection(pika.URLParameters(platform.amqp_uri))
    channel = connection.channel()
    channel.confirm_delivery()

    def publish(envelope, body=None):
        channel.basic_publish(
            EVENTS_EXCHANGE,
            envelope.event_type,
            body if body is not None else event_body(envelope),
            pika.BasicProperties(
                content_type="application/json", delivery_mode=2, headers=event_headers(envelope)
            ),
        )

    yield publish
    connection.close()


def _file_with_history(store, definition):
    """A file stored with four events: submitted, returned, resubmitted, verified."""
    file_id = str(uuid.uuid4())
    stream = file_stream_id(file_id)
    envelopes = store.append(
        stream, submission(file_id, definition, "KL-EKM-KOC", CITIZEN), 0, METADATA
    )
    steps = [
        (CLERK, "return_for_clarification", "need more"),
        (CITIZEN, "resubmit", None),
        (CLERK, "verify", None),
    ]
    for actor, action, remarks in steps:
        state = replay(envelopes)
        envelopes += store.append(
            stream, take_action(state, action, actor, remarks), state.version, METADATA
        )
    return file_id, envelopes


def _projected(platform, file_id):
    with platform.engine("workflow").connect() as conn:
        row = conn.execute(
            sa.text("SELECT state, version, projected FROM files WHERE file_id = :f"),
            {"f": file_id},
        ).one_or_none()
    return row


def test_duplicates_and_out_of_order_events_converge(platform, store, publisher, definition):
    file_id, envelopes = _file_with_history(store, definition)
    first, second, third, fourth = envelopes
    publisher(third)  # a gap: versions 1 and 2 are read from the store
    wait_for(
        lambda: (row := _projected(platform, file_id)) and row.version == 3,
        message="gap filled up to version 3",
    )
    for envelope in (first, second, third, first):  # all duplicates now
        publisher(envelope)
    publisher(fourth)
    wait_for(
        lambda: (row := _projected(platform, file_id)) and row.version == 4, message="version 4"
    )
    row = _projected(platform, file_id)
    assert row.state == "verified"
    assert row.projected == replay(store.read_stream(file_stream_id(file_id))).to_dict()
    assert [step["version"] for step in row.projected["timeline"]] == [1, 2, 3, 4]


def test_a_failing_message_is_retried_with_back_off_then_dead_lettered(
    platform, store, publisher, definition
):
    _, envelopes = _file_with_history(store, definition)
    # Version 2 of a stream the store has never heard of: the gap can't be filled.
    orphan = replace(envelopes[1], stream_id=file_stream_id(uuid.uuid4()))
    before = dead_letter_count_in(platform)
    publisher(orphan)
    wait_for(
        lambda: dead_letter_count_in(platform) == before + 1,
        timeout=30,
        message="the orphan in the dead-letter queue",
    )

    connection = pika.BlockingConnection(pika.URLParameters(platform.amqp_uri))
    channel = connection.channel()
    method, properties, body = channel.basic_get(f"{EVENTS_QUEUE}.dead")
    assert json.loads(body)["stream_id"] == orphan.stream_id
    # One first try and one per back-off delay: three attempts, no hot loop.
    assert properties.headers[ATTEMPT_HEADER] == 3
    expired_from = {death["queue"] for death in properties.headers["x-death"]}
    assert expired_from == {f"{EVENTS_QUEUE}.retry.200ms", f"{EVENTS_QUEUE}.retry.400ms"}
    assert "must start with ApplicationSubmitted" in properties.headers["x-ksmart-last-error"]
    channel.basic_nack(method.delivery_tag, requeue=True)
    connection.close()

    # The operator replays it: it leaves the dead-letter queue, goes round
    # its attempts once more and ends dead again, not lost and not looping.
    moved = replay_in(platform)
    assert moved == 1
    assert dead_letter_count_in(platform) == before
    wait_for(
        lambda: dead_letter_count_in(platform) == before + 1,
        timeout=30,
        message="the replayed orphan back in the dead-letter queue",
    )
    again = _dead_letter(platform)
    assert again.stream_id == orphan.stream_id
    assert again.attempts == 3  # a fresh budget, spent again
    # Each delay queue now counts two passes: the message really went round.
    assert again.passes == {f"{EVENTS_QUEUE}.retry.200ms": 2, f"{EVENTS_QUEUE}.retry.400ms": 2}


@dataclass(frozen=True)
class DeadLetter:
    stream_id: str
    attempts: int
    passes: dict[str, int]  # delay queue -> how many times it expired from it


def _dead_letter(platform) -> DeadLetter:
    """The dead-letter queue's first message, looked at and put back."""
    connection = pika.BlockingConnection(pika.URLParameters(platform.amqp_uri))
    try:
        channel = connection.channel()
        method, properties, body = channel.basic_get(f"{EVENTS_QUEUE}.dead")
        assert method is not None, "the dead-letter queue is empty"
        channel.basic_nack(method.delivery_tag, requeue=True)
    finally:
        connection.close()
    deaths = properties.headers["x-death"]
    return DeadLetter(
        stream_id=json.loads(body)["stream_id"],
        attempts=properties.headers[ATTEMPT_HEADER],
        passes={death["queue"]: death["count"] for death in deaths if death["reason"] == "expired"},
    )


def dead_letter_count_in(platform):
    return _with_env(platform, dead_letter_count, EVENTS_QUEUE)


def replay_in(platform):
    return _with_env(platform, replay_dead_letters, EVENTS_QUEUE)


def _with_env(platform, function, *args):
    saved = os.environ.get("KSMART_AMQP_URI")
    os.environ["KSMART_AMQP_URI"] = platform.amqp_uri
    try:
        return function(*args)
    finally:
        if saved is None:
            del os.environ["KSMART_AMQP_URI"]
        else:
            os.environ["KSMART_AMQP_URI"] = saved


def test_two_replicas_reach_the_same_projection(platform, store, publisher, definition):
    # The second replica has its own operations port, so it starts, and its
    # metrics show what it consumed.
    ops_address = f"127.0.0.1:{free_port()}"
    second = subprocess.Popen(
        [sys.executable, "-m", "ksmart_common.runner", "workflow"],
        env={**os.environ, **platform.env, "KSMART_OPS_ADDRESS_WORKFLOW": ops_address},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        connection = pika.BlockingConnection(pika.URLParameters(platform.amqp_uri))
        wait_for(
            lambda: (
                connection.channel().queue_declare(EVENTS_QUEUE, passive=True).method.consumer_count
                == 2
            ),
            message="two consumers on the queue",
        )
        connection.close()
        consumed_before = {
            "first": _consumed(platform.ops_url("workflow")),
            "second": _consumed(f"http://{ops_address}"),
        }

        files = [_file_with_history(store, definition) for _ in range(15)]
        deliveries = [envelope for _, envelopes in files for envelope in envelopes]
        deliveries += random.Random(7).sample(deliveries, 20)  # redeliveries
        random.Random(11).shuffle(deliveries)
        for envelope in deliveries:
            publisher(envelope)

        def all_projected():
            return all(
                (row := _projected(platform, file_id)) and row.version == 4 for file_id, _ in files
            )

        wait_for(all_projected, timeout=60, message="every file at version 4")
        for file_id, _ in files:
            expected = replay(store.read_stream(file_stream_id(file_id))).to_dict()
            assert _projected(platform, file_id).projected == expected
        # Both replicas are alive and both did part of the work.
        assert second.poll() is None, "the second replica exited"
        consumed = {
            "first": _consumed(platform.ops_url("workflow")) - consumed_before["first"],
            "second": _consumed(f"http://{ops_address}") - consumed_before["second"],
        }
        assert consumed["first"] > 0 and consumed["second"] > 0, consumed
        assert consumed["first"] + consumed["second"] >= len(deliveries), consumed
    finally:
        second.terminate()
        second.wait(20)


def _consumed(ops_url: str) -> float:
    """Messages the process's consumer handled (any outcome) from the queue."""
    reply = requests.get(f"{ops_url}/metrics", timeout=10)
    reply.raise_for_status()
    return metrics.value(
        metrics.parse(reply.text), "ksmart_messages_consumed_total", queue=EVENTS_QUEUE
    )
