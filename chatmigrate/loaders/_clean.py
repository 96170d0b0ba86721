"""Text a database would refuse, repaired before it gets there and recorded, never silently.

Each dialect declares what it refuses as `TextRules`; this module does the work, the same way for all:
- lone surrogates (no driver can encode them): valid pairs are joined, the rest become U+FFFD;
- NUL characters where the dialect refuses them (PostgreSQL text and jsonb): removed;
- values longer than their column (String(n) in the schema) where the dialect enforces lengths, and
  long text over the dialect's byte limit: truncated;
- a row larger than one statement may carry (MySQL: max_allowed_packet): its largest text value cut
  until it fits; the row fits whole otherwise (text is not cut below what the server can take).
A repaired row keeps what it lost: its `props` gains `cm_repairs`, a list of
`{"column", "repairs", "original"}` where `original` is the old value as a JSON string literal
(`json.loads` gives it back exactly, NULs and surrogates included). Every repair is also counted.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from chatmigrate.loaders.rows import COLUMNS, Row

_SURROGATE = re.compile("[\ud800-\udfff]")
# Where an original is too big to keep in props (it would not fit the target either), keep its size
# and SHA-256 instead, so it can still be found and checked in the source.
_MAX_ORIGINAL_CHARS = 100_000
REPAIRS_KEY = "cm_repairs"


@dataclass(frozen=True, slots=True)
class TextRules:
    """What one dialect refuses in text values."""

    nul_allowed: bool = True
    # False where the database does not enforce VARCHAR(n) (SQLite): nothing is cut there.
    enforce_lengths: bool = True
    # Largest text value in bytes (UTF-8) the dialect can store or send in one statement.
    max_text_bytes: int | None = None
    # Largest row in bytes on the wire, escapes included (MySQL: a row must fit one max_allowed_packet),
    # and the characters the dialect's literals escape with one byte more.
    max_row_bytes: int | None = None
    escaped_chars: str = ""
    # Named in the repair of a row cut to fit (e.g. "max_allowed_packet 16777216 bytes").
    row_limit_name: str = "the statement size limit"


@dataclass(frozen=True, slots=True)
class _Col:
    index: int
    name: str
    is_json: bool
    max_chars: int | None


def _plan(table: sa.Table, name: str, rules: TextRules) -> tuple[_Col, ...]:
    cols = []
    for i, col in enumerate(COLUMNS[name]):
        if col == "row_hash":
            continue
        type_ = table.c[col].type
        if isinstance(type_, sa.JSON):
            cols.append(_Col(i, col, True, None))
        elif isinstance(type_, sa.String):
            length = type_.length if rules.enforce_lengths else None
            cols.append(_Col(i, col, False, length))
    return tuple(cols)


class Cleaner:
    """Checks every text value of every row; repairs and records the few that need it."""

    def __init__(self, tables: dict[str, sa.Table], rules: TextRules) -> None:
        self.rules = rules
        self.plans = {name: _plan(table, name, rules) for name, table in tables.items()}
        self.props_index = {name: cols.index("props") for name, cols in COLUMNS.items() if "props" in cols}
        self.repairs: Counter[str] = Counter()
        # The hot path's view of each plan: (index, length bound, NUL needle or None). Long text gets
        # a cheap bound (4 bytes a character) above which its exact UTF-8 size is computed.
        long_chars = rules.max_text_bytes // 4 if rules.max_text_bytes else sys.maxsize
        self._checks = {
            name: tuple((c.index, c.max_chars if c.max_chars is not None else long_chars,
                         None if rules.nul_allowed else ("\\u0000" if c.is_json else "\x00")) for c in plan)
            for name, plan in self.plans.items()
        }
        # A row whose text adds up to more characters than this may be over max_row_bytes (4 bytes a
        # character at most on the wire): only then is its exact size computed. Dialects without a row
        # limit keep the plain check, which is the hot path of every load.
        self._row_chars = rules.max_row_bytes // 4 if rules.max_row_bytes else 0
        if self._row_chars:
            self.clean = self._clean_within_row_limit  # type: ignore[method-assign]

    def clean(self, table: str, row: Row) -> Row:
        """Return `row` itself when it is fine (the common case, kept fast), else a repaired copy."""
        for index, limit, needle in self._checks[table]:
            value = row[index]
            if value is None:
                continue
            if (len(value) > limit or (needle is not None and needle in value)
                    or (not value.isascii() and _SURROGATE.search(value))):
                return self._repair(table, row)
        return row

    def _clean_within_row_limit(self, table: str, row: Row) -> Row:
        """`clean`, also sending a row whose values add up to more than the row limit may allow to repair."""
        total = 0
        for index, limit, needle in self._checks[table]:
            value = row[index]
            if value is None:
                continue
            if (len(value) > limit or (needle is not None and needle in value)
                    or (not value.isascii() and _SURROGATE.search(value))):
                return self._repair(table, row)
            total += len(value)
        return self._repair(table, row) if total > self._row_chars else row

    # -- the slow path, for the rare row that needs it -------------------------------------------
    def _repair(self, table: str, row: Row) -> Row:
        values = list(row)
        done: dict[int, list[str]] = {}
        for col in self.plans[table]:
            value = values[col.index]
            if value is None:
                continue
            fixed, repairs = (self._fix_json if col.is_json else self._fix_text)(value, col.max_chars)
            if repairs:
                values[col.index] = fixed
                done[col.index] = repairs
        if self.rules.max_row_bytes is not None:
            self._fit_row(table, values, done)
        if not done:  # a large row that fits after all: the row itself, no copy
            return row
        notes: list[dict[str, Any]] = []
        for col in self.plans[table]:
            if col.index in done:
                for repair in done[col.index]:
                    self.repairs[f"{table}.{col.name}: {repair}"] += 1
                notes.append(_note(col.name, done[col.index], row[col.index]))
        props_at = self.props_index.get(table)
        if notes and props_at is not None:
            props = json.loads(values[props_at]) if values[props_at] else {}
            props.setdefault(REPAIRS_KEY, []).extend(notes)
            values[props_at] = self._fix_json(_dumps(props), None)[0]
        return tuple(values)

    def _wire_bytes(self, value: str) -> int:
        size = len(value.encode("utf-8", "surrogatepass"))
        return size + sum(value.count(c) for c in self.rules.escaped_chars)

    def _fit_row(self, table: str, values: list[Any], done: dict[int, list[str]]) -> None:
        """Cut the largest text value of a row too large for one statement until the row fits; JSON is
        never cut (a row too large through props alone is left for the database to refuse, loudly)."""
        budget = self.rules.max_row_bytes or 0
        text_columns = [c for c in self.plans[table] if not c.is_json]
        while True:
            sizes = {c.index: self._wire_bytes(values[c.index]) for c in self.plans[table]
                     if isinstance(values[c.index], str)}
            over = sum(sizes.values()) + 8 * len(values) - budget
            candidates = [c for c in text_columns if sizes.get(c.index, 0) > 0]
            if over <= 0 or not candidates:
                return
            col = max(candidates, key=lambda c: sizes[c.index])
            encoded = values[col.index].encode("utf-8", "surrogatepass")
            # Cut the excess; where the cut part held escaped characters the row may still be over, and
            # the next round cuts what is left of the excess.
            keep = max(len(encoded) - over, 0)
            values[col.index] = encoded[:keep].decode("utf-8", errors="ignore")
            repair = f"cut to fit one statement ({self.rules.row_limit_name})"
            if repair not in done.setdefault(col.index, []):
                done[col.index].append(repair)

    def _fix_text(self, value: str, max_chars: int | None) -> tuple[str, list[str]]:
        repairs = []
        if _SURROGATE.search(value):
            value = _join_surrogates(value)
            repairs.append("surrogates replaced")
        if not self.rules.nul_allowed and "\x00" in value:
            value = value.replace("\x00", "")
            repairs.append("NUL removed")
        if max_chars is not None and len(value) > max_chars:
            value = value[:max_chars]
            repairs.append(f"cut to {max_chars} characters")
        max_bytes = self.rules.max_text_bytes
        if max_bytes is not None and len(value) * 4 > max_bytes and len(value.encode()) > max_bytes:
            value = value.encode()[:max_bytes].decode(errors="ignore")
            repairs.append(f"cut to {max_bytes} bytes")
        return value, repairs

    def _fix_json(self, text: str, _: int | None) -> tuple[str, list[str]]:
        repairs: list[str] = []
        needs_nul = not self.rules.nul_allowed and "\\u0000" in text
        if not (needs_nul or _SURROGATE.search(text)):
            return text, repairs
        # Parse (the stdlib keeps lone surrogates), clean every string inside, write back.
        data = _walk(json.loads(text), lambda s: self._fix_text(s, None), repairs)
        return _dumps(data), sorted(set(repairs))


def _walk(value: Any, fix: Any, repairs: list[str]) -> Any:
    if isinstance(value, str):
        fixed, done = fix(value)
        repairs.extend(done)
        return fixed
    if isinstance(value, dict):
        return {_walk(k, fix, repairs): _walk(v, fix, repairs) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, fix, repairs) for v in value]
    return value


def _join_surrogates(value: str) -> str:
    """Join valid surrogate pairs into their character; any lone half becomes U+FFFD."""
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _note(column: str, repairs: list[str], original: str) -> dict[str, Any]:
    note: dict[str, Any] = {"column": column, "repairs": repairs}
    if len(original) <= _MAX_ORIGINAL_CHARS:
        # ensure_ascii: NUL and lone surrogates become \u escapes every database accepts as text.
        note["original"] = json.dumps(original, ensure_ascii=True)
    else:
        note["original_chars"] = len(original)
        note["original_sha256"] = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()
    return note


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # lone surrogates: orjson refuses them; the caller cleans the result
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
