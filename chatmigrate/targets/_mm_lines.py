"""The pieces every part of a Mattermost package is written with: times, props, JSONL lines, the
channels and counters the writer keeps (targets/_mm_package.py)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

# Author of messages that have none (system events of some sources): Mattermost needs a user per post.
AUTHORLESS = "chatmigrate-system"


def ms(value: datetime | str | None) -> int | None:
    """A hub time as Mattermost's milliseconds since the epoch (naive values are UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return calendar.timegm(value.utctimetuple()) * 1000 + value.microsecond // 1000


def _props(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _post_props_text(raw: str | None) -> dict[str, Any]:
    """A message's props, parsed only when they hold what a post carries (most hold neither)."""
    if not raw or ('"attachments"' not in raw and '"flagged_by"' not in raw):
        return {}
    return _props(raw)


def _present(payload: dict[str, Any]) -> dict[str, Any]:
    """Fields with a value: Mattermost leaves an absent field alone, but `message` is required even
    when empty (a post of attachments only)."""
    return {k: v for k, v in payload.items() if k == "message" or v not in (None, [], "")}


def _line(kind: str, payload: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, kind: _present(payload)}) + b"\n"


@dataclass
class _Chan:
    id: str
    team: str | None  # Mattermost team name; None for direct and group conversations
    name: str | None
    kind: str  # O, P, D (direct/group)
    members: list[str] = field(default_factory=list)  # Mattermost usernames (direct/group)
    total: int = 0
    roots: int = 0
    last_at: int = 0


@dataclass
class Counts:
    lines: dict[str, int] = field(default_factory=dict)
    attachments: int = 0
    attachment_bytes: int = 0
    files_without_bytes: int = 0
    files_over_limit: list[str] = field(default_factory=list)
    emails_generated: int = 0
    split_posts: int = 0
    deleted_kept: int = 0
    direct_left_out: int = 0
    groups_as_private: int = 0
    skipped_unchanged: int = 0
    guests_deactivated: int = 0
    existing_without_line: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, n: int = 1) -> None:
        self.lines[kind] = self.lines.get(kind, 0) + n


def _ms_or_none(text: str) -> int | None:
    try:
        return ms(text)
    except ValueError:
        return None


def _deleted_ms(row: Any, props: dict[str, Any]) -> int | None:
    if not row.is_deleted:
        return None
    when = props.get("deleted_at")
    try:
        return ms(when) if isinstance(when, str) else 1
    except ValueError:
        return 1
