"""Rocket.Chat documents → canonical records, shared by the mongodump and the REST API extractors.

Both forms see the same document shapes (the REST API serialises the Mongo documents as JSON, with
ISO dates that the API extractor turns back into datetimes first), so one set of conversions keeps
their ids and fields identical. Ids: `record_id("rocketchat", scope, kind, _id)`, where `_id` is the
document's own key as text: Meteor's 17-character random ids and 24-hex ObjectIds (some servers store
those as real ObjectIds, others as strings; both become the same hex text).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
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
    is_list,
    is_number,
    is_object,
    is_text,
    is_time,
)
from chatmigrate.ids import record_id
from chatmigrate.markup.rocketchat import to_markdown
from chatmigrate.model import (
    Channel,
    ChannelKind,
    Emoji,
    File,
    Message,
    Origin,
    Reaction,
    Skipped,
    Unreadable,
    User,
)

SOURCE = "rocketchat"
# Values that mean "not set" in Rocket.Chat documents (built once: this runs per message).
_EMPTY: tuple[Any, ...] = (None, "", [], {})
_UNSET: tuple[Any, ...] = (None, False, "")
DEFAULT_SCOPE = "rocketchat"

ROOM_KINDS: dict[str, ChannelKind] = {"c": "public", "p": "private"}
# Omnichannel rooms (livechat, VoIP) hold conversations with outside visitors, not team chat.
SKIPPED_ROOM_TYPES = {
    "l": "livechat/omnichannel room: visitor conversations are out of scope",
    "v": "VoIP/omnichannel room: call records are out of scope",
}

# Message fields turned into record fields or dropped on purpose: `md` is a parse of `msg`, the
# others are counters or rendering hints that the source recomputes.
_MESSAGE_CONSUMED = {
    "_id", "rid", "msg", "ts", "u", "t", "tmid", "editedAt", "editedBy", "pinned", "pinnedAt", "pinnedBy",
    "reactions", "file", "files", "attachments", "_hidden", "parent", "_deletedAt", "__collection__",
    "alias", "avatar", "emoji", "bot", "urls", "tshow", "tcount", "replies", "drid", "dcount", "blocks",
    "location", "e2e", "starred", "customFields", "role",
    "md", "_updatedAt", "groupable", "parseUrls", "sandstormSessionId", "unread", "mentions", "channels",
    "tlm", "dlm", "e2eMentions",
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


# Rocket.Chat's message `t` codes → the canonical kinds every source uses (the Slack and Mattermost
# extractors map their subtypes/post types to the same names); unlisted codes stay `system_<t>`.
SYSTEM_KINDS = {
    "uj": "system_join", "ujt": "system_join", "ut": "system_join", "ul": "system_leave", "ult": "system_leave",
    "au": "system_add", "added-user-to-team": "system_add", "ru": "system_remove",
    "removed-user-from-team": "system_remove", "r": "system_rename", "room_changed_topic": "system_topic",
    "room_changed_description": "system_purpose", "room_changed_privacy": "system_convert_to_private",
    "room-archived": "system_archive", "room-unarchived": "system_unarchive", "message_pinned": "system_pin",
    "message_unpinned": "system_unpin", "discussion-created": "system_discussion_created",
}


def _is_key(value: Any) -> bool:
    """What native_id reads: an id string, an ObjectId, an integer."""
    return is_id(value) or isinstance(value, ObjectId) or (isinstance(value, int) and not isinstance(value, bool))


# The type of every field read (see _fields.py): a field of another type is left out and reported.
_KEY = _is_key
_REF = Spec(_id=_KEY, username=is_text)
_USER_SPEC = Spec(username=is_text, name=is_text, type=is_text, roles=ListOf(is_text), active=is_bool,
                  emails=ListOf(Spec(address=is_text)), services=is_object)
_ROOM_SPEC = Spec(t=is_text, name=is_text, fname=is_text, topic=is_text, description=is_text, uids=ListOf(_KEY),
                  usernames=ListOf(is_text), prid=_KEY, u=_REF, archived=is_bool, ts=is_time, _updatedAt=is_time)
_EMOJI_SPEC = Spec(name=is_text, extension=is_text)
_FILE_SPEC = Spec(_id=_KEY, name=is_text, type=is_text, size=is_number, typeGroup=is_text)
_UPLOAD_SPEC = Spec(name=is_text, type=is_text, size=is_number, uploadedAt=is_time)
_MESSAGE_SPEC = Spec(msg=is_text, t=is_text, u=_REF, editedBy=_REF, pinnedBy=_REF, editedAt=is_time,
                     pinnedAt=is_time, _updatedAt=is_time, _deletedAt=is_time, tmid=_KEY, drid=_KEY,
                     reactions=is_object, files=ListOf(_FILE_SPEC), file=_FILE_SPEC, channels=is_list,
                     urls=ListOf(Spec(url=is_text)), pinned=is_bool, tshow=is_bool)


def _keep_bad(props: dict[str, Any], bad: Mapping[str, Any]) -> None:
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


def _sub(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def _extra(doc: Mapping[str, Any], consumed: set[str]) -> dict[str, Any]:
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
        if doc.get(key) not in _EMPTY:
            props[name] = jsonable(doc[key])
    services = doc.get("services")
    if isinstance(services, Mapping) and services:
        props["login_services"] = sorted(str(k) for k in services)  # names only, never the contents
    if deleted_at is not None:
        props["deleted_at"] = deleted_at
    if len(emails) > 1:
        props["emails"] = [e.get("address") for e in emails if isinstance(e, Mapping)]
    extra = _extra(doc, _USER_CONSUMED)
    if extra:
        props["extra"] = extra
    _keep_bad(props, {k: v for k, v in bad.items() if not k.startswith("services")})  # never credentials
    is_bot = kind in ("bot", "app") or "bot" in roles
    role = "admin" if "admin" in roles else "guest" if "guest" in roles else "user"
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
    _keep_bad(props, bad)
    creator = native_id(_sub(doc, "u").get("_id"))
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
    _keep_bad(props, bad)
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


# -------------------------------------------------------------------------------------------- messages

@dataclass(slots=True)
class MessageContext:
    """What converting a message needs from outside the message: user and file lookups."""

    scope: str
    user_for_username: Callable[[str], str | None]
    file_for: Callable[[Mapping[str, Any]], File | None]
    used_files: set[str] = field(default_factory=set)


def file_from_entry(entry: Mapping[str, Any], scope: str, upload: Mapping[str, Any] | None = None,
                    *, sha256: str | None = None, bytes_note: str | None = None) -> File | None:
    """A message's `files[]`/`file` entry (plus the upload's metadata when known) → File."""
    native = native_id(entry.get("_id"))
    if native is None:
        return None
    entry, bad = checked(entry, _FILE_SPEC)
    upload, bad_upload = checked(upload or {}, _UPLOAD_SPEC)
    name = entry.get("name") or upload.get("name") or native
    size = upload.get("size") if isinstance(upload.get("size"), int) else entry.get("size")
    props: dict[str, Any] = {}
    for key in ("store", "typeGroup", "description", "complete"):
        if upload.get(key) not in (None, ""):
            props[key if key != "typeGroup" else "type_group"] = jsonable(upload[key])
    if bytes_note:
        props["bytes"] = bytes_note
    _keep_bad(props, {**bad, **{f"upload.{k}": v for k, v in bad_upload.items()}})
    return File(
        id=rid_of("file", scope, native), source=SOURCE, source_id=native, name=str(name),
        mime_type=entry.get("type") or upload.get("type") or None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None, sha256=sha256,
        source_url=f"/file-upload/{quote(native)}/{quote(str(name))}",
        created_at=as_time(upload.get("uploadedAt")), props=props)


def revision(doc: Mapping[str, Any], scope: str) -> dict[str, Any]:
    """A `_hidden` edit-history copy as one entry of the current message's `props["edit_history"]`."""
    editor = native_id(_sub(doc, "editedBy").get("_id"))
    return {"source_id": native_id(doc.get("_id")), "text": doc.get("msg") or "",
            "edited_at": as_time(doc.get("editedAt")), "saved_at": as_time(doc.get("_updatedAt")),
            "edited_by": rid_of("user", scope, editor) if editor else None}


def revision_order(entry: Mapping[str, Any]) -> tuple[datetime, str]:
    when = entry.get("edited_at") or entry.get("saved_at") or datetime.min.replace(tzinfo=UTC)
    return when, entry.get("source_id") or ""


def with_history(message: Message, history: list[dict[str, Any]]) -> Message:
    """`message` with its `_hidden` edit-history copies in `props["edit_history"]`, oldest first."""
    return replace(message, props={**message.props, "edit_history": sorted(history, key=revision_order)})


def convert_message(doc: Mapping[str, Any], ctx: MessageContext, origin: Origin | None, *,
                    history: list[dict[str, Any]] | None = None) -> Message | Unreadable:
    """A `rocketchat_message` (or trashed message) document → Message.

    A document from `rocketchat__trash` carries `_deletedAt`, which becomes `deleted_at`.
    """
    scope = ctx.scope
    native = native_id(doc.get("_id"))
    if native is None:
        return Unreadable("messages", "CM002", "message document without an _id", jsonable(doc), origin)
    original = doc
    doc, bad = checked(doc, _MESSAGE_SPEC)
    room = native_id(doc.get("rid"))
    created = as_time(doc.get("ts"))
    if room is None or created is None:
        if room is None:
            return Unreadable("messages", "CM005", f"message {native} has no room id (rid)", jsonable(original),
                              origin)
        return Unreadable("messages", "CM004", f"message {native} has no readable time (ts={doc.get('ts')!r})",
                          jsonable(original), origin)
    author = native_id(_sub(doc, "u").get("_id"))
    system = doc.get("t") if isinstance(doc.get("t"), str) and doc.get("t") else None
    text = doc.get("msg") if isinstance(doc.get("msg"), str) else ""
    props: dict[str, Any] = {}
    deleted_at = as_time(doc.get("_deletedAt"))
    if system is None:
        kind = "bot" if doc.get("bot") else "normal"
        names = doc.get("channels")
        linked = [c.get("name") for c in names if isinstance(c, Mapping)] if isinstance(names, list) else None
        markdown, changed = to_markdown(text, linked)
        if changed:
            props["source_text"] = text
        text = markdown
    elif system == "e2e":
        # End-to-end encrypted: `msg` is ciphertext only the room's members can open. Kept, not shown.
        kind = "encrypted"
        props["e2e_ciphertext"] = text
        props["e2e"] = doc.get("e2e")
        text = ""
    else:
        kind = SYSTEM_KINDS.get(system, f"system_{system}")
        props["type"] = system
        if system == "rm" and deleted_at is None:
            # "Show deleted status": the message stays, emptied, with t=rm; its last change is the deletion.
            deleted_at = as_time(doc.get("_updatedAt")) or as_time(doc.get("editedAt"))
    if deleted_at is not None and doc.get("__collection__"):
        props["deleted_from"] = "rocketchat__trash"

    reactions, unresolved = _reactions(doc.get("reactions"), ctx)
    if unresolved:
        props["unresolved_reactions"] = unresolved

    files, thumbs = _files(doc, ctx)
    if thumbs:
        props["thumbnail_file_ids"] = thumbs

    editor = native_id(_sub(doc, "editedBy").get("_id"))
    if editor:
        props["edited_by"] = rid_of("user", scope, editor)
    if doc.get("tshow"):
        props["tshow"] = True  # a thread reply also shown in the channel timeline
    discussion = native_id(doc.get("drid"))
    if discussion:
        props["discussion_channel_id"] = rid_of("channel", scope, discussion)
    if doc.get("pinned"):
        pinner = native_id(_sub(doc, "pinnedBy").get("_id"))
        if pinner:
            props["pinned_by"] = rid_of("user", scope, pinner)
        if as_time(doc.get("pinnedAt")):
            props["pinned_at"] = as_time(doc.get("pinnedAt"))
    if author is None and isinstance(_sub(doc, "u").get("username"), str):
        props["author_username"] = _sub(doc, "u")["username"]
    for key, prop in (("alias", "alias"), ("avatar", "avatar"), ("emoji", "emoji"), ("bot", "bot"),
                      ("attachments", "attachments"), ("tcount", "thread_reply_count"), ("dcount", "discussion_count"),
                      ("blocks", "blocks"), ("location", "location"), ("customFields", "custom_fields"),
                      ("role", "role")):
        if doc.get(key) not in _EMPTY:
            props[prop] = jsonable(doc[key])
    urls = [u.get("url") for u in doc.get("urls") or [] if isinstance(u, Mapping) and u.get("url")]
    if urls:
        props["urls"] = urls
    if history:
        props["edit_history"] = sorted(history, key=revision_order)
    extra = _extra(doc, _MESSAGE_CONSUMED)
    if extra:
        props["extra"] = extra
    _keep_bad(props, bad)
    root = native_id(doc.get("tmid"))
    return Message(
        id=rid_of("message", scope, native), source=SOURCE, source_id=native,
        channel_id=rid_of("channel", scope, room), user_id=rid_of("user", scope, author) if author else None,
        created_at=created, kind=kind, text=text,
        thread_root_id=rid_of("message", scope, root) if root and root != native else None,
        edited_at=as_time(doc.get("editedAt")), deleted_at=deleted_at, is_pinned=doc.get("pinned") is True,
        reactions=tuple(reactions), files=tuple(files), props=props, origin=origin)


def _reactions(value: Any, ctx: MessageContext) -> tuple[list[Reaction], list[dict[str, str]]]:
    """`{":name:": {usernames: [...]}}` → reactions; usernames no one knows are returned apart."""
    reactions: dict[tuple[str, str], Reaction] = {}
    unresolved: list[dict[str, str]] = []
    if not isinstance(value, Mapping):
        return [], []
    for key, detail in value.items():
        emoji = str(key).strip(":")
        names = detail.get("usernames") if isinstance(detail, Mapping) else None
        for username in names or []:
            if not isinstance(username, str):
                continue
            user = ctx.user_for_username(username)
            if user is None:
                unresolved.append({"emoji": emoji, "username": username})
            else:
                reactions.setdefault((emoji, user), Reaction(emoji=emoji, user_id=user))
    return list(reactions.values()), unresolved


def _files(doc: Mapping[str, Any], ctx: MessageContext) -> tuple[list[File], list[str]]:
    """The message's uploads (`files[]`, or the older single `file`); thumbnails are listed apart."""
    entries = doc.get("files") if isinstance(doc.get("files"), list) and doc.get("files") else None
    if entries is None and isinstance(doc.get("file"), Mapping):
        entries = [doc["file"]]
    files: dict[str, File] = {}
    thumbs: list[str] = []
    for entry in entries or []:
        if not isinstance(entry, Mapping):
            continue
        if entry.get("typeGroup") == "thumb":
            # A generated preview of the real upload, which is its own entry.
            native = native_id(entry.get("_id"))
            if native:
                thumbs.append(rid_of("file", ctx.scope, native))
                ctx.used_files.add(native)
            continue
        file = ctx.file_for(entry)
        if file is not None:
            ctx.used_files.add(file.source_id)
            files.setdefault(file.id, file)
    return list(files.values()), thumbs


def timeline(messages: Iterable[Message]) -> list[Message]:
    """A room's messages ascending by (created_at, id), each thread root before its replies.

    A reply is held back until its root (when the root is in this room) has been placed: clocks and
    imports can give a reply an earlier time than its root.
    """
    ordered = sorted(messages, key=lambda m: (m.created_at, m.id))
    present = {m.id for m in ordered}
    placed: set[str] = set()
    waiting: dict[str, list[Message]] = {}
    result: list[Message] = []

    def place(message: Message) -> None:
        result.append(message)
        placed.add(message.id)
        for reply in waiting.pop(message.id, []):
            place(reply)

    for message in ordered:
        root = message.thread_root_id
        if root and root in present and root not in placed:
            waiting.setdefault(root, []).append(message)
        else:
            place(message)
    for replies in waiting.values():  # a cycle of roots cannot be placed in order; keep every message
        result.extend(replies)
    return result


def unresolved_reaction_items(message: Message) -> list[Skipped]:
    """One Skipped "reactions" item per reaction whose username no document of the source names.

    The reaction stays on its message (`props["unresolved_reactions"]`); this makes it counted in the
    run's accounting instead of vanishing from the reaction totals.
    """
    return [Skipped("reactions", f"reaction :{entry['emoji']}: by username {entry['username']!r}, whom the source "
                    f"does not know; kept in props.unresolved_reactions of message {message.source_id}",
                    {"message_id": message.id, **entry}, message.origin)
            for entry in message.props.get("unresolved_reactions", ())]
