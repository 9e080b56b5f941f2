"""The transparency log's public endpoints (tag `log`): the latest signed
checkpoint with its witnesses' cosignatures, the log's key, inclusion and
consistency proofs, the leaves, and an event's inclusion by its position.
Public: a leaf is an event's hash, nothing personal. A mixin of
GatewayService (service.py); the checkpointer answers.

Caching: the latest checkpoint changes every few seconds, so it is kept
for CHECKPOINT_MAX_AGE; a proof for a given size, the leaves and the key
never change, so they are kept for a year (IMMUTABLE)."""

from __future__ import annotations

from marshmallow import fields, validate
from werkzeug.wrappers import Response

from ksmart_common.errors import ServiceUnavailable
from ksmart_common.rpc import call
from ksmart_gateway.api import PREFIX, PUBLIC, ApiResult, api
from ksmart_gateway.caching import IMMUTABLE, public
from ksmart_gateway.schemas import StrictSchema

CHECKPOINT_MAX_AGE = 5
TEXT = "text/plain; charset=utf-8"
MAX_LEAVES = 1000
# Sizes and indices fit a PostgreSQL bigint.
_BIGINT = validate.Range(min=0, max=2**63 - 1)
_POSITIVE_BIGINT = validate.Range(min=1, max=2**63 - 1)


class InclusionQuery(StrictSchema):
    index = fields.Integer(required=True, validate=_BIGINT)
    size = fields.Integer(required=True, validate=_POSITIVE_BIGINT)


class ConsistencyQuery(StrictSchema):
    from_size = fields.Integer(required=True, data_key="from", validate=_POSITIVE_BIGINT)
    to_size = fields.Integer(required=True, data_key="to", validate=_POSITIVE_BIGINT)


class LeavesQuery(StrictSchema):
    start = fields.Integer(required=True, validate=_BIGINT)
    end = fields.Integer(required=True, validate=_POSITIVE_BIGINT)


class EventInclusionQuery(StrictSchema):
    size = fields.Integer(load_default=None, validate=_POSITIVE_BIGINT)


class Proof(StrictSchema):
    index = fields.Integer()
    size = fields.Integer()
    hashes = fields.List(fields.String(), metadata={"description": "base64 SHA-256 hashes"})


class EventInclusion(Proof):
    global_position = fields.Integer()
    checkpoint = fields.String(
        allow_none=True,
        metadata={"description": "the signed checkpoint note of that size, if one was signed"},
    )


class ConsistencyProof(StrictSchema):
    from_size = fields.Integer(data_key="from")
    to_size = fields.Integer(data_key="to")
    hashes = fields.List(fields.String())


class Leaf(StrictSchema):
    index = fields.Integer()
    global_position = fields.Integer()
    stream_id = fields.String()
    stream_version = fields.Integer()
    event_hash = fields.String(metadata={"description": "the event's stored hash (hex)"})


class Leaves(StrictSchema):
    leaves = fields.List(fields.Nested(Leaf))


def text_response(text: str, cache_control: str) -> Response:
    return Response(text, content_type=TEXT, headers={"Cache-Control": cache_control})


class TransparencyEndpoints:
    @api(
        "GET",
        f"{PREFIX}/log/checkpoint",
        summary="The log's latest checkpoint (C2SP tlog-checkpoint), signed by the log and "
        "cosigned by every witness that has cosigned it so far",
        allowed_roles=PUBLIC,
        tag="log",
        text_response=True,
    )
    def log_checkpoint(self, request, principal):
        latest = call(self.checkpointer.latest_checkpoint)
        if latest is None:
            raise ServiceUnavailable("the log has signed no checkpoint yet")
        return text_response(latest["note"], public(CHECKPOINT_MAX_AGE))

    @api(
        "GET",
        f"{PREFIX}/log/key",
        summary="The log's verifier key (a C2SP signed-note vkey) that checkpoints verify with",
        allowed_roles=PUBLIC,
        tag="log",
        text_response=True,
    )
    def log_key(self, request, principal):
        # A key changes only with the deployment: an hour, not a year.
        return text_response(call(self.checkpointer.log_key) + "\n", public(3600))

    @api(
        "GET",
        f"{PREFIX}/log/proofs/inclusion",
        summary="The proof that leaf `index` is in the tree of `size` (RFC 6962 2.1.1)",
        allowed_roles=PUBLIC,
        query=InclusionQuery,
        response=Proof,
        tag="log",
    )
    def log_inclusion_proof(self, request, principal, query):
        proof = call(self.checkpointer.inclusion_proof, query["index"], query["size"])
        return ApiResult(proof, headers={"Cache-Control": IMMUTABLE})

    @api(
        "GET",
        f"{PREFIX}/log/proofs/consistency",
        summary="The proof that the tree of `to` extends the tree of `from` (RFC 6962 2.1.2)",
        allowed_roles=PUBLIC,
        query=ConsistencyQuery,
        response=ConsistencyProof,
        tag="log",
    )
    def log_consistency_proof(self, request, principal, query):
        proof = call(self.checkpointer.consistency_proof, query["from_size"], query["to_size"])
        return ApiResult(proof, headers={"Cache-Control": IMMUTABLE})

    @api(
        "GET",
        f"{PREFIX}/log/leaves",
        summary=f"Leaves [start, end) (at most {MAX_LEAVES}): which event each leaf is",
        allowed_roles=PUBLIC,
        query=LeavesQuery,
        response=Leaves,
        tag="log",
    )
    def log_leaves(self, request, principal, query):
        leaves = call(self.checkpointer.leaves, query["start"], query["end"])
        # A range past the tree's end grows until it is full: kept briefly.
        full = len(leaves["leaves"]) == query["end"] - query["start"]
        cache = IMMUTABLE if full else public(CHECKPOINT_MAX_AGE)
        return ApiResult(leaves, headers={"Cache-Control": cache})

    @api(
        "GET",
        f"{PREFIX}/log/events/<int:global_position>/inclusion",
        summary="The proof that the event at a global position is in the log: in the tree "
        "of `size`, or of the latest checkpoint, with that checkpoint's signed note",
        allowed_roles=PUBLIC,
        query=EventInclusionQuery,
        response=EventInclusion,
        tag="log",
    )
    def log_event_inclusion(self, request, principal, global_position, query):
        proof = call(self.checkpointer.event_inclusion, global_position, query["size"])
        # The latest checkpoint moves on; a given size's gains cosignatures.
        max_age = CHECKPOINT_MAX_AGE if query["size"] is None else 60
        return ApiResult(proof, headers={"Cache-Control": public(max_age)})
