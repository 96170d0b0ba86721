"""Writes a large synthetic Mattermost bulk export for throughput and memory measurements.

    python samples/mattermost/make_large.py /tmp/mm-large.zip --posts 100000

Posts (a fifth of them replies nested in their roots, a third with reactions) are spread over the
channels in random order, as the exporter's post-id order spreads them, so the reader must index and
seek. Deterministic for a given --seed. The output is not committed (it is large).
"""

from __future__ import annotations

import argparse
import json
import random
import zipfile
from collections.abc import Iterator
from pathlib import Path

T0 = 1_600_000_000_000


def lines(posts: int, users: int, channels: int, seed: int) -> Iterator[dict]:
    rng = random.Random(seed)
    names = [f"user{n:05d}" for n in range(users)]
    channel_names = [f"channel-{n:04d}" for n in range(channels)]
    yield {"type": "version", "version": 1}
    yield {"type": "team", "team": {"name": "big", "display_name": "Big team", "type": "O"}}
    for name in channel_names:
        yield {"type": "channel", "channel": {"team": "big", "name": name, "display_name": name, "type": "O",
                                              "header": "", "purpose": ""}}
    for n, name in enumerate(names):
        mine = rng.sample(channel_names, k=min(10, channels))
        yield {"type": "user", "user": {"username": name, "email": f"{name}@example.test", "first_name": "User",
                                        "last_name": str(n), "roles": "system_user",
                                        "teams": [{"name": "big", "channels": [{"name": c} for c in mine]}]}}
    written = 0
    while written < posts:
        replies = [{"user": rng.choice(names), "message": f"reply {written + i} " + "lorem ipsum " * rng.randint(1, 8),
                    "create_at": T0 + (written + i) * 1000 + rng.randint(0, 999)}
                   for i in range(1, 1 + (rng.random() < 0.25) * rng.randint(1, 4))]
        replies = replies[:max(0, posts - written - 1)]
        rng.shuffle(replies)  # exported replies are not in time order
        reactions = [{"user": rng.choice(names), "emoji_name": rng.choice(["+1", "smile", "tada", "eyes"]),
                      "create_at": T0 + written * 1000 + 500}] * (rng.random() < 0.33)
        yield {"type": "post", "post": {"team": "big", "channel": rng.choice(channel_names), "user": rng.choice(names),
                                        "message": f"post {written} " + "dolor sit amet 👋 " * rng.randint(1, 12),
                                        "create_at": T0 + written * 1000, "reactions": reactions,
                                        "replies": replies or None}}
        written += 1 + len(replies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="a .zip (zipped export) or .jsonl (plain)")
    parser.add_argument("--posts", type=int, default=100_000, help="messages, replies included")
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    text = "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"
                   for line in lines(args.posts, args.users, args.channels, args.seed))
    if args.output.suffix == ".zip":
        with zipfile.ZipFile(args.output, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("import.jsonl", text)
    else:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
