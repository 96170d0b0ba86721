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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from chatmigrate.model import ChannelKind, Message

SOURCE = "mattermost"
DEFAULT_SCOPE = "mattermost"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant a datetime holds

# Post types that record a change to the channel; the rest of "system_*" keep their own name.
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
    if not post_type:
        if str(props.get("from_webhook")).lower() == "true" or str(props.get("from_bot")).lower() == "true":
            return "bot"
        return "normal"
    if post_type == "me":
        return "me"
    if post_type.startswith("system_"):
        return SYSTEM_KINDS.get(post_type, post_type)
    if post_type.startswith("custom_"):
        return "custom"
    return post_type


def user_role(roles: str, is_bot: bool) -> str:
    names = set(roles.split())
    if "system_admin" in names:
        return "admin"
    if is_bot:
        return "bot"
    if "system_guest" in names:
        return "guest"
    return "member"


