"""Slack workspace export (the zip Slack's export tool gives, or its unzipped folder).

Layout facts (research/formats.md §1): top-level users.json (org_users.json on Enterprise Grid),
channels.json, groups.json, dms.json, mpims.json; one folder per conversation (public/private by
name, DMs by id, group DMs by mpim name) of YYYY-MM-DD.json day files. Day files are read one at a
time straight from the zip, so memory does not grow with the number of days or messages.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, ClassVar

from chatmigrate.errors import InputError
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
    is_text,
)
from chatmigrate.extractors._files import ExportFiles, iter_json_array
from chatmigrate.extractors._limits import OPTIONS as LIMIT_OPTIONS
from chatmigrate.extractors._limits import Limits
from chatmigrate.files import OPTIONS as DOWNLOAD_OPTIONS
from chatmigrate.files import Downloads
from chatmigrate.ids import record_id
from chatmigrate.markup.slack import to_markdown, unescape
from chatmigrate.model import (
    Channel,
    ChannelKind,
    Checkpoint,
    File,
    Item,
    Message,
    Origin,
    Reaction,
    Skipped,
    Team,
    Unreadable,
    User,
)
from chatmigrate.redact import redact

SOURCE = "slack"
_DAY_FILE = re.compile(r"^(?P<folder>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})\.json$")
_TS = re.compile(r"^\s*(\d{1,12})(?:\.(\d{1,6}))?\s*$")
_CONVERSATION_FILES: tuple[tuple[str, ChannelKind], ...] = (
    ("channels.json", "public"),
    ("groups.json", "private"),
    ("dms.json", "direct"),
    ("mpims.json", "group"),
)
_TOP_LEVEL = {"users.json", "org_users.json", "channels.json", "groups.json", "dms.json", "mpims.json"}
# Subtypes that record a change to the conversation rather than something someone said.
_SYSTEM_SUBTYPES = {
    "channel_join": "system_join", "group_join": "system_join",
    "channel_leave": "system_leave", "group_leave": "system_leave",
    "channel_topic": "system_topic", "group_topic": "system_topic",
    "channel_purpose": "system_purpose", "group_purpose": "system_purpose",
    "channel_name": "system_rename", "group_name": "system_rename",
    "channel_archive": "system_archive", "group_archive": "system_archive",
    "channel_unarchive": "system_unarchive", "group_unarchive": "system_unarchive",
    "channel_convert_to_private": "system_convert_to_private",
    "channel_posting_permissions": "system_posting_permissions",
    "pinned_item": "system_pin", "unpinned_item": "system_unpin",
    "bot_add": "system_bot_add", "bot_remove": "system_bot_remove",
    "joiner_notification": "system_joiner_notification",
    "retention_threshold": "system_retention",
    "channel_canvas_updated": "system_canvas_updated",
    "sh_room_created": "system_huddle",
}
_CONTENT_SUBTYPES = {
    "bot_message": "bot", "me_message": "me", "file_comment": "file_comment", "tombstone": "tombstone",
    "slackbot_response": "bot", "reminder_add": "system_reminder", "huddle_thread": "system_huddle",
}
# Message fields turned into canonical columns; everything else is kept verbatim in props.
_CONSUMED = {"type", "ts", "user", "text", "thread_ts", "edited", "reactions", "files", "file", "pinned_to",
             "user_profile", "subtype"}
SLACKBOT = "USLACKBOT"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
                username=is_text, edited=Spec(user=is_id), pinned_to=is_list, user_profile=_PROFILE,
                bot_profile=Spec(name=is_text, deleted=is_bool),
                reactions=ListOf(Spec(name=is_text, users=ListOf(is_id), count=is_number)),
                files=ListOf(_FILE), file=_FILE)


def parse_ts(value: Any) -> datetime | None:
    """Slack `ts` ("1595859977.000300") → UTC datetime, exactly (never through a float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    seconds, _, fraction = value.strip().partition(".")
    if not (seconds.isdigit() and seconds.isascii() and len(seconds) <= 12 and len(fraction) <= 6
            and (not fraction or (fraction.isdigit() and fraction.isascii()))):
        return None
    try:
        return _EPOCH + timedelta(seconds=int(seconds), microseconds=int(fraction.ljust(6, "0")))
    except OverflowError:
        return None


def _ts_key(value: Any) -> tuple[int, int]:
    match = _TS.match(value) if isinstance(value, str) else None
    if not match:
        return (0, 0)
    return int(match.group(1)), int((match.group(2) or "0").ljust(6, "0"))


def strip_file_token(url: str | None) -> str | None:
    """Slack file URLs carry `?t=xoxe-…` tokens: never store or show them."""
    return redact(url) if url else url


@dataclass(frozen=True, slots=True)
class _Conversation:
    channel_id: str
    native_id: str
    name: str


class SlackExport:
    name: ClassVar[str] = "slack-export"
    source: ClassVar[str] = SOURCE
    # The -o options it accepts (name → help); the CLI and sync refuse any other name.
    known_options: ClassVar[dict[str, str]] = {
        "scope": "workspace the ids are scoped to (default: the team most users belong to)",
        **LIMIT_OPTIONS,
        **DOWNLOAD_OPTIONS,
    }

    @classmethod
    def detect(cls, location: str) -> bool:
        try:
            files = ExportFiles(location)
        except InputError:
            return False
        try:
            names = set(files.names())
            return "channels.json" in names and bool(names & {"users.json", "org_users.json"})
        finally:
            files.close()

    def __init__(self, location: str, options: Mapping[str, str] | None = None) -> None:
        self.location = location
        self.options = dict(options or {})
        self.files = ExportFiles(location, Limits.from_options(self.options))
        names = set(self.files.names())
        if not names & {"channels.json", "users.json", "org_users.json"}:
            raise InputError("no channels.json or users.json at the top of the export; is this a Slack "
                             "workspace export (Workspace settings → Import/Export Data)?", location=location)
        self._users_file = "org_users.json" if "org_users.json" in names else "users.json"
        self._scope: str | None = self.options.get("scope")
        self._usernames: dict[str, str] = {}
        self._channel_names: dict[str, str] = {}
        self._emitted_users: set[str] = set()
        self._user_ids: dict[str, str] = {}
        self._has_uploads = any(name.startswith("__uploads/") for name in self.files.names())
        # Listing files (channels.json…) that could not be read: their folders' messages cannot be placed.
        self._unreadable_listings: list[str] = []
        self._unreadable_members: set[str] = set()  # uploads that could not be read (reported once)
        # A standard export only links to its files (url_private on files.slack.com): fetched from there.
        self.downloads = Downloads(self.options, ["files.slack.com"], location)

    # -- identity ------------------------------------------------------------------------------
    @property
    def scope(self) -> str:
        """The workspace: the team id most users belong to (the API form reads the same from auth.test)."""
        if self._scope is None:
            teams: Counter[str] = Counter()
            if self.files.exists(self._users_file):
                for entry in self._document(self._users_file):
                    user = entry[1] if isinstance(entry, tuple) else None
                    if isinstance(user, dict) and is_id(user.get("team_id")):
                        teams[user["team_id"]] += 1
            self._scope = teams.most_common(1)[0][0] if teams else "slack"
        return self._scope

    def _id(self, kind: str, native_key: str) -> str:
        return record_id(SOURCE, self.scope, kind, native_key)

    def _user_id(self, slack_user: str) -> str:
        # Cached: every message, mention and reaction refers to a user; there are few users.
        user_id = self._user_ids.get(slack_user)
        if user_id is None:
            user_id = self._user_ids[slack_user] = self._id("user", slack_user)
        return user_id

    def _document(self, name: str) -> Iterator[tuple[int, Any] | Unreadable]:
        """(line, element) of a JSON-array member; where it cannot be read (not JSON, cut off, a corrupt
        zip member, over a size limit), one Unreadable for the file: the elements before it are kept.

        The file is counted as what it is, an unreadable export file, not as a record of some kind:
        how many records the unreadable part held cannot be known.
        """
        where = self.files.describe(name)
        try:
            yield from iter_json_array(self.files.read_bytes(name), where)
        except InputError as exc:
            yield Unreadable("export_files", "CM001", f"{name}: {exc.detail}", {"file": where},
                             Origin(where, _error_line(exc)))

    # -- the stream ----------------------------------------------------------------------------
    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]:
        for unsafe in self.files.unsafe:
            yield Unreadable("files", "CM003", "archive entry escapes the export folder (../, absolute path "
                             "or symlink); refused", unsafe, Origin(self.files.describe(unsafe)))
        yield Team(self._id("team", self.scope), SOURCE, self.scope, self.scope,
                   origin=Origin(self.files.describe(self._users_file)))
        yield from self._users()
        conversations = yield from self._conversations()
        yield from self.downloads.stage(self._messages(conversations), lambda file: file.source_url)
        yield from self._unused_members()

    def open_file(self, file: File) -> IO[bytes] | None:
        """The bytes of a file this export holds (`__uploads/…`, slack-advanced-exporter) or that was
        downloaded into the store (-o download=true), else None."""
        if file.path and self.files.exists(file.path):
            return self.files.open(file.path)
        return self.downloads.open(file)

    def _unused_members(self) -> Iterator[Item]:
        """Say which export members carry nothing chatmigrate migrates (integration logs, canvases…)."""
        for name in self.files.names():
            migrated = name in _TOP_LEVEL or name.startswith("__uploads/") or (
                _DAY_FILE.match(name) is not None and not name.startswith("__"))
            if migrated:
                continue
            yield Skipped("export_files", "not part of a Slack export's message layout; not migrated", name,
                          Origin(self.files.describe(name)))

    def _users(self) -> Iterator[Item]:
        if not self.files.exists(self._users_file):
            return
        where = self.files.describe(self._users_file)
        for entry in self._document(self._users_file):
            if isinstance(entry, Unreadable):
                yield entry
                continue
            line, raw = entry
            user = self._user(raw, Origin(where, line))
            if isinstance(user, User):
                self._usernames[user.source_id] = user.username
                self._emitted_users.add(user.source_id)
            yield user

    def _user(self, original: Any, origin: Origin) -> User | Unreadable:
        if not isinstance(original, dict):
            return Unreadable("users", "CM002", "user is not a JSON object", original, origin)
        raw, bad = checked(original, _USER)
        if not raw.get("id"):
            return Unreadable("users", "CM002", "user without an id" + (" (it is of the wrong type)" if "id" in bad
                                                                       else ""), original, origin)
        profile = raw.get("profile") or {}
        is_bot = bool(raw.get("is_bot") or raw.get("is_app_user") or raw.get("is_workflow_bot")
                      or raw["id"] == SLACKBOT)
        if raw.get("is_primary_owner") or raw.get("is_owner"):
            role = "owner"
        elif raw.get("is_admin"):
            role = "admin"
        elif raw.get("is_ultra_restricted") or raw.get("is_restricted"):
            role = "guest"
        else:
            role = "bot" if is_bot else "member"
        props = {k: raw[k] for k in ("team_id", "is_restricted", "is_ultra_restricted", "is_invited_user",
                                     "is_email_confirmed", "enterprise_user", "tz_label", "tz_offset",
                                     "is_app_user", "is_workflow_bot", "updated", "color") if k in raw}
        for key in ("title", "phone", "bot_id", "api_app_id", "status_text", "status_emoji", "fields",
                    "image_original", "image_512", "team"):
            if profile.get(key):
                props[f"profile_{key}"] = profile[key]
        username = raw.get("name") or profile.get("display_name_normalized") or raw["id"]
        if bad:
            props[UNREADABLE] = bad
        return User(
            id=self._user_id(raw["id"]), source=SOURCE, source_id=raw["id"], username=str(username),
            email=profile.get("email") or None,
            display_name=profile.get("display_name") or profile.get("real_name") or raw.get("real_name") or None,
            first_name=profile.get("first_name") or None, last_name=profile.get("last_name") or None,
            is_bot=is_bot, is_deleted=bool(raw.get("deleted")), role=role, timezone=raw.get("tz") or None,
            props=props, origin=origin)

    def _conversations(self) -> Iterator[Item]:
        """Emit every conversation and return them keyed by their folder name in the export."""
        by_folder: dict[str, _Conversation] = {}
        for file_name, kind in _CONVERSATION_FILES:
            if not self.files.exists(file_name):
                continue
            where = self.files.describe(file_name)
            for entry in self._document(file_name):
                if isinstance(entry, Unreadable):
                    self._unreadable_listings.append(file_name)
                    yield entry
                    continue
                line, raw = entry
                channel = self._channel(raw, kind, Origin(where, line))
                yield channel
                if isinstance(channel, Channel):
                    conversation = _Conversation(channel.id, channel.source_id, channel.name)
                    self._channel_names[channel.source_id] = channel.name
                    # Public/private/group folders are named by name, DM folders by id; some tools
                    # (slackdump) name every folder by id: accept both.
                    by_folder.setdefault(channel.name, conversation)
                    by_folder.setdefault(channel.source_id, conversation)
        return by_folder

    def _channel(self, original: Any, kind: ChannelKind, origin: Origin) -> Channel | Unreadable:
        if not isinstance(original, dict):
            return Unreadable("channels", "CM002", "conversation is not a JSON object", original, origin)
        raw, bad = checked(original, _CHANNEL)
        if not raw.get("id"):
            return Unreadable("channels", "CM002", "conversation without an id" + (
                " (it is of the wrong type)" if "id" in bad else ""), original, origin)
        members = tuple(dict.fromkeys(self._user_id(m) for m in raw.get("members") or ()))
        topic = raw.get("topic") or {}
        purpose = raw.get("purpose") or {}
        creator = raw.get("creator") or raw.get("user")
        props: dict[str, Any] = {k: raw[k] for k in ("is_general", "is_archived", "pins", "is_shared",
                                                    "is_ext_shared", "is_org_shared", "shared_team_ids")
                                 if raw.get(k)}
        created = raw.get("created")
        created_at = parse_ts(created)
        if created not in (None, "") and created_at is None:
            props["unreadable_created"] = created
        if bad:
            props[UNREADABLE] = bad
        name = raw.get("name") or raw["id"]
        return Channel(
            id=self._id("channel", raw["id"]), source=SOURCE, source_id=raw["id"], team_id=self._id("team", self.scope),
            name=str(name), kind=kind, display_name=str(name),
            topic=unescape_or_none(topic.get("value")), purpose=unescape_or_none(purpose.get("value")),
            created_at=created_at, creator_id=self._user_id(creator) if isinstance(creator, str) and creator else None,
            archived_at=None, member_ids=members, props=props, origin=origin)

    def _day_files(self) -> dict[str, list[str]]:
        days: dict[str, list[str]] = {}
        for name in self.files.names():
            match = _DAY_FILE.match(name)
            # Folders starting with "__" hold downloaded uploads (slack-advanced-exporter), not days.
            if match and not match.group("folder").startswith("__"):
                days.setdefault(match.group("folder"), []).append(name)
        return days

    def _messages(self, conversations: Mapping[str, _Conversation]) -> Iterator[Item]:
        for folder, day_names in sorted(self._day_files().items()):
            conversation = conversations.get(folder)
            if conversation is None:
                yield from self._unplaced(folder, sorted(day_names))
                continue
            last_ts = ""
            for name in sorted(day_names):
                for item in self._day(name, conversation):
                    if isinstance(item, Message):
                        last_ts = item.source_id.rsplit("/", 1)[1]
                    yield item
            yield Checkpoint(SOURCE, self.scope, conversation.channel_id, last_ts)

    def _unplaced(self, folder: str, day_names: list[str]) -> Iterator[Item]:
        """Messages of a folder no listing names: each one rejected (counted as the message it is)."""
        reason = (f"conversation folder {folder!r} is not listed in channels.json, groups.json, dms.json or "
                  "mpims.json; its messages cannot be placed")
        if self._unreadable_listings:
            reason += f" ({', '.join(self._unreadable_listings)} could not be read: see its CM001)"
        for name in day_names:
            where = self.files.describe(name)
            for entry in self._document(name):
                if isinstance(entry, Unreadable):
                    yield entry
                else:
                    yield Unreadable("messages", "CM005", reason, entry[1], Origin(where, entry[0]))

    def _day(self, name: str, conversation: _Conversation) -> Iterator[Item]:
        where = self.files.describe(name)
        elements: list[tuple[int, Any]] = []
        for entry in self._document(name):
            if isinstance(entry, Unreadable):
                # Keep what was readable; the rest of the file is one unreadable file (not a message).
                yield entry
            else:
                elements.append(entry)
        # Within a day Slack writes in ts order, but not every tool does: sort (one day is small).
        elements.sort(key=lambda e: _ts_key(e[1].get("ts")) if isinstance(e[1], dict) else (0, 0))
        for line, raw in elements:
            yield from self._message(raw, conversation, Origin(where, line))

    def _message(self, original: Any, conversation: _Conversation, origin: Origin) -> Iterator[Item]:
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
        author = self._author(raw)
        if author is not None:
            yield from self._discover_user(author, raw, origin)
        text_source = raw.get("text") or ""
        text = to_markdown(text_source, self._usernames, self._channel_names)
        props = {k: v for k, v in raw.items() if k not in _CONSUMED}
        if subtype:
            props["subtype"] = subtype
        if bad:
            props[UNREADABLE] = bad
        if text != text_source:
            props["source_text"] = text_source
        kind = _SYSTEM_SUBTYPES.get(subtype) or _CONTENT_SUBTYPES.get(subtype) or "normal"
        thread_ts = raw.get("thread_ts")
        thread_root_id = None
        if isinstance(thread_ts, str) and thread_ts != ts:
            thread_root_id = self._id("message", f"{conversation.native_id}/{thread_ts}")
        edited = raw.get("edited") or {}
        if edited.get("user"):
            props["edited_by"] = edited["user"]
        reactions, reaction_counts = self._reactions(raw.get("reactions"))
        if reaction_counts:
            props["reaction_counts"] = reaction_counts
        unreadable: list[Unreadable] = []
        files = self._files(raw, unreadable)
        yield from unreadable
        yield Message(
            id=self._id("message", f"{conversation.native_id}/{ts}"), source=SOURCE,
            source_id=f"{conversation.native_id}/{ts}", channel_id=conversation.channel_id,
            user_id=self._user_id(author) if author else None, created_at=created_at, kind=kind, text=text,
            thread_root_id=thread_root_id, edited_at=parse_ts(edited.get("ts")),
            # A tombstone is a deleted thread parent kept so its replies keep their root.
            deleted_at=created_at if subtype == "tombstone" else None,
            is_pinned=bool(raw.get("pinned_to")), reactions=reactions, files=files, props=props, origin=origin)

    @staticmethod
    def _author(raw: dict[str, Any]) -> str | None:
        user = raw.get("user")
        if isinstance(user, str) and user:
            return user
        bot_id = raw.get("bot_id")
        if isinstance(bot_id, str) and bot_id:
            # bot_message often has no user: the bot itself is the author.
            return bot_id
        return None

    def _discover_user(self, author: str, raw: dict[str, Any], origin: Origin) -> Iterator[User]:
        """Authors missing from users.json (Slack Connect guests, bots, Slackbot) come from the message."""
        if author in self._emitted_users:
            return
        profile = raw.get("user_profile") if isinstance(raw.get("user_profile"), dict) else None
        bot_profile = raw.get("bot_profile") if isinstance(raw.get("bot_profile"), dict) else {}
        if profile is not None:
            username = profile.get("name") or author
            user = User(self._user_id(author), SOURCE, author, str(username),
                        display_name=profile.get("display_name") or profile.get("real_name") or None,
                        first_name=profile.get("first_name") or None, role="guest" if profile.get(
                            "is_restricted") or profile.get("is_ultra_restricted") else "member",
                        props={"discovered_from": "message user_profile", "team": profile.get("team")},
                        origin=origin)
        elif author == SLACKBOT or author == raw.get("bot_id"):
            username = "slackbot" if author == SLACKBOT else (bot_profile.get("name") or raw.get("username")
                                                               or author)
            user = User(self._user_id(author), SOURCE, author, str(username), is_bot=True, role="bot",
                        is_deleted=bool(bot_profile.get("deleted")),
                        props={"discovered_from": "message bot_id" if author != SLACKBOT else "slackbot"},
                        origin=origin)
        else:
            return  # unknown with no snapshot: the validator makes a recorded placeholder
        self._emitted_users.add(author)
        self._usernames.setdefault(author, user.username)
        yield user

    def _reactions(self, raw: Any) -> tuple[tuple[Reaction, ...], dict[str, int]]:
        reactions: list[Reaction] = []
        counts: dict[str, int] = {}
        for entry in raw if isinstance(raw, list) else ():
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            users = [u for u in entry.get("users") or () if isinstance(u, str)]
            reactions.extend(Reaction(entry["name"], self._user_id(u)) for u in dict.fromkeys(users))
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
        props = {k: entry[k] for k in ("title", "filetype", "pretty_type", "mode", "is_external", "external_type",
                                       "user", "permalink", "is_public") if k in entry}
        if entry.get("mode") == "tombstone":
            props["deleted"] = True
        upload = f"__uploads/{file_id}/{name}"
        size, sha256, path = entry.get("size"), None, None
        measured = self._measure(upload, unreadable) if self.files.exists(upload) else None
        if measured is not None:
            # slack-advanced-exporter put the bytes in the zip: what is really there.
            size, sha256 = measured
            path = upload
        elif self.files.exists(upload):
            props["missing"] = True
            props["missing_reason"] = f"{upload} is in the export but cannot be read (see its CM001)"
        elif self._has_uploads and entry.get("mode") not in ("tombstone", "external", "hidden_by_limit") and not \
                entry.get("is_external"):
            # The export carries downloaded bytes (slack-advanced-exporter) but not this file's.
            props["missing"] = True
            props["missing_reason"] = f"{upload} is not in the export"
        return File(
            id=self._id("file", file_id), source=SOURCE, source_id=file_id, name=str(name),
            mime_type=entry.get("mimetype") or None, size=size if isinstance(size, int) else None, sha256=sha256,
            source_url=strip_file_token(entry.get("url_private_download") or entry.get("url_private")),
            path=path, created_at=parse_ts(entry.get("created")), props=props)

    def _measure(self, member: str, unreadable: list[Unreadable]) -> tuple[int, str] | None:
        """(size, sha256) of a member's bytes; None, with an Unreadable for the member (once, however many
        messages share the file), when it cannot be read."""
        if member in self._unreadable_members:
            return None
        digest = hashlib.sha256()
        size = 0
        try:
            with self.files.open(member) as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
                    size += len(chunk)
        except InputError as exc:
            self._unreadable_members.add(member)
            unreadable.append(Unreadable("export_files", "CM001", f"{member}: {exc.detail}",
                                         {"file": self.files.describe(member)}, Origin(self.files.describe(member))))
            return None
        return size, digest.hexdigest()


def unescape_or_none(value: Any) -> str | None:
    return unescape(value) if isinstance(value, str) and value else None


def _error_line(exc: InputError) -> int | None:
    location = exc.location or ""
    tail = location.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


