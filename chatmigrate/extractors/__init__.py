"""Extractors: one per source form, found through the `chatmigrate.extractors` entry-point group.

The contract every built-in and third-party extractor keeps (stream order, checkpoints, cursors, options,
capabilities, conventions, and the minimum a new source writes) is in `contract.py`, with the `Source`
base class the built-ins share; `Extractor` below is the same contract as a structural protocol, for
third-party classes that do not subclass `Source`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import ClassVar, Protocol

from chatmigrate.errors import InputError, UsageError
from chatmigrate.extractors._files import ExportFiles, looks_like_zip
from chatmigrate.extractors.contract import Capabilities, Source, capabilities_of
from chatmigrate.model import Item

GROUP = "chatmigrate.extractors"
__all__ = ["GROUP", "Capabilities", "Extractor", "Source", "capabilities_of", "detect", "load", "registered"]


class Extractor(Protocol):
    name: ClassVar[str]
    source: ClassVar[str]

    @classmethod
    def detect(cls, location: str) -> bool: ...

    def __init__(self, location: str, options: Mapping[str, str] | None = None) -> None: ...

    @property
    def scope(self) -> str: ...

    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]: ...


def registered() -> dict[str, EntryPoint]:
    """Every installed extractor by name (built-ins are registered the same way as plugins)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load(name: str) -> type[Extractor]:
    found = registered()
    if name not in found:
        known = ", ".join(sorted(found)) or "none (is chatmigrate installed with `pip install -e .`?)"
        raise UsageError(f"unknown source {name!r}; known: {known}")
    return found[name].load()


def detect(location: str) -> type[Extractor]:
    """The one extractor that recognises `location`; a clear error when none or several do."""
    matches = [cls for cls in (ep.load() for ep in registered().values()) if cls.detect(location)]
    if not matches:
        _unreadable_path(location)
        raise UsageError(f"{location}: not a source chatmigrate recognises (a Slack export zip or folder, a "
                         "Mattermost bulk export, a Rocket.Chat mongodump); name the form with --from")
    if len(matches) > 1:
        names = ", ".join(sorted(m.name for m in matches))
        raise UsageError(f"{location}: looks like several sources ({names}); choose one with --from")
    return matches[0]


def _unreadable_path(location: str) -> None:
    """Say why no extractor recognised `location` when the cause is the path itself: naming the form
    with --from would not help with a path that does not exist or an archive that cannot be read."""
    if "://" in location:
        return  # a server URL: only the API extractors can judge it
    path = Path(location)
    if not path.exists():
        raise InputError("no such file or folder; check the path", location=location)
    if path.is_file() and looks_like_zip(path):
        files = ExportFiles(location)  # raises InputError saying why the archive cannot be read
        try:
            # The top-level members (users.json, import.jsonl…) are what detection reads: say if one is damaged.
            for name in [n for n in files.names() if "/" not in n][:50]:
                with files.open(name) as handle:
                    handle.read(1 << 16)
        finally:
            files.close()
