"""The source contract: what every extractor (built-in or third-party) is, in one place.

A source reads one form of one chat system (an export file, a live API) and streams canonical records
(chatmigrate/model.py). Subclass `Source` (or satisfy the `Extractor` protocol of `extractors/__init__.py`)
and register the class under the `chatmigrate.extractors` entry-point group; `chatmigrate sources` lists
it, `--from NAME` picks it, and tests/sources/ runs the conformance suite on it once you name its sample.

**The minimum** a new source writes:

- `name` (the `--from` value and entry-point name, `slack-export`), `source` (`slack`: every form of one
  system shares it, so their ids meet);
- `known_options`: every `-o KEY=VALUE` it reads, as `Option(help, type, minimum, maximum)`; unknown names
  and ill-typed values are usage errors naming the option before the source is built (chatmigrate/options.py);
  read them with `self.option(name, default)`, already parsed;
- `capabilities`: `Capabilities(incremental=…, rewind=…, files=…)` (what `sync` and targets may rely on);
- `detect(location) -> bool`: cheap (a few KB, a request at most), and it never raises, whatever the input;
- `scope`: the workspace/team/server the data belongs to; ids are `record_id(source, scope, kind, native_key)`
  and every form of a source computes the same native key, so an export load and an API sync meet on the
  same rows (Slack: `channel/ts`, Mattermost: names and times, Rocket.Chat: `_id`);
- `records(since) -> Iterator[Item]` in the stream order below.

**Stream order**: teams, users, channels (with their member ids), custom emoji, then messages grouped by
channel, each channel's ascending by `(created_at, id)` with a thread root before its replies, and after a
channel's last message a `Checkpoint(source, scope, channel_id, cursor)`: the target writes that cursor in
the transaction of the channel's data, so state never runs ahead of data. No message of a channel comes
after its checkpoint. A user first seen in a message (a Slack Connect author, a webhook bot) is emitted
just before the first message that names it. Memory: O(users + channels + the largest channel).

**Cursors** are text in the source's own format (a Slack `ts`, epoch milliseconds, an ISO time), at most
255 characters. `records(since={channel_id: cursor})` of an `incremental` source reads, per channel with
a cursor, only what changed after it; any other source reads everything again (re-loading is harmless:
ids are deterministic, unchanged rows are not written). A `rewind` source moves a cursor back by
`rewind(cursor, seconds)` (sync's overlap window, to catch edits and deletions near the cursor); a
checkpoint equal to the rewound cursor it was handed (nothing newer seen) keeps the saved cursor.

**Conventions**:
- every record carries an `Origin(file, line)` (an API: the request URL and index) so a reject cites it;
- input that cannot become a record is an `Unreadable(record_kind, code, reason, raw, origin)` (a reject,
  never a silent drop; codes CM001-CM006 of validate/rules.py); a deliberate omission is a
  `Skipped(record_kind, reason, raw, origin)`;
- a field of the wrong JSON type is left out and kept as read in `props["unreadable_fields"]` (CM120; see
  _fields.py);
- a file the source refers to but does not hold the bytes of gets `props["missing"] = True` and a
  `props["missing_reason"]` (CM118); `open_file(file)` (capability `files`) gives the bytes it does hold;
- text is canonical Markdown (`@username`, `~channel`, `[label](url)`); when conversion changed it, the
  original is in `props["source_text"]`; the source's own subtype or code stays in `props`;
- `User.role` is one of `ROLES`, `Message.kind` one of `MESSAGE_KINDS`, `Channel.kind` one of
  `CHANNEL_KINDS` (closed vocabularies, checked by schemas/*.schema.json); a source's own names are
  mapped through mappings/*.toml (`chatmigrate.mappings.table`).
- secrets (tokens) come from the environment or options and never reach a message, origin or record.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, ClassVar

from chatmigrate.model import File, Item
from chatmigrate.options import Option, declared

# The closed vocabularies (schemas/user|message|channel.schema.json hold the same lists; a test checks it).
ROLES = ("owner", "admin", "member", "guest", "bot")
CHANNEL_KINDS = ("public", "private", "direct", "group")
MESSAGE_KINDS = (
    "normal", "bot", "me", "tombstone", "encrypted", "file_comment", "custom",
    "system_join", "system_leave", "system_add", "system_remove", "system_topic", "system_purpose",
    "system_rename", "system_archive", "system_unarchive", "system_pin", "system_unpin",
    "system_convert_to_private", "system_posting_permissions", "system_bot_add", "system_bot_remove",
    "system_joiner_notification", "system_retention", "system_canvas_updated", "system_huddle",
    "system_reminder", "system_discussion_created",
    # any other system message: the source's own code stays in props
    "system_other",
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a source can do beyond reading everything once."""

    incremental: bool = False  # records(since) reads, per channel with a cursor, only what changed after it
    rewind: bool = False  # rewind(cursor, seconds) moves a cursor back (sync's overlap window applies)
    files: bool = False  # open_file(file) can give the bytes of (some of) the files it lists


NO_CAPABILITIES = Capabilities()



def capabilities_of(source: Any) -> Capabilities:
    """A source's (class or instance) declared capabilities; none for one that declares none."""
    declared_capabilities = getattr(source, "capabilities", None)
    return declared_capabilities if isinstance(declared_capabilities, Capabilities) else NO_CAPABILITIES


class Source(ABC):
    """Base class of the built-in sources (see the module docstring for the whole contract)."""

    name: ClassVar[str]
    source: ClassVar[str]
    known_options: ClassVar[Mapping[str, Option]] = {}
    capabilities: ClassVar[Capabilities] = NO_CAPABILITIES

    def __init__(self, location: str, options: Mapping[str, str] | None = None) -> None:
        self.location = location
        self.options = dict(options or {})

    @classmethod
    @abstractmethod
    def detect(cls, location: str) -> bool:
        """Whether `location` is this source's form; cheap, and never raises."""

    @property
    @abstractmethod
    def scope(self) -> str:
        """The workspace/team/server the records belong to (part of every id)."""

    @abstractmethod
    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]:
        """The stream, in the order the module docstring gives."""

    def option(self, name: str, default: Any = None) -> Any:
        """Option `name` parsed as declared (the CLI and sync have checked it), else `default`."""
        text = self.options.get(name)
        if text is None or text == "":
            return default
        spec = (declared(type(self)) or {}).get(name)
        return spec.parse(text) if spec is not None else text

    def rewind(self, cursor: str, seconds: float) -> str:
        """The cursor `seconds` earlier (only called when `capabilities.rewind`)."""
        return cursor

    def open_file(self, file: File) -> IO[bytes] | None:
        """The bytes of `file` when this source holds them (capability `files`), else None."""
        return None
