"""Write a realistic chat export of N messages, deterministically from a seed, in constant memory.

    python benchmarks/generate.py --form slack|mattermost|rocketchat --messages 1000000 --seed 1 --out PATH

One synthetic workspace (users, channels, DMs, group DMs) is drawn from the seed; every conversation
then generates its own messages from its own random stream, in time order, so the output never holds
more than one conversation's in-flight threads (Slack: one day file; Mattermost: the open threads of
one channel; Rocket.Chat: the open threads of every channel while their timelines are merged).

What the data holds, because that is what real exports hold and what costs time to migrate:
- conversations of skewed sizes (Zipf: a few huge channels, a long tail of small ones), private
  channels, DMs and group DMs;
- ~20 % thread replies, some posted days after their root (across day files);
- reactions (with skin tones and custom emoji), edits, pins, file metadata (Mattermost: the bytes too,
  under data/), bot messages, join messages, /me messages;
- markup in each source's own dialect: mentions, channel links, links with labels, bold, code,
  entities (&amp; &lt; &gt; in Slack), CJK text and emoji;
- a few deleted users, and bots (Slack: some only known from their messages' bot_id).

Formats follow research/formats.md §1 (Slack), §2 (Mattermost bulk export), §3 (Rocket.Chat mongodump).
"""

from __future__ import annotations

import argparse
import functools
import heapq
import random
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

FORMS = ("slack", "mattermost", "rocketchat")
# 2019-01-01T00:00:00Z: the oldest conversation starts within a year of this.
EPOCH_MS = 1_546_300_800_000
DAY_MS = 86_400_000
# Conversations run for at most this long, so nothing lands in the future (validators flag that).
MAX_SPAN_DAYS = 2_000

FIRST = ("anna", "ben", "carla", "dmitri", "emma", "farid", "greta", "hiro", "ines", "jonas", "kai", "lena",
         "mateo", "nora", "omar", "priya", "quinn", "rosa", "sven", "tara", "umar", "vera", "wei", "xenia",
         "yuki", "zoe", "li", "sofia", "lukas", "amara")
LAST = ("smith", "müller", "garcia", "tanaka", "kowalski", "nguyen", "okafor", "rossi", "silva", "kim",
        "johansson", "novak", "haddad", "costa", "ivanova", "wang", "patel", "dubois", "schmidt", "sato")
CJK_NAMES = ("王伟", "李娜", "張偉", "佐藤花子", "鈴木一郎", "김민준", "이서연", "陈静")
WORDS = ("the", "deploy", "is", "green", "again", "can", "someone", "review", "my", "PR", "before", "lunch",
         "meeting", "moved", "to", "3pm", "build", "failed", "on", "main", "looks", "flaky", "ship", "it",
         "thanks", "for", "the", "quick", "fix", "we", "need", "more", "tests", "here", "database", "migration",
         "ready", "customer", "reported", "a", "bug", "in", "export", "latency", "went", "up", "after", "release",
         "rollback", "done", "standup", "notes", "are", "in", "the", "doc", "who", "owns", "this", "service")
CJK = ("部署完成了，请大家检查一下。", "明日の会議は十時からです。", "테스트가 모두 통과했습니다.", "这个问题已经修复",
       "ありがとうございます！", "数据库迁移正在进行中", "お疲れ様でした", "회의록을 공유합니다")
EMOJI_TEXT = ("🎉", "🚀", "👍", "😅", "🔥", "✅", "🙏", "👀", "💯", "🤔", "❤️", "😂")
EMOJI_NAMES = ("thumbsup", "+1", "heart", "tada", "eyes", "rocket", "joy", "white_check_mark", "pray", "fire",
               "100", "thinking_face", "raised_hands", "thumbsup::skin-tone-2", "wave::skin-tone-5",
               "partyparrot", "shipit", "this-is-fine")
FILE_KINDS = (("report.pdf", "application/pdf", "pdf", "PDF"), ("screenshot.png", "image/png", "png", "PNG"),
              ("notes.txt", "text/plain", "text", "Plain Text"), ("data.csv", "text/csv", "csv", "CSV"),
              ("diagram.svg", "image/svg+xml", "svg", "SVG"), ("会議資料.docx", "application/vnd.openxmlformats-"
              "officedocument.wordprocessingml.document", "docx", "Word Document"))
HOSTS = ("github.com/acme/api/pull/", "jira.example.com/browse/OPS-", "docs.example.com/runbooks/",
         "grafana.example.com/d/", "example.org/wiki/")
METEOR_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"
BASE32 = "0123456789ABCDEFGHJKLMNPQRSTVWXYZ"


@functools.lru_cache(maxsize=1 << 16)
def _code(n: int, width: int) -> str:
    """A fixed-width uppercase code for an index, like the tails of Slack ids (U01ABCD2EFG)."""
    out = []
    for _ in range(width):
        n, r = divmod(n, len(BASE32))
        out.append(BASE32[r])
    return "".join(reversed(out))


def meteor_id(rng: random.Random) -> str:
    return "".join(rng.choices(METEOR_ALPHABET, k=17))


# -- the workspace -------------------------------------------------------------------------------

@dataclass(slots=True)
class User:
    index: int
    slack_id: str
    meteor_id: str
    username: str
    display_name: str
    first: str
    last: str
    email: str
    deleted: bool = False
    bot: bool = False
    # Slack bots known only through their messages' bot_id (not in users.json).
    hidden_bot: bool = False
    admin: bool = False
    tz: str = "Europe/Berlin"


@dataclass(slots=True)
class Conversation:
    index: int
    kind: str  # public | private | direct | group
    slack_id: str
    meteor_id: str
    name: str
    team: int
    members: list[int]
    messages: int = 0
    start_ms: int = 0
    span_ms: int = 0


@dataclass(slots=True)
class World:
    seed: int
    users: list[User]
    conversations: list[Conversation]
    team_ids: tuple[str, ...] = ("T01ACME0001", "T02PART0002")
    team_names: tuple[str, ...] = ("acme", "partners")

    @property
    def humans(self) -> list[User]:
        return [u for u in self.users if not u.bot]


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def build_world(messages: int, seed: int) -> World:
    """Users and conversations for an export of `messages` messages; O(users + conversations)."""
    rng = random.Random(f"world:{seed}")
    n_users = _clamp(messages // 400, 40, 4000)
    n_bots = _clamp(n_users // 200, 3, 20)
    users: list[User] = []
    taken: set[str] = set()
    for i in range(n_users + n_bots):
        bot = i >= n_users
        first, last = rng.choice(FIRST), rng.choice(LAST)
        if bot:
            base = f"{rng.choice(('deploy', 'ci', 'alerts', 'standup', 'jira', 'github'))}-bot"
        else:
            base = f"{first}.{last}".replace("ü", "u")
        username = base
        while username in taken:
            username = f"{base}{rng.randint(2, 9999)}"
        taken.add(username)
        display = rng.choice(CJK_NAMES) if rng.random() < 0.08 else f"{first.title()} {last.title()}"
        users.append(User(
            index=i, slack_id=("B" if bot else "U") + "0" + _code(i * 7919 + 31, 9),
            meteor_id=meteor_id(rng), username=username, display_name=display, first=first.title(),
            last=last.title(), email=f"{username}@example.com", deleted=not bot and i % 40 == 17,
            bot=bot, hidden_bot=bot and i % 3 == 0, admin=i < 3,
            tz=rng.choice(("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Shanghai", "UTC"))))
    humans = [u.index for u in users if not u.bot]

    n_public = _clamp(messages // 2500, 8, 1500)
    n_private = max(2, n_public // 4)
    n_direct = _clamp(messages // 2000, 5, 3000)
    n_group = max(2, n_direct // 5)
    conversations: list[Conversation] = []
    names: set[str] = set()
    topics = ("general", "random", "eng", "ops", "sales", "design", "support", "infra", "data", "release",
              "incidents", "frontend", "backend", "mobile", "hiring", "social", "announcements", "qa")
    for i in range(n_public + n_private):
        name = "general" if i == 0 else "random" if i == 1 else f"{rng.choice(topics)}-{rng.choice(topics)}"
        while name in names:
            name = f"{name.rsplit('-', 1)[0]}-{rng.randint(2, 999)}" if i > 1 else name + "-2"
        names.add(name)
        kind = "public" if i < n_public else "private"
        conversations.append(Conversation(
            i, kind, ("C" if kind == "public" else "G") + "0" + _code(i * 104729 + 7, 9), meteor_id(rng), name,
            team=1 if i % 10 == 9 else 0, members=[]))
    for _ in range(n_direct):
        i = len(conversations)
        pair = rng.sample(humans, 2)
        conversations.append(Conversation(i, "direct", "D0" + _code(i * 104729 + 7, 9), "", "", 0, pair))
    for _ in range(n_group):
        i = len(conversations)
        members = rng.sample(humans, rng.randint(3, 6))
        conversations.append(Conversation(i, "group", "G0" + _code(i * 104729 + 7, 9), meteor_id(rng), "", 0,
                                          members))
    world = World(seed, users, conversations)
    for conv in conversations:
        if conv.kind in ("direct", "group"):
            member_users = [users[m] for m in conv.members]
            if conv.kind == "direct":
                a, b = sorted(member_users, key=lambda u: u.meteor_id)
                conv.meteor_id = a.meteor_id + b.meteor_id
            conv.name = "mpdm-" + "--".join(u.username for u in member_users) + "-1" if conv.kind == "group" \
                else conv.slack_id
    _allocate(world, messages, rng)
    return world


def _allocate(world: World, messages: int, rng: random.Random) -> None:
    """Share `messages` over conversations with a Zipf skew; give each a time span and members."""
    convs = world.conversations
    order = list(range(len(convs)))
    rng.shuffle(order)
    order.sort(key=lambda i: convs[i].kind in ("direct", "group"))  # channels take the big ranks
    weights = [0.0] * len(convs)
    for rank, i in enumerate(order):
        weights[i] = 1.0 / (rank + 1) ** 1.1
    total = sum(weights)
    shares = [messages * w / total for w in weights]
    counts = [int(s) for s in shares]
    # Largest remainder: the counts add up to exactly `messages`.
    for i in sorted(range(len(convs)), key=lambda i: shares[i] - counts[i], reverse=True)[:messages - sum(counts)]:
        counts[i] += 1
    humans = [u.index for u in world.users if not u.bot]
    bots = [u.index for u in world.users if u.bot]
    for conv, count in zip(convs, counts, strict=True):
        conv.messages = count
        # Busy channels run at up to ~900 messages a day; quiet ones spread thin over months.
        days = _clamp(count // 150 + rng.randint(1, 120), 1, MAX_SPAN_DAYS)
        conv.start_ms = EPOCH_MS + rng.randrange(0, 365) * DAY_MS + rng.randrange(DAY_MS)
        conv.span_ms = days * DAY_MS
        if conv.kind in ("public", "private"):
            size = _clamp(int(3 + count ** 0.5), 3, len(humans))
            conv.members = sorted(rng.sample(humans, size))
            if conv.kind == "public" and rng.random() < 0.3:
                conv.members.append(rng.choice(bots))


# -- messages, in a source-neutral shape ------------------------------------------------------------

@dataclass(slots=True)
class Msg:
    conv: int
    seq: int  # creation order inside the conversation: unique
    ms: int  # created, epoch milliseconds: unique inside the conversation (Mattermost keys on it)
    micros: int  # Slack's extra precision below the millisecond
    author: int
    kind: str  # normal | join | bot | me
    parts: list[tuple[Any, ...]]
    root: Msg | None = None
    replies: list[Msg] = field(default_factory=list)
    edited_ms: int | None = None
    reactions: list[tuple[str, list[int]]] = field(default_factory=list)
    files: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    pinned: bool = False
    meteor_id: str = ""

    @property
    def slack_ts(self) -> str:
        return f"{self.ms // 1000}.{(self.ms % 1000) * 1000 + self.micros:06d}"


class ConversationStream:
    """The messages of one conversation in time order, with threads scheduled ahead.

    A new top-level message may become a thread root; its replies are drawn at once (so a root can
    state its reply count and a Mattermost root line can nest its replies) and wait in a heap until
    their time comes. Some replies land days later, in another day file. The counts add up to exactly
    `conv.messages`."""

    def __init__(self, world: World, conv: Conversation) -> None:
        self.world = world
        self.conv = conv
        self.rng = random.Random(f"conv:{world.seed}:{conv.index}")
        self.seq = 0
        self.pending: list[tuple[int, int, Msg]] = []
        self.pending_ms: set[int] = set()
        self.bots = [u.index for u in world.users if u.bot]

    def _unique_ms(self, ms: int) -> int:
        while ms in self.pending_ms:
            ms += 1
        return ms

    def __iter__(self) -> Iterator[Msg]:
        conv, rng = self.conv, self.rng
        budget = conv.messages
        if budget == 0:
            return
        mean_gap = max(conv.span_ms // max(budget, 1), 1)
        now = conv.start_ms
        last_top = now - 1
        while budget > 0 or self.pending:
            if budget > 0:
                now += int(rng.expovariate(1.0 / mean_gap)) + 1
                top_ms = self._unique_ms(max(now, last_top + 1))
            else:
                top_ms = None
            while self.pending and (top_ms is None or self.pending[0][0] < top_ms):
                _, _, reply = heapq.heappop(self.pending)
                self.pending_ms.discard(reply.ms)
                yield reply
            if top_ms is None:
                break
            last_top = now = top_ms
            budget -= 1
            msg = self._message(top_ms, None)
            # ~6 % of top-level messages start a thread of ~4 replies: ~20 % of all messages are replies.
            if budget > 0 and rng.random() < 0.062:
                n = min(budget, 1 + int(rng.expovariate(1 / 3.2)))
                budget -= n
                at = top_ms
                late = rng.random() < 0.25  # a thread that goes on over the next days
                for _ in range(n):
                    at += int(rng.expovariate(1 / (DAY_MS if late else 1_800_000))) + 1
                    at = self._unique_ms(at)
                    self.pending_ms.add(at)
                    reply = self._message(at, msg)
                    msg.replies.append(reply)
                    heapq.heappush(self.pending, (reply.ms, reply.seq, reply))
            yield msg

    def _author(self) -> int:
        members = self.conv.members
        # A few people do most of the talking.
        return members[int(len(members) * self.rng.random() ** 2)]

    def _message(self, ms: int, root: Msg | None) -> Msg:
        rng, conv = self.rng, self.conv
        self.seq += 1
        author = self._author()
        roll = rng.random()
        kind = "normal"
        if root is None and conv.kind in ("public", "private"):
            if roll < 0.01:
                kind = "join"
            elif roll < 0.04:
                kind = "bot"
                author = rng.choice(self.bots)
        if kind == "normal" and rng.random() < 0.003:
            kind = "me"
        if self.world.users[author].bot and kind != "bot":
            kind = "bot"
        msg = Msg(conv.index, self.seq, ms, rng.randrange(1000), author, kind,
                  [] if kind == "join" else self._parts(), root, meteor_id=meteor_id(rng))
        if kind in ("normal", "me"):
            if rng.random() < 0.05:
                msg.edited_ms = ms + rng.randrange(5_000, 3_600_000)
            if rng.random() < 0.12:
                for emoji in rng.sample(EMOJI_NAMES, rng.randint(1, 3)):
                    who = sorted({self._author() for _ in range(rng.randint(1, 4))})
                    msg.reactions.append((emoji, who))
            if rng.random() < 0.03:
                name, mime, filetype, _pretty = rng.choice(FILE_KINDS)
                msg.files.append((meteor_id(rng), name, mime, filetype, rng.randint(200, 4096)))
            msg.pinned = rng.random() < 0.002
        return msg

    def _parts(self) -> list[tuple[Any, ...]]:
        rng, world = self.rng, self.world
        parts: list[tuple[Any, ...]] = []
        for _ in range(rng.randint(1, 4)):
            roll = rng.random()
            if roll < 0.55:
                parts.append(("w", " ".join(rng.choices(WORDS, k=rng.randint(3, 14)))))
            elif roll < 0.65:
                parts.append(("mention", rng.choice(self.conv.members)))
            elif roll < 0.70:
                parts.append(("channel", rng.randrange(min(len(world.conversations), 50))))
            elif roll < 0.77:
                host = rng.choice(HOSTS)
                label = rng.choice((None, "this PR", "the runbook", "dashboard", "チケット"))
                parts.append(("link", f"https://{host}{rng.randint(1, 99999)}", label))
            elif roll < 0.82:
                parts.append(("bold", " ".join(rng.choices(WORDS, k=rng.randint(1, 3)))))
            elif roll < 0.86:
                parts.append(("code", rng.choice(("kubectl rollout undo", "SELECT 1;", "make test",
                                                   "git push --force-with-lease", "x < y && y > z"))))
            elif roll < 0.93:
                parts.append(("cjk", rng.choice(CJK)))
            elif roll < 0.97:
                parts.append(("emoji", rng.choice(EMOJI_TEXT)))
            else:
                parts.append(("amp", rng.choice(("R&D <-> ops", "Q&A at 5 > 4", "a<b & c>d"))))
        return parts


def _files_per_conversation(world: World) -> Iterator[tuple[Conversation, ConversationStream]]:
    for conv in world.conversations:
        if conv.messages:
            yield conv, ConversationStream(world, conv)


# -- Slack export zip ---------------------------------------------------------------------------------

def _slack_text(parts: list[tuple[Any, ...]], world: World) -> str:
    out = []
    for part in parts:
        tag = part[0]
        if tag == "w" or tag == "cjk" or tag == "emoji":
            out.append(part[1])
        elif tag == "mention":
            out.append(f"<@{slack_user_id(world.users[part[1]])}>")
        elif tag == "channel":
            conv = world.conversations[part[1]]
            out.append(f"<#{conv.slack_id}|{conv.name}>" if conv.kind == "public" else f"<#{conv.slack_id}>")
        elif tag == "link":
            out.append(f"<{part[1]}|{part[2]}>" if part[2] else f"<{part[1]}>")
        elif tag == "bold":
            out.append(f"*{part[1]}*")
        elif tag == "code":
            out.append("`" + part[1].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "`")
        elif tag == "amp":
            out.append(part[1].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    return " ".join(out)


def slack_user_id(u: User) -> str:
    """The U… id of a user; a bot user's U… id differs from its B… bot id (its `slack_id`)."""
    return "U0" + _code(u.index * 7919 + 31, 9) if u.bot else u.slack_id


def _slack_user(u: User, world: World) -> dict[str, Any]:
    image = f"https://avatars.slack-edge.com/2019-01-01/{u.index}_{u.slack_id.lower()}_72.png"
    profile: dict[str, Any] = {
        "title": "" if u.bot else "Engineer", "phone": "", "skype": "", "real_name": u.display_name,
        "real_name_normalized": u.display_name, "display_name": u.username, "display_name_normalized": u.username,
        "fields": None, "status_text": "", "status_emoji": "", "status_expiration": 0, "avatar_hash": "g" + _code(
            u.index, 11).lower(), "first_name": u.first, "last_name": u.last, "image_24": image,
        "image_72": image, "image_192": image, "image_512": image, "team": world.team_ids[0],
    }
    if u.index % 3:  # standard exports often lack emails
        profile["email"] = u.email
    if u.bot:
        profile["bot_id"] = u.slack_id
        profile["api_app_id"] = "A0" + _code(u.index, 9)
    return {"id": slack_user_id(u), "team_id": world.team_ids[0],
            "name": u.username, "deleted": u.deleted, "color": "9f69e7", "real_name": u.display_name, "tz": u.tz,
            "tz_label": "Central European Time", "tz_offset": 3600, "profile": profile, "is_admin": u.admin,
            "is_owner": u.index == 0, "is_primary_owner": u.index == 0, "is_restricted": False,
            "is_ultra_restricted": False, "is_bot": u.bot, "is_app_user": False, "updated": 1_600_000_000,
            "is_email_confirmed": True}


def _slack_conversation(conv: Conversation, world: World) -> dict[str, Any]:
    members = [world.users[m].slack_id for m in conv.members if not world.users[m].bot]
    created = conv.start_ms // 1000 - 3600
    if conv.kind == "direct":
        return {"id": conv.slack_id, "created": created, "members": members}
    creator = members[0] if members else world.users[0].slack_id
    base = {"id": conv.slack_id, "name": conv.name, "created": created, "creator": creator,
            "is_archived": conv.index % 37 == 36, "is_general": conv.index == 0, "members": members,
            "topic": {"value": "Release train &amp; hotfixes" if conv.index % 5 == 0 else "", "creator": creator,
                      "last_set": created},
            "purpose": {"value": f"Talk about {conv.name}", "creator": creator, "last_set": created}}
    if conv.kind == "group":
        base["is_mpim"] = True
    return base


def _slack_message(msg: Msg, world: World) -> dict[str, Any]:
    author = world.users[msg.author]
    ts = msg.slack_ts
    team = world.team_ids[0]
    if msg.kind == "join":
        return {"type": "message", "subtype": "channel_join", "ts": ts, "user": author.slack_id,
                "text": f"<@{author.slack_id}> has joined the channel", "inviter": world.users[0].slack_id}
    text = _slack_text(msg.parts, world)
    if msg.kind == "bot":
        out: dict[str, Any] = {"type": "message", "subtype": "bot_message", "text": text, "ts": ts,
                               "bot_id": author.slack_id, "username": author.username,
                               "icons": {"emoji": ":robot_face:"}}
        if not author.hidden_bot:
            out["user"] = slack_user_id(author)
        if msg.seq % 4 == 0:
            out["attachments"] = [{"fallback": "Build #1234 passed", "color": "36a64f", "title": "Build passed",
                                   "title_link": "https://ci.example.com/builds/1234", "text": "All 812 tests green",
                                   "id": 1}]
        return out
    out = {"client_msg_id": f"{msg.conv:08x}-{msg.seq:04x}-4{msg.micros:03x}-8000-{msg.ms:012x}"[:36],
           "type": "message", "text": text, "user": author.slack_id, "ts": ts, "team": team, "user_team": team,
           "source_team": team,
           "user_profile": {"avatar_hash": "g" + _code(author.index, 11).lower(),
                            "image_72": f"https://avatars.slack-edge.com/{author.index}_72.png",
                            "first_name": author.first, "real_name": author.display_name,
                            "display_name": author.username, "team": team, "name": author.username,
                            "is_restricted": False, "is_ultra_restricted": False},
           "blocks": [{"type": "rich_text", "block_id": f"{msg.seq:05x}",
                       "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}]}
    if msg.kind == "me":
        out["subtype"] = "me_message"
    if msg.edited_ms is not None:
        out["edited"] = {"user": author.slack_id, "ts": f"{msg.edited_ms // 1000}.{(msg.edited_ms % 1000) * 1000:06d}"}
    if msg.root is not None:
        out["thread_ts"] = msg.root.slack_ts
        out["parent_user_id"] = world.users[msg.root.author].slack_id
    elif msg.replies:
        out["thread_ts"] = ts
        out["reply_count"] = len(msg.replies)
        repliers = list(dict.fromkeys(world.users[r.author].slack_id for r in msg.replies))
        out["reply_users_count"] = len(repliers)
        out["latest_reply"] = msg.replies[-1].slack_ts
        out["reply_users"] = repliers
        out["is_locked"] = False
        out["subscribed"] = False
    if msg.reactions:
        out["reactions"] = [{"name": name, "users": [world.users[u].slack_id for u in who],
                             "count": len(who) + (3 if name == "tada" else 0)} for name, who in msg.reactions]
    if msg.files:
        out["files"] = [_slack_file(f, msg, author) for f in msg.files]
        out["upload"] = False
    if msg.pinned:
        out["pinned_to"] = [world.conversations[msg.conv].slack_id]
    return out


def _slack_file(f: tuple[str, str, str, str, int], msg: Msg, author: User) -> dict[str, Any]:
    file_id = "F0" + f[0][:9].upper()
    name, mime, filetype, size = f[1], f[2], f[3], f[4]
    url = f"https://files.slack.com/files-pri/T01ACME0001-{file_id}/{name}"
    return {"id": file_id, "created": msg.ms // 1000, "timestamp": msg.ms // 1000, "name": name, "title": name,
            "mimetype": mime, "filetype": filetype, "pretty_type": filetype.upper(), "user": author.slack_id,
            "mode": "tombstone" if msg.seq % 41 == 0 else "hosted", "editable": False, "size": size,
            "is_external": False, "external_type": "", "is_public": True,
            "url_private": url, "url_private_download": url + "?t=xoxe-123456789012-abcdefghijklmnop",
            "permalink": f"https://acme.slack.com/files/{author.slack_id}/{file_id}/{name}"}


# Fixed member dates: the same seed gives byte-identical archives.
_ZIP_DATE = (2025, 6, 1, 0, 0, 0)


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    # The attribute zf.open(info, "w") reads the level from: renamed in Python 3.13.
    setattr(info, "compress_level" if "compress_level" in zipfile.ZipInfo.__slots__ else "_compresslevel", 1)
    info.external_attr = 0o644 << 16
    return info


def _put(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    zf.writestr(_member(name), data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)


def _dump_array(items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(items, option=orjson.OPT_INDENT_2)


def write_slack(world: World, out: Path) -> int:
    """The zip Slack's export tool gives: top-level JSON arrays, then one folder of day files per
    conversation (channels by name, DMs by id, group DMs by mpim name). One day is held at a time."""
    written = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        listed = [u for u in world.users if not u.hidden_bot]
        _put(zf, "users.json", _dump_array([_slack_user(u, world) for u in listed]))
        for file_name, kind in (("channels.json", "public"), ("groups.json", "private"), ("dms.json", "direct"),
                                ("mpims.json", "group")):
            _put(zf, file_name, _dump_array([_slack_conversation(c, world) for c in world.conversations
                                                if c.kind == kind]))
        _put(zf, "integration_logs.json", b"[]")
        for conv, stream in _files_per_conversation(world):
            day: str | None = None
            day_number = -1
            batch: list[dict[str, Any]] = []
            for msg in stream:
                if msg.ms // DAY_MS != day_number:
                    if batch:
                        _put(zf, f"{conv.name}/{day}.json", _dump_array(batch))
                    day_number, batch = msg.ms // DAY_MS, []
                    day = datetime.fromtimestamp(day_number * 86_400, UTC).strftime("%Y-%m-%d")
                batch.append(_slack_message(msg, world))
                written += 1
            if batch:
                _put(zf, f"{conv.name}/{day}.json", _dump_array(batch))
    return written


# -- Mattermost bulk export (zip: export.jsonl + data/) ---------------------------------------------------

def _mm_text(parts: list[tuple[Any, ...]], world: World) -> str:
    out = []
    for part in parts:
        tag = part[0]
        if tag in ("w", "cjk", "emoji", "amp"):
            out.append(part[1])
        elif tag == "mention":
            out.append("@" + world.users[part[1]].username)
        elif tag == "channel":
            conv = world.conversations[part[1]]
            out.append("~" + conv.name if conv.kind in ("public", "private") else "~town-square")
        elif tag == "link":
            out.append(f"[{part[2]}]({part[1]})" if part[2] else part[1])
        elif tag == "bold":
            out.append(f"**{part[1]}**")
        elif tag == "code":
            out.append(f"`{part[1]}`")
    return " ".join(out)


def _mm_channel_name(conv: Conversation) -> str:
    return "town-square" if conv.index == 0 else "off-topic" if conv.index == 1 else conv.name


class _MattermostWriter:
    def __init__(self, world: World, zf: zipfile.ZipFile) -> None:
        self.world = world
        self.zf = zf

    def _attachment(self, f: tuple[str, str, str, str, int], msg: Msg) -> dict[str, str]:
        conv = self.world.conversations[msg.conv]
        author = self.world.users[msg.author]
        day = datetime.fromtimestamp(msg.ms // 1000, UTC).strftime("%Y%m%d")
        team = "noteam" if conv.kind in ("direct", "group") else self.world.team_names[conv.team]
        path = f"{day}/teams/{team}/channels/{conv.meteor_id or conv.slack_id}/users/{author.meteor_id}/{f[0]}/{f[1]}"
        # Small deterministic bytes: the benchmark measures reading and hashing them, not disk space.
        body = (f"{f[1]} {msg.conv}:{msg.seq}\n".encode() * (f[4] // 32 + 1))[:f[4]]
        _put(self.zf, f"data/{path}", body)
        return {"path": path}

    def post_fields(self, msg: Msg, reply: bool = False) -> dict[str, Any]:
        world = self.world
        author = world.users[msg.author]
        post: dict[str, Any] = {"user": author.username, "type": "", "message": _mm_text(msg.parts, world),
                                "props": {}, "create_at": msg.ms,
                                "edit_at": msg.edited_ms or 0, "flagged_by": [], "is_pinned": msg.pinned}
        if msg.kind == "join":
            post["type"] = "system_join_channel"
            post["message"] = f"{author.username} joined the channel."
            post["props"] = {"username": author.username}
        elif msg.kind == "me":
            post["type"] = "me"
        elif msg.kind == "bot":
            post["props"] = {"from_bot": "true", "override_username": author.username}
            if msg.seq % 4 == 0:
                post["props"]["attachments"] = [{"fallback": "Build #1234 passed", "color": "#36a64f",
                                                 "title": "Build passed", "text": "All 812 tests green"}]
        post["reactions"] = [{"user": world.users[u].username, "emoji_name": name.split("::")[0],
                              "create_at": msg.ms + 1000 + j} for name, who in msg.reactions
                             for j, u in enumerate(who)] or None
        post["attachments"] = [self._attachment(f, msg) for f in msg.files] or None
        if not reply:
            # Exported replies come unsorted (formats.md §2.3): reverse them to keep readers honest.
            post["replies"] = [self.post_fields(r, reply=True) for r in reversed(msg.replies)] or None
        return post


def write_mattermost(world: World, out: Path) -> int:
    """A zip as `mmctl export create` writes it: JSONL in the mandatory line order, attachment bytes
    under data/. The JSONL is spooled to a temporary file (zipfile writes one member at a time) and
    goes into the zip last."""
    written = 0
    users = world.users
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
            tempfile.TemporaryFile() as spool:
        writer = _MattermostWriter(world, zf)

        def line(kind: str, body: dict[str, Any]) -> None:
            spool.write(orjson.dumps({"type": kind, kind: body}) + b"\n")

        spool.write(orjson.dumps({"type": "version", "version": 1, "info": {
            "generator": "mattermost-server", "version": "9.11.0 (bench)", "created": "2025-06-01T00:00:00Z"}}) + b"\n")
        for t, name in enumerate(world.team_names):
            line("team", {"name": name, "display_name": name.title() + (" 株式会社" if t else " Inc."),
                          "type": "O" if t == 0 else "I", "description": "", "allow_open_invite": t == 0})
        channels = [c for c in world.conversations if c.kind in ("public", "private")]
        for conv in channels:
            line("channel", {"team": world.team_names[conv.team], "name": _mm_channel_name(conv),
                             "display_name": conv.name.replace("-", " ").title()[:64],
                             "type": "O" if conv.kind == "public" else "P",
                             "header": "Release train & hotfixes" if conv.index % 5 == 0 else "",
                             "purpose": f"Talk about {conv.name}"})
        memberships: dict[int, list[Conversation]] = {}
        for conv in channels:
            for m in conv.members:
                memberships.setdefault(m, []).append(conv)
        for u in users:
            if u.bot:
                continue
            teams = []
            for t, team in enumerate(world.team_names):
                mine = [c for c in memberships.get(u.index, ()) if c.team == t]
                if mine or t == 0:
                    teams.append({"name": team, "roles": "team_user", "channels": [
                        {"name": _mm_channel_name(c), "roles": "channel_user", "favorite": False} for c in mine]})
            line("user", {"username": u.username, "email": u.email, "auth_service": "", "nickname": "",
                          "first_name": u.first, "last_name": u.last, "position": "Engineer",
                          "roles": "system_admin system_user" if u.admin else "system_user", "locale": "en",
                          "delete_at": 1_650_000_000_000 if u.deleted else 0, "teams": teams})
        for u in users:
            if u.bot:
                line("bot", {"username": u.username, "display_name": u.display_name, "description": "CI bot",
                             "owner": users[0].username, "delete_at": 0})
        for conv, stream in _files_per_conversation(world):
            if conv.kind not in ("public", "private"):
                continue
            for msg in stream:
                written += 1
                if msg.root is None:
                    post = writer.post_fields(msg)
                    post = {"team": world.team_names[conv.team], "channel": _mm_channel_name(conv), **post}
                    line("post", post)
        for conv in world.conversations:
            if conv.kind in ("direct", "group"):
                line("direct_channel", {"participants": [{"username": users[m].username} for m in conv.members],
                                        "shown_by": [], "header": ""})
        for conv, stream in _files_per_conversation(world):
            if conv.kind not in ("direct", "group"):
                continue
            members = [users[m].username for m in conv.members]
            for msg in stream:
                written += 1
                if msg.root is None:
                    line("direct_post", {"channel_members": members, **writer.post_fields(msg)})
        spool.flush()
        spool.seek(0)
        with zf.open(_member("export.jsonl"), "w", force_zip64=True) as member:
            shutil.copyfileobj(spool, member, 1 << 20)
    return written


# -- Rocket.Chat mongodump (folder of .bson) ---------------------------------------------------------------

def _rc_text(parts: list[tuple[Any, ...]], world: World) -> str:
    out = []
    for part in parts:
        tag = part[0]
        if tag in ("w", "cjk", "emoji", "amp"):
            out.append(part[1])
        elif tag == "mention":
            out.append("@" + world.users[part[1]].username)
        elif tag == "channel":
            out.append("#" + world.conversations[part[1]].name)
        elif tag == "link":
            out.append(f"[{part[2]}]({part[1]})" if part[2] else part[1])
        elif tag == "bold":
            out.append(f"*{part[1]}*")
        elif tag == "code":
            out.append(f"`{part[1]}`")
    return " ".join(out)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(microsecond=(ms % 1000) * 1000)


def _rc_user_ref(u: User) -> dict[str, str]:
    return {"_id": u.meteor_id, "username": u.username, "name": u.display_name}


def _rc_message(msg: Msg, world: World, uploads: list[dict[str, Any]]) -> dict[str, Any]:
    conv = world.conversations[msg.conv]
    author = world.users[msg.author]
    ts = _dt(msg.ms)
    doc: dict[str, Any] = {"_id": msg.meteor_id, "rid": conv.meteor_id, "msg": "", "ts": ts,
                           "u": _rc_user_ref(author), "_updatedAt": _dt(msg.edited_ms or msg.ms)}
    if msg.kind == "join":
        doc["t"] = "uj"
        doc["msg"] = author.username
        doc["groupable"] = False
        return doc
    doc["msg"] = _rc_text(msg.parts, world)
    mentions = [world.users[p[1]] for p in msg.parts if p[0] == "mention"]
    doc["mentions"] = [_rc_user_ref(u) for u in mentions]
    doc["channels"] = [{"_id": world.conversations[p[1]].meteor_id, "name": world.conversations[p[1]].name}
                       for p in msg.parts if p[0] == "channel"]
    doc["urls"] = [{"url": p[1]} for p in msg.parts if p[0] == "link"]
    doc["md"] = [{"type": "PARAGRAPH", "value": [{"type": "PLAIN_TEXT", "value": doc["msg"]}]}]
    if msg.kind == "bot":
        doc["bot"] = {"i": "integration-" + author.meteor_id[:6]}
        doc["alias"] = author.display_name
    elif msg.kind == "me":
        doc["msg"] = "_" + doc["msg"] + "_"
    if msg.edited_ms is not None:
        doc["editedAt"] = _dt(msg.edited_ms)
        doc["editedBy"] = {"_id": author.meteor_id, "username": author.username}
    if msg.root is not None:
        doc["tmid"] = msg.root.meteor_id
        if msg.seq % 10 == 0:
            doc["tshow"] = True
    elif msg.replies:
        doc["tcount"] = len(msg.replies)
        doc["tlm"] = _dt(msg.replies[-1].ms)
        doc["replies"] = list(dict.fromkeys(world.users[r.author].meteor_id for r in msg.replies))
    if msg.reactions:
        doc["reactions"] = {f":{name.split('::')[0]}:": {"usernames": [world.users[u].username for u in who]}
                            for name, who in msg.reactions}
    if msg.files:
        files = []
        for f in msg.files:
            file_id, name, mime, _filetype, size = f
            files.append({"_id": file_id, "name": name, "type": mime, "size": size,
                          "typeGroup": mime.split("/")[0]})
            uploads.append({"_id": file_id, "name": name, "size": size, "type": mime, "rid": conv.meteor_id,
                            "userId": author.meteor_id, "store": "FileSystem:Uploads", "complete": True,
                            "uploading": False, "extension": name.rsplit(".", 1)[-1], "progress": 1,
                            "uploadedAt": ts, "path": f"/file-upload/{file_id}/{name}",
                            "url": f"/file-upload/{file_id}/{name}", "typeGroup": mime.split("/")[0]})
        doc["file"] = {"_id": files[0]["_id"], "name": files[0]["name"], "type": files[0]["type"]}
        doc["files"] = files
        doc["attachments"] = [{"type": "file", "title": f["name"], "title_link": f"/file-upload/{f['_id']}/"
                               f"{f['name']}", "title_link_download": True} for f in files]
    if msg.pinned:
        doc["pinned"] = True
        doc["pinnedAt"] = ts
        doc["pinnedBy"] = {"_id": author.meteor_id, "username": author.username}
    return doc


def _rc_metadata(collection: str) -> bytes:
    return orjson.dumps({"indexes": [{"v": 2, "key": {"_id": 1}, "name": "_id_"}], "uuid": "",
                         "collectionName": collection, "type": "collection"})


def write_rocketchat(world: World, out: Path) -> int:
    """`mongodump --db rocketchat --out OUT`: OUT/rocketchat/<collection>.bson (+ .metadata.json).

    Messages are written in time order across all rooms (a merge of every room's timeline), the
    insertion order a real server's dump has, so an extractor must regroup them by room."""
    import bson  # pymongo's; imported here so the other forms do not need it

    db = out / "rocketchat"
    db.mkdir(parents=True, exist_ok=True)
    users = world.users
    n = 0

    def collection(name: str, docs: Any) -> int:
        count = 0
        with open(db / f"{name}.bson", "wb") as handle:
            for doc in docs:
                handle.write(bson.encode(doc))
                count += 1
        (db / f"{name}.metadata.json").write_bytes(_rc_metadata(name))
        return count

    deleted = {u.index for u in users if u.deleted}
    created = _dt(EPOCH_MS - DAY_MS)

    def user_docs() -> Iterator[dict[str, Any]]:
        yield {"_id": "rocket.cat", "createdAt": created, "avatarOrigin": "local", "name": "Rocket.Cat",
               "username": "rocket.cat", "status": "online", "statusDefault": "online", "utcOffset": 0,
               "active": True, "type": "bot", "roles": ["bot"], "_updatedAt": created}
        for u in users:
            if u.index in deleted:  # deleted users vanish from `users` but stay on their messages
                continue
            yield {"_id": u.meteor_id, "createdAt": created,
                   "services": {"password": {"bcrypt": "$2b$10$" + "x" * 53},
                                "resume": {"loginTokens": [{"when": created, "hashedToken": "h" * 43}]}},
                   "username": u.username, "emails": [{"address": u.email, "verified": True}],
                   "type": "bot" if u.bot else "user", "status": "offline", "active": True,
                   "_updatedAt": created, "roles": ["admin"] if u.admin else ["bot"] if u.bot else ["user"],
                   "name": u.display_name, "utcOffset": 1, "requirePasswordChange": False, "settings": {}}

    collection("users", user_docs())
    room_t = {"public": "c", "private": "p", "direct": "d", "group": "d"}

    def room_docs() -> Iterator[dict[str, Any]]:
        for conv in world.conversations:
            doc: dict[str, Any] = {"_id": conv.meteor_id, "t": room_t[conv.kind], "ts": _dt(conv.start_ms - 3600_000),
                                   "msgs": conv.messages, "usersCount": len(conv.members),
                                   "_updatedAt": _dt(conv.start_ms + conv.span_ms)}
            if conv.kind in ("public", "private"):
                creator = users[conv.members[0]]
                doc.update({"name": conv.name, "fname": conv.name.replace("-", " ").title(),
                            "u": {"_id": creator.meteor_id, "username": creator.username},
                            "topic": "Release train & hotfixes" if conv.index % 5 == 0 else "",
                            "description": f"Talk about {conv.name}", "default": conv.index == 0,
                            "ro": False, "sysMes": True})
                if conv.index % 37 == 36:
                    doc["archived"] = True
            else:
                doc["uids"] = [users[m].meteor_id for m in conv.members]
                doc["usernames"] = [users[m].username for m in conv.members]
            yield doc

    collection("rocketchat_room", room_docs())

    def subscription_docs() -> Iterator[dict[str, Any]]:
        for conv in world.conversations:
            for m in conv.members:
                u = users[m]
                yield {"_id": f"{conv.meteor_id[:9]}{u.meteor_id[:8]}", "rid": conv.meteor_id,
                       "u": {"_id": u.meteor_id, "username": u.username}, "name": conv.name, "t": room_t[conv.kind],
                       "ts": _dt(conv.start_ms), "open": True, "alert": False, "unread": 0, "userMentions": 0,
                       "groupMentions": 0, "roles": ["owner"] if m == conv.members[0] else []}

    collection("rocketchat_subscription", subscription_docs())
    uploads: list[dict[str, Any]] = []
    streams = [iter(stream) for _conv, stream in _files_per_conversation(world)]
    merged = heapq.merge(*streams, key=lambda m: (m.ms, m.conv, m.seq))
    with open(db / "rocketchat_message.bson", "wb") as messages, \
            open(db / "rocketchat_uploads.bson", "wb") as upload_file:
        for msg in merged:
            messages.write(bson.encode(_rc_message(msg, world, uploads)))
            n += 1
            for upload in uploads:
                upload_file.write(bson.encode(upload))
            uploads.clear()
    (db / "rocketchat_message.metadata.json").write_bytes(_rc_metadata("rocketchat_message"))
    (db / "rocketchat_uploads.metadata.json").write_bytes(_rc_metadata("rocketchat_uploads"))
    for empty in ("rocketchat__trash", "rocketchat_custom_emoji"):
        collection(empty, ())
    return n


WRITERS = {"slack": write_slack, "mattermost": write_mattermost, "rocketchat": write_rocketchat}


def default_name(form: str, messages: int, seed: int) -> str:
    """File or folder name of a generated export (what run.py caches under benchmarks/data/)."""
    suffix = {"slack": ".zip", "mattermost": ".zip", "rocketchat": ""}[form]
    return f"{form}-{messages}-s{seed}{suffix}"


def generate(form: str, messages: int, seed: int, out: Path) -> int:
    """Write the export to `out` (a zip for slack/mattermost, a dump folder for rocketchat), via a
    temporary name so an interrupted run never leaves a half export that looks complete."""
    if form not in WRITERS:
        raise SystemExit(f"--form must be one of {', '.join(FORMS)}")
    if messages < 1:
        raise SystemExit("--messages must be at least 1")
    world = build_world(messages, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    if partial.is_dir():
        shutil.rmtree(partial)
    elif partial.exists():
        partial.unlink()
    written = WRITERS[form](world, partial)
    if written != messages:
        raise AssertionError(f"wrote {written} messages, expected {messages}: generator bug")
    if out.is_dir():
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    partial.rename(out)
    return written


def parse_count(text: str) -> int:
    """1000000, 1_000_000, 1e6, 1M, 300k."""
    t = text.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if scale > 1 else t) * scale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--form", required=True, choices=FORMS)
    parser.add_argument("--messages", type=parse_count, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="output zip (slack, mattermost) or dump folder (rocketchat)")
    args = parser.parse_args(argv)
    out = args.out or Path(__file__).parent / "data" / default_name(args.form, args.messages, args.seed)
    started = time.perf_counter()
    written = generate(args.form, args.messages, args.seed, out)
    seconds = time.perf_counter() - started
    print(f"{out}: {written:,} {args.form} messages in {seconds:.1f} s ({written / seconds:,.0f}/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
