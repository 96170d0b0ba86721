"""File bytes a source only links to, made present: the extractor options that turn downloads on, the
stream stage that fetches them (in order, a bounded window ahead) and `open_file` from the store.

A source that links to its files (slack-export's `url_private`) builds a `Downloads` from its `-o`
options; its records pass through `Downloads.stage`, which sets each File's sha256/size and
`props.bytes` (present / missing / refused / failed / skipped, with `props.bytes_reason`) and
`props.store` (the path inside the store), so the `cm_` hub rows say where the bytes are; its
`open_file` then hands the stored bytes to every target that carries them (Mattermost, Rocket.Chat).
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from chatmigrate.errors import UsageError
from chatmigrate.files.download import PRESENT, Downloader, Job, Limits, Outcome, host_of, parse_hosts

__all__ = ["OPTIONS", "Downloads", "default_files_dir", "env_token", "parse_hosts", "with_cli_options"]
from chatmigrate.model import Emoji, File, Item, Message, Origin, Skipped
from chatmigrate.redact import remember
from chatmigrate.targets._filestore import FileStore

OPTIONS: dict[str, str] = {
    "download": "true: fetch file bytes the export only links to (needs token_env)",
    "token_env": "name of the environment variable holding the token for file downloads",
    "files_dir": "folder of the file store (default: next to an SQLite or mattermost-import target)",
    "files_allow_host": "comma-separated hosts downloads may contact (default: the source's own file hosts)",
    "max_file_bytes": "largest file downloaded, in bytes; larger ones are skipped (an integer)",
    "max_total_bytes": "total bytes downloaded per run; files beyond are skipped (an integer)",
    "download_workers": "downloads at once (an integer, default 8)",
}
# Messages held back while their files download: bounds memory and keeps the stream's order.
_WINDOW = 256


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _int(options: Mapping[str, str], name: str) -> int | None:
    value = options.get(name)
    return int(value) if value not in (None, "") else None


def default_files_dir(target_url: str | None) -> Path | None:
    """Where downloads go when no files_dir is given: next to an SQLite hub (`<db>.files/`), or the
    Mattermost package's own store (`<out.zip>.files/`), so the package reads them without a copy."""
    if not target_url:
        return None
    if target_url.startswith("sqlite:///"):
        return Path(unquote(urlsplit(target_url).path.removeprefix("/")) + ".files")
    if target_url.startswith("mattermost-import://"):
        return Path(unquote(urlsplit(target_url).path) + ".files")
    return None


def with_cli_options(options: dict[str, str], *, files_dir: Path | None, allow_hosts: tuple[str, ...],
                     target_url: str | None, accepted: Mapping[str, str] | None) -> dict[str, str]:
    """The extractor options with `--files-dir`/`--files-allow-host` and the default store folder
    filled in (only for an extractor that downloads)."""
    if accepted is None or "files_dir" not in accepted:
        if files_dir is not None or allow_hosts:
            raise UsageError("--files-dir/--files-allow-host: this source does not download files")
        return options
    options = dict(options)
    if allow_hosts:
        options["files_allow_host"] = ",".join(allow_hosts)
    # Only a run that downloads gets a store by default: others keep their rows as they were.
    folder = files_dir or (default_files_dir(target_url) if _flag(options.get("download")) else None)
    if folder is not None and "files_dir" not in options:
        options["files_dir"] = str(folder)
    return options


def env_token(name: str | None) -> str | None:
    """The token in environment variable `name` (tokens never come from the command line)."""
    if not name:
        return None
    token = os.environ.get(name)
    if not token:
        raise UsageError(f"token_env={name}: the environment variable {name} is not set")
    remember(token)  # masked wherever a library might echo it
    return token


class Downloads:
    """The download side of one source: its store, downloader and the hosts it links to."""

    def __init__(self, options: Mapping[str, str], default_hosts: list[str], where: str = "",
                 token: str | None = None, announce: bool = True, headers: Mapping[str, str] | None = None) -> None:
        """`token`: the source's own API token, for sources whose files need the same one (Mattermost);
        `headers`: the source's own authentication headers instead (Rocket.Chat's X-Auth-Token/X-User-Id)."""
        self.where = where
        # Whether a run without downloads says how many files are only linked (a CM007 line): an export
        # that holds no bytes should; an API source, whose files are always fetched from it, need not.
        self.announce = announce
        self.enabled = _flag(options.get("download"))
        folder = options.get("files_dir")
        self.store = FileStore(Path(folder)) if folder else None
        if self.enabled and self.store is None:
            raise UsageError("-o download=true needs a store folder: -o files_dir=DIR (or --files-dir, or an "
                             "sqlite:/// or mattermost-import:/// target beside which it goes)")
        if self.enabled and token is None:
            token = env_token(options.get("token_env"))
        self.hosts = parse_hosts(options.get("files_allow_host")) or default_hosts
        self.linked: Counter[str] = Counter()  # host → files only linked (for validate's summary)
        self.downloader = Downloader(
            self.store or FileStore(Path(os.devnull)), allow_hosts=self.hosts, token=token, headers=headers,
            workers=_int(options, "download_workers") or 8,
            limits=Limits(_int(options, "max_file_bytes"), _int(options, "max_total_bytes")))
        self.fetched_bytes = 0
        self.fetched_files = 0

    # -- the stream stage ----------------------------------------------------------------------------
    def stage(self, items: Iterator[Item], url_of: Callable[[File], str | None]) -> Iterator[Item]:
        """Items in the same order, each Message's and Emoji's linked files fetched (or checked against
        the store when downloading is off); at most _WINDOW items wait for their downloads."""
        if self.store is None:  # nothing to fetch into: only count what needs a download
            seen: set[str] = set()
            for item in items:
                for file in _files_of(item):
                    url = url_of(file)
                    if url and not file.path and file.id not in seen:
                        seen.add(file.id)
                        self.linked[host_of(url) or "(no host)"] += 1
                yield item
            yield from self._linked_note()
            return
        if self.enabled:
            self._remove_stale_parts()
        held: deque[tuple[Item, list[Future[Outcome] | None]]] = deque()
        running: dict[str, Future[Outcome]] = {}
        with ThreadPoolExecutor(self.downloader.workers, thread_name_prefix="download") as pool:
            for item in items:
                futures = [self._submit(pool, running, file, url_of(file)) for file in _files_of(item)]
                held.append((item, futures))
                while held and (len(held) > _WINDOW or all(f is None or f.done() for f in held[0][1])):
                    yield self._resolved(*held.popleft(), running)
            while held:
                yield self._resolved(*held.popleft(), running)

    def _remove_stale_parts(self) -> None:
        """A run killed mid-download leaves its temp file (`.part-…`): never kept, so removed here."""
        assert self.store is not None
        for part in self.store.root.glob(".part-*"):
            part.unlink(missing_ok=True)

    def _submit(self, pool: ThreadPoolExecutor, running: dict[str, Future[Outcome]], file: File,
                url: str | None) -> Future[Outcome] | None:
        if file.path or not url:  # the export holds the bytes, or there is nothing to fetch
            return None
        job = Job(file.id, url, file.size, file.sha256)
        if file.id in running:  # the same file posted again while the first is still in flight
            return running[file.id]
        future: Future[Outcome] = pool.submit(self.downloader.fetch if self.enabled else self.downloader.status, job)
        running[file.id] = future
        return future

    def _resolved(self, item: Item, futures: list[Future[Outcome] | None], running: dict[str, Future[Outcome]]
                  ) -> Item:
        files = _files_of(item)
        if not any(futures):
            return item
        done = []
        for file, future in zip(files, futures, strict=True):
            if future is None:
                done.append(file)
                continue
            outcome = future.result()
            running.pop(file.id, None)
            if outcome.fetched:
                self.fetched_files += 1
                self.fetched_bytes += outcome.fetched
            done.append(self._with_outcome(file, outcome))
        if isinstance(item, Message):
            return replace(item, files=tuple(done))
        assert isinstance(item, Emoji)
        return replace(item, file=done[0])

    def _with_outcome(self, file: File, outcome: Outcome) -> File:
        props: dict[str, Any] = {**file.props, "bytes": outcome.status}
        if outcome.reason:
            props["bytes_reason"] = outcome.reason
        if outcome.status == PRESENT and outcome.sha256:
            assert self.store is not None
            props["store"] = f"{outcome.sha256[:2]}/{outcome.sha256}"
            props.pop("missing", None)
            return replace(file, sha256=outcome.sha256, size=outcome.size, props=props)
        return replace(file, props=props)

    def _linked_note(self) -> Iterator[Item]:
        if not self.linked or not self.announce:
            return
        total = sum(self.linked.values())
        where = ", ".join(f"{host} ({n})" for host, n in self.linked.most_common())
        yield Skipped("file_bytes", f"{total} files are only linked from the export, their bytes need a download "
                      f"from {where}: re-run with -o download=true -o token_env=VAR", {"hosts": dict(self.linked)},
                      Origin(self.where))

    # -- reading back ----------------------------------------------------------------------------------
    def open(self, file: File) -> IO[bytes] | None:
        """The stored bytes of a file this source downloaded (now or in an earlier run), else None."""
        if self.store is None or file.props.get("bytes") != PRESENT or not self.store.has(file.sha256):
            return None
        return open(self.store.path(file.sha256), "rb")  # type: ignore[arg-type]


def _files_of(item: Item) -> tuple[File, ...]:
    if isinstance(item, Message):
        return item.files
    if isinstance(item, Emoji) and item.file is not None:
        return (item.file,)
    return ()
