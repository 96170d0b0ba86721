"""Canonical records → rows of the cm_* tables, the same for every dialect.

Rows are tuples in the column order of `COLUMNS[table]` (every row has every column, so batches
can go to executemany / COPY as they are). Datetimes stay tz-aware UTC datetimes and props stay JSON
text; each dialect adapts only what its driver needs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import orjson

from chatmigrate.model import Channel, Emoji, File, Message, Record, Team, User

Row = tuple[Any, ...]

COLUMNS: dict[str, tuple[str, ...]] = {
    "teams": ("id", "source", "source_id", "name", "display_name", "description", "props", "row_hash"),
    "users": ("id", "source", "source_id", "username", "email", "display_name", "first_name", "last_name",
              "is_bot", "is_deleted", "role", "timezone", "props", "row_hash"),
    "channels": ("id", "source", "source_id", "team_id", "name", "display_name", "kind", "topic", "purpose",
                 "created_at", "creator_id", "archived_at", "props", "row_hash"),
    "channel_members": ("channel_id", "user_id", "row_hash"),
    "messages": ("id", "source", "source_id", "channel_id", "user_id", "created_at", "kind", "text",
                 "thread_root_id", "edited_at", "deleted_at", "is_pinned", "props", "row_hash"),
    "reactions": ("message_id", "emoji", "user_id", "created_at", "row_hash"),
    "files": ("id", "source", "source_id", "message_id", "name", "mime_type", "size", "sha256", "source_url",
              "path", "created_at", "props", "row_hash"),
    "emoji": ("id", "source", "source_id", "name", "creator_id", "file_id", "props", "row_hash"),
}
# Primary-key columns of each table: the conflict target of every upsert.
KEYS: dict[str, tuple[str, ...]] = {
    "channel_members": ("channel_id", "user_id"),
    "reactions": ("message_id", "emoji", "user_id"),
}
# Tables are written in this order inside one flush (parents before children, for readers).
TABLE_ORDER = ("teams", "users", "channels", "channel_members", "emoji", "messages", "files", "reactions")


def key_columns(table: str) -> tuple[str, ...]:
    return KEYS.get(table, ("id",))


def json_text(value: dict[str, Any] | None) -> str | None:
    if not value:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        # Lone surrogates, which orjson refuses: the stdlib keeps them, and the loader's cleaner
        # (loaders/_clean.py) repairs and records them before any database sees them.
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def with_hash(values: tuple[Any, ...]) -> Row:
    """Append the content hash that lets an upsert skip an unchanged row."""
    # orjson writes datetimes as RFC 3339 itself, so the hash is stable across runs and dialects.
    try:
        encoded = orjson.dumps(values)
    except TypeError:  # lone surrogates: hash a lossless, deterministic escape of them instead
        encoded = json.dumps(values, default=str).encode()
    return (*values, hashlib.md5(encoded).hexdigest())


def _file_row(file: File, message_id: str | None) -> Row:
    return with_hash((file.id, file.source, file.source_id, message_id, file.name, file.mime_type, file.size,
                      file.sha256, file.source_url, file.path, file.created_at, json_text(file.props)))


def rows_of(record: Record) -> Iterator[tuple[str, Row]]:
    """Yield (table, row) for a record and everything it carries (members, reactions, files)."""
    if isinstance(record, Message):
        yield "messages", with_hash((
            record.id, record.source, record.source_id, record.channel_id, record.user_id, record.created_at,
            record.kind, record.text, record.thread_root_id, record.edited_at, record.deleted_at,
            record.is_pinned, json_text(record.props)))
        for reaction in record.reactions:
            yield "reactions", with_hash((record.id, reaction.emoji, reaction.user_id, reaction.created_at))
        for file in record.files:
            yield "files", _file_row(file, record.id)
    elif isinstance(record, User):
        yield "users", with_hash((
            record.id, record.source, record.source_id, record.username, record.email, record.display_name,
            record.first_name, record.last_name, record.is_bot, record.is_deleted, record.role, record.timezone,
            json_text(record.props)))
    elif isinstance(record, Channel):
        yield "channels", with_hash((
            record.id, record.source, record.source_id, record.team_id, record.name, record.display_name,
            record.kind, record.topic, record.purpose, record.created_at, record.creator_id, record.archived_at,
            json_text(record.props)))
        for user_id in dict.fromkeys(record.member_ids):
            yield "channel_members", with_hash((record.id, user_id))
    elif isinstance(record, Team):
        yield "teams", with_hash((record.id, record.source, record.source_id, record.name, record.display_name,
                                  record.description, json_text(record.props)))
    elif isinstance(record, Emoji):
        file_id = record.file.id if record.file else None
        yield "emoji", with_hash((record.id, record.source, record.source_id, record.name, record.creator_id,
                                  file_id, json_text(record.props)))
        if record.file is not None:
            yield "files", _file_row(record.file, None)
    else:
        raise TypeError(f"not a canonical record: {type(record).__name__}")
