"""Asking witnesses to cosign (C2SP tlog-witness, the log's side).

The log pushes each checkpoint it signs to every configured witness:
`POST <url>/add-checkpoint` with `old <size>`, the consistency proof from
that size, a blank line and the signed note. The witness answers its
cosignature lines (200), or the size it last cosigned (409, text/x.tlog.size)
when `old` is not it: the log then asks again from that size with a fresh
proof. A witness that is down, slow or refuses is counted and logged, and
asked again on a later turn: it never stops the log from checkpointing.

A cosignature is kept only if it verifies under the witness's own key, as
configured here (KSMART_WITNESSES: `<witness vkey>@<base URL>`, comma
separated): a line from any other key is ignored, as the spec asks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import requests

from ksmart_common.signed_note import COSIGNATURE_V1, NoteError, Verifier, open_note, parse

SIZE_CONTENT_TYPE = "text/x.tlog.size"
TIMEOUT_SECONDS = 5.0
# A witness that answers 409 twice in a row is moving under us: try later.
MAX_CONFLICTS = 2
_ENTRY = re.compile(r"(?P<vkey>\S+?)@(?P<url>https?://\S+)")


class WitnessError(Exception):
    """The witness did not cosign; the message says why."""


@dataclass(frozen=True)
class Witness:
    verifier: Verifier
    url: str

    @property
    def vkey(self) -> str:
        return self.verifier.vkey()

    @property
    def name(self) -> str:
        return self.verifier.name


def parse_witnesses(setting: str) -> list[Witness]:
    """KSMART_WITNESSES: `<vkey>@<base URL>`, comma separated."""
    witnesses = []
    for entry in (part.strip() for part in setting.split(",")):
        if not entry:
            continue
        match = _ENTRY.fullmatch(entry)
        if match is None:
            raise ValueError(f"a witness is <vkey>@<base URL>: {entry!r}")
        verifier = Verifier.from_vkey(match["vkey"])
        if verifier.signature_type != COSIGNATURE_V1:
            raise ValueError(f"{verifier.name}: a witness's key is a cosignature key (type 0x04)")
        witnesses.append(Witness(verifier, match["url"].rstrip("/")))
    return witnesses


def request_body(old_size: int, proof: list[str], note: str) -> str:
    return f"old {old_size}\n" + "".join(f"{line}\n" for line in proof) + "\n" + note


def cosign(
    witness: Witness,
    note: str,
    size: int,
    old_size: int,
    proof_from: Callable[[int], list[str]],
    session: requests.Session,
) -> tuple[str, int]:
    """Ask `witness` to cosign `note` (the checkpoint of `size`), from the
    size it was last known to hold: (its verified cosignature lines, the
    size it now holds). `proof_from(old)` gives the base64 consistency
    proof from old to size (empty from 0). WitnessError if it would not."""
    for _ in range(MAX_CONFLICTS + 1):
        proof = proof_from(old_size) if 0 < old_size < size else []
        try:
            reply = session.post(
                f"{witness.url}/add-checkpoint",
                data=request_body(old_size, proof, note).encode(),
                timeout=TIMEOUT_SECONDS,
            )
        except requests.RequestException as error:
            raise WitnessError(f"unreachable: {type(error).__name__}") from error
        # Notes are UTF-8 (the em dash), whatever charset the answer names.
        answer = reply.content.decode("utf-8", errors="replace")
        if reply.status_code == 409 and reply.headers.get("Content-Type", "").startswith(
            SIZE_CONTENT_TYPE
        ):
            known = answer.strip()
            if not known.isdigit() or int(known) > size:
                raise WitnessError(f"holds a size we cannot prove from: {known[:40]!r}")
            old_size = int(known)
            continue
        if reply.status_code != 200:
            raise WitnessError(f"answered {reply.status_code}: {answer[:200]!r}")
        return _verified_lines(witness, note, answer), size
    raise WitnessError("its size kept changing (409 each time)")


def _verified_lines(witness: Witness, note: str, answer: str) -> str:
    """The witness's own cosignature lines from its answer, each verified."""
    try:
        parsed, _ = open_note(note + answer, [witness.verifier])
    except NoteError as error:
        raise WitnessError(f"its cosignature does not verify: {error}") from error
    own = [
        line.line
        for line in parsed.signatures
        if (line.name, line.key_id) == (witness.name, witness.verifier.key_id)
    ]
    logs = {line.line for line in parse(note).signatures}
    return "".join(line for line in own if line not in logs)
