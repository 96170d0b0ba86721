"""Helpers of the target tests: an extractor over given canonical records, a package reader."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, ClassVar

from chatmigrate.model import File, Item


class RecordSource:
    """An extractor over a given stream of canonical records (for contract tests of targets)."""

    name: ClassVar[str] = "records"
    source: ClassVar[str] = "synth"

    def __init__(self, make: Callable[[], Iterator[Item]], scope: str = "W1",
                 file_bytes: Mapping[str, bytes] | None = None) -> None:
        self._make = make
        self._scope = scope
        self._bytes = dict(file_bytes or {})

    @classmethod
    def detect(cls, location: str) -> bool:
        return False

    @property
    def scope(self) -> str:
        return self._scope

    def records(self, since: Mapping[str, str] | None = None) -> Iterator[Item]:
        return self._make()

    def open_file(self, file: File) -> IO[bytes] | None:
        """The bytes given for a file id, as an export member would give them."""
        data = self._bytes.get(file.id)
        return io.BytesIO(data) if data is not None else None


def unzip_lines(package: Path) -> list[dict[str, Any]]:
    """The JSONL lines of a Mattermost package, parsed."""
    with zipfile.ZipFile(package) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".jsonl") and "/" not in n)
        return [json.loads(line) for line in archive.read(name).splitlines()]
