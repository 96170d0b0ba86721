"""Batches sized by the limits each dialect declares (rows, bound parameters, bytes), never by
if-dialect branches: a dialect module states its `Limits`, this module does the arithmetic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter

from chatmigrate.loaders.rows import COLUMNS, TABLE_ORDER, Row, key_columns


@dataclass(frozen=True, slots=True)
class Limits:
    """What one write statement of a dialect may carry."""

    max_rows: int
    max_params: int | None = None
    max_bytes: int | None = None

    def rows_per_statement(self, table: str) -> int:
        rows = self.max_rows
        if self.max_params:
            rows = min(rows, self.max_params // len(COLUMNS[table]))
        return max(rows, 1)


def row_bytes(row: Row) -> int:
    """A cheap upper-bound estimate of a row's size on the wire (UTF-8 is at most 4 bytes a char)."""
    size = 8 * len(row)
    for value in row:
        if isinstance(value, str):
            size += len(value) * 4 if not value.isascii() else len(value)
    return size


@dataclass(slots=True)
class PendingRows:
    """Rows waiting to be written, per table; `full` says when a flush is due."""

    flush_rows: int
    tables: dict[str, list[Row]] = field(default_factory=lambda: {t: [] for t in TABLE_ORDER})
    count: int = 0

    def add(self, table: str, row: Row) -> None:
        self.tables[table].append(row)
        self.count += 1

    @property
    def full(self) -> bool:
        return self.count >= self.flush_rows

    def drain(self) -> Iterator[tuple[str, list[Row]]]:
        """Yield the non-empty tables in write order, each key once, and forget them."""
        for table in TABLE_ORDER:
            rows = self.tables[table]
            if rows:
                self.tables[table] = []
                yield table, unique_by_key(table, rows)
        self.count = 0


# A row's primary key, per table (a value, or a tuple of values for composite keys).
KEY_OF = {
    table: itemgetter(*(cols.index(k) for k in key_columns(table))) for table, cols in COLUMNS.items()
}


def unique_by_key(table: str, rows: list[Row]) -> list[Row]:
    """Keep the last row of each key: one statement may not touch a row twice (PostgreSQL's
    ON CONFLICT refuses it), and every dialect then counts changed rows the same way."""
    key = KEY_OF[table]
    unique = {key(row): row for row in rows}
    return rows if len(unique) == len(rows) else list(unique.values())


def statements(rows: list[Row], table: str, limits: Limits) -> Iterator[list[Row]]:
    """Split one table's rows into chunks each of which fits one statement of the dialect."""
    per_statement = limits.rows_per_statement(table)
    if limits.max_bytes is None:
        for start in range(0, len(rows), per_statement):
            yield rows[start:start + per_statement]
        return
    chunk: list[Row] = []
    chunk_bytes = 0
    for row in rows:
        size = row_bytes(row)
        if chunk and (len(chunk) >= per_statement or chunk_bytes + size > limits.max_bytes):
            yield chunk
            chunk, chunk_bytes = [], 0
        chunk.append(row)
        chunk_bytes += size
        if chunk_bytes > limits.max_bytes:
            # A row larger than a statement's share goes alone: the cleaner sized it to fit one packet
            # by itself, not with others.
            yield chunk
            chunk, chunk_bytes = [], 0
    if chunk:
        yield chunk


