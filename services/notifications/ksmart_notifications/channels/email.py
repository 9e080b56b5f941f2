"""Email through an SMTP relay (smtplib, one connection per message).

One connection per message keeps the adapter stateless: notifications are
few, and a pooled connection would need a keep-alive and a story for a relay
that drops idle clients. Under the service's eventlet monkey-patching the
socket calls are cooperative.

Every message carries `Message-ID: <message_id@sender's domain>`. The id is
stable per message, so if the relay's answer to DATA is lost and the caller
sends again, the duplicate is recognisable (and mail systems that
de-duplicate on Message-ID drop it).

Which failures are permanent: a 5xx answer to the envelope or the data (the
mailbox does not exist, the message is refused) cannot change on a second
try. Everything that is about the connection or our own configuration (no
answer, a dropped connection, 4xx, a certificate that does not verify,
credentials the relay refuses) is transient: the message is not at fault,
and calling it permanent would silently drop every message until somebody
fixed the settings.

The text (which may hold a one-time code) is never logged, and no server
reply text is copied into a failure reason: a relay may quote the message.
"""

from __future__ import annotations

import email.policy
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

from ksmart_common.config import env
from ksmart_notifications.channels.base import (
    ConfigurationProblems,
    DeliveryFailed,
    OutgoingMessage,
    SendResult,
    positive_seconds,
    whole_number,
)

SMTP_HOST_ENV = "KSMART_SMTP_HOST"
SMTP_PORT_ENV = "KSMART_SMTP_PORT"
SMTP_SECURITY_ENV = "KSMART_SMTP_SECURITY"
SMTP_USERNAME_ENV = "KSMART_SMTP_USERNAME"
SMTP_PASSWORD_ENV = "KSMART_SMTP_PASSWORD"
SMTP_CA_FILE_ENV = "KSMART_SMTP_CA_FILE"
SMTP_TIMEOUT_ENV = "KSMART_SMTP_TIMEOUT_SECONDS"
MAIL_FROM_ENV = "KSMART_MAIL_FROM"

# Port by security: submission with STARTTLS, implicit TLS, plain SMTP.
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # "starttls", "ssl" or "none"
    username: str | None
    password: str | None
    ca_file: str | None  # a CA bundle to verify the relay with; None: system trust
    mail_from: str  # an address, or "Name <address>"
    timeout_seconds: float = 10.0

    def __repr__(self) -> str:
        # The password stays out of logs and tracebacks.
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port!r}, "
            f"security={self.security!r}, username={self.username!r}, "
            f"mail_from={self.mail_from!r})"
        )

    @classmethod
    def from_environment(cls) -> SmtpSettings | None:
        """The settings, or None when email is not configured (KSMART_SMTP_HOST
        unset). ConfigurationProblems (a ValueError) names every problem."""
        host = env(SMTP_HOST_ENV, "")
        if not host:
            return None
        problems: list[str] = []
        security = env(SMTP_SECURITY_ENV, "starttls")
        if security not in DEFAULT_PORTS:
            problems.append(
                f"{SMTP_SECURITY_ENV} must be one of: {', '.join(DEFAULT_PORTS)}"
                f" (it is {security!r})"
            )
        default_port = str(DEFAULT_PORTS.get(security, DEFAULT_PORTS["starttls"]))
        port = whole_number(SMTP_PORT_ENV, default_port, 1, 65535, problems)
        username = env(SMTP_USERNAME_ENV, "") or None
        password = env(SMTP_PASSWORD_ENV, "") or None
        if username and not password:
            problems.append(f"{SMTP_USERNAME_ENV} is set but {SMTP_PASSWORD_ENV} is not")
        if password and not username:
            problems.append(f"{SMTP_PASSWORD_ENV} is set but {SMTP_USERNAME_ENV} is not")
        if username and security == "none":
            problems.append(
                f"{SMTP_USERNAME_ENV} needs {SMTP_SECURITY_ENV}=starttls or ssl:"
                " the password must not cross the network in the clear"
            )
        ca_file = env(SMTP_CA_FILE_ENV, "") or None
        if ca_file:
            problem = _ca_file_problem(ca_file)
            if problem:
                problems.append(f"{SMTP_CA_FILE_ENV}={ca_file!r} {problem}")
        mail_from = env(MAIL_FROM_ENV, "")
        if not mail_from:
            problems.append(f"{MAIL_FROM_ENV} is required when {SMTP_HOST_ENV} is set")
        elif _domain_of(mail_from) is None:
            problems.append(
                f"{MAIL_FROM_ENV} must be an address such as no-reply@ksmart.example"
                f" or 'K-Smart <no-reply@ksmart.example>' (it is {mail_from!r})"
            )
        timeout_seconds = positive_seconds(SMTP_TIMEOUT_ENV, "10", problems)
        if problems:
            raise ConfigurationProblems(problems)
        return cls(
            host=host,
            port=port,
            security=security,
            username=username,
            password=password,
            ca_file=ca_file,
            mail_from=mail_from,
            timeout_seconds=timeout_seconds,
        )


def _ca_file_problem(ca_file: str) -> str | None:
    if not Path(ca_file).is_file():
        return "is not a file"
    try:
        ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError):
        return "does not hold readable PEM certificates"
    return None


def _domain_of(mail_from: str) -> str | None:
    _, address = parseaddr(mail_from)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "." not in domain.strip("."):
        return None
    return domain


class SmtpSender:
    """Sends plain-text UTF-8 email (see the module docstring)."""

    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        domain = _domain_of(settings.mail_from)
        if domain is None:
            raise ValueError(f"not a sender address: {settings.mail_from!r}")
        self.settings = settings
        self._domain = domain
        # Built once: loading the CA bundle is the slow part. create_default_context
        # verifies the certificate and the host name.
        self._tls_context = (
            ssl.create_default_context(cafile=settings.ca_file)
            if settings.security != "none"
            else None
        )

    def __repr__(self) -> str:
        return f"SmtpSender({self.settings!r})"

    def message_id_for(self, message: OutgoingMessage) -> str:
        return f"<{message.message_id}@{self._domain}>"

    def compose(self, message: OutgoingMessage) -> EmailMessage:
        """The email for a message, as it will be sent."""
        # The SMTP policy (the modern default, with CRLF line ends) writes
        # non-ASCII headers as RFC 2047 UTF-8 encoded-words, so a Malayalam
        # subject survives any relay.
        mail = EmailMessage(policy=email.policy.SMTP)
        mail["From"] = self.settings.mail_from
        mail["To"] = message.destination
        if message.subject is not None:
            mail["Subject"] = message.subject
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = self.message_id_for(message)
        # RFC 3834: out-of-office robots should not answer a notification.
        mail["Auto-Submitted"] = "auto-generated"
        # Base64 for non-ASCII text: 8bit needs a relay that offers 8BITMIME,
        # and quoted-printable triples the size of Malayalam.
        mail.set_content(
            message.text, charset="utf-8", cte=None if message.text.isascii() else "base64"
        )
        # After set_content, which clears every Content-* header.
        mail["Content-Language"] = message.language
        return mail

    def send(self, message: OutgoingMessage) -> SendResult:
        mail = self.compose(message)
        try:
            self._deliver(mail)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            code = codes[0] if codes else 0
            raise DeliveryFailed(
                f"the mail server refused the recipient ({code})", permanent=_is_5xx(code)
            ) from None
        except smtplib.SMTPSenderRefused as error:
            raise DeliveryFailed(
                f"the mail server refused the sender ({error.smtp_code})",
                permanent=_is_5xx(error.smtp_code),
            ) from None
        except smtplib.SMTPDataError as error:
            raise DeliveryFailed(
                f"the mail server refused the message ({error.smtp_code})",
                permanent=_is_5xx(error.smtp_code),
            ) from None
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryFailed(
                f"the mail server refused our credentials ({error.smtp_code})"
            ) from None
        except smtplib.SMTPNotSupportedError:
            # Raised for a missing STARTTLS or AUTH extension, and for a
            # non-ASCII address on a relay without SMTPUTF8.
            raise DeliveryFailed("the mail server lacks an extension we need") from None
        except smtplib.SMTPServerDisconnected as error:
            # smtplib reports a read that timed out as a disconnection.
            if isinstance(error.__context__, TimeoutError):
                raise DeliveryFailed(
                    f"timed out after {self.settings.timeout_seconds:g}s"
                ) from None
            raise DeliveryFailed("the mail server closed the connection") from None
        except smtplib.SMTPConnectError as error:
            raise DeliveryFailed(
                f"the mail server refused the connection ({error.smtp_code})"
            ) from None
        except smtplib.SMTPResponseException as error:
            raise DeliveryFailed(
                f"the mail server answered {error.smtp_code}", permanent=_is_5xx(error.smtp_code)
            ) from None
        except smtplib.SMTPException as error:
            raise DeliveryFailed(f"SMTP failed ({type(error).__name__})") from None
        except ssl.SSLCertVerificationError as error:
            raise DeliveryFailed(
                f"could not verify the mail server's certificate ({error.verify_message})"
            ) from None
        except ssl.SSLError as error:
            raise DeliveryFailed(f"TLS with the mail server failed ({error.reason})") from None
        except TimeoutError:
            raise DeliveryFailed(f"timed out after {self.settings.timeout_seconds:g}s") from None
        except OSError as error:
            raise DeliveryFailed(
                f"could not reach the mail server ({error.strerror or type(error).__name__})"
            ) from None
        return SendResult(provider_message_id=mail["Message-ID"])

    def _deliver(self, mail: EmailMessage) -> None:
        settings = self.settings
        if settings.security == "ssl":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                timeout=settings.timeout_seconds,
                context=self._tls_context,
            )
        else:
            connection = smtplib.SMTP(
                settings.host, settings.port, timeout=settings.timeout_seconds
            )
        with connection:
            if settings.security == "starttls":
                connection.starttls(context=self._tls_context)
            if settings.username:
                connection.login(settings.username, settings.password or "")
            connection.send_message(mail)


def _is_5xx(code: int) -> bool:
    return 500 <= code < 600
