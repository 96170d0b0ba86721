"""`chatmigrate files`: what is present, still to fetch, missing, refused or failed, for an export
(through its extractor) or for a `cm_` hub (its cm_files rows); `--fetch` brings in what is missing."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from tqdm import tqdm

from chatmigrate.files import Downloads, default_files_dir
from chatmigrate.files.download import MISSING, PENDING, PRESENT, Downloader, Job, Limits, Outcome, host_of, summarise
from chatmigrate.loaders.rows import _file_row
from chatmigrate.loaders.schema import build_metadata
from chatmigrate.model import File, Message
from chatmigrate.redact import redact
from chatmigrate.targets._filestore import FileStore

# The file hosts each source links to; an API source's files live on its own server (the URL's host).
SOURCE_HOSTS = {"slack": ["files.slack.com"]}


def _bar(total: int | None, progress: bool) -> tqdm | None:  # type: ignore[type-arg]
    if not progress:
        return None
    return tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024, desc="files", file=sys.stderr,
                dynamic_ncols=True)


def _outcome_of(file: File) -> Outcome:
    # No outcome recorded: the export holds the bytes (path), they are still to fetch, or the source has
    # none to give (a deleted file's tombstone carries no URL).
    status = file.props.get("bytes") or (PRESENT if file.path else PENDING if file.source_url else MISSING)
    return Outcome(status, file.sha256, file.size, file.props.get("bytes_reason"))


def export_files(extractor: Any, progress: bool) -> dict[str, Any]:
    """Read the export through its extractor (downloading when its options say so) and summarise."""
    downloads: Downloads | None = getattr(extractor, "downloads", None)
    bar = None
    if downloads is not None and downloads.enabled:
        # A first pass without network tells the bar how many bytes are still to come (its ETA).
        todo = sum(o.size or 0 for o, _ in _export_outcomes(extractor.records()) if o.status != PRESENT)
        extractor = type(extractor)(extractor.location, extractor.options)
        downloads = extractor.downloads
        bar = _bar(todo, progress)
        downloads.downloader.on_bytes = bar.update if bar is not None else None
    try:
        summary = summarise(_export_outcomes(extractor.records()))
    finally:
        if bar is not None:
            bar.close()
    fetched = {"files": downloads.fetched_files, "bytes": downloads.fetched_bytes} if downloads else {}
    return {"files": summary, "fetched": fetched,
            "store": str(downloads.store.root) if downloads and downloads.store else None}


def _export_outcomes(items: Iterator[Any]) -> Iterator[tuple[Outcome, str | None]]:
    seen: set[str] = set()
    for item in items:
        for file in item.files if isinstance(item, Message) else ():
            if file.id not in seen:  # a file posted in ten messages is one file
                seen.add(file.id)
                yield _outcome_of(file), file.source_url


def hub_files(url: str, *, prefix: str, files_dir: Path | None, fetch: bool, token: str | None,
              allow_hosts: list[str], progress: bool, limits: Limits | None = None,
              workers: int = 8) -> dict[str, Any]:
    """Summarise (and with `fetch`, complete) the files of a `cm_` hub into its store folder."""
    folder = files_dir or default_files_dir(url)
    table = build_metadata(prefix).tables[f"{prefix}files"]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(table))]
        fetched = {"files": 0, "bytes": 0}
        if fetch:
            if folder is None:
                raise _usage("--fetch needs --files-dir for a hub that is not SQLite")
            fetched = _fetch_rows(engine, table, rows, FileStore(folder), token, allow_hosts, progress, limits,
                                  workers)
        summary = summarise((_outcome_of(_file(r)), r["source_url"]) for r in rows)
    finally:
        engine.dispose()
    return {"files": summary, "fetched": fetched, "store": str(folder) if folder else None}


def _usage(message: str) -> Exception:
    from chatmigrate.errors import UsageError

    return UsageError(message)


def _file(row: dict[str, Any]) -> File:
    props = row["props"]
    if isinstance(props, (str, bytes)):
        props = orjson.loads(props)
    return File(row["id"], row["source"], row["source_id"], row["name"], row["mime_type"], row["size"], row["sha256"],
                row["source_url"], row["path"], row["created_at"], props or {})


def _fetch_rows(engine: sa.Engine, table: sa.Table, rows: list[dict[str, Any]], store: FileStore,
                token: str | None, allow_hosts: list[str], progress: bool, limits: Limits | None,
                workers: int) -> dict[str, int]:
    todo = [r for r in rows if _outcome_of(_file(r)).status != PRESENT and not r["path"] and r["source_url"]]
    hosts = allow_hosts or sorted({h for r in todo for h in SOURCE_HOSTS.get(r["source"], [host_of(r["source_url"])])})
    downloader = Downloader(store, allow_hosts=hosts, token=token, workers=workers, limits=limits or Limits())
    bar = _bar(sum(r["size"] or 0 for r in todo), progress)
    downloader.on_bytes = bar.update if bar is not None else None
    by_id = {r["id"]: r for r in todo}
    fetched = {"files": 0, "bytes": 0}
    try:
        jobs = (Job(r["id"], r["source_url"], r["size"], r["sha256"]) for r in todo)
        for job, outcome in downloader.fetch_all(jobs):
            fetched["files"] += bool(outcome.fetched)
            fetched["bytes"] += outcome.fetched
            _save(engine, table, by_id[job.key], outcome)
    finally:
        if bar is not None:
            bar.close()
    return fetched


def _save(engine: sa.Engine, table: sa.Table, row: dict[str, Any], outcome: Outcome) -> None:
    """Write the outcome into the row the same way a migrate run with downloads would have (same props,
    same row_hash), so a later migrate sees it unchanged and writes nothing."""
    file = _file(row)
    props = {**file.props, "bytes": outcome.status}
    props.pop("bytes_reason", None)
    if outcome.reason:
        props["bytes_reason"] = outcome.reason
    if outcome.status == PRESENT and outcome.sha256:
        props["store"] = f"{outcome.sha256[:2]}/{outcome.sha256}"
        props.pop("missing", None)
        file = replace(file, sha256=outcome.sha256, size=outcome.size)
    values = _file_row(replace(file, props=props), row["message_id"])
    columns = [c.name for c in table.columns]
    update = dict(zip(columns, values, strict=True))
    # Untyped columns: props goes in as the loader writes it (sorted JSON text), so row_hash matches.
    plain = sa.table(table.name, *(sa.column(name) for name in columns))
    with engine.begin() as conn:
        conn.execute(plain.update().where(plain.c.id == row["id"]).values(
            {k: v for k, v in update.items() if k != "id"}))
    row.update({**update, "props": props})


def lines(result: dict[str, Any]) -> Iterator[str]:
    """The human summary."""
    files = result["files"]
    for status in ("present", "pending", "missing", "refused", "failed", "skipped"):
        entry = files.get(status) or {"files": 0, "bytes": 0}
        label = "to fetch" if status == PENDING else status
        yield f"{label:>9}: {entry['files']} files, {entry['bytes']} bytes"
    if files.get("hosts"):
        yield "    hosts: " + ", ".join(f"{h} ({n})" for h, n in sorted(files["hosts"].items()))
    if result.get("fetched"):
        yield f"  fetched: {result['fetched']['files']} files, {result['fetched']['bytes']} bytes this run"
    if result.get("store"):
        yield f"    store: {result['store']}"


def echo_lines(result: dict[str, Any], echo: Callable[[str], None]) -> None:
    for line in lines(result):
        echo(redact(line))
