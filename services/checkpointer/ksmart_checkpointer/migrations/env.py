from alembic import context

from ksmart_common.migrations import run_migrations_online

run_migrations_online(context)
