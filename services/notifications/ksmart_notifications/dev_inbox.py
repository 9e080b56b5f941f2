"""A developer's phone and mailbox: what `make run` sends SMS and email to.

    python -m ksmart_notifications.dev_inbox --sms-port 8026 --smtp-port 8025

runs the fake SMS provider (ksmart_notifications.channels.fake_sms) and an
SMTP server (aiosmtpd) that keeps every mail in memory, both on loopback.
One HTTP server answers for both, so a developer reads a sign-in code with

    curl 'http://127.0.0.1:8026/sms?to=+971501234567'
    curl 'http://127.0.0.1:8026/mail?to=citizen@example.org'

and configures the platform with KSMART_SMS_URL=http://127.0.0.1:8026/sms,
KSMART_SMTP_HOST=127.0.0.1, KSMART_SMTP_PORT=8025, KSMART_SMTP_SECURITY=none.
Nothing is kept on disk: a restart empties both.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.controller import Controller

from ksmart_common.config import env
from ksmart_common.envelope import format_timestamp
from ksmart_common.logging import configure_logging, get_logger
from ksmart_notifications.channels.fake_sms import (
    LOOPBACK,
    RECEIPT_URL_ENV,
    FakeSmsServer,
    PageRoute,
    run_until_terminated,
)
from ksmart_notifications.channels.sms import SMS_RECEIPT_SECRET_ENV

log = get_logger(__name__)


class Mailbox:
    """An aiosmtpd handler that keeps every mail it receives, per recipient."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mails: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        received = {
            "from": envelope.mail_from,
            "subject": parsed.get("Subject"),
            # MIME text travels with CRLF line ends; a mail reader shows "\n".
            "text": body.get_content().replace("\r\n", "\n") if body is not None else "",
            "message_id": parsed.get("Message-ID"),
            "received_at": format_timestamp(datetime.now(UTC)),
        }
        with self._lock:
            self._mails.extend({"to": to, **received} for to in envelope.rcpt_tos)
        return "250 Message accepted for delivery"

    def mails(self, to: str | None = None) -> list[dict[str, Any]]:
        """Copies of the mails received (oldest first), for one address or all."""
        with self._lock:
            return [
                dict(mail)
                for mail in self._mails
                if to is None or mail["to"].casefold() == to.casefold()
            ]

    def query(self, parameters: Mapping[str, str]) -> list[dict[str, Any]]:
        """GET /mail?to=... on the fake SMS server's HTTP port."""
        return self.mails(parameters.get("to"))


class SmtpController(Controller):
    """aiosmtpd's threaded Controller, which can also listen on port 0.

    aiosmtpd 1.4.6 (pinned) checks the new server by connecting to
    `self.port`; with port 0 that is no port at all, so the port the
    system chose is read from the listening socket first.
    """

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class DevInbox:
    sms: FakeSmsServer
    smtp: SmtpController
    mailbox: Mailbox

    def stop(self) -> None:
        self.smtp.stop()
        self.sms.stop()


def serve(
    sms_port: int,
    smtp_port: int,
    receipt_url: str | None = None,
    receipt_secret: bytes | None = None,
    pages: Mapping[str, PageRoute] | None = None,
) -> DevInbox:
    """Start both servers on loopback (port 0: any free port) and return them;
    `pages` are served on the HTTP port too (make run's payment checkout)."""
    mailbox = Mailbox()
    # A fixed name: aiosmtpd would otherwise ask DNS for this machine's.
    smtp = SmtpController(mailbox, hostname=LOOPBACK, port=smtp_port, server_hostname="dev-inbox")
    smtp.start()
    try:
        sms = FakeSmsServer(
            port=sms_port,
            receipt_url=receipt_url,
            receipt_secret=receipt_secret,
            get_routes={"/mail": mailbox.query},
            pages=pages,
        ).start()
    except BaseException:
        smtp.stop()
        raise
    log.info("dev inbox ready", http=sms.base_url, smtp_port=smtp.port)
    return DevInbox(sms=sms, smtp=smtp, mailbox=mailbox)


def main(argv: list[str] | None = None, pages: Mapping[str, PageRoute] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; `pages` too (ksmart_ops.dev_checkout
    runs it so, with the payment checkout)."""
    parser = argparse.ArgumentParser(description="A developer's phone and mailbox (loopback).")
    parser.add_argument("--sms-port", type=int, default=8026)
    parser.add_argument("--smtp-port", type=int, default=8025)
    arguments = parser.parse_args(argv)
    configure_logging(service="dev-inbox")
    # aiosmtpd logs every connection and command at INFO: noise on a developer's console.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    secret = env(SMS_RECEIPT_SECRET_ENV, "")
    inbox = serve(
        arguments.sms_port,
        arguments.smtp_port,
        receipt_url=env(RECEIPT_URL_ENV, "") or None,
        receipt_secret=secret.encode("utf-8") if secret else None,
        pages=pages,
    )
    try:
        run_until_terminated()
    finally:
        inbox.stop()


if __name__ == "__main__":
    main()
