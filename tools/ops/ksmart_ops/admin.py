"""`ksmart-admin`: the operator's commands.

ksmart-admin check-infrastructure   # is PostgreSQL / RabbitMQ reachable?
ksmart-admin setup [--seed]         # databases, roles, migrations, queues, demo data
ksmart-admin dead-letters QUEUE     # how many messages wait in QUEUE.dead
ksmart-admin replay-dead-letters QUEUE [--limit N]
ksmart-admin load-directory [--districts F] [--local-bodies F]   # the full list, from files
ksmart-admin create-administrator USERNAME   # the first one; password in KSMART_ADMIN_PASSWORD
ksmart-admin rotate-signing-key / retire-signing-key KID
ksmart-admin endorse-keys token|certificate|event KID... --root-key FILE   # operator's machine
ksmart-admin record-event-key --key-file PEM    # a new event key's public half, to endorse first
ksmart-admin key-root-public --root-key FILE   # KSMART_KEY_ROOT_PUBLIC for the Secret
ksmart-admin broker-users   # each process's RabbitMQ user, from its KSMART_<PROCESS>_AMQP_URI
ksmart-admin fake-pay FILE_ID AMOUNT_PAISE   # development: the fake provider's callback
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

import pika
import sqlalchemy as sa

from ksmart_applications.payments import PAYMENT_SECRET_ENV, FakePaymentProvider
from ksmart_common import config
from ksmart_common.consumer import ATTEMPT_HEADER, ConsumerTopology
from ksmart_common.errors import InvalidInput
from ksmart_common.messaging import OTP_QUEUE, declare_otp_queue
from ksmart_common.migrations import RoleNames, upgrade, url_for_database
from ksmart_ops.fake_payments import post_callback


def consumer_topologies(delays_ms: tuple[int, ...] | None = None) -> list[ConsumerTopology]:
    """Every consuming service's queues, declared before any event flows so
    that nothing published early is unroutable."""
    from ksmart_notifications import queues as notification_queues
    from ksmart_workflow.service import EVENTS_QUEUE as WORKFLOW_QUEUE

    delays = delays_ms if delays_ms is not None else config.RetryPolicy.from_env().delays_ms
    return [
        ConsumerTopology(WORKFLOW_QUEUE, ("#",), delays),
        *notification_queues.topologies(delays),
    ]


def check_infrastructure() -> int:
    problems = []
    try:
        engine = sa.create_engine(config.admin_database_url(), poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.SQLAlchemyError as error:
        problems.append(
            "PostgreSQL is not reachable at KSMART_POSTGRES_ADMIN_URL "
            f"({config.admin_database_url()}): {error.__class__.__name__}.\n"
            "  Start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
            "  Install it (Debian): apt-get install postgresql"
        )
    try:
        pika.BlockingConnection(pika.URLParameters(config.amqp_uri())).close()
    except pika.exceptions.AMQPError as error:
        problems.append(
            f"RabbitMQ is not reachable at KSMART_AMQP_URI ({config.amqp_uri()}): "
            f"{error.__class__.__name__}.\n"
            "  Start it: rabbitmq-server -detached\n"
            "  Install it (Debian): apt-get install rabbitmq-server"
        )
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def setup(seed: bool, credentials_file: Path | None) -> int:
    admin_url = config.admin_database_url()
    roles = RoleNames(os.environ.get("KSMART_ROLE_PREFIX", "ksmart_"))
    for service, database in config.SERVICE_DATABASES.items():
        upgrade(service, admin_url, database, roles)
        print(f"database {database}: migrated")
    for topology in consumer_topologies():
        topology.declare(config.amqp_uri())
        print(f"queue {topology.queue_name}: declared with its retry and dead-letter queues")
    declare_otp_queue(config.amqp_uri(), otp_lifetime_seconds())
    print(f"queue {OTP_QUEUE}: declared for one-time codes")
    counts = load_directory()
    print(f"local-body directory: {counts}")
    if seed:
        seed_demo(credentials_file)
    return 0


def seed_demo(credentials_file: Path | None) -> None:
    """The demo users, each signing in with the password written to
    `credentials_file` (and printed by `demo-users`).

    The databases outlive a checkout: another clone on this machine, or this
    one before `make clean`, may have seeded the demo users with a password
    no file here remembers, and only its hash is stored. So seeding sets the
    demo users' password to the one written here rather than keeping the
    old one (which would make the printed credentials fail): the file, or
    KSMART_DEMO_PASSWORD, is the one source of the demo password. Setting a
    password is the owner's right, not the identity service's role's, so
    this connects as the administrator to the identity database."""
    from ksmart_identity.users import seed_demo_users

    password = demo_password(credentials_file) or secrets.token_urlsafe(12)
    engine = _identity_owner_engine()
    try:
        seeding = seed_demo_users(engine, password)
    finally:
        engine.dispose()
    if credentials_file is not None:
        credentials_file.parent.mkdir(parents=True, exist_ok=True)
        credentials_file.touch(mode=0o600)
        credentials_file.chmod(0o600)
        credentials_file.write_text(password + "\n")
    print(
        f"demo users seeded: {len(seeding.created)} created,"
        f" {len(seeding.reset)} given the current demo password"
    )
    for username in seeding.left_alone:
        print(
            f"{username}: an account that is not the demo's has this name; it is left as it is"
            " and the demo password does not sign it in",
            file=sys.stderr,
        )


def otp_lifetime_seconds() -> int:
    from ksmart_identity.otp import OtpSettings

    return OtpSettings.from_environment().ttl_seconds


def _identity_engine() -> sa.Engine:
    return sa.create_engine(config.database_url("identity"), poolclass=sa.pool.NullPool)


def _identity_owner_engine() -> sa.Engine:
    """The identity database (as KSMART_IDENTITY_DATABASE_URL names it),
    connected as the administrator that migrated it."""
    database = sa.engine.make_url(config.database_url("identity")).database
    url = url_for_database(config.admin_database_url(), database)
    return sa.create_engine(config.with_psycopg2(url), poolclass=sa.pool.NullPool)


def load_directory(districts_csv: Path | None = None, bodies_csv: Path | None = None) -> dict:
    """Districts, local bodies and wards: the shipped lists, or the operator's
    full ones. Idempotent: codes are stable, nothing is deleted."""
    from ksmart_identity import directory

    if districts_csv is None and bodies_csv is None:
        lists = directory.shipped_directory()
    else:
        shipped = Path(directory.__file__).parent / "data"
        lists = directory.read_directory(
            districts_csv or shipped / "districts.csv", bodies_csv or shipped / "local_bodies.csv"
        )
    engine = _identity_engine()
    try:
        return directory.load_directory(engine, lists)
    finally:
        engine.dispose()


def rebuild_projection() -> int:
    """Rebuild the workflow projection from position zero and switch over,
    showing progress; see ksmart_workflow/switchover.py."""
    from ksmart_common.eventstore import EventStore
    from ksmart_workflow.switchover import rebuild_and_switch

    roles = RoleNames(os.environ.get("KSMART_ROLE_PREFIX", "ksmart_"))
    workflow_db = config.SERVICE_DATABASES["workflow"]
    admin_engine = sa.create_engine(
        config.with_psycopg2(url_for_database(config.admin_database_url(), workflow_db)),
        pool_size=2,
    )
    store_engine = sa.create_engine(config.relay_database_url(), pool_size=2)
    store = EventStore(store_engine)

    def report(phase, done, total, rate, left):
        eta = f", about {left:.0f} s left" if left is not None else ""
        print(f"{phase}: {done:,} of {total:,} events ({rate:,.0f}/s{eta})", file=sys.stderr)

    try:
        result = rebuild_and_switch(store, admin_engine, roles.of("workflow"), report)
    finally:
        store.close()
        store_engine.dispose()
        admin_engine.dispose()
    print(
        f"switched: files rebuilt from {result.rebuilt_events:,} events,"
        f" {result.caught_up_events:,} caught up; the old table is {result.replaced_table}"
    )
    return 0


def create_administrator(username: str, display_name: str) -> int:
    """The first administrator (who then manages everyone else through the
    API). The password comes from KSMART_ADMIN_PASSWORD, never an argument,
    so it stays out of shell history and process lists."""
    from ksmart_identity.staff import create_staff

    password = os.environ.get("KSMART_ADMIN_PASSWORD", "")
    engine = _identity_engine()
    try:
        user = create_staff(
            engine, username, display_name, "administrator", ["administrator"], None, [], password
        )
    except InvalidInput as error:
        for problem in error.problems:
            print(f"{problem['field']}: {problem['message']}", file=sys.stderr)
        print("set the password in KSMART_ADMIN_PASSWORD", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"administrator {user['username']} created ({user['user_id']})")
    return 0


def rotate_signing_key() -> int:
    from ksmart_identity.keys import rotate_signing_key as rotate

    engine = _identity_engine()
    try:
        key = rotate(engine)
    finally:
        engine.dispose()
    print(
        f"new signing key {key.kid}: it signs once endorsed"
        f" (ksmart-admin endorse-keys token {key.kid} --root-key FILE); older keys still verify"
    )
    return 0


def retire_signing_key(kid: str) -> int:
    from ksmart_identity.keys import retire_signing_key as retire

    engine = _identity_engine()
    try:
        retired = retire(engine, kid, datetime.now(UTC))
    finally:
        engine.dispose()
    print(f"key {kid} retired" if retired else f"no active stored key {kid}")
    return 0 if retired else 1


def endorse_signing_keys(purpose: str, kids: list[str], root_key_file: Path) -> int:
    """Endorse the named keys with the deployment's root (ksmart_ops.key_root),
    connecting to the database that holds `purpose`'s keys."""
    from ksmart_common import ed25519
    from ksmart_ops.key_root import KEY_DATABASES, endorse_keys

    root = ed25519.private_key_from_pem(root_key_file.read_text())
    engine = sa.create_engine(
        config.database_url(KEY_DATABASES[purpose]), poolclass=sa.pool.NullPool
    )
    try:
        unknown = endorse_keys(root, purpose, engine, kids)
    finally:
        engine.dispose()
    for kid in kids:
        if kid not in unknown:
            print(f"{purpose} key {kid} endorsed: trusted from now on")
    for kid in unknown:
        print(f"no live {purpose} key {kid}: nothing endorsed for it", file=sys.stderr)
    return 1 if unknown else 0


def record_event_key(key_file: Path) -> int:
    """Record a new event-signing key's public half (never its private
    half) so that it can be endorsed before the Secret gives it to the
    applications service: appends never wait for an endorsement."""
    from ksmart_applications.event_keys import event_key_store
    from ksmart_common import ed25519
    from ksmart_common.keystore import SigningKey

    key = SigningKey.from_private_key(ed25519.private_key_from_pem(key_file.read_text()))
    engine = sa.create_engine(config.database_url("applications"), poolclass=sa.pool.NullPool)
    try:
        event_key_store().record(engine, key)
    finally:
        engine.dispose()
    print(
        f"event key {key.kid} recorded: endorse it (ksmart-admin endorse-keys event {key.kid}"
        " --root-key FILE), then put it in KSMART_EVENT_SIGNING_KEY"
    )
    return 0


def create_broker_users() -> int:
    from ksmart_ops.deployment_broker_users import BrokerUsersError, create_deployment_users

    try:
        made = create_deployment_users()
    except BrokerUsersError as error:
        print(f"ksmart-admin broker-users: {error}", file=sys.stderr)
        return 1
    print(f"broker users made or updated: {', '.join(made)}")
    return 0


def print_key_root_public(root_key_file: Path) -> int:
    from ksmart_common import ed25519
    from ksmart_common.key_anchor import root_public_text

    print(root_public_text(ed25519.private_key_from_pem(root_key_file.read_text())))
    return 0


def demo_password(credentials_file: Path | None) -> str | None:
    """KSMART_DEMO_PASSWORD, else the one a previous run wrote down, else
    None (seeding then makes a new one)."""
    if os.environ.get("KSMART_DEMO_PASSWORD"):
        return os.environ["KSMART_DEMO_PASSWORD"]
    if credentials_file is not None and credentials_file.exists():
        return credentials_file.read_text().strip() or None
    return None


def print_demo_users(credentials_file: Path | None) -> int:
    from ksmart_identity.users import DEMO_USERS

    password = demo_password(credentials_file)
    if password is None:
        # Never a made-up one: only the password seeding set signs in.
        print(
            "no demo password: run `ksmart-admin setup --seed --credentials-file FILE` and pass"
            " the same FILE here, or set KSMART_DEMO_PASSWORD for both",
            file=sys.stderr,
        )
        return 1
    print(f"Demo users, each with the password {password}")
    for user in DEMO_USERS:
        where = f", {user.local_body}" if user.local_body else ""
        print(f"  {user.username:<18} {', '.join(user.roles)}{where}: {user.display_name}")
    return 0


def _dead_queue(queue: str) -> str:
    return f"{queue}.dead"


def dead_letter_count(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(config.amqp_uri()))
    try:
        declared = connection.channel().queue_declare(_dead_queue(queue), passive=True)
        return declared.method.message_count
    finally:
        connection.close()


def replay_dead_letters(queue: str, limit: int | None = None) -> int:
    """Move dead letters back to their queue for another round of attempts.

    Each message is republished with confirms, then acked: a crash in between
    leaves a duplicate, never a loss (consumers are idempotent)."""
    connection = pika.BlockingConnection(pika.URLParameters(config.amqp_uri()))
    channel = connection.channel()
    channel.confirm_delivery()
    moved = 0
    try:
        while limit is None or moved < limit:
            method, properties, body = channel.basic_get(_dead_queue(queue))
            if method is None:
                break
            headers = dict(properties.headers or {})
            headers.pop(ATTEMPT_HEADER, None)
            properties.headers = headers
            channel.basic_publish("", queue, body, properties)
            channel.basic_ack(method.delivery_tag)
            moved += 1
    finally:
        connection.close()
    return moved


def fake_pay(file_id: str, amount_paise: int, secret_file: Path, gateway: str | None) -> int:
    """Post the callback the fake payment provider would send on capturing
    a payment, signed with the development platform's secret."""
    secret = os.environ.get(PAYMENT_SECRET_ENV) or secret_file.read_text().strip()
    provider = FakePaymentProvider(secret.encode())
    answer = post_callback(provider, gateway or config.gateway_address(), file_id, amount_paise)
    print(answer.text, file=sys.stdout if answer.ok else sys.stderr)
    return 0 if answer.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ksmart-admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check-infrastructure", help="is PostgreSQL and RabbitMQ reachable")
    setup_parser = commands.add_parser("setup", help="databases, roles, migrations, queues")
    setup_parser.add_argument("--seed", action="store_true", help="create the demo users")
    setup_parser.add_argument(
        "--credentials-file", type=Path, default=None, help="where to write the demo password"
    )
    demo_parser = commands.add_parser("demo-users", help="list the demo users and password")
    demo_parser.add_argument("--credentials-file", type=Path, default=None)
    count_parser = commands.add_parser("dead-letters", help="count a queue's dead letters")
    count_parser.add_argument("queue")
    replay_parser = commands.add_parser("replay-dead-letters", help="retry a queue's dead letters")
    replay_parser.add_argument("queue")
    replay_parser.add_argument("--limit", type=int, default=None)
    directory_parser = commands.add_parser(
        "load-directory", help="load districts, local bodies and wards (default: shipped lists)"
    )
    directory_parser.add_argument("--districts", type=Path, default=None)
    directory_parser.add_argument("--local-bodies", type=Path, default=None)
    admin_parser = commands.add_parser(
        "create-administrator", help="the first administrator (password: KSMART_ADMIN_PASSWORD)"
    )
    admin_parser.add_argument("username")
    admin_parser.add_argument("--display-name", default="Administrator")
    commands.add_parser("rotate-signing-key", help="a new token signing key; old ones verify")
    commands.add_parser(
        "rebuild-projection", help="rebuild the workflow projection from zero and switch over"
    )
    retire_parser = commands.add_parser(
        "retire-signing-key", help="stop publishing a key and destroy its private half"
    )
    retire_parser.add_argument("kid")
    endorse_parser = commands.add_parser(
        "endorse-keys", help="trust the named keys: the deployment root's endorsement"
    )
    endorse_parser.add_argument("purpose", choices=("token", "certificate", "event"))
    endorse_parser.add_argument("kids", nargs="+", metavar="KID")
    endorse_parser.add_argument("--root-key", type=Path, required=True, help="the root's PEM")
    record_parser = commands.add_parser(
        "record-event-key", help="a new event key's public half, to endorse before it signs"
    )
    record_parser.add_argument("--key-file", type=Path, required=True, help="its Ed25519 PEM")
    root_parser = commands.add_parser(
        "key-root-public", help="the root's public half, for KSMART_KEY_ROOT_PUBLIC"
    )
    root_parser.add_argument("--root-key", type=Path, required=True, help="the root's PEM")
    commands.add_parser(
        "broker-users", help="each process's RabbitMQ user and rights, from its own URI"
    )
    pay_parser = commands.add_parser(
        "fake-pay", help="development only: the fake provider confirms a file's fee payment"
    )
    pay_parser.add_argument("file_id")
    pay_parser.add_argument("amount_paise", type=int)
    pay_parser.add_argument("--secret-file", type=Path, default=Path("var/run/payment-secret"))
    pay_parser.add_argument("--gateway", default=None, help="default: KSMART_GATEWAY_ADDRESS")
    args = parser.parse_args(argv)

    if args.command == "check-infrastructure":
        return check_infrastructure()
    if args.command == "setup":
        return setup(args.seed, args.credentials_file)
    if args.command == "demo-users":
        return print_demo_users(args.credentials_file)
    if args.command == "dead-letters":
        print(dead_letter_count(args.queue))
        return 0
    if args.command == "load-directory":
        print(load_directory(args.districts, args.local_bodies))
        return 0
    if args.command == "create-administrator":
        return create_administrator(args.username, args.display_name)
    if args.command == "rebuild-projection":
        return rebuild_projection()
    if args.command == "rotate-signing-key":
        return rotate_signing_key()
    if args.command == "retire-signing-key":
        return retire_signing_key(args.kid)
    if args.command == "endorse-keys":
        return endorse_signing_keys(args.purpose, args.kids, args.root_key)
    if args.command == "record-event-key":
        return record_event_key(args.key_file)
    if args.command == "key-root-public":
        return print_key_root_public(args.root_key)
    if args.command == "broker-users":
        return create_broker_users()
    if args.command == "fake-pay":
        return fake_pay(args.file_id, args.amount_paise, args.secret_file, args.gateway)
    if args.command == "replay-dead-letters":
        print(f"replayed {replay_dead_letters(args.queue, args.limit)} message(s) to {args.queue}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
