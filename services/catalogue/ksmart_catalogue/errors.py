"""The error a broken catalogue definition raises.

It is a load-time error (the service refuses to start with a broken
catalogue), so it never crosses RPC and is not registered with nameko's
exception registry. It keeps the shared `KsmartError` shape so that its
problems read the same as every other error's: one entry per problem.
"""

from __future__ import annotations

from ksmart_common.errors import KsmartError


class CatalogueError(KsmartError):
    title = "The service catalogue has problems"

    def __init__(self, problems: list[dict[str, str]]) -> None:
        # One line per problem, "file: field.path: message", so a maintainer
        # fixes every mistake in one pass instead of one per restart.
        detail = "\n".join(
            f"{problem['file']}: {problem['field']}: {problem['message']}" for problem in problems
        )
        super().__init__(detail, problems)


def problem(file: str, field: str, message: str) -> dict[str, str]:
    return {"file": file, "field": field, "message": message}
