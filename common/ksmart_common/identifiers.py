"""Checks on identifiers that arrive from outside (RPC arguments, query
values), made before one reaches a query that would fail on it."""

from __future__ import annotations

import uuid
from typing import Any


def is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
