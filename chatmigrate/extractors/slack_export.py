"""Slack workspace export (the zip Slack's export tool gives, or its unzipped folder).

Layout facts (research/formats.md §1): top-level users.json (org_users.json on Enterprise Grid),
channels.json, groups.json, dms.json, mpims.json; one folder per conversation (public/private by
name, DMs by id, group DMs by mpim name) of YYYY-MM-DD.json day files. Day files are read one at a
time straight from the zip, so memory does not grow with the number of days or messages.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import IO, Any, ClassVar

from chatmigrate.errors import InputError
from chatmigrate.extractors._download_options import DOWNLOAD_OPTIONS
from chatmigrate.extractors._fields import is_id
from chatmigrate.extractors._files import ExportFiles, iter_json_array
from chatmigrate.extractors._limits import LIMIT_OPTIONS, Limits
from chatmigrate.extractors._slack import (
    SOURCE,
    Conversation,
    SlackConverter,
    parse_ts,
    strip_file_token,
    ts_key,
)
from chatmigrate.extractors.contract import Capabilities, Option, Source
from chatmigrate.files import Downloads
from chatmigrate.model import Channel, ChannelKind, Checkpoint, File, Item, Message, Origin, Skipped, Team, Unreadable

__all__ = ["SlackExport", "parse_ts", "strip_file_token"]

_DAY_FILE = re.compile(r"^(?P<folder>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})\.json$")
_CONVERSATION_FILES: tuple[tuple[str, ChannelKind], ...] = (
    ("channels.json", "public"),
    ("groups.json", "private"),
    ("dms.json", "direct"),
    ("mpims.json", "group"),
)
_TOP_LEVEL = {"users.json", "org_users.json", "channels.json", "groups.json", "dms.json", "mpims.json"}


class SlackExport(Source):
    name: ClassVar[str] = "slack-export"
    source: ClassVar[str] = SOURCE
    known_options: ClassVar[dict[str, Option]] = {
        "scope": Option("workspace the ids are scoped to (default: the team most users belong to)"),
        **LIMIT_OPTIONS,
        **DOWNLOAD_OPTIONS,
    }
    # An export is a snapshot: `since` is ignored (a later export may hold edits of old messages).
    capabilities: ClassVar[Capabilities] = Capabilities(files=True)

    @classmethod
    def detect(cls, location: str) -> bool:
        try:
            files = ExportFiles(location)
        except InputError:
            return False
        try:
            names = set(files.names())
            return "channels.json" in names and bool(names & {"users.json", "org_users.json"})
        finally:
            files.close()

    def __init__(self, location: str, options: Mapping[str, str] | None = None) -> None:
        super().__init__(location, options)
        self.files = ExportFiles(location, Limits.from_options(self.options))
        names = set(self.files.names())
        if not names & {"channels.json", "users.json", "org_users.json"}:
            raise InputError("no channels.json or users.json at the top of the export; is this a Slack "
                             "workspace export (Workspace settings → Import/Export Data)?", location=location)
        self._users_file = "org_users.json" if "org_users.json" in names else "users.json"
        self._scope: str | None = self.option("scope")
        self._convert: SlackConverter | None = None
        self._has_uploads = any(name.startswith("__uploads/") for name in self.files.names())
        # Listing files (channels.json…) that could not be read: their folders' messages cannot be placed.
        self._unreadable_listings: list[str] = []
        self._unreadable_members: set[str] = set()  # uploads that could not be read (reported once)
        # A standard export only links to its files (url_private on files.slack.com): fetched from there.
        self.downloads = Downloads(self.options, ["files.slack.com"], location)

    # -- identity ------------------------------------------------------------------------------
    @property
    def scope(self) -> str:
        """The workspace: the team id most users belong to (the API form reads the same from auth.test)."""
        if self._scope is None:
            teams: Counter[str] = Counter()
            if self.files.exists(self._users_file):
                for entry in self._document(self._users_file):
                    user = entry[1] if isinstance(entry, tuple) else None
                    if isinstance(user, dict) and is_id(user.get("team_id")):
                        teams[user["team_id"]] += 1
            self._scope = teams.most_common(1)[0][0] if teams else "slack"
        return self._scope

    @property
    def convert(self) -> SlackConverter:
        if self._convert is None:
            self._convert = SlackConverter(self.scope, self._file_bytes)
        return self._convert

    def _document(self, name: str) -> Iterator[tuple[int, Any] | Unreadable]:
        """(line, element) of a JSON-array member; where it cannot be read (not JSON, cut off, a corrupt
        zip member, over a size limit), one Unreadable for the file: the elements before it are kept.

        The file is counted as what it is, an unreadable export file, not as a record of some kind:
        how many records the unreadable part held cannot be known.
        """
        where = self.files.describe(name)
        try:
            yield from iter_json_array(self.files.read_bytes(name), where)
        except InputError as exc:
            yield Unreadable("export_files", "CM001", f"{name}: {exc.detail}", {"file": where},
                             Origin(where, _error_line(exc)))

    # -- the stream ----------------------------------------------------------------------------
    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]:
        # A second read starts afresh: users are discovered and damaged members reported again.
        self._convert = None
        self._unreadable_listings, self._unreadable_members = [], set()
        for unsafe in self.files.unsafe:
            yield Unreadable("files", "CM003", "archive entry escapes the export folder (../, absolute path "
                             "or symlink); refused", unsafe, Origin(self.files.describe(unsafe)))
        yield Team(self.convert.id("team", self.scope), SOURCE, self.scope, self.scope,
                   origin=Origin(self.files.describe(self._users_file)))
        yield from self._users()
        conversations = yield from self._conversations()
        yield from self.downloads.stage(self._messages(conversations), lambda file: file.source_url)
        yield from self._unused_members()

    def open_file(self, file: File) -> IO[bytes] | None:
        """The bytes of a file this export holds (`__uploads/…`, slack-advanced-exporter) or that was
        downloaded into the store (-o download=true), else None."""
        if file.path and self.files.exists(file.path):
            return self.files.open(file.path)
        return self.downloads.open(file)

    def _unused_members(self) -> Iterator[Item]:
        """Say which export members carry nothing chatmigrate migrates (integration logs, canvases…)."""
        for name in self.files.names():
            migrated = name in _TOP_LEVEL or name.startswith("__uploads/") or (
                _DAY_FILE.match(name) is not None and not name.startswith("__"))
            if migrated:
                continue
            yield Skipped("export_files", "not part of a Slack export's message layout; not migrated", name,
                          Origin(self.files.describe(name)))

    def _users(self) -> Iterator[Item]:
        if not self.files.exists(self._users_file):
            return
        where = self.files.describe(self._users_file)
        for entry in self._document(self._users_file):
            yield entry if isinstance(entry, Unreadable) else self.convert.user(entry[1], Origin(where, entry[0]))

    def _conversations(self) -> Iterator[Item]:
        """Emit every conversation and return them keyed by their folder name in the export."""
        by_folder: dict[str, Conversation] = {}
        for file_name, kind in _CONVERSATION_FILES:
            if not self.files.exists(file_name):
                continue
            where = self.files.describe(file_name)
            for entry in self._document(file_name):
                if isinstance(entry, Unreadable):
                    self._unreadable_listings.append(file_name)
                    yield entry
                    continue
                line, raw = entry
                channel = self.convert.channel(raw, kind, Origin(where, line))
                yield channel
                if isinstance(channel, Channel):
                    conversation = Conversation(channel.id, channel.source_id, channel.name)
                    # Public/private/group folders are named by name, DM folders by id; some tools
                    # (slackdump) name every folder by id: accept both.
                    by_folder.setdefault(channel.name, conversation)
                    by_folder.setdefault(channel.source_id, conversation)
        return by_folder

    def _day_files(self) -> dict[str, list[str]]:
        days: dict[str, list[str]] = {}
        for name in self.files.names():
            match = _DAY_FILE.match(name)
            # Folders starting with "__" hold downloaded uploads (slack-advanced-exporter), not days.
            if match and not match.group("folder").startswith("__"):
                days.setdefault(match.group("folder"), []).append(name)
        return days

    def _messages(self, conversations: Mapping[str, Conversation]) -> Iterator[Item]:
        for folder, day_names in sorted(self._day_files().items()):
            conversation = conversations.get(folder)
            if conversation is None:
                yield from self._unplaced(folder, sorted(day_names))
                continue
            last_ts = ""
            for name in sorted(day_names):
                for item in self._day(name, conversation):
                    if isinstance(item, Message):
                        last_ts = item.source_id.rsplit("/", 1)[1]
                    yield item
            yield Checkpoint(SOURCE, self.scope, conversation.channel_id, last_ts)

    def _unplaced(self, folder: str, day_names: list[str]) -> Iterator[Item]:
        """Messages of a folder no listing names: each one rejected (counted as the message it is)."""
        reason = (f"conversation folder {folder!r} is not listed in channels.json, groups.json, dms.json or "
                  "mpims.json; its messages cannot be placed")
        if self._unreadable_listings:
            reason += f" ({', '.join(self._unreadable_listings)} could not be read: see its CM001)"
        for name in day_names:
            where = self.files.describe(name)
            for entry in self._document(name):
                if isinstance(entry, Unreadable):
                    yield entry
                else:
                    yield Unreadable("messages", "CM005", reason, entry[1], Origin(where, entry[0]))

    def _day(self, name: str, conversation: Conversation) -> Iterator[Item]:
        where = self.files.describe(name)
        elements: list[tuple[int, Any]] = []
        for entry in self._document(name):
            if isinstance(entry, Unreadable):
                # Keep what was readable; the rest of the file is one unreadable file (not a message).
                yield entry
            else:
                elements.append(entry)
        # Within a day Slack writes in ts order, but not every tool does: sort (one day is small).
        elements.sort(key=lambda e: ts_key(e[1].get("ts")) if isinstance(e[1], dict) else (0, 0))
        for line, raw in elements:
            yield from self.convert.message(raw, conversation, Origin(where, line))

    # -- file bytes ----------------------------------------------------------------------------
    def _file_bytes(self, entry: Mapping[str, Any], props: dict[str, Any], unreadable: list[Unreadable],
                    ) -> tuple[int | None, str | None, str | None]:
        """(size, sha256, path) of a file: measured from `__uploads/` when the export holds its bytes
        (slack-advanced-exporter), else the size Slack reports, marked missing when the export carries
        other files' bytes but not this one's."""
        file_id = str(entry["id"])
        upload = f"__uploads/{file_id}/{entry.get('name') or entry.get('title') or file_id}"
        size = entry.get("size")
        if self.files.exists(upload):
            measured = self._measure(upload, unreadable)
            if measured is not None:
                return measured[0], measured[1], upload
            props["missing"] = True
            props["missing_reason"] = f"{upload} is in the export but cannot be read (see its CM001)"
        elif self._has_uploads and entry.get("mode") not in ("tombstone", "external", "hidden_by_limit") and not \
                entry.get("is_external"):
            props["missing"] = True
            props["missing_reason"] = f"{upload} is not in the export"
        return (size if isinstance(size, int) else None), None, None

    def _measure(self, member: str, unreadable: list[Unreadable]) -> tuple[int, str] | None:
        """(size, sha256) of a member's bytes; None, with an Unreadable for the member (once, however many
        messages share the file), when it cannot be read."""
        if member in self._unreadable_members:
            return None
        digest = hashlib.sha256()
        size = 0
        try:
            with self.files.open(member) as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
                    size += len(chunk)
        except InputError as exc:
            self._unreadable_members.add(member)
            unreadable.append(Unreadable("export_files", "CM001", f"{member}: {exc.detail}",
                                         {"file": self.files.describe(member)}, Origin(self.files.describe(member))))
            return None
        return size, digest.hexdigest()


def _error_line(exc: InputError) -> int | None:
    location = exc.location or ""
    tail = location.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None
