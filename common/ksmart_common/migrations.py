"""Databases, roles and schema migrations: one alembic history per service.

The admin connection (a role that may create databases and roles) creates the
service's database and its least-privileged login roles, then runs the
service's migrations; each migration grants the service roles exactly what
they need. Role names come from a prefix so that tests can create their own
and drop them afterwards.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

# The login roles each service's database grants to (besides the admin).
SERVICE_ROLES = {
    "applications": ("applications", "relay"),
    "workflow": ("workflow",),
    "identity": ("identity",),
    "notifications": ("notifications",),
    "checkpointer": ("checkpointer",),
}

# Histories kept in another service's database, migrated after that
# service's own (they grant on its tables): the checkpointer's tables sit
# beside the events it reads, and stay its own (migrations of its package,
# a version table of their own, grants to its role alone).
GUEST_HISTORIES = {"applications": ("checkpointer",)}


def roles_in_database(service: str) -> tuple[str, ...]:
    """Every login role the service's database grants to, guests' included."""
    guests = GUEST_HISTORIES.get(service, ())
    return tuple(role for owner in (service, *guests) for role in SERVICE_ROLES[owner])


@dataclass(frozen=True)
class RoleNames:
    prefix: str = "ksmart_"

    def of(self, name: str) -> str:
        return f"{self.prefix}{name}"


def _admin_engine(admin_url: str) -> sa.Engine:
    return sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def url_for_database(url: str, database: str, user: str | None = None) -> str:
    parsed = make_url(url).set(database=database)
    if user is not None:
        parsed = parsed.set(username=user, password=None)
    return parsed.render_as_string(hide_password=False)


def ensure_database(admin_url: str, database: str) -> None:
    engine = _admin_engine(admin_url)
    with engine.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database}
        ).scalar()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
    engine.dispose()


def ensure_role(admin_url: str, role: str) -> None:
    engine = _admin_engine(admin_url)
    with engine.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
        ).scalar()
        if not exists:
            # Login only; no superuser, no createdb, no createrole, no bypassrls.
            conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOINHERIT'))
    engine.dispose()


def drop_database(admin_url: str, database: str) -> None:
    engine = _admin_engine(admin_url)
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    engine.dispose()


def drop_role(admin_url: str, role: str) -> None:
    engine = _admin_engine(admin_url)
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
    engine.dispose()


def alembic_config(
    service: str, database_admin_url: str, roles: RoleNames, version_table: str = "alembic_version"
) -> Config:
    package = f"ksmart_{service}"
    location = importlib.resources.files(package) / "migrations"
    config = Config()
    config.set_main_option("script_location", str(location))
    config.attributes["url"] = database_admin_url
    config.attributes["roles"] = roles
    config.attributes["version_table"] = version_table
    return config


def upgrade(service: str, admin_url: str, database: str, roles: RoleNames) -> None:
    """Create the database and roles if missing, then migrate to head."""
    ensure_database(admin_url, database)
    for role in roles_in_database(service):
        ensure_role(admin_url, roles.of(role))
    database_url = url_for_database(admin_url, database)
    command.upgrade(alembic_config(service, database_url, roles), "head")
    for guest in GUEST_HISTORIES.get(service, ()):
        guest_config = alembic_config(guest, database_url, roles, f"alembic_version_{guest}")
        command.upgrade(guest_config, "head")


def run_migrations_online(context) -> None:
    """The body of every service's migrations/env.py."""
    url = context.config.attributes["url"]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=None,
            version_table=context.config.attributes.get("version_table", "alembic_version"),
        )
        with context.begin_transaction():
            context.run_migrations(roles=context.config.attributes["roles"])
    engine.dispose()
