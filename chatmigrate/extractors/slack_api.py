"""A live Slack workspace through the Web API (`--from slack-api`), with a bot or user token.

Location: the Web API's base URL, `https://slack.com/api` (an Enterprise or proxy URL works the same).
The token comes from the environment: CHATMIGRATE_SLACK_TOKEN, or the variable `-o token_env=VAR` names
(in a sync config, `token_env = "VAR"`). It is sent only as the `Authorization: Bearer` header and is
masked in every message. Scopes: channels:history, groups:history, im:history, mpim:history,
channels:read, groups:read, im:read, mpim:read, users:read, users:read.email, emoji:read, files:read.

Methods: auth.test (the workspace id, the scope of every id), users.list, conversations.list (public,
private, im, mpim; archived ones too), conversations.members, emoji.list, conversations.history and
conversations.replies (cursor paging through `response_metadata.next_cursor`, `oldest` for syncs), and
files.info for file objects Slack hides behind `file_access: check_file_info`. Rate limits: a 429 is
retried after its `Retry-After` (bounded by `max_wait`, see _http.HttpClient); errors come back as
`{"ok": false, "error": …}`: invalid_auth and other refused tokens are one-line usage errors,
not_in_channel / channel_not_found skip that conversation's history (counted, with the reason).

Identity: the objects are those of an export (users.json, channels.json, day files hold what these methods
answer), converted by the same code (_slack.py): the **same ids** as slack-export, so a migrate from an
export followed by syncs from the API meets the same rows. Differences, by nature of the forms: the API
lists custom emoji (an export has none); an export made with slack-advanced-exporter holds file bytes
(`__uploads/`), the API links to them (fetched with `-o download=true -o files_dir=DIR`, same token).

Sync (capabilities incremental + rewind): a channel's cursor is the newest `ts` read in it. With a cursor,
conversations.history is read from `oldest` = cursor - `thread_lookback_days` (default 7), and what is newer
than the cursor comes out: new messages and replies, messages edited since (`edited.ts`), new replies to
older threads (their root's `latest_reply`), and thread roots deleted since (Slack keeps them as
`tombstone`, which updates the row to deleted). Sync's overlap window rewinds the cursor first, so what
changed near it is read again. Not seen by the Web API: a message without replies deleted since (Slack
reports those only to Events API subscribers; the row stays), and edits older than the lookback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import IO, Any, ClassVar
from urllib.parse import urlsplit

from chatmigrate.errors import InputError, UsageError
from chatmigrate.extractors._download_options import DOWNLOAD_OPTIONS
from chatmigrate.extractors._http import HttpClient
from chatmigrate.extractors._slack import (
    SOURCE,
    Conversation,
    SlackConverter,
    linked_only,
    parse_ts,
    ts_key,
    ts_text,
)
from chatmigrate.extractors.contract import Capabilities, Option, Source
from chatmigrate.files import Downloads
from chatmigrate.model import Channel, ChannelKind, Checkpoint, Emoji, File, Item, Message, Origin, Skipped, Team

TOKEN_ENV = "CHATMIGRATE_SLACK_TOKEN"
DEFAULT_LOOKBACK_DAYS = 7.0
# Errors that mean the token is wrong or lacks a right: nothing else will work either.
_REFUSED = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission",
            "missing_scope", "not_allowed_token_type", "ekm_access_denied"}
# Errors that close one conversation's history to this token; the others can still be read.
_CLOSED = {"not_in_channel", "channel_not_found", "access_denied", "is_archived_not_joined"}
_CONVERSATION_TYPES = "public_channel,private_channel,mpim,im"
# How often an `ok: false, error: ratelimited` body (a 429 is retried by HttpClient) is retried.
_RATELIMITED_RETRIES = 5


class SlackHistoryClosed(Exception):
    """A conversation whose history this token may not read (not_in_channel, channel_not_found)."""


class SlackApi(Source):
    """Reads a Slack workspace through the Web API (see the module docstring)."""

    name: ClassVar[str] = "slack-api"
    source: ClassVar[str] = SOURCE
    known_options: ClassVar[dict[str, Option]] = {
        "token": Option(f"bot or user token (better: ${TOKEN_ENV}, or token_env)"),
        "token_env": Option(f"name of the environment variable holding the token (default {TOKEN_ENV})"),
        "scope": Option("workspace the ids are scoped to (default: the team id auth.test gives)"),
        "page_size": Option("items per API page (Slack advises at most 200)", int, 1, 1000),
        "thread_lookback_days": Option("how far back a sync looks for edits and new replies to older threads, "
                                       "in days", float, 0),
        "max_wait": Option("longest wait for a rate-limited server, in seconds", float, 0),
        # File bytes (url_private on files.slack.com) are fetched with the same token.
        **{k: v for k, v in DOWNLOAD_OPTIONS.items() if k != "token_env"},
    }
    capabilities: ClassVar[Capabilities] = Capabilities(incremental=True, rewind=True, files=True)

    @classmethod
    def detect(cls, location: str) -> bool:
        """Only Slack's own API URLs (slack.com/api, <workspace>.slack.com/api); nothing is read."""
        parts = urlsplit(location)
        host = (parts.hostname or "").lower()
        return (parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com"))
                and parts.path.rstrip("/").endswith("/api"))

    def __init__(self, location: str, options: Mapping[str, str] | None = None) -> None:
        super().__init__(location, options)
        parts = urlsplit(location)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"{location}: slack-api reads the Web API: give its URL, https://slack.com/api")
        self.base_url = location.rstrip("/")
        variable = self.option("token_env", TOKEN_ENV)
        token = self.option("token") or os.environ.get(variable)
        if not token:
            raise UsageError(f"slack-api needs a bot or user token: set {variable} (or name the variable holding "
                             "it with -o token_env=VAR)")
        self.page_size = self.option("page_size", 200)
        self.lookback = timedelta(days=self.option("thread_lookback_days", DEFAULT_LOOKBACK_DAYS))
        self.http = HttpClient(self.base_url, headers={"Authorization": f"Bearer {token}"}, secrets=[token],
                               max_wait=self.option("max_wait", 120.0))
        self._scope: str | None = self.option("scope")
        self.downloads = Downloads(self.options, ["files.slack.com"], self.base_url, token=token, announce=False)

    # -- the wire ------------------------------------------------------------------------------
    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One Web API call: its answer when `ok`, else the error as the contract wants it."""
        for _attempt in range(_RATELIMITED_RETRIES + 1):
            response = self.http.get(f"/{method}", params)
            try:
                body = response.json()
            except ValueError:
                raise InputError(self.http.hide(f"{self.base_url}/{method}: the answer is not JSON; is this the "
                                                "Slack Web API URL (https://slack.com/api)?")) from None
            if not isinstance(body, dict):
                raise InputError(self.http.hide(f"{self.base_url}/{method}: not a Web API answer"))
            if body.get("ok") is True:
                return body
            error = str(body.get("error") or "unknown_error")
            if error == "ratelimited":
                self.http.wait(float(response.headers.get("Retry-After") or 1))
                continue
            if error in _REFUSED:
                raise UsageError(self.http.hide(f"{self.base_url}/{method}: Slack refused the token ({error}); "
                                                f"check the token and its scopes"))
            if error in _CLOSED:
                raise SlackHistoryClosed(error)
            raise InputError(self.http.hide(f"{self.base_url}/{method}: Slack answered {error}"))
        raise InputError(f"{self.base_url}/{method}: still rate limited after {_RATELIMITED_RETRIES} retries")

    def pages(self, method: str, key: str, **params: Any) -> Iterator[tuple[int, Any]]:
        """(index, element) of list `key` over every cursor page of `method`."""
        cursor = ""
        index = 0
        for _page in range(1_000_000):
            body = self.call(method, limit=self.page_size, **params, **({"cursor": cursor} if cursor else {}))
            items = body.get(key)
            if not isinstance(items, list):
                raise InputError(self.http.hide(f"{self.base_url}/{method}: the answer has no {key!r} list"))
            for item in items:
                yield index, item
                index += 1
            metadata = body.get("response_metadata")
            cursor = metadata.get("next_cursor") if isinstance(metadata, dict) else ""
            if not cursor or not items:
                return
        raise InputError(f"{self.base_url}/{method}: the server kept returning pages; stopping")

    def _origin(self, method: str, index: int | None = None, **params: str) -> Origin:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return Origin(f"{self.base_url}/{method}" + (f"?{query}" if query else ""), index)

    # -- identity ------------------------------------------------------------------------------
    @property
    def scope(self) -> str:
        """The workspace id auth.test gives (the export form takes the team most users belong to)."""
        if self._scope is None:
            team = self.call("auth.test").get("team_id")
            self._scope = str(team) if team else "slack"
        return self._scope

    def rewind(self, cursor: str, seconds: float) -> str:
        """The `ts` cursor `seconds` earlier (sync's overlap window); other text unchanged."""
        when = parse_ts(cursor)
        if when is None:
            return cursor
        return ts_text(max(when - timedelta(seconds=seconds), parse_ts("0") or when))

    # -- the stream ----------------------------------------------------------------------------
    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]:
        self.call("auth.test")  # fails early and clearly on a refused token
        convert = SlackConverter(self.scope, linked_only)
        yield Team(convert.id("team", self.scope), SOURCE, self.scope, self.scope, origin=self._origin("auth.test"))
        for index, raw in self.pages("users.list", "members"):
            yield convert.user(raw, self._origin("users.list", index))
        conversations = yield from self._conversations(convert)
        yield from self._emoji(convert)
        yield from self.downloads.stage(self._messages(convert, conversations, since or {}),
                                        lambda file: file.source_url)

    def open_file(self, file: File) -> IO[bytes] | None:
        """The bytes of a file downloaded into the store (-o download=true), else None."""
        return self.downloads.open(file)

    def _conversations(self, convert: SlackConverter) -> Iterator[Item]:
        found: list[Conversation] = []
        for index, raw in self.pages("conversations.list", "channels", types=_CONVERSATION_TYPES,
                                     exclude_archived="false"):
            if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                raw = self._with_members(raw)
            channel = convert.channel(raw, _kind(raw), self._origin("conversations.list", index))
            yield channel
            if isinstance(channel, Channel):
                found.append(Conversation(channel.id, channel.source_id, channel.name))
        return found

    def _with_members(self, raw: dict[str, Any]) -> dict[str, Any]:
        """A conversations.list object as an export lists it: with its members (conversations.members),
        and without an im's `user`, which names the other party, not a creator."""
        raw = {k: v for k, v in raw.items() if not (k == "user" and raw.get("is_im"))}
        if "members" not in raw:
            raw["members"] = [m for _, m in self.pages("conversations.members", "members", channel=raw["id"])]
        return raw

    def _emoji(self, convert: SlackConverter) -> Iterator[Item]:
        """Custom emoji: one record per image, its aliases (`alias:name` entries) in props.aliases."""
        emoji = self.call("emoji.list").get("emoji")
        emoji = emoji if isinstance(emoji, dict) else {}
        aliases: dict[str, list[str]] = {}
        for name, value in emoji.items():
            if isinstance(value, str) and value.startswith("alias:"):
                aliases.setdefault(value.removeprefix("alias:"), []).append(name)
        for name, url in sorted(emoji.items()):
            if not isinstance(url, str) or url.startswith("alias:"):
                continue
            extension = url.rsplit(".", 1)[-1] if "." in url.rsplit("/", 1)[-1] else "png"
            image = File(convert.id("file", f"emoji:{name}"), SOURCE, f"emoji:{name}", f"{name}.{extension}",
                         source_url=url)
            props = {"aliases": sorted(aliases[name])} if name in aliases else {}
            yield Emoji(convert.id("emoji", name), SOURCE, name, name, file=image, props=props,
                        origin=self._origin("emoji.list"))

    # -- messages ------------------------------------------------------------------------------
    def _messages(self, convert: SlackConverter, conversations: list[Conversation],
                  since: Mapping[str, str]) -> Iterator[Item]:
        for conversation in conversations:
            cursor = since.get(conversation.channel_id) or ""
            try:
                raws = self._history(conversation, cursor)
            except SlackHistoryClosed as closed:
                yield Skipped("channel_history", f"the history of {conversation.name!r} cannot be read with this "
                              f"token ({closed}): invite the app to it, or use a user token that is a member",
                              {"channel": conversation.native_id}, self._origin("conversations.history",
                                                                               channel=conversation.native_id))
                continue
            newest = cursor
            for origin, raw in raws:
                for item in convert.message(raw, conversation, origin):
                    yield item
                    if isinstance(item, Message):
                        newest = max(newest, raw["ts"], key=ts_key) if newest else raw["ts"]
            yield Checkpoint(SOURCE, self.scope, conversation.channel_id, newest)

    def _history(self, conversation: Conversation, cursor: str) -> list[tuple[Origin, Any]]:
        """A conversation's messages to emit, ascending by ts: all of them, or with a cursor what changed
        after it. One conversation is held at a time (the contract's O(largest channel))."""
        after = parse_ts(cursor)
        params: dict[str, str] = {"channel": conversation.native_id}
        if after is not None:
            params["oldest"] = ts_text(max(after - self.lookback, parse_ts("0") or after))
        picked: dict[str, tuple[Origin, Any]] = {}
        for index, raw in self.pages("conversations.history", "messages", **params):
            if not isinstance(raw, dict) or not isinstance(raw.get("ts"), str):
                picked[f"?{index}"] = (self._origin("conversations.history", index, **params), raw)
                continue
            if cursor == "" or _changed_after(raw, cursor):
                picked[raw["ts"]] = (self._origin("conversations.history", index, **params), self._file_infos(raw))
            if _has_replies(raw) and (cursor == "" or ts_key(raw.get("latest_reply")) > ts_key(cursor)
                                      or raw["ts"] in picked):
                self._replies(conversation, raw["ts"], cursor, picked)
        return [picked[ts] for ts in sorted(picked, key=ts_key)]

    def _replies(self, conversation: Conversation, root_ts: str, cursor: str,
                 picked: dict[str, tuple[Origin, Any]]) -> None:
        params = {"channel": conversation.native_id, "ts": root_ts}
        for index, raw in self.pages("conversations.replies", "messages", **params):
            ts = raw.get("ts") if isinstance(raw, dict) else None
            # The first answer is the root itself; a broadcast reply is in the history too.
            if not isinstance(ts, str) or ts == root_ts or ts in picked:
                continue
            if cursor == "" or _changed_after(raw, cursor):
                picked[ts] = (self._origin("conversations.replies", index, **params), self._file_infos(raw))

    def _file_infos(self, raw: dict[str, Any]) -> dict[str, Any]:
        """A message whose files Slack hides (`file_access: check_file_info`) with their files.info metadata."""
        files = raw.get("files")
        if not isinstance(files, list) or not any(isinstance(f, dict) and f.get("file_access") == "check_file_info"
                                                  for f in files):
            return raw
        shown = [self.call("files.info", file=f["id"]).get("file") or f
                 if isinstance(f, dict) and f.get("file_access") == "check_file_info" else f for f in files]
        return {**raw, "files": shown}


def _kind(raw: Any) -> ChannelKind:
    if not isinstance(raw, dict):
        return "public"
    if raw.get("is_im"):
        return "direct"
    if raw.get("is_mpim"):
        return "group"
    return "private" if raw.get("is_private") or raw.get("is_group") else "public"


def _has_replies(raw: Mapping[str, Any]) -> bool:
    return raw.get("thread_ts") == raw.get("ts") and bool(raw.get("reply_count") or raw.get("latest_reply"))


def _changed_after(raw: Mapping[str, Any], cursor: str) -> bool:
    """Posted or edited after `cursor`, or a thread root deleted (a tombstone: the deletion is news)."""
    edited = raw.get("edited") if isinstance(raw.get("edited"), dict) else {}
    return (ts_key(raw.get("ts")) > ts_key(cursor) or ts_key(edited.get("ts")) > ts_key(cursor)
            or raw.get("subtype") == "tombstone")
