"""The second pass over a Mattermost bulk export (mattermost_export.py): every record in the contract's
stream order, messages channel by channel by seeking to the offsets the first pass (_mm_index.py) found,
at most one channel's posts held (exported replies are not in time order: they are sorted)."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING, Any

import orjson

from chatmigrate.errors import InputError
from chatmigrate.extractors._fields import UNREADABLE, Spec, checked, either, is_bool, is_number, is_object, is_text
from chatmigrate.extractors._mattermost import (
    EPOCH,
    SOURCE,
    Sequencer,
    attachment,
    convert_reactions,
    convert_user,
    emoji_file_key,
    message_kind,
    ms_to_datetime,
    ms_value,
    name_key,
    post_key,
    stream_key,
)
from chatmigrate.extractors._mm_index import (
    KNOWN_KINDS,
    RAW_EXCERPT,
    TYPE_FAST,
    Attachments,
    Chan,
    Index,
    Lines,
    read_line,
    record_kind,
    safe_relative,
    shape_problem,
)
from chatmigrate.markup.mattermost import to_markdown
from chatmigrate.model import (
    Channel,
    Checkpoint,
    Emoji,
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

if TYPE_CHECKING:
    from chatmigrate.extractors.mattermost_export import MattermostExport

# Post fields that become canonical columns; every other field is kept verbatim in props.
_CONSUMED = {"team", "channel", "user", "message", "create_at", "edit_at", "is_pinned", "reactions",
             "replies", "attachments", "type", "channel_members"}
# User fields kept in props (display preferences, notify settings and passwords are not migrated).
_USER_PROPS = ("nickname", "position", "locale", "roles", "auth_service", "auth_data", "profile_image")
_SKIPPED_KINDS = {"role": "roles", "scheme": "schemes"}
_MS = either(is_number, is_text)  # ms_to_datetime also reads digits in a string
# Reactions, replies and attachments of the wrong shape are already rejected one by one (CM002).
_POST = Spec(message=is_text, type=is_text, props=is_object, edit_at=_MS, is_pinned=is_bool)


class Reader:
    """The second pass: everything in DESIGN's stream order, messages channel by channel."""

    def __init__(self, export: MattermostExport, handle: IO[bytes], where: str, attachments: Attachments,
                 index: Index) -> None:
        self.x, self.handle, self.where, self.attachments, self.index = export, handle, where, attachments, index
        self.known_users = set(index.users) | set(index.bots)

    def _read(self, offset: int) -> tuple[bytes, bool]:
        self.handle.seek(offset)
        raw, _consumed, too_long = read_line(self.handle, self.x.max_line_bytes)
        return raw, too_long

    def items(self) -> Iterator[Item]:
        if self.index.broken is not None:
            yield self.index.broken
        yield from self._other_lines()
        yield from self.index.superseded
        yield from self._teams()
        yield from self._users()
        yield from self._channels()
        yield from self._emoji()
        for chan in self.index.channels.values():
            lines = self.index.posts.get(chan.key)
            if lines:
                yield from self._channel_messages(chan, lines)
        yield from self._undeclared()

    # -- lines that are not records ------------------------------------------------------------
    def _other_lines(self) -> Iterator[Item]:
        other = self.index.other
        for offset, number in zip(other.offsets, other.numbers, strict=True):
            raw, too_long = self._read(offset)
            yield self._other_item(raw, too_long, Origin(self.where, number))

    def _other_item(self, raw: bytes, too_long: bool, origin: Origin) -> Item:
        fast = TYPE_FAST.match(raw)
        guessed = fast.group(1).decode() if fast else "unknown"
        kind_of_line = record_kind(guessed)
        if too_long:
            return Unreadable(kind_of_line, "CM001", f"line longer than {self.x.max_line_bytes} bytes, the limit of "
                              "Mattermost's bulk format; only its start is kept here",
                              raw.decode("utf-8", "replace"), origin)
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return Unreadable(kind_of_line, "CM001", f"line is not valid JSON ({exc})",
                              raw[:RAW_EXCERPT].decode("utf-8", "replace"), origin)
        kind = doc.get("type") if isinstance(doc, dict) else None
        if not isinstance(kind, str):
            return Unreadable("unknown", "CM002", 'line has no "type"', doc, origin)
        if kind in _SKIPPED_KINDS:
            return Skipped(_SKIPPED_KINDS[kind], f"{kind} definitions (permissions) are not migrated", doc, origin)
        if kind == "version":
            return Skipped("version", f"repeated version line (the first is line {self.index.version_line})",
                           doc, origin)
        if kind not in KNOWN_KINDS:
            return Skipped(record_kind(kind), f"unknown line type {kind!r} (not part of the bulk format "
                           "chatmigrate knows; plugins add their own)", doc, origin)
        body = doc.get(kind)
        return Unreadable(record_kind(kind), "CM002", shape_problem(kind, body), doc, origin)

    # -- teams, users, channels, emoji -------------------------------------------------------------
    def _teams(self) -> Iterator[Item]:
        for key, (raw, origin) in self.index.teams.items():
            props = {k: raw[k] for k in ("type", "allow_open_invite", "scheme", UNREADABLE) if raw.get(k) is not None}
            yield Team(self.x._id("team", key), SOURCE, key, key, display_name=_text(raw.get("display_name")),
                       description=_text(raw.get("description")), props=props, origin=origin)

    def _users(self) -> Iterator[Item]:
        for key, (raw, origin) in self.index.users.items():
            bot = self.index.bots.get(key)
            yield self._user(key, raw, origin, bot[0] if bot else None)
        for key, (raw, origin) in self.index.bots.items():
            if key not in self.index.users:
                yield self._user(key, {}, origin, raw)

    def _user(self, key: str, raw: dict[str, Any], origin: Origin, bot: dict[str, Any] | None) -> User:
        props: dict[str, Any] = {k: raw[k] for k in _USER_PROPS if raw.get(k) not in (None, "")}
        teams = self.index.user_teams.get(key)
        if teams:
            props["teams"] = teams
        delete_at = ms_to_datetime(raw.get("delete_at"))
        if bot is not None:
            props.update({f"bot_{k}": bot[k] for k in ("owner", "description", "profile_image") if bot.get(k)})
            delete_at = delete_at or ms_to_datetime(bot.get("delete_at"))
        _keep_unreadable(props, raw, bot)
        return convert_user(self.x.scope, key, raw, is_bot=bot is not None, deleted_at=delete_at, props=props,
                            bot_display=_text((bot or {}).get("display_name")), origin=origin)

    def _channels(self) -> Iterator[Item]:
        for chan in self.index.channels.values():
            if chan.names is None:
                yield self._team_channel(chan)
            else:
                yield self._direct_channel(chan)

    def _team_channel(self, chan: Chan) -> Channel:
        raw = chan.raw or {}
        team, name = chan.key.split("/", 1)
        members = tuple(dict.fromkeys(self.x._id("user", u) for u in self.index.memberships.get(chan.key, ())))
        props = {k: raw[k] for k in ("type", "scheme", UNREADABLE) if raw.get(k)}
        if team not in self.index.teams:
            props["undeclared_team"] = team
        return Channel(chan.id, SOURCE, chan.key, self.x._id("team", team), name, chan.kind,
                       display_name=_text(raw.get("display_name")) or name, topic=_text(raw.get("header")),
                       purpose=_text(raw.get("purpose")), archived_at=ms_to_datetime(raw.get("deleted_at")),
                       member_ids=members, props=props, origin=chan.origin)

    def _direct_channel(self, chan: Chan) -> Channel:
        assert chan.names is not None
        raw = chan.raw
        props: dict[str, Any] = {}
        if raw is None:
            props["created_from"] = "direct_post"  # no direct_channel line: made from its first post
        else:
            props.update({k: raw[k] for k in ("favorited_by", "shown_by", UNREADABLE) if raw.get(k)})
        members = tuple(self.x._id("user", u) for u in chan.names.usernames)
        return Channel(chan.id, SOURCE, chan.key, None, chan.names.name, chan.kind,
                       display_name=chan.names.display_name, topic=_text((raw or {}).get("header")),
                       member_ids=members, props=props, origin=chan.origin)

    def _emoji(self) -> Iterator[Item]:
        for key, (raw, origin) in self.index.emoji.items():
            image = raw.get("image")
            file: File | None = None
            if isinstance(image, str) and image:
                problems: list[Item] = []
                fields = self._file_fields(image, problems, origin)
                yield from problems
                if isinstance(fields, Unreadable):
                    yield fields
                else:
                    file = File(self.x._id("file", emoji_file_key(key)), SOURCE, emoji_file_key(key),
                                _base_name(image), **fields)
            props = {UNREADABLE: raw[UNREADABLE]} if raw.get(UNREADABLE) else {}
            yield Emoji(self.x._id("emoji", key), SOURCE, key, key, file=file, props=props, origin=origin)

    # -- messages ------------------------------------------------------------------------------
    def _channel_messages(self, chan: Chan, lines: Lines) -> Iterator[Item]:
        built: list[tuple[tuple[datetime, int, str], Message]] = []
        sequence = Sequencer()
        for offset, number in zip(lines.offsets, lines.numbers, strict=True):
            origin = Origin(self.where, number)
            raw, too_long = self._read(offset)
            if too_long:  # the first pass sends these elsewhere; kept for a file changed in between
                yield self._other_item(raw, too_long, origin)
                continue
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield Unreadable("messages", "CM001", f"line is not valid JSON ({exc})",
                                 raw[:RAW_EXCERPT].decode("utf-8", "replace"), origin)
                continue
            kind = doc.get("type") if isinstance(doc, dict) else None
            post = doc.get(kind) if isinstance(kind, str) else None
            if not isinstance(post, dict):
                yield Unreadable("messages", "CM002", shape_problem(str(kind), post), doc, origin)
                continue
            for item in self._post(post, chan, sequence, origin):
                if isinstance(item, tuple):
                    built.append(item)
                else:
                    yield item
        built.sort(key=lambda pair: pair[0])
        cursor = 0
        for _, message in built:
            yield message
            cursor = max(cursor, _ms(message.created_at), _ms(message.edited_at))
        if built:
            # The cursor is a millisecond time the API form can pass as `since` to continue from here.
            yield Checkpoint(SOURCE, self.x.scope, chan.id, str(cursor))

    def _post(self, post: dict[str, Any], chan: Chan, sequence: Sequencer, origin: Origin,
              ) -> Iterator[Item | tuple[tuple[datetime, int, str], Message]]:
        root = self._message(post, chan, chan.key, sequence, None, origin)
        replies = post.get("replies")
        if replies is None:
            replies = []
        elif not isinstance(replies, list):
            replies = []
            yield Unreadable("messages", "CM002", '"replies" is not a list', post.get("replies"), origin)
        if isinstance(root, Unreadable):
            yield root
            for reply in replies:
                yield Unreadable("messages", "CM002", f"reply to a post that could not be read ({root.reason})",
                                 reply, origin)
            return
        message, problems = root
        yield from problems
        yield stream_key(message, None), message
        reply_sequence = Sequencer()
        for reply in replies:
            if not isinstance(reply, dict):
                yield Unreadable("messages", "CM002", "reply is not a JSON object", reply, origin)
                continue
            result = self._message(reply, chan, message.source_id, reply_sequence, message, origin)
            if isinstance(result, Unreadable):
                yield result
                continue
            reply_message, problems = result
            yield from problems
            yield stream_key(reply_message, message.created_at), reply_message

    def _message(self, original: dict[str, Any], chan: Chan, parent_key: str, sequence: Sequencer,
                 root: Message | None, origin: Origin) -> tuple[Message, list[Item]] | Unreadable:
        what = "reply" if root is not None else "post"
        post, bad = checked(original, _POST)
        author = post.get("user")
        if not isinstance(author, str) or not author.strip():
            return Unreadable("messages", "CM002", f"{what} without a user", original, origin)
        created = ms_value(post.get("create_at"))
        if created is None:
            return Unreadable("messages", "CM004", f"{what} create_at {post.get('create_at')!r} is not a positive "
                              "millisecond time", original, origin)
        key = post_key(parent_key, author, created, sequence(post_key(parent_key, author, created, 0)))
        message_id = self.x._id("message", key)
        problems: list[Item] = []
        text_source = post.get("message") or ""
        text = to_markdown(text_source)
        post_type = post.get("type") or ""
        mm_props = post.get("props") or {}
        props: dict[str, Any] = {k: v for k, v in post.items() if k not in _CONSUMED and v not in (None, [], {}, "")}
        if bad:
            props[UNREADABLE] = bad
        if post_type:
            props["type"] = post_type
        if text != text_source:
            props["source_text"] = text_source
        if name_key(author) not in self.known_users:
            props["username"] = author  # no user line: the validator makes a placeholder from this
        reactions = self._reactions(post.get("reactions"), origin, problems)
        created_at = ms_to_datetime(created) or EPOCH  # never None: ms_value checked it
        files = self._files(key, post.get("attachments"), created_at, origin, problems)
        message = Message(
            id=message_id, source=SOURCE, source_id=key, channel_id=chan.id, user_id=self.x._user_id(author),
            created_at=created_at, kind=message_kind(post_type, mm_props), text=text,
            thread_root_id=root.id if root is not None else None, edited_at=ms_to_datetime(post.get("edit_at")),
            is_pinned=post.get("is_pinned") is True, reactions=reactions, files=files, props=props, origin=origin)
        return message, problems

    def _reactions(self, raw: Any, origin: Origin, problems: list[Item]) -> tuple[Reaction, ...]:
        def username(entry: Mapping[str, Any]) -> str | None:
            user = entry.get("user")
            return user if isinstance(user, str) and user else None
        reactions, bad = convert_reactions(self.x.scope, raw, username)
        problems.extend(Unreadable("reactions", "CM002", "reaction without user or emoji_name", entry, origin)
                        for entry in bad)
        return reactions

    def _files(self, message_key: str, raw: Any, created_at: datetime | None, origin: Origin,
               problems: list[Item]) -> tuple[File, ...]:
        files: list[File] = []
        sequence = Sequencer()
        for entry in raw if isinstance(raw, list) else ():
            path = entry.get("path") if isinstance(entry, dict) else None
            if not isinstance(path, str) or not path:
                problems.append(Unreadable("files", "CM002", "attachment without a path", entry, origin))
                continue
            fields = self._file_fields(path, problems, origin)
            if isinstance(fields, Unreadable):
                problems.append(fields)
                continue
            files.append(attachment(self.x.scope, message_key, _base_name(path), sequence, created_at=created_at,
                                    **fields))
        return tuple(files)

    def _file_fields(self, path: str, problems: list[Item],
                     origin: Origin | None = None) -> dict[str, Any] | Unreadable:
        """What the export knows of the file at data/`path`: its type, and its bytes' size and SHA-256 when
        it holds them (else props.missing)."""
        if not safe_relative(path):
            return Unreadable("files", "CM003", f"attachment path {path!r} escapes data/ (absolute, drive or ..); "
                              "refused", {"path": path}, origin)
        props: dict[str, Any] = {}
        member = self.attachments.locate(path)
        size = sha256 = None
        if member is None:
            props["missing"] = True  # exported without attachments, or lost: the record stays
        else:
            try:
                size, sha256 = self.attachments.measure(member)
            except InputError as exc:
                # A corrupt member: the file's metadata stays (marked missing), the member is reported.
                self.x._unreadable_members.add(member)
                props["missing"] = True
                props["missing_reason"] = f"{member} is in the export but cannot be read (see its CM001)"
                problems.append(Unreadable("export_files", "CM001", f"{member}: {exc.detail}",
                                           {"file": exc.location}, Origin(exc.location or member)))
        return {"mime_type": mimetypes.guess_type(_base_name(path))[0], "size": size, "sha256": sha256,
                "path": f"data/{path}", "props": props}

    def _undeclared(self) -> Iterator[Item]:
        """Posts whose team/channel has no channel line: they cannot be placed, each is rejected."""
        by_name: dict[str, list[str]] = {}
        for key, chan in self.index.channels.items():
            if chan.names is None:
                by_name.setdefault(key.split("/", 1)[1], []).append(key.split("/", 1)[0])
        for key, lines in self.index.posts.items():
            if key in self.index.channels:
                continue
            team, name = key.split("/", 1)
            elsewhere = by_name.get(name)
            hint = f" (a channel of that name is in team {', '.join(elsewhere)})" if elsewhere else ""
            reason = f"channel {name!r} of team {team!r} is not declared in the export{hint}"
            for offset, number in zip(lines.offsets, lines.numbers, strict=True):
                origin = Origin(self.where, number)
                raw, _too_long = self._read(offset)
                try:
                    post = orjson.loads(raw).get("post")
                except (orjson.JSONDecodeError, AttributeError):
                    post = raw[:RAW_EXCERPT].decode("utf-8", "replace")
                yield Unreadable("messages", "CM005", reason, post, origin)
                for reply in (post.get("replies") or ()) if isinstance(post, dict) else ():
                    yield Unreadable("messages", "CM005", f"reply in a post whose {reason}", reply, origin)


def _keep_unreadable(props: dict[str, Any], raw: Mapping[str, Any], bot: Mapping[str, Any] | None) -> None:
    """A user's (and its bot line's) fields of the wrong type, as read (see _fields.py)."""
    bad = {**(raw.get(UNREADABLE) or {}), **{f"bot.{k}": v for k, v in ((bot or {}).get(UNREADABLE) or {}).items()}}
    if bad:
        props[UNREADABLE] = bad


def _base_name(path: str) -> str:
    return PurePosixPath(path.replace("\\", "/")).name or path


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ms(value: datetime | None) -> int:
    if value is None:
        return 0
    return (value - EPOCH) // timedelta(milliseconds=1)
