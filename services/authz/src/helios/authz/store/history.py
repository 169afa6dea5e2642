"""The revision-span conditions every history table shares: live now, or live at revision R."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, and_, or_

__all__ = ["live"]


def live(table: Table, at: int | None = None) -> ColumnElement[bool]:
    """Rows of `table` live now (at None) or at revision `at`: added_revision <= at and not
    removed by then."""
    removed = table.c.removed_revision
    if at is None:
        return removed.is_(None)
    return and_(table.c.added_revision <= at, or_(removed.is_(None), removed > at))
