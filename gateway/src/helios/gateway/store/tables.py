"""The gateway's tables, in the `gateway` schema."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table

__all__ = ["SCHEMA", "metadata", "rate_windows"]

SCHEMA = "gateway"
metadata = MetaData(schema=SCHEMA)

# One row per (limit key, window): hits counted atomically by upsert.
rate_windows = Table(
    "rate_windows",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("hits", Integer, nullable=False),
)
