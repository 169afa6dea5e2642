"""Alembic environment of the ai_broker schema (the shared logic lives in the kernel)."""

from helios.kernel.migrations import run_alembic_env

run_alembic_env()
