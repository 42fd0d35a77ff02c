"""One statement, many rows, at the driver's speed: the ledger's hot writes (register, finish, log), a row or two
per delivery.

Given a list of parameter sets, SQLAlchemy's `execute` handles each row again in generic code (the parameters
matched to the compiled statement, every value through its type, one dictionary after another): in a sender's
`finish`, 60-90 µs a delivery of the event loop's time, more than the database's own work. `Many` compiles its
statement once per dialect, keeps the order of its parameters and each one's bind processor, and hands the
driver plain tuples (`exec_driver_sql`: DB-API `executemany`). The values go through the same conversions as
before (`UtcDateTime` to UTC, `Note` cleaned and cut, the dialect's own for times and booleans), because they
are the columns' own processors; the only thing skipped is the generic machinery around them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable

Processor = Callable[[Any], Any] | None


class Many:
    """A statement whose parameters are all named `bindparam`s (no defaults computed at execution), for a
    positional DB-API (SQLite's qmark, asyncpg's $n): `await many.run(conn, rows)` executes it once per row
    mapping, in one `executemany`. `make(dialect_name)` builds the statement (an upsert differs by dialect)."""

    def __init__(self, make: Callable[[str], Executable]) -> None:
        self.make = make
        self._compiled: dict[str, tuple[str, list[tuple[str, Processor]]]] = {}

    def _for(self, dialect: Dialect) -> tuple[str, list[tuple[str, Processor]]]:
        if (known := self._compiled.get(dialect.name)) is None:
            compiled = self.make(dialect.name).compile(dialect=dialect)  # type: ignore[attr-defined]  # every Executable here is a ClauseElement
            if not compiled.positional or compiled.positiontup is None:
                raise TypeError(f"{dialect.name}: Many needs a positional paramstyle, not {dialect.paramstyle}")
            order = [(name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                     for name in compiled.positiontup]
            known = self._compiled[dialect.name] = (compiled.string, order)
        return known

    async def run(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        sql, order = self._for(conn.dialect)
        params = [tuple(row[name] if process is None else process(row[name]) for name, process in order)
                  for row in rows]
        await conn.exec_driver_sql(sql, params)
