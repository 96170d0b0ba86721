"""Shared HTTP plumbing for the live-API extractors: one session, JSON GETs, page-by-page iteration,
bounded backoff on 429/503 (`Retry-After`) and network hiccups, and errors that never show a secret.

Kept generic on purpose: each API extractor (Mattermost, Rocket.Chat, Slack) supplies its own auth
headers and says which of their values are secrets; nothing here knows a particular server.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests

from chatmigrate.errors import InputError, TransientError, UsageError
from chatmigrate.redact import redact

T = TypeVar("T")

# Statuses worth waiting for: rate limited, or the server (or a proxy in front of it) is busy.
_RETRY_STATUSES = {429, 502, 503, 504}


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds to wait: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_ratelimit_reset(value: str | None, now: datetime | None = None) -> float | None:
    """`X-RateLimit-Reset` as seconds to wait. Servers send either the reset moment as epoch
    milliseconds (Rocket.Chat) or epoch seconds (GitHub-style), or a delta in seconds; the
    magnitude tells them apart."""
    if not value:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    now_s = (now or datetime.now(UTC)).timestamp()
    if number > 1e11:  # epoch milliseconds
        return max(0.0, number / 1000 - now_s)
    if number > 1e9:  # epoch seconds
        return max(0.0, number - now_s)
    return max(0.0, number)


class HttpClient:
    """GET JSON from one API base URL with retries; every message it raises is redacted.

    Args:
        base_url: scheme://host[:port][/prefix]; request paths are appended to it.
        headers: sent with every request (auth goes here).
        secrets: values (tokens, user ids used as credentials) to hide in any message.
        max_retries: attempts after the first one, for 429/5xx and connection errors.
        max_wait: the longest single wait in seconds; a server asking for more fails the run with
            TransientError (carrying its retry_after) instead of blocking it for an unbounded time.
        sleep: injectable for tests; production uses time.sleep.
    """

    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None, secrets: Sequence[str] = (),
                 timeout: float = 60.0, max_retries: int = 5, max_wait: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "chatmigrate"})
        self.session.headers.update(dict(headers or {}))
        self._secrets = tuple(s for s in secrets if s)
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait
        self._sleep = sleep
        self.requests_made = 0
        self.waited = 0.0

    def hide(self, text: str) -> str:
        """`text` with every known secret and URL credential replaced by ***."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact(text)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> requests.Response:
        """GET with retries; returns a 2xx response or raises a typed, redacted error."""
        url = self.url(path)
        attempt = 0
        while True:
            attempt += 1
            self.requests_made += 1
            try:
                response = self.session.get(url, params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                if attempt > self.max_retries:
                    raise TransientError(self.hide(f"GET {url}: {type(exc).__name__}: {exc} "
                                                   f"(gave up after {attempt} attempts)")) from None
                self.wait(min(2.0 ** (attempt - 1), self.max_wait))
                continue
            if response.status_code < 300:
                return response
            if response.status_code in _RETRY_STATUSES:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is None:
                    retry_after = parse_ratelimit_reset(response.headers.get("X-RateLimit-Reset"))
                wait = retry_after if retry_after is not None else min(2.0 ** (attempt - 1), self.max_wait)
                if attempt > self.max_retries or wait > self.max_wait:
                    raise TransientError(self.hide(f"GET {url}: HTTP {response.status_code} after {attempt} "
                                                   f"attempts; the server asks to wait {wait:.0f}s"),
                                         retry_after=wait)
                self.wait(wait)
                continue
            raise self._failure(url, response)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.get(path, params)
        try:
            return response.json()
        except ValueError:
            raise InputError(self.hide(f"GET {response.url}: the answer is not JSON "
                                       f"({response.headers.get('Content-Type', 'no content type')}); "
                                       "is this the right server URL?")) from None

    def wait(self, seconds: float) -> None:
        """Sleep `seconds` (counted in `waited`): also for a server that says "slow down" in a 200 answer."""
        self.waited += seconds
        self._sleep(seconds)

    def _failure(self, url: str, response: requests.Response) -> Exception:
        detail = _server_message(response)
        where = f"GET {url}: HTTP {response.status_code}"
        if response.status_code in (401, 403):
            return UsageError(self.hide(f"{where}: the server refused the credentials ({detail}); check the token "
                                        "and that it may read this data"))
        if response.status_code == 404:
            return InputError(self.hide(f"{where}: not found ({detail}); is the server URL right?"))
        return InputError(self.hide(f"{where}: {detail}"))


def _server_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "no details")[:200]
    if isinstance(body, Mapping):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return body[key][:200]
    return str(body)[:200]


def paged(fetch: Callable[[int], Sequence[T]], per_page: int, *, max_pages: int = 1_000_000) -> Iterator[T]:
    """Items of page 0, 1, 2… from `fetch(page)` until a page comes back shorter than `per_page`.

    The short-page rule is how page/per_page APIs (Mattermost, Rocket.Chat's offset/count via
    `offset = page * count`) signal the end; `max_pages` guards against a server that never stops.
    """
    for page in range(max_pages):
        items = fetch(page)
        yield from items
        if len(items) < per_page:
            return
    raise InputError(f"the server kept returning full pages after {max_pages} pages; stopping")
