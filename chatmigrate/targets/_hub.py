"""The base of chat-server targets that take the records into a hub first: the `cm_` tables of a SQL
database (a SQLite file by default), written by the SQL loaders, from which the server's own form is
made after the last record (`complete`): a Mattermost package, 蓝莺IM's API calls. The hub gives them
per-channel cursors, run records, the sync lock and flat memory; a subclass sets `hub_url`, `prefix`
and `summary_key` and implements `checks`, `load` and `complete`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, ClassVar

from chatmigrate.loaders import Loader, loader_for
from chatmigrate.redact import redact
from chatmigrate.targets.contract import RunInfo, Target


class HubTarget(Target):
    # The key under which finish_run records the target's summary in cm_runs.
    summary_key: ClassVar[str] = "output"

    hub_url: str
    prefix: str
    _hub: Loader | None = None
    _run: RunInfo | None = None
    _summary: dict[str, Any]

    @property
    def hub(self) -> Loader:
        if self._hub is None:
            # Building the loader connects to nothing: a dry run that only reads creates no file.
            self._hub = loader_for(self.hub_url, prefix=self.prefix)
            self._hub.retry_seconds = self.retry_seconds
        return self._hub

    @property
    def place(self) -> str:
        """What the target writes, for `sync --dry-run`'s note (a package path, a server)."""
        return self.safe_url

    def prepare(self) -> None:
        if self.hub_url.startswith("sqlite:///"):
            Path(self.hub_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.hub.prepare()

    def cursors(self, source: str, scope: str) -> dict[str, str]:
        return self.hub.cursors(source, scope)

    def cursor_state(self) -> tuple[bool, str]:
        exists, note = self.hub.cursor_state()
        return exists, f"{self.place}; hub {redact(self.hub_url)}: {note}"

    def start_run(self, info: RunInfo) -> str | None:
        self._run = info
        return self.hub.start_run(info)

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return self.hub.lock()

    def summary(self) -> dict[str, Any]:
        return dict(self._summary)

    def finish_run(self, status: str, counts: dict[str, Any]) -> None:
        self.hub.finish_run(status, {**counts, self.summary_key: {
            k: v for k, v in self._summary.items() if k != "lines"}})

    def close(self) -> None:
        if self._hub is not None:
            self._hub.close()
            self._hub = None
