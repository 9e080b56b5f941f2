"""The portal as `make run` serves it (gunicorn, ksmart_ops.devserver) over
a running platform, with the dev inbox as the citizens' phones; and a
citizen signed in to it by the code the inbox received. For the browser
tests and the portal's benchmark."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import requests

from ksmart_gateway.return_urls import RETURN_ORIGINS_ENV
from ksmart_notifications.dev_inbox import DevInbox
from ksmart_ops import devserver
from tests.support.inbox import CLIENT_TIMEOUT, CODE, served_inbox
from tests.support.platform import Platform, free_port, running_platform
from tests.support.waiting import wait_for

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Every citizen of a test or a benchmark asks for codes from one address
# (as from an Akshaya centre): more than the default limit per address.
OTP_PER_CLIENT = "100"


@contextlib.contextmanager
def running_portal(run_dir: Path, gateway_url: str, address: str | None = None) -> Iterator[str]:
    """The portal's processes at address (a free port when None); yields its
    URL once it answers."""
    run_dir.mkdir(parents=True, exist_ok=True)
    environ = {
        devserver.PORTAL_ADDRESS_ENV: address or f"127.0.0.1:{free_port()}",
        "KSMART_PORTAL_GATEWAY_URL": gateway_url,
        "KSMART_PORTAL_SECRET_KEY": secrets.token_hex(32),
        "KSMART_PORTAL_DEVELOPMENT": "1",
    }
    processes = devserver.start(
        run_dir, environ, names=[devserver.PORTAL], extra=devserver.portal(environ)
    )
    url = f"http://{environ[devserver.PORTAL_ADDRESS_ENV]}"
    try:
        wait_for(
            lambda: requests.get(f"{url}/health", timeout=2).ok,
            timeout=30,
            message="the portal to answer",
        )
        yield url
    finally:
        devserver.stop(run_dir)
        devserver.wait_for_exit(processes)


@contextlib.contextmanager
def portal_over_platform(run_dir: Path) -> Iterator[tuple[str, DevInbox, Platform]]:
    """(the portal's URL, the dev inbox, the platform), all fresh. The
    portal's address is chosen first: a payment's return to it is allowed."""
    address = f"127.0.0.1:{free_port()}"
    with served_inbox() as (inbox, inbox_environ):
        with running_platform(
            run_dir / "platform",
            environ={
                **inbox_environ,
                "KSMART_OTP_PER_CLIENT": OTP_PER_CLIENT,
                RETURN_ORIGINS_ENV: f"http://{address}",
            },
        ) as platform:
            with running_portal(run_dir / "portal", platform.base_url, address) as url:
                yield url, inbox, platform


def sign_in_to_portal(session: requests.Session, url: str, inbox: DevInbox, phone: str) -> None:
    """Sign a citizen in to the portal as they would: their number, then
    the code the inbox received; the session keeps the portal's cookie."""
    codes_before = len(inbox.sms.messages(phone))
    page = session.get(f"{url}/sign-in", timeout=CLIENT_TIMEOUT)
    csrf = CSRF.search(page.text).group(1)
    asked = session.post(
        f"{url}/sign-in",
        data={"contact": phone, "csrf_token": csrf},
        allow_redirects=False,
        timeout=CLIENT_TIMEOUT,
    )
    assert asked.status_code == 303, asked.text
    messages = wait_for(
        lambda: inbox.sms.messages(phone)[codes_before:], timeout=30, message="the code"
    )
    signed_in = session.post(
        f"{url}/sign-in/code",
        data={"code": CODE.search(messages[-1]["text"]).group(1), "csrf_token": csrf},
        allow_redirects=False,
        timeout=CLIENT_TIMEOUT,
    )
    assert signed_in.status_code == 303, signed_in.text
