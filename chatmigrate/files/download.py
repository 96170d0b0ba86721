"""Downloading the file bytes a source only links to (Slack `url_private`, an API's file URL) into the
content-addressed store (targets/_filestore.py), safely and resumably.

- Streaming: bytes go from the socket to a temp file in the store in 1 MiB chunks, then are renamed
  to their SHA-256; a cut-off transfer is deleted, never kept half.
- Resumable: each file's outcome is recorded under `<store>/by-id/` (written, then renamed); a re-run
  skips what is present and retries everything else (missing, refused, failed).
- Retries with backoff on connection errors, cut bodies, 429 and 5xx, honouring `Retry-After`; 401/403/404
  are recorded as refused at once (retrying cannot fix an expired token or a deleted file).
- Only hosts on the allow-list are contacted; a redirect to another host is followed without the token.
- Limits: a maximum file size and a total byte budget; a file over them is skipped, not truncated.
- The token is only ever sent as a header and every reason recorded is redacted.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import orjson
import requests

from chatmigrate.extractors._http import parse_retry_after
from chatmigrate.redact import redact
from chatmigrate.targets._filestore import FileStore

PRESENT, MISSING, REFUSED, FAILED, SKIPPED, PENDING = "present", "missing", "refused", "failed", "skipped", "pending"
STATUSES = (PRESENT, PENDING, MISSING, REFUSED, FAILED, SKIPPED)
_REFUSED = {401, 403, 404, 410}
_CHUNK = 1 << 20
_MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class Job:
    """One file to fetch: `key` is stable across runs (the canonical File.id); size/sha256 are what the
    source says (None when it does not say)."""

    key: str
    url: str | None
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    sha256: str | None = None
    size: int | None = None
    reason: str | None = None
    fetched: int = 0  # bytes transferred by this call (0 when the store already held the file)


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int | None = None
    max_total_bytes: int | None = None


class Budget:
    """The total byte budget, shared by the worker threads: a file reserves its size before it is
    fetched, so two threads cannot both squeeze into the last gigabyte."""

    def __init__(self, total: int | None) -> None:
        self.left = total
        self._lock = threading.Lock()

    def reserve(self, size: int) -> bool:
        with self._lock:
            if self.left is None:
                return True
            if size > self.left:
                return False
            self.left -= size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            if self.left is not None:
                self.left += size


def fetchable_url(url: str) -> str:
    """The URL to request: a stored URL has its query secrets masked (`?t=***`); those parameters are
    dropped, since the token travels in the Authorization header instead."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if v != "***"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class _Retry(Exception):
    """A transient failure: wait `wait` seconds (None: backoff) and try again."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


class _Final(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


class Downloader:
    """Fetch Jobs into a FileStore. Thread-safe: `fetch_all` runs `workers` downloads at once.

    Args:
        allow_hosts: the only hosts contacted (lower-case names or addresses, no port).
        token: sent as `Authorization: Bearer` to the URL's own host only; never logged.
        sleep: injectable for tests.
    """

    def __init__(self, store: FileStore, *, allow_hosts: Iterable[str], token: str | None = None,
                 headers: Mapping[str, str] | None = None, workers: int = 8, retries: int = 5,
                 max_wait: float = 120.0, timeout: float = 60.0, limits: Limits = Limits(),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.allow_hosts = frozenset(h.lower() for h in allow_hosts)
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._auth.update(headers or {})
        self._secrets = tuple(v for v in self._auth.values() if v) + ((token,) if token else ())
        self.workers = max(1, workers)
        self.retries = retries
        self.max_wait = max_wait
        self.timeout = timeout
        self.limits = limits
        self.budget = Budget(limits.max_total_bytes)
        self._sleep = sleep
        self._local = threading.local()
        self.requests_made = 0
        # Called with each chunk's length from the worker threads (a progress bar; tqdm locks itself).
        self.on_bytes: Callable[[int], None] | None = None

    # -- the index: what earlier runs got ------------------------------------------------------------
    def _index_path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.store.root / "by-id" / digest[:2] / digest

    def recorded(self, key: str) -> Outcome | None:
        """The outcome an earlier run recorded for this file; a `present` whose bytes left the store is
        forgotten (it must be fetched again)."""
        try:
            data = orjson.loads(self._index_path(key).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        outcome = Outcome(data.get("status", FAILED), data.get("sha256"), data.get("size"), data.get("reason"))
        if outcome.status == PRESENT and not self.store.has(outcome.sha256):
            return None
        return outcome

    def _record(self, key: str, outcome: Outcome) -> None:
        path = self._index_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"status": outcome.status, "sha256": outcome.sha256, "size": outcome.size, "reason": outcome.reason}
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".part-", delete=False) as temp:
            temp.write(orjson.dumps(data))
        os.replace(temp.name, path)

    def status(self, job: Job) -> Outcome:
        """What is known without any network: present, a recorded failure, or pending (never tried)."""
        if job.url is None:
            return Outcome(MISSING, reason="the source gives no URL for this file")
        return self.recorded(job.key) or Outcome(PENDING)

    # -- fetching --------------------------------------------------------------------------------------
    def fetch(self, job: Job) -> Outcome:
        """Bring one file into the store (or say why not); records the outcome for later runs."""
        known = self.recorded(job.key)
        if known is not None and known.status == PRESENT:
            return known
        if job.url is None:
            return Outcome(MISSING, reason="the source gives no URL for this file")
        outcome = self._fetch(job)
        self._record(job.key, outcome)
        return outcome

    def fetch_all(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Outcome]]:
        """Fetch with `workers` threads; yields (job, outcome) as they finish. Memory stays bounded:
        at most 4 × workers jobs are queued at any time."""
        with ThreadPoolExecutor(self.workers, thread_name_prefix="download") as pool:
            pending: dict[object, Job] = {}
            for job in jobs:
                pending[pool.submit(self.fetch, job)] = job
                if len(pending) >= 4 * self.workers:
                    yield from self._drain(pending, until=2 * self.workers)
            yield from self._drain(pending, until=0)

    @staticmethod
    def _drain(pending: dict[object, Job], until: int) -> Iterator[tuple[Job, Outcome]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        while len(pending) > until:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)  # type: ignore[arg-type]
            for future in done:
                yield pending.pop(future), future.result()  # type: ignore[attr-defined]

    def _session(self) -> requests.Session:
        # One session (connection pool) per worker thread: requests.Session is not thread-safe.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["User-Agent"] = "chatmigrate"
        return session

    def hide(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact(text)

    def _fetch(self, job: Job) -> Outcome:
        limit = self.limits.max_file_bytes
        if limit is not None and job.size is not None and job.size > limit:
            return Outcome(SKIPPED, reason=f"{job.size} bytes is over max_file_bytes={limit}")
        reserved = job.size or 0
        if not self.budget.reserve(reserved):
            return Outcome(SKIPPED, reason="over the total byte budget (max_total_bytes)")
        try:
            outcome = self._with_retries(job)
        except BaseException:
            self.budget.give_back(reserved)
            raise
        if outcome.status != PRESENT:
            self.budget.give_back(reserved)
        elif outcome.size is not None and outcome.size != reserved:
            # The source did not say (or said wrong): charge what really came.
            self.budget.give_back(reserved - outcome.size)
        return outcome

    def _with_retries(self, job: Job) -> Outcome:
        assert job.url is not None
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(job)
            except _Final as final:
                return final.outcome
            except _Retry as retry:
                wait = retry.wait if retry.wait is not None else min(2.0 ** (attempt - 1), self.max_wait)
                if attempt > self.retries or wait > self.max_wait:
                    return Outcome(FAILED, reason=self.hide(f"{retry} (gave up after {attempt} attempts)"))
                self._sleep(wait)

    def _attempt(self, job: Job) -> Outcome:
        assert job.url is not None
        url = fetchable_url(job.url)
        origin = host_of(url)
        for _ in range(_MAX_REDIRECTS + 1):
            host = host_of(url)
            if host not in self.allow_hosts:
                raise _Final(Outcome(REFUSED, reason=self.hide(
                    f"{url}: host {host!r} is not allowed (--files-allow-host)")))
            # The token goes to the source's own host only: a CDN it redirects to gets none.
            headers = self._auth if host == origin else {}
            self.requests_made += 1
            try:
                response = self._session().get(url, headers=headers, stream=True, allow_redirects=False,
                                               timeout=self.timeout)
            except requests.RequestException as exc:
                raise _Retry(self.hide(f"GET {url}: {type(exc).__name__}")) from None
            with response:
                if response.is_redirect and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                return self._answer(job, url, response)
        raise _Final(Outcome(FAILED, reason=self.hide(f"{job.url}: more than {_MAX_REDIRECTS} redirects")))

    def _answer(self, job: Job, url: str, response: requests.Response) -> Outcome:
        code = response.status_code
        if code in _REFUSED:
            raise _Final(Outcome(REFUSED, reason=self.hide(f"GET {url}: HTTP {code}")))
        if code == 429 or code >= 500:
            raise _Retry(self.hide(f"GET {url}: HTTP {code}"), parse_retry_after(response.headers.get("Retry-After")))
        if code != 200:
            raise _Final(Outcome(FAILED, reason=self.hide(f"GET {url}: HTTP {code}")))
        declared = response.headers.get("Content-Length")
        length = int(declared) if declared and declared.isdigit() else None
        limit = self.limits.max_file_bytes
        if limit is not None and length is not None and length > limit:
            raise _Final(Outcome(SKIPPED, reason=f"{length} bytes is over max_file_bytes={limit}"))
        sha256, size = self._stream(url, response, length)
        if job.size is not None and size != job.size:
            raise _Final(Outcome(FAILED, reason=f"got {size} bytes, the source says {job.size}"))
        if job.sha256 and sha256 != job.sha256:
            self.store.path(sha256).unlink(missing_ok=True)
            raise _Final(Outcome(FAILED, reason=f"SHA-256 {sha256} differs from the source's {job.sha256}"))
        return Outcome(PRESENT, sha256, size, fetched=size)

    def _stream(self, url: str, response: requests.Response, length: int | None) -> tuple[str, int]:
        """Copy the body into the store chunk by chunk; a short or cut body is deleted and retried."""
        root = self.store.root
        root.mkdir(parents=True, exist_ok=True)
        digest, size, limit = hashlib.sha256(), 0, self.limits.max_file_bytes
        on_bytes = self.on_bytes
        with tempfile.NamedTemporaryFile(dir=root, prefix=".part-", delete=False) as temp:
            try:
                for chunk in response.iter_content(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise _Final(Outcome(SKIPPED, reason=f"more than max_file_bytes={limit} bytes"))
                    temp.write(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
                if length is not None and size != length:
                    raise _Retry(f"GET {url}: body cut at {size} of {length} bytes")
            except requests.RequestException as exc:
                temp.close()
                os.unlink(temp.name)
                raise _Retry(self.hide(f"GET {url}: transfer cut after {size} bytes ({type(exc).__name__})")) from None
            except BaseException:
                temp.close()
                os.unlink(temp.name)
                raise
        final = self.store.path(digest.hexdigest())
        final.parent.mkdir(exist_ok=True)
        os.replace(temp.name, final)
        return digest.hexdigest(), size


def summarise(outcomes: Iterable[tuple[Outcome, str | None]]) -> dict[str, dict[str, int]]:
    """status → {files, bytes}, plus `hosts`: host → files still to fetch (pending, failed, refused)."""
    summary: dict[str, dict[str, int]] = {status: {"files": 0, "bytes": 0} for status in STATUSES}
    hosts: dict[str, int] = {}
    for outcome, url in outcomes:
        entry = summary.setdefault(outcome.status, {"files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += outcome.size or 0
        if outcome.status in (PENDING, FAILED, REFUSED) and url:
            hosts[host_of(url)] = hosts.get(host_of(url), 0) + 1
    return {**summary, "hosts": hosts}


def parse_hosts(value: str | Sequence[str] | None) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return [h.strip().lower() for h in items if h.strip()]
