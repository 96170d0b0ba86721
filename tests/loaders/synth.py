"""Deterministic canonical records for loader tests and benchmarks, streamed (never held in memory).

`items(n)` yields a team, users, channels with members, a custom emoji, then `n` messages grouped by
channel in (created_at, id) order with threads, reactions, files, edits and props, and a Checkpoint
after each channel, exactly as an extractor would. The same arguments always give the same records.

Run as a script it loads them into a target, which is how the crash test drives a load it can kill:
    python -m tests.loaders.synth URL --messages N [--flush-rows K] [--prefix P] [--variant V]
It prints `progress <messages yielded>` lines (flushed) so a parent can kill it part-way.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from chatmigrate.ids import record_id
from chatmigrate.model import Channel, Checkpoint, Emoji, File, Item, Message, Reaction, Team, User

SOURCE = "synth"
SCOPE = "W1"
BASE_TIME = datetime(2019, 1, 1, tzinfo=UTC)

_WORDS = ("the deploy went fine", "café", "naïve", "日本語のテキスト", "שלום", "emoji 😀🎉👍🏽", "tab\there",
          "line\nbreak", "crlf\r\nend", "back\\slash", "quote's", '"double"', "NULL", "\\N", "<b>html</b>",
          "https://example.com/a?b=c&d=e", "@alice", "~general", "`code`", "*bold*", "x" * 40)
_EMOJI = ("+1", "tada", "heart", "eyes", "smile", "Smile", "joy", "rocket")


def _id(kind: str, key: str) -> str:
    return record_id(SOURCE, SCOPE, kind, key)


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 30)))


def items(n_messages: int, *, channels: int = 10, users: int = 50, variant: str = "",
          hostile: bool = True, progress: bool = False) -> Iterator[Item]:
    """The record stream. `variant` changes every 7th message's text (an "edited export");
    `hostile` mixes in NUL, lone surrogates and over-long values the loader must repair."""
    rng = random.Random(42)
    team_id = _id("team", "T1")
    yield Team(id=team_id, source=SOURCE, source_id="T1", name="synth", display_name="Synth Inc")
    user_ids = [_id("user", f"U{u}") for u in range(users)]
    for u, user_id in enumerate(user_ids):
        yield User(id=user_id, source=SOURCE, source_id=f"U{u}", username=f"user{u}", email=f"user{u}@example.com",
                   display_name=("Ünïcödé " * 40 if hostile and u == 3 else f"User {u} 😀"),
                   is_bot=u % 17 == 0, timezone="Europe/Berlin", props={"title": f"t{u}"})
    channel_ids = [_id("channel", f"C{c}") for c in range(channels)]
    for c, channel_id in enumerate(channel_ids):
        yield Channel(id=channel_id, source=SOURCE, source_id=f"C{c}", team_id=team_id, name=f"chan-{c}",
                      kind="public" if c % 3 else "private", topic=f"topic {c}", created_at=BASE_TIME,
                      creator_id=user_ids[c % users],
                      member_ids=tuple(user_ids[(c + k) % users] for k in range(min(users, 8))))
    emoji_file = File(id=_id("file", "E1"), source=SOURCE, source_id="E1", name="party.gif", mime_type="image/gif",
                      size=1234, path="emoji/party.gif")
    yield Emoji(id=_id("emoji", "party"), source=SOURCE, source_id="party", name="party", creator_id=user_ids[0],
                file=emoji_file)

    per_channel, extra = divmod(n_messages, channels)
    yielded = 0
    for c, channel_id in enumerate(channel_ids):
        count = per_channel + (1 if c < extra else 0)
        root_id = None
        last_key = None
        for i in range(count):
            key = f"C{c}/{1546300800 + i}.{c:06d}"
            message_id = _id("message", key)
            created = BASE_TIME + timedelta(seconds=i, microseconds=c)
            text = _text(rng)
            if variant and i % 7 == 0:
                text = f"{variant}: {text}"
            if hostile and i % 211 == 5:
                text += " nul\x00here"
            if hostile and i % 307 == 6:
                text += " lone\ud800surrogate"
            reactions = tuple(
                Reaction(_EMOJI[(i + k) % len(_EMOJI)], user_ids[(i + k) % users], created + timedelta(minutes=k))
                for k in range(i % 4))
            files = ()
            if i % 50 == 1:
                files = (File(id=_id("file", f"F{c}.{i}"), source=SOURCE, source_id=f"F{c}.{i}", name=f"doc {i}.pdf",
                              mime_type="application/pdf", size=i * 100, sha256="ab" * 32,
                              source_url=f"https://files.example.com/F{c}.{i}", path=f"files/F{c}.{i}.pdf",
                              created_at=created),)
            thread_root = root_id if i % 5 else None
            if i % 5 == 0:
                root_id = message_id
            props = {"subtype": "bot_message", "attachments": [{"text": "att"}]} if i % 4 == 0 else {}
            if hostile and i % 401 == 7:
                props = {"weird": "nul\x00in props", "surrogate": "\udc80"}
            yield Message(id=message_id, source=SOURCE, source_id=key, channel_id=channel_id,
                          user_id=None if i % 97 == 3 else user_ids[i % users], created_at=created,
                          kind="normal" if i % 97 != 3 else "system_join", text=text, thread_root_id=thread_root,
                          edited_at=created + timedelta(minutes=5) if i % 20 == 2 else None,
                          is_pinned=i % 113 == 0, reactions=reactions, files=files, props=props)
            last_key = key
            yielded += 1
            if progress and yielded % 200 == 0:
                print(f"progress {yielded}", flush=True)
        if last_key is not None:
            yield Checkpoint(SOURCE, SCOPE, channel_id, last_key)


def main(argv: list[str] | None = None) -> int:
    from chatmigrate.loaders import loader_for

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--flush-rows", type=int, default=None)
    parser.add_argument("--prefix", default="cm_")
    parser.add_argument("--variant", default="")
    args = parser.parse_args(argv)
    loader = loader_for(args.url, prefix=args.prefix)
    if args.flush_rows:
        loader.flush_rows = args.flush_rows
    loader.prepare()
    stats = loader.load(items(args.messages, channels=args.channels, variant=args.variant, progress=True))
    print(f"done records={stats.records} rows_written={stats.rows_written} commits={stats.commits}", flush=True)
    loader.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
