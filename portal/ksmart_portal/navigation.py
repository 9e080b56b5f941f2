"""The links in every page's header for the work of the signed-in
person's roles: a citizen sees their files, an official the inbox, an
auditor the audit, and so on. Each page module offers its links when it
registers its pages (offer), with the roles they are for."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, url_for

from ksmart_portal import calls

EXTENSION = "navigation"


@dataclass(frozen=True)
class NavLink:
    endpoint: str
    label: str  # marked with N_, translated when shown
    roles: tuple[str, ...]


def offer(app: Flask, link: NavLink) -> None:
    app.extensions.setdefault(EXTENSION, []).append(link)


def links() -> list[NavLink]:
    """The signed-in person's links, in the order they were offered."""
    offered = current_app.extensions.get(EXTENSION, [])
    return [link for link in offered if calls.has_role(*link.roles)]


def landing() -> str:
    """Where a person goes after signing in: their first link, else their account."""
    mine = links()
    return url_for(mine[0].endpoint) if mine else url_for("account")
