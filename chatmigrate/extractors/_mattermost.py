"""Mattermost identity and field conversions shared by the export and API forms.

Both forms import these, so the native keys (DESIGN §2) are computed by one piece of code:
- team `name`; user `username`; channel `team/name`; DM or group `direct:` + sorted usernames;
- post `channel/author/create_at`; reply `root/author/create_at`; attachment `message/file name`;
  emoji `name` (its image `emoji:name`);
- posts sharing a key are numbered in post-id order (`…#1`, `…#2`): the bulk exporter writes posts
  and replies in post-id order (`GetParentsForExportAfter` / `GetRepliesForExport` both
  `ORDER BY Posts.Id`), so export file order and API id order agree;
- names are lowercased (Mattermost stores them lowercase and matches them case-insensitively).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from chatmigrate.extractors._vocabulary import role
from chatmigrate.ids import record_id
from chatmigrate.model import ChannelKind, File, Message, Origin, Reaction, User

SOURCE = "mattermost"
DEFAULT_SCOPE = "mattermost"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant a datetime holds

# Post types that record a change to the channel; the other "system_*" are system_other.
SYSTEM_KINDS = {
    "system_join_channel": "system_join", "system_join_team": "system_join",
    "system_leave_channel": "system_leave", "system_leave_team": "system_leave",
    "system_add_to_channel": "system_add", "system_add_to_team": "system_add",
    "system_remove_from_channel": "system_remove", "system_remove_from_team": "system_remove",
    "system_header_change": "system_topic", "system_purpose_change": "system_purpose",
    "system_displayname_change": "system_rename", "system_channel_deleted": "system_archive",
    "system_channel_restored": "system_unarchive", "system_change_chan_privacy": "system_convert_to_private",
    "system_guest_join_channel": "system_join", "system_add_guest_to_chan": "system_add",
}


@lru_cache(maxsize=1 << 16)
def name_key(name: str) -> str:
    """Mattermost names (team, channel, user, emoji) are lowercase; match them that way."""
    return name.strip().lower()


def channel_key(team: str, channel: str) -> str:
    return f"{name_key(team)}/{name_key(channel)}"


@dataclass(frozen=True, slots=True)
class DirectChannelNames:
    """How a DM or group message is named and keyed, from its members' usernames."""

    key: str
    name: str
    display_name: str
    kind: ChannelKind
    usernames: tuple[str, ...]


def direct_names(usernames: Iterable[str]) -> DirectChannelNames:
    """2 distinct members → direct, 1 (a self-DM, exported as the same user twice) → direct, 3+ → group."""
    unique = tuple(sorted({name_key(u) for u in usernames}))
    pair = unique * 2 if len(unique) == 1 else unique
    return DirectChannelNames(key="direct:" + ",".join(unique), name="__".join(pair),
                              display_name=", ".join(unique), kind="group" if len(unique) > 2 else "direct",
                              usernames=unique)


def post_key(parent_key: str, username: str, create_at: int, sequence: int) -> str:
    """`parent/author/create_at`; parent is the channel key for a post, the root's key for a reply."""
    base = f"{parent_key}/{name_key(username)}/{create_at}"
    return f"{base}#{sequence}" if sequence else base


def file_key(message_key: str, name: str, sequence: int) -> str:
    return f"{message_key}/{name}#{sequence}" if sequence else f"{message_key}/{name}"


def emoji_file_key(name: str) -> str:
    return f"emoji:{name_key(name)}"


class Sequencer:
    """Numbers keys that repeat: the first occurrence gets 0, the next 1, … (in the order asked)."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def __call__(self, base: str) -> int:
        number = self._seen[base]
        self._seen[base] += 1
        return number


def ms_to_datetime(value: Any) -> datetime | None:
    """Mattermost millisecond timestamps → UTC datetime; None for 0/absent/unreadable ("never")."""
    if type(value) is int and 0 < value < _MAX_MS:  # the usual case, first: this runs per message
        return EPOCH + timedelta(milliseconds=value)
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value <= 0:
        return None
    try:
        return EPOCH + timedelta(milliseconds=value)
    except OverflowError:
        return None


def ms_value(value: Any) -> int | None:
    """A positive millisecond timestamp as int, or None."""
    return None if ms_to_datetime(value) is None else int(value)


def stream_key(message: Message, root_created: datetime | None) -> tuple[datetime, int, str]:
    """Order inside a channel: (created_at, id), except that a reply stamped at or before its root
    (Mattermost allows it) goes right after the root, so a root always precedes its replies."""
    if root_created is not None and message.created_at <= root_created:
        return (root_created, 1, message.id)
    return (message.created_at, 0, message.id)


def message_kind(post_type: str, props: Mapping[str, Any]) -> str:
    """A post type → canonical kind; the type itself stays in props["type"]."""
    if not post_type:
        if str(props.get("from_webhook")).lower() == "true" or str(props.get("from_bot")).lower() == "true":
            return "bot"
        return "normal"
    if post_type == "me":
        return "me"
    if post_type.startswith("system_"):
        return SYSTEM_KINDS.get(post_type, "system_other")
    return "custom"  # custom_* plugin posts and any other type a plugin adds


def user_role(roles: str, is_bot: bool) -> str:
    return role(SOURCE, set(roles.split()), is_bot)


def mm_id(scope: str, kind: str, native_key: str) -> str:
    return record_id(SOURCE, scope, kind, native_key)


def convert_user(scope: str, key: str, raw: Mapping[str, Any], *, is_bot: bool, deleted_at: datetime | None,
                 props: dict[str, Any], bot_display: str | None = None, timezone: str | None = None,
                 origin: Origin | None = None) -> User:
    """A user (a bulk-export user/bot line, or an API v4 user) → User; `props` holds what only the form knows."""
    first, last = _text(raw.get("first_name")), _text(raw.get("last_name"))
    display = _text(raw.get("nickname")) or " ".join(p for p in (first, last) if p) or bot_display or None
    if deleted_at is not None:
        props["deleted_at"] = deleted_at.isoformat()
    return User(mm_id(scope, "user", key), SOURCE, key, key, email=_text(raw.get("email")), display_name=display,
                first_name=first, last_name=last, is_bot=is_bot, is_deleted=deleted_at is not None,
                role=user_role(str(raw.get("roles") or ""), is_bot), timezone=timezone, props=props, origin=origin)


def convert_reactions(scope: str, entries: Any, username_of: Callable[[Mapping[str, Any]], str | None],
                      ) -> tuple[tuple[Reaction, ...], list[Any]]:
    """(reactions, entries that are not one): one per user and emoji, the target's key, first one kept.
    `username_of` reads the reacting user of an entry (a username in an export, a user id via the API)."""
    reactions: dict[tuple[str, str], Reaction] = {}
    bad: list[Any] = []
    for entry in entries if isinstance(entries, list) else ():
        user = username_of(entry) if isinstance(entry, dict) else None
        emoji = entry.get("emoji_name") if isinstance(entry, dict) else None
        if not user or not isinstance(emoji, str) or not emoji.strip(":"):
            bad.append(entry)
            continue
        reaction = Reaction(emoji.strip(":"), mm_id(scope, "user", name_key(user)),
                            ms_to_datetime(entry.get("create_at")))
        reactions.setdefault((reaction.emoji, reaction.user_id), reaction)
    return tuple(reactions.values()), bad


def attachment(scope: str, message_key: str, name: str, sequence: Sequencer, **fields: Any) -> File:
    """An attachment of a post: keyed `message/name` (numbered when a post has two of one name)."""
    key = file_key(message_key, name, sequence(file_key(message_key, name, 0)))
    return File(mm_id(scope, "file", key), SOURCE, key, name, **fields)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
