"""The pipeline runner (DESIGN §1): extract → validate → load, with progress and accounting.

It owns what no single stage can know: counting every record read, rejected, skipped, added
(placeholders) and loaded per kind, and checking `read + added = loaded + rejected + skipped` at the
end of every run.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from chatmigrate.errors import ChatmigrateError
from chatmigrate.extractors import Extractor
from chatmigrate.mapping import MappingSpec, MappingStep
from chatmigrate.model import (
    RECORD_KINDS,
    Channel,
    Checkpoint,
    Item,
    Message,
    Rejected,
    Skipped,
    Unreadable,
    nested_counts,
)
from chatmigrate.progress import export_key, known_total, remember_total
from chatmigrate.redact import redact
from chatmigrate.targets.contract import RunInfo, Target
from chatmigrate.validate import Accounting, ValidationOptions, Validator
from chatmigrate.validate.findings import FindingSink

COUNT_COLUMNS = ("read", "added", "loaded", "rejected", "skipped")


class AccountingError(ChatmigrateError):
    """The run lost track of records: a bug, reported loudly rather than hidden."""


@dataclass
class RunResult:
    command: str
    source: str
    location: str
    target: str | None
    dry_run: bool
    counts: dict[str, dict[str, int]]
    sink: FindingSink
    rows_written: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    per_channel: dict[str, int] = field(default_factory=dict)
    # For reports: channel id → name, and messages loaded (or that would be) per "YYYY-MM".
    channel_names: dict[str, str] = field(default_factory=dict)
    per_month: dict[str, int] = field(default_factory=dict)
    # What the target needed: transactions retried after a transient failure, and text repaired
    # because the database would refuse it ("table.column: repair" → count; originals in props).
    retries: int = 0
    repairs: dict[str, int] = field(default_factory=dict)
    # What the target produced beyond rows (a package path, its line counts…); see Target.summary.
    target_summary: dict[str, Any] = field(default_factory=dict)
    # What `--map` did (users merged or created, channels renamed, what it left out); None without one.
    mapping_plan: dict[str, Any] | None = None

    @property
    def errors(self) -> int:
        return self.sink.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.command, "source": self.source, "location": self.location, "target": self.target,
            "dry_run": self.dry_run, "counts": self.counts, "rows_written": self.rows_written,
            "load": {"retries": self.retries, "repairs": dict(sorted(self.repairs.items()))},
            "target_output": self.target_summary, "mapping": self.mapping_plan,
            "findings": dict(sorted(self.sink.counts.items())),
            "rejects_file": str(self.sink.rejects_path) if self.sink.wrote_rejects else None,
            "first_message_at": self.first_at.isoformat() if self.first_at else None,
            "last_message_at": self.last_at.isoformat() if self.last_at else None,
        }


@dataclass(frozen=True, slots=True)
class RunOptions:
    command: str
    location: str
    rejects_path: Path | None = None
    max_errors: int | None = None
    progress: bool = True
    validation: ValidationOptions = field(default_factory=ValidationOptions)
    mapping: MappingSpec | None = None


class _Tally:
    """Counts records by kind as they pass one point of the stream."""

    def __init__(self) -> None:
        self.by_kind: dict[str, int] = dict.fromkeys(RECORD_KINDS, 0)
        self.first_at: datetime | None = None
        self.last_at: datetime | None = None

    def add(self, item: Any) -> None:
        if type(item) is Message:
            # The hot path (twice per message per run): the same counts as below, without the
            # generic lookups and the nested_counts dict (benchmarks/README.md).
            by_kind = self.by_kind
            by_kind["messages"] += 1
            if item.reactions:
                by_kind["reactions"] += len(item.reactions)
            if item.files:
                by_kind["files"] += len(item.files)
            created = item.created_at
            if type(created) is datetime and created.tzinfo:
                if self.first_at is None or created < self.first_at:
                    self.first_at = created
                if self.last_at is None or created > self.last_at:
                    self.last_at = created
            return
        kind = getattr(item, "record_kind", None)
        if kind is None:
            return
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        if isinstance(item, (Unreadable, Skipped)):
            return
        for nested, n in nested_counts(item).items():
            self.by_kind[nested] += n
        if isinstance(item, Message) and isinstance(item.created_at, datetime) and item.created_at.tzinfo:
            if self.first_at is None or item.created_at < self.first_at:
                self.first_at = item.created_at
            if self.last_at is None or item.created_at > self.last_at:
                self.last_at = item.created_at


def _tallied(items: Iterator[Item], tally: _Tally) -> Iterator[Item]:
    for item in items:
        tally.add(item)
        yield item


def _with_progress(items: Iterator[Item], enabled: bool, label: str, export: str | None = None) -> Iterator[Item]:
    """A bar of the messages passing; with a percentage and an ETA when an earlier run counted this
    export (`export`, a progress.export_key), and the count kept for the next run once the stream ends."""
    key = export if enabled else None
    total = known_total(key)
    bar = tqdm(desc=label, unit=" msg", total=total, file=sys.stderr, disable=not enabled, mininterval=0.5,
               smoothing=0.1)
    counted = 0
    try:
        for item in items:
            if isinstance(item, Message):
                counted += 1
                if total is not None and counted > total:  # the export grew: no percentage beyond 100
                    total = bar.total = None
                bar.update(1)
            yield item
        remember_total(key, counted)
    finally:
        bar.close()


def _records_only(items: Iterator[Item], loaded: _Tally, per_channel: dict[str, int],
                  names: dict[str, str], months: dict[tuple[int, int], int]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, Checkpoint):
            yield item
            continue
        loaded.add(item)
        if isinstance(item, Message):
            per_channel[item.channel_id] = per_channel.get(item.channel_id, 0) + 1
            month = (item.created_at.year, item.created_at.month)
            months[month] = months.get(month, 0) + 1
        elif isinstance(item, Channel):
            names[item.id] = item.name
        yield item


def _keep_saved_cursors(items: Iterator[Item], saved: Mapping[str, str],
                        handed: Mapping[str, str]) -> Iterator[Item]:
    """A channel checkpoint that reports back exactly the adjusted cursor it was handed saw nothing
    newer: keep the saved cursor, so an overlap window does not walk cursors back run after run."""
    for item in items:
        if (isinstance(item, Checkpoint) and item.channel_id in saved
                and item.cursor == handed.get(item.channel_id)):
            item = dataclasses.replace(item, cursor=saved[item.channel_id])
        yield item


def run(extractor: Extractor, target: Target | None, options: RunOptions,
        cursor_adjust: Callable[[str], str] | None = None, *, dry_run: bool = False) -> RunResult:
    """Run one migration into `target`, or a dry run (`dry_run`, or no target) that writes nothing.

    A dry run with a target applies the target's own checks (`Target.checks`) without writing, so
    `validate --to …` reports what that target would refuse or change. `cursor_adjust` (sync's
    overlap window) maps each saved cursor before the extractor sees it."""
    sink = FindingSink(options.rejects_path, options.max_errors)
    accounting = Accounting()
    read, loaded = _Tally(), _Tally()
    per_channel: dict[str, int] = {}
    names: dict[str, str] = {}
    months: dict[tuple[int, int], int] = {}
    writer = None if dry_run else target
    if writer is not None:
        writer.prepare()
    since = writer.cursors(extractor.source, extractor.scope) if writer is not None else None
    source: Iterator[Item]
    if since and cursor_adjust is not None:
        handed = {channel: cursor_adjust(cursor) for channel, cursor in since.items()}
        raw = extractor.records(since=handed)
        source = _keep_saved_cursors(raw, since, handed)
    else:
        raw = source = extractor.records(since=since)
    stream: Iterator[Item] = _tallied(source, read)
    # The bar counts messages as read, before validation and the mapping leave any out: its total is
    # the export's (what `inspect` counts), the same whatever a run then rejects or skips.
    stream = _with_progress(stream, options.progress, f"{options.command} {extractor.name}",
                            export_key(options.location, extractor.name))
    stream = Validator(sink, options.validation, accounting)(stream)
    mapping_step = None
    if options.mapping is not None:
        # Existing users are read even in a dry run (reading only): `validate --map` shows the plan.
        existing = target.existing_users() if target is not None else ()
        mapping_step = MappingStep(options.mapping, existing, sink, accounting)
        stream = mapping_step(stream)
    target_checks = target.checks(sink) if target is not None else None
    if target_checks is not None:
        stream = _target_checked(target_checks(stream), accounting)
    records = _records_only(stream, loaded, per_channel, names, months)
    status = "failed"
    rows_written = 0
    if writer is not None:
        writer.start_run(RunInfo(options.command, extractor.name, options.location,
                                 getattr(extractor, "open_file", None)))
    try:
        if writer is not None:
            rows_written = writer.load(records).rows_written
            writer.complete(options.progress)
        else:
            for _ in records:
                pass
        status = "ok"
    finally:
        # A run that stops early (--max-errors, an error) ends the source now, while everything it
        # holds is alive (files, a parsing process and its pipe), not whenever the collector gets to it.
        _close(raw)
        sink.close()
        counts = _counts(read, loaded, accounting)
        if writer is not None:
            load = {"retries": writer.stats.retries, "repairs": dict(writer.stats.repairs)}
            writer.finish_run(status if status != "ok" or not sink.errors else "rejects", {**counts, "load": load})
    _check_identity(counts)
    # The location as given may carry credentials (an API URL with user:password@): never shown.
    return RunResult(options.command, extractor.name, redact(options.location),
                     target.safe_url if target is not None else None, writer is None, counts, sink, rows_written,
                     read.first_at, read.last_at, per_channel, names,
                     {f"{y:04d}-{m:02d}": n for (y, m), n in sorted(months.items())},
                     writer.stats.retries if writer is not None else 0,
                     dict(writer.stats.repairs) if writer is not None else {},
                     target.summary() if target is not None else {},
                     mapping_step.plan.as_json() if mapping_step is not None else None)


def _close(items: Iterator[Item]) -> None:
    close = getattr(items, "close", None)
    if callable(close):
        close()


def _target_checked(items: Iterator[Item], accounting: Accounting) -> Iterator[Item]:
    """A target's checks reject a record by turning it into a `Rejected` item: counted here, dropped."""
    for item in items:
        if isinstance(item, Rejected):
            if not item.nested_only:
                accounting.bump(accounting.rejected, item.record_kind)
            for nested, n in nested_counts(item.record).items():
                accounting.bump(accounting.rejected, nested, n)
            continue
        yield item


def _counts(read: _Tally, loaded: _Tally, accounting: Accounting) -> dict[str, dict[str, int]]:
    kinds = [k for k in RECORD_KINDS] + sorted(set(read.by_kind) - set(RECORD_KINDS))
    return {kind: {"read": read.by_kind.get(kind, 0), "added": accounting.added.get(kind, 0),
                   "loaded": loaded.by_kind.get(kind, 0), "rejected": accounting.rejected.get(kind, 0),
                   "skipped": accounting.skipped.get(kind, 0)} for kind in kinds}


def _check_identity(counts: dict[str, dict[str, int]]) -> None:
    for kind, c in counts.items():
        if c["read"] + c["added"] != c["loaded"] + c["rejected"] + c["skipped"]:
            raise AccountingError(
                f"accounting does not balance for {kind}: read {c['read']} + added {c['added']} != loaded "
                f"{c['loaded']} + rejected {c['rejected']} + skipped {c['skipped']}; please report this bug")


@dataclass
class Inventory:
    source: str
    location: str
    scope: str
    counts: dict[str, int]
    first_at: datetime | None
    last_at: datetime | None
    unreadable: int
    skipped: int

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "location": self.location, "scope": self.scope,
                "counts": {k: {"read": v} for k, v in self.counts.items()}, "unreadable": self.unreadable,
                "skipped": self.skipped,
                "first_message_at": self.first_at.isoformat() if self.first_at else None,
                "last_message_at": self.last_at.isoformat() if self.last_at else None}


def inventory(extractor: Extractor, location: str, progress: bool = True) -> Inventory:
    """Count what an export holds, per kind, and its date range; no validation, nothing written."""
    tally = _Tally()
    unreadable = skipped = 0
    for item in _with_progress(extractor.records(), progress, f"inspect {extractor.name}",
                               export_key(location, extractor.name)):
        tally.add(item)
        unreadable += isinstance(item, Unreadable)
        skipped += isinstance(item, Skipped)
    # The location as given may carry credentials (an API URL with user:password@): never shown.
    return Inventory(extractor.name, redact(location), extractor.scope, tally.by_kind, tally.first_at,
                     tally.last_at, unreadable, skipped)
