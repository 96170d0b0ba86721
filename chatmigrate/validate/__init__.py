"""Validation: the step between extractors and loaders that checks every record (DESIGN §4).

`Validator` is a stream step: records that pass (possibly repaired, with the repair recorded) go on;
rejected ones go to the FindingSink and never reach the loader. It keeps O(users + channels + one
channel's message ids) of state, since messages arrive grouped by channel.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chatmigrate.model import Channel, Checkpoint, Item, Message, Skipped, Unreadable, User
from chatmigrate.validate.findings import Finding, FindingSink

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    max_text: int = 16_383  # Mattermost's post limit in runes: the most restrictive common target
    require_email: bool = False
    # Allow some clock skew before calling a timestamp "in the future".
    future_slack: timedelta = timedelta(days=1)


@dataclass(slots=True)
class Accounting:
    """Per-kind counts around the validator: what it added (placeholders) and skipped/rejected."""

    added: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def bump(self, table: dict[str, int], kind: str, n: int = 1) -> None:
        if n:
            table[kind] = table.get(kind, 0) + n


def fix_text(text: str) -> str:
    """Remove NUL and replace lone surrogates: what every target database would refuse."""
    return _BAD_TEXT.sub(lambda m: "" if m.group(0) == "\x00" else "\ufffd", text)


class Validator:
    def __init__(self, sink: FindingSink, options: ValidationOptions | None = None,
                 accounting: Accounting | None = None) -> None:
        self.sink = sink
        self.options = options or ValidationOptions()
        self.accounting = accounting or Accounting()
        self.users: set[str] = set()
        self.usernames: dict[str, str] = {}
        self.emails: dict[str, str] = {}
        self.channels: dict[str, str] = {}
        # Messages of the current channel: id → fingerprint, for thread roots and duplicates.
        self.channel_messages: dict[str, int] = {}
        self.current_channel: str | None = None
        self.now = datetime.now(UTC)

    def __call__(self, items: Iterator[Item]) -> Iterator[Item]:
        for item in items:
            if isinstance(item, Message):
                yield from self._message(item)
            elif isinstance(item, User):
                yield from self._user(item)
            elif isinstance(item, Channel):
                yield from self._channel(item)
            elif isinstance(item, Unreadable):
                self._reject_unreadable(item)
            elif isinstance(item, Skipped):
                self.sink.add(Finding("CM007", item.reason, item.record_kind, origin=item.origin))
                self.accounting.bump(self.accounting.skipped, item.record_kind)
            else:
                if isinstance(item, Checkpoint):
                    self.channel_messages.clear()
                    self.current_channel = None
                yield item

    # -- helpers -------------------------------------------------------------------------------
    def _reject(self, record: Any, findings: list[Finding]) -> None:
        self.sink.reject(record, findings)
        kind = findings[0].record_kind
        self.accounting.bump(self.accounting.rejected, kind)
        if isinstance(record, Message):
            self.accounting.bump(self.accounting.rejected, "reactions", len(record.reactions))
            self.accounting.bump(self.accounting.rejected, "files", len(record.files))

    def _reject_unreadable(self, item: Unreadable) -> None:
        raw = item.raw
        self.sink.reject(raw, [Finding(item.code, item.reason, item.record_kind, origin=item.origin)])
        self.accounting.bump(self.accounting.rejected, item.record_kind)

    def _placeholder(self, user_id: str, source: str, origin: Any) -> User:
        self.users.add(user_id)
        self.accounting.bump(self.accounting.added, "users")
        short = user_id.split("-")[0]
        return User(id=user_id, source=source, source_id=f"placeholder:{user_id}", username=f"unknown-{short}",
                    is_deleted=True, props={"placeholder": True}, origin=origin)

    # -- users and channels --------------------------------------------------------------------
    def _user(self, user: User) -> Iterator[Item]:
        if not user.username:
            self._reject(user, [Finding("CM117", "user without a username", "users", user.id, user.origin)])
            return
        self.users.add(user.id)
        folded = user.username.casefold()
        other = self.usernames.setdefault(folded, user.id)
        if other != user.id:
            self.sink.add(Finding("CM115", f"username {user.username!r} differs only in case from another user's",
                                  "users", user.id, user.origin, "loaded as is; rename before importing into a "
                                  "case-insensitive server"))
        if user.email:
            other = self.emails.setdefault(user.email.casefold(), user.id)
            if other != user.id:
                self.sink.add(Finding("CM116", f"email {user.email!r} is shared with another user", "users",
                                      user.id, user.origin))
        elif self.options.require_email and not user.is_bot:
            self._reject(user, [Finding("CM114", f"user {user.username!r} has no email and --require-email is "
                                        "set", "users", user.id, user.origin)])
            return
        else:
            self.sink.add(Finding("CM114", f"user {user.username!r} has no email", "users", user.id, user.origin))
        yield user

    def _channel(self, channel: Channel) -> Iterator[Item]:
        self.channels[channel.id] = channel.kind
        members = len(set(channel.member_ids))
        if (channel.kind == "direct" and members not in (1, 2)) or (channel.kind == "group" and members < 3):
            self.sink.add(Finding("CM113", f"{channel.kind} conversation {channel.name!r} has {members} members",
                                  "channels", channel.id, channel.origin, "loaded as is"))
        yield channel

    # -- messages ------------------------------------------------------------------------------
    def _message(self, message: Message) -> Iterator[Item]:
        if message.channel_id not in self.channels:
            self._reject(message, [Finding("CM101", "message in a channel that is not in the export", "messages",
                                           message.id, message.origin)])
            return
        if message.channel_id != self.current_channel:
            self.channel_messages.clear()
            self.current_channel = message.channel_id
        fingerprint = hash((message.user_id, message.created_at, message.kind, message.text, message.thread_root_id,
                            message.edited_at, message.deleted_at, len(message.reactions), len(message.files)))
        seen = self.channel_messages.get(message.id)
        if seen is not None:
            if seen == fingerprint:
                self.sink.add(Finding("CM106", "the same message appears twice; the copy is skipped", "messages",
                                      message.id, message.origin))
                self.accounting.bump(self.accounting.skipped, "messages")
                self.accounting.bump(self.accounting.skipped, "reactions", len(message.reactions))
                self.accounting.bump(self.accounting.skipped, "files", len(message.files))
            else:
                self._reject(message, [Finding("CM105", "a second message with the same id and different content",
                                               "messages", message.id, message.origin)])
            return
        self.channel_messages[message.id] = fingerprint
        repairs: dict[str, Any] = {}
        if message.user_id is not None and message.user_id not in self.users:
            self.sink.add(Finding("CM102", "author not in the export", "messages", message.id, message.origin,
                                  "placeholder user created"))
            yield self._placeholder(message.user_id, message.source, message.origin)
        yield from self._reactors(message)
        self._check_thread(message, repairs)
        self._check_text(message, repairs)
        self._check_times(message, repairs)
        if not message.text and not message.files and message.kind == "normal":
            self.sink.add(Finding("CM112", "message with neither text nor files", "messages", message.id,
                                  message.origin))
        if repairs:
            props = dict(message.props)
            props.update(repairs.pop("props", {}))
            message = dataclasses.replace(message, props=props, **repairs)
        yield message

    def _reactors(self, message: Message) -> Iterator[User]:
        for reaction in message.reactions:
            if reaction.user_id not in self.users:
                self.sink.add(Finding("CM107", f"reaction :{reaction.emoji}: by a user not in the export", "reactions",
                                      message.id, message.origin, "placeholder user created"))
                yield self._placeholder(reaction.user_id, message.source, message.origin)

    def _check_thread(self, message: Message, repairs: dict[str, Any]) -> None:
        root = message.thread_root_id
        if root is None or root in self.channel_messages:
            return
        self.sink.add(Finding("CM103", "reply whose thread root is not in this channel's export", "messages",
                              message.id, message.origin, "loaded top-level; props.orphan_of keeps the root id"))
        repairs["thread_root_id"] = None
        repairs.setdefault("props", {})["orphan_of"] = root

    def _check_text(self, message: Message, repairs: dict[str, Any]) -> None:
        text = message.text
        if _BAD_TEXT.search(text):
            self.sink.add(Finding("CM108", "text holds NUL characters or lone surrogates", "messages", message.id,
                                  message.origin, "NUL removed, lone surrogates replaced by U+FFFD"))
            repairs["text"] = fix_text(text)
            repairs.setdefault("props", {})["source_text_escaped"] = text.encode(
                "utf-8", "backslashreplace").decode("ascii", "backslashreplace")
            if "source_text" in message.props and isinstance(message.props["source_text"], str):
                repairs["props"]["source_text"] = fix_text(message.props["source_text"])
        if len(text) > self.options.max_text:
            self.sink.add(Finding("CM109", f"text of {len(text)} characters (limit {self.options.max_text})",
                                  "messages", message.id, message.origin, "loaded whole"))

    def _check_times(self, message: Message, repairs: dict[str, Any]) -> None:
        created = message.created_at
        if created < _EARLIEST or created > self.now + self.options.future_slack:
            self.sink.add(Finding("CM110", f"created at {created.isoformat()}", "messages", message.id,
                                  message.origin))
        if message.edited_at is not None and message.edited_at < created:
            self.sink.add(Finding("CM111", f"edited at {message.edited_at.isoformat()}, before it was created",
                                  "messages", message.id, message.origin, "edited_at cleared"))
            repairs["edited_at"] = None
            repairs.setdefault("props", {})["edited_at_original"] = message.edited_at.isoformat()




__all__ = ["Accounting", "FindingSink", "ValidationOptions", "Validator"]
