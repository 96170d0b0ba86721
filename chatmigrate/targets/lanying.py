"""Target `lanying://API_HOST?app_id=APP`: any source replayed into 蓝莺IM (Lanying IM) through its
documented server API (research/targets.md §D), with the app's admin token from the environment.

蓝莺IM has no export format and no history import: the only way in is to register the users, create
the groups and send every message again, in order, as its author. The API cannot set a message's time,
thread, reactions or edit time: they travel in the message's `ext` as JSON (README "Into 蓝莺IM").

The records go first into a hub, the `cm_` tables in a SQLite file (`./lanying-HOST-APP.hub.db`, or
`?hub=URL`), with file bytes copied into a content-addressed store beside it, exactly as they pass
(cursors are saved there, with their data). After the last record the hub is replayed into 蓝莺IM
(complete()): users, conversations, then each conversation's history, with a ledger in the same hub
(targets/_lanying_ledger.py) that makes every creation and every message part happen once, across
re-runs and crashes. What the ledger holds is what 蓝莺IM holds; what the hub holds and the ledger
lacks is what the next run sends.

URL: `lanying://HOST[:PORT][/PREFIX]` (HTTPS) or `lanying+http://…` (plain HTTP, a private deployment
on a LAN, or the tests' loopback server). Query options: `app_id` (required), `token_env` (the
environment variable holding the admin token, default CHATMIGRATE_LANYING_TOKEN), `rate` (message
sends per second, default 20; 0 = unpaced), `hub=URL`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa

from chatmigrate.errors import UsageError
from chatmigrate.ids import record_id
from chatmigrate.loaders import Loader
from chatmigrate.model import Checkpoint, File, Message, Record
from chatmigrate.redact import redact, remember
from chatmigrate.targets._filestore import FileStore
from chatmigrate.targets._hub import HubTarget
from chatmigrate.targets._lanying_api import LanyingClient
from chatmigrate.targets._lanying_checks import LanyingChecks
from chatmigrate.targets._lanying_ledger import Ledger, ledger_tables
from chatmigrate.targets._lanying_people import Counts, People
from chatmigrate.targets._lanying_send import Sender
from chatmigrate.targets.contract import Capabilities, ExistingUser, LoadStats, RunInfo, Stage
from chatmigrate.validate.findings import FindingSink

SCHEME = "lanying"
TOKEN_ENV = "CHATMIGRATE_LANYING_TOKEN"
DEFAULT_RATE = 20.0
_OPTIONS = {"app_id", "token_env", "rate", "hub"}
# The source form's name for 蓝莺IM users: ExistingUser ids are those the `lanying-api` source gives.
SOURCE = "lanying"


def parse_url(url: str, options: dict[str, str]) -> tuple[str, str, str, float, str | None]:
    """→ (API base URL, app_id, token environment variable, rate, hub URL or None)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in (SCHEME, f"{SCHEME}+http", f"{SCHEME}+https") or not parts.hostname:
        raise UsageError(f"--to {redact(url)!r}: name the API host, e.g. lanying://s-1-3-api.maximtop.cn?app_id=APP "
                         "(lanying+http://HOST:PORT for plain HTTP)")
    if parts.username or parts.password:
        raise UsageError("--to: the 蓝莺IM admin token comes from the environment (CHATMIGRATE_LANYING_TOKEN, or "
                         "the variable ?token_env= names), never from the URL")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: v for k, v in options.items() if k in _OPTIONS and v is not None})
    unknown = sorted(set(query) - _OPTIONS)
    if unknown:
        raise UsageError(f"--to {redact(url)!r}: unknown option {unknown[0]!r}; known: {', '.join(sorted(_OPTIONS))}")
    app_id = query.get("app_id", "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", app_id):
        raise UsageError(f"--to {redact(url)!r}: give the app's id: ?app_id=… (the console's 应用信息 page)")
    try:
        rate = float(query.get("rate", DEFAULT_RATE))
    except ValueError:
        raise UsageError(f"--to: rate={query['rate']!r} is not a number of messages per second") from None
    if rate < 0:
        raise UsageError("--to: rate must be 0 (unpaced) or more messages per second")
    http = "http" if scheme == f"{SCHEME}+http" else "https"
    base = f"{http}://{parts.netloc}{parts.path.rstrip('/')}"
    return base, app_id, query.get("token_env") or TOKEN_ENV, rate, query.get("hub") or None


class Lanying(HubTarget):
    scheme: ClassVar[str] = SCHEME
    summary_key: ClassVar[str] = "lanying"
    capabilities: ClassVar[Capabilities] = Capabilities(
        transactions=True, cursors=True, lock=True, file_bytes=True,
        text_rules="usernames to 蓝莺IM's rule [A-Za-z0-9_ CJK], not all digits, not mta/maxim… (collisions numbered); "
                   "messages replayed as their author with 蓝莺IM's own send time: original time, author, thread, "
                   "reactions, edits and pins in ext JSON; exactly once through a ledger in the hub")

    def __init__(self, base_url: str, app_id: str, token_env: str, rate: float, hub_url: str | None,
                 prefix: str = "cm_") -> None:
        self.base_url, self.app_id, self.token_env, self.rate = base_url, app_id, token_env, rate
        host = re.sub(r"[^A-Za-z0-9.-]+", "_", urlsplit(base_url).netloc)
        self.hub_url = hub_url or f"sqlite:///lanying-{host}-{app_id}.hub.db"
        self.prefix = prefix
        hub_file = self.hub_url.removeprefix("sqlite:///") if self.hub_url.startswith("sqlite:///") else None
        self.store = FileStore(Path(f"{hub_file}.files" if hub_file else f"lanying-{host}-{app_id}.files"))
        self.stats = LoadStats()
        self.notify: Any = None
        self._hub: Loader | None = None
        self._client: LanyingClient | None = None
        self._run: RunInfo | None = None
        self._summary: dict[str, Any] = {}

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "cm_", options: dict[str, str] | None = None) -> Lanying:
        return cls(*parse_url(url, dict(options or {})), prefix=prefix)

    # -- the contract --------------------------------------------------------------------------
    @property
    def safe_url(self) -> str:
        scheme = SCHEME if self.base_url.startswith("https:") else f"{SCHEME}+http"
        return redact(f"{scheme}://{self.base_url.split('://', 1)[1]}?app_id={self.app_id}")

    @property
    def place(self) -> str:
        return f"蓝莺IM {self.safe_url}"

    @property
    def client(self) -> LanyingClient:
        if self._client is None:
            token = os.environ.get(self.token_env)
            if not token:
                raise UsageError(f"蓝莺IM needs the app's admin token in the environment variable {self.token_env} "
                                 "(the console's Token管理 page)")
            remember(token)
            self._client = LanyingClient(self.base_url, self.app_id, token, rate=self.rate,
                                         retry_seconds=self.retry_seconds, notify=self.notify)
        return self._client

    def prepare(self) -> None:
        super().prepare()
        Ledger(self.hub.engine, self.prefix)  # creates the ledger tables

    def existing_users(self) -> Iterable[ExistingUser]:
        """The app's users (`GET /user/list`, page by page), with the ids the lanying-api source gives them;
        a user an earlier run registered keeps the id of the record it came from, so a re-run with
        `users.match` finds each user it made as itself instead of merging onto it."""
        ours = self._registered_by_us()
        for user in self._app_user_list():
            uid = str(user["user_id"])
            yield ExistingUser(id=ours.get(uid) or record_id(SOURCE, self.app_id, "user", uid),
                               username=str(user["username"]), target_id=uid)

    def _registered_by_us(self) -> dict[str, str]:
        """蓝莺IM user id → canonical record id of the users earlier runs registered (reading only: a dry
        run creates no hub)."""
        if self.hub.file_missing:
            return {}
        users = ledger_tables(self.prefix).tables[f"{self.prefix}ly_users"]
        with self.hub.engine.connect() as conn:
            if not sa.inspect(conn).has_table(users.name):
                return {}
            rows = conn.execute(sa.select(users.c.ly_user_id, users.c.record_id).where(
                users.c.state == "registered", users.c.ly_user_id.is_not(None)))
            return {str(uid): record for uid, record in rows}

    def _app_user_list(self) -> Iterator[dict[str, Any]]:
        page, size = 1, 50
        while True:
            data = self.client.data("GET", "/user/list", params={"page_num": page, "page_size": size}) or []
            users = [u for u in data if isinstance(u, dict) and isinstance(u.get("user_id"), int)
                     and isinstance(u.get("username"), str)]
            yield from users
            if len(data) < size:
                return
            page += 1

    def checks(self, sink: FindingSink) -> Stage:
        return LanyingChecks(sink)

    def load(self, items: Iterable[Record | Checkpoint]) -> LoadStats:
        self.stats = self.hub.load(self._with_bytes(items))
        return self.stats

    def complete(self, progress: bool = False) -> None:
        """Replay what the hub holds and the ledger lacks into 蓝莺IM."""
        started = time.monotonic()
        counts = Counts()
        ledger = Ledger(self.hub.engine, self.prefix)
        client = self.client
        calls_before = client.calls
        try:
            app_users = {u["username"].lower(): int(u["user_id"]) for u in self._app_user_list()}
            people = People(self.hub, ledger, client, counts, app_users)
            people.sync_users()
            Sender(self.hub, ledger, client, people, self.store, counts, progress, self.notify).send_all()
        finally:
            self._summary = self._summarize(counts.values, ledger.totals(), client.calls - calls_before,
                                            time.monotonic() - started)

    def _summarize(self, counts: dict[str, int], totals: dict[str, int], calls: int, seconds: float) -> dict[str, Any]:
        sent = counts.get("messages_sent", 0)
        rate = sent / seconds if seconds > 0 else 0.0
        parts = counts.get("parts_sent", 0)
        lines = [f"蓝莺IM: {self.safe_url}: {sent:,} message(s) sent this run ({parts:,} part(s), {rate:,.1f}/s), "
                 f"{calls:,} API call(s), {self.client.retries:,} retried"]
        if counts:
            lines.append("  " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(counts.items())))
        lines.append("  ledger (all runs): " + ", ".join(f"{k} {v:,}" for k, v in sorted(totals.items())))
        if totals.get("failed"):
            lines.append("  failed messages are sent again by the next run (reasons in the hub's ly_messages)")
        return {"api_calls": calls, "seconds": round(seconds, 3), "messages_per_second": round(rate, 1),
                **counts, "ledger": totals, "lines": lines}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        super().close()

    # -- file bytes ------------------------------------------------------------------------------
    def _with_bytes(self, items: Iterable[Record | Checkpoint]) -> Iterator[Record | Checkpoint]:
        """Copy the bytes of every file the source holds into the store while the source is open (they
        are uploaded later, from the hub)."""
        opener = self._run.open_file if self._run is not None else None
        for item in items:
            if opener is not None and isinstance(item, Message) and item.files:
                item = replace(item, files=tuple(self._stored(f, opener) for f in item.files))
            yield item

    def _stored(self, file: File, opener: Any) -> File:
        if file.sha256 and self.store.has(file.sha256):
            return file
        try:
            handle = opener(file)
        except (OSError, ValueError):
            return file
        if handle is None:
            return file
        with handle:
            sha256, size = self.store.put(handle)
        return replace(file, sha256=sha256, size=size)
