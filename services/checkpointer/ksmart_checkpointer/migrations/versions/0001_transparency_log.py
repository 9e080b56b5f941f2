"""The transparency log's tables, beside the events they follow.

Only the checkpointer's role may add to them (SELECT and INSERT; nothing
else is granted to anyone), and a trigger refuses any change to a row once
written, even by their owner's mistake: a node, a leaf's place or a signed
checkpoint never changes (docs/decisions.md, "The transparency log").

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("log_leaves", "log_nodes", "log_checkpoints", "log_cosignatures")


def upgrade(roles) -> None:
    checkpointer = roles.of("checkpointer")
    op.execute(
        """
        -- Leaf i of the tree: the i-th event in global-position order.
        CREATE TABLE log_leaves (
            leaf_index bigint PRIMARY KEY CHECK (leaf_index >= 0),
            global_position bigint NOT NULL UNIQUE
        );

        -- Every perfect subtree's hash: level 0 the leaf hashes, a node
        -- (level, i) the hash of leaves [i * 2^level, (i + 1) * 2^level).
        CREATE TABLE log_nodes (
            level smallint NOT NULL CHECK (level BETWEEN 0 AND 62),
            node_index bigint NOT NULL CHECK (node_index >= 0),
            hash bytea NOT NULL CHECK (length(hash) = 32),
            PRIMARY KEY (level, node_index)
        );

        -- Each signed checkpoint (a C2SP signed note) and the witnesses'
        -- cosignature lines as they arrived.
        CREATE TABLE log_checkpoints (
            tree_size bigint PRIMARY KEY CHECK (tree_size >= 1),
            root_hash bytea NOT NULL CHECK (length(root_hash) = 32),
            note text NOT NULL,
            signed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE log_cosignatures (
            tree_size bigint NOT NULL REFERENCES log_checkpoints (tree_size),
            witness_key text NOT NULL,
            signature_line text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tree_size, witness_key)
        );

        CREATE FUNCTION refuse_log_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the transparency log is append-only: % on % is refused',
                TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        """
    )
    for table in TABLES:
        op.execute(
            f"""
            CREATE TRIGGER {table}_refuse_update_delete BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION refuse_log_change();
            CREATE TRIGGER {table}_refuse_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION refuse_log_change();
            REVOKE ALL ON {table} FROM PUBLIC;
            GRANT SELECT, INSERT ON {table} TO "{checkpointer}";
            """
        )
    # What it follows: the events, read only.
    op.execute(f'GRANT SELECT ON events TO "{checkpointer}"')


def downgrade(roles) -> None:
    op.execute(f"DROP TABLE {', '.join(reversed(TABLES))}")
    op.execute("DROP FUNCTION refuse_log_change()")
    op.execute(f'REVOKE SELECT ON events FROM "{roles.of("checkpointer")}"')
