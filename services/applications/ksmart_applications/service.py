"""The applications service: the event store's only writer.

Entry points are thin: they turn RPC arguments into domain values and call
the command handlers in commands.py. Publication to RabbitMQ is not done
here: the relay (relay_main.py) publishes what this service stored.
"""

from __future__ import annotations

from typing import Any

from nameko.rpc import RpcProxy, rpc

from ksmart_applications import commands
from ksmart_applications.dependencies import DefinitionCacheProvider, EventStoreProvider
from ksmart_common.domain.file import Actor
from ksmart_common.envelope import to_json
from ksmart_common.errors import InvalidInput
from ksmart_common.rpc import call

MAX_PAGE = 1_000


def actor_from(document: dict[str, Any]) -> Actor:
    return Actor(
        actor_id=str(document["actor_id"]),
        roles=tuple(document.get("roles", ())),
        local_body=document.get("local_body"),
    )


class ApplicationsService:
    name = "applications"

    store = EventStoreProvider()
    definitions = DefinitionCacheProvider()
    catalogue = RpcProxy("catalogue")

    @rpc
    def submit_application(
        self, service_code: str, local_body: str, form: dict, actor: dict, request: dict
    ) -> dict:
        state, created = commands.submit(
            self.store,
            lambda code: self.definitions.get(
                code, lambda missing: call(self.catalogue.get_service, missing)
            ),
            service_code,
            local_body,
            form,
            actor_from(actor),
            request,
        )
        return {"file": state.view(), "created": created}

    @rpc
    def take_action(
        self,
        file_id: str,
        action: str,
        remarks: str | None,
        expected_version: int | None,
        actor: dict,
        request: dict,
    ) -> dict:
        state = commands.act(
            self.store, file_id, action, remarks, expected_version, actor_from(actor), request
        )
        return state.view()

    @rpc
    def get_file(self, file_id: str, actor: dict) -> dict:
        return commands.read_file(self.store, file_id, actor_from(actor)).view()

    @rpc
    def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[dict]:
        """For other services (gap filling); the gateway never exposes it raw."""
        return [
            to_json(envelope)
            for envelope in self.store.read_stream(stream_id, from_version, to_version)
        ]

    @rpc
    def audit_file_events(self, file_id: str, actor: dict) -> list[dict]:
        commands.require_auditor(actor_from(actor))
        state = commands.load_file(self.store, file_id)
        return [to_json(envelope) for envelope in self.store.read_stream(state.stream_id)]

    @rpc
    def audit_read_all(self, after_position: int, limit: int, actor: dict) -> dict:
        commands.require_auditor(actor_from(actor))
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(
                "limit out of range", [{"field": "limit", "message": f"1 to {MAX_PAGE}"}]
            )
        events = self.store.read_all(after_position, limit)
        return {
            "events": [to_json(envelope) for envelope in events],
            "next_position": events[-1].global_position if events else after_position,
        }

    @rpc
    def health(self) -> dict:
        return {"status": "ok", "last_position": self.store.last_position()}
