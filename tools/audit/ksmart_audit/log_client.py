"""The gateway's transparency-log endpoints (public: leaves are hashes), read
through the same retrying HTTP client as the audit endpoints:

    GET /api/v1/log/checkpoint                      the signed, cosigned note
    GET /api/v1/log/key                             the log's verifier key
    GET /api/v1/log/proofs/consistency?from=&to=    hashes, base64
    GET /api/v1/log/proofs/inclusion?index=&size=   hashes, base64
    GET /api/v1/log/events/{position}/inclusion     index, size, hashes
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ksmart_audit.source import HttpRefused, HttpSource, SourceError

PREFIX = "/api/v1/log"


def _hashes(answer: Any, what: str) -> list[bytes]:
    try:
        return [base64.b64decode(text, validate=True) for text in answer["hashes"]]
    except (KeyError, TypeError, binascii.Error) as error:
        raise SourceError(f"the gateway's {what} is not a list of base64 hashes") from error


class LogClient:
    def __init__(self, source: HttpSource) -> None:
        self.source = source

    def checkpoint(self) -> str:
        try:
            return self.source.get_text(f"{PREFIX}/checkpoint")
        except HttpRefused as error:
            raise SourceError(f"the gateway serves no checkpoint ({error})") from error

    def key(self) -> str:
        return self.source.get_text(f"{PREFIX}/key").strip()

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        answer = self.source.get(f"{PREFIX}/proofs/consistency", {"from": old_size, "to": new_size})
        return _hashes(answer, f"consistency proof from {old_size} to {new_size}")

    def inclusion(self, index: int, size: int) -> list[bytes]:
        answer = self.source.get(f"{PREFIX}/proofs/inclusion", {"index": index, "size": size})
        return _hashes(answer, f"inclusion proof of leaf {index} in {size}")

    def event_inclusion(self, position: int, size: int) -> tuple[int, list[bytes]]:
        """The leaf index of the event at `position`, and its proof in `size`."""
        answer = self.source.get(f"{PREFIX}/events/{position}/inclusion", {"size": size})
        if not isinstance(answer.get("index"), int):
            raise SourceError(f"the gateway names no leaf index for position {position}")
        return answer["index"], _hashes(answer, f"inclusion proof of position {position}")
