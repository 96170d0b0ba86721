"""Validation: the step between extractors and loaders that checks every record (DESIGN §4).

`Validator` is a stream step: records that pass (possibly repaired, with the repair recorded) go on;
rejected ones go to the FindingSink and never reach the loader. Every rule of the catalogue
(validate/rules.py) that is not an extractor's CM0xx is checked here.

Memory stays O(users + channels) plus bounded structures, because messages arrive grouped by channel
(DESIGN §2):
- the current channel's most recent `CHANNEL_WINDOW` message ids → content fingerprint (thread roots,
  duplicates). A channel longer than that does not grow memory: older ids are forgotten, a duplicate
  of a forgotten id is not detected (the upsert makes it harmless), and a reply whose root was
  forgotten keeps its link when the Bloom filter below has seen the root (a false positive there
  keeps an orphan's link, at most ~0.5 % of such orphans at 10 million messages);
- a fixed-size Bloom filter (`_SeenIds`, 16 MiB) of every message id already passed, so a reply whose
  root is not in its own channel can be told apart: root read in an earlier channel (CM104) or not
  (yet). With 10 million messages its false-positive rate is about 0.5 %, and a false positive only
  changes which of two warnings with the same repair (CM103/CM104) an orphan reply is counted under;
- the orphan replies still waiting for a root (at most `MAX_PENDING_ORPHANS`): if the root turns up
  later in another channel, the reply is counted under CM104, otherwise CM103 at the end of the
  stream. The reply itself is never held back: it goes on at once, top-level, with props.orphan_of.

Convention for extractors (CM118 file-missing): a File whose bytes the export should hold but does
not (an attachment path absent from the zip, GridFS chunks missing…) carries `props["missing"] = True`,
optionally with a `props["missing_reason"]`. A File with neither a `path` nor a `source_url` (and not
`props["deleted"]`) is treated as missing too, and gets the mark.
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chatmigrate.model import (
    UNREADABLE_FIELDS,
    Channel,
    Checkpoint,
    Emoji,
    File,
    Item,
    Message,
    Origin,
    Skipped,
    Team,
    Unreadable,
    User,
)
from chatmigrate.validate.findings import Finding, FindingSink

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_CHANNEL_KINDS = frozenset({"public", "private", "direct", "group"})
# Text fields of users and channels checked for NUL / lone surrogates (message text is checked apart).
_USER_TEXT = ("username", "email", "display_name", "first_name", "last_name", "role", "timezone")
_CHANNEL_TEXT = ("name", "display_name", "topic", "purpose")
MAX_PENDING_ORPHANS = 100_000
# Message ids of the current channel remembered exactly (see the module docstring).
CHANNEL_WINDOW = 200_000


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    max_text: int = 16_383  # Mattermost's post limit in runes: the most restrictive common target
    require_email: bool = False
    # Allow some clock skew before calling a timestamp "in the future".
    future_slack: timedelta = timedelta(days=1)
    # A sync reads only what changed: a reply's root missing from the stream is normally already in
    # the target, so the reply keeps its link (detaching it would break the thread stored there).
    incremental: bool = False


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


def escaped(text: str) -> str:
    """`text` as ASCII with backslash escapes: keeps NULs and lone surrogates readable and storable."""
    return text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace").replace("\x00", "\\x00")


class _SeenIds:
    """A fixed-size Bloom filter of ids: memory independent of the number of messages."""

    def __init__(self, size_bytes: int = 1 << 24, hashes: int = 4) -> None:
        self.size_bytes = size_bytes
        self.bits_total = size_bytes * 8
        self.hashes = hashes
        self._bits: bytearray | None = None  # allocated on the first message only

    def _positions(self, key: str) -> list[int]:
        # Python's own 64-bit string hash (SipHash, salted per process; the filter lives in one
        # process) split in two for double hashing: several times cheaper than a hashlib digest.
        h = hash(key) & 0xFFFF_FFFF_FFFF_FFFF
        h1, h2 = h & 0xFFFF_FFFF, (h >> 32) | 1
        m = self.bits_total
        return [(h1 + i * h2) % m for i in range(self.hashes)]

    def add(self, key: str) -> None:
        if self._bits is None:
            self._bits = bytearray(self.size_bytes)
        bits = self._bits
        for pos in self._positions(key):
            bits[pos >> 3] |= 1 << (pos & 7)

    def __contains__(self, key: object) -> bool:
        bits = self._bits
        if bits is None or not isinstance(key, str):
            return False
        return all(bits[pos >> 3] & (1 << (pos & 7)) for pos in self._positions(key))


@dataclass(frozen=True, slots=True)
class _Orphan:
    message_id: str
    channel_id: str
    origin: Origin | None


def _fingerprint(record: Any) -> int:
    """A content hash of a record (origin excluded): equal records, equal fingerprints."""
    if isinstance(record, Message):
        return hash((record.user_id, record.created_at, record.kind, record.text, record.thread_root_id,
                     record.edited_at, record.deleted_at, record.is_pinned, record.reactions,
                     tuple(f.id for f in record.files)))
    # Users, channels, teams and emoji are few: their repr (which leaves the origin out) is enough.
    return hash(repr(record))


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text with a lone surrogate" if _BAD_TEXT.search(value) else "text"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__


def _missing(value: Any) -> bool:
    return not isinstance(value, str) or not value


class Validator:
    def __init__(self, sink: FindingSink, options: ValidationOptions | None = None,
                 accounting: Accounting | None = None) -> None:
        self.sink = sink
        self.options = options or ValidationOptions()
        self.accounting = accounting or Accounting()
        # user id → fingerprint (None for a placeholder the validator made: the real user may follow).
        self.users: dict[str, int | None] = {}
        self.usernames: dict[str, str] = {}
        self.emails: dict[str, str] = {}
        self.channels: dict[str, str] = {}  # id → kind
        self.channel_names: dict[str, str] = {}
        self.channel_prints: dict[str, int] = {}
        self.other_prints: dict[str, int] = {}  # teams and emoji
        # Messages of the current channel: id → fingerprint, for thread roots and duplicates.
        # OrderedDict: the oldest id is forgotten in O(1) once a channel passes CHANNEL_WINDOW.
        self.channel_messages: OrderedDict[str, int] = OrderedDict()
        self.channel_window_full = False
        self.current_channel: str | None = None
        self.seen_messages = _SeenIds()
        self.pending_orphans: dict[str, list[_Orphan]] = {}
        self.pending_count = 0
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
            elif isinstance(item, (Team, Emoji)):
                yield from self._other(item)
            else:
                if isinstance(item, Checkpoint):
                    self.channel_messages.clear()
                    self.channel_window_full = False
                    self.current_channel = None
                yield item
        self._flush_orphans()

    # -- helpers -------------------------------------------------------------------------------
    def _reject(self, record: Any, findings: list[Finding]) -> None:
        self.sink.reject(record, findings)
        kind = findings[0].record_kind
        self.accounting.bump(self.accounting.rejected, kind)
        if isinstance(record, Message):
            self.accounting.bump(self.accounting.rejected, "reactions", len(record.reactions))
            self.accounting.bump(self.accounting.rejected, "files", len(record.files))
        elif isinstance(record, Emoji) and record.file is not None:
            self.accounting.bump(self.accounting.rejected, "files")

    def _skip_duplicate(self, record: Any) -> None:
        kind = record.record_kind
        self.sink.add(Finding("CM106", f"the same {kind[:-1]} appears twice; the copy is skipped", kind,
                              record.id, record.origin))
        self.accounting.bump(self.accounting.skipped, kind)
        if isinstance(record, Message):
            self.accounting.bump(self.accounting.skipped, "reactions", len(record.reactions))
            self.accounting.bump(self.accounting.skipped, "files", len(record.files))
        elif isinstance(record, Emoji) and record.file is not None:
            self.accounting.bump(self.accounting.skipped, "files")

    def _conflict(self, record: Any) -> Finding:
        kind = record.record_kind
        return Finding("CM105", f"a second {kind[:-1]} with id {record.id} and different content", kind,
                       record.id, record.origin)

    def _reject_unreadable(self, item: Unreadable) -> None:
        raw = item.raw
        self.sink.reject(raw, [Finding(item.code, item.reason, item.record_kind, origin=item.origin)])
        self.accounting.bump(self.accounting.rejected, item.record_kind)

    def _required(self, record: Any, names: tuple[str, ...]) -> Finding | None:
        """CM117 for the first of `names` (plus id, source, source_id) that is missing or empty."""
        for name in ("id", "source", "source_id", *names):
            if _missing(getattr(record, name)):
                kind = record.record_kind
                return Finding("CM117", f"{kind[:-1]} without {name}", kind,
                               record.id if isinstance(record.id, str) else None, record.origin)
        return None

    def _placeholder(self, user_id: str, source: str, origin: Any) -> User:
        self.users[user_id] = None
        self.accounting.bump(self.accounting.added, "users")
        short = user_id.split("-")[0]
        return User(id=user_id, source=source, source_id=f"placeholder:{user_id}", username=f"unknown-{short}",
                    is_deleted=True, props={"placeholder": True}, origin=origin)

    def _wrong_types(self, record: Any, kind: str | None = None, origin: Origin | None = None) -> None:
        """CM120: the extractor left out fields of the wrong type and kept them in props (model.py).
        `kind` and `origin` for a record that has neither (a message's file)."""
        bad = record.props.get(UNREADABLE_FIELDS) if record.props else None
        if not bad or not isinstance(bad, dict):
            return
        kind = kind or record.record_kind
        names = ", ".join(f"{name} ({_type_name(value)})" for name, value in list(bad.items())[:8])
        self.sink.add(Finding("CM120", f"{kind[:-1]} field{'s' if len(bad) > 1 else ''} of the wrong type: {names}",
                              kind, record.id, origin or record.origin))

    def _clean_fields(self, record: Any, names: tuple[str, ...]) -> Any:
        """CM108 for users and channels: repair text fields a database would refuse, keep the originals."""
        bad = {name: getattr(record, name) for name in names
               if isinstance(getattr(record, name), str) and _BAD_TEXT.search(getattr(record, name))}
        if not bad:
            return record
        kind = record.record_kind
        self.sink.add(Finding("CM108", f"{', '.join(bad)} hold NUL characters or lone surrogates", kind, record.id,
                              record.origin, "NUL removed, lone surrogates replaced by U+FFFD; originals, escaped, "
                              "in props.source_escaped"))
        props = dict(record.props)
        props["source_escaped"] = {name: escaped(value) for name, value in bad.items()}
        return dataclasses.replace(record, props=props, **{name: fix_text(value) for name, value in bad.items()})

    # -- teams, emoji, users and channels ------------------------------------------------------
    def _other(self, record: Team | Emoji) -> Iterator[Item]:
        problem = self._required(record, ("name",))
        if problem:
            self._reject(record, [problem])
            return
        fingerprint = _fingerprint(record)
        seen = self.other_prints.get(record.id)
        if seen is not None:
            if seen == fingerprint:
                self._skip_duplicate(record)
            else:
                self._reject(record, [self._conflict(record)])
            return
        self.other_prints[record.id] = fingerprint
        self._wrong_types(record)
        yield record

    def _user(self, user: User) -> Iterator[Item]:
        problem = self._required(user, ("username",))
        if problem:
            self._reject(user, [problem])
            return
        fingerprint = _fingerprint(user)
        if user.id in self.users:
            seen = self.users[user.id]
            if seen == fingerprint:
                self._skip_duplicate(user)
                return
            if seen is not None:
                self._reject(user, [self._conflict(user)])
                return
            # else: the real user after a placeholder: it replaces the placeholder (same id, upsert).
        if not user.email and self.options.require_email and not user.is_bot:
            self._reject(user, [Finding("CM119", f"user {user.username!r} has no email and --require-email is set",
                                        "users", user.id, user.origin)])
            return
        user = self._clean_fields(user, _USER_TEXT)
        self.users[user.id] = fingerprint
        folded = user.username.casefold()
        other = self.usernames.setdefault(folded, user.id)
        if other != user.id:
            self.sink.add(Finding("CM115", f"username {user.username!r} differs only in case from another user's",
                                  "users", user.id, user.origin))
        if user.email:
            other = self.emails.setdefault(user.email.casefold(), user.id)
            if other != user.id:
                self.sink.add(Finding("CM116", f"email {user.email!r} is shared with another user", "users",
                                      user.id, user.origin))
        else:
            self.sink.add(Finding("CM114", f"user {user.username!r} has no email", "users", user.id, user.origin))
        self._wrong_types(user)
        yield user

    def _channel(self, channel: Channel) -> Iterator[Item]:
        problem = self._required(channel, ("name",))
        if problem:
            self._reject(channel, [problem])
            return
        if channel.kind not in _CHANNEL_KINDS:
            self._reject(channel, [Finding("CM006", f"channel kind {channel.kind!r} is not one of "
                                           f"{', '.join(sorted(_CHANNEL_KINDS))}", "channels", channel.id,
                                           channel.origin)])
            return
        fingerprint = _fingerprint(channel)
        seen = self.channel_prints.get(channel.id)
        if seen is not None:
            if seen == fingerprint:
                self._skip_duplicate(channel)
            else:
                self._reject(channel, [self._conflict(channel)])
            return
        self.channel_prints[channel.id] = fingerprint
        channel = self._clean_fields(channel, _CHANNEL_TEXT)
        self.channels[channel.id] = channel.kind
        self.channel_names[channel.id] = channel.name
        members = len(set(channel.member_ids))
        if (channel.kind == "direct" and members not in (1, 2)) or (channel.kind == "group" and members < 3):
            self.sink.add(Finding("CM113", f"{channel.kind} conversation {channel.name!r} has {members} members",
                                  "channels", channel.id, channel.origin))
        self._wrong_types(channel)
        yield channel

    # -- messages ------------------------------------------------------------------------------
    def _message(self, message: Message) -> Iterator[Item]:
        created = message.created_at
        # The common case (every field well typed) is checked inline: this runs for every message.
        if not (message.id and message.source and message.source_id and message.channel_id
                and isinstance(message.text, str) and isinstance(created, datetime) and created.tzinfo
                and (message.edited_at is None or getattr(message.edited_at, "tzinfo", None))
                and (message.deleted_at is None or getattr(message.deleted_at, "tzinfo", None))):
            problem = self._required(message, ("channel_id",))
            if problem is None and not isinstance(message.text, str):
                problem = Finding("CM117", "message without text (use \"\" for none)", "messages", message.id,
                                  message.origin)
            self._reject(message, [problem or self._unreadable_times(message)
                                   or Finding("CM117", "message with a field of the wrong type", "messages",
                                              str(message.id), message.origin)])
            return
        if message.channel_id not in self.channels:
            self._reject(message, [Finding("CM101", "message in a channel that is not in the export", "messages",
                                           message.id, message.origin)])
            return
        if message.channel_id != self.current_channel:
            self.channel_messages.clear()
            self.channel_window_full = False
            self.current_channel = message.channel_id
        fingerprint = _fingerprint(message)
        seen = self.channel_messages.get(message.id)
        if seen is not None:
            if seen == fingerprint:
                self._skip_duplicate(message)
            else:
                self._reject(message, [self._conflict(message)])
            return
        self.channel_messages[message.id] = fingerprint
        if len(self.channel_messages) > CHANNEL_WINDOW:
            self.channel_messages.popitem(last=False)
            self.channel_window_full = True
        self.seen_messages.add(message.id)
        if self.pending_orphans:
            self._root_arrived(message)
        repairs: dict[str, Any] = {}
        if message.user_id is not None and message.user_id not in self.users:
            self.sink.add(Finding("CM102", "author not in the export", "messages", message.id, message.origin,
                                  "placeholder user created"))
            yield self._placeholder(message.user_id, message.source, message.origin)
        if message.reactions:
            yield from self._reactors(message)
        if message.thread_root_id is not None:
            self._check_thread(message, repairs)
        self._check_text(message, repairs)
        self._check_times(message, repairs)
        if message.files:
            self._check_files(message, repairs)
        if not message.text and not message.files and message.kind == "normal" and message.deleted_at is None:
            self.sink.add(Finding("CM112", "message with neither text nor files", "messages", message.id,
                                  message.origin))
        if UNREADABLE_FIELDS in message.props:
            self._wrong_types(message)
        if repairs:
            props = dict(message.props)
            props.update(repairs.pop("props", {}))
            message = dataclasses.replace(message, props=props, **repairs)
        yield message

    def _unreadable_times(self, message: Message) -> Finding | None:
        for name in ("created_at", "edited_at", "deleted_at"):
            value = getattr(message, name)
            if value is None and name != "created_at":
                continue
            if not isinstance(value, datetime) or value.tzinfo is None:
                return Finding("CM004", f"{name} {value!r} is not a time-zone-aware datetime", "messages",
                               message.id, message.origin)
        return None

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
        if self.channel_window_full and root in self.seen_messages:
            return  # most likely an early message of this long channel, forgotten by the window
        if self.options.incremental and root not in self.seen_messages:
            return
        repairs["thread_root_id"] = None
        repairs.setdefault("props", {})["orphan_of"] = root
        if root in self.seen_messages:
            self.sink.add(Finding("CM104", "reply whose thread root is in another (earlier) channel", "messages",
                                  message.id, message.origin))
        elif self.pending_count < MAX_PENDING_ORPHANS:
            # Decided later: the root may still come, in another channel (CM104), or never (CM103).
            self.pending_orphans.setdefault(root, []).append(_Orphan(message.id, message.channel_id, message.origin))
            self.pending_count += 1
        else:
            self._orphan_finding(_Orphan(message.id, message.channel_id, message.origin), None)

    def _root_arrived(self, message: Message) -> None:
        waiting = self.pending_orphans.pop(message.id, None)
        if waiting is None:
            return
        self.pending_count -= len(waiting)
        for orphan in waiting:
            self._orphan_finding(orphan, message)

    def _orphan_finding(self, orphan: _Orphan, root: Message | None) -> None:
        if root is None:
            finding = Finding("CM103", "reply whose thread root is not in the export", "messages",
                              orphan.message_id, orphan.origin)
        elif root.channel_id == orphan.channel_id:
            finding = Finding("CM103", f"reply read before its thread root (root at {root.origin}); replies must "
                              "follow their root", "messages", orphan.message_id, orphan.origin)
        else:
            name = self.channel_names.get(root.channel_id, root.channel_id)
            finding = Finding("CM104", f"reply whose thread root is in channel {name!r} (at {root.origin})",
                              "messages", orphan.message_id, orphan.origin)
        self.sink.add(finding)

    def _flush_orphans(self) -> None:
        for waiting in self.pending_orphans.values():
            for orphan in waiting:
                self._orphan_finding(orphan, None)
        self.pending_orphans.clear()
        self.pending_count = 0

    def _check_text(self, message: Message, repairs: dict[str, Any]) -> None:
        text = message.text
        if _BAD_TEXT.search(text):
            self.sink.add(Finding("CM108", "text holds NUL characters or lone surrogates", "messages", message.id,
                                  message.origin, "NUL removed, lone surrogates replaced by U+FFFD; the original, "
                                  "escaped, in props.source_text_escaped"))
            repairs["text"] = fix_text(text)
            repairs.setdefault("props", {})["source_text_escaped"] = escaped(text)
            if "source_text" in message.props and isinstance(message.props["source_text"], str):
                repairs["props"]["source_text"] = fix_text(message.props["source_text"])
        if len(text) > self.options.max_text:
            self.sink.add(Finding("CM109", f"text of {len(text):,} characters (limit {self.options.max_text:,})",
                                  "messages", message.id, message.origin))

    def _check_times(self, message: Message, repairs: dict[str, Any]) -> None:
        created = message.created_at
        if created < _EARLIEST or created > self.now + self.options.future_slack:
            when = "before 1990" if created < _EARLIEST else "in the future"
            self.sink.add(Finding("CM110", f"created at {created.isoformat()}, {when}", "messages", message.id,
                                  message.origin))
        if message.edited_at is not None and message.edited_at < created:
            self.sink.add(Finding("CM111", f"edited at {message.edited_at.isoformat()}, before it was created",
                                  "messages", message.id, message.origin))
            repairs["edited_at"] = None
            repairs.setdefault("props", {})["edited_at_original"] = message.edited_at.isoformat()

    def _check_files(self, message: Message, repairs: dict[str, Any]) -> None:
        if not message.files:
            return
        files: list[File] = []
        changed = False
        for file in message.files:
            if UNREADABLE_FIELDS in file.props:
                self._wrong_types(file, "files", message.origin)
            marked = bool(file.props.get("missing"))
            absent = file.path is None and file.source_url is None and not file.props.get("deleted")
            if marked or absent:
                why = file.props.get("missing_reason") or ("marked missing by the extractor" if marked
                                                           else "no path in the export and no URL")
                self.sink.add(Finding("CM118", f"file {file.name!r} ({file.source_id}) of message {message.id} is "
                                      f"not in the export: {why}", "files", file.id, message.origin))
                if not marked:
                    file = dataclasses.replace(file, props={**file.props, "missing": True})
                    changed = True
            files.append(file)
        if changed:
            repairs["files"] = tuple(files)


__all__ = ["Accounting", "FindingSink", "ValidationOptions", "Validator"]
