"""Canonical records → Rocket.Chat's MongoDB documents, shaped as its own code writes them
(packages/core-typings IUser, IRoom, ISubscription, IMessage, IUpload; research/targets.md §C.2).

Pure functions over a `Directory` of what the run has seen (users, rooms): no I/O here. Counters
derived from other documents (room msgs/lm/lastMessage/usersCount, thread tcount/tlm/replies) are
added by the writer (targets/_rc_ledger.py), which knows what the database holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from chatmigrate.markup.canonical import CHANNEL_LINK, MENTION
from chatmigrate.model import Channel, Emoji, File, Message, User
from chatmigrate.targets._rc_rules import MAX_MESSAGE, meteor_id, reaction_key, split_message, to_ms

# Canonical message kinds → Rocket.Chat's system message types (the inverse of what the Rocket.Chat
# sources read); other system kinds are written as plain messages, their text kept.
SYSTEM_TYPES = {
    "system_join": "uj", "system_leave": "ul", "system_add": "au", "system_remove": "ru",
    "system_rename": "r", "system_topic": "room_changed_topic", "system_purpose": "room_changed_description",
    "system_archive": "room-archived", "system_unarchive": "room-unarchived", "system_pin": "message_pinned",
    "system_unpin": "message_unpinned", "system_discussion_created": "discussion-created",
}
_ROOM_TYPES = {"public": "c", "private": "p", "direct": "d", "group": "d"}
_TYPE_GROUPS = ("image", "video", "audio")


@dataclass(slots=True)
class Person:
    id: str  # Rocket.Chat _id
    username: str
    name: str | None


@dataclass(slots=True)
class Room:
    id: str
    name: str | None  # None for direct conversations
    t: str


@dataclass
class Directory:
    """What documents refer to, by canonical id and by source name: O(users + rooms)."""

    people: dict[str, Person] = field(default_factory=dict)  # canonical user id → person
    by_username: dict[str, Person] = field(default_factory=dict)  # canonical (source) username → person
    rooms: dict[str, Room] = field(default_factory=dict)  # canonical channel id → room
    by_room_name: dict[str, Room] = field(default_factory=dict)  # canonical channel name → room

    def person(self, user_id: str | None) -> Person:
        if user_id is not None and user_id in self.people:
            return self.people[user_id]
        # A message without a known author (a system event of some sources): Rocket.Chat's own bot.
        return Person("rocket.cat", "rocket.cat", "Rocket.Cat")


def user_doc(user: User, rc_name: str) -> dict[str, Any]:
    """A `users` document: roles and type from the canonical role, no password (sign-in happens through
    the server's own accounts or SSO)."""
    if user.is_bot:
        roles = ["bot"]
    elif user.role == "admin":
        roles = ["user", "admin"]
    elif user.role == "guest":
        roles = ["guest"]
    else:
        roles = ["user"]
    doc: dict[str, Any] = {"_id": meteor_id("user", user.id), "username": rc_name,
                           "name": user.display_name or _full_name(user) or rc_name,
                           "type": "bot" if user.is_bot else "user", "roles": roles, "active": not user.is_deleted}
    if user.email:
        # The source server vouched for the address; a `verified: false` would lock users out where
        # email verification is required.
        doc["emails"] = [{"address": user.email, "verified": True}]
    created = user.props.get("created_at")
    if isinstance(created, datetime):
        doc["createdAt"] = to_ms(created)
    if isinstance(user.props.get("utc_offset"), int | float):
        doc["utcOffset"] = user.props["utc_offset"]
    return doc


def _full_name(user: User) -> str | None:
    return " ".join(p for p in (user.first_name, user.last_name) if p) or None


def room_doc(channel: Channel, room: Room, members: list[Person], creator: Person | None,
             parent: Room | None) -> dict[str, Any]:
    """A `rocketchat_room` document without its counters (msgs, lm, lastMessage, usersCount)."""
    doc: dict[str, Any] = {"_id": room.id, "t": room.t}
    if room.t == "d":
        people = sorted(members, key=lambda p: p.username)
        doc["uids"] = [p.id for p in people]
        doc["usernames"] = [p.username for p in people]
    else:
        doc["name"] = room.name
        doc["fname"] = channel.display_name or channel.name
    if creator is not None:
        doc["u"] = {"_id": creator.id, "username": creator.username}
    if channel.created_at is not None:
        doc["ts"] = to_ms(channel.created_at)
    if channel.topic:
        doc["topic"] = channel.topic
    if channel.purpose:
        doc["description"] = channel.purpose
    if channel.archived_at is not None:
        doc["archived"] = True
    if parent is not None:
        doc["prid"] = parent.id  # a discussion: a room of its own, linked to its parent room
    doc["ro"] = bool(channel.props.get("read_only"))
    doc["sysMes"] = True
    return doc


def subscription_doc(room: Room, room_fields: dict[str, Any], person: Person, members: list[Person],
                     owner: bool, seen: datetime | None) -> dict[str, Any]:
    """A `rocketchat_subscription` document: the room in the member's sidebar, its history marked read."""
    if room.t == "d":
        others = [p for p in members if p.id != person.id] or [person]
        name = ", ".join(sorted(p.username for p in others)) if len(others) > 1 else others[0].username
        fname = ", ".join(sorted((p.name or p.username) for p in others))
    else:
        name, fname = room.name or room.id, room_fields.get("fname") or room.name
    doc: dict[str, Any] = {"_id": meteor_id("subscription", f"{room.id}|{person.id}"), "rid": room.id,
                           "u": {"_id": person.id, "username": person.username, "name": person.name or person.username},
                           "name": name, "fname": fname, "t": room.t, "open": True, "alert": False, "unread": 0,
                           "userMentions": 0, "groupMentions": 0}
    if room_fields.get("ts") is not None:
        doc["ts"] = room_fields["ts"]
    if seen is not None:
        doc["ls"] = seen
        doc["lr"] = seen
    if owner:
        doc["roles"] = ["owner"]
    if room_fields.get("archived"):
        doc["archived"] = True
    return doc


def message_docs(message: Message, room: Room, directory: Directory,
                 uploads: list[tuple[File, str]]) -> list[dict[str, Any]]:
    """The `rocketchat_message` document(s) of one message: one, or several when its text is longer than
    Rocket.Chat allows (continuation replies in the same thread, 1 ms apart, files on the first).

    `uploads` pairs each file with its Rocket.Chat upload id."""
    author = directory.person(message.user_id)
    text, mentions, channels = _text(message, directory)
    person = {"_id": author.id, "username": author.username, "name": author.name or author.username}
    base: dict[str, Any] = {"rid": room.id, "ts": to_ms(message.created_at), "u": person, "msg": text}
    system = SYSTEM_TYPES.get(message.kind)
    source_code = message.props.get("type")
    if message.source == "rocketchat" and isinstance(source_code, str) and message.kind.startswith("system_"):
        system = source_code  # the source's own code (some have no canonical kind)
    if system is not None:
        base["t"] = system
        base["groupable"] = False
    if message.kind == "encrypted":
        # End-to-end encrypted: the ciphertext as it was; only the room's members' keys open it.
        base["t"] = "e2e"
        base["e2e"] = message.props.get("e2e") if isinstance(message.props.get("e2e"), str) else "done"
    if message.kind == "bot":
        base["bot"] = message.props.get("bot") if isinstance(message.props.get("bot"), dict) else {"i": "imported"}
    if message.thread_root_id:
        base["tmid"] = meteor_id("message", message.thread_root_id)
        if message.props.get("tshow"):
            base["tshow"] = True
    if system is None:
        # Always present, as Rocket.Chat's own sendMessage writes them: readers take an absent
        # `channels` list to mean "unresolved" and read every `#word` as a channel link.
        base["mentions"] = mentions
        base["channels"] = channels
    _edits(base, message, directory)
    parts = split_message(text) if len(text) > MAX_MESSAGE else [text]
    first = dict(base, _id=meteor_id("message", message.id), msg=parts[0])
    if message.is_pinned:
        first["pinned"] = True
        first["pinnedAt"] = to_ms(message.props["pinned_at"] if isinstance(message.props.get("pinned_at"), datetime)
                                  else message.created_at)
        pinner = directory.person(message.props.get("pinned_by") or message.user_id)
        first["pinnedBy"] = {"_id": pinner.id, "username": pinner.username}
    reactions = _reactions(message, directory)
    if reactions:
        first["reactions"] = reactions
    if uploads:
        _attach(first, uploads)
    docs = [first]
    root = base.get("tmid") or first["_id"]
    for n, part in enumerate(parts[1:], start=1):
        docs.append(dict(base, _id=meteor_id("message", f"{message.id}/part{n}"), msg=part, tmid=root,
                         ts=first["ts"] + timedelta(milliseconds=n)))
    return docs


def _text(message: Message, directory: Directory) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Canonical Markdown as Rocket.Chat markup: `~channel` → `#channel`, names as Rocket.Chat got
    them; the mentions and channel links resolved to Rocket.Chat ids."""
    text = message.text
    if message.kind == "encrypted" and isinstance(message.props.get("e2e_ciphertext"), str):
        return message.props["e2e_ciphertext"], [], []
    mentions: dict[str, dict[str, Any]] = {}
    channels: dict[str, dict[str, Any]] = {}

    def mention(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in ("all", "here"):
            mentions.setdefault(name, {"_id": name, "username": name, "type": "user"})
            return match.group(0)
        person = directory.by_username.get(name)
        if person is None:
            return match.group(0)
        mentions.setdefault(person.id, {"_id": person.id, "username": person.username, "type": "user"})
        return "@" + person.username

    def channel(match: re.Match[str]) -> str:
        room = directory.by_room_name.get(match.group(1))
        if room is None or room.name is None:
            return match.group(0)
        channels.setdefault(room.id, {"_id": room.id, "name": room.name})
        return "#" + room.name

    if "@" in text:
        text = MENTION.sub(mention, text)
    if "~" in text:
        text = CHANNEL_LINK.sub(channel, text)
    return text, list(mentions.values()), list(channels.values())


def _edits(doc: dict[str, Any], message: Message, directory: Directory) -> None:
    if message.edited_at is None:
        return
    doc["editedAt"] = to_ms(message.edited_at)
    editor = directory.person(message.props.get("edited_by") or message.user_id)
    doc["editedBy"] = {"_id": editor.id, "username": editor.username}


def _reactions(message: Message, directory: Directory) -> dict[str, dict[str, list[str]]]:
    """`{":emoji:": {"usernames": [...]}}`, usernames in the order the reactions came."""
    out: dict[str, dict[str, list[str]]] = {}
    for reaction in message.reactions:
        person = directory.people.get(reaction.user_id)
        if person is None:
            continue
        names = out.setdefault(reaction_key(reaction.emoji), {"usernames": []})["usernames"]
        if person.username not in names:
            names.append(person.username)
    return out


def type_group(mime: str | None) -> str:
    head = (mime or "application/octet-stream").split("/", 1)[0]
    return head if head in _TYPE_GROUPS else "application" if head == "application" else head or "file"


def _attach(doc: dict[str, Any], uploads: list[tuple[File, str]]) -> None:
    """`file`, `files` and `attachments`, as a message made by an upload carries them."""
    files, attachments = [], []
    for file, upload_id in uploads:
        mime = file.mime_type or "application/octet-stream"
        entry: dict[str, Any] = {"_id": upload_id, "name": file.name, "type": mime, "size": file.size or 0,
                                 "format": file.name.rsplit(".", 1)[-1].upper() if "." in file.name else ""}
        files.append(entry)
        link = upload_path(upload_id, file.name)
        attachment: dict[str, Any] = {"ts": doc["ts"], "title": file.name, "title_link": link,
                                      "title_link_download": True, "type": "file"}
        group = type_group(mime)
        if group in _TYPE_GROUPS:
            attachment[f"{group}_url"] = link
            attachment[f"{group}_type"] = mime
            attachment[f"{group}_size"] = file.size or 0
        attachments.append(attachment)
    doc["file"] = files[0]
    doc["files"] = files
    doc["attachments"] = attachments


def upload_path(upload_id: str, name: str) -> str:
    return f"/file-upload/{upload_id}/{quote(name)}"


def upload_doc(file: File, upload_id: str, room: Room, author: Person, when: datetime, stored: bool) -> dict[str, Any]:
    """A `rocketchat_uploads` record; `complete` only when its bytes are in the GridFS bucket."""
    extension = file.name.rsplit(".", 1)[-1].lower() if "." in file.name else ""
    doc: dict[str, Any] = {"_id": upload_id, "name": file.name, "size": file.size or 0,
                           "type": file.mime_type or "application/octet-stream", "rid": room.id, "userId": author.id,
                           "store": "GridFS:Uploads", "complete": stored, "uploading": False, "extension": extension,
                           "progress": 1 if stored else 0, "uploadedAt": to_ms(file.created_at or when),
                           "typeGroup": type_group(file.mime_type), "path": upload_path(upload_id, file.name),
                           "url": f"/ufs/GridFS:Uploads/{upload_id}/{file.name}"}
    if file.sha256:
        doc["chatmigrate_sha256"] = file.sha256
    return doc


def emoji_doc(emoji: Emoji, extension: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": meteor_id("emoji", emoji.id), "name": emoji.name, "extension": extension}
    aliases = emoji.props.get("aliases")
    doc["aliases"] = [a for a in aliases if isinstance(a, str)] if isinstance(aliases, list) else []
    return doc


def room_of(channel: Channel, name: str | None) -> Room:
    return Room(meteor_id("room", channel.id), name if _ROOM_TYPES[channel.kind] != "d" else None,
                _ROOM_TYPES[channel.kind])
