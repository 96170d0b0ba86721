"""The mapping step into Rocket.Chat's MongoDB (on FerretDB): source users merged onto the server's
own users are referred to by their `_id` and never rewritten; renames and filters follow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pymongo

from chatmigrate import pipeline

from . import synth

SERVER_USERS = [
    {"_id": "AnnSmith000000001", "username": "ann.smith", "name": "Ann Smith", "type": "user", "active": True,
     "roles": ["user", "admin"], "emails": [{"address": "ann@old.example", "verified": True}],
     "createdAt": datetime(2020, 1, 1, tzinfo=UTC)},
    {"_id": "Zed00000000000003", "username": "bob", "name": "Another Bob", "type": "user", "active": True,
     "roles": ["user"], "emails": [{"address": "bob@other.example", "verified": True}]},
]
MAPPING = synth.MERGE_RENAME_EXCLUDE


def migrate(url: str) -> pipeline.RunResult:
    return synth.migrate(url, MAPPING)


def test_merged_users_are_referred_to_by_the_servers_id(ferretdb: str) -> None:
    database = f"cmtest_{uuid.uuid4().hex[:12]}"
    client = pymongo.MongoClient(f"{ferretdb}/")
    try:
        db = client[database]
        db.users.insert_many([dict(u) for u in SERVER_USERS])
        url = f"rocketchat+mongodb://{ferretdb.removeprefix('mongodb://')}/{database}"
        result = migrate(url)
        assert result.mapping_plan["users"] == {"merged": 1, "kept": 3}
        ann = db.users.find_one({"_id": "AnnSmith000000001"})
        assert {k: ann[k] for k in SERVER_USERS[0]} == {k: v.replace(tzinfo=None) if isinstance(v, datetime) else v
                                                          for k, v in SERVER_USERS[0].items()}
        assert db.users.count_documents({"username": "ann"}) == 0
        # The source's bob is not the server's bob (another email): a user of its own, with another name.
        assert db.users.find_one({"_id": "Zed00000000000003"})["name"] == "Another Bob"
        assert db.users.count_documents({"emails.address": "bob@x.example", "username": {"$ne": "bob"}}) == 1
        rooms = {r["name"]: r for r in db.rocketchat_room.find({"name": {"$exists": True}})}
        assert "town-square" in rooms and "random" not in rooms and "general" not in rooms
        by_ann = list(db.rocketchat_message.find({"u._id": "AnnSmith000000001"}))
        assert by_ann and all(m["u"]["username"] == "ann.smith" for m in by_ann)
        subs = {s["rid"] for s in db.rocketchat_subscription.find({"u._id": "AnnSmith000000001"})}
        assert rooms["town-square"]["_id"] in subs
        assert rooms["town-square"]["_id"] in db.users.find_one({"_id": "AnnSmith000000001"})["__rooms"]
        mentioned = [m for m in db.rocketchat_message.find({"mentions._id": "AnnSmith000000001"})]
        assert mentioned and all("@ann.smith" in m["msg"] for m in mentioned)
        assert migrate(url).rows_written == 0
    finally:
        client.drop_database(database)
        client.close()
