"""One statement, many rows, at the driver's speed: the ledger's hot writes (register, finish, log), a row or two
per delivery.

Given a list of parameter sets, SQLAlchemy's `execute` handles each row again in generic code (the parameters
matched to the compiled statement, every value through its type, one dictionary after another): in a sender's
`finish`, 60-90 µs a delivery of the event loop's time, more than the database's own work. `Many` compiles its
statement once per dialect, keeps the order of its parameters and each one's bind processor, and hands the
driver plain tuples (`exec_driver_sql`: DB-API `executemany`). The values go through the same conversions as
before (`UtcDateTime` to UTC, `Note` cleaned and cut, the dialect's own for times and booleans), because they
are the columns' own processors; the only thing skipped is the generic machinery around them.

An instant's conversion (to UTC, then the dialect's text) is kept for the next row that gives the same instant:
a delivery closed by `finish` writes one instant three times (its update, its sent time, its log row), and a
`register` writes one instant for every row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable

from hub.store.models import UtcDateTime

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
            order = [(name, _processor(compiled.binds[name].type, dialect)) for name in compiled.positiontup]
            known = self._compiled[dialect.name] = (compiled.string, order)
        return known

    async def run(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        sql, order = self._for(conn.dialect)
        params = [tuple(row[name] if process is None else process(row[name]) for name, process in order)
                  for row in rows]
        await conn.exec_driver_sql(sql, params)


_REMEMBERED = 4096  # instants kept per dialect; a sender's batch writes a few hundred
_made: dict[str, dict[Any, Any]] = {}  # dialect -> instant -> its stored value, shared by every UtcDateTime bind


def _processor(type_: Any, dialect: Dialect) -> Processor:
    """The bind processor of a parameter's type; for an instant (`UtcDateTime`), one that remembers what it made
    of the last instants it was given, for every column of the dialect. Equal instants, whatever their
    offset, give the same stored value: an instant is taken to UTC first, so one met again returns what the
    first gave. (A plain DateTime keeps each offset's digits on SQLite: it is not remembered.)"""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    if process is None or not isinstance(type_, UtcDateTime):
        return process
    made = _made.setdefault(dialect.name, {})

    def remembered(value: Any) -> Any:
        try:
            return made[value]
        except KeyError:
            if len(made) >= _REMEMBERED:
                made.clear()
            made[value] = out = process(value)
            return out

    return remembered
