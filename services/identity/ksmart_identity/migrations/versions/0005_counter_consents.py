"""Counter staff: Akshaya operators (a kind of staff account of their own),
and one-time codes by which a citizen consents to an application filed in
their name at a counter.

A consent is a one-time-code challenge like a sign-in's, with a purpose and
the operator who asked for it: a consent's code never signs anyone in, a
sign-in code never consents, and only the operator who asked may use it.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade(roles) -> None:
    op.execute(
        """
        ALTER TABLE users DROP CONSTRAINT users_kind_check;
        ALTER TABLE users ADD CONSTRAINT users_kind_check
            CHECK (kind IN ('citizen', 'official', 'operator', 'auditor', 'administrator'));

        ALTER TABLE otp_challenges
            ADD COLUMN purpose text NOT NULL DEFAULT 'sign_in'
                CHECK (purpose IN ('sign_in', 'counter_consent')),
            ADD COLUMN requested_by uuid NULL REFERENCES users (user_id),
            ADD CONSTRAINT otp_challenges_consent_has_operator
                CHECK ((purpose = 'counter_consent') = (requested_by IS NOT NULL));
        """
    )


def downgrade(roles) -> None:
    op.execute(
        """
        DELETE FROM otp_challenges WHERE purpose <> 'sign_in';
        ALTER TABLE otp_challenges DROP COLUMN requested_by, DROP COLUMN purpose;
        ALTER TABLE users DROP CONSTRAINT users_kind_check;
        ALTER TABLE users ADD CONSTRAINT users_kind_check
            CHECK (kind IN ('citizen', 'official', 'auditor', 'administrator'));
        """
    )
