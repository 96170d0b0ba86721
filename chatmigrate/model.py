"""The canonical model: the only types that pass between extractors, validators and loaders."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

ChannelKind = Literal["public", "private", "direct", "group"]
RECORD_KINDS = ("teams", "users", "channels", "emoji", "messages", "reactions", "files")
# props key under which an extractor keeps, as read, the fields of a record that had the wrong JSON type
# (`{"user": 12, "members[2]": {...}}`); the record is built without them and the validator reports
# them (CM120). See extractors/_fields.py.
UNREADABLE_FIELDS = "unreadable_fields"
# props key of a User that a mapping merged onto a user the target already holds (targets/contract.py
# ExistingUser): {"target_id": str | None, "username": str, "email": str | None, "merged_from": [source ids]}.
# Targets refer to that user and never create or overwrite it.
EXISTING_USER_PROP = "cm_existing_user"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record was read: a file and its line (text) or byte offset/index (binary, API page)."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


# `origin` fields are excluded from equality and repr: the same data read at two places is equal.


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    source: str
    source_id: str
    name: str
    display_name: str | None = None
    description: str | None = None
    props: dict[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False, repr=False)

    record_kind: ClassVar[str] = "teams"


@dataclass(frozen=True, slots=True)
class User:
    id: str
    source: str
    source_id: str
    username: str
    email: str | None = None
    display_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    is_bot: bool = False
    is_deleted: bool = False
    role: str | None = None
    timezone: str | None = None
    props: dict[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False, repr=False)

    record_kind: ClassVar[str] = "users"


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    source: str
    source_id: str
    team_id: str | None
    name: str
    kind: ChannelKind
    display_name: str | None = None
    topic: str | None = None
    purpose: str | None = None
    created_at: datetime | None = None
    creator_id: str | None = None
    archived_at: datetime | None = None
    member_ids: tuple[str, ...] = ()
    props: dict[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False, repr=False)

    record_kind: ClassVar[str] = "channels"


@dataclass(frozen=True, slots=True)
class Reaction:
    """One user's use of one emoji on one message; `emoji` is the short name without colons."""

    emoji: str
    user_id: str
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class File:
    id: str
    source: str
    source_id: str
    name: str
    mime_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    source_url: str | None = None
    path: str | None = None
    created_at: datetime | None = None
    props: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Emoji:
    id: str
    source: str
    source_id: str
    name: str
    creator_id: str | None = None
    file: File | None = None
    props: dict[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False, repr=False)

    record_kind: ClassVar[str] = "emoji"


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    source: str
    source_id: str
    channel_id: str
    user_id: str | None
    created_at: datetime
    kind: str = "normal"
    text: str = ""
    thread_root_id: str | None = None
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    is_pinned: bool = False
    reactions: tuple[Reaction, ...] = ()
    files: tuple[File, ...] = ()
    props: dict[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False, repr=False)

    record_kind: ClassVar[str] = "messages"


Record = Team | User | Channel | Emoji | Message


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Emitted after the last record of a channel: the loader commits data and cursor together."""

    source: str
    scope: str
    channel_id: str
    cursor: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record the extractor could not turn into canonical form; it becomes a reject, never a drop.

    `record_kind` is the kind it would have been (e.g. "messages"); `raw` the input as read.
    """

    record_kind: str
    code: str
    reason: str
    raw: Any
    origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record deliberately not migrated (e.g. a livechat room), counted with its reason."""

    record_kind: str
    reason: str
    raw: Any
    origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A valid record that a target's own checks refuse (e.g. a user without the email the chat server
    needs). The check has already written it to the rejects file; the pipeline counts it as rejected.
    `nested_only`: only what rides on the record (its reactions, files) is rejected, not the record."""

    record: Record
    nested_only: bool = False

    @property
    def record_kind(self) -> str:
        return self.record.record_kind


Item = Team | User | Channel | Emoji | Message | Checkpoint | Unreadable | Skipped | Rejected


def nested_counts(record: Record) -> dict[str, int]:
    """Records of other kinds carried inside this one (reactions and files ride on messages)."""
    if isinstance(record, Message):
        return {"reactions": len(record.reactions), "files": len(record.files)}
    if isinstance(record, Emoji) and record.file is not None:
        return {"files": 1}
    return {}


def to_json(record: Record) -> dict[str, Any]:
    """The record as it appears in canonical JSONL (schemas/<kind>.schema.json): no origin, ISO times."""
    out: dict[str, Any] = {"record": record.record_kind}
    for spec in fields(record):
        if spec.name != "origin":
            out[spec.name] = _json_value(getattr(record, spec.name))
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if is_dataclass(value):
        return {spec.name: _json_value(getattr(value, spec.name)) for spec in fields(value)}
    return value
