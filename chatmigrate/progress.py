"""The progress bar's total: how many messages an export holds, once a run has counted them.

Counting needs a full read (the export's own metadata does not say), so the first run of an export shows
a count and a rate; any run that reads it to the end (`inspect`, `validate`, `migrate`) remembers the
number, and later runs of the same export show a percentage and an ETA. The cache is one small JSON
file (`$CHATMIGRATE_CACHE_DIR`, else `$XDG_CACHE_HOME/chatmigrate`, else `~/.cache/chatmigrate`), keyed
by the export's real path, size and modification time, so a changed export is counted again. Only local
paths are kept (a server URL may carry credentials and its history changes), and only by runs that show a
bar: scripts and tests leave no file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

# Exports remembered; the oldest are forgotten beyond this.
MAX_ENTRIES = 200


def cache_file() -> Path:
    base = os.environ.get("CHATMIGRATE_CACHE_DIR")
    if base:
        return Path(base) / "totals.json"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "chatmigrate" / "totals.json"


def export_key(location: str, extractor: str) -> str | None:
    """What identifies this export's content cheaply: real path, size and mtime (None: not a local path)."""
    if "://" in location:
        return None
    try:
        path = Path(location).resolve()
        stat = path.stat()
        if path.is_dir():  # a folder export: its newest top-level change stands for it
            stat = max((p.stat() for p in path.iterdir()), key=lambda s: s.st_mtime_ns, default=stat)
    except OSError:
        return None
    return f"{extractor}|{path}|{stat.st_size}|{stat.st_mtime_ns}"


def _read() -> dict[str, int]:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, int)}


def known_total(key: str | None) -> int | None:
    return _read().get(key) if key else None


def remember_total(key: str | None, messages: int) -> None:
    """Keep the count for the next run; a cache that cannot be written is no reason to fail a run."""
    if key is None:
        return
    totals = _read()
    totals.pop(key, None)
    totals[key] = messages
    kept = dict(list(totals.items())[-MAX_ENTRIES:])
    target = cache_file()
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=".totals-", suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump(kept, out)
        os.replace(name, target)  # atomic: a concurrent run reads the old file or the new one
