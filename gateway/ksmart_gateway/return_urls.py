"""Where a payment provider may send a citizen back: only to an origin the
deployment allows (KSMART_PAYMENT_RETURN_ORIGINS, such as the portal's).

The gateway hands the return URL to the provider, which redirects the
citizen's browser to it after they pay. Were any URL accepted, the platform's
payment flow would be an open redirect: a link that starts on the real
provider's page and ends on a look-alike asking for a password. So the URL
must be absolute http(s), without user name or password, and its origin
(scheme, host and port) one of the listed ones; the path is free, since the
origin's owner (the portal) serves it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

RETURN_ORIGINS_ENV = "KSMART_PAYMENT_RETURN_ORIGINS"
MAX_RETURN_URL_LENGTH = 2000
# Each scheme with its default port, which an origin leaves out.
SCHEMES = {"http": 80, "https": 443}


def allowed_origins(setting: str) -> frozenset[str]:
    """The origins in a comma-separated setting, each as scheme://host[:port]
    in lower case; a ValueError names every entry that is not one."""
    origins, wrong = set(), []
    for entry in (part.strip() for part in setting.split(",")):
        if not entry:
            continue
        origin = origin_of(entry)
        path, query, fragment = urlsplit(entry)[2:]
        if origin is None or path not in ("", "/") or query or fragment:
            wrong.append(entry)
        else:
            origins.add(origin)
    if wrong:
        raise ValueError(
            f"{RETURN_ORIGINS_ENV} takes origins such as https://portal.example.org"
            f" (scheme, host and port only), separated by commas; not: {', '.join(wrong)}"
        )
    return frozenset(origins)


def origin_of(url: str) -> str | None:
    """scheme://host[:port] of an absolute http(s) URL, in lower case; None
    for anything else (relative, another scheme, a user name in it, a
    malformed port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    shown_port = "" if port in (None, SCHEMES[scheme]) else f":{port}"
    return f"{scheme}://{host}{shown_port}"


def return_url_problem(url: str, origins: frozenset[str]) -> str | None:
    """Why `url` may not be a return URL, or None when it may."""
    if len(url) > MAX_RETURN_URL_LENGTH:
        return f"must be at most {MAX_RETURN_URL_LENGTH} characters"
    if any(character.isspace() or not character.isprintable() for character in url):
        return "must not contain spaces or control characters"
    origin = origin_of(url)
    if origin is None:
        return "must be an absolute http or https URL without a user name or password"
    if origin not in origins:
        return "must be on an address this platform allows to receive payments' returns"
    return None
