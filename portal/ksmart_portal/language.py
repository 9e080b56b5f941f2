"""Which language a page is in: the visitor's choice (a cookie), else what
their browser asks for (Accept-Language), else English."""

from __future__ import annotations

from ksmart_common.domain.vocabulary import DEFAULT_LANGUAGE, LANGUAGES

LANGUAGE_COOKIE = "lang"
ONE_YEAR_SECONDS = 365 * 24 * 3600


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    for tag, _quality in _preferences(accept_language or ""):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def _preferences(header: str) -> list[tuple[str, float]]:
    """The header's language tags, most wanted first (RFC 9110 12.5.4)."""
    wanted = []
    for position, item in enumerate(header.split(",")):
        tag, _, parameters = item.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            wanted.append((tag.lower(), quality, position))
    wanted.sort(key=lambda entry: (-entry[1], entry[2]))
    return [(tag, quality) for tag, quality, _ in wanted]


def safe_next(target: str | None) -> str:
    """Where to go back to after switching language: a path on this site
    only, never another site (`//evil.example` or `/\\evil.example`)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target
