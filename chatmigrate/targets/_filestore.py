"""File bytes copied out of a source while it is open, stored once by content; shared by the chat-server
targets (the Mattermost package is written after the stream, the Rocket.Chat target uploads into GridFS
only what is new or changed)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO


class FileStore:
    """File bytes stored once by content: `<root>/<sha256[:2]>/<sha256>`. The same picture posted in
    ten channels is one file; a partial copy never takes a final name (written, then renamed)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str | None) -> bool:
        return bool(sha256) and self.path(sha256).is_file()  # type: ignore[arg-type]

    def put(self, handle: IO[bytes]) -> tuple[str, int]:
        """Copy the stream into the store; return its SHA-256 and size."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with tempfile.NamedTemporaryFile(dir=self.root, prefix=".part-", delete=False) as temp:
            try:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
                    size += len(chunk)
                    temp.write(chunk)
            except BaseException:
                temp.close()
                os.unlink(temp.name)
                raise
        final = self.path(digest.hexdigest())
        final.parent.mkdir(exist_ok=True)
        os.replace(temp.name, final)
        return digest.hexdigest(), size
