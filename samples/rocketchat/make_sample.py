"""Write samples/rocketchat/dump/: a small Rocket.Chat mongodump with the cases README.md lists.

Run `python samples/rocketchat/make_sample.py` to regenerate it; the output is byte-for-byte
deterministic. The documents follow the shapes of real Rocket.Chat 6/7 dumps (see
../shared/research/formats.md §3). Tests import `collections()` and `write_dump()` to build variants
(bad input) from the same data.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bson
from bson import ObjectId

HERE = Path(__file__).resolve().parent
BASE = datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """A time `minutes` after BASE, at millisecond precision like BSON dates."""
    return BASE + timedelta(milliseconds=round(minutes * 60_000))


def user_ref(user: dict[str, Any]) -> dict[str, Any]:
    return {"_id": user["_id"], "username": user["username"], "name": user.get("name", user["username"])}


# GridFS file contents: chunk size 8 bytes so one file spans several chunks.
CHUNK = 8
REPORT_BYTES = b"quarterly report: 42 widgets sold\n"
EMOJI_BYTES = b"\x89PNG\r\n\x1a\nparrot-frames"


def collections() -> dict[str, list[dict[str, Any]]]:
    """Every collection of the sample dump, as lists of documents in dump order."""
    admin = {"_id": "aDm1nUser0000001a", "username": "admin", "name": "Ada Admin", "type": "user",
             "roles": ["user", "admin"], "active": True, "createdAt": at(0),
             "emails": [{"address": "ada@example.org", "verified": True}], "utcOffset": 1,
             "services": {"password": {"bcrypt": "$2b$10$notarealhashbutlookslikeone000000000000000000000"},
                          "resume": {"loginTokens": [{"when": at(1), "hashedToken": "c2VjcmV0LXRva2Vu"}]}},
             "status": "offline", "_updatedAt": at(500)}
    bob = {"_id": "B0bUser0000000002", "username": "bob", "name": "Bob Builder", "type": "user",
           "roles": ["user"], "active": True, "createdAt": at(2),
           "emails": [{"address": "bob@example.org", "verified": False}],
           "services": {"password": {"bcrypt": "$2b$10$anotherfakehash00000000000000000000000000000000"}}}
    carol = {"_id": "CaroLUser00000003", "username": "carol", "name": "Carol", "type": "user",
             "roles": ["user"], "active": True, "createdAt": at(3)}  # no email
    dave = {"_id": "DaveUser000000004", "username": "dave", "name": "Dave (left)", "type": "user",
            "roles": ["user"], "active": False, "createdAt": at(4),
            "emails": [{"address": "dave@example.org", "verified": True}]}  # deactivated
    cat = {"_id": "rocket.cat", "username": "rocket.cat", "name": "Rocket.Cat", "type": "bot",
           "roles": ["bot"], "active": True, "createdAt": at(0)}
    helper = {"_id": "HelperBot00000005", "username": "helper.bot", "name": "Helper", "type": "user",
              "roles": ["bot"], "active": True, "createdAt": at(5),
              "emails": [{"address": "helper@example.org", "verified": True}]}
    # A user whose _id is a real BSON ObjectId (servers that create users through some integrations).
    eve = {"_id": ObjectId("65e1a0b0c0ffee0000000e0e"), "username": "eve", "name": "Eve", "type": "user",
           "roles": ["guest"], "active": True, "createdAt": at(6),
           "emails": [{"address": "eve@example.org", "verified": True}]}
    # "ghost" was deleted from the server: not in `users`, but authored a message and reacted.
    ghost = {"_id": "Gh0stUser00000009", "username": "ghost", "name": "Ghost"}
    users = [admin, bob, carol, dave, cat, helper, eve]

    general = {"_id": "GENERAL", "t": "c", "name": "general", "default": True, "ts": at(0), "usersCount": 5,
               "u": user_ref(cat), "topic": "Anything goes", "description": "The default room",
               "_updatedAt": at(400)}
    dev = {"_id": "DevRoom0000000001", "t": "p", "name": "dev", "fname": "Dev Team", "ts": at(10),
           "u": user_ref(admin), "announcement": "Deploy on Fridays", "ro": False, "_updatedAt": at(300)}
    dm = {"_id": "B0bUser0000000002aDm1nUser0000001a", "t": "d", "ts": at(20),
          "uids": ["aDm1nUser0000001a", "B0bUser0000000002"], "usernames": ["admin", "bob"], "usersCount": 2}
    group_dm = {"_id": "GroupDm0000000001", "t": "d", "ts": at(30),
                "uids": ["aDm1nUser0000001a", "B0bUser0000000002", "CaroLUser00000003"],
                "usernames": ["admin", "bob", "carol"], "usersCount": 3}
    discussion = {"_id": "Discuss0000000001", "t": "c", "name": "release-plan", "fname": "Release plan",
                  "prid": "GENERAL", "ts": at(40), "u": user_ref(bob), "topic": "v2 release"}
    livechat = {"_id": "LiveChat000000001", "t": "l", "name": "Visitor 12", "ts": at(50),
                "v": {"_id": "visitor12", "username": "guest-12", "token": "visitor-token"}, "open": False}
    secret = {"_id": "E2eRoom0000000001", "t": "p", "name": "secret", "encrypted": True, "ts": at(60),
              "u": user_ref(admin), "e2eKeyId": "key-1"}
    old = {"_id": "OldRoom0000000001", "t": "c", "name": "old-news", "archived": True, "ts": at(70),
           "_updatedAt": at(900), "u": user_ref(admin)}
    # An ObjectId-style room id stored as a 24-hex string.
    ops = {"_id": "65e1a0b0c0ffee00000000aa", "t": "c", "name": "ops", "ts": at(80), "u": user_ref(admin)}
    rooms = [general, dev, dm, group_dm, discussion, livechat, secret, old, ops]

    def sub(sub_id: str, room: dict[str, Any], user: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"_id": sub_id, "rid": room["_id"], "t": room["t"], "name": room.get("name", user["username"]),
                "u": {"_id": user["_id"], "username": user["username"]}, "ts": room["ts"], "open": True, **extra}

    subscriptions = [
        sub("Sub00000000000001", general, admin, roles=["owner"]),
        sub("Sub00000000000002", general, bob),
        sub("Sub00000000000003", general, carol),
        sub("Sub00000000000004", general, cat),
        sub("Sub00000000000005", general, eve),
        sub("Sub00000000000006", dev, admin, roles=["owner"]),
        sub("Sub00000000000007", dev, bob),
        sub("Sub00000000000008", dm, admin),
        sub("Sub00000000000009", dm, bob),
        sub("Sub00000000000010", group_dm, admin),
        sub("Sub00000000000011", group_dm, bob),
        sub("Sub00000000000012", group_dm, carol),
        sub("Sub00000000000013", discussion, bob),
        sub("Sub00000000000014", discussion, admin),
        sub("Sub00000000000015", secret, admin),
        sub("Sub00000000000016", secret, carol),
        sub("Sub00000000000017", old, admin),
        sub("Sub00000000000018", ops, admin),
        sub("Sub00000000000019", ops, helper),
    ]

    def msg(msg_id: Any, room: dict[str, Any], user: dict[str, Any], minutes: float, text: str,
            **extra: Any) -> dict[str, Any]:
        return {"_id": msg_id, "rid": room["_id"], "msg": text, "ts": at(minutes), "u": user_ref(user),
                "_updatedAt": at(minutes), **extra}

    report_upload = "UpL0adGridFs00001"
    disk_upload = "UpL0adOnDisk00002"
    thumb_upload = "UpL0adThumb000003"
    files_entry = {"_id": report_upload, "name": "report.txt", "type": "text/plain", "size": len(REPORT_BYTES)}

    messages = [
        # General: joins (system, 24-hex string ids like real servers write), chat, a thread.
        msg("65e1a0b0c0ffee0000000101", general, bob, 100, "bob", t="uj", groupable=False),
        msg("65e1a0b0c0ffee0000000102", general, carol, 101, "carol", t="uj", groupable=False),
        # A thread reply written BEFORE its root in dump order (dumps are unordered).
        msg("ThreadReply000001", general, bob, 112, "Agreed, *ship it*", tmid="ThreadRoot0000001"),
        msg("ThreadRoot0000001", general, admin, 110, "Shall we release on *Friday*? See #dev and ~not strike~",
            channels=[{"_id": "DevRoom0000000001", "name": "dev"}], tcount=3, tlm=at(114),
            replies=["B0bUser0000000002", "CaroLUser00000003"],
            reactions={":thumbsup:": {"usernames": ["bob", "carol", "ghost"]},
                       ":tada:": {"usernames": ["vanished"]}},
            pinned=True, pinnedAt=at(120), pinnedBy=user_ref(admin)),
        # A reply also shown in the channel (tshow), and one by a user who no longer exists.
        msg("ThreadReply000002", general, carol, 113, "Also posting this to the channel", tmid="ThreadRoot0000001",
            tshow=True),
        msg("ThreadReply000003", general, ghost, 114, "I will not be here by then", tmid="ThreadRoot0000001"),
        # Edited twice with "keep history": two hidden copies point at the current message.
        msg("EditedMsg00000001", general, bob, 130, "Meeting at *11:00* (final)", editedAt=at(140),
            editedBy=user_ref(bob)),
        msg("HiddenRev00000001", general, bob, 130, "Meeting at 9:00", _hidden=True, parent="EditedMsg00000001",
            editedAt=at(135), editedBy=user_ref(bob), _updatedAt=at(135)),
        msg("HiddenRev00000002", general, bob, 130, "Meeting at 10:00", _hidden=True, parent="EditedMsg00000001",
            editedAt=at(138), editedBy=user_ref(bob), _updatedAt=at(138)),
        # An upload whose bytes are in GridFS, with a generated thumbnail entry; one whose bytes are on disk.
        msg("FileMsg0000000001", general, admin, 150, "", file=files_entry,
            files=[files_entry, {"_id": thumb_upload, "name": "thumb-report.png", "type": "image/png",
                                 "size": 10, "typeGroup": "thumb"}],
            attachments=[{"type": "file", "title": "report.txt",
                          "title_link": f"/file-upload/{report_upload}/report.txt", "title_link_download": True}]),
        msg("FileMsg0000000002", general, bob, 151, "photo from the offsite",
            files=[{"_id": disk_upload, "name": "offsite.jpg", "type": "image/jpeg", "size": 2048}],
            attachments=[{"type": "file", "title": "offsite.jpg",
                          "image_url": f"/file-upload/{disk_upload}/offsite.jpg",
                          "image_type": "image/jpeg", "image_size": 2048}]),
        # System messages.
        msg("65e1a0b0c0ffee0000000103", general, admin, 160, "Release week", t="room_changed_topic"),
        msg("65e1a0b0c0ffee0000000104", general, admin, 161, "eve", t="au", groupable=False),
        msg("65e1a0b0c0ffee0000000105", general, admin, 162, "dave", t="ru", groupable=False),
        msg("65e1a0b0c0ffee0000000106", general, dave, 163, "dave", t="ul", groupable=False),
        # A message whose _id is a real BSON ObjectId, by the ObjectId user.
        msg(ObjectId("65e1a0b0c0ffee0000000107"), general, eve, 170, "hello from @eve to @all and @here"),
        # A bot post through an integration, and a discussion started from this room.
        msg("BotPost0000000001", general, cat, 180, "Build *green* <https://ci.example.org/b/17|build 17>",
            bot={"i": "integration-1"}, alias="CI", groupable=False),
        msg("DiscStart00000001", general, bob, 190, "Release plan", t="discussion-created", drid="Discuss0000000001"),
        # Dev (private)
        msg("DevMsg00000000001", dev, admin, 200, "Deploy checklist: `make deploy_all` then ~~pray~~ test"),
        msg("DevMsg00000000002", dev, bob, 201, "On it", reactions={":+1:": {"usernames": ["admin"]}}),
        # DM and group DM
        msg("DmMsg000000000001", dm, admin, 210, "Hi Bob, got a minute?"),
        msg("DmMsg000000000002", dm, bob, 211, "Sure"),
        msg("GroupMsg000000001", group_dm, carol, 220, "Lunch?"),
        msg("GroupMsg000000002", group_dm, admin, 221, "Yes", reactions={":pizza:": {"usernames": ["bob", "carol"]}}),
        # Discussion room
        msg("DiscMsg0000000001", discussion, bob, 230, "Milestones: beta, rc, final"),
        msg("DiscMsg0000000002", discussion, admin, 231, "Add docs freeze", tmid="DiscMsg0000000001"),
        # Livechat (skipped with its room)
        msg("LiveMsg0000000001", livechat, cat, 240, "How can we help?"),
        # End-to-end encrypted room: the body is ciphertext.
        msg("E2eMsg00000000001", secret, carol, 250, "kEy-1aGVsbG8gc2VjcmV0IHdvcmxk", t="e2e", e2e="done"),
        # Archived room, and the ObjectId-style room
        msg("OldMsg00000000001", old, admin, 260, "This room is archived"),
        msg("OpsMsg00000000001", ops, helper, 270, "nightly backup ok", pinned=False),
        # The message pinned message in general, by the system
        msg("65e1a0b0c0ffee0000000108", general, admin, 121, "", t="message_pinned",
            attachments=[{"text": "Shall we release on *Friday*?", "author_name": "admin",
                          "message_link": "https://chat.example.org/channel/general?msg=ThreadRoot0000001"}]),
    ]

    trash = [
        # Deleted in general: its only copy is in the trash.
        {**msg("Deleted0000000001", general, bob, 105, "oops, wrong room"), "__collection__": "message",
         "_deletedAt": at(106)},
        # A room that was deleted, with its (deleted) message.
        {"_id": "GoneRoom000000001", "t": "p", "name": "temp", "ts": at(90), "u": user_ref(admin),
         "__collection__": "room", "_deletedAt": at(95)},
        {**msg("GoneMsg0000000001", {"_id": "GoneRoom000000001"}, admin, 91, "temporary"),
         "__collection__": "message", "_deletedAt": at(95)},
        # A membership that ended: not migrated, but counted as skipped.
        {**sub("Sub00000000000099", dev, dave), "__collection__": "subscription", "_deletedAt": at(96)},
    ]

    uploads = [
        {"_id": report_upload, "name": "report.txt", "size": len(REPORT_BYTES), "type": "text/plain",
         "rid": "GENERAL", "userId": admin["_id"], "store": "GridFS:Uploads", "complete": True, "uploading": False,
         "extension": "txt", "progress": 1, "uploadedAt": at(149), "typeGroup": "text",
         "path": f"/file-upload/{report_upload}/report.txt", "url": f"/ufs/GridFS:Uploads/{report_upload}/report.txt",
         "token": "a1B2c3D4e5"},
        {"_id": disk_upload, "name": "offsite.jpg", "size": 2048, "type": "image/jpeg", "rid": "GENERAL",
         "userId": bob["_id"], "store": "FileSystem:Uploads", "complete": True, "uploadedAt": at(150.5),
         "typeGroup": "image", "path": f"/file-upload/{disk_upload}/offsite.jpg"},
        {"_id": thumb_upload, "name": "thumb-report.png", "size": 10, "type": "image/png", "rid": "GENERAL",
         "userId": admin["_id"], "store": "GridFS:Uploads", "complete": True, "typeGroup": "thumb",
         "uploadedAt": at(149)},
        # Uploaded, but the message was never sent: no message carries it.
        {"_id": "UpL0adOrphan00004", "name": "draft.pdf", "size": 99, "type": "application/pdf",
         "rid": "DevRoom0000000001", "userId": bob["_id"], "store": "FileSystem:Uploads", "complete": True,
         "uploadedAt": at(205)},
    ]

    gridfs_files, gridfs_chunks = gridfs(report_upload, "report.txt", REPORT_BYTES,
                                         ObjectId("65e1a0b0c0ffee00000c0000"))
    emoji_files, emoji_chunks = gridfs("EmojiFile00000001", "party_parrot.gif", EMOJI_BYTES,
                                       ObjectId("65e1a0b0c0ffee00000e0000"))
    # Chunks are written out of order, as a dump may hold them.
    gridfs_chunks.reverse()

    emoji = [{"_id": "Emoji000000000001", "name": "party_parrot", "aliases": ["parrot"], "extension": "gif",
              "_updatedAt": at(5)}]

    return {
        "users": users,
        "rocketchat_room": rooms,
        "rocketchat_subscription": subscriptions,
        "rocketchat_message": messages,
        "rocketchat__trash": trash,
        "rocketchat_uploads": uploads,
        "rocketchat_uploads.files": gridfs_files,
        "rocketchat_uploads.chunks": gridfs_chunks,
        "rocketchat_custom_emoji": emoji,
        "custom_emoji.files": emoji_files,
        "custom_emoji.chunks": emoji_chunks,
        "rocketchat_settings": [{"_id": "Site_Name", "value": "Example Chat", "type": "string"}],
    }


def gridfs(file_id: str, name: str, data: bytes, first_chunk: ObjectId) -> tuple[list[dict[str, Any]],
                                                                                list[dict[str, Any]]]:
    """GridFS `<bucket>.files` and `<bucket>.chunks` documents holding `data`."""
    files = [{"_id": file_id, "length": len(data), "chunkSize": CHUNK, "uploadDate": at(149), "filename": name,
              "md5": hashlib.md5(data).hexdigest(), "contentType": "application/octet-stream"}]
    chunks = []
    for n in range(0, (len(data) + CHUNK - 1) // CHUNK):
        oid = ObjectId(str(first_chunk)[:-4] + f"{n:04x}")
        chunks.append({"_id": oid, "files_id": file_id, "n": n, "data": data[n * CHUNK:(n + 1) * CHUNK]})
    return files, chunks


def write_dump(folder: Path, docs: dict[str, list[dict[str, Any]]]) -> Path:
    """Write `docs` as a mongodump of database `rocketchat` under `folder`; return the database folder."""
    database = folder / "rocketchat"
    database.mkdir(parents=True, exist_ok=True)
    for name, documents in docs.items():
        with (database / f"{name}.bson").open("wb") as handle:
            for document in documents:
                handle.write(bson.encode(document))
        metadata = {"indexes": [{"v": 2, "key": {"_id": 1}, "name": "_id_"}], "uuid": "",
                    "collectionName": name, "type": "collection"}
        (database / f"{name}.metadata.json").write_text(json.dumps(metadata) + "\n")
    return database


if __name__ == "__main__":
    target = HERE / "dump"
    write_dump(target, collections())
    print(f"wrote {target}")
