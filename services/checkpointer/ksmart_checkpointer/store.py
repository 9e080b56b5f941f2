"""The log's tables (migrations/versions/0001): its leaves, its nodes, its
signed checkpoints and their cosignatures, written only by the
checkpointer's role, read by it to answer proofs.

Leaves follow the events in global-position order. The event store makes
that order final as rows become visible (eventstore.py: positions are
assigned under a lock held until commit, so no event with a lower position
can commit after a reader saw a higher one: the barrier the relay relies
on too). Hence a leaf index, once given, never moves, and every node is
written once.

One writer at a time: each write takes the transaction-scoped advisory
lock WRITER_LOCK, so of several replicas one extends the tree and signs at
a time, and the others find the lock taken and leave it to that one.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ksmart_checkpointer import tree_storage
from ksmart_common import merkle

WRITER_LOCK = 0x746C6F67  # "tlog"


@dataclass(frozen=True)
class TreeHead:
    """How far the tree reaches: its size and the last event's position."""

    size: int
    last_position: int


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: str  # signed by the log, cosignatures not included
    signed_at: datetime
    cosignature_lines: tuple[str, ...] = ()

    @property
    def cosigned_note(self) -> str:
        """The note as served: the log's signature, then each witness's."""
        return self.note + "".join(self.cosignature_lines)


class LogStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- writing (the leader only) ----------------------------------------------

    def absorb(self, limit: int) -> int | None:
        """Append up to `limit` new events to the tree: how many, or None if
        another replica holds the writer's lock."""
        with self.engine.begin() as conn:
            head = _lead(conn)
            if head is None:
                return None
            rows = conn.execute(
                sa.text(
                    "SELECT global_position, hash FROM events WHERE global_position > :after"
                    " ORDER BY global_position LIMIT :limit"
                ),
                {"after": head.last_position, "limit": limit},
            ).all()
            if not rows:
                return 0
            edge = merkle.CompactRange(head.size, _peaks(conn, head.size))
            hashed = [merkle.leaf_hash(bytes.fromhex(row.hash)) for row in rows]
            # One statement a table, the rows as arrays: a batch is a few
            # round trips, not one a row (executemany), which capped the
            # checkpointer below the append rate (make bench, transparency).
            conn.execute(
                sa.text(
                    "INSERT INTO log_leaves (leaf_index, global_position)"
                    " SELECT * FROM unnest(CAST(:i AS bigint[]), CAST(:p AS bigint[]))"
                ),
                {
                    "i": list(range(head.size, head.size + len(rows))),
                    "p": [row.global_position for row in rows],
                },
            )
            levels, indexes, values = zip(*tree_storage.new_nodes(edge, hashed), strict=True)
            conn.execute(
                sa.text(
                    "INSERT INTO log_nodes (level, node_index, hash) SELECT * FROM unnest("
                    "CAST(:l AS smallint[]), CAST(:i AS bigint[]), CAST(:h AS bytea[]))"
                ),
                {"l": list(levels), "i": list(indexes), "h": list(values)},
            )
            return len(rows)

    def sign_if_due(
        self, sign: Callable[[int, bytes], str], min_age_seconds: float
    ) -> StoredCheckpoint | None:
        """A new checkpoint of the whole tree, if it grew since the last one
        and the last is at least `min_age_seconds` old; `sign(size, root)`
        gives the signed note. None if nothing was signed."""
        with self.engine.begin() as conn:
            head = _lead(conn)
            if head is None:
                return None
            latest = conn.execute(
                sa.text(
                    "SELECT tree_size, now() - signed_at < make_interval(secs => :age) AS recent"
                    " FROM log_checkpoints ORDER BY tree_size DESC LIMIT 1"
                ),
                {"age": min_age_seconds},
            ).first()
            if head.size == 0 or (latest and (latest.tree_size >= head.size or latest.recent)):
                return None
            root = merkle.CompactRange(head.size, _peaks(conn, head.size)).root()
            note = sign(head.size, root)
            signed_at = conn.execute(
                sa.text(
                    "INSERT INTO log_checkpoints (tree_size, root_hash, note)"
                    " VALUES (:s, :r, :n) RETURNING signed_at"
                ),
                {"s": head.size, "r": root, "n": note},
            ).scalar_one()
            return StoredCheckpoint(head.size, root, note, signed_at)

    def add_cosignature(self, size: int, witness_key: str, line: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO log_cosignatures (tree_size, witness_key, signature_line)"
                    " VALUES (:s, :k, :l) ON CONFLICT DO NOTHING"
                ),
                {"s": size, "k": witness_key, "l": line},
            )

    # -- reading -------------------------------------------------------------------

    def head(self) -> TreeHead:
        with self.engine.connect() as conn:
            return _head(conn)

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self._checkpoint("ORDER BY tree_size DESC LIMIT 1", {})

    def checkpoint(self, size: int) -> StoredCheckpoint | None:
        return self._checkpoint("WHERE tree_size = :s", {"s": size})

    def _checkpoint(self, where: str, values: dict) -> StoredCheckpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    f"SELECT tree_size, root_hash, note, signed_at FROM log_checkpoints {where}"
                ),
                values,
            ).first()
            if row is None:
                return None
            lines = conn.execute(
                sa.text(
                    "SELECT signature_line FROM log_cosignatures WHERE tree_size = :s"
                    " ORDER BY received_at, witness_key"
                ),
                {"s": row.tree_size},
            ).scalars()
            return StoredCheckpoint(
                row.tree_size, bytes(row.root_hash), row.note, row.signed_at, tuple(lines)
            )

    def cosigned_sizes(self) -> dict[str, int]:
        """The largest size each witness (by its vkey) has cosigned."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT witness_key, max(tree_size) AS size FROM log_cosignatures"
                    " GROUP BY witness_key"
                )
            ).all()
        return {row.witness_key: row.size for row in rows}

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self._proof(lambda subtree: merkle.inclusion_proof(index, size, subtree))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return self._proof(lambda subtree: merkle.consistency_proof(old_size, new_size, subtree))

    def _proof(self, build: Callable[[merkle.Subtree], list[bytes]]) -> list[bytes]:
        """The proof from the nodes it needs, read in one query."""
        wanted = tree_storage.proof_keys(build)
        with self.engine.connect() as conn:
            nodes = _nodes(conn, wanted)
        return build(tree_storage.subtree_from(nodes))

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT hash FROM log_nodes WHERE level = 0"
                        " AND node_index >= :start AND node_index < :end ORDER BY node_index"
                    ),
                    {"start": start, "end": end},
                ).scalars()
            )

    def leaves(self, start: int, end: int) -> list[dict]:
        """Leaves [start, end) with the events they are."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT l.leaf_index, l.global_position, e.stream_id, e.stream_version, e.hash"
                    " FROM log_leaves l JOIN events e USING (global_position)"
                    " WHERE l.leaf_index >= :start AND l.leaf_index < :end ORDER BY l.leaf_index"
                ),
                {"start": start, "end": end},
            ).all()
        return [
            {
                "index": row.leaf_index,
                "global_position": row.global_position,
                "stream_id": row.stream_id,
                "stream_version": row.stream_version,
                "event_hash": row.hash,
            }
            for row in rows
        ]

    def leaf_index_of(self, global_position: int) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT leaf_index FROM log_leaves WHERE global_position = :p"),
                {"p": global_position},
            ).scalar()

    def event_exists(self, global_position: int) -> bool:
        with self.engine.connect() as conn:
            return bool(
                conn.execute(
                    sa.text("SELECT 1 FROM events WHERE global_position = :p"),
                    {"p": global_position},
                ).scalar()
            )

    def lag(self) -> tuple[int, float]:
        """Events stored but in no checkpoint yet, and the age in seconds of
        the oldest of them (0 when none)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    """
                    WITH checkpointed AS (
                        SELECT coalesce(max(l.global_position), 0) AS position
                        FROM log_leaves l
                        WHERE l.leaf_index < (SELECT coalesce(max(tree_size), 0)
                                              FROM log_checkpoints)
                    )
                    SELECT (SELECT coalesce(max(global_position), 0) FROM events)
                               - checkpointed.position AS events,
                           coalesce(extract(epoch FROM now() - (
                               SELECT recorded_at FROM events
                               WHERE global_position > checkpointed.position
                               ORDER BY global_position LIMIT 1)), 0) AS seconds
                    FROM checkpointed
                    """
                )
            ).one()
        return int(row.events), float(row.seconds)


def _lead(conn: sa.Connection) -> TreeHead | None:
    """The tree's head, once this transaction holds the writer's lock; None
    if another replica holds it."""
    locked = conn.execute(
        sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": WRITER_LOCK}
    ).scalar_one()
    return _head(conn) if locked else None


def _head(conn: sa.Connection) -> TreeHead:
    row = conn.execute(
        sa.text(
            "SELECT leaf_index, global_position FROM log_leaves ORDER BY leaf_index DESC LIMIT 1"
        )
    ).first()
    return TreeHead(0, 0) if row is None else TreeHead(row.leaf_index + 1, row.global_position)


def _peaks(conn: sa.Connection, size: int) -> list[bytes]:
    keys = tree_storage.peak_keys(size)
    nodes = _nodes(conn, keys)
    return [nodes[key] for key in keys]


def _nodes(conn: sa.Connection, keys: Iterable[tree_storage.NodeKey]) -> dict:
    keys = list(keys)
    if not keys:
        return {}
    rows = conn.execute(
        sa.text(
            "SELECT n.level, n.node_index, n.hash FROM log_nodes n"
            " JOIN unnest(CAST(:levels AS smallint[]), CAST(:indexes AS bigint[]))"
            " AS wanted (level, node_index) USING (level, node_index)"
        ),
        {"levels": [level for level, _ in keys], "indexes": [index for _, index in keys]},
    ).all()
    return {(row.level, row.node_index): bytes(row.hash) for row in rows}


def b64(hashes: Iterable[bytes]) -> list[str]:
    return [base64.b64encode(value).decode() for value in hashes]
