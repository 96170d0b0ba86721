"""The target contract: what every place chatmigrate writes into declares and does.

A target is found by the scheme of its URL (`--to`) through the `chatmigrate.targets` entry-point
group (targets/__init__.py). The pipeline drives every target the same way:

    target.prepare()                       # create what the target needs (schema, folders)
    since = target.cursors(source, scope)  # only when capabilities.cursors
    target.start_run(info)
    stream = target.checks(sink)(stream)   # the target's own rules, as findings (optional)
    target.load(records)                   # Records and Checkpoints, in stream order
    target.complete(progress)              # whatever happens after the last record (a package)
    target.finish_run(status, counts)
    target.close()

Rules every target keeps (tests/targets/test_conformance.py checks each one on every target):
- a second run of the same records changes nothing in the target (`stats.rows_written == 0`, and a
  file target writes byte-identical output or none);
- a Checkpoint's cursor is never saved ahead of the records before it: after a crash, what the
  cursor says was written has been;
- every record handed to `load` is counted in `stats.records`;
- secrets (passwords, tokens) never appear in `safe_url`, `summary()` or anything stored.

A target that is not a SQL database does not need a SQL engine to fit: only this class.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from chatmigrate.errors import UsageError
from chatmigrate.model import Checkpoint, Item, Record, User

if TYPE_CHECKING:
    from chatmigrate.validate.findings import FindingSink

Stage = Callable[[Iterator[Item]], Iterator[Item]]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a target can do; the pipeline, `sync` and the reports read these instead of guessing."""

    # A batch and the cursors that follow it commit atomically (else: written, then recorded).
    transactions: bool
    # Saves per-channel sync cursors, so a later run reads only what changed.
    cursors: bool
    # Can hold a lock that keeps overlapping scheduled runs apart.
    lock: bool
    # A later run writes only what changed since the previous one (a delta), not everything again.
    delta_output: bool = False
    # The longest message text kept in one message, in characters (None: no limit).
    max_text: int | None = None
    # Users need an email address there.
    needs_email: bool = False
    # Copies the bytes of the source's files (RunInfo.open_file) while the run lasts: a source can give
    # them only from the state of its records() pass, so the CLI keeps such a source in its own process.
    file_bytes: bool = False
    # What the target does with text it cannot store as is (shown by `chatmigrate targets`).
    text_rules: str = ""


@dataclass(slots=True)
class LoadStats:
    """What a load did: records handed over, rows actually inserted or changed, commits made."""

    records: int = 0
    rows_written: int = 0
    commits: int = 0
    # Transactions repeated after a transient failure (dropped connection, server restart).
    retries: int = 0
    # "table.column: repair" -> count; the originals are kept in the rows' props.
    repairs: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunInfo:
    command: str
    source: str
    location: str
    # Opens the bytes of a File the source holds (an export member), or None when it holds none;
    # targets that carry file bytes (a chat server package) copy them while the source is at hand.
    open_file: Callable[[Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class ExistingUser:
    """A user the target already holds, onto which a mapping (`--map`, issue 13) can merge source users.

    `id` is the canonical id every reference to a merged source user is rewritten to (the cm_users id
    in a SQL hub; an id the target derives from its own user id elsewhere). `target_id` is the
    target's own id for the user (a Rocket.Chat `_id`, a 蓝莺IM user_id, a Mattermost user id).
    `record`: the full canonical record when the target holds one (a SQL hub); the mapping step then
    hands the target that record unchanged, so a merge rewrites nothing of the existing user."""

    id: str
    username: str
    email: str | None = None
    target_id: str | None = None
    display_name: str | None = None
    record: User | None = None
    # What else the target needs to refer to the user without changing it (Mattermost: auth_service,
    # auth_data, roles, locale), handed back in the merged record's EXISTING_USER_PROP marker.
    extra: dict[str, Any] = field(default_factory=dict)


class Target:
    """Base of every target. Subclasses set `scheme`, `capabilities` and implement `load`."""

    scheme: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities(transactions=False, cursors=False, lock=False)

    stats: LoadStats
    # How long a transient failure (lost connection, server restart) is retried (`--retry-for`).
    retry_seconds: float = 60.0

    @property
    def safe_url(self) -> str:
        """The target's URL with every secret hidden: the only form that may be printed or stored."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Create what the target needs on first use; refuse one written by a newer chatmigrate."""

    def cursors(self, source: str, scope: str) -> dict[str, str]:
        """The saved cursor of every channel of one source and scope ({} when the target keeps none)."""
        return {}

    def cursor_state(self) -> tuple[bool, str]:
        """Whether the target already holds sync cursors, and a note for `sync --dry-run`; creates and
        writes nothing."""
        return False, "this target keeps no cursors: every run reads everything"

    def existing_users(self) -> Iterable[ExistingUser]:
        """The users the target already holds, for a mapping that merges onto them (`match = "email"`).
        Reads only; creates and writes nothing. A target that cannot tell yields none.

        A User record the mapping step merged onto one of these carries
        `props[EXISTING_USER_PROP] = {"target_id", "username", "email"}` (model.py): the target must not
        create or overwrite that user, only refer to it (memberships, authorship, reactions)."""
        return ()

    def start_run(self, info: RunInfo) -> str | None:
        return None

    def checks(self, sink: FindingSink) -> Stage | None:
        """A stream stage that applies the target's own rules (names, sizes, required fields) and
        reports them as findings with their location; None when the target has none."""
        return None

    def load(self, items: Iterable[Record | Checkpoint]) -> LoadStats:
        raise NotImplementedError

    def complete(self, progress: bool = False) -> None:
        """After the last record: finish what the target writes as a whole (a package, an index)."""

    def summary(self) -> dict[str, Any]:
        """What this target produced, for `--json` and the printed summary (no secrets)."""
        return {}

    def finish_run(self, status: str, counts: dict[str, Any]) -> None:
        """Record the outcome of the run where the target keeps such things (cm_runs)."""

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold this target's sync lock for the block; raise `Locked` at once if another run has it."""
        raise UsageError(f"{self.safe_url}: chatmigrate cannot lock this kind of target for a sync")
        yield  # pragma: no cover - makes this a generator

    def close(self) -> None:
        """Release connections and files."""
