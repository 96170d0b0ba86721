"""Write a large synthetic Rocket.Chat mongodump for throughput and memory runs (not committed output).

    python samples/rocketchat/make_large.py /tmp/rc-large --messages 100000
    /usr/bin/time -v chatmigrate migrate /tmp/rc-large --to sqlite:////tmp/rc-large.db -q --json

Shape: 200 users, 50 rooms of which one holds ~40% of the messages (the largest room bounds the
extractor's memory), documents in random room order (as a dump holds them), a thread reply every
tenth message, a reaction on every seventh, an edit with a `_hidden` history copy every twentieth, a
deletion into `rocketchat__trash` every hundredth. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bson


def write(folder: Path, messages: int, seed: int = 7) -> Path:
    database = folder / "rocketchat"
    database.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    base = datetime(2023, 1, 1, tzinfo=UTC)
    users = [{"_id": f"U{i:016d}", "username": f"user{i}", "name": f"User {i}", "type": "user", "roles": ["user"],
              "active": True, "emails": [{"address": f"u{i}@example.org", "verified": True}]} for i in range(200)]
    rooms = [{"_id": f"R{i:016d}", "t": "c" if i % 3 else "p", "name": f"room{i}", "ts": base} for i in range(50)]
    with (database / "users.bson").open("wb") as handle:
        for user in users:
            handle.write(bson.encode(user))
    with (database / "rocketchat_room.bson").open("wb") as handle:
        for room in rooms:
            handle.write(bson.encode(room))
    with (database / "rocketchat_subscription.bson").open("wb") as handle:
        n = 0
        for room in rooms:
            for user in rnd.sample(users, 20):
                n += 1
                handle.write(bson.encode({"_id": f"S{n:016d}", "rid": room["_id"],
                                          "u": {"_id": user["_id"], "username": user["username"]}}))
    weights = [40.0] + [60.0 / (len(rooms) - 1)] * (len(rooms) - 1)
    roots: dict[str, str] = {}
    with (database / "rocketchat_message.bson").open("wb") as live, \
            (database / "rocketchat__trash.bson").open("wb") as trash:
        for i in range(messages):
            room = rnd.choices(rooms, weights)[0]
            user = rnd.choice(users)
            ts = base + timedelta(seconds=rnd.randrange(0, 3 * 365 * 86400), milliseconds=rnd.randrange(1000))
            doc = {"_id": f"M{i:016d}", "rid": room["_id"], "ts": ts, "_updatedAt": ts,
                   "msg": f"message {i}: *bold* and a link https://example.org/{i} for #room1 and @{user['username']}",
                   "u": {"_id": user["_id"], "username": user["username"], "name": user["name"]},
                   "md": [{"type": "PARAGRAPH", "value": [{"type": "PLAIN_TEXT", "value": f"message {i}"}]}],
                   "mentions": [], "channels": [{"_id": "R0000000000000001", "name": "room1"}]}
            if i % 10 == 3 and room["_id"] in roots:
                doc["tmid"] = roots[room["_id"]]
            if i % 50 == 0:
                roots[room["_id"]] = doc["_id"]
            if i % 7 == 0:
                doc["reactions"] = {":thumbsup:": {"usernames": [rnd.choice(users)["username"] for _ in range(3)]}}
            if i % 20 == 0:
                doc["editedAt"] = ts + timedelta(minutes=5)
                doc["editedBy"] = doc["u"]
                live.write(bson.encode({**doc, "_id": f"H{i:016d}", "_hidden": True, "parent": doc["_id"],
                                        "msg": f"first draft of {i}", "editedAt": ts + timedelta(minutes=1)}))
            if i % 100 == 99:
                trash.write(bson.encode({**doc, "__collection__": "message", "_deletedAt": ts + timedelta(hours=1)}))
            else:
                live.write(bson.encode(doc))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    write(args.folder, args.messages, args.seed)
    print(f"wrote {args.messages} messages under {args.folder}")


if __name__ == "__main__":
    main()
