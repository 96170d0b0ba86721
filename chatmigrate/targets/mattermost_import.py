"""Target `mattermost-import:///path/out.zip`: a Mattermost bulk-import package (`mmctl import upload`
+ `mmctl import process`) made from any source.

Mattermost wants a thread's replies nested inside their root's line and every line grouped by type,
so the package cannot be written while the stream passes. The records go first into a hub, the
`cm_` tables in a SQLite file next to the package (`out.zip.hub.db`; `?hub=URL` for another), with
file bytes copied into a content-addressed store beside it (`out.zip.files/`); after the last record
the package is written from the hub in thread order (targets/_mm_package.py). Memory stays flat; the
hub also remembers what each earlier package held, so names, post times and delta packages stay
stable across runs:

- `cm_mm_names`: the Mattermost name each user, team, channel and emoji got (unique, never changed);
- `cm_mm_posts`: each message's Mattermost `create_at` (unique per channel; Mattermost matches an
  existing post by channel + create_at + message, so a re-import overwrites) and the hash of the
  line last written for it.

URL options (query string): `team=NAME` (every channel into that one team), `default_email_domain=DOMAIN`
(or `--default-email-domain`), `delta=true` (write `out-0002.zip`… holding only what changed since the
previous package), `hub=URL`, `max_file_bytes=N` (larger attachments are listed and left out),
`bot_owner=USERNAME`, `users=FILE_OR_URL` (the users the server already holds, for `--map`: the output of
`mmctl user list --all --json`, or the server's URL, read through its API with the personal access
token in the variable `users_token_env` names, default MATTERMOST_TOKEN). Their usernames are kept
from every source user they are not merged onto (those get a numbered one: CM202).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import sqlalchemy as sa

from chatmigrate.errors import UsageError
from chatmigrate.loaders import Loader
from chatmigrate.mappings import name_set
from chatmigrate.model import (
    EXISTING_USER_PROP,
    Channel,
    Checkpoint,
    Emoji,
    File,
    Item,
    Message,
    Record,
    Rejected,
    Team,
    User,
)
from chatmigrate.redact import redact, remember
from chatmigrate.targets import _mm_rules as mm
from chatmigrate.targets._filestore import FileStore
from chatmigrate.targets._hub import HubTarget
from chatmigrate.targets._mm_existing import fetch_users, read_users_file
from chatmigrate.targets._mm_package import SYSTEM_EMOJI
from chatmigrate.targets.contract import Capabilities, ExistingUser, LoadStats, RunInfo, Stage
from chatmigrate.validate.findings import Finding, FindingSink

SCHEME = "mattermost-import"
_OPTIONS = {"team", "default_email_domain", "delta", "hub", "max_file_bytes", "bot_owner", "users", "users_token_env"}
DEFAULT_TOKEN_ENV = "MATTERMOST_TOKEN"
# Messages of the current channel whose millisecond is remembered for the same-millisecond check.
_MS_WINDOW = 50_000


@dataclass(frozen=True, slots=True)
class PackageOptions:
    out: Path
    team: str | None = None
    default_email_domain: str | None = None
    delta: bool = False
    max_file_bytes: int | None = None
    bot_owner: str | None = None
    users: str | None = None
    users_token_env: str = DEFAULT_TOKEN_ENV


def parse_url(url: str, options: dict[str, str]) -> tuple[PackageOptions, str | None]:
    """`mattermost-import:///abs/out.zip?team=acme` (or `mattermost-import:relative/out.zip`) →
    the package options and the hub URL (None: the default SQLite file next to the package)."""
    parts = urlsplit(url)
    if parts.netloc:
        raise UsageError(f"--to {redact(url)!r}: a mattermost-import URL names a local file: "
                         "mattermost-import:///srv/import/out.zip (three slashes) or mattermost-import:out.zip")
    path = unquote(parts.path)
    if not path or path.endswith("/"):
        raise UsageError(f"--to {redact(url)!r}: name the package file, e.g. mattermost-import:///srv/import/acme.zip")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: v for k, v in options.items() if v is not None})
    unknown = sorted(set(query) - _OPTIONS)
    if unknown:
        raise UsageError(f"--to {redact(url)!r}: unknown option {unknown[0]!r}; known: {', '.join(sorted(_OPTIONS))}")
    max_bytes = query.get("max_file_bytes")
    if max_bytes is not None and not max_bytes.isdigit():
        raise UsageError(f"--to: max_file_bytes={max_bytes!r} is not a number of bytes")
    domain = query.get("default_email_domain") or None
    if domain is not None and ("@" in domain or "." not in domain.strip(".")):
        raise UsageError(f"--default-email-domain {domain!r}: give a domain such as example.com")
    delta = query.get("delta", "false").lower()
    if delta not in ("true", "false", "1", "0", "yes", "no"):
        raise UsageError(f"--to: delta={delta!r}: use true or false")
    out = Path(path if path.endswith(".zip") else f"{path}.zip")
    return PackageOptions(out=out, team=query.get("team") or None, default_email_domain=domain,
                          delta=delta in ("true", "1", "yes"),
                          max_file_bytes=int(max_bytes) if max_bytes is not None else None,
                          bot_owner=query.get("bot_owner") or None, users=query.get("users") or None,
                          users_token_env=query.get("users_token_env") or DEFAULT_TOKEN_ENV), query.get("hub") or None


def hub_tables(prefix: str) -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(f"{prefix}mm_names", md,
             sa.Column("namespace", sa.String(80), primary_key=True),
             sa.Column("record_id", sa.String(36), primary_key=True),
             sa.Column("name", sa.String(64), nullable=False),
             sa.UniqueConstraint("namespace", "name", name=f"uq_{prefix}mm_names_name"))
    sa.Table(f"{prefix}mm_posts", md,
             sa.Column("message_id", sa.String(36), primary_key=True),
             sa.Column("channel_id", sa.String(36), nullable=False),
             # Mattermost create_at (ms) of the message and of each continuation part (JSON list).
             sa.Column("create_at", sa.BigInteger, nullable=False),
             sa.Column("part_times", sa.Text),
             sa.Column("parts", sa.Integer, nullable=False),
             sa.Column("last_at", sa.BigInteger, nullable=False),
             # Hash of the root line (root + replies) last written to a package; NULL: never written.
             sa.Column("line_hash", sa.String(32)),
             sa.Index(f"ix_{prefix}mm_posts_channel", "channel_id", "create_at"))
    sa.Table(f"{prefix}mm_files", md,
             sa.Column("file_id", sa.String(36), primary_key=True),
             sa.Column("sha256", sa.String(64), nullable=False),
             sa.Column("size", sa.BigInteger, nullable=False))
    sa.Table(f"{prefix}mm_packages", md,
             sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("path", sa.Text, nullable=False),
             sa.Column("sha256", sa.String(64), nullable=False),
             # Hash of the lines before the posts (teams, channels, users): a delta without them changed
             # and without new posts is not written.
             sa.Column("head_hash", sa.String(64), nullable=False),
             sa.Column("post_lines", sa.Integer, nullable=False))
    return md


class MattermostImport(HubTarget):
    scheme: ClassVar[str] = SCHEME
    summary_key: ClassVar[str] = "package"
    capabilities: ClassVar[Capabilities] = Capabilities(
        transactions=True, cursors=True, lock=True, delta_output=True, max_text=mm.MAX_POST_RUNES,
        needs_email=True, file_bytes=True,
        text_rules="names sanitised to Mattermost's rules (old → new in .names.json, mentions follow); text over "
                   "16,383 characters split into continuation replies; unique create_at per channel")

    def __init__(self, options: PackageOptions, hub_url: str | None, prefix: str = "cm_") -> None:
        self.options = options
        self.prefix = prefix
        self.hub_url = hub_url or f"sqlite:///{options.out}.hub.db"
        self.store = FileStore(Path(f"{options.out}.files"))
        self._hub: Loader | None = None
        self._metadata = hub_tables(prefix)
        self.stats = LoadStats()
        self._run: RunInfo | None = None
        self._book: mm.NameBook | None = None
        self._summary: dict[str, Any] = {}
        self._sink: FindingSink | None = None
        # file id → (sha256, size) of bytes stored this run: saved in cm_mm_files, so a later source
        # that only knows the file's metadata (an API) does not make the package lose it.
        self._stored_files: dict[str, tuple[str, int]] = {}
        self._existing: list[ExistingUser] | None = None

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "cm_", options: dict[str, str] | None = None) -> MattermostImport:
        package, hub = parse_url(url, dict(options or {}))
        return cls(package, hub, prefix)

    # -- the contract --------------------------------------------------------------------------
    @property
    def safe_url(self) -> str:
        return f"{SCHEME}://{self.options.out}"

    @property
    def place(self) -> str:
        return f"package {self.options.out}"

    def table(self, name: str) -> sa.Table:
        return self._metadata.tables[f"{self.prefix}{name}"]

    def prepare(self) -> None:
        if not self.options.out.parent.is_dir():
            raise UsageError(f"--to: the folder {self.options.out.parent} does not exist; create it first")
        super().prepare()
        self._metadata.create_all(self.hub.engine)

    def existing_users(self) -> list[ExistingUser]:
        """The server's users (`?users=`), read once; none when the option is not given."""
        if self._existing is None:
            self._existing = self._read_existing()
        return self._existing

    def _read_existing(self) -> list[ExistingUser]:
        """The server's users; one that an earlier package of this hub created keeps the id of the record
        it came from, so a re-run with users.match finds it as itself instead of merging onto it."""
        book = self._load_book()
        return [replace(user, id=book.owner("user", user.username) or user.id) for user in self._server_users()]

    def _server_users(self) -> list[ExistingUser]:
        where = self.options.users
        if where is None:
            return []
        if where.startswith(("http://", "https://")):
            token = os.environ.get(self.options.users_token_env)
            if not token:
                raise UsageError(f"--to …?users={redact(where)}: set {self.options.users_token_env} to a system "
                                 "admin's personal access token (or name another variable with users_token_env)")
            remember(token)
            return list(fetch_users(where, token))
        return read_users_file(Path(where))

    def checks(self, sink: FindingSink) -> Stage:
        self._book = self._load_book()
        self._sink = sink
        for user in self._existing or ():
            holder = self._book.reserve("user", user.id, user.username)
            if holder is not None:
                sink.add(Finding("CM202", f"username {user.username!r} of a user the server already holds was given to "
                                 f"another user ({holder}) by an earlier package; that user keeps it", "users",
                                 user.id))
        return _Checks(self._book, self.options, sink)

    def load(self, items: Iterable[Record | Checkpoint]) -> LoadStats:
        stats = self.hub.load(self._with_bytes(items))
        self.stats = stats
        return stats

    def complete(self, progress: bool = False) -> None:
        from chatmigrate.targets._mm_package import PackageWriter

        book = self._book or self._load_book()
        self._save_stored_files()
        writer = PackageWriter(self.hub.engine, self.hub.prefix, self.hub.metadata, self._metadata, self.options,
                               self.store, book, progress)
        self._summary = writer.write()

    # -- helpers -------------------------------------------------------------------------------
    def _load_book(self) -> mm.NameBook:
        """The names given by earlier runs (from the hub, when it exists); a fresh book otherwise."""
        names = self.table("mm_names")
        if self.hub.file_missing:
            return mm.NameBook()
        with self.hub.engine.connect() as conn:
            if not sa.inspect(conn).has_table(names.name):
                return mm.NameBook()
            rows = conn.execute(sa.select(names.c.namespace, names.c.record_id, names.c.name))
            return mm.NameBook({(ns, rid): name for ns, rid, name in rows})

    def _with_bytes(self, items: Iterable[Record | Checkpoint]) -> Iterator[Record | Checkpoint]:
        """Copy the bytes of every file the source holds into the store while the source is open
        (the package is written later, perhaps when the export is gone)."""
        opener = self._run.open_file if self._run is not None else None
        known: set[str] = set()
        for item in items:
            if opener is not None and isinstance(item, Message) and item.files:
                item = replace(item, files=tuple(self._stored(f, opener, known) for f in item.files))
            elif opener is not None and isinstance(item, Emoji) and item.file is not None:
                item = replace(item, file=self._checked_image(item, self._stored(item.file, opener, known)))
            yield item

    def _save_stored_files(self) -> None:
        if not self._stored_files:
            return
        files = self.table("mm_files")
        with self.hub.engine.begin() as conn:
            known = {row[0] for row in conn.execute(sa.select(files.c.file_id))}
            rows = [{"file_id": fid, "sha256": sha, "size": size} for fid, (sha, size) in self._stored_files.items()]
            new = [r for r in rows if r["file_id"] not in known]
            old = [{"fid": r["file_id"], "sha": r["sha256"], "n": r["size"]} for r in rows if r["file_id"] in known]
            if new:
                conn.execute(files.insert(), new)
            if old:
                conn.execute(files.update().where(files.c.file_id == sa.bindparam("fid"))
                             .values(sha256=sa.bindparam("sha"), size=sa.bindparam("n")), old)
        self._stored_files.clear()

    def _checked_image(self, emoji: Emoji, file: File) -> File:
        """Mattermost decodes every emoji image of a package: one it cannot decode is marked (and left out)."""
        if not file.sha256 or not self.store.has(file.sha256):
            return file
        problem = image_problem(self.store.path(file.sha256), file.name)
        if problem is None:
            return file
        if self._sink is not None:
            self._sink.add(Finding("CM213", f"emoji :{emoji.name}: image {file.name!r}: {problem}", "emoji", emoji.id,
                                   emoji.origin))
        return replace(file, props={**file.props, "image_error": problem})

    def _stored(self, file: File, opener: Any, known: set[str]) -> File:
        if file.sha256 and (file.sha256 in known or self.store.has(file.sha256)):
            self._stored_files[file.id] = (file.sha256, file.size or 0)
            return file
        try:
            handle = opener(file)
        except (OSError, ValueError) as exc:
            return replace(file, props={**file.props, "bytes_error": str(exc)[:200]})
        if handle is None:
            return file
        with handle:
            sha256, size = self.store.put(handle)
        known.add(sha256)
        self._stored_files[file.id] = (sha256, size)
        if file.sha256 and file.sha256 != sha256:
            # The export changed under us or lied about its bytes: keep what we really hold.
            return replace(file, sha256=sha256, size=size, props={**file.props, "sha256_declared": file.sha256})
        return replace(file, sha256=sha256, size=size)


class _Checks:
    """Mattermost's rules applied to the stream: names given (and remembered) as records pass, and
    everything Mattermost would refuse reported as a finding at the record's location."""

    def __init__(self, book: mm.NameBook, options: PackageOptions, sink: FindingSink) -> None:
        self.book, self.options, self.sink = book, options, sink
        self.refused_users: set[str] = set()
        self._channel: str | None = None
        self._seen_ms: OrderedDict[int, None] = OrderedDict()
        # Guests not yet seen in any channel's members (reported at the end of the stream: CM212).
        self._lonely_guests: dict[str, User] = {}

    def __call__(self, items: Iterator[Item]) -> Iterator[Item]:
        yield from self._checked(items)
        for guest in self._lonely_guests.values():
            self._warn("CM212", guest, f"guest {guest.username!r} is in no channel: imported deactivated, "
                       "without team")

    def _checked(self, items: Iterator[Item]) -> Iterator[Item]:
        for item in items:
            if isinstance(item, Message):
                yield from self._message(item)
            elif isinstance(item, User):
                yield self._user(item)
            elif isinstance(item, Channel):
                self._channel_record(item)
                yield item
            elif isinstance(item, Team):
                self._name(item, "team", item.name, mm.team_name(item.name), "team")
                yield item
            elif isinstance(item, Emoji):
                self._emoji(item)
                yield item
            else:
                yield item

    def _emoji(self, emoji: Emoji) -> None:
        valid = mm.emoji_name(emoji.name)
        if valid in name_set(SYSTEM_EMOJI):
            self._warn("CM211", emoji, f"custom emoji :{emoji.name}: has the name of a Mattermost system emoji: "
                       "left out")
            return
        if valid != emoji.name:
            self._warn("CM208", emoji, f"emoji name {emoji.name!r} becomes {valid!r}")
        self._name(emoji, "emoji", emoji.name, valid, "emoji")

    def _warn(self, code: str, record: Any, message: str) -> None:
        self.sink.add(Finding(code, message, record.record_kind, record.id, record.origin))

    def _name(self, record: Any, namespace: str, wanted: str, valid: str, what: str) -> str:
        name, why = self.book.assign(namespace, record.id, wanted, valid)
        if why == "collision":
            self._warn("CM202", record, f"{what} {wanted!r} would collide with another {what}: becomes {name!r}")
        elif why == "changed" and name != wanted:
            self._warn("CM201", record, f"{what} name {wanted!r} is not valid in Mattermost: becomes {name!r}")
        return name

    def _user(self, user: User) -> Item:
        self._name(user, "user", user.username, mm.username(user.username), "user")
        if EXISTING_USER_PROP in user.props:
            return user  # the server's own user: its name and email are what the server has
        if user.role == "guest" and not user.is_deleted:
            self._lonely_guests[user.id] = user
        if not user.email:
            if self.options.default_email_domain:
                self._warn("CM205", user, f"user {user.username!r} has no email: imported as "
                           f"{self.book.get('user', user.id)}@{self.options.default_email_domain}")
            elif not user.is_bot:
                self.refused_users.add(user.id)
                self.sink.reject(_raw(user), [Finding(
                    "CM204", f"user {user.username!r} has no email and Mattermost requires one; give "
                    "--default-email-domain", "users", user.id, user.origin)])
                return Rejected(user)
        return user

    def _channel_record(self, channel: Channel) -> None:
        from chatmigrate.targets._mm_package import channel_namespace

        for member in channel.member_ids:
            self._lonely_guests.pop(member, None)
        namespace = channel_namespace(channel.team_id, self.options.team)
        if channel.kind in ("public", "private") or len(set(channel.member_ids)) > mm.MAX_GROUP_MEMBERS:
            if channel.kind in ("direct", "group"):
                self._warn("CM206", channel, f"group conversation {channel.name!r} has "
                           f"{len(set(channel.member_ids))} members (Mattermost allows 8): becomes a private channel")
            self._name(channel, namespace, channel.name, mm.channel_name(channel.name), "channel")
        elif len(set(channel.member_ids) - self.refused_users) < 2:
            self._warn("CM210", channel, f"direct conversation {channel.name!r} has "
                       f"{len(set(channel.member_ids) - self.refused_users)} known member(s)")

    def _message(self, message: Message) -> Iterator[Item]:
        if message.user_id in self.refused_users:
            self.sink.reject(_raw(message), [Finding(
                "CM204", "message by a user without an email (refused with the user); give --default-email-domain",
                "messages", message.id, message.origin)])
            yield Rejected(message)
            return
        refused = [r for r in message.reactions if r.user_id in self.refused_users]
        if refused:
            self.sink.reject([{"emoji": r.emoji, "user_id": r.user_id} for r in refused], [Finding(
                "CM204", f"{len(refused)} reaction(s) by users without an email (refused with them)",
                "reactions", message.id, message.origin)])
            kept = tuple(r for r in message.reactions if r.user_id not in self.refused_users)
            yield Rejected(replace(message, reactions=tuple(refused), files=()), nested_only=True)
            message = replace(message, reactions=kept)
        self._message_rules(message)
        yield message

    def _message_rules(self, message: Message) -> None:
        if len(message.text) > mm.MAX_POST_RUNES:
            self._warn("CM203", message, f"text of {len(message.text):,} characters is split into "
                       f"{len(mm.split_text(message.text))} posts")
        if len(message.files) > mm.MAX_FILES_PER_POST:
            self._warn("CM207", message, f"{len(message.files)} attachments: "
                       f"{-(-len(message.files) // mm.MAX_FILES_PER_POST)} posts carry them")
        for reaction in message.reactions:
            valid = mm.reaction_name(reaction.emoji)
            if valid != reaction.emoji:
                self._warn("CM208", message, f"reaction :{reaction.emoji}: becomes :{valid}:")
        if message.channel_id != self._channel:
            self._channel = message.channel_id
            self._seen_ms.clear()
        ms = int(message.created_at.timestamp() * 1000)
        if ms in self._seen_ms:
            self._warn("CM209", message, f"another message of this channel has create_at {ms}: moved by 1 ms")
        self._seen_ms[ms] = None
        if len(self._seen_ms) > _MS_WINDOW:
            self._seen_ms.popitem(last=False)


def image_problem(path: Path, name: str) -> str | None:
    """Why Mattermost could not decode this image (None when it can): PNG, GIF and JPEG are decoded
    whole, an `.svg` must be XML."""
    if name.lower().endswith(".svg"):
        import xml.etree.ElementTree as ET

        try:
            ET.parse(path)
        except ET.ParseError as exc:
            return f"not an SVG document ({exc})"
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.format not in ("PNG", "GIF", "JPEG"):
                return f"a {image.format} image; Mattermost reads PNG, GIF, JPEG and SVG"
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"not a whole image ({str(exc)[:120]})"
    return None


def _raw(record: Record) -> dict[str, Any]:
    from chatmigrate.model import to_json

    return to_json(record)
