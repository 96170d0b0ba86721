"""A live Mattermost server through REST API v4, with a personal access token.

Location: the server's base URL (`https://chat.example.com`). Options: `token` (or the environment
variable CHATMIGRATE_MATTERMOST_TOKEN), `scope` (default "mattermost", as for the export form: give
both forms the same scope and they produce the same ids), `per_page` (1-200, default 200).
The token's user must be a system admin (or hold manage_system) to list every user's channels,
including DMs and group messages, which only `/users/{id}/channels` reveals (one request per user).

Identity: the native keys of _mattermost.py (shared with the export form), computed from names, never from server ids: a
post's key is its channel, author and create_at (a reply's, its root's key, author and create_at), and
posts sharing a key are numbered in post-id order, the order the bulk exporter writes them in. So a
first load from an export and later syncs through the API meet on the same ids.

Reads, per channel: every post page by page (`page`/`per_page`, newest first), or, with a cursor for
the channel in `since`, only what changed after it (`?since=<ms>`; Mattermost caps that answer at
1000 posts, so a full answer falls back to paging the whole channel). Replies whose root is not in
the answer are completed with `GET /posts/{id}`. Reactions and file infos come from each post's
`metadata`, or from `/posts/{id}/reactions` and `/files/{id}/info` when a server leaves them out.
File bytes are not downloaded: files carry their API URL, name, type and size. Limits: posts flagged
by users are per-user preferences the API does not list per post, so `flagged_by` is export-only;
in `since` mode a post whose key twin did not change may be numbered as if it had none.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import IO, Any, ClassVar
from urllib.parse import urlparse

from chatmigrate.errors import InputError, UsageError
from chatmigrate.extractors._download_options import DOWNLOAD_OPTIONS
from chatmigrate.extractors._fields import (
    UNREADABLE,
    ListOf,
    Spec,
    checked,
    either,
    is_bool,
    is_id,
    is_number,
    is_object,
    is_text,
)
from chatmigrate.extractors._http import HttpClient, paged
from chatmigrate.extractors._mattermost import (
    DEFAULT_SCOPE,
    SOURCE,
    Sequencer,
    attachment,
    channel_key,
    convert_reactions,
    convert_user,
    direct_names,
    emoji_file_key,
    message_kind,
    ms_to_datetime,
    name_key,
    post_key,
    stream_key,
)
from chatmigrate.extractors.contract import Capabilities, Option, Source
from chatmigrate.files import Downloads
from chatmigrate.files.download import host_of
from chatmigrate.ids import record_id
from chatmigrate.markup.mattermost import to_markdown
from chatmigrate.model import (
    Channel,
    ChannelKind,
    Checkpoint,
    Emoji,
    File,
    Item,
    Message,
    Origin,
    Reaction,
    Team,
    Unreadable,
    User,
)

TOKEN_ENV = "CHATMIGRATE_MATTERMOST_TOKEN"
MAX_PER_PAGE = 200
# GET /channels/{id}/posts?since= returns at most this many posts (server-side LIMIT).
SINCE_CAP = 1000


# The type of every field read (see _fields.py): a field of another type is left out and reported.
_MS = either(is_number, is_text)
_TEAM = Spec(id=is_id, name=is_text, display_name=is_text, description=is_text)
_USER = Spec(id=is_id, username=is_text, email=is_text, first_name=is_text, last_name=is_text, nickname=is_text,
             roles=is_text, is_bot=is_bool, delete_at=_MS, timezone=is_object, bot_description=is_text)
_CHANNEL = Spec(id=is_id, name=is_text, type=is_text, team_id=is_id, display_name=is_text, header=is_text,
                purpose=is_text, creator_id=is_id, create_at=_MS, delete_at=_MS)
_EMOJI = Spec(id=is_id, name=is_text, creator_id=is_id, create_at=_MS)
_POST = Spec(user_id=is_id, root_id=is_id, message=is_text, type=is_text, props=is_object, edit_at=_MS,
             delete_at=_MS, is_pinned=is_bool, file_ids=ListOf(is_id), has_reactions=is_bool,
             metadata=Spec(reactions=ListOf(Spec(user_id=is_id, emoji_name=is_text, create_at=_MS)),
                           files=ListOf(Spec(id=is_id, name=is_text, mime_type=is_text, size=is_number,
                                             create_at=_MS))))


def _clean(raw: Any, spec: Spec) -> Any:
    """`raw` without its fields of the wrong type, those kept under UNREADABLE (non-objects as they are)."""
    if not isinstance(raw, dict):
        return raw
    clean, bad = checked(raw, spec)
    return {**clean, UNREADABLE: bad} if bad else raw


def _is_http_url(location: str) -> bool:
    parsed = urlparse(location)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


class MattermostApi(Source):
    """Reads teams, users, channels (with DMs and groups), custom emoji and posts from API v4."""

    name: ClassVar[str] = "mattermost-api"
    source: ClassVar[str] = SOURCE
    known_options: ClassVar[dict[str, Option]] = {
        "token": Option("personal access token (better: $CHATMIGRATE_MATTERMOST_TOKEN)"),
        "scope": Option("server the ids are scoped to (default: mattermost)"),
        "per_page": Option("items per API page", int, 1, MAX_PER_PAGE),
        "max_wait": Option("longest wait for a rate-limited or unavailable server, in seconds", float, 0),
        # File bytes (GET /api/v4/files/{id}) are fetched with the same token: no token_env of their own.
        **{k: v for k, v in DOWNLOAD_OPTIONS.items() if k != "token_env"},
    }
    capabilities: ClassVar[Capabilities] = Capabilities(incremental=True, rewind=True, files=True)

    @classmethod
    def detect(cls, location: str) -> bool:
        """True only for an http(s) URL whose /api/v4/system/ping answers like Mattermost."""
        if not _is_http_url(location):
            return False
        client = HttpClient(location, timeout=5.0, max_retries=0)
        try:
            answer = client.get_json("/api/v4/system/ping")
        except Exception:  # detect never raises on a foreign input: any failure means "not Mattermost"
            return False
        return isinstance(answer, dict) and str(answer.get("status", "")).upper() == "OK"

    def __init__(self, location: str, options: Mapping[str, str] | None = None) -> None:
        if not _is_http_url(location):
            raise UsageError(f"{location}: mattermost-api reads a server: give its URL, e.g. https://chat.example.com")
        self.options = dict(options or {})
        token = self.options.get("token") or os.environ.get(TOKEN_ENV)
        if not token:
            raise UsageError(f"mattermost-api needs a personal access token: set {TOKEN_ENV} or pass "
                             "--option token=…")
        per_page = self.option("per_page", MAX_PER_PAGE)
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise UsageError(f"per_page must be between 1 and {MAX_PER_PAGE} (Mattermost's maximum)")
        self.per_page = per_page
        self.base_url = location.rstrip("/")
        self._scope = self.option("scope", DEFAULT_SCOPE)
        self.http = HttpClient(self.base_url, headers={"Authorization": f"Bearer {token}"}, secrets=[token],
                               max_wait=self.option("max_wait", 120.0))
        self._usernames: dict[str, str] = {}  # user id → username
        self._team_names: dict[str, str] = {}  # team id → name
        self._channel_keys: dict[str, str] = {}  # channel id → native key
        self._post_keys: dict[str, str] = {}  # post id → native key (roots of the current channel and fetched)
        # Attachments live on the server itself: its host is the default (and only) file host.
        self.downloads = Downloads(self.options, [host_of(self.base_url)], self.base_url, token=token,
                                   announce=False)

    @property
    def scope(self) -> str:
        return self._scope

    def rewind(self, cursor: str, seconds: float) -> str:
        """The epoch-millisecond cursor `seconds` earlier (sync's overlap window); other text unchanged."""
        try:
            return str(max(int(cursor) - round(seconds * 1000), 0))
        except ValueError:
            return cursor

    def _id(self, kind: str, native_key: str) -> str:
        return record_id(SOURCE, self.scope, kind, native_key)

    def _origin(self, path: str) -> Origin:
        return Origin(f"{self.base_url}{path}")

    def _pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        def fetch(page: int) -> list[Any]:
            answer = self.http.get_json(path, {**(params or {}), "page": page, "per_page": self.per_page})
            if not isinstance(answer, list):
                raise InputError(f"GET {self.base_url}{path}: expected a JSON list, got {type(answer).__name__}")
            return answer
        return paged(fetch, self.per_page)

    # -- the stream ---------------------------------------------------------------------------
    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]:
        self.http.get_json("/api/v4/users/me")  # fails early and clearly on a bad token
        yield from self._teams()
        users = yield from self._users()
        channels = self._channels(users)
        for raw, members in channels:
            yield self._channel(raw, members)
        yield from self._emoji()
        yield from self.downloads.stage(self._all_posts(channels, since), lambda file: file.source_url)

    def _all_posts(self, channels: list[Any], since: Mapping[str, str] | None) -> Iterator[Item]:
        for raw, _members in channels:
            yield from self._posts(raw, (since or {}).get(self._id("channel", self._channel_keys[raw["id"]])))

    def open_file(self, file: File) -> IO[bytes] | None:
        """The bytes of a file downloaded into the store (-o download=true), else None."""
        return self.downloads.open(file)

    def _teams(self) -> Iterator[Item]:
        for raw in self._pages("/api/v4/teams"):
            raw = _clean(raw, _TEAM)
            if not isinstance(raw, dict) or not raw.get("name") or not raw.get("id"):
                yield Unreadable("teams", "CM002", "team without a name", raw, self._origin("/api/v4/teams"))
                continue
            key = name_key(raw["name"])
            self._team_names[raw["id"]] = key
            props = {k: raw[k] for k in ("type", "allow_open_invite", "scheme_id", UNREADABLE)
                     if raw.get(k) not in (None, "")}
            yield Team(self._id("team", key), SOURCE, key, key, display_name=raw.get("display_name") or None,
                       description=raw.get("description") or None, props=props,
                       origin=self._origin(f"/api/v4/teams/{raw['id']}"))

    def _users(self) -> Iterator[Item]:
        """Emit every user (deactivated ones and bots included); return their ids."""
        ids: list[str] = []
        for raw in self._pages("/api/v4/users"):
            raw = _clean(raw, _USER)
            if not isinstance(raw, dict) or not raw.get("username") or not raw.get("id"):
                yield Unreadable("users", "CM002", "user without id or username", raw, self._origin("/api/v4/users"))
                continue
            key = name_key(raw["username"])
            self._usernames[raw["id"]] = key
            ids.append(raw["id"])
            yield self._user(raw, key)
        return ids

    def _user(self, raw: dict[str, Any], key: str) -> User:
        props: dict[str, Any] = {k: raw[k] for k in ("nickname", "position", "locale", "roles", "auth_service",
                                                     UNREADABLE) if raw.get(k) not in (None, "")}
        if raw.get("bot_description"):
            props["bot_description"] = raw["bot_description"]
        timezone = raw.get("timezone") if isinstance(raw.get("timezone"), dict) else {}
        zone = (timezone.get("manualTimezone") if timezone.get("useAutomaticTimezone") in ("false", False)
                else timezone.get("automaticTimezone")) or None
        return convert_user(self.scope, key, raw, is_bot=bool(raw.get("is_bot")),
                            deleted_at=ms_to_datetime(raw.get("delete_at")), props=props, timezone=zone,
                            origin=self._origin(f"/api/v4/users/{raw['id']}"))

    def _channels(self, user_ids: list[str]) -> list[tuple[dict[str, Any], list[str]]]:
        """Every channel any user is in (DMs and groups are only listed per user), with its members."""
        channels: dict[str, dict[str, Any]] = {}
        members: dict[str, list[str]] = {}
        for user_id in user_ids:
            listed = self.http.get_json(f"/api/v4/users/{user_id}/channels", {"include_deleted": "true"})
            for raw in listed if isinstance(listed, list) else ():
                raw = _clean(raw, _CHANNEL)
                if isinstance(raw, dict) and raw.get("id"):
                    channels.setdefault(raw["id"], raw)
                    members.setdefault(raw["id"], []).append(user_id)
        result: list[tuple[dict[str, Any], list[str]]] = []
        for channel_id, raw in channels.items():
            self._channel_keys[channel_id] = self._channel_names(raw, members[channel_id])[0]
            result.append((raw, members[channel_id]))
        return result

    def _username(self, user_id: str) -> str:
        """The username of a user id; one not listed by /users (rare) is fetched, else the id stands in."""
        if user_id not in self._usernames:
            try:
                answer = self.http.get_json(f"/api/v4/users/{user_id}")
                self._usernames[user_id] = name_key(answer["username"])
            except (InputError, KeyError, TypeError):
                self._usernames[user_id] = name_key(user_id)
        return self._usernames[user_id]

    def _channel_names(self, raw: dict[str, Any], member_ids: list[str]) -> tuple[str, str, str, ChannelKind]:
        """(native key, name, display name, kind): the same as the export form computes."""
        kind = raw.get("type")
        if kind in ("D", "G"):
            # A DM's name is "<user id>__<user id>" (the same id twice for a self-DM).
            dm_name = str(raw.get("name"))
            ids = dm_name.split("__") if kind == "D" and "__" in dm_name else member_ids
            names = direct_names(self._username(i) for i in ids)
            return names.key, names.name, names.display_name, names.kind
        team = self._team_names.get(raw.get("team_id") or "") or name_key(str(raw.get("team_id")))
        key = channel_key(team, str(raw.get("name")))
        return key, name_key(str(raw.get("name"))), raw.get("display_name") or raw.get("name"), (
            "private" if kind == "P" else "public")

    def _channel(self, raw: dict[str, Any], member_ids: list[str]) -> Channel:
        key, name, display, kind = self._channel_names(raw, member_ids)
        team = None if kind in ("direct", "group") else self._id("team", key.split("/", 1)[0])
        if kind in ("direct", "group"):
            members = tuple(self._id("user", u) for u in direct_names(self._username(i) for i in member_ids).usernames)
        else:
            members = tuple(dict.fromkeys(self._id("user", self._username(i)) for i in member_ids))
        creator = raw.get("creator_id")
        props = {"mm_id": raw["id"], **({UNREADABLE: raw[UNREADABLE]} if UNREADABLE in raw else {})}
        return Channel(self._id("channel", key), SOURCE, key, team, name, kind, display_name=display,
                       topic=raw.get("header") or None, purpose=raw.get("purpose") or None,
                       created_at=ms_to_datetime(raw.get("create_at")),
                       creator_id=self._id("user", self._username(creator)) if creator else None,
                       archived_at=ms_to_datetime(raw.get("delete_at")), member_ids=members, props=props,
                       origin=self._origin(f"/api/v4/channels/{raw['id']}"))

    def _emoji(self) -> Iterator[Item]:
        for raw in self._pages("/api/v4/emoji"):
            raw = _clean(raw, _EMOJI)
            if not isinstance(raw, dict) or not raw.get("name") or not raw.get("id"):
                yield Unreadable("emoji", "CM002", "emoji without id or name", raw, self._origin("/api/v4/emoji"))
                continue
            key = name_key(raw["name"])
            image = File(self._id("file", emoji_file_key(key)), SOURCE, emoji_file_key(key), "image",
                         source_url=f"{self.base_url}/api/v4/emoji/{raw['id']}/image",
                         created_at=ms_to_datetime(raw.get("create_at")))
            creator = raw.get("creator_id")
            yield Emoji(self._id("emoji", key), SOURCE, key, key,
                        creator_id=self._id("user", self._username(creator)) if creator else None, file=image,
                        props={"mm_id": raw["id"], **({UNREADABLE: raw[UNREADABLE]} if UNREADABLE in raw else {})},
                        origin=self._origin(f"/api/v4/emoji/{raw['id']}"))

    # -- posts ---------------------------------------------------------------------------------
    def _channel_posts(self, channel_id: str, cursor: str | None) -> dict[str, dict[str, Any]]:
        path = f"/api/v4/channels/{channel_id}/posts"
        if cursor:
            answer = self.http.get_json(path, {"since": cursor})
            posts = _post_list(answer, path)
            if len(posts) < SINCE_CAP:
                return posts
            # The answer was capped: some changes may be missing, so read the whole channel.
        posts = {}

        def fetch(page: int) -> list[str]:
            answer = self.http.get_json(path, {"page": page, "per_page": self.per_page})
            found = _post_list(answer, path)
            posts.update(found)
            return list(found)
        for _ in paged(fetch, self.per_page):
            pass
        return posts

    def _posts(self, raw_channel: dict[str, Any], cursor: str | None) -> Iterator[Item]:
        channel_id = raw_channel["id"]
        key = self._channel_keys[channel_id]
        answer = self._channel_posts(channel_id, cursor)
        if not answer:
            return
        self._post_keys = {}  # per channel: memory stays O(largest channel)
        posts: dict[str, dict[str, Any]] = {}
        for post_id, post in answer.items():
            post = _clean(post, _POST)
            if not post.get("user_id") or ms_to_datetime(post.get("create_at")) is None:
                yield Unreadable("messages", "CM002", "post without user_id or a positive create_at", post,
                                 self._origin(f"/api/v4/posts/{post_id}"))
            else:
                posts[post_id] = post
        # Roots first, numbered in post-id order among equal keys (the order the exporter writes).
        sequence = Sequencer()
        for post_id in sorted(pid for pid, p in posts.items() if not p.get("root_id")):
            post = posts[post_id]
            base = post_key(key, self._username(post["user_id"]), int(post["create_at"]), 0)
            self._post_keys[post_id] = post_key(key, self._username(post["user_id"]), int(post["create_at"]),
                                                sequence(base))
        reply_sequences: dict[str, Sequencer] = {}
        built: list[tuple[tuple[datetime, int, str], Message]] = []
        for post_id in sorted(posts):
            post = posts[post_id]
            origin = self._origin(f"/api/v4/posts/{post_id}")
            root_id = post.get("root_id") or None
            root_created: datetime | None = None
            if root_id is not None:
                root_key = self._root_key(root_id)
                if root_key is None:
                    yield Unreadable("messages", "CM002", f"reply to post {root_id}, which the server does not "
                                     "return", post, origin)
                    continue
                user = self._username(post["user_id"])
                numbering = reply_sequences.setdefault(root_id, Sequencer())
                base = post_key(root_key, user, int(post["create_at"]), 0)
                self._post_keys[post_id] = post_key(root_key, user, int(post["create_at"]), numbering(base))
                if root_id in posts:
                    root_created = ms_to_datetime(posts[root_id].get("create_at"))
            message = self._message(post, key, root_id, origin)
            built.append((stream_key(message, root_created), message))
        built.sort(key=lambda pair: pair[0])
        for _, message in built:
            yield message
        newest = max(max(_int(p.get("update_at")), _int(p.get("create_at")), _int(p.get("edit_at")))
                     for p in answer.values())
        yield Checkpoint(SOURCE, self.scope, self._id("channel", key), str(newest))

    def _root_key(self, root_id: str) -> str | None:
        if root_id in self._post_keys:
            return self._post_keys[root_id]
        # The root is not in this answer (since mode, or a root in another channel): ask for it.
        try:
            root = self.http.get_json(f"/api/v4/posts/{root_id}")
        except InputError:
            return None
        if not isinstance(root, dict) or not root.get("channel_id") or not root.get("user_id"):
            return None
        channel = self._channel_keys.get(root["channel_id"])
        if channel is None:
            return None
        # Numbered among its own channel's twins only if they were read; a root alone gets no suffix.
        self._post_keys[root_id] = post_key(channel, self._username(root["user_id"]), int(root["create_at"]), 0)
        return self._post_keys[root_id]

    def _message(self, post: dict[str, Any], channel: str, root_id: str | None, origin: Origin) -> Message:
        key = self._post_keys[post["id"]]
        text_source = post.get("message") if isinstance(post.get("message"), str) else ""
        text = to_markdown(text_source)
        post_type = post.get("type") or ""
        mm_props = post.get("props") if isinstance(post.get("props"), dict) else {}
        props: dict[str, Any] = {"mm_id": post["id"]}
        if UNREADABLE in post:
            props[UNREADABLE] = post[UNREADABLE]
        if mm_props:
            props["props"] = mm_props
        if post_type:
            props["type"] = post_type
        if text != text_source:
            props["source_text"] = text_source
        created = ms_to_datetime(post["create_at"])
        assert created is not None  # checked by _posts
        return Message(
            id=self._id("message", key), source=SOURCE, source_id=key, channel_id=self._id("channel", channel),
            user_id=self._id("user", self._username(post["user_id"])), created_at=created,
            kind=message_kind(post_type, mm_props), text=text,
            thread_root_id=self._id("message", self._post_keys[root_id]) if root_id else None,
            edited_at=ms_to_datetime(post.get("edit_at")),
            deleted_at=ms_to_datetime(post.get("delete_at")), is_pinned=bool(post.get("is_pinned")),
            reactions=self._reactions(post), files=self._files(post, key, created), props=props, origin=origin)

    def _reactions(self, post: dict[str, Any]) -> tuple[Reaction, ...]:
        metadata = post.get("metadata") if isinstance(post.get("metadata"), dict) else {}
        raw = metadata.get("reactions")
        if raw is None and (post.get("has_reactions") or "metadata" not in post):
            raw = self.http.get_json(f"/api/v4/posts/{post['id']}/reactions")

        def username(entry: Mapping[str, Any]) -> str | None:
            # Metadata was type-checked with the post; reactions fetched apart are checked here.
            user_id = entry.get("user_id")
            return self._username(user_id) if is_id(user_id) and user_id else None
        return convert_reactions(self.scope, raw, username)[0]

    def _files(self, post: dict[str, Any], message_key: str, created: datetime | None) -> tuple[File, ...]:
        metadata = post.get("metadata") if isinstance(post.get("metadata"), dict) else {}
        infos = metadata.get("files")
        if infos is None:
            infos = [self.http.get_json(f"/api/v4/files/{file_id}/info") for file_id in post.get("file_ids") or ()]
        files: list[File] = []
        sequence = Sequencer()
        for info in infos if isinstance(infos, list) else ():
            if not isinstance(info, dict) or not is_id(info.get("id")) or not info["id"]:
                continue
            mime = info.get("mime_type") if isinstance(info.get("mime_type"), str) else None
            files.append(attachment(self.scope, message_key, str(info.get("name") or info["id"]), sequence,
                                    mime_type=mime or None,
                                    size=info.get("size") if isinstance(info.get("size"), int) else None,
                                    source_url=f"{self.base_url}/api/v4/files/{info['id']}",
                                    created_at=ms_to_datetime(info.get("create_at")) or created,
                                    props={"mm_id": info["id"]}))
        return tuple(files)


def _post_list(answer: Any, path: str) -> dict[str, dict[str, Any]]:
    """The posts of a v4 PostList answer (`{order: [ids], posts: {id: post}}`), keyed by id."""
    if not isinstance(answer, dict) or not isinstance(answer.get("posts"), dict):
        raise InputError(f"GET {path}: not a Mattermost post list (no \"posts\" object)")
    posts = answer["posts"]
    order = answer.get("order") if isinstance(answer.get("order"), list) else list(posts)
    # Every post of the answer, in `order` first; a post missing from `order` is still kept.
    ids = [*dict.fromkeys([*order, *posts])]
    return {pid: {**posts[pid], "id": pid} if isinstance(posts.get(pid), dict) else {"id": pid, "raw": posts.get(pid)}
            for pid in ids if pid in posts}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
