"""Two database primitives that every area's rules share, for SQLite and PostgreSQL alike.

- ``insert_unless_exists``: ``INSERT ... ON CONFLICT (keys) DO NOTHING``. Of two writers racing
  to insert one natural key, one inserts and the other finds its row, without a savepoint
  (which SQLite's deferred transactions would turn into an early commit, see
  ``app._sqlite_pragmas``).
- ``insert_or_add``: ``INSERT ... ON CONFLICT (keys) DO UPDATE SET c = c + excluded.c``: a
  counter row made by its first increment, and added to atomically after (PostgreSQL takes
  the row's lock for the update, so parallel increments all count).
- ``share_row``: hold a row against writers but not against other sharers, so many requests
  can rely on a row's state (a period being open) while one writer (the close) waits for them
  and they wait for it. PostgreSQL takes ``FOR SHARE``; SQLite, with no row locks, does what
  ``lock_row`` does.
- ``lock_row``: hold a row until the transaction ends, so that rules reading it (an order's
  state, what is left of a sale) are serialised. PostgreSQL takes a row lock (``SELECT ...
  FOR UPDATE``); SQLite has no row locks, and locks the whole database for writing at a
  transaction's first write, so a no-op write takes that lock now, before the row is read.
- ``int_array``: a list of integers as one PostgreSQL array parameter, for statements that
  write thousands of rows in one ``INSERT ... SELECT FROM unnest(...)``.
- ``read_one``: a request's only read, without a transaction around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import enum

from sqlalchemy import Enum, Executable, Insert, Row, String, Table, bindparam, cast, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, scoped_session


def insert_unless_exists(session: Session, model: type[Any], keys: Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` for ``model`` on the session's database.

    Raises NotImplementedError on a database other than SQLite or PostgreSQL.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing(index_elements=list(keys))
    if dialect == "sqlite":
        return sqlite.insert(model).on_conflict_do_nothing(index_elements=list(keys))
    raise NotImplementedError(f"Megabox supports SQLite and PostgreSQL, not {dialect}")


def int_array(name: str, values: Sequence[int], item: Any) -> Any:
    """``values`` as a PostgreSQL array of ``item`` (Integer, BigInteger), sent as its text,
    which PostgreSQL parses faster than the driver writes a list."""
    return cast(bindparam(name, "{" + ",".join(map(str, values)) + "}", String), postgresql.ARRAY(item))


def read_one(session: Session | scoped_session[Session], statement: Executable, params: dict[str, Any]) -> Row[Any] | None:
    """The one row (or None) of a read-only ``statement``, for a request that reads nothing
    else first, such as a stream's Range request.

    On PostgreSQL, when the session has no transaction yet, it runs on a connection of its
    own in autocommit, returned to the pool at once: one statement sees one snapshot anyway,
    and it spares the BEGIN and ROLLBACK round trips (half of the request's four). Under a
    threaded server each round trip also gives up the interpreter lock and waits to get it
    back; a player seeking sends many such requests. Otherwise it runs in the session.
    """
    current = session() if isinstance(session, scoped_session) else session
    if current.in_transaction() or current.get_bind().dialect.name != "postgresql":
        return current.connection().execute(statement, params).one_or_none()
    with current.get_bind().connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection.execute(statement, params).one_or_none()


def insert_or_add(
    session: Session, model: type[Any], keys: Sequence[str], values: dict[str, Any]
) -> None:
    """Insert ``values`` as a row of ``model``, or, when its ``keys`` exist, add the other
    values to that row's columns. Raises NotImplementedError as ``insert_unless_exists``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = postgresql.insert(model).values(**values)
    elif dialect == "sqlite":
        statement = sqlite.insert(model).values(**values)
    else:
        raise NotImplementedError(f"Megabox supports SQLite and PostgreSQL, not {dialect}")
    table = model.__table__
    added = {
        name: table.c[name] + statement.excluded[name] for name in values if name not in keys
    }
    session.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=added))


def lock_row(session: Session, table: Table, row_id: Any) -> None:
    """Hold the row of ``table`` whose ``id`` is ``row_id`` until the transaction ends."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(table).where(table.c.id == row_id).values(id=table.c.id))
    else:
        session.execute(select(table.c.id).where(table.c.id == row_id).with_for_update())


def share_row(session: Session, table: Table, row_id: Any) -> None:
    """Hold the row of ``table`` whose ``id`` is ``row_id`` against writers until the end."""
    if session.get_bind().dialect.name == "sqlite":
        lock_row(session, table, row_id)
    else:
        session.execute(select(table.c.id).where(table.c.id == row_id).with_for_update(read=True))


def value_enum(cls: type[enum.Enum], name: str) -> Enum:
    """A column type for ``cls``: its lower-case values in a VARCHAR(20) with a CHECK, the same
    on every database."""
    return Enum(
        cls, name=name, native_enum=False, create_constraint=True, length=20,
        values_callable=lambda members: [m.value for m in members],
    )  # fmt: skip
