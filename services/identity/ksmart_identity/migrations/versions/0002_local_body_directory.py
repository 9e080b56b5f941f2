"""The local-body directory: districts, the local bodies in them, their wards.

Codes are stable for ever (users.local_body, tokens and files carry them), so
nothing here is ever deleted: the loader (ksmart_identity.directory) upserts,
and a body that ceases to exist is marked with `dissolved_on`. The checks
repeat the loader's validation so a hand-written INSERT can't break the shape
other services rely on.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    service = roles.of("identity")
    op.execute(
        """
        CREATE TABLE districts (
            code text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
            name_en text NOT NULL CHECK (name_en <> ''),
            name_ml text NOT NULL CHECK (name_ml <> '')
        );

        CREATE TABLE local_bodies (
            -- 'KL-EKM-KOC': the district is part of the code, so it can't drift.
            code text PRIMARY KEY
                CHECK (code ~ '^KL-[A-Z]{3}-[A-Z0-9]{2,6}$' AND substr(code, 4, 3) = district),
            district text NOT NULL REFERENCES districts (code),
            type text NOT NULL CHECK (type IN (
                'grama_panchayat', 'block_panchayat', 'district_panchayat',
                'municipality', 'corporation'
            )),
            name_en text NOT NULL CHECK (name_en <> ''),
            name_ml text NOT NULL CHECK (name_ml <> ''),
            dissolved_on date NULL
        );
        CREATE INDEX local_bodies_district_type ON local_bodies (district, type);

        CREATE TABLE wards (
            local_body text NOT NULL REFERENCES local_bodies (code),
            -- At most 999: the code's number has three digits.
            number integer NOT NULL CHECK (number BETWEEN 1 AND 999),
            code text NOT NULL UNIQUE
                CHECK (code = local_body || '-W' || lpad(number::text, 3, '0')),
            name_en text NULL,
            name_ml text NULL,
            PRIMARY KEY (local_body, number)
        );

        REVOKE ALL ON districts, local_bodies, wards FROM PUBLIC;
        """
    )
    # No DELETE or TRUNCATE: a code, once issued, stays. UPDATE only of what may
    # change under a stable code (names, a body's type, its dissolution).
    op.execute(f'GRANT SELECT, INSERT ON districts, local_bodies, wards TO "{service}"')
    op.execute(f'GRANT UPDATE (name_en, name_ml) ON districts, wards TO "{service}"')
    op.execute(
        f'GRANT UPDATE (type, name_en, name_ml, dissolved_on) ON local_bodies TO "{service}"'
    )


def downgrade(roles) -> None:
    op.execute("DROP TABLE wards; DROP TABLE local_bodies; DROP TABLE districts")
