"""Slack objects → canonical records, shared by the export (slack_export.py) and Web API (slack_api.py) forms.

Both forms see the same objects: an export's users.json, channels.json and day files hold what
users.list, conversations.list and conversations.history answer. One converter keeps their ids and
fields identical. Ids: `record_id("slack", team_id, kind, key)` with key the user, conversation or file id,
and `conversation_id/ts` for a message (a thread reply too: its `ts` is its own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chatmigrate.extractors._fields import (
    UNREADABLE,
    ListOf,
    Spec,
    checked,
    either,
    is_bool,
    is_id,
    is_list,
    is_number,
    is_object,
    is_text,
)
from chatmigrate.extractors._vocabulary import message_kind, role
from chatmigrate.ids import record_id
from chatmigrate.markup.slack import to_markdown, unescape
from chatmigrate.model import Channel, ChannelKind, File, Item, Message, Origin, Reaction, Skipped, Unreadable, User
from chatmigrate.redact import redact

SOURCE = "slack"
SLACKBOT = "USLACKBOT"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NOTHING: Mapping[str, Any] = {}
# Message fields turned into canonical columns; everything else is kept verbatim in props.
_CONSUMED = {"type", "ts", "user", "text", "thread_ts", "edited", "reactions", "files", "file", "pinned_to",
             "user_profile", "subtype"}
# The type of every field read (see _fields.py): a field of another type is left out and reported.
_FLAGS = ("deleted", "is_bot", "is_app_user", "is_workflow_bot", "is_admin", "is_owner", "is_primary_owner",
          "is_restricted", "is_ultra_restricted")
_PROFILE = Spec(email=is_text, display_name=is_text, real_name=is_text, first_name=is_text, last_name=is_text,
                display_name_normalized=is_text, name=is_text, team=is_text, is_restricted=is_bool,
                is_ultra_restricted=is_bool)
_USER = Spec(id=is_id, name=is_text, real_name=is_text, tz=is_text, team_id=is_id, profile=_PROFILE,
             **dict.fromkeys(_FLAGS, is_bool))
_CHANNEL = Spec(id=is_id, name=is_text, members=ListOf(is_id), topic=Spec(value=is_text),
                purpose=Spec(value=is_text), creator=is_id, user=is_id)
_FILE = Spec(id=either(is_id, is_number), name=is_text, title=is_text, mimetype=is_text, size=is_number,
             url_private=is_text, url_private_download=is_text, mode=is_text, is_external=is_bool)
_MESSAGE = Spec(type=is_text, user=is_id, bot_id=is_id, text=is_text, subtype=is_text, thread_ts=is_id,
                # user_profile's own fields are checked only when it is read (_discover_user): on every other
                # message it is a copy of a known user's profile, never stored.
                username=is_text, edited=Spec(user=is_id), pinned_to=is_list, user_profile=is_object,
                bot_profile=Spec(name=is_text, deleted=is_bool),
                reactions=ListOf(Spec(name=is_text, users=ListOf(is_id), count=is_number)),
                files=ListOf(_FILE), file=_FILE)
_USER_PROPS = ("team_id", "is_restricted", "is_ultra_restricted", "is_invited_user", "is_email_confirmed",
               "enterprise_user", "tz_label", "tz_offset", "is_app_user", "is_workflow_bot", "updated", "color")
_PROFILE_PROPS = ("title", "phone", "bot_id", "api_app_id", "status_text", "status_emoji", "fields",
                  "image_original", "image_512", "team")
_CHANNEL_PROPS = ("is_general", "is_archived", "pins", "is_shared", "is_ext_shared", "is_org_shared",
                  "shared_team_ids")
_FILE_PROPS = ("title", "filetype", "pretty_type", "mode", "is_external", "external_type", "user", "permalink",
               "is_public")

# Where a form finds a file's bytes: (size, sha256, path inside the source) and props to add, given the
# file entry and a list collecting Unreadable items (an upload that cannot be read).
FileBytes = Callable[[Mapping[str, Any], dict[str, Any], list[Unreadable]], tuple[int | None, str | None, str | None]]


# The last second a datetime can hold (9999-12-31T23:59:59Z): a larger `ts` is unreadable.
_MAX_SECONDS = 253_402_300_799


def _ts_parts(value: Any) -> tuple[int, int] | None:
    """A Slack `ts` ("1595859977.000300") as (seconds, microseconds), exactly (never through a float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    seconds, _, fraction = value.strip().partition(".")
    if not (seconds.isdigit() and seconds.isascii() and len(seconds) <= 12 and len(fraction) <= 6
            and (not fraction or (fraction.isdigit() and fraction.isascii()))):
        return None
    whole = int(seconds)
    if whole > _MAX_SECONDS:
        return None
    return whole, int(fraction.ljust(6, "0")) if fraction else 0


def parse_ts(value: Any) -> datetime | None:
    """Slack `ts` ("1595859977.000300") → UTC datetime, exactly (never through a float)."""
    parts = _ts_parts(value)
    if parts is None:
        return None
    return _EPOCH + timedelta(seconds=parts[0], microseconds=parts[1])


def ts_text(when: datetime) -> str:
    """A UTC datetime as a Slack `ts` (the inverse of parse_ts)."""
    delta = when - _EPOCH
    return f"{delta.days * 86400 + delta.seconds}.{delta.microseconds:06d}"


def ts_key(value: Any) -> tuple[int, int]:
    """A `ts` as a sortable pair (unreadable ones first). Computed without a datetime: every message of
    a day file is sorted by it."""
    return (_ts_parts(value) if isinstance(value, str) else None) or (0, 0)


def strip_file_token(url: str | None) -> str | None:
    """Slack file URLs carry `?t=xoxe-…` tokens: never store or show them."""
    return redact(url) if url else url


def unescape_or_none(value: Any) -> str | None:
    return unescape(value) if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Conversation:
    channel_id: str
    native_id: str
    name: str


class SlackConverter:
    """Slack objects of one workspace → records; remembers the users and channels seen for mentions."""

    def __init__(self, scope: str, file_bytes: FileBytes) -> None:
        self.scope = scope
        self.file_bytes = file_bytes
        self.usernames: dict[str, str] = {}
        self.channel_names: dict[str, str] = {}
        self.emitted_users: set[str] = set()
        self._user_ids: dict[str, str] = {}

    def id(self, kind: str, native_key: str) -> str:
        return record_id(SOURCE, self.scope, kind, native_key)

    def user_id(self, slack_user: str) -> str:
        # Cached: every message, mention and reaction refers to a user; there are few users.
        user_id = self._user_ids.get(slack_user)
        if user_id is None:
            user_id = self._user_ids[slack_user] = self.id("user", slack_user)
        return user_id

    # -- users and conversations ---------------------------------------------------------------
    def user(self, original: Any, origin: Origin) -> User | Unreadable:
        if not isinstance(original, dict):
            return Unreadable("users", "CM002", "user is not a JSON object", original, origin)
        raw, bad = checked(original, _USER)
        if not raw.get("id"):
            return Unreadable("users", "CM002", "user without an id" + (" (it is of the wrong type)" if "id" in bad
                                                                       else ""), original, origin)
        profile = raw.get("profile") or {}
        is_bot = bool(raw.get("is_bot") or raw.get("is_app_user") or raw.get("is_workflow_bot")
                      or raw["id"] == SLACKBOT)
        props = {k: raw[k] for k in _USER_PROPS if k in raw}
        for key in _PROFILE_PROPS:
            if profile.get(key):
                props[f"profile_{key}"] = profile[key]
        username = raw.get("name") or profile.get("display_name_normalized") or raw["id"]
        if bad:
            props[UNREADABLE] = bad
        user = User(
            id=self.user_id(raw["id"]), source=SOURCE, source_id=raw["id"], username=str(username),
            email=profile.get("email") or None,
            display_name=profile.get("display_name") or profile.get("real_name") or raw.get("real_name") or None,
            first_name=profile.get("first_name") or None, last_name=profile.get("last_name") or None,
            is_bot=is_bot, is_deleted=bool(raw.get("deleted")),
            role=role(SOURCE, {flag for flag in _FLAGS if raw.get(flag)}, is_bot), timezone=raw.get("tz") or None,
            props=props, origin=origin)
        self.usernames[user.source_id] = user.username
        self.emitted_users.add(user.source_id)
        return user

    def channel(self, original: Any, kind: ChannelKind, origin: Origin) -> Channel | Unreadable:
        if not isinstance(original, dict):
            return Unreadable("channels", "CM002", "conversation is not a JSON object", original, origin)
        raw, bad = checked(original, _CHANNEL)
        if not raw.get("id"):
            return Unreadable("channels", "CM002", "conversation without an id" + (
                " (it is of the wrong type)" if "id" in bad else ""), original, origin)
        members = tuple(dict.fromkeys(self.user_id(m) for m in raw.get("members") or ()))
        topic = raw.get("topic") or {}
        purpose = raw.get("purpose") or {}
        creator = raw.get("creator") or raw.get("user")
        props: dict[str, Any] = {k: raw[k] for k in _CHANNEL_PROPS if raw.get(k)}
        created = raw.get("created")
        created_at = parse_ts(created)
        if created not in (None, "") and created_at is None:
            props["unreadable_created"] = created
        if bad:
            props[UNREADABLE] = bad
        name = raw.get("name") or raw["id"]
        self.channel_names[raw["id"]] = str(name)
        return Channel(
            id=self.id("channel", raw["id"]), source=SOURCE, source_id=raw["id"], team_id=self.id("team", self.scope),
            name=str(name), kind=kind, display_name=str(name),
            topic=unescape_or_none(topic.get("value")), purpose=unescape_or_none(purpose.get("value")),
            created_at=created_at, creator_id=self.user_id(creator) if isinstance(creator, str) and creator else None,
            archived_at=None, member_ids=members, props=props, origin=origin)

    # -- messages ------------------------------------------------------------------------------
    def message(self, original: Any, conversation: Conversation, origin: Origin) -> Iterator[Item]:
        """A message object → the Message (preceded by a user it names for the first time, and by
        Unreadable items for uploads that could not be read)."""
        if not isinstance(original, dict):
            yield Unreadable("messages", "CM002", "message is not a JSON object", original, origin)
            return
        raw, bad = checked(original, _MESSAGE)
        if raw.get("type", "message") != "message":
            yield Skipped("messages", f"not a message (type {raw.get('type')!r})", original, origin)
            return
        ts = raw.get("ts")
        created_at = parse_ts(ts)
        if created_at is None:
            yield Unreadable("messages", "CM004", f"unreadable ts {ts!r}: expected \"<seconds>.<micros>\"",
                             raw, origin)
            return
        subtype = raw.get("subtype")
        author = _author(raw)
        if author is not None:
            yield from self._discover_user(author, raw, origin)
        text_source = raw.get("text") or ""
        text = to_markdown(text_source, self.usernames, self.channel_names)
        props = {k: v for k, v in raw.items() if k not in _CONSUMED}
        if subtype:
            props["subtype"] = subtype
        if bad:
            props[UNREADABLE] = bad
        if text != text_source:
            props["source_text"] = text_source
        source_id = f"{conversation.native_id}/{ts}"
        thread_ts = raw.get("thread_ts")
        thread_root_id = None
        if isinstance(thread_ts, str) and thread_ts != ts:
            thread_root_id = self.id("message", f"{conversation.native_id}/{thread_ts}")
        edited = raw.get("edited") or _NOTHING
        if edited.get("user"):
            props["edited_by"] = edited["user"]
        reactions: tuple[Reaction, ...] = ()
        if "reactions" in raw:
            reactions, reaction_counts = self._reactions(raw["reactions"])
            if reaction_counts:
                props["reaction_counts"] = reaction_counts
        files: tuple[File, ...] = ()
        if "files" in raw or "file" in raw:
            unreadable: list[Unreadable] = []
            files = self._files(raw, unreadable)
            yield from unreadable
        yield Message(
            id=self.id("message", source_id), source=SOURCE,
            source_id=source_id, channel_id=conversation.channel_id,
            user_id=self.user_id(author) if author else None, created_at=created_at,
            kind=message_kind("slack-subtypes", subtype), text=text,
            thread_root_id=thread_root_id, edited_at=parse_ts(edited.get("ts")),
            # A tombstone is a deleted thread parent kept so its replies keep their root.
            deleted_at=created_at if subtype == "tombstone" else None,
            is_pinned=bool(raw.get("pinned_to")), reactions=reactions, files=files, props=props, origin=origin)

    def _discover_user(self, author: str, raw: dict[str, Any], origin: Origin) -> Iterator[User]:
        """Authors missing from the user list (Slack Connect guests, bots, Slackbot) come from the message."""
        if author in self.emitted_users:
            return
        profile = raw.get("user_profile") if isinstance(raw.get("user_profile"), dict) else None
        bot_profile = raw.get("bot_profile") if isinstance(raw.get("bot_profile"), dict) else {}
        if profile is not None:
            profile, bad = checked(profile, _PROFILE)
            username = profile.get("name") or author
            flags = {flag for flag in ("is_restricted", "is_ultra_restricted") if profile.get(flag)}
            props: dict[str, Any] = {"discovered_from": "message user_profile", "team": profile.get("team")}
            if bad:
                props[UNREADABLE] = {f"user_profile.{path}": value for path, value in bad.items()}
            user = User(self.user_id(author), SOURCE, author, str(username),
                        display_name=profile.get("display_name") or profile.get("real_name") or None,
                        first_name=profile.get("first_name") or None, role=role(SOURCE, flags, False),
                        props=props, origin=origin)
        elif author == SLACKBOT or author == raw.get("bot_id"):
            username = "slackbot" if author == SLACKBOT else (bot_profile.get("name") or raw.get("username")
                                                               or author)
            user = User(self.user_id(author), SOURCE, author, str(username), is_bot=True, role=role(SOURCE, (), True),
                        is_deleted=bool(bot_profile.get("deleted")),
                        props={"discovered_from": "message bot_id" if author != SLACKBOT else "slackbot"},
                        origin=origin)
        else:
            return  # unknown with no snapshot: the validator makes a recorded placeholder
        self.emitted_users.add(author)
        self.usernames.setdefault(author, user.username)
        yield user

    def _reactions(self, raw: Any) -> tuple[tuple[Reaction, ...], dict[str, int]]:
        reactions: list[Reaction] = []
        counts: dict[str, int] = {}
        for entry in raw if isinstance(raw, list) else ():
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            users = [u for u in entry.get("users") or () if isinstance(u, str)]
            reactions.extend(Reaction(entry["name"], self.user_id(u)) for u in dict.fromkeys(users))
            # Slack truncates `users` on popular reactions; keep the real count.
            if isinstance(entry.get("count"), int) and entry["count"] > len(users):
                counts[entry["name"]] = entry["count"]
        return tuple(reactions), counts

    def _files(self, raw: Mapping[str, Any], unreadable: list[Unreadable]) -> tuple[File, ...]:
        entries = list(raw.get("files") or ())
        if raw.get("file"):  # old file_share / file_comment shape
            entries.append(raw["file"])
        return tuple(self._file(entry, unreadable) for entry in entries if entry.get("id"))

    def _file(self, entry: Mapping[str, Any], unreadable: list[Unreadable]) -> File:
        file_id = str(entry["id"])
        name = entry.get("name") or entry.get("title") or file_id
        props = {k: entry[k] for k in _FILE_PROPS if k in entry}
        if entry.get("mode") == "tombstone":
            props["deleted"] = True
        size, sha256, path = self.file_bytes(entry, props, unreadable)
        return File(
            id=self.id("file", file_id), source=SOURCE, source_id=file_id, name=str(name),
            mime_type=entry.get("mimetype") or None, size=size if isinstance(size, int) else None, sha256=sha256,
            source_url=strip_file_token(entry.get("url_private_download") or entry.get("url_private")),
            path=path, created_at=parse_ts(entry.get("created")), props=props)


def _author(raw: dict[str, Any]) -> str | None:
    user = raw.get("user")
    if isinstance(user, str) and user:
        return user
    bot_id = raw.get("bot_id")
    if isinstance(bot_id, str) and bot_id:
        # bot_message often has no user: the bot itself is the author.
        return bot_id
    return None


def linked_only(entry: Mapping[str, Any], props: dict[str, Any], unreadable: list[Unreadable],
                ) -> tuple[int | None, str | None, str | None]:
    """The FileBytes of a form that holds no bytes: the size Slack reports, nothing local."""
    size = entry.get("size")
    return (size if isinstance(size, int) and not isinstance(size, bool) else None), None, None
