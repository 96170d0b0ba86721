"""Writes the Mattermost sample export: export.jsonl + data/ (plain form) and export.zip (zipped form).

Run `python samples/mattermost/make_samples.py` from anywhere; the output is byte-for-byte
reproducible (fixed zip timestamps), so a diff shows any change. README.md lists the cases.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
T0 = 1709287200000  # 2024-03-01T10:00:00Z in milliseconds


def at(minutes: float) -> int:
    return T0 + int(minutes * 60_000)


def png(red: int, green: int, blue: int) -> bytes:
    """A valid 1x1 PNG of one colour (no image library needed)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes([0, red, green, blue])))
            + chunk(b"IEND", b""))


ATTACHMENT_DIR = "20240301/teams/noteam/channels/4xq1c9ru8pdfjpg3o7k5ffyy1e/users/kx9d1c3f7bgz8ennpxm6w4ntqa"
FILES = {
    f"{ATTACHMENT_DIR}/9j5b3ag8a7r7xq7g3n6yt6e1wh/diagram.png": png(200, 30, 30),
    f"{ATTACHMENT_DIR}/f1bq4k9y4tgf9qk7u6ntm3gnyc/notes.txt": "Meeting notes — Grüße, 日本語 ✅\n".encode(),
    "emoji/parrot/image.png": png(30, 200, 30),
}
MISSING = f"{ATTACHMENT_DIR}/0a2fmc81ofr3pxq4wiyrn71fbr/lost-in-export.pdf"


def membership(team: str, *channels: str) -> dict:
    return {"name": team, "roles": "team_user",
            "channels": [{"name": c, "roles": "channel_user", "favorite": False} for c in channels]}


def user(username: str, first: str, last: str, roles: str, teams: list[dict], **extra: object) -> dict:
    return {"type": "user", "user": {"username": username, "email": f"{username}@example.test", "auth_service": "",
                                     "nickname": "", "first_name": first, "last_name": last, "position": "",
                                     "roles": roles, "locale": "en", "delete_at": 0, "teams": teams, **extra}}


def post(team: str, channel: str, who: str, message: str, create_at: int, **extra: object) -> dict:
    return {"type": "post", "post": {"team": team, "channel": channel, "user": who, "type": "", "message": message,
                                     "props": {}, "create_at": create_at, "edit_at": 0, "flagged_by": [],
                                     "reactions": [], "replies": None, "is_pinned": False, **extra}}


def reply(who: str, message: str, create_at: int, **extra: object) -> dict:
    return {"user": who, "type": "", "message": message, "props": {}, "create_at": create_at, "edit_at": 0,
            "flagged_by": [], "is_pinned": False, **extra}


def direct_post(members: list[str], who: str, message: str, create_at: int, **extra: object) -> dict:
    return {"type": "direct_post", "direct_post": {"channel_members": members, "user": who, "type": "",
                                                   "message": message, "props": {}, "create_at": create_at,
                                                   "edit_at": 0, "flagged_by": [], "reactions": None,
                                                   "replies": None, "attachments": None, "is_pinned": False,
                                                   **extra}}


def participants(*names: str) -> list[dict]:
    return [{"username": n, "notify_props": {"desktop": "default", "mobile": "default", "mark_unread": "all"},
             "scheme_user": True, "msg_count": 0, "last_viewed_at": 0} for n in names]


LINES: list[dict] = [
    {"type": "version", "version": 1,
     "info": {"generator": "chatmigrate sample", "version": "11.1.0 (hand-written)",
              "created": "2024-03-02T00:00:00Z"}},
    {"type": "role", "role": {"name": "custom_helper", "display_name": "Helper", "description": "",
                              "permissions": ["create_post"], "scheme_managed": False}},
    {"type": "scheme", "scheme": {"name": "strict", "display_name": "Strict", "description": "", "scope": "channel",
                                  "default_channel_admin_role": {"name": "strict_admin", "permissions": []},
                                  "default_channel_user_role": {"name": "strict_user", "permissions": []}}},
    {"type": "emoji", "emoji": {"name": "parrot", "image": "emoji/parrot/image.png"}},
    {"type": "emoji", "emoji": {"name": "ghost-emoji", "image": "emoji/ghost/image.png"}},
    {"type": "team", "team": {"name": "acme", "display_name": "ACME Corp", "type": "O", "description": "Main team",
                              "allow_open_invite": True}},
    {"type": "team", "team": {"name": "lab", "display_name": "Research Lab", "type": "I", "description": "",
                              "allow_open_invite": False}},
    {"type": "channel", "channel": {"team": "acme", "name": "town-square", "display_name": "Town Square", "type": "O",
                                    "header": "Welcome! 👋", "purpose": "Everything", "deleted_at": 0}},
    {"type": "channel", "channel": {"team": "acme", "name": "secret-plans", "display_name": "Secret plans",
                                    "type": "P", "header": "", "purpose": "Shh", "deleted_at": 0}},
    {"type": "channel", "channel": {"team": "lab", "name": "old-experiments", "display_name": "Old experiments",
                                    "type": "O", "header": "", "purpose": "", "deleted_at": at(-60 * 24)}},
    user("alice", "Alice", "Admin", "system_admin system_user",
         [membership("acme", "town-square", "secret-plans"), membership("lab", "old-experiments")]),
    user("bob", "Bob", "Builder", "system_user", [membership("acme", "town-square", "secret-plans")],
         nickname="bobby"),
    user("carol", "Carol", "Guest", "system_guest", [membership("acme", "town-square")]),
    user("dave", "Dave", "Gone", "system_user", [membership("lab", "old-experiments")], delete_at=at(-30)),
    user("eve", "Eve", "Sso", "system_user", [membership("acme", "town-square")], auth_service="gitlab",
         auth_data="4242"),
    {"type": "bot", "bot": {"username": "buildbot", "owner": "alice", "display_name": "Build Bot",
                            "description": "Posts CI results", "delete_at": 0}},
    # Posts of two channels interleaved (the exporter writes in post-id order, not by channel).
    post("acme", "town-square", "alice", "Hello **world**! Grüße 👋 日本語 🎉", at(0),
         reactions=[{"user": "bob", "emoji_name": "+1", "create_at": at(1)},
                    {"user": "carol", "emoji_name": "parrot", "create_at": at(2)}]),
    post("acme", "secret-plans", "bob", "Plan A: @Alice please review ~Town-Square", at(1)),
    # A thread whose replies are exported out of time order, one earlier than its root.
    post("acme", "town-square", "bob", "Thread root: what should we build?", at(5), replies=[
        reply("alice", "Second reply", at(8)),
        reply("carol", "First reply (guest)", at(6)),
        reply("eve", "Reply stamped before its root (clock skew)", at(4)),
    ]),
    post("acme", "town-square", "carol", "", at(10),
         attachments=[{"path": next(iter(FILES))}, {"path": list(FILES)[1]}, {"path": MISSING}]),
    post("acme", "town-square", "alice", "Pinned, edited and flagged", at(12), is_pinned=True, edit_at=at(15),
         flagged_by=["bob", "carol"]),
    {"type": "post", "post": {"team": "acme", "channel": "town-square", "user": "eve",
                              "type": "system_join_channel", "message": "eve joined the channel.",
                              "props": {"username": "eve"}, "create_at": at(13)}},
    # Two posts with the same team, channel, author and create_at: both kept, told apart by order.
    post("acme", "town-square", "bob", "Same millisecond, first", at(20)),
    post("acme", "town-square", "bob", "Same millisecond, second", at(20)),
    post("acme", "town-square", "buildbot", "Build #42 passed ✅", at(21),
         props={"from_webhook": "true", "attachments": [{"color": "#00ff00", "text": "all green"}]}),
    post("lab", "old-experiments", "dave", "Last words of a deactivated user", at(-90)),
    post("acme", "secret-plans", "alice", "/me whispers", at(3), type="me"),
    {"type": "direct_channel", "direct_channel": {"members": ["bob", "alice"], "favorited_by": ["alice"],
                                                  "header": "old members shape"}},
    {"type": "direct_channel", "direct_channel": {"participants": participants("carol", "alice", "bob"),
                                                  "shown_by": ["carol"], "header": "v11 participants shape"}},
    {"type": "direct_channel", "direct_channel": {"participants": participants("dave", "dave"), "header": ""}},
    direct_post(["alice", "bob"], "alice", "Hi Bob, a DM", at(30),
                replies=[reply("bob", "Hi Alice, a DM reply", at(31))]),
    direct_post(["bob", "carol", "alice"], "carol", "Group hello 👋", at(32),
                reactions=[{"user": "alice", "emoji_name": "heart", "create_at": at(33)}]),
    direct_post(["dave", "dave"], "dave", "Note to self", at(-100)),
    # No direct_channel line for bob+eve: created from the post, as Mattermost's importer does.
    direct_post(["eve", "bob"], "eve", "DM without a direct_channel line", at(34)),
]


def main() -> None:
    text = "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in LINES)
    (HERE / "export.jsonl").write_text(text, encoding="utf-8")
    for name, data in FILES.items():
        target = HERE / "data" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    with zipfile.ZipFile(HERE / "export.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [("import.jsonl", text.encode()), *((f"data/{n}", d) for n, d in FILES.items())]:
            info = zipfile.ZipInfo(name, date_time=(2024, 3, 2, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)


if __name__ == "__main__":
    main()
