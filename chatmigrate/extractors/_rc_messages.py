"""Rocket.Chat message documents → Message records, shared by the mongodump and REST API forms (the
users, rooms and emoji conversions are in _rocketchat.py): text, system codes (mappings/
rocketchat-message-types.toml), reactions, files, edit history, and a room's timeline order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from chatmigrate.extractors._fields import (
    ListOf,
    Spec,
    checked,
    is_bool,
    is_list,
    is_number,
    is_object,
    is_text,
    is_time,
)
from chatmigrate.extractors._rocketchat import (
    EMPTY,
    KEY,
    REF,
    SOURCE,
    as_time,
    extra_fields,
    jsonable,
    keep_bad,
    native_id,
    rid_of,
    sub_document,
)
from chatmigrate.extractors._vocabulary import message_kind
from chatmigrate.markup.rocketchat import to_markdown
from chatmigrate.model import File, Message, Origin, Reaction, Skipped, Unreadable

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
_FILE_SPEC = Spec(_id=KEY, name=is_text, type=is_text, size=is_number, typeGroup=is_text)
_UPLOAD_SPEC = Spec(name=is_text, type=is_text, size=is_number, uploadedAt=is_time)
_MESSAGE_SPEC = Spec(msg=is_text, t=is_text, u=REF, editedBy=REF, pinnedBy=REF, editedAt=is_time,
                     pinnedAt=is_time, _updatedAt=is_time, _deletedAt=is_time, tmid=KEY, drid=KEY,
                     reactions=is_object, files=ListOf(_FILE_SPEC), file=_FILE_SPEC, channels=is_list,
                     urls=ListOf(Spec(url=is_text)), pinned=is_bool, tshow=is_bool)


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
    keep_bad(props, {**bad, **{f"upload.{k}": v for k, v in bad_upload.items()}})
    return File(
        id=rid_of("file", scope, native), source=SOURCE, source_id=native, name=str(name),
        mime_type=entry.get("type") or upload.get("type") or None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None, sha256=sha256,
        source_url=f"/file-upload/{quote(native)}/{quote(str(name))}",
        created_at=as_time(upload.get("uploadedAt")), props=props)


def revision(doc: Mapping[str, Any], scope: str) -> dict[str, Any]:
    """A `_hidden` edit-history copy as one entry of the current message's `props["edit_history"]`."""
    editor = native_id(sub_document(doc, "editedBy").get("_id"))
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
    author = native_id(sub_document(doc, "u").get("_id"))
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
        kind = message_kind("rocketchat-message-types", system)
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

    editor = native_id(sub_document(doc, "editedBy").get("_id"))
    if editor:
        props["edited_by"] = rid_of("user", scope, editor)
    if doc.get("tshow"):
        props["tshow"] = True  # a thread reply also shown in the channel timeline
    discussion = native_id(doc.get("drid"))
    if discussion:
        props["discussion_channel_id"] = rid_of("channel", scope, discussion)
    if doc.get("pinned"):
        pinner = native_id(sub_document(doc, "pinnedBy").get("_id"))
        if pinner:
            props["pinned_by"] = rid_of("user", scope, pinner)
        if as_time(doc.get("pinnedAt")):
            props["pinned_at"] = as_time(doc.get("pinnedAt"))
    if author is None and isinstance(sub_document(doc, "u").get("username"), str):
        props["author_username"] = sub_document(doc, "u")["username"]
    for key, prop in (("alias", "alias"), ("avatar", "avatar"), ("emoji", "emoji"), ("bot", "bot"),
                      ("attachments", "attachments"), ("tcount", "thread_reply_count"), ("dcount", "discussion_count"),
                      ("blocks", "blocks"), ("location", "location"), ("customFields", "custom_fields"),
                      ("role", "role")):
        if doc.get(key) not in EMPTY:
            props[prop] = jsonable(doc[key])
    urls = [u.get("url") for u in doc.get("urls") or [] if isinstance(u, Mapping) and u.get("url")]
    if urls:
        props["urls"] = urls
    if history:
        props["edit_history"] = sorted(history, key=revision_order)
    extra = extra_fields(doc, _MESSAGE_CONSUMED)
    if extra:
        props["extra"] = extra
    keep_bad(props, bad)
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
