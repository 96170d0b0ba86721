"""Rocket.Chat documents → canonical records, shared by the mongodump and the REST API extractors.

Both forms see the same document shapes (the REST API serialises the Mongo documents as JSON, with
ISO dates that the API extractor turns back into datetimes first), so one set of conversions keeps
their ids and fields identical. Ids: `record_id("rocketchat", scope, kind, _id)`, where `_id` is the
document's own key as text: Meteor's 17-character random ids and 24-hex ObjectIds (some servers store
those as real ObjectIds, others as strings; both become the same hex text).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from bson import ObjectId
from bson.datetime_ms import DatetimeMS
from bson.decimal128 import Decimal128
from bson.timestamp import Timestamp

from chatmigrate.extractors._fields import (
    UNREADABLE,
    ListOf,
    Spec,
    checked,
    is_bool,
    is_id,
    is_object,
    is_text,
    is_time,
)
from chatmigrate.extractors._vocabulary import role as user_role
from chatmigrate.ids import record_id
from chatmigrate.model import (
    Channel,
    ChannelKind,
    Emoji,
    File,
    Origin,
    Skipped,
    Unreadable,
    User,
)

SOURCE = "rocketchat"
# Values that mean "not set" in Rocket.Chat documents (built once: this runs per message).
EMPTY: tuple[Any, ...] = (None, "", [], {})
_UNSET: tuple[Any, ...] = (None, False, "")
DEFAULT_SCOPE = "rocketchat"

ROOM_KINDS: dict[str, ChannelKind] = {"c": "public", "p": "private"}
# Omnichannel rooms (livechat, VoIP) hold conversations with outside visitors, not team chat.
SKIPPED_ROOM_TYPES = {
    "l": "livechat/omnichannel room: visitor conversations are out of scope",
    "v": "VoIP/omnichannel room: call records are out of scope",
}

_USER_CONSUMED = {
    "_id", "username", "name", "emails", "type", "roles", "active", "createdAt", "utcOffset", "nickname",
    "bio", "customFields", "services", "__collection__", "_deletedAt",
    # presence, login and avatar bookkeeping: changes every login, says nothing about the person
    "_updatedAt", "status", "statusConnection", "statusDefault", "statusText", "lastLogin", "avatarOrigin",
    "avatarETag", "__rooms", "requirePasswordChange", "settings", "banners", "e2e", "inactiveReason",
    "operator", "statusLivechat", "livechat", "importIds", "openNPS",
}


def native_id(value: Any) -> str | None:
    """A document key as text: strings as they are, ObjectIds as their 24-hex form."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _is_key(value: Any) -> bool:
    """What native_id reads: an id string, an ObjectId, an integer."""
    return is_id(value) or isinstance(value, ObjectId) or (isinstance(value, int) and not isinstance(value, bool))


# The type of every field read (see _fields.py): a field of another type is left out and reported.
KEY = _is_key
REF = Spec(_id=KEY, username=is_text)
_USER_SPEC = Spec(username=is_text, name=is_text, type=is_text, roles=ListOf(is_text), active=is_bool,
                  emails=ListOf(Spec(address=is_text)), services=is_object)
_ROOM_SPEC = Spec(t=is_text, name=is_text, fname=is_text, topic=is_text, description=is_text, uids=ListOf(KEY),
                  usernames=ListOf(is_text), prid=KEY, u=REF, archived=is_bool, ts=is_time, _updatedAt=is_time)
_EMOJI_SPEC = Spec(name=is_text, extension=is_text)


def keep_bad(props: dict[str, Any], bad: Mapping[str, Any]) -> None:
    if bad:
        props[UNREADABLE] = jsonable(dict(bad))


@lru_cache(maxsize=1 << 16)
def rid_of(kind: str, scope: str, native: str) -> str:
    # Cached: user, room and thread-root ids repeat on every message (uuid5 is the hottest call).
    return record_id(SOURCE, scope, kind, native)


def jsonable(value: Any) -> Any:
    """A BSON value as something orjson can write into `props` (datetimes stay datetimes)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bytes):
        return {"$base64": base64.b64encode(value).decode()}
    if isinstance(value, DatetimeMS | Timestamp):
        return {"$bson": repr(value)}
    if isinstance(value, Decimal128):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def as_time(value: Any) -> datetime | None:
    """A BSON date (tz-aware UTC) or None; DatetimeMS (out of datetime's range) counts as absent."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def cursor_text(when: datetime) -> str:
    """The cursor form of a time: ISO 8601 UTC with milliseconds, as the REST API expects."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def sub_document(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def extra_fields(doc: Mapping[str, Any], consumed: set[str]) -> dict[str, Any]:
    return {k: jsonable(v) for k, v in doc.items() if k not in consumed}


# ---------------------------------------------------------------------------------------------- users

def convert_user(doc: Mapping[str, Any], scope: str, origin: Origin | None,
                 *, deleted_at: datetime | None = None) -> User | Unreadable:
    """A `users` document → User. `services` (password hashes, login tokens) is never read beyond its
    key names."""
    native = native_id(doc.get("_id"))
    if native is None:
        return Unreadable("users", "CM002", "user document without an _id", _safe_user(doc), origin)
    doc, bad = checked(doc, _USER_SPEC)
    roles = [r for r in doc.get("roles") or [] if isinstance(r, str)]
    kind = doc.get("type") if isinstance(doc.get("type"), str) else None
    emails = doc.get("emails") if isinstance(doc.get("emails"), list) else []
    email = next((e.get("address") for e in emails if isinstance(e, Mapping) and e.get("address")), None)
    username = doc.get("username") if isinstance(doc.get("username"), str) and doc.get("username") else None
    props: dict[str, Any] = {"roles": roles}
    if kind:
        props["type"] = kind
    if username is None:
        # Accounts that never finished registration have no username; keep them, keyed by id.
        props["no_username"] = True
    for key, name in (("createdAt", "created_at"), ("nickname", "nickname"), ("bio", "bio"),
                      ("customFields", "custom_fields"), ("utcOffset", "utc_offset")):
        if doc.get(key) not in EMPTY:
            props[name] = jsonable(doc[key])
    services = doc.get("services")
    if isinstance(services, Mapping) and services:
        props["login_services"] = sorted(str(k) for k in services)  # names only, never the contents
    if deleted_at is not None:
        props["deleted_at"] = deleted_at
    if len(emails) > 1:
        props["emails"] = [e.get("address") for e in emails if isinstance(e, Mapping)]
    extra = extra_fields(doc, _USER_CONSUMED)
    if extra:
        props["extra"] = extra
    keep_bad(props, {k: v for k, v in bad.items() if not k.startswith("services")})  # never credentials
    is_bot = kind in ("bot", "app") or "bot" in roles
    role = user_role(SOURCE, set(roles), is_bot)
    return User(
        id=rid_of("user", scope, native), source=SOURCE, source_id=native, username=username or native,
        email=email, display_name=doc.get("name") or None, is_bot=is_bot,
        is_deleted=doc.get("active") is False or deleted_at is not None, role=role, props=props, origin=origin)


def _safe_user(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A user document fit for rejects.jsonl: without `services` (credentials)."""
    return jsonable({k: v for k, v in doc.items() if k != "services"})


# ---------------------------------------------------------------------------------------------- rooms

def convert_room(doc: Mapping[str, Any], scope: str, member_ids: Iterable[str], origin: Origin | None,
                 *, deleted_at: datetime | None = None) -> Channel | Skipped | Unreadable:
    """A `rocketchat_room` document → Channel; omnichannel rooms → Skipped; unknown types → Unreadable.

    `member_ids` are the canonical user ids of the room's subscriptions (rooms do not list members).
    Discussions (`prid`) are channels of their own, linked by `props["parent_channel_id"]`.
    """
    native = native_id(doc.get("_id"))
    raw = jsonable(doc)
    if native is None:
        return Unreadable("channels", "CM002", "room document without an _id", raw, origin)
    doc, bad = checked(doc, _ROOM_SPEC)
    room_type = doc.get("t")
    if room_type in SKIPPED_ROOM_TYPES:
        return Skipped("channels", f"room {native}: {SKIPPED_ROOM_TYPES[room_type]}", raw, origin)
    uids = [u for u in (native_id(x) for x in doc.get("uids") or []) if u]
    usernames = sorted(u for u in doc.get("usernames") or [] if isinstance(u, str))
    kind: ChannelKind
    if room_type in ROOM_KINDS:
        kind = ROOM_KINDS[room_type]
    elif room_type == "d":
        kind = "group" if max(len(uids), len(usernames)) > 2 else "direct"
    else:
        return Unreadable("channels", "CM006",
                          f"room {native} has type t={room_type!r}, which is not one of c, p, d, l, v", raw, origin)
    members = list(dict.fromkeys([*member_ids, *(rid_of("user", scope, u) for u in uids)]))
    name = doc.get("name") if isinstance(doc.get("name"), str) and doc.get("name") else None
    display = doc.get("fname") if isinstance(doc.get("fname"), str) and doc.get("fname") else None
    if kind in ("direct", "group"):
        name = name or ("__".join(usernames) if usernames else native)
        display = display or ", ".join(usernames) or None
    props: dict[str, Any] = {"type": room_type}
    parent = native_id(doc.get("prid"))
    if parent:
        props["parent_channel_id"] = rid_of("channel", scope, parent)
        props["discussion"] = True
    for key, prop in (("announcement", "announcement"), ("ro", "read_only"), ("default", "default"),
                      ("featured", "featured"), ("encrypted", "encrypted"), ("broadcast", "broadcast"),
                      ("teamMain", "team_main"), ("teamId", "rocketchat_team_id"), ("federated", "federated")):
        if doc.get(key) not in _UNSET:
            props[prop] = jsonable(doc[key])
    if kind in ("direct", "group") and usernames:
        props["usernames"] = usernames
    if deleted_at is not None:
        props["deleted_at"] = deleted_at
    keep_bad(props, bad)
    creator = native_id(sub_document(doc, "u").get("_id"))
    archived = doc.get("archived") is True
    return Channel(
        id=rid_of("channel", scope, native), source=SOURCE, source_id=native, team_id=None,
        name=name or display or native, kind=kind, display_name=display,
        topic=doc.get("topic") or None, purpose=doc.get("description") or None, created_at=as_time(doc.get("ts")),
        creator_id=rid_of("user", scope, creator) if creator else None,
        # Rocket.Chat keeps no archive time; the room's last change is the closest it records.
        archived_at=(as_time(doc.get("_updatedAt")) or as_time(doc.get("ts"))) if archived else None,
        member_ids=tuple(members), props=props, origin=origin)


# ---------------------------------------------------------------------------------------------- emoji

def convert_emoji(doc: Mapping[str, Any], scope: str, file: File | None, origin: Origin | None) -> Emoji | Unreadable:
    native = native_id(doc.get("_id"))
    if native is None or not isinstance(doc.get("name"), str):
        return Unreadable("emoji", "CM002", "custom emoji without an _id or a name",
                          jsonable(doc), origin)
    doc, bad = checked(doc, _EMOJI_SPEC)
    props: dict[str, Any] = {}
    keep_bad(props, bad)
    if doc.get("aliases"):
        props["aliases"] = jsonable(doc["aliases"])
    if doc.get("extension"):
        props["extension"] = doc["extension"]
    return Emoji(id=rid_of("emoji", scope, native), source=SOURCE, source_id=native, name=doc["name"],
                 file=file, props=props, origin=origin)


def emoji_file_name(doc: Mapping[str, Any]) -> str:
    """The GridFS file name of a custom emoji image (`<name>.<extension>`)."""
    extension = doc.get("extension") if isinstance(doc.get("extension"), str) else None
    return f"{doc.get('name')}.{extension or 'png'}"


def emoji_file(doc: Mapping[str, Any], scope: str, *, size: int | None = None, sha256: str | None = None,
               note: str | None = None) -> File | None:
    """The image of a custom emoji, keyed by the emoji's own id (the dump and the API both know it)."""
    native = native_id(doc.get("_id"))
    if native is None:
        return None
    name = emoji_file_name(doc)
    return File(id=rid_of("file", scope, f"emoji/{native}"), source=SOURCE, source_id=f"emoji/{native}", name=name,
                size=size, sha256=sha256, source_url=f"/emoji-custom/{quote(name)}",
                props={"bytes": note} if note else {})


